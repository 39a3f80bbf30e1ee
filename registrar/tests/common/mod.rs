//! The test harness shared by the registrar's rule tests: a real ledger in a temporary
//! directory and identities with numbered keys.
#![allow(dead_code)]

use serde_json::{json, Value};
use sparkid_bid::document::DID_CONTEXT;
use sparkid_bid::{AcCode, Bid, PrivateKey};
use sparkid_ledger::{
    CommitCertificate, Genesis, Ledger, TxBody, TxOutcome, TxRejection, VerifiedTransaction,
};
use sparkid_registrar::{did_key, BidStateMachine, DidRecord, Operation, OperationError};
use tempfile::TempDir;

pub const CHAIN: &str = "rules-test";
pub const GENESIS_TIME: u64 = 1_700_000_000;

/// A ledger in a temporary directory, one validator, one block per submitted transaction.
pub struct Chain {
    pub ledger: Ledger,
    pub validator: PrivateKey,
    pub machine: BidStateMachine,
    pub time: u64,
    _dir: TempDir,
}

impl Chain {
    pub fn new() -> Chain {
        Chain::with_machine(BidStateMachine::default())
    }

    pub fn with_machine(machine: BidStateMachine) -> Chain {
        Chain::with(machine, None)
    }

    /// A chain whose genesis names `authority` (a DID) as its namespace authority.
    pub fn with(machine: BidStateMachine, authority: Option<String>) -> Chain {
        let dir = tempfile::tempdir().unwrap();
        let validator = PrivateKey::generate();
        let genesis = Genesis {
            chain_id: CHAIN.into(),
            time: GENESIS_TIME,
            validators: vec![validator.public_key().to_encoded()],
            authority,
            other: Default::default(),
        };
        let ledger = Ledger::create(dir.path(), genesis, &[&validator]).unwrap();
        Chain {
            ledger,
            validator,
            machine,
            time: GENESIS_TIME,
            _dir: dir,
        }
    }

    /// A chain over an existing ledger (another genesis, e.g. a sub-chain's).
    pub fn from_parts(
        ledger: Ledger,
        validator: PrivateKey,
        machine: BidStateMachine,
        dir: TempDir,
    ) -> Chain {
        Chain {
            ledger,
            validator,
            machine,
            time: GENESIS_TIME,
            _dir: dir,
        }
    }

    /// Signs `op` as `signer` with `key` and verifies it, as the registrar does before submitting.
    pub fn tx(&self, signer: &str, key: &PrivateKey, op: &Operation) -> VerifiedTransaction {
        TxBody {
            chain_id: CHAIN.into(),
            signer: signer.into(),
            public_key: key.public_key().to_encoded(),
            nonce: TxBody::random_nonce(),
            valid_until: self.ledger.height() + 10,
            operation: op.to_value(),
        }
        .sign(key)
        .verify()
        .unwrap()
    }

    /// Proposes the transactions in one block; returns their outcomes.
    pub fn propose(&mut self, txs: Vec<VerifiedTransaction>) -> Vec<TxOutcome<OperationError>> {
        self.time += 10;
        let before = self.ledger.height();
        let validator = &self.validator;
        let proposal = self
            .ledger
            .propose(&self.machine, txs, self.time, |h| {
                Ok(CommitCertificate::sign(h, &[validator]))
            })
            .unwrap();
        let included = proposal
            .outcomes
            .iter()
            .filter(|o| matches!(o, TxOutcome::Included { .. }))
            .count();
        // A block is made exactly when something was accepted.
        assert_eq!(proposal.block.is_some(), included > 0);
        assert_eq!(self.ledger.height(), before + u64::from(included > 0));
        proposal.outcomes
    }

    /// Signs and proposes one operation alone in a block.
    pub fn submit(
        &mut self,
        signer: &str,
        key: &PrivateKey,
        op: Operation,
    ) -> TxOutcome<OperationError> {
        let tx = self.tx(signer, key, &op);
        self.propose(vec![tx]).pop().unwrap()
    }

    pub fn raw(&self, bid: &Bid) -> Option<String> {
        self.ledger.get(&did_key(bid)).unwrap()
    }

    pub fn record(&self, bid: &Bid) -> DidRecord {
        serde_json::from_str(&self.raw(bid).expect("the DID has a record")).unwrap()
    }
}

pub fn assert_included(outcome: &TxOutcome<OperationError>) {
    assert!(
        matches!(outcome, TxOutcome::Included { .. }),
        "expected inclusion, got {outcome:?}"
    );
}

pub fn refusal(outcome: &TxOutcome<OperationError>) -> OperationError {
    match outcome {
        TxOutcome::Rejected {
            reason: TxRejection::Operation(e),
            ..
        } => e.clone(),
        other => panic!("expected an operation rule to refuse, got {other:?}"),
    }
}

/// A DID and numbered keys; `key-1` is the one the DID derives from.
pub struct Identity {
    pub bid: Bid,
    pub did: String,
    pub keys: Vec<PrivateKey>,
}

impl Identity {
    pub fn new(keys: usize) -> Identity {
        Identity::on(None, keys)
    }

    pub fn on(ac: Option<AcCode>, keys: usize) -> Identity {
        let keys: Vec<PrivateKey> = (0..keys).map(|_| PrivateKey::generate()).collect();
        let bid = Bid::derive(&keys[0].public_key(), ac).unwrap();
        Identity {
            did: bid.to_string(),
            bid,
            keys,
        }
    }

    /// `<did>#key-<n>`.
    pub fn kid(&self, n: usize) -> String {
        format!("{}#key-{n}", self.did)
    }

    /// Private key number `n` (1-based).
    pub fn key(&self, n: usize) -> &PrivateKey {
        &self.keys[n - 1]
    }

    /// A native document listing `keys` (by number) under `publicKey`, with the given
    /// authentication and recovery references.
    pub fn document(&self, keys: &[usize], authentication: &[usize], recovery: &[usize]) -> Value {
        let public_key: Vec<Value> = keys
            .iter()
            .map(|&n| {
                json!({
                    "id": self.kid(n),
                    "type": "Ed25519",
                    "controller": self.did,
                    "publicKeyHex": self.key(n).public_key().to_encoded(),
                })
            })
            .collect();
        json!({
            "@context": [DID_CONTEXT],
            "version": "1.0.0",
            "id": self.did,
            "publicKey": public_key,
            "authentication": authentication.iter().map(|&n| self.kid(n)).collect::<Vec<_>>(),
            "extension": {
                "recovery": recovery.iter().map(|&n| self.kid(n)).collect::<Vec<_>>(),
                "ttl": 86400,
            },
        })
    }

    /// key-1 authenticates, key-2 recovers.
    pub fn standard_document(&self) -> Value {
        self.document(&[1, 2], &[1], &[2])
    }
}
