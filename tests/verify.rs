//! Verifiable answers, end to end: results saved from a spawned daemon with `?proof=true` pass
//! `sparkid verify` given only the genesis (or the validator keys), and every tampering fails
//! with its own message and a non-zero exit.

mod common;

use common::{create_did, deactivate, get, get_json, verify_file, Daemon};
use serde_json::{json, Value};
use sparkid_bid::{Bid, PrivateKey};

struct Setup {
    daemon: Daemon,
    dir: tempfile::TempDir,
    genesis: String,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let daemon = Daemon::start(&dir.path().join("data"));
        let (status, _, genesis) = get(&format!("{}/1.0/genesis", daemon.base));
        assert_eq!(status, 200);
        let path = dir.path().join("genesis.json");
        std::fs::write(&path, &genesis).unwrap();
        Setup {
            daemon,
            genesis: path.display().to_string(),
            dir,
        }
    }

    fn save(&self, name: &str, value: &Value) -> std::path::PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
        path
    }

    /// Verifies `value` with the genesis; asserts the outcome and that the output contains
    /// `expected`.
    fn check(&self, name: &str, value: &Value, ok: bool, expected: &str) -> String {
        let file = self.save(name, value);
        let (success, text) = verify_file(&file, &["--genesis", &self.genesis]);
        assert_eq!(success, ok, "{name}: {text}");
        assert!(
            text.contains(expected),
            "{name}: {text:?} lacks {expected:?}"
        );
        text
    }
}

fn validator_key(setup: &Setup) -> String {
    let genesis: Value =
        serde_json::from_str(&std::fs::read_to_string(&setup.genesis).unwrap()).unwrap();
    genesis["validators"][0].as_str().unwrap().to_string()
}

/// Every tampering of a verifiable answer, through the CLI. `proof` is the JSON pointer of the
/// ledger proof in `result`, `document` that of the document.
fn tamper_each_part(setup: &Setup, result: &Value, proof: &str, document: &str) {
    let mut t = result.clone();
    let service = t
        .pointer_mut(&format!("{document}/service/0/serviceEndpoint"))
        .unwrap();
    *service = json!("https://evil.example");
    setup.check(
        "t-doc.json",
        &t,
        false,
        "the document differs from the proven record at didDocument.service[0].serviceEndpoint",
    );

    let mut t = result.clone();
    let value = t.pointer_mut(&format!("{proof}/value")).unwrap();
    *value = json!(value
        .as_str()
        .unwrap()
        .replace("files.example", "evil.example"));
    setup.check(
        "t-value.json",
        &t,
        false,
        "the value does not hash to the proven leaf's value hash",
    );

    let mut t = result.clone();
    let siblings = t.pointer_mut(&format!("{proof}/proof/siblings")).unwrap();
    assert!(!siblings.as_array().unwrap().is_empty(), "{siblings}");
    siblings[0] = json!("ab".repeat(32));
    setup.check("t-sibling.json", &t, false, "is not the certified root");

    let validator = validator_key(setup);
    let mut t = result.clone();
    let votes = t
        .pointer_mut(&format!("{proof}/anchor/certificate/votes"))
        .unwrap();
    votes[0]["signature"] = json!(PrivateKey::generate().sign(b"another block").to_base58());
    setup.check(
        "t-vote.json",
        &t,
        false,
        &format!("the vote of validator {validator} does not verify"),
    );
    let mut t = result.clone();
    *t.pointer_mut(&format!("{proof}/anchor/certificate/votes"))
        .unwrap() = json!([]);
    setup.check("t-quorum.json", &t, false, "0 valid votes, a quorum is 1");
    let mut t = result.clone();
    *t.pointer_mut(&format!("{proof}/anchor/header/height"))
        .unwrap() = json!(1_000_000);
    setup.check("t-header.json", &t, false, "the certificate is for block");

    // Another validator set: the vote is by a stranger.
    let file = setup.save("good.json", result);
    let stranger = PrivateKey::generate().public_key().to_encoded();
    let (ok, text) = verify_file(&file, &["--validators", &stranger]);
    assert!(!ok, "{text}");
    assert!(
        text.contains(&format!("vote by {validator}, which is not a validator")),
        "{text}"
    );
    // The right keys, listed (in a file or on the command line): it verifies.
    let (ok, text) = verify_file(&file, &["--validators", &validator]);
    assert!(ok, "{text}");
    let keys = setup.dir.path().join("validators.txt");
    std::fs::write(&keys, format!("{validator}\n")).unwrap();
    let (ok, text) = verify_file(&file, &["--validators", &keys.display().to_string()]);
    assert!(ok, "{text}");

    // Asked about another DID.
    let other = Bid::derive(&PrivateKey::generate().public_key(), None)
        .unwrap()
        .to_string();
    let (ok, text) = verify_file(&file, &["--genesis", &setup.genesis, "--did", &other]);
    assert!(!ok, "{text}");
    assert!(text.contains(&format!("{other} is stored under")), "{text}");

    // No proof at all.
    let mut t = result.clone();
    let (parent, member) = proof.rsplit_once('/').unwrap();
    t.pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(member);
    setup.check("t-missing.json", &t, false, "carries no ledger proof");
}

