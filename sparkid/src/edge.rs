//! The HTTP edge: what every connection and request meets before a door answers it, so that
//! no single client can hold the daemon's sockets, workers or ledger (issue 12, items 4 and 7).
//!
//! - **Connections** are accepted by our own loop over hyper's HTTP/1 server (not
//!   `axum::serve`, which has none of these knobs): at most [`LimitsConfig::max_connections`]
//!   open in total and [`LimitsConfig::max_connections_per_client`] per client; one over a cap
//!   gets a 429 (per client) or 503 (in total) written straight away and is closed, without
//!   reading its request.
//! - **Timeouts**: a client has [`LimitsConfig::header_read_timeout`] to send a complete
//!   request head, counted from the connection's opening or the end of the previous answer
//!   (hyper's timer: it is also how long a kept-alive connection may sit idle between
//!   requests); a connection on which no byte moves either way for
//!   [`LimitsConfig::idle_timeout`] (a body trickled in, an answer nobody reads) is closed.
//!   A slowloris therefore holds at most its per-client share of connections, each for at most
//!   the header timeout, and `/healthz` from anyone else is served as usual.
//! - **Long polls** (`GET /1.0/ledger/blocks` with a non-zero `wait`): at most
//!   [`LimitsConfig::max_long_polls_per_client`] at once per client.
//! - **Rate limits**: a token bucket per client and [`Class`] (`write`, `expensive`, `peer`);
//!   see [`classify`] for what falls in each. Over the limit: 429 with `Retry-After` in the
//!   door's own error shape ([`refusal`]).
//!
//! - **Event loops** ([`LimitsConfig::http_loops`], one per core by default): each accepted
//!   connection is served by one of a few threads, each with its own single-threaded runtime
//!   (the one with the fewest open connections takes it), as nginx's workers do: a request is
//!   read, answered and written on one thread, with no work stealing and no cross-thread
//!   wake-up. A request the [`FastLane`] cannot answer is handed to the daemon's shared
//!   runtime, where the router and every door run as they always did (its answer comes back to
//!   the connection's thread; a connection that closes cancels it).
//! - **The fast lane** ([`FastLane`]): before the router, a door may answer a request it can
//!   answer at once (the resolution door: a did:bid whose answer L1 holds). It only sees
//!   requests no rate limit or cap applies to ([`classify`] says none, not a long poll), and
//!   it counts them in the route's own metrics.
//!
//! - **TLS** (optional, [`TlsFiles`]): the handshake runs after the connection took its slot
//!   (the caps hold for TLS connections too) and must finish within the header-read timeout;
//!   the request limits then apply to every request as on plain HTTP. A connection over a
//!   cap on a TLS port is closed unanswered (a plaintext 429 would mean nothing to a TLS
//!   client), and a plaintext client on a TLS port fails its handshake and is closed.
//!
//! A *client* is its IP address, an IPv6 address counting by its /64 (one host usually holds a
//! whole /64). Behind a load balancer every request comes from the balancer's address: give the
//! balancer the per-client limits, or raise them here.
//!
//! Memory is bounded: the connection and long-poll tables hold only clients with something
//! open, and each bucket table at most [`LimitsConfig::max_tracked_clients`] clients (full
//! buckets, which say nothing, are swept first; clients beyond the bound share one bucket).

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::Service;

/// The problem type of every refusal for a limit (`application/problem+json` and the problem
/// objects of the resolution door).
pub const PROBLEM_RATE_LIMITED: &str = "urn:sparkid:problem:rate-limited";

/// A token bucket's rate: `per_second` tokens refill continuously up to `burst`; a request
/// takes one. `per_second` 0 turns the limit off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests per second, sustained.
    pub per_second: f64,
    /// Requests at once after a quiet spell.
    pub burst: f64,
}

impl Rate {
    fn is_off(&self) -> bool {
        self.per_second <= 0.0 || !self.per_second.is_finite()
    }
}

/// The edge's limits (`[limits]` in the configuration file, flags and environment).
#[derive(Debug, Clone, PartialEq)]
pub struct LimitsConfig {
    /// Time to send a complete request head (also the idle time allowed between two requests
    /// on a kept-alive connection).
    pub header_read_timeout: Duration,
    /// A connection on which no byte moves either way for this long is closed.
    pub idle_timeout: Duration,
    /// Open connections, in total.
    pub max_connections: usize,
    /// Open connections per client.
    pub max_connections_per_client: usize,
    /// Long polls (`/1.0/ledger/blocks?wait=…`) waiting at once per client.
    pub max_long_polls_per_client: usize,
    /// Writes: registrar and namespace POSTs.
    pub write: Rate,
    /// Expensive reads: resolutions asking for `noCache`, `proof` or `verify`, POSTed
    /// resolutions.
    pub expensive: Rate,
    /// Peer traffic: consensus messages and block pages.
    pub peer: Rate,
    /// Clients tracked per bucket table.
    pub max_tracked_clients: usize,
    /// Threads serving HTTP connections, each with its own event loop; 0: connections are
    /// served on the daemon's shared runtime.
    pub http_loops: usize,
}

