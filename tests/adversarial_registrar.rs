//! Registrar jobs, submitters (issue 12, items 2, 7): each attack against a spawned daemon, asserting its bounded outcome.
//!
//! - a job whose transaction could never fit is refused when it is created, not once signed;
//! - pending jobs are capped per client (its IP address) and in total: 429 with `Retry-After`;
//! - a job is continued or cancelled only with its secret, so a `jobId` seen in passing is of
//!   no use to anyone else;
//! - `registrar.submitters` makes the registrar permissioned.
//!
//! Clients at different addresses are told apart by binding the client socket to other
//! loopback addresses (127.0.0.2, 127.0.0.3: all of 127/8 is loopback on Linux).

mod common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{get_json, metric, Daemon};
use serde_json::{json, Value};
use sparkid_bid::PrivateKey;

/// A blocking client whose connections come from `from`.
fn client_from(from: &str) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .local_address(from.parse::<IpAddr>().unwrap())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// POSTs JSON from `from`; the status, the `Retry-After` header and the JSON answer.
fn post_from(from: &str, url: &str, body: &Value) -> (u16, Option<String>, Value) {
    let r = client_from(from).post(url).json(body).send().unwrap();
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry_after, r.json().unwrap())
}

/// A client-managed create request for a new key's DID.
fn create_request(key: &PrivateKey) -> Value {
    let doc = sparkid_registrar::api::new_document(&key.public_key(), None).unwrap();
    json!({"options": {"clientSecretMode": true}, "didDocument": doc})
}

/// The signature of a job's serialized payload, as the client sends it back.
fn signature_for(job: &Value, key: &PrivateKey) -> String {
    let payload = job["didState"]["signingRequest"]["signingRequest0"]["serializedPayload"]
        .as_str()
        .unwrap_or_else(|| panic!("no payload to sign: {job}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.sign(&bytes).0)
}

/// The continuation of `job`, signed by `key`, with `secret` as its job secret (none: left out).
fn continuation(job: &Value, key: &PrivateKey, secret: Option<&str>) -> Value {
    let mut body = json!({
        "jobId": job["jobId"],
        "secret": { "signingResponse": { "signingRequest0": { "signature": signature_for(job, key) } } }
    });
    if let Some(secret) = secret {
        body["secret"]["jobSecret"] = json!(secret);
    }
    body
}

/// The job secret an `action` answer carries.
fn job_secret(job: &Value) -> String {
    job["didRegistrationMetadata"]["jobSecret"]
        .as_str()
        .unwrap_or_else(|| panic!("no didRegistrationMetadata.jobSecret: {job}"))
        .to_string()
}

/// An answer cut short for a failure message (some carry 100 kB documents).
fn short(answer: &Value) -> String {
    answer.to_string().chars().take(400).collect()
}

fn height(base: &str) -> u64 {
    get_json(&format!("{base}/healthz")).1["height"]
        .as_u64()
        .unwrap()
}

/// Opens a job from `from`: it must be waiting for its signature.
fn open_job(from: &str, base: &str, key: &PrivateKey) -> Value {
    let (status, _, job) = post_from(
        from,
        &format!("{base}/1.0/create?method=bid"),
        &create_request(key),
    );
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["didState"]["state"], "action", "{job}");
    job
}

fn assert_throttled(status: u16, retry_after: Option<String>, body: &Value, why: &str) {
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["didState"]["state"], "failed", "{body}");
    assert!(body["jobId"].is_null(), "{body}");
    let reason = body["didState"]["reason"].as_str().unwrap();
    assert!(reason.contains(why), "{reason}");
    let seconds: u64 = retry_after
        .expect("a 429 carries Retry-After")
        .parse()
        .expect("Retry-After in seconds");
    // A pending job waits at most its 600 s time to live: a slot is free by then.
    assert!((1..=600).contains(&seconds), "Retry-After: {seconds}");
}

#[test]
fn a_job_whose_transaction_would_be_too_large_is_refused_when_it_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let key = PrivateKey::generate();
    // Under the 256 KiB request body limit, over the 64 KiB transaction limit.
    let template = json!({"extension": {"note": "x".repeat(100_000)}});
    let doc = sparkid_registrar::api::new_document(&key.public_key(), Some(template)).unwrap();
    let started = Instant::now();
    let (status, _, answer) = post_from(
        "127.0.0.1",
        &format!("{}/1.0/create?method=bid", d.base),
        &json!({"options": {"clientSecretMode": true}, "didDocument": doc}),
    );
    let took = started.elapsed();
    assert_eq!(status, 400, "{}", short(&answer));
    assert_eq!(answer["didState"]["state"], "failed", "{}", short(&answer));
    assert!(
        answer["jobId"].is_null(),
        "no job is kept: {}",
        short(&answer)
    );
    let reason = answer["didState"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("at most 65536 bytes"),
        "the reason names the limit: {reason}"
    );
    assert!(took < Duration::from_millis(500), "refused in {took:?}");

    // Just under the limit, the same kind of request still gets a job.
    let template = json!({"extension": {"note": "x".repeat(60_000)}});
    let doc = sparkid_registrar::api::new_document(&key.public_key(), Some(template)).unwrap();
    let (status, _, answer) = post_from(
        "127.0.0.1",
        &format!("{}/1.0/create?method=bid", d.base),
        &json!({"options": {"clientSecretMode": true}, "didDocument": doc}),
    );
    assert_eq!(status, 200, "{}", short(&answer));
    assert_eq!(answer["didState"]["state"], "action", "{}", short(&answer));
}

