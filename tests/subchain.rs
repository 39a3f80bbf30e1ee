//! Sub-chains ("1+N") end to end: `did:bid:<ac>:…` written through the registrar of a sub-chain
//! hosted in the daemon and answered from its ledger, a bare `did:bid:<ac>` answered from the
//! AC code's delegation, and recursive resolution through the resolver endpoint that a
//! delegation names, between two spawned daemons.

mod common;

use std::path::Path;

use common::{get, get_json, namespace, sign_and_send, Daemon};
use serde_json::{json, Value};
use sparkid_bid::PrivateKey;

/// Creates a DID on sub-chain `ac` through `base`'s registrar (client-managed): key and DID.
fn create_on(base: &str, ac: &str) -> (PrivateKey, String) {
    common::create_did_on(
        base,
        Some(ac),
        Some(json!({"service": [{"id": "#files", "type": "DIDStorage",
                                  "serviceEndpoint": "https://files.example/"}]})),
    )
}

fn delegate_ac(base: &str, authority: &str, ac: &str, owner: &str, endpoint: &str) {
    namespace(
        base,
        authority,
        &[
            "delegate",
            "--kind",
            "ac",
            "--namespace",
            ac,
            "--owner",
            owner,
            "--endpoint-url",
            endpoint,
        ],
    );
}

/// Saves `answer` and the genesis at `genesis_url`, then runs `sparkid verify` on them:
/// success, and the output.
fn verify_offline(dir: &Path, name: &str, answer: &Value, genesis_url: &str) -> (bool, String) {
    let (status, _, genesis) = get(genesis_url);
    assert_eq!(status, 200, "{genesis}");
    let answer_file = dir.join(format!("{name}.json"));
    let genesis_file = dir.join(format!("{name}-genesis.json"));
    std::fs::write(&answer_file, answer.to_string()).unwrap();
    std::fs::write(&genesis_file, genesis).unwrap();
    common::verify_file(&answer_file, &["--genesis", genesis_file.to_str().unwrap()])
}

