//! The BID resolution protocol (\[RESPROTO\] `星火·链网BID协议V1.9.1.md` §4), for existing BIF
//! clients: `GET /{bid}` and its sub-paths, answered with the protocol's envelope
//! `{"errorCode": n, "data": {…}, "message": "…"}` and the native BID document
//! ([`DidRecord::native_document`]).
//!
//! | GET path | `data` on success |
//! |---|---|
//! | `/{bid}` | `{didDocument}` |
//! | `/{bid}/public-keys` | `{version, id, publicKey: [...]}` |
//! | `/{bid}/public-keys/{keyId}` | `{version, id, publicKey: {...}}` |
//! | `/{bid}/attributes` | `{version, id, attributes}` (`extension.attributes`) |
//! | `/{bid}/acsns` | `{version, id, acsns}` (`extension.acsns`; main-chain BIDs only) |
//! | `/{bid}/verifiableCredentials` | `{version, id, verifiableCredentials}` (`extension.verifiableCredentials`) |
//! | `/{bid}/services?id={serviceId}` | `{version, id, service: {...}}` |
//!
//! `version` is the protocol version, [`PROTOCOL_VERSION`]; `id` is the BID. A key id or service
//! id may be given whole (`did:bid:…#key-1`, percent-encoded: `%23`), as `#key-1`, or as the bare
//! fragment `key-1`.
//!
//! Options (query parameters; others are ignored, as BIF servers do):
//! - `verify=true`, the protocol's "trusted resolution": the document's `extension.delegateSign`
//!   must verify (Ed25519 over the encoded public-key bytes of one of the document's keys, as the
//!   BID SDK signs them, by the `signer` key of a live BID on this ledger); the answer then has
//!   `data.verify: true`, else `errorCode` 9.
//! - `proof=true`, sparkid's verifiable answers: `data.ledgerProof` holds the ledger proof of the
//!   record (see [`crate::verifiable`]); the answer is rendered from the proven record. Also on
//!   `errorCode` 6, as a proof of absence (or of deactivation): then the envelope has `data`
//!   with only `ledgerProof`. `sparkid verify` checks a saved `GET /{bid}?proof=true` answer.
//!
//! Error codes, as this door uses them (the HTTP status is always 200: the protocol carries the
//! outcome in `errorCode`, and BIF clients read it there):
//!
//! | code | when |
//! |---|---|
//! | 0 success | |
//! | 2 error | the ledger failed |
//! | 4 protocol error | the path segment is not a BID; a bad option value; `/services` without `?id=` |
//! | 5 operation not supported | a DID of another method; an unknown sub-path; `/acsns` of a sub-chain BID |
//! | 6 not found | the BID is not registered, or is deactivated (the message says which) |
//! | 8 field not found | the document has no such member, key id or service id |
//! | 9 verify failed | `verify=true` and `delegateSign` is missing or does not verify |
//! | 10 nonexistent chain code info | a sub-chain BID whose AC code this ledger knows nothing of |

use serde_json::{json, Map, Value};
use sparkid_bid::{Bid, PublicKey, Signature};
use sparkid_registrar::DidRecord;
use thiserror::Error;

use crate::ac_code::ac_native_document;
use crate::resolution::Resolver;
use crate::subchain;
use crate::verifiable;

pub use crate::ac_code::PROTOCOL_VERSION;

/// The protocol's error codes (\[RESPROTO\] §4.2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// 0.
    Success,
    /// 1.
    WithoutPermission,
    /// 2.
    Error,
    /// 3.
    ServerTooBusy,
    /// 4.
    ProtocolError,
    /// 5.
    OperationNotSupported,
    /// 6.
    NotFound,
    /// 7.
    ServerNotResponse,
    /// 8.
    FieldNotFound,
    /// 9.
    VerifyFailed,
    /// 10.
    NonexistentChainCode,
}

impl ErrorCode {
    /// The number.
    pub fn code(self) -> u8 {
        match self {
            ErrorCode::Success => 0,
            ErrorCode::WithoutPermission => 1,
            ErrorCode::Error => 2,
            ErrorCode::ServerTooBusy => 3,
            ErrorCode::ProtocolError => 4,
            ErrorCode::OperationNotSupported => 5,
            ErrorCode::NotFound => 6,
            ErrorCode::ServerNotResponse => 7,
            ErrorCode::FieldNotFound => 8,
            ErrorCode::VerifyFailed => 9,
            ErrorCode::NonexistentChainCode => 10,
        }
    }

