//! Universal Resolver drivers: DID methods this daemon does not answer itself, proxied to HTTP
//! drivers configured as the Universal Resolver configures them (`[[driver]]` in the TOML file).
//!
//! A driver has a `pattern`, a regular expression that must match the whole DID, and a `url`.
//! As in the Universal Resolver, the request URL is built from the pattern's capture groups
//! (all groups, concatenated; the whole DID when there is none): `$1` in the URL is replaced by
//! them as they are, `$2` by them percent-encoded, `{did}` by the whole DID; a URL with no
//! placeholder gets them appended after a `/`. Drivers are tried in configuration order and the
//! first whose pattern matches answers; `did:bid` and `did:key` are answered here and never
//! proxied.
//!
//! The request is `GET` with `Accept: application/did-resolution, …` and the driver may answer
//! a resolution result or a bare DID document. Answers map to DID Resolution errors as the
//! Universal Resolver's HTTP driver maps them: an error in the driver's result is kept (its
//! type, detail and status); otherwise 404 is `NOT_FOUND`, 406 `REPRESENTATION_NOT_SUPPORTED`,
//! 410 a deactivated DID, and anything else that is not a document, a connection failure, or no
//! answer within the connect or total timeout is `INTERNAL_ERROR`, with a detail naming the
//! driver and what happened (a certificate the trust roots do not vouch for included). Drivers
//! are `http://` or `https://` (rustls, the web roots plus the daemon's CA file). A driver's answer is read chunk by chunk and refused (502, `INTERNAL_ERROR` naming the
//! driver) as soon as it passes the driver's `max_body_bytes` ([`MAX_DRIVER_BODY`] by default),
//! or at once when its `Content-Length` says it will: an endless body costs at most that much.
//!
//! Answers are reused for the driver's `cache_ttl_secs` from one cache shared by every driver
//! and bounded in bytes (`driver_cache_bytes`, [`DEFAULT_DRIVER_CACHE_BYTES`]): an entry is
//! charged [`ANSWER_OVERHEAD`] plus [`ANSWER_FACTOR`] times its JSON length (parsed JSON takes
//! several times its text in memory), so many large answers evict each other instead of
//! growing the process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use quick_cache::{OptionsBuilder, Weighter};
use regex::Regex;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use thiserror::Error;

use crate::outbound::ClientBase;
use crate::result::{ErrorKind, Resolution, ResolutionError};

/// One Universal Resolver driver (a `[[driver]]` table): DIDs matching `pattern` are resolved
/// by `GET` on `url`. See the module docs for the placeholders and the error mapping.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DriverConfig {
    /// A regular expression matched against the whole DID, e.g. `^(did:web:.+)$`.
    pub pattern: String,
    /// The driver URL: `$1` (the pattern's groups), `$2` (the same, percent-encoded) or `{did}`
    /// is replaced; with none, the groups are appended, e.g.
    /// `http://driver-web:8080/1.0/identifiers/$1`.
    pub url: String,
    /// Example DIDs, listed by `/1.0/testIdentifiers` (they also name the driver's methods).
    #[serde(default, alias = "testIdentifiers")]
    pub test_identifiers: Vec<String>,
    /// Connect timeout in milliseconds [default: 3000].
    pub connect_timeout_ms: Option<u64>,
    /// Total timeout of one request in milliseconds [default: 10000].
    pub timeout_ms: Option<u64>,
    /// How long a driver's answer (a document or a deactivation) is reused, in seconds; 0
    /// asks the driver every time [default: 60]. Errors are never reused; `noCache` skips it.
    pub cache_ttl_secs: Option<u64>,
    /// The largest answer read from the driver, in bytes; a longer one is cut off and refused
    /// [default: 1048576].
    pub max_body_bytes: Option<usize>,
}

