//! The DID Resolution HTTP binding, end to end: a spawned `sparkid` daemon over real sockets.
//! Content negotiation, every error type with its status, deactivation, versions, `noCache`,
//! ledger proofs, DID URL dereferencing (fragments, services, `relativeRef`), the Universal
//! Resolver's `/1.0/methods`, `/1.0/properties` and `/1.0/testIdentifiers`, did:key, and other
//! methods proxied to a real driver (a small HTTP server run by the test) with its errors and
//! timeouts; and bad input (percent-encoding, length, options) never getting a 500.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{create_did, deactivate, get_json, sign_and_send, Daemon};
use serde_json::{json, Value};
use sparkid_bid::{Bid, PrivateKey};

const ED_KEY: &str = "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";

/// A GET with optional Accept; no redirects followed. Returns status, headers and body text.
fn fetch(url: &str, accept: Option<&str>) -> (u16, reqwest::header::HeaderMap, String) {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut request = client.get(url);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let r = request.send().unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().unwrap())
}

fn content_type(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// GET with an Accept header; the body must be JSON.
fn fetch_json(url: &str, accept: Option<&str>) -> (u16, String, Value) {
    let (status, headers, text) = fetch(url, accept);
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"));
    (status, content_type(&headers), value)
}

/// A request written by hand on a socket, so that any bytes can go in the request target.
fn raw_get(base: &str, target: &str) -> (u16, String) {
    let addr = base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The project's DID Core / DID Resolution checks (`conformance/`) find nothing wrong with a
/// full result answered with `status`.
fn conforms(did: &str, result: &Value, status: u16) {
    use sparkid_conformance::resolution::{check_dereferencing_result, check_resolution_result};
    let violations = if result.get("dereferencingMetadata").is_some() {
        check_dereferencing_result(result, status)
    } else {
        check_resolution_result(did, result, status)
    };
    assert!(
        violations.is_empty(),
        "{did} ({status}): {violations:#?}\n{result}"
    );
}

/// The error type name of a result (after `#`).
fn error_type(result: &Value) -> String {
    result["didResolutionMetadata"]["error"]["type"]
        .as_str()
        .or_else(|| result["dereferencingMetadata"]["error"]["type"].as_str())
        .unwrap_or_else(|| panic!("no error in {result}"))
        .trim_start_matches("https://www.w3.org/ns/did#")
        .to_string()
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn services(files: &str) -> Value {
    json!({"service": [
        {"id": "#files", "type": "DIDStorage", "serviceEndpoint": files},
        {"id": "#hub", "type": ["Hub", "DIDStorage"],
         "serviceEndpoint": ["https://a.example/hub", {"uri": "not-a-string"}, "https://b.example/"]},
        {"id": "#resolver", "type": "DIDResolver",
         "serviceEndpoint": {"host": "192.168.1.23", "port": 8080}},
    ]})
}

fn update(base: &str, did: &str, key: &PrivateKey, files: &str) {
    let doc =
        sparkid_registrar::api::new_document(&key.public_key(), Some(services(files))).unwrap();
    let (status, answer) = sign_and_send(
        &format!("{base}/1.0/update"),
        json!({"did": did, "didDocument": doc}),
        key,
    );
    assert_eq!(status, 200, "{answer}");
}

#[test]
fn content_negotiation_every_media_type_and_406() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let (_, did) = create_did(&d.base, Some(services("https://files.example/base")));
    let url = format!("{}/1.0/identifiers/{did}", d.base);

    for accept in [
        None,
        Some("*/*"),
        Some("application/did-resolution"),
        Some("application/*"),
    ] {
        let (status, ct, result) = fetch_json(&url, accept);
        assert_eq!(status, 200, "{accept:?}: {result}");
        conforms(&did, &result, status);
        assert_eq!(ct, "application/did-resolution", "{accept:?}");
        assert_eq!(result["didDocument"]["id"], json!(did));
        assert_eq!(
            result["didResolutionMetadata"]["contentType"],
            "application/did"
        );
        let meta = &result["didDocumentMetadata"];
        assert_eq!(meta["versionId"], "1");
        assert_eq!(meta["deactivated"], false);
        assert!(meta["created"].as_str().unwrap().ends_with('Z'));
        // Never updated: no `updated` (DID Core), and no next version.
        assert!(meta.get("updated").is_none(), "{meta}");
        assert!(meta.get("nextVersionId").is_none());
        assert!(ct.contains(
            result["didResolutionMetadata"]["contentType"]
                .as_str()
                .unwrap()
        ));
    }
    let (status, headers, text) = fetch(&url, None);
    assert_eq!(status, 200);
    assert_eq!(headers.get("vary").unwrap(), "accept");
    let full: Value = serde_json::from_str(&text).unwrap();

    // The legacy JSON-LD profile type: the full result, in that type.
    let legacy = "application/ld+json;profile=\"https://w3id.org/did-resolution\"";
    let (status, ct, result) = fetch_json(&url, Some(legacy));
    assert_eq!(status, 200);
    conforms(&did, &result, status);
    assert_eq!(ct, legacy);
    assert_eq!(result["didDocument"], full["didDocument"]);
    assert_eq!(
        result["didResolutionMetadata"]["contentType"],
        "application/did+ld+json"
    );

    // Bare documents.
    for media in [
        "application/did",
        "application/did+json",
        "application/did+ld+json",
    ] {
        let (status, ct, doc) = fetch_json(&url, Some(media));
        assert_eq!(status, 200, "{media}");
        assert_eq!(ct, media);
        assert_eq!(doc, full["didDocument"], "{media}");
        assert!(doc.get("didResolutionMetadata").is_none());
    }
    // q-values.
    let (_, ct, doc) = fetch_json(
        &url,
        Some("application/did-resolution;q=0.2, application/did+json;q=0.8"),
    );
    assert_eq!(
        (ct.as_str(), &doc["id"]),
        ("application/did+json", &json!(did))
    );
    let (_, ct, _) = fetch_json(
        &url,
        Some("application/did+ld+json;q=0.1, application/did-resolution"),
    );
    assert_eq!(ct, "application/did-resolution");
    let (_, ct, _) = fetch_json(&url, Some("text/html, application/did+ld+json;q=0.5"));
    assert_eq!(ct, "application/did+ld+json");
    // `accept` as an option overrides the header.
    let (status, ct, _) = fetch_json(
        &format!("{url}?accept={}", encode("application/did+json")),
        Some("application/did-resolution"),
    );
    assert_eq!((status, ct.as_str()), (200, "application/did+json"));
    let (status, ct, _) = fetch_json(
        &format!(
            "{}/1.0/identifiers/{}?accept={}",
            d.base,
            encode(&did),
            encode("application/did+json")
        ),
        Some("application/did-resolution"),
    );
    assert_eq!((status, ct.as_str()), (200, "application/did+json"));

    // Nothing acceptable: 406 with the full error result.
    for accept in [
        "text/html",
        "application/xml, image/png",
        "application/did-resolution;q=0",
        "application/ld+json;profile=\"https://example.com/other\"",
    ] {
        let (status, ct, result) = fetch_json(&url, Some(accept));
        assert_eq!(status, 406, "{accept}: {result}");
        conforms(&did, &result, status);
        assert_eq!(ct, "application/did-resolution");
        assert_eq!(error_type(&result), "REPRESENTATION_NOT_SUPPORTED");
        assert_eq!(result["didDocument"], Value::Null);
        assert!(result["didResolutionMetadata"]["error"]["detail"]
            .as_str()
            .unwrap()
            .contains(accept.split(',').next().unwrap()));
    }

    // The percent-encoded form (DID Resolution's) answers the same.
    let (status, _, result) = fetch_json(
        &format!("{}/1.0/identifiers/{}", d.base, encode(&did)),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(result["didDocument"], full["didDocument"]);

    // The POST binding: options in a JSON body.
    let client = reqwest::blocking::Client::new();
    let r = client
        .post(&url)
        .json(&json!({"noCache": true, "versionId": "1"}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let result: Value = r.json().unwrap();
    assert_eq!(result["didDocument"], full["didDocument"]);
    for (body, what) in [
        ("{not json", "not JSON"),
        ("[true]", "JSON object"),
        ("{\"bogus\": 1}", "bogus"),
        ("{\"noCache\": \"perhaps\"}", "noCache"),
    ] {
        let r = client.post(&url).body(body).send().unwrap();
        assert_eq!(r.status().as_u16(), 400, "{body}");
        let result: Value = r.json().unwrap();
        assert_eq!(error_type(&result), "INVALID_OPTIONS", "{body}");
        assert!(result["didResolutionMetadata"]["error"]["detail"]
            .as_str()
            .unwrap()
            .contains(what));
    }
}

#[test]
fn every_error_type_has_its_status_and_problem_object() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let stranger = Bid::derive(&PrivateKey::generate().public_key(), None)
        .unwrap()
        .to_string();
    let long = format!("did:bid:{}", "a".repeat(5000));
    let long_query = format!("{stranger}?versionId={}", "1".repeat(3000));
    let cases: Vec<(String, u16, &str, &str)> = vec![
        ("not-a-did".into(), 400, "INVALID_DID", "starts with"),
        ("did:example".into(), 400, "INVALID_DID", "missing"),
        (
            "did:bid:BY01:efJgt44mNDewKK1VEN454R17cjso3mSG".into(),
            400,
            "INVALID_DID",
            "did:bid",
        ),
        (
            "did:bid:ab%ZZ".into(),
            400,
            "INVALID_DID",
            "percent-encoding",
        ),
        (
            "did%3Abid%3Aab%ZZ".into(),
            400,
            "INVALID_DID",
            "percent-encoding",
        ),
        (
            "did%3Abid%3Aab%FF".into(),
            400,
            "INVALID_DID",
            "not allowed",
        ),
        (long.clone(), 400, "INVALID_DID", "2048"),
        (long_query, 400, "INVALID_DID_URL", "2048"),
        (
            format!("{stranger}?service=%ZZ"),
            400,
            "INVALID_DID_URL",
            "percent-encoding",
        ),
        (
            format!("{stranger}?a=1&a=2"),
            400,
            "INVALID_DID_URL",
            "more than once",
        ),
        (
            format!("{stranger}?hl=zQmWvQxTqbG2Z9HPJgG57jjwR154cKhbtJenbyYTWkjgF3e"),
            400,
            "INVALID_DID_URL",
            "unknown DID parameter",
        ),
        (
            format!("{stranger}%23a%20b%ZZ"),
            400,
            "INVALID_DID_URL",
            "fragment",
        ),
        (
            format!("{}?bogus=1", encode(&stranger)),
            400,
            "INVALID_OPTIONS",
            "unknown resolution option",
        ),
        (
            format!("{}?noCache=%ZZ", encode(&stranger)),
            400,
            "INVALID_OPTIONS",
            "percent-encoding",
        ),
        (
            format!("{stranger}?noCache=maybe"),
            400,
            "INVALID_OPTIONS",
            "noCache",
        ),
        (
            format!("{stranger}?versionId=1&versionTime=2024-01-01T00:00:00Z"),
            400,
            "INVALID_OPTIONS",
            "mutually exclusive",
        ),
        (
            format!("{stranger}?versionTime=yesterday"),
            400,
            "INVALID_OPTIONS",
            "versionTime",
        ),
        (
            format!("{stranger}?publicKeyFormat=JsonWebKey2020"),
            400,
            "INVALID_OPTIONS",
            "did:key only",
        ),
        (
            format!(
                "{}?noCache=true",
                encode(&format!("{stranger}?noCache=false"))
            ),
            400,
            "INVALID_OPTIONS",
            "in the DID URL",
        ),
        (stranger.clone(), 404, "NOT_FOUND", "not registered"),
        (format!("{stranger}/whois"), 404, "NOT_FOUND", "paths"),
        (
            "did:unsupported:123456789abcdefghi".into(),
            501,
            "METHOD_NOT_SUPPORTED",
            "did:bid, did:key",
        ),
        (
            format!("{ED_KEY}?proof=true"),
            501,
            "FEATURE_NOT_SUPPORTED",
            "ledger",
        ),
        ("did:key:zzzz".into(), 400, "INVALID_DID", "invalid"),
    ];
    for (identifier, status, code, detail) in cases {
        let (got, body) = raw_get(&d.base, &format!("/1.0/identifiers/{identifier}"));
        let result: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{identifier}: {e}: {body}"));
        let shown: String = identifier.chars().take(80).collect();
        assert_eq!(got, status, "{shown}: {result}");
        conforms(&shown, &result, got);
        assert_eq!(error_type(&result), code, "{shown}: {result}");
        let error = &result["didResolutionMetadata"]["error"];
        assert!(error["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(
            error["detail"].as_str().unwrap().contains(detail),
            "{shown}: {detail:?} not in {error}"
        );
        assert_eq!(result["didDocument"], Value::Null);
        assert_eq!(result["didDocumentMetadata"], json!({}));
    }
    // The bare /1.0/identifiers is a missing DID, not a missing route.
    let (status, body) = raw_get(&d.base, "/1.0/identifiers/");
    assert_eq!(status, 400, "{body}");

    // Hostile bytes: never a 500, never a dead daemon.
    for target in [
        "/1.0/identifiers/%",
        "/1.0/identifiers/%%%%",
        "/1.0/identifiers/did:%",
        "/1.0/identifiers/did%3A%",
        "/1.0/identifiers/did:a:b?%",
        "/1.0/identifiers/did:a:b?=",
        "/1.0/identifiers/did:a:b?&&",
        "/1.0/identifiers/did:a:b#%",
        "/1.0/identifiers/did:a:b%23%",
        "/1.0/identifiers/did%3Aa%3Ab%3F%26%3D",
        "/1.0/identifiers/did%3Akey%3A",
        "/1.0/identifiers/did%3Akey%3Az",
        "/1.0/identifiers/did:key:z6Mk",
        "/1.0/identifiers/did:bid:ef%00",
        "/1.0/identifiers/did:bid:%C3%A9",
        "/1.0/identifiers/did:bid:x?service=a&relativeRef=%2F..%2Fetc",
        "/1.0/identifiers/did%3Abid%3Ax?accept=%FF",
        "/1.0/identifiers/did:bid:x?versionTime=2024-13-45T99:99:99Z",
        "/1.0/identifiers/did:bid:x?versionId=",
        "/1.0/identifiers/did:bid:x/../../etc/passwd",
        "/1.0/identifiers/did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp?publicKeyFormat=%00",
    ] {
        let (status, body) = raw_get(&d.base, target);
        assert!((400..500).contains(&status) || status == 501, "{target}: {status} {body}");
    }
    let (status, _) = raw_get(&d.base, "/healthz");
    assert_eq!(status, 200, "the daemon survived");
}

#[test]
fn versions_no_cache_deactivation_and_ledger_proofs() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let (key, did) = create_did(&d.base, Some(services("https://v1.example/")));
    // Block times have one-second resolution: space the versions out.
    std::thread::sleep(Duration::from_millis(1100));
    update(&d.base, &did, &key, "https://v2.example/");
    std::thread::sleep(Duration::from_millis(1100));
    update(&d.base, &did, &key, "https://v3.example/");
    let url = format!("{}/1.0/identifiers/{did}", d.base);
    let endpoint = |r: &Value| r["didDocument"]["service"][0]["serviceEndpoint"].clone();

    let (status, current) = get_json(&url);
    assert_eq!(status, 200);
    assert_eq!(endpoint(&current), "https://v3.example/");
    let meta = &current["didDocumentMetadata"];
    assert_eq!(meta["versionId"], "3");
    assert!(meta.get("nextVersionId").is_none());
    let updated_v3 = meta["updated"].as_str().unwrap().to_string();

    let (status, v1) = get_json(&format!("{url}?versionId=1"));
    assert_eq!(status, 200, "{v1}");
    conforms(&did, &v1, status);
    conforms(&did, &current, 200);
    assert_eq!(endpoint(&v1), "https://v1.example/");
    let (status, v2) = get_json(&format!("{url}?versionId=2"));
    assert_eq!(status, 200);
    assert_eq!(endpoint(&v2), "https://v2.example/");
    let m1 = &v1["didDocumentMetadata"];
    let m2 = &v2["didDocumentMetadata"];
    assert_eq!(m1["versionId"], "1");
    assert_eq!(m1["nextVersionId"], "2");
    assert_eq!(m1["nextUpdate"], m2["updated"]);
    assert!(m1.get("updated").is_none());
    assert_eq!(m2["nextVersionId"], "3");
    assert_eq!(m2["nextUpdate"], json!(updated_v3));
    assert_eq!(m1["created"], meta["created"]);
    let (status, v3) = get_json(&format!("{url}?versionId=3"));
    assert_eq!(status, 200);
    assert!(v3["didDocumentMetadata"].get("nextVersionId").is_none());
    // The encoded form takes versionId as an option.
    let (status, v1_again) = get_json(&format!(
        "{}/1.0/identifiers/{}?versionId=1",
        d.base,
        encode(&did)
    ));
    assert_eq!(status, 200);
    assert_eq!(v1_again["didDocument"], v1["didDocument"]);

    // versionTime: the version in force at that time.
    let created = m1["created"].as_str().unwrap();
    let (status, at_creation) = get_json(&format!("{url}?versionTime={created}"));
    assert_eq!(status, 200, "{at_creation}");
    assert_eq!(at_creation["didDocumentMetadata"]["versionId"], "1");
    assert_eq!(at_creation["didDocumentMetadata"]["nextVersionId"], "2");
    let t2 = m2["updated"].as_str().unwrap();
    let (_, at_v2) = get_json(&format!("{url}?versionTime={t2}"));
    assert_eq!(at_v2["didDocumentMetadata"]["versionId"], "2");
    let (_, later) = get_json(&format!("{url}?versionTime=2999-01-01T00:00:00Z"));
    assert_eq!(later["didDocumentMetadata"]["versionId"], "3");
    assert!(later["didDocumentMetadata"].get("nextVersionId").is_none());
    let (status, before) = get_json(&format!("{url}?versionTime=2001-01-01T00:00:00Z"));
    assert_eq!(status, 404);
    assert_eq!(error_type(&before), "NOT_FOUND");
    let (status, none) = get_json(&format!("{url}?versionId=9"));
    assert_eq!(status, 404);
    assert!(none["didResolutionMetadata"]["error"]["detail"]
        .as_str()
        .unwrap()
        .contains("1 to 3"));

    // noCache: answered from the ledger, the same current document, without touching the
    // cache (its counters hold still), where a plain read goes through it.
    let before = common::cache_activity(&d.base);
    let (status, fresh) = get_json(&format!("{url}?noCache=true"));
    assert_eq!(status, 200);
    assert_eq!(
        common::cache_activity(&d.base),
        before,
        "noCache=true went through the cache"
    );
    let (status, _) = get_json(&url);
    assert_eq!(status, 200);
    assert!(
        common::cache_activity(&d.base) > before,
        "a plain read did not go through the cache"
    );
    assert_eq!(fresh["didDocument"], current["didDocument"]);
    assert_eq!(fresh["didDocumentMetadata"], current["didDocumentMetadata"]);
    let (status, _) = get_json(&format!("{url}?noCache=false"));
    assert_eq!(status, 200);

    // proof=true: the RecordProof, exactly as the ledger serializes it, verifying against the
    // genesis validators, and the document rendered from the proven record.
    let (_, genesis) = get_json(&format!("{}/1.0/genesis", d.base));
    let genesis: sparkid_ledger::Genesis = serde_json::from_value(genesis).unwrap();
    let validators = genesis.validator_set().unwrap();
    let (status, proven) = get_json(&format!("{url}?proof=true"));
    assert_eq!(status, 200, "{proven}");
    conforms(&did, &proven, status);
    let proof_json = &proven["didResolutionMetadata"]["ledgerProof"];
    let members: Vec<&String> = proof_json.as_object().unwrap().keys().collect();
    assert_eq!(members.len(), 4, "{members:?}");
    for member in ["key", "value", "proof", "anchor"] {
        assert!(proof_json.get(member).is_some(), "{member} missing");
    }
    let proof: sparkid_ledger::RecordProof = serde_json::from_value(proof_json.clone()).unwrap();
    assert_eq!(&serde_json::to_value(&proof).unwrap(), proof_json);
    proof.verify(&validators).unwrap();
    assert_eq!(proof.key, format!("did/{did}"));
    let record: sparkid_registrar::DidRecord =
        serde_json::from_str(proof.value.as_deref().unwrap()).unwrap();
    assert_eq!(record.version_id, 3);
    assert_eq!(proven["didDocument"], current["didDocument"]);
    // The current version asked by number may carry the proof too; an older one cannot.
    let (status, _) = get_json(&format!("{url}?proof=true&versionId=3"));
    assert_eq!(status, 200);
    let (status, refused) = get_json(&format!("{url}?proof=true&versionId=1"));
    assert_eq!(status, 400);
    assert_eq!(error_type(&refused), "INVALID_OPTIONS");
    assert!(refused["didResolutionMetadata"]["error"]["detail"]
        .as_str()
        .unwrap()
        .contains("current state (versionId 3)"));
    let (status, refused) = get_json(&format!("{url}?proof=true&versionTime={created}"));
    assert_eq!(
        (status, error_type(&refused).as_str()),
        (400, "INVALID_OPTIONS")
    );
    let (status, refused) = get_json(&format!("{url}?proof=true&expandRelativeUrls=true"));
    assert_eq!(
        (status, error_type(&refused).as_str()),
        (400, "INVALID_OPTIONS")
    );
    let (status, refused) = get_json(&format!("{url}?proof=true&service=files"));
    assert_eq!(
        (status, error_type(&refused).as_str()),
        (400, "INVALID_OPTIONS")
    );

    // Absence, proven.
    let stranger = Bid::derive(&PrivateKey::generate().public_key(), None)
        .unwrap()
        .to_string();
    let (status, absent) = get_json(&format!("{}/1.0/identifiers/{stranger}?proof=true", d.base));
    assert_eq!(status, 404);
    conforms(&stranger, &absent, status);
    assert_eq!(error_type(&absent), "NOT_FOUND");
    let proof: sparkid_ledger::RecordProof =
        serde_json::from_value(absent["didResolutionMetadata"]["ledgerProof"].clone()).unwrap();
    assert_eq!(proof.value, None);
    assert_eq!(proof.key, format!("did/{stranger}"));
    proof.verify(&validators).unwrap();

    // Deactivated: 410 with deactivated: true and no document, in every representation; the
    // history stays readable.
    deactivate(&d.base, &did, &key);
    for accept in [
        None,
        Some("application/did+json"),
        Some("application/did-url-dereferencing"),
    ] {
        let (status, _, gone) = fetch_json(&url, accept);
        assert_eq!(status, 410, "{accept:?}: {gone}");
        conforms(&did, &gone, status);
        let meta = gone
            .get("didDocumentMetadata")
            .or_else(|| gone.get("contentMetadata"))
            .unwrap();
        assert_eq!(meta["deactivated"], true);
        assert_eq!(meta["versionId"], "4");
        assert!(gone
            .get("didDocument")
            .or_else(|| gone.get("contentStream"))
            .unwrap()
            .is_null());
    }
    let (status, gone) = get_json(&format!("{url}?proof=true"));
    assert_eq!(status, 410);
    let proof: sparkid_ledger::RecordProof =
        serde_json::from_value(gone["didResolutionMetadata"]["ledgerProof"].clone()).unwrap();
    proof.verify(&validators).unwrap();
    let (status, old) = get_json(&format!("{url}?versionId=2"));
    assert_eq!(status, 200);
    assert_eq!(endpoint(&old), "https://v2.example/");
    assert_eq!(old["didDocumentMetadata"]["nextVersionId"], "3");
    let (status, _) = get_json(&format!("{url}%23key-1"));
    assert_eq!(status, 410);
}

#[test]
fn dereferencing_fragments_services_and_relative_refs() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path());
    let (_, did) = create_did(&d.base, Some(services("https://files.example/base")));
    let base = format!("{}/1.0/identifiers/", d.base);

    // A fragment (encoded: HTTP clients do not send '#'): the verification method.
    let frag = format!("{base}{did}%23key-1");
    let (status, ct, result) = fetch_json(&frag, None);
    assert_eq!(status, 200, "{result}");
    conforms(&did, &result, status);
    assert_eq!(ct, "application/did-url-dereferencing");
    assert_eq!(result["contentStream"]["id"], json!(format!("{did}#key-1")));
    assert_eq!(result["contentStream"]["type"], "Multikey");
    assert_eq!(result["content"], result["contentStream"]);
    assert_eq!(result["contentMetadata"]["versionId"], "1");
    let (status, ct, vm) = fetch_json(&frag, Some("application/did+json"));
    assert_eq!((status, ct.as_str()), (200, "application/did+json"));
    assert_eq!(vm, result["contentStream"]);
    // As a resolution result, the DID's resolution (the fragment is the client's).
    let (status, ct, resolved) = fetch_json(&frag, Some("application/did-resolution"));
    assert_eq!((status, ct.as_str()), (200, "application/did-resolution"));
    assert_eq!(resolved["didDocument"]["id"], json!(did));
    // The encoded form, and a service by fragment.
    let (status, _, service) =
        fetch_json(&format!("{base}{}", encode(&format!("{did}#files"))), None);
    assert_eq!(status, 200);
    assert_eq!(service["contentStream"]["type"], "DIDStorage");
    let (status, _, missing) = fetch_json(&format!("{base}{did}%23key-9"), None);
    assert_eq!(status, 404);
    conforms(&did, &missing, status);
    assert_eq!(error_type(&missing), "NOT_FOUND");

    // service + relativeRef: 303 to the endpoint with the reference applied.
    let (status, headers, body) = fetch(
        &format!("{base}{did}?service=files&relativeRef=%2Fresume.pdf"),
        None,
    );
    assert_eq!(status, 303, "{body}");
    assert_eq!(
        headers.get("location").unwrap(),
        "https://files.example/base/resume.pdf"
    );
    // DID Resolution: a 303's body is empty (the endpoint is the Location).
    assert_eq!(body, "");
    assert!(headers.get("content-type").is_none(), "{headers:?}");
    // The same DID URL percent-encoded, with a fragment the endpoint inherits.
    let encoded = encode(&format!(
        "{did}?service=files&relativeRef=%2Fdocs%2Fa.pdf%3Fpage%3D2#top"
    ));
    let (status, headers, _) = fetch(&format!("{base}{encoded}"), Some("text/uri-list"));
    assert_eq!(status, 303);
    assert_eq!(
        headers.get("location").unwrap(),
        "https://files.example/base/docs/a.pdf?page=2#top"
    );
    // service alone: the endpoint itself.
    let (status, headers, _) = fetch(&format!("{base}{did}?service=files"), None);
    assert_eq!(status, 303);
    assert_eq!(
        headers.get("location").unwrap(),
        "https://files.example/base"
    );
    // serviceType: every URL endpoint of every service of that type, the first as Location.
    let (status, headers, body) = fetch(&format!("{base}{did}?serviceType=DIDStorage"), None);
    assert_eq!(status, 303);
    assert_eq!(
        headers.get("location").unwrap(),
        "https://files.example/base"
    );
    assert_eq!(body, "", "a 303's body is empty");
    // serviceType as a document: only the selected services.
    let (status, ct, doc) = fetch_json(
        &format!("{base}{did}?serviceType=Hub"),
        Some("application/did+json"),
    );
    assert_eq!((status, ct.as_str()), (200, "application/did+json"));
    assert_eq!(doc["service"].as_array().unwrap().len(), 1);
    assert_eq!(doc["service"][0]["id"], json!(format!("{did}#hub")));
    // As a dereferencing result: the URI list.
    let (status, _, deref) = fetch_json(
        &format!("{base}{did}?service=hub&relativeRef=x"),
        Some("application/did-url-dereferencing"),
    );
    assert_eq!(status, 200);
    conforms(&did, &deref, status);
    assert_eq!(
        deref["contentStream"],
        "https://a.example/hub/x\r\nhttps://b.example/x\r\n"
    );
    assert_eq!(
        deref["dereferencingMetadata"]["contentType"],
        "text/uri-list"
    );
    // A service whose endpoint is a map, not a URL, cannot be redirected to.
    let (status, _, none) = fetch_json(&format!("{base}{did}?service=resolver"), None);
    assert_eq!((status, error_type(&none).as_str()), (404, "NOT_FOUND"));

    for (query, status, code) in [
        ("service=nope", 404, "NOT_FOUND"),
        ("serviceType=Nope", 404, "NOT_FOUND"),
        ("relativeRef=%2Fa", 400, "INVALID_DID_URL"),
        (
            "service=files&relativeRef=https%3A%2F%2Fevil.example%2F",
            400,
            "INVALID_DID_URL",
        ),
        (
            "service=files&relativeRef=%2F..%2Fsecret",
            400,
            "INVALID_DID_URL",
        ),
    ] {
        let (got, _, result) = fetch_json(&format!("{base}{did}?{query}"), None);
        assert_eq!(got, status, "{query}: {result}");
        assert_eq!(error_type(&result), code, "{query}");
    }

    // The registrar stores absolute ids, so expandRelativeUrls changes nothing here (the driver
    // test has a relative one).
    let (status, _, expanded) = fetch_json(&format!("{base}{did}?expandRelativeUrls=true"), None);
    assert_eq!(status, 200);
    assert_eq!(
        expanded["didDocument"]["service"][0]["id"],
        json!(format!("{did}#files"))
    );
}

#[test]
fn universal_resolver_endpoints_and_did_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sparkid.toml");
    std::fs::write(
        &config,
        "[[driver]]\npattern = \"^(did:web:.+)$\"\nurl = \"http://127.0.0.1:9/1.0/identifiers/$1\"\n\
         test_identifiers = [\"did:web:example.com\"]\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let d = Daemon::start_with(&data, &["--config", config.to_str().unwrap()]);

    let (status, methods) = get_json(&format!("{}/1.0/methods", d.base));
    assert_eq!(status, 200);
    // web, jwk and pkh are answered in process through ssi (the did:web driver is not asked).
    assert_eq!(methods, json!(["bid", "key", "web", "jwk", "pkh"]));
    let (status, ids) = get_json(&format!("{}/1.0/testIdentifiers", d.base));
    assert_eq!(status, 200);
    assert_eq!(ids["web"], json!(["did:web:example.com"]));
    assert_eq!(ids["bid"], json!([]));
    // Once DIDs are written, the newest are offered, and resolve.
    let (_, first) = create_did(&d.base, None);
    let (_, second) = create_did(&d.base, None);
    let (_, ids) = get_json(&format!("{}/1.0/testIdentifiers", d.base));
    assert_eq!(ids["bid"], json!([second, first]));
    let keys = ids["key"].as_array().unwrap();
    assert!(keys.contains(&json!(ED_KEY)));
    // Every test identifier of an in-process method resolves.
    for id in keys.iter().chain(ids["bid"].as_array().unwrap()) {
        let (status, result) = get_json(&format!(
            "{}/1.0/identifiers/{}",
            d.base,
            id.as_str().unwrap()
        ));
        assert_eq!(status, 200, "{id}: {result}");
        conforms(id.as_str().unwrap(), &result, status);
    }
    let (status, properties) = get_json(&format!("{}/1.0/properties", d.base));
    assert_eq!(status, 200);
    assert_eq!(properties["^(did:bid:.+)$"]["local"]["method"], "bid");
    assert_eq!(properties["^(did:key:.+)$"]["local"]["method"], "key");
    assert_eq!(
        properties["^(did:web:.+)$"]["http"]["resolveUri"],
        "http://127.0.0.1:9/1.0/identifiers/$1"
    );

    // did:key, computed in process: the spec's Ed25519 vector, whole.
    let (status, doc) = get_json(&format!(
        "{}/1.0/identifiers/{ED_KEY}?publicKeyFormat=Ed25519VerificationKey2018&enableEncryptionKeyDerivation=true",
        d.base
    ));
    assert_eq!(status, 200, "{doc}");
    conforms(ED_KEY, &doc, status);
    let msi = ED_KEY.trim_start_matches("did:key:");
    let x = "z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW";
    let vm = format!("{ED_KEY}#{msi}");
    assert_eq!(
        doc["didDocument"],
        json!({
            "@context": ["https://www.w3.org/ns/did/v1",
                         "https://w3id.org/security/suites/ed25519-2018/v1",
                         "https://w3id.org/security/suites/x25519-2019/v1"],
            "id": ED_KEY,
            "verificationMethod": [
                {"id": vm, "type": "Ed25519VerificationKey2018", "controller": ED_KEY,
                 "publicKeyBase58": "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS"},
                {"id": format!("{ED_KEY}#{x}"), "type": "X25519KeyAgreementKey2019", "controller": ED_KEY,
                 "publicKeyBase58": "7By6kV2t2d188odEM4ExAve1UithKT6dLva4dwsDT3ak"}],
            "authentication": [vm], "assertionMethod": [vm],
            "capabilityInvocation": [vm], "capabilityDelegation": [vm],
            "keyAgreement": [format!("{ED_KEY}#{x}")]
        })
    );
    assert_eq!(doc["didDocumentMetadata"], json!({}));
    // The default rendering, and a fragment dereference.
    let (_, _, bare) = fetch_json(
        &format!("{}/1.0/identifiers/{ED_KEY}", d.base),
        Some("application/did+ld+json"),
    );
    assert_eq!(bare["verificationMethod"][0]["type"], "Multikey");
    assert_eq!(bare["verificationMethod"][0]["publicKeyMultibase"], msi);
    let (status, _, vm_result) = fetch_json(
        &format!("{}/1.0/identifiers/{ED_KEY}%23{msi}", d.base),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(vm_result["contentStream"]["publicKeyMultibase"], msi);
    // P-256 as a JSON Web Key (the spec's nist-curves vector).
    let (status, p256) = get_json(&format!(
        "{}/1.0/identifiers/did:key:zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169?publicKeyFormat=JsonWebKey2020",
        d.base
    ));
    assert_eq!(status, 200);
    assert_eq!(
        p256["didDocument"]["verificationMethod"][0]["publicKeyJwk"],
        json!({"kty": "EC", "crv": "P-256",
               "x": "fyNYMN0976ci7xqiSdag3buk-ZCwgXU4kz9XNkBlNUI",
               "y": "hW2ojTNfH7Jbi8--CJUo3OCbH3y5n91g-IMA9MLMbTU"})
    );
    let cases: Vec<(String, u16, &str)> = vec![
        ("did:key:abc".into(), 400, "INVALID_DID"),
        (
            "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3dj".into(),
            400,
            "INVALID_DID",
        ),
        (
            format!("{ED_KEY}?publicKeyFormat=Bogus"),
            400,
            "INVALID_OPTIONS",
        ),
        (
            format!("{ED_KEY}?publicKeyFormat=EcdsaSecp256k1VerificationKey2019"),
            400,
            "INVALID_OPTIONS",
        ),
        (
            format!("{ED_KEY}?versionId=1"),
            501,
            "FEATURE_NOT_SUPPORTED",
        ),
    ];
    for (query, status, code) in cases {
        let (got, result) = get_json(&format!("{}/1.0/identifiers/{query}", d.base));
        assert_eq!(got, status, "{query}: {result}");
        assert_eq!(error_type(&result), code, "{query}");
    }
}

/// A Universal Resolver driver: a real HTTP server (axum, on its own runtime thread).
fn spawn_driver() -> String {
    use axum::extract::Path as UrlPath;
    use axum::http::{header, HeaderMap, StatusCode};
    use axum::response::IntoResponse;

    async fn answer(UrlPath(did): UrlPath<String>, headers: HeaderMap) -> axum::response::Response {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let doc = |id: &str| {
            json!({"@context": ["https://www.w3.org/ns/did/v1"], "id": id,
                   "verificationMethod": [{"id": format!("{id}#key-1"), "type": "Multikey",
                       "controller": id,
                       "publicKeyMultibase": "z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"}],
                   "service": [{"id": "#web", "type": "LinkedDomains",
                                "serviceEndpoint": "https://example.com/"}]})
        };
        let typed = |status: StatusCode, ct: &str, body: String| {
            (status, [(header::CONTENT_TYPE, ct.to_string())], body).into_response()
        };
        match did.as_str() {
            "did:example:ok" => typed(
                StatusCode::OK,
                "application/did-resolution",
                json!({"didDocument": doc(&did),
                       "didResolutionMetadata": {"contentType": "application/did", "driverSawAccept": accept},
                       "didDocumentMetadata": {"versionId": "7", "updated": "2024-01-02T03:04:05Z"}})
                .to_string(),
            ),
            "did:example:bare" => {
                typed(StatusCode::OK, "application/did+json", doc(&did).to_string())
            }
            "did:example:counter" => {
                static ASKED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                let n = ASKED.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                typed(
                    StatusCode::OK,
                    "application/did-resolution",
                    json!({"didDocument": doc(&did), "didResolutionMetadata": {},
                           "didDocumentMetadata": {"versionId": n.to_string()}})
                    .to_string(),
                )
            }
            "did:example:missing" => typed(StatusCode::NOT_FOUND, "text/plain", "no such DID".into()),
            "did:example:gone" => typed(StatusCode::GONE, "text/plain", String::new()),
            "did:example:boom" => typed(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "boom".into()),
            "did:example:slow" => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                typed(StatusCode::OK, "application/did+json", doc(&did).to_string())
            }
            "did:example:invalid" => typed(
                StatusCode::BAD_REQUEST,
                "application/did-resolution",
                json!({"didDocument": null,
                       "didResolutionMetadata": {"error": "invalidDid", "errorMessage": "bad id"},
                       "didDocumentMetadata": {}})
                .to_string(),
            ),
            "did:example:wrongid" => typed(
                StatusCode::OK,
                "application/did+json",
                doc("did:example:other").to_string(),
            ),
            _ => typed(StatusCode::NOT_FOUND, "text/plain", String::new()),
        }
    }

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app =
                axum::Router::new().route("/1.0/identifiers/{*did}", axum::routing::get(answer));
            axum::serve(listener, app).await.unwrap();
        });
    });
    format!("http://{addr}")
}

