//! Bridges between did:bid and foreign identifier systems.
//!
//! A bridge owns one system (VAA, Handle, DNS; later OID, Ecode, GS1): it parses and normalizes
//! the system's identifiers, maps them to DIDs through bindings on the ledger (longest delegated
//! prefix first) and back, and renders a record in the system's own format. Adding a system is
//! adding one module that implements [`Bridge`] and registering it.
//!
//! The VAA, Handle and DNS bridges and the namespace operations they need are tracked in their
//! own issue; this crate holds the interface they implement.
#![deny(missing_docs)]

use thiserror::Error;

/// Why a foreign identifier cannot be used.
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
}

/// One foreign identifier system.
pub trait Bridge: Send + Sync {
    /// The system's name (`vaa`, `handle`, `dns`).
    fn system(&self) -> &'static str;

    /// Parses and normalizes an identifier to the form bindings are stored under.
    fn normalize(&self, identifier: &str) -> Result<String, BridgeError>;

    /// The namespaces an identifier falls under, longest first: the order in which delegations
    /// are looked up.
    fn namespaces(&self, normalized: &str) -> Vec<String>;
}
