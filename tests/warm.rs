//! The warm path (`resolver/src/warm.rs`) against a spawned daemon: a did:bid answer kept with
//! its L1 entry is byte for byte the general path's, in every representation, and stops being
//! served the moment a block changes what it was rendered from: the DID's record (an update, a
//! deactivation) or its reverse index (a bridge binding that changes `alsoKnownAs`).

mod common;

use common::{cli, client, namespace, start_in_process};
use serde_json::{json, Value};
use sparkid_bid::PrivateKey;

/// A sample of the daemon's `/metrics`, by exact series name (with labels); 0 when absent.
fn metric(base: &str, series: &str) -> f64 {
    common::metric(base, series).unwrap_or(0.0)
}

fn kept(base: &str) -> f64 {
    metric(base, "sparkid_cache_rendered_total{outcome=\"kept\"}")
}

/// GET with an `Accept` header (none: no header): status, Content-Type, Vary, body.
fn fetch(url: &str, accept: Option<&str>) -> (u16, String, String, String) {
    let mut request = client().get(url);
    if let Some(a) = accept {
        request = request.header("accept", a);
    }
    let r = request.send().unwrap();
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (content_type, vary) = (header("content-type"), header("vary"));
    (r.status().as_u16(), content_type, vary, r.text().unwrap())
}

fn resolve(base: &str, did: &str) -> (u16, Value) {
    let (status, _, _, body) = fetch(&format!("{base}/1.0/identifiers/{did}"), None);
    (status, serde_json::from_str(&body).unwrap())
}

const ACCEPTS: [Option<&str>; 5] = [
    None,
    Some("application/did-resolution"),
    Some("application/ld+json;profile=\"https://w3id.org/did-resolution\""),
    Some("application/did-url-dereferencing"),
    Some("application/did+ld+json"),
];

/// Every representation, asked three times (the third is served as kept), is exactly what the
/// general path (`noCache=true`, which reads the ledger) answers.
fn assert_warm_equals_general(base: &str, did: &str) {
    for accept in ACCEPTS {
        let url = format!("{base}/1.0/identifiers/{did}");
        // The first fills L1 (or renders from it), the second is rendered from L1 at the latest.
        let first = fetch(&url, accept);
        assert_eq!(first, fetch(&url, accept), "{accept:?}");
        let before = kept(base);
        let second = fetch(&url, accept);
        assert_eq!(
            kept(base),
            before + 1.0,
            "{accept:?} was not served as kept"
        );
        let activity = common::cache_activity(base);
        let general = fetch(&format!("{url}?noCache=true"), accept);
        assert_eq!(
            common::cache_activity(base),
            activity,
            "{accept:?}: noCache=true went through the cache"
        );
        assert_eq!(first, second, "{accept:?}");
        assert_eq!(second, general, "{accept:?}");
        assert_eq!(second.2, "accept");
    }
}

fn also_known_as(resolved: &Value) -> Value {
    resolved["didDocumentMetadata"]["alsoKnownAs"].clone()
}

