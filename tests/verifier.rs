//! The verifier door against a spawned daemon: a credential issued by a did:bid DID (signed
//! here with the DID's key, with ssi, as W3C Data Integrity) verifies against the chain; a
//! tampered, expired, misattributed or revocable one fails naming the check; a BIF-format
//! credential (canonical JSON, Ed25519, BIF Base58) verifies too; presentations carry their
//! credentials' results; bad requests get a 400 (413 when too large) problem saying why.

mod common;

use common::{client, deactivate, get_json, sign_and_send, Daemon};
use serde_json::{json, Value};
use sparkid_bid::PrivateKey;
use ssi_claims::data_integrity::{AnySuite, CryptographicSuite, ProofOptions};
use ssi_dids_core::resolution::{self, DIDResolver, Output};
use ssi_dids_core::{document, VerificationMethodDIDResolver, DID};
use ssi_verification_methods::{AnyMethod, ProofPurpose, ReferenceOrOwned, SingleSecretSigner};

/// A did:bid DID created on the daemon for a key made from `seed`.
fn create_did(base: &str, seed: u8) -> (PrivateKey, [u8; 32], String) {
    let seed = [seed; 32];
    let key = PrivateKey::from_seed(seed);
    let doc = sparkid_registrar::api::new_document_on(&key.public_key(), None, None).unwrap();
    let did = doc["id"].as_str().unwrap().to_string();
    let (status, created) = sign_and_send(
        &format!("{base}/1.0/create?method=bid"),
        json!({"options": {"clientSecretMode": true}, "didDocument": doc}),
        &key,
    );
    assert_eq!(status, 201, "{created}");
    (key, seed, did)
}

/// A DID resolver that knows one document (the signer's, as the daemon resolves it).
struct Known(Value);

impl DIDResolver for Known {
    async fn resolve_representation<'a>(
        &'a self,
        _did: &'a DID,
        _options: resolution::Options,
    ) -> Result<Output<Vec<u8>>, resolution::Error> {
        Ok(Output::new(
            serde_json::to_vec(&self.0).unwrap(),
            document::Metadata::default(),
            resolution::Metadata::from_content_type(Some("application/did+json".into())),
        ))
    }
}

/// Signs `unsigned` (a credential, or a presentation when `challenge` is given) with the key
/// `did#key-1` made from `seed`, as a `DataIntegrityProof` of `eddsa-rdfc-2022`.
fn sign(base: &str, did: &str, seed: [u8; 32], unsigned: Value, challenge: Option<&str>) -> Value {
    let (status, resolved) = get_json(&format!("{base}/1.0/identifiers/{did}"));
    assert_eq!(status, 200);
    let resolved = match resolved.get("didDocument") {
        Some(document) => document.clone(),
        None => resolved,
    };
    let document = sparkid_verifier::dids::for_verification("bid", resolved);
    let public = PrivateKey::from_seed(seed).public_key().raw().to_vec();
    let jwk = ssi_jwk::JWK::from(ssi_jwk::Params::OKP(ssi_jwk::OctetParams {
        curve: "Ed25519".into(),
        public_key: ssi_jwk::Base64urlUInt(public),
        private_key: Some(ssi_jwk::Base64urlUInt(seed.to_vec())),
    }));
    let method: ReferenceOrOwned<AnyMethod> =
        ReferenceOrOwned::Reference(iref::IriBuf::new(format!("{did}#key-1")).unwrap());
    // eddsa-rdfc-2022 (W3C VC Data Integrity EdDSA), which verifies with the Multikey the
    // did:bid document holds.
    let suite = AnySuite::EdDsaRdfc2022;
    let resolver = VerificationMethodDIDResolver::<_, AnyMethod>::new(Known(document));
    let signer = SingleSecretSigner::new(jwk).into_local();
    let mut options = ProofOptions::from_method(method);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        match challenge {
            None => {
                let claims: ssi_claims::vc::v2::syntax::JsonCredential =
                    serde_json::from_value(unsigned).unwrap();
                let signed = suite
                    .sign(claims, &resolver, &signer, options)
                    .await
                    .unwrap();
                serde_json::to_value(&signed).unwrap()
            }
            Some(challenge) => {
                options.proof_purpose = ProofPurpose::Authentication;
                options.challenge = Some(challenge.to_string());
                let claims: ssi_claims::vc::v2::syntax::JsonPresentation =
                    serde_json::from_value(unsigned).unwrap();
                let signed = suite
                    .sign(claims, &resolver, &signer, options)
                    .await
                    .unwrap();
                serde_json::to_value(&signed).unwrap()
            }
        }
    })
}

fn credential(issuer: &str, valid_until: &str) -> Value {
    json!({
        "@context": [
            "https://www.w3.org/ns/credentials/v2",
            {"MembershipCredential": "https://schema.org/ProgramMembership",
             "memberOf": "https://schema.org/memberOf"},
        ],
        "id": "urn:uuid:3978344f-8596-4c3a-a978-8fcaba3903c5",
        "type": ["VerifiableCredential", "MembershipCredential"],
        "issuer": issuer,
        "validFrom": "2024-01-01T00:00:00Z",
        "validUntil": valid_until,
        "credentialSubject": {"id": "did:example:member", "memberOf": "sparkid test chain"},
    })
}

