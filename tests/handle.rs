//! The Handle doors of a spawned daemon, driven by real clients: a native Handle client written
//! here from the layout in `shared/reference/handle-dns.md` (not from the server's encoder),
//! over UDP and TCP, and pyhandle (PyPI) against the REST API. Data is set up with the
//! `sparkid` CLI: `did create`, `namespace delegate` (dev authority: `<data>/validator.key`),
//! `namespace bind`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{cli, free_port, get_json, Daemon};
use serde_json::{json, Value};

// ---- a native Handle client, from the reference's layout ----------------------------------

/// Builds one message: envelope (20) ‖ header (24) ‖ body ‖ credential length 0.
fn message(request_id: u32, opcode: u32, op_flags: u32, body: &[u8]) -> Vec<u8> {
    let message_length = 24 + body.len() + 4;
    let mut m = Vec::new();
    m.extend_from_slice(&[2, 10, 0, 0]); // version 2.10, no flags, no suggested minor
    m.extend_from_slice(&0u32.to_be_bytes()); // session id
    m.extend_from_slice(&request_id.to_be_bytes());
    m.extend_from_slice(&0u32.to_be_bytes()); // sequence
    m.extend_from_slice(&(message_length as u32).to_be_bytes());
    m.extend_from_slice(&opcode.to_be_bytes());
    m.extend_from_slice(&0u32.to_be_bytes()); // response code: a request
    m.extend_from_slice(&op_flags.to_be_bytes());
    m.extend_from_slice(&[0xff, 0xff, 0, 0]); // site info serial unknown, recursion 0, reserved
    m.extend_from_slice(&1_700_000_000u32.to_be_bytes()); // expiration
    m.extend_from_slice(&(body.len() as u32).to_be_bytes());
    m.extend_from_slice(body);
    m.extend_from_slice(&0u32.to_be_bytes()); // credential: none
    m
}

/// A resolution request body: handle, index list, type list, then `trailing` extra bytes.
fn resolution_body(handle: &str, indexes: &[u32], types: &[&str], trailing: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(handle.len() as u32).to_be_bytes());
    b.extend_from_slice(handle.as_bytes());
    b.extend_from_slice(&(indexes.len() as u32).to_be_bytes());
    for i in indexes {
        b.extend_from_slice(&i.to_be_bytes());
    }
    b.extend_from_slice(&(types.len() as u32).to_be_bytes());
    for t in types {
        b.extend_from_slice(&(t.len() as u32).to_be_bytes());
        b.extend_from_slice(t.as_bytes());
    }
    b.extend_from_slice(trailing);
    b
}

const RECU_CACR_PUBL: u32 = 0x1900_0000;

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// A response, read field by field.
#[derive(Debug)]
struct Response {
    flags: u8,
    request_id: u32,
    message_length: usize,
    opcode: u32,
    code: u32,
    body: Vec<u8>,
}

fn parse(packet: &[u8]) -> Response {
    assert!(packet.len() >= 44, "short answer: {} bytes", packet.len());
    let message_length = u32_at(packet, 16) as usize;
    let body_length = u32_at(packet, 40) as usize;
    let body_end = (44 + body_length).min(packet.len());
    Response {
        flags: packet[2],
        request_id: u32_at(packet, 8),
        message_length,
        opcode: u32_at(packet, 20),
        code: u32_at(packet, 24),
        body: packet[44..body_end].to_vec(),
    }
}

/// One handle value: index, type, data.
#[derive(Debug, Clone, PartialEq)]
struct HandleValue {
    index: u32,
    ttl: u32,
    value_type: String,
    data: String,
}

fn read_array(b: &[u8], at: &mut usize) -> Vec<u8> {
    let len = u32_at(b, *at) as usize;
    let out = b[*at + 4..*at + 4 + len].to_vec();
    *at += 4 + len;
    out
}

