//! The chain-anchored cache, with real `redis-server` processes (`scripts/test` installs it):
//! spawned `sparkid` daemons driven over HTTP, and two in-process replicas of one chain sharing
//! one Redis.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sparkid_bid::{Bid, PrivateKey};
use sparkid_registrar::{did_key, Operation};
use sparkid_resolver::cache::CacheConfig;
use sparkid_resolver::cache::CacheMetrics;
use sparkid_resolver::records::{namespace, Records};
use sparkid_test_support::DevChain;

mod common;

use common::{sign_and_send, Daemon, Redis};

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A sample of the daemon's `/metrics`, by exact series name (with labels).
fn metric(d: &Daemon, series: &str) -> f64 {
    common::metric(&d.base, series).unwrap_or_else(|| panic!("no {series} in /metrics"))
}

fn resolve(base: &str, did: &str) -> (u16, Value) {
    common::get_json(&format!("{base}/1.0/identifiers/{did}"))
}

fn version(resolved: &Value) -> u64 {
    resolved["didDocumentMetadata"]["versionId"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no versionId in {resolved}"))
}

/// The client-managed registrar exchange: ask, sign the serialized payload, answer.
/// Creates a DID through the daemon; returns it and its native document.
fn create(base: &str, key: &PrivateKey) -> (String, Value) {
    let doc = sparkid_registrar::api::new_document(&key.public_key(), None).unwrap();
    let did = doc["id"].as_str().unwrap().to_string();
    let (status, created) = sign_and_send(
        &format!("{base}/1.0/create?method=bid"),
        json!({"options": {"clientSecretMode": true}, "didDocument": doc}),
        key,
    );
    assert_eq!(status, 201, "{created}");
    (did, doc)
}

/// Updates the DID's service endpoint to `https://v<n>.example`.
fn update(base: &str, did: &str, doc: &Value, key: &PrivateKey, n: u64) {
    let mut changed = doc.clone();
    changed["service"] = json!([{"id": format!("{did}#svc"), "type": "LinkedDomains", "serviceEndpoint": format!("https://v{n}.example")}]);
    let (status, answer) = sign_and_send(
        &format!("{base}/1.0/update"),
        json!({"did": did, "didDocument": changed}),
        key,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["didState"]["state"], "finished", "{answer}");
}

/// (a) Warm entries, then updates: the resolution after each finished update shows it, and no
/// resolution ever goes back to an older version than one already acknowledged, with L1 and
/// with L1 off (Redis serving).
#[test]
fn the_resolution_after_an_update_shows_it_never_a_stale_version() {
    let redis = Redis::start();
    for l1_bytes in ["134217728", "0"] {
        let dir = tempfile::tempdir().unwrap();
        let url = redis.url();
        let d = Daemon::start_with(
            dir.path(),
            &["--redis-url", &url, "--cache-bytes", l1_bytes],
        );
        wait_for("Redis in use", Duration::from_secs(10), || {
            metric(&d, "sparkid_cache_l2_up") == 1.0
        });
        let key = PrivateKey::generate();
        let (did, doc) = create(&d.base, &key);
        // Warm: the first resolution fills the cache, the next ones are hits.
        for _ in 0..5 {
            let (status, body) = resolve(&d.base, &did);
            assert_eq!(status, 200, "{body}");
            assert_eq!(version(&body), 1);
        }
        let tier = if l1_bytes == "0" { "l2" } else { "l1" };
        let hits = format!("sparkid_cache_hits_total{{tier=\"{tier}\"}}");
        wait_for("cache hits", Duration::from_secs(10), || {
            resolve(&d.base, &did);
            metric(&d, &hits) >= 1.0
        });

        // Readers resolve without pause while the DID is updated.
        let acknowledged = Arc::new(AtomicU64::new(1));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (base, did) = (d.base.clone(), did.clone());
                let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut seen = 0;
                    while !stop.load(Ordering::Acquire) {
                        let floor = acknowledged.load(Ordering::Acquire);
                        let (status, body) = resolve(&base, &did);
                        assert_eq!(status, 200, "{body}");
                        let v = version(&body);
                        assert!(
                            v >= floor,
                            "resolved version {v} after {floor} was finished"
                        );
                        seen += 1;
                    }
                    seen
                })
            })
            .collect();
        for n in 2..=6 {
            update(&d.base, &did, &doc, &key, n);
            acknowledged.store(n, Ordering::Release);
            let (status, body) = resolve(&d.base, &did);
            assert_eq!(status, 200);
            assert_eq!(version(&body), n, "{body}");
            assert_eq!(
                body["didDocument"]["service"][0]["serviceEndpoint"],
                json!(format!("https://v{n}.example"))
            );
        }
        stop.store(true, Ordering::Release);
        let reads: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
        assert!(reads > 10, "the readers ran {reads} resolutions");
        assert!(metric(&d, "sparkid_cache_invalidations_total{source=\"local\"}") >= 6.0);
        assert_eq!(metric(&d, "sparkid_cache_l2_errors_total"), 0.0);
    }
}

