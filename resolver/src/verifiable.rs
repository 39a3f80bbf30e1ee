//! Verifiable answers: the ledger proof a resolution carries, and its offline check.
//!
//! Asked with `?proof=true`, a resolution carries a [`RecordProof`] as JSON: in
//! `didResolutionMetadata.ledgerProof` on the DID Resolution door (`/1.0/identifiers/{did}`), in
//! `data.ledgerProof` on the BID-protocol door (`/{bid}`). Its members (camelCase):
//!
//! | member | content |
//! |---|---|
//! | `key` | the state key, `did/<bid>` ([`did_key`]) |
//! | `value` | the stored [`DidRecord`] as JSON text, or `null`: the DID is not registered |
//! | `proof` | `{leaf, siblings}`: the sparse Merkle path from the key's leaf to the state root |
//! | `anchor` | `{header, certificate}`: the block header whose `stateRoot` the path reaches, and the quorum of validator votes on it |
//!
//! [`verify_result`] checks a saved result with nothing but the validators' public keys
//! ([`TrustAnchor`]): that a quorum of them certified the header, that the Merkle path leads from
//! the proven value to the certified state root, that the proven key is the state key of the DID
//! the result is about, and that what the result says (the document, its metadata, not found,
//! deactivated) is exactly what the proven record renders to. Each failure is a distinct
//! [`VerifyError`] that says what failed.
//!
//! The daemon's `GET /1.0/genesis` serves the chain's genesis, the file `sparkid verify --genesis`
//! reads. Fetching it from the resolver you are about to check is only good for development: in
//! production, obtain the genesis (or the validator keys) from the chain's operators.

use std::fmt;

use serde_json::Value;
use sparkid_bid::Bid;
use sparkid_ledger::block::CertificateError;
use sparkid_ledger::smt::ProofError;
use sparkid_ledger::{Genesis, Hash, Ledger, LedgerError, RecordProof, ValidatorSet};
use sparkid_registrar::{did_key, DidRecord};
use thiserror::Error;

pub use crate::result::LEDGER_PROOF;

/// A DID's ledger record together with the proof of it (or of its absence), read from one
/// consistent snapshot of the ledger.
#[derive(Debug, Clone)]
pub struct ProvenDid {
    /// The proof, anchored to the newest certified header.
    pub proof: RecordProof,
    /// The proven record, parsed; none when the DID is not registered.
    pub record: Option<DidRecord>,
}

impl ProvenDid {
    /// The proof as JSON, the value of `ledgerProof`.
    pub fn proof_json(&self) -> Value {
        proof_json(&self.proof)
    }
}

/// Why a proof could not be built.
#[derive(Debug, Error)]
pub enum ProveError {
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The stored value is not a DID record.
    #[error("the stored value of {key} is not a DID record: {error}")]
    Record {
        /// The state key.
        key: String,
        /// The parse error.
        error: String,
    },
}

/// A [`RecordProof`] as JSON.
pub fn proof_json(proof: &RecordProof) -> Value {
    // Plain data with string keys: serializing cannot fail.
    serde_json::to_value(proof).unwrap_or(Value::Null)
}

/// The proof of any state key against the newest certified header, as JSON: what
/// `ledgerProof` holds.
pub fn prove_key(ledger: &Ledger, key: &str) -> Result<Value, LedgerError> {
    Ok(proof_json(&ledger.prove(key)?))
}

/// The record of a DID and its proof, from one snapshot. A door that attaches the proof should
/// render its answer from [`ProvenDid::record`], not from a record read earlier (or from a cache):
/// a block committed in between would make the answer and the proof disagree.
pub fn prove_did(ledger: &Ledger, bid: &Bid) -> Result<ProvenDid, ProveError> {
    let key = did_key(bid);
    let proof = ledger.prove(&key)?;
    let record = proof
        .value
        .as_deref()
        .map(serde_json::from_str::<DidRecord>)
        .transpose()
        .map_err(|e| ProveError::Record {
            key: key.clone(),
            error: e.to_string(),
        })?;
    Ok(ProvenDid { proof, record })
}

/// What an offline check trusts: the validators' keys, and the chain id when a genesis gives it.
#[derive(Debug, Clone)]
pub struct TrustAnchor {
    validators: ValidatorSet,
    chain_id: Option<String>,
}

impl TrustAnchor {
    /// Trusts `validators`, and answers of chain `chain_id` only when given.
    pub fn new(validators: ValidatorSet, chain_id: Option<String>) -> TrustAnchor {
        TrustAnchor {
            validators,
            chain_id,
        }
    }

    /// The validators and chain id of a genesis.
    pub fn from_genesis(genesis: &Genesis) -> Result<TrustAnchor, VerifyError> {
        let validators = genesis
            .validator_set()
            .map_err(|e| VerifyError::Validators(e.to_string()))?;
        Ok(TrustAnchor {
            validators,
            chain_id: Some(genesis.chain_id.clone()),
        })
    }

