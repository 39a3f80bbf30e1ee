//! DID methods resolved in process through spruceid's `ssi`: did:jwk, did:pkh, the did:key key
//! types [`crate::didkey`] does not render (P-384, P-521, BLS12-381, RSA: ssi's `Multikey`
//! document), and did:web, fetched over HTTPS here and checked with ssi's DID document model.
//!
//! [`crate::resolution::Resolver::resolve_did`] asks these methods before any Universal Resolver
//! driver, and their answers leave through the same binding (`binding.rs`) as did:bid's.
//!
//! did:web does not use the `did-web` crate's client: that one builds a client per request with
//! no timeout, no size cap and no way to trust a private CA, and it speaks plain `http://` to
//! `localhost` and private IPv4 hosts, which a public resolver must not be made to ask. Here the
//! URL is mapped as the did:web spec says ("Read (Resolve)"), always over `https://`, with a
//! connect and a total timeout, the answer read up to [`WebOptions::max_body_bytes`], hosts on
//! loopback, private or reserved addresses refused unless [`WebOptions::allow_private_targets`]
//! (names are resolved to public addresses only, as for sub-chain resolvers), extra trusted CAs
//! from [`WebOptions::ca_pem`], and redirects not followed. The body must be a DID document
//! that ssi parses and whose `id` is the DID. Answers are reused for
//! [`WebOptions::cache_ttl_secs`] from a cache bounded in bytes (`noCache` skips it); the
//! computed methods have nothing to cache.

use std::sync::Arc;
use std::time::{Duration, Instant};

use did_jwk::DIDJWK;
use did_method_key::DIDKey;
use did_pkh::DIDPKH;
use quick_cache::Weighter;
use reqwest::header::ACCEPT;
use serde_json::{json, Value};
use ssi_dids_core::resolution::{DIDMethodResolver, Error as SsiError, Options as SsiOptions};
use thiserror::Error;

use crate::result::{ErrorKind, Resolution, ResolutionError};
use crate::subchain::PublicOnly;

/// The methods this module answers, besides the did:key fallback.
pub const METHODS: [&str; 3] = ["web", "jwk", "pkh"];

/// The default connect timeout of a did:web fetch, in milliseconds.
pub const DEFAULT_WEB_CONNECT_TIMEOUT_MS: u64 = 3_000;
/// The default total timeout of a did:web fetch, in milliseconds.
pub const DEFAULT_WEB_TIMEOUT_MS: u64 = 10_000;
/// The largest did:web document read by default, in bytes.
pub const DEFAULT_WEB_MAX_BODY: usize = 256 * 1024;
/// How long a did:web document is reused by default, in seconds.
pub const DEFAULT_WEB_CACHE_TTL_SECS: u64 = 60;
/// The default bound of the did:web document cache, in bytes (16 MiB).
pub const DEFAULT_WEB_CACHE_BYTES: u64 = 16 * 1024 * 1024;
/// The longest method-specific id handed to ssi: ids are parsed (base64url JWKs, CAIP-10
/// accounts, multibase keys) before anything is capped further down.
pub const MAX_METHOD_SPECIFIC_ID: usize = 4096;

/// How did:web documents are fetched.
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// PEM certificates trusted besides the public roots (a private CA; tests use one).
    pub ca_pem: Option<Vec<u8>>,
    /// Whether hosts on loopback, link-local, private or reserved addresses may be asked.
    pub allow_private_targets: bool,
    /// Connect timeout, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Total timeout of one fetch, in milliseconds.
    pub timeout_ms: u64,
    /// The largest document read, in bytes.
    pub max_body_bytes: usize,
    /// How long a fetched document is reused, in seconds; 0 fetches every time.
    pub cache_ttl_secs: u64,
    /// The bound of the document cache, in bytes.
    pub cache_bytes: u64,
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            ca_pem: None,
            allow_private_targets: false,
            connect_timeout_ms: DEFAULT_WEB_CONNECT_TIMEOUT_MS,
            timeout_ms: DEFAULT_WEB_TIMEOUT_MS,
            max_body_bytes: DEFAULT_WEB_MAX_BODY,
            cache_ttl_secs: DEFAULT_WEB_CACHE_TTL_SECS,
            cache_bytes: DEFAULT_WEB_CACHE_BYTES,
        }
    }
}

