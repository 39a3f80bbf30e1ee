//! The GS1-Conformant Resolver service: the GS1 bridge's answers
//! ([`sparkid_bridges::gs1::Gs1Bridge::answer`]) over the cached records, remembered per request
//! while the ledger's height stays the same. An answer is a function of the ledger state and the
//! request alone, so a remembered one is exact until the next block; the door asks
//! [`Gs1Resolver::remembered`] on its I/O thread and only goes to the records on a miss.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sparkid_bridges::gs1::{Gs1Answer, Gs1Bridge, Gs1Request};
use sparkid_bridges::BridgeError;

use crate::records::Records;

/// The most answers remembered; the memo starts over when full (or at a new height).
pub const MEMO_ENTRIES: usize = 4096;

/// Answers GS1 Digital Link requests for one ledger.
pub struct Gs1Resolver {
    records: Records,
    resolver_root: String,
    memo: Mutex<Memo>,
}

struct Memo {
    height: u64,
    answers: HashMap<String, Arc<Gs1Answer>>,
}

fn memo_key(request: &Gs1Request<'_>) -> String {
    format!(
        "{}{}?{}",
        if request.accept_linkset { 'L' } else { '-' },
        request.path,
        request.query.unwrap_or_default()
    )
}

impl Gs1Resolver {
    /// The service over `records`, answering as the resolver at `resolver_root` (the daemon's
    /// public base URL).
    pub fn new(records: Records, resolver_root: &str) -> Gs1Resolver {
        Gs1Resolver {
            records,
            resolver_root: resolver_root.trim_end_matches('/').to_string(),
            memo: Mutex::new(Memo {
                height: 0,
                answers: HashMap::new(),
            }),
        }
    }

    /// The remembered answer to `request`, if the ledger has not moved since: never blocks.
    pub fn remembered(&self, request: &Gs1Request<'_>) -> Option<Arc<Gs1Answer>> {
        let height = self.records.ledger().height();
        let memo = self.memo.lock().ok()?;
        if memo.height != height {
            return None;
        }
        memo.answers.get(&memo_key(request)).cloned()
    }

    /// Answers `request` from the records (which may read the ledger: call off the I/O
    /// threads), and remembers the answer.
    pub fn answer(&self, request: &Gs1Request<'_>) -> Result<Arc<Gs1Answer>, BridgeError> {
        // The height first: an answer computed while a block commits is filed under the older
        // height, and so never outlives it.
        let height = self.records.ledger().height();
        let answer = Arc::new(Gs1Bridge.answer(&self.records, request, &self.resolver_root)?);
        if let Ok(mut memo) = self.memo.lock() {
            if memo.height != height || memo.answers.len() >= MEMO_ENTRIES {
                memo.answers.clear();
                memo.height = height;
            }
            memo.answers.insert(memo_key(request), answer.clone());
        }
        Ok(answer)
    }
}
