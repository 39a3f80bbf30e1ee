//! Input-size and malformed-input attacks (issue 12, items 1, 13, 14): each attack against a spawned daemon, asserting its bounded outcome.
//!
//! - Item 1: signature, key and address texts far longer than any valid one are refused on
//!   their length, before any decoding, in every door that reads them (the registrar's
//!   operations and secrets, the BID door's `?verify=true`, the consensus door). Base58
//!   decoding is quadratic (the hand-written codec and `bs58` alike): a 250,000-character
//!   signature cost about 30 s of CPU in a release build.
//! - Item 13: a small-order (weak) Ed25519 public key is refused at registration.
//! - Item 14: a path with non-ASCII text, raw or percent-encoded, is a 4xx answer in the door's
//!   own shape, never a panic and a dropped connection.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{create_did, get_json, start_in_process};
use serde_json::{json, Value};
use sparkid_bid::PrivateKey;

/// How long a refusal on length may take. The refusal itself costs microseconds; the bound
/// leaves room for a debug build on a loaded 2-core machine. The quadratic decoder needed
/// seconds to minutes for the same inputs.
const REFUSAL_BOUND: Duration = Duration::from_millis(500);

/// A client that gives up long before the old decoder finished, so that a regression fails
/// the test quickly instead of hanging it.
fn short_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// POSTs `body` to `url`; the status, the JSON answer and how long the answer took.
fn timed_post(url: &str, body: &Value) -> (u16, Value, Duration) {
    let text = serde_json::to_vec(body).unwrap();
    let started = Instant::now();
    let response = short_client()
        .post(url)
        .header("content-type", "application/json")
        .body(text)
        .send()
        .unwrap_or_else(|e| panic!("{url}: no answer within 10 s: {e}"));
    let status = response.status().as_u16();
    let answer: Value = response.json().unwrap();
    (status, answer, started.elapsed())
}

/// GETs `url`; the status, the JSON answer and how long the answer took.
fn timed_get(url: &str) -> (u16, Value, Duration) {
    let started = Instant::now();
    let response = short_client()
        .get(url)
        .send()
        .unwrap_or_else(|e| panic!("{url}: no answer within 10 s: {e}"));
    let status = response.status().as_u16();
    let answer: Value = response.json().unwrap();
    (status, answer, started.elapsed())
}

/// Characters that are all in BIF's (and Bitcoin's) Base58 alphabet: the decoder would have to
/// work through every one of them.
fn base58_text(len: usize) -> String {
    "2".repeat(len)
}

/// An answer, cut short for an assertion message (some echo the huge input).
fn brief(answer: &Value) -> String {
    answer.to_string().chars().take(400).collect()
}

fn reason(answer: &Value) -> &str {
    answer["didState"]["reason"].as_str().unwrap_or_default()
}

fn assert_bounded(what: &str, took: Duration) {
    eprintln!("{what}: refused in {took:?}");
    assert!(
        took < REFUSAL_BOUND,
        "{what}: the refusal took {took:?}, over {REFUSAL_BOUND:?}"
    );
}

/// A certified header of the daemon's own chain, as `?proof=true` carries it: a well-formed
/// `anchor` operation needs one.
fn certified_header(base: &str, did: &str) -> Value {
    let (status, proven) = get_json(&format!("{base}/1.0/identifiers/{did}?proof=true"));
    assert_eq!(status, 200, "{proven}");
    proven["didResolutionMetadata"]["ledgerProof"]["anchor"].clone()
}

#[test]
fn an_anchor_with_a_huge_vote_signature_is_refused_on_its_length() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_in_process(dir.path(), &[]);
    let base = d.base.as_str();
    let (_, did) = create_did(base, None);
    let mut header = certified_header(base, &did);
    let votes = header["certificate"]["votes"].as_array_mut().unwrap();
    assert!(!votes.is_empty(), "{header}");
    votes[0]["signature"] = json!(base58_text(250_000));
    let body = json!({
        "options": {"signer": format!("{did}#key-1")},
        "operation": {"type": "anchor", "ac": "abcd", "header": header},
    });
    let (status, answer, took) = timed_post(&format!("{base}/1.0/namespaces"), &body);
    assert_eq!(status, 400, "{}", brief(&answer));
    assert_eq!(answer["didState"]["state"], "failed", "{}", brief(&answer));
    assert!(
        reason(&answer).contains("signature text is 250000 characters, at most 88"),
        "{}",
        brief(&answer)
    );
    assert_bounded("anchor vote signature of 250,000 characters", took);
}

