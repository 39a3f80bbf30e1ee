//! What the state machine's rules have in common: the terms in which each of them reads the
//! ledger state and answers.
//!
//! - The DID record ([`DidRecord`], under [`did_key`]): every rule reads it, to tell whether a DID
//!   is live and which keys speak for it.
//! - [`format_time`]: the block-time stamp that records carry.
//! - The kinds of namespace ([`Kind`]) and why a name is malformed ([`NameError`], with the
//!   length limits it cites).
//! - [`OperationError`]: the refusal every rule answers with (the state machine's `Rejection`).
//!
//! It is a module of its own so that dependencies point one way. The `operation` module (the DID
//! rules, and the dispatch of every operation to its rules) uses `namespace` and `anchor`;
//! `anchor` uses `namespace`; all three use this module, which uses none of them. Each item is
//! also re-exported where it was first published (`operation::DidRecord`, `namespace::Kind`,
//! ...), so that paths outside the crate keep working.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sparkid_bid::{Bid, BidDocument, DocumentError};
use thiserror::Error;

/// The state key of a DID's record.
pub fn did_key(bid: &Bid) -> String {
    format!("did/{bid}")
}

/// The ledger record of a DID.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DidRecord {
    /// The native document (without `created`, `updated`, `proof`: the record holds those).
    pub document: Value,
    /// When the DID was created (block time).
    pub created: String,
    /// When it last changed (block time).
    pub updated: String,
    /// 1 at creation, +1 per operation.
    pub version_id: u64,
    /// True once deactivated.
    pub deactivated: bool,
    /// The block that wrote this version.
    pub height: u64,
    /// The operation that wrote it.
    pub operation: String,
}

impl DidRecord {
    /// The native document as BID-protocol clients see it: with `created` and `updated`.
    pub fn native_document(&self) -> Value {
        let mut doc = self.document.clone();
        if let Some(map) = doc.as_object_mut() {
            map.insert("created".into(), json!(self.created));
            map.insert("updated".into(), json!(self.updated));
        }
        doc
    }

    /// The typed document.
    pub fn bid_document(&self) -> Result<BidDocument, DocumentError> {
        BidDocument::from_value(self.native_document())
    }
}

/// Unix seconds as `YYYY-MM-DDThh:mm:ssZ`.
pub fn format_time(unix: u64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .unwrap_or_default()
}

/// The longest VAA code, in characters.
pub const MAX_VAA_LEN: usize = 64;
/// The shortest VAA company prefix, in characters (`VAA` and at least one more).
pub const MIN_VAA_PREFIX_LEN: usize = 4;
/// The longest handle, in bytes (prefix, `/`, suffix).
pub const MAX_HANDLE_LEN: usize = 255;
/// The longest DNS name, in characters, without the final dot.
pub const MAX_DNS_NAME_LEN: usize = 253;
/// The most identifiers bound to one DID. A binding rewrites the DID's reverse index
/// (`aka/<did>`) whole, so the cap keeps that record, and the work of each bind, bounded. It is a
/// rule of the state machine, not a setting: every node must judge a block the same way.
pub const MAX_ALIASES_PER_DID: usize = 64;
/// The most identifiers a DID's controller confirms with `link` (held in `aka/<did>` too).
pub const MAX_LINKS_PER_DID: usize = 64;

/// A kind of namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// VAA codes (ISO/IEC 15459 style), delegated by company prefix.
    Vaa,
    /// Handles, delegated by prefix.
    Handle,
    /// DNS names, delegated by zone.
    Dns,
    /// Sub-chain AC codes: the namespace is the code; no bindings under it.
    Ac,
    /// Object identifiers (ITU-T X.660), delegated by arc (`1.2.156.3001`).
    Oid,
    /// GS1 keys in Digital Link form (`/01/09506000134352`), delegated by GS1 Company Prefix.
    Gs1,
    /// Ecodes (GB/T 31866), delegated by their issuing prefix.
    Ecode,
}

