//! The chain-anchored two-tier cache that [`crate::records::Records`] reads through.
//!
//! **Entries.** A cache entry is a state key's value (or its absence) stamped with the block
//! height that anchors it: the head height read *before* the value, so the value is the key's
//! state as of that height or later. It lives at most its document's `extension.ttl` (the
//! default when absent), capped by the configured maximum; a TTL of 0 is never cached.
//!
//! **L1** is in process: an LRU-like (S3-FIFO, `quick_cache`) map bounded in bytes, where an
//! entry weighs its key, its value and [`ENTRY_OVERHEAD`]. **L2** is Redis, optional, shared by
//! replicas.
//!
//! **Invalidation.** The block that changes a key drops it: the ledger's commit listener calls
//! [`Cache::invalidate`] with every key the block wrote, after the block is durable and before
//! the head moves to it (so whoever sees the new height is never served what the block
//! replaced), and before the writer that asked for the block hears back. L1 drops the keys at
//! once; Redis gets a tombstone (`t<height>`) for each, written by a background thread, and the
//! change is published on a Redis channel; every replica that receives it drops the keys from its
//! own L1.
//!
//! **The read/insert race.** A value read before block `h+1` must not be cached after `h+1`'s
//! invalidation. The cache remembers, per key, the height of its last invalidation (recent
//! ones; see below), and refuses to insert a value whose stamp is older: the check and the
//! insert happen under the same lock as the record-and-drop of an invalidation. Redis does the
//! same atomically in a Lua script: a value never replaces a tombstone or a value with a higher
//! height. A value from Redis is also checked against the local record before it is served.
//!
//! The per-key records are pruned, oldest block first, once they hold more than
//! [`RECORD_LIMIT`] keys, but never past a block whose tombstones are not yet in Redis. A read
//! takes a [`ReadToken`] (the pruning generation) before it starts; if a pruning happened since,
//! what it read is served but not cached (and a Redis value is not served).
//!
//! **A cache that is down costs speed, never answers.** Redis commands have short timeouts
//! ([`COMMAND_TIMEOUT`]); the first failure marks Redis down, reads then skip it (no waiting on a
//! dead server), and a background thread reconnects with backoff. Invalidations made while Redis
//! is down are kept and written before Redis is used again (past [`PENDING_LIMIT`] keys they are
//! dropped and the cache's Redis namespace is emptied instead). Redis is emptied of this chain's
//! entries too when it restarted (its `run_id` changed: a snapshot may hold entries older than
//! their tombstones), and at startup when its recorded invalidation height is behind the head.
//! When the channel subscription is re-established after a break, L1 is cleared (messages may
//! have been missed). A replica only writes to Redis values stamped at or above the newest
//! height it has heard of, so a replica that lags does not put old values there.
//!
//! **Redis is not trusted.** Anyone who can write to it could otherwise make every replica serve
//! a forged record. Every value (and absence) stored there carries an HMAC-SHA256, keyed by the
//! shared secret of the configuration ([`CacheConfig::redis_secret`]), over its Redis key, its
//! stamp, its expiry and its value; every invalidation message carries one over the channel and
//! the message. A value or a message whose HMAC does not hold is ignored and counted
//! (`sparkid_cache_l2_refused_total{reason}`). A value stamped above the local head plus
//! [`STAMP_SLACK`] blocks is refused too: no replica can have read it yet, and served it would
//! win over every later tombstone (the scripts keep the highest stamp). Tombstones are not
//! authenticated: a forged one can only cost a cache miss.

use std::any::Any;
use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use quick_cache::sync::Cache as QuickCache;
use quick_cache::{OptionsBuilder, Weighter};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sparkid_bid::document::DEFAULT_TTL;
use thiserror::Error;
use tracing::{debug, info, warn};

pub use crate::cache_metrics::CacheMetrics;

/// The prefix of the L1 keys of DIDs' answer records ([`crate::answers`]); no state key has it.
pub const ANSWER_PREFIX: &str = "answer/";

/// The L1 key of the answer record that a change of the state key `key` changes: a DID's
/// answer is made from its record `did/<did>` and its reverse index `aka/<did>`.
pub fn answer_key_of_state(key: &str) -> Option<String> {
    let did = key
        .strip_prefix("did/")
        .or_else(|| key.strip_prefix("aka/"))?;
    Some(format!("{ANSWER_PREFIX}{did}"))
}

/// The default L1 cache size in bytes (128 MiB).
pub const DEFAULT_CACHE_BYTES: u64 = 128 * 1024 * 1024;
/// The default cap on a cache entry's lifetime, in seconds (one hour).
pub const DEFAULT_CACHE_TTL_MAX: u64 = 3600;

/// The chain-anchored read cache's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheConfig {
    /// L1 (in-process LRU) size in bytes; 0 turns L1 off.
    pub l1_bytes: u64,
    /// L2 (Redis) URL; none turns L2 off.
    pub redis_url: Option<String>,
    /// Cap on an entry's lifetime in seconds (the document's `extension.ttl` applies under it).
    pub ttl_max: u64,
    /// The secret that keys the HMAC of every Redis value and invalidation message, shared by
    /// the replicas of one Redis (at least [`MIN_REDIS_SECRET_LEN`] bytes). None with Redis: a
    /// random one for this process (its entries are then its own; the daemon allows that in dev
    /// mode only).
    pub redis_secret: Option<String>,
}

impl Default for CacheConfig {
    fn default() -> CacheConfig {
        CacheConfig {
            l1_bytes: DEFAULT_CACHE_BYTES,
            redis_url: None,
            ttl_max: DEFAULT_CACHE_TTL_MAX,
            redis_secret: None,
        }
    }
}

/// The shortest Redis secret accepted, in bytes.
pub const MIN_REDIS_SECRET_LEN: usize = 16;
/// How far above the local head a Redis value's stamp may be: replicas a few blocks ahead put
/// their values there legitimately; a stamp beyond that was not read from any ledger we follow.
pub const STAMP_SLACK: u64 = 16;

/// Bytes an L1 entry is charged beyond its key and value (map slot, entry, allocation headers).
pub const ENTRY_OVERHEAD: u64 = 128;
/// How long a Redis connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(250);
/// How long a Redis command on the read path may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_millis(100);
/// How long a background Redis command (invalidations, emptying the namespace) may take.
const MAINTENANCE_TIMEOUT: Duration = Duration::from_secs(2);
/// The first and the longest wait between reconnection attempts.
const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How often the background threads look up from a wait.
const POLL: Duration = Duration::from_millis(200);
/// Per-key invalidation records kept before pruning (oldest blocks first).
pub const RECORD_LIMIT: usize = 65_536;
/// Invalidated keys waiting for Redis before they are dropped for a namespace flush.
pub const PENDING_LIMIT: usize = 262_144;
/// Redis inserts waiting for the background thread; more are dropped.
const INSERT_QUEUE_LIMIT: usize = 16_384;
/// Keys per tombstone script call.
const CHUNK: usize = 512;
/// Inserts per pipeline.
const INSERT_BATCH: usize = 256;
/// Idle Redis connections kept for the read path.
const POOL_IDLE: usize = 64;

/// Writes a tombstone for each key unless it already holds an entry at least as new.
/// KEYS: the keys; ARGV: height, tombstone TTL.
const INVALIDATE_LUA: &str = r"
local h = tonumber(ARGV[1])
for i = 1, #KEYS do
  local cur = redis.call('GET', KEYS[i])
  local at = nil
  if cur then at = tonumber(string.match(cur, '^%a(%d+)')) end
  if not at or at < h then
    redis.call('SET', KEYS[i], 't' .. ARGV[1], 'EX', ARGV[2])
  end
