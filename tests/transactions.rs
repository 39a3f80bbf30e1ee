//! One-step submission of a client-signed transaction, `POST /1.0/transactions` (issue 16): a
//! create, update and deactivate built and signed by the client alone are committed and
//! answered `finished`; what is acknowledged survives kill -9; each refusal is named, 400 for a
//! body that is not a signed transaction, 422 for one that cannot be committed as it is, 409 and
//! 404 as the registrar routes answer them.

mod common;

use common::{client, get_json, post, start_in_process, Daemon};
use serde_json::{json, Value};
use sparkid_bid::PrivateKey;
use sparkid_ledger::{Transaction, TxBody};

/// The chain id and height of the daemon at `base`.
fn chain(base: &str) -> (String, u64) {
    let (status, health) = get_json(&format!("{base}/healthz"));
    assert_eq!(status, 200, "{health}");
    (
        health["chainId"].as_str().unwrap().to_string(),
        health["height"].as_u64().unwrap(),
    )
}

/// A body for `operation`, signed later by `key`, valid for 100 blocks.
fn body(base: &str, key: &PrivateKey, signer: &str, operation: Value) -> TxBody {
    let (chain_id, height) = chain(base);
    TxBody {
        chain_id,
        signer: signer.to_string(),
        public_key: key.public_key().to_encoded(),
        nonce: TxBody::random_nonce(),
        valid_until: height + 100,
        operation,
    }
}

/// A new key and its DID's create, signed.
fn signed_create(base: &str) -> (PrivateKey, String, Transaction) {
    let key = PrivateKey::generate();
    let document = sparkid_registrar::api::new_document(&key.public_key(), None).unwrap();
    let did = document["id"].as_str().unwrap().to_string();
    let tx = body(
        base,
        &key,
        &format!("{did}#key-1"),
        json!({"type": "create", "document": document}),
    )
    .sign(&key);
    (key, did, tx)
}

fn submit(base: &str, tx: &Transaction) -> (u16, Value) {
    post(
        &format!("{base}/1.0/transactions"),
        &serde_json::to_value(tx).unwrap(),
    )
}

fn submit_raw(base: &str, body: impl Into<reqwest::blocking::Body>) -> (u16, Value) {
    let r = client()
        .post(format!("{base}/1.0/transactions"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap())
}

/// A refusal: its status and `didState.reason`, which must be `failed`.
fn refusal((status, answer): (u16, Value)) -> (u16, String) {
    assert_eq!(answer["didState"]["state"], "failed", "{answer}");
    (
        status,
        answer["didState"]["reason"].as_str().unwrap().to_string(),
    )
}

#[test]
fn a_client_signed_create_update_and_deactivate_commit_in_one_step_and_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(dir.path());
    let base = daemon.base.clone();

    let (key, did, create) = signed_create(&base);
    let (status, created) = submit(&base, &create);
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["didState"]["state"], "finished", "{created}");
    assert_eq!(created["didState"]["did"], did.as_str());
    assert_eq!(
        created["didRegistrationMetadata"]["txHash"],
        create.hash().to_hex()
    );
    assert_eq!(created["didRegistrationMetadata"]["operation"], "create");
    assert_eq!(created["didDocumentMetadata"]["versionId"], "1");
    let height = created["didRegistrationMetadata"]["height"]
        .as_u64()
        .unwrap();

    // An update names the version it replaces; the same client signs it, in one step too.
    let mut document = sparkid_registrar::api::new_document(&key.public_key(), None).unwrap();
    document["service"] = json!([{"id": format!("{did}#home"), "type": "LinkedDomains",
        "serviceEndpoint": "https://example.com/"}]);
    let update = body(
        &base,
        &key,
        &format!("{did}#key-1"),
        json!({"type": "update", "document": document, "previousVersionId": 1}),
    )
    .sign(&key);
    let (status, updated) = submit(&base, &update);
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        updated["didDocumentMetadata"]["versionId"], "2",
        "{updated}"
    );

    // Another DID, deactivated right after its create: the acknowledged end state must last.
    let (gone_key, gone, gone_create) = signed_create(&base);
    assert_eq!(submit(&base, &gone_create).0, 201);
    let deactivate = body(
        &base,
        &gone_key,
        &format!("{gone}#key-1"),
        json!({"type": "deactivate", "id": gone, "previousVersionId": 1}),
    )
    .sign(&gone_key);
    let (status, deactivated) = submit(&base, &deactivate);
    assert_eq!(status, 200, "{deactivated}");
    assert_eq!(deactivated["didDocumentMetadata"]["deactivated"], true);

    // Acknowledged, then killed without any shutdown: every acknowledged write is on disk.
    daemon.kill9();
    let daemon = Daemon::start(dir.path());
    let base = daemon.base.clone();
    let (status, resolved) = get_json(&format!("{base}/1.0/identifiers/{did}"));
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(
        resolved["didDocumentMetadata"]["versionId"], "2",
        "{resolved}"
    );
    assert_eq!(
        resolved["didDocument"]["service"][0]["serviceEndpoint"],
        "https://example.com/"
    );
    let (_, resolved) = get_json(&format!("{base}/1.0/identifiers/{gone}"));
    assert_eq!(
        resolved["didDocumentMetadata"]["deactivated"], true,
        "{resolved}"
    );
    assert!(chain(&base).1 >= height + 3);

    // The same transaction again is a replay, the same DID again a conflict: neither commits.
    let (status, reason) = refusal(submit(&base, &create));
    assert_eq!(status, 422, "{reason}");
    assert!(reason.contains("already included"), "{reason}");
    let again = body(
        &base,
        &key,
        &format!("{did}#key-1"),
        create.body.operation.clone(),
    )
    .sign(&key);
    let (status, reason) = refusal(submit(&base, &again));
    assert_eq!(status, 409, "{reason}");
    assert!(reason.contains("already exists"), "{reason}");
}

