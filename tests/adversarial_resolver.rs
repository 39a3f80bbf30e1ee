//! Driver cache, sub-chain recursion, Redis integrity (issue 12, items 5, 6, 10): each attack against a spawned daemon, asserting its bounded outcome.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sparkid_resolver::cache::{Cache, CacheConfig, CacheMetrics};

mod common;

use common::{create_did, get_json, metric, Daemon, Redis};

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn resolve(base: &str, did: &str) -> (u16, Value) {
    get_json(&format!("{base}/1.0/identifiers/{did}"))
}

// ---------------------------------------------------------------------------------------------
// Item 10: Redis L2 is not trusted.
// ---------------------------------------------------------------------------------------------

const SECRET: &str = "adversarial-redis-secret";

/// The Redis keys of this daemon's cache entries that hold `did`'s record.
fn redis_keys_of(redis: &Redis, did: &str) -> Vec<String> {
    let address = did.rsplit(':').next().unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("sparkid:*:k:did/*{address}"))
        .query(&mut redis.connection())
        .unwrap();
    keys
}

/// A value with a forged height of 2^63 (and a forged record), written straight into Redis by
/// someone who can reach it but has not got the replicas' secret, is never served; the daemon
/// counts it.
#[test]
fn a_forged_redis_value_is_not_served() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    // L1 off: every read asks Redis.
    let d = Daemon::start_with(
        dir.path(),
        &[
            "--redis-url",
            &redis.url(),
            "--redis-secret",
            SECRET,
            "--cache-bytes",
            "0",
        ],
    );
    let (_key, did) = create_did(&d.base, None);
    let (status, honest) = resolve(&d.base, &did);
    assert_eq!(status, 200, "{honest}");
    let created = honest["didDocumentMetadata"]["created"].clone();
    wait_for("the record in Redis", Duration::from_secs(10), || {
        !redis_keys_of(&redis, &did).is_empty()
    });
    let key = redis_keys_of(&redis, &did).remove(0);
    let stored: Vec<u8> = redis::cmd("GET")
        .arg(&key)
        .query(&mut redis.connection())
        .unwrap();
    let stored = String::from_utf8(stored).unwrap();
    let (_, value) = stored.split_once('\n').unwrap();
    let mut record: Value = serde_json::from_str(value).unwrap();
    record["created"] = json!("1999-01-01T00:00:00Z");
    let expires = 4_000_000_000u64;
    let refused_before = metric(
        &d.base,
        "sparkid_cache_l2_refused_total{reason=\"value_hmac\"}",
    )
    .unwrap_or(0.0);
    // The entry format as it is without an HMAC, and the same with a made-up one.
    for forged in [
        format!("v9223372036854775808 {expires}\n{record}"),
        format!("v9223372036854775808 {expires} {}\n{record}", "ab".repeat(32)),
    ] {
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(&forged)
            .query(&mut redis.connection())
            .unwrap();
        let (status, answer) = resolve(&d.base, &did);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["didDocumentMetadata"]["created"], created,
            "the forged value was served: {answer}"
        );
    }
    let refused = metric(
        &d.base,
        "sparkid_cache_l2_refused_total{reason=\"value_hmac\"}",
    )
    .unwrap_or(0.0);
    assert!(refused >= refused_before + 2.0, "{refused}");
}

/// An invalidation message published on the chain's channel by someone without the secret is
/// ignored: it drops nothing from L1 and does not raise the height above which the replica
/// stops writing to Redis.
#[test]
fn a_forged_invalidation_message_is_ignored() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(
        dir.path(),
        &["--redis-url", &redis.url(), "--redis-secret", SECRET],
    );
    let (_key, did) = create_did(&d.base, None);
    resolve(&d.base, &did);
    wait_for("the record in Redis", Duration::from_secs(10), || {
        !redis_keys_of(&redis, &did).is_empty()
    });
    let key = redis_keys_of(&redis, &did).remove(0);
    let namespace = key.split(':').nth(1).unwrap().to_string();
    let state_key = key.split_once(":k:").unwrap().1.to_string();
    let channel = format!("sparkid:{namespace}:invalidations");
    let forged = json!({"o": 7, "h": 9_223_372_036_854_775_808u64, "k": [state_key]}).to_string();
    let receivers: u64 = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(&forged)
        .query(&mut redis.connection())
        .unwrap();
    assert!(receivers >= 1, "the daemon listens on {channel}");
    let _: u64 = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(format!("{} {forged}", "cd".repeat(32)))
        .query(&mut redis.connection())
        .unwrap();
    wait_for("the messages to be refused", Duration::from_secs(5), || {
        metric(
            &d.base,
            "sparkid_cache_l2_refused_total{reason=\"message_hmac\"}",
        )
        .unwrap_or(0.0)
            >= 2.0
    });
    assert_eq!(
        metric(
            &d.base,
            "sparkid_cache_invalidations_total{source=\"remote\"}"
        ),
        Some(0.0)
    );
    // The replica still writes what it reads to Redis (a forged height of 2^63 would have made
    // it think its values were too old for Redis).
    let (_key, newcomer) = create_did(&d.base, None);
    resolve(&d.base, &newcomer);
    wait_for(
        "the newcomer's record in Redis",
        Duration::from_secs(10),
        || !redis_keys_of(&redis, &newcomer).is_empty(),
    );
}

/// A value stamped far above this replica's head is refused even with a valid HMAC (a replica
/// that holds the secret, or a leaked secret, cannot pin a value above every later tombstone).
#[test]
fn a_redis_value_stamped_above_the_head_is_refused() {
    let redis = Redis::start();
    let config = CacheConfig {
        l1_bytes: 0,
        redis_url: Some(redis.url()),
        ttl_max: 3600,
        redis_secret: Some(SECRET.into()),
    };
    let far: u64 = 1 << 63;
    let writer_metrics = CacheMetrics::standalone().unwrap();
    let writer = Cache::new(&config, "stamp", writer_metrics, Box::new(move || far)).unwrap();
    assert!(writer.l2_settle(Duration::from_secs(10)));
    let value: std::sync::Arc<str> = r#"{"document":{"id":"did:bid:efx"},"versionId":1}"#.into();
    writer.fill("did/x", Some(value.clone()), far, writer.begin());
    assert!(writer.l2_settle(Duration::from_secs(10)));

    let metrics = CacheMetrics::standalone().unwrap();
    let reader = Cache::new(&config, "stamp", metrics.clone(), Box::new(|| 5)).unwrap();
    assert!(reader.l2_settle(Duration::from_secs(10)));
    assert_eq!(reader.get("did/x", reader.begin()), None);
    assert_eq!(metrics.l2_refused_stamp.get(), 1);
    // A value a few blocks ahead (a replica that applied them first) is served.
    writer.fill("did/y", Some(value.clone()), 7, writer.begin());
    assert!(writer.l2_settle(Duration::from_secs(10)));
    assert_eq!(
        reader
            .get("did/y", reader.begin())
            .map(|c| (c.value, c.height)),
        Some((Some(value), 7))
    );
}

/// Outside dev mode a daemon given Redis without the secret does not start.
#[test]
fn redis_without_a_secret_is_refused_outside_dev_mode() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["serve", "--dev", "false", "--data"])
        .arg(dir.path())
        .args(["--http", "127.0.0.1:0", "--handle", "off"])
        .args(["--redis-url", &redis.url()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("redis_secret"), "{stderr}");
}
