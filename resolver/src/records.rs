//! Where the read path gets ledger records. Every door reads current state through
//! [`Records`], so this is the one place where the chain-anchored cache sits (see
//! [`crate::cache`] for how entries are anchored, invalidated and kept out of races).

use std::any::Any;
use std::sync::Arc;

use sparkid_ledger::{Hash, Ledger, LedgerError};

use crate::cache::{Cache, CacheConfig, CacheError, CacheMetrics, Memo};

/// A record's value with the block height that anchors it: the value is the key's state as of
/// that height or later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchored {
    /// The stored value (JSON text).
    pub value: Arc<str>,
    /// The head height when it was read (from the ledger, or by whoever cached it).
    pub height: u64,
}

/// One key's answer from [`Records::current_many`]: its value (none: absent) and the slot of
/// its L1 entry for a derived form.
pub struct Current {
    anchored: Option<Anchored>,
    memo: Option<Memo>,
}

impl Current {
    /// The value, if the key is present.
    pub fn into_anchored(self) -> Option<Anchored> {
        self.anchored
    }

    /// The value with [`Records::current_derived`]'s derived form; none when absent.
    pub fn derived<T: Any + Send + Sync>(
        self,
        derive: impl FnOnce(&Anchored) -> T,
    ) -> Option<(Anchored, Arc<T>)> {
        derived(self.anchored, self.memo, derive)
    }
}

/// Current ledger records, for the read path.
#[derive(Clone)]
pub struct Records {
    ledger: Arc<Ledger>,
    cache: Option<Arc<Cache>>,
}

/// The name of a chain's entries in a shared Redis: replicas of one chain (one genesis) share
/// them, other chains do not.
pub fn namespace(ledger: &Ledger) -> String {
    let genesis = ledger.genesis().canonical();
    Hash::of(&[genesis.as_bytes()]).to_hex()[..16].to_string()
}

impl Records {
    /// Records read straight from `ledger`, with no cache.
    pub fn new(ledger: Arc<Ledger>) -> Records {
        Records {
            ledger,
            cache: None,
        }
    }

    /// Records read through a cache configured by `config`, kept current by the ledger's
    /// commits (and, with Redis, by the replicas').
    pub fn cached(
        ledger: Arc<Ledger>,
        config: &CacheConfig,
        metrics: CacheMetrics,
    ) -> Result<Records, CacheError> {
        let head = Arc::downgrade(&ledger);
        let cache = Cache::new(
            config,
            &namespace(&ledger),
            metrics,
            Box::new(move || head.upgrade().map_or(0, |l| l.height())),
        )?;
        let listener = cache.commit_listener();
        ledger.on_commit(Box::new(move |block| listener(block.height, &block.keys)));
        Ok(Records {
            ledger,
            cache: Some(Arc::new(cache)),
        })
    }

    /// The ledger behind the records.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// The cache, if any.
    pub fn cache(&self) -> Option<&Arc<Cache>> {
        self.cache.as_ref()
    }

    /// The current value of the state key `key`, or none. `no_cache` asks for the ledger's own
    /// answer, bypassing any cache (DID Resolution's `noCache` option); the answer then
    /// refreshes the cache.
    pub fn current(&self, key: &str, no_cache: bool) -> Result<Option<Anchored>, LedgerError> {
        let Some(cache) = &self.cache else {
            return self.read(key).map(|(value, height)| anchor(value, height));
        };
        let token = cache.begin();
        if !no_cache {
            if let Some(hit) = cache.get(key, token) {
                return Ok(anchor(hit.value, hit.height));
            }
        }
        let (value, height) = self.read(key)?;
        cache.fill(key, value.clone(), height, token);
        Ok(anchor(value, height))
    }

