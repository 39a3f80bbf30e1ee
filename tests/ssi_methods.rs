//! did:web, did:jwk, did:pkh and the did:key types sparkid's own did:key does not render,
//! resolved through ssi by a spawned daemon: the documents are compared with the methods'
//! published examples (tests/fixtures/ssi_methods, sources in SOURCES.md), and did:web is
//! served over real HTTPS by a host in this test, whose CA (made here with rcgen) the daemon
//! trusts through `--did-web-ca-file`.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{client, Daemon};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../tests/fixtures/ssi_methods/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Resolves through the binding with `Accept: application/did-resolution`: status and result.
fn resolve(base: &str, did: &str, query: &str) -> (u16, Value) {
    // A DID in the path is percent-decoded once: a did:web port's `%3A` is sent as `%253A`.
    let r = client()
        .get(format!(
            "{base}/1.0/identifiers/{}{query}",
            did.replace('%', "%25")
        ))
        .header("accept", "application/did-resolution")
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{did}: {e}: {text}"));
    (status, value)
}

/// Each `members` entry of `document`, made absolute against `did` (the did:key vectors write
/// relative `#…` ids).
fn absolute(document: &Value, did: &str, member: &str) -> Value {
    let fix = |v: &Value| match v.as_str() {
        Some(s) if s.starts_with('#') => json!(format!("{did}{s}")),
        _ => v.clone(),
    };
    match document.get(member) {
        Some(Value::Array(list)) => Value::Array(
            list.iter()
                .map(|item| {
                    if item.is_string() {
                        fix(item)
                    } else {
                        let mut item = item.clone();
                        if let Some(id) = item.get("id").map(fix) {
                            item["id"] = id;
                        }
                        item
                    }
                })
                .collect(),
        ),
        other => other.cloned().unwrap_or(Value::Null),
    }
}

#[test]
fn computed_methods_match_their_published_examples() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&dir.path().join("data"));
    let base = &daemon.base;

    // did:jwk: the spec's P-256 example, member for member.
    let expected = fixture("did-jwk-p256.json");
    let did = expected["id"].as_str().unwrap();
    let (status, result) = resolve(base, did, "");
    assert_eq!(status, 200, "{result}");
    let document = &result["didDocument"];
    for member in [
        "id",
        "verificationMethod",
        "assertionMethod",
        "authentication",
        "capabilityInvocation",
        "capabilityDelegation",
        "keyAgreement",
    ] {
        // ssi writes the relationships as relative `#0`; the spec, absolute.
        assert_eq!(
            absolute(document, did, member),
            expected[member],
            "did:jwk {member}"
        );
    }
    assert_eq!(
        result["didResolutionMetadata"]["resolvedBy"], "ssi did:jwk",
        "{result}"
    );

    // did:pkh: the eip155 test vector. ssi's document has the vector's id, verification
    // method, authentication and assertionMethod; it leaves out capabilityDelegation and
    // capabilityInvocation, which the vector has.
    let expected = fixture("did-pkh-eip155.json");
    let did = expected["id"].as_str().unwrap();
    let (status, result) = resolve(base, did, "");
    assert_eq!(status, 200, "{result}");
    let document = &result["didDocument"];
    for member in [
        "id",
        "verificationMethod",
        "authentication",
        "assertionMethod",
    ] {
        assert_eq!(
            absolute(document, did, member),
            expected[member],
            "did:pkh {member}"
        );
    }
    assert!(document.get("capabilityDelegation").is_none());

    // did:key P-521 (501 before ssi): the test vector's DID, key id, controller and
    // relationships; the key is ssi's Multikey (the vector writes JsonWebKey2020, its
    // publicKeyFormat), whose publicKeyMultibase is the DID's own key.
    let expected = fixture("did-key-p521.json");
    let did = expected["id"].as_str().unwrap();
    let (status, result) = resolve(base, did, "");
    assert_eq!(status, 200, "{result}");
    let document = &result["didDocument"];
    assert_eq!(document["id"], expected["id"]);
    let method = &document["verificationMethod"][0];
    let expected_method = &absolute(&expected, did, "verificationMethod")[0];
    assert_eq!(method["id"], expected_method["id"]);
    assert_eq!(method["controller"], expected_method["controller"]);
    assert_eq!(method["type"], "Multikey");
    assert_eq!(
        method["publicKeyMultibase"].as_str().unwrap(),
        &did["did:key:".len()..]
    );
    for member in ["authentication", "assertionMethod"] {
        assert_eq!(
            absolute(document, did, member),
            absolute(&expected, did, member),
            "did:key {member}"
        );
    }
    // A P-521 key one byte short is not a did:key.
    let (status, result) = resolve(
        base,
        "did:key:z2J9gaYxrKVpdoG9A4gRnmpnRCcxU6agDtFVVBVdn1JedouoZN7SzcyREXXzWgt3gGiwpoHq7K68X4m32D8HgzG8wv3sY5j",
        "",
    );
    assert_eq!(status, 400, "{result}");

    // Bad ids are the client's mistake, named.
    for bad in [
        "did:jwk:bm90LWpzb24",
        "did:pkh:nowhere",
        "did:web:127.0.0.1",
    ] {
        let (status, result) = resolve(base, bad, "");
        assert_eq!(status, 400, "{bad}: {result}");
        assert_eq!(
            result["didResolutionMetadata"]["error"]["type"],
            "https://www.w3.org/ns/did#INVALID_DID",
            "{bad}"
        );
    }
    // No proof or versions for them: FEATURE_NOT_SUPPORTED.
    let jwk = fixture("did-jwk-p256.json");
    for query in ["?versionId=1", "?proof=true"] {
        let (status, result) = resolve(base, jwk["id"].as_str().unwrap(), query);
        assert_eq!(status, 501, "{query}: {result}");
    }

    let (_, properties) = common::get_json(&format!("{base}/1.0/properties"));
    for method in ["web", "jwk", "pkh"] {
        assert_eq!(
            properties[format!("^(did:{method}:.+)$")]["local"]["implementation"],
            "ssi"
        );
    }
}

