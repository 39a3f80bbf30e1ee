//! The DNS door against real clients: a spawned `sparkid` daemon with `--dns`, DIDs, a DNS
//! zone delegated on the ledger and bindings made with the `sparkid` CLI, then queried with
//! `dig` (BIND's dnsutils) and with dnspython (`tests/dns_client.py`). `scripts/test` installs
//! both.

mod common;

use std::path::Path;
use std::process::Command;

use common::{cli, free_udp_tcp_port, get_json, sign_and_send, Daemon};
use serde_json::{json, Value};
use sparkid_bid::PrivateKey;
use sparkid_bridges::dns::ServiceZone;

const ZONE: &str = "example.com";
const SERVICE_ZONE: &str = "sparkid.test";

struct Dig {
    port: u16,
}

impl Dig {
    /// `dig @127.0.0.1 -p <port> +norec <args>`: the whole output.
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("dig")
            .args([
                "@127.0.0.1",
                "-p",
                &self.port.to_string(),
                "+norec",
                "+time=3",
            ])
            .args(["+tries=1"])
            .args(args)
            .output()
            .expect("dig is not installed: run ./scripts/test, which installs dnsutils");
        // dig aligns columns with tabs or spaces depending on the name's length: one space.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn status(output: &str) -> &str {
        output
            .split("status: ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .unwrap_or_else(|| panic!("no status in {output}"))
    }

