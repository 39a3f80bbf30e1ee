//! Driver cache, sub-chain recursion, Redis integrity (issue 12, items 5, 6, 10): each attack against a spawned daemon, asserting its bounded outcome.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
        format!(
            "v9223372036854775808 {expires} {}\n{record}",
            "ab".repeat(32)
        ),
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

// ---------------------------------------------------------------------------------------------
// A small HTTP server on a real socket, standing for a driver or a sub-chain resolver.
// ---------------------------------------------------------------------------------------------

/// What the test server does with a request (given its path).
enum Reply {
    /// Answers this status and JSON body.
    Json(u16, String),
    /// Streams a body that never ends (no Content-Length), until the client hangs up.
    Endless,
    /// Announces a body of this many bytes, and sends a little of it.
    Announced(u64),
}

/// A server on 127.0.0.1 answering every request with `reply(path)`; its base URL and a count
/// of the requests it received.
fn test_server(
    reply: impl Fn(&str) -> Reply + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let reply = Arc::new(reply);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let reply = reply.clone();
            let counted = counted.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    return;
                }
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let path = request_line.split_whitespace().nth(1).unwrap_or("/");
                match reply(path) {
                    Reply::Json(status, body) => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {status} X\r\ncontent-type: application/did-resolution\r\n\
                             content-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Reply::Endless => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                             connection: close\r\n\r\n{{\"id\":\""
                        );
                        let chunk = vec![b'a'; 64 * 1024];
                        while stream.write_all(&chunk).is_ok() {}
                    }
                    Reply::Announced(length) => {
                        let _ = write!(
                            stream,
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                             content-length: {length}\r\nconnection: close\r\n\r\n{{\"id\":\""
                        );
                        std::thread::sleep(Duration::from_secs(20));
                    }
                }
            });
        }
    });
    (base, hits)
}

/// The resident set size of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

fn write_config(dir: &std::path::Path, text: &str) -> String {
    let path = dir.join("sparkid.toml");
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().to_string()
}

// ---------------------------------------------------------------------------------------------
// Item 5: drivers.
// ---------------------------------------------------------------------------------------------

