//! The BID resolution protocol door, end to end: a spawned daemon answers `GET /{bid}` and its
//! sub-paths with the `{errorCode, data, message}` envelope, the native BID document and the
//! protocol's error codes, while the static routes keep working.

mod common;

use common::{create_did, deactivate, get, get_json, start_in_process};
use serde_json::{json, Value};
use sparkid_bid::{Bid, PrivateKey};

/// Asserts an envelope's code; returns it.
fn code(base: &str, path: &str) -> (i64, Value) {
    let url = format!("{base}{path}");
    let (status, content_type, text) = get(&url);
    assert_eq!(status, 200, "{url}: {text}");
    assert!(content_type.starts_with("application/json"), "{url}");
    let envelope: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"));
    let code = envelope["errorCode"]
        .as_i64()
        .unwrap_or_else(|| panic!("{url}: no errorCode: {envelope}"));
    assert!(envelope["message"].is_string(), "{url}: {envelope}");
    if code == 0 {
        assert_eq!(envelope["message"], "success");
        assert!(envelope["data"].is_object());
    }
    (code, envelope)
}

fn data(base: &str, path: &str) -> Value {
    let (c, envelope) = code(base, path);
    assert_eq!(c, 0, "{path}: {envelope}");
    envelope["data"].clone()
}

fn fails(base: &str, path: &str, expected: i64, message: &str) {
    let (c, envelope) = code(base, path);
    assert_eq!(c, expected, "{path}: {envelope}");
    let text = envelope["message"].as_str().unwrap();
    assert!(text.contains(message), "{path}: {text:?} lacks {message:?}");
    assert!(envelope.get("data").is_none(), "{path}: {envelope}");
}

#[test]
fn documents_and_sub_paths_answer_in_the_protocol_shape() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_in_process(dir.path(), &[]);
    let base = d.base.as_str();
    let (key, did) = create_did(
        base,
        Some(json!({
            "service": [
                {"id": "#files", "type": "DIDStorage", "serviceEndpoint": "https://files.example"},
                {"id": "#sub", "type": "DIDSubResolver", "version": "1.0.0", "serverType": 1,
                 "protocol": 3, "serviceEndpoint": "192.168.1.23", "port": 8080}
            ],
            "alsoKnownAs": [{"type": 105, "id": "88.111.1/demo"}],
            "extension": {
                "type": 102,
                "attributes": [{"key": "name", "desc": "名称", "encrypt": 0, "format": "text", "value": "BID文档"}],
                "acsns": ["abcd", "1234"],
                "verifiableCredentials": [{"id": "did:bid:efJgt44mNDewKK1VEN454R17cjso3mSG", "type": 202}]
            }
        })),
    );
    let kid = format!("{did}#key-1");

    // The document: the native shape, with created and updated.
    let doc = &data(base, &format!("/{did}"))["didDocument"];
    assert_eq!(doc["id"], json!(did));
    assert_eq!(doc["@context"], json!(["https://www.w3.org/ns/did/v1"]));
    assert_eq!(doc["version"], "1.0.0");
    assert_eq!(
        doc["publicKey"],
        json!([{"id": kid, "type": "Ed25519", "controller": did,
                "publicKeyHex": key.public_key().to_encoded()}])
    );
    assert_eq!(doc["authentication"], json!([kid]));
    assert_eq!(doc["extension"]["recovery"], json!([kid]));
    assert_eq!(
        doc["alsoKnownAs"],
        json!([{"type": 105, "id": "88.111.1/demo"}])
    );
    assert_eq!(doc["service"][1]["port"], 8080);
    for member in ["created", "updated"] {
        let t = doc[member].as_str().unwrap();
        assert!(t.len() == 20 && t.ends_with('Z'), "{member} {t}");
    }
    assert!(doc.get("verificationMethod").is_none());
    // A trailing slash is the same request.
    assert_eq!(&data(base, &format!("/{did}/"))["didDocument"], doc);

    // Sub-paths: {version (the protocol's), id, member}.
    let keys = data(base, &format!("/{did}/public-keys"));
    assert_eq!(
        keys,
        json!({"version": "1.0.0", "id": did, "publicKey": doc["publicKey"]})
    );
    for id in ["key-1", "%23key-1", &format!("{did}%23key-1")] {
        assert_eq!(
            data(base, &format!("/{did}/public-keys/{id}")),
            json!({"version": "1.0.0", "id": did, "publicKey": doc["publicKey"][0]}),
            "{id}"
        );
    }
    assert_eq!(
        data(base, &format!("/{did}/attributes"))["attributes"],
        doc["extension"]["attributes"]
    );
    assert_eq!(
        data(base, &format!("/{did}/acsns")),
        json!({"version": "1.0.0", "id": did, "acsns": ["abcd", "1234"]})
    );
    assert_eq!(
        data(base, &format!("/{did}/verifiableCredentials"))["verifiableCredentials"],
        json!([{"id": "did:bid:efJgt44mNDewKK1VEN454R17cjso3mSG", "type": 202}])
    );
    for id in ["files", "%23files", &format!("{did}%23files")] {
        assert_eq!(
            data(base, &format!("/{did}/services?id={id}")),
            json!({"version": "1.0.0", "id": did, "service": doc["service"][0]}),
            "{id}"
        );
    }
    assert_eq!(
        data(base, &format!("/{did}/services?id=sub"))["service"]["type"],
        "DIDSubResolver"
    );

    // Unknown key and service ids, missing fields: 8; services without an id: 4.
    fails(base, &format!("/{did}/public-keys/key-9"), 8, "key-9");
    fails(base, &format!("/{did}/services?id=nope"), 8, "nope");
    fails(base, &format!("/{did}/services"), 4, "?id=");
    fails(base, &format!("/{did}/services?id="), 4, "?id=");
    let (_, plain) = create_did(base, None);
    fails(
        base,
        &format!("/{plain}/attributes"),
        8,
        "extension.attributes",
    );
    fails(base, &format!("/{plain}/acsns"), 8, "extension.acsns");
    fails(
        base,
        &format!("/{plain}/verifiableCredentials"),
        8,
        "extension.verifiableCredentials",
    );
    fails(base, &format!("/{plain}/services?id=files"), 8, "service");
    fails(base, &format!("/{did}/nope"), 5, "no sub-path");
    fails(base, &format!("/{did}/public-keys/a/b"), 8, "a/b");
}

