//! The values resolution takes and returns, in DID Resolution's terms: options
//! ([`ResolutionOptions`]), results ([`Resolution`], [`Dereferenced`], [`Content`]) and errors
//! ([`ResolutionError`] of an [`ErrorKind`]). They sit apart from the service
//! ([`crate::resolution::Resolver`]) so that drivers, sub-chain recursion and the warm path
//! share them without importing the service that calls them.

use serde_json::{json, Map, Value};
use sparkid_bid::Bid;
use sparkid_registrar::DidRecord;
use thiserror::Error;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::did_url::DidUrl;
use crate::didkey::KeyOptions;

pub use crate::did_url::MAX_IDENTIFIER_LEN;

/// Where a proof-carrying answer puts the ledger proof, in the resolution metadata.
pub const LEDGER_PROOF: &str = "ledgerProof";

/// The `type` prefix of DID Resolution's problem objects.
pub const ERROR_TYPE_PREFIX: &str = "https://www.w3.org/ns/did#";

/// Why a DID could not be resolved, in DID Resolution's terms (the did:bid current-record read).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResolveError {
    /// Not a valid DID.
    #[error("{0}")]
    InvalidDid(String),
    /// Valid but not on the ledger.
    #[error("{0} is not registered")]
    NotFound(String),
    /// Another DID method.
    #[error("DID method {0:?} is not supported")]
    MethodNotSupported(String),
    /// The resolver failed.
    #[error("{0}")]
    Internal(String),
}

impl ResolveError {
    /// The DID Resolution error type name.
    pub fn code(&self) -> &'static str {
        match self {
            ResolveError::InvalidDid(_) => "INVALID_DID",
            ResolveError::NotFound(_) => "NOT_FOUND",
            ResolveError::MethodNotSupported(_) => "METHOD_NOT_SUPPORTED",
            ResolveError::Internal(_) => "INTERNAL_ERROR",
        }
    }
}

/// A resolved did:bid record.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The BID.
    pub bid: Bid,
    /// The ledger record.
    pub record: DidRecord,
}

impl Resolved {
    /// The DID Core rendering of the document (none once deactivated).
    pub fn did_core_document(&self) -> Option<Value> {
        if self.record.deactivated {
            return None;
        }
        self.record.bid_document().ok().map(|d| d.to_did_core())
    }
}

/// DID Resolution's error types, as this resolver uses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The DID is malformed.
    InvalidDid,
    /// The DID URL is malformed.
    InvalidDidUrl,
    /// An option is unknown, malformed, or not allowed with the others.
    InvalidOptions,
    /// The DID (or the resource a DID URL names) does not exist.
    NotFound,
    /// No representation the client accepts.
    RepresentationNotSupported,
    /// The DID method is not supported.
    MethodNotSupported,
    /// A valid request this resolver cannot carry out for this method.
    FeatureNotSupported,
    /// A method answered a document that is not a valid DID document.
    InvalidDidDocument,
    /// The resolver or a driver failed.
    Internal,
}

impl ErrorKind {
    /// The UPPER_SNAKE name: the problem `type` after `#`.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidDid => "INVALID_DID",
            ErrorKind::InvalidDidUrl => "INVALID_DID_URL",
            ErrorKind::InvalidOptions => "INVALID_OPTIONS",
            ErrorKind::NotFound => "NOT_FOUND",
            ErrorKind::RepresentationNotSupported => "REPRESENTATION_NOT_SUPPORTED",
            ErrorKind::MethodNotSupported => "METHOD_NOT_SUPPORTED",
            ErrorKind::FeatureNotSupported => "FEATURE_NOT_SUPPORTED",
            ErrorKind::InvalidDidDocument => "INVALID_DID_DOCUMENT",
            ErrorKind::Internal => "INTERNAL_ERROR",
        }
    }

    /// The problem `title`.
    pub fn title(self) -> &'static str {
        match self {
            ErrorKind::InvalidDid => "The DID is not valid.",
            ErrorKind::InvalidDidUrl => "The DID URL is not valid.",
            ErrorKind::InvalidOptions => "The resolution options are not valid.",
            ErrorKind::NotFound => "The DID or DID document was not found.",
            ErrorKind::RepresentationNotSupported => {
                "The requested representation is not supported."
            }
            ErrorKind::MethodNotSupported => "The DID method is not supported.",
            ErrorKind::FeatureNotSupported => "The requested feature is not supported.",
            ErrorKind::InvalidDidDocument => "The DID document is not valid.",
            ErrorKind::Internal => "An internal error occurred.",
        }
    }

    /// The HTTP status of the DID Resolution HTTP(S) binding.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::InvalidDid | ErrorKind::InvalidDidUrl | ErrorKind::InvalidOptions => 400,
            ErrorKind::NotFound => 404,
            ErrorKind::RepresentationNotSupported => 406,
            ErrorKind::MethodNotSupported | ErrorKind::FeatureNotSupported => 501,
            ErrorKind::InvalidDidDocument | ErrorKind::Internal => 500,
        }
    }
}