impl Kind {
    /// The kind's name in state keys and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Vaa => "vaa",
            Kind::Handle => "handle",
            Kind::Dns => "dns",
            Kind::Ac => "ac",
            Kind::Oid => "oid",
            Kind::Gs1 => "gs1",
            Kind::Ecode => "ecode",
        }
    }

    /// Every kind.
    pub const ALL: [Kind; 7] = [
        Kind::Vaa,
        Kind::Handle,
        Kind::Dns,
        Kind::Ac,
        Kind::Oid,
        Kind::Gs1,
        Kind::Ecode,
    ];
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Kind, NameError> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| NameError::UnknownKind(s.to_string()))
    }
}

/// Why a namespace or identifier is malformed. Each variant names its rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// Not vaa, handle, dns, ac, oid, gs1 or ecode.
    #[error("unknown namespace kind {0:?}: use vaa, handle, dns, ac, oid, gs1 or ecode")]
    UnknownKind(String),
    /// A VAA code with a character outside A-Z and 0-9.
    #[error("{0:?}: a VAA code is upper-case A-Z and 0-9 only")]
    VaaCharacters(String),
    /// A VAA code that does not start with the issuing agency code.
    #[error("{0:?}: a VAA code begins with the issuing agency code VAA")]
    VaaAgency(String),
    /// A VAA code or prefix of the wrong length.
    #[error("{0:?}: a VAA company prefix has {MIN_VAA_PREFIX_LEN} to {MAX_VAA_LEN} characters, a VAA code at most {MAX_VAA_LEN}")]
    VaaLength(String),
    /// A handle prefix with a `/` or a bad segment.
    #[error("{0:?}: a handle prefix is dot-separated segments of letters, digits, '-' and '_'")]
    HandlePrefix(String),
    /// A handle prefix reserved for reading DIDs as handles.
    #[error("{0:?}: the handle prefixes bid and bid.* are reserved for DIDs read as handles")]
    ReservedHandlePrefix(String),
    /// A handle without `prefix/suffix`.
    #[error(
        "{0:?}: a handle is <prefix>/<suffix> with a non-empty suffix of printable characters"
    )]
    Handle(String),
    /// A handle over the limit.
    #[error("a handle is at most {MAX_HANDLE_LEN} bytes")]
    HandleLength,
    /// A DNS name that breaks the LDH rules.
    #[error("{0:?}: a DNS name is dot-separated labels of 1-63 letters, digits and '-' (not at either end), '_' allowed at a label's start, at most {MAX_DNS_NAME_LEN} characters")]
    DnsName(String),
    /// Not a 4-character AC code.
    #[error("{0:?}: an AC code is 4 lower-case letters or digits")]
    AcCode(String),
    /// A kind whose grammar this build does not check yet; nothing is guessed.
    #[error("{0} identifiers are not accepted by this build yet")]
    Unsupported(&'static str),
    /// Bindings do not live under AC codes.
    #[error("identifiers are not bound under AC codes; register DIDs on the sub-chain")]
    NoBindingsUnderAc,
    /// An object identifier that breaks a rule of ITU-T X.660 or a cap of this registry; the
    /// second field names the rule.
    #[error("{0:?} is not a valid OID: {1}")]
    Oid(String, String),
    /// An Ecode that breaks its structure (GB/T 31866), or that public text cannot validate;
    /// the second field names the rule.
    #[error("{0:?} is not an accepted Ecode: {1}")]
    Ecode(String, String),
    /// A GS1 Digital Link path or GS1 Company Prefix that breaks a GS1 rule (named).
    #[error("{0}")]
    Gs1(String),
}