    fn flags(output: &str) -> Vec<String> {
        let line = output
            .lines()
            .find(|l| l.contains(";; flags:"))
            .unwrap_or_else(|| panic!("no flags in {output}"));
        let flags = line.split(";; flags:").nth(1).unwrap_or_default();
        flags
            .split(';')
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// The serial of the zone's SOA.
    fn serial(&self, zone: &str) -> u64 {
        let out = self.run(&["+short", zone, "SOA"]);
        out.split_whitespace()
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no SOA serial in {out:?}"))
    }
}

fn height(base: &str) -> u64 {
    let (_, health) = get_json(&format!("{base}/healthz"));
    health["height"].as_u64().unwrap()
}

fn bind(base: &str, owner_key: &str, identifier: &str, did: &str) -> Value {
    cli(&[
        "namespace",
        "bind",
        "--endpoint",
        base,
        "--key",
        owner_key,
        "--kind",
        "dns",
        "--identifier",
        identifier,
        "--did",
        did,
    ])
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

#[test]
fn dns_door_answers_dig_and_dnspython() {
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
    let dig = Dig { port };

    // DIDs, a delegated zone and a binding, all through the CLI.
    let (owner, owner_key) = create(&base);
    let (subject, subject_key) = create(&base);
    let authority_key = dir.path().join("validator.key");
    cli(&[
        "namespace",
        "delegate",
        "--endpoint",
        &base,
        "--key",
        authority_key.to_str().unwrap(),
        "--kind",
        "dns",
        "--namespace",
        ZONE,
        "--owner",
        &owner,
    ]);
    bind(&base, &owner_key, "Pump.Example.com", &subject);
    // The subject's controller confirms the name, so that it shows on the DID's side too (aka).
    cli(&[
        "did",
        "link",
        "--endpoint",
        &base,
        "--did",
        &subject,
        "--key",
        &subject_key,
        "--kind",
        "dns",
        "--identifier",
        "pump.example.com",
    ]);

    // _did URI and TXT.
    let out = dig.run(&["_did.pump.example.com", "URI"]);
    assert_eq!(Dig::status(&out), "NOERROR", "{out}");
    assert!(Dig::flags(&out).contains(&"aa".to_string()), "{out}");
    assert!(out.contains(&format!("URI 1 0 \"{subject}\"")), "{out}");
    let out = dig.run(&["_did.pump.example.com", "TXT"]);
    assert!(out.contains(&format!("\"did={subject}\"")), "{out}");
    assert!(
        out.contains(&format!("\"resolver={base}/1.0/identifiers/{subject}\"")),
        "{out}"
    );

    // SOA and NS at the apex; the serial is the ledger height.
    let out = dig.run(&[ZONE, "SOA"]);
    assert_eq!(Dig::status(&out), "NOERROR", "{out}");
    assert!(
        out.contains("SOA ns1.sparkid.test. hostmaster.sparkid.test."),
        "{out}"
    );
    assert_eq!(dig.serial(ZONE), height(&base));
    let out = dig.run(&[ZONE, "NS"]);
    assert!(out.contains("NS ns1.sparkid.test."), "{out}");
    let out = dig.run(&[SERVICE_ZONE, "NS"]);
    assert!(out.contains("NS ns1.sparkid.test."), "{out}");
    assert!(out.contains("ns1.sparkid.test. 60 IN A 127.0.0.1"), "{out}");

    // NXDOMAIN versus NODATA (other type; empty non-terminal), REFUSED outside.
    let out = dig.run(&["_did.valve.example.com", "URI"]);
    assert_eq!(Dig::status(&out), "NXDOMAIN", "{out}");
    assert!(out.contains("AUTHORITY: 1"), "{out}");
    let out = dig.run(&["_did.pump.example.com", "A"]);
    assert_eq!(Dig::status(&out), "NOERROR", "{out}");
    assert!(
        out.contains("ANSWER: 0") && out.contains("AUTHORITY: 1"),
        "{out}"
    );
    let out = dig.run(&["pump.example.com", "TXT"]);
    assert_eq!(Dig::status(&out), "NOERROR", "{out}");
    assert!(out.contains("ANSWER: 0"), "{out}");
    let out = dig.run(&["example.org", "SOA"]);
    assert_eq!(Dig::status(&out), "REFUSED", "{out}");

    // The service zone: a DID's name answers the DID and its resolver URL.
    let service = ServiceZone::new(SERVICE_ZONE).unwrap();
    let subject_name = service.did_name(&subject).unwrap();
    let out = dig.run(&[&subject_name, "URI"]);
    assert!(out.contains(&format!("URI 1 0 \"{subject}\"")), "{out}");
    assert!(
        out.contains(&format!("URI 10 0 \"{base}/1.0/identifiers/{subject}\"")),
        "{out}"
    );
    let out = dig.run(&[&subject_name, "TXT"]);
    assert!(out.contains("\"aka=dns:pump.example.com\""), "{out}");
    let unknown = service
        .did_name(
            &sparkid_bid::Bid::derive(&PrivateKey::generate().public_key(), None)
                .unwrap()
                .to_string(),
        )
        .unwrap();
    assert_eq!(Dig::status(&dig.run(&[&unknown, "URI"])), "NXDOMAIN");
    assert_eq!(
        Dig::status(&dig.run(&[&format!("did.{SERVICE_ZONE}"), "TXT"])),
        "NOERROR"
    );

    // VAA codes and Handles bound on the ledger have names in the service zone too.
    let delegate = |kind: &str, namespace: &str| {
        cli(&[
            "namespace",
            "delegate",
            "--endpoint",
            &base,
            "--key",
            authority_key.to_str().unwrap(),
            "--kind",
            kind,
            "--namespace",
            namespace,
            "--owner",
            &owner,
        ])
    };
    let bind_kind = |kind: &str, identifier: &str| {
        cli(&[
            "namespace",
            "bind",
            "--endpoint",
            &base,
            "--key",
            &owner_key,
            "--kind",
            kind,
            "--identifier",
            identifier,
            "--did",
            &subject,
        ])
    };
    delegate("vaa", "VAA1234");
    bind_kind("vaa", "VAA1234X9");
    delegate("handle", "86.100");
    bind_kind("handle", "86.100.1/Pump 7");
    let long_handle = format!("86.100/{}", "泵".repeat(80));
    bind_kind("handle", &long_handle);
    let vaa_name = service.vaa_name("VAA1234X9").unwrap();
    assert_eq!(vaa_name, "vaa1234x9.vaa.sparkid.test");
    let out = dig.run(&[&vaa_name, "TXT"]);
    assert!(out.contains(&format!("\"did={subject}\"")), "{out}");
    assert!(out.contains("\"vaa=VAA1234X9\""), "{out}");
    let handle_name = service.handle_name("86.100.1/Pump 7").unwrap();
    assert_eq!(handle_name, "pumpx207._.1.100.86.handle.sparkid.test");
    let out = dig.run(&[&handle_name, "URI"]);
    assert!(out.contains(&format!("URI 1 0 \"{subject}\"")), "{out}");
    let out = dig.run(&[&handle_name, "TXT"]);
    assert!(out.contains("\"hdl=86.100.1/pump 7\""), "{out}");
    let hashed = service.handle_name(&long_handle).unwrap();
    assert!(hashed.contains("._hash.handle."), "{hashed}");
    let out = dig.run(&[&hashed, "TXT"]);
    assert!(out.contains(&format!("\"did={subject}\"")), "{out}");
    // Empty non-terminals of the Handle tree exist; a sibling does not.
    assert_eq!(
        Dig::status(&dig.run(&["1.100.86.handle.sparkid.test", "TXT"])),
        "NOERROR"
    );
    assert_eq!(
        Dig::status(&dig.run(&["pump8._.1.100.86.handle.sparkid.test", "TXT"])),
        "NXDOMAIN"
    );

    // A new bind moves the serial and changes the answer at once.
    let before = dig.serial(ZONE);
    let answer = bind(&base, &owner_key, "pump.example.com", &owner);
    assert_eq!(answer["didState"]["state"], "finished", "{answer}");
    let out = dig.run(&["+short", "_did.pump.example.com", "URI"]);
    assert_eq!(out.trim(), format!("1 0 \"{owner}\""));
    let after = dig.serial(ZONE);
    assert!(after > before, "serial {before} -> {after}");
    assert_eq!(after, height(&base));
    // An unbind: the name is gone (NXDOMAIN), and so is its empty non-terminal parent.
    cli(&[
        "namespace",
        "unbind",
        "--endpoint",
        &base,
        "--key",
        &owner_key,
        "--kind",
        "dns",
        "--identifier",
        "pump.example.com",
    ]);
    assert_eq!(
        Dig::status(&dig.run(&["_did.pump.example.com", "URI"])),
        "NXDOMAIN"
    );
    assert_eq!(
        Dig::status(&dig.run(&["pump.example.com", "TXT"])),
        "NXDOMAIN"
    );
    bind(&base, &owner_key, "pump.example.com", &subject);

    // Many names bound to one DID make its service-zone TXT answer larger than any UDP answer.
    let owner_private = PrivateKey::from_encoded(&owner_key).unwrap();
    let kid = format!("{owner}#key-1");
    let aliases = 45;
    for i in 0..aliases {
        let (status, answer) = sign_and_send(
            &format!("{base}/1.0/namespaces"),
            json!({
                "operation": {"type": "bind", "kind": "dns", "identifier": format!("n{i}.deep.{ZONE}"), "did": subject},
                "options": {"signer": kid, "publicKeyHex": owner_private.public_key().to_encoded(), "clientSecretMode": true},
            }),
            &owner_private,
        );
        assert!(status < 300, "{status} {answer}");
    }
    // The subject confirms them all at once, by listing them in its document's alsoKnownAs.
    let (_, native) = get_json(&format!("{base}/{subject}"));
    let mut document = native["data"]["didDocument"].clone();
    document["alsoKnownAs"] = (0..aliases)
        .map(|i| json!({"type": 103, "id": format!("n{i}.deep.{ZONE}")}))
        .collect();
    let (status, answer) = sign_and_send(
        &format!("{base}/1.0/update"),
        json!({"did": subject, "didDocument": document}),
        &PrivateKey::from_encoded(&subject_key).unwrap(),
    );
    assert_eq!(status, 200, "{answer}");
    let out = dig.run(&["+noedns", "+ignore", &subject_name, "TXT"]);
    assert!(Dig::flags(&out).contains(&"tc".to_string()), "{out}");
    assert!(out.contains("ANSWER: 0"), "{out}");
    let out = dig.run(&["+noedns", &subject_name, "TXT"]);
    assert!(out.contains("Truncated, retrying in TCP mode"), "{out}");
    assert!(!Dig::flags(&out).contains(&"tc".to_string()), "{out}");
    assert_eq!(out.matches("\"aka=dns:").count(), aliases + 1, "{out}");
    let out = dig.run(&["+bufsize=4096", "+ignore", &subject_name, "TXT"]);
    assert!(out.contains("udp: 1232"), "{out}");
    assert!(Dig::flags(&out).contains(&"tc".to_string()), "{out}");
    // The empty non-terminal `deep.example.com` exists; `_did.deep.example.com` does not.
    assert_eq!(
        Dig::status(&dig.run(&[&format!("deep.{ZONE}"), "TXT"])),
        "NOERROR"
    );
    assert_eq!(
        Dig::status(&dig.run(&[&format!("_did.deep.{ZONE}"), "URI"])),
        "NXDOMAIN"
    );

    // dnspython: the same behaviours, EDNS sizes, and malformed messages.
    let args = json!({
        "server": "127.0.0.1",
        "port": port,
        "zone": ZONE,
        "service_zone": SERVICE_ZONE,
        "bound": "_did.pump.example.com",
        "did": subject,
        "nx": "_did.none.example.com",
        "big": subject_name,
        "big_min_aka": aliases,
        "serial": height(&base),
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/dns_client.py");
    // scripts/test makes a venv with dnspython and names its python here.
    let python = std::env::var("SPARKID_DNS_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .arg(&script)
        .arg(args.to_string())
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "dns_client.py: {stdout}\n{stderr}\n(dnspython is installed by ./scripts/test)"
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
    eprintln!("{}", stdout.trim());

    // The daemon survived all of it.
    let mut d = d;
    assert!(d.child.try_wait().unwrap().is_none(), "the daemon exited");
    assert_eq!(dig.serial(ZONE), height(&base));
}