/// A failed resolution or dereference: the error type, a detail for people, and resolution
/// metadata that goes with it (a ledger proof of absence, for one).
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{}: {detail}", kind.code())]
pub struct ResolutionError {
    /// The error type.
    pub kind: ErrorKind,
    /// What exactly is wrong.
    pub detail: String,
    /// More resolution metadata to answer with the error.
    pub metadata: Map<String, Value>,
    /// The HTTP status when it is not the kind's: 502 when a driver or a sub-chain resolver
    /// misbehaved (an answer over its cap, a refused target, a spent fan-out budget), which is
    /// neither the client's fault nor this resolver's.
    pub status: Option<u16>,
}

impl ResolutionError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> ResolutionError {
        ResolutionError {
            kind,
            detail: detail.into(),
            metadata: Map::new(),
            status: None,
        }
    }

    /// The same error answered with HTTP status `status`.
    pub fn with_status(mut self, status: u16) -> ResolutionError {
        self.status = Some(status);
        self
    }

    /// The HTTP status to answer with.
    pub fn http_status(&self) -> u16 {
        self.status.unwrap_or_else(|| self.kind.status())
    }

    /// The same error with one more resolution metadata member.
    pub fn with_metadata(mut self, name: &str, value: Value) -> ResolutionError {
        self.metadata.insert(name.into(), value);
        self
    }

    /// The RFC 9457 problem object (`type`, `title`, `detail`).
    pub fn problem(&self) -> Value {
        json!({
            "type": format!("{ERROR_TYPE_PREFIX}{}", self.kind.code()),
            "title": self.kind.title(),
            "detail": self.detail,
        })
    }
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ResolutionError {
    ResolutionError::new(ErrorKind::Internal, e.to_string())
}

pub(crate) fn invalid_options(detail: impl Into<String>) -> ResolutionError {
    ResolutionError::new(ErrorKind::InvalidOptions, detail)
}

/// The outcome of resolving a DID: the document (none when deactivated) and the two metadata
/// maps of DID Resolution.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolution {
    /// The DID document, in its DID Core JSON form.
    pub document: Option<Value>,
    /// `didDocumentMetadata`.
    pub document_metadata: Map<String, Value>,
    /// `didResolutionMetadata` (without `contentType`, which the door sets).
    pub resolution_metadata: Map<String, Value>,
}

impl Resolution {
    /// True when the DID is deactivated (`didDocumentMetadata.deactivated: true`).
    pub fn deactivated(&self) -> bool {
        self.document_metadata.get("deactivated") == Some(&Value::Bool(true))
    }
}

/// What a DID URL dereferences to, besides the resolution of its DID.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// The DID document itself (a DID, maybe with `versionId` / `versionTime`), or nothing for
    /// a deactivated DID.
    Document,
    /// A part of the document selected by the fragment: a verification method or a service.
    Resource(Value),
    /// Services selected by `service` / `serviceType`: the document with only those services,
    /// and their endpoint URLs (with `relativeRef` and the fragment applied).
    Services {
        /// The document with only the selected services.
        document: Value,
        /// The selected URL endpoints, in document order.
        urls: Vec<String>,
    },
}

/// A dereferenced DID URL.
#[derive(Debug, Clone, PartialEq)]
pub struct Dereferenced {
    /// The resolution of the DID URL's DID.
    pub resolution: Resolution,
    /// What the DID URL selects in it.
    pub content: Content,
}