/// The default header-read timeout (ms).
pub const DEFAULT_HEADER_READ_TIMEOUT_MS: u64 = 10_000;
/// The default idle timeout (s): above the peer API's longest long poll (30 s).
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 60;
/// The default cap on open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// The default cap on open connections per client.
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 128;
/// The default cap on long polls per client (a follower holds one per peer).
pub const DEFAULT_MAX_LONG_POLLS_PER_CLIENT: usize = 16;
/// The default write rate per client.
pub const DEFAULT_WRITE: Rate = Rate {
    per_second: 50.0,
    burst: 500.0,
};
/// The default expensive-read rate per client.
pub const DEFAULT_EXPENSIVE: Rate = Rate {
    per_second: 100.0,
    burst: 400.0,
};
/// The default peer rate per client (validators and followers talk a lot).
pub const DEFAULT_PEER: Rate = Rate {
    per_second: 1000.0,
    burst: 4000.0,
};
/// The default bound of each bucket table.
pub const DEFAULT_MAX_TRACKED_CLIENTS: usize = 100_000;

/// The default number of HTTP event loops: one per core.
pub fn default_http_loops() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            header_read_timeout: Duration::from_millis(DEFAULT_HEADER_READ_TIMEOUT_MS),
            idle_timeout: Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_client: DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
            max_long_polls_per_client: DEFAULT_MAX_LONG_POLLS_PER_CLIENT,
            write: DEFAULT_WRITE,
            expensive: DEFAULT_EXPENSIVE,
            peer: DEFAULT_PEER,
            max_tracked_clients: DEFAULT_MAX_TRACKED_CLIENTS,
            http_loops: default_http_loops(),
        }
    }
}

/// The `[limits]` table of the configuration file. Every member is optional.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Milliseconds to send a complete request head \[default: 10000\].
    pub header_read_timeout_ms: Option<u64>,
    /// Seconds without a byte moving before a connection is closed \[default: 60\].
    pub idle_timeout_secs: Option<u64>,
    /// Open connections in total \[default: 4096\].
    pub max_connections: Option<usize>,
    /// Open connections per client \[default: 128\].
    pub max_connections_per_client: Option<usize>,
    /// Long polls per client \[default: 16\].
    pub max_long_polls_per_client: Option<usize>,
    /// Writes per second per client; 0: unlimited \[default: 50\].
    pub write_per_second: Option<f64>,
    /// Write burst per client \[default: 500\].
    pub write_burst: Option<f64>,
    /// Expensive reads per second per client; 0: unlimited \[default: 100\].
    pub expensive_per_second: Option<f64>,
    /// Expensive-read burst per client \[default: 400\].
    pub expensive_burst: Option<f64>,
    /// Peer requests per second per client; 0: unlimited \[default: 1000\].
    pub peer_per_second: Option<f64>,
    /// Peer burst per client \[default: 4000\].
    pub peer_burst: Option<f64>,
    /// Clients tracked per rate-limit table \[default: 100000\].
    pub max_tracked_clients: Option<usize>,
    /// Threads serving HTTP connections, each with its own event loop; 0: the daemon's shared
    /// runtime \[default: one per core\].
    pub http_loops: Option<usize>,
}

/// The limit flags of `sparkid serve` (each also an environment variable).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LimitsArgs {
    /// Milliseconds a client has to send a complete request head [default: 10000].
    #[arg(long, env = "SPARKID_HEADER_READ_TIMEOUT_MS")]
    pub header_read_timeout_ms: Option<u64>,
    /// Seconds without a byte moving before a connection is closed [default: 60].
    #[arg(long, env = "SPARKID_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Open HTTP connections in total [default: 4096].
    #[arg(long, env = "SPARKID_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Open HTTP connections per client IP [default: 128].
    #[arg(long, env = "SPARKID_MAX_CONNECTIONS_PER_CLIENT")]
    pub max_connections_per_client: Option<usize>,
    /// Long polls (/1.0/ledger/blocks?wait=) per client IP [default: 16].
    #[arg(long, env = "SPARKID_MAX_LONG_POLLS_PER_CLIENT")]
    pub max_long_polls_per_client: Option<usize>,
    /// Writes per second per client IP; 0: unlimited [default: 50].
    #[arg(long, env = "SPARKID_RATE_WRITE")]
    pub rate_write: Option<f64>,
    /// Write burst per client IP [default: 500].
    #[arg(long, env = "SPARKID_RATE_WRITE_BURST")]
    pub rate_write_burst: Option<f64>,
    /// Expensive reads (noCache, proof, verify) per second per client IP; 0: unlimited
    /// [default: 100].
    #[arg(long, env = "SPARKID_RATE_EXPENSIVE")]
    pub rate_expensive: Option<f64>,
    /// Expensive-read burst per client IP [default: 400].
    #[arg(long, env = "SPARKID_RATE_EXPENSIVE_BURST")]
    pub rate_expensive_burst: Option<f64>,
    /// Peer requests (consensus, block pages) per second per client IP; 0: unlimited
    /// [default: 1000].
    #[arg(long, env = "SPARKID_RATE_PEER")]
    pub rate_peer: Option<f64>,
    /// Peer burst per client IP [default: 4000].
    #[arg(long, env = "SPARKID_RATE_PEER_BURST")]
    pub rate_peer_burst: Option<f64>,
    /// Threads serving HTTP connections, each with its own event loop; 0: the daemon's shared
    /// runtime [default: one per core].
    #[arg(long, env = "SPARKID_HTTP_LOOPS")]
    pub http_loops: Option<usize>,
}