/// (c) Redis killed mid-run: answers stay correct (and prompt), the L2 error metric counts up;
/// Redis started again on the same port: L2 is used again without restarting the daemon.
#[test]
fn redis_stopped_mid_run_costs_speed_not_answers_and_is_used_again_when_back() {
    let mut redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    // L1 off: every read goes to Redis, so its loss and return are visible.
    let d = Daemon::start_with(dir.path(), &["--redis-url", &url, "--cache-bytes", "0"]);
    wait_for("Redis in use", Duration::from_secs(10), || {
        metric(&d, "sparkid_cache_l2_up") == 1.0
    });
    let key = PrivateKey::generate();
    let (did, doc) = create(&d.base, &key);
    let l2_hits = "sparkid_cache_hits_total{tier=\"l2\"}";
    wait_for("L2 hits", Duration::from_secs(10), || {
        assert_eq!(version(&resolve(&d.base, &did).1), 1);
        metric(&d, l2_hits) >= 1.0
    });
    assert_eq!(metric(&d, "sparkid_cache_l2_errors_total"), 0.0);

    redis.kill();
    let start = Instant::now();
    for _ in 0..20 {
        let (status, body) = resolve(&d.base, &did);
        assert_eq!(status, 200, "{body}");
        assert_eq!(version(&body), 1);
    }
    // Every one answered, current (correctness); how fast is printed, not asserted.
    eprintln!("20 resolutions took {:?} with Redis down", start.elapsed());
    update(&d.base, &did, &doc, &key, 2);
    assert_eq!(version(&resolve(&d.base, &did).1), 2);
    assert!(metric(&d, "sparkid_cache_l2_errors_total") >= 1.0);
    assert_eq!(metric(&d, "sparkid_cache_l2_up"), 0.0);
    let errors = metric(&d, "sparkid_cache_l2_errors_total");
    wait_for(
        "reconnection attempts to count",
        Duration::from_secs(10),
        || metric(&d, "sparkid_cache_l2_errors_total") > errors,
    );

    redis.restart();
    wait_for("Redis in use again", Duration::from_secs(15), || {
        metric(&d, "sparkid_cache_l2_up") == 1.0
    });
    let hits = metric(&d, l2_hits);
    wait_for("L2 hits again", Duration::from_secs(10), || {
        assert_eq!(version(&resolve(&d.base, &did).1), 2);
        metric(&d, l2_hits) > hits
    });
    // And it is still never stale.
    update(&d.base, &did, &doc, &key, 3);
    assert_eq!(version(&resolve(&d.base, &did).1), 3);
}

