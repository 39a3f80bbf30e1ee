//! TLS, both ways, with a CA and certificates made here (`rcgen`):
//!
//! - **Inbound**: `sparkid serve --tls-cert --tls-key` answers HTTPS to curl (`--cacert`) and
//!   reqwest, writes and reads included; a client without the CA refuses it; a plaintext client
//!   on the TLS port is closed without an HTTP answer; the edge's limits hold for TLS
//!   connections (the handshake timeout, the per-client connection cap, the rate limits).
//! - **Outbound**: an `https://` Universal Resolver driver (a small tokio-rustls server), an
//!   `https://` peer to follow and an `https://` sub-chain resolver (each a second sparkid
//!   answering TLS) are trusted with `--ca-file` and refused, with an error naming the
//!   certificate, without it.
//! - Settings that cannot work (a certificate without a key, a key that is not the
//!   certificate's, a CA file that holds no certificate) stop the daemon at start with a clear
//!   message.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use common::{free_port, Daemon, BIN};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use serde_json::{json, Value};
use sparkid_bid::PrivateKey;

/// A CA and a server certificate it issued for `localhost` and `127.0.0.1`, as PEM files.
struct Pki {
    ca: PathBuf,
    ca_pem: Vec<u8>,
    cert: PathBuf,
    key: PathBuf,
}

fn pki(dir: &Path) -> Pki {
    std::fs::create_dir_all(dir).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sparkid test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = KeyPair::generate().unwrap();
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca).unwrap();
    let files = Pki {
        ca: dir.join("ca.pem"),
        ca_pem: ca.pem().into_bytes(),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    std::fs::write(&files.ca, &files.ca_pem).unwrap();
    std::fs::write(&files.cert, cert.pem()).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    files
}

/// A blocking client trusting `ca` (PEM) besides the web roots, or the web roots only.
fn https_client(ca: Option<&[u8]>) -> reqwest::blocking::Client {
    let mut builder = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30));
    if let Some(pem) = ca {
        builder = builder.add_root_certificate(reqwest::Certificate::from_pem(pem).unwrap());
    }
    builder.build().unwrap()
}

/// `sparkid serve` (dev mode) answering TLS with `pki`'s certificate on a free port, with
/// `extra` arguments; waits for `https://localhost:<port>/healthz`.
fn start_https(data: &Path, pki: &Pki, extra: &[&str]) -> Daemon {
    let port = free_port();
    let mut child = Command::new(BIN)
        .args(["serve", "--data"])
        .arg(data)
        .args(["--http", &format!("127.0.0.1:{port}"), "--log", "warn"])
        .arg("--tls-cert")
        .arg(&pki.cert)
        .arg("--tls-key")
        .arg(&pki.key)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sparkid");
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[sparkid tls] {line}");
        }
    });
    let base = format!("https://localhost:{port}");
    let client = https_client(Some(&pki.ca_pem));
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/healthz")).send().is_err() {
        assert!(Instant::now() < deadline, "the TLS daemon did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
    Daemon { child, base }
}

/// Creates a DID on the daemon at `base` through `client` (the client-managed exchange).
fn create_did(client: &reqwest::blocking::Client, base: &str) -> String {
    create_did_on(client, base, None)
}

/// [`create_did`] on the sub-chain `ac` when given.
fn create_did_on(client: &reqwest::blocking::Client, base: &str, ac: Option<&str>) -> String {
    let key = PrivateKey::generate();
    let ac = ac.map(|a| a.parse().unwrap());
    let doc = sparkid_registrar::api::new_document_on(&key.public_key(), ac, None).unwrap();
    let did = doc["id"].as_str().unwrap().to_string();
    let url = format!("{base}/1.0/create?method=bid");
    let post = |body: &Value| -> (u16, Value) {
        let r = client.post(&url).json(body).send().unwrap();
        (r.status().as_u16(), r.json().unwrap())
    };
    let (_, first) = post(&json!({"options": {"clientSecretMode": true}, "didDocument": doc}));
    assert_eq!(first["didState"]["state"], "action", "{first}");
    let payload = first["didState"]["signingRequest"]["signingRequest0"]["serializedPayload"]
        .as_str()
        .unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .unwrap();
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.sign(&bytes).0);
    let (status, done) = post(&json!({ "jobId": first["jobId"], "secret": {
        "jobSecret": first["didRegistrationMetadata"]["jobSecret"],
        "signingResponse": { "signingRequest0": { "signature": signature } } } }));
    assert_eq!(status, 201, "{done}");
    assert_eq!(done["didState"]["state"], "finished", "{done}");
    did
}

