//! HTTP server limits, rate limits, dev mode (issue 12, items 4, 7, 14, 15): each attack against a spawned daemon, asserting its bounded outcome.
//!
//! Attackers connect from other loopback addresses (127.0.0.2, 127.0.0.3), so that the
//! per-client limits they hit are told apart from the victim's on 127.0.0.1.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Daemon, BIN};
use serde_json::{json, Value};

/// The daemon's address.
fn addr(daemon: &Daemon) -> SocketAddr {
    daemon.base.trim_start_matches("http://").parse().unwrap()
}

/// A TCP connection to `to` from the loopback address `from`.
fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    let local: SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&local.into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(2))?;
    Ok(socket.into())
}

/// Opens a connection from `from` and sends half a request head (a slowloris).
fn slow_connection(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let mut tcp = connect_from(from, to)?;
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: sparkid\r\nX-Slow: ")?;
    Ok(tcp)
}

/// Whether the server closed `tcp` (EOF, reset, or an answer then EOF) within `within`.
fn closed_within(tcp: &TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        tcp.set_read_timeout(Some(left)).unwrap();
        let mut reader = tcp;
        match reader.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// One `GET path` on a fresh connection from 127.0.0.1 (`Connection: close`): status and body.
fn get_fresh(to: SocketAddr, path: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: sparkid\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

/// Item 4: slow request heads are cut at the header-read timeout, and a client gets no more
/// than its share of connections: the excess is answered 429 and closed at once.
#[test]
fn slow_heads_are_cut_and_a_client_holds_only_its_share_of_connections() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_with(
        dir.path(),
        &[
            "--handle",
            "off",
            "--header-read-timeout-ms",
            "1000",
            "--max-connections-per-client",
            "16",
        ],
    );
    let to = addr(&daemon);
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(slow_connection("127.0.0.2", to).unwrap());
    }
    // The 24 over the cap are closed promptly; the 16 within it are held until the timeout.
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let refused = held
        .iter()
        .filter(|tcp| closed_within(tcp, Duration::from_millis(20)))
        .count();
    assert!(
        refused >= 24,
        "{refused} of 40 slow connections refused at once, with a cap of 16 per client"
    );
    assert!(start.elapsed() < Duration::from_secs(2));
    let open: Vec<&TcpStream> = held
        .iter()
        .filter(|tcp| !closed_within(tcp, Duration::from_millis(1)))
        .collect();
    // Another client is served meanwhile.
    assert_eq!(get_fresh(to, "/healthz").0, 200);
    let start = Instant::now();
    for tcp in open {
        assert!(
            closed_within(tcp, Duration::from_secs(4)),
            "a slow request head was still open after the 1 s header-read timeout"
        );
    }
    assert!(start.elapsed() < Duration::from_secs(4));
    let timed_out = common::metric(
        &daemon.base,
        "sparkid_http_connections_timed_out_total{timeout=\"header_read\"}",
    );
    assert!(timed_out.unwrap_or(0.0) >= 1.0, "{timed_out:?}");
    let refused = common::metric(
        &daemon.base,
        "sparkid_http_refused_total{reason=\"connections_per_client\"}",
    );
    assert!(refused.unwrap_or(0.0) >= 24.0, "{refused:?}");
}

/// Item 4: a connection on which nothing moves (here a request whose announced body never
/// comes) is closed at the idle timeout, and counted.
#[test]
fn a_connection_where_nothing_moves_is_closed_at_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_with(dir.path(), &["--handle", "off", "--idle-timeout-secs", "1"]);
    let mut tcp = connect_from("127.0.0.2", addr(&daemon)).unwrap();
    tcp.write_all(
        b"POST /1.0/create?method=bid HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{",
    )
    .unwrap();
    let start = Instant::now();
    assert!(
        closed_within(&tcp, Duration::from_secs(5)),
        "a stalled request body held its connection past the 1 s idle timeout"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    let idle = common::metric(
        &daemon.base,
        "sparkid_http_connections_timed_out_total{timeout=\"idle\"}",
    );
    assert_eq!(idle, Some(1.0));
}