/// A did:web host over HTTPS: documents by path, with a certificate for `localhost` issued by
/// a CA made here.
struct WebHost {
    port: u16,
    ca_pem: String,
    documents: Arc<Mutex<HashMap<String, (u16, String)>>>,
    requests: Arc<AtomicUsize>,
}

impl WebHost {
    fn start() -> WebHost {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "sparkid test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let documents: Arc<Mutex<HashMap<String, (u16, String)>>> = Arc::default();
        let requests = Arc::new(AtomicUsize::new(0));
        let (docs, count) = (documents.clone(), requests.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let (acceptor, docs, count) = (acceptor.clone(), docs.clone(), count.clone());
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(stream).await else {
                            return;
                        };
                        let mut request = Vec::new();
                        let mut buf = [0u8; 1024];
                        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                            match tls.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => request.extend_from_slice(&buf[..n]),
                            }
                        }
                        count.fetch_add(1, Ordering::SeqCst);
                        let text = String::from_utf8_lossy(&request);
                        let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
                        let (status, body) = docs
                            .lock()
                            .unwrap()
                            .get(&path)
                            .cloned()
                            .unwrap_or((404, "{}".into()));
                        let head = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/did+json\r\n\
                             content-length: {}\r\nconnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = tls.write_all(head.as_bytes()).await;
                        let _ = tls.write_all(body.as_bytes()).await;
                        let _ = tls.shutdown().await;
                    });
                }
            });
        });
        WebHost {
            port,
            ca_pem: ca.pem(),
            documents,
            requests,
        }
    }

    fn serve(&self, path: &str, status: u16, body: &Value) {
        self.documents
            .lock()
            .unwrap()
            .insert(path.to_string(), (status, body.to_string()));
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// The did:web DID of this host (`localhost%3A<port>`), with `path` segments.
    fn did(&self, path: &[&str]) -> String {
        let mut did = format!("did:web:localhost%3A{}", self.port);
        for segment in path {
            did.push(':');
            did.push_str(segment);
        }
        did
    }
}

fn web_document(did: &str, key: &str) -> Value {
    json!({
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": did,
        "verificationMethod": [{
            "id": format!("{did}#key-1"),
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": key,
        }],
        "authentication": [format!("{did}#key-1")],
        "assertionMethod": [format!("{did}#key-1")],
    })
}