impl LimitsArgs {
    /// The limits: flags (and environment) over the file's `[limits]` over the defaults. Caps
    /// are at least 1; a burst is at least 1.
    pub fn resolve(self, file: Option<LimitsFile>) -> LimitsConfig {
        let f = file.unwrap_or_default();
        let d = LimitsConfig::default();
        let rate = |per_second: Option<f64>, burst: Option<f64>, default: Rate| Rate {
            per_second: per_second.unwrap_or(default.per_second).max(0.0),
            burst: burst.unwrap_or(default.burst).max(1.0),
        };
        LimitsConfig {
            header_read_timeout: Duration::from_millis(
                self.header_read_timeout_ms
                    .or(f.header_read_timeout_ms)
                    .unwrap_or(DEFAULT_HEADER_READ_TIMEOUT_MS)
                    .max(1),
            ),
            idle_timeout: Duration::from_secs(
                self.idle_timeout_secs
                    .or(f.idle_timeout_secs)
                    .unwrap_or(DEFAULT_IDLE_TIMEOUT_SECS)
                    .max(1),
            ),
            max_connections: self
                .max_connections
                .or(f.max_connections)
                .unwrap_or(d.max_connections)
                .max(1),
            max_connections_per_client: self
                .max_connections_per_client
                .or(f.max_connections_per_client)
                .unwrap_or(d.max_connections_per_client)
                .max(1),
            max_long_polls_per_client: self
                .max_long_polls_per_client
                .or(f.max_long_polls_per_client)
                .unwrap_or(d.max_long_polls_per_client)
                .max(1),
            write: rate(
                self.rate_write.or(f.write_per_second),
                self.rate_write_burst.or(f.write_burst),
                DEFAULT_WRITE,
            ),
            expensive: rate(
                self.rate_expensive.or(f.expensive_per_second),
                self.rate_expensive_burst.or(f.expensive_burst),
                DEFAULT_EXPENSIVE,
            ),
            peer: rate(
                self.rate_peer.or(f.peer_per_second),
                self.rate_peer_burst.or(f.peer_burst),
                DEFAULT_PEER,
            ),
            max_tracked_clients: f
                .max_tracked_clients
                .unwrap_or(d.max_tracked_clients)
                .max(1),
            http_loops: self.http_loops.or(f.http_loops).unwrap_or(d.http_loops),
        }
    }
}

/// Who a limit counts against: an IPv4 address, or an IPv6 address's /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Client(IpAddr);

impl Client {
    /// The client an address belongs to.
    pub fn of(ip: IpAddr) -> Client {
        match ip {
            IpAddr::V4(v4) => Client(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Client(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    Client(IpAddr::V6(Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
        }
    }
}

/// A rate-limit class: which bucket a request takes its token from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Registrar and namespace writes (`POST
    /// /1.0/create|update|deactivate|namespaces|transactions` and any other POST that is
    /// neither a resolution nor peer traffic).
    Write,
    /// Reads that skip the cache or cost signatures and proofs: `noCache`, `proof` or `verify`
    /// (any value but `false`) in the query, and every `POST /1.0/identifiers` (its options are
    /// in the body).
    Expensive,
    /// Peer traffic: `POST /1.0/consensus/*` and `GET /1.0/ledger/blocks` (block pages).
    Peer,
}

impl Class {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Class::Write => "write",
            Class::Expensive => "expensive",
            Class::Peer => "peer",
        }
    }
}

/// The rate-limit class of a request, if any (the others are not limited).
pub fn classify(method: &Method, path: &str, query: Option<&str>) -> Option<Class> {
    if path.starts_with("/1.0/consensus/") && method == Method::POST {
        return Some(Class::Peer);
    }
    if path == "/1.0/ledger/blocks" {
        return Some(Class::Peer);
    }
    if method == Method::POST {
        return Some(if path.starts_with("/1.0/identifiers") {
            Class::Expensive
        } else {
            Class::Write
        });
    }
    let expensive = query.is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(name, value)| {
            ["noCache", "proof", "verify"]
                .iter()
                .any(|option| name.eq_ignore_ascii_case(option))
                && !value.eq_ignore_ascii_case("false")
        })
    });
    expensive.then_some(Class::Expensive)
}

/// Whether a request is a long poll: block pages asked to wait (a `wait` that is not zero).
pub fn is_long_poll(path: &str, query: Option<&str>) -> bool {
    path == "/1.0/ledger/blocks"
        && query.is_some_and(|q| {
            form_urlencoded::parse(q.as_bytes())
                .any(|(name, value)| name == "wait" && !value.trim_start_matches('0').is_empty())
        })
}

/// One client's bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            tokens: rate.burst,
            at: now,
        }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.burst);
        self.at = now;
    }

    /// Takes a token, or says in how many seconds one will be there.
    fn take(&mut self, rate: Rate, now: Instant) -> Result<(), u64> {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / rate.per_second;
            // Whole seconds for Retry-After, and at least one.
            Err((wait.ceil() as u64).max(1))
        }
    }
}

struct BucketTable {
    clients: HashMap<Client, Bucket>,
    /// Shared by the clients that find the table full.
    overflow: Bucket,
    last_sweep: Instant,
}

/// The token buckets of one class, per client.
struct Buckets {
    rate: Rate,
    max_clients: usize,
    table: Mutex<BucketTable>,
}