/// A sample of `/metrics` at `base` through `client`, by exact series name (with labels).
fn metric(client: &reqwest::blocking::Client, base: &str, series: &str) -> f64 {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

/// Reads until the server closes `tcp` (or `limit` passes); returns what came and how long the
/// server took to close.
fn read_until_closed(tcp: &mut TcpStream, limit: Duration) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    tcp.set_read_timeout(Some(limit)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tcp.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if start.elapsed() >= limit {
            break;
        }
    }
    (got, start.elapsed())
}

fn port_of(base: &str) -> u16 {
    base.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn the_http_door_answers_tls_with_every_edge_limit_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(&dir.path().join("pki"));
    let daemon = start_https(
        &dir.path().join("data"),
        &pki,
        &[
            "--header-read-timeout-ms",
            "1000",
            "--max-connections-per-client",
            "4",
            "--rate-expensive",
            "0.01",
            "--rate-expensive-burst",
            "2",
        ],
    );
    let base = &daemon.base;
    let trusted = https_client(Some(&pki.ca_pem));

    // curl with the CA: the health check over TLS.
    let curl = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&pki.ca)
        .args(["-w", "\n%{http_code}", &format!("{base}/healthz")])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&curl.stdout);
    assert!(curl.status.success(), "curl: {out} {:?}", curl.stderr);
    assert!(out.ends_with("\n200"), "curl: {out}");
    // curl without it: the certificate is not vouched for (curl's exit code 60).
    let untrusted_curl = Command::new("curl")
        .args(["-sS", &format!("{base}/healthz")])
        .output()
        .unwrap();
    assert_eq!(untrusted_curl.status.code(), Some(60), "{untrusted_curl:?}");

    // reqwest with the CA: a write, then a read of it.
    let did = create_did(&trusted, base);
    let resolved: Value = trusted
        .get(format!("{base}/1.0/identifiers/{did}"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(resolved["didDocument"]["id"], did, "{resolved}");
    // reqwest without it refuses the daemon's certificate.
    let refused = https_client(None)
        .get(format!("{base}/healthz"))
        .send()
        .unwrap_err();
    let chain = common_error_chain(&refused);
    assert!(chain.contains("UnknownIssuer"), "{chain}");

    // The expensive-read rate limit holds over TLS: a burst of 2, then 429.
    let statuses: Vec<u16> = (0..3)
        .map(|_| {
            trusted
                .get(format!("{base}/1.0/identifiers/{did}?noCache=true"))
                .send()
                .unwrap()
                .status()
                .as_u16()
        })
        .collect();
    assert_eq!(statuses, [200, 200, 429]);

    // A plaintext client on the TLS port gets no HTTP answer, and is closed at once.
    let port = port_of(base);
    let mut plain = TcpStream::connect(("127.0.0.1", port)).unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let (got, took) = read_until_closed(&mut plain, Duration::from_secs(5));
    assert!(
        !got.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(took < Duration::from_secs(2), "closed after {took:?}");

    // A client that opens and never says hello is closed by the handshake timeout (1 s).
    let mut silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (got, took) = read_until_closed(&mut silent, Duration::from_secs(10));
    assert!(got.is_empty());
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );
    let handshake_timeouts = metric(
        &trusted,
        base,
        "sparkid_http_connections_timed_out_total{timeout=\"tls_handshake\"}",
    );
    assert!(handshake_timeouts >= 1.0, "{handshake_timeouts}");

    // The per-client connection cap (4) holds before any handshake: with 4 open, the 5th is
    // closed unanswered at once, while the others wait for their handshake.
    drop(trusted);
    std::thread::sleep(Duration::from_millis(300));
    let held: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(100));
    let mut fifth = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (got, took) = read_until_closed(&mut fifth, Duration::from_secs(5));
    assert!(got.is_empty());
    assert!(took < Duration::from_millis(700), "closed after {took:?}");
    drop(held);
    std::thread::sleep(Duration::from_millis(1500));
    let trusted = https_client(Some(&pki.ca_pem));
    let refused_conns = metric(
        &trusted,
        base,
        "sparkid_http_refused_total{reason=\"connections_per_client\"}",
    );
    assert!(refused_conns >= 1.0, "{refused_conns}");
    let plain_refused = metric(
        &trusted,
        base,
        "sparkid_http_refused_total{reason=\"tls_handshake\"}",
    );
    assert!(plain_refused >= 1.0, "{plain_refused}");
}

