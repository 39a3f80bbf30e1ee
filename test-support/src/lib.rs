//! What sparkid's tests share, written once: a dev ledger in a temporary directory whose
//! validators sign every block ([`DevChain`]), signed transactions ([`transaction`]), genesis
//! files ([`genesis`]) and identities with numbered keys ([`Identity`]). Unpublished, as
//! rustls-test and ripgrep's test utilities are. It must not be a dependency of product code:
//! only `[dev-dependencies]` name it (tests/layout.rs checks that), and it knows no door, daemon,
//! socket or cache, only the ledger and the registrar's state machine.
//!
//! The libraries it depends on (`sparkid-ledger`, `sparkid-registrar`) cannot use it in their own
//! tests (their test build is another copy of the crate); their integration tests live in this
//! package instead, in `tests/libraries/`.

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};
use sparkid_bid::document::DID_CONTEXT;
use sparkid_bid::{AcCode, Bid, PrivateKey};
use sparkid_ledger::{
    Block, BlockHeader, CommitCertificate, Genesis, Ledger, LedgerError, StateMachine, TxBody,
    TxOutcome, TxRejection, VerifiedTransaction,
};
use sparkid_registrar::{did_key, BidStateMachine, DidRecord, Operation, OperationError};
use tempfile::TempDir;

/// The chain id of [`DevChain::new`]'s chains.
pub const DEV_CHAIN: &str = "sparkid-test";
/// The genesis time of [`genesis`] (2023-11-14, a fixed past instant: tests are reproducible).
pub const GENESIS_TIME: u64 = 1_700_000_000;
/// Seconds between two blocks [`DevChain::propose`] makes.
pub const BLOCK_INTERVAL: u64 = 10;

/// The genesis of chain `chain_id` at [`GENESIS_TIME`], naming `validators`, no namespace
/// authority and no other fields (set them on the value for a sub-chain's `acCode`).
pub fn genesis(chain_id: &str, validators: &[&PrivateKey]) -> Genesis {
    Genesis {
        chain_id: chain_id.into(),
        time: GENESIS_TIME,
        validators: validators
            .iter()
            .map(|k| k.public_key().to_encoded())
            .collect(),
        authority: None,
        other: Default::default(),
    }
}

/// A transaction of `chain_id` carrying `operation`, signed by `key` as `signer` (a key id such
/// as `did:bid:…#key-1`), valid until height `valid_until`, and verified as the registrar
/// verifies it before submitting.
pub fn transaction(
    chain_id: &str,
    signer: &str,
    key: &PrivateKey,
    operation: Value,
    valid_until: u64,
) -> VerifiedTransaction {
    TxBody {
        chain_id: chain_id.into(),
        signer: signer.into(),
        public_key: key.public_key().to_encoded(),
        nonce: TxBody::random_nonce(),
        valid_until,
        operation,
    }
    .sign(key)
    .verify()
    .expect("a transaction signed here verifies")
}

/// A ledger in a temporary directory whose `signers` (a quorum of the genesis validators)
/// certify every block it proposes, with the state machine `M` executing them.
pub struct DevChain<M: StateMachine = BidStateMachine> {
    /// The ledger, shared as the daemon's services hold it.
    pub ledger: Arc<Ledger>,
    /// The validators that sign genesis and every block (all of them, unless made with
    /// [`DevChain::create`] and a quorum only).
    pub signers: Vec<PrivateKey>,
    /// The rules blocks execute with.
    pub machine: M,
    /// The time of the last block; each new one is [`BLOCK_INTERVAL`] later.
    pub time: u64,
    dir: TempDir,
}

impl DevChain<BidStateMachine> {
    /// A did:bid chain [`DEV_CHAIN`], one new validator, the main chain's rules.
    pub fn new() -> DevChain {
        DevChain::with_machine(BidStateMachine::default())
    }

    /// [`DevChain::new`] with other rules (a sub-chain's, for one).
    pub fn with_machine(machine: BidStateMachine) -> DevChain {
        DevChain::with(machine, None)
    }