/// (d) The TTL cap applies to L1 entries in the daemon.
#[test]
fn an_l1_entry_lives_no_longer_than_the_ttl_cap() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(dir.path(), &["--cache-ttl-max", "1"]);
    let key = PrivateKey::generate();
    let (did, _) = create(&d.base, &key);
    let misses = "sparkid_cache_misses_total{tier=\"l1\"}";
    let hits = "sparkid_cache_hits_total{tier=\"l1\"}";
    // A resolution reads the DID's record (and its bound identifiers): a second read within
    // the cap is all from L1. When a loaded machine takes longer than the cap between the two
    // reads, the entry may rightly be gone: that pass proves nothing and is tried again.
    let mut passes = 0;
    let m0 = loop {
        passes += 1;
        let filled = Instant::now();
        resolve(&d.base, &did);
        let (m0, h0) = (metric(&d, misses), metric(&d, hits));
        resolve(&d.base, &did);
        let (m1, h1) = (metric(&d, misses), metric(&d, hits));
        let took = filled.elapsed();
        eprintln!("fill and second read: {took:?}");
        if took < Duration::from_millis(900) {
            assert!(h1 > h0, "the second read did not hit L1");
            assert_eq!(m1, m0, "the second read missed L1 within the cap");
            break m1;
        }
        assert!(passes < 20, "never two reads within the 1 s cap");
    };
    // Well past the cap, the entry is gone.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(version(&resolve(&d.base, &did).1), 1);
    assert!(metric(&d, misses) > m0, "the entry outlived the 1 s cap");
}

/// Two replicas of one new one-validator chain: blocks are proposed on the first and applied
/// on the second, as a follower would.
fn pair() -> (DevChain, DevChain) {
    let a = DevChain::new();
    let b = a.replica();
    (a, b)
}

/// A DID with its key and native document (with `extension.ttl` when given).
struct Identity {
    key: PrivateKey,
    did: String,
    state_key: String,
    doc: Value,
}

impl Identity {
    fn new(ttl: Option<u64>) -> Identity {
        let key = PrivateKey::generate();
        let template = ttl.map(|t| json!({"extension": {"ttl": t}}));
        let doc = sparkid_registrar::api::new_document(&key.public_key(), template).unwrap();
        let did = doc["id"].as_str().unwrap().to_string();
        let bid: Bid = did.parse().unwrap();
        Identity {
            key,
            state_key: did_key(&bid),
            did,
            doc,
        }
    }

    fn create(&self) -> (&PrivateKey, String, Operation) {
        (
            &self.key,
            format!("{}#key-1", self.did),
            Operation::Create {
                document: self.doc.clone(),
            },
        )
    }

    fn update(&self, n: u64) -> (&PrivateKey, String, Operation) {
        let mut doc = self.doc.clone();
        doc["service"] = json!([{"id": format!("{}#svc", self.did), "type": "LinkedDomains", "serviceEndpoint": format!("https://v{n}.example")}]);
        (
            &self.key,
            format!("{}#key-1", self.did),
            Operation::Update {
                document: doc,
                previous_version_id: None,
            },
        )
    }
}

fn version_of(records: &Records, key: &str) -> Option<u64> {
    records.current(key, false).unwrap().map(|a| {
        serde_json::from_str::<Value>(&a.value).unwrap()["versionId"]
            .as_u64()
            .unwrap()
    })
}

fn cached(
    chain: &DevChain,
    redis: Option<&Redis>,
    l1_bytes: u64,
    ttl_max: u64,
) -> (Records, CacheMetrics) {
    let metrics = CacheMetrics::standalone().unwrap();
    let config = CacheConfig {
        l1_bytes,
        redis_url: redis.map(Redis::url),
        ttl_max,
        redis_secret: Some("the replicas' shared secret".into()),
    };
    let records = Records::cached(chain.ledger.clone(), &config, metrics.clone()).unwrap();
    if redis.is_some() {
        assert!(records.cache().unwrap().l2_settle(Duration::from_secs(10)));
    }
    (records, metrics)
}

