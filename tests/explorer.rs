//! The chain browser (`/explorer/`) end to end, against a spawned dev daemon holding real data:
//! DIDs with history (one deactivated), namespaces and bindings of each kind whose grammar this
//! build accepts, a linked identifier, and a hosted sub-chain with a DID, delegated with a
//! resolver endpoint and anchored on the main chain.
//!
//! - `explorer_json_forms_cursors_and_bad_input`: the JSON form of every page, the cursors,
//!   and bad input answered 400/404 (problem JSON, or an HTML page), never 500.
//! - `explorer_in_headless_chromium`: `tests/explorer_browser.py` drives a real headless
//!   Chromium over WebDriver: DOM assertions on each page kind, a search for each kind of input,
//!   links followed, no console errors, JavaScript off. With `SPARKID_EXPLORER_SCREENSHOTS=<dir>`
//!   it also saves each page kind at desktop and phone widths (how `docs/explorer/` is made).
//! - `explorer_on_a_follower_shows_its_sync_state`: a follower's home page carries its sync
//!   state, and its pages read the blocks it replicated.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{get, link, namespace, sign_and_send, Daemon};
use serde_json::{json, Value};
use sparkid_bid::PrivateKey;

/// What the spawned daemon holds, as the browser test reads it.
struct World {
    daemon: Daemon,
    _dir: tempfile::TempDir,
    fixture: Value,
}

/// Creates the DID of `key` on `ac` (none: the main chain); returns it.
fn create_with(base: &str, key: &PrivateKey, ac: Option<&str>) -> String {
    let doc = sparkid_registrar::api::new_document_on(
        &key.public_key(),
        ac.map(|a| a.parse().unwrap()),
        None,
    )
    .unwrap();
    let did = doc["id"].as_str().unwrap().to_string();
    let (status, created) = sign_and_send(
        &format!("{base}/1.0/create?method=bid"),
        json!({"options": {"clientSecretMode": true}, "didDocument": doc}),
        key,
    );
    assert_eq!(status, 201, "{created}");
    did
}

fn key_file(dir: &Path, name: &str, key: &PrivateKey) -> String {
    let path = dir.join(name);
    std::fs::write(&path, key.to_encoded()).unwrap();
    path.to_string_lossy().to_string()
}

fn accept_json(url: &str) -> (u16, String, Value) {
    let r = common::client()
        .get(url)
        .header("accept", "application/json")
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = r.text().unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"));
    (status, content_type, value)
}

fn page(base: &str, path: &str) -> Value {
    let (status, content_type, value) = accept_json(&format!("{base}{path}"));
    assert_eq!(status, 200, "{path}: {value}");
    assert_eq!(content_type, "application/json", "{path}");
    value
}

fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    // The sub-chain's owner anchors it on this same daemon's main chain.
    let owner_key = PrivateKey::generate();
    let owner_file = key_file(dir.path(), "owner.key", &owner_key);
    let endpoint = base.clone();
    let daemon = Daemon::start_at(
        &data,
        port,
        &[
            "--handle",
            "off",
            "--subchain",
            "by01",
            "--anchor-to",
            &base,
            "--anchor-key",
            &owner_file,
            "--anchor-interval",
            "1",
        ],
    );
    let authority = data.join("validator.key").to_string_lossy().to_string();
    let owner = create_with(&base, &owner_key, None);
    let subject_key = PrivateKey::generate();
    let subject = create_with(&base, &subject_key, None);
    let subject_file = key_file(dir.path(), "subject.key", &subject_key);
    // A second version of the subject.
    let (status, updated) = sign_and_send(
        &format!("{base}/1.0/update"),
        json!({"did": subject, "didDocument": sparkid_registrar::api::new_document(
            &subject_key.public_key(),
            Some(json!({"service": [{"id": "#files", "type": "DIDStorage",
                                      "serviceEndpoint": "https://files.example/"}]})),
        ).unwrap()}),
        &subject_key,
    );
    assert_eq!(status, 200, "{updated}");
    let gone_key = PrivateKey::generate();
    let gone = create_with(&base, &gone_key, None);
    common::deactivate(&base, &gone, &gone_key);

    let delegations = [
        ("vaa", "VAA12"),
        ("handle", "86.100"),
        ("dns", "example.test"),
    ];
    for (kind, ns) in delegations {
        namespace(
            &base,
            &authority,
            &[
                "delegate",
                "--kind",
                kind,
                "--namespace",
                ns,
                "--owner",
                &owner,
            ],
        );
    }
    // A second VAA namespace, so that the list has a next page.
    namespace(
        &base,
        &authority,
        &[
            "delegate",
            "--kind",
            "vaa",
            "--namespace",
            "VAA99",
            "--owner",
            &owner,
        ],
    );
    let identifiers = [
        ("vaa", "VAA12PUMP7"),
        ("handle", "86.100/pump-7"),
        ("dns", "pump.example.test"),
    ];
    for (kind, identifier) in identifiers {
        namespace(
            &base,
            &owner_file,
            &[
                "bind",
                "--kind",
                kind,
                "--identifier",
                identifier,
                "--did",
                &subject,
            ],
        );
    }
    link(&base, &subject, &subject_file, "vaa", "VAA12PUMP7");
    namespace(
        &base,
        &authority,
        &[
            "delegate",
            "--kind",
            "ac",
            "--namespace",
            "by01",
            "--owner",
            &owner,
            "--endpoint-url",
            &endpoint,
        ],
    );
    let sub_did = create_with(&base, &PrivateKey::generate(), Some("by01"));
    // Wait for the anchor of the sub-chain's block that holds `sub_did`.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, _, sub) = accept_json(&format!("{base}/explorer/subchain/by01"));
        if status == 200 && sub["anchor"]["height"].as_u64() >= sub["hostedHeight"].as_u64() {
            break;
        }
        assert!(Instant::now() < deadline, "never anchored: {sub}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The bind transaction of the VAA code, from the transaction list.
    let txs = page(&base, "/explorer/transactions?limit=100");
    let bind = txs["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| {
            t["operation"] == "bind"
                && t["subjects"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["identifier"] == "VAA12PUMP7")
        })
        .unwrap_or_else(|| panic!("no bind of VAA12PUMP7 in {txs}"))
        .clone();
    let height = page(&base, "/explorer/")["height"].as_u64().unwrap();
    let fixture = json!({
        "base": base,
        "min_height": height,
        "owner": owner,
        "subject": subject,
        "gone": gone,
        "sub_did": sub_did,
        "ac": "by01",
        "endpoint": endpoint,
        "vaa": "VAA12PUMP7", "vaa_ns": "VAA12",
        "handle": "86.100/pump-7", "handle_ns": "86.100",
        "dns": "pump.example.test", "dns_ns": "example.test",
        "bind_tx": bind["hash"],
        "bind_height": bind["height"],
        "unknown_did": sparkid_bid::Bid::derive(&PrivateKey::generate().public_key(), None)
            .unwrap()
            .to_string(),
    });
    World {
        daemon,
        _dir: dir,
        fixture,
    }
}