impl Buckets {
    fn new(rate: Rate, max_clients: usize) -> Buckets {
        let now = Instant::now();
        Buckets {
            rate,
            max_clients,
            table: Mutex::new(BucketTable {
                clients: HashMap::new(),
                overflow: Bucket::full(rate, now),
                last_sweep: now,
            }),
        }
    }

    fn take(&self, client: Client, now: Instant) -> Result<(), u64> {
        if self.rate.is_off() {
            return Ok(());
        }
        let rate = self.rate;
        let mut table = lock(&self.table);
        if let Some(bucket) = table.clients.get_mut(&client) {
            return bucket.take(rate, now);
        }
        if table.clients.len() >= self.max_clients
            && now.saturating_duration_since(table.last_sweep) >= Duration::from_secs(1)
        {
            // A bucket that has refilled says nothing a new one would not: forget it.
            table.last_sweep = now;
            table.clients.retain(|_, b| {
                let mut b = *b;
                b.refill(rate, now);
                b.tokens < rate.burst
            });
        }
        if table.clients.len() >= self.max_clients {
            return table.overflow.take(rate, now);
        }
        let mut bucket = Bucket::full(rate, now);
        let taken = bucket.take(rate, now);
        table.clients.insert(client, bucket);
        taken
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Counts of what each client holds open (connections, long polls), with caps.
struct Slots {
    max_total: usize,
    max_per_client: usize,
    table: Mutex<(usize, HashMap<Client, usize>)>,
}

/// Why a slot was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Full {
    Total,
    Client,
}

impl Full {
    /// The `reason` label of `sparkid_http_refused_total`.
    fn reason(&self) -> &'static str {
        match self {
            Full::Client => "connections_per_client",
            Full::Total => "connections",
        }
    }
}

impl Slots {
    fn new(max_total: usize, max_per_client: usize) -> Arc<Slots> {
        Arc::new(Slots {
            max_total,
            max_per_client,
            table: Mutex::new((0, HashMap::new())),
        })
    }

    fn take(self: &Arc<Slots>, client: Client) -> Result<Slot, Full> {
        let mut table = lock(&self.table);
        if table.0 >= self.max_total {
            return Err(Full::Total);
        }
        let held = table.1.entry(client).or_insert(0);
        if *held >= self.max_per_client {
            return Err(Full::Client);
        }
        *held += 1;
        table.0 += 1;
        Ok(Slot {
            slots: self.clone(),
            client,
        })
    }

    fn open(&self) -> usize {
        lock(&self.table).0
    }
}

/// A held slot, given back when dropped.
struct Slot {
    slots: Arc<Slots>,
    client: Client,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut table = lock(&self.slots.table);
        table.0 = table.0.saturating_sub(1);
        if let Some(held) = table.1.get_mut(&self.client) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                table.1.remove(&self.client);
            }
        }
    }
}

/// The edge's counters (see [`crate::metrics`]).
struct EdgeMetrics {
    rate_limited: IntCounterVec,
    refused: IntCounterVec,
    closed: IntCounterVec,
    open: IntGauge,
}

impl EdgeMetrics {
    fn register(registry: &Registry) -> Result<EdgeMetrics, prometheus::Error> {
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "sparkid_rate_limited_total",
                "HTTP requests refused with 429 by a per-client rate limit, by class.",
            ),
            &["class"],
        )?;
        let refused = IntCounterVec::new(
            Opts::new(
                "sparkid_http_refused_total",
                "HTTP connections or long polls refused by a cap, by reason.",
            ),
            &["reason"],
        )?;
        let closed = IntCounterVec::new(
            Opts::new(
                "sparkid_http_connections_timed_out_total",
                "HTTP connections closed by a timeout, by timeout.",
            ),
            &["timeout"],
        )?;
        let open = IntGauge::new(
            "sparkid_http_connections_open",
            "HTTP connections open now.",
        )?;
        registry.register(Box::new(rate_limited.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(closed.clone()))?;
        registry.register(Box::new(open.clone()))?;
        Ok(EdgeMetrics {
            rate_limited,
            refused,
            closed,
            open,
        })
    }

    fn inc(counter: &IntCounterVec, label: &str) {
        if let Ok(c) = counter.get_metric_with_label_values(&[label]) {
            c.inc();
        }
    }
}

/// The edge: limits, their state and their counters, shared by the accept loop and the
/// request middleware.
pub struct Edge {
    config: LimitsConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
    connections: Arc<Slots>,
    long_polls: Arc<Slots>,
    write: Buckets,
    expensive: Buckets,
    peer: Buckets,
    metrics: EdgeMetrics,
}

impl Edge {
    /// The edge for `config`, its counters registered in `registry`.
    pub fn new(config: LimitsConfig, registry: &Registry) -> Result<Arc<Edge>, prometheus::Error> {
        Ok(Arc::new(Edge {
            connections: Slots::new(config.max_connections, config.max_connections_per_client),
            long_polls: Slots::new(usize::MAX, config.max_long_polls_per_client),
            write: Buckets::new(config.write, config.max_tracked_clients),
            expensive: Buckets::new(config.expensive, config.max_tracked_clients),
            peer: Buckets::new(config.peer, config.max_tracked_clients),
            metrics: EdgeMetrics::register(registry)?,
            config,
            tls: None,
        }))
    }