#[test]
fn a_kept_answer_follows_updates_bindings_and_deactivation() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = start_in_process(&data, &["--handle", "off"]);
    let base = d.base.as_str();
    let authority = data.join("validator.key").to_string_lossy().to_string();

    let key = PrivateKey::generate();
    let doc = sparkid_registrar::api::new_document(&key.public_key(), None).unwrap();
    let did = doc["id"].as_str().unwrap().to_string();
    let (status, created) = common::sign_and_send(
        &format!("{base}/1.0/create?method=bid"),
        json!({"options": {"clientSecretMode": true}, "didDocument": doc}),
        &key,
    );
    assert_eq!(status, 201, "{created}");
    assert_warm_equals_general(base, &did);

    // An update: the very next answer is the new version (the kept one died with its entry).
    let mut changed = doc.clone();
    changed["service"] = json!([{"id": format!("{did}#svc"), "type": "LinkedDomains",
        "serviceEndpoint": "https://v2.example"}]);
    let (status, answer) = common::sign_and_send(
        &format!("{base}/1.0/update"),
        json!({"did": did, "didDocument": changed}),
        &key,
    );
    assert_eq!(status, 200, "{answer}");
    let (status, r) = resolve(base, &did);
    assert_eq!(status, 200);
    assert_eq!(r["didDocumentMetadata"]["versionId"], "2", "{r}");
    assert_eq!(
        r["didDocument"]["service"][0]["serviceEndpoint"],
        "https://v2.example"
    );
    assert_warm_equals_general(base, &did);

    // A binding changes `aka/<did>`, not the DID's record: the kept answer must not survive it.
    let owner = cli(&["did", "create", "--endpoint", base]);
    let owner_did = owner["didState"]["did"].as_str().unwrap().to_string();
    let owner_key = owner["generatedKey"]["privateKey"].as_str().unwrap();
    namespace(
        base,
        &authority,
        &[
            "delegate",
            "--kind",
            "vaa",
            "--namespace",
            "VAA77",
            "--owner",
            &owner_did,
        ],
    );
    let before = kept(base);
    resolve(base, &did);
    assert_eq!(also_known_as(&resolve(base, &did).1), Value::Null);
    assert!(kept(base) > before, "warm before the binding");
    namespace(
        base,
        owner_key,
        &[
            "bind",
            "--kind",
            "vaa",
            "--identifier",
            "VAA77X1",
            "--did",
            &did,
        ],
    );
    // Bound, not yet confirmed by the DID's controller: not on the DID's side.
    assert_eq!(also_known_as(&resolve(base, &did).1), Value::Null);
    assert_warm_equals_general(base, &did);
    // Linked: `aka/<did>` changes again, and the kept answer must not survive that either.
    common::link(base, &did, &key.to_encoded(), "vaa", "VAA77X1");
    assert_eq!(
        also_known_as(&resolve(base, &did).1),
        json!(["vaa:VAA77X1"])
    );
    assert_warm_equals_general(base, &did);
    namespace(
        base,
        owner_key,
        &["unbind", "--kind", "vaa", "--identifier", "VAA77X1"],
    );
    assert_eq!(also_known_as(&resolve(base, &did).1), Value::Null);
    assert_warm_equals_general(base, &did);

    // Deactivation: 410 at once, and the 410 is kept and served like any answer.
    common::deactivate(base, &did, &key);
    let (status, r) = resolve(base, &did);
    assert_eq!(status, 410, "{r}");
    assert_eq!(r["didDocumentMetadata"]["deactivated"], true);
    assert_warm_equals_general(base, &did);
}

#[test]
fn answers_that_are_not_the_current_records_are_never_kept() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_in_process(&dir.path().join("data"), &["--handle", "off"]);
    let base = d.base.as_str();
    let key = PrivateKey::generate();
    let doc = sparkid_registrar::api::new_document(&key.public_key(), None).unwrap();
    let did = doc["id"].as_str().unwrap().to_string();
    let (status, _) = common::sign_and_send(
        &format!("{base}/1.0/create?method=bid"),
        json!({"options": {"clientSecretMode": true}, "didDocument": doc}),
        &key,
    );
    assert_eq!(status, 201);
    resolve(base, &did);
    let before = kept(base);
    for query in [
        "?versionId=1",
        "?proof=true",
        "?noCache=true",
        "?expandRelativeUrls=true",
        "#key-1",
    ] {
        for _ in 0..2 {
            let url = format!(
                "{base}/1.0/identifiers/{}",
                format!("{did}{query}").replace('#', "%23")
            );
            let (status, _, _, body) = fetch(&url, None);
            assert_eq!(status, 200, "{query}: {body}");
        }
    }
    assert_eq!(kept(base), before, "an option's answer was served as kept");
    // The proof answer carries the proof, which a kept answer would not.
    let (_, r) = common::get_json(&format!("{base}/1.0/identifiers/{did}?proof=true"));
    assert!(r["didResolutionMetadata"]["ledgerProof"].is_object(), "{r}");
    // A DID that is not registered: 404 from the general path, every time.
    let other = sparkid_bid::Bid::derive(&PrivateKey::generate().public_key(), None)
        .unwrap()
        .to_string();
    for _ in 0..2 {
        assert_eq!(resolve(base, &other).0, 404);
    }
    assert_eq!(kept(base), before);
}