/// (b) Two replicas of one chain share one Redis: a block committed on one drops the changed
/// keys from the other's L1 through the Redis channel, before the other has even applied the
/// block; the other then refuses to cache its own older value, and serves the new one once it
/// has the block.
#[test]
fn a_block_committed_on_one_replica_drops_the_entry_from_the_others_l1() {
    let redis = Redis::start();
    let (mut a, b) = pair();
    let id = Identity::new(None);
    let newcomer = Identity::new(None);
    let h = a.commit(vec![id.create()]);
    b.apply_from(&a, h);
    let (ra, ma) = cached(&a, Some(&redis), 1 << 20, 3600);
    let (rb, mb) = cached(&b, Some(&redis), 1 << 20, 3600);

    // A reads from its ledger and fills Redis; B is served from Redis, then from its L1.
    assert_eq!(version_of(&ra, &id.state_key), Some(1));
    assert!(ra.cache().unwrap().l2_settle(Duration::from_secs(5)));
    assert_eq!(version_of(&rb, &id.state_key), Some(1));
    assert_eq!(mb.l2_hits.get(), 1);
    assert!(rb.cache().unwrap().l1_contains(&id.state_key));
    // B also caches that the newcomer does not exist.
    assert_eq!(version_of(&rb, &newcomer.state_key), None);
    assert!(rb.cache().unwrap().l1_contains(&newcomer.state_key));

    // A commits an update and a create. B has not applied the block yet.
    let h = a.commit(vec![id.update(2), newcomer.create()]);
    wait_for(
        "B's L1 to drop the changed keys",
        Duration::from_secs(5),
        || {
            let c = rb.cache().unwrap();
            !c.l1_contains(&id.state_key) && !c.l1_contains(&newcomer.state_key)
        },
    );
    assert_eq!(mb.invalidations_remote.get(), 2);
    assert_eq!(ma.invalidations_local.get(), 2);

    // B's own ledger still says version 1 (the truth at its height), but it does not cache it:
    // a newer block is known to have changed the key. Redis holds the change's tombstone.
    let refused = mb.stale_refused.get();
    assert_eq!(version_of(&rb, &id.state_key), Some(1));
    assert!(mb.stale_refused.get() > refused);
    assert!(!rb.cache().unwrap().l1_contains(&id.state_key));

    // A reads the new version and puts it in Redis: B is served the chain's newest version
    // from there even before its own ledger has the block.
    assert_eq!(version_of(&ra, &id.state_key), Some(2));
    assert_eq!(version_of(&ra, &newcomer.state_key), Some(1));
    assert!(ra.cache().unwrap().l2_settle(Duration::from_secs(5)));
    assert_eq!(version_of(&rb, &id.state_key), Some(2));

    // Once B applies the block its own ledger agrees, and so does anyone after it.
    b.apply_from(&a, h);
    assert_eq!(version_of(&rb, &id.state_key), Some(2));
    assert_eq!(version_of(&rb, &newcomer.state_key), Some(1));
    assert!(rb.cache().unwrap().l1_contains(&id.state_key));
    assert!(rb.cache().unwrap().l2_settle(Duration::from_secs(5)));
    let (rc, mc) = cached(&b, Some(&redis), 1 << 20, 3600);
    assert_eq!(version_of(&rc, &id.state_key), Some(2));
    assert_eq!(mc.l2_hits.get(), 1);
}

