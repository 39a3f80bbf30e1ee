//! The answer of a bridge whose identifiers live in delegated namespaces on this ledger and
//! have no referral to another chain (OID, Ecode): [`BoundRecord`] and [`lookup`], shared so
//! that each such system's HTTP record has one shape.

use serde::Serialize;

use crate::bridge::{map, Bridge, BridgeError, RecordSource};

/// A bound identifier, as `GET /1.0/<system>/{identifier}` renders it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BoundRecord {
    /// The identifier system (`oid`, `ecode`).
    pub system: String,
    /// The identifier, canonical.
    pub identifier: String,
    /// Its alias URI, as the DID's `alsoKnownAs` lists it once confirmed (`urn:oid:…`).
    pub uri: String,
    /// The longest delegated namespace covering it.
    pub namespace: String,
    /// The DID it names.
    pub did: String,
    /// The namespace's owner, who bound it.
    pub owner: String,
    /// The binding's version (1 at the first bind).
    pub version_id: String,
    /// When first bound.
    pub created: String,
    /// When last changed.
    pub updated: String,
    /// The block that wrote this version.
    pub height: u64,
}

/// What an identifier resolves to on this ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Bound here.
    Bound(BoundRecord),
    /// A delegated namespace covers it, but nothing is bound to it (never, or no longer).
    NotBound {
        /// The identifier, canonical.
        identifier: String,
        /// The namespace.
        namespace: String,
    },
    /// No delegated namespace covers it.
    NoNamespace {
        /// The identifier, canonical.
        identifier: String,
    },
}

/// Resolves `identifier` of `bridge`'s system: its longest delegated namespace and binding.
pub fn lookup(
    bridge: &dyn Bridge,
    source: &dyn RecordSource,
    identifier: &str,
) -> Result<Lookup, BridgeError> {
    let mapping = map(bridge, source, identifier)?;
    let identifier = mapping.identifier.clone();
    let Some(namespace) = mapping.namespace.clone() else {
        return Ok(Lookup::NoNamespace { identifier });
    };
    match (&mapping.binding, mapping.did()) {
        (Some(b), Some(did)) => Ok(Lookup::Bound(BoundRecord {
            system: bridge.system().to_string(),
            uri: bridge
                .uri(&identifier)
                .unwrap_or_else(|| format!("{}:{identifier}", bridge.uri_scheme())),
            identifier,
            namespace: namespace.namespace,
            did: did.to_string(),
            owner: namespace.owner,
            version_id: b.version_id.to_string(),
            created: b.created.clone(),
            updated: b.updated.clone(),
            height: b.height,
        })),
        _ => Ok(Lookup::NotBound {
            identifier,
            namespace: namespace.namespace,
        }),
    }
}