    /// Reads a genesis file's text (JSON).
    pub fn from_genesis_json(text: &str) -> Result<TrustAnchor, VerifyError> {
        let genesis: Genesis = serde_json::from_str(text)
            .map_err(|e| VerifyError::Validators(format!("the genesis is not valid: {e}")))?;
        TrustAnchor::from_genesis(&genesis)
    }

    /// Reads encoded validator public keys (hex, `b06566…`), separated by commas or whitespace,
    /// in any order. The chain id is then not checked.
    pub fn from_encoded_keys(text: &str) -> Result<TrustAnchor, VerifyError> {
        let keys: Vec<String> = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if keys.is_empty() {
            return Err(VerifyError::Validators(
                "no validator key given (encoded public keys, b06566...)".into(),
            ));
        }
        let validators = ValidatorSet::from_encoded(&keys)
            .map_err(|e| VerifyError::Validators(e.to_string()))?;
        Ok(TrustAnchor {
            validators,
            chain_id: None,
        })
    }

    /// The validator set.
    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }
}

/// Why a saved result does not verify. Each variant says what failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifyError {
    /// The validator keys or genesis given to the check are unusable.
    #[error("the validator keys: {0}")]
    Validators(String),
    /// The saved result is not JSON.
    #[error("the result is not JSON: {0}")]
    NotJson(String),
    /// The result carries no ledger proof.
    #[error("the result carries no ledger proof ({0} is missing): resolve with ?proof=true")]
    MissingProof(&'static str),
    /// The ledger proof does not have the [`RecordProof`] shape.
    #[error("the ledger proof is malformed: {0}")]
    MalformedProof(String),
    /// The result is of a kind a ledger proof cannot support.
    #[error("this result cannot be verified: {0}")]
    Unverifiable(String),
    /// The DID the result is about is not a valid BID.
    #[error("{did:?} is not a valid BID: {error}")]
    InvalidDid {
        /// The DID.
        did: String,
        /// Why.
        error: String,
    },
    /// The proof is about another state key than the DID's.
    #[error("the proof is for state key {got:?}, but {did} is stored under {expected:?}")]
    KeyMismatch {
        /// The DID the result is about.
        did: String,
        /// Its state key.
        expected: String,
        /// The proof's key.
        got: String,
    },
    /// The header is from another chain than the genesis.
    #[error(
        "the proof's block header is for chain {got:?}, the genesis is for chain {expected:?}"
    )]
    WrongChain {
        /// The genesis chain id.
        expected: String,
        /// The header's.
        got: String,
    },
    /// A validator-set hand-off the proof carries does not hold.
    #[error("validator-set hand-off: {0}")]
    Handoff(String),
    /// The commit certificate does not hold under the validators' keys.
    #[error("certificate of block {height}: {error}")]
    Certificate {
        /// The header's height.
        height: u64,
        /// Which vote or which quorum failed.
        error: CertificateError,
    },
    /// The Merkle path does not lead from the value to the certified state root.
    #[error("Merkle path of {key} to the state root of block {height}: {error}")]
    Path {
        /// The state key.
        key: String,
        /// The header's height.
        height: u64,
        /// What failed (root mismatch, value mismatch, ...).
        error: ProofError,
    },
    /// The proven value is not a DID record.
    #[error("the proven value of {key} is not a DID record: {error}")]
    MalformedRecord {
        /// The state key.
        key: String,
        /// The parse error.
        error: String,
    },
    /// The result claims another outcome than the proof shows.
    #[error("the result says {claimed}, but the proof shows {proven}")]
    OutcomeMismatch {
        /// What the result says.
        claimed: String,
        /// What the proof shows.
        proven: String,
    },
    /// The result's document is not the rendering of the proven record.
    #[error("the document differs from the proven record at {member}: the result has {result}, the proven record renders {proven}")]
    DocumentDiffers {
        /// The first member (JSON path) that differs.
        member: String,
        /// The result's value there (or `absent`).
        result: String,
        /// The proven record's value there (or `absent`).
        proven: String,
    },
    /// A document metadata member disagrees with the proven record.
    #[error("didDocumentMetadata.{member} is {result}, the proven record has {proven}")]
    MetadataDiffers {
        /// The member.
        member: &'static str,
        /// The result's value (or `absent`).
        result: String,
        /// The proven record's value.
        proven: String,
    },
}

/// What a verified result proves about its DID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvenOutcome {
    /// Registered and live, at this version.
    Live {
        /// The record's `versionId`.
        version_id: u64,
    },
    /// Deactivated, at this version.
    Deactivated {
        /// The record's `versionId`.
        version_id: u64,
    },
    /// Not registered.
    Absent,
}

/// What a successful check covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The DID.
    pub did: String,
    /// What the proof shows about it.
    pub outcome: ProvenOutcome,
    /// The chain id in the certified header.
    pub chain_id: String,
    /// The certified header's height.
    pub height: u64,
    /// The certified header's hash.
    pub block_hash: Hash,
    /// Its state root.
    pub state_root: Hash,
    /// The votes in its certificate.
    pub votes: usize,
    /// The validators.
    pub validators: usize,
    /// The quorum.
    pub quorum: usize,
    /// The validator-set hand-offs checked on the way from the trusted set.
    pub handoffs: usize,
}