/// A slowloris loop from `from` until `stop`: keeps `count` half-sent heads open, replacing
/// each one the server closes.
fn slowloris(from: &'static str, to: SocketAddr, count: usize, stop: Arc<AtomicBool>) {
    let mut open: Vec<TcpStream> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        open.retain_mut(|tcp| !closed_within(tcp, Duration::from_millis(1)));
        while open.len() < count && !stop.load(Ordering::Relaxed) {
            match slow_connection(from, to) {
                Ok(tcp) => open.push(tcp),
                Err(_) => break,
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Item 4: `/healthz` from a fresh client stays fast (p99 under 100 ms over 200 requests,
/// each on a new connection) while two slowloris loops hold and renew far more half-sent
/// heads than their caps allow.
#[test]
fn healthz_stays_fast_while_two_slowloris_loops_run() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_with(
        dir.path(),
        &[
            "--handle",
            "off",
            "--header-read-timeout-ms",
            "2000",
            "--max-connections-per-client",
            "64",
        ],
    );
    let to = addr(&daemon);
    let stop = Arc::new(AtomicBool::new(false));
    let attackers: Vec<_> = ["127.0.0.2", "127.0.0.3"]
        .into_iter()
        .map(|from| {
            let stop = stop.clone();
            std::thread::spawn(move || slowloris(from, to, 300, stop))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut times = Vec::new();
    for _ in 0..200 {
        let start = Instant::now();
        let (status, _) = get_fresh(to, "/healthz");
        times.push(start.elapsed());
        assert_eq!(status, 200);
    }
    stop.store(true, Ordering::Relaxed);
    for a in attackers {
        a.join().unwrap();
    }
    times.sort();
    let p99 = times[times.len() * 99 / 100 - 1];
    eprintln!(
        "healthz under slowloris: median {:?}, p99 {p99:?}",
        times[times.len() / 2]
    );
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?}");
    let refused = common::metric(
        &daemon.base,
        "sparkid_http_refused_total{reason=\"connections_per_client\"}",
    );
    assert!(
        refused.unwrap_or(0.0) > 0.0,
        "the attackers were never refused: {refused:?}"
    );
}

/// Item 4: a client holds at most its long polls; one more is answered 429 at once, in the
/// peer API's problem shape, while another client may still wait.
#[test]
fn long_polls_are_capped_per_client() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_with(
        dir.path(),
        &["--handle", "off", "--max-long-polls-per-client", "2"],
    );
    let to = addr(&daemon);
    let poll = "/1.0/ledger/blocks?from=1000&wait=3000";
    let waiting: Vec<_> = (0..2)
        .map(|_| std::thread::spawn(move || get_fresh(to, poll)))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let (status, answer) = get_fresh(to, poll);
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(status, 429, "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(lower.contains("retry-after: "), "{answer}");
    assert!(lower.contains("application/problem+json"), "{answer}");
    assert!(
        answer.contains("urn:sparkid:problem:rate-limited"),
        "{answer}"
    );
    // Another client is not held to this one's polls.
    let mut other = connect_from("127.0.0.2", to).unwrap();
    write!(
        other,
        "GET /1.0/ledger/blocks?from=1000&wait=200 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    other.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    for w in waiting {
        assert_eq!(w.join().unwrap().0, 200);
    }
}

/// The value of `name` in a raw HTTP answer's head.
fn header_of(answer: &str, name: &str) -> Option<String> {
    let head = answer.split("\r\n\r\n").next()?;
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

/// The JSON body of a raw HTTP answer.
fn body_of(answer: &str) -> Value {
    let body = answer.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

/// One POST of `body` on a fresh connection from 127.0.0.1: the raw answer.
fn post_fresh(to: SocketAddr, path: &str, body: &str) -> String {
    let mut tcp = TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        tcp,
        "POST {path} HTTP/1.1\r\nHost: sparkid\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    answer
}

/// Item 7: writes and expensive reads over a client's rate get 429 with `Retry-After`, in each
/// door's own error shape, counted by class; cheap reads and other clients are not held back.
#[test]
fn writes_and_expensive_reads_over_the_rate_get_429_in_the_doors_shape() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_with(
        dir.path(),
        &[
            "--handle",
            "off",
            "--rate-write",
            "0.2",
            "--rate-write-burst",
            "3",
            "--rate-expensive",
            "0.2",
            "--rate-expensive-burst",
            "2",
        ],
    );
    let to = addr(&daemon);
    // Writes: the registrar's `failed` state.
    for _ in 0..3 {
        let answer = post_fresh(to, "/1.0/create?method=bid", "{}");
        assert!(!answer.starts_with("HTTP/1.1 429"), "{answer}");
    }
    let answer = post_fresh(to, "/1.0/create?method=bid", "{}");
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    let retry: u64 = header_of(&answer, "retry-after").unwrap().parse().unwrap();
    assert!((1..=5).contains(&retry), "{retry}");
    let body = body_of(&answer);
    assert_eq!(body["didState"]["state"], "failed", "{body}");
    assert!(
        body["didState"]["reason"]
            .as_str()
            .unwrap()
            .contains("too many write requests"),
        "{body}"
    );
    // Expensive reads: a DID Resolution result with its problem object...
    let did = "did:bid:ef26wQUJ3NpMhNYDLsV9nHuGbDDHM3sa";
    for _ in 0..2 {
        let (status, answer) = get_fresh(to, &format!("/1.0/identifiers/{did}?noCache=true"));
        assert_ne!(status, 429, "{answer}");
    }
    let (status, answer) = get_fresh(to, &format!("/1.0/identifiers/{did}?noCache=true"));
    assert_eq!(status, 429, "{answer}");
    assert!(header_of(&answer, "retry-after").is_some(), "{answer}");
    let body = body_of(&answer);
    assert_eq!(
        body["didResolutionMetadata"]["error"]["type"], "urn:sparkid:problem:rate-limited",
        "{body}"
    );
    // ... and the BID protocol's envelope, from the same bucket.
    let (status, answer) = get_fresh(to, &format!("/{did}?verify=true"));
    assert_eq!(status, 429, "{answer}");
    assert_eq!(body_of(&answer)["errorCode"], 2, "{answer}");
    // A cheap read is not limited; nor is another client.
    let (status, _) = get_fresh(to, &format!("/1.0/identifiers/{did}"));
    assert_eq!(status, 404);
    let mut other = connect_from("127.0.0.2", to).unwrap();
    write!(
        other,
        "GET /1.0/identifiers/{did}?noCache=true HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    other.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");
    let write = common::metric(&daemon.base, "sparkid_rate_limited_total{class=\"write\"}");
    assert_eq!(write, Some(1.0));
    let expensive = common::metric(
        &daemon.base,
        "sparkid_rate_limited_total{class=\"expensive\"}",
    );
    assert_eq!(expensive, Some(2.0));
}

/// A daemon spawned with its stderr collected, for the tests that watch it fail or exit.
struct Watched {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Watched {
    fn spawn(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Watched {
        let mut command = Command::new(BIN);
        command
            .args(["serve", "--data"])
            .arg(data)
            .args(["--log", "warn"])
            .args(args)
            .env_remove("SPARKID_DEV")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                eprintln!("[sparkid] {line}");
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Watched { child, stderr }
    }

    /// The exit status if the process ends within `within`; else it is killed and `None`.
    fn exit_within(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                std::thread::sleep(Duration::from_millis(100)); // the last stderr lines
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_healthy(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::blocking::get(format!("{base}/healthz")).is_err() {
        assert!(Instant::now() < deadline, "the daemon did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Item 14: a block producer that panics does not stop writes silently: the write gets a 503
/// `failed` answer, the panic is logged, `/healthz` answers 503, and the process exits
/// non-zero for its supervisor to restart it. (The panic is injected through the dev-only
/// fault variable `SPARKID_DEV_FAULT`.)
#[test]
fn a_panicking_block_producer_fails_health_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let http = format!("127.0.0.1:{port}");
    let mut daemon = Watched::spawn(
        dir.path(),
        &["--http", &http, "--handle", "off"],
        &[("SPARKID_DEV_FAULT", "block-producer-panic")],
    );
    let base = format!("http://{http}");
    wait_healthy(&base);
    let key = sparkid_bid::PrivateKey::generate();
    let doc = sparkid_registrar::api::new_document_on(&key.public_key(), None, None).unwrap();
    let (status, answer) = common::sign_and_send(
        &format!("{base}/1.0/create?method=bid"),
        json!({"options": {"clientSecretMode": true}, "didDocument": doc}),
        &key,
    );
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["didState"]["state"], "failed", "{answer}");
    let (status, health) = common::get_json(&format!("{base}/healthz"));
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["status"], "failed", "{health}");
    let exit = daemon.exit_within(Duration::from_secs(20));
    let exit = exit.expect("the daemon kept running with a dead block producer");
    assert!(!exit.success(), "{exit:?}");
    let log = daemon.stderr();
    assert!(log.contains("the block producer panicked"), "{log}");
}

/// Item 15: a bare `sparkid serve` on an address beyond loopback does not start in dev mode;
/// with `--dev` it does.
#[test]
fn dev_mode_never_starts_off_loopback_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let http = format!("0.0.0.0:{port}");
    let mut daemon = Watched::spawn(
        &dir.path().join("d"),
        &["--http", &http, "--handle", "off"],
        &[],
    );
    let exit = daemon
        .exit_within(Duration::from_secs(20))
        .expect("a dev daemon started on 0.0.0.0 without --dev");
    assert!(!exit.success());
    let log = daemon.stderr();
    assert!(
        log.contains("refusing to start in dev mode on 0.0.0.0") && log.contains("--dev"),
        "{log}"
    );
    // Nothing was created either.
    assert!(!dir.path().join("d").join("validator.key").exists());
    let mut asked = Watched::spawn(
        &dir.path().join("d"),
        &["--http", &http, "--handle", "off", "--dev"],
        &[],
    );
    wait_healthy(&format!("http://127.0.0.1:{port}"));
    assert!(asked.child.try_wait().unwrap().is_none());
}

/// A non-dev single-validator ledger in `data`, made by `serve --genesis --validator-key`;
/// returns the key file.
fn real_ledger(data: &Path, dir: &Path) -> std::path::PathBuf {
    let key = sparkid_bid::PrivateKey::generate();
    let key_file = dir.join("real.key");
    std::fs::write(&key_file, key.to_encoded()).unwrap();
    let genesis = dir.join("genesis.json");
    std::fs::write(
        &genesis,
        json!({"chainId": "real-chain", "time": 1_700_000_000u64,
               "validators": [key.public_key().to_encoded()]})
        .to_string(),
    )
    .unwrap();
    let daemon = Daemon::start_with(
        data,
        &[
            "--handle",
            "off",
            "--genesis",
            genesis.to_str().unwrap(),
            "--validator-key",
            key_file.to_str().unwrap(),
        ],
    );
    drop(daemon);
    key_file
}

/// Item 15: a real ledger never opens in dev mode, even with its validator key put where dev
/// mode looks for it; and a dev ledger never opens as a real node.
#[test]
fn real_and_dev_ledgers_never_open_in_the_other_mode() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("real");
    let key_file = real_ledger(&data, dir.path());
    std::fs::copy(&key_file, data.join("validator.key")).unwrap();
    let http = format!("127.0.0.1:{}", common::free_port());
    let mut dev = Watched::spawn(&data, &["--http", &http, "--handle", "off", "--dev"], &[]);
    let exit = dev
        .exit_within(Duration::from_secs(20))
        .expect("dev mode opened a real chain's ledger");
    assert!(!exit.success());
    let log = dev.stderr();
    assert!(
        log.contains("\"real-chain\", which is not a dev ledger"),
        "{log}"
    );

    let dev_data = dir.path().join("dev");
    drop(Daemon::start_with(&dev_data, &["--handle", "off"]));
    let dev_key = dev_data.join("validator.key");
    let http = format!("127.0.0.1:{}", common::free_port());
    let mut real = Watched::spawn(
        &dev_data,
        &[
            "--http",
            &http,
            "--handle",
            "off",
            "--validator-key",
            dev_key.to_str().unwrap(),
        ],
        &[],
    );
    let exit = real
        .exit_within(Duration::from_secs(20))
        .expect("a dev ledger opened as a real node");
    assert!(!exit.success());
    let log = real.stderr();
    assert!(log.contains("holds a dev ledger"), "{log}");
}
