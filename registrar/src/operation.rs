//! did:bid operations and the rules that authorize them: the registrar's state machine.
//!
//! | operation | signed by | rule |
//! |---|---|---|
//! | `create` | the key the BID derives from, listed in `authentication` | the DID does not exist yet |
//! | `update` | an `authentication` key of the current document | `authentication`, `extension.recovery` and their keys stay as they are |
//! | `deactivate` | an `extension.recovery` key | final: a deactivated DID takes no further operation |
//! | `recover` | an `extension.recovery` key | replaces keys, `authentication` and `recovery` |
//!
//! Update, recover and deactivate name the version they replace (`previousVersionId`, inside
//! the signed operation), and run only while it is the current one: a transaction signed and
//! held back while another change commits can never roll the document back. A transaction
//! without it is refused when it is submitted ([`admit`]); the rules still run one that a
//! certified block already holds, so that chains written before the rule re-execute to the same
//! roots (`spec/did-bid.md` §4).
//!
//! The state machine routes `delegate`, `bind`, `unbind`, `link` and `unlink` to
//! [`crate::namespace`] and `anchor` to [`crate::anchor`]. The DID record and the refusal, which those rules use too, live in
//! [`crate::state`] and are re-exported here.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sparkid_bid::document::DID_CONTEXT;
use sparkid_bid::{AcCode, Bid, BidDocument, DocumentError, PublicKey};
use sparkid_ledger::{
    ExecContext, LedgerError, StateMachine, StateView, VerifiedTransaction, Writes,
};

use crate::namespace::NamespaceOperation;
use crate::state::Kind;
pub use crate::state::{did_key, format_time, DidRecord, OperationError};

/// An operation, as a transaction carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum Operation {
    /// Register a new DID.
    Create {
        /// The native BID document.
        document: Value,
    },
    /// Replace the document of a DID.
    Update {
        /// The new document.
        document: Value,
        /// The version this one replaces: the operation runs only while it is current.
        #[serde(
            default,
            rename = "previousVersionId",
            skip_serializing_if = "Option::is_none"
        )]
        previous_version_id: Option<u64>,
    },
    /// Deactivate a DID, for good.
    Deactivate {
        /// The DID.
        id: String,
        /// The version this deactivation replaces: it runs only while it is current.
        #[serde(
            default,
            rename = "previousVersionId",
            skip_serializing_if = "Option::is_none"
        )]
        previous_version_id: Option<u64>,
    },
    /// Replace the keys of a DID with its recovery key.
    Recover {
        /// The new document.
        document: Value,
        /// The version this one replaces: the operation runs only while it is current.
        #[serde(
            default,
            rename = "previousVersionId",
            skip_serializing_if = "Option::is_none"
        )]
        previous_version_id: Option<u64>,
    },
    /// Delegate a namespace to an owner DID (by the chain authority); again to change it.
    Delegate {
        /// VAA company prefix, Handle prefix, DNS zone or sub-chain AC code.
        kind: Kind,
        /// The namespace.
        namespace: String,
        /// The DID that will bind under it.
        owner: String,
        /// VAA prefixes: the chain that holds its items, `main` (the default) or an AC code.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        chain: Option<String>,
        /// AC codes: the sub-chain's resolver endpoints; Handle prefixes: the Handle interfaces
        /// of the node serving the prefix, when it is not this chain's.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        endpoints: Vec<String>,
    },
    /// Bind a foreign identifier under an owned namespace to a DID.
    Bind {
        /// The identifier's kind.
        kind: Kind,
        /// The identifier.
        identifier: String,
        /// The DID it names.
        did: String,
    },
    /// Remove a binding.
    Unbind {
        /// The identifier's kind.
        kind: Kind,
        /// The identifier.
        identifier: String,
    },
    /// The DID's controller confirms an identifier bound (or to be bound) to it: only then does
    /// the identifier show on the DID's side (`alsoKnownAs`, DNS `aka`).
    Link {
        /// The DID, whose authentication key signs.
        did: String,
        /// The identifier's kind.
        kind: Kind,
        /// The identifier.
        identifier: String,
    },
    /// The DID's controller withdraws a confirmation made with `link`.
    Unlink {
        /// The DID, whose authentication key signs.
        did: String,
        /// The identifier's kind.
        kind: Kind,
        /// The identifier.
        identifier: String,
    },
    /// Record a sub-chain's certified header on this (main) chain, by the AC code's owner
    /// ([`crate::anchor`]).
    Anchor {
        /// The sub-chain's AC code.
        ac: String,
        /// The sub-chain's genesis: required on the first anchor, the same one after.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        genesis: Option<Box<sparkid_ledger::Genesis>>,
        /// The header and its certificate by the sub-chain's validators.
        header: Box<sparkid_ledger::CertifiedHeader>,
    },
}