fn error_type(result: &Value) -> String {
    result["didResolutionMetadata"]["error"]["type"]
        .as_str()
        .unwrap_or_default()
        .rsplit('#')
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_hosted_sub_chain_answers_its_dids_and_the_main_chain_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = Daemon::start_with(&data, &["--handle", "off", "--subchain", "by01"]);
    let base = d.base.as_str();

    // A write of a by01 DID goes to the sub-chain's registrar and ledger.
    let (_, sub_did) = create_on(base, "by01");
    assert!(sub_did.starts_with("did:bid:by01:ef"), "{sub_did}");
    let (status, r) = get_json(&format!("{base}/1.0/identifiers/{sub_did}"));
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["didDocument"]["id"], sub_did);
    assert_eq!(r["didDocument"]["service"][0]["type"], "DIDStorage");
    assert_eq!(r["didDocumentMetadata"]["versionId"], "1");

    // Its proof is anchored to the sub-chain's ledger, not the main chain's.
    let (status, r) = get_json(&format!("{base}/1.0/identifiers/{sub_did}?proof=true"));
    assert_eq!(status, 200, "{r}");
    let anchor = &r["didResolutionMetadata"]["ledgerProof"]["anchor"]["header"];
    assert_eq!(anchor["chainId"], "sparkid-dev-by01", "{r}");
    // It checks offline against the sub-chain's genesis, and not against the main chain's.
    let sub_genesis = format!("{base}/1.0/genesis?acCode=by01");
    let (ok, out) = verify_offline(dir.path(), "sub", &r, &sub_genesis);
    assert!(ok, "{out}");
    let (ok, out) = verify_offline(dir.path(), "sub-main", &r, &format!("{base}/1.0/genesis"));
    assert!(!ok, "{out}");
    assert!(
        out.contains(
            "the proof's block header is for chain \"sparkid-dev-by01\", the genesis is for chain \"sparkid-dev\""
        ),
        "{out}"
    );
    let (status, _, _) = get(&format!("{base}/1.0/genesis?acCode=zz99"));
    assert_eq!(status, 404);
    let (status, _, _) = get(&format!("{base}/1.0/genesis?acCode=BAD!"));
    assert_eq!(status, 400);

    // The BID protocol door answers it from the same ledger.
    let (status, r) = get_json(&format!("{base}/{sub_did}"));
    assert_eq!(status, 200);
    assert_eq!(r["errorCode"], 0, "{r}");
    assert_eq!(r["data"]["didDocument"]["id"], sub_did);

    // A sub-chain this daemon does not host: its writes are refused, its DIDs not found.
    let (status, r) = sign_and_send(
        &format!("{base}/1.0/create?method=bid"),
        json!({"options": {"clientSecretMode": true}, "didDocument":
            sparkid_registrar::api::new_document_on(
                &PrivateKey::generate().public_key(), Some("zz99".parse().unwrap()), None).unwrap()}),
        &PrivateKey::generate(),
    );
    assert_eq!(status, 400, "{r}");
    assert!(
        r["didState"]["reason"]
            .as_str()
            .unwrap()
            .contains("does not host sub-chain zz99"),
        "{r}"
    );
    let other = sub_did.replacen("by01", "zz99", 1);
    let (status, r) = get_json(&format!("{base}/1.0/identifiers/{other}"));
    assert_eq!(status, 404, "{r}");
    assert_eq!(error_type(&r), "NOT_FOUND");
    assert!(
        r["didResolutionMetadata"]["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("zz99 is not delegated"),
        "{r}"
    );
    let (_, r) = get_json(&format!("{base}/{other}"));
    assert_eq!(r["errorCode"], 10, "{r}");

    // The bare AC code: not found until the main chain's authority delegates it.
    let (status, r) = get_json(&format!("{base}/1.0/identifiers/did:bid:by01"));
    assert_eq!(status, 404, "{r}");
    let (_, r) = get_json(&format!("{base}/did:bid:by01"));
    assert_eq!(r["errorCode"], 10, "{r}");

    let authority = data.join("validator.key").to_string_lossy().to_string();
    let (_, operator) = common::create_did(base, None);
    delegate_ac(
        base,
        &authority,
        "by01",
        &operator,
        "http://by01.example:8080",
    );
    let (status, r) = get_json(&format!("{base}/1.0/identifiers/did:bid:by01"));
    assert_eq!(status, 200, "{r}");
    let doc = &r["didDocument"];
    assert_eq!(doc["id"], "did:bid:by01");
    assert_eq!(doc["controller"], operator);
    assert_eq!(doc["service"][0]["type"], "DIDSubResolver");
    assert_eq!(
        doc["service"][0]["serviceEndpoint"],
        "http://by01.example:8080"
    );
    assert_eq!(r["didDocumentMetadata"]["versionId"], "1");
    let violations =
        sparkid_conformance::resolution::check_resolution_result("did:bid:by01", &r, status);
    assert!(violations.is_empty(), "{violations:?}");

    // BIF clients read the same record natively, DIDSubResolver with the resolver extras.
    let (_, r) = get_json(&format!("{base}/did:bid:by01"));
    assert_eq!(r["errorCode"], 0, "{r}");
    let service = &r["data"]["didDocument"]["service"][0];
    assert_eq!(service["type"], "DIDSubResolver");
    assert_eq!(service["protocol"], 2);
    assert_eq!(r["data"]["didDocument"]["extension"]["type"], 206);

    // With a proof, the delegation itself is proven on the main chain.
    let (status, r) = get_json(&format!("{base}/1.0/identifiers/did:bid:by01?proof=true"));
    assert_eq!(status, 200, "{r}");
    let proof = &r["didResolutionMetadata"]["ledgerProof"];
    assert_eq!(proof["key"], "ns/ac/by01");
    assert_eq!(proof["anchor"]["header"]["chainId"], "sparkid-dev");
    let main_genesis = format!("{base}/1.0/genesis");
    let (ok, out) = verify_offline(dir.path(), "ac", &r, &main_genesis);
    assert!(ok, "{out}");
    // A changed endpoint in the saved answer is caught.
    let mut tampered = r.clone();
    tampered["didDocument"]["service"][0]["serviceEndpoint"] = json!("http://evil.example");
    let (ok, out) = verify_offline(dir.path(), "ac-tampered", &tampered, &main_genesis);
    assert!(!ok && out.contains("serviceEndpoint"), "{out}");
    // So is the BID protocol's native form of the same record.
    let (_, native) = get_json(&format!("{base}/did:bid:by01?proof=true"));
    assert_eq!(native["errorCode"], 0, "{native}");
    let (ok, out) = verify_offline(dir.path(), "ac-native", &native, &main_genesis);
    assert!(ok, "{out}");

    // Internal secret mode (dev) creates on the sub-chain named by options.acCode.
    let (status, r) = common::post(
        &format!("{base}/1.0/create?method=bid"),
        &json!({"options": {"acCode": "by01"}}),
    );
    assert_eq!(status, 201, "{r}");
    let made = r["didState"]["did"].as_str().unwrap();
    assert!(made.starts_with("did:bid:by01:"), "{r}");
    let (status, _) = get_json(&format!("{base}/1.0/identifiers/{made}"));
    assert_eq!(status, 200);
}

