//! DNS and Handle UDP amplification (issue 12, item 8): each attack against a spawned daemon, asserting its bounded outcome.
//!
//! - `ANY` is the classic DNS amplification query: it gets one synthesized HINFO (RFC 8482),
//!   checked with dig and dnspython, over UDP and TCP.
//! - A burst from one source prefix past the configured rate (set through the environment, so
//!   that a daemon without rate limiting starts and fails the test instead of refusing a flag):
//!   answers are dropped or slipped (truncated, empty, no larger than the query), counted in
//!   `/metrics`; another prefix and TCP still get full answers.
//! - A Handle UDP answer far larger than its request goes out as the truncated envelope alone
//!   (20 bytes, less than any request); over TCP the same request gets the whole answer.

mod common;

use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{cli, create_did, free_udp_tcp_port, metric, start_with_env, Daemon};
use serde_json::{json, Value};
use sparkid_bridges::dns::ServiceZone;

const SERVICE_ZONE: &str = "sparkid.test";

// ---- DNS, from the wire up ------------------------------------------------------------------

/// `dig @127.0.0.1 -p <port> +norec +time=3 +tries=1 <args>`, whitespace collapsed.
fn dig(port: u16, args: &[&str]) -> String {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+norec", "+time=3"])
        .args(["+tries=1"])
        .args(args)
        .output()
        .expect("dig is not installed: run ./scripts/test, which installs dnsutils");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A DNS query without EDNS: header, one question `name` of type `qtype`, class IN.
fn dns_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut q = Vec::new();
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]); // no flags, QDCOUNT 1
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    q
}