    /// The protocol's name for it, which begins every `message`.
    pub fn phrase(self) -> &'static str {
        match self {
            ErrorCode::Success => "success",
            ErrorCode::WithoutPermission => "without permission",
            ErrorCode::Error => "error",
            ErrorCode::ServerTooBusy => "server too busy",
            ErrorCode::ProtocolError => "protocol error",
            ErrorCode::OperationNotSupported => "operation not supported",
            ErrorCode::NotFound => "not found",
            ErrorCode::ServerNotResponse => "server not response",
            ErrorCode::FieldNotFound => "field not found",
            ErrorCode::VerifyFailed => "verify failed",
            ErrorCode::NonexistentChainCode => "nonexistent chain code info",
        }
    }
}

/// Why a protocol request failed. Each variant maps to one [`ErrorCode`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BidProtoError {
    /// The path segment is not a BID.
    #[error("{input:?} is not a BID: {reason}")]
    NotABid {
        /// What was asked (shortened).
        input: String,
        /// Why.
        reason: String,
    },
    /// A DID of another method.
    #[error("this door answers did:bid only, not did:{0}")]
    OtherMethod(String),
    /// No such sub-path.
    #[error("no sub-path {0:?}: public-keys, public-keys/{{id}}, attributes, acsns, verifiableCredentials, services?id=")]
    UnknownPath(String),
    /// A query option has a bad value.
    #[error("option {name}={value:?}: expected true or false")]
    BadOption {
        /// The option.
        name: &'static str,
        /// Its value.
        value: String,
    },
    /// `/services` without `?id=`.
    #[error("services needs ?id=<service id>")]
    MissingServiceId,
    /// `/acsns` of a sub-chain BID.
    #[error("acsns are kept by main-chain BIDs only; {0} is a sub-chain BID")]
    AcsnsOnSubChain(String),
    /// Not registered.
    #[error("{0} is not registered")]
    NotFound(String),
    /// Deactivated.
    #[error("{0} is deactivated")]
    Deactivated(String),
    /// A sub-chain this ledger knows nothing of.
    #[error("no chain code info for AC code {ac} (asked for {bid})")]
    UnknownChain {
        /// The AC code.
        ac: String,
        /// The BID asked for.
        bid: String,
    },
    /// The document has no such member.
    #[error("the document of {bid} has no {field}")]
    FieldNotFound {
        /// The BID.
        bid: String,
        /// The member.
        field: &'static str,
    },
    /// No publicKey with that id.
    #[error("the document of {bid} has no public key {id:?}")]
    UnknownKey {
        /// The BID.
        bid: String,
        /// The key id asked for.
        id: String,
    },
    /// No service with that id.
    #[error("the document of {bid} has no service {id:?}")]
    UnknownService {
        /// The BID.
        bid: String,
        /// The service id asked for.
        id: String,
    },
    /// `verify=true` failed.
    #[error("{0}")]
    VerifyFailed(String),
    /// The ledger or the resolver failed.
    #[error("{0}")]
    Internal(String),
}

impl BidProtoError {
    /// The protocol code.
    pub fn code(&self) -> ErrorCode {
        match self {
            BidProtoError::NotABid { .. }
            | BidProtoError::BadOption { .. }
            | BidProtoError::MissingServiceId => ErrorCode::ProtocolError,
            BidProtoError::OtherMethod(_)
            | BidProtoError::UnknownPath(_)
            | BidProtoError::AcsnsOnSubChain(_) => ErrorCode::OperationNotSupported,
            BidProtoError::NotFound(_) | BidProtoError::Deactivated(_) => ErrorCode::NotFound,
            BidProtoError::UnknownChain { .. } => ErrorCode::NonexistentChainCode,
            BidProtoError::FieldNotFound { .. }
            | BidProtoError::UnknownKey { .. }
            | BidProtoError::UnknownService { .. } => ErrorCode::FieldNotFound,
            BidProtoError::VerifyFailed(_) => ErrorCode::VerifyFailed,
            BidProtoError::Internal(_) => ErrorCode::Error,
        }
    }
}

