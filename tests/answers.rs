//! DIDs' answer records (`resolver/src/answers.rs`, `ledger/src/answers.rs`): a cold read of a
//! plain did:bid is its answer record, rendered at commit; byte for byte the general path's
//! (`noCache=true`, which reads and renders the record), changed by the block that updates or
//! deactivates the DID, kept across a restart, and written by followers applying blocks.
//! (Bindings, which change `aka/<did>`, are followed by tests/warm.rs's
//! `a_kept_answer_follows_updates_bindings_and_deactivation`, whose default-representation
//! requests are served from these records.)

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sparkid_bid::PrivateKey;
use sparkid_registrar::Operation;
use sparkid_resolver::cache::{CacheConfig, CacheMetrics};
use sparkid_resolver::records::Records;
use sparkid_test_support::DevChain;

mod common;

use common::Daemon;

fn metric(base: &str, series: &str) -> f64 {
    common::metric(base, series).unwrap_or(0.0)
}

fn stored(base: &str) -> f64 {
    metric(base, "sparkid_cache_rendered_total{outcome=\"stored\"}")
}

fn rendered(base: &str) -> f64 {
    metric(base, "sparkid_cache_rendered_total{outcome=\"rendered\"}")
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Status, Content-Type and body of a GET without `Accept`.
fn fetch(url: &str) -> (u16, String, String) {
    common::get(url)
}

fn create(base: &str) -> (PrivateKey, String, Value) {
    let (key, did) = common::create_did(base, None);
    let doc = sparkid_registrar::api::new_document(&key.public_key(), None).unwrap();
    assert_eq!(doc["id"], did);
    (key, did, doc)
}

/// A cold read (nothing in L1) served from the answer record: counted `stored`, nothing
/// rendered, and the general path's answer exactly.
fn assert_cold_read_is_stored(base: &str, did: &str) -> Value {
    let url = format!("{base}/1.0/identifiers/{did}");
    let (stored_before, rendered_before) = (stored(base), rendered(base));
    let cold = fetch(&url);
    assert_eq!(cold.0, 200, "{}", cold.2);
    assert_eq!(
        stored(base),
        stored_before + 1.0,
        "not read from its answer record"
    );
    assert_eq!(rendered(base), rendered_before, "rendered on a cold read");
    assert_eq!(cold, fetch(&format!("{url}?noCache=true")));
    // The next one is warm: the same bytes, from L1.
    assert_eq!(fetch(&url), cold);
    assert_eq!(stored(base), stored_before + 1.0);
    serde_json::from_str(&cold.2).unwrap()
}

#[test]
fn a_cold_read_is_the_dids_answer_record_written_at_commit_and_kept_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = Daemon::start_with(&data, &["--handle", "off"]);
    let base = d.base.clone();
    wait_until("answers served", || {
        metric(&base, "sparkid_ledger_answers_ready") == 1.0
    });
    let (key, did, doc) = create(&base);
    let r = assert_cold_read_is_stored(&base, &did);
    assert_eq!(r["didDocumentMetadata"]["versionId"], "1");

    // An update re-renders the record in its block: the next read is the new version, stored.
    let mut changed = doc.clone();
    changed["service"] = json!([{"id": format!("{did}#svc"), "type": "LinkedDomains",
        "serviceEndpoint": "https://v2.example"}]);
    let (status, answer) = common::sign_and_send(
        &format!("{base}/1.0/update"),
        json!({"did": did, "didDocument": changed}),
        &key,
    );
    assert_eq!(status, 200, "{answer}");
    let r = assert_cold_read_is_stored(&base, &did);
    assert_eq!(r["didDocumentMetadata"]["versionId"], "2", "{r}");
    assert_eq!(
        r["didDocument"]["service"][0]["serviceEndpoint"],
        "https://v2.example"
    );
    let other = create(&base).1;
    d.kill9();

    // Restarted: the records written at commit are served at once, without a rebuild.
    let d = Daemon::start_with(&data, &["--handle", "off"]);
    let base = d.base.clone();
    assert_eq!(metric(&base, "sparkid_ledger_answers_ready"), 1.0);
    let r = assert_cold_read_is_stored(&base, &did);
    assert_eq!(r["didDocumentMetadata"]["versionId"], "2", "{r}");
    assert_cold_read_is_stored(&base, &other);

    // A deactivation drops the record: the 410 is the general path's (rendered), never a
    // stored 200.
    common::deactivate(&base, &did, &key);
    let url = format!("{base}/1.0/identifiers/{did}");
    let before = stored(&base);
    let gone = fetch(&url);
    assert_eq!(gone.0, 410, "{}", gone.2);
    assert_eq!(stored(&base), before);
    assert_eq!(gone, fetch(&format!("{url}?noCache=true")));
}