#[test]
fn did_web_resolves_over_https_with_the_configured_ca() {
    let host = WebHost::start();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::File::create(&ca_file)
        .unwrap()
        .write_all(host.ca_pem.as_bytes())
        .unwrap();
    let daemon = Daemon::start_with(
        &dir.path().join("data"),
        &["--did-web-ca-file", ca_file.to_str().unwrap()],
    );
    let base = &daemon.base;

    // The domain's own DID, from /.well-known/did.json.
    let did = host.did(&[]);
    let document = web_document(&did, "z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp");
    host.serve("/.well-known/did.json", 200, &document);
    let (status, result) = resolve(base, &did, "");
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["didDocument"], document);
    assert_eq!(result["didResolutionMetadata"]["resolvedBy"], "ssi did:web");

    // A path DID, from /user/alice/did.json; a document naming another DID is refused.
    let alice = host.did(&["user", "alice"]);
    host.serve(
        "/user/alice/did.json",
        200,
        &web_document(&alice, "z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp"),
    );
    let (status, result) = resolve(base, &alice, "");
    assert_eq!(status, 200, "{result}");
    assert_eq!(result["didDocument"]["id"], json!(alice));
    let bob = host.did(&["user", "bob"]);
    host.serve("/user/bob/did.json", 200, &web_document(&alice, "z6Mk"));
    let (status, result) = resolve(base, &bob, "");
    assert_eq!(status, 500, "{result}");
    let error = &result["didResolutionMetadata"]["error"];
    assert_eq!(
        error["type"],
        "https://www.w3.org/ns/did#INVALID_DID_DOCUMENT"
    );
    assert!(
        error["detail"].as_str().unwrap().contains("not of"),
        "{error}"
    );
    // Nothing there: NOT_FOUND.
    let (status, result) = resolve(base, &host.did(&["user", "carol"]), "");
    assert_eq!(status, 404, "{result}");

    // The document is reused from the cache: changed on the host, the old one is answered
    // without asking it, until noCache.
    let asked = host.requests();
    let changed = web_document(&did, "zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169");
    host.serve("/.well-known/did.json", 200, &changed);
    let (_, result) = resolve(base, &did, "");
    assert_eq!(result["didDocument"], document);
    assert_eq!(
        host.requests(),
        asked,
        "a cached document was fetched again"
    );
    let (_, result) = resolve(base, &did, "?noCache=true");
    assert_eq!(result["didDocument"], changed);
    assert_eq!(host.requests(), asked + 1);

    // Dereferencing a key of it goes through the same path.
    let r = client()
        .get(format!(
            "{base}/1.0/identifiers/{}%23key-1",
            did.replace('%', "%25")
        ))
        .header("accept", "application/did+json")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let key: Value = r.json().unwrap();
    assert_eq!(key["type"], "Multikey");
}

#[test]
fn did_web_needs_a_trusted_certificate_and_a_public_host() {
    let host = WebHost::start();
    let did = host.did(&[]);
    host.serve("/.well-known/did.json", 200, &web_document(&did, "z6Mk"));
    let dir = tempfile::tempdir().unwrap();

    // Without the CA the host's certificate is not trusted: nothing is answered from it.
    let untrusting = Daemon::start(&dir.path().join("a"));
    let (status, result) = resolve(&untrusting.base, &did, "");
    assert_eq!(status, 500, "{result}");
    let detail = result["didResolutionMetadata"]["error"]["detail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(detail.contains("certificate"), "{detail}");
    drop(untrusting);

    // Private hosts are refused unless allowed (they are in dev mode by default).
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &host.ca_pem).unwrap();
    let before = host.requests();
    let strict = Daemon::start_with(
        &dir.path().join("b"),
        &[
            "--did-web-ca-file",
            ca_file.to_str().unwrap(),
            "--did-web-allow-private-targets",
            "false",
        ],
    );
    let (status, result) = resolve(&strict.base, &did, "");
    assert_eq!(status, 500, "{result}");
    let detail = result["didResolutionMetadata"]["error"]["detail"]
        .as_str()
        .unwrap();
    assert!(detail.contains("private"), "{detail}");
    assert_eq!(host.requests(), before, "a private host was asked");
}
