//! `sparkid conformance --out DIR`: the W3C did-test-suite fixtures it writes are of the suite's
//! shape, cover every required case, pass the suite's rules and the project's DID Core checks,
//! and hold what the daemon really answers.

mod common;

use std::path::Path;
use std::process::Command;

use common::{client, start_in_process, BIN};
use serde_json::Value;
use sparkid_conformance::document::{check_document, Representation};
use sparkid_conformance::dts::{
    check_dereferencer_fixture, check_method_fixture, check_resolver_fixture,
};
use sparkid_conformance::fixtures::EXCHANGES_FILE;

const AC: &str = "cf01";

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().expect("run sparkid");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn load(dir: &Path, name: &str) -> Value {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The outcome names of a fixture's executions, by index.
fn outcome_of(fixture: &Value, index: usize) -> String {
    fixture["expectedOutcomes"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, list)| list.as_array().unwrap().contains(&Value::from(index)))
        .map(|(name, _)| name.clone())
        .unwrap_or_default()
}

/// Checks the files of one run; returns the did:bid method fixture.
fn check_files(dir: &Path) -> Value {
    for method in ["did-bid", "did-key"] {
        let fixture = load(dir, &format!("{method}.json"));
        assert_eq!(fixture["didMethod"], method.replace('-', ":"));
        let violations = [
            check_method_fixture(&fixture),
            check_resolver_fixture(&fixture),
        ]
        .concat();
        assert!(violations.is_empty(), "{method}.json: {violations:?}");
        let deref = load(dir, &format!("dereferencer-{method}.json"));
        let violations = check_dereferencer_fixture(&deref);
        assert!(
            violations.is_empty(),
            "dereferencer-{method}.json: {violations:?}"
        );

        // Every execution kind the suite knows for this method is there.
        let executions = fixture["executions"].as_array().unwrap();
        let kinds: Vec<(String, String)> = executions
            .iter()
            .enumerate()
            .map(|(i, e)| {
                (
                    e["function"].as_str().unwrap().to_string(),
                    outcome_of(&fixture, i),
                )
            })
            .collect();
        for want in [
            ("resolve", "defaultOutcome"),
            ("resolveRepresentation", "defaultOutcome"),
            ("resolve", "invalidDidErrorOutcome"),
        ] {
            assert!(
                kinds.iter().any(|(f, o)| (f.as_str(), o.as_str()) == want),
                "{method}.json lacks {want:?}: {kinds:?}"
            );
        }
        for content_type in ["application/did+json", "application/did+ld+json"] {
            assert!(executions
                .iter()
                .any(|e| e["input"]["resolutionOptions"]["accept"] == content_type));
        }
        let deref_outcomes: Vec<String> = (0..deref["executions"].as_array().unwrap().len())
            .map(|i| outcome_of(&deref, i))
            .collect();
        for want in [
            "defaultOutcome",
            "notFoundErrorOutcome",
            "invalidDidUrlErrorOutcome",
        ] {
            assert!(
                deref_outcomes.iter().any(|o| o == want),
                "dereferencer-{method}.json lacks {want}"
            );
        }

        // The method fixture: each DID in every supported representation, and the documents
        // pass the project's own DID Core checks.
        for did in fixture["dids"].as_array().unwrap() {
            let did = did.as_str().unwrap();
            for (content_type, rep) in [
                ("application/did+json", Representation::Json),
                ("application/did+ld+json", Representation::JsonLd),
            ] {
                let text = fixture[did][content_type]["representation"]
                    .as_str()
                    .unwrap();
                let document: Value = serde_json::from_str(text).unwrap();
                assert_eq!(document["id"], did);
                let violations = check_document(&document, rep);
                assert!(
                    violations.is_empty(),
                    "{did} {content_type}: {violations:?}"
                );
            }
        }
    }
    let bid = load(dir, "did-bid.json");
    let executions = bid["executions"].as_array().unwrap();
    assert!(
        (0..executions.len()).any(|i| outcome_of(&bid, i) == "notFoundErrorOutcome"),
        "no notFound execution"
    );
    let dids: Vec<&str> = bid["dids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(
        dids.iter()
            .any(|d| d.starts_with(&format!("did:bid:{AC}:"))),
        "no sub-chain DID: {dids:?}"
    );
    assert!(
        dids.iter().any(|d| d.split(':').count() == 3),
        "no main-chain DID: {dids:?}"
    );
    // The DID with services; the bare-IP BID resolver service is a URI in DID Core.
    let with_services = dids
        .iter()
        .find(|d| bid[**d]["didDocumentDataModel"]["properties"]["service"].is_array())
        .expect("a DID with services");
    let services = &bid[*with_services]["didDocumentDataModel"]["properties"]["service"];
    let endpoints: Vec<&str> = services
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["serviceEndpoint"].as_str().unwrap())
        .collect();
    assert!(
        endpoints.contains(&"https://192.168.1.23:8080"),
        "{endpoints:?}"
    );
    for parameter in ["service", "relativeRef", "versionId", "versionTime"] {
        assert!(
            bid["didParameters"][parameter].is_string(),
            "didParameters.{parameter}"
        );
    }

    // What the suite's format cannot hold is on record, with the reason.
    let exchanges = load(dir, EXCHANGES_FILE);
    let kept_out: Vec<&Value> = exchanges["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.get("notInDts").is_some())
        .collect();
    assert!(
        kept_out
            .iter()
            .any(|e| e["purpose"] == "resolve (deactivated)" && e["response"]["status"] == 410),
        "the deactivated DID is not on record"
    );
    assert!(kept_out.iter().any(|e| e["response"]["status"] == 406));
    bid
}