/// A resolution response body: handle (4+n), value count (4), values.
fn values(body: &[u8]) -> (String, Vec<HandleValue>) {
    let mut at = 0;
    let handle = String::from_utf8(read_array(body, &mut at)).unwrap();
    let count = u32_at(body, at);
    at += 4;
    let mut out = Vec::new();
    for _ in 0..count {
        let index = u32_at(body, at);
        let ttl = u32_at(body, at + 9);
        at += 14; // index 4, timestamp 4, ttlType 1, ttl 4, permissions 1
        let value_type = String::from_utf8(read_array(body, &mut at)).unwrap();
        let data = String::from_utf8(read_array(body, &mut at)).unwrap();
        let references = u32_at(body, at);
        at += 4;
        for _ in 0..references {
            read_array(body, &mut at);
            at += 4;
        }
        out.push(HandleValue {
            index,
            ttl,
            value_type,
            data,
        });
    }
    assert_eq!(at, body.len(), "bytes left after the values");
    (handle, out)
}

/// An error response body: a message (4+n).
fn error_message(body: &[u8]) -> String {
    String::from_utf8(read_array(body, &mut 0)).unwrap()
}

fn udp(addr: SocketAddr, packet: &[u8]) -> Vec<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket.send_to(packet, addr).unwrap();
    let mut buf = vec![0u8; 65_536];
    let (n, _) = socket.recv_from(&mut buf).expect("a UDP answer");
    buf.truncate(n);
    buf
}

/// Sends messages on one TCP connection and reads one whole answer (envelope, then
/// `messageLength` bytes) for each.
fn tcp(addr: SocketAddr, packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut answers = Vec::new();
    for p in packets {
        stream.write_all(p).unwrap();
        let mut envelope = [0u8; 20];
        stream.read_exact(&mut envelope).unwrap();
        let mut rest = vec![0u8; u32_at(&envelope, 16) as usize];
        stream.read_exact(&mut rest).unwrap();
        let mut whole = envelope.to_vec();
        whole.extend(rest);
        answers.push(whole);
    }
    answers
}

// ---- the daemon and its data, through the CLI ----------------------------------------------

struct World {
    daemon: Daemon,
    handle_addr: SocketAddr,
    owner: String,
    device: String,
    _dir: tempfile::TempDir,
}

