//! IDIS discovery against spawned daemons, by a client written here from the references
//! (`shared/reference/identifier-systems.md` §4.2, `handle-dns.md` §3.3 and §4), not from the
//! server's encoder. It follows the IDIS SDK's flow (`GlobalIdClientFactory.
//! getPrefixTcpInetSocketAddress`): resolve the bare prefix for `HS_SITE` at the recursion
//! server (here the daemon's IDIS listener), decode the sites, take the first site's first TCP
//! interface, and speak the Handle protocol there for the handle's values.
//!
//! Two daemons, two ledgers: A serves prefix `88.100` itself, and its chain delegates `88.200`
//! to B through the delegation's endpoints; B's own chain serves `88.200`.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{cli, free_udp_tcp_port, get_json, metric, namespace, start_with_env, Daemon};

// ---- the client, from the reference -------------------------------------------------------

const OC_RESOLUTION: u32 = 1;
const OC_GET_SITE_INFO: u32 = 2;
/// IDIS SDK requests: recursive, cache-certify, public values only.
const RECU_CACR_PUBL: u32 = 0x1900_0000;
const PROTOCOL_TCP: u8 = 1;
const PROTOCOL_UDP: u8 = 0;

/// Envelope (20) ‖ header (24) ‖ body ‖ credential length 0 (`handle-dns.md` §4).
fn message(request_id: u32, opcode: u32, body: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&[2, 10, 0, 0]); // version 2.10, as the IDIS SDK speaks it
    m.extend_from_slice(&0u32.to_be_bytes()); // session
    m.extend_from_slice(&request_id.to_be_bytes());
    m.extend_from_slice(&0u32.to_be_bytes()); // sequence
    m.extend_from_slice(&((24 + body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(&opcode.to_be_bytes());
    m.extend_from_slice(&0u32.to_be_bytes()); // a request
    m.extend_from_slice(&RECU_CACR_PUBL.to_be_bytes());
    m.extend_from_slice(&[0xff, 0xff, 0, 0]); // site serial unknown
    m.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    m.extend_from_slice(&(body.len() as u32).to_be_bytes());
    m.extend_from_slice(body);
    m.extend_from_slice(&0u32.to_be_bytes());
    m
}

fn string(b: &mut Vec<u8>, s: &[u8]) {
    b.extend_from_slice(&(s.len() as u32).to_be_bytes());
    b.extend_from_slice(s);
}

/// A resolution body as the IDIS SDK sends it: handle, no indexes, the types, then its
/// `authBytes` (empty).
fn resolution(handle: &str, types: &[&str]) -> Vec<u8> {
    let mut b = Vec::new();
    string(&mut b, handle.as_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&(types.len() as u32).to_be_bytes());
    for t in types {
        string(&mut b, t.as_bytes());
    }
    string(&mut b, b"");
    b
}

/// A `GET_SITE_INFO` body: a generic request's handle (empty).
fn site_request() -> Vec<u8> {
    let mut b = Vec::new();
    string(&mut b, b"");
    b
}

struct Answer {
    request_id: u32,
    code: u32,
    body: Vec<u8>,
}

fn parse(packet: &[u8]) -> Answer {
    let u32_at = |at: usize| u32::from_be_bytes(packet[at..at + 4].try_into().unwrap());
    assert!(packet.len() >= 44, "short answer: {packet:?}");
    let body_length = u32_at(40) as usize;
    Answer {
        request_id: u32_at(8),
        code: u32_at(24),
        body: packet[44..44 + body_length].to_vec(),
    }
}

/// One request on a new TCP connection: envelope, then `messageLength` bytes.
fn tcp(addr: SocketAddr, packet: &[u8]) -> Answer {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(packet).unwrap();
    let mut envelope = [0u8; 20];
    stream.read_exact(&mut envelope).unwrap();
    let mut rest = vec![0u8; u32::from_be_bytes(envelope[16..20].try_into().unwrap()) as usize];
    stream.read_exact(&mut rest).unwrap();
    parse(&[&envelope[..], &rest].concat())
}

fn udp(addr: SocketAddr, packet: &[u8]) -> Answer {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket.send_to(packet, addr).unwrap();
    let mut buf = vec![0u8; 65_536];
    let (n, _) = socket.recv_from(&mut buf).unwrap();
    parse(&buf[..n])
}

/// A cursor that fails the test on a short read.
struct Cursor<'a>(&'a [u8], usize);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> &[u8] {
        assert!(self.1 + n <= self.0.len(), "short at {}", self.1);
        self.1 += n;
        &self.0[self.1 - n..self.1]
    }
    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.take(2).try_into().unwrap())
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take(4).try_into().unwrap())
    }
    fn bytes(&mut self) -> Vec<u8> {
        let n = self.u32() as usize;
        self.take(n).to_vec()
    }
}