/// Why the ssi methods could not be set up.
#[derive(Debug, Error)]
pub enum SsiMethodsError {
    /// The CA certificates are not PEM certificates.
    #[error("the did:web CA file holds no usable PEM certificate: {0}")]
    Ca(String),
    /// The HTTP client could not be built.
    #[error("the did:web HTTP client: {0}")]
    Client(String),
}

#[derive(Clone)]
struct CachedDocument {
    at: Instant,
    document: Value,
    weight: u64,
}

#[derive(Clone)]
struct DocumentWeighter;

impl Weighter<String, CachedDocument> for DocumentWeighter {
    fn weight(&self, key: &String, entry: &CachedDocument) -> u64 {
        key.len() as u64 + entry.weight
    }
}

/// The ssi-resolved methods, with did:web's client and cache.
pub struct SsiMethods {
    client: reqwest::Client,
    options: WebOptions,
    cache: Option<quick_cache::sync::Cache<String, CachedDocument, DocumentWeighter>>,
}

impl std::fmt::Debug for SsiMethods {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsiMethods")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Default for SsiMethods {
    fn default() -> Self {
        // The default options hold no CA, so building cannot fail on it; a client that cannot
        // be built at all (no TLS roots) leaves reqwest's default, which fails each fetch.
        SsiMethods::new(WebOptions::default()).unwrap_or_else(|_| SsiMethods {
            client: reqwest::Client::new(),
            options: WebOptions::default(),
            cache: None,
        })
    }
}

