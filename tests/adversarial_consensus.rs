//! Block limits, authenticated consensus and peers (issue 12, items 3, 9, 16): each attack against a spawned daemon, asserting its bounded outcome.
//!
//! - Item 3: many large writes at once make blocks of at most `MAX_BLOCK_BYTES`, pages of the
//!   peer API of at most `MAX_PAGE_BYTES`, and a follower catches up through them.
//! - Item 9: the consensus write endpoints answer only requests signed by a validator of the
//!   chain (401 unsigned, 403 otherwise, replay and staleness included); nothing changes
//!   otherwise, and validators still talk to each other.
//! - Item 16: a validator does not answer `finished` for a block it does not hold (without a
//!   quorum, a 503 that says the write may still commit); a consensus message far above the
//!   head with a bad signature is refused before any catch-up; heights and rounds out of range
//!   are refused with a 400.
//!
//! The requests are built here from the wire format (headers, signed bytes), not from the
//! daemon's own helpers, so that the tests pin the protocol down.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use common::{client, free_port, get_json, metric, Daemon};
use serde_json::{json, Value};
use sparkid_bid::PrivateKey;
use sparkid_ledger::block::MAX_BLOCK_BYTES;
use sparkid_ledger::{BlockHeader, Hash, Transaction, TxBody};
use sparkid_node::peer::MAX_PAGE_BYTES;

const CHAIN: &str = "sparkid-adversarial-consensus";

/// A chain's genesis made by the ceremony, for validator `keys` (each signs genesis).
struct Chain {
    dir: tempfile::TempDir,
    keys: Vec<PrivateKey>,
    key_files: Vec<PathBuf>,
    genesis: PathBuf,
    votes: PathBuf,
}

