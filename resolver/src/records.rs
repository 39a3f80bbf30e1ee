//! Where the read path gets ledger records. Every door reads current state through
//! [`Records`], so this is the one place where the chain-anchored cache sits.

use std::sync::Arc;

use sparkid_ledger::{Ledger, LedgerError};

/// A record's value with the block height that anchors it: the value is the key's state as of
/// that height or later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchored {
    /// The stored value (JSON text).
    pub value: Arc<str>,
    /// The head height when it was read.
    pub height: u64,
}

/// Current ledger records, for the read path.
#[derive(Clone)]
pub struct Records {
    ledger: Arc<Ledger>,
}

impl Records {
    /// Records read straight from `ledger`.
    pub fn new(ledger: Arc<Ledger>) -> Records {
        Records { ledger }
    }

    /// The ledger behind the records.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// The current value of the state key `key`, or none. `no_cache` asks for the ledger's own
    /// answer, bypassing any cache (DID Resolution's `noCache` option).
    pub fn current(&self, key: &str, no_cache: bool) -> Result<Option<Anchored>, LedgerError> {
        let _ = no_cache;
        // The head is read first so that the value is at least as new as the height stamped on it.
        let height = self.ledger.height();
        Ok(self.ledger.get(key)?.map(|value| Anchored {
            value: value.into(),
            height,
        }))
    }
}