end
return #KEYS
";

/// Stores an entry unless the key holds a tombstone or an entry from a newer block.
/// KEYS: the key; ARGV: the entry's height, the payload, its TTL.
const INSERT_LUA: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur then
  local at = tonumber(string.match(cur, '^%a(%d+)'))
  if at and at > tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
return 1
";

/// Raises the recorded invalidation height and publishes the change.
/// KEYS: the height key; ARGV: height, channel, message.
const ADVANCE_LUA: &str = r"
local cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1]) end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
";

/// Why the cache could not be set up.
#[derive(Debug, Error)]
pub enum CacheError {
    /// The Redis URL does not parse.
    #[error("the Redis URL is not valid: {0}")]
    RedisUrl(redis::RedisError),
    /// The L1 options were refused.
    #[error("the L1 cache options are not valid: {0}")]
    L1(String),
    /// The Redis secret is too short to key an HMAC.
    #[error(
        "the Redis secret is {0} bytes: at least {MIN_REDIS_SECRET_LEN} are needed (a random \
         string shared by the replicas)"
    )]
    RedisSecret(usize),
    /// A background thread could not start.
    #[error("cannot start the cache's Redis thread: {0}")]
    Thread(std::io::Error),
}

/// A cached answer: the value (none: the key is absent) and the height that anchors it.
#[derive(Debug, Clone)]
pub struct Cached {
    /// The value, or none when the key is absent.
    pub value: Option<Arc<str>>,
    /// The head height before the value was read: the value is current as of this height.
    pub height: u64,
    /// The L1 entry's slot for a form derived from the value (none when L1 is off).
    pub memo: Option<Memo>,
}

impl PartialEq for Cached {
    fn eq(&self, other: &Cached) -> bool {
        self.value == other.value && self.height == other.height
    }
}

/// A slot, one per L1 entry, for one form derived from the entry's value (parsed, rendered):
/// computed at most once while the entry lives, dropped with it (so invalidated with it).
#[derive(Clone, Default)]
pub struct Memo(Arc<OnceLock<Arc<dyn Any + Send + Sync>>>);

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Memo")
            .field("set", &self.0.get().is_some())
            .finish()
    }
}

impl Memo {
    /// The derived form of type `T`, computed by `derive` the first time. A slot already
    /// holding another type is left alone (the form is then computed and not kept).
    pub fn get_or_derive<T: Any + Send + Sync>(&self, derive: impl FnOnce() -> T) -> Arc<T> {
        if let Some(any) = self.0.get() {
            if let Ok(t) = any.clone().downcast::<T>() {
                return t;
            }
            return Arc::new(derive());
        }
        let t = Arc::new(derive());
        let _ = self.0.set(t.clone());
        t
    }
}

/// Taken before a read (from the ledger or from Redis), given back to [`Cache::get`] and
/// [`Cache::fill`]: it tells whether invalidation records were pruned while the read ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadToken {
    generation: u64,
}

/// Where an invalidation comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A block committed by this process's ledger.
    Local,
    /// A block committed by a replica, heard on the Redis channel.
    Remote,
}

#[derive(Clone)]
struct Entry {
    value: Option<Arc<str>>,
    height: u64,
    expires: Instant,
    memo: Memo,
}

impl Entry {
    fn cached(self) -> Cached {
        Cached {
            value: self.value,
            height: self.height,
            memo: Some(self.memo),
        }
    }
}

#[derive(Clone)]
struct ByteWeighter;

impl Weighter<String, Entry> for ByteWeighter {
    fn weight(&self, key: &String, entry: &Entry) -> u64 {
        entry_weight(key, entry.value.as_deref())
    }
}

/// The bytes an L1 entry is charged: its key, its value twice (the value and room for one
/// derived form of about its size, see [`Memo`]) and [`ENTRY_OVERHEAD`].
pub fn entry_weight(key: &str, value: Option<&str>) -> u64 {
    (key.len() + 2 * value.map_or(0, str::len)) as u64 + ENTRY_OVERHEAD
}

type L1 = QuickCache<String, Entry, ByteWeighter>;

/// Recent invalidations: key -> height of its last change.
#[derive(Default)]
struct Records {
    by_key: HashMap<String, u64>,
    blocks: VecDeque<(u64, Arc<[String]>)>,
    keys: usize,
}

impl Records {
    fn record(&mut self, height: u64, keys: &Arc<[String]>) {
        for key in keys.iter() {
            let at = self.by_key.entry(key.clone()).or_insert(height);
            *at = (*at).max(height);
        }
        self.keys += keys.len();
        self.blocks.push_back((height, keys.clone()));
    }

    /// Prunes down to half the limit once over it, never past `through`. True if it pruned.
    fn prune(&mut self, through: u64) -> bool {
        if self.keys <= RECORD_LIMIT {
            return false;
        }
        let mut pruned = false;
        while self.keys > RECORD_LIMIT / 2 {
            match self.blocks.front() {
                Some((height, _)) if *height <= through => {}
                _ => break,
            }
            let Some((height, keys)) = self.blocks.pop_front() else {
                break;
            };
            for key in keys.iter() {
                if self.by_key.get(key) == Some(&height) {
                    self.by_key.remove(key);
                }
            }
            self.keys -= keys.len();
            pruned = true;
        }
        pruned
    }

    fn changed_after(&self, key: &str, height: u64) -> bool {
        self.by_key.get(key).is_some_and(|at| *at > height)
    }
}

/// The cache: L1 in process, L2 in Redis (optional).
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    l1: Option<L1>,
    l1_capacity: u64,
    records: Mutex<Records>,
    generation: AtomicU64,
    ttl_max: u64,
    l2: Option<L2>,
    metrics: CacheMetrics,
    origin: u64,
    shutdown: AtomicBool,
    head: Box<dyn Fn() -> u64 + Send + Sync>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[derive(Deserialize)]
struct TtlProbe {
    document: Option<DocumentProbe>,
}

#[derive(Deserialize)]
struct DocumentProbe {
    extension: Option<ExtensionProbe>,
}

#[derive(Deserialize)]
struct ExtensionProbe {
    ttl: Option<u64>,
}

/// How long a value may be cached, in seconds: the record's `document.extension.ttl` (a DID
/// record's native document), else the method's default, capped by `ttl_max`.
pub fn ttl_of(value: Option<&str>, ttl_max: u64) -> u64 {
    let ttl = value
        .and_then(|v| serde_json::from_str::<TtlProbe>(v).ok())
        .and_then(|p| p.document?.extension?.ttl)
        .unwrap_or(DEFAULT_TTL);
    ttl.min(ttl_max)
}