impl fmt::Display for Verified {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.outcome {
            ProvenOutcome::Live { version_id } => {
                writeln!(f, "verified: {} is live, versionId {version_id}", self.did)?
            }
            ProvenOutcome::Deactivated { version_id } => writeln!(
                f,
                "verified: {} is deactivated, versionId {version_id}",
                self.did
            )?,
            ProvenOutcome::Absent => writeln!(f, "verified: {} is not registered", self.did)?,
        }
        writeln!(f, "  chain:      {}", self.chain_id)?;
        writeln!(f, "  height:     {}", self.height)?;
        writeln!(f, "  block hash: {}", self.block_hash)?;
        writeln!(f, "  state root: {}", self.state_root)?;
        write!(
            f,
            "  certified by {} of {} validators (quorum {})",
            self.votes, self.validators, self.quorum
        )?;
        if self.handoffs > 0 {
            write!(
                f,
                "\n  validator set: {} hand-off(s) checked from the trusted keys",
                self.handoffs
            )?;
        }
        Ok(())
    }
}

/// What the saved result claims.
enum Claim<'a> {
    /// A live document, to compare with the rendering of the proven record.
    Live(&'a Value),
    /// The DID is deactivated.
    Deactivated,
    /// The DID is not registered.
    NotFound,
    /// BID protocol `errorCode` 6: not registered or deactivated.
    NotFoundOrDeactivated,
}

/// Which door the result came from, which says how the proven record renders.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `application/did-resolution`: DID Core document and document metadata.
    DidResolution,
    /// The BID protocol envelope: the native document.
    BidProtocol,
}

/// Checks a saved result (its JSON text) offline; see [`verify_result`].
pub fn verify_text(
    text: &str,
    anchor: &TrustAnchor,
    expected_did: Option<&str>,
) -> Result<Verified, VerifyError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| VerifyError::NotJson(e.to_string()))?;
    verify_result(&value, anchor, expected_did)
}

/// Checks a saved resolution result offline, with only the validators' keys.
///
/// `result` is the full `application/did-resolution` JSON with
/// `didResolutionMetadata.ledgerProof`, or a BID-protocol answer (`{errorCode, data, message}`)
/// of `GET /{bid}?proof=true` with `data.ledgerProof`. The DID checked is `expected_did` if
/// given, else the document's `id`, else (for not-found and deactivated answers, which carry no
/// document) the DID the proof is about.
pub fn verify_result(
    result: &Value,
    anchor: &TrustAnchor,
    expected_did: Option<&str>,
) -> Result<Verified, VerifyError> {
    let (form, claim, proof_value, metadata) = read_result(result)?;
    let proof: RecordProof = serde_json::from_value(proof_value.clone())
        .map_err(|e| VerifyError::MalformedProof(e.to_string()))?;
    let header = &proof.anchor.header;

    // Which DID: the one asked for, else the document's, else the proof's.
    let did = match (expected_did, &claim) {
        (Some(did), _) => did.to_string(),
        (None, Claim::Live(doc)) => doc
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| VerifyError::DocumentDiffers {
                member: "didDocument.id".into(),
                result: "absent".into(),
                proven: "the DID".into(),
            })?
            .to_string(),
        (None, _) => proof
            .key
            .strip_prefix("did/")
            .unwrap_or(&proof.key)
            .to_string(),
    };
    let bid: Bid = did.parse().map_err(|e| VerifyError::InvalidDid {
        did: did.clone(),
        error: format!("{e}"),
    })?;
    // A bare `did:bid:<ac>` is the AC code's delegation (crate::subchain).
    let expected_key = if bid.is_ac_code_only() {
        let ac = bid.ac_code().map(|a| a.to_string()).unwrap_or_default();
        sparkid_registrar::namespace::namespace_key(sparkid_registrar::Kind::Ac, &ac)
    } else {
        did_key(&bid)
    };
    if proof.key != expected_key {
        return Err(VerifyError::KeyMismatch {
            did,
            expected: expected_key,
            got: proof.key.clone(),
        });
    }

    if let Some(chain) = &anchor.chain_id {
        if &header.chain_id != chain {
            return Err(VerifyError::WrongChain {
                expected: chain.clone(),
                got: header.chain_id.clone(),
            });
        }
    }
    // The validator-set hand-offs from the trusted (genesis) set to the anchor's height, each
    // checked with the set before it; none when the set never changed.
    let schedule = proof
        .schedule(&anchor.validators)
        .map_err(|error| VerifyError::Handoff(error.to_string()))?;
    let signers = schedule.at(header.height);
    proof
        .anchor
        .certificate
        .verify(header, signers)
        .map_err(|error| VerifyError::Certificate {
            height: header.height,
            error,
        })?;
    proof
        .proof
        .verify(
            &header.state_root,
            &proof.key,
            proof.value.as_deref().map(str::as_bytes),
        )
        .map_err(|error| VerifyError::Path {
            key: proof.key.clone(),
            height: header.height,
            error,
        })?;

    // The proven value: a DID's record, or for a bare `did:bid:<ac>` the AC code's delegation.
    fn proven<T: serde::de::DeserializeOwned>(
        proof: &RecordProof,
    ) -> Result<Option<T>, VerifyError> {
        proof
            .value
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| VerifyError::MalformedRecord {
                key: proof.key.clone(),
                error: e.to_string(),
            })
    }
    let outcome = if bid.is_ac_code_only() {
        let delegation: Option<sparkid_registrar::NamespaceRecord> = proven(&proof)?;
        check_ac_claim(form, &claim, metadata, delegation.as_ref(), &did)?
    } else {
        let record: Option<DidRecord> = proven(&proof)?;
        check_claim(form, &claim, metadata, record.as_ref())?
    };

    Ok(Verified {
        did: bid.to_string(),
        outcome,
        chain_id: header.chain_id.clone(),
        height: header.height,
        block_hash: header.hash(),
        state_root: header.state_root,
        votes: proof.anchor.certificate.votes.len(),
        validators: signers.keys().len(),
        quorum: signers.quorum(),
        handoffs: proof.handoffs.len(),
    })
}