/// The default connect timeout, in milliseconds.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 3_000;
/// The default total timeout of one driver request (connect, send, read the body), in ms.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// How long a driver's answer is reused by default, in seconds.
pub const DEFAULT_CACHE_TTL_SECS: u64 = 60;
/// The default bound of the driver answer cache, all drivers together, in bytes (64 MiB).
pub const DEFAULT_DRIVER_CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// Bytes a cached answer is charged beyond its JSON (map slot, entry, allocation headers).
pub const ANSWER_OVERHEAD: u64 = 256;
/// How many times its JSON length a cached answer is charged: parsed JSON (`serde_json::Value`
/// maps and strings) takes about three times its text.
pub const ANSWER_FACTOR: u64 = 3;

/// The largest driver answer read by default, in bytes.
pub const MAX_DRIVER_BODY: usize = 1024 * 1024;

/// The HTTP status of an answer a driver or a sub-chain resolver spoiled (too large, refused):
/// Bad Gateway, for the client did nothing wrong and neither did this resolver.
pub const UPSTREAM_FAILED: u16 = 502;

/// Counters of what the resolver refused from, or did not ask of, other resolvers (drivers and
/// sub-chain resolvers), for Prometheus: `sparkid_upstream_refused_total{reason}` and
/// `sparkid_subchain_negative_hits_total`.
#[derive(Clone)]
pub struct UpstreamMetrics {
    /// Answers cut off at their size cap.
    pub too_large: prometheus::IntCounter,
    /// Requests refused because their fan-out budget was spent.
    pub fanout: prometheus::IntCounter,
    /// Endpoints not asked because they are private targets.
    pub private_target: prometheus::IntCounter,
    /// Sub-chain answers that did not hold against the anchor.
    pub anchor: prometheus::IntCounter,
    /// Sub-chain endpoints not asked because a recent negative answer was reused.
    pub negative_hits: prometheus::IntCounter,
}

impl std::fmt::Debug for UpstreamMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamMetrics").finish_non_exhaustive()
    }
}

impl UpstreamMetrics {
    /// Counters in a registry of their own (outside a daemon).
    pub fn standalone() -> Result<UpstreamMetrics, prometheus::Error> {
        UpstreamMetrics::register(&prometheus::Registry::new())
    }

    /// The counters, registered in `registry` (the daemon's).
    pub fn register(registry: &prometheus::Registry) -> Result<UpstreamMetrics, prometheus::Error> {
        let refused = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "sparkid_upstream_refused_total",
                "Drivers' and sub-chain resolvers' answers refused, or requests to them not made: \
                 too_large, fanout, private_target, anchor.",
            ),
            &["reason"],
        )?;
        let negative_hits = prometheus::IntCounter::new(
            "sparkid_subchain_negative_hits_total",
            "Sub-chain resolver requests answered from a recent negative answer.",
        )?;
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(negative_hits.clone()))?;
        Ok(UpstreamMetrics {
            too_large: refused.get_metric_with_label_values(&["too_large"])?,
            fanout: refused.get_metric_with_label_values(&["fanout"])?,
            private_target: refused.get_metric_with_label_values(&["private_target"])?,
            anchor: refused.get_metric_with_label_values(&["anchor"])?,
            negative_hits,
        })
    }
}

/// What a driver is asked for.
pub const DRIVER_ACCEPT: &str = "application/did-resolution, \
    application/ld+json;profile=\"https://w3id.org/did-resolution\";q=0.9, \
    application/did+ld+json;q=0.8, application/did+json;q=0.8, application/did;q=0.8, \
    application/json;q=0.5";

/// Why the driver configuration cannot be used.
#[derive(Debug, Error)]
pub enum DriverConfigError {
    /// The pattern is not a regular expression.
    #[error("driver {index}: pattern {pattern:?} is not a regular expression: {error}")]
    Pattern {
        /// The driver's position in the configuration (0-based).
        index: usize,
        /// The pattern.
        pattern: String,
        /// The regex error.
        error: String,
    },
    /// The URL is not an `http://` or `https://` URL.
    #[error("driver {index}: url {url:?} {why}")]
    Url {
        /// The driver's position.
        index: usize,
        /// The URL.
        url: String,
        /// Why.
        why: String,
    },
    /// The HTTP client cannot be built.
    #[error("driver {index}: {error}")]
    Client {
        /// The driver's position.
        index: usize,
        /// The client error.
        error: String,
    },
}