impl SsiMethods {
    /// The methods, fetching did:web documents as `options` say.
    pub fn new(options: WebOptions) -> Result<SsiMethods, SsiMethodsError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(options.connect_timeout_ms))
            .timeout(Duration::from_millis(options.timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .https_only(true)
            .user_agent(concat!("sparkid/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &options.ca_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| SsiMethodsError::Ca(e.to_string()))?;
            if certificates.is_empty() {
                return Err(SsiMethodsError::Ca("no certificate in it".into()));
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        if !options.allow_private_targets {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        let client = builder
            .build()
            .map_err(|e| SsiMethodsError::Client(e.to_string()))?;
        let cache = (options.cache_ttl_secs > 0 && options.cache_bytes > 0).then(|| {
            quick_cache::sync::Cache::with_weighter(
                (options.cache_bytes / 4096).clamp(16, 100_000) as usize,
                options.cache_bytes,
                DocumentWeighter,
            )
        });
        Ok(SsiMethods {
            client,
            options,
            cache,
        })
    }

    /// Whether `method` is answered here (did:key is answered by [`crate::didkey`] first).
    pub fn answers(method: &str) -> bool {
        METHODS.contains(&method)
    }

    /// Resolves `did` (`did:<method>:<method_specific_id>`, a method of [`METHODS`]); `no_cache`
    /// fetches a did:web document even when one is cached.
    pub async fn resolve(
        &self,
        did: &str,
        method: &str,
        method_specific_id: &str,
        no_cache: bool,
    ) -> Result<Resolution, ResolutionError> {
        if method_specific_id.len() > MAX_METHOD_SPECIFIC_ID {
            return Err(ResolutionError::new(
                ErrorKind::InvalidDid,
                format!(
                    "did:{method} ids are at most {MAX_METHOD_SPECIFIC_ID} bytes here; this one \
                     is {}",
                    method_specific_id.len()
                ),
            ));
        }
        let document = match method {
            "jwk" => {
                // The did:jwk spec's document: the key as a JsonWebKey2020 (ssi's default is
                // Multikey).
                let mut options = SsiOptions::default();
                options.parameters.public_key_format = Some("JsonWebKey2020".into());
                computed(
                    did,
                    DIDJWK
                        .resolve_method_representation(method_specific_id, options)
                        .await,
                )?
            }
            "pkh" => computed(
                did,
                DIDPKH
                    .resolve_method_representation(method_specific_id, SsiOptions::default())
                    .await,
            )?,
            "web" => self.web(did, method_specific_id, no_cache).await?,
            other => {
                return Err(ResolutionError::new(
                    ErrorKind::MethodNotSupported,
                    format!("did:{other} is not resolved through ssi"),
                ))
            }
        };
        Ok(resolution_of(document, method))
    }

    /// did:key for the key types [`crate::didkey`] recognizes but does not render: ssi's
    /// `Multikey` document, after the compressed point's length and tag are checked for the
    /// NIST curves (ssi takes any multicodec).
    pub async fn resolve_key(
        &self,
        did: &str,
        method_specific_id: &str,
    ) -> Result<Resolution, ResolutionError> {
        check_nist_key(did, method_specific_id)?;
        let document = computed(
            did,
            DIDKey
                .resolve_method_representation(method_specific_id, SsiOptions::default())
                .await,
        )?;
        Ok(resolution_of(document, "key"))
    }

    async fn web(&self, did: &str, msi: &str, no_cache: bool) -> Result<Value, ResolutionError> {
        let ttl = Duration::from_secs(self.options.cache_ttl_secs);
        if let (Some(cache), false) = (&self.cache, no_cache) {
            if let Some(entry) = cache.get(did) {
                if entry.at.elapsed() < ttl {
                    return Ok(entry.document);
                }
                cache.remove(did);
            }
        }
        let url = web_url(msi)
            .map_err(|why| ResolutionError::new(ErrorKind::InvalidDid, format!("{did}: {why}")))?;
        let body = self.fetch(did, &url).await?;
        let document: Value = serde_json::from_slice(&body).map_err(|e| {
            ResolutionError::new(
                ErrorKind::InvalidDidDocument,
                format!("{url} (for {did}) is not JSON: {e}"),
            )
        })?;
        // ssi's document model: DID and DID URL syntax of ids, controllers and relationships.
        let parsed = ssi_dids_core::Document::from_json_bytes(&body).map_err(|e| {
            ResolutionError::new(
                ErrorKind::InvalidDidDocument,
                format!("{url} (for {did}) is not a DID document: {e}"),
            )
        })?;
        let id = parsed.into_document().id;
        if id.as_str() != did {
            return Err(ResolutionError::new(
                ErrorKind::InvalidDidDocument,
                format!("{url} holds the document of {id}, not of {did}"),
            ));
        }
        if let Some(cache) = &self.cache {
            cache.insert(
                did.to_string(),
                CachedDocument {
                    at: Instant::now(),
                    document: document.clone(),
                    // Parsed JSON takes about three times its text (drivers.rs measures so).
                    weight: 256 + 3 * body.len() as u64,
                },
            );
        }
        Ok(document)
    }

    /// `GET url`, read up to the cap; 404 and 410 are `NOT_FOUND`, other failures
    /// `INTERNAL_ERROR` naming the host.
    async fn fetch(&self, did: &str, url: &str) -> Result<Vec<u8>, ResolutionError> {
        let internal = |detail: String| ResolutionError::new(ErrorKind::Internal, detail);
        let failed = |e: reqwest::Error| {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            if e.is_timeout() {
                internal(format!(
                    "{url} (for {did}) did not answer within {} ms",
                    self.options.timeout_ms
                ))
            } else {
                // A host resolving only to private addresses fails here, in `PublicOnly`.
                internal(format!(
                    "fetching {url} (for {did}) failed: {text}{}",
                    if self.options.allow_private_targets {
                        ""
                    } else {
                        " (hosts on private addresses are refused: did_web_allow_private_targets)"
                    }
                ))
            }
        };
        let mut response = self
            .client
            .get(url)
            .header(ACCEPT, "application/did+json, application/json;q=0.9")
            .send()
            .await
            .map_err(failed)?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Err(ResolutionError::new(
                ErrorKind::NotFound,
                format!("{url} answered {status}: {did} has no document there"),
            ));
        }
        if !status.is_success() {
            return Err(internal(format!(
                "{url} (for {did}) answered {status}, not a document{}",
                if status.is_redirection() {
                    " (redirects are not followed)"
                } else {
                    ""
                }
            )));
        }
        let max = self.options.max_body_bytes;
        let too_large = || {
            tracing::warn!(url, max, "did:web document over its cap, refused");
            internal(format!(
                "{url} (for {did}) answered more than {max} bytes, the most a did:web document \
                 may be here"
            ))
            .with_status(crate::drivers::UPSTREAM_FAILED)
        };
        if response.content_length().is_some_and(|n| n > max as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > max {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// A resolution of `document` by `method`, saying that ssi answered it.
fn resolution_of(document: Value, method: &str) -> Resolution {
    let mut resolution = Resolution {
        document: Some(document),
        ..Resolution::default()
    };
    resolution
        .resolution_metadata
        .insert("resolvedBy".into(), json!(format!("ssi did:{method}")));
    resolution
}

/// The document a computed method's ssi resolver made, or the DID Resolution error its failure
/// maps to.
fn computed(
    did: &str,
    output: Result<ssi_dids_core::resolution::Output<Vec<u8>>, SsiError>,
) -> Result<Value, ResolutionError> {
    let output = output.map_err(|e| ssi_error(did, e))?;
    serde_json::from_slice(&output.document).map_err(|e| {
        ResolutionError::new(
            ErrorKind::Internal,
            format!("ssi rendered {did} as something that is not JSON: {e}"),
        )
    })
}

/// ssi's resolution errors as DID Resolution's.
fn ssi_error(did: &str, error: SsiError) -> ResolutionError {
    let kind = match &error {
        SsiError::MethodNotSupported(_) => ErrorKind::MethodNotSupported,
        SsiError::NotFound => ErrorKind::NotFound,
        SsiError::NoRepresentation | SsiError::RepresentationNotSupported(_) => {
            ErrorKind::RepresentationNotSupported
        }
        SsiError::InvalidMethodSpecificId(_) | SsiError::InvalidData(_) => ErrorKind::InvalidDid,
        SsiError::InvalidOptions => ErrorKind::InvalidOptions,
        _ => ErrorKind::Internal,
    };
    ResolutionError::new(kind, format!("{did}: {error}"))
}

/// The HTTPS URL of a did:web document (did:web spec, "Read (Resolve)"): the first
/// `:`-separated part is the host (a port percent-encoded as `%3A`), the others path segments;
/// no path is `/.well-known`; `/did.json` is appended.
pub fn web_url(msi: &str) -> Result<String, String> {
    let mut parts = msi.split(':');
    let authority = parts.next().unwrap_or_default();
    let path: Vec<&str> = parts.collect();
    let authority = match authority.split_once("%3A").or(authority.split_once("%3a")) {
        Some((host, port)) => {
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) || port.len() > 5 {
                return Err(format!("the port {port:?} is not a port number"));
            }
            format!("{host}:{port}")
        }
        None => authority.to_string(),
    };
    let host = authority
        .rsplit_once(':')
        .map_or(authority.as_str(), |(h, _)| h);
    if host.is_empty()
        || host.starts_with('.')
        || host.ends_with('.')
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(format!(
            "{host:?} is not a host name (letters, digits, '-' and '.'; an IP address is not \
             allowed by did:web)"
        ));
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!("{host:?} is an IP address; did:web names a domain"));
    }
    for segment in &path {
        if segment.is_empty() || *segment == "." || *segment == ".." {
            return Err(format!(
                "the path segment {segment:?} is empty or a dot segment"
            ));
        }
        if segment.contains(['/', '?', '#']) {
            return Err(format!(
                "the path segment {segment:?} holds '/', '?' or '#'"
            ));
        }
    }
    let path = if path.is_empty() {
        ".well-known".to_string()
    } else {
        path.join("/")
    };
    let url = format!("https://{}/{path}/did.json", authority.to_ascii_lowercase());
    // The URL parser reads some names as IPv4 addresses (`0x7f.1`, `127.1`): such a host would
    // be asked without a name lookup, past the private-address check, so it is refused.
    let parsed = reqwest::Url::parse(&url).map_err(|e| format!("{url} is not a URL: {e}"))?;
    let parsed_host = parsed.host_str().unwrap_or_default();
    if parsed_host != host.to_ascii_lowercase() || parsed_host.parse::<std::net::IpAddr>().is_ok() {
        return Err(format!(
            "{host:?} is read as the address {parsed_host}; did:web names a domain"
        ));
    }
    Ok(url)
}

/// Checks the compressed point of a P-384 or P-521 did:key: 1 + 48 or 1 + 66 bytes, tagged 2 or
/// 3 (ssi's `Multikey` rendering does not look inside).
fn check_nist_key(did: &str, msi: &str) -> Result<(), ResolutionError> {
    let invalid =
        |why: String| ResolutionError::new(ErrorKind::InvalidDid, format!("{did}: {why}"));
    let Some(encoded) = msi.strip_prefix('z') else {
        return Err(invalid(
            "a did:key id is base58btc, starting with 'z'".into(),
        ));
    };
    let bytes = sparkid_bid::base58::BITCOIN
        .decode_at_most(encoded, sparkid_bid::base58::MAX_DECODE_LEN)
        .map_err(|e| invalid(format!("not base58btc: {e}")))?;
    let (codec, key) = match bytes.as_slice() {
        [0x81, 0x24, rest @ ..] => (0x1201, rest),
        [0x82, 0x24, rest @ ..] => (0x1202, rest),
        _ => return Ok(()),
    };
    let (name, length) = if codec == 0x1201 {
        ("P-384", 49)
    } else {
        ("P-521", 67)
    };
    if key.len() != length || !matches!(key.first(), Some(2 | 3)) {
        return Err(invalid(format!(
            "a {name} did:key holds a compressed point of {length} bytes starting with 2 or 3; \
             this one has {} bytes",
            key.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_urls_follow_the_did_web_spec_examples() {
        // did:web spec, "Read (Resolve)" examples.
        assert_eq!(
            web_url("w3c-ccg.github.io").unwrap(),
            "https://w3c-ccg.github.io/.well-known/did.json"
        );
        assert_eq!(
            web_url("w3c-ccg.github.io:user:alice").unwrap(),
            "https://w3c-ccg.github.io/user/alice/did.json"
        );
        assert_eq!(
            web_url("example.com%3A3000:user:alice").unwrap(),
            "https://example.com:3000/user/alice/did.json"
        );
        for bad in [
            "",
            "127.0.0.1",
            "example.com%3Ax",
            "example.com::a",
            "exa mple.com",
            "example.com:..",
            "example.com%2Fevil",
            "example.com@evil.com",
            "0x7f.1",
            "127.1",
            "0x7f000001%3A443",
        ] {
            assert!(web_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nist_keys_are_checked_before_ssi_renders_them() {
        let p521 = "z2J9gaYxrKVpdoG9A4gRnmpnRCcxU6agDtFVVBVdn1JedouoZN7SzcyREXXzWgt3gGiwpoHq7K68X4m32D8HgzG8wv3sY5j7";
        assert!(check_nist_key("did:key:x", p521).is_ok());
        let p384 = "z82Lm1MpAkeJcix9K8TMiLd5NMAhnwkjjCBeWHXyu3U4oT2MVJJKXkcVBgjGhnLBn2Kaau9";
        assert!(check_nist_key("did:key:x", p384).is_ok());
        // The P-521 key cut short by one byte.
        let mut bytes = sparkid_bid::base58::BITCOIN.decode(&p521[1..]).unwrap();
        bytes.pop();
        let short = format!("z{}", sparkid_bid::base58::BITCOIN.encode(&bytes));
        let e = check_nist_key("did:key:x", &short).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidDid);
        assert!(e.detail.contains("67 bytes"), "{}", e.detail);
    }

    #[tokio::test]
    async fn computed_methods_resolve_and_bad_ids_are_invalid_dids() {
        let methods = SsiMethods::default();
        let jwk = "eyJjcnYiOiJQLTI1NiIsImt0eSI6IkVDIiwieCI6ImFjYklRaXVNczNpOF91c3pFakoydHBUdFJNNEVVM3l6OTFQSDZDZEgyVjAiLCJ5IjoiX0tjeUxqOXZXTXB0bm1LdG00NkdxRHo4d2Y3NEk1TEtncmwyR3pIM25TRSJ9";
        let did = format!("did:jwk:{jwk}");
        let r = methods.resolve(&did, "jwk", jwk, false).await.unwrap();
        assert_eq!(r.document.unwrap()["id"], json!(did));
        let e = methods
            .resolve("did:jwk:bm90LWpzb24", "jwk", "bm90LWpzb24", false)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidDid, "{}", e.detail);
        let e = methods
            .resolve("did:pkh:nope", "pkh", "nope", false)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidDid, "{}", e.detail);
    }
}