/// Identifiers the bridges know to be the same subject as a DID: `equivalentId` and
/// `canonicalId` of DID Resolution's document metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aliases {
    /// Same-method DIDs that are logically equivalent.
    pub equivalent_id: Vec<String>,
    /// The one DID to use instead, if any.
    pub canonical_id: Option<String>,
    /// Foreign identifiers bound to the DID on the ledger by their namespaces' owners
    /// (`vaa:…`, `hdl:…`, `dns:…`): `alsoKnownAs` of the document metadata (not of the
    /// document, which only the DID's controller writes).
    pub also_known_as: Vec<String>,
}

/// The resolution options this resolver understands. Built by [`ResolutionOptions::collect`]
/// from a DID URL's parameters and the request's options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResolutionOptions {
    /// `accept`: the media type asked for, when given as an option rather than a header.
    pub accept: Option<String>,
    /// `versionId`.
    pub version_id: Option<String>,
    /// `versionTime`.
    pub version_time: Option<OffsetDateTime>,
    /// `noCache`: read the ledger, not the cache.
    pub no_cache: bool,
    /// `proof`: attach the ledger proof (did:bid only).
    pub proof: bool,
    /// `expandRelativeUrls`: absolutize relative DID URLs in the document.
    pub expand_relative_urls: bool,
    /// did:key's `publicKeyFormat` and `enableEncryptionKeyDerivation`.
    pub key: KeyOptions,
    /// How many resolvers a recursive sub-chain request went through before this one (the
    /// [`crate::subchain::HOPS_HEADER`] header; not an option a client names).
    pub subchain_hops: u32,
    /// The outbound requests this request has caused so far (shared by every copy of the
    /// options made while answering it): the sub-chain fan-out budget is counted against it.
    pub fanout: FanOut,
}

/// A count of the outbound requests one incoming request caused, shared by the copies of its
/// options (a clone counts into the same total). Always equal to another: it is bookkeeping,
/// not an option.
#[derive(Debug, Clone, Default)]
pub struct FanOut(std::sync::Arc<std::sync::atomic::AtomicU32>);

impl FanOut {
    /// Takes one request from a budget of `limit`: false when `limit` are already taken.
    pub fn take(&self, limit: u32) -> bool {
        use std::sync::atomic::Ordering;
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                (used < limit).then_some(used + 1)
            })
            .is_ok()
    }

    /// How many were taken.
    pub fn used(&self) -> u32 {
        self.0.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl PartialEq for FanOut {
    fn eq(&self, _: &FanOut) -> bool {
        true
    }
}

/// DID parameters (in a DID URL's query) that select what a DID URL dereferences to.
pub const DID_PARAMETERS: [&str; 5] = [
    "service",
    "serviceType",
    "relativeRef",
    "versionId",
    "versionTime",
];

/// Resolution options (query parameters of the HTTP binding, or the POST body). The same
/// names are accepted in a DID URL's query, as DID Resolution passes DID parameters on as
/// options (and a plain DID in the binding's path takes its options from there).
pub const OPTION_NAMES: [&str; 8] = [
    "accept",
    "versionId",
    "versionTime",
    "noCache",
    "proof",
    "expandRelativeUrls",
    "publicKeyFormat",
    "enableEncryptionKeyDerivation",
];

fn parse_bool(name: &str, value: &str) -> Result<bool, ResolutionError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(invalid_options(format!(
            "{name} is \"true\" or \"false\", not {other:?}"
        ))),
    }
}