#[test]
fn unknown_malformed_and_foreign_identifiers_get_protocol_codes_never_a_500() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_in_process(dir.path(), &[]);
    let base = d.base.as_str();
    let (key, did) = create_did(base, None);
    deactivate(base, &did, &key);
    fails(base, &format!("/{did}"), 6, "deactivated");
    fails(base, &format!("/{did}/public-keys"), 6, "deactivated");

    let stranger = Bid::derive(&PrivateKey::generate().public_key(), None)
        .unwrap()
        .to_string();
    fails(base, &format!("/{stranger}"), 6, "not found");
    fails(
        base,
        &format!("/{stranger}/services?id=x"),
        6,
        "is not registered",
    );
    // A sub-chain this ledger knows nothing of: 10, for an address on it and for the AC code.
    let on_sub = stranger.replace("did:bid:", "did:bid:by01:");
    fails(base, &format!("/{on_sub}"), 10, "by01");
    fails(base, "/did:bid:abcd", 10, "abcd");
    fails(base, &format!("/{on_sub}/acsns"), 10, "by01");

    // Not a BID at all: 4, each with the rule it breaks; another DID method: 5.
    for (path, message) in [
        (
            "/did:bid:efJgt44mNDewKK1VEN454R17cjso3mS0".to_string(),
            "character '0' at position 29 is not in the BIF Base58 alphabet",
        ),
        (
            "/did:bid:BY01:efJgt44mNDewKK1VEN454R17cjso3mSG".to_string(),
            "an AC code is exactly 4 characters of a-z and 0-9, got \"BY01\"",
        ),
        (
            "/favicon.ico".to_string(),
            "a BID must begin with the lowercase prefix \"did:bid:\"",
        ),
        (
            "/did:bid:".to_string(),
            "a BID needs a method-specific identifier after \"did:bid:\"",
        ),
        ("/%FF%FE".to_string(), "Invalid UTF-8"),
        (
            format!("/did:bid:{}", "a".repeat(5000)),
            "a BID is at most 57 characters long, this one has 5008",
        ),
        (
            "/did:bid:efJgt44mNDewKK1VEN454R17cjso3mSG?proof=maybe".to_string(),
            "option proof=\"maybe\": expected true or false",
        ),
    ] {
        fails(base, &path, 4, message);
    }
    fails(
        base,
        "/did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
        5,
        "did:key",
    );
    fails(base, "/favicon.ico/public-keys", 4, "favicon.ico");

    // The static routes keep priority.
    let (status, health) = get_json(&format!("{base}/healthz"));
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    let (status, genesis) = get_json(&format!("{base}/1.0/genesis"));
    assert_eq!(status, 200);
    assert_eq!(genesis["chainId"], "sparkid-dev");
    assert_eq!(genesis["validators"].as_array().map(Vec::len), Some(1));
    let (status, resolved) = get_json(&format!("{base}/1.0/identifiers/{stranger}"));
    assert_eq!(status, 404, "{resolved}");
    assert!(resolved.get("errorCode").is_none());
    // An unknown route under /1.0 is not a static route: the BID protocol door reads it as a
    // sub-path it does not serve.
    fails(
        base,
        "/1.0/no-such-route",
        5,
        "no sub-path \"no-such-route\"",
    );
}