/// A DID that L1 does not hold (here: just written, so its entry was dropped) is answered by
/// the cold path (`warm::cold_answer`): both its keys read on one hop and its answer rendered
/// into its new L1 entry, so the very next request is already served as kept; both are byte
/// for byte the general path's (`noCache=true`), for a live DID and for a deactivated one (410).
#[test]
fn a_cold_answer_is_kept_at_once_and_is_the_general_paths() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_in_process(&dir.path().join("data"), &["--handle", "off"]);
    let base = d.base.as_str();
    let (key, did) = common::create_did(base, None);
    // Rendered into the entry, or (a live DID in the default representation) read stored
    // from its answer record (`sparkid_resolver::answers`, see tests/answers.rs).
    let rendered = |base: &str| {
        metric(base, "sparkid_cache_rendered_total{outcome=\"rendered\"}")
            + metric(base, "sparkid_cache_rendered_total{outcome=\"stored\"}")
    };
    let url = format!("{base}/1.0/identifiers/{did}");
    for status in [200, 410] {
        let (rendered_before, kept_before) = (rendered(base), kept(base));
        let cold = fetch(&url, None);
        assert_eq!(cold.0, status, "{}", cold.3);
        assert_eq!(
            rendered(base),
            rendered_before + 1.0,
            "the cold answer was not rendered into the DID's entry"
        );
        let next = fetch(&url, None);
        assert_eq!(
            kept(base),
            kept_before + 1.0,
            "the next answer was not kept"
        );
        assert_eq!(next, cold);
        assert_eq!(fetch(&format!("{url}?noCache=true"), None), cold);
        if status == 200 {
            common::deactivate(base, &did, &key);
        }
    }
}

/// Warm answers are sent before the router (the resolution door's fast lane,
/// `sparkid::edge::FastLane`, on the connection's own event loop), and are still counted and
/// timed under the route's own label, as the router counts every other answer; requests a rate
/// limit applies to (`noCache`) never take that lane and are refused over the limit, in the
/// door's shape. With the event loops off (`--http-loops 0`) the same holds.
#[test]
fn warm_answers_count_under_their_route_and_rate_limits_still_apply() {
    for loops in ["2", "0"] {
        let dir = tempfile::tempdir().unwrap();
        let d = start_in_process(
            &dir.path().join("data"),
            &[
                "--handle",
                "off",
                "--http-loops",
                loops,
                "--rate-expensive",
                "1",
                "--rate-expensive-burst",
                "2",
            ],
        );
        let base = d.base.as_str();
        let (_, did) = common::create_did(base, None);
        let route = "route=\"/1.0/identifiers/{*identifier}\"";
        let answered = |base: &str| {
            metric(
                base,
                &format!("sparkid_http_requests_total{{{route},status=\"200\"}}"),
            )
        };
        let timed = |base: &str| {
            metric(
                base,
                &format!("sparkid_http_request_duration_seconds_count{{{route}}}"),
            )
        };
        let (answered_before, timed_before, kept_before) =
            (answered(base), timed(base), kept(base));
        let url = format!("{base}/1.0/identifiers/{did}");
        let first = fetch(&url, None);
        assert_eq!(first.0, 200, "{}", first.3);
        for _ in 0..5 {
            assert_eq!(fetch(&url, None), first);
        }
        assert!(
            kept(base) >= kept_before + 5.0,
            "loops {loops}: not served as kept"
        );
        assert_eq!(answered(base), answered_before + 6.0, "loops {loops}");
        assert_eq!(timed(base), timed_before + 6.0, "loops {loops}");
        // A burst of 2, then 1 per second: the third at once is refused.
        let statuses: Vec<u16> = (0..3)
            .map(|_| fetch(&format!("{url}?noCache=true"), None).0)
            .collect();
        assert_eq!(statuses, [200, 200, 429], "loops {loops}");
        let limited = metric(base, "sparkid_rate_limited_total{class=\"expensive\"}");
        assert_eq!(limited, 1.0, "loops {loops}");
    }
}
