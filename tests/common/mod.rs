//! Shared helpers of the end-to-end tests: a spawned `sparkid` daemon on a free port, an HTTP
//! client, and the registrar's client-managed exchange. Each test file uses part of them.
#![allow(dead_code)]

pub mod proxy;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use sparkid_bid::PrivateKey;

/// The `sparkid` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_sparkid");

/// A running daemon, killed when dropped.
pub struct Daemon {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Daemon {
    /// Starts `sparkid serve` (dev mode) on `data`, with `extra` arguments, and waits for
    /// `/healthz`.
    pub fn start_with(data: &Path, extra: &[&str]) -> Daemon {
        Daemon::start_at(data, free_port(), extra)
    }

    /// Starts `sparkid serve` on `data` at `127.0.0.1:<port>` (a restarted validator keeps
    /// the address its peers know), with `extra` arguments, and waits for `/healthz`.
    pub fn start_at(data: &Path, port: u16, extra: &[&str]) -> Daemon {
        Daemon::start_at_with_env(data, port, extra, &[])
    }

    /// [`Daemon::start_at`] with `env` set in the daemon's environment.
    pub fn start_at_with_env(
        data: &Path,
        port: u16,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Daemon {
        let mut child = Command::new(BIN)
            .args(["serve", "--data"])
            .arg(data)
            .args(["--http", &format!("127.0.0.1:{port}"), "--log"])
            // SPARKID_TEST_LOG: a log filter for the daemons of a test run being debugged.
            .arg(std::env::var("SPARKID_TEST_LOG").unwrap_or_else(|_| "warn".into()))
            .args(extra)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sparkid");
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[sparkid] {line}");
            }
        });
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::blocking::get(format!("{base}/healthz")).is_err() {
            assert!(Instant::now() < deadline, "the daemon did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        Daemon { child, base }
    }

    /// Starts `sparkid serve` (dev mode) on `data`.
    pub fn start(data: &Path) -> Daemon {
        Daemon::start_with(data, &[])
    }

    /// Kills the process with SIGKILL: no shutdown code runs.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port free on 127.0.0.1 for both UDP and TCP (for the DNS and Handle doors).
pub fn free_udp_tcp_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A real `redis-server` on a free port, with no persistence, in a temporary directory;
/// killed when dropped. `scripts/test` installs it.
pub struct Redis {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts one and waits until it answers PING.
    pub fn start() -> Redis {
        let mut redis = Redis {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
        };
        redis.spawn();
        redis
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test installs it)");
        self.child = Some(child);
        let url = self.url();
        let deadline = Instant::now() + Duration::from_secs(10);
        while redis::Client::open(url.as_str())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_err()
        {
            assert!(Instant::now() < deadline, "redis-server did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// SIGKILL: Redis vanishes mid-run.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A new (empty) Redis on the same port.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// A connection to it.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url().as_str())
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A blocking client with a 30 s timeout.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// POSTs JSON; returns the status and the JSON answer.
pub fn post(url: &str, body: &Value) -> (u16, Value) {
    let r = client().post(url).json(body).send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap())
}

/// GETs a URL; returns the status, the Content-Type and the body text.
pub fn get(url: &str) -> (u16, String, String) {
    let r = client().get(url).send().unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, content_type, r.text().unwrap())
}

/// GETs a URL that answers JSON; returns the status and the JSON.
pub fn get_json(url: &str) -> (u16, Value) {
    let (status, _, text) = get(url);
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}"));
    (status, value)
}

/// The client-managed exchange: ask, sign the serialized payload with `key`, answer (with the
/// job's secret).
pub fn sign_and_send(url: &str, body: Value, key: &PrivateKey) -> (u16, Value) {
    let (status, first) = post(url, &body);
    if first["didState"]["state"] != "action" {
        return (status, first);
    }
    let payload = first["didState"]["signingRequest"]["signingRequest0"]["serializedPayload"]
        .as_str()
        .unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .unwrap();
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.sign(&bytes).0);
    post(
        url,
        &json!({ "jobId": first["jobId"], "secret": {
            "jobSecret": first["didRegistrationMetadata"]["jobSecret"],
            "signingResponse": { "signingRequest0": { "signature": signature } } } }),
    )
}

/// Creates a DID for a new key whose native document has the members of `template` (services,
/// alsoKnownAs, extension members); returns the key and the DID.
pub fn create_did(base: &str, template: Option<Value>) -> (PrivateKey, String) {
    create_did_on(base, None, template)
}

/// [`create_did`] on the chain with AC code `ac` (a sub-chain: `did:bid:<ac>:…`).
pub fn create_did_on(
    base: &str,
    ac: Option<&str>,
    template: Option<Value>,
) -> (PrivateKey, String) {
    let key = PrivateKey::generate();
    let ac = ac.map(|a| a.parse().unwrap());
    let doc = sparkid_registrar::api::new_document_on(&key.public_key(), ac, template).unwrap();
    let did = doc["id"].as_str().unwrap().to_string();
    let (status, created) = sign_and_send(
        &format!("{base}/1.0/create?method=bid"),
        json!({"options": {"clientSecretMode": true}, "didDocument": doc}),
        &key,
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["didState"]["state"], "finished", "{created}");
    (key, did)
}

/// A sample of the daemon's `/metrics` at `base`, by exact series name (with labels).
pub fn metric(base: &str, series: &str) -> Option<f64> {
    let text = client()
        .get(format!("{base}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

/// Runs `sparkid verify FILE ARGS`; returns success and the output (stdout, then stderr).
pub fn verify_file(file: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(BIN)
        .arg("verify")
        .arg(file)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Deactivates `did` with its recovery key.
pub fn deactivate(base: &str, did: &str, key: &PrivateKey) {
    let (status, answer) =
        sign_and_send(&format!("{base}/1.0/deactivate"), json!({"did": did}), key);
    assert_eq!(status, 200, "{answer}");
}

/// Runs the `sparkid` CLI with `args`; it must succeed. Its JSON output (null if none).
pub fn cli(args: &[&str]) -> Value {
    let out = Command::new(BIN).args(args).output().expect("run sparkid");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sparkid {args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or(Value::Null)
}

/// `sparkid namespace <args[0]> --endpoint base --key key <args[1..]>`: a namespace operation
/// signed with `key` (the authority's key file for `delegate`).
pub fn namespace(base: &str, key: &str, args: &[&str]) -> Value {
    let mut all = vec!["namespace", args[0], "--endpoint", base, "--key", key];
    all.extend_from_slice(&args[1..]);
    cli(&all)
}

/// Starts `sparkid serve` (dev mode) on `data` with `extra` arguments and `env` set in its
/// environment (settings a daemon without the matching flag ignores, so that a test written
/// before a setting existed runs, and fails, against an older daemon), and waits for
/// `/healthz`.
pub fn start_with_env(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
    Daemon::start_at_with_env(data, free_port(), extra, env)
}

/// `sparkid did link`: the controller of `did` (its authentication key `key`) confirms the
/// identifier bound to it, which then shows in its `alsoKnownAs` and DNS `aka` (issue 12).
pub fn link(base: &str, did: &str, key: &str, kind: &str, identifier: &str) -> Value {
    cli(&[
        "did",
        "link",
        "--endpoint",
        base,
        "--did",
        did,
        "--key",
        key,
        "--kind",
        kind,
        "--identifier",
        identifier,
    ])
}

/// The headers that sign a request between validators (`sparkid-validator`, `sparkid-signed-at`,
/// `sparkid-signature`): `key`'s Ed25519 signature over `"sparkid/validator-request/v1\n"`,
/// the chain id, the path, the receiving validator's encoded key (lower case), the time (Unix
/// ms) and the body's SHA-256, one per line (spec/consensus.md).
pub fn validator_request_headers(
    key: &PrivateKey,
    chain_id: &str,
    path: &str,
    audience: &str,
    body: &[u8],
) -> Vec<(&'static str, String)> {
    let signed_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let mut bytes = b"sparkid/validator-request/v1\n".to_vec();
    bytes.extend_from_slice(
        format!(
            "{chain_id}\n{path}\n{}\n{signed_at}\n{}",
            audience.to_ascii_lowercase(),
            sparkid_ledger::Hash::of(&[body])
        )
        .as_bytes(),
    );
    vec![
        ("sparkid-validator", key.public_key().to_encoded()),
        ("sparkid-signed-at", signed_at),
        ("sparkid-signature", hex::encode(key.sign(&bytes).0)),
    ]
}

/// Every sample of the daemon's cache counters that a did:bid read through the cache moves
/// (L1 hits and misses, answers kept or rendered from L1), summed: a read that bypasses the
/// cache (`noCache=true`) leaves it unchanged.
pub fn cache_activity(base: &str) -> f64 {
    [
        "sparkid_cache_hits_total{tier=\"l1\"}",
        "sparkid_cache_misses_total{tier=\"l1\"}",
        "sparkid_cache_rendered_total{outcome=\"kept\"}",
        "sparkid_cache_rendered_total{outcome=\"rendered\"}",
    ]
    .iter()
    .map(|series| metric(base, series).unwrap_or(0.0))
    .sum()
}

/// A daemon started in this test's process on a port-0 listener ([`sparkid::serve::start`]):
/// no process to spawn. For tests that need no process of their own (a crash test, kill -9,
/// needs a [`Daemon`]). Stopped when dropped.
pub struct InProcessDaemon {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    daemon: Option<sparkid::serve::InProcess>,
}

impl InProcessDaemon {
    /// Stops it (its HTTP door first, then its runtime) and waits for it.
    pub fn stop(mut self) {
        if let Some(d) = self.daemon.take() {
            d.stop().expect("the in-process daemon failed");
        }
    }
}

impl Drop for InProcessDaemon {
    fn drop(&mut self) {
        if let Some(d) = self.daemon.take() {
            let _ = d.stop();
        }
    }
}

/// Starts `sparkid serve --data <data> <extra>` in this process (the configuration exactly as
/// the command would read it: flags, environment, `--config`), on `127.0.0.1:0`, and waits for
/// `/healthz`.
pub fn start_in_process(data: &Path, extra: &[&str]) -> InProcessDaemon {
    let mut args: Vec<std::ffi::OsString> = vec!["--data".into(), data.into()];
    args.extend(["--log", "warn"].map(Into::into));
    args.extend(extra.iter().map(Into::into));
    let config = sparkid::cli::serve_config(args).expect("a serve configuration");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let daemon = sparkid::serve::start(config, listener).expect("start the daemon in process");
    let base = format!("http://{}", daemon.addr());
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::blocking::get(format!("{base}/healthz")).is_err() {
        assert!(Instant::now() < deadline, "the daemon did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    InProcessDaemon {
        base,
        daemon: Some(daemon),
    }
}

/// `dig @127.0.0.1 -p <port> +norec +time=3 +tries=1 <args>`: its output, each line's
/// whitespace collapsed to one space (dig aligns columns with tabs or spaces depending on the
/// name's length).
pub fn dig(port: u16, args: &[&str]) -> String {
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

/// The response code in `dig`'s output (`NOERROR`, `NXDOMAIN`, ...).
pub fn dig_status(output: &str) -> &str {
    output
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or_else(|| panic!("no status in {output}"))
}