fn services() -> Value {
    json!({"service": [{"id": "#files", "type": "DIDStorage",
        "serviceEndpoint": "https://files.example"}]})
}

#[test]
fn bid_protocol_answers_verify_offline_and_tampering_fails() {
    let setup = Setup::new();
    let base = setup.daemon.base.clone();
    let (_, did) = create_did(&base, Some(services()));
    for _ in 0..3 {
        create_did(&base, None);
    }
    let (_, answer) = get_json(&format!("{base}/{did}?proof=true"));
    assert_eq!(answer["errorCode"], 0, "{answer}");
    let text = setup.check(
        "bid.json",
        &answer,
        true,
        &format!("verified: {did} is live, versionId 1"),
    );
    let height = answer["data"]["ledgerProof"]["anchor"]["header"]["height"]
        .as_u64()
        .unwrap();
    assert!(text.contains(&format!("height:     {height}")), "{text}");
    assert!(text.contains("block hash: "), "{text}");
    tamper_each_part(&setup, &answer, "/data/ledgerProof", "/data/didDocument");

    // Not registered: the proof of absence verifies.
    let stranger = Bid::derive(&PrivateKey::generate().public_key(), None)
        .unwrap()
        .to_string();
    let (_, absent) = get_json(&format!("{base}/{stranger}?proof=true"));
    assert_eq!(absent["errorCode"], 6);
    setup.check(
        "bid-absent.json",
        &absent,
        true,
        &format!("verified: {stranger} is not registered"),
    );
    // ... and is not a proof of absence of a registered DID.
    let file = setup.save("bid-absent.json", &absent);
    let (ok, text) = verify_file(&file, &["--genesis", &setup.genesis, "--did", &did]);
    assert!(!ok && text.contains("is stored under"), "{text}");
    // An errorCode 6 claimed for a registered DID.
    let mut lie = absent.clone();
    lie["data"]["ledgerProof"] = answer["data"]["ledgerProof"].clone();
    setup.check(
        "bid-lie.json",
        &lie,
        false,
        "but the proof shows a live document (versionId 1)",
    );
}

#[test]
fn did_resolution_answers_verify_offline_and_tampering_fails() {
    let setup = Setup::new();
    let base = setup.daemon.base.clone();
    let (key, did) = create_did(&base, Some(services()));
    for _ in 0..3 {
        create_did(&base, None);
    }
    let url = format!("{base}/1.0/identifiers/{did}?proof=true");
    let (status, result) = get_json(&url);
    assert_eq!(status, 200, "{result}");
    assert!(
        result["didResolutionMetadata"]["ledgerProof"].is_object(),
        "{url} gave no didResolutionMetadata.ledgerProof: {result}"
    );
    setup.check(
        "resolution.json",
        &result,
        true,
        &format!("verified: {did} is live, versionId 1"),
    );
    tamper_each_part(
        &setup,
        &result,
        "/didResolutionMetadata/ledgerProof",
        "/didDocument",
    );
    let mut t = result.clone();
    t["didDocumentMetadata"]["versionId"] = json!("2");
    setup.check(
        "t-version.json",
        &t,
        false,
        "didDocumentMetadata.versionId is \"2\", the proven record has \"1\"",
    );

    // NOT_FOUND, with a proof of absence.
    let stranger = Bid::derive(&PrivateKey::generate().public_key(), None)
        .unwrap()
        .to_string();
    let (status, absent) = get_json(&format!("{base}/1.0/identifiers/{stranger}?proof=true"));
    assert_eq!(status, 404, "{absent}");
    setup.check(
        "absent.json",
        &absent,
        true,
        &format!("verified: {stranger} is not registered"),
    );

    // Deactivated (410), with the proof of the deactivated record.
    deactivate(&base, &did, &key);
    let (status, gone) = get_json(&url);
    assert_eq!(status, 410, "{gone}");
    setup.check(
        "gone.json",
        &gone,
        true,
        &format!("verified: {did} is deactivated, versionId 2"),
    );
    // The old live answer was true at its height, and still verifies against that header ...
    setup.check("resolution.json", &result, true, "is live");
    // ... but claiming "live" with the new proof does not.
    let mut stale = result.clone();
    stale["didResolutionMetadata"]["ledgerProof"] =
        gone["didResolutionMetadata"]["ledgerProof"].clone();
    setup.check(
        "stale.json",
        &stale,
        false,
        "the result says a live document, but the proof shows the DID deactivated (versionId 2)",
    );
}