/// One configured driver.
#[derive(Debug, Clone)]
pub struct Driver {
    /// The driver's position in the configuration (its part of the answer cache's keys).
    index: usize,
    pattern: Regex,
    pattern_text: String,
    url: String,
    test_identifiers: Vec<String>,
    connect_timeout: Duration,
    timeout: Duration,
    client: reqwest::Client,
    max_body: usize,
    /// How long answers are reused; zero: never.
    ttl: Duration,
    /// The answers of every driver; none when the TTL is 0 or the cache is off.
    cache: Option<Arc<AnswerCache>>,
    metrics: Option<UpstreamMetrics>,
}

/// A cached answer: when it was fetched, the answer, and the bytes it is charged.
#[derive(Clone)]
struct Answer {
    at: Instant,
    resolution: Resolution,
    weight: u64,
}

#[derive(Clone)]
struct AnswerWeighter;

impl Weighter<(usize, String), Answer> for AnswerWeighter {
    fn weight(&self, key: &(usize, String), answer: &Answer) -> u64 {
        key.1.len() as u64 + answer.weight
    }
}

/// The drivers' recent answers, by driver and DID: they are not anchored to any block, so they
/// live for their driver's TTL; bounded in bytes.
struct AnswerCache {
    capacity: u64,
    entries: quick_cache::sync::Cache<(usize, String), Answer, AnswerWeighter>,
}

impl AnswerCache {
    fn new(capacity: u64) -> Option<Arc<AnswerCache>> {
        let items = (capacity / 4096).clamp(16, 1_000_000) as usize;
        // Each shard holds its share of the bound, and an answer heavier than a shard is not
        // kept at all: shards of at least 8 MiB keep answers up to the largest body's weight.
        let shards = (capacity / (8 * 1024 * 1024))
            .clamp(1, 16)
            .next_power_of_two() as usize;
        let options = OptionsBuilder::new()
            .shards(shards)
            .estimated_items_capacity(items)
            .weight_capacity(capacity)
            .build()
            .ok()?;
        Some(Arc::new(AnswerCache {
            capacity,
            entries: quick_cache::sync::Cache::with_options(
                options,
                AnswerWeighter,
                Default::default(),
                Default::default(),
            ),
        }))
    }
}

impl std::fmt::Debug for AnswerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnswerCache")
            .field("capacity", &self.capacity)
            .field("entries", &self.entries.len())
            .finish()
    }
}

/// The configured drivers, in order.
#[derive(Debug, Clone, Default)]
pub struct Drivers {
    list: Vec<Driver>,
    cache: Option<Arc<AnswerCache>>,
}

impl Drivers {
    /// Compiles the configured drivers, with a cache of [`DEFAULT_DRIVER_CACHE_BYTES`].
    pub fn new(configs: &[DriverConfig]) -> Result<Drivers, DriverConfigError> {
        Drivers::with_cache_bytes(configs, DEFAULT_DRIVER_CACHE_BYTES)
    }

    /// Compiles the configured drivers, whose answers share a cache of `cache_bytes` bytes (0:
    /// no answer is reused).
    pub fn with_cache_bytes(
        configs: &[DriverConfig],
        cache_bytes: u64,
    ) -> Result<Drivers, DriverConfigError> {
        Drivers::with_client(configs, cache_bytes, &ClientBase::default())
    }

    /// The same, each driver's client built from `client` (the daemon's trust roots).
    pub fn with_client(
        configs: &[DriverConfig],
        cache_bytes: u64,
        client: &ClientBase,
    ) -> Result<Drivers, DriverConfigError> {
        let cache = if cache_bytes > 0 && !configs.is_empty() {
            AnswerCache::new(cache_bytes)
        } else {
            None
        };
        let list = configs
            .iter()
            .enumerate()
            .map(|(index, config)| Driver::new(index, config, cache.clone(), client))
            .collect::<Result<_, _>>()?;
        Ok(Drivers { list, cache })
    }