#[test]
fn a_huge_signature_in_the_registrar_secret_is_refused_on_its_length() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_in_process(dir.path(), &[]);
    let base = d.base.as_str();
    let key = PrivateKey::generate();
    let doc = sparkid_registrar::api::new_document(&key.public_key(), None).unwrap();
    let url = format!("{base}/1.0/create?method=bid");
    let (status, asked) = common::post(
        &url,
        &json!({"options": {"clientSecretMode": true}, "didDocument": doc}),
    );
    assert_eq!(status, 200, "{}", brief(&asked));
    let job = asked["jobId"].clone();
    let job_secret = asked["didRegistrationMetadata"]["jobSecret"].clone();
    let body = json!({"jobId": job, "secret": {"jobSecret": job_secret,
        "signingResponse": {"signingRequest0": {"signature": base58_text(250_000)}}}});
    let (status, answer, took) = timed_post(&url, &body);
    assert_eq!(status, 400, "{}", brief(&answer));
    assert!(
        reason(&answer).contains("signature text is 250000 characters, at most 128"),
        "{}",
        brief(&answer)
    );
    assert_bounded("registrar secret signature of 250,000 characters", took);
    // The job waits for a correct signature still.
    let payload = asked["didState"]["signingRequest"]["signingRequest0"]["serializedPayload"]
        .as_str()
        .unwrap();
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .unwrap();
    let signature = key.sign(&bytes).to_base58();
    let (status, finished) = common::post(
        &url,
        &json!({"jobId": job, "secret": {"jobSecret": job_secret,
            "signingResponse": {"signingRequest0": {"signature": signature}}}}),
    );
    assert_eq!(status, 201, "{finished}");
}

#[test]
fn a_huge_public_key_and_a_huge_address_are_refused_on_their_length() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_in_process(dir.path(), &[]);
    let base = d.base.as_str();
    let (_, did) = create_did(base, None);

    // A key: a document whose publicKeyHex is 250,000 hex digits.
    let key = PrivateKey::generate();
    let mut doc = sparkid_registrar::api::new_document(&key.public_key(), None).unwrap();
    doc["publicKey"][0]["publicKeyHex"] = json!(format!("b06566{}", "ab".repeat(125_000)));
    let (status, answer, took) = timed_post(
        &format!("{base}/1.0/create?method=bid"),
        &json!({"options": {"clientSecretMode": true}, "didDocument": doc}),
    );
    assert_eq!(status, 400, "{}", brief(&answer));
    assert!(
        reason(&answer).contains("public key text is 250006 characters, at most 136"),
        "{}",
        brief(&answer)
    );
    assert_bounded("publicKeyHex of 250,006 characters", took);

    // A namespace authority's key given in the options, as long.
    let (status, answer, took) = timed_post(
        &format!("{base}/1.0/namespaces"),
        &json!({
            "options": {"signer": format!("{did}#key-1"),
                        "publicKeyHex": format!("b06566{}", "ab".repeat(125_000))},
            "operation": {"type": "bind", "kind": "vaa", "identifier": "VAA1234", "did": did},
        }),
    );
    assert_eq!(status, 400, "{}", brief(&answer));
    assert!(
        reason(&answer).contains("public key text is 250006 characters, at most 136"),
        "{}",
        brief(&answer)
    );
    assert_bounded("options.publicKeyHex of 250,006 characters", took);

    // An address: an update of a DID that is 250,000 characters of Base58.
    let long_did = format!("did:bid:ef{}", base58_text(250_000));
    let (status, answer, took) = timed_post(
        &format!("{base}/1.0/update"),
        &json!({"did": long_did, "didDocument": {}}),
    );
    assert_eq!(status, 400, "{}", brief(&answer));
    assert!(
        reason(&answer).contains("at most 57 characters long, this one has 250010"),
        "{}",
        brief(&answer)
    );
    assert_bounded("an update's DID of 250,010 characters", took);
}

#[test]
fn verify_true_refuses_a_huge_delegate_signature_on_its_length() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_in_process(dir.path(), &[]);
    let base = d.base.as_str();
    let (_, certifier) = create_did(base, None);
    // As long as a transaction allows (64 KiB): each `?verify=true` read of this document
    // cost the quadratic decoder seconds.
    let (_, did) = create_did(
        base,
        Some(json!({"extension": {"delegateSign": {
            "signer": format!("{certifier}#key-1"),
            "signatureValue": base58_text(60_000)}}})),
    );
    let (status, envelope, took) = timed_get(&format!("{base}/{did}?verify=true"));
    assert_eq!(status, 200, "{}", brief(&envelope));
    assert_eq!(envelope["errorCode"], 9, "{}", brief(&envelope));
    let message = envelope["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("signature text is 60000 characters, at most 88"),
        "{}",
        brief(&envelope)
    );
    assert_bounded("?verify=true over a 60,000-character signatureValue", took);
}