impl Cache {
    /// A cache with `config`'s tiers. `namespace` names this chain's entries in a shared Redis
    /// (replicas of one chain share it); `head` reads the ledger's head height.
    pub fn new(
        config: &CacheConfig,
        namespace: &str,
        metrics: CacheMetrics,
        head: Box<dyn Fn() -> u64 + Send + Sync>,
    ) -> Result<Cache, CacheError> {
        let l1 = if config.l1_bytes > 0 {
            let items = (config.l1_bytes / 1024).clamp(64, 4_000_000) as usize;
            let options = OptionsBuilder::new()
                .estimated_items_capacity(items)
                .weight_capacity(config.l1_bytes)
                .build()
                .map_err(|e| CacheError::L1(format!("{e:?}")))?;
            Some(L1::with_options(
                options,
                ByteWeighter,
                Default::default(),
                Default::default(),
            ))
        } else {
            None
        };
        let l2 = match &config.redis_url {
            Some(url) => {
                let secret = match &config.redis_secret {
                    Some(s) if s.len() < MIN_REDIS_SECRET_LEN => {
                        return Err(CacheError::RedisSecret(s.len()))
                    }
                    Some(s) => s.as_bytes().to_vec(),
                    None => {
                        warn!(
                            "cache: no Redis secret configured: a random one keys this process's \
                             Redis entries, which other replicas cannot use"
                        );
                        rand::random::<[u8; 32]>().to_vec()
                    }
                };
                Some(L2::new(url, namespace, config.ttl_max, secret)?)
            }
            None => None,
        };
        let has_l2 = l2.is_some();
        let inner = Arc::new(Inner {
            l1,
            l1_capacity: config.l1_bytes,
            records: Mutex::new(Records::default()),
            generation: AtomicU64::new(0),
            ttl_max: config.ttl_max,
            l2,
            metrics,
            origin: RandomState::new().build_hasher().finish(),
            shutdown: AtomicBool::new(false),
            head,
        });
        if has_l2 {
            let writer = inner.clone();
            std::thread::Builder::new()
                .name("cache-redis".into())
                .spawn(move || writer.run_writer())
                .map_err(CacheError::Thread)?;
            let subscriber = inner.clone();
            std::thread::Builder::new()
                .name("cache-redis-sub".into())
                .spawn(move || subscriber.run_subscriber())
                .map_err(CacheError::Thread)?;
        }
        Ok(Cache { inner })
    }

    /// Call before reading; pass the token to [`Cache::get`] and [`Cache::fill`].
    pub fn begin(&self) -> ReadToken {
        ReadToken {
            generation: self.inner.generation.load(Ordering::Acquire),
        }
    }

    /// The cached answer for `key`: L1, then L2 (an L2 hit is copied into L1).
    pub fn get(&self, key: &str, token: ReadToken) -> Option<Cached> {
        if let Some(hit) = self.l1_get(key) {
            return Some(hit);
        }
        let l2 = self.inner.l2.as_ref()?;
        let read = l2.get(key);
        self.checked_l2(key, read, token)
    }

    /// [`Cache::get`] for several keys at once: L1 for each, then one Redis round trip
    /// (`MGET`) for those L1 does not hold, rather than one per key. A cold resolution needs
    /// two keys (a DID's record and its reverse index): this halves its waits on Redis.
    pub fn get_many(&self, keys: &[&str], token: ReadToken) -> Vec<Option<Cached>> {
        let mut found: Vec<Option<Cached>> = keys.iter().map(|key| self.l1_get(key)).collect();
        let Some(l2) = self.inner.l2.as_ref() else {
            return found;
        };
        let missing: Vec<usize> = (0..keys.len()).filter(|&i| found[i].is_none()).collect();
        if missing.is_empty() {
            return found;
        }
        let asked: Vec<&str> = missing.iter().map(|&i| keys[i]).collect();
        for (i, read) in missing.into_iter().zip(l2.get_many(&asked)) {
            found[i] = self.checked_l2(keys[i], read, token);
        }
        found
    }

    /// L1's live entry for `key`, counting the hit or the miss (an expired entry is dropped).
    fn l1_get(&self, key: &str) -> Option<Cached> {
        let inner = &*self.inner;
        let l1 = inner.l1.as_ref()?;
        let m = &inner.metrics;
        match l1.get(key) {
            Some(entry) if entry.expires > Instant::now() => {
                m.l1_hits.inc();
                return Some(entry.cached());
            }
            Some(_) => {
                l1.remove(key);
            }
            None => {}
        }
        m.l1_misses.inc();
        None
    }

    /// What a Redis read of `key` gives the read path: a checked value (copied into L1), or
    /// nothing (a miss, Redis down or failing, a forged or stale value: counted and logged).
    fn checked_l2(&self, key: &str, read: L2Read, token: ReadToken) -> Option<Cached> {
        let inner = &*self.inner;
        let m = &inner.metrics;
        let l2 = inner.l2.as_ref()?;
        match read {
            L2Read::Down => {
                m.l2_skipped.inc();
                None
            }
            L2Read::Failed(e) => {
                m.l2_errors.inc();
                l2.trip(&inner.metrics, &e);
                None
            }
            L2Read::Miss => {
                m.l2_misses.inc();
                None
            }
            L2Read::Forged => {
                m.l2_refused_hmac.inc();
                m.l2_misses.inc();
                warn!(key, "cache: a Redis value failed its HMAC: ignored");
                None
            }
            L2Read::Hit(stored) => {
                let now = unix_now();
                if stored.expires <= now {
                    m.l2_misses.inc();
                    return None;
                }
                let head = (inner.head)();
                if stored.height > head.saturating_add(STAMP_SLACK) {
                    m.l2_refused_stamp.inc();
                    m.l2_misses.inc();
                    warn!(
                        key,
                        stamp = stored.height,
                        head,
                        "cache: a Redis value stamped above the head: ignored"
                    );
                    return None;
                }
                let records = lock(&inner.records);
                if inner.generation.load(Ordering::Acquire) != token.generation
                    || records.changed_after(key, stored.height)
                {
                    m.stale_refused.inc();
                    m.l2_misses.inc();
                    return None;
                }
                m.l2_hits.inc();
                let mut memo = None;
                if let Some(l1) = &inner.l1 {
                    let ttl = (stored.expires - now).min(inner.ttl_max);
                    let m = Memo::default();
                    l1.insert(
                        key.to_string(),
                        Entry {
                            value: stored.value.clone(),
                            height: stored.height,
                            expires: Instant::now() + Duration::from_secs(ttl),
                            memo: m.clone(),
                        },
                    );
                    memo = Some(m);
                }
                drop(records);
                Some(Cached {
                    value: stored.value,
                    height: stored.height,
                    memo,
                })
            }
        }
    }

    /// The L1 answer for `key`, if L1 holds a live entry: never blocks (no Redis, no ledger).
    /// Counts a hit, not a miss (a miss is counted by the [`Cache::get`] that follows).
    pub fn peek(&self, key: &str) -> Option<Cached> {
        let entry = self.inner.l1.as_ref()?.get(key)?;
        if entry.expires <= Instant::now() {
            return None;
        }
        self.inner.metrics.l1_hits.inc();
        Some(entry.cached())
    }

    /// Caches what a read of the ledger found for `key` (none: absent) at head `height`,
    /// unless a block newer than `height` changed the key meanwhile. Returns the new L1
    /// entry's [`Memo`], if it was cached in L1.
    pub fn fill(
        &self,
        key: &str,
        value: Option<Arc<str>>,
        height: u64,
        token: ReadToken,
    ) -> Option<Memo> {
        let inner = &*self.inner;
        let ttl = ttl_of(value.as_deref(), inner.ttl_max);
        if ttl == 0 {
            return None;
        }
        let mut memo = None;
        {
            let records = lock(&inner.records);
            if inner.generation.load(Ordering::Acquire) != token.generation
                || records.changed_after(key, height)
            {
                inner.metrics.stale_refused.inc();
                return None;
            }
            if let Some(l1) = &inner.l1 {
                let m = Memo::default();
                l1.insert(
                    key.to_string(),
                    Entry {
                        value: value.clone(),
                        height,
                        expires: Instant::now() + Duration::from_secs(ttl),
                        memo: m.clone(),
                    },
                );
                memo = Some(m);
            }
        }
        if let Some(l2) = &inner.l2 {
            l2.queue_insert(key, value.as_deref(), height, ttl);
        }
        memo
    }

