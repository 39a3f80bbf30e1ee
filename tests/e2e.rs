//! End-to-end: a spawned `sparkid` daemon driven over real sockets by an HTTP client and by the
//! `sparkid` CLI.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use sparkid_bid::PrivateKey;

mod common;

use common::{client, post, sign_and_send, Daemon, BIN};

fn resolve(base: &str, did: &str) -> (u16, Value) {
    common::get_json(&format!("{base}/1.0/identifiers/{did}"))
}

#[test]
fn create_resolve_update_and_refuse_an_outsider() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    // The published key of did:bid:ef18F9AVK4SQLZPRrPkrVWwp9kbpdXHx ([RESPROTO] §5.4.2).
    let key =
        PrivateKey::from_encoded("priSPKp8oiiAXGZaXFBMKEAoL2b6J6UDQCw4x39ereXYtyAejM").unwrap();
    let doc = sparkid_registrar::api::new_document(
        &key.public_key(),
        Some(json!({"service": [{"id": "#files", "type": "DIDStorage", "serviceEndpoint": "https://files.example"}]})),
    )
    .unwrap();
    let did = doc["id"].as_str().unwrap().to_string();
    let (status, created) = sign_and_send(
        &format!("{}/1.0/create?method=bid", d.base),
        json!({"options": {"clientSecretMode": true}, "didDocument": doc}),
        &key,
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["didState"]["state"], "finished");
    assert_eq!(created["didState"]["did"], json!(did));

    let (status, resolved) = resolve(&d.base, &did);
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["didDocument"]["id"], json!(did));
    assert_eq!(
        resolved["didDocument"]["service"][0]["serviceEndpoint"],
        "https://files.example"
    );
    assert_eq!(resolved["didDocumentMetadata"]["versionId"], "1");
    assert_eq!(resolved["didDocumentMetadata"]["deactivated"], false);
    assert!(resolved["didDocumentMetadata"]["created"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(did, "did:bid:ef18F9AVK4SQLZPRrPkrVWwp9kbpdXHx");
    // The Multikey of its public key b06566f767…a06, worked out apart from the project's
    // encoder: base58btc of 0xed01 and the 32 raw bytes, after `z`.
    assert_eq!(
        resolved["didDocument"]["verificationMethod"][0]["publicKeyMultibase"],
        "z6Mkw7224Tn3gtE2EzLdwwLwoNwAk1n4X9dKXYt3jSG2Uzcm"
    );

    // An outsider signs an update of this DID: 4xx naming the rule, the document unchanged.
    let outsider = PrivateKey::generate();
    let mut changed = doc.clone();
    changed["service"][0]["serviceEndpoint"] = json!("https://evil.example");
    let (status, refused) = sign_and_send(
        &format!("{}/1.0/update", d.base),
        json!({"did": did, "didDocument": changed}),
        &outsider,
    );
    assert!((400..500).contains(&status), "{status} {refused}");
    assert_eq!(refused["didState"]["state"], "failed");
    assert!(
        refused["didState"]["reason"]
            .as_str()
            .unwrap()
            .contains("signature does not verify"),
        "{refused}"
    );
    let (status, signer_refused) = post(
        &format!("{}/1.0/update", d.base),
        &json!({"did": did, "didDocument": changed, "options": {"signer": format!("{did}#key-9")}}),
    );
    assert_eq!(status, 400);
    assert!(
        signer_refused["didState"]["reason"]
            .as_str()
            .unwrap()
            .contains("is not a authentication key"),
        "{signer_refused}"
    );
    let (_, after) = resolve(&d.base, &did);
    assert_eq!(after["didDocument"], resolved["didDocument"]);
    assert_eq!(after["didDocumentMetadata"]["versionId"], "1");

    // The owner updates; then deactivates with the recovery key: 410.
    let (status, updated) = sign_and_send(
        &format!("{}/1.0/update", d.base),
        json!({"did": did, "didDocument": changed}),
        &key,
    );
    assert_eq!(status, 200, "{updated}");
    let (_, after) = resolve(&d.base, &did);
    assert_eq!(
        after["didDocument"]["service"][0]["serviceEndpoint"],
        "https://evil.example"
    );
    assert_eq!(after["didDocumentMetadata"]["versionId"], "2");
    let (status, _) = sign_and_send(
        &format!("{}/1.0/deactivate", d.base),
        json!({"did": did}),
        &key,
    );
    assert_eq!(status, 200);
    let (status, gone) = resolve(&d.base, &did);
    assert_eq!(status, 410);
    assert_eq!(gone["didDocumentMetadata"]["deactivated"], true);
    assert_eq!(gone["didDocument"], Value::Null);
}

#[test]
fn the_cli_creates_updates_and_deactivates_through_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let out = Command::new(BIN)
        .args(["did", "create", "--endpoint", &d.base])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let did = created["didState"]["did"].as_str().unwrap().to_string();
    let key = created["generatedKey"]["privateKey"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(resolve(&d.base, &did).0, 200);

    let mut native = sparkid_registrar::api::new_document(
        &PrivateKey::from_encoded(&key).unwrap().public_key(),
        None,
    )
    .unwrap();
    native["alsoKnownAs"] = json!([{"type": 105, "id": "88.111.1/demo"}]);
    let doc_path = dir.path().join("doc.json");
    std::fs::write(&doc_path, native.to_string()).unwrap();
    let out = Command::new(BIN)
        .args([
            "did",
            "update",
            "--endpoint",
            &d.base,
            "--did",
            &did,
            "--key",
            &key,
            "--document",
        ])
        .arg(&doc_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        resolve(&d.base, &did).1["didDocument"]["alsoKnownAs"],
        json!(["hdl:88.111.1/demo"])
    );

    let wrong = PrivateKey::generate().to_encoded();
    let out = Command::new(BIN)
        .args([
            "did",
            "deactivate",
            "--endpoint",
            &d.base,
            "--did",
            &did,
            "--key",
            &wrong,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{did} lists no key matching --key"))
            && stderr.contains("recovery key"),
        "{stderr}"
    );
    assert_eq!(resolve(&d.base, &did).0, 200);

    // A refused namespace write (no namespace covers the code): the CLI fails, and its error
    // carries the registrar's reason, not only the state.
    let out = Command::new(BIN)
        .args([
            "namespace",
            "bind",
            "--endpoint",
            &d.base,
            "--key",
            &key,
            "--kind",
            "vaa",
            "--identifier",
            "VAA9999PUMP1",
            "--did",
            &did,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["didState"]["state"], "failed", "{answer}");
    let reason = answer["didState"]["reason"].as_str().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("the registrar answered failed: {reason}")),
        "{stderr}"
    );
    let out = Command::new(BIN)
        .args([
            "did",
            "deactivate",
            "--endpoint",
            &d.base,
            "--did",
            &did,
            "--key",
            &key,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(resolve(&d.base, &did).0, 410);
}

#[test]
fn every_finished_write_survives_kill_9_and_the_chain_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let url = format!("{}/1.0/create?method=bid", d.base);
    let finished: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let (url, finished, stop) = (url.clone(), finished.clone(), stop.clone());
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .unwrap();
                while !stop.load(Ordering::Relaxed) {
                    // Internal secret mode (dev): one request per write.
                    let Ok(r) = client.post(&url).json(&json!({})).send() else {
                        break;
                    };
                    let Ok(body) = r.json::<Value>() else { break };
                    if body["didState"]["state"] == "finished" {
                        finished
                            .lock()
                            .unwrap()
                            .push(body["didState"]["did"].as_str().unwrap().to_string());
                    }
                }
            })
        })
        .collect();
    // Kill while the writers are still writing, once enough writes have finished to matter
    // (waiting on a count, not a clock: a loaded machine writes slower).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while finished.lock().unwrap().len() <= 20 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    d.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acknowledged = finished.lock().unwrap().clone();
    assert!(
        acknowledged.len() > 20,
        "only {} writes finished before the kill",
        acknowledged.len()
    );

    let d = Daemon::start(dir.path());
    for did in &acknowledged {
        let (status, body) = resolve(&d.base, did);
        assert_eq!(
            status, 200,
            "{did} was answered finished but does not resolve after kill -9: {body}"
        );
    }
    drop(d);
    let out = Command::new(BIN)
        .args(["ledger", "verify", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok:"));
}

#[test]
fn bad_input_gets_specific_errors_never_a_500() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let cases = [
        (
            "did:bid:efJgt44mNDewKK1VEN454R17cjso3mS0",
            400,
            "INVALID_DID",
        ),
        (
            "did:bid:BY01:efJgt44mNDewKK1VEN454R17cjso3mSG",
            400,
            "INVALID_DID",
        ),
        ("not-a-did", 400, "INVALID_DID"),
        ("did:example:123", 501, "METHOD_NOT_SUPPORTED"),
        ("did:bid:efJgt44mNDewKK1VEN454R17cjso3mSG", 404, "NOT_FOUND"),
    ];
    for (did, status, code) in cases {
        let (got, body) = resolve(&d.base, did);
        assert_eq!(got, status, "{did}: {body}");
        assert_eq!(
            body["didResolutionMetadata"]["error"]["type"],
            json!(format!("https://www.w3.org/ns/did#{code}"))
        );
        assert_eq!(body["didDocument"], Value::Null);
    }
    let long = format!("did:bid:{}", "a".repeat(5000));
    assert_eq!(resolve(&d.base, &long).0, 400);

    let r = client()
        .post(format!("{}/1.0/create?method=bid", d.base))
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // A `failed` state whose reason names the rule broken.
    let failed = |body: &Value, rule: &str| {
        assert_eq!(body["didState"]["state"], "failed", "{body}");
        let reason = body["didState"]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains(rule), "{reason:?} lacks {rule:?}");
    };
    failed(
        &r.json::<Value>().unwrap(),
        "the request body is not a registrar request",
    );
    let (status, body) = post(&format!("{}/1.0/create", d.base), &json!({}));
    assert_eq!(status, 400, "{body}");
    failed(&body, "create needs ?method=bid");
    let (status, body) = post(&format!("{}/1.0/create?method=web", d.base), &json!({}));
    assert_eq!(status, 400, "{body}");
    failed(&body, "method \"web\" is not supported");
    let (status, body) = post(
        &format!("{}/1.0/update", d.base),
        &json!({"jobId": "nope", "secret": {}}),
    );
    assert_eq!(status, 404, "{body}");
    failed(&body, "no job nope");
    let (status, body) = post(
        &format!("{}/1.0/deactivate", d.base),
        &json!({"did": "did:bid:efJgt44mNDewKK1VEN454R17cjso3mSG"}),
    );
    assert_eq!(status, 404, "{body}");
    failed(
        &body,
        "did:bid:efJgt44mNDewKK1VEN454R17cjso3mSG does not exist",
    );
    let big = json!({"didDocument": {"x": "y".repeat(400_000)}});
    let r = client()
        .post(format!("{}/1.0/create?method=bid", d.base))
        .json(&big)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
}