impl Operation {
    /// The operation's name.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Create { .. } => "create",
            Operation::Update { .. } => "update",
            Operation::Deactivate { .. } => "deactivate",
            Operation::Recover { .. } => "recover",
            Operation::Delegate { .. } => "delegate",
            Operation::Bind { .. } => "bind",
            Operation::Unbind { .. } => "unbind",
            Operation::Link { .. } => "link",
            Operation::Unlink { .. } => "unlink",
            Operation::Anchor { .. } => "anchor",
        }
    }

    /// The DID the operation is about.
    pub fn did(&self) -> Option<&str> {
        match self {
            Operation::Create { document }
            | Operation::Update { document, .. }
            | Operation::Recover { document, .. } => document.get("id").and_then(Value::as_str),
            Operation::Deactivate { id, .. } => Some(id),
            Operation::Delegate { owner, .. } => Some(owner),
            Operation::Bind { did, .. }
            | Operation::Link { did, .. }
            | Operation::Unlink { did, .. } => Some(did),
            Operation::Unbind { .. } | Operation::Anchor { .. } => None,
        }
    }

    /// True for the operations on namespaces and bindings (see [`crate::namespace`]).
    pub fn is_namespace_operation(&self) -> bool {
        matches!(
            self,
            Operation::Delegate { .. }
                | Operation::Bind { .. }
                | Operation::Unbind { .. }
                | Operation::Link { .. }
                | Operation::Unlink { .. }
                | Operation::Anchor { .. }
        )
    }

    /// The version an update, recover or deactivate names as the one it replaces.
    pub fn previous_version_id(&self) -> Option<u64> {
        match self {
            Operation::Update {
                previous_version_id,
                ..
            }
            | Operation::Recover {
                previous_version_id,
                ..
            }
            | Operation::Deactivate {
                previous_version_id,
                ..
            } => *previous_version_id,
            _ => None,
        }
    }

    /// True for update, recover and deactivate: the operations that replace a DID's version.
    pub fn replaces_version(&self) -> bool {
        matches!(
            self,
            Operation::Update { .. } | Operation::Recover { .. } | Operation::Deactivate { .. }
        )
    }

    /// The fields of a `delegate`, `bind` or `unbind`, as the namespace rules take them.
    fn namespace_operation(&self) -> Option<NamespaceOperation<'_>> {
        match self {
            Operation::Delegate {
                kind,
                namespace,
                owner,
                chain,
                endpoints,
            } => Some(NamespaceOperation::Delegate {
                kind: *kind,
                namespace,
                owner,
                chain: chain.as_deref(),
                endpoints,
            }),
            Operation::Bind {
                kind,
                identifier,
                did,
            } => Some(NamespaceOperation::Bind {
                kind: *kind,
                identifier,
                did,
            }),
            Operation::Unbind { kind, identifier } => Some(NamespaceOperation::Unbind {
                kind: *kind,
                identifier,
            }),
            Operation::Link {
                did,
                kind,
                identifier,
            } => Some(NamespaceOperation::Link {
                did,
                kind: *kind,
                identifier,
                confirm: true,
            }),
            Operation::Unlink {
                did,
                kind,
                identifier,
            } => Some(NamespaceOperation::Link {
                did,
                kind: *kind,
                identifier,
                confirm: false,
            }),
            Operation::Create { .. }
            | Operation::Update { .. }
            | Operation::Deactivate { .. }
            | Operation::Recover { .. }
            | Operation::Anchor { .. } => None,
        }
    }

    /// As JSON, for a transaction.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The did:bid state machine.
#[derive(Debug, Clone, Default)]
pub struct BidStateMachine {
    /// The AC code of this chain, if it is a sub-chain.
    pub ac_code: Option<AcCode>,
}

