//! The DNS door's answer cache (`sparkid/src/doors/dns_wire.rs`) against real clients: a
//! spawned daemon with `--dns`, names bound with the `sparkid` CLI, queried with `dig` and
//! dnspython (`tests/dns_cache_client.py`). Each answer is asked for several times before a
//! change, from new sockets (so that every receive loop has computed and kept it), then right
//! after the block that changes it.

mod common;

use std::path::Path;
use std::process::Command;

use common::{cli, free_udp_tcp_port, link, namespace, Daemon};
use serde_json::{json, Value};
use sparkid_bid::PrivateKey;
use sparkid_bridges::dns::ServiceZone;

const ZONE: &str = "example.com";
const SERVICE_ZONE: &str = "sparkid.test";
/// How many times each answer is asked for: enough that each receive loop (one per core)
/// answers it more than once.
const TIMES: usize = 8;

/// A daemon with the DNS door on, and what the tests bind with.
struct World {
    daemon: Daemon,
    port: u16,
    owner_key: String,
    _dir: tempfile::TempDir,
}

impl World {
    /// A daemon (response-rate limiting off: the tests ask the same names many times from one
    /// address) with `example.com` delegated to a new DID.
    fn start() -> World {
        let dir = tempfile::tempdir().unwrap();
        let port = free_udp_tcp_port();
        let daemon = Daemon::start_with(
            dir.path(),
            &[
                "--dns",
                &format!("127.0.0.1:{port}"),
                "--service-zone",
                SERVICE_ZONE,
                "--handle",
                "off",
                "--udp-rrl-rate",
                "0",
            ],
        );
        let (owner, owner_key) = create(&daemon.base);
        let authority_key = dir.path().join("validator.key");
        namespace(
            &daemon.base,
            authority_key.to_str().unwrap(),
            &[
                "delegate",
                "--kind",
                "dns",
                "--namespace",
                ZONE,
                "--owner",
                &owner,
            ],
        );
        World {
            daemon,
            port,
            owner_key,
            _dir: dir,
        }
    }

    fn base(&self) -> &str {
        &self.daemon.base
    }

    /// Binds `name` (in the delegated zone) to `did`.
    fn bind(&self, name: &str, did: &str) {
        let answer = namespace(
            self.base(),
            &self.owner_key,
            &["bind", "--kind", "dns", "--identifier", name, "--did", did],
        );
        assert_eq!(answer["didState"]["state"], "finished", "{answer}");
    }

    /// `dig +short` for `name` and `qtype`, asked [`TIMES`] times: every answer must be the
    /// same, and is returned.
    fn dig(&self, name: &str, qtype: &str) -> String {
        let answers: Vec<String> = (0..TIMES)
            .map(|_| {
                let out = Command::new("dig")
                    .args(["@127.0.0.1", "-p", &self.port.to_string()])
                    .args(["+norec", "+time=3", "+tries=1", "+short", name, qtype])
                    .output()
                    .expect("dig is not installed: run ./scripts/test, which installs dnsutils");
                String::from_utf8_lossy(&out.stdout).trim().to_string()
            })
            .collect();
        assert!(
            answers.iter().all(|a| a == &answers[0]),
            "{name} {qtype}: {answers:?}"
        );
        answers[0].clone()
    }

    /// `dig` for `name` and `qtype`, [`TIMES`] times: the status of each (all the same).
    fn dig_status(&self, name: &str, qtype: &str) -> String {
        let statuses: Vec<String> = (0..TIMES)
            .map(|_| {
                let out = Command::new("dig")
                    .args(["@127.0.0.1", "-p", &self.port.to_string()])
                    .args(["+norec", "+time=3", "+tries=1", name, qtype])
                    .output()
                    .expect("dig");
                let out = String::from_utf8_lossy(&out.stdout).to_string();
                out.split("status: ")
                    .nth(1)
                    .and_then(|s| s.split(',').next())
                    .unwrap_or_else(|| panic!("no status in {out}"))
                    .to_string()
            })
            .collect();
        assert!(
            statuses.iter().all(|s| s == &statuses[0]),
            "{name} {qtype}: {statuses:?}"
        );
        statuses[0].clone()
    }

