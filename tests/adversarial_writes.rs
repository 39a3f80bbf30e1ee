//! Rollback by replay and alias consent (issue 12, items 11, 12): each attack against a spawned daemon, asserting its bounded outcome.
//!
//! - Item 11: an update signed and held back while another update commits is refused when it
//!   is finally submitted (409, naming `previousVersionId`), and the document stays as the
//!   committed update left it.
//! - Item 12: a namespace owner binds an identifier to a DID whose controller never agreed: the
//!   binding resolves forward, but neither the DID's `alsoKnownAs` (HTTP, warm and from the
//!   ledger) nor its DNS `aka` records name it until the controller links it.

mod common;

use std::process::Command;

use base64::Engine;
use common::{cli, free_udp_tcp_port, get_json, post, sign_and_send, Daemon};
use serde_json::{json, Value};
use sparkid_bid::PrivateKey;
use sparkid_bridges::dns::ServiceZone;

/// The native document of `did` as the BID protocol serves it, without the stamps the ledger
/// adds.
fn native_document(base: &str, did: &str) -> Value {
    let (status, answer) = get_json(&format!("{base}/{did}"));
    assert_eq!(status, 200, "{answer}");
    let mut doc = answer["data"]["didDocument"].clone();
    if let Some(map) = doc.as_object_mut() {
        map.remove("created");
        map.remove("updated");
    }
    doc
}

fn with_service(doc: &Value, did: &str, endpoint: &str) -> Value {
    let mut changed = doc.clone();
    changed["service"] = json!([{"id": format!("{did}#svc"), "type": "LinkedDomains",
                                 "serviceEndpoint": endpoint}]);
    changed
}

/// The signature of a registrar `action` answer's payload by `key`, base64url.
fn signature(action: &Value, key: &PrivateKey) -> String {
    let payload = action["didState"]["signingRequest"]["signingRequest0"]["serializedPayload"]
        .as_str()
        .unwrap_or_else(|| panic!("no payload in {action}"));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .unwrap();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.sign(&bytes).0)
}

/// The continuation of the job an `action` answer opened, with `signature`.
fn continuation(action: &Value, signature: &str) -> Value {
    json!({ "jobId": action["jobId"],
            "secret": { "jobSecret": action["didRegistrationMetadata"]["jobSecret"],
                        "signingResponse": { "signingRequest0": { "signature": signature } } } })
}

fn resolve(base: &str, did: &str, query: &str) -> Value {
    let (status, answer) = get_json(&format!("{base}/1.0/identifiers/{did}{query}"));
    assert_eq!(status, 200, "{answer}");
    answer
}