    /// The same drivers, counting what they refuse in `metrics`.
    pub fn with_metrics(mut self, metrics: UpstreamMetrics) -> Drivers {
        for driver in &mut self.list {
            driver.metrics = Some(metrics.clone());
        }
        self
    }

    /// Bytes the answer cache holds (the sum of its entries' charges), its entries, and its
    /// bound.
    pub fn cache_usage(&self) -> (u64, usize, u64) {
        self.cache.as_ref().map_or((0, 0, 0), |c| {
            (c.entries.weight(), c.entries.len(), c.capacity)
        })
    }

    /// The first driver whose pattern matches the whole DID.
    pub fn find(&self, did: &str) -> Option<&Driver> {
        self.list.iter().find(|d| d.pattern.is_match(did))
    }

    /// Every driver, in configuration order.
    pub fn iter(&self) -> impl Iterator<Item = &Driver> {
        self.list.iter()
    }

    /// True when none is configured.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

impl Driver {
    fn new(
        index: usize,
        config: &DriverConfig,
        cache: Option<Arc<AnswerCache>>,
        base: &ClientBase,
    ) -> Result<Driver, DriverConfigError> {
        let pattern = Regex::new(&format!("^(?:{})$", config.pattern)).map_err(|e| {
            DriverConfigError::Pattern {
                index,
                pattern: config.pattern.clone(),
                error: e.to_string(),
            }
        })?;
        let url_error = |why: &str| DriverConfigError::Url {
            index,
            url: config.url.clone(),
            why: why.to_string(),
        };
        if !(config.url.starts_with("http://") || config.url.starts_with("https://")) {
            return Err(url_error("is not an http:// or https:// URL"));
        }
        let sample = fill(&config.url, "did:example:123", "did:example:123");
        reqwest::Url::parse(&sample).map_err(|e| url_error(&format!("is not a URL: {e}")))?;
        let connect_timeout = Duration::from_millis(
            config
                .connect_timeout_ms
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS),
        );
        let timeout = Duration::from_millis(config.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS));
        let client = base
            .builder()
            .connect_timeout(connect_timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| DriverConfigError::Client {
                index,
                error: e.to_string(),
            })?;
        let ttl = Duration::from_secs(config.cache_ttl_secs.unwrap_or(DEFAULT_CACHE_TTL_SECS));
        let cache = cache.filter(|_| !ttl.is_zero());
        Ok(Driver {
            index,
            max_body: config.max_body_bytes.unwrap_or(MAX_DRIVER_BODY),
            ttl,
            metrics: None,
            pattern,
            pattern_text: config.pattern.clone(),
            url: config.url.clone(),
            test_identifiers: config.test_identifiers.clone(),
            connect_timeout,
            timeout,
            client,
            cache,
        })
    }

    /// The pattern as configured.
    pub fn pattern(&self) -> &str {
        &self.pattern_text
    }

    /// The URL template as configured.
    pub fn url_template(&self) -> &str {
        &self.url
    }

    /// The configured test identifiers.
    pub fn test_identifiers(&self) -> &[String] {
        &self.test_identifiers
    }

    /// The DID methods this driver answers: those of its test identifiers, else the one its
    /// pattern names literally (`did:web:` in `^(did:web:.+)$`).
    pub fn methods(&self) -> Vec<String> {
        let mut methods: Vec<String> = Vec::new();
        fn push(methods: &mut Vec<String>, m: &str) {
            if !m.is_empty() && !methods.iter().any(|x| x == m) {
                methods.push(m.to_string());
            }
        }
        for id in &self.test_identifiers {
            if let Some(method) = id.strip_prefix("did:").and_then(|r| r.split(':').next()) {
                push(&mut methods, method);
            }
        }
        if methods.is_empty() {
            if let Some(rest) = self.pattern_text.split("did:").nth(1) {
                let method: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
                    .collect();
                if rest[method.len()..].starts_with(':') {
                    push(&mut methods, &method);
                }
            }
        }
        methods
    }

    /// The driver's entry in `/1.0/properties`.
    pub fn properties(&self) -> Value {
        json!({
            "http": {
                "resolveUri": self.url,
                "connectTimeoutMs": self.connect_timeout.as_millis() as u64,
                "timeoutMs": self.timeout.as_millis() as u64,
            },
            "testIdentifiers": self.test_identifiers,
            "cacheTtlSecs": if self.cache.is_some() { self.ttl.as_secs() } else { 0 },
            "maxBodyBytes": self.max_body,
        })
    }

    /// The request URL for `did`.
    pub fn request_url(&self, did: &str) -> String {
        let matched = match self.pattern.captures(did) {
            Some(caps) if caps.len() > 1 => {
                let groups: String = caps.iter().skip(1).flatten().map(|m| m.as_str()).collect();
                groups
            }
            _ => did.to_string(),
        };
        fill(&self.url, &matched, did)
    }

    /// Resolves `did` through the driver, or answers what it answered within its cache TTL
    /// (unless `no_cache`); a reused answer says so (`didResolutionMetadata.driverCached`).
    pub async fn resolve_cached(
        &self,
        did: &str,
        no_cache: bool,
    ) -> Result<Resolution, ResolutionError> {
        let Some(cache) = &self.cache else {
            return self.resolve(did).await;
        };
        let key = (self.index, did.to_string());
        if !no_cache {
            if let Some(answer) = cache.entries.get(&key) {
                if answer.at.elapsed() < self.ttl {
                    let mut resolution = answer.resolution;
                    resolution
                        .resolution_metadata
                        .insert("driverCached".into(), json!(true));
                    return Ok(resolution);
                }
                cache.entries.remove(&key);
            }
        }
        let resolution = self.resolve(did).await?;
        let weight = ANSWER_OVERHEAD + ANSWER_FACTOR * json_len(&resolution);
        cache.entries.insert(
            key,
            Answer {
                at: Instant::now(),
                resolution: resolution.clone(),
                weight,
            },
        );
        Ok(resolution)
    }

    /// Resolves `did` through the driver.
    pub async fn resolve(&self, did: &str) -> Result<Resolution, ResolutionError> {
        let url = self.request_url(did);
        let upstream = Upstream {
            client: &self.client,
            name: format!("the driver for {}", self.pattern_text),
            connect_timeout: self.connect_timeout,
            timeout: self.timeout,
            max_body: self.max_body,
            metrics: self.metrics.as_ref(),
        };
        let (mut resolution, duration) = upstream.fetch(&url, did, &[]).await?;
        let meta = &mut resolution.resolution_metadata;
        meta.insert("pattern".into(), json!(self.pattern_text));
        meta.insert("driverUrl".into(), json!(url));
        meta.insert("driverDuration".into(), json!(duration));
        Ok(resolution)
    }
}