type ReadResult<'a> = (Form, Claim<'a>, &'a Value, Option<&'a Value>);

/// Finds the door, the claim, the proof and the document metadata in a saved result.
fn read_result(result: &Value) -> Result<ReadResult<'_>, VerifyError> {
    if !result.is_object() {
        return Err(VerifyError::Unverifiable(
            "a resolution result is a JSON object".into(),
        ));
    }
    if let Some(code) = result.get("errorCode") {
        let proof = result
            .pointer("/data/ledgerProof")
            .filter(|v| !v.is_null())
            .ok_or(VerifyError::MissingProof("data.ledgerProof"))?;
        let claim =
            match code.as_u64() {
                Some(0) => match result.pointer("/data/didDocument") {
                    Some(doc) if doc.is_object() => Claim::Live(doc),
                    _ => return Err(VerifyError::Unverifiable(
                        "only document answers (GET /{bid}) are verifiable, not sub-path answers"
                            .into(),
                    )),
                },
                Some(6) => Claim::NotFoundOrDeactivated,
                // A bare AC code that is not delegated.
                Some(10) => Claim::NotFound,
                _ => {
                    return Err(VerifyError::Unverifiable(format!(
                        "errorCode {code} is neither a document (0) nor not found (6)"
                    )))
                }
            };
        return Ok((Form::BidProtocol, claim, proof, None));
    }
    let proof = result
        .pointer("/didResolutionMetadata/ledgerProof")
        .filter(|v| !v.is_null())
        .ok_or(VerifyError::MissingProof(
            "didResolutionMetadata.ledgerProof",
        ))?;
    let metadata = result.get("didDocumentMetadata");
    let document = result.get("didDocument").filter(|d| !d.is_null());
    let claim = if let Some(error) = result.pointer("/didResolutionMetadata/error") {
        let name = error
            .get("type")
            .and_then(Value::as_str)
            .or_else(|| error.as_str())
            .unwrap_or_default();
        let name = name.rsplit('#').next().unwrap_or(name);
        if name == "NOT_FOUND" || name == "notFound" {
            Claim::NotFound
        } else {
            return Err(VerifyError::Unverifiable(format!(
                "the result is the error {name:?}; a ledger proof supports documents, \
                 deactivation and NOT_FOUND"
            )));
        }
    } else if metadata
        .and_then(|m| m.get("deactivated"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        if let Some(doc) = document {
            return Err(VerifyError::DocumentDiffers {
                member: "didDocument".into(),
                result: brief(doc),
                proven: "null (a deactivated DID has no document)".into(),
            });
        }
        Claim::Deactivated
    } else {
        match document {
            Some(doc) => Claim::Live(doc),
            None => {
                return Err(VerifyError::Unverifiable(
                    "the result has neither a document, nor deactivated: true, nor an error".into(),
                ))
            }
        }
    };
    Ok((Form::DidResolution, claim, proof, metadata))
}

fn describe(record: Option<&DidRecord>) -> String {
    match record {
        None => "the DID is not registered".into(),
        Some(r) if r.deactivated => format!("the DID deactivated (versionId {})", r.version_id),
        Some(r) => format!("a live document (versionId {})", r.version_id),
    }
}