#[test]
fn pending_jobs_are_capped_per_client_with_429_and_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(
        dir.path(),
        &["--registrar-max-pending-jobs-per-client", "3"],
    );
    let url = format!("{}/1.0/create?method=bid", d.base);
    let keys: Vec<PrivateKey> = (0..3).map(|_| PrivateKey::generate()).collect();
    let jobs: Vec<Value> = keys
        .iter()
        .map(|k| open_job("127.0.0.1", &d.base, k))
        .collect();

    let started = Instant::now();
    let (status, retry_after, body) =
        post_from("127.0.0.1", &url, &create_request(&PrivateKey::generate()));
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_throttled(status, retry_after, &body, "per client");
    assert_eq!(
        metric(
            &d.base,
            "sparkid_registrar_refused_total{reason=\"client_jobs\"}"
        ),
        Some(1.0)
    );
    assert_eq!(metric(&d.base, "sparkid_registrar_jobs_pending"), Some(3.0));

    // Another client is not held back by the first one's jobs.
    open_job("127.0.0.2", &d.base, &PrivateKey::generate());

    // Finishing a job frees its slot.
    let (status, _, done) = post_from(
        "127.0.0.1",
        &url,
        &continuation(&jobs[0], &keys[0], Some(&job_secret(&jobs[0]))),
    );
    assert_eq!(status, 201, "{done}");
    open_job("127.0.0.1", &d.base, &PrivateKey::generate());
}

#[test]
fn pending_jobs_are_capped_in_total_with_429_and_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(
        dir.path(),
        &[
            "--registrar-max-pending-jobs",
            "4",
            "--registrar-max-pending-jobs-per-client",
            "3",
        ],
    );
    for _ in 0..3 {
        open_job("127.0.0.1", &d.base, &PrivateKey::generate());
    }
    open_job("127.0.0.2", &d.base, &PrivateKey::generate());
    let (status, retry_after, body) = post_from(
        "127.0.0.3",
        &format!("{}/1.0/create?method=bid", d.base),
        &create_request(&PrivateKey::generate()),
    );
    assert_throttled(status, retry_after, &body, "in total");
    assert_eq!(
        metric(
            &d.base,
            "sparkid_registrar_refused_total{reason=\"total_jobs\"}"
        ),
        Some(1.0)
    );
}

#[test]
fn a_job_is_continued_or_cancelled_only_with_its_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let url = format!("{}/1.0/create?method=bid", d.base);
    let owner = PrivateKey::generate();
    let job = open_job("127.0.0.1", &d.base, &owner);
    let secret = job_secret(&job);
    assert!(
        secret.len() >= 22,
        "at least 128 bits of base64url: {secret}"
    );
    let before = height(&d.base);

    // Someone who saw the jobId, not the secret: a well-formed signature by another key (which
    // used to use the job up), without a secret, with a wrong one, and a cancel.
    let attacker = PrivateKey::generate();
    let wrong = "A".repeat(secret.len());
    let attempts = [
        continuation(&job, &attacker, None),
        continuation(&job, &attacker, Some(&wrong)),
        continuation(&job, &owner, Some(&wrong)),
        json!({"jobId": job["jobId"], "options": {"cancel": true}}),
        json!({"jobId": job["jobId"], "options": {"cancel": true}, "secret": {"jobSecret": wrong}}),
    ];
    for attempt in &attempts {
        let (status, _, answer) = post_from("127.0.0.2", &url, attempt);
        assert_eq!(status, 403, "{attempt} -> {answer}");
        assert_eq!(answer["didState"]["state"], "failed", "{answer}");
        let reason = answer["didState"]["reason"].as_str().unwrap();
        assert!(reason.contains("jobSecret"), "{reason}");
    }
    assert_eq!(height(&d.base), before, "nothing reached the ledger");
    assert_eq!(
        metric(
            &d.base,
            "sparkid_registrar_refused_total{reason=\"job_secret\"}"
        ),
        Some(attempts.len() as f64)
    );

    // The owner's job is intact: it finishes with the secret.
    let (status, _, done) = post_from(
        "127.0.0.1",
        &url,
        &continuation(&job, &owner, Some(&secret)),
    );
    assert_eq!(status, 201, "{done}");
    assert_eq!(done["didState"]["state"], "finished", "{done}");
    assert_eq!(height(&d.base), before + 1);

    // Cancelling with the secret ends a job: it cannot be continued afterwards.
    let other = PrivateKey::generate();
    let job = open_job("127.0.0.1", &d.base, &other);
    let secret = job_secret(&job);
    let (status, _, cancelled) = post_from(
        "127.0.0.1",
        &url,
        &json!({"jobId": job["jobId"], "options": {"cancel": true}, "secret": {"jobSecret": secret}}),
    );
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["didState"]["state"], "failed", "{cancelled}");
    assert!(cancelled["jobId"].is_null(), "{cancelled}");
    let (status, _, gone) = post_from(
        "127.0.0.1",
        &url,
        &continuation(&job, &other, Some(&secret)),
    );
    assert_eq!(status, 404, "{gone}");
    assert_eq!(
        height(&d.base),
        before + 1,
        "the cancelled job wrote nothing"
    );
}