/// Values of a resolution answer: (index, type, data).
fn values(body: &[u8]) -> Vec<(u32, String, Vec<u8>)> {
    let mut c = Cursor(body, 0);
    c.bytes(); // the handle
    let mut out = Vec::new();
    for _ in 0..c.u32() {
        let index = c.u32();
        c.take(4 + 1 + 4 + 1); // timestamp, ttl type, ttl, permissions
        let value_type = String::from_utf8(c.bytes()).unwrap();
        let data = c.bytes();
        for _ in 0..c.u32() {
            c.bytes();
            c.u32();
        }
        out.push((index, value_type, data));
    }
    assert_eq!(c.1, body.len());
    out
}

/// An interface: service type, protocol, port.
type Interface = (u8, u8, u32);

/// A decoded site (`handle-dns.md` §3.3): its serial and, per server, its address and
/// interfaces (service type, protocol, port).
#[derive(Debug, Clone, PartialEq)]
struct Site {
    version: u16,
    protocol: (u8, u8),
    serial: u16,
    primary_mask: u8,
    servers: Vec<(IpAddr, Vec<Interface>)>,
}

fn decode_site(data: &[u8]) -> Site {
    let mut c = Cursor(data, 0);
    let version = c.u16();
    let protocol = (c.u8(), c.u8());
    let serial = c.u16();
    let primary_mask = c.u8();
    let _hash_option = c.u8();
    c.bytes(); // hash filter
    for _ in 0..c.u32() {
        c.bytes();
        c.bytes();
    }
    let mut servers = Vec::new();
    for _ in 0..c.u32() {
        let _id = c.u32();
        let raw: [u8; 16] = c.take(16).try_into().unwrap();
        // IPv4 travels as `::a.b.c.d` ([ERRATA]).
        let ip = if raw[..12].iter().all(|b| *b == 0) {
            IpAddr::V4(Ipv4Addr::new(raw[12], raw[13], raw[14], raw[15]))
        } else {
            IpAddr::V6(Ipv6Addr::from(raw))
        };
        c.bytes(); // public key
        let interfaces = (0..c.u32()).map(|_| (c.u8(), c.u8(), c.u32())).collect();
        servers.push((ip, interfaces));
    }
    assert_eq!(c.1, data.len(), "bytes after the site");
    Site {
        version,
        protocol,
        serial,
        primary_mask,
        servers,
    }
}

/// `SiteUtils.getFirstInetSocketAddressByProtocol(site, "TCP")`.
fn first_tcp(site: &Site) -> SocketAddr {
    site.servers
        .iter()
        .find_map(|(ip, interfaces)| {
            interfaces
                .iter()
                .find(|i| i.1 == PROTOCOL_TCP)
                .map(|i| SocketAddr::new(*ip, i.2 as u16))
        })
        .expect("a TCP interface")
}