fn check_claim(
    form: Form,
    claim: &Claim<'_>,
    metadata: Option<&Value>,
    record: Option<&DidRecord>,
) -> Result<ProvenOutcome, VerifyError> {
    let mismatch = |claimed: &str| VerifyError::OutcomeMismatch {
        claimed: claimed.into(),
        proven: describe(record),
    };
    match (claim, record) {
        (Claim::Live(doc), Some(r)) if !r.deactivated => {
            let rendered = match form {
                Form::BidProtocol => r.native_document(),
                Form::DidResolution => r.bid_document().map(|d| d.to_did_core()).map_err(|e| {
                    VerifyError::MalformedRecord {
                        key: "the record's document".into(),
                        error: e.to_string(),
                    }
                })?,
            };
            if let Some((member, result, proven)) = first_difference("didDocument", doc, &rendered)
            {
                return Err(VerifyError::DocumentDiffers {
                    member,
                    result,
                    proven,
                });
            }
            if form == Form::DidResolution {
                check_metadata(metadata, r)?;
            }
            Ok(ProvenOutcome::Live {
                version_id: r.version_id,
            })
        }
        (Claim::Live(_), _) => Err(mismatch("a live document")),
        (Claim::Deactivated, Some(r)) if r.deactivated => {
            check_metadata(metadata, r)?;
            Ok(ProvenOutcome::Deactivated {
                version_id: r.version_id,
            })
        }
        (Claim::Deactivated, _) => Err(mismatch("the DID is deactivated")),
        (Claim::NotFound, None) | (Claim::NotFoundOrDeactivated, None) => Ok(ProvenOutcome::Absent),
        (Claim::NotFoundOrDeactivated, Some(r)) if r.deactivated => {
            Ok(ProvenOutcome::Deactivated {
                version_id: r.version_id,
            })
        }
        (Claim::NotFound, Some(_)) => Err(mismatch("NOT_FOUND")),
        (Claim::NotFoundOrDeactivated, Some(_)) => {
            Err(mismatch("not found or deactivated (errorCode 6)"))
        }
    }
}

/// [`check_claim`] for a bare `did:bid:<ac>`, whose proven record is the AC code's delegation.
fn check_ac_claim(
    form: Form,
    claim: &Claim<'_>,
    metadata: Option<&Value>,
    delegation: Option<&sparkid_registrar::NamespaceRecord>,
    did: &str,
) -> Result<ProvenOutcome, VerifyError> {
    match (claim, delegation) {
        (Claim::Live(doc), Some(d)) => {
            let rendered = match form {
                Form::DidResolution => crate::ac_code::ac_document(did, d),
                Form::BidProtocol => crate::ac_code::ac_native_document(did, d),
            };
            if let Some((member, result, proven)) = first_difference("didDocument", doc, &rendered)
            {
                return Err(VerifyError::DocumentDiffers {
                    member,
                    result,
                    proven,
                });
            }
            if form == Form::DidResolution {
                let expected = crate::ac_code::ac_metadata(d);
                for (member, proven) in &expected {
                    let got = metadata.and_then(|m| m.get(member));
                    if got != Some(proven) {
                        return Err(VerifyError::MetadataDiffers {
                            member: match member.as_str() {
                                "created" => "created",
                                "updated" => "updated",
                                _ => "versionId",
                            },
                            result: got.map(brief).unwrap_or_else(|| "absent".into()),
                            proven: brief(proven),
                        });
                    }
                }
            }
            Ok(ProvenOutcome::Live {
                version_id: d.version_id,
            })
        }
        (Claim::NotFound | Claim::NotFoundOrDeactivated, None) => Ok(ProvenOutcome::Absent),
        (Claim::Live(_), None) => Err(VerifyError::OutcomeMismatch {
            claimed: "a live document".into(),
            proven: "the AC code is not delegated".into(),
        }),
        (_, Some(d)) => Err(VerifyError::OutcomeMismatch {
            claimed: "not found or deactivated".into(),
            proven: format!("the AC code is delegated (versionId {})", d.version_id),
        }),
        (Claim::Deactivated, None) => Err(VerifyError::OutcomeMismatch {
            claimed: "deactivated".into(),
            proven: "the AC code is not delegated".into(),
        }),
    }
}

/// `versionId` and `deactivated` must be those of the record; `created` and `updated`, when
/// present, too.
fn check_metadata(metadata: Option<&Value>, record: &DidRecord) -> Result<(), VerifyError> {
    let get = |member: &str| metadata.and_then(|m| m.get(member));
    let version = record.version_id.to_string();
    match get("versionId") {
        Some(Value::String(v)) if *v == version => {}
        other => {
            return Err(VerifyError::MetadataDiffers {
                member: "versionId",
                result: other.map(brief).unwrap_or_else(|| "absent".into()),
                proven: format!("{version:?}"),
            })
        }
    }
    // Absent means false (DID Resolution: present only when true, or false).
    let deactivated = get("deactivated").unwrap_or(&Value::Bool(false));
    if deactivated != &Value::Bool(record.deactivated) {
        return Err(VerifyError::MetadataDiffers {
            member: "deactivated",
            result: brief(deactivated),
            proven: record.deactivated.to_string(),
        });
    }
    for (member, proven) in [("created", &record.created), ("updated", &record.updated)] {
        if let Some(v) = get(member) {
            if v.as_str() != Some(proven.as_str()) {
                return Err(VerifyError::MetadataDiffers {
                    member,
                    result: brief(v),
                    proven: format!("{proven:?}"),
                });
            }
        }
    }
    Ok(())
}

/// A short rendering of a JSON value for an error message.
fn brief(value: &Value) -> String {
    const MAX: usize = 120;
    let text = value.to_string();
    if text.chars().count() <= MAX {
        return text;
    }
    let cut: String = text.chars().take(MAX).collect();
    format!("{cut}…")
}