/// What is asked of a BID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubPath {
    /// `/{bid}`: the document.
    Document,
    /// `/{bid}/public-keys`.
    PublicKeys,
    /// `/{bid}/public-keys/{id}`.
    PublicKey(String),
    /// `/{bid}/attributes`.
    Attributes,
    /// `/{bid}/acsns`.
    Acsns,
    /// `/{bid}/verifiableCredentials`.
    VerifiableCredentials,
    /// `/{bid}/services?id=`.
    Services,
}

impl SubPath {
    /// Reads what follows `/{bid}/` (percent-decoded; one trailing `/` is ignored).
    pub fn parse(rest: &str) -> Result<SubPath, BidProtoError> {
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        Ok(match rest {
            "" => SubPath::Document,
            "public-keys" => SubPath::PublicKeys,
            "attributes" => SubPath::Attributes,
            "acsns" => SubPath::Acsns,
            "verifiableCredentials" => SubPath::VerifiableCredentials,
            "services" => SubPath::Services,
            other => match other.strip_prefix("public-keys/") {
                Some(id) if !id.is_empty() => SubPath::PublicKey(id.to_string()),
                _ => return Err(BidProtoError::UnknownPath(shorten(other))),
            },
        })
    }
}

/// The request options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `proof=true`.
    pub proof: bool,
    /// `verify=true`.
    pub verify: bool,
    /// `id=` (services).
    pub id: Option<String>,
}

impl Options {
    /// Reads the query pairs; unknown names are ignored.
    pub fn parse(pairs: &[(String, String)]) -> Result<Options, BidProtoError> {
        let flag = |name: &'static str, value: &str| match value {
            "true" | "1" | "" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(BidProtoError::BadOption {
                name,
                value: shorten(value),
            }),
        };
        let mut options = Options::default();
        for (name, value) in pairs {
            match name.as_str() {
                "proof" => options.proof = flag("proof", value)?,
                "verify" => options.verify = flag("verify", value)?,
                "id" => options.id = Some(value.clone()),
                _ => {}
            }
        }
        Ok(options)
    }
}

/// Answers one protocol request with its envelope: `prepared` is the BID path segment, its
/// sub-path and options, or why the door could not read them (answered as a protocol error).
/// The ledger is read on a blocking thread. The HTTP status is always 200: the protocol carries
/// the outcome in `errorCode`.
pub async fn answer(
    resolver: &Resolver,
    prepared: Result<(String, SubPath, Options), BidProtoError>,
) -> Value {
    match prepared {
        Err(e) => failure(&e, None),
        Ok((bid, sub, options)) => {
            let resolver = resolver.clone();
            match tokio::task::spawn_blocking(move || respond(&resolver, &bid, &sub, &options))
                .await
            {
                Ok(envelope) => envelope,
                Err(e) => failure(&BidProtoError::Internal(e.to_string()), None),
            }
        }
    }
}

/// A success envelope.
fn success(data: Value) -> Value {
    json!({ "errorCode": 0, "data": data, "message": ErrorCode::Success.phrase() })
}

/// A failure envelope; `data` only to carry a ledger proof.
fn failure(error: &BidProtoError, proof: Option<Value>) -> Value {
    let code = error.code();
    let mut envelope = json!({
        "errorCode": code.code(),
        "message": format!("{}: {error}", code.phrase()),
    });
    if let Some(proof) = proof {
        envelope["data"] = json!({ "ledgerProof": proof });
    }
    envelope
}