#[test]
fn an_update_signed_and_held_back_cannot_roll_the_did_back() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(&dir.path().join("data"), &["--handle", "off"]);
    let base = d.base.as_str();
    let (key, did) = common::create_did(base, None);
    let v1 = native_document(base, &did);
    let url = format!("{base}/1.0/update");

    // A: signed against version 1, and held back (the signature is not sent yet).
    let (status, action_a) = post(
        &url,
        &json!({"did": did, "didDocument": with_service(&v1, &did, "https://a.example")}),
    );
    assert_eq!(status, 200, "{action_a}");
    let payload = &action_a["didState"]["signingRequest"]["signingRequest0"]["payload"];
    assert_eq!(payload["operation"]["previousVersionId"], 1, "{payload}");
    let held = signature(&action_a, &key);

    // B: also against version 1, commits.
    let (status, b) = sign_and_send(
        &url,
        json!({"did": did, "didDocument": with_service(&v1, &did, "https://b.example")}),
        &key,
    );
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["didState"]["state"], "finished", "{b}");

    // A, now: refused, with a reason that names the rule; the document stays at B.
    let (status, a) = post(&url, &continuation(&action_a, &held));
    assert_eq!(status, 409, "{a}");
    assert_eq!(a["didState"]["state"], "failed", "{a}");
    let reason = a["didState"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("previousVersionId") && reason.contains("current version is 2"),
        "{a}"
    );
    for query in ["", "?noCache=true"] {
        let r = resolve(base, &did, query);
        assert_eq!(r["didDocumentMetadata"]["versionId"], "2", "{r}");
        assert_eq!(
            r["didDocument"]["service"][0]["serviceEndpoint"], "https://b.example",
            "{r}"
        );
    }

    // A client that says which version it read is refused up front when it is stale.
    let (status, stale) = post(
        &url,
        &json!({"did": did, "didDocument": with_service(&v1, &did, "https://c.example"),
                "options": {"previousVersionId": 1}}),
    );
    assert_eq!(status, 409, "{stale}");
    assert!(stale["didState"]["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("at version 2"));

    // A deactivation signed against version 1 and held back is refused the same way.
    let (status, action_d) = post(&format!("{base}/1.0/deactivate"), &json!({"did": did}));
    assert_eq!(status, 200, "{action_d}");
    let held = signature(&action_d, &key);
    let (status, c) = sign_and_send(
        &url,
        json!({"did": did, "didDocument": with_service(&v1, &did, "https://c.example")}),
        &key,
    );
    assert_eq!(status, 200, "{c}");
    let (status, d_answer) = post(
        &format!("{base}/1.0/deactivate"),
        &continuation(&action_d, &held),
    );
    assert_eq!(status, 409, "{d_answer}");
    let r = resolve(base, &did, "?noCache=true");
    assert_eq!(r["didDocumentMetadata"]["deactivated"], false, "{r}");
    assert_eq!(r["didDocumentMetadata"]["versionId"], "3", "{r}");
}

/// `dig @127.0.0.1 -p <port> +norec +tcp <name> <type>`, spaces normalized.
fn dig(port: u16, name: &str, rtype: &str) -> String {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+norec", "+tcp"])
        .args(["+time=3", "+tries=1", name, rtype])
        .output()
        .expect("dig is not installed: run ./scripts/test, which installs dnsutils");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_binding_speaks_for_a_did_only_once_its_controller_confirms_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_udp_tcp_port();
    let dns = format!("127.0.0.1:{port}");
    let d = Daemon::start_with(&data, &["--handle", "off", "--dns", &dns]);
    let base = d.base.as_str();
    let authority = data.join("validator.key").to_string_lossy().to_string();
    let created = |base: &str| {
        let c = cli(&["did", "create", "--endpoint", base]);
        (
            c["didState"]["did"].as_str().unwrap().to_string(),
            c["generatedKey"]["privateKey"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    };
    let (owner, owner_key) = created(base);
    let (victim, victim_key) = created(base);
    common::namespace(
        base,
        &authority,
        &[
            "delegate",
            "--kind",
            "dns",
            "--namespace",
            "example.com",
            "--owner",
            &owner,
        ],
    );
    // The owner binds a name to the victim, who never agreed.
    common::namespace(
        base,
        &owner_key,
        &[
            "bind",
            "--kind",
            "dns",
            "--identifier",
            "pump.example.com",
            "--did",
            &victim,
        ],
    );
    let victim_name = ServiceZone::new("sparkid.test")
        .unwrap()
        .did_name(&victim)
        .unwrap();

    // Forward: the name resolves to the DID.
    let out = dig(port, "_did.pump.example.com", "URI");
    assert!(out.contains(&format!("URI 1 0 \"{victim}\"")), "{out}");
    // Back: not in the DID's alsoKnownAs (warm path twice, and from the ledger), not in aka.
    for query in ["", "", "?noCache=true", "?versionId=1"] {
        let r = resolve(base, &victim, query);
        assert_eq!(
            r["didDocumentMetadata"]["alsoKnownAs"],
            Value::Null,
            "{query}: {r}"
        );
    }
    let out = dig(port, &victim_name, "TXT");
    assert!(out.contains(&format!("\"did={victim}\"")), "{out}");
    assert!(!out.contains("aka="), "{out}");

    // The owner cannot confirm for the victim.
    let owner_private = PrivateKey::from_encoded(&owner_key).unwrap();
    let (status, refused) = sign_and_send(
        &format!("{base}/1.0/namespaces"),
        json!({"operation": {"type": "link", "did": victim, "kind": "dns", "identifier": "pump.example.com"},
               "options": {"signer": format!("{owner}#key-1")}}),
        &owner_private,
    );
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["didState"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("controller"),
        "{refused}"
    );
    assert_eq!(
        resolve(base, &victim, "")["didDocumentMetadata"]["alsoKnownAs"],
        Value::Null
    );

    // The victim's controller links it: now it shows, over HTTP and DNS.
    cli(&[
        "did",
        "link",
        "--endpoint",
        base,
        "--did",
        &victim,
        "--key",
        &victim_key,
        "--kind",
        "dns",
        "--identifier",
        "pump.example.com",
    ]);
    for query in ["", "", "?noCache=true"] {
        let r = resolve(base, &victim, query);
        assert_eq!(
            r["didDocumentMetadata"]["alsoKnownAs"],
            json!(["dns:pump.example.com"]),
            "{query}: {r}"
        );
    }
    let out = dig(port, &victim_name, "TXT");
    assert!(out.contains("\"aka=dns:pump.example.com\""), "{out}");

    // Withdrawn: gone again, while the name still resolves forward.
    cli(&[
        "did",
        "link",
        "--unlink",
        "--endpoint",
        base,
        "--did",
        &victim,
        "--key",
        &victim_key,
        "--kind",
        "dns",
        "--identifier",
        "pump.example.com",
    ]);
    assert_eq!(
        resolve(base, &victim, "")["didDocumentMetadata"]["alsoKnownAs"],
        Value::Null
    );
    assert!(!dig(port, &victim_name, "TXT").contains("aka="));
    let out = dig(port, "_did.pump.example.com", "URI");
    assert!(out.contains(&format!("URI 1 0 \"{victim}\"")), "{out}");
}

#[test]
fn a_namespace_owner_cannot_grow_a_dids_aliases_without_bound() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = Daemon::start_with(&data, &["--handle", "off"]);
    let base = d.base.as_str();
    let authority = data.join("validator.key").to_string_lossy().to_string();
    let (owner_key, owner) = common::create_did(base, None);
    let (_, victim) = common::create_did(base, None);
    common::namespace(
        base,
        &authority,
        &[
            "delegate",
            "--kind",
            "dns",
            "--namespace",
            "example.com",
            "--owner",
            &owner,
        ],
    );
    let bind = |i: usize| {
        sign_and_send(
            &format!("{base}/1.0/namespaces"),
            json!({"operation": {"type": "bind", "kind": "dns", "identifier": format!("n{i}.example.com"), "did": victim},
                   "options": {"signer": format!("{owner}#key-1")}}),
            &owner_key,
        )
    };
    let cap = sparkid_registrar::namespace::MAX_ALIASES_PER_DID;
    for i in 0..cap {
        let (status, answer) = bind(i);
        assert_eq!(status, 200, "{answer}");
    }
    let (status, refused) = bind(cap);
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["didState"]["state"], "failed");
    assert!(
        refused["didState"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("already has {cap} bound identifiers")),
        "{refused}"
    );
    // None of them speaks for the victim, who confirmed none.
    assert_eq!(
        resolve(base, &victim, "")["didDocumentMetadata"]["alsoKnownAs"],
        Value::Null
    );
}