/// An HTTP resolver this daemon asks on a client's behalf: a Universal Resolver driver, or a
/// sub-chain's resolver ([`crate::subchain`]).
pub(crate) struct Upstream<'a> {
    /// The client, built with the timeouts below.
    pub client: &'a reqwest::Client,
    /// How errors name it ("the driver for …").
    pub name: String,
    /// Its connect timeout (for messages).
    pub connect_timeout: Duration,
    /// Its total timeout (for messages).
    pub timeout: Duration,
    /// The largest answer read, in bytes.
    pub max_body: usize,
    /// Where refusals are counted.
    pub metrics: Option<&'a UpstreamMetrics>,
}

/// The length of a resolution's JSON (document and both metadata maps), measured without
/// building the text.
fn json_len(resolution: &Resolution) -> u64 {
    struct Counter(u64);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    let _ = serde_json::to_writer(&mut counter, &resolution.document);
    let _ = serde_json::to_writer(&mut counter, &resolution.document_metadata);
    let _ = serde_json::to_writer(&mut counter, &resolution.resolution_metadata);
    counter.0
}

impl Upstream<'_> {
    /// `GET url` for `did`, with `headers` added, read up to `max_body` bytes (chunk by chunk:
    /// an endless answer is cut off there, a `Content-Length` over it is refused before
    /// reading) and interpreted as a resolution result or a bare document; the duration in
    /// milliseconds.
    pub async fn fetch(
        &self,
        url: &str,
        did: &str,
        headers: &[(&str, &str)],
    ) -> Result<(Resolution, u64), ResolutionError> {
        let started = Instant::now();
        let name = &self.name;
        let failed = |e: reqwest::Error| {
            let detail = if e.is_timeout() {
                format!(
                    "{name} at {url} did not answer within {} ms",
                    self.timeout.as_millis()
                )
            } else if e.is_connect() {
                format!(
                    "cannot connect to {name} at {url} (connect timeout {} ms): {}",
                    self.connect_timeout.as_millis(),
                    error_chain(&e)
                )
            } else {
                format!("{name} at {url} failed: {}", error_chain(&e))
            };
            ResolutionError::new(ErrorKind::Internal, detail)
        };
        let mut request = self.client.get(url).header(ACCEPT, DRIVER_ACCEPT);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = request.send().await.map_err(failed)?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let max = self.max_body;
        let too_large = || {
            tracing::warn!(url, max, "{name}: answer over its cap, refused");
            if let Some(m) = self.metrics {
                m.too_large.inc();
            }
            ResolutionError::new(
                ErrorKind::Internal,
                format!("{name} at {url} answered more than {max} bytes, the most it may answer"),
            )
            .with_status(UPSTREAM_FAILED)
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
        let duration = started.elapsed().as_millis() as u64;
        Ok((interpret(did, url, status, &content_type, &body)?, duration))
    }
}