/// Runs `sparkid ledger verify --data DIR`; returns success and the output (stdout, stderr).
fn ledger_verify(data: &std::path::Path) -> (bool, String) {
    let out = std::process::Command::new(common::BIN)
        .args(["ledger", "verify", "--data"])
        .arg(data)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// A copy of a stopped node's data directory (its ledger and its dev key).
fn copy_data(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// `sparkid ledger verify` refuses a stopped node's data altered one way per check of the
/// verifier, each with a non-zero exit and its own message. Every alteration of a block is
/// certified again with the node's own key, so each reaches the check it aims at (past the
/// certificate).
#[test]
fn ledger_verify_refuses_each_kind_of_altered_data() {
    use sparkid_ledger::store::tamper;

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = Daemon::start(&data);
    let (key, _) = create_did(&d.base, None);
    create_did(&d.base, None);
    d.kill9();

    let (ok, text) = ledger_verify(&data);
    assert!(ok && text.starts_with("ok: 3 blocks"), "{text}");
    let validator = PrivateKey::from_encoded(
        std::fs::read_to_string(data.join("validator.key"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    // Block 1 holds the first DID's create transaction, signed by `key`.
    let block = {
        let ledger = sparkid_ledger::Ledger::open(&data).unwrap();
        ledger.block(1).unwrap().unwrap()
    };
    assert_eq!(block.transactions.len(), 1);
    let tx = block.transactions[0].clone();
    assert_eq!(tx.body.public_key, key.public_key().to_encoded());

    let case = |name: &str, alter: &dyn Fn(&std::path::Path), expected: &str| {
        let copy = dir.path().join(name);
        copy_data(&data, &copy);
        alter(&copy);
        let (ok, text) = ledger_verify(&copy);
        assert!(!ok, "{name}: an altered ledger verified: {text}");
        assert!(
            text.contains(expected),
            "{name}: {text:?} lacks {expected:?}"
        );
    };
    case(
        "previous-hash",
        &|copy| {
            tamper::edit_block(copy, 1, &validator, |b| {
                b.header.previous_hash = sparkid_ledger::Hash::of(&[b"another chain"]);
            })
            .unwrap()
        },
        "block 1 does not extend the chain: previousHash does not match the previous header",
    );
    case(
        "tx-root",
        &|copy| {
            tamper::edit_block(copy, 1, &validator, |b| {
                b.header.tx_root = sparkid_ledger::Hash::of(&[b"other transactions"]);
            })
            .unwrap()
        },
        "block 1 does not extend the chain: txRoot or txCount does not match the transactions",
    );
    case(
        "validity-window",
        &|copy| {
            tamper::edit_block(copy, 1, &validator, |b| {
                // Signed again by its own key: only its window is wrong (it ended at height 0).
                let mut body = b.transactions[0].body.clone();
                body.valid_until = 0;
                b.transactions[0] = body.sign(&key);
                tamper::reseal_tx_root(b);
            })
            .unwrap()
        },
        "is outside its validity window",
    );
    case(
        "replay-index",
        &|copy| assert!(tamper::unindex_transaction(copy, &tx.hash()).unwrap()),
        &format!(
            "block 1 does not extend the chain: transaction {} is not indexed at this height (a replay?)",
            tx.hash()
        ),
    );
    case(
        "state-root",
        &|copy| {
            tamper::edit_block(copy, 1, &validator, |b| {
                b.header.state_root = sparkid_ledger::Hash::of(&[b"another state"]);
            })
            .unwrap()
        },
        &format!(
            "block 1 does not extend the chain: stateRoot {} is not the re-executed",
            sparkid_ledger::Hash::of(&[b"another state"])
        ),
    );
}