/// Sends every packet from one socket bound to `from`, as fast as it can, then reads answers
/// until none came for half a second.
fn burst(from: &str, to: SocketAddr, packets: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let socket = UdpSocket::bind(from).unwrap();
    for p in packets {
        socket.send_to(p, to).unwrap();
    }
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut answers = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while let Ok((n, _)) = socket.recv_from(&mut buf) {
        answers.push(buf[..n].to_vec());
    }
    answers
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

// ---- Handle, from the reference's layout ----------------------------------------------------

/// One message: envelope (20) ‖ header (24) ‖ body ‖ credential length 0.
fn handle_message(request_id: u32, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&[2, 10, 0, 0]);
    m.extend_from_slice(&0u32.to_be_bytes());
    m.extend_from_slice(&request_id.to_be_bytes());
    m.extend_from_slice(&0u32.to_be_bytes());
    m.extend_from_slice(&((24 + body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(&1u32.to_be_bytes()); // resolution
    m.extend_from_slice(&0u32.to_be_bytes()); // a request
    m.extend_from_slice(&0x1900_0000u32.to_be_bytes()); // RECU CACR PUBL
    m.extend_from_slice(&[0xff, 0xff, 0, 0]);
    m.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    m.extend_from_slice(&(body.len() as u32).to_be_bytes());
    m.extend_from_slice(body);
    m.extend_from_slice(&0u32.to_be_bytes());
    m
}

/// A resolution request for `handle`, filtered by `types` (none: the whole record).
fn resolution(request_id: u32, handle: &str, types: &[&str]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(handle.len() as u32).to_be_bytes());
    b.extend_from_slice(handle.as_bytes());
    b.extend_from_slice(&0u32.to_be_bytes()); // no index filter
    b.extend_from_slice(&(types.len() as u32).to_be_bytes());
    for t in types {
        b.extend_from_slice(&(t.len() as u32).to_be_bytes());
        b.extend_from_slice(t.as_bytes());
    }
    handle_message(request_id, &b)
}

fn handle_udp(addr: SocketAddr, packet: &[u8]) -> Vec<u8> {
    let mut answers = burst("127.0.0.1:0", addr, &[packet.to_vec()]);
    assert_eq!(answers.len(), 1, "one UDP answer");
    answers.remove(0)
}

/// One whole answer over TCP: the envelope, then `messageLength` bytes.
fn handle_tcp(addr: SocketAddr, packet: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(packet).unwrap();
    let mut envelope = [0u8; 20];
    stream.read_exact(&mut envelope).unwrap();
    let mut rest = vec![0u8; u32_at(&envelope, 16) as usize];
    stream.read_exact(&mut rest).unwrap();
    let mut whole = envelope.to_vec();
    whole.extend(rest);
    whole
}

const HANDLE_TRUNCATED: u8 = 0x20;

// ---- the attacks ----------------------------------------------------------------------------

/// dnspython asks `name` ANY over UDP and TCP; prints one line per answer record per transport.
const DNSPYTHON_ANY: &str = r#"
import sys, dns.message, dns.query, dns.flags
server, port, name = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for how in ("udp", "tcp"):
    q = dns.message.make_query(name, "ANY", use_edns=False)
    q.flags &= ~dns.flags.RD
    r = getattr(dns.query, how)(q, server, port=port, timeout=3)
    assert not (r.flags & dns.flags.TC), how
    for rrset in r.answer:
        for rd in rrset:
            print(how, dns.rdatatype.to_text(rrset.rdtype), rd.to_text())
"#;

#[test]
fn dns_any_is_one_synthesized_hinfo_over_udp_and_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_tcp_port();
    let d = Daemon::start_with(
        dir.path(),
        &["--dns", &format!("127.0.0.1:{port}"), "--handle", "off"],
    );
    // A DID with services: its service-zone name holds URI and TXT records.
    let services: Vec<Value> = (0..3)
        .map(|i| {
            json!({"id": format!("#s{i}"), "type": "LinkedDomains",
                        "serviceEndpoint": format!("https://s{i}.example/{}", "p".repeat(40))})
        })
        .collect();
    let (_, did) = create_did(&d.base, Some(json!({ "service": services })));
    let name = ServiceZone::new(SERVICE_ZONE)
        .unwrap()
        .did_name(&did)
        .unwrap();
    let uri = dig(port, &[&name, "URI"]);
    assert!(uri.contains(" IN URI "), "the name has records: {uri}");

    for (owner, transport) in [
        (name.as_str(), "+notcp"),
        (name.as_str(), "+tcp"),
        (SERVICE_ZONE, "+notcp"),
        (SERVICE_ZONE, "+tcp"),
    ] {
        let out = dig(port, &[transport, "+noedns", owner, "ANY"]);
        assert!(out.contains("status: NOERROR"), "{out}");
        assert!(out.contains("ANSWER: 1,"), "one record for ANY: {out}");
        assert!(
            out.contains(&format!("{owner}. 60 IN HINFO \"RFC8482\" \"\"")),
            "{out}"
        );
        assert!(
            !out.contains(" IN URI ") && !out.contains(" IN SOA "),
            "{out}"
        );
        assert!(
            !out.contains(" IN TXT ") && !out.contains(" IN NS "),
            "{out}"
        );
    }
    // A name that does not exist is still NXDOMAIN.
    let out = dig(port, &[&format!("nothing.{SERVICE_ZONE}"), "ANY"]);
    assert!(out.contains("status: NXDOMAIN"), "{out}");

    let python = std::env::var("SPARKID_DNS_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .args(["-c", DNSPYTHON_ANY, "127.0.0.1", &port.to_string(), &name])
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "dnspython: {stdout}\n{}\n(dnspython is installed by ./scripts/test)",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        ["udp HINFO \"RFC8482\" \"\"", "tcp HINFO \"RFC8482\" \"\""],
        "{stdout}"
    );
}

/// Asks `/metrics` for a counter, 0 when the series has not appeared yet.
fn counter(base: &str, series: &str) -> f64 {
    metric(base, series).unwrap_or(0.0)
}

#[test]
fn udp_bursts_past_the_rate_are_dropped_or_slipped_per_source_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let (dns_port, handle_port) = (free_udp_tcp_port(), free_udp_tcp_port());
    let d = start_with_env(
        dir.path(),
        &[
            "--dns",
            &format!("127.0.0.1:{dns_port}"),
            "--handle",
            &format!("127.0.0.1:{handle_port}"),
        ],
        &[
            ("SPARKID_UDP_RRL_RATE", "10"),
            ("SPARKID_UDP_RRL_SLIP", "2"),
        ],
    );
    let dns: SocketAddr = format!("127.0.0.1:{dns_port}").parse().unwrap();
    let handle: SocketAddr = format!("127.0.0.1:{handle_port}").parse().unwrap();
    const SENT: usize = 100;

    // DNS: 100 SOA queries at once from 127.0.0.1 (prefix 127.0.0.0/24).
    let queries: Vec<Vec<u8>> = (0..SENT)
        .map(|i| dns_query(i as u16, SERVICE_ZONE, 6))
        .collect();
    let started = Instant::now();
    let answers = burst("127.0.0.1:0", dns, &queries);
    let elapsed = started.elapsed().as_secs_f64() - 0.5;
    let full = answers.iter().filter(|a| a[2] & 0x02 == 0).count();
    let slipped: Vec<&Vec<u8>> = answers.iter().filter(|a| a[2] & 0x02 != 0).collect();
    let dropped = SENT - answers.len();
    eprintln!(
        "DNS burst: {full} answered, {} slipped, {dropped} dropped",
        slipped.len()
    );
    // A burst of 10 (one second's worth), and at most a few more as the bucket refills.
    assert!(
        (10..=10 + 1 + (elapsed * 10.0) as usize).contains(&full),
        "{full} full answers"
    );
    assert!(slipped.len() >= 35, "{} slipped", slipped.len());
    assert!(dropped >= 35, "{dropped} dropped");
    for s in &slipped {
        assert_eq!(u16_at(s, 6), 0, "a slipped answer has no records");
        assert!(s.len() <= queries[0].len(), "no larger than the query");
    }
    let metric_slips = counter(
        &d.base,
        "sparkid_udp_rrl_total{action=\"slip\",door=\"dns\"}",
    );
    let metric_drops = counter(
        &d.base,
        "sparkid_udp_rrl_total{action=\"drop\",door=\"dns\"}",
    );
    assert_eq!(metric_slips as usize, slipped.len());
    assert_eq!(metric_drops as usize, dropped);
    // Another prefix (127.0.1.0/24, loopback too) has its own budget.
    let other = burst("127.0.1.1:0", dns, &queries[..5]);
    assert_eq!(other.len(), 5);
    assert!(other.iter().all(|a| a[2] & 0x02 == 0 && u16_at(a, 6) == 1));
    // TCP is not limited: the spent prefix still gets its answer there, at once.
    let out = dig(dns_port, &["+tcp", SERVICE_ZONE, "SOA"]);
    assert!(
        out.contains("status: NOERROR") && out.contains("ANSWER: 1,"),
        "{out}"
    );

    // Handle: the same, with requests any server answers (an unknown prefix: an error).
    let requests: Vec<Vec<u8>> = (0..SENT)
        .map(|i| resolution(i as u32, "99.999/nothing", &[]))
        .collect();
    let started = Instant::now();
    let answers = burst("127.0.0.1:0", handle, &requests);
    let elapsed = started.elapsed().as_secs_f64() - 0.5;
    let full = answers
        .iter()
        .filter(|a| a[2] & HANDLE_TRUNCATED == 0)
        .count();
    let slipped: Vec<&Vec<u8>> = answers
        .iter()
        .filter(|a| a[2] & HANDLE_TRUNCATED != 0)
        .collect();
    let dropped = SENT - answers.len();
    eprintln!(
        "Handle burst: {full} answered, {} slipped, {dropped} dropped",
        slipped.len()
    );
    assert!(
        (10..=10 + 1 + (elapsed * 10.0) as usize).contains(&full),
        "{full} full answers"
    );
    assert!(slipped.len() >= 35 && dropped >= 35, "{answers:?}");
    for s in &slipped {
        assert_eq!(s.len(), 20, "the envelope alone");
        assert!(u32_at(s, 16) > 0, "it announces the whole answer's length");
    }
    let metric_slips = counter(
        &d.base,
        "sparkid_udp_rrl_total{action=\"slip\",door=\"handle\"}",
    );
    let metric_drops = counter(
        &d.base,
        "sparkid_udp_rrl_total{action=\"drop\",door=\"handle\"}",
    );
    assert_eq!(metric_slips as usize, slipped.len());
    assert_eq!(metric_drops as usize, dropped);
    let whole = handle_tcp(handle, &requests[0]);
    assert_eq!(whole[2] & HANDLE_TRUNCATED, 0);
    assert_eq!(u32_at(&whole, 8), 0, "the request id is echoed");
    assert_eq!(u32_at(&whole, 24), 100, "HANDLE_NOT_FOUND over TCP");
}