/// Answers one protocol request with its envelope (blocking: reads the ledger).
pub fn respond(resolver: &Resolver, raw: &str, sub: &SubPath, options: &Options) -> Value {
    let bid = match parse_bid(raw) {
        Ok(bid) => bid,
        Err(e) => return failure(&e, None),
    };
    let did = bid.to_string();
    if bid.is_ac_code_only() {
        return respond_ac_code(resolver, &bid, sub, options);
    }
    // The one resolution service decides validity and existence.
    let resolved = match resolver.resolve(&did) {
        Ok(resolved) => Some(resolved.record),
        Err(e) => match e.code() {
            "NOT_FOUND" => None,
            "INVALID_DID" => {
                return failure(
                    &BidProtoError::NotABid {
                        input: shorten(raw),
                        reason: e.to_string(),
                    },
                    None,
                )
            }
            "METHOD_NOT_SUPPORTED" => {
                return failure(&BidProtoError::OtherMethod("bid".into()), None)
            }
            _ => return failure(&BidProtoError::Internal(e.to_string()), None),
        },
    };
    // With a proof, the answer is rendered from the proven record: one snapshot for both.
    let holder = resolver.local_records(&bid);
    let (record, proof) = if let Some(holder) = holder.as_ref().filter(|_| options.proof) {
        match verifiable::prove_did(holder.ledger(), &bid) {
            Ok(proven) => {
                let proof = proven.proof_json();
                (proven.record, Some(proof))
            }
            Err(e) => return failure(&BidProtoError::Internal(e.to_string()), None),
        }
    } else {
        (resolved, None)
    };
    let record = match record {
        None => return failure(&not_found(resolver, &bid), proof),
        Some(r) if r.deactivated => return failure(&BidProtoError::Deactivated(did), proof),
        Some(r) => r,
    };
    let document = record.native_document();
    let mut data = match render(&bid, &document, sub, options) {
        Ok(data) => data,
        Err(e) => return failure(&e, proof),
    };
    if options.verify {
        if let Err(e) = check_delegate_sign(resolver, &document) {
            return failure(&e, proof);
        }
        data["verify"] = json!(true);
    }
    if let Some(proof) = proof {
        data["ledgerProof"] = proof;
    }
    success(data)
}

fn parse_bid(raw: &str) -> Result<Bid, BidProtoError> {
    match raw.parse::<Bid>() {
        Ok(bid) => Ok(bid),
        Err(e) => {
            if let Some(rest) = raw.strip_prefix("did:") {
                let method = rest.split(':').next().unwrap_or_default();
                if method != "bid"
                    && !method.is_empty()
                    && rest.len() > method.len()
                    && method
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                {
                    return Err(BidProtoError::OtherMethod(method.to_string()));
                }
            }
            Err(BidProtoError::NotABid {
                input: shorten(raw),
                reason: e.to_string(),
            })
        }
    }
}

/// Not found: code 6, or 10 when the BID belongs to a sub-chain that this daemon neither
/// holds nor finds delegated. A DID of a sub-chain delegated here but resolved elsewhere is 6,
/// with the way there: the protocol's client resolves `did:bid:<ac>` and asks its
/// `DIDSubResolver`.
fn not_found(resolver: &Resolver, bid: &Bid) -> BidProtoError {
    if let Some(ac) = bid.ac_code() {
        if resolver.local_records(bid).is_none() {
            return match subchain::delegation(resolver.records(), &ac) {
                Ok(Some(delegation)) => BidProtoError::NotFound(format!(
                    "{bid} (sub-chain {ac} is resolved at {}; its record is did:bid:{ac})",
                    delegation.endpoints.join(", ")
                )),
                _ => BidProtoError::UnknownChain {
                    ac: ac.to_string(),
                    bid: bid.to_string(),
                },
            };
        }
    }
    BidProtoError::NotFound(bid.to_string())
}

/// `GET /did:bid:<ac>`: the sub-chain's record, from its AC code's delegation on this chain,
/// as a native document ([`ac_native_document`]); code 10 when the code is not delegated.
fn respond_ac_code(resolver: &Resolver, bid: &Bid, sub: &SubPath, options: &Options) -> Value {
    let Some(ac) = bid.ac_code() else {
        return failure(
            &BidProtoError::Internal(format!("{bid} has no AC code")),
            None,
        );
    };
    let key = sparkid_registrar::namespace::namespace_key(sparkid_registrar::Kind::Ac, ac.as_str());
    let (value, proof) = if options.proof {
        match resolver.ledger().prove(&key) {
            Ok(proven) => {
                let json = verifiable::proof_json(&proven);
                (proven.value, Some(json))
            }
            Err(e) => return failure(&BidProtoError::Internal(e.to_string()), None),
        }
    } else {
        match resolver.records().current(&key, false) {
            Ok(anchored) => (anchored.map(|a| a.value.to_string()), None),
            Err(e) => return failure(&BidProtoError::Internal(e.to_string()), None),
        }
    };
    let delegation: sparkid_registrar::NamespaceRecord =
        match value.as_deref().map(serde_json::from_str).transpose() {
            Ok(Some(d)) => d,
            Ok(None) => {
                return failure(
                    &BidProtoError::UnknownChain {
                        ac: ac.to_string(),
                        bid: bid.to_string(),
                    },
                    proof,
                )
            }
            Err(e) => return failure(&BidProtoError::Internal(format!("stored {key}: {e}")), None),
        };
    let document = ac_native_document(&bid.to_string(), &delegation);
    let mut data = match render(bid, &document, sub, options) {
        Ok(data) => data,
        Err(e) => return failure(&e, proof),
    };
    if let Some(proof) = proof {
        data["ledgerProof"] = proof;
    }
    success(data)
}