#[test]
fn trusted_resolution_checks_delegate_sign() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_in_process(dir.path(), &[]);
    let base = d.base.as_str();
    // A certifying BID, and a BID whose key it signs (the SDK's delegateSign: uppercase hex of
    // an Ed25519 signature over the encoded public-key bytes).
    let (certifier, certifier_did) = create_did(base, None);
    let key = PrivateKey::generate();
    let signature = certifier.sign(&key.public_key().encoded_bytes());
    let delegate = |signature: String| {
        json!({"extension": {"delegateSign": {
            "signer": format!("{certifier_did}#key-1"), "signatureValue": signature}}})
    };
    let doc = sparkid_registrar::api::new_document(
        &key.public_key(),
        Some(delegate(hex::encode_upper(signature.0))),
    )
    .unwrap();
    let did = doc["id"].as_str().unwrap().to_string();
    let (status, created) = common::sign_and_send(
        &format!("{base}/1.0/create?method=bid"),
        json!({"options": {"clientSecretMode": true}, "didDocument": doc}),
        &key,
    );
    assert_eq!(status, 201, "{created}");
    let verified = data(base, &format!("/{did}?verify=true"));
    assert_eq!(verified["verify"], true);
    assert_eq!(verified["didDocument"]["id"], json!(did));
    assert!(data(base, &format!("/{did}")).get("verify").is_none());

    // No delegateSign, or one by another key: 9.
    fails(
        base,
        &format!("/{certifier_did}?verify=true"),
        9,
        "no extension.delegateSign",
    );
    let (_, forged) = create_did(
        base,
        Some(delegate(
            PrivateKey::generate().sign(b"something else").to_base58(),
        )),
    );
    fails(
        base,
        &format!("/{forged}?verify=true"),
        9,
        "does not verify",
    );
}

#[test]
fn proof_true_adds_the_ledger_proof_to_the_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_in_process(dir.path(), &[]);
    let base = d.base.as_str();
    let (_, did) = create_did(base, None);
    let answer = data(base, &format!("/{did}?proof=true"));
    let proof = &answer["ledgerProof"];
    assert_eq!(proof["key"], json!(format!("did/{did}")));
    let record: Value = serde_json::from_str(proof["value"].as_str().unwrap()).unwrap();
    assert_eq!(record["versionId"], 1);
    assert!(proof["anchor"]["certificate"]["votes"].is_array());
    assert_eq!(proof["anchor"]["header"]["chainId"], "sparkid-dev");
    let keys = data(base, &format!("/{did}/public-keys?proof=true"));
    assert_eq!(keys["ledgerProof"]["key"], proof["key"]);

    let stranger = Bid::derive(&PrivateKey::generate().public_key(), None)
        .unwrap()
        .to_string();
    let (c, absent) = code(base, &format!("/{stranger}?proof=true"));
    assert_eq!(c, 6);
    assert_eq!(absent["data"]["ledgerProof"]["value"], Value::Null);
    assert_eq!(
        absent["data"]["ledgerProof"]["key"],
        json!(format!("did/{stranger}"))
    );
}
