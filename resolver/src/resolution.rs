//! The resolution service: one place that answers "what is this DID now", for every door.

use std::sync::Arc;

use serde_json::Value;
use sparkid_bid::Bid;
use sparkid_ledger::Ledger;

use crate::records::Records;
use sparkid_registrar::{did_key, DidRecord};
use thiserror::Error;

/// The longest identifier a door accepts, in bytes.
pub const MAX_IDENTIFIER_LEN: usize = 2048;

/// Why a DID could not be resolved, in DID Resolution's terms.
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

/// Resolves DIDs against the ledger.
#[derive(Clone)]
pub struct Resolver {
    records: Records,
}

impl Resolver {
    /// A resolver over `ledger`.
    pub fn new(records: Records) -> Resolver {
        Resolver { records }
    }

    /// The ledger.
    pub fn ledger(&self) -> &Arc<Ledger> {
        self.records.ledger()
    }

    /// Resolves a DID to its current record.
    pub fn resolve(&self, did: &str) -> Result<Resolved, ResolveError> {
        if did.len() > MAX_IDENTIFIER_LEN {
            return Err(ResolveError::InvalidDid(format!(
                "a DID is at most {MAX_IDENTIFIER_LEN} bytes here"
            )));
        }
        let mut parts = did.splitn(3, ':');
        let (Some("did"), Some(method), Some(rest)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ResolveError::InvalidDid(format!(
                "{did:?} is not a DID: it must be did:<method>:<method-specific-id>"
            )));
        };
        if method.is_empty()
            || !method
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            || rest.is_empty()
        {
            return Err(ResolveError::InvalidDid(format!(
                "{did:?} is not a DID: the method name is lowercase letters and digits"
            )));
        }
        if method != "bid" {
            return Err(ResolveError::MethodNotSupported(method.to_string()));
        }
        let bid: Bid = did
            .parse()
            .map_err(|e| ResolveError::InvalidDid(format!("{did}: {e}")))?;
        let anchored = self
            .records
            .current(&did_key(&bid), false)
            .map_err(|e| ResolveError::Internal(e.to_string()))?
            .ok_or_else(|| ResolveError::NotFound(did.to_string()))?;
        let record: DidRecord = serde_json::from_str(&anchored.value)
            .map_err(|e| ResolveError::Internal(format!("stored record: {e}")))?;
        Ok(Resolved { bid, record })
    }
}