/// An error and its causes (reqwest's own text does not name the TLS failure).
fn common_error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Spawns `sparkid serve` with `args` and returns the first stderr line containing `needle`,
/// or what it said before exiting or within `limit`.
fn stderr_line(args: &[&str], needle: &str, limit: Duration) -> (String, Option<i32>) {
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + limit;
    let mut seen = String::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => {
                seen = line;
                break;
            }
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let code = child.wait().ok().and_then(|s| s.code());
    (seen, code)
}

/// A Universal Resolver driver answering HTTPS with `pki`'s certificate (tokio-rustls, one
/// answer per connection): a DID document for whatever DID is asked. Returns its base URL.
fn https_driver(pki: &Pki) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&pki.cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(&pki.key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head);
                    let path = head.split(' ').nth(1).unwrap_or("/");
                    let did = path.rsplit('/').next().unwrap_or("");
                    let body = json!({
                        "@context": "https://www.w3.org/ns/did/v1",
                        "id": did,
                    })
                    .to_string();
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/did+json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
    });
    format!("https://localhost:{port}")
}

#[test]
fn https_drivers_and_peers_are_trusted_with_the_ca_file_and_refused_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(&dir.path().join("pki"));
    // The far side: a sparkid answering TLS, holding one DID.
    let far = start_https(&dir.path().join("far"), &pki, &[]);
    let trusted = https_client(Some(&pki.ca_pem));
    let did = create_did(&trusted, &far.base);
    let suffix = did.strip_prefix("did:bid:").unwrap();

    // A Universal Resolver driver over HTTPS, answering did:example DIDs.
    let driver = https_driver(&pki);
    let config = dir.path().join("driver.toml");
    std::fs::write(
        &config,
        format!(
            "[[driver]]\npattern = \"^(did:example:.+)$\"\nurl = \"{driver}/1.0/identifiers/$1\"\n"
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let ca = pki.ca.to_str().unwrap();
    let with_ca = Daemon::start_with(
        &dir.path().join("with-ca"),
        &["--config", config, "--ca-file", ca],
    );
    let without_ca = Daemon::start_with(&dir.path().join("without-ca"), &["--config", config]);
    let (status, answer) = common::get_json(&format!(
        "{}/1.0/identifiers/did:example:{suffix}",
        with_ca.base
    ));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["didDocument"]["id"],
        format!("did:example:{suffix}"),
        "{answer}"
    );
    let (status, answer) = common::get_json(&format!(
        "{}/1.0/identifiers/did:example:{suffix}",
        without_ca.base
    ));
    assert!(status >= 500, "{status} {answer}");
    let detail = answer.to_string();
    assert!(
        detail.contains("certificate") && detail.contains("UnknownIssuer"),
        "{detail}"
    );

    // A follower of the far side over HTTPS, with the CA: it syncs the DID.
    let follower = Daemon::start_with(
        &dir.path().join("follower"),
        &["--follow", &far.base, "--ca-file", ca],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, _) = common::get(&format!("{}/1.0/identifiers/{did}", follower.base));
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the follower never synced ({status})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Without the CA, the follower cannot fetch the genesis and says why.
    let data = dir.path().join("follower-without-ca");
    let (line, _) = stderr_line(
        &[
            "--data",
            data.to_str().unwrap(),
            "--http",
            &format!("127.0.0.1:{}", free_port()),
            "--handle",
            "off",
            "--log",
            "warn",
            "--follow",
            &far.base,
        ],
        "cannot fetch the genesis",
        Duration::from_secs(20),
    );
    assert!(line.contains("UnknownIssuer"), "{line}");
}