    /// Like [`Records::current`], with a form derived from the value (the parsed record, a
    /// rendered document) that is computed at most once per L1 entry and dropped with it, so it
    /// is exactly as current as the value. Without L1 (or for a value not cached) `derive` runs
    /// on every call.
    pub fn current_derived<T: Any + Send + Sync>(
        &self,
        key: &str,
        no_cache: bool,
        derive: impl FnOnce(&Anchored) -> T,
    ) -> Result<Option<(Anchored, Arc<T>)>, LedgerError> {
        let Some(cache) = &self.cache else {
            let (value, height) = self.read(key)?;
            return Ok(derived(anchor(value, height), None, derive));
        };
        let token = cache.begin();
        if !no_cache {
            if let Some(hit) = cache.get(key, token) {
                return Ok(derived(anchor(hit.value, hit.height), hit.memo, derive));
            }
        }
        let (value, height) = self.read(key)?;
        let memo = cache.fill(key, value.clone(), height, token);
        Ok(derived(anchor(value, height), memo, derive))
    }

    /// The current values of several keys, read together: L1 for each, then one Redis round
    /// trip for those L1 lacks, then one ledger snapshot for the rest (each of which refreshes
    /// the cache, as [`Records::current`] does). The cold read of a DID needs its record and its
    /// reverse index: reading them together saves a Redis round trip and a ledger transaction.
    pub fn current_many(&self, keys: &[&str]) -> Result<Vec<Current>, LedgerError> {
        let Some(cache) = &self.cache else {
            let height = self.ledger.height();
            let values = self.ledger.get_many(keys)?;
            return Ok(values
                .into_iter()
                .map(|value| Current {
                    anchored: anchor(value.map(Arc::<str>::from), height),
                    memo: None,
                })
                .collect());
        };
        let token = cache.begin();
        let mut found: Vec<Option<Current>> = cache
            .get_many(keys, token)
            .into_iter()
            .map(|hit| {
                hit.map(|hit| Current {
                    anchored: anchor(hit.value, hit.height),
                    memo: hit.memo,
                })
            })
            .collect();
        let missing: Vec<usize> = (0..keys.len()).filter(|&i| found[i].is_none()).collect();
        if !missing.is_empty() {
            let asked: Vec<&str> = missing.iter().map(|&i| keys[i]).collect();
            let height = self.ledger.height();
            let values = self.ledger.get_many(&asked)?;
            for (i, value) in missing.into_iter().zip(values) {
                let value = value.map(Arc::<str>::from);
                let memo = cache.fill(keys[i], value.clone(), height, token);
                found[i] = Some(Current {
                    anchored: anchor(value, height),
                    memo,
                });
            }
        }
        Ok(found
            .into_iter()
            .map(|c| {
                c.unwrap_or(Current {
                    anchored: None,
                    memo: None,
                })
            })
            .collect())
    }

    /// The current value of `key` if the in-process cache (L1) holds it, without blocking:
    /// neither Redis nor the ledger is read, so an async task may call it before deciding to
    /// move to a blocking thread. `Some(None)`: cached as absent; `None`: not in L1, call
    /// [`Records::current`].
    pub fn peek(&self, key: &str) -> Option<Option<Anchored>> {
        let hit = self.cache.as_ref()?.peek(key)?;
        Some(anchor(hit.value, hit.height))
    }

    /// [`Records::peek`] with [`Records::current_derived`]'s derived form.
    pub fn peek_derived<T: Any + Send + Sync>(
        &self,
        key: &str,
        derive: impl FnOnce(&Anchored) -> T,
    ) -> Option<Option<(Anchored, Arc<T>)>> {
        let hit = self.cache.as_ref()?.peek(key)?;
        Some(derived(anchor(hit.value, hit.height), hit.memo, derive))
    }

    /// Reads the ledger: the head first, so that the value is at least as new as the height
    /// stamped on it.
    fn read(&self, key: &str) -> Result<(Option<Arc<str>>, u64), LedgerError> {
        let height = self.ledger.height();
        let value = self.ledger.get(key)?.map(Arc::<str>::from);
        Ok((value, height))
    }
}

fn anchor(value: Option<Arc<str>>, height: u64) -> Option<Anchored> {
    value.map(|value| Anchored { value, height })
}

fn derived<T: Any + Send + Sync>(
    anchored: Option<Anchored>,
    memo: Option<Memo>,
    derive: impl FnOnce(&Anchored) -> T,
) -> Option<(Anchored, Arc<T>)> {
    let anchored = anchored?;
    let form = match memo {
        Some(memo) => memo.get_or_derive(|| derive(&anchored)),
        None => Arc::new(derive(&anchored)),
    };
    Some((anchored, form))
}