impl BidStateMachine {
    /// The state machine of a chain, reading its AC code from genesis (`acCode`).
    pub fn for_genesis(genesis: &sparkid_ledger::Genesis) -> BidStateMachine {
        let ac_code = genesis
            .other
            .get("acCode")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok());
        BidStateMachine { ac_code }
    }

    fn check_document(&self, document: &Value) -> Result<(BidDocument, Bid), OperationError> {
        let mut doc = BidDocument::from_value(document.clone())?;
        // The ledger stamps times and holds proofs of authorship in blocks; stored documents
        // carry neither.
        doc.created = None;
        doc.updated = None;
        doc.proof = None;
        doc.validate()?;
        let bid = doc.bid()?;
        if bid.is_ac_code_only() {
            return Err(OperationError::AcCodeRecord(bid.to_string()));
        }
        if bid.ac_code() != self.ac_code {
            let chain = |ac: Option<AcCode>| {
                ac.map(|a| format!("sub-chain {a}"))
                    .unwrap_or_else(|| "the main chain".into())
            };
            return Err(OperationError::WrongChain {
                did: bid.to_string(),
                expected: chain(bid.ac_code()),
                this: chain(self.ac_code),
            });
        }
        Ok((doc, bid))
    }

    /// Validates an operation against state and returns the new record.
    pub fn apply(
        &self,
        op: &Operation,
        signer: &str,
        signer_key: &PublicKey,
        current: Option<DidRecord>,
        ctx: &ExecContext<'_>,
    ) -> Result<(Bid, DidRecord), OperationError> {
        let now = format_time(ctx.time);
        let record =
            |document: Value, created: String, version_id: u64, deactivated: bool| DidRecord {
                document,
                created,
                updated: now.clone(),
                version_id,
                deactivated,
                height: ctx.height,
                operation: op.name().to_string(),
            };
        match op {
            Operation::Create { document } => {
                let (doc, bid) = self.check_document(document)?;
                if current.is_some() {
                    return Err(OperationError::AlreadyExists(bid.to_string()));
                }
                if !bid.is_derived_from(signer_key) {
                    let derived = Bid::derive(signer_key, bid.ac_code())
                        .map(|b| b.to_string())
                        .unwrap_or_default();
                    return Err(OperationError::NotSelfCertifying {
                        did: bid.to_string(),
                        derived,
                    });
                }
                signed_by(&doc, signer, signer_key, &doc.authentication).map_err(|e| {
                    e.unwrap_or(OperationError::NotAuthenticationKey {
                        op: "create",
                        signer: signer.to_string(),
                    })
                })?;
                Ok((bid, record(doc.to_value(), now.clone(), 1, false)))
            }
            Operation::Update { document, .. } | Operation::Recover { document, .. } => {
                let (doc, bid) = self.check_document(document)?;
                let current = live(current, &bid)?;
                let old = current.bid_document()?;
                if matches!(op, Operation::Update { .. }) {
                    signed_by(&old, signer, signer_key, &old.authentication).map_err(|e| {
                        e.unwrap_or(OperationError::NotAuthenticationKey {
                            op: "update",
                            signer: signer.to_string(),
                        })
                    })?;
                    if control(&old) != control(&doc) {
                        return Err(OperationError::ControlChanged);
                    }
                } else {
                    signed_by(&old, signer, signer_key, old.recovery()).map_err(|e| {
                        e.unwrap_or(OperationError::NotRecoveryKey {
                            op: "recover",
                            signer: signer.to_string(),
                        })
                    })?;
                }
                replaces_current(op, &bid, &current)?;
                Ok((
                    bid,
                    record(
                        doc.to_value(),
                        current.created.clone(),
                        current.version_id + 1,
                        false,
                    ),
                ))
            }
            Operation::Deactivate { id, .. } => {
                let bid: Bid = id
                    .parse()
                    .map_err(|e| OperationError::Document(DocumentError::InvalidId(e)))?;
                let current = live(current, &bid)?;
                let old = current.bid_document()?;
                signed_by(&old, signer, signer_key, old.recovery()).map_err(|e| {
                    e.unwrap_or(OperationError::NotRecoveryKey {
                        op: "deactivate",
                        signer: signer.to_string(),
                    })
                })?;
                replaces_current(op, &bid, &current)?;
                let emptied = json!({ "@context": [DID_CONTEXT], "id": bid.to_string() });
                Ok((
                    bid,
                    record(
                        emptied,
                        current.created.clone(),
                        current.version_id + 1,
                        true,
                    ),
                ))
            }
            Operation::Delegate { .. }
            | Operation::Bind { .. }
            | Operation::Unbind { .. }
            | Operation::Link { .. }
            | Operation::Unlink { .. }
            | Operation::Anchor { .. } => Err(OperationError::Malformed(format!(
                "{} is a namespace operation, not a DID operation",
                op.name()
            ))),
        }
    }
}

/// Checks that `op` replaces the current version of `bid`, when it names one. One that names
/// none is judged by the other rules alone: only blocks certified before the rule hold such
/// operations, since [`admit`] refuses them at submission.
fn replaces_current(op: &Operation, bid: &Bid, current: &DidRecord) -> Result<(), OperationError> {
    match op.previous_version_id() {
        Some(named) if named != current.version_id => Err(OperationError::VersionConflict {
            op: op.name(),
            did: bid.to_string(),
            named,
            current: current.version_id,
        }),
        _ => Ok(()),
    }
}