/// `did create` through the CLI, with a document: the DID and its private key.
fn create_with(base: &str, document: Option<&Path>) -> (String, String) {
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

#[test]
fn a_handle_udp_answer_far_larger_than_its_request_is_only_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = free_udp_tcp_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let d = Daemon::start_with(&data, &["--handle", &addr.to_string()]);
    // 86.100/big: a device whose record is well over 512 bytes, with 4 service URLs;
    // 86.100/medium: one with 2 (its URL values come to about 400 bytes).
    let document = |n: usize| {
        let services: Vec<Value> = (0..n)
            .map(|i| json!({"id": format!("#svc{i}"), "type": "LinkedDomains",
                            "serviceEndpoint": format!("https://device-{i}.example/{}", "p".repeat(60))}))
            .collect();
        let path = dir.path().join(format!("device-{n}.json"));
        std::fs::write(&path, json!({ "service": services }).to_string()).unwrap();
        path
    };
    let (owner, owner_key) = create_with(&d.base, None);
    let (device, _) = create_with(&d.base, Some(&document(4)));
    let (medium, _) = create_with(&d.base, Some(&document(2)));
    let authority_key: PathBuf = data.join("validator.key");
    let authority_key = authority_key.to_string_lossy().to_string();
    cli(&[
        "namespace",
        "delegate",
        "--endpoint",
        &d.base,
        "--key",
        &authority_key,
        "--kind",
        "handle",
        "--namespace",
        "86.100",
        "--owner",
        &owner,
    ]);
    for (handle, did) in [("86.100/big", &device), ("86.100/medium", &medium)] {
        cli(&[
            "namespace",
            "bind",
            "--endpoint",
            &d.base,
            "--key",
            &owner_key,
            "--kind",
            "handle",
            "--identifier",
            handle,
            "--did",
            did,
        ]);
    }

    // The whole record: a 62-byte request, an answer of more than 512 bytes. Over UDP only
    // its envelope comes back, truncated: less than the request.
    let request = resolution(7, "86.100/big", &[]);
    let whole = handle_tcp(addr, &request);
    assert_eq!(whole[2] & HANDLE_TRUNCATED, 0);
    assert_eq!(u32_at(&whole, 24), 1, "SUCCESS over TCP");
    assert!(whole.len() > 512, "{} bytes", whole.len());
    let datagram = handle_udp(addr, &request);
    assert_eq!(datagram.len(), 20, "the envelope alone: {datagram:?}");
    assert!(datagram.len() < request.len());
    assert_ne!(datagram[2] & HANDLE_TRUNCATED, 0, "the truncated flag");
    assert_eq!(u32_at(&datagram, 8), 7, "the request id is echoed");
    assert_eq!(u32_at(&datagram, 12), 0, "packet 0");
    assert_eq!(
        u32_at(&datagram, 16) as usize + 20,
        whole.len(),
        "the whole answer's length, to fetch over TCP"
    );

    // Under 512 bytes, but far larger than the request: truncated as well.
    let request = resolution(8, "86.100/medium", &["URL"]);
    let whole = handle_tcp(addr, &request);
    eprintln!(
        "URL values: request {} bytes, answer {} bytes",
        request.len(),
        whole.len()
    );
    assert!(whole.len() <= 512 && whole.len() > 4 * request.len());
    let datagram = handle_udp(addr, &request);
    assert_eq!(datagram.len(), 20);
    assert_ne!(datagram[2] & HANDLE_TRUNCATED, 0);

    // One value, as a client asks for its DID: the answer goes whole.
    let request = resolution(9, "86.100/big", &["DID"]);
    let datagram = handle_udp(addr, &request);
    assert_eq!(datagram[2] & HANDLE_TRUNCATED, 0, "not truncated");
    assert_eq!(u32_at(&datagram, 24), 1, "SUCCESS");
    assert!(datagram.len() <= 4 * request.len());
    assert!(String::from_utf8_lossy(&datagram).contains(&device));

    for reason in ["packet", "amplification"] {
        let series = format!("sparkid_handle_udp_truncated_total{{reason=\"{reason}\"}}");
        assert_eq!(counter(&d.base, &series), 1.0, "{series}");
    }
}