#[test]
fn fixtures_hold_what_the_daemon_answers() {
    let dir = tempfile::tempdir().unwrap();
    let d = start_in_process(&dir.path().join("data"), &["--subchain", AC]);
    let out = dir.path().join("fixtures");
    let (ok, stdout, stderr) = run(&[
        "conformance",
        "--out",
        out.to_str().unwrap(),
        "--endpoint",
        &d.base,
        "--ac",
        AC,
    ]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("did-bid.json"), "{stdout}");
    check_files(&out);

    // Every exchange, asked again, gets the same answer: nothing in the files was made up.
    let exchanges = load(&out, EXCHANGES_FILE);
    let http = client();
    let mut asked = 0;
    for e in exchanges["exchanges"].as_array().unwrap() {
        let url = e["request"]["url"].as_str().unwrap();
        let accept = e["request"]["accept"].as_str().unwrap();
        let r = http.get(url).header("accept", accept).send().unwrap();
        assert_eq!(r.status().as_u16(), e["response"]["status"], "{url}");
        assert_eq!(
            r.text().unwrap(),
            e["response"]["body"].as_str().unwrap(),
            "{url} {accept}"
        );
        asked += 1;
    }
    assert!(asked >= 40, "only {asked} exchanges");

    // And the suite's executions are those answers, in its form.
    let bid = load(&out, "did-bid.json");
    for e in bid["executions"].as_array().unwrap() {
        let did = e["input"]["did"].as_str().unwrap();
        let encoded = sparkid_conformance::fixtures::identifier_url(&d.base, did);
        match e["function"].as_str().unwrap() {
            "resolve" => {
                let fresh: Value = http
                    .get(&encoded)
                    .header("accept", "application/did-resolution")
                    .send()
                    .unwrap()
                    .json()
                    .unwrap();
                assert_eq!(e["output"]["didDocument"], fresh["didDocument"], "{did}");
                assert_eq!(
                    e["output"]["didDocumentMetadata"], fresh["didDocumentMetadata"],
                    "{did}"
                );
            }
            _ => {
                let accept = e["input"]["resolutionOptions"]["accept"].as_str().unwrap();
                let r = http.get(&encoded).header("accept", accept).send().unwrap();
                let content_type = r.headers()["content-type"].to_str().unwrap().to_string();
                assert_eq!(
                    e["output"]["didResolutionMetadata"]["contentType"],
                    content_type.as_str()
                );
                assert_eq!(
                    e["output"]["didDocumentStream"],
                    r.text().unwrap().as_str(),
                    "{did} {accept}"
                );
            }
        }
    }
}

#[test]
fn the_command_runs_its_own_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fixtures");
    let (ok, stdout, stderr) = run(&["conformance", "--out", out.to_str().unwrap()]);
    assert!(ok, "{stdout}\n{stderr}");
    let bid = check_files(&out);
    // Its own ledger: the recorded DIDs are gone with it (the daemon was stopped).
    assert!(bid["dids"].as_array().unwrap().len() >= 3);
    let exchanges = load(&out, EXCHANGES_FILE);
    let base = exchanges["resolver"].as_str().unwrap();
    assert!(
        client().get(format!("{base}/healthz")).send().is_err(),
        "the command's daemon outlived it"
    );
}

#[test]
fn a_daemon_that_cannot_serve_a_case_fails_the_command() {
    // No sub-chain hosted: the sub-chain DID cannot be registered, and the command says so.
    let dir = tempfile::tempdir().unwrap();
    let d = start_in_process(&dir.path().join("data"), &[]);
    let out = dir.path().join("fixtures");
    let (ok, stdout, stderr) = run(&[
        "conformance",
        "--out",
        out.to_str().unwrap(),
        "--endpoint",
        &d.base,
        "--ac",
        AC,
    ]);
    assert!(!ok, "{stdout}");
    assert!(stderr.contains(&format!("did:bid:{AC}:")), "{stderr}");
    let (ok, _, stderr) = run(&[
        "conformance",
        "--out",
        out.to_str().unwrap(),
        "--ac",
        "NOPE",
    ]);
    assert!(!ok);
    assert!(stderr.contains("--ac"), "{stderr}");
}
