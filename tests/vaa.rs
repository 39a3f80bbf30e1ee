//! VAA over HTTP, both ways, against a spawned daemon: `GET /1.0/vaa/{code}` to a code's record
//! and DID, and a DID's resolution listing its bound codes (and handles) in
//! `didDocumentMetadata.alsoKnownAs`. Data is set up with the `sparkid` CLI.

mod common;

use common::{cli, get, get_json, namespace, start_in_process};
use serde_json::{json, Value};

/// `did create` through the CLI: the DID and its new private key.
fn create(base: &str) -> (String, String) {
    let out = cli(&["did", "create", "--endpoint", base]);
    (
        out["didState"]["did"].as_str().unwrap().to_string(),
        out["generatedKey"]["privateKey"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

fn also_known_as(base: &str, did: &str) -> Vec<String> {
    let (status, r) = get_json(&format!("{base}/1.0/identifiers/{did}"));
    assert_eq!(status, 200, "{r}");
    r["didDocumentMetadata"]["alsoKnownAs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn vaa_codes_resolve_to_dids_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = start_in_process(&data, &["--handle", "off"]);
    let base = d.base.as_str();
    let authority = data.join("validator.key").to_string_lossy().to_string();
    let (maker, maker_key) = create(base);
    let (plant, plant_key) = create(base);
    let (pump, pump_key) = create(base);

    // The authority delegates VAA12 to a maker and the longer VAA1234 to one of its plants.
    namespace(
        base,
        &authority,
        &[
            "delegate",
            "--kind",
            "vaa",
            "--namespace",
            "VAA12",
            "--owner",
            &maker,
        ],
    );
    namespace(
        base,
        &authority,
        &[
            "delegate",
            "--kind",
            "vaa",
            "--namespace",
            "VAA1234",
            "--owner",
            &plant,
        ],
    );
    namespace(
        base,
        &plant_key,
        &[
            "bind",
            "--kind",
            "vaa",
            "--identifier",
            "VAA1234PUMP0007",
            "--did",
            &pump,
        ],
    );
    namespace(
        base,
        &maker_key,
        &[
            "bind",
            "--kind",
            "vaa",
            "--identifier",
            "VAA129X",
            "--did",
            &pump,
        ],
    );
    namespace(
        base,
        &authority,
        &[
            "delegate",
            "--kind",
            "handle",
            "--namespace",
            "86.100",
            "--owner",
            &maker,
        ],
    );
    namespace(
        base,
        &maker_key,
        &[
            "bind",
            "--kind",
            "handle",
            "--identifier",
            "86.100/pump-7",
            "--did",
            &pump,
        ],
    );

    // Code to record and DID, under the longest delegated prefix.
    let (status, ct, text) = get(&format!("{base}/1.0/vaa/VAA1234PUMP0007"));
    assert_eq!(status, 200, "{text}");
    assert!(ct.starts_with("application/json"), "{ct}");
    let record: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(record["code"], "VAA1234PUMP0007");
    assert_eq!(record["companyPrefix"], "VAA1234");
    assert_eq!(record["chain"], "main");
    assert_eq!(record["did"], json!(pump));
    assert_eq!(record["owner"], json!(plant));
    assert_eq!(record["versionId"], "1");
    assert!(record["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(record["created"], record["updated"]);
    assert!(record["height"].as_u64().unwrap() > 0);
    assert_eq!(
        record["didResolution"],
        json!(format!("{base}/1.0/identifiers/{pump}"))
    );
    let (_, r) = get_json(&format!("{base}/1.0/vaa/VAA129X"));
    assert_eq!(
        (r["companyPrefix"].clone(), r["did"].clone()),
        (json!("VAA12"), json!(pump))
    );

    // DID back to its codes (and handle), sorted, in the resolution's document metadata: once
    // the DID's controller has confirmed them (before, the bindings resolve forward only).
    assert!(also_known_as(base, &pump).is_empty());
    for (kind, identifier) in [
        ("vaa", "VAA1234PUMP0007"),
        ("vaa", "VAA129X"),
        ("handle", "86.100/pump-7"),
    ] {
        common::link(base, &pump, &pump_key, kind, identifier);
    }
    assert_eq!(
        also_known_as(base, &pump),
        ["vaa:VAA1234PUMP0007", "vaa:VAA129X", "hdl:86.100/pump-7"]
    );
    assert!(also_known_as(base, &maker).is_empty());

    // Malformed codes: 400, naming the rule.
    for (code, rule) in [
        ("vaa1234pump", "upper-case A-Z and 0-9"),
        ("VAA-1234", "upper-case A-Z and 0-9"),
        ("ABC1234", "issuing agency code VAA"),
        (&*format!("VAA{}", "7".repeat(62)), "at most 64"),
    ] {
        let (status, ct, text) = get(&format!("{base}/1.0/vaa/{code}"));
        assert_eq!(status, 400, "{code}: {text}");
        assert_eq!(ct, "application/problem+json");
        let p: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(p["type"], "urn:sparkid:problem:invalid-identifier");
        assert_eq!(p["status"], 400);
        assert!(p["detail"].as_str().unwrap().contains(rule), "{code}: {p}");
    }

    // Unknown: no prefix covers it; or the prefix binds nothing to it.
    let (status, p) = get_json(&format!("{base}/1.0/vaa/VAA99999"));
    assert_eq!(status, 404);
    assert_eq!(p["type"], "urn:sparkid:problem:not-found");
    let (status, p) = get_json(&format!("{base}/1.0/vaa/VAA1234NOPE"));
    assert_eq!(status, 404);
    assert_eq!(p["companyPrefix"], "VAA1234");

    // Unbound: gone both ways.
    namespace(
        base,
        &plant_key,
        &["unbind", "--kind", "vaa", "--identifier", "VAA1234PUMP0007"],
    );
    let (status, _) = get_json(&format!("{base}/1.0/vaa/VAA1234PUMP0007"));
    assert_eq!(status, 404);
    assert_eq!(
        also_known_as(base, &pump),
        ["vaa:VAA129X", "hdl:86.100/pump-7"]
    );
}

#[test]
fn a_prefix_held_by_a_sub_chain_is_a_referral() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let d = start_in_process(&data, &["--handle", "off"]);
    let base = d.base.as_str();
    let authority = data.join("validator.key").to_string_lossy().to_string();
    let (operator, _) = create(base);
    namespace(
        base,
        &authority,
        &[
            "delegate",
            "--kind",
            "ac",
            "--namespace",
            "abcd",
            "--owner",
            &operator,
            "--endpoint-url",
            "https://abcd.resolver.example/",
        ],
    );
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
            &operator,
            "--chain",
            "abcd",
        ],
    );
    namespace(
        base,
        &authority,
        &[
            "delegate",
            "--kind",
            "vaa",
            "--namespace",
            "VAA88",
            "--owner",
            &operator,
            "--chain",
            "wxyz",
        ],
    );
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .get(format!("{base}/1.0/vaa/VAA77ITEM"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(
        r.headers()["location"],
        "https://abcd.resolver.example/1.0/vaa/VAA77ITEM"
    );
    let p: Value = r.json().unwrap();
    assert_eq!(p["type"], "urn:sparkid:problem:referral");
    assert_eq!(p["chain"], "abcd");
    // A chain this ledger names no endpoint for: 404, with the chain.
    let (status, p) = get_json(&format!("{base}/1.0/vaa/VAA88ITEM"));
    assert_eq!(status, 404);
    assert_eq!(p["chain"], "wxyz");
}
