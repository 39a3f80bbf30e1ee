//! The bridges' view of the ledger: [`Records`] (and so the cache) as a
//! [`RecordSource`], and what the VAA and Handle doors share.

use std::sync::Arc;

use sparkid_bridges::{BridgeError, Bridges, RecordSource};

use crate::records::Records;
use crate::result::Aliases;

impl RecordSource for Records {
    fn record(&self, key: &str) -> Result<Option<Arc<str>>, BridgeError> {
        self.current(key, false)
            .map(|anchored| anchored.map(|a| a.value))
            .map_err(|e| BridgeError::Source(e.to_string()))
    }
}

/// What the bridge doors (VAA and Handle over HTTP, Handle native) share.
pub struct BridgeContext {
    /// Current ledger records, through the cache.
    pub records: Records,
    /// The registered bridges.
    pub bridges: Bridges,
    /// This daemon's public base URL (`http://host:port`), for the URLs the doors hand out.
    pub base_url: String,
    /// This chain's AC code; none on the main chain.
    pub chain: Option<String>,
    /// The sub-chains this daemon hosts (AC code, records), where VAA company prefixes that
    /// name them are resolved.
    pub subchains: Vec<(String, Records)>,
    /// This daemon's Handle site (its public Handle interfaces): the `HS_SITE` of the prefixes
    /// it serves and the answer to `GET_SITE_INFO`; none when its addresses are not known.
    pub handle_site: Option<Arc<sparkid_bridges::handle::site::SiteInfo>>,
}

impl BridgeContext {
    /// The context of a daemon serving `records`, reachable at `base_url`.
    pub fn new(records: Records, base_url: String) -> BridgeContext {
        let chain = sparkid_registrar::BidStateMachine::for_genesis(records.ledger().genesis())
            .ac_code
            .map(|a| a.to_string());
        BridgeContext {
            records,
            bridges: Bridges::standard(),
            base_url: base_url.trim_end_matches('/').to_string(),
            chain,
            subchains: Vec::new(),
            handle_site: None,
        }
    }

    /// The identifiers bound to `did` (`vaa:…`, `hdl:…`, `dns:…`), for `alsoKnownAs` and
    /// `equivalentId`.
    pub fn aliases(&self, did: &str) -> Result<Vec<String>, BridgeError> {
        self.bridges.aliases(&self.records, did)
    }
}

/// The identifiers bound to `did`, read through `records` (for the resolution path).
pub fn aliases(records: &Records, did: &str) -> Result<Vec<String>, BridgeError> {
    static BRIDGES: std::sync::OnceLock<Bridges> = std::sync::OnceLock::new();
    BRIDGES.get_or_init(Bridges::standard).aliases(records, did)
}

/// What bridges know about a DID's other identifiers: the VAA codes, handles and DNS names
/// bound to it that its controller confirmed (its reverse index on the ledger and its record,
/// read through the cache; an unconfirmed binding resolves forward only), for its document
/// metadata (`alsoKnownAs`; `equivalentId` and `canonicalId` are for same-method DIDs and stay
/// empty). A failed read is logged and answers none: the document is still the answer.
pub fn did_aliases(records: &Records, did: &str) -> Aliases {
    let also_known_as = aliases(records, did).unwrap_or_else(|e| {
        tracing::warn!(did, error = %e, "reading the DID's bound identifiers");
        Vec::new()
    });
    Aliases {
        also_known_as,
        ..Aliases::default()
    }
}
