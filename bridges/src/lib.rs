//! Bridges between did:bid and foreign identifier systems.
//!
//! A bridge owns one system (VAA, Handle, DNS; later OID, Ecode, GS1): it parses and normalizes
//! the system's identifiers, maps them to DIDs through bindings on the ledger (longest delegated
//! namespace first) and back through the reverse index, and renders a record in the system's own
//! format. Adding a system is adding one module that implements [`Bridge`] and registering it in
//! [`Bridges::standard`].
//!
//! The ledger records the bridges read are the registrar's (see `sparkid_registrar::namespace`):
//! namespaces `ns/<kind>/<namespace>`, bindings `bind/<kind>/<identifier>`, and the reverse index
//! `aka/<did>`. Bridges read them through [`RecordSource`], so that the resolver's cache sits in
//! front of the ledger for every door.
//!
//! The crate knows no HTTP, no DNS or Handle server and no socket: it turns identifiers, records
//! and wire bytes into answers, and the doors that carry them are the daemon's. Nor does it know
//! where records come from: the ledger, or the cache in front of it, is behind [`RecordSource`].
#![deny(missing_docs)]

mod bridge;
pub mod dns;
pub mod ecode;
pub mod gs1;
pub mod handle;
pub mod oid;
pub mod record;
pub mod vaa;

pub use bridge::{map, read, Bridge, BridgeError, Mapping, RecordSource};
use sparkid_registrar::namespace::{alias_key, AliasRecord, Kind};
use sparkid_registrar::{did_key, DidRecord};

/// The registered bridges.
pub struct Bridges {
    bridges: Vec<Box<dyn Bridge>>,
}

impl Bridges {
    /// The given bridges.
    pub fn new(bridges: Vec<Box<dyn Bridge>>) -> Bridges {
        Bridges { bridges }
    }

    /// Every bridge this build knows.
    pub fn standard() -> Bridges {
        Bridges::new(vec![
            Box::new(vaa::VaaBridge),
            Box::new(handle::HandleBridge),
            Box::new(dns::DnsBridge),
            Box::new(oid::OidBridge),
            Box::new(ecode::EcodeBridge),
            Box::new(gs1::Gs1Bridge),
        ])
    }

    /// The bridge of a system (`vaa`, `handle`, `dns`).
    pub fn get(&self, system: &str) -> Option<&dyn Bridge> {
        self.bridges
            .iter()
            .find(|b| b.system() == system)
            .map(|b| b.as_ref())
    }

    /// The bridge of a namespace kind.
    pub fn for_kind(&self, kind: Kind) -> Option<&dyn Bridge> {
        self.bridges
            .iter()
            .find(|b| b.kind() == kind)
            .map(|b| b.as_ref())
    }

    /// Maps a foreign identifier of `system` to its namespace and binding.
    pub fn resolve(
        &self,
        source: &dyn RecordSource,
        system: &str,
        identifier: &str,
    ) -> Result<Mapping, BridgeError> {
        let bridge = self
            .get(system)
            .ok_or_else(|| BridgeError::UnknownSystem(system.to_string()))?;
        map(bridge, source, identifier)
    }

    /// The identifiers bound to `did` that its controller confirmed, as URIs (`vaa:…`,
    /// `hdl:…`, `dns:…`), sorted: the DID's side of its bindings
    /// ([`AliasRecord::confirmed`]). Reads `aka/<did>`, and `did/<did>` when some binding is
    /// not linked (the document may list it).
    pub fn aliases(
        &self,
        source: &dyn RecordSource,
        did: &str,
    ) -> Result<Vec<String>, BridgeError> {
        let Some(record) = read::<AliasRecord>(source, &alias_key(did))? else {
            return Ok(Vec::new());
        };
        let all_linked = record.aliases.iter().all(|a| record.linked.contains(a));
        let document = match did.parse::<sparkid_bid::Bid>() {
            Ok(bid) if !all_linked => {
                read::<DidRecord>(source, &did_key(&bid))?.map(|r| r.document)
            }
            _ => None,
        };
        Ok(record
            .confirmed(document.as_ref())
            .into_iter()
            .filter_map(|a| self.for_kind(a.kind).and_then(|b| b.uri(&a.identifier)))
            .collect())
    }
}