/// The first member (a JSON path under `path`) where `result` and `proven` differ, with both
/// values there (`absent` for a missing member).
fn first_difference(
    path: &str,
    result: &Value,
    proven: &Value,
) -> Option<(String, String, String)> {
    if result == proven {
        return None;
    }
    match (result, proven) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let member = format!("{path}.{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => {
                        if let Some(found) = first_difference(&member, x, y) {
                            return Some(found);
                        }
                    }
                    (Some(x), None) => return Some((member, brief(x), "absent".into())),
                    (None, Some(y)) => return Some((member, "absent".into(), brief(y))),
                    (None, None) => {}
                }
            }
            None
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                if let Some(found) = first_difference(&format!("{path}[{i}]"), x, y) {
                    return Some(found);
                }
            }
            let i = a.len().min(b.len());
            let at = |v: &Vec<Value>| v.get(i).map(brief).unwrap_or_else(|| "absent".into());
            Some((format!("{path}[{i}]"), at(a), at(b)))
        }
        _ => Some((path.to_string(), brief(result), brief(proven))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sparkid_bid::PrivateKey;
    use sparkid_registrar::Operation;
    use sparkid_test_support::{assert_included, genesis, DevChain};

    const CHAIN: &str = "verify-test";

    /// A real ledger in a temporary directory, `n` validators, every block signed by all.
    fn chain_of(n: usize) -> DevChain {
        let validators: Vec<PrivateKey> = (0..n).map(|_| PrivateKey::generate()).collect();
        let genesis = genesis(CHAIN, &validators.iter().collect::<Vec<_>>());
        DevChain::for_genesis(genesis, validators)
    }

    fn anchor(chain: &DevChain) -> TrustAnchor {
        TrustAnchor::from_genesis(chain.ledger.genesis()).unwrap()
    }

    /// Registers a new DID with a service; returns its key and BID.
    fn register(chain: &mut DevChain) -> (PrivateKey, Bid) {
        chain.register(Some(
            json!({"service": [{"id": "#files", "type": "DIDStorage",
            "serviceEndpoint": "https://files.example"}]}),
        ))
    }

    /// A DID Resolution result as the resolution door renders it, with the proof.
    fn resolution(chain: &DevChain, bid: &Bid) -> Value {
        let proven = prove_did(&chain.ledger, bid).unwrap();
        let proof = proven.proof_json();
        match proven.record {
            None => json!({
                "didDocument": null,
                "didResolutionMetadata": {
                    "error": {"type": "https://www.w3.org/ns/did#NOT_FOUND", "title": "The DID was not found."},
                    "ledgerProof": proof,
                },
                "didDocumentMetadata": {},
            }),
            Some(r) => {
                let metadata = json!({"created": r.created, "updated": r.updated,
                    "versionId": r.version_id.to_string(), "deactivated": r.deactivated});
                let document = if r.deactivated {
                    Value::Null
                } else {
                    r.bid_document().unwrap().to_did_core()
                };
                json!({
                    "didDocument": document,
                    "didResolutionMetadata": {"contentType": "application/did", "ledgerProof": proof},
                    "didDocumentMetadata": metadata,
                })
            }
        }
    }

    #[test]
    fn a_live_document_verifies_and_every_tampering_fails_precisely() {
        let mut chain = chain_of(4);
        let (_, bid) = register(&mut chain);
        let (_, other) = register(&mut chain);
        let result = resolution(&chain, &bid);
        let anchor = anchor(&chain);
        let ok = verify_result(&result, &anchor, None).unwrap();
        assert_eq!(ok.did, bid.to_string());
        assert_eq!(ok.outcome, ProvenOutcome::Live { version_id: 1 });
        assert_eq!(ok.height, 2);
        assert_eq!(ok.votes, 4);
        assert_eq!(ok.quorum, 3);
        assert!(verify_result(&result, &anchor, Some(&bid.to_string())).is_ok());

        // The document.
        let mut t = result.clone();
        t["didDocument"]["service"][0]["serviceEndpoint"] = json!("https://evil.example");
        match verify_result(&t, &anchor, None) {
            Err(VerifyError::DocumentDiffers { member, .. }) => {
                assert_eq!(member, "didDocument.service[0].serviceEndpoint")
            }
            other => panic!("{other:?}"),
        }
        let mut t = result.clone();
        t["didDocument"]["verificationMethod"][0]
            .as_object_mut()
            .unwrap()
            .remove("controller");
        let e = verify_result(&t, &anchor, None).unwrap_err();
        assert!(
            e.to_string()
                .contains("didDocument.verificationMethod[0].controller"),
            "{e}"
        );

        // The metadata.
        let mut t = result.clone();
        t["didDocumentMetadata"]["versionId"] = json!("7");
        assert!(matches!(
            verify_result(&t, &anchor, None),
            Err(VerifyError::MetadataDiffers {
                member: "versionId",
                ..
            })
        ));
        let mut t = result.clone();
        t["didDocumentMetadata"]["deactivated"] = json!(true);
        assert!(matches!(
            verify_result(&t, &anchor, None),
            Err(VerifyError::DocumentDiffers { .. })
        ));

        // The proven value: its hash is no longer the leaf's.
        let mut t = result.clone();
        let value = t["didResolutionMetadata"]["ledgerProof"]["value"]
            .as_str()
            .unwrap()
            .replace("files.example", "evil.example");
        t["didResolutionMetadata"]["ledgerProof"]["value"] = json!(value);
        assert!(matches!(
            verify_result(&t, &anchor, None),
            Err(VerifyError::Path {
                error: ProofError::ValueMismatch,
                ..
            })
        ));

        // A sibling of the Merkle path.
        let mut t = result.clone();
        t["didResolutionMetadata"]["ledgerProof"]["proof"]["siblings"][0] =
            json!(Hash([7; 32]).to_hex());
        assert!(matches!(
            verify_result(&t, &anchor, None),
            Err(VerifyError::Path {
                error: ProofError::RootMismatch { .. },
                ..
            })
        ));

        // The certificate: a vote, then the quorum.
        let mut t = result.clone();
        let votes =
            &mut t["didResolutionMetadata"]["ledgerProof"]["anchor"]["certificate"]["votes"];
        let second = votes[1]["signature"].clone();
        votes[0]["signature"] = second;
        match verify_result(&t, &anchor, None) {
            Err(VerifyError::Certificate {
                error: CertificateError::BadVote(v),
                ..
            }) => assert_eq!(v, chain.signers[0].public_key().to_encoded()),
            other => panic!("{other:?}"),
        }
        let mut t = result.clone();
        let votes = t["didResolutionMetadata"]["ledgerProof"]["anchor"]["certificate"]["votes"]
            .as_array_mut()
            .unwrap();
        votes.truncate(2);
        assert!(matches!(
            verify_result(&t, &anchor, None),
            Err(VerifyError::Certificate {
                error: CertificateError::NoQuorum { got: 2, needed: 3 },
                ..
            })
        ));

        // The header (its state root): the certificate no longer names it.
        let mut t = result.clone();
        t["didResolutionMetadata"]["ledgerProof"]["anchor"]["header"]["stateRoot"] =
            json!(Hash([1; 32]).to_hex());
        assert!(matches!(
            verify_result(&t, &anchor, None),
            Err(VerifyError::Certificate {
                error: CertificateError::WrongBlock { .. },
                ..
            })
        ));

        // Other validators.
        let strangers = TrustAnchor::from_encoded_keys(&format!(
            "{}, {}",
            PrivateKey::generate().public_key().to_encoded(),
            PrivateKey::generate().public_key().to_encoded()
        ))
        .unwrap();
        assert!(matches!(
            verify_result(&result, &strangers, None),
            Err(VerifyError::Certificate {
                error: CertificateError::NotAValidator(_),
                ..
            })
        ));
        let keys: Vec<String> = chain
            .signers
            .iter()
            .map(|k| k.public_key().to_encoded())
            .collect();
        let listed = TrustAnchor::from_encoded_keys(&keys.join("\n")).unwrap();
        assert!(verify_result(&result, &listed, None).is_ok());

        // Another DID's proof, or another DID asked for.
        let mut t = result.clone();
        t["didResolutionMetadata"]["ledgerProof"] =
            resolution(&chain, &other)["didResolutionMetadata"]["ledgerProof"].clone();
        assert!(matches!(
            verify_result(&t, &anchor, None),
            Err(VerifyError::KeyMismatch { .. })
        ));
        assert!(matches!(
            verify_result(&result, &anchor, Some(&other.to_string())),
            Err(VerifyError::KeyMismatch { .. })
        ));

        // No proof.
        let mut t = result.clone();
        t["didResolutionMetadata"]
            .as_object_mut()
            .unwrap()
            .remove("ledgerProof");
        assert_eq!(
            verify_result(&t, &anchor, None),
            Err(VerifyError::MissingProof(
                "didResolutionMetadata.ledgerProof"
            ))
        );
        assert!(matches!(
            verify_text("{nope", &anchor, None),
            Err(VerifyError::NotJson(_))
        ));
    }

    #[test]
    fn absence_and_deactivation_are_proven_too() {
        let mut chain = chain_of(1);
        let (key, bid) = register(&mut chain);
        let anchor = anchor(&chain);
        let stranger: Bid = Bid::derive(&PrivateKey::generate().public_key(), None).unwrap();
        let absent = resolution(&chain, &stranger);
        let ok = verify_result(&absent, &anchor, Some(&stranger.to_string())).unwrap();
        assert_eq!(ok.outcome, ProvenOutcome::Absent);
        // The proof of absence of one DID is not one for another.
        assert!(matches!(
            verify_result(&absent, &anchor, Some(&bid.to_string())),
            Err(VerifyError::KeyMismatch { .. })
        ));
        // A NOT_FOUND claim for a registered DID.
        let mut lie = absent.clone();
        lie["didResolutionMetadata"]["ledgerProof"] =
            resolution(&chain, &bid)["didResolutionMetadata"]["ledgerProof"].clone();
        match verify_result(&lie, &anchor, None) {
            Err(e @ VerifyError::OutcomeMismatch { .. }) => {
                assert!(e.to_string().contains("NOT_FOUND"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        // A document for an absent DID: the proof says otherwise.
        let mut lie = resolution(&chain, &bid);
        lie["didResolutionMetadata"]["ledgerProof"] =
            absent["didResolutionMetadata"]["ledgerProof"].clone();
        assert!(matches!(
            verify_result(&lie, &anchor, None),
            Err(VerifyError::KeyMismatch { .. })
        ));
        assert!(matches!(
            verify_result(&lie, &anchor, Some(&stranger.to_string())),
            Err(VerifyError::OutcomeMismatch { .. })
        ));

        let live = resolution(&chain, &bid);
        assert_included(&chain.submit(
            &format!("{bid}#key-1"),
            &key,
            Operation::Deactivate {
                id: bid.to_string(),
                previous_version_id: None,
            },
        ));
        let gone = resolution(&chain, &bid);
        let ok = verify_result(&gone, &anchor, None).unwrap();
        assert_eq!(ok.did, bid.to_string());
        assert_eq!(ok.outcome, ProvenOutcome::Deactivated { version_id: 2 });
        // The old live answer still verifies against its own (older) header ...
        assert!(verify_result(&live, &anchor, None).is_ok());
        // ... but a live document with the new proof does not.
        let mut stale = live.clone();
        stale["didResolutionMetadata"]["ledgerProof"] =
            gone["didResolutionMetadata"]["ledgerProof"].clone();
        assert!(matches!(
            verify_result(&stale, &anchor, None),
            Err(VerifyError::OutcomeMismatch { .. })
        ));
    }

    #[test]
    fn bid_protocol_answers_verify_against_the_native_document() {
        let mut chain = chain_of(1);
        let (_, bid) = register(&mut chain);
        let anchor = anchor(&chain);
        let proven = prove_did(&chain.ledger, &bid).unwrap();
        let record = proven.record.clone().unwrap();
        let answer = json!({"errorCode": 0, "message": "success",
            "data": {"didDocument": record.native_document(), "ledgerProof": proven.proof_json()}});
        let ok = verify_result(&answer, &anchor, None).unwrap();
        assert_eq!(ok.outcome, ProvenOutcome::Live { version_id: 1 });
        let mut t = answer.clone();
        t["data"]["didDocument"]["updated"] = json!("2000-01-01T00:00:00Z");
        match verify_result(&t, &anchor, None) {
            Err(VerifyError::DocumentDiffers { member, .. }) => {
                assert_eq!(member, "didDocument.updated")
            }
            other => panic!("{other:?}"),
        }
        let stranger: Bid = Bid::derive(&PrivateKey::generate().public_key(), None).unwrap();
        let missing = prove_did(&chain.ledger, &stranger).unwrap();
        let answer = json!({"errorCode": 6, "message": "not found",
            "data": {"ledgerProof": missing.proof_json()}});
        assert_eq!(
            verify_result(&answer, &anchor, None).unwrap().outcome,
            ProvenOutcome::Absent
        );
        assert_eq!(
            verify_result(
                &json!({"errorCode": 6, "message": "not found"}),
                &anchor,
                None
            ),
            Err(VerifyError::MissingProof("data.ledgerProof"))
        );
    }

    #[test]
    fn genesis_and_key_lists_are_read_with_precise_errors() {
        let chain = chain_of(1);
        let text = serde_json::to_string(chain.ledger.genesis()).unwrap();
        assert!(TrustAnchor::from_genesis_json(&text).is_ok());
        assert!(matches!(
            TrustAnchor::from_genesis_json("{}"),
            Err(VerifyError::Validators(_))
        ));
        assert!(matches!(
            TrustAnchor::from_encoded_keys(" \n"),
            Err(VerifyError::Validators(_))
        ));
        assert!(matches!(
            TrustAnchor::from_encoded_keys("b06566zz"),
            Err(VerifyError::Validators(_))
        ));
        // A genesis of another chain with the same validators.
        let mut other = chain.ledger.genesis().clone();
        other.chain_id = "elsewhere".into();
        let mut chain = chain;
        let (_, bid) = register(&mut chain);
        let result = resolution(&chain, &bid);
        assert!(matches!(
            verify_result(&result, &TrustAnchor::from_genesis(&other).unwrap(), None),
            Err(VerifyError::WrongChain { .. })
        ));
    }

    #[test]
    fn differences_are_located() {
        let a = json!({"x": [1, {"y": 2}], "z": 1});
        let b = json!({"x": [1, {"y": 3}], "z": 1});
        assert_eq!(
            first_difference("d", &a, &b),
            Some(("d.x[1].y".into(), "2".into(), "3".into()))
        );
        let c = json!({"x": [1]});
        assert_eq!(
            first_difference("d", &json!({"x": [1, 2]}), &c),
            Some(("d.x[1]".into(), "2".into(), "absent".into()))
        );
        assert_eq!(
            first_difference("d", &json!({"w": 1}), &json!({})),
            Some(("d.w".into(), "1".into(), "absent".into()))
        );
        assert_eq!(first_difference("d", &a, &a), None);
    }
}