/// A local port with nothing listening on it.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_with_drivers(dir: &Path, driver: &str) -> Daemon {
    let config = dir.join("sparkid.toml");
    std::fs::write(
        &config,
        format!(
            "[[driver]]\npattern = \"^(did:example:.+)$\"\nurl = \"{driver}/1.0/identifiers/$1\"\n\
             test_identifiers = [\"did:example:ok\"]\nconnect_timeout_ms = 500\ntimeout_ms = 800\n\n\
             [[driver]]\npattern = \"did:dead:.+\"\nurl = \"http://127.0.0.1:{}/1.0/identifiers/\"\n\
             connect_timeout_ms = 300\ntimeout_ms = 600\n",
            closed_port()
        ),
    )
    .unwrap();
    Daemon::start_with(&dir.join("data"), &["--config", config.to_str().unwrap()])
}

#[test]
fn other_methods_are_proxied_to_drivers_with_errors_and_timeouts_mapped() {
    let driver = spawn_driver();
    let dir = tempfile::tempdir().unwrap();
    let d = start_with_drivers(dir.path(), &driver);
    let url = |id: &str| format!("{}/1.0/identifiers/{id}", d.base);

    let (status, ok) = get_json(&url("did:example:ok"));
    assert_eq!(status, 200, "{ok}");
    conforms("did:example:ok", &ok, status);
    assert_eq!(ok["didDocument"]["id"], "did:example:ok");
    assert_eq!(ok["didDocumentMetadata"]["versionId"], "7");
    let meta = &ok["didResolutionMetadata"];
    assert_eq!(meta["contentType"], "application/did");
    assert_eq!(meta["pattern"], "^(did:example:.+)$");
    assert_eq!(
        meta["driverUrl"],
        json!(format!("{driver}/1.0/identifiers/did:example:ok"))
    );
    assert!(meta["driverSawAccept"]
        .as_str()
        .unwrap()
        .starts_with("application/did-resolution"));
    // A driver's answer is reused within its TTL (60 s by default), unless noCache.
    let (_, first) = get_json(&url("did:example:counter"));
    let (_, again) = get_json(&url("did:example:counter"));
    assert_eq!(first["didDocumentMetadata"]["versionId"], "1", "{first}");
    assert_eq!(again["didDocumentMetadata"]["versionId"], "1", "{again}");
    assert_eq!(again["didResolutionMetadata"]["driverCached"], true);
    let (_, fresh) = get_json(&url("did:example:counter?noCache=true"));
    assert_eq!(fresh["didDocumentMetadata"]["versionId"], "2", "{fresh}");
    assert!(fresh["didResolutionMetadata"].get("driverCached").is_none());
    // A bare document from the driver, served in any representation.
    let (status, ct, bare) = fetch_json(&url("did:example:bare"), Some("application/did+json"));
    assert_eq!((status, ct.as_str()), (200, "application/did+json"));
    assert_eq!(bare["id"], "did:example:bare");
    // Dereferencing works on a driver's document too.
    let (status, _, vm) = fetch_json(&url("did:example:ok%23key-1"), None);
    assert_eq!(status, 200, "{vm}");
    assert_eq!(vm["contentStream"]["id"], "did:example:ok#key-1");
    let (status, headers, _) = fetch(
        &url("did:example:ok?service=web&relativeRef=%2Fabout"),
        None,
    );
    assert_eq!(status, 303);
    assert_eq!(
        headers.get("location").unwrap(),
        "https://example.com/about"
    );
    // expandRelativeUrls makes the driver's relative service id absolute.
    assert_eq!(ok["didDocument"]["service"][0]["id"], "#web");
    let (status, expanded) = get_json(&url("did:example:ok?expandRelativeUrls=true"));
    assert_eq!(status, 200);
    assert_eq!(
        expanded["didDocument"]["service"][0]["id"],
        "did:example:ok#web"
    );
    // Deactivated at the driver.
    let (status, gone) = get_json(&url("did:example:gone"));
    assert_eq!(status, 410, "{gone}");
    conforms("did:example:gone", &gone, status);
    assert_eq!(gone["didDocumentMetadata"]["deactivated"], true);

    for (did, status, code, detail) in [
        ("did:example:missing", 404, "NOT_FOUND", "answered 404"),
        ("did:example:invalid", 400, "INVALID_DID", "bad id"),
        (
            "did:example:boom",
            500,
            "INTERNAL_ERROR",
            "answered 500: boom",
        ),
        (
            "did:example:wrongid",
            500,
            "INTERNAL_ERROR",
            "did:example:other",
        ),
        (
            "did:example:slow",
            500,
            "INTERNAL_ERROR",
            "did not answer within 800 ms",
        ),
        ("did:dead:x", 500, "INTERNAL_ERROR", "cannot connect"),
        ("did:other:x", 501, "METHOD_NOT_SUPPORTED", "did:example"),
        (
            "did:example:ok?versionId=1",
            501,
            "FEATURE_NOT_SUPPORTED",
            "driver",
        ),
        (
            "did:example:ok?proof=true",
            501,
            "FEATURE_NOT_SUPPORTED",
            "driver",
        ),
    ] {
        let started = Instant::now();
        let (got, result) = get_json(&url(did));
        assert_eq!(got, status, "{did}: {result}");
        conforms(did, &result, got);
        assert_eq!(error_type(&result), code, "{did}");
        let error = &result["didResolutionMetadata"]["error"];
        assert!(
            error["detail"].as_str().unwrap().contains(detail),
            "{did}: {detail:?} not in {error}"
        );
        // The timeout is the configured one, not the driver's 5 s.
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{did} took {:?}",
            started.elapsed()
        );
    }
}