/// How many times Redis ran `command` (its `INFO commandstats`).
fn redis_calls(redis: &Redis, command: &str) -> u64 {
    let mut con = redis::Client::open(redis.url().as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut con)
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

fn versions(read: Vec<sparkid_resolver::records::Current>) -> Vec<Option<u64>> {
    read.into_iter()
        .map(|c| {
            c.into_anchored().map(|a| {
                serde_json::from_str::<Value>(&a.value).unwrap()["versionId"]
                    .as_u64()
                    .unwrap()
            })
        })
        .collect()
}

/// The cold read of a DID reads its two keys together (`Records::current_many`): what L1 lacks
/// is asked of Redis in ONE round trip (one `MGET`), and what Redis lacks is read from
/// the ledger and cached in both tiers; a replica is then served both from Redis in one round
/// trip, then from L1 with no Redis at all; and a block that changes one of the keys is seen
/// at once, as with key-by-key reads.
#[test]
fn keys_read_together_take_one_redis_round_trip_and_follow_blocks() {
    let redis = Redis::start();
    let (mut a, b) = pair();
    let id = Identity::new(None);
    let absent = Identity::new(None);
    let h = a.commit(vec![id.create()]);
    b.apply_from(&a, h);
    let keys = [id.state_key.as_str(), absent.state_key.as_str()];
    let (ra, ma) = cached(&a, Some(&redis), 1 << 20, 3600);
    let mget = redis_calls(&redis, "mget");
    assert_eq!(versions(ra.current_many(&keys).unwrap()), [Some(1), None]);
    assert_eq!(redis_calls(&redis, "mget"), mget + 1);
    assert_eq!(ma.l2_misses.get(), 2);
    assert!(ra.cache().unwrap().l1_contains(keys[0]) && ra.cache().unwrap().l1_contains(keys[1]));
    assert!(ra.cache().unwrap().l2_settle(Duration::from_secs(5)));

    // Another replica, L1 empty: both from Redis (the absence too), in one round trip.
    let (rb, mb) = cached(&b, Some(&redis), 1 << 20, 3600);
    assert_eq!(versions(rb.current_many(&keys).unwrap()), [Some(1), None]);
    assert_eq!(mb.l2_hits.get(), 2);
    assert_eq!(redis_calls(&redis, "mget"), mget + 2);
    // Then from its L1: Redis is not asked.
    assert_eq!(versions(rb.current_many(&keys).unwrap()), [Some(1), None]);
    assert_eq!(redis_calls(&redis, "mget"), mget + 2);

    // A block updates one key and creates the other: the next read together sees both changes.
    a.commit(vec![id.update(2), absent.create()]);
    assert_eq!(
        versions(ra.current_many(&keys).unwrap()),
        [Some(2), Some(1)]
    );
    assert!(ra.cache().unwrap().l2_settle(Duration::from_secs(5)));
    // One key in L1, one not: only the missing one is asked of Redis.
    let (rc, mc) = cached(&a, Some(&redis), 1 << 20, 3600);
    assert_eq!(versions(rc.current_many(&keys[..1]).unwrap()), [Some(2)]);
    let hits = mc.l1_hits.get();
    assert_eq!(
        versions(rc.current_many(&keys).unwrap()),
        [Some(2), Some(1)]
    );
    assert_eq!(mc.l1_hits.get(), hits + 1);
}

/// Redis's copy of a value changed by a block is replaced by a tombstone: a replica with L1 off
/// never gets the old value from Redis.
#[test]
fn redis_never_serves_a_value_older_than_the_block_that_changed_it() {
    let redis = Redis::start();
    let (mut a, b) = pair();
    let id = Identity::new(None);
    let h = a.commit(vec![id.create()]);
    b.apply_from(&a, h);
    let (ra, _) = cached(&a, Some(&redis), 0, 3600);
    let (rb, mb) = cached(&b, Some(&redis), 0, 3600);
    assert_eq!(version_of(&ra, &id.state_key), Some(1));
    assert!(ra.cache().unwrap().l2_settle(Duration::from_secs(5)));
    let h = a.commit(vec![id.update(2)]);
    assert!(ra.cache().unwrap().l2_settle(Duration::from_secs(5)));
    let redis_key = format!("sparkid:{}:k:{}", namespace(&a.ledger), id.state_key);
    let stored: String = redis::cmd("GET")
        .arg(&redis_key)
        .query(&mut redis.connection())
        .unwrap();
    assert_eq!(stored, format!("t{h}"));
    b.apply_from(&a, h);
    let hits = mb.l2_hits.get();
    assert_eq!(version_of(&rb, &id.state_key), Some(2));
    assert_eq!(mb.l2_hits.get(), hits, "a tombstone is not a hit");
    assert!(rb.cache().unwrap().l2_settle(Duration::from_secs(5)));
    assert_eq!(version_of(&ra, &id.state_key), Some(2));
}

/// (d) In Redis, an entry expires at the document's `extension.ttl` under the configured cap.
#[test]
fn redis_entries_expire_at_the_documents_ttl_under_the_cap() {
    let redis = Redis::start();
    let (mut a, _) = pair();
    let short = Identity::new(Some(5));
    let long = Identity::new(None); // the method's default: 86400 s
    a.commit(vec![short.create(), long.create()]);
    let (ra, _) = cached(&a, Some(&redis), 0, 60);
    assert_eq!(version_of(&ra, &short.state_key), Some(1));
    assert_eq!(version_of(&ra, &long.state_key), Some(1));
    assert!(ra.cache().unwrap().l2_settle(Duration::from_secs(5)));
    let ns = namespace(&a.ledger);
    let ttl = |id: &Identity| -> i64 {
        redis::cmd("TTL")
            .arg(format!("sparkid:{ns}:k:{}", id.state_key))
            .query(&mut redis.connection())
            .unwrap()
    };
    let (short_ttl, long_ttl) = (ttl(&short), ttl(&long));
    assert!((1..=5).contains(&short_ttl), "{short_ttl}");
    assert!((50..=60).contains(&long_ttl), "{long_ttl}");
}

/// (e) L1 stays within its byte bound over many real records.
#[test]
fn l1_stays_within_its_byte_bound() {
    let (mut a, _) = pair();
    let ids: Vec<Identity> = (0..400).map(|_| Identity::new(None)).collect();
    a.commit(ids.iter().map(Identity::create).collect());
    let bound = 64 * 1024;
    let (ra, m) = cached(&a, None, bound, 3600);
    for id in &ids {
        assert_eq!(version_of(&ra, &id.state_key), Some(1));
        let (used, limit) = ra.cache().unwrap().l1_bytes();
        assert!(used <= limit && limit == bound, "{used} of {limit}");
    }
    let c = ra.cache().unwrap();
    assert!(c.l1_len() > 10 && c.l1_len() < ids.len(), "{}", c.l1_len());
    // The most recently read records are still served from L1.
    let hits = m.l1_hits.get();
    assert_eq!(version_of(&ra, &ids[399].state_key), Some(1));
    assert_eq!(m.l1_hits.get(), hits + 1);
}

/// A form derived from a record (here its parsed versionId) is computed once per L1 entry, is
/// served without blocking while the entry lives, and follows the record's changes.
#[test]
fn a_derived_form_is_computed_once_and_follows_its_record() {
    let (mut a, _) = pair();
    let id = Identity::new(None);
    a.commit(vec![id.create()]);
    let (ra, _) = cached(&a, None, 1 << 20, 3600);
    let calls = AtomicU64::new(0);
    let derive = |anchored: &sparkid_resolver::records::Anchored| {
        calls.fetch_add(1, Ordering::SeqCst);
        serde_json::from_str::<Value>(&anchored.value).unwrap()["versionId"].as_u64()
    };
    assert_eq!(
        ra.peek(&id.state_key),
        None,
        "not in L1 before the first read"
    );
    let (_, v) = ra
        .current_derived(&id.state_key, false, derive)
        .unwrap()
        .unwrap();
    assert_eq!(*v, Some(1));
    for _ in 0..3 {
        let (_, v) = ra.peek_derived(&id.state_key, derive).unwrap().unwrap();
        assert_eq!(*v, Some(1));
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    a.commit(vec![id.update(2)]);
    assert_eq!(ra.peek(&id.state_key), None, "the update dropped the entry");
    let (_, v) = ra
        .current_derived(&id.state_key, false, derive)
        .unwrap()
        .unwrap();
    assert_eq!(*v, Some(2));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // noCache reads the ledger (and refreshes the entry).
    let (anchored, v) = ra
        .current_derived(&id.state_key, true, derive)
        .unwrap()
        .unwrap();
    assert_eq!((*v, anchored.height), (Some(2), a.ledger.height()));
    // Absence is cached too, and peek says so.
    let nobody = Identity::new(None);
    assert_eq!(ra.current(&nobody.state_key, false).unwrap(), None);
    assert_eq!(ra.peek(&nobody.state_key), Some(None));
}