    /// The edge for `config`, answering TLS only with `tls` when given
    /// ([`TlsFiles::acceptor`]).
    pub fn with_tls(
        config: LimitsConfig,
        tls: Option<tokio_rustls::TlsAcceptor>,
        registry: &Registry,
    ) -> Result<Arc<Edge>, prometheus::Error> {
        let mut edge = Edge::new(config, registry)?;
        if let Some(edge) = Arc::get_mut(&mut edge) {
            edge.tls = tls;
        }
        Ok(edge)
    }

    /// Whether connections are answered over TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    fn buckets(&self, class: Class) -> &Buckets {
        match class {
            Class::Write => &self.write,
            Class::Expensive => &self.expensive,
            Class::Peer => &self.peer,
        }
    }
}

/// The certificate chain and private key the HTTP door answers TLS with (`--tls-cert`,
/// `--tls-key`), both PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, the server's own certificate first.
    pub cert: std::path::PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: std::path::PathBuf,
}

/// Why the HTTP door cannot answer TLS.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A TLS file could not be read or holds nothing usable.
    #[error("TLS {what} {}: {why}", path.display())]
    File {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The certificate and key do not make a TLS server (e.g. the key is not the
    /// certificate's).
    #[error("TLS certificate {} with key {}: {why}", cert.display(), key.display())]
    Config {
        /// The certificate file.
        cert: std::path::PathBuf,
        /// The key file.
        key: std::path::PathBuf,
        /// What rustls said.
        why: String,
    },
}

impl TlsFiles {
    /// A rustls acceptor with this certificate and key (HTTP/1.1 by ALPN).
    pub fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let cert_error = |why: String| TlsError::File {
            what: "certificate",
            path: self.cert.clone(),
            why,
        };
        let certs = CertificateDer::pem_file_iter(&self.cert)
            .map_err(|e| cert_error(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| cert_error(e.to_string()))?;
        if certs.is_empty() {
            return Err(cert_error("no PEM certificate in it".into()));
        }
        let key = PrivateKeyDer::from_pem_file(&self.key).map_err(|e| TlsError::File {
            what: "key",
            path: self.key.clone(),
            why: e.to_string(),
        })?;
        let config_error = |e: rustls::Error| TlsError::Config {
            cert: self.cert.clone(),
            key: self.key.clone(),
            why: e.to_string(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(config_error)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(config_error)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

/// The request middleware: rate limits and the long-poll cap. Apply it with
/// [`limit_requests`].
async fn limits(State(edge): State<Arc<Edge>>, request: Request, next: Next) -> Response {
    let Some(ConnectInfo(peer)) = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .copied()
    else {
        // Not from our accept loop (no peer address): nothing to count it against.
        return next.run(request).await;
    };
    let client = Client::of(peer.ip());
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    if let Some(class) = classify(request.method(), &path, query.as_deref()) {
        if let Err(retry_after) = edge.buckets(class).take(client, Instant::now()) {
            EdgeMetrics::inc(&edge.metrics.rate_limited, class.label());
            tracing::debug!(client = %peer.ip(), class = class.label(), "rate limited");
            return refusal(
                &path,
                retry_after,
                &format!(
                    "too many {} requests from this client; retry in {retry_after} s",
                    class.label()
                ),
            );
        }
    }
    if is_long_poll(&path, query.as_deref()) {
        match edge.long_polls.take(client) {
            Ok(slot) => {
                let response = next.run(request).await;
                drop(slot);
                return response;
            }
            Err(_) => {
                EdgeMetrics::inc(&edge.metrics.refused, "long_polls_per_client");
                return refusal(
                    &path,
                    1,
                    &format!(
                        "this client already holds {} long polls; wait for one to end",
                        edge.config.max_long_polls_per_client
                    ),
                );
            }
        }
    }
    next.run(request).await
}

/// Puts the rate limits and the long-poll cap in front of every route of `router`.
pub fn limit_requests(router: Router, edge: Arc<Edge>) -> Router {
    router.layer(axum::middleware::from_fn_with_state(edge, limits))
}

/// A 429 with `Retry-After`, in the error shape of the door that owns `path`: a DID
/// Resolution result, a registrar `failed` state, a BID-protocol envelope, or
/// `application/problem+json` (peer, consensus and the other doors).
pub fn refusal(path: &str, retry_after: u64, detail: &str) -> Response {
    let title = "Too many requests.";
    let (content_type, body) = if path.starts_with("/1.0/identifiers") {
        (
            "application/did-resolution",
            json!({
                "didDocument": null,
                "didResolutionMetadata": {
                    "contentType": "application/did-resolution",
                    "error": {"type": PROBLEM_RATE_LIMITED, "title": title, "detail": detail},
                },
                "didDocumentMetadata": {},
            }),
        )
    } else if [
        "/1.0/create",
        "/1.0/update",
        "/1.0/deactivate",
        "/1.0/namespaces",
        "/1.0/transactions",
    ]
    .contains(&path)
    {
        let failed = sparkid_registrar::api::RegistrarResponse::failed(None, 429, detail);
        (
            "application/json",
            serde_json::to_value(&failed).unwrap_or(Value::Null),
        )
    } else if path.starts_with("/1.0/")
        || path.starts_with("/api/")
        || path == "/healthz"
        || path == "/metrics"
    {
        (
            "application/problem+json",
            json!({
                "type": PROBLEM_RATE_LIMITED,
                "title": title,
                "status": 429,
                "detail": detail,
            }),
        )
    } else {
        // The BID protocol's `/{bid}`: its envelope, `errorCode` 2 (error).
        (
            "application/json",
            json!({"errorCode": 2, "data": null, "message": detail}),
        )
    };
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::CONTENT_TYPE, content_type)],
        body.to_string(),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// When a connection last moved a byte, in milliseconds since `base`.
struct Activity {
    base: Instant,
    last: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            base: Instant::now(),
            last: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let now = self.base.elapsed();
        now.saturating_sub(Duration::from_millis(self.last.load(Ordering::Relaxed)))
    }
}

/// A TCP stream that notes when bytes move.
struct Watched {
    tcp: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.tcp).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

/// How long the server waits for open connections to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A door's answers given before the router ([`serve`]): requests it can answer at once,
/// without waiting for anything (no I/O, no lock held long), on the connection's own thread.
/// The edge only offers it requests no rate limit or cap applies to; the lane must send what
/// the router would (status, headers, body) and count the request in the route's metrics.
pub trait FastLane: Send + Sync + 'static {
    /// The answer to this request, or None: the router answers it.
    fn answer(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<Response>;
}

/// What serves each connection's requests: the fast lane, then the router, on the daemon's
/// shared runtime when the connection is served by an event loop (`shared`).
#[derive(Clone)]
struct Answerer {
    app: Router,
    lane: Option<Arc<dyn FastLane>>,
    shared: Option<tokio::runtime::Handle>,
}

impl Answerer {
    /// Answers `request` (from `peer`).
    fn answer(
        &self,
        request: hyper::Request<hyper::body::Incoming>,
        peer: SocketAddr,
    ) -> impl Future<Output = Result<Response, std::convert::Infallible>> + Send + 'static {
        let fast = self.lane.as_ref().and_then(|lane| {
            let (method, uri) = (request.method(), request.uri());
            let limited = classify(method, uri.path(), uri.query()).is_some()
                || is_long_poll(uri.path(), uri.query());
            if limited {
                None
            } else {
                lane.answer(method, uri, request.headers())
            }
        });
        let routed = fast
            .is_none()
            .then(|| (self.app.clone(), self.shared.clone()));
        async move {
            let Some((mut app, shared)) = routed else {
                return Ok(fast.unwrap_or_default());
            };
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            let Some(shared) = shared else {
                return app.call(request).await;
            };
            // The router's work stays where it always ran: on the shared runtime, with its
            // worker threads and blocking pool. Dropped (the connection closed) means cancelled.
            let task = CancelOnDrop(shared.spawn(async move { app.call(request).await }));
            Ok(match (task).await {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(e) => {
                    tracing::error!("an HTTP request's handler failed: {e}");
                    StatusCode::INTERNAL_SERVER_ERROR.into_response()
                }
            })
        }
    }
}

/// A task aborted when its handle is dropped.
struct CancelOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Future for CancelOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for CancelOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One event loop: a thread running a single-threaded runtime until told to stop.
struct EventLoop {
    handle: tokio::runtime::Handle,
    /// Connections it serves now.
    open: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl EventLoop {
    fn start(n: usize) -> std::io::Result<EventLoop> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name(format!("sparkid-http-{n}"))
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name(format!("sparkid-http-{n}"))
            .spawn(move || {
                runtime.block_on(async move {
                    let _ = stopped.await;
                });
                // What is left (connections past the grace period) ends with the runtime.
                runtime.shutdown_background();
            })?;
        Ok(EventLoop {
            handle,
            open: Arc::new(AtomicUsize::new(0)),
            stop: Some(stop),
        })
    }
}

impl Drop for EventLoop {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The event loops ([`LimitsConfig::http_loops`]); none when 0, or when their threads could
/// not start (then, with a warning, the shared runtime serves).
fn event_loops(count: usize) -> Vec<EventLoop> {
    let mut loops = Vec::with_capacity(count);
    for n in 0..count {
        match EventLoop::start(n) {
            Ok(l) => loops.push(l),
            Err(e) => {
                tracing::warn!("starting HTTP event loop {n}: {e}; the shared runtime serves");
                return Vec::new();
            }
        }
    }
    loops
}

/// Counts a connection on its event loop until dropped.
struct OnLoop(Arc<AtomicUsize>);

impl Drop for OnLoop {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves `app` on `listener` within the edge's limits until `shutdown` completes, then lets
/// open connections finish their requests (at most `SHUTDOWN_GRACE`, 10 s). `lane`, when
/// given, answers what it can before the router ([`FastLane`]). Connections are served on
/// [`LimitsConfig::http_loops`] event loops (module documentation).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    edge: Arc<Edge>,
    lane: Option<Arc<dyn FastLane>>,
    shutdown: impl Future<Output = ()>,
) {
    let (stop, stopping) = watch::channel(false);
    let loops = event_loops(edge.config.http_loops);
    let answerer = Answerer {
        app,
        lane,
        shared: (!loops.is_empty()).then(tokio::runtime::Handle::current),
    };
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, mostly: back off rather than spin.
                    tracing::warn!("accepting an HTTP connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = match edge.connections.take(Client::of(peer.ip())) {
            Ok(slot) => slot,
            Err(full) if edge.is_tls() => {
                // Closed unanswered: a plaintext 429 means nothing to a TLS client, and a
                // handshake is the work the cap is there to refuse.
                EdgeMetrics::inc(&edge.metrics.refused, full.reason());
                drop(tcp);
                continue;
            }
            Err(full) => {
                refuse_connection(&edge, tcp, full);
                continue;
            }
        };
        let served = connection(peer, answerer.clone(), edge.clone(), slot, stopping.clone());
        // The loop with the fewest connections takes it.
        let Some(chosen) = loops.iter().min_by_key(|l| l.open.load(Ordering::Relaxed)) else {
            tokio::spawn(served(tcp));
            continue;
        };
        // The socket moves to the loop's own reactor.
        let tcp = match tcp.into_std() {
            Ok(tcp) => tcp,
            Err(e) => {
                tracing::debug!(client = %peer, "handing an HTTP connection over: {e}");
                continue;
            }
        };
        chosen.open.fetch_add(1, Ordering::Relaxed);
        let on_loop = OnLoop(chosen.open.clone());
        chosen.handle.spawn(async move {
            let _on_loop = on_loop;
            match TcpStream::from_std(tcp) {
                Ok(tcp) => served(tcp).await,
                Err(e) => tracing::debug!(client = %peer, "an HTTP connection's socket: {e}"),
            }
        });
    }
    stop.send_replace(true);
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    while edge.connections.open() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(loops);
}

/// Answers a connection over a cap with a complete HTTP answer, written without waiting (a
/// full socket buffer just drops it), and closes it unread.
fn refuse_connection(edge: &Edge, tcp: TcpStream, full: Full) {
    let reason = full.reason();
    let (code, status, detail) = match full {
        Full::Client => (
            429,
            "429 Too Many Requests",
            "too many open connections from this client",
        ),
        Full::Total => (503, "503 Service Unavailable", "too many open connections"),
    };
    EdgeMetrics::inc(&edge.metrics.refused, reason);
    let body = json!({
        "type": PROBLEM_RATE_LIMITED,
        "title": "Too many connections.",
        "status": code,
        "detail": detail,
    })
    .to_string();
    let answer = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/problem+json\r\nretry-after: 1\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tcp.try_write(answer.as_bytes());
}

/// Serves one connection (after its TLS handshake, within the header-read timeout, when the
/// edge answers TLS), holding its slot until it closes: the future of its socket.
fn connection(
    peer: SocketAddr,
    answerer: Answerer,
    edge: Arc<Edge>,
    slot: Slot,
    stopping: watch::Receiver<bool>,
) -> impl FnOnce(TcpStream) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    move |tcp| {
        Box::pin(async move {
            edge.metrics.open.inc();
            // TCP_NODELAY: an answer is one write; it must not wait for the client's ACK of the
            // last.
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("TCP_NODELAY on an accepted connection: {e}");
            }
            let activity = Activity::new();
            let watched = Watched {
                tcp,
                activity: activity.clone(),
            };
            match &edge.tls {
                None => http(watched, peer, answerer, &edge, activity, stopping).await,
                Some(acceptor) => {
                    let handshake = acceptor.accept(watched);
                    match tokio::time::timeout(edge.config.header_read_timeout, handshake).await {
                        Ok(Ok(tls)) => http(tls, peer, answerer, &edge, activity, stopping).await,
                        Ok(Err(e)) => {
                            EdgeMetrics::inc(&edge.metrics.refused, "tls_handshake");
                            tracing::debug!(client = %peer, "TLS handshake failed: {e}");
                        }
                        Err(_) => {
                            EdgeMetrics::inc(&edge.metrics.closed, "tls_handshake");
                            tracing::debug!(client = %peer, "TLS handshake timed out");
                        }
                    }
                }
            }
            drop(slot);
            edge.metrics.open.dec();
        })
    }
}