#[test]
fn a_delegated_sub_chain_is_resolved_through_its_resolver() {
    let dir = tempfile::tempdir().unwrap();
    // The industry node hosts sub-chain by01; the main-chain resolver only knows the delegation.
    let industry = Daemon::start_with(
        &dir.path().join("industry"),
        &["--handle", "off", "--subchain", "by01"],
    );
    let main_data = dir.path().join("main");
    let main = Daemon::start_with(&main_data, &["--handle", "off"]);
    let (_, sub_did) = create_on(&industry.base, "by01");

    // Before the delegation, the main-chain resolver knows nothing of by01.
    let (status, r) = get_json(&format!("{}/1.0/identifiers/{sub_did}", main.base));
    assert_eq!(status, 404, "{r}");

    let authority = main_data
        .join("validator.key")
        .to_string_lossy()
        .to_string();
    let (_, operator) = common::create_did(&main.base, None);
    delegate_ac(&main.base, &authority, "by01", &operator, &industry.base);

    let (status, r) = get_json(&format!("{}/1.0/identifiers/{sub_did}", main.base));
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["didDocument"]["id"], sub_did);
    assert_eq!(r["didDocumentMetadata"]["versionId"], "1");
    assert_eq!(
        r["didResolutionMetadata"]["subChainResolver"],
        format!("{}/1.0/identifiers/{sub_did}", industry.base),
        "{r}"
    );
    let violations = sparkid_conformance::resolution::check_resolution_result(&sub_did, &r, status);
    assert!(violations.is_empty(), "{violations:?}");

    // Options travel with the request: a version the sub-chain does not have is NOT_FOUND
    // there, and the answer says so.
    let (status, r) = get_json(&format!(
        "{}/1.0/identifiers/{sub_did}?versionId=9",
        main.base
    ));
    assert_eq!(status, 404, "{r}");
    assert_eq!(error_type(&r), "NOT_FOUND");

    // A DID the sub-chain does not hold is NOT_FOUND through the recursion too.
    let missing = format!(
        "did:bid:by01:{}",
        sparkid_bid::Bid::derive(&PrivateKey::generate().public_key(), None)
            .unwrap()
            .to_string()
            .trim_start_matches("did:bid:")
    );
    let (status, r) = get_json(&format!("{}/1.0/identifiers/{missing}", main.base));
    assert_eq!(status, 404, "{r}");
    assert_eq!(error_type(&r), "NOT_FOUND");

    // Two resolvers naming each other for a code neither hosts answer NOT_FOUND, not a loop.
    delegate_ac(&main.base, &authority, "by02", &operator, &industry.base);
    let industry_authority = dir
        .path()
        .join("industry/validator.key")
        .to_string_lossy()
        .to_string();
    let (_, industry_operator) = common::create_did(&industry.base, None);
    delegate_ac(
        &industry.base,
        &industry_authority,
        "by02",
        &industry_operator,
        &main.base,
    );
    let looped = missing.replacen("by01", "by02", 1);
    let (status, r) = get_json(&format!("{}/1.0/identifiers/{looped}", main.base));
    assert_eq!(status, 404, "{r}");
    assert!(
        r["didResolutionMetadata"]["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("does not recurse twice"),
        "{r}"
    );

    // A resolver that is down is an INTERNAL_ERROR naming it, in bounded time.
    drop(industry);
    let (status, r) = get_json(&format!("{}/1.0/identifiers/{sub_did}", main.base));
    assert_eq!(status, 500, "{r}");
    assert!(
        r["didResolutionMetadata"]["error"]["detail"]
            .as_str()
            .unwrap()
            .contains("cannot connect to the resolver of sub-chain by01"),
        "{r}"
    );
}