#[test]
fn a_permissioned_registrar_accepts_only_listed_submitters() {
    let dir = tempfile::tempdir().unwrap();
    let listed_key = PrivateKey::generate();
    // A DID entry: its controller may submit (here, the create of that very DID).
    let listed_did_key = PrivateKey::generate();
    let listed_did = sparkid_bid::Bid::derive(&listed_did_key.public_key(), None)
        .unwrap()
        .to_string();
    let d = Daemon::start_with(
        dir.path(),
        &[
            "--registrar-submitter",
            &listed_key.public_key().to_encoded(),
            "--registrar-submitter",
            &listed_did,
        ],
    );
    let url = format!("{}/1.0/create?method=bid", d.base);
    let before = height(&d.base);

    let stranger = PrivateKey::generate();
    let (status, _, refused) = post_from("127.0.0.1", &url, &create_request(&stranger));
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["didState"]["state"], "failed", "{refused}");
    assert!(
        refused["jobId"].is_null(),
        "no job for a stranger: {refused}"
    );
    let reason = refused["didState"]["reason"].as_str().unwrap();
    assert!(reason.contains("registrar.submitters"), "{reason}");
    assert_eq!(height(&d.base), before);
    assert_eq!(
        metric(
            &d.base,
            "sparkid_registrar_refused_total{reason=\"submitter\"}"
        ),
        Some(1.0)
    );

    for key in [&listed_key, &listed_did_key] {
        let job = open_job("127.0.0.1", &d.base, key);
        let (status, _, done) = post_from(
            "127.0.0.1",
            &url,
            &continuation(&job, key, Some(&job_secret(&job))),
        );
        assert_eq!(status, 201, "{done}");
    }
    assert_eq!(height(&d.base), before + 2);

    // A listed DID's controller keeps writing it: an update signed by its authentication key.
    let (status, updated) = common::sign_and_send(
        &format!("{}/1.0/update", d.base),
        json!({"did": listed_did, "didDocument": sparkid_registrar::api::new_document(
            &listed_did_key.public_key(),
            Some(json!({"extension": {"ttl": 60}})),
        ).unwrap()}),
        &listed_did_key,
    );
    assert_eq!(status, 200, "{updated}");

    // Naming a listed DID's key id proves nothing: a stranger's document that calls its own key
    // `<listed DID>#key-1` is still refused, since that DID's document does not hold the key.
    let mut doc = sparkid_registrar::api::new_document(&stranger.public_key(), None).unwrap();
    let stolen_kid = format!("{listed_did}#key-1");
    let controller = doc["id"].clone();
    doc["publicKey"].as_array_mut().unwrap().push(json!({
        "id": stolen_kid, "type": "Ed25519", "controller": controller,
        "publicKeyHex": stranger.public_key().to_encoded(),
    }));
    doc["authentication"]
        .as_array_mut()
        .unwrap()
        .push(json!(stolen_kid));
    let (status, _, refused) = post_from(
        "127.0.0.1",
        &url,
        &json!({"options": {"clientSecretMode": true, "signer": stolen_kid}, "didDocument": doc}),
    );
    assert_eq!(status, 403, "{refused}");
    assert!(refused["jobId"].is_null(), "{refused}");
    assert_eq!(height(&d.base), before + 3);
}

/// A body that is JSON but not an object (found by schemathesis's negative_data_rejection:
/// `[null, null]` was read as an empty request and created a DID) is refused with 400, naming
/// its type, and nothing is written.
#[test]
fn a_registrar_body_that_is_not_a_json_object_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(dir.path(), &["--handle", "off"]);
    let before = height(&d.base);
    for (body, kind) in [
        (json!([null, null]), "array"),
        (json!([]), "array"),
        (json!(null), "null"),
        (json!("create"), "string"),
        (json!(7), "number"),
    ] {
        for route in ["create?method=bid", "update", "deactivate", "namespaces"] {
            let (status, answer) = common::post(&format!("{}/1.0/{route}", d.base), &body);
            assert_eq!(status, 400, "{route} {body}: {answer}");
            assert_eq!(answer["didState"]["state"], "failed", "{route} {body}");
            let reason = answer["didState"]["reason"].as_str().unwrap_or_default();
            assert!(
                reason.contains(&format!("a JSON {kind}, not an object")),
                "{route} {body}: {reason}"
            );
        }
    }
    assert_eq!(height(&d.base), before, "a block was written");
}