/// `did create` through the CLI: the DID and its new private key.
fn create(base: &str, document: Option<&Path>) -> (String, String) {
    let mut args = vec!["did", "create", "--endpoint", base];
    let doc;
    if let Some(d) = document {
        doc = d.to_string_lossy().to_string();
        args.extend(["--document", &doc]);
    }
    let out = cli(&args);
    (
        out["didState"]["did"].as_str().unwrap().to_string(),
        out["generatedKey"]["privateKey"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

/// A daemon with the handle prefix `86.100` delegated to an owner, who bound `86.100/Pump-7`
/// to a device DID whose document is too big for one UDP packet.
fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_port();
    let handle_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let daemon = Daemon::start_with(&data, &["--handle", &handle_addr.to_string()]);
    let base = daemon.base.clone();
    let services: Vec<Value> = (0..4)
        .map(|i| json!({"id": format!("#svc{i}"), "type": "LinkedDomains",
                        "serviceEndpoint": format!("https://device-{i}.factory.example/{}", "p".repeat(60))}))
        .collect();
    let doc_path = dir.path().join("device.json");
    std::fs::write(&doc_path, json!({ "service": services }).to_string()).unwrap();
    let (owner, owner_key) = create(&base, None);
    let (device, _) = create(&base, Some(&doc_path));
    let authority_key: PathBuf = data.join("validator.key");
    let authority_key = authority_key.to_string_lossy().to_string();
    cli(&[
        "namespace",
        "delegate",
        "--endpoint",
        &base,
        "--key",
        &authority_key,
        "--kind",
        "handle",
        "--namespace",
        "86.100",
        "--owner",
        &owner,
    ]);
    cli(&[
        "namespace",
        "bind",
        "--endpoint",
        &base,
        "--key",
        &owner_key,
        "--kind",
        "handle",
        "--identifier",
        "86.100/Pump-7",
        "--did",
        &device,
    ]);
    World {
        daemon,
        handle_addr,
        owner,
        device,
        _dir: dir,
    }
}

fn resolve_udp(w: &World, id: u32, handle: &str, indexes: &[u32], types: &[&str]) -> Response {
    let packet = message(
        id,
        1,
        RECU_CACR_PUBL,
        &resolution_body(handle, indexes, types, &[]),
    );
    let r = parse(&udp(w.handle_addr, &packet));
    assert_eq!(r.request_id, id, "the request id is echoed");
    assert_eq!(r.opcode, 1);
    r
}

#[test]
fn native_resolution_over_udp_and_tcp() {
    let w = world();

    // A type filter: one value, the DID, in one datagram.
    let r = resolve_udp(&w, 7, "86.100/Pump-7", &[], &["DID"]);
    assert_eq!(r.code, 1, "{}", error_message(&r.body));
    assert_eq!(r.flags & 0x20, 0, "not truncated");
    let (handle, vals) = values(&r.body);
    assert_eq!(handle, "86.100/Pump-7", "the handle is echoed as sent");
    assert_eq!(vals.len(), 1);
    assert_eq!(
        (
            vals[0].index,
            vals[0].value_type.as_str(),
            vals[0].data.as_str()
        ),
        (2, "DID", w.device.as_str())
    );
    assert_eq!(vals[0].ttl, 3600);

    // An index filter: the resolver URL; and index or type together.
    let r = resolve_udp(&w, 8, "86.100/pump-7", &[1], &[]);
    let (_, vals) = values(&r.body);
    assert_eq!(vals.len(), 1);
    assert_eq!(vals[0].value_type, "URL");
    assert_eq!(
        vals[0].data,
        format!("{}/1.0/identifiers/{}", w.daemon.base, w.device)
    );
    let r = resolve_udp(&w, 9, "86.100/PUMP-7", &[1], &["DID"]);
    let (_, vals) = values(&r.body);
    assert_eq!(vals.iter().map(|v| v.index).collect::<Vec<_>>(), [1, 2]);

    // The whole record is over 512 bytes: UDP answers its envelope alone, truncated (less
    // than the request: nothing to reflect); TCP answers all of it.
    let packet = message(
        10,
        1,
        RECU_CACR_PUBL,
        &resolution_body("86.100/pump-7", &[], &[], &[]),
    );
    let truncated = udp(w.handle_addr, &packet);
    assert_eq!(truncated.len(), 20, "the envelope alone");
    assert_ne!(truncated[2] & 0x20, 0, "the truncated flag is set");
    assert_eq!(u32_at(&truncated, 8), 10);
    let truncated_length = u32_at(&truncated, 16) as usize;
    assert!(truncated_length + 20 > 512);
    let full = tcp(w.handle_addr, &[packet]);
    let r = parse(&full[0]);
    assert_eq!(r.code, 1);
    assert_eq!(r.flags & 0x20, 0);
    assert_eq!(r.message_length + 20, full[0].len());
    assert_eq!(r.message_length, truncated_length);
    let (_, vals) = values(&r.body);
    let indexes: Vec<u32> = vals.iter().map(|v| v.index).collect();
    assert_eq!(indexes, [1, 2, 3, 4, 10, 11, 12, 13]);
    let document: Value = serde_json::from_str(&vals[2].data).unwrap();
    assert_eq!(vals[2].value_type, "DID_DOCUMENT");
    assert_eq!(document["id"], json!(w.device));
    let metadata: Value = serde_json::from_str(&vals[3].data).unwrap();
    assert_eq!(metadata["versionId"], "1");
    assert_eq!(metadata["deactivated"], false);
    assert!(vals[4]
        .data
        .starts_with("https://device-0.factory.example/"));

    // Not found, values not found, invalid handle.
    let r = resolve_udp(&w, 11, "86.100/no-such-pump", &[], &[]);
    assert_eq!(r.code, 100);
    assert!(!error_message(&r.body).is_empty());
    let r = resolve_udp(&w, 12, "86.100/pump-7", &[], &["NO_SUCH_TYPE"]);
    assert_eq!(r.code, 200);
    let r = resolve_udp(&w, 13, "86.100/pump-7", &[77], &[]);
    assert_eq!(r.code, 200);
    for bad in ["no..slash", "86..100/x", "bid/not-a-bid"] {
        let r = resolve_udp(&w, 14, bad, &[], &[]);
        assert_eq!(r.code, 102, "{bad}: {}", error_message(&r.body));
    }
    // A bare prefix names the prefix (IDIS discovery, tests/handle_idis.rs): not delegated
    // here, not found.
    let r = resolve_udp(&w, 14, "no-slash", &[], &[]);
    assert_eq!(r.code, 100, "{}", error_message(&r.body));
    let r = resolve_udp(&w, 15, "99.999/x", &[], &[]);
    assert_eq!(r.code, 100, "a prefix not delegated here");

    // The prefix handle names the owner; a DID reads as a handle under `bid`.
    let r = resolve_udp(&w, 16, "0.NA/86.100", &[], &["DID"]);
    assert_eq!(r.code, 1);
    assert_eq!(values(&r.body).1[0].data, w.owner);
    let address = w.owner.strip_prefix("did:bid:").unwrap();
    let r = resolve_udp(&w, 17, &format!("bid/{address}"), &[2], &[]);
    assert_eq!(r.code, 1, "{}", error_message(&r.body));
    assert_eq!(values(&r.body).1[0].data, w.owner);
}

#[test]
fn native_edge_cases_trailing_bytes_unknown_opcodes_and_tcp_sessions() {
    let w = world();

    // IDIS clients append authBytes (4-byte length, here 0) and some send more: tolerated.
    for trailing in [&[0u8, 0, 0, 0][..], &[0, 0, 0, 3, 1, 2, 3, 9, 9][..]] {
        let body = resolution_body("86.100/pump-7", &[2], &[], trailing);
        let r = parse(&udp(w.handle_addr, &message(21, 1, RECU_CACR_PUBL, &body)));
        assert_eq!(r.code, 1, "{}", error_message(&r.body));
        assert_eq!(values(&r.body).1[0].data, w.device);
    }

    // Unknown and unsupported operation codes: error responses, over UDP and TCP.
    for opcode in [0u32, 9999, 0xffff_ffff] {
        let r = parse(&udp(w.handle_addr, &message(22, opcode, 0, &[])));
        assert_eq!(r.request_id, 22);
        assert_eq!(r.opcode, opcode);
        assert_eq!(r.code, 2, "unknown opcode {opcode}");
        assert!(error_message(&r.body).contains("operation"));
    }
    let r = parse(&udp(w.handle_addr, &message(23, 100, 0, &[])));
    assert_eq!(r.code, 5, "create handle: operation not supported");
    let r = parse(&udp(w.handle_addr, &message(24, 2001, 0, &[])));
    assert_eq!(r.code, 5, "IDIS login: operation not supported");

    // A malformed body: a protocol error, not silence.
    let r = parse(&udp(w.handle_addr, &message(25, 1, 0, &[0, 0, 0, 200, 1])));
    assert_eq!(r.code, 4);

    // Several messages on one TCP connection, each answered in order.
    let answers = tcp(
        w.handle_addr,
        &[
            message(31, 1, 0, &resolution_body("86.100/pump-7", &[2], &[], &[])),
            message(32, 4242, 0, &[]),
            message(33, 1, 0, &resolution_body("86.100/nothing", &[], &[], &[])),
        ],
    );
    let codes: Vec<(u32, u32)> = answers
        .iter()
        .map(|a| parse(a))
        .map(|r| (r.request_id, r.code))
        .collect();
    assert_eq!(codes, [(31, 1), (32, 2), (33, 100)]);

    // The daemon is still up.
    let (status, _) = get_json(&format!("{}/healthz", w.daemon.base));
    assert_eq!(status, 200);
}

fn python() -> String {
    if let Ok(p) = std::env::var("SPARKID_PYTHON") {
        return p;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/pyhandle-venv/bin/python");
    if venv.exists() {
        return venv.to_string_lossy().to_string();
    }
    "python3".into()
}

#[test]
fn rest_api_through_pyhandle() {
    let python = python();
    let probe = Command::new(&python)
        .args(["-c", "import pyhandle"])
        .output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "pyhandle is not installed for {python}: run ./scripts/test, which installs it into \
         target/pyhandle-venv (or set SPARKID_PYTHON to a python with pyhandle)"
    );
    let w = world();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/handle_pyhandle.py");
    let address = w.device.strip_prefix("did:bid:").unwrap();
    let out = Command::new(&python)
        .arg(&script)
        .args([
            &w.daemon.base,
            "86.100/pump-7",
            &w.device,
            &w.owner,
            "86.100",
            &format!("bid/{address}"),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pyhandle checks failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");

    // And the status mapping as Handle.Net's servlet has it, seen directly.
    let base = &w.daemon.base;
    let (status, body) = get_json(&format!("{base}/api/handles/86.100/pump-7?type=DID&pretty"));
    assert_eq!(status, 200);
    assert_eq!(body["responseCode"], 1);
    assert_eq!(body["values"][0]["data"]["value"], json!(w.device));
    let (status, body) = get_json(&format!("{base}/api/handles/86.100/none"));
    assert_eq!((status, body["responseCode"].clone()), (404, json!(100)));
    let (status, body) = get_json(&format!("{base}/api/handles/86.100/pump-7?index=99"));
    assert_eq!((status, body["responseCode"].clone()), (200, json!(200)));
    let (status, body) = get_json(&format!("{base}/api/handles/a..b/c"));
    assert_eq!((status, body["responseCode"].clone()), (400, json!(102)));
    let (status, _) = get_json(&format!("{base}/api/handles/86.100/pump-7?index=one"));
    assert_eq!(status, 400);
}

/// OIDs, Ecodes and GS1 keys through the Handle view (spec/handle.md, "Other identifiers"),
/// read with pyhandle both ways: `urn.oid/…`, `ecode/…` (a V0 code too), `gs1/…` name the
/// DID bound to them, and the DID's record lists them back as `ALIAS` values.
#[test]
fn pyhandle_reads_oids_ecodes_and_gs1_keys_both_ways() {
    let python = python();
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start_with(dir.path(), &["--handle", "off"]);
    let base = d.base.clone();
    let created = |base: &str| {
        let out = cli(&["did", "create", "--endpoint", base]);
        (
            out["didState"]["did"].as_str().unwrap().to_string(),
            out["generatedKey"]["privateKey"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    };
    let (owner, owner_key) = created(&base);
    let (did, did_key) = created(&base);
    let authority = dir.path().join("validator.key");
    for (kind, namespace) in [
        ("oid", "1.2.156.3001"),
        ("ecode", "10001"),
        ("gs1", "9506000"),
    ] {
        common::namespace(
            &base,
            authority.to_str().unwrap(),
            &[
                "delegate",
                "--kind",
                kind,
                "--namespace",
                namespace,
                "--owner",
                &owner,
            ],
        );
    }
    let bound = [
        ("oid", "1.2.156.3001.1.7"),
        ("ecode", "100010000001"),
        ("gs1", "/01/9506000134352/10/LOT7"),
        ("gs1", "/01/9506000134352"),
    ];
    for (kind, identifier) in bound {
        common::namespace(
            &base,
            &owner_key,
            &[
                "bind",
                "--kind",
                kind,
                "--identifier",
                identifier,
                "--did",
                &did,
            ],
        );
        common::link(&base, &did, &did_key, kind, identifier);
    }
    // Handles and alias URIs written from the spec's table (the GTIN-13 read as GTIN-14).
    let pairs = json!([
        ["urn.oid/1.2.156.3001.1.7", "urn:oid:1.2.156.3001.1.7"],
        ["ecode/100010000001", "ecode:100010000001"],
        [
            "gs1/01/09506000134352/10/LOT7",
            "https://id.gs1.org/01/09506000134352/10/LOT7"
        ],
        [
            "GS1/01/9506000134352",
            "https://id.gs1.org/01/09506000134352"
        ],
    ]);
    let address = did.strip_prefix("did:bid:").unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/handle_kinds_pyhandle.py");
    let out = Command::new(&python)
        .arg(&script)
        .args([&base, &did, &format!("bid/{address}"), &pairs.to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pyhandle checks failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    // A V0 Ecode is its GS1 key (spec/ecode.md): 0 ‖ GTIN-13 9506000134352.
    let (status, body) = get_json(&format!("{base}/api/handles/ecode/09506000134352?type=DID"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["values"][0]["data"]["value"], json!(did));
}