#[test]
fn tls_settings_that_cannot_work_stop_the_daemon_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(&dir.path().join("pki"));
    let other = self::pki(&dir.path().join("other"));
    let data = dir.path().join("data");
    let http = format!("127.0.0.1:{}", free_port());
    let base = [
        "--data",
        data.to_str().unwrap(),
        "--http",
        &http,
        "--handle",
        "off",
    ];
    let run = |extra: &[&str]| {
        let out = Command::new(BIN)
            .arg("serve")
            .args(base)
            .args(extra)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let cert = pki.cert.to_str().unwrap();
    let said = run(&["--tls-cert", cert]);
    assert!(
        said.contains("needs both --tls-cert and --tls-key"),
        "{said}"
    );
    let said = run(&["--tls-cert", cert, "--tls-key", other.key.to_str().unwrap()]);
    assert!(
        said.contains("TLS certificate") && said.contains("key"),
        "{said}"
    );
    let said = run(&["--tls-cert", cert, "--tls-key", cert]);
    assert!(said.contains("TLS key"), "{said}");
    let said = run(&["--ca-file", pki.key.to_str().unwrap()]);
    assert!(
        said.contains("CA file") && said.contains("no PEM certificate"),
        "{said}"
    );
}

#[test]
fn an_https_sub_chain_resolver_is_trusted_with_the_ca_file_and_refused_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(&dir.path().join("pki"));
    // The industry node hosts sub-chain by01 and answers TLS.
    let industry = start_https(
        &dir.path().join("industry"),
        &pki,
        &["--handle", "off", "--subchain", "by01"],
    );
    let sub_did = create_did_on(
        &https_client(Some(&pki.ca_pem)),
        &industry.base,
        Some("by01"),
    );
    let ca = pki.ca.to_str().unwrap();
    // Two main-chain resolvers delegate by01 to it: one trusts the CA, one does not.
    let mains =
        [("with-ca", vec!["--ca-file", ca]), ("without-ca", vec![])].map(|(name, extra)| {
            let data = dir.path().join(name);
            let mut args = vec!["--handle", "off"];
            args.extend(extra);
            let main = Daemon::start_with(&data, &args);
            let authority = data.join("validator.key").to_string_lossy().to_string();
            let (_, operator) = common::create_did(&main.base, None);
            common::namespace(
                &main.base,
                &authority,
                &[
                    "delegate",
                    "--kind",
                    "ac",
                    "--namespace",
                    "by01",
                    "--owner",
                    &operator,
                    "--endpoint-url",
                    &industry.base,
                ],
            );
            main
        });
    let (status, r) = common::get_json(&format!("{}/1.0/identifiers/{sub_did}", mains[0].base));
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["didDocument"]["id"], sub_did);
    assert_eq!(
        r["didResolutionMetadata"]["subChainResolver"],
        format!("{}/1.0/identifiers/{sub_did}", industry.base),
        "{r}"
    );
    let (status, r) = common::get_json(&format!("{}/1.0/identifiers/{sub_did}", mains[1].base));
    assert_eq!(status, 500, "{r}");
    let detail = r["didResolutionMetadata"]["error"]["detail"]
        .as_str()
        .unwrap_or_default();
    assert!(
        detail.contains("the resolver of sub-chain by01") && detail.contains("UnknownIssuer"),
        "{r}"
    );
}