#[test]
fn bid_derive_prints_the_published_bids() {
    for (key, did) in [
        (
            "B06566766FC2A97B74339EB3F662B49410CD56C23D5CC8B31005459AA92B5D4D7D7563",
            "did:bid:efJgt44mNDewKK1VEN454R17cjso3mSG",
        ),
        (
            "b06566f76733ae048fda721d47afe8780b572636496c93253db86dc8d5427fc54e9a06",
            "did:bid:ef18F9AVK4SQLZPRrPkrVWwp9kbpdXHx",
        ),
        (
            "b065666cee70556107436be380dca88a5a5e403fd54a14d59f4eac322d598136264333",
            "did:bid:efNc8GGh3Yh2GkNJwBwHmKsqWPEayBtM",
        ),
    ] {
        let out = Command::new(BIN)
            .args(["bid", "derive", key])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{did}\n"));
    }
    let out = Command::new(BIN)
        .args([
            "bid",
            "derive",
            "b06566f76733ae048fda721d47afe8780b572636496c93253db86dc8d5427fc54e9a06",
            "--ac",
            "by01",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "did:bid:by01:ef18F9AVK4SQLZPRrPkrVWwp9kbpdXHx\n"
    );
    let out = Command::new(BIN)
        .args(["bid", "derive", "a06566"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("0xb0"));
}