/// A driver streaming an endless body is cut off at its cap: the answer is a DID Resolution
/// error (502, `INTERNAL_ERROR` naming the driver and the cap) within a bounded time, and the
/// daemon's memory stays bounded while attackers repeat it. A driver announcing a huge
/// `Content-Length` is refused before its body is read.
#[test]
fn an_endless_driver_answer_is_cut_off_at_its_cap() {
    let (endless, _) = test_server(|_| Reply::Endless);
    let (announced, _) = test_server(|_| Reply::Announced(10 * 1024 * 1024 * 1024));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[[driver]]\npattern = \"^(did:endless:.+)$\"\nurl = \"{endless}/1.0/identifiers/$1\"\n\
             max_body_bytes = 262144\n\n\
             [[driver]]\npattern = \"^(did:huge:.+)$\"\nurl = \"{announced}/1.0/identifiers/$1\"\n"
        ),
    );
    let d = Daemon::start_with(&dir.path().join("data"), &["--config", &config]);
    let pid = d.child.id();
    let started = Instant::now();
    let (status, r) = resolve(&d.base, "did:endless:x");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status, 502, "{r}");
    assert_eq!(
        r["didResolutionMetadata"]["error"]["type"],
        "https://www.w3.org/ns/did#INTERNAL_ERROR"
    );
    let detail = r["didResolutionMetadata"]["error"]["detail"]
        .as_str()
        .unwrap();
    assert!(
        detail.contains("answered more than 262144 bytes"),
        "{detail}"
    );

    let started = Instant::now();
    let (status, r) = resolve(&d.base, "did:huge:x");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status, 502, "{r}");
    let detail = r["didResolutionMetadata"]["error"]["detail"]
        .as_str()
        .unwrap();
    assert!(
        detail.contains("answered more than 1048576 bytes"),
        "{detail}"
    );
    assert_eq!(
        metric(
            &d.base,
            "sparkid_upstream_refused_total{reason=\"too_large\"}"
        ),
        Some(2.0)
    );

    // Attackers repeating it, four at a time: memory stays bounded.
    let before = rss(pid);
    let workers: Vec<_> = (0..4)
        .map(|i| {
            let base = d.base.clone();
            std::thread::spawn(move || {
                for j in 0..10 {
                    let (status, _) = resolve(&base, &format!("did:endless:{i}-{j}"));
                    assert_eq!(status, 502);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let after = rss(pid);
    assert!(
        after < before + 64 * 1024 * 1024,
        "RSS grew from {before} to {after}"
    );
}

/// Large driver answers for many DIDs evict each other: the driver cache holds no more bytes
/// than configured (its gauge, and the daemon's resident memory), and still reuses recent
/// answers.
#[test]
fn the_driver_cache_is_bounded_in_bytes() {
    let filler = "x".repeat(400 * 1024);
    let (driver, hits) = test_server(move |path| {
        let did = path.rsplit('/').next().unwrap_or("");
        Reply::Json(
            200,
            json!({"@context": "https://www.w3.org/ns/did/v1", "id": did, "filler": filler})
                .to_string(),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "driver_cache_bytes = 4194304\n\n\
             [[driver]]\npattern = \"^(did:big:.+)$\"\nurl = \"{driver}/1.0/identifiers/$1\"\n"
        ),
    );
    let d = Daemon::start_with(&dir.path().join("data"), &["--config", &config]);
    let (status, r) = resolve(&d.base, "did:big:warm-up");
    assert_eq!(status, 200, "{r}");
    let before = rss(d.child.id());
    // 150 answers of 400 KiB: about 60 MiB of JSON, several times that parsed.
    for i in 0..150 {
        let (status, r) = resolve(&d.base, &format!("did:big:{i}"));
        assert_eq!(status, 200, "{r}");
    }
    let after = rss(d.child.id());
    assert!(
        after < before + 48 * 1024 * 1024,
        "RSS grew from {before} to {after}"
    );
    let used = metric(&d.base, "sparkid_driver_cache_bytes").unwrap();
    assert!(used <= 4_194_304.0, "{used}");
    assert!(used > 1_000_000.0, "the cache keeps answers: {used}");
    assert_eq!(
        metric(&d.base, "sparkid_driver_cache_capacity_bytes"),
        Some(4_194_304.0)
    );
    // The latest answer is reused, not fetched again.
    let fetched = hits.load(Ordering::SeqCst);
    let (_, r) = resolve(&d.base, "did:big:149");
    assert_eq!(r["didResolutionMetadata"]["driverCached"], true, "{r}");
    assert_eq!(hits.load(Ordering::SeqCst), fetched);
}

// ---------------------------------------------------------------------------------------------
// Item 6: sub-chain recursion.
// ---------------------------------------------------------------------------------------------

fn delegate_ac(base: &str, authority: &str, ac: &str, owner: &str, endpoints: &[String]) {
    let mut args = vec![
        "delegate",
        "--kind",
        "ac",
        "--namespace",
        ac,
        "--owner",
        owner,
    ];
    for e in endpoints {
        args.push("--endpoint-url");
        args.push(e);
    }
    common::namespace(base, authority, &args);
}

/// A did:bid on sub-chain `ac` for a new key (not registered anywhere).
fn sub_did(ac: &str) -> String {
    let bid = sparkid_bid::Bid::derive(&sparkid_bid::PrivateKey::generate().public_key(), None)
        .unwrap()
        .to_string();
    format!("did:bid:{ac}:{}", bid.trim_start_matches("did:bid:"))
}

/// A main-chain daemon (dev) with `extra` flags, its authority key file, and an owner DID.
fn main_chain(dir: &std::path::Path, extra: &[&str]) -> (Daemon, String, String) {
    let data = dir.join("main");
    let mut args = vec!["--handle", "off"];
    args.extend_from_slice(extra);
    let main = Daemon::start_with(&data, &args);
    let authority = data.join("validator.key").to_string_lossy().to_string();
    let (_, owner) = create_did(&main.base, None);
    (main, authority, owner)
}

fn error_detail(r: &Value) -> String {
    r["didResolutionMetadata"]["error"]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A delegation naming eight failing endpoints costs at most the fan-out budget of outbound
/// requests per incoming request, and the answer says the budget is spent.
#[test]
fn recursion_spends_at_most_the_fan_out_budget() {
    let (server, hits) = test_server(|_| Reply::Json(500, "{}".into()));
    let dir = tempfile::tempdir().unwrap();
    let (main, authority, owner) = main_chain(dir.path(), &["--subchain-fanout", "3"]);
    let endpoints: Vec<String> = (0..8).map(|i| format!("{server}/e{i}")).collect();
    delegate_ac(&main.base, &authority, "by01", &owner, &endpoints);
    let (status, r) = resolve(&main.base, &sub_did("by01"));
    assert_eq!(status, 502, "{r}");
    assert!(error_detail(&r).contains("fan-out budget of 3"), "{r}");
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    assert_eq!(
        metric(
            &main.base,
            "sparkid_upstream_refused_total{reason=\"fanout\"}"
        ),
        Some(1.0)
    );
}

/// A delegation naming this very resolver (five times) is answered at once: the recursive
/// request is not recursed again, and the negative answer is reused.
#[test]
fn recursion_pointed_back_at_itself_ends_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (main, authority, owner) = main_chain(dir.path(), &[]);
    let base = &main.base;
    let endpoints: Vec<String> = vec![
        base.clone(),
        format!("{base}/"),
        format!("{base}/1.0/identifiers/"),
        format!("{base}/1.0/identifiers/{{did}}"),
        format!("{base}/1.0/identifiers/{{did}}?noCache=false"),
    ];
    delegate_ac(&main.base, &authority, "by01", &owner, &endpoints);
    let did = sub_did("by01");
    let started = Instant::now();
    let (status, r) = resolve(&main.base, &did);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status, 404, "{r}");
    assert!(error_detail(&r).contains("does not recurse twice"), "{r}");
}

/// A sub-chain resolver's NOT_FOUND is reused for the negative TTL: a flood of requests for one
/// DID is one request to its resolver.
#[test]
fn negative_answers_are_reused_briefly() {
    let (server, hits) = test_server(|_| {
        Reply::Json(
            404,
            json!({"didDocument": null, "didDocumentMetadata": {},
                   "didResolutionMetadata": {"error": {"type": "https://www.w3.org/ns/did#NOT_FOUND",
                                                       "detail": "no such DID"}}})
            .to_string(),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let (main, authority, owner) = main_chain(dir.path(), &["--subchain-negative-ttl", "2"]);
    delegate_ac(&main.base, &authority, "by01", &owner, &[server]);
    let did = sub_did("by01");
    for _ in 0..5 {
        let (status, r) = resolve(&main.base, &did);
        assert_eq!(status, 404, "{r}");
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    assert_eq!(
        metric(&main.base, "sparkid_subchain_negative_hits_total"),
        Some(4.0)
    );
    std::thread::sleep(Duration::from_millis(2200));
    let (status, _) = resolve(&main.base, &did);
    assert_eq!(status, 404);
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

/// With private targets refused (the default outside dev mode), a delegation naming a
/// loopback endpoint is never asked.
#[test]
fn a_private_target_is_refused_without_the_option() {
    let (server, hits) = test_server(|_| Reply::Json(500, "{}".into()));
    let dir = tempfile::tempdir().unwrap();
    let (main, authority, owner) =
        main_chain(dir.path(), &["--subchain-allow-private-targets", "false"]);
    let localhost = server.replace("127.0.0.1", "localhost");
    delegate_ac(&main.base, &authority, "by01", &owner, &[server, localhost]);
    let (status, r) = resolve(&main.base, &sub_did("by01"));
    assert_eq!(status, 502, "{r}");
    let detail = error_detail(&r);
    assert!(
        detail.contains("is not asked") && detail.contains("private"),
        "{detail}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0);
    assert_eq!(
        metric(
            &main.base,
            "sparkid_upstream_refused_total{reason=\"private_target\"}"
        ),
        Some(2.0)
    );
}

/// A resolver in front of `upstream` that answers what `upstream` answers, changed by the
/// current `lie` (a JSON pointer into the result and the value to put there; none: honest).
fn lying_resolver(upstream: String, lie: Arc<Mutex<Option<(String, Value)>>>) -> String {
    let (base, _) = test_server(move |path| {
        let mut answer: Value = common::client()
            .get(format!("{upstream}{path}"))
            .header("accept", "application/did-resolution")
            .send()
            .and_then(|r| r.json())
            .unwrap_or(Value::Null);
        if let Some((pointer, value)) = lie.lock().unwrap().clone() {
            let (parent, member) = pointer.rsplit_once('/').unwrap();
            answer.pointer_mut(parent).unwrap()[member] = value;
        }
        Reply::Json(200, answer.to_string())
    });
    base
}

/// An anchored sub-chain's resolver that lies in any member of the document metadata is
/// refused: the ones the proof renders are compared, and any other is not covered by it.
#[test]
fn a_sub_chain_resolver_lying_in_any_metadata_member_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (main, authority, owner) = main_chain(dir.path(), &["--subchain-negative-ttl", "0"]);
    let owner_key_file = dir.path().join("owner.key");
    // The owner's key anchors: make a fresh owner whose key we hold.
    let (owner_key, owner) = {
        let _ = owner;
        create_did(&main.base, None)
    };
    std::fs::write(&owner_key_file, owner_key.to_encoded()).unwrap();
    let sub_validator = sparkid_bid::PrivateKey::generate();
    let sub_validator_file = dir.path().join("sub-validator.key");
    std::fs::write(&sub_validator_file, sub_validator.to_encoded()).unwrap();
    let sub_genesis_file = dir.path().join("sub-genesis.json");
    std::fs::write(
        &sub_genesis_file,
        json!({"chainId": "industry-by01", "time": 1_700_000_000u64,
               "validators": [sub_validator.public_key().to_encoded()], "acCode": "by01"})
        .to_string(),
    )
    .unwrap();
    let industry = Daemon::start_with(
        &dir.path().join("industry"),
        &[
            "--handle",
            "off",
            "--genesis",
            sub_genesis_file.to_str().unwrap(),
            "--validator-key",
            sub_validator_file.to_str().unwrap(),
            "--anchor-to",
            &main.base,
            "--anchor-key",
            owner_key_file.to_str().unwrap(),
            "--anchor-interval",
            "1",
        ],
    );
    let lie = Arc::new(Mutex::new(None));
    let liar = lying_resolver(industry.base.clone(), lie.clone());
    delegate_ac(&main.base, &authority, "by01", &owner, &[liar]);
    let (_, did) = common::create_did_on(&industry.base, Some("by01"), None);

    // Honest, once anchored: checked and served.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, r) = resolve(&main.base, &did);
        assert_eq!(status, 200, "{r}");
        if r["didResolutionMetadata"]["subChainAnchor"]["checked"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "never anchored: {r}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let lies = [
        (
            "/didDocumentMetadata/alsoKnownAs",
            json!(["dns:bank.example"]),
        ),
        (
            "/didDocumentMetadata/equivalentId",
            json!(["did:bid:by01:efother"]),
        ),
        (
            "/didDocumentMetadata/canonicalId",
            json!("did:bid:by01:efother"),
        ),
        ("/didDocumentMetadata/deactivated", json!(true)),
        ("/didDocumentMetadata/versionId", json!("7")),
        (
            "/didDocumentMetadata/created",
            json!("1999-01-01T00:00:00Z"),
        ),
        (
            "/didDocumentMetadata/updated",
            json!("1999-01-01T00:00:00Z"),
        ),
        ("/didDocumentMetadata/nextVersionId", json!("2")),
    ];
    for (pointer, value) in lies {
        *lie.lock().unwrap() = Some((pointer.to_string(), value.clone()));
        let (status, r) = resolve(&main.base, &did);
        assert_eq!(status, 500, "{pointer} = {value} was served: {r}");
        let detail = error_detail(&r);
        let member = pointer.rsplit('/').next().unwrap();
        assert!(
            detail.contains("does not hold against the latest anchor") && detail.contains(member),
            "{pointer}: {detail}"
        );
    }
    *lie.lock().unwrap() = None;
    let (status, r) = resolve(&main.base, &did);
    assert_eq!(status, 200, "{r}");
}