impl ResolutionOptions {
    /// The options of a request: the DID URL's parameters and the request's own options
    /// (`name`, `value` pairs, already decoded). Unknown names are `INVALID_DID_URL` in the DID
    /// URL and `INVALID_OPTIONS` among the options; a name given in both with different values,
    /// a malformed value, and `versionId` with `versionTime` are `INVALID_OPTIONS`.
    pub fn collect(
        url: &DidUrl,
        options: &[(String, String)],
    ) -> Result<ResolutionOptions, ResolutionError> {
        let mut merged: Vec<(&str, &str)> = Vec::new();
        for (name, value) in url.params() {
            let known =
                DID_PARAMETERS.contains(&name.as_str()) || OPTION_NAMES.contains(&name.as_str());
            if !known {
                return Err(ResolutionError::new(
                    ErrorKind::InvalidDidUrl,
                    format!(
                        "unknown DID parameter {name:?}: known are {} and the options {}",
                        DID_PARAMETERS.join(", "),
                        OPTION_NAMES.join(", ")
                    ),
                ));
            }
            if !DID_PARAMETERS[..3].contains(&name.as_str()) {
                merged.push((name, value));
            }
        }
        let mut seen: Vec<&str> = Vec::new();
        for (name, value) in options {
            if !OPTION_NAMES.contains(&name.as_str()) {
                return Err(invalid_options(format!(
                    "unknown resolution option {name:?}: known are {}",
                    OPTION_NAMES.join(", ")
                )));
            }
            if seen.contains(&name.as_str()) {
                return Err(invalid_options(format!(
                    "the option {name:?} is given more than once"
                )));
            }
            seen.push(name);
            match merged.iter().find(|(n, _)| n == name) {
                Some((_, v)) if v != value => {
                    return Err(invalid_options(format!(
                        "{name} is {v:?} in the DID URL but {value:?} in the options"
                    )))
                }
                Some(_) => {}
                None => merged.push((name, value)),
            }
        }
        let mut o = ResolutionOptions::default();
        for (name, value) in merged {
            match name {
                "accept" => o.accept = Some(value.to_string()),
                "versionId" => {
                    if value.is_empty() {
                        return Err(invalid_options("versionId is empty"));
                    }
                    o.version_id = Some(value.to_string());
                }
                "versionTime" => {
                    o.version_time = Some(OffsetDateTime::parse(value, &Rfc3339).map_err(|e| {
                        invalid_options(format!(
                            "versionTime {value:?} is not an XML/RFC 3339 date-time such \
                                 as 2024-06-01T19:23:24Z: {e}"
                        ))
                    })?)
                }
                "noCache" => o.no_cache = parse_bool(name, value)?,
                "proof" => o.proof = parse_bool(name, value)?,
                "expandRelativeUrls" => o.expand_relative_urls = parse_bool(name, value)?,
                "publicKeyFormat" => o.key.public_key_format = Some(value.to_string()),
                "enableEncryptionKeyDerivation" => {
                    o.key.enable_encryption_key_derivation = parse_bool(name, value)?
                }
                _ => {}
            }
        }
        if o.version_id.is_some() && o.version_time.is_some() {
            return Err(invalid_options(
                "versionId and versionTime are mutually exclusive",
            ));
        }
        if o.proof && o.expand_relative_urls {
            return Err(invalid_options(
                "proof=true proves the document as stored; expandRelativeUrls would change it",
            ));
        }
        Ok(o)
    }

    /// Whether `versionId` or `versionTime` asks for a version rather than the current one.
    pub(crate) fn selects_version(&self) -> bool {
        self.version_id.is_some() || self.version_time.is_some()
    }
}

/// Writes what the bridges know of a DID into its document metadata (`equivalentId`,
/// `canonicalId`, `alsoKnownAs`).
pub fn add_aliases(resolution: &mut Resolution, aliases: Aliases) {
    if !aliases.equivalent_id.is_empty() {
        resolution
            .document_metadata
            .insert("equivalentId".into(), json!(aliases.equivalent_id));
    }
    if let Some(canonical) = aliases.canonical_id {
        resolution
            .document_metadata
            .insert("canonicalId".into(), json!(canonical));
    }
    if !aliases.also_known_as.is_empty() {
        resolution
            .document_metadata
            .insert("alsoKnownAs".into(), json!(aliases.also_known_as));
    }
}

/// `didDocumentMetadata` of a record (and of the version after it, when it is not the latest).
pub fn document_metadata(record: &DidRecord, next: Option<&DidRecord>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("created".into(), json!(record.created));
    // DID Core: `updated` is left out while the DID has never been updated.
    if record.version_id > 1 {
        m.insert("updated".into(), json!(record.updated));
    }
    m.insert("versionId".into(), json!(record.version_id.to_string()));
    m.insert("deactivated".into(), json!(record.deactivated));
    if let Some(next) = next {
        m.insert("nextUpdate".into(), json!(next.updated));
        m.insert("nextVersionId".into(), json!(next.version_id.to_string()));
    }
    m
}