    /// Caches in L1 only (never Redis) a value derived at commit and read at head `height`
    /// (a DID's answer record, [`crate::answers`]), for `ttl` seconds under the cap, unless a
    /// block newer than `height` changed it meanwhile. Returns the new entry's [`Memo`].
    pub fn fill_l1(
        &self,
        key: &str,
        value: Arc<str>,
        height: u64,
        ttl: u64,
        token: ReadToken,
    ) -> Option<Memo> {
        let inner = &*self.inner;
        let ttl = ttl.min(inner.ttl_max);
        let l1 = inner.l1.as_ref()?;
        if ttl == 0 {
            return None;
        }
        let records = lock(&inner.records);
        if inner.generation.load(Ordering::Acquire) != token.generation
            || records.changed_after(key, height)
        {
            inner.metrics.stale_refused.inc();
            return None;
        }
        let memo = Memo::default();
        l1.insert(
            key.to_string(),
            Entry {
                value: Some(value),
                height,
                expires: Instant::now() + Duration::from_secs(ttl),
                memo: memo.clone(),
            },
        );
        Some(memo)
    }

    /// Drops `keys`, changed by the block at `height`: from L1 at once, from Redis (and the
    /// replicas, through the channel) soon after when the block was committed here.
    pub fn invalidate(&self, height: u64, keys: &[String]) {
        self.inner.invalidate(height, keys.into(), Source::Local);
    }