/// The SDK's discovery: the bare prefix's `HS_SITE` values at the recursion server, decoded;
/// the first site's first TCP address.
fn discover(recursion_server: SocketAddr, prefix: &str) -> (Vec<Site>, SocketAddr) {
    let a = tcp(
        recursion_server,
        &message(41, OC_RESOLUTION, &resolution(prefix, &["HS_SITE"])),
    );
    assert_eq!(a.request_id, 41);
    assert_eq!(
        a.code,
        1,
        "{prefix}: {:?}",
        String::from_utf8_lossy(&a.body)
    );
    let sites: Vec<Site> = values(&a.body)
        .into_iter()
        .filter(|(_, t, _)| t == "HS_SITE")
        .map(|(_, _, data)| decode_site(&data))
        .collect();
    assert!(!sites.is_empty(), "{prefix}: no HS_SITE value");
    let address = first_tcp(&sites[0]);
    (sites, address)
}

/// Then the Handle protocol at the discovered address: the handle's DID value.
fn did_of(server: SocketAddr, handle: &str) -> String {
    let a = tcp(
        server,
        &message(42, OC_RESOLUTION, &resolution(handle, &["DID"])),
    );
    assert_eq!(a.code, 1, "{handle} at {server}");
    let vals = values(&a.body);
    String::from_utf8(vals[0].2.clone()).unwrap()
}

// ---- the daemons and their data ------------------------------------------------------------