/// Fills a URL template: `$1` raw, `$2` percent-encoded, `{did}` the DID, else appended.
fn fill(template: &str, matched: &str, did: &str) -> String {
    if template.contains("$1") {
        template.replace("$1", matched)
    } else if template.contains("$2") {
        template.replace("$2", &encode_component(matched))
    } else if template.contains("{did}") {
        template.replace("{did}", did)
    } else if template.ends_with('/') {
        format!("{template}{matched}")
    } else {
        format!("{template}/{matched}")
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Whether a JSON answer is a resolution result rather than a bare document.
fn is_result(value: &Value) -> bool {
    value.as_object().is_some_and(|m| {
        m.contains_key("didResolutionMetadata")
            || m.contains_key("didDocumentMetadata")
            || (m.contains_key("didDocument") && !m.contains_key("id"))
    })
}

/// The error kind a driver's error names (a problem `type` URL, an UPPER_SNAKE or a camelCase
/// code).
fn kind_named(name: &str) -> Option<ErrorKind> {
    let name = name.rsplit('#').next().unwrap_or(name);
    Some(match name {
        "INVALID_DID" | "invalidDid" => ErrorKind::InvalidDid,
        "INVALID_DID_URL" | "invalidDidUrl" => ErrorKind::InvalidDidUrl,
        "INVALID_OPTIONS" | "invalidOptions" => ErrorKind::InvalidOptions,
        "NOT_FOUND" | "notFound" => ErrorKind::NotFound,
        "REPRESENTATION_NOT_SUPPORTED" | "representationNotSupported" => {
            ErrorKind::RepresentationNotSupported
        }
        "METHOD_NOT_SUPPORTED" | "methodNotSupported" => ErrorKind::MethodNotSupported,
        "FEATURE_NOT_SUPPORTED" | "featureNotSupported" => ErrorKind::FeatureNotSupported,
        "INVALID_DID_DOCUMENT" | "invalidDidDocument" => ErrorKind::InvalidDidDocument,
        "INTERNAL_ERROR" | "internalError" => ErrorKind::Internal,
        _ => return None,
    })
}

fn brief(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.chars().count() <= MAX {
        return text.to_string();
    }
    let cut: String = text.chars().take(MAX).collect();
    format!("{cut}…")
}

/// Turns a driver's answer into a resolution or an error.
fn interpret(
    did: &str,
    url: &str,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> Result<Resolution, ResolutionError> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    if let Some(result) = json.as_ref().filter(|v| is_result(v)) {
        let metadata = result
            .get("didResolutionMetadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(error) = metadata.get("error").filter(|e| !e.is_null()) {
            let (name, detail) = match error {
                Value::String(code) => (
                    code.clone(),
                    metadata
                        .get("errorMessage")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                ),
                other => (
                    other
                        .get("type")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    other
                        .get("detail")
                        .or_else(|| other.get("title"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string(),
                ),
            };
            let kind = kind_named(&name).unwrap_or(ErrorKind::Internal);
            let detail = if detail.is_empty() {
                format!("the driver at {url} answered {status} with the error {name:?}")
            } else {
                format!("the driver at {url} answered: {detail}")
            };
            return Err(ResolutionError::new(kind, detail));
        }
        let document = result.get("didDocument").filter(|d| !d.is_null()).cloned();
        let document_metadata = result
            .get("didDocumentMetadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let deactivated = document_metadata.get("deactivated") == Some(&Value::Bool(true));
        if document.is_none() && !deactivated {
            return Err(ResolutionError::new(
                ErrorKind::Internal,
                format!("the driver at {url} answered {status} with a result without a document"),
            ));
        }
        let mut resolution = Resolution {
            document,
            document_metadata,
            resolution_metadata: Map::new(),
        };
        for (k, v) in metadata {
            if k != "contentType" {
                resolution.resolution_metadata.insert(k, v);
            }
        }
        check_id(did, url, &resolution)?;
        return Ok(resolution);
    }
    match status {
        200 => match json {
            Some(document) if document.is_object() => {
                let resolution = Resolution {
                    document: Some(document),
                    ..Resolution::default()
                };
                check_id(did, url, &resolution)?;
                Ok(resolution)
            }
            _ => Err(ResolutionError::new(
                ErrorKind::Internal,
                format!(
                    "the driver at {url} answered 200 ({content_type}) with neither a DID \
                     document nor a resolution result: {}",
                    brief(body)
                ),
            )),
        },
        404 => Err(ResolutionError::new(
            ErrorKind::NotFound,
            format!("{did} was not found (the driver at {url} answered 404)"),
        )),
        406 => Err(ResolutionError::new(
            ErrorKind::RepresentationNotSupported,
            format!("the driver at {url} answered 406: {}", brief(body)),
        )),
        410 => {
            let mut document_metadata = Map::new();
            document_metadata.insert("deactivated".into(), Value::Bool(true));
            Ok(Resolution {
                document: None,
                document_metadata,
                resolution_metadata: Map::new(),
            })
        }
        _ => Err(ResolutionError::new(
            ErrorKind::Internal,
            format!("the driver at {url} answered {status}: {}", brief(body)),
        )),
    }
}

/// A driver's document must be about the DID asked for (DID Core §7.1.1).
fn check_id(did: &str, url: &str, resolution: &Resolution) -> Result<(), ResolutionError> {
    let Some(document) = &resolution.document else {
        return Ok(());
    };
    match document.get("id").and_then(Value::as_str) {
        Some(id) if id == did => Ok(()),
        Some(id) => Err(ResolutionError::new(
            ErrorKind::Internal,
            format!("the driver at {url} answered a document for {id:?}, not {did}"),
        )),
        None => Err(ResolutionError::new(
            ErrorKind::Internal,
            format!("the driver at {url} answered a document without an id"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn driver(pattern: &str, url: &str) -> Driver {
        Driver::new(
            0,
            &DriverConfig {
                pattern: pattern.into(),
                url: url.into(),
                test_identifiers: vec![],
                connect_timeout_ms: None,
                timeout_ms: None,
                cache_ttl_secs: None,
                max_body_bytes: None,
            },
            None,
            &ClientBase::default(),
        )
        .unwrap()
    }

    #[test]
    fn urls_are_filled_as_the_universal_resolver_fills_them() {
        let d = driver(
            "^(did:web:.+)$",
            "http://driver-web:8080/1.0/identifiers/$1",
        );
        assert_eq!(
            d.request_url("did:web:example.com"),
            "http://driver-web:8080/1.0/identifiers/did:web:example.com"
        );
        let d = driver("^did:web:(.+)$", "http://d/1.0/identifiers/$2");
        assert_eq!(
            d.request_url("did:web:a:b"),
            "http://d/1.0/identifiers/a%3Ab"
        );
        let d = driver("did:web:.+", "http://d/1.0/identifiers");
        assert_eq!(
            d.request_url("did:web:x"),
            "http://d/1.0/identifiers/did:web:x"
        );
        let d = driver("did:web:(.+)", "http://d/resolve?did={did}");
        assert_eq!(d.request_url("did:web:x"), "http://d/resolve?did=did:web:x");
        assert_eq!(d.methods(), vec!["web".to_string()]);
    }

    #[test]
    fn patterns_match_the_whole_did() {
        let drivers = Drivers::new(&[DriverConfig {
            pattern: "did:web:[a-z.]+".into(),
            url: "http://d/".into(),
            test_identifiers: vec!["did:web:example.com".into()],
            connect_timeout_ms: Some(5),
            timeout_ms: Some(10),
            cache_ttl_secs: Some(0),
            max_body_bytes: None,
        }])
        .unwrap();
        assert!(drivers.find("did:web:example.com").is_some());
        assert!(drivers.find("did:web:example.com:Path").is_none());
        assert!(drivers.find("xdid:web:example.com").is_none());
        let d = drivers.iter().next().unwrap();
        assert_eq!(d.properties()["http"]["timeoutMs"], 10);
        assert_eq!(d.methods(), vec!["web".to_string()]);
    }

    #[test]
    fn bad_configuration_is_refused() {
        let bad = |pattern: &str, url: &str| {
            Drivers::new(&[DriverConfig {
                pattern: pattern.into(),
                url: url.into(),
                test_identifiers: vec![],
                connect_timeout_ms: None,
                timeout_ms: None,
                cache_ttl_secs: None,
                max_body_bytes: None,
            }])
            .unwrap_err()
            .to_string()
        };
        assert!(bad("(", "http://d/").contains("not a regular expression"));
        assert!(bad("x", "ftp://d/").contains("http://"));
        assert!(Drivers::new(&[DriverConfig {
            pattern: "x".into(),
            url: "https://d/".into(),
            ..Default::default()
        }])
        .is_ok());
        assert!(bad("x", "http://").contains("not a URL"));
    }

    #[test]
    fn answers_map_to_standard_errors() {
        let did = "did:web:x";
        let url = "http://d/";
        let kind = |status: u16, body: &str| {
            interpret(did, url, status, "application/json", body.as_bytes())
                .map(|r| r.document.is_some())
                .map_err(|e| e.kind)
        };
        assert_eq!(kind(404, "nope"), Err(ErrorKind::NotFound));
        assert_eq!(kind(406, ""), Err(ErrorKind::RepresentationNotSupported));
        assert_eq!(kind(500, "boom"), Err(ErrorKind::Internal));
        assert_eq!(kind(200, "not json"), Err(ErrorKind::Internal));
        assert_eq!(kind(200, r#"{"id":"did:web:y"}"#), Err(ErrorKind::Internal));
        assert_eq!(kind(200, r#"{"id":"did:web:x"}"#), Ok(true));
        assert_eq!(
            kind(
                400,
                r#"{"didDocument":null,"didResolutionMetadata":{"error":"invalidDid"},"didDocumentMetadata":{}}"#
            ),
            Err(ErrorKind::InvalidDid)
        );
        assert_eq!(
            kind(
                404,
                r#"{"didDocument":null,"didResolutionMetadata":{"error":{"type":"https://www.w3.org/ns/did#NOT_FOUND","detail":"x"}},"didDocumentMetadata":{}}"#
            ),
            Err(ErrorKind::NotFound)
        );
        assert_eq!(
            kind(
                200,
                r#"{"didDocument":{"id":"did:web:x"},"didResolutionMetadata":{"contentType":"application/did"},"didDocumentMetadata":{"versionId":"3"}}"#
            ),
            Ok(true)
        );
        let gone = interpret(did, url, 410, "", b"").unwrap();
        assert!(gone.deactivated());
    }
}