/// POSTs `body` to the door: status and answer.
fn verify(base: &str, path: &str, body: &Value) -> (u16, Value) {
    let r = client()
        .post(format!("{base}{path}"))
        .json(body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

fn failed_checks(outcome: &Value) -> Vec<String> {
    outcome["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["check"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn a_did_bid_credential_verifies_and_tampered_or_expired_ones_fail_naming_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("data"));
    let base = &daemon.base;
    let (_, seed, did) = create_did(base, 7);

    let signed = sign(
        base,
        &did,
        seed,
        credential(&did, "2999-01-01T00:00:00Z"),
        None,
    );
    let (status, outcome) = verify(
        base,
        "/credentials/verify",
        &json!({"verifiableCredential": signed}),
    );
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["verified"], true);
    assert_eq!(outcome["checks"], json!(["proof", "expiration", "status"]));
    assert_eq!(outcome["errors"], json!([]));

    // A changed claim: the proof fails, the other checks still pass.
    let mut tampered = signed.clone();
    tampered["credentialSubject"]["memberOf"] = json!("another chain");
    let (status, outcome) = verify(
        base,
        "/credentials/verify",
        &json!({"verifiableCredential": tampered}),
    );
    assert_eq!(status, 400, "{outcome}");
    assert_eq!(outcome["verified"], false);
    assert_eq!(failed_checks(&outcome), vec!["proof"]);
    assert_eq!(
        outcome["errors"][0]["type"],
        "https://www.w3.org/TR/vc-data-model#CRYPTOGRAPHIC_SECURITY_ERROR"
    );
    assert_eq!(outcome["checks"], json!(["expiration", "status"]));

    // Expired, and correctly signed: only the expiration check fails.
    let expired = sign(
        base,
        &did,
        seed,
        credential(&did, "2024-06-01T00:00:00Z"),
        None,
    );
    let (status, outcome) = verify(
        base,
        "/credentials/verify",
        &json!({"verifiableCredential": expired}),
    );
    assert_eq!(status, 400, "{outcome}");
    assert_eq!(failed_checks(&outcome), vec!["expiration"]);
    assert!(
        outcome["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{outcome}"
    );
    assert_eq!(outcome["checks"], json!(["proof", "status"]));

    // Signed by this DID's key but naming another issuer: the proof is not the issuer's.
    let (_, _, other) = create_did(base, 8);
    let misattributed = sign(
        base,
        &did,
        seed,
        credential(&other, "2999-01-01T00:00:00Z"),
        None,
    );
    let (status, outcome) = verify(
        base,
        "/credentials/verify",
        &json!({"verifiableCredential": misattributed}),
    );
    assert_eq!(status, 400, "{outcome}");
    assert_eq!(failed_checks(&outcome), vec!["proof"]);
    assert!(
        outcome["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains(&other),
        "{outcome}"
    );

    // A status list cannot be checked here: the status check fails, unless not asked for.
    let mut revocable = credential(&did, "2999-01-01T00:00:00Z");
    revocable["credentialStatus"] = json!({
        "id": "https://status.example/list#94567", "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation", "statusListIndex": "94567",
        "statusListCredential": "https://status.example/list",
    });
    let revocable = sign(base, &did, seed, revocable, None);
    let (status, outcome) = verify(
        base,
        "/credentials/verify",
        &json!({"verifiableCredential": revocable}),
    );
    assert_eq!(status, 400, "{outcome}");
    assert_eq!(failed_checks(&outcome), vec!["status"]);
    let (status, outcome) = verify(
        base,
        "/credentials/verify",
        &json!({"verifiableCredential": revocable,
                "options": {"checks": ["proof", "expiration"]}}),
    );
    assert_eq!(status, 200, "{outcome}");

    // The issuer's DID deactivated on the chain: its credentials no longer verify.
    let (key9, seed9, did9) = create_did(base, 9);
    let signed9 = sign(
        base,
        &did9,
        seed9,
        credential(&did9, "2999-01-01T00:00:00Z"),
        None,
    );
    let body9 = json!({"verifiableCredential": signed9});
    assert_eq!(verify(base, "/credentials/verify", &body9).0, 200);
    deactivate(base, &did9, &key9);
    let (status, outcome) = verify(base, "/credentials/verify", &body9);
    assert_eq!(status, 400, "{outcome}");
    assert!(
        outcome["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("deactivated"),
        "{outcome}"
    );

    let verified = common::metric(
        base,
        "sparkid_verifications_total{kind=\"credential\",result=\"verified\"}",
    );
    assert_eq!(verified, Some(3.0));
}

#[test]
fn a_bif_format_credential_verifies_against_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("data"));
    let base = &daemon.base;
    let (key, _, did) = create_did(base, 11);

    // BIF's credential attributes (reference/bid.md §6, type 205), signed as BIF signs
    // documents: proof {creator, signatureValue} over the canonical JSON without proof.
    let mut bif = json!({
        "@context": ["https://www.w3.org/2018/credentials/v1"],
        "id": "did:bid:efcredential1",
        "type": ["VerifiableCredential"],
        "issuer": did,
        "issuanceDate": "2024-01-01T00:00:00Z",
        "effectiveDate": "2024-01-01T00:00:00Z",
        "expirationDate": "2999-01-01T00:00:00Z",
        "templateId": "t-1",
        "credentialSubject": {"id": "did:bid:efholder", "name": "名称", "content": "BID文档"},
    });
    sparkid_bid::proof::sign_document(&mut bif, &format!("{did}#key-1"), &key).unwrap();
    let (status, outcome) = verify(
        base,
        "/credentials/verify",
        &json!({"verifiableCredential": bif}),
    );
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["checks"], json!(["proof", "expiration", "status"]));

    let mut tampered = bif.clone();
    tampered["credentialSubject"]["name"] = json!("另一个");
    let (status, outcome) = verify(
        base,
        "/credentials/verify",
        &json!({"verifiableCredential": tampered}),
    );
    assert_eq!(status, 400, "{outcome}");
    assert_eq!(failed_checks(&outcome), vec!["proof"]);
    assert!(
        outcome["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("does not verify"),
        "{outcome}"
    );

    // A key the DID does not have.
    let mut wrong_key = bif.clone();
    wrong_key["proof"]["creator"] = json!(format!("{did}#key-9"));
    let (status, outcome) = verify(
        base,
        "/credentials/verify",
        &json!({"verifiableCredential": wrong_key}),
    );
    assert_eq!(status, 400, "{outcome}");
    assert!(
        outcome["errors"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("#key-9"),
        "{outcome}"
    );

    // Not yet effective: BIF's effectiveDate is checked with the period.
    let mut early = bif.clone();
    early["effectiveDate"] = json!("2999-01-01T00:00:00Z");
    sparkid_bid::proof::sign_document(&mut early, &format!("{did}#key-1"), &key).unwrap();
    let (status, outcome) = verify(
        base,
        "/credentials/verify",
        &json!({"verifiableCredential": early}),
    );
    assert_eq!(status, 400, "{outcome}");
    assert_eq!(failed_checks(&outcome), vec!["expiration"]);
}

#[test]
fn presentations_carry_their_credentials_results_and_bad_requests_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("data"));
    let base = &daemon.base;
    let (_, seed, did) = create_did(base, 21);
    let (_, holder_seed, holder) = create_did(base, 22);
    let vc = sign(
        base,
        &did,
        seed,
        credential(&did, "2999-01-01T00:00:00Z"),
        None,
    );
    let vp = sign(
        base,
        &holder,
        holder_seed,
        json!({
            "@context": ["https://www.w3.org/ns/credentials/v2"],
            "type": ["VerifiablePresentation"],
            "holder": holder,
            "verifiableCredential": [vc],
        }),
        Some("c-123"),
    );
    let (status, outcome) = verify(
        base,
        "/presentations/verify",
        &json!({"verifiablePresentation": vp, "options": {"challenge": "c-123"}}),
    );
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["checks"], json!(["proof"]));
    assert_eq!(outcome["credentialResults"][0]["verified"], true);
    // Another challenge: the presentation's proof fails.
    let (status, outcome) = verify(
        base,
        "/presentations/verify",
        &json!({"verifiablePresentation": vp, "options": {"challenge": "c-999"}}),
    );
    assert_eq!(status, 400, "{outcome}");
    assert_eq!(failed_checks(&outcome), vec!["proof"]);

    // Requests that cannot be read: 400 (413 too large) problems that say why.
    let raw = |body: Vec<u8>| {
        let r = client()
            .post(format!("{base}/credentials/verify"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
        (status, content_type, r.json::<Value>().unwrap())
    };
    let (status, content_type, problem) = raw(b"{not json".to_vec());
    assert_eq!(status, 400);
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(
        problem["type"],
        "https://www.w3.org/TR/vc-data-model#PARSING_ERROR"
    );
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("not a JSON object"));
    for (body, says) in [
        (json!({"credential": {}}), "unknown member"),
        (json!({"verifiableCredential": "eyJhbGciOi"}), "JWT"),
        (json!({"verifiableCredential": []}), "must be a JSON object"),
        (
            json!({"verifiableCredential": {}, "options": {"checks": ["vibes"]}}),
            "vibes",
        ),
    ] {
        let (status, _, problem) = raw(body.to_string().into_bytes());
        assert_eq!(status, 400, "{body}: {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(says),
            "{body}: {problem}"
        );
    }
    let (status, _, problem) = raw(vec![b' '; sparkid_verifier::MAX_REQUEST_BYTES + 1]);
    assert_eq!(status, 413, "{problem}");
    // A credential with no proof is read, and fails its proof check.
    let (status, outcome) = verify(
        base,
        "/credentials/verify",
        &json!({"verifiableCredential": credential(&did, "2999-01-01T00:00:00Z")}),
    );
    assert_eq!(status, 400, "{outcome}");
    assert_eq!(failed_checks(&outcome), vec!["proof"]);
}