impl Chain {
    fn new(n: usize) -> Chain {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<PrivateKey> = (0..n).map(|_| PrivateKey::generate()).collect();
        let key_files: Vec<PathBuf> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let path = dir.path().join(format!("validator-{i}.key"));
                std::fs::write(&path, k.to_encoded()).unwrap();
                path
            })
            .collect();
        let genesis = dir.path().join("genesis.json");
        let doc = json!({
            "chainId": CHAIN,
            "time": 1_700_000_000u64,
            "validators": keys.iter().map(|k| k.public_key().to_encoded()).collect::<Vec<_>>(),
        });
        std::fs::write(&genesis, doc.to_string()).unwrap();
        let votes: Vec<Value> = key_files
            .iter()
            .map(|k| {
                common::cli(&[
                    "ledger",
                    "genesis-vote",
                    "--genesis",
                    genesis.to_str().unwrap(),
                    "--validator-key",
                    k.to_str().unwrap(),
                ])
            })
            .collect();
        let votes_path = dir.path().join("votes.json");
        std::fs::write(&votes_path, Value::Array(votes).to_string()).unwrap();
        Chain {
            dir,
            keys,
            key_files,
            genesis,
            votes: votes_path,
        }
    }

    /// A data directory holding this chain's ledger at genesis.
    fn data(&self, name: &str) -> PathBuf {
        let d = self.dir.path().join(name);
        let out = std::process::Command::new(common::BIN)
            .args(["ledger", "init", "--data"])
            .arg(&d)
            .args(["--genesis", self.genesis.to_str().unwrap()])
            .args(["--votes", self.votes.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        d
    }

    fn encoded(&self, i: usize) -> String {
        self.keys[i].public_key().to_encoded()
    }

    /// Starts validator `i` on `data` at `port`, with these peers.
    fn validator(&self, i: usize, data: &Path, port: u16, peers: &[String]) -> Daemon {
        let key = self.key_files[i].to_str().unwrap().to_string();
        let mut args = vec!["--validator-key", key.as_str(), "--handle", "off"];
        for p in peers {
            args.extend(["--peer", p.as_str()]);
        }
        Daemon::start_at(data, port, &args)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The signature headers of a request between validators, built from the wire format:
/// Ed25519 over `"sparkid/validator-request/v1\n" chain \n path \n audience \n signedAt \n
/// sha256(body)`.
fn signed_headers(
    key: &PrivateKey,
    path: &str,
    audience: &str,
    signed_at: u64,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let mut bytes = b"sparkid/validator-request/v1\n".to_vec();
    bytes.extend_from_slice(
        format!(
            "{CHAIN}\n{path}\n{}\n{signed_at}\n{}",
            audience.to_ascii_lowercase(),
            Hash::of(&[body])
        )
        .as_bytes(),
    );
    vec![
        ("sparkid-validator", key.public_key().to_encoded()),
        ("sparkid-signed-at", signed_at.to_string()),
        ("sparkid-signature", hex::encode(key.sign(&bytes).0)),
    ]
}

/// POSTs `body` to `base` + `path` with `headers`; the status and the JSON answer.
fn post_raw(base: &str, path: &str, body: &[u8], headers: &[(&str, String)]) -> (u16, Value) {
    let mut request = client()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    let text = response.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn height(base: &str) -> u64 {
    get_json(&format!("{base}/healthz")).1["height"]
        .as_u64()
        .unwrap()
}

/// A signed create transaction for a new DID on `base`'s chain (the registrar's first step
/// gives the body; the client signs it), without submitting it.
fn create_transaction(base: &str, template: Option<Value>) -> Transaction {
    let key = PrivateKey::generate();
    let doc = sparkid_registrar::api::new_document_on(&key.public_key(), None, template).unwrap();
    let (status, first) = common::post(
        &format!("{base}/1.0/create?method=bid"),
        &json!({"options": {"clientSecretMode": true}, "didDocument": doc}),
    );
    assert_eq!(first["didState"]["state"], "action", "{status} {first}");
    let payload = first["didState"]["signingRequest"]["signingRequest0"]["serializedPayload"]
        .as_str()
        .unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .unwrap();
    let body: TxBody =
        serde_json::from_slice(bytes.strip_prefix(b"sparkid/tx/v1\n".as_slice()).unwrap()).unwrap();
    body.sign(&key)
}

// ---- item 9: only validators may ask -----------------------------------------------------

#[test]
fn consensus_writes_are_accepted_only_from_a_validator_of_the_chain() {
    let chain = Chain::new(2);
    let ports = [free_port(), free_port()];
    let bases: Vec<String> = ports
        .iter()
        .map(|p| format!("http://127.0.0.1:{p}"))
        .collect();
    let d0 = chain.data("node-0");
    let d1 = chain.data("node-1");
    let _v0 = chain.validator(0, &d0, ports[0], &[bases[1].clone()]);
    let _v1 = chain.validator(1, &d1, ports[1], &[bases[0].clone()]);
    // Validators still talk to each other: a write through the one that forwards commits.
    let (_, did) = common::create_did(&bases[1], None);
    let before = height(&bases[1]);
    assert!(before >= 1);

    // The attack of the issue: anyone hands the non-leader a transaction to propose.
    let tx = create_transaction(&bases[0], None);
    let body = serde_json::to_vec(&json!({ "transactions": [tx] })).unwrap();
    let path = "/1.0/consensus/transactions";
    let started = Instant::now();
    let (status, answer) = post_raw(&bases[1], path, &body, &[]);
    assert_eq!(status, 401, "{answer}");
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(
        answer["type"],
        "urn:sparkid:problem:consensus-unauthenticated"
    );
    assert!(
        answer["detail"].as_str().unwrap().contains("not signed"),
        "{answer}"
    );

    // Signed by a key that is not a validator, by a validator but stale, or for the other
    // validator: 403, each with its reason.
    let outsider = PrivateKey::generate();
    let me = chain.encoded(1);
    let cases = [
        (
            signed_headers(&outsider, path, &me, now_ms(), &body),
            "not a validator",
        ),
        (
            signed_headers(&chain.keys[0], path, &me, now_ms() - 120_000, &body),
            "clock",
        ),
        (
            signed_headers(&chain.keys[0], path, &chain.encoded(0), now_ms(), &body),
            "does not verify",
        ),
        (
            signed_headers(
                &chain.keys[0],
                path,
                &me,
                now_ms(),
                b"{\"transactions\":[]}",
            ),
            "does not verify",
        ),
    ];
    for (headers, reason) in cases {
        let (status, answer) = post_raw(&bases[1], path, &body, &headers);
        assert_eq!(status, 403, "{answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains(reason),
            "{reason}: {answer}"
        );
    }
    // The other write endpoints too.
    let (status, answer) = post_raw(&bases[1], "/1.0/consensus/messages", b"{}", &[]);
    assert_eq!(status, 401, "messages: {answer}");
    // Nothing changed on either ledger; the refusals are counted.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(height(&bases[1]), before);
    assert_eq!(height(&bases[0]), before);
    assert_eq!(
        metric(
            &bases[1],
            "sparkid_consensus_requests_refused_total{endpoint=\"transactions\",reason=\"unsigned\"}"
        ),
        Some(1.0)
    );

    // Signed by the other validator for this one: accepted once, and its replay is refused.
    let headers = signed_headers(&chain.keys[0], path, &me, now_ms(), &body);
    let (status, answer) = post_raw(&bases[1], path, &body, &headers);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["added"], 1, "{answer}");
    // The pooled transaction is proposed and committed by both validators.
    let deadline = Instant::now() + Duration::from_secs(20);
    while height(&bases[1]) <= before || height(&bases[0]) <= before {
        assert!(
            Instant::now() < deadline,
            "the pooled transaction did not commit"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    let after = height(&bases[1]);
    let (status, answer) = post_raw(&bases[1], path, &body, &headers);
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("already received"),
        "{answer}"
    );
    assert_eq!(height(&bases[1]), after);
    // And the chain goes on through both.
    let (_, other) = common::create_did(&bases[0], None);
    for base in &bases {
        let deadline = Instant::now() + Duration::from_secs(10);
        for d in [&did, &other] {
            while common::get(&format!("{base}/1.0/identifiers/{d}")).0 != 200 {
                assert!(Instant::now() < deadline, "{base} does not resolve {d}");
                std::thread::sleep(Duration::from_millis(25));
            }
        }
    }
}

// ---- item 16: a fake validator 0 --------------------------------------------------------

/// An HTTP server standing in for validator `index` of the chain: it says so at
/// `/1.0/consensus/status`, answers a forwarded batch as committed at height 1 without ever
/// serving that block, and counts the pages of blocks it is asked for.
struct FakeValidator {
    base: String,
    pages_asked: Arc<AtomicU64>,
    _runtime: tokio::runtime::Runtime,
}

impl FakeValidator {
    fn start(validator: String, index: usize) -> FakeValidator {
        use axum::routing::{get, post};
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let pages_asked = Arc::new(AtomicU64::new(0));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let pages = pages_asked.clone();
        let app = axum::Router::new()
            .route(
                "/1.0/consensus/status",
                get(move || async move {
                    axum::Json(json!({
                        "chainId": CHAIN, "validator": validator, "index": index,
                        "validators": 2, "quorum": 2, "height": 0
                    }))
                }),
            )
            .route(
                "/1.0/consensus/transactions",
                post(|axum::Json(request): axum::Json<Value>| async move {
                    let n = request["transactions"].as_array().map_or(0, Vec::len);
                    let outcomes: Vec<Value> = (0..n)
                        .map(|i| json!({"height": 1, "index": i, "txHash": "00"}))
                        .collect();
                    axum::Json(json!({ "outcomes": outcomes }))
                }),
            )
            .route(
                "/1.0/ledger/blocks",
                get(move || {
                    pages.fetch_add(1, Ordering::SeqCst);
                    async move { axum::Json(json!({"chainId": CHAIN, "head": 1, "blocks": []})) }
                }),
            );
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeValidator {
            base,
            pages_asked,
            _runtime: runtime,
        }
    }
}

#[test]
fn a_forwarding_validator_answers_finished_only_once_it_holds_the_block() {
    let chain = Chain::new(2);
    let fake = FakeValidator::start(chain.encoded(0), 0);
    let d1 = chain.data("node-1");
    let v1 = chain.validator(1, &d1, free_port(), std::slice::from_ref(&fake.base));
    // Validator 0 (the fake) answers the forwarded write as committed at height 1 and never
    // hands the block over: validator 1 must not tell its writer `finished`.
    let key = PrivateKey::generate();
    let doc = sparkid_registrar::api::new_document(&key.public_key(), None).unwrap();
    let (status, answer) = common::sign_and_send(
        &format!("{}/1.0/create?method=bid", v1.base),
        json!({"options": {"clientSecretMode": true}, "didDocument": doc}),
        &key,
    );
    assert_ne!(answer["didState"]["state"], "finished", "{answer}");
    assert_eq!(status, 503, "{answer}");
    let reason = answer["didState"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("no quorum") && reason.contains("not committed yet"),
        "{reason}"
    );
    assert_eq!(height(&v1.base), 0);
}

/// A Tendermint vote on the wire, signed by `key` in the prevote domain.
fn prevote(key: &PrivateKey, height: u64, round: u64, block: &Hash) -> Value {
    let mut bytes = b"sparkid/prevote/v1\n".to_vec();
    bytes.extend_from_slice(format!("{CHAIN}\n{height}\n{round}\n{block}").as_bytes());
    json!({ "vote": {
        "height": height, "round": round, "type": "prevote", "blockHash": block,
        "validator": key.public_key().to_encoded(), "signature": key.sign(&bytes),
    }})
}

#[test]
fn a_message_far_above_the_head_is_checked_before_any_catch_up_and_numbers_are_bounded() {
    let chain = Chain::new(2);
    // The fake stands in for validator 1, this node's only peer: it counts catch-ups.
    let fake = FakeValidator::start(chain.encoded(1), 1);
    let d0 = chain.data("node-0");
    let v0 = chain.validator(0, &d0, free_port(), std::slice::from_ref(&fake.base));
    let me = chain.encoded(0);
    let signer = &chain.keys[1];
    let path = "/1.0/consensus/messages";
    let send = |body: &Value| {
        let bytes = serde_json::to_vec(body).unwrap();
        let headers = signed_headers(signer, path, &me, now_ms(), &bytes);
        post_raw(&v0.base, path, &bytes, &headers)
    };
    std::thread::sleep(Duration::from_millis(1500));
    let asked = fake.pages_asked.load(Ordering::SeqCst);

    // A vote five heights ahead, signed by a key outside the chain (in a request signed by a
    // validator): refused at once, and nothing is fetched towards it.
    let outsider = PrivateKey::generate();
    let started = Instant::now();
    let (status, answer) = send(&prevote(&outsider, 5, 0, &Hash([3; 32])));
    let took = started.elapsed();
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("not a validator"),
        "{answer}"
    );
    assert!(took < Duration::from_millis(500), "{took:?}");
    // A validator's vote whose signature is over other bytes: refused the same way.
    let mut forged = prevote(signer, 5, 0, &Hash([3; 32]));
    forged["vote"]["round"] = json!(1);
    let (status, answer) = send(&forged);
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("does not verify"),
        "{answer}"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        fake.pages_asked.load(Ordering::SeqCst),
        asked,
        "a forged message made this validator catch up"
    );
    assert_eq!(
        metric(
            &v0.base,
            "sparkid_consensus_requests_refused_total{endpoint=\"messages\",reason=\"bad_signature\"}"
        ),
        Some(2.0)
    );

    // Heights and rounds no chain reaches: a specific 400, no panic.
    for (h, r) in [(u64::MAX, 1), (1, u64::MAX), (1, u64::from(u32::MAX))] {
        let (status, answer) = send(&prevote(signer, h, r, &Hash([3; 32])));
        assert_eq!(status, 400, "height {h} round {r}: {answer}");
        assert!(
            answer["detail"].as_str().unwrap().contains("out of range"),
            "{answer}"
        );
    }
    let header = BlockHeader {
        chain_id: CHAIN.into(),
        height: u64::MAX - 1,
        previous_hash: Hash([3; 32]),
        time: 0,
        tx_root: sparkid_ledger::block::tx_root(&[]),
        tx_count: 0,
        state_root: Hash([0; 32]),
        proposer: signer.public_key().to_encoded(),
    };
    let proposal = json!({ "proposal": {
        "round": 0, "header": header, "transactions": [],
        "validator": signer.public_key().to_encoded(), "signature": signer.sign(b"x"),
    }});
    let (status, answer) = send(&proposal);
    assert_eq!(status, 400, "{answer}");
    // The same valid prevote at the next height is accepted for the engine.
    let (status, answer) = send(&prevote(signer, 1, 0, &Hash([3; 32])));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(height(&v0.base), 0);
}

// ---- item 3: blocks under their byte limit -----------------------------------------------

/// The registrar's first step of a create on `base`, and the signed second step's body.
fn prepared_create(base: &str, template: Value) -> Value {
    let key = PrivateKey::generate();
    let doc =
        sparkid_registrar::api::new_document_on(&key.public_key(), None, Some(template)).unwrap();
    let (status, first) = common::post(
        &format!("{base}/1.0/create?method=bid"),
        &json!({"options": {"clientSecretMode": true}, "didDocument": doc}),
    );
    assert_eq!(first["didState"]["state"], "action", "{status} {first}");
    let payload = first["didState"]["signingRequest"]["signingRequest0"]["serializedPayload"]
        .as_str()
        .unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .unwrap();
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.sign(&bytes).0);
    json!({ "jobId": first["jobId"], "secret": { "jobSecret": first["didRegistrationMetadata"]["jobSecret"], "signingResponse": { "signingRequest0": { "signature": signature } } } })
}

/// Every block of `base`'s chain from height 1, read page by page: each page's size and each
/// block's JSON size.
fn pages_and_blocks(base: &str) -> (Vec<usize>, Vec<usize>) {
    let (mut pages, mut blocks) = (Vec::new(), Vec::new());
    let mut from = 1;
    loop {
        let body = client()
            .get(format!("{base}/1.0/ledger/blocks?from={from}&limit=1000"))
            .send()
            .unwrap()
            .bytes()
            .unwrap();
        let page: Value = serde_json::from_slice(&body).unwrap();
        let got = page["blocks"].as_array().unwrap();
        if got.is_empty() {
            return (pages, blocks);
        }
        pages.push(body.len());
        for b in got {
            blocks.push(serde_json::to_vec(b).unwrap().len());
        }
        from += got.len() as u64;
    }
}

#[test]
fn many_large_writes_make_blocks_under_the_limit_and_a_follower_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    // 300 jobs and 600 writes from one address at once: over the default per-client caps of
    // pending jobs, connections and writes (tests/adversarial_registrar.rs, adversarial_http.rs).
    let validator = Daemon::start_with(
        &dir.path().join("validator"),
        &[
            "--handle",
            "off",
            "--registrar-max-pending-jobs-per-client",
            "1000",
            "--max-connections-per-client",
            "1000",
            "--rate-write",
            "0",
        ],
    );
    // Documents of about 60 KB: 40 services with long endpoints.
    let template = |i: usize| {
        let services: Vec<Value> = (0..40)
            .map(|s| {
                json!({
                    "id": format!("#s{s}"),
                    "type": "LinkedDomains",
                    "serviceEndpoint": format!("https://example.com/{i}/{s}/{}", "a".repeat(1400)),
                })
            })
            .collect();
        json!({ "service": services })
    };
    // Waves of concurrent writers, each released at once, 18 MB in all: more than two blocks'
    // worth, and more than a page holds. (A debug build on two cores executes a block about as
    // fast as it accepts writes, so blocks stay well under the limit here: the producer's
    // splitting is pinned down by `test-support/tests/libraries/registrar/batching.rs`, the
    // ledger's by its tests.)
    const WRITERS: usize = 150;
    const WAVES: usize = 2;
    for wave in 0..WAVES {
        let barrier = Arc::new(Barrier::new(WRITERS));
        let threads: Vec<_> = (0..WRITERS)
            .map(|i| {
                let base = validator.base.clone();
                let barrier = barrier.clone();
                let template = template(wave * WRITERS + i);
                std::thread::spawn(move || {
                    let second = prepared_create(&base, template);
                    barrier.wait();
                    common::post(&format!("{base}/1.0/create?method=bid"), &second)
                })
            })
            .collect();
        for t in threads {
            let (status, answer) = t.join().unwrap();
            assert_eq!(status, 201, "{answer}");
        }
    }
    let (pages, blocks) = pages_and_blocks(&validator.base);
    eprintln!("block sizes: {blocks:?}; page sizes: {pages:?}");
    let total: usize = blocks.iter().sum();
    assert!(total > 2 * MAX_BLOCK_BYTES, "{total} bytes written in all");
    for size in &blocks {
        assert!(
            *size <= MAX_BLOCK_BYTES,
            "a block of {size} bytes: {blocks:?}"
        );
    }
    assert!(pages.len() >= 2, "{pages:?}");
    for size in &pages {
        assert!(*size <= MAX_PAGE_BYTES, "a page of {size} bytes: {pages:?}");
    }
    // A follower started now catches up through the peer API, to the same head.
    let follower = Daemon::start_with(
        &dir.path().join("follower"),
        &["--handle", "off", "--follow", validator.base.as_str()],
    );
    let target = height(&validator.base);
    let deadline = Instant::now() + Duration::from_secs(120);
    while height(&follower.base) < target {
        assert!(Instant::now() < deadline, "the follower did not catch up");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        get_json(&format!("{}/1.0/ledger/head", follower.base)).1,
        get_json(&format!("{}/1.0/ledger/head", validator.base)).1
    );
}