/// Why an operation is refused. Each variant names the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OperationError {
    /// The operation is not one of create, update, deactivate, recover.
    #[error("malformed operation: {0}")]
    Malformed(String),
    /// The document breaks a document rule.
    #[error("invalid document: {0}")]
    Document(#[from] DocumentError),
    /// The DID belongs to another chain.
    #[error("{did} belongs to {expected}, not to this chain ({this})")]
    WrongChain {
        /// The DID.
        did: String,
        /// Its chain.
        expected: String,
        /// This chain.
        this: String,
    },
    /// An AC-code BID is a sub-chain record, delegated rather than created.
    #[error("{0} names a sub-chain; AC codes are delegated by the chain authority, not created")]
    AcCodeRecord(String),
    /// create of an existing DID.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The DID is not on the ledger.
    #[error("{0} does not exist")]
    NotFound(String),
    /// The DID is deactivated.
    #[error("{0} is deactivated; a deactivated DID takes no further operation")]
    Deactivated(String),
    /// create not signed by the key the BID derives from.
    #[error("create is self-certifying: {did} must derive from the signing key, which derives {derived}")]
    NotSelfCertifying {
        /// The document id.
        did: String,
        /// What the signing key derives.
        derived: String,
    },
    /// The signer is not an authentication key.
    #[error(
        "{op} must be signed by an authentication key of the current document; {signer} is not one"
    )]
    NotAuthenticationKey {
        /// The operation.
        op: &'static str,
        /// The signer.
        signer: String,
    },
    /// The signer is not a recovery key.
    #[error("{op} must be signed by a recovery key (extension.recovery) of the current document; {signer} is not one")]
    NotRecoveryKey {
        /// The operation.
        op: &'static str,
        /// The signer.
        signer: String,
    },
    /// The transaction's key is not the one the document gives for the signer id.
    #[error("the transaction's publicKey is not the key the document lists for {0}")]
    SignerKeyMismatch(String),
    /// The document id changed.
    #[error("the document id must stay {0}")]
    IdChanged(String),
    /// update changed the keys that control the DID.
    #[error("update cannot change authentication, extension.recovery or their keys; use recover, signed by a recovery key")]
    ControlChanged,
    /// A namespace or identifier breaks its grammar.
    #[error("{0}")]
    Name(#[from] NameError),
    /// The chain's genesis names no authority, so nothing can be delegated.
    #[error("this chain's genesis names no authority; namespaces cannot be delegated")]
    NoAuthority,
    /// delegate not signed by the authority.
    #[error(
        "only the chain authority {authority} delegates namespaces; {signer} does not speak for it"
    )]
    NotAuthority {
        /// The signer.
        signer: String,
        /// The authority.
        authority: String,
    },
    /// No delegated namespace covers the identifier.
    #[error("no delegated {kind} namespace covers {identifier}")]
    NoNamespace {
        /// The kind.
        kind: Kind,
        /// The identifier.
        identifier: String,
    },
    /// A VAA prefix whose items live on another chain: bind there, not here.
    #[error("the items of {namespace} live on {chain}; bind them on that chain")]
    ItemsOnAnotherChain {
        /// The namespace.
        namespace: String,
        /// Where its items live.
        chain: String,
    },
    /// update, recover or deactivate naming a version that is not the current one: it was signed
    /// against a document that has changed since, and running it would roll the DID back.
    #[error("{op} of {did} replaces version {named} (previousVersionId), but the current version is {current}: it was signed against a document that has changed since; sign a new one against version {current}")]
    VersionConflict {
        /// The operation.
        op: &'static str,
        /// The DID.
        did: String,
        /// The version the operation names.
        named: u64,
        /// The current version.
        current: u64,
    },
    /// update, recover or deactivate submitted without `previousVersionId`.
    #[error("{op} must name the version it replaces (previousVersionId); sign a new one against the current version")]
    MissingPreviousVersion {
        /// The operation.
        op: &'static str,
    },
    /// A DID already has as many bound or linked identifiers as it may.
    #[error("{did} already has {limit} {what}, the most a DID may have")]
    TooManyAliases {
        /// The DID.
        did: String,
        /// What is counted: bound or linked identifiers.
        what: &'static str,
        /// The cap.
        limit: usize,
    },
    /// link or unlink not signed by an authentication key of the DID it confirms for.
    #[error("only {did}'s controller confirms its aliases; {signer} is not one of its authentication keys")]
    NotController {
        /// The signer.
        signer: String,
        /// The DID.
        did: String,
    },
    /// bind or unbind not signed by the namespace owner.
    #[error("only {owner}, the owner of {namespace}, binds under it; {signer} is not one of its authentication keys")]
    NotNamespaceOwner {
        /// The signer.
        signer: String,
        /// The namespace.
        namespace: String,
        /// Its owner.
        owner: String,
    },
}
