//! What every bridge shares: the [`Bridge`] trait, the [`RecordSource`] it reads ledger records
//! through, its [`BridgeError`], and the mapping of an identifier to its namespace and binding
//! ([`map`], [`read`]).
//!
//! The bridge modules (`vaa`, `handle`, `dns`) import this one; it names none of them, so adding
//! a system never touches it.

use std::sync::Arc;

use sparkid_registrar::namespace::{
    binding_key, covering_namespaces, namespace_key, normalize_identifier, Alias, BindingRecord,
    Kind, NamespaceRecord,
};
use thiserror::Error;

/// Why a foreign identifier cannot be used or resolved.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BridgeError {
    /// The identifier breaks the system's grammar; the message names the rule.
    #[error("invalid {system} identifier: {rule}")]
    Invalid {
        /// The identifier system.
        system: &'static str,
        /// The broken rule.
        rule: String,
    },
    /// No bridge serves this system.
    #[error("no bridge for identifier system {0:?}")]
    UnknownSystem(String),
    /// Reading ledger records failed.
    #[error("reading the ledger: {0}")]
    Source(String),
    /// A stored record does not parse: the store is corrupt.
    #[error("stored record {key}: {message}")]
    Corrupt {
        /// The state key.
        key: String,
        /// The parser's message.
        message: String,
    },
}

/// Current ledger records, as the read path sees them (through the cache).
pub trait RecordSource {
    /// The value (JSON text) of a state key, or none.
    fn record(&self, key: &str) -> Result<Option<Arc<str>>, BridgeError>;
}

/// One foreign identifier system.
pub trait Bridge: Send + Sync {
    /// The system's name (`vaa`, `handle`, `dns`).
    fn system(&self) -> &'static str;

    /// The namespace kind its delegations and bindings are stored under.
    fn kind(&self) -> Kind;

    /// The URI scheme of its identifiers in `alsoKnownAs`/`equivalentId` (`vaa`, `hdl`, `dns`).
    fn uri_scheme(&self) -> &'static str;

    /// A normalized identifier as the alias URI the DID's side lists (`alsoKnownAs`): by
    /// default `scheme:identifier`; a kind with its own URI form (OID's `urn:oid:`, GS1's
    /// `https://id.gs1.org/…`) answers that.
    fn uri(&self, normalized: &str) -> Option<String> {
        Alias {
            kind: self.kind(),
            identifier: normalized.to_string(),
        }
        .uri()
    }

    /// The inverse of [`Bridge::uri`]: the normalized identifier an alias URI of this system
    /// names, if it is one.
    fn identifier_of_uri(&self, uri: &str) -> Option<String> {
        Alias::from_uri(uri)
            .filter(|alias| alias.kind == self.kind())
            .map(|alias| alias.identifier)
    }

    /// Parses and normalizes an identifier to the form bindings are stored under.
    fn normalize(&self, identifier: &str) -> Result<String, BridgeError> {
        normalize_identifier(self.kind(), identifier).map_err(|e| BridgeError::Invalid {
            system: self.system(),
            rule: e.to_string(),
        })
    }

    /// The namespaces a normalized identifier falls under, longest first: the order in which
    /// delegations are looked up.
    fn namespaces(&self, normalized: &str) -> Vec<String> {
        covering_namespaces(self.kind(), normalized)
    }
}

/// What a foreign identifier maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// The normalized identifier.
    pub identifier: String,
    /// The longest delegated namespace covering it, if any.
    pub namespace: Option<NamespaceRecord>,
    /// Its binding, if it was ever bound (`did: None` once unbound).
    pub binding: Option<BindingRecord>,
}

impl Mapping {
    /// The DID the identifier names now, if any.
    pub fn did(&self) -> Option<&str> {
        self.binding.as_ref().and_then(|b| b.did.as_deref())
    }
}

/// Maps a foreign identifier of `bridge`'s system to its longest delegated namespace and its
/// binding.
pub fn map(
    bridge: &dyn Bridge,
    source: &dyn RecordSource,
    identifier: &str,
) -> Result<Mapping, BridgeError> {
    let normalized = bridge.normalize(identifier)?;
    let mut namespace = None;
    for ns in bridge.namespaces(&normalized) {
        if let Some(record) = read(source, &namespace_key(bridge.kind(), &ns))? {
            namespace = Some(record);
            break;
        }
    }
    let binding = read(source, &binding_key(bridge.kind(), &normalized))?;
    Ok(Mapping {
        identifier: normalized,
        namespace,
        binding,
    })
}

/// Reads and parses a JSON record.
pub fn read<T: serde::de::DeserializeOwned>(
    source: &dyn RecordSource,
    key: &str,
) -> Result<Option<T>, BridgeError> {
    match source.record(key)? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| BridgeError::Corrupt {
                key: key.to_string(),
                message: e.to_string(),
            }),
    }
}