/// Whether `entry_id` is what a client named `asked`: the whole id, `#fragment` or `fragment`.
fn id_matches(entry_id: &str, asked: &str) -> bool {
    if entry_id == asked {
        return true;
    }
    let fragment = asked.strip_prefix('#').unwrap_or(asked);
    !fragment.contains('#') && entry_id.split_once('#').is_some_and(|(_, f)| f == fragment)
}

/// The entry of `list` whose `id` is `asked`, else the one it names by fragment.
fn find_by_id<'a>(list: Option<&'a Value>, asked: &str) -> Option<&'a Value> {
    let items = list?.as_array()?;
    let id = |item: &&Value| item.get("id").and_then(Value::as_str).map(str::to_string);
    items
        .iter()
        .find(|item| id(item).as_deref() == Some(asked))
        .or_else(|| {
            items
                .iter()
                .find(|item| id(item).is_some_and(|i| id_matches(&i, asked)))
        })
}

/// The `data` of a successful answer.
fn render(
    bid: &Bid,
    document: &Value,
    sub: &SubPath,
    options: &Options,
) -> Result<Value, BidProtoError> {
    let did = bid.to_string();
    let member = |name: &str, value: Value| {
        let mut data = Map::new();
        data.insert("version".into(), json!(PROTOCOL_VERSION));
        data.insert("id".into(), json!(did));
        data.insert(name.into(), value);
        Value::Object(data)
    };
    let field = |value: Option<&Value>, field: &'static str| {
        value
            .filter(|v| !v.is_null())
            .cloned()
            .ok_or_else(|| BidProtoError::FieldNotFound {
                bid: did.clone(),
                field,
            })
    };
    let extension = document.get("extension");
    Ok(match sub {
        SubPath::Document => json!({ "didDocument": document }),
        SubPath::PublicKeys => member("publicKey", field(document.get("publicKey"), "publicKey")?),
        SubPath::PublicKey(id) => {
            field(document.get("publicKey"), "publicKey")?;
            let key = find_by_id(document.get("publicKey"), id).ok_or_else(|| {
                BidProtoError::UnknownKey {
                    bid: did.clone(),
                    id: shorten(id),
                }
            })?;
            member("publicKey", key.clone())
        }
        SubPath::Attributes => member(
            "attributes",
            field(
                extension.and_then(|e| e.get("attributes")),
                "extension.attributes",
            )?,
        ),
        SubPath::Acsns => {
            if bid.ac_code().is_some() {
                return Err(BidProtoError::AcsnsOnSubChain(did));
            }
            member(
                "acsns",
                field(extension.and_then(|e| e.get("acsns")), "extension.acsns")?,
            )
        }
        SubPath::VerifiableCredentials => member(
            "verifiableCredentials",
            field(
                extension.and_then(|e| e.get("verifiableCredentials")),
                "extension.verifiableCredentials",
            )?,
        ),
        SubPath::Services => {
            let id = options
                .id
                .as_deref()
                .filter(|id| !id.is_empty())
                .ok_or(BidProtoError::MissingServiceId)?;
            field(document.get("service"), "service")?;
            let service = find_by_id(document.get("service"), id).ok_or_else(|| {
                BidProtoError::UnknownService {
                    bid: did.clone(),
                    id: shorten(id),
                }
            })?;
            member("service", service.clone())
        }
    })
}

