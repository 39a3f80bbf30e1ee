//! OIDs over ORS and Ecodes, both ways, against a spawned `sparkid` daemon: arcs and codes
//! delegated and bound with the `sparkid` CLI, then read over HTTP (`/1.0/oid/{dotted}`,
//! `/1.0/ecode/{code}`), over DNS in the ORS zone (`dig` and dnspython,
//! `tests/ors_client.py`), and back from the DID (`alsoKnownAs` once its controller links them).
//! Bad input is answered with the rule it breaks, by the CLI, the registrar and the doors.

mod common;

use std::path::Path;
use std::process::Command;

use common::{
    cli, dig, dig_status, free_udp_tcp_port, get, get_json, link, namespace, sign_and_send, Daemon,
    BIN,
};
use serde_json::{json, Value};
use sparkid_bid::PrivateKey;

const SERVICE_ZONE: &str = "sparkid.test";
const ARC: &str = "1.2.156.3001";
const OID: &str = "1.2.156.3001.1.7";
/// `OID`'s name in the default ORS zone, written from spec/oid.md's rule by hand: the arcs last
/// first, then `oid.<service zone>`.
const OID_NAME: &str = "7.1.3001.156.2.1.oid.sparkid.test";
const ECODE_PREFIX: &str = "10001";
const ECODE: &str = "100010000001";

/// Runs the `sparkid` CLI, which must fail; its stderr and stdout.
fn cli_fails(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().expect("run sparkid");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!out.status.success(), "sparkid {args:?} succeeded: {text}");
    text
}

fn create(base: &str) -> (String, String) {
    let created = cli(&["did", "create", "--endpoint", base]);
    let did = created["didState"]["did"].as_str().unwrap().to_string();
    let key = created["generatedKey"]["privateKey"]
        .as_str()
        .unwrap()
        .to_string();
    (did, key)
}