#[test]
fn each_refusal_of_a_submitted_transaction_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_in_process(dir.path(), &[]);
    let base = daemon.base.clone();
    let (key, did, good) = signed_create(&base);
    let good_json = serde_json::to_value(&good).unwrap();

    // Not a signed transaction at all: 400, saying what is expected.
    for (body, says) in [
        ("not json".to_string(), "not a signed transaction"),
        ("[1, 2]".to_string(), "a JSON object"),
        ("{}".to_string(), "missing field"),
        (
            json!({"body": good_json["body"]}).to_string(),
            "missing field `signature`",
        ),
        (
            {
                let mut extra = good_json.clone();
                extra["fee"] = json!(1);
                extra.to_string()
            },
            "unknown field `fee`",
        ),
        (
            {
                let mut bad = good_json.clone();
                bad["signature"] = json!("not base58 !");
                bad.to_string()
            },
            "signature",
        ),
    ] {
        let (status, reason) = refusal(submit_raw(&base, body.clone()));
        assert_eq!(status, 400, "{body}: {reason}");
        assert!(reason.contains(says), "{body}: {reason}");
    }

    // Over the body limit: 413 before anything is parsed.
    let (status, reason) = refusal(submit_raw(&base, vec![b' '; 300 * 1024]));
    assert_eq!(status, 413, "{reason}");

    // A transaction, but one that cannot be committed as it is: 422 with the reason.
    let tampered = {
        let mut tx = good.clone();
        tx.body.valid_until += 1;
        tx
    };
    let bad_nonce = {
        let mut b = good.body.clone();
        b.nonce = "xyz".into();
        b.sign(&key)
    };
    let (chain_id, height) = chain(&base);
    let other_chain = {
        let mut b = good.body.clone();
        b.chain_id = format!("{chain_id}-other");
        b.sign(&key)
    };
    let expired = {
        let mut b = good.body.clone();
        b.valid_until = height; // the next block is height + 1
        b.sign(&key)
    };
    let stranger = PrivateKey::generate();
    let not_self_certifying = {
        let mut b = good.body.clone();
        b.public_key = stranger.public_key().to_encoded();
        b.sign(&stranger)
    };
    let no_previous_version = body(
        &base,
        &key,
        &format!("{did}#key-1"),
        json!({"type": "deactivate", "id": did}),
    )
    .sign(&key);
    let unknown_operation = body(
        &base,
        &key,
        &format!("{did}#key-1"),
        json!({"type": "mint"}),
    )
    .sign(&key);
    for (tx, says) in [
        (&tampered, "signature does not verify"),
        (&bad_nonce, "nonce"),
        (&other_chain, "chain"),
        (&expired, "validUntil"),
        (&not_self_certifying, "derive"),
        (&no_previous_version, "previousVersionId"),
        (&unknown_operation, "mint"),
    ] {
        let (status, reason) = refusal(submit(&base, tx));
        assert_eq!(status, 422, "{says}: {reason}");
        assert!(
            reason.to_lowercase().contains(&says.to_lowercase()),
            "{says}: {reason}"
        );
    }

    // Changing a DID that does not exist: 404, as the registrar routes answer.
    let deactivate_missing = body(
        &base,
        &key,
        &format!("{did}#key-1"),
        json!({"type": "deactivate", "id": did, "previousVersionId": 1}),
    )
    .sign(&key);
    let (status, reason) = refusal(submit(&base, &deactivate_missing));
    assert_eq!(status, 404, "{reason}");

    // None of them committed anything; the good one still does.
    assert_eq!(chain(&base).1, height);
    let (status, created) = submit(&base, &good);
    assert_eq!(status, 201, "{created}");
    daemon.stop();
}