/// The encoded public key of the Ed25519 identity point, a small-order point: any signature
/// "verifies" under it with the lax check, so it would let anyone write as that DID.
const IDENTITY_POINT_KEY: &str =
    "b065660100000000000000000000000000000000000000000000000000000000000000";

#[test]
fn a_small_order_public_key_is_refused_at_registration() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_in_process(dir.path(), &[]);
    let base = d.base.as_str();

    // A create whose document's key is the identity point, with its derived BID as id.
    let weak = sparkid_bid::PublicKey::Ed25519(
        ed25519_dalek::VerifyingKey::from_bytes(&{
            let mut b = [0u8; 32];
            b[0] = 1;
            b
        })
        .unwrap(),
    );
    assert_eq!(weak.to_encoded(), IDENTITY_POINT_KEY);
    let doc = sparkid_registrar::api::new_document(&weak, None).unwrap();
    let (status, answer) = common::post(
        &format!("{base}/1.0/create?method=bid"),
        &json!({"options": {"clientSecretMode": true}, "didDocument": doc}),
    );
    assert_eq!(status, 400, "{}", brief(&answer));
    assert!(
        reason(&answer).contains("small-order"),
        "a weak key must be refused by name: {}",
        brief(&answer)
    );

    // A namespace authority's key given in the options (the authority's DID is not on the
    // ledger yet): the weak key is refused before the job is made. Under it, R = [s]B with a
    // known s would "sign" any payload for the lax check (see bid's unit tests).
    let (_, did) = create_did(base, None);
    let (status, answer) = common::post(
        &format!("{base}/1.0/namespaces"),
        &json!({
            "options": {"signer": format!("{did}#key-1"), "publicKeyHex": IDENTITY_POINT_KEY},
            "operation": {"type": "bind", "kind": "vaa", "identifier": "VAA1234", "did": did},
        }),
    );
    assert_eq!(status, 400, "{}", brief(&answer));
    assert!(
        reason(&answer).contains("small-order"),
        "{}",
        brief(&answer)
    );
}