fn also_known_as(base: &str, did: &str) -> Vec<String> {
    let (status, r) = get_json(&format!("{base}/1.0/identifiers/{did}?noCache=true"));
    assert_eq!(status, 200, "{r}");
    r["didDocumentMetadata"]["alsoKnownAs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A problem document's status, type and detail.
fn problem(url: &str) -> (u16, String, Value) {
    let (status, content_type, body) = get(url);
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    (status, content_type, body)
}

#[test]
fn oids_resolve_over_http_and_ors_and_back_from_the_did() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_tcp_port();
    let listen = format!("127.0.0.1:{port}");
    let d = Daemon::start_with(
        dir.path(),
        &[
            "--dns",
            &listen,
            "--service-zone",
            SERVICE_ZONE,
            "--handle",
            "off",
        ],
    );
    let base = d.base.clone();
    let authority = dir.path().join("validator.key");
    let authority = authority.to_str().unwrap();
    let (owner, owner_key) = create(&base);
    let (subject, subject_key) = create(&base);

    // The CLI contract.
    namespace(
        &base,
        authority,
        &[
            "delegate",
            "--kind",
            "oid",
            "--namespace",
            ARC,
            "--owner",
            &owner,
        ],
    );
    namespace(
        &base,
        &owner_key,
        &[
            "bind",
            "--kind",
            "oid",
            "--identifier",
            OID,
            "--did",
            &subject,
        ],
    );

    // Identifier → DID over HTTP, as dotted decimal and as its URN.
    for spelling in [OID.to_string(), format!("urn:oid:{OID}")] {
        let (status, record) = get_json(&format!("{base}/1.0/oid/{spelling}"));
        assert_eq!(status, 200, "{record}");
        assert_eq!(record["did"], subject.as_str());
        assert_eq!(record["identifier"], OID);
        assert_eq!(record["namespace"], ARC);
        assert_eq!(record["owner"], owner.as_str());
        assert_eq!(record["uri"], format!("urn:oid:{OID}"));
        assert_eq!(
            record["didResolution"],
            format!("{base}/1.0/identifiers/{subject}")
        );
    }
    // Namespaces cover at arc boundaries: 1.2.156.30011 is not under 1.2.156.3001.
    let (status, _, body) = problem(&format!("{base}/1.0/oid/1.2.156.30011.1"));
    assert_eq!(status, 404, "{body}");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("no delegated oid namespace covers 1.2.156.30011.1"));
    let refused = cli_fails(&[
        "namespace",
        "bind",
        "--endpoint",
        &base,
        "--key",
        &owner_key,
        "--kind",
        "oid",
        "--identifier",
        "1.2.156.30011.1",
        "--did",
        &subject,
    ]);
    assert!(
        refused.contains("no delegated oid namespace covers 1.2.156.30011.1"),
        "{refused}"
    );
    let (status, _, body) = problem(&format!("{base}/1.0/oid/{ARC}.1.8"));
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["namespace"], ARC, "{body}");

    // Bad OIDs: 400 problems naming the rule, from the door and from the registrar.
    for (bad, rule) in [
        ("1.2.0156.1", "leading zero"),
        ("1.40.1", "second arc is at most 39"),
        ("3.1", "first arc is 0, 1 or 2"),
        ("1.2.x", "not a decimal number"),
        ("1..2", "single dots"),
    ] {
        let (status, content_type, body) = problem(&format!("{base}/1.0/oid/{bad}"));
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(content_type.starts_with("application/problem+json"));
        assert!(
            body["detail"].as_str().unwrap_or_default().contains(rule),
            "{bad}: {body}"
        );
    }
    let long = format!("1.2.{}", "1.".repeat(60));
    let (status, _, body) = problem(&format!("{base}/1.0/oid/{long}1"));
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("at most 100 bytes"));
    let owner_private = PrivateKey::from_encoded(&owner_key).unwrap();
    let (status, answer) = sign_and_send(
        &format!("{base}/1.0/namespaces"),
        json!({"operation": {"type": "bind", "kind": "oid", "identifier": "1.2.156.3001.01", "did": subject},
               "options": {"signer": format!("{owner}#key-1")}}),
        &owner_private,
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["didState"]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("leading zero"),
        "{answer}"
    );

    // DID → identifier: only once its controller links it.
    assert!(!also_known_as(&base, &subject).contains(&format!("urn:oid:{OID}")));
    link(&base, &subject, &subject_key, "oid", OID);
    assert!(
        also_known_as(&base, &subject).contains(&format!("urn:oid:{OID}")),
        "{:?}",
        also_known_as(&base, &subject)
    );

    // ORS over DNS: NAPTR at the reversed arcs, with dig.
    let resolver = format!("{base}/1.0/identifiers/{subject}");
    let out = dig(port, &[OID_NAME, "NAPTR"]);
    assert_eq!(dig_status(&out), "NOERROR", "{out}");
    assert!(
        out.contains(&format!(
            "NAPTR 100 10 \"U\" \"ORS+UINF\" \"!^.*$!{subject}!\" ."
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "NAPTR 100 20 \"U\" \"ORS+UINF\" \"!^.*$!{resolver}!\" ."
        )),
        "{out}"
    );
    let out = dig(port, &[OID_NAME, "TXT"]);
    assert!(out.contains(&format!("\"oid={OID}\"")), "{out}");
    let out = dig(port, &["8.1.3001.156.2.1.oid.sparkid.test", "NAPTR"]);
    assert_eq!(dig_status(&out), "NXDOMAIN", "{out}");
    let out = dig(port, &["3001.156.2.1.oid.sparkid.test", "NAPTR"]);
    assert_eq!(dig_status(&out), "NOERROR", "an empty non-terminal: {out}");
    assert!(out.contains("ANSWER: 0"), "{out}");
    // The DID's own name lists the linked OID.
    let did_name = sparkid_bridges::dns::ServiceZone::new(SERVICE_ZONE)
        .unwrap()
        .did_name(&subject)
        .unwrap();
    let out = dig(port, &[&did_name, "TXT"]);
    assert!(out.contains(&format!("\"aka=urn:oid:{OID}\"")), "{out}");

    // The same with dnspython, over UDP and TCP.
    let args = json!({
        "server": "127.0.0.1", "port": port, "zone": SERVICE_ZONE, "name": OID_NAME, "oid": OID,
        "did": subject, "resolver": resolver, "nx": "8.1.3001.156.2.1.oid.sparkid.test",
        "ent": "1.3001.156.2.1.oid.sparkid.test",
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/ors_client.py");
    let python = std::env::var("SPARKID_DNS_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(&script)
        .arg(args.to_string())
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ors_client.py: {stdout}\n{}\n(dnspython is installed by ./scripts/test)",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("checks passed"), "{stdout}");

    // Unbound: the name is gone from DNS and HTTP.
    namespace(
        &base,
        &owner_key,
        &["unbind", "--kind", "oid", "--identifier", OID],
    );
    let out = dig(port, &[OID_NAME, "NAPTR"]);
    assert_eq!(dig_status(&out), "NXDOMAIN", "{out}");
    let (status, _, body) = problem(&format!("{base}/1.0/oid/{OID}"));
    assert_eq!(status, 404, "{body}");
}

#[test]
fn ecodes_resolve_over_http_and_back_and_v0_goes_to_gs1() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(dir.path(), &["--handle", "off"]);
    let base = d.base.clone();
    let authority = dir.path().join("validator.key");
    let authority = authority.to_str().unwrap();
    let (owner, owner_key) = create(&base);
    let (subject, subject_key) = create(&base);

    namespace(
        &base,
        authority,
        &[
            "delegate",
            "--kind",
            "ecode",
            "--namespace",
            ECODE_PREFIX,
            "--owner",
            &owner,
        ],
    );
    namespace(
        &base,
        &owner_key,
        &[
            "bind",
            "--kind",
            "ecode",
            "--identifier",
            ECODE,
            "--did",
            &subject,
        ],
    );
    let (status, record) = get_json(&format!("{base}/1.0/ecode/{ECODE}"));
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["did"], subject.as_str());
    assert_eq!(record["namespace"], ECODE_PREFIX);
    assert_eq!(record["version"], "V1");
    assert_eq!(record["uri"], format!("ecode:{ECODE}"));
    let (status, _, body) = problem(&format!("{base}/1.0/ecode/100020000001"));
    assert_eq!(status, 404, "{body}");

    // V0 is a GS1 key (spec/ecode.md): the door answers from the GS1 binding of `0` ‖ GTIN
    // (here no GS1 Company Prefix covers it: 404 naming the key); a V0 code that is not one is
    // refused saying what public text does not confirm; the CLI refuses to bind it as an Ecode,
    // pointing at --kind gs1.
    let (status, content_type, body) = problem(&format!("{base}/1.0/ecode/06901234567892"));
    assert_eq!(status, 404, "{body}");
    assert!(content_type.starts_with("application/problem+json"));
    assert_eq!(body["gs1"], "/01/06901234567892", "{body}");
    let (status, _, body) = problem(&format!("{base}/1.0/ecode/0690123"));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("not in public text"),
        "{body}"
    );
    let refused = cli_fails(&[
        "namespace",
        "bind",
        "--endpoint",
        &base,
        "--key",
        &owner_key,
        "--kind",
        "ecode",
        "--identifier",
        "06901234567892",
        "--did",
        &subject,
    ]);
    assert!(refused.contains("--kind gs1"), "{refused}");
    // What public text cannot validate is refused, saying so.
    for (bad, rule) in [
        ("1000A0001", "not in public text"),
        ("7000100", "versions public text names"),
        ("10", "at least 3 characters"),
    ] {
        let (status, _, body) = problem(&format!("{base}/1.0/ecode/{bad}"));
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["detail"].as_str().unwrap_or_default().contains(rule),
            "{bad}: {body}"
        );
    }

    // DID → Ecode once linked.
    assert!(!also_known_as(&base, &subject).contains(&format!("ecode:{ECODE}")));
    link(&base, &subject, &subject_key, "ecode", ECODE);
    assert!(
        also_known_as(&base, &subject).contains(&format!("ecode:{ECODE}")),
        "{:?}",
        also_known_as(&base, &subject)
    );
}