#[test]
fn explorer_json_forms_cursors_and_bad_input() {
    let w = world();
    let base = w.daemon.base.as_str();
    let fx = &w.fixture;
    let subject = fx["subject"].as_str().unwrap();

    // Home: head, counts (the owner, the subject, the deactivated DID; the sub-chain's DID is
    // on its own chain), recent blocks newest first.
    let home = page(base, "/explorer/");
    let head = home["height"].as_u64().unwrap();
    assert_eq!(home["chainId"], "sparkid-dev");
    assert_eq!(home["counts"]["dids"], 3, "{home}");
    assert_eq!(home["counts"]["namespaces"], 5, "{home}");
    assert_eq!(home["counts"]["bindings"], 3, "{home}");
    assert_eq!(home["recentBlocks"][0]["height"], head);
    assert_eq!(home["hostedSubchains"], json!(["by01"]));
    assert_eq!(home["kinds"].as_array().unwrap().len(), 7, "every kind");
    assert!(home.get("sync").is_none(), "a validator has no sync state");

    // A block by height and by hash is the same page; its certificate holds.
    let block = page(base, &format!("/explorer/block/{}", fx["bind_height"]));
    assert_eq!(block["certificate"]["ok"], true, "{block}");
    assert!(!block["signers"].as_array().unwrap().is_empty());
    assert_eq!(block["signers"][0]["isValidator"], true);
    let by_hash = page(
        base,
        &format!("/explorer/block/{}", block["hash"].as_str().unwrap()),
    );
    assert_eq!(by_hash, block);
    assert!(block["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["hash"] == fx["bind_tx"]));

    // The transaction: operation, signer, outcome, block.
    let tx = page(
        base,
        &format!("/explorer/tx/{}", fx["bind_tx"].as_str().unwrap()),
    );
    assert_eq!(tx["operationType"], "bind");
    assert_eq!(tx["outcome"], "committed");
    assert_eq!(tx["height"], fx["bind_height"]);
    assert_eq!(tx["operation"]["did"], subject);
    assert!(tx["signer"]
        .as_str()
        .unwrap()
        .starts_with(fx["owner"].as_str().unwrap()));

    // The DID: verified, two versions newest first, each with its block, bound identifiers.
    let did = page(base, &format!("/explorer/did/{}", enc(subject)));
    assert_eq!(did["verified"]["ok"], true, "{did}");
    assert_eq!(did["verified"]["height"], head);
    assert_eq!(did["versionId"], 2);
    let versions: Vec<&str> = did["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["operation"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["update", "create"]);
    assert_eq!(did["document"]["id"], subject);
    let bound: Vec<(&str, bool)> = did["bound"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["identifier"].as_str().unwrap(),
                b["confirmed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        bound,
        [
            ("VAA12PUMP7", true),
            ("86.100/pump-7", false),
            ("pump.example.test", false)
        ]
    );
    // Its history pages by cursor: the older page holds the creation.
    let first = page(base, &format!("/explorer/did/{}?limit=1", enc(subject)));
    assert_eq!(first["history"].as_array().unwrap().len(), 1);
    let cursor = first["next"].as_u64().expect("a next page");
    let older = page(
        base,
        &format!("/explorer/did/{}?limit=1&before={cursor}", enc(subject)),
    );
    assert_eq!(older["history"][0]["operation"], "create");
    assert!(older.get("next").is_none(), "{older}");
    // A bare BID is read as the DID.
    let bare = page(
        base,
        &format!("/explorer/did/{}", subject.trim_start_matches("did:bid:")),
    );
    assert_eq!(bare["did"], subject);
    // The deactivated DID and the sub-chain's DID.
    let gone = page(
        base,
        &format!("/explorer/did/{}", enc(fx["gone"].as_str().unwrap())),
    );
    assert_eq!(gone["deactivated"], true);
    let sub = page(
        base,
        &format!("/explorer/did/{}", enc(fx["sub_did"].as_str().unwrap())),
    );
    assert_eq!(sub["chain"], "by01");
    assert_eq!(sub["verified"]["ok"], true, "{sub}");
    let sub_block = page(
        base,
        &format!("/explorer/block/{}?chain=by01", sub["history"][0]["height"]),
    );
    assert_eq!(sub_block["chainId"], "sparkid-dev-by01");

    // Namespaces of every kind list (the newer kinds empty until their grammar is built); the
    // VAA list pages by cursor.
    for kind in ["vaa", "handle", "dns", "ac", "oid", "gs1", "ecode"] {
        let list = page(base, &format!("/explorer/namespaces/{kind}"));
        assert_eq!(list["kind"], kind);
    }
    let list = page(base, "/explorer/namespaces/vaa?limit=1");
    assert_eq!(list["namespaces"][0]["namespace"], "VAA12");
    let list = page(
        base,
        &format!(
            "/explorer/namespaces/vaa?limit=1&after={}",
            list["next"].as_str().unwrap()
        ),
    );
    assert_eq!(list["namespaces"][0]["namespace"], "VAA99");
    assert!(list.get("next").is_none());

    // Each kind's namespace and identifier pages.
    for (kind, ns, identifier) in [
        ("vaa", "VAA12", "VAA12PUMP7"),
        ("handle", "86.100", "86.100/pump-7"),
        ("dns", "example.test", "pump.example.test"),
    ] {
        let n = page(base, &format!("/explorer/namespace/{kind}/{}", enc(ns)));
        assert_eq!(n["record"]["owner"], fx["owner"], "{n}");
        assert_eq!(n["bindings"][0]["identifier"], identifier, "{n}");
        let i = page(base, &format!("/explorer/id/{kind}/{}", enc(identifier)));
        assert_eq!(i["binding"]["did"], subject, "{i}");
        assert_eq!(i["namespace"]["namespace"], ns, "{i}");
        assert_eq!(i["history"].as_array().unwrap().len(), 1);
    }

    // The sub-chain: delegation with its endpoint, anchors, hosted height.
    let sc = page(base, "/explorer/subchain/by01");
    assert_eq!(sc["delegation"]["endpoints"][0], fx["endpoint"]);
    assert!(!sc["anchors"].as_array().unwrap().is_empty());
    assert_eq!(sc["anchor"]["chainId"], "sparkid-dev-by01");

    // Search: each kind of input finds its page; an unknown one says what it was read as.
    for (query, url) in [
        (
            subject.to_string(),
            format!("/explorer/did/{}", enc(subject)),
        ),
        (
            fx["bind_tx"].as_str().unwrap().to_string(),
            format!("/explorer/tx/{}", fx["bind_tx"].as_str().unwrap()),
        ),
        (head.to_string(), format!("/explorer/block/{head}")),
        (
            "VAA12PUMP7".into(),
            "/explorer/id/vaa/VAA12PUMP7".to_string(),
        ),
        (
            "86.100/pump-7".into(),
            "/explorer/id/handle/86.100%2Fpump-7".to_string(),
        ),
        (
            "pump.example.test".into(),
            "/explorer/id/dns/pump.example.test".to_string(),
        ),
        ("by01".into(), "/explorer/subchain/by01".to_string()),
        ("VAA12".into(), "/explorer/namespace/vaa/VAA12".to_string()),
    ] {
        let found = page(base, &format!("/explorer/search?q={}", enc(&query)));
        let urls: Vec<&str> = found["matches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["url"].as_str().unwrap())
            .collect();
        assert!(urls.contains(&url.as_str()), "{query}: {found}");
    }
    let (status, _, missing) = accept_json(&format!("{base}/explorer/search?q=VAA12NOPE"));
    assert_eq!(status, 404);
    assert!(missing["matches"].as_array().unwrap().is_empty());
    assert!(
        missing["understood"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["asWhat"] == "VAA identifier" && r["found"] == false),
        "{missing}"
    );
    // In HTML, a single match is a redirect to its page.
    let r = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{base}/explorer/search?q=VAA12PUMP7"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/explorer/id/vaa/VAA12PUMP7");

    // Blocks and transactions page by cursor, with nothing skipped or repeated.
    let mut heights = Vec::new();
    let mut path = "/explorer/blocks?limit=3".to_string();
    loop {
        let p = page(base, &path);
        heights.extend(
            p["blocks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["height"].as_u64().unwrap()),
        );
        match p["next"].as_u64() {
            Some(next) => path = format!("/explorer/blocks?limit=3&before={next}"),
            None => break,
        }
    }
    assert_eq!(heights, (0..=head).rev().collect::<Vec<_>>());
    let all = page(base, "/explorer/transactions?limit=100");
    let mut paged = Vec::new();
    let mut path = "/explorer/transactions?limit=2".to_string();
    loop {
        let p = page(base, &path);
        paged.extend(p["transactions"].as_array().unwrap().iter().cloned());
        match p["next"].as_str() {
            Some(next) => path = format!("/explorer/transactions?limit=2&before={next}"),
            None => break,
        }
    }
    assert_eq!(&Value::Array(paged), &all["transactions"]);

    // Bad input: 400 or 404, problem JSON when asked, an HTML page otherwise; never 500.
    let long = "9".repeat(600);
    let unknown = format!("/explorer/did/{}", fx["unknown_did"].as_str().unwrap());
    let unhosted = unknown.replacen("did:bid:", "did:bid:zz99:", 1);
    for (path, status, says) in [
        (
            "/explorer/block/abc",
            400,
            "neither a block height nor a block hash",
        ),
        (
            "/explorer/block/99999999",
            404,
            "no block at height 99999999",
        ),
        ("/explorer/block/18446744073709551616", 400, "neither"),
        (
            "/explorer/block/1?chain=zz99",
            404,
            "does not host sub-chain zz99",
        ),
        ("/explorer/block/1?chain=NOT!", 400, "chain"),
        ("/explorer/tx/xyz", 400, "not a transaction hash"),
        (
            "/explorer/tx/0000000000000000000000000000000000000000000000000000000000000000",
            404,
            "no transaction",
        ),
        ("/explorer/did/nonsense", 400, "is not a did:bid DID"),
        (unknown.as_str(), 404, "not on this chain"),
        (unhosted.as_str(), 404, "does not host"),
        ("/explorer/namespaces/bogus", 400, "unknown namespace kind"),
        (
            "/explorer/namespace/vaa/VAA77",
            404,
            "no vaa namespace VAA77",
        ),
        ("/explorer/namespace/vaa/lower!", 400, "VAA"),
        ("/explorer/id/vaa/VAA!!", 400, "VAA"),
        ("/explorer/id/vaa/VAA55X", 404, "neither bound"),
        ("/explorer/id/oid/1.2.3", 404, "neither bound"),
        ("/explorer/id/oid/1.02.3", 400, "leading zero"),
        ("/explorer/subchain/toolong", 400, "not an AC code"),
        ("/explorer/subchain/zz99", 404, "not delegated"),
        ("/explorer/blocks?before=x", 400, "not a cursor"),
        ("/explorer/blocks?limit=0", 400, "limit"),
        ("/explorer/blocks?limit=101", 400, "limit"),
        ("/explorer/blocks?page=2", 400, "unknown parameter"),
        ("/explorer/transactions?before=7", 400, "<height>.<index>"),
        ("/explorer/search", 400, "search needs q"),
        ("/explorer/search?q=%20", 400, "type a DID"),
    ] {
        let (got, content_type, problem) = accept_json(&format!("{base}{path}"));
        assert_eq!(got, status, "{path}: {problem}");
        assert_eq!(content_type, "application/problem+json", "{path}");
        assert!(
            problem["detail"].as_str().unwrap().contains(says),
            "{path}: {problem}"
        );
        let (got, content_type, html) = get(&format!("{base}{path}"));
        assert_eq!(got, status, "{path}");
        assert!(content_type.starts_with("text/html"), "{path}");
        assert!(html.contains("class=\"problem\""), "{path}: {html}");
    }
    for path in [
        format!("/explorer/search?q={long}"),
        format!("/explorer/did/{long}"),
        format!("/explorer/block/{long}"),
    ] {
        let (got, _, problem) = accept_json(&format!("{base}{path}"));
        assert_eq!(got, 400, "{problem}");
    }
    // Input shows as text, never as markup.
    let (status, _, html) = get(&format!(
        "{base}/explorer/did/{}",
        enc("<script>alert(1)</script>")
    ));
    assert_eq!(status, 400);
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
}

fn python() -> String {
    if let Ok(p) = std::env::var("SPARKID_BROWSER_PYTHON") {
        return p;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/explorer-venv/bin/python");
    if venv.exists() {
        return venv.to_string_lossy().to_string();
    }
    "python3".into()
}

#[test]
fn explorer_in_headless_chromium() {
    let python = python();
    let probe = Command::new(&python)
        .args(["-c", "import selenium"])
        .output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "selenium is not installed for {python}: run ./scripts/test, which installs it into \
         target/explorer-venv with chromium and chromium-driver (or set SPARKID_BROWSER_PYTHON)"
    );
    let w = world();
    let fixture = w._dir.path().join("fixture.json");
    std::fs::write(&fixture, w.fixture.to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/explorer_browser.py");
    let mut command = Command::new(&python);
    command.arg(&script).arg(&fixture);
    if let Ok(dir) = std::env::var("SPARKID_EXPLORER_SCREENSHOTS") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        command.arg(dir);
    }
    let out = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// On a follower the home page shows its sync state, and its pages read the blocks it
/// replicated.
#[test]
fn explorer_on_a_follower_shows_its_sync_state() {
    let dir = tempfile::tempdir().unwrap();
    let validator = Daemon::start_with(&dir.path().join("validator"), &["--handle", "off"]);
    let (_, did) = common::create_did(&validator.base, None);
    let follower = Daemon::start_with(
        &dir.path().join("follower"),
        &["--handle", "off", "--follow", validator.base.as_str()],
    );
    let target = page(&validator.base, "/explorer/")["height"]
        .as_u64()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let home = loop {
        let home = page(&follower.base, "/explorer/");
        if home["height"].as_u64() >= Some(target) {
            break home;
        }
        assert!(
            Instant::now() < deadline,
            "the follower did not catch up: {home}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(home["sync"]["peer"], validator.base, "{home}");
    assert!(home["sync"]["state"].is_string(), "{home}");
    assert_eq!(home["counts"]["dids"], 1, "{home}");
    let (status, _, html) = get(&format!("{}/explorer/", follower.base));
    assert_eq!(status, 200);
    assert!(html.contains("id=\"sync\""), "{html}");
    let page = page(&follower.base, &format!("/explorer/did/{}", enc(&did)));
    assert_eq!(page["verified"]["ok"], true, "{page}");
}