/// Trusted resolution: `extension.delegateSign` is a signature by `signer` (a key of a live BID
/// on this ledger) over the encoded public-key bytes of one of the document's keys.
fn check_delegate_sign(resolver: &Resolver, document: &Value) -> Result<(), BidProtoError> {
    let fail = |m: String| BidProtoError::VerifyFailed(m);
    let delegate = document
        .pointer("/extension/delegateSign")
        .filter(|v| v.is_object())
        .ok_or_else(|| fail("the document has no extension.delegateSign".into()))?;
    let signer = delegate
        .get("signer")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("delegateSign.signer is missing".into()))?;
    let signature = delegate
        .get("signatureValue")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("delegateSign.signatureValue is missing".into()))?;
    let signature = Signature::parse(signature.trim())
        .map_err(|e| fail(format!("delegateSign.signatureValue: {e}")))?;
    let (signer_did, _) = signer
        .split_once('#')
        .ok_or_else(|| fail(format!("delegateSign.signer {signer:?} is not a key id")))?;
    let signer_record: DidRecord = resolver
        .resolve(signer_did)
        .map_err(|e| fail(format!("the signer {signer_did}: {e}")))?
        .record;
    if signer_record.deactivated {
        return Err(fail(format!("the signer {signer_did} is deactivated")));
    }
    let signer_doc = signer_record.native_document();
    let signer_key = find_by_id(signer_doc.get("publicKey"), signer)
        .and_then(|k| k.get("publicKeyHex"))
        .and_then(Value::as_str)
        .ok_or_else(|| fail(format!("{signer_did} has no public key {signer:?}")))?;
    let signer_key = PublicKey::from_encoded(signer_key)
        .map_err(|e| fail(format!("the signer's key {signer:?}: {e}")))?;
    let signed = document
        .get("publicKey")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|k| k.get("publicKeyHex").and_then(Value::as_str))
        .filter_map(|hex| PublicKey::from_encoded(hex).ok())
        .any(|key| signer_key.verify(&key.encoded_bytes(), &signature).is_ok());
    if !signed {
        return Err(fail(format!(
            "delegateSign by {signer} does not verify over any of the document's public keys"
        )));
    }
    Ok(())
}

/// Keeps echoed input short.
fn shorten(s: &str) -> String {
    const MAX: usize = 100;
    if s.chars().count() <= MAX {
        return s.to_string();
    }
    let cut: String = s.chars().take(MAX).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_paths_parse() {
        assert_eq!(SubPath::parse(""), Ok(SubPath::Document));
        assert_eq!(SubPath::parse("public-keys/"), Ok(SubPath::PublicKeys));
        assert_eq!(
            SubPath::parse("public-keys/did:bid:x#key-1"),
            Ok(SubPath::PublicKey("did:bid:x#key-1".into()))
        );
        assert_eq!(SubPath::parse("services"), Ok(SubPath::Services));
        assert!(matches!(
            SubPath::parse("public-keys/"),
            Ok(SubPath::PublicKeys)
        ));
        assert!(matches!(
            SubPath::parse("nope/x"),
            Err(BidProtoError::UnknownPath(_))
        ));
    }

    #[test]
    fn ids_match_whole_hash_or_fragment() {
        assert!(id_matches("did:bid:efA#key-1", "did:bid:efA#key-1"));
        assert!(id_matches("did:bid:efA#key-1", "#key-1"));
        assert!(id_matches("did:bid:efA#key-1", "key-1"));
        assert!(!id_matches("did:bid:efA#key-1", "did:bid:efB#key-1"));
        assert!(!id_matches("did:bid:efA#key-1", "key-2"));
        // A service of another BID, named by its fragment.
        assert!(id_matches("did:bid:efB#storage", "storage"));
    }

    #[test]
    fn options_and_bad_input_map_to_protocol_codes() {
        let pairs = |p: &[(&str, &str)]| {
            p.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        let o = Options::parse(&pairs(&[("proof", "true"), ("id", "#s"), ("x", "y")])).unwrap();
        assert!(o.proof && !o.verify);
        assert_eq!(o.id.as_deref(), Some("#s"));
        assert_eq!(
            Options::parse(&pairs(&[("verify", "maybe")]))
                .unwrap_err()
                .code(),
            ErrorCode::ProtocolError
        );
        assert_eq!(
            parse_bid("favicon.ico").unwrap_err().code(),
            ErrorCode::ProtocolError
        );
        assert_eq!(
            parse_bid("did:key:z6Mk").unwrap_err().code(),
            ErrorCode::OperationNotSupported
        );
        assert_eq!(
            parse_bid("did:bid:efJgt44mNDewKK1VEN454R17cjso3mS0")
                .unwrap_err()
                .code(),
            ErrorCode::ProtocolError
        );
        let e = failure(&BidProtoError::NotFound("did:bid:x".into()), None);
        assert_eq!(
            e,
            json!({"errorCode": 6, "message": "not found: did:bid:x is not registered"})
        );
    }
}