/// Serves HTTP/1 on `io`: hyper with the header-read timeout, an idle watchdog, and the
/// client's address on every request (`ConnectInfo`) for the request limits.
async fn http<I>(
    io: I,
    peer: SocketAddr,
    answerer: Answerer,
    edge: &Edge,
    activity: Arc<Activity>,
    mut stopping: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
        answerer.answer(request, peer)
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(edge.config.header_read_timeout);
    let conn = http.serve_connection(io, service);
    tokio::pin!(conn);
    let idle = edge.config.idle_timeout;
    let mut watchdog = tokio::time::interval((idle / 4).max(Duration::from_millis(100)));
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    if e.is_timeout() {
                        EdgeMetrics::inc(&edge.metrics.closed, "header_read");
                    } else {
                        tracing::debug!(client = %peer, "HTTP connection: {e}");
                    }
                }
                break;
            }
            _ = watchdog.tick() => {
                if activity.idle_for() >= idle {
                    EdgeMetrics::inc(&edge.metrics.closed, "idle");
                    tracing::debug!(client = %peer, "closing an idle HTTP connection");
                    break;
                }
            }
            changed = stopping.changed(), if !shutting_down => {
                shutting_down = true;
                if changed.is_ok() {
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_the_flags_then_the_file_then_the_defaults() {
        let file: LimitsFile = toml::from_str(
            "header_read_timeout_ms = 2500\nwrite_per_second = 5\nwrite_burst = 10\n\
             max_connections_per_client = 32\n",
        )
        .unwrap();
        let limits = LimitsArgs::default().resolve(Some(file.clone()));
        assert_eq!(limits.header_read_timeout, Duration::from_millis(2500));
        assert_eq!(limits.max_connections_per_client, 32);
        assert_eq!(
            limits.write,
            Rate {
                per_second: 5.0,
                burst: 10.0
            }
        );
        assert_eq!(limits.expensive, DEFAULT_EXPENSIVE);
        assert_eq!(limits.idle_timeout, Duration::from_secs(60));
        let flags = LimitsArgs {
            rate_write: Some(0.0),
            max_connections_per_client: Some(0),
            ..LimitsArgs::default()
        };
        let limits = flags.resolve(Some(file));
        // 0 turns a rate off; a cap of 0 would refuse everyone, so it is at least 1.
        assert!(limits.write.is_off());
        assert_eq!(limits.max_connections_per_client, 1);
        assert_eq!(LimitsArgs::default().resolve(None), LimitsConfig::default());
        let unknown: Result<LimitsFile, _> = toml::from_str("write_rate = 5\n");
        assert!(unknown.is_err());
    }

    #[test]
    fn requests_fall_in_their_class() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(classify(&post, "/1.0/create", None), Some(Class::Write));
        assert_eq!(classify(&post, "/1.0/namespaces", None), Some(Class::Write));
        assert_eq!(
            classify(&post, "/1.0/transactions", None),
            Some(Class::Write)
        );
        assert_eq!(
            classify(&post, "/1.0/consensus/messages", None),
            Some(Class::Peer)
        );
        assert_eq!(
            classify(&get, "/1.0/ledger/blocks", Some("from=3&wait=100")),
            Some(Class::Peer)
        );
        assert_eq!(
            classify(&get, "/1.0/identifiers/did:bid:ef1", Some("noCache=true")),
            Some(Class::Expensive)
        );
        // A percent-encoded option name is the same option to the door.
        assert_eq!(
            classify(&get, "/1.0/identifiers/did:bid:ef1", Some("no%43ache=true")),
            Some(Class::Expensive)
        );
        assert_eq!(
            classify(&get, "/did:bid:ef1", Some("verify=true")),
            Some(Class::Expensive)
        );
        assert_eq!(
            classify(&get, "/1.0/identifiers/did:bid:ef1", Some("proof=false")),
            None
        );
        assert_eq!(classify(&get, "/1.0/identifiers/did:bid:ef1", None), None);
        assert_eq!(classify(&get, "/healthz", None), None);
        assert!(is_long_poll("/1.0/ledger/blocks", Some("from=1&wait=500")));
        assert!(!is_long_poll("/1.0/ledger/blocks", Some("from=1&wait=0")));
        assert!(!is_long_poll("/1.0/ledger/blocks", Some("from=1")));
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let rate = Rate {
            per_second: 2.0,
            burst: 3.0,
        };
        let buckets = Buckets::new(rate, 10);
        let client = Client::of("192.0.2.1".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(buckets.take(client, t0), Ok(()));
        }
        assert_eq!(buckets.take(client, t0), Err(1));
        // Half a second refills one token at 2/s.
        assert_eq!(
            buckets.take(client, t0 + Duration::from_millis(500)),
            Ok(())
        );
        // Another client has its own bucket.
        let other = Client::of("192.0.2.2".parse().unwrap());
        assert_eq!(buckets.take(other, t0), Ok(()));
    }

    #[test]
    fn the_bucket_table_stays_bounded() {
        let rate = Rate {
            per_second: 1.0,
            burst: 1.0,
        };
        let buckets = Buckets::new(rate, 4);
        let t0 = Instant::now();
        for i in 0..100u8 {
            let _ = buckets.take(Client::of(IpAddr::from([10, 0, 0, i])), t0);
        }
        assert!(lock(&buckets.table).clients.len() <= 4);
        // Untracked clients share the overflow bucket: still limited.
        assert!(buckets
            .take(Client::of(IpAddr::from([10, 0, 1, 1])), t0)
            .is_err());
        // Once the tracked buckets refill, they are swept and new clients tracked again.
        let later = t0 + Duration::from_secs(5);
        assert_eq!(
            buckets.take(Client::of(IpAddr::from([10, 0, 2, 1])), later),
            Ok(())
        );
        assert_eq!(lock(&buckets.table).clients.len(), 1);
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        let a = Client::of("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = Client::of("2001:db8:1:2:bbbb::2".parse().unwrap());
        let c = Client::of("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            Client::of("::ffff:192.0.2.1".parse().unwrap()),
            Client::of("192.0.2.1".parse().unwrap())
        );
    }

    #[test]
    fn slots_cap_each_client_and_the_total() {
        let slots = Slots::new(3, 2);
        let a = Client::of("192.0.2.1".parse().unwrap());
        let b = Client::of("192.0.2.2".parse().unwrap());
        let a1 = slots.take(a).unwrap();
        let _a2 = slots.take(a).unwrap();
        assert_eq!(slots.take(a).err(), Some(Full::Client));
        let _b1 = slots.take(b).unwrap();
        assert_eq!(slots.take(b).err(), Some(Full::Total));
        drop(a1);
        assert!(slots.take(a).is_ok());
    }
}