    /// Runs `tests/dns_cache_client.py <mode>` with `args` (plus the server and port).
    fn dnspython(&self, mode: &str, mut args: Value) {
        args["server"] = json!("127.0.0.1");
        args["port"] = json!(self.port);
        args["times"] = json!(TIMES);
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/dns_cache_client.py");
        // scripts/test makes a venv with dnspython and names its python here.
        let python = std::env::var("SPARKID_DNS_PYTHON").unwrap_or_else(|_| "python3".into());
        let out = Command::new(&python)
            .arg(&script)
            .arg(mode)
            .arg(args.to_string())
            .output()
            .expect("python3");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "dns_cache_client.py {mode} {args}: {stdout}\n{}\n(dnspython is installed by \
             ./scripts/test)",
            String::from_utf8_lossy(&out.stderr)
        );
    }
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
fn dns_answers_change_with_the_block_that_changes_them() {
    let w = World::start();
    let (a, _) = create(w.base());
    let (b, b_key) = create(w.base());
    let n1 = format!("_did.n1.{ZONE}");
    let n2 = format!("_did.n2.{ZONE}");
    let uri = |did: &str| format!("1 0 \"{did}\"");

    // Bind: a name that was NXDOMAIN (kept as such) answers at once.
    assert_eq!(w.dig_status(&n1, "URI"), "NXDOMAIN");
    w.dnspython(
        "expect",
        json!({"name": n1, "type": "URI", "rcode": "NXDOMAIN"}),
    );
    w.bind(&format!("n1.{ZONE}"), &a);
    assert_eq!(w.dig(&n1, "URI"), uri(&a));
    w.dnspython("expect", json!({"name": n1, "type": "URI", "contains": a}));

    // Rebind: the kept answer gives way to the new DID.
    w.bind(&format!("n1.{ZONE}"), &b);
    assert_eq!(w.dig(&n1, "URI"), uri(&b));
    w.dnspython("expect", json!({"name": n1, "type": "URI", "contains": b}));
    assert!(w.dig(&n1, "TXT").contains(&format!("\"did={b}\"")));

    // A block that binds another name changes nothing for this one, and does answer the other.
    assert_eq!(w.dig_status(&n2, "TXT"), "NXDOMAIN");
    w.bind(&format!("n2.{ZONE}"), &a);
    assert!(w.dig(&n2, "TXT").contains(&format!("\"did={a}\"")));
    assert_eq!(w.dig(&n1, "URI"), uri(&b));

    // Deactivate: the DID's own name says so at once.
    let b_name = ServiceZone::new(SERVICE_ZONE)
        .unwrap()
        .did_name(&b)
        .unwrap();
    let before = w.dig(&b_name, "TXT");
    assert!(before.contains(&format!("\"did={b}\"")), "{before}");
    assert!(!before.contains("deactivated"), "{before}");
    w.dnspython(
        "expect",
        json!({"name": b_name, "type": "TXT", "contains": format!("did={b}"), "absent": "deactivated"}),
    );
    common::deactivate(w.base(), &b, &PrivateKey::from_encoded(&b_key).unwrap());
    let after = w.dig(&b_name, "TXT");
    assert!(after.contains("\"deactivated=true\""), "{after}");
    w.dnspython(
        "expect",
        json!({"name": b_name, "type": "TXT", "contains": "deactivated=true"}),
    );

    // Unbind: NXDOMAIN at once.
    namespace(
        w.base(),
        &w.owner_key,
        &[
            "unbind",
            "--kind",
            "dns",
            "--identifier",
            &format!("n2.{ZONE}"),
        ],
    );
    assert_eq!(w.dig_status(&n2, "TXT"), "NXDOMAIN");
    w.dnspython(
        "expect",
        json!({"name": n2, "type": "TXT", "rcode": "NXDOMAIN"}),
    );
}

#[test]
fn cached_answers_keep_each_querys_id_flags_spelling_and_size() {
    let w = World::start();
    let (a, a_key) = create(w.base());
    w.bind(&format!("small.{ZONE}"), &a);
    // Three long names bound to `a` and confirmed by it: its own TXT answer (three `aka=`
    // strings of over 200 bytes) is over 512 bytes and under 1232.
    for i in 1..=3 {
        let long = format!(
            "x{i}{}.{}.{}.{ZONE}",
            "a".repeat(60),
            "b".repeat(62),
            "c".repeat(62)
        );
        w.bind(&long, &a);
        link(w.base(), &a, &a_key, "dns", &long);
    }
    let big = ServiceZone::new(SERVICE_ZONE)
        .unwrap()
        .did_name(&a)
        .unwrap();
    w.dnspython(
        "wire",
        json!({"small": format!("_did.small.{ZONE}"), "big": big}),
    );
    // The daemon survived all of it.
    let mut daemon = w.daemon;
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "the daemon exited"
    );
}