    /// A chain whose genesis names `authority` (a DID) as its namespace authority.
    pub fn with(machine: BidStateMachine, authority: Option<String>) -> DevChain {
        let validator = PrivateKey::generate();
        let mut genesis = genesis(DEV_CHAIN, &[&validator]);
        genesis.authority = authority;
        DevChain::create(genesis, vec![validator], machine)
    }

    /// A did:bid chain of `genesis`, its rules those the genesis sets (a sub-chain's `acCode`).
    pub fn for_genesis(genesis: Genesis, signers: Vec<PrivateKey>) -> DevChain {
        let machine = BidStateMachine::for_genesis(&genesis);
        DevChain::create(genesis, signers, machine)
    }

    /// Signs `op` as `signer` with `key` and verifies it, as the registrar does before submitting.
    pub fn tx(&self, signer: &str, key: &PrivateKey, op: &Operation) -> VerifiedTransaction {
        self.tx_value(signer, key, op.to_value())
    }

    /// Signs and proposes one operation alone in a block.
    pub fn submit(
        &mut self,
        signer: &str,
        key: &PrivateKey,
        op: Operation,
    ) -> TxOutcome<OperationError> {
        let tx = self.tx(signer, key, &op);
        self.propose(vec![tx])
            .pop()
            .expect("one outcome per transaction")
    }

    /// Proposes the operations in one block, each signed as `(key, signer)`; every one must be
    /// included. Returns the block's height.
    pub fn commit(&mut self, ops: Vec<(&PrivateKey, String, Operation)>) -> u64 {
        let txs = ops
            .iter()
            .map(|(key, signer, op)| self.tx(signer, key, op))
            .collect();
        for outcome in self.propose(txs) {
            assert_included(&outcome);
        }
        self.ledger.height()
    }

    /// Registers a new DID (its document from `template`, as the registrar's API makes it) in a
    /// block of its own; returns its key and BID.
    pub fn register(&mut self, template: Option<Value>) -> (PrivateKey, Bid) {
        let key = PrivateKey::generate();
        let document = sparkid_registrar::api::new_document(&key.public_key(), template)
            .expect("a document from a template of the test's");
        let bid: Bid = document["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .expect("the document names its BID");
        let outcome = self.submit(
            &format!("{bid}#key-1"),
            &key,
            Operation::Create { document },
        );
        assert_included(&outcome);
        (key, bid)
    }

    /// The stored record of `bid`, as the ledger holds it.
    pub fn raw(&self, bid: &Bid) -> Option<String> {
        self.ledger.get(&did_key(bid)).expect("the ledger reads")
    }

    /// The record of `bid`, which must exist.
    pub fn record(&self, bid: &Bid) -> DidRecord {
        serde_json::from_str(&self.raw(bid).expect("the DID has a record"))
            .expect("a record the registrar wrote")
    }
}

impl Default for DevChain<BidStateMachine> {
    fn default() -> Self {
        DevChain::new()
    }
}

impl<M: StateMachine> DevChain<M> {
    /// A ledger of `genesis` in a new temporary directory, genesis and every block signed by
    /// `signers`, blocks executed by `machine`.
    pub fn create(genesis: Genesis, signers: Vec<PrivateKey>, machine: M) -> DevChain<M> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let time = genesis.time;
        let keys: Vec<&PrivateKey> = signers.iter().collect();
        let ledger = Ledger::create(dir.path(), genesis, &keys).expect("a new ledger");
        DevChain {
            ledger: Arc::new(ledger),
            signers,
            machine,
            time,
            dir,
        }
    }

    /// Another ledger of the same genesis, signers and rules, at height 0: a replica that
    /// [`DevChain::apply_from`] brings up to date, as a follower.
    pub fn replica(&self) -> DevChain<M>
    where
        M: Clone,
    {
        DevChain::create(
            self.ledger.genesis().clone(),
            self.signers.clone(),
            self.machine.clone(),
        )
    }

    /// The first validator: the one of a one-validator chain.
    pub fn validator(&self) -> &PrivateKey {
        &self.signers[0]
    }