/// `--answer-records false` (a validator serving no reads): no answer is stored at commit, and
/// a cold read renders, byte for byte, the general path's answer.
#[test]
fn with_answer_records_off_cold_reads_render_the_general_paths_answer() {
    let dir = tempfile::tempdir().unwrap();
    let off = Daemon::start_with(
        &dir.path().join("data"),
        &["--handle", "off", "--answer-records", "false"],
    );
    let base = off.base.clone();
    let (_, did, _) = create(&base);
    let url = format!("{base}/1.0/identifiers/{did}");
    let (stored_before, rendered_before) = (stored(&base), rendered(&base));
    let cold = fetch(&url);
    assert_eq!(cold.0, 200, "{}", cold.2);
    assert_eq!(stored(&base), stored_before, "read from an answer record");
    assert_eq!(rendered(&base), rendered_before + 1.0, "not rendered");
    assert_eq!(metric(&base, "sparkid_ledger_answers_ready"), 0.0);
    assert_eq!(cold, fetch(&format!("{url}?noCache=true")));
}

fn records_with_answers(chain: &DevChain) -> Records {
    let config = CacheConfig {
        l1_bytes: 1 << 20,
        ..CacheConfig::default()
    };
    let records = Records::cached(
        chain.ledger.clone(),
        &config,
        CacheMetrics::standalone().unwrap(),
    )
    .unwrap();
    sparkid_resolver::answer_deriver::install(&chain.ledger);
    wait_until("answers served", || chain.ledger.answers_ready());
    records
}

/// A follower applying a validator's blocks (the block apply path of sync and catch-up)
/// writes the same answer records as the validator that proposed them.
#[test]
fn a_follower_applying_blocks_writes_the_same_answer_records() {
    let mut a = DevChain::new();
    let b = a.replica();
    let (_ra, _rb) = (records_with_answers(&a), records_with_answers(&b));
    let key = PrivateKey::generate();
    let doc = sparkid_registrar::api::new_document(&key.public_key(), None).unwrap();
    let did = doc["id"].as_str().unwrap().to_string();
    let kid = format!("{did}#key-1");
    let h = a.commit(vec![(
        &key,
        kid.clone(),
        Operation::Create {
            document: doc.clone(),
        },
    )]);
    b.apply_from(&a, h);
    let created = a.ledger.answer(&did).unwrap().expect("written at commit");
    assert_eq!(b.ledger.answer(&did).unwrap().as_ref(), Some(&created));

    let mut changed = doc.clone();
    changed["service"] = json!([{"id": format!("{did}#svc"), "type": "LinkedDomains",
        "serviceEndpoint": "https://v2.example"}]);
    let update = Operation::Update {
        document: changed,
        previous_version_id: None,
    };
    let h = a.commit(vec![(&key, kid.clone(), update)]);
    b.apply_from(&a, h);
    let updated = a.ledger.answer(&did).unwrap().unwrap();
    assert_ne!(updated, created);
    assert!(String::from_utf8_lossy(&updated).contains("https://v2.example"));
    assert_eq!(b.ledger.answer(&did).unwrap(), Some(updated));

    let deactivate = Operation::Deactivate {
        id: did.clone(),
        previous_version_id: None,
    };
    let h = a.commit(vec![(&key, kid, deactivate)]);
    b.apply_from(&a, h);
    assert_eq!(a.ledger.answer(&did).unwrap(), None);
    assert_eq!(b.ledger.answer(&did).unwrap(), None);
}