#[test]
fn a_real_client_behind_a_limited_prefix_retries_over_tcp_and_gets_its_answer() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_tcp_port();
    let d = start_with_env(
        dir.path(),
        &["--dns", &format!("127.0.0.1:{port}"), "--handle", "off"],
        // One answer a second, and every limited one slipped.
        &[("SPARKID_UDP_RRL_RATE", "1"), ("SPARKID_UDP_RRL_SLIP", "1")],
    );
    let dns: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let spent = burst("127.0.0.1:0", dns, &[dns_query(1, SERVICE_ZONE, 6)]);
    assert_eq!(spent.len(), 1);
    // dig gets TC over UDP and asks again over TCP, by itself.
    let out = dig(port, &[SERVICE_ZONE, "SOA"]);
    assert!(out.contains("Truncated, retrying in TCP mode"), "{out}");
    assert!(
        out.contains("status: NOERROR") && out.contains("ANSWER: 1,"),
        "{out}"
    );
    // So does dnspython's udp_with_fallback.
    let script = r#"
import sys, dns.message, dns.query
q = dns.message.make_query(sys.argv[3], "SOA")
# Spend the second's budget first, should it have refilled while Python started.
dns.query.udp(q, sys.argv[1], port=int(sys.argv[2]), timeout=3)
r, tcp = dns.query.udp_with_fallback(q, sys.argv[1], port=int(sys.argv[2]), timeout=3)
print("tcp" if tcp else "udp", len(r.answer))
"#;
    let python = std::env::var("SPARKID_DNS_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .args(["-c", script, "127.0.0.1", &port.to_string(), SERVICE_ZONE])
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.trim(),
        "tcp 1",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        counter(
            &d.base,
            "sparkid_udp_rrl_total{action=\"slip\",door=\"dns\"}"
        ) >= 2.0
    );
}