    /// The directory holding the ledger.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Closes the ledger and hands over its directory (for another process to open it).
    pub fn into_dir(self) -> TempDir {
        self.dir
    }

    /// The certificate the signers give `header`.
    pub fn certify(&self, header: &BlockHeader) -> CommitCertificate {
        let keys: Vec<&PrivateKey> = self.signers.iter().collect();
        CommitCertificate::sign(header, &keys)
    }

    /// A certifier owning copies of the signers' keys, for a block producer of its own (the
    /// registrar's `Submitter`).
    pub fn certifier(
        &self,
    ) -> impl Fn(&BlockHeader) -> Result<CommitCertificate, LedgerError> + Send + 'static {
        let signers = self.signers.clone();
        move |header| {
            let keys: Vec<&PrivateKey> = signers.iter().collect();
            Ok(CommitCertificate::sign(header, &keys))
        }
    }

    /// A transaction of this chain carrying `operation`, valid for the next 10 blocks.
    pub fn tx_value(
        &self,
        signer: &str,
        key: &PrivateKey,
        operation: Value,
    ) -> VerifiedTransaction {
        let chain_id = &self.ledger.genesis().chain_id;
        transaction(chain_id, signer, key, operation, self.ledger.height() + 10)
    }

    /// Proposes the transactions in one block, [`BLOCK_INTERVAL`] after the last; returns their
    /// outcomes. A block is made exactly when something was accepted (asserted).
    pub fn propose(&mut self, txs: Vec<VerifiedTransaction>) -> Vec<TxOutcome<M::Rejection>> {
        self.time += BLOCK_INTERVAL;
        let before = self.ledger.height();
        let keys: Vec<&PrivateKey> = self.signers.iter().collect();
        let proposal = self
            .ledger
            .propose(&self.machine, txs, self.time, |h| {
                Ok(CommitCertificate::sign(h, &keys))
            })
            .expect("the ledger makes the block");
        let included = proposal
            .outcomes
            .iter()
            .filter(|o| matches!(o, TxOutcome::Included { .. }))
            .count();
        assert_eq!(proposal.block.is_some(), included > 0);
        assert_eq!(self.ledger.height(), before + u64::from(included > 0));
        proposal.outcomes
    }

    /// Applies `from`'s block at `height`, as a follower does.
    pub fn apply_from(&self, from: &DevChain<M>, height: u64) {
        let block = from
            .ledger
            .block(height)
            .expect("the ledger reads")
            .expect("the block exists");
        self.ledger
            .apply_block(&self.machine, block)
            .expect("a replica applies its chain's block");
    }

    /// Every block from genesis (height 0) to the head.
    pub fn blocks(&self) -> Vec<Block> {
        (0..=self.ledger.height())
            .map(|h| {
                self.ledger
                    .block(h)
                    .expect("the ledger reads")
                    .expect("the block exists")
            })
            .collect()
    }
}

/// Panics unless the transaction was included.
pub fn assert_included<E: std::fmt::Debug>(outcome: &TxOutcome<E>) {
    assert!(
        matches!(outcome, TxOutcome::Included { .. }),
        "expected inclusion, got {outcome:?}"
    );
}

/// The operation rule that refused the transaction; panics if it was included or refused for
/// another reason.
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
    /// The DID's BID.
    pub bid: Bid,
    /// The DID, `did:bid:…`.
    pub did: String,
    /// Its private keys, `key-1` first.
    pub keys: Vec<PrivateKey>,
}

impl Identity {
    /// A main-chain DID with `keys` new keys.
    pub fn new(keys: usize) -> Identity {
        Identity::on(None, keys)
    }

    /// A DID of the chain with AC code `ac` (the main chain's when `None`), `keys` new keys.
    pub fn on(ac: Option<AcCode>, keys: usize) -> Identity {
        let keys: Vec<PrivateKey> = (0..keys).map(|_| PrivateKey::generate()).collect();
        let bid = Bid::derive(&keys[0].public_key(), ac).expect("a BID from a new key");
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