    /// A listener for the ledger's commits (holds the cache weakly).
    pub fn commit_listener(&self) -> impl Fn(u64, &[String]) + Send + Sync + 'static {
        let weak = Arc::downgrade(&self.inner);
        move |height, keys| {
            if let Some(inner) = weak.upgrade() {
                inner.invalidate(height, keys.into(), Source::Local);
            }
        }
    }

    /// The cache's counters.
    pub fn metrics(&self) -> &CacheMetrics {
        &self.inner.metrics
    }

    /// Whether L1 holds `key` (without touching its recency).
    pub fn l1_contains(&self, key: &str) -> bool {
        self.inner
            .l1
            .as_ref()
            .is_some_and(|l1| l1.peek(key).is_some())
    }

    /// Bytes L1 holds (the sum of its entries' weights) and its bound.
    pub fn l1_bytes(&self) -> (u64, u64) {
        let used = self.inner.l1.as_ref().map_or(0, |l1| l1.weight());
        (used, self.inner.l1_capacity)
    }

    /// Entries in L1.
    pub fn l1_len(&self) -> usize {
        self.inner.l1.as_ref().map_or(0, |l1| l1.len())
    }

    /// Whether Redis is configured (in use now or not).
    pub fn l2_configured(&self) -> bool {
        self.inner.l2.is_some()
    }

    /// Whether Redis is configured and in use now.
    pub fn l2_up(&self) -> bool {
        self.inner
            .l2
            .as_ref()
            .is_some_and(|l2| l2.up.load(Ordering::Acquire))
    }

    /// Waits until Redis is in use and every queued write reached it; false on timeout.
    /// For tests and benchmarks.
    pub fn l2_settle(&self, timeout: Duration) -> bool {
        let Some(l2) = &self.inner.l2 else {
            return false;
        };
        let deadline = Instant::now() + timeout;
        loop {
            if l2.up.load(Ordering::Acquire) {
                let work = lock(&l2.work);
                if work.invalidations.is_empty() && work.inserts.is_empty() && !work.busy {
                    return true;
                }
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Refreshes the L1 gauges (called at each metrics scrape).
    pub fn refresh_gauges(&self) {
        let m = &self.inner.metrics;
        let (used, _) = self.l1_bytes();
        m.l1_bytes.set(i64::try_from(used).unwrap_or(i64::MAX));
        m.l1_entries
            .set(i64::try_from(self.l1_len()).unwrap_or(i64::MAX));
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        self.inner.shutdown.store(true, Ordering::Release);
        if let Some(l2) = &self.inner.l2 {
            l2.wake.notify_all();
        }
    }
}

impl Inner {
    fn invalidate(&self, height: u64, keys: Arc<[String]>, source: Source) {
        if keys.is_empty() {
            return;
        }
        match source {
            Source::Local => self.metrics.invalidations_local.inc_by(keys.len() as u64),
            Source::Remote => self.metrics.invalidations_remote.inc_by(keys.len() as u64),
        }
        let through = match &self.l2 {
            Some(l2) => {
                if source == Source::Local {
                    l2.queue_invalidation(height, keys.clone(), &self.metrics);
                }
                l2.prunable_through()
            }
            None => u64::MAX,
        };
        // What L1 derives from the keys goes with them (not counted, not sent to Redis): a
        // DID's answer record (`crate::answers`) is made from its `did/` and `aka/` keys.
        let derived: Vec<String> = keys.iter().filter_map(|k| answer_key_of_state(k)).collect();
        let keys: Arc<[String]> = if derived.is_empty() {
            keys
        } else {
            keys.iter().cloned().chain(derived).collect()
        };
        let mut records = lock(&self.records);
        records.record(height, &keys);
        if records.prune(through) {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        if let Some(l1) = &self.l1 {
            for key in keys.iter() {
                l1.remove(key.as_str());
            }
        }
    }

    /// Drops every L1 entry, and makes reads in flight not cache what they read.
    fn clear_l1(&self) {
        let _records = lock(&self.records);
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(l1) = &self.l1 {
            l1.clear();
        }
    }

    fn sleep(&self, duration: Duration) {
        let deadline = Instant::now() + duration;
        while !self.shutdown.load(Ordering::Acquire) {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            std::thread::sleep((deadline - now).min(POLL));
        }
    }

    /// The background writer: (re)connects, then writes tombstones and entries to Redis.
    fn run_writer(&self) {
        let Some(l2) = &self.l2 else { return };
        let mut backoff = MIN_BACKOFF;
        let mut con: Option<redis::Connection> = None;
        while !self.shutdown.load(Ordering::Acquire) {
            if con.is_none() || !l2.up.load(Ordering::Acquire) {
                match l2.connect(&*self.head) {
                    Ok(c) => {
                        con = Some(c);
                        l2.up.store(true, Ordering::Release);
                        self.metrics.l2_up.set(1);
                        backoff = MIN_BACKOFF;
                        info!("cache: Redis (L2) in use");
                    }
                    Err(e) => {
                        con = None;
                        self.metrics.l2_errors.inc();
                        debug!("cache: Redis (L2) not reachable: {e}");
                        self.sleep(backoff);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                }
            }
            let Some(job) = l2.next_job() else { continue };
            let Some(c) = con.as_mut() else { continue };
            let result = match &job {
                Job::Invalidate(height, keys) => {
                    l2.write_invalidation(c, *height, keys, self.origin)
                }
                Job::Insert(batch) => l2.write_inserts(c, batch),
            };
            let ok = result.is_ok();
            if let Err(e) = result {
                self.metrics.l2_errors.inc();
                con = None;
                l2.trip(&self.metrics, &e);
            }
            l2.finish(&job, ok);
        }
    }

    /// The channel listener: drops from L1 what replicas' blocks changed.
    fn run_subscriber(&self) {
        let Some(l2) = &self.l2 else { return };
        let mut backoff = MIN_BACKOFF;
        let mut subscribed_before = false;
        while !self.shutdown.load(Ordering::Acquire) {
            let mut con = match l2.client.get_connection_with_timeout(CONNECT_TIMEOUT) {
                Ok(c) => c,
                Err(_) => {
                    self.sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    continue;
                }
            };
            if con.set_read_timeout(Some(POLL)).is_err()
                || con.set_write_timeout(Some(MAINTENANCE_TIMEOUT)).is_err()
            {
                continue;
            }
            let mut pubsub = con.as_pubsub();
            if pubsub.subscribe(&l2.channel).is_err() {
                self.sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            backoff = MIN_BACKOFF;
            if subscribed_before {
                // Replicas' invalidations may have been missed while the channel was down.
                self.clear_l1();
                debug!("cache: channel re-subscribed; L1 cleared");
            }
            subscribed_before = true;
            while !self.shutdown.load(Ordering::Acquire) {
                match pubsub.get_message() {
                    Ok(message) => self.on_message(message.get_payload_bytes()),
                    Err(e) if e.is_timeout() => continue,
                    Err(_) => break,
                }
            }
        }
    }

    fn on_message(&self, payload: &[u8]) {
        let Some(l2) = &self.l2 else { return };
        let Some(json) = l2.open_message(payload) else {
            self.metrics.messages_refused.inc();
            warn!("cache: an invalidation message failed its HMAC: ignored");
            return;
        };
        let Ok(message) = serde_json::from_slice::<Message>(json) else {
            debug!("cache: ignoring a malformed channel message");
            return;
        };
        if message.origin == self.origin {
            return;
        }
        if let Some(l2) = &self.l2 {
            l2.network_head.fetch_max(message.height, Ordering::AcqRel);
        }
        self.invalidate(message.height, message.keys.into(), Source::Remote);
    }
}

/// An invalidation on the channel.
#[derive(Serialize, Deserialize)]
struct Message {
    #[serde(rename = "o")]
    origin: u64,
    #[serde(rename = "h")]
    height: u64,
    #[serde(rename = "k")]
    keys: Vec<String>,
}

/// What a Redis key holds.
struct Stored {
    value: Option<Arc<str>>,
    height: u64,
    expires: u64,
}

enum L2Read {
    Hit(Stored),
    Miss,
    /// A value whose HMAC does not hold (written by someone without the secret).
    Forged,
    Down,
    Failed(redis::RedisError),
}

type HmacSha256 = Hmac<Sha256>;

/// The HMAC of `parts` (each length-prefixed, so that no two sequences of parts collide).
fn mac_of(secret: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    // A key of any length is accepted by HMAC: `new_from_slice` cannot fail for it.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac
}

/// Encodes an entry stored under `redis_key`: `v<height> <expires> <hmac>\n<value>`, or
/// `n<height> <expires> <hmac>` for an absence (the stamp first: the Lua scripts read it).
fn encode(
    secret: &[u8],
    redis_key: &str,
    value: Option<&str>,
    height: u64,
    expires: u64,
) -> Vec<u8> {
    let kind = if value.is_some() { "v" } else { "n" };
    let header = format!("{kind}{height} {expires}");
    let tag = mac_of(
        secret,
        &[
            redis_key.as_bytes(),
            header.as_bytes(),
            value.unwrap_or("").as_bytes(),
        ],
    )
    .finalize()
    .into_bytes();
    let mut out = format!("{header} {}", hex::encode(tag)).into_bytes();
    if let Some(v) = value {
        out.push(b'\n');
        out.extend_from_slice(v.as_bytes());
    }
    out
}

/// An entry as Redis stores it under `redis_key`, sealed with `secret`: `value` (none: the key
/// is absent) as of block `height`, expiring at `expires` (Unix seconds). For tools and fuzzing;
/// the cache seals its own.
pub fn seal_entry(
    secret: &[u8],
    redis_key: &str,
    value: Option<&str>,
    height: u64,
    expires: u64,
) -> Vec<u8> {
    encode(secret, redis_key, value, height, expires)
}

/// What `bytes`, read from `redis_key`, holds if it is an entry sealed with `secret`: the value
/// (none: absent), the height and the expiry. None for a tombstone, anything malformed, and
/// anything whose HMAC does not hold.
pub fn open_entry(
    secret: &[u8],
    redis_key: &str,
    bytes: &[u8],
) -> Option<(Option<String>, u64, u64)> {
    match decode(secret, redis_key, bytes) {
        Decoded::Entry(s) => Some((s.value.map(|v| v.to_string()), s.height, s.expires)),
        Decoded::Forged | Decoded::Nothing => None,
    }
}

/// The JSON of an invalidation message published on `channel`, if its HMAC (keyed by
/// `secret`) holds.
pub fn open_message<'a>(secret: &[u8], channel: &str, payload: &'a [u8]) -> Option<&'a [u8]> {
    let space = payload.iter().position(|&b| b == b' ')?;
    let tag = hex::decode(&payload[..space]).ok()?;
    let json = &payload[space + 1..];
    mac_of(secret, &[channel.as_bytes(), json])
        .verify_slice(&tag)
        .ok()?;
    Some(json)
}

/// What a Redis key holds, once read.
enum Decoded {
    /// An entry whose HMAC holds.
    Entry(Stored),
    /// An entry whose HMAC does not hold, or that carries none.
    Forged,
    /// A tombstone, or anything else that is no entry.
    Nothing,
}

/// Decodes what `redis_key` holds, checking the entry's HMAC.
fn decode(secret: &[u8], redis_key: &str, bytes: &[u8]) -> Decoded {
    let Some((&kind, rest)) = bytes.split_first() else {
        return Decoded::Nothing;
    };
    let (line, value) = match kind {
        b'v' => match rest.iter().position(|&b| b == b'\n') {
            Some(newline) => (&rest[..newline], Some(&rest[newline + 1..])),
            None => return Decoded::Forged,
        },
        b'n' => (rest, None),
        _ => return Decoded::Nothing,
    };
    let Ok(line) = std::str::from_utf8(line) else {
        return Decoded::Forged;
    };
    let mut fields = line.split(' ');
    let (Some(height), Some(expires), Some(tag), None) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Decoded::Forged;
    };
    let Ok(tag) = hex::decode(tag) else {
        return Decoded::Forged;
    };
    let header = &bytes[..1 + height.len() + 1 + expires.len()];
    let verified = mac_of(
        secret,
        &[redis_key.as_bytes(), header, value.unwrap_or(b"")],
    )
    .verify_slice(&tag)
    .is_ok();
    if !verified {
        return Decoded::Forged;
    }
    let value = match value.map(std::str::from_utf8).transpose() {
        Ok(v) => v.map(Arc::<str>::from),
        Err(_) => return Decoded::Forged,
    };
    match (height.parse(), expires.parse()) {
        (Ok(height), Ok(expires)) => Decoded::Entry(Stored {
            value,
            height,
            expires,
        }),
        _ => Decoded::Forged,
    }
}

struct Insert {
    key: String,
    payload: Vec<u8>,
    height: u64,
    ttl: u64,
}

enum Job {
    Invalidate(u64, Arc<[String]>),
    Insert(Vec<Insert>),
}

#[derive(Default)]
struct Work {
    invalidations: VecDeque<(u64, Arc<[String]>)>,
    pending_keys: usize,
    inserts: VecDeque<Insert>,
    busy: bool,
    /// Bumped when pending invalidations are dropped; Redis is emptied before reuse until
    /// `flushed_epoch` catches up.
    flush_epoch: u64,
    flushed_epoch: u64,
    run_id: Option<String>,
    connected_once: bool,
}

struct L2 {
    client: redis::Client,
    /// Keys the HMAC of every value and message.
    secret: Vec<u8>,
    prefix: String,
    height_key: String,
    channel: String,
    tombstone_ttl: u64,
    pool: Mutex<Vec<redis::Connection>>,
    up: AtomicBool,
    work: Mutex<Work>,
    wake: Condvar,
    network_head: AtomicU64,
    insert: redis::Script,
    invalidate: redis::Script,
    advance: redis::Script,
}

fn run_id(con: &mut redis::Connection) -> redis::RedisResult<String> {
    let info: String = redis::cmd("INFO").arg("server").query(con)?;
    Ok(info
        .lines()
        .find_map(|l| l.strip_prefix("run_id:"))
        .unwrap_or("")
        .trim()
        .to_string())
}

impl L2 {
    fn new(url: &str, namespace: &str, ttl_max: u64, secret: Vec<u8>) -> Result<L2, CacheError> {
        let client = redis::Client::open(url).map_err(CacheError::RedisUrl)?;
        Ok(L2 {
            client,
            secret,
            prefix: format!("sparkid:{namespace}:k:"),
            height_key: format!("sparkid:{namespace}:height"),
            channel: format!("sparkid:{namespace}:invalidations"),
            tombstone_ttl: ttl_max.max(1),
            pool: Mutex::new(Vec::new()),
            up: AtomicBool::new(false),
            work: Mutex::new(Work::default()),
            wake: Condvar::new(),
            network_head: AtomicU64::new(0),
            insert: redis::Script::new(INSERT_LUA),
            invalidate: redis::Script::new(INVALIDATE_LUA),
            advance: redis::Script::new(ADVANCE_LUA),
        })
    }

    /// An invalidation message as published: `<hmac> <json>`.
    fn seal_message(&self, json: &str) -> String {
        let tag = mac_of(&self.secret, &[self.channel.as_bytes(), json.as_bytes()])
            .finalize()
            .into_bytes();
        format!("{} {json}", hex::encode(tag))
    }

    /// The JSON of a published message, if its HMAC holds.
    fn open_message<'a>(&self, payload: &'a [u8]) -> Option<&'a [u8]> {
        open_message(&self.secret, &self.channel, payload)
    }

    fn redis_key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.prefix.len() + key.len());
        k.push_str(&self.prefix);
        k.push_str(key);
        k
    }

    /// Marks Redis down: reads skip it until the writer has reconnected.
    fn trip(&self, metrics: &CacheMetrics, error: &redis::RedisError) {
        if self.up.swap(false, Ordering::AcqRel) {
            warn!("cache: Redis (L2) failed, serving without it until it is back: {error}");
        }
        metrics.l2_up.set(0);
        lock(&self.pool).clear();
        let mut work = lock(&self.work);
        work.inserts.clear();
        drop(work);
        self.wake.notify_all();
    }

    /// A read-path connection: pooled, or new (and then checked to be the Redis instance the
    /// writer prepared, so that a restarted Redis is never read before it is emptied).
    fn connection(&self) -> redis::RedisResult<redis::Connection> {
        if let Some(con) = lock(&self.pool).pop() {
            return Ok(con);
        }
        let mut con = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        con.set_read_timeout(Some(COMMAND_TIMEOUT))?;
        con.set_write_timeout(Some(COMMAND_TIMEOUT))?;
        let id = run_id(&mut con)?;
        if lock(&self.work).run_id.as_deref() != Some(id.as_str()) {
            return Err(redis::RedisError::from((
                redis::ErrorKind::IoError,
                "Redis restarted",
            )));
        }
        Ok(con)
    }

    fn get(&self, key: &str) -> L2Read {
        if !self.up.load(Ordering::Acquire) {
            return L2Read::Down;
        }
        let mut con = match self.connection() {
            Ok(c) => c,
            Err(e) => return L2Read::Failed(e),
        };
        let raw: Option<Vec<u8>> = match redis::cmd("GET").arg(self.redis_key(key)).query(&mut con)
        {
            Ok(v) => v,
            Err(e) => return L2Read::Failed(e),
        };
        {
            let mut pool = lock(&self.pool);
            if pool.len() < POOL_IDLE && self.up.load(Ordering::Acquire) {
                pool.push(con);
            }
        }
        let Some(raw) = raw else {
            return L2Read::Miss;
        };
        match decode(&self.secret, &self.redis_key(key), &raw) {
            Decoded::Entry(stored) => L2Read::Hit(stored),
            Decoded::Forged => L2Read::Forged,
            Decoded::Nothing => L2Read::Miss,
        }
    }

    /// [`L2::get`] for several keys in one round trip (`MGET`). When Redis fails, the first
    /// read carries the failure (which marks Redis down) and the others count as skipped.
    fn get_many(&self, keys: &[&str]) -> Vec<L2Read> {
        let skipped = |n: usize| (0..n).map(|_| L2Read::Down).collect::<Vec<_>>();
        if keys.len() == 1 {
            return vec![self.get(keys[0])];
        }
        if !self.up.load(Ordering::Acquire) {
            return skipped(keys.len());
        }
        let failed = |e: redis::RedisError| {
            let mut reads = vec![L2Read::Failed(e)];
            reads.extend(skipped(keys.len() - 1));
            reads
        };
        let mut con = match self.connection() {
            Ok(c) => c,
            Err(e) => return failed(e),
        };
        let redis_keys: Vec<String> = keys.iter().map(|key| self.redis_key(key)).collect();
        let raws: Vec<Option<Vec<u8>>> = match redis::cmd("MGET").arg(&redis_keys).query(&mut con) {
            Ok(v) => v,
            Err(e) => return failed(e),
        };
        {
            let mut pool = lock(&self.pool);
            if pool.len() < POOL_IDLE && self.up.load(Ordering::Acquire) {
                pool.push(con);
            }
        }
        if raws.len() != keys.len() {
            return failed(redis::RedisError::from((
                redis::ErrorKind::TypeError,
                "MGET answered a different number of values",
            )));
        }
        raws.into_iter()
            .zip(&redis_keys)
            .map(|(raw, redis_key)| match raw {
                None => L2Read::Miss,
                Some(raw) => match decode(&self.secret, redis_key, &raw) {
                    Decoded::Entry(stored) => L2Read::Hit(stored),
                    Decoded::Forged => L2Read::Forged,
                    Decoded::Nothing => L2Read::Miss,
                },
            })
            .collect()
    }

    fn queue_insert(&self, key: &str, value: Option<&str>, height: u64, ttl: u64) {
        if !self.up.load(Ordering::Acquire) || height < self.network_head.load(Ordering::Acquire) {
            return;
        }
        let mut work = lock(&self.work);
        if work.inserts.len() >= INSERT_QUEUE_LIMIT {
            return;
        }
        let redis_key = self.redis_key(key);
        let payload = encode(&self.secret, &redis_key, value, height, unix_now() + ttl);
        work.inserts.push_back(Insert {
            key: redis_key,
            payload,
            height,
            ttl,
        });
        drop(work);
        self.wake.notify_one();
    }

    fn queue_invalidation(&self, height: u64, keys: Arc<[String]>, metrics: &CacheMetrics) {
        self.network_head.fetch_max(height, Ordering::AcqRel);
        let mut work = lock(&self.work);
        if work.pending_keys + keys.len() > PENDING_LIMIT {
            // Too far behind: drop what waits and empty the namespace before Redis is reused.
            work.invalidations.clear();
            work.pending_keys = 0;
            work.flush_epoch += 1;
            drop(work);
            let e = redis::RedisError::from((
                redis::ErrorKind::IoError,
                "too many invalidations waiting for Redis",
            ));
            self.trip(metrics, &e);
            return;
        }
        work.pending_keys += keys.len();
        work.invalidations.push_back((height, keys));
        drop(work);
        self.wake.notify_one();
    }

    /// Invalidation records up to this height may be pruned: their tombstones are in Redis
    /// (or Redis will be emptied before it is used again).
    fn prunable_through(&self) -> u64 {
        let work = lock(&self.work);
        if work.flush_epoch > work.flushed_epoch {
            return u64::MAX;
        }
        work.invalidations
            .front()
            .map_or(u64::MAX, |(height, _)| height.saturating_sub(1))
    }

    fn next_job(&self) -> Option<Job> {
        let mut work = lock(&self.work);
        if work.invalidations.is_empty() && work.inserts.is_empty() {
            work = match self.wake.wait_timeout(work, POLL) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        if !self.up.load(Ordering::Acquire) {
            return None;
        }
        if let Some((height, keys)) = work.invalidations.front() {
            let job = Job::Invalidate(*height, keys.clone());
            work.busy = true;
            return Some(job);
        }
        if !work.inserts.is_empty() {
            let n = work.inserts.len().min(INSERT_BATCH);
            let batch: Vec<Insert> = work.inserts.drain(..n).collect();
            work.busy = true;
            return Some(Job::Insert(batch));
        }
        None
    }

    fn finish(&self, job: &Job, ok: bool) {
        let mut work = lock(&self.work);
        work.busy = false;
        if let (Job::Invalidate(height, keys), true) = (job, ok) {
            let done = matches!(work.invalidations.front(), Some((h, k)) if h == height && Arc::ptr_eq(k, keys));
            if done {
                work.invalidations.pop_front();
                work.pending_keys = work.pending_keys.saturating_sub(keys.len());
            }
        }
    }

    /// Connects the writer: checks which Redis this is, empties the namespace when its content
    /// cannot be trusted, loads the scripts.
    fn connect(&self, head: &dyn Fn() -> u64) -> redis::RedisResult<redis::Connection> {
        let mut con = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        con.set_read_timeout(Some(MAINTENANCE_TIMEOUT))?;
        con.set_write_timeout(Some(MAINTENANCE_TIMEOUT))?;
        let id = run_id(&mut con)?;
        let recorded: Option<u64> = redis::cmd("GET").arg(&self.height_key).query(&mut con)?;
        let recorded = recorded.unwrap_or(0);
        let head = head();
        let (epoch, reason) = {
            let work = lock(&self.work);
            let reason = if work.flush_epoch > work.flushed_epoch {
                Some("invalidations were dropped while Redis was away")
            } else if work.run_id.as_deref().is_some_and(|r| r != id) {
                Some("Redis restarted")
            } else if !work.connected_once && recorded < head {
                Some("Redis has not seen every block up to the head")
            } else {
                None
            };
            (work.flush_epoch, reason)
        };
        if let Some(reason) = reason {
            let removed = self.flush(&mut con)?;
            let _: () = redis::cmd("SET")
                .arg(&self.height_key)
                .arg(head.max(recorded))
                .query(&mut con)?;
            info!(
                removed,
                "cache: emptied this chain's Redis entries: {reason}"
            );
        }
        self.insert.prepare_invoke().load(&mut con)?;
        self.invalidate.prepare_invoke().load(&mut con)?;
        self.advance.prepare_invoke().load(&mut con)?;
        self.network_head.fetch_max(recorded, Ordering::AcqRel);
        let mut work = lock(&self.work);
        work.run_id = Some(id);
        work.connected_once = true;
        if reason.is_some() {
            work.flushed_epoch = work.flushed_epoch.max(epoch);
        }
        drop(work);
        lock(&self.pool).clear();
        Ok(con)
    }

    /// Removes every entry and tombstone of this chain.
    fn flush(&self, con: &mut redis::Connection) -> redis::RedisResult<usize> {
        let pattern = format!("{}*", self.prefix);
        let mut cursor: u64 = 0;
        let mut removed = 0;
        loop {
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query(con)?;
            if !keys.is_empty() {
                let _: () = redis::cmd("UNLINK").arg(&keys).query(con)?;
                removed += keys.len();
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }

    fn write_invalidation(
        &self,
        con: &mut redis::Connection,
        height: u64,
        keys: &[String],
        origin: u64,
    ) -> redis::RedisResult<()> {
        let mut pipe = redis::pipe();
        for chunk in keys.chunks(CHUNK) {
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(self.invalidate.get_hash()).arg(chunk.len());
            for key in chunk {
                cmd.arg(self.redis_key(key));
            }
            cmd.arg(height).arg(self.tombstone_ttl);
            pipe.add_command(cmd).ignore();
        }
        let message = self.seal_message(
            &serde_json::to_string(&Message {
                origin,
                height,
                keys: keys.to_vec(),
            })
            .unwrap_or_default(),
        );
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.advance.get_hash())
            .arg(1)
            .arg(&self.height_key)
            .arg(height)
            .arg(&self.channel)
            .arg(message);
        pipe.add_command(cmd).ignore();
        pipe.query::<()>(con)
    }

    fn write_inserts(
        &self,
        con: &mut redis::Connection,
        batch: &[Insert],
    ) -> redis::RedisResult<()> {
        let mut pipe = redis::pipe();
        for insert in batch {
            let mut cmd = redis::cmd("EVALSHA");
            cmd.arg(self.insert.get_hash())
                .arg(1)
                .arg(&insert.key)
                .arg(insert.height)
                .arg(&insert.payload)
                .arg(insert.ttl);
            pipe.add_command(cmd).ignore();
        }
        pipe.query::<()>(con)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(l1_bytes: u64, ttl_max: u64) -> Cache {
        let config = CacheConfig {
            l1_bytes,
            redis_url: None,
            ttl_max,
            redis_secret: None,
        };
        Cache::new(
            &config,
            "test",
            CacheMetrics::standalone().unwrap(),
            Box::new(|| 0),
        )
        .unwrap()
    }

    fn record(ttl: Option<u64>, filler: usize) -> Arc<str> {
        let mut doc = serde_json::json!({"id": "did:bid:x", "filler": "x".repeat(filler)});
        if let Some(ttl) = ttl {
            doc["extension"] = serde_json::json!({ "ttl": ttl });
        }
        serde_json::json!({"document": doc, "versionId": 1})
            .to_string()
            .into()
    }

    #[test]
    fn a_filled_value_is_served_with_its_height() {
        let c = cache(1 << 20, 3600);
        let t = c.begin();
        assert_eq!(c.get("k", t), None);
        c.fill("k", Some(record(None, 10)), 7, t);
        let hit = c.get("k", c.begin()).unwrap();
        assert_eq!(hit.height, 7);
        assert_eq!(hit.value, Some(record(None, 10)));
        // Absence is cached too.
        c.fill("gone", None, 7, c.begin());
        assert_eq!(
            c.get("gone", c.begin()),
            Some(Cached {
                value: None,
                height: 7,
                memo: None,
            })
        );
    }

    #[test]
    fn the_block_that_changes_a_key_drops_it() {
        let c = cache(1 << 20, 3600);
        c.fill("k", Some(record(None, 10)), 3, c.begin());
        c.fill("other", Some(record(None, 10)), 3, c.begin());
        c.invalidate(4, &["k".to_string()]);
        assert!(c.get("k", c.begin()).is_none());
        assert!(c.get("other", c.begin()).is_some());
    }

    #[test]
    fn a_value_read_before_a_block_is_not_cached_after_its_invalidation() {
        let c = cache(1 << 20, 3600);
        // A reader takes its token and the head (3), reads the old value...
        let token = c.begin();
        let stale = record(None, 1);
        // ...block 4 changes the key and is invalidated...
        c.invalidate(4, &["k".to_string()]);
        // ...and the reader's late insert is refused.
        c.fill("k", Some(stale), 3, token);
        assert!(c.get("k", c.begin()).is_none());
        // A value read at the new head is cached.
        c.fill("k", Some(record(None, 2)), 4, c.begin());
        assert_eq!(c.get("k", c.begin()).unwrap().height, 4);
    }

    #[test]
    fn pruning_the_records_refuses_reads_that_spanned_it() {
        let c = cache(1 << 20, 3600);
        let token = c.begin();
        let keys: Vec<String> = (0..RECORD_LIMIT + 1).map(|i| format!("x{i}")).collect();
        c.invalidate(2, &keys);
        // The block holding "x0" is pruned at once (over the limit, nothing waits for Redis),
        // so the record no longer says "x0" changed at 2: the token must catch it.
        c.fill("x0", Some(record(None, 1)), 1, token);
        assert!(c.get("x0", c.begin()).is_none());
    }

    #[test]
    fn l1_holds_no_more_bytes_than_configured() {
        let capacity = 256 * 1024;
        let c = cache(capacity, 3600);
        let value = record(None, 900);
        let weight = entry_weight("key-00000", Some(&value));
        for i in 0..2000 {
            c.fill(&format!("key-{i:05}"), Some(value.clone()), 1, c.begin());
            let (used, bound) = c.l1_bytes();
            assert!(used <= bound, "{used} > {bound} after {i} inserts");
        }
        let (used, _) = c.l1_bytes();
        assert!(c.l1_len() as u64 * weight <= capacity);
        // It is full enough to be useful, not empty.
        assert!(used > capacity / 2, "{used}");
        // The most recent entry is there; the first ones were evicted.
        assert!(c.l1_contains("key-01999"));
        assert!(!c.l1_contains("key-00000"));
    }

    #[test]
    fn a_derived_form_is_computed_once_per_entry_and_dropped_with_it() {
        let c = cache(1 << 20, 3600);
        let memo = c.fill("k", Some(record(None, 1)), 1, c.begin()).unwrap();
        let first = memo.get_or_derive(|| 41 + 1);
        let again = c
            .peek("k")
            .unwrap()
            .memo
            .unwrap()
            .get_or_derive::<i32>(|| unreachable!("computed twice"));
        assert!(Arc::ptr_eq(&first, &again));
        // Another type is computed, not kept.
        assert_eq!(
            *c.peek("k").unwrap().memo.unwrap().get_or_derive(|| "x"),
            "x"
        );
        c.invalidate(2, &["k".to_string()]);
        assert!(c.peek("k").is_none());
        let memo = c.fill("k", Some(record(None, 2)), 2, c.begin()).unwrap();
        assert_eq!(*memo.get_or_derive(|| 7), 7);
    }

    #[test]
    fn l1_off_caches_nothing() {
        let c = cache(0, 3600);
        c.fill("k", Some(record(None, 1)), 1, c.begin());
        assert!(c.get("k", c.begin()).is_none());
        assert_eq!(c.l1_bytes(), (0, 0));
    }

    #[test]
    fn the_ttl_is_the_documents_under_the_cap() {
        assert_eq!(ttl_of(Some(&record(Some(600), 1)), 3600), 600);
        assert_eq!(ttl_of(Some(&record(Some(99_999), 1)), 3600), 3600);
        assert_eq!(ttl_of(Some(&record(None, 1)), 3600), 3600);
        assert_eq!(ttl_of(Some(&record(None, 1)), 100_000), DEFAULT_TTL);
        assert_eq!(ttl_of(Some("not json"), 50), 50);
        assert_eq!(ttl_of(None, 10), 10);
        assert_eq!(ttl_of(Some(&record(Some(0), 1)), 3600), 0);
    }

    #[test]
    fn an_entry_expires_at_the_cap() {
        let c = cache(1 << 20, 1);
        c.fill("k", Some(record(Some(600), 1)), 1, c.begin());
        assert!(c.get("k", c.begin()).is_some());
        std::thread::sleep(Duration::from_millis(1100));
        assert!(c.get("k", c.begin()).is_none());
        // A zero TTL is never cached.
        c.fill("z", Some(record(Some(0), 1)), 1, c.begin());
        assert!(c.get("z", c.begin()).is_none());
    }

    const SECRET: &[u8] = b"0123456789abcdef";

    fn entry(decoded: Decoded) -> Option<Stored> {
        match decoded {
            Decoded::Entry(s) => Some(s),
            _ => None,
        }
    }

    #[test]
    fn entries_round_trip_through_their_redis_encoding() {
        let v = encode(SECRET, "k", Some("{\"a\":\"b\\nc\"}"), 12, 1_900_000_000);
        let s = entry(decode(SECRET, "k", &v)).unwrap();
        assert_eq!(s.value.as_deref(), Some("{\"a\":\"b\\nc\"}"));
        assert_eq!((s.height, s.expires), (12, 1_900_000_000));
        let n = entry(decode(SECRET, "k", &encode(SECRET, "k", None, 3, 4))).unwrap();
        assert_eq!((n.value, n.height, n.expires), (None, 3, 4));
        assert!(matches!(decode(SECRET, "k", b"t5"), Decoded::Nothing));
        assert!(matches!(decode(SECRET, "k", b""), Decoded::Nothing));
        assert!(matches!(decode(SECRET, "k", b"vx 1\n{}"), Decoded::Forged));
    }

    #[test]
    fn an_entry_is_served_only_under_its_own_key_with_its_own_secret() {
        let v = encode(SECRET, "k", Some("{}"), 12, 1_900_000_000);
        assert!(matches!(
            decode(b"another secret!!", "k", &v),
            Decoded::Forged
        ));
        assert!(matches!(decode(SECRET, "other", &v), Decoded::Forged));
        // Any change of the stamp, the expiry or the value breaks it.
        let text = String::from_utf8(v).unwrap();
        for forged in [
            text.replacen("v12 ", "v9223372036854775808 ", 1),
            text.replacen(" 1900000000 ", " 1900000001 ", 1),
            text.replacen("\n{}", "\n{\"x\":1}", 1),
            "v12 1900000000\n{}".to_string(),
        ] {
            assert!(
                matches!(decode(SECRET, "k", forged.as_bytes()), Decoded::Forged),
                "{forged}"
            );
        }
    }
}