/// Sends `GET <path>` with a `Host` header over a raw socket; the whole answer as text.
fn raw_request(base: &str, path: &[u8]) -> String {
    let address = base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = b"GET ".to_vec();
    request.extend_from_slice(path);
    request.extend_from_slice(
        format!(" HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    stream.write_all(&request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn status_of(answer: &str) -> u16 {
    answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn non_ascii_text_in_the_identifier_path_is_a_4xx_not_a_dropped_connection() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_in_process(dir.path(), &[]);
    let base = d.base.as_str();
    let paths: [&[u8]; 6] = [
        b"/1.0/identifiers/abcde\xc3\xa9",
        b"/1.0/identifiers/abcde%C3%A9",
        b"/1.0/identifiers/\xc3\xa9",
        b"/1.0/identifiers/did%3\xc3\xa9",
        b"/1.0/identifiers/did:bid:\xc3\xa9\xc3\xa9\xc3\xa9",
        b"/1.0/identifiers/did:key:z\xc3\xa9",
    ];
    for path in paths {
        let shown = String::from_utf8_lossy(path);
        let answer = raw_request(base, path);
        let status = status_of(&answer);
        assert!(
            (400..500).contains(&status),
            "{shown}: the answer is not a 4xx: {answer:?}"
        );
        let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
        let json: Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{shown}: the body is not JSON ({e}): {answer:?}"));
        let error = &json["didResolutionMetadata"]["error"];
        assert!(error.is_object(), "{shown}: {json}");
    }
    // The daemon is still up.
    let (status, health) = get_json(&format!("{base}/healthz"));
    assert_eq!(status, 200, "{health}");
}

#[test]
fn non_ascii_text_in_the_bid_door_path_is_an_envelope_not_a_dropped_connection() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_in_process(dir.path(), &[]);
    let base = d.base.as_str();
    for path in [
        &b"/did:bid:\xc3\xa9\xc3\xa9"[..],
        b"/did:bid:ef\xc3\xa9?verify=true",
        b"/did:bid:abcd:\xc3\xa9",
    ] {
        let shown = String::from_utf8_lossy(path);
        let answer = raw_request(base, path);
        let status = status_of(&answer);
        assert!(
            (200..500).contains(&status),
            "{shown}: no answer, or a 5xx: {answer:?}"
        );
    }
    let (status, _) = get_json(&format!("{base}/healthz"));
    assert_eq!(status, 200);
}

/// One of two validators of a chain (the other never starts): its consensus door is open to a
/// request the other validator signs. The daemon, and the two validators' keys.
fn lone_validator(dir: &std::path::Path) -> (common::InProcessDaemon, Vec<PrivateKey>) {
    let keys: Vec<PrivateKey> = (0..2).map(|_| PrivateKey::generate()).collect();
    let key_files: Vec<String> = (0..2)
        .map(|i| {
            let path = dir.join(format!("validator-{i}.key"));
            std::fs::write(&path, keys[i].to_encoded()).unwrap();
            path.to_str().unwrap().to_string()
        })
        .collect();
    let genesis = dir.join("genesis.json");
    let validators: Vec<String> = keys.iter().map(|k| k.public_key().to_encoded()).collect();
    std::fs::write(
        &genesis,
        json!({"chainId": "sparkid-input-test", "time": 1_700_000_000u64, "validators": validators})
            .to_string(),
    )
    .unwrap();
    let genesis = genesis.to_str().unwrap();
    let votes: Vec<Value> = key_files
        .iter()
        .map(|k| {
            common::cli(&[
                "ledger",
                "genesis-vote",
                "--genesis",
                genesis,
                "--validator-key",
                k,
            ])
        })
        .collect();
    let votes_path = dir.join("votes.json");
    std::fs::write(&votes_path, Value::Array(votes).to_string()).unwrap();
    let data = dir.join("node-0");
    let data_text = data.to_str().unwrap();
    common::cli(&[
        "ledger",
        "init",
        "--data",
        data_text,
        "--genesis",
        genesis,
        "--votes",
        votes_path.to_str().unwrap(),
    ]);
    let peer = format!("http://127.0.0.1:{}", common::free_port());
    let daemon = start_in_process(
        &data,
        &[
            "--validator-key",
            &key_files[0],
            "--handle",
            "off",
            "--peer",
            &peer,
        ],
    );
    (daemon, keys)
}

#[test]
fn a_consensus_vote_with_a_huge_signature_is_refused_on_its_length() {
    let dir = tempfile::tempdir().unwrap();
    let (d, keys) = lone_validator(dir.path());
    let base = d.base.as_str();
    // A precommit for the block above the genesis, its signature 250,000 characters.
    let (status, head) = get_json(&format!("{base}/1.0/ledger/head"));
    assert_eq!(status, 200, "{head}");
    let message = json!({"vote": {
        "height": 1,
        "round": 0,
        "type": "precommit",
        "blockHash": head["header"]["previousHash"],
        "validator": keys[1].public_key().to_encoded(),
        "signature": base58_text(250_000),
    }});
    // Signed by the other validator, as every request between validators is: the length check
    // comes after the sender is known, and before the vote is decoded.
    let body = serde_json::to_vec(&message).unwrap();
    let path = "/1.0/consensus/messages";
    let headers = common::validator_request_headers(
        &keys[1],
        "sparkid-input-test",
        path,
        &keys[0].public_key().to_encoded(),
        &body,
    );
    let started = Instant::now();
    let mut request = short_client()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().expect("an answer within 10 s");
    let status = response.status().as_u16();
    let answer: Value = response.json().unwrap();
    let took = started.elapsed();
    assert_eq!(status, 400, "{}", brief(&answer));
    let detail = answer["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("signature text is 250000 characters, at most 88"),
        "{}",
        brief(&answer)
    );
    assert_bounded("consensus vote signature of 250,000 characters", took);
}

#[test]
fn a_genesis_naming_a_small_order_validator_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let genesis = dir.path().join("genesis.json");
    std::fs::write(
        &genesis,
        json!({"chainId": "sparkid-weak", "time": 1_700_000_000u64,
               "validators": [IDENTITY_POINT_KEY]})
        .to_string(),
    )
    .unwrap();
    let votes = dir.path().join("votes.json");
    std::fs::write(&votes, "[]").unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["ledger", "init", "--data"])
        .arg(dir.path().join("data"))
        .arg("--genesis")
        .arg(&genesis)
        .arg("--votes")
        .arg(&votes)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("small-order"), "{stderr}");
}

#[test]
fn a_registrar_body_over_its_cap_is_refused_in_the_registrars_shape() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_in_process(dir.path(), &[]);
    let base = d.base.as_str();
    // A body of 300,000 bytes: over the registrar door's 256 KiB cap.
    let body = json!({"options": {"padding": "a".repeat(300_000)}});
    for path in ["/1.0/create?method=bid", "/1.0/update", "/1.0/namespaces"] {
        let (status, answer, took) = timed_post(&format!("{base}{path}"), &body);
        assert_eq!(status, 413, "{path}: {}", brief(&answer));
        assert_eq!(
            answer["didState"]["state"],
            "failed",
            "{path}: {}",
            brief(&answer)
        );
        assert_eq!(
            reason(&answer),
            "the request body is over 262144 bytes",
            "{path}: {}",
            brief(&answer)
        );
        assert_bounded(&format!("{path} body of 300,000 bytes"), took);
    }
}