/// Whether a new transaction may enter the pool: an update, recover or deactivate must name the
/// version it replaces (`previousVersionId`). Run on every submission (the registrar's and the
/// ones other validators forward), never on blocks already certified, which the rules re-execute
/// as they were written. An operation that does not parse is left to the rules, which word why.
pub fn admit(operation: &Value) -> Result<(), OperationError> {
    // Only the operations that replace a version have anything to check: a create (most of a
    // busy registrar's writes) is not read into an `Operation` here, which copies its whole
    // document, on every submission.
    if !matches!(
        operation.get("type").and_then(Value::as_str),
        Some("update" | "recover" | "deactivate")
    ) {
        return Ok(());
    }
    let Ok(op) = Operation::deserialize(operation) else {
        return Ok(());
    };
    if op.replaces_version() && op.previous_version_id().is_none() {
        return Err(OperationError::MissingPreviousVersion { op: op.name() });
    }
    Ok(())
}

fn live(current: Option<DidRecord>, bid: &Bid) -> Result<DidRecord, OperationError> {
    let current = current.ok_or_else(|| OperationError::NotFound(bid.to_string()))?;
    if current.deactivated {
        return Err(OperationError::Deactivated(bid.to_string()));
    }
    Ok(current)
}

/// The keys that control a DID: its authentication and recovery references and their keys.
fn control(doc: &BidDocument) -> Vec<(String, String, Option<String>)> {
    let mut out: Vec<(String, String, Option<String>)> = doc
        .authentication
        .iter()
        .map(|id| {
            (
                "authentication".to_string(),
                id.clone(),
                doc.find_key(id).map(|k| k.public_key_hex.to_lowercase()),
            )
        })
        .chain(doc.recovery().iter().map(|id| {
            (
                "recovery".to_string(),
                id.clone(),
                doc.find_key(id).map(|k| k.public_key_hex.to_lowercase()),
            )
        }))
        .collect();
    out.sort();
    out
}

/// Checks that `signer` is in `allowed` and that the document gives it `signer_key`.
/// `Err(None)`: not in the list; `Err(Some(e))`: in the list with another key.
fn signed_by(
    doc: &BidDocument,
    signer: &str,
    signer_key: &PublicKey,
    allowed: &[String],
) -> Result<(), Option<OperationError>> {
    if !allowed.iter().any(|a| a == signer) {
        return Err(None);
    }
    let entry = doc.find_key(signer).ok_or(None)?;
    // Keys are equal when their encoded bytes are, so compare those rather than parse the entry
    // (which decompresses a curve point, on every create).
    match hex::decode(&entry.public_key_hex) {
        Ok(bytes) if bytes == signer_key.encoded_bytes() => Ok(()),
        _ => Err(Some(OperationError::SignerKeyMismatch(signer.to_string()))),
    }
}

impl StateMachine for BidStateMachine {
    type Rejection = OperationError;

    fn execute(
        &self,
        tx: &VerifiedTransaction,
        ctx: &ExecContext<'_>,
        state: &dyn StateView,
    ) -> Result<Result<Writes, OperationError>, LedgerError> {
        let body = &tx.tx().body;
        // Read from the borrowed value: no copy of the whole operation per transaction.
        let op: Operation = match Operation::deserialize(&body.operation) {
            Ok(op) => op,
            Err(e) => return Ok(Err(OperationError::Malformed(e.to_string()))),
        };
        if let Operation::Anchor {
            ac,
            genesis,
            header,
        } = &op
        {
            return crate::anchor::execute(
                ac,
                genesis.as_deref(),
                header,
                &body.signer,
                tx.key(),
                state,
                ctx,
            );
        }
        if let Some(op) = op.namespace_operation() {
            return crate::namespace::execute(op, self.ac_code, &body.signer, tx.key(), state, ctx);
        }
        let Some(did) = op.did() else {
            return Ok(Err(OperationError::Malformed(
                "the operation names no DID".into(),
            )));
        };
        let bid: Bid = match did.parse() {
            Ok(b) => b,
            Err(e) => return Ok(Err(OperationError::Document(DocumentError::InvalidId(e)))),
        };
        let key = did_key(&bid);
        let current = match state.get(&key)? {
            Some(text) => Some(
                serde_json::from_str::<DidRecord>(&text)
                    .map_err(|e| LedgerError::Corrupt(format!("{key}: {e}")))?,
            ),
            None => None,
        };
        Ok(self
            .apply(&op, &body.signer, tx.key(), current, ctx)
            .map(|(written, record)| {
                // The key was just built for this BID; Base58 only for another one.
                let key = if written == bid {
                    key
                } else {
                    did_key(&written)
                };
                vec![(key, serde_json::to_string(&record).unwrap_or_default())]
            }))
    }
}