/// A dev daemon with its Handle door on a free port (and `extra` flags): the daemon, that
/// door's address, and its authority key file.
fn daemon(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> (Daemon, SocketAddr, String) {
    let handle: SocketAddr = format!("127.0.0.1:{}", free_udp_tcp_port())
        .parse()
        .unwrap();
    let data = dir.join("data");
    let mut args = vec!["--handle".to_string(), handle.to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let d = start_with_env(&data, &args, env);
    let authority: PathBuf = data.join("validator.key");
    (d, handle, authority.to_string_lossy().to_string())
}

/// A new DID and its key.
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

/// Delegates `prefix` (with `endpoints`) to a new owner who binds `handle` to a new DID;
/// returns that DID.
fn serve_prefix(
    base: &str,
    authority: &str,
    prefix: &str,
    endpoints: &[String],
    handle: Option<&str>,
) -> String {
    let (owner, owner_key) = create(base);
    let mut args = vec![
        "delegate",
        "--kind",
        "handle",
        "--namespace",
        prefix,
        "--owner",
        &owner,
    ];
    for e in endpoints {
        args.extend(["--endpoint-url", e]);
    }
    namespace(base, authority, &args);
    let Some(handle) = handle else {
        return owner;
    };
    let (device, _) = create(base);
    namespace(
        base,
        &owner_key,
        &[
            "bind",
            "--kind",
            "handle",
            "--identifier",
            handle,
            "--did",
            &device,
        ],
    );
    device
}

#[test]
fn the_idis_sdk_discovery_flow_finds_the_node_serving_a_prefix() {
    let dir_b = tempfile::tempdir().unwrap();
    let dir_a = tempfile::tempdir().unwrap();

    // B: another node, its site set through the environment (comma-separated, TCP first).
    let b_handle_port = free_udp_tcp_port();
    let b_site = format!("tcp://127.0.0.1:{b_handle_port},udp://127.0.0.1:{b_handle_port}");
    let (b, b_handle, b_authority) = {
        let data = dir_b.path().join("data");
        let handle = format!("127.0.0.1:{b_handle_port}");
        let d = start_with_env(
            &data,
            &["--handle", &handle],
            &[("SPARKID_HANDLE_SITE_ADDRESSES", b_site.as_str())],
        );
        let key = data.join("validator.key").to_string_lossy().to_string();
        (d, handle.parse::<SocketAddr>().unwrap(), key)
    };
    let valve = serve_prefix(&b.base, &b_authority, "88.200", &[], Some("88.200/valve-1"));

    // A: serves 88.100, with an IDIS listener; its chain delegates 88.200 to B.
    let idis: SocketAddr = format!("127.0.0.1:{}", free_udp_tcp_port())
        .parse()
        .unwrap();
    let (a, a_handle, a_authority) =
        daemon(dir_a.path(), &["--handle-idis", &idis.to_string()], &[]);
    let pump = serve_prefix(&a.base, &a_authority, "88.100", &[], Some("88.100/Pump-7"));
    serve_prefix(
        &a.base,
        &a_authority,
        "88.200",
        &[
            format!("udp://127.0.0.1:{b_handle_port}"),
            format!("tcp://127.0.0.1:{b_handle_port}"),
        ],
        None,
    );

    // The flow, for a prefix A serves: A's IDIS listener is the recursion server; the site it
    // names (no site addresses configured: the bound listeners, TCP first) leads to A.
    let (sites, server) = discover(idis, "88.100");
    assert_eq!(sites.len(), 1);
    let site = &sites[0];
    assert_eq!((site.version, site.protocol), (1, (2, 10)));
    assert_ne!(site.primary_mask & 0x80, 0, "a primary site");
    assert_eq!(server, a_handle, "the first TCP interface: the Handle door");
    let interfaces = &site.servers[0].1;
    assert_eq!(
        interfaces.iter().map(|i| (i.1, i.2)).collect::<Vec<_>>(),
        [
            (PROTOCOL_TCP, u32::from(a_handle.port())),
            (PROTOCOL_TCP, u32::from(idis.port())),
            (PROTOCOL_UDP, u32::from(a_handle.port())),
            (PROTOCOL_UDP, u32::from(idis.port())),
        ],
        "TCP first"
    );
    assert!(interfaces.iter().all(|i| i.0 == 2), "query interfaces");
    assert_eq!(did_of(server, "88.100/pump-7"), pump);

    // For a prefix delegated to B: A answers with B's site, and B has the handle.
    let (sites, server) = discover(idis, "88.200");
    assert_eq!(server, b_handle);
    assert_eq!(sites[0].serial, 1, "the delegation's version");
    assert_eq!(did_of(server, "88.200/valve-1"), valve);
    assert!(
        tcp(
            a_handle,
            &message(43, OC_RESOLUTION, &resolution("88.200/valve-1", &["DID"]))
        )
        .code
            == 100,
        "A does not hold B's handles"
    );
    // B, asked directly, names itself as configured.
    let (sites, server) = discover(b_handle, "88.200");
    assert_eq!(server, b_handle);
    assert_eq!(
        sites[0].servers[0].1,
        [
            (2, PROTOCOL_TCP, u32::from(b_handle_port)),
            (2, PROTOCOL_UDP, u32::from(b_handle_port))
        ]
    );

    // 0.NA/<prefix> carries the same site as the bare prefix; GET_SITE_INFO, over TCP and
    // UDP on either listener, answers A's own site, its bytes those of the HS_SITE value.
    let hs_site = |addr: SocketAddr, handle: &str| {
        let a = tcp(
            addr,
            &message(44, OC_RESOLUTION, &resolution(handle, &["HS_SITE"])),
        );
        assert_eq!(a.code, 1, "{handle}");
        values(&a.body).remove(0).2
    };
    let own = hs_site(a_handle, "88.100");
    assert_eq!(hs_site(a_handle, "0.NA/88.100"), own);
    assert_eq!(hs_site(idis, "0.na/88.200"), hs_site(idis, "88.200"));
    for (answer, how) in [
        (
            tcp(a_handle, &message(45, OC_GET_SITE_INFO, &site_request())),
            "tcp",
        ),
        (
            udp(a_handle, &message(46, OC_GET_SITE_INFO, &site_request())),
            "udp",
        ),
        (
            tcp(idis, &message(47, OC_GET_SITE_INFO, &site_request())),
            "idis tcp",
        ),
    ] {
        assert_eq!(answer.code, 1, "{how}");
        assert_eq!(answer.body, own, "{how}: the site, as in HS_SITE");
    }
    for (door, transport) in [("handle", "tcp"), ("handle", "udp"), ("handle-idis", "tcp")] {
        let series =
            format!("sparkid_handle_site_info_total{{door=\"{door}\",transport=\"{transport}\"}}");
        assert_eq!(metric(&a.base, &series), Some(1.0), "{series}");
    }

    // Bad input: Handle error codes, never silence or a crash.
    let bad_site_requests: [(&[u8], u32); 3] = [
        (&[], 4),                 // no handle field
        (&[0, 0, 0, 9, b'x'], 4), // a handle longer than the body
        (&[0xff, 0xff, 0xff, 0xff], 4),
    ];
    for (body, code) in bad_site_requests {
        let answer = udp(a_handle, &message(48, OC_GET_SITE_INFO, body));
        assert_eq!((answer.request_id, answer.code), (48, code), "{body:?}");
        assert!(!answer.body.is_empty(), "an error message");
    }
    for (prefix, code) in [
        ("88.300", 100),
        ("88.100.9", 100),
        ("88..100", 102),
        ("bid", 102),
    ] {
        let answer = tcp(
            idis,
            &message(49, OC_RESOLUTION, &resolution(prefix, &["HS_SITE"])),
        );
        assert_eq!(answer.code, code, "{prefix}");
    }
    let (status, _) = get_json(&format!("{}/healthz", a.base));
    assert_eq!(status, 200);

    // The REST door carries the site too (binary data: base64).
    let (status, body) = get_json(&format!("{}/api/handles/0.NA/88.100?type=HS_SITE", a.base));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["values"][0]["type"], "HS_SITE");
    assert_eq!(body["values"][0]["data"]["format"], "base64");
}

#[test]
fn a_node_on_a_wildcard_address_names_no_site_until_told_its_public_address() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_tcp_port();
    let listen = format!("0.0.0.0:{port}");
    let local: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let data = dir.path().join("data");
    let d = start_with_env(&data, &["--dev", "--handle", &listen], &[]);
    let key = data.join("validator.key").to_string_lossy().to_string();
    serve_prefix(&d.base, &key, "88.100", &[], None);
    // No address a client could reach: no HS_SITE, and GET_SITE_INFO is not supported.
    let a = tcp(
        local,
        &message(51, OC_RESOLUTION, &resolution("88.100", &["HS_SITE"])),
    );
    assert_eq!(a.code, 200, "values not found");
    let a = tcp(local, &message(52, OC_GET_SITE_INFO, &site_request()));
    assert_eq!(a.code, 5);
    drop(d);

    // Told, it names it.
    let d = start_with_env(
        &data,
        &[
            "--dev",
            "--handle",
            &listen,
            "--handle-site-address",
            "tcp://192.0.2.10:2641",
        ],
        &[],
    );
    let (sites, server) = discover(local, "88.100");
    assert_eq!(server, "192.0.2.10:2641".parse::<SocketAddr>().unwrap());
    assert_eq!(sites[0].servers.len(), 1);
    drop(d);
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
fn pyhandle_reads_a_prefix_site_over_rest() {
    let python = python();
    let probe = std::process::Command::new(&python)
        .args(["-c", "import pyhandle"])
        .output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "pyhandle is not installed for {python}: run ./scripts/test, which installs it into \
         target/pyhandle-venv (or set SPARKID_PYTHON to a python with pyhandle)"
    );
    let dir = tempfile::tempdir().unwrap();
    let (d, handle_addr, authority) = daemon(dir.path(), &[], &[]);
    let device = serve_prefix(&d.base, &authority, "88.100", &[], Some("88.100/pump-7"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/handle_idis_pyhandle.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .args([
            d.base.as_str(),
            "88.100",
            &handle_addr.to_string(),
            "88.100/pump-7",
            &device,
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
}