/// A resolver in front of `upstream` that answers what `upstream` answers with the first
/// service endpoint of the document changed: a sub-chain resolver that lies. (A fault no honest
/// daemon can be made to produce.)
fn lying_resolver(upstream: String) -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .to_string();
            let mut answer: Value = common::client()
                .get(format!("{upstream}{path}"))
                .header("accept", "application/did-resolution")
                .send()
                .and_then(|r| r.json())
                .unwrap_or(Value::Null);
            answer["didDocument"]["service"][0]["serviceEndpoint"] = json!("https://evil.example/");
            let body = answer.to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/did-resolution\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    base
}

#[test]
fn a_sub_chain_anchored_on_the_main_chain_is_checked_against_its_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let main_data = dir.path().join("main");
    let main = Daemon::start_with(&main_data, &["--handle", "off"]);
    let authority = main_data
        .join("validator.key")
        .to_string_lossy()
        .to_string();
    // The AC code's owner holds the key that anchors.
    let (owner_key, owner) = common::create_did(&main.base, None);
    let owner_key_file = dir.path().join("owner.key");
    std::fs::write(&owner_key_file, owner_key.to_encoded()).unwrap();
    // The industry node runs the sub-chain as its own chain: its genesis names the AC code
    // and its own validator, which the main chain learns only from the first anchor.
    let sub_validator = PrivateKey::generate();
    let sub_validator_file = dir.path().join("sub-validator.key");
    std::fs::write(&sub_validator_file, sub_validator.to_encoded()).unwrap();
    let sub_genesis_file = dir.path().join("sub-genesis.json");
    std::fs::write(
        &sub_genesis_file,
        json!({"chainId": "industry-by01", "time": 1_700_000_000u64,
               "validators": [sub_validator.public_key().to_encoded()], "acCode": "by01"})
        .to_string(),
    )
    .unwrap();
    let industry = Daemon::start_with(
        &dir.path().join("industry"),
        &[
            "--handle",
            "off",
            "--genesis",
            sub_genesis_file.to_str().unwrap(),
            "--validator-key",
            sub_validator_file.to_str().unwrap(),
            "--anchor-to",
            &main.base,
            "--anchor-key",
            owner_key_file.to_str().unwrap(),
            "--anchor-interval",
            "1",
        ],
    );
    delegate_ac(&main.base, &authority, "by01", &owner, &industry.base);
    let (_, sub_did) = create_on(&industry.base, "by01");
    // The industry node answers its own chain's DIDs directly.
    let (status, r) = get_json(&format!("{}/1.0/identifiers/{sub_did}", industry.base));
    assert_eq!(status, 200, "{r}");

    // Within a few intervals the main chain holds an anchor of the write's block (height 1),
    // and the main-chain resolver checks the sub-chain's answer against it.
    let url = format!("{}/1.0/identifiers/{sub_did}", main.base);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let r = loop {
        let (status, r) = get_json(&url);
        assert_eq!(status, 200, "{r}");
        let anchor = &r["didResolutionMetadata"]["subChainAnchor"];
        if anchor["checked"] == true && anchor["height"].as_u64() >= Some(1) {
            break r;
        }
        assert!(std::time::Instant::now() < deadline, "never anchored: {r}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    assert_eq!(r["didDocument"]["id"], sub_did);
    // The proof the check needed is not in an answer that did not ask for one ...
    assert!(
        r["didResolutionMetadata"].get("ledgerProof").is_none(),
        "{r}"
    );
    // ... and is in one that did.
    let (status, r) = get_json(&format!("{url}?proof=true"));
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        r["didResolutionMetadata"]["ledgerProof"]["anchor"]["header"]["chainId"],
        "industry-by01"
    );

    // An earlier version has no proof to check: it is passed on, and the answer says so.
    let (status, r) = get_json(&format!("{url}?versionId=1"));
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        r["didResolutionMetadata"]["subChainAnchor"]["checked"],
        false
    );

    // A resolver that changes the document is caught by the anchor check and not served.
    let liar = lying_resolver(industry.base.clone());
    delegate_ac(&main.base, &authority, "by01", &owner, &liar);
    let (status, r) = get_json(&url);
    assert_eq!(status, 500, "{r}");
    let detail = r["didResolutionMetadata"]["error"]["detail"]
        .as_str()
        .unwrap();
    assert!(
        detail.contains("does not hold against the latest anchor")
            && detail.contains("serviceEndpoint"),
        "{detail}"
    );
}