#[test]
fn a_configured_ors_zone_outside_the_service_zone_is_a_zone_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_tcp_port();
    let listen = format!("127.0.0.1:{port}");
    let d = Daemon::start_with(
        dir.path(),
        &[
            "--dns",
            &listen,
            "--service-zone",
            SERVICE_ZONE,
            "--ors-zone",
            "ORS.Example.",
            "--handle",
            "off",
        ],
    );
    let base = d.base.clone();
    let authority = dir.path().join("validator.key");
    let (owner, owner_key) = create(&base);
    let (subject, _) = create(&base);
    namespace(
        &base,
        authority.to_str().unwrap(),
        &[
            "delegate",
            "--kind",
            "oid",
            "--namespace",
            "2.16.156",
            "--owner",
            &owner,
        ],
    );
    namespace(
        &base,
        &owner_key,
        &[
            "bind",
            "--kind",
            "oid",
            "--identifier",
            "2.16.156.101818.102.1",
            "--did",
            &subject,
        ],
    );
    // The name the Chinese ORS client in spec/oid.md's sources would ask, under this zone.
    let out = dig(port, &["1.102.101818.156.16.2.ors.example", "NAPTR"]);
    assert_eq!(dig_status(&out), "NOERROR", "{out}");
    assert!(
        out.contains(&format!(
            "NAPTR 100 10 \"U\" \"ORS+UINF\" \"!^.*$!{subject}!\" ."
        )),
        "{out}"
    );
    // Its own apex: SOA and NS there, and the negative answers carry its SOA.
    let out = dig(port, &["ors.example", "SOA"]);
    assert_eq!(dig_status(&out), "NOERROR", "{out}");
    assert!(
        out.contains("ors.example. 3600 IN SOA ns1.sparkid.test."),
        "{out}"
    );
    let out = dig(port, &["2.102.101818.156.16.2.ors.example", "NAPTR"]);
    assert_eq!(dig_status(&out), "NXDOMAIN", "{out}");
    assert!(out.contains("ors.example. 60 IN SOA"), "{out}");
    // The OID's service-zone name (spec/dns.md) answers the same records, in the service zone.
    let out = dig(port, &["1.102.101818.156.16.2.oid.sparkid.test", "NAPTR"]);
    assert_eq!(dig_status(&out), "NOERROR", "{out}");
    assert!(
        out.contains(&format!(
            "NAPTR 100 10 \"U\" \"ORS+UINF\" \"!^.*$!{subject}!\" ."
        )),
        "{out}"
    );
    let out = dig(port, &["2.102.101818.156.16.2.oid.sparkid.test", "NAPTR"]);
    assert_eq!(dig_status(&out), "NXDOMAIN", "{out}");
    assert!(out.contains("sparkid.test. 60 IN SOA"), "{out}");
}
