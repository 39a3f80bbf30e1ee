//! Follower mode (`sparkid serve --follow URL`): a replica that syncs certified blocks from a
//! peer, serves every read door from its own ledger, and forwards writes to the validators.
//!
//! **Trust.** A follower holds no key. On its first start it fetches the genesis from a peer
//! (`GET /1.0/genesis`) and the certificate of block 0, and creates its ledger from them; a
//! `--genesis` file, when given, must be exactly that genesis (the trust anchor: without it the
//! first peer is trusted on first use, and a warning says so). From then on every block is
//! checked by [`sparkid_ledger::Ledger::apply_block`] (quorum certificate of the genesis
//! validators, link, transaction root, state root by re-execution) before it is applied; a
//! refused block is logged at `error` with its height, peer and reason, counted in
//! `sparkid_sync_blocks_refused_total{reason}`, and never applied; the follower backs off and
//! tries the next peer.
//!
//! **Sync.** One task long-polls the peer (`GET /1.0/ledger/blocks?from=<head+1>&wait=..`, see
//! [`crate::peer`]) and applies what comes on a blocking thread; the peer answers as soon as it
//! commits a block, so a follower is usually one round trip and one re-execution behind. A
//! follower that was down resumes from its own head. Applying a block runs the ledger's commit
//! listeners, so the cache (L1, and Redis with its invalidation channel) is kept current exactly
//! as on a validator.
//!
//! **Writes.** `POST /1.0/create|update|deactivate|namespaces|transactions` ([`WRITE_ROUTES`]) are
//! forwarded as they are (path, query, body) by the daemon's middleware ([`Follower::forward`])
//! to a validator (`--validator-url`, default the `--follow` peers) and its answer
//! is returned as it is (status, body). A job (`jobId`) continues on the validator that started
//! it. Read-your-writes: when the answer is `finished` at height `h`, the follower answers only
//! once it has applied `h` itself (at most [`READ_YOUR_WRITES_WAIT`]; past that the validator's
//! answer is returned anyway, with `Sparkid-Follower-Height` telling how far the follower is),
//! so a client that writes and then reads through the same follower sees its write.
//!
//! **Sub-chains.** A follower follows the main chain only; `--subchain` is refused in follower
//! mode. `did:bid:<ac>:...` is answered through the endpoints the main chain names for the AC
//! code (recursive resolution), as on any node that does not host that sub-chain.
//!
//! **Metrics** (in `/metrics`): `sparkid_sync_peer_head_height`, `sparkid_sync_lag_blocks`,
//! `sparkid_sync_blocks_applied_total`, `sparkid_sync_blocks_refused_total{reason}`
//! (`certificate`, `state_root`, `transaction`, `link`, `chain`, `other`),
//! `sparkid_sync_errors_total` (peer unreachable or answering garbage),
//! `sparkid_forwarded_writes_total{status}`, and the pace of catching up:
//! `sparkid_sync_blocks_per_second` (over [`RATE_WINDOW`]) and `sparkid_sync_eta_seconds`.
//! `/healthz` carries a `sync` member (with `blocksPerSecond` and `etaSeconds`), and answers 503
//! while the follower is more than [`MAX_HEALTHY_LAG`] blocks behind its peer (catching up), so a
//! load balancer sends it no reads until it is current. While behind, the follower logs its
//! height, lag, pace and time left every [`PROGRESS_LOG_INTERVAL`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use reqwest::header::{self, HeaderMap, HeaderValue};
use serde_json::{json, Value};
use sparkid_ledger::{Genesis, Ledger, LedgerError, LedgerOptions};
use sparkid_registrar::{BidStateMachine, RegistrarResponse};
use thiserror::Error;
use tracing::{error, info, warn};

use crate::outbound::ClientBase;
use crate::peer::{self, HeadWatch, PeerClient, SyncError};

/// How long one long poll waits at the peer.
pub const LONG_POLL: Duration = Duration::from_secs(10);
/// The first and the longest pause after a failed round.
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause after failed rounds.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The longest a forwarded write waits for the follower to apply the block that holds it.
pub const READ_YOUR_WRITES_WAIT: Duration = Duration::from_secs(5);
/// How far behind its peer a follower still reports itself healthy.
pub const MAX_HEALTHY_LAG: u64 = 100;
/// How long a forwarded write may take at the validator (it waits for its block).
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(60);
/// The response header that tells how far this follower has applied the chain.
pub const FOLLOWER_HEIGHT_HEADER: &str = "sparkid-follower-height";
/// The registrar routes a follower forwards.
pub const WRITE_ROUTES: [&str; 5] = [
    "/1.0/create",
    "/1.0/update",
    "/1.0/deactivate",
    "/1.0/namespaces",
    "/1.0/transactions",
];
/// Jobs remembered (their validator), for continuing them on the same one.
const MAX_JOBS: usize = 100_000;
/// The span the catch-up rate is measured over: recent enough to follow a change of pace,
/// long enough to smooth pages of different sizes.
pub const RATE_WINDOW: Duration = Duration::from_secs(30);
/// How often a follower catching up logs its progress (and once on each first page behind).
pub const PROGRESS_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// The follower's pace: samples of its height over the last [`RATE_WINDOW`], from which the
/// blocks applied per second and the time left to catch up are told.
#[derive(Debug, Default)]
pub struct SyncRate {
    samples: std::collections::VecDeque<(Instant, u64)>,
}

impl SyncRate {
    /// Notes the height at `at`; samples older than the window go (the newest two stay).
    pub fn record(&mut self, at: Instant, height: u64) {
        self.samples.push_back((at, height));
        while self.samples.len() > 2
            && self
                .samples
                .front()
                .is_some_and(|(t, _)| at.saturating_duration_since(*t) > RATE_WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// Blocks applied per second over the window; none before two samples a moment apart.
    pub fn per_second(&self) -> Option<f64> {
        let (first, last) = (self.samples.front()?, self.samples.back()?);
        let secs = last.0.saturating_duration_since(first.0).as_secs_f64();
        if secs < 0.001 {
            return None;
        }
        Some(last.1.saturating_sub(first.1) as f64 / secs)
    }

    /// How long `lag` blocks take at the current pace: zero with no lag, none when the pace is
    /// unknown or nil.
    pub fn eta(&self, lag: u64) -> Option<Duration> {
        if lag == 0 {
            return Some(Duration::ZERO);
        }
        let rate = self.per_second().filter(|r| *r > 0.0)?;
        Duration::try_from_secs_f64(lag as f64 / rate).ok()
    }
}

/// How to open and run a follower: what the daemon's configuration says about it. The other
/// settings a follower refuses (dev mode, a validator key, hosted sub-chains) are here so that
/// [`open_ledger`] can say which to drop.
#[derive(Debug, Clone, Default)]
pub struct FollowOptions {
    /// The data directory (`--data`).
    pub data: PathBuf,
    /// The peers to sync blocks from (`--follow`), base URLs; at least one.
    pub follow: Vec<String>,
    /// Where writes are forwarded (`--validator-url`); empty: the `follow` peers.
    pub validator_urls: Vec<String>,
    /// The genesis file the peers' chain must have (`--genesis`): the trust anchor.
    pub genesis: Option<PathBuf>,
    /// How the ledger is opened.
    pub ledger: LedgerOptions,
    /// Dev mode was asked for (`--dev`): refused.
    pub dev: bool,
    /// A validator key was given (`--validator-key`): refused.
    pub validator_key: Option<PathBuf>,
    /// Sub-chains to host were given (`--subchain`): refused.
    pub subchains: Vec<sparkid_bid::AcCode>,
    /// What clients of peers and validators are built from (the daemon's trust roots).
    pub client: ClientBase,
    /// Blocks asked for in one page (`--sync-page-blocks`), at most [`peer::MAX_LIMIT`]; 0:
    /// that most. Smaller pages hold less memory and show progress more often.
    pub page_blocks: usize,
}

/// Why a follower could not open or start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FollowError {
    /// Dev mode was asked for.
    #[error("--follow and --dev exclude each other: a follower holds no validator key")]
    WithDev,
    /// A validator key was given.
    #[error("a follower certifies no block: drop --validator-key (or --follow)")]
    WithValidatorKey,
    /// Sub-chains to host were given.
    #[error("a follower follows the main chain only: drop --subchain (or --follow)")]
    WithSubChains,
    /// No peer to follow.
    #[error("follower mode needs at least one --follow URL")]
    NoPeer,
    /// A `--follow` URL is not a base URL.
    #[error("--follow {0:?}: a base URL such as http://validator:8080")]
    FollowUrl(String),
    /// A `--validator-url` is not a base URL.
    #[error("--validator-url {0:?}: a base URL such as http://validator:8080")]
    ValidatorUrl(String),
    /// A peer client could not be made.
    #[error(transparent)]
    Peer(#[from] SyncError),
    /// The data directory could not be created.
    #[error("creating {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The genesis file cannot be used.
    #[error(transparent)]
    Genesis(#[from] crate::node::GenesisFileError),
    /// The ledger in the data directory is another chain than the genesis file's.
    #[error("the ledger in {} is chain {chain_id:?}, not the --genesis file's", dir.display())]
    OtherLedger {
        /// The data directory.
        dir: PathBuf,
        /// The chain its ledger holds.
        chain_id: String,
    },
    /// A peer serves another chain than the genesis file's.
    #[error(
        "peer {peer} serves chain {chain_id:?} whose genesis is not the --genesis file's: \
         refusing it"
    )]
    OtherPeerChain {
        /// The peer.
        peer: String,
        /// The chain it serves.
        chain_id: String,
    },
    /// The peer's block 0 does not make a ledger.
    #[error("block 0 of the peer")]
    Block0(#[source] LedgerError),
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The forwarding HTTP client could not be built.
    #[error("the forwarding HTTP client")]
    Http(#[from] reqwest::Error),
    /// The sync metrics could not be registered.
    #[error("registering the sync metrics")]
    Metrics(#[from] prometheus::Error),
}

/// Opens the follower's ledger, creating it from a peer's genesis and block 0 on the first
/// start. Refuses a ledger or a peer whose genesis is not the `--genesis` file's. Must run on
/// the multi-threaded tokio runtime (it opens the database in place).
pub async fn open_ledger(config: &FollowOptions) -> Result<Arc<Ledger>, FollowError> {
    if config.dev {
        return Err(FollowError::WithDev);
    }
    if config.validator_key.is_some() {
        return Err(FollowError::WithValidatorKey);
    }
    if !config.subchains.is_empty() {
        return Err(FollowError::WithSubChains);
    }
    let expected: Option<Genesis> = match &config.genesis {
        Some(path) => Some(crate::node::read_genesis(path)?),
        None => None,
    };
    std::fs::create_dir_all(&config.data).map_err(|source| FollowError::CreateDir {
        path: config.data.clone(),
        source,
    })?;
    if Ledger::exists(&config.data) {
        let ledger = tokio::task::block_in_place(|| {
            Ledger::open_with_options(&config.data, &config.ledger)
        })?;
        if let Some(expected) = &expected {
            if ledger.genesis() != expected {
                return Err(FollowError::OtherLedger {
                    dir: config.data.clone(),
                    chain_id: ledger.genesis().chain_id.clone(),
                });
            }
        }
        return Ok(Arc::new(ledger));
    }
    let peers = clients(&config.follow, &config.client)?;
    let mut backoff = MIN_BACKOFF;
    loop {
        for peer in &peers {
            match create_from(peer, &config.data, expected.as_ref()).await {
                Ok(ledger) => {
                    // Created with the database's defaults; reopened with the configured cache.
                    drop(ledger);
                    let ledger = tokio::task::block_in_place(|| {
                        Ledger::open_with_options(&config.data, &config.ledger)
                    })?;
                    return Ok(Arc::new(ledger));
                }
                Err(Bootstrap::Fatal(e)) => return Err(e),
                Err(Bootstrap::Retry(e)) => {
                    warn!(peer = %peer.url(), error = %e, "cannot fetch the genesis yet; retrying")
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Opens a follower's node: its ledger ([`open_ledger`]) and a registrar that cannot certify.
/// Writes are forwarded before they reach it ([`Follower::forward`]); its certifier refuses
/// every block all the same, so that nothing, whatever the route, makes a block on a follower.
pub async fn open_node(config: &FollowOptions) -> Result<crate::node::Node, FollowError> {
    let ledger = open_ledger(config).await?;
    let machine = BidStateMachine::for_genesis(ledger.genesis());
    let certify: sparkid_registrar::Certifier = Box::new(|header| {
        Err(sparkid_ledger::LedgerError::BadBlock {
            height: header.height,
            reason: "a follower certifies no block; writes go to the validators".into(),
        })
    });
    let submitter = sparkid_registrar::Submitter::start(ledger.clone(), machine, certify);
    let registrar = Arc::new(sparkid_registrar::Registrar::new(
        ledger.clone(),
        submitter,
        false,
    ));
    Ok(crate::node::Node {
        ledger,
        registrar,
        dev: false,
        subchains: Vec::new(),
        consensus: None,
    })
}

enum Bootstrap {
    /// The peer could not be asked: try again.
    Retry(SyncError),
    /// The peer's chain is not ours, or the ledger cannot be made.
    Fatal(FollowError),
}

async fn create_from(
    peer: &PeerClient,
    data: &Path,
    expected: Option<&Genesis>,
) -> Result<Ledger, Bootstrap> {
    let genesis = peer.genesis().await.map_err(Bootstrap::Retry)?;
    match expected {
        Some(expected) if &genesis != expected => {
            return Err(Bootstrap::Fatal(FollowError::OtherPeerChain {
                peer: peer.url().to_string(),
                chain_id: genesis.chain_id,
            }))
        }
        Some(_) => {}
        None => warn!(
            peer = %peer.url(),
            chain = %genesis.chain_id,
            "no --genesis given: trusting the peer's genesis on first use (pin it with --genesis)"
        ),
    }
    let page = peer
        .blocks(0, 1, Duration::ZERO)
        .await
        .map_err(Bootstrap::Retry)?;
    let Some(block0) = page
        .blocks
        .into_iter()
        .next()
        .filter(|b| b.header.height == 0)
    else {
        return Err(Bootstrap::Retry(SyncError::Decode {
            url: peer.url().to_string(),
            reason: "no block 0 in the answer".into(),
        }));
    };
    let data = data.to_path_buf();
    let chain = genesis.chain_id.clone();
    let ledger = tokio::task::block_in_place(|| {
        Ledger::create_certified(&data, genesis, block0.certificate)
    })
    .map_err(|e| Bootstrap::Fatal(FollowError::Block0(e)))?;
    info!(peer = %peer.url(), %chain, "created a follower ledger from the peer's genesis");
    Ok(ledger)
}

fn clients(urls: &[String], client: &ClientBase) -> Result<Vec<PeerClient>, FollowError> {
    if urls.is_empty() {
        return Err(FollowError::NoPeer);
    }
    urls.iter()
        .map(|u| {
            if !is_base_url(u) {
                return Err(FollowError::FollowUrl(u.clone()));
            }
            Ok(PeerClient::with_base(u, client)?)
        })
        .collect()
}

fn is_base_url(url: &str) -> bool {
    url.starts_with("http://") || url.starts_with("https://")
}

/// Whether a request is a write a follower forwards: a `POST` to one of [`WRITE_ROUTES`].
pub fn is_forwarded(method: &str, path: &str) -> bool {
    method == "POST" && WRITE_ROUTES.contains(&path)
}

/// A validator's answer to a forwarded write, to be returned as it is: its status, its headers
/// (`Content-Type`, and [`FOLLOWER_HEIGHT_HEADER`] when the validator answered) and its body.
#[derive(Debug, Clone)]
pub struct Forwarded {
    /// The HTTP status.
    pub status: u16,
    /// The headers to answer with.
    pub headers: HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Forwarded {
    /// A registrar answer made here (no validator answered): `failed`, with `status`.
    fn failed(status: u16, reason: String) -> Forwarded {
        let answer = RegistrarResponse::failed(None, status, reason);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Forwarded {
            status,
            headers,
            body: Bytes::from(serde_json::to_vec(&answer).unwrap_or_default()),
        }
    }
}

/// The sync metrics.
#[derive(Clone)]
struct SyncMetrics {
    peer_head: IntGauge,
    lag: IntGauge,
    rate: Gauge,
    eta: Gauge,
    applied: IntCounter,
    refused: IntCounterVec,
    errors: IntCounter,
    forwarded: IntCounterVec,
}

impl SyncMetrics {
    fn register(registry: &Registry) -> Result<SyncMetrics, prometheus::Error> {
        let peer_head = IntGauge::new(
            "sparkid_sync_peer_head_height",
            "The head height of the peer this follower syncs from, as last reported.",
        )?;
        let lag = IntGauge::new(
            "sparkid_sync_lag_blocks",
            "Blocks the follower is behind its peer.",
        )?;
        let rate = Gauge::new(
            "sparkid_sync_blocks_per_second",
            "Blocks the follower applied per second over the last 30 s.",
        )?;
        let eta = Gauge::new(
            "sparkid_sync_eta_seconds",
            "Seconds the follower needs to catch up with its peer at its recent pace; 0 when \
             current, -1 when behind with no recent pace.",
        )?;
        let applied = IntCounter::new(
            "sparkid_sync_blocks_applied_total",
            "Blocks received from peers, verified and applied.",
        )?;
        let refused = IntCounterVec::new(
            Opts::new(
                "sparkid_sync_blocks_refused_total",
                "Blocks received from peers and refused (never applied), by reason.",
            ),
            &["reason"],
        )?;
        let errors = IntCounter::new(
            "sparkid_sync_errors_total",
            "Failed sync rounds: peer unreachable, or an answer that does not decode.",
        )?;
        let forwarded = IntCounterVec::new(
            Opts::new(
                "sparkid_forwarded_writes_total",
                "Writes forwarded to a validator, by the status returned.",
            ),
            &["status"],
        )?;
        registry.register(Box::new(peer_head.clone()))?;
        registry.register(Box::new(lag.clone()))?;
        registry.register(Box::new(rate.clone()))?;
        registry.register(Box::new(eta.clone()))?;
        registry.register(Box::new(applied.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(forwarded.clone()))?;
        Ok(SyncMetrics {
            peer_head,
            lag,
            rate,
            eta,
            applied,
            refused,
            errors,
            forwarded,
        })
    }
}

/// A running follower: its peers, its sync state, and where its writes go.
pub struct Follower {
    ledger: Arc<Ledger>,
    watch: HeadWatch,
    peers: Vec<PeerClient>,
    /// Index into `peers` of the peer in use.
    current: AtomicUsize,
    /// The peer's head as last reported; 0 before the first answer.
    peer_head: AtomicU64,
    refused: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// The pace of syncing, for the progress log, `/healthz` and `/metrics`.
    rate: Mutex<SyncRate>,
    /// When progress was last logged.
    progress_logged: Mutex<Option<Instant>>,
    /// Blocks asked for in one page.
    page_blocks: usize,
    upstream: Vec<String>,
    /// Index into `upstream` of the validator writes go to first.
    preferred: AtomicUsize,
    http: reqwest::Client,
    /// jobId → the upstream index that issued it, and when.
    jobs: Mutex<HashMap<String, (usize, Instant)>>,
    metrics: SyncMetrics,
}

impl Follower {
    /// Starts syncing `ledger` from `config.follow`'s peers in a background task; writes go to
    /// `config.validator_urls` (default: the same peers). Its metrics are registered in
    /// `registry`. Must run inside the tokio runtime.
    pub fn start(
        ledger: Arc<Ledger>,
        watch: HeadWatch,
        config: &FollowOptions,
        registry: &Registry,
    ) -> Result<Arc<Follower>, FollowError> {
        let peers = clients(&config.follow, &config.client)?;
        let upstream: Vec<String> = if config.validator_urls.is_empty() {
            config.follow.clone()
        } else {
            config.validator_urls.clone()
        }
        .into_iter()
        .map(|u| u.trim_end_matches('/').to_string())
        .collect();
        if let Some(bad) = upstream.iter().find(|u| !is_base_url(u)) {
            return Err(FollowError::ValidatorUrl(bad.clone()));
        }
        let http = config
            .client
            .builder()
            .connect_timeout(peer::CONNECT_TIMEOUT)
            .timeout(FORWARD_TIMEOUT)
            .build()?;
        let follower = Arc::new(Follower {
            ledger,
            watch,
            peers,
            current: AtomicUsize::new(0),
            peer_head: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            last_error: Mutex::new(None),
            rate: Mutex::new(SyncRate::default()),
            progress_logged: Mutex::new(None),
            page_blocks: match config.page_blocks {
                0 => peer::MAX_LIMIT,
                n => n.min(peer::MAX_LIMIT),
            },
            upstream,
            preferred: AtomicUsize::new(0),
            http,
            jobs: Mutex::new(HashMap::new()),
            metrics: SyncMetrics::register(registry)?,
        });
        let machine = Arc::new(BidStateMachine::for_genesis(follower.ledger.genesis()));
        tokio::spawn(follower.clone().run(machine));
        info!(
            peers = ?config.follow,
            height = follower.ledger.height(),
            "following"
        );
        Ok(follower)
    }

    async fn run(self: Arc<Self>, machine: Arc<BidStateMachine>) {
        let mut backoff = MIN_BACKOFF;
        let mut caught_up = false;
        self.sample_rate();
        loop {
            let index = self.current.load(Ordering::Relaxed) % self.peers.len();
            let peer = &self.peers[index];
            let started = Instant::now();
            match peer::sync_step(&self.ledger, &machine, peer, self.page_blocks, LONG_POLL).await {
                Ok(progress) => {
                    backoff = MIN_BACKOFF;
                    self.peer_head.store(progress.peer_head, Ordering::Relaxed);
                    self.metrics.applied.inc_by(progress.applied);
                    self.sample_rate();
                    self.update_gauges();
                    *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
                    let synced = progress.height >= progress.peer_head;
                    if !synced && progress.applied > 0 {
                        self.log_progress(peer.url(), progress.height, progress.peer_head);
                    }
                    if synced && !caught_up {
                        let rate = self.lock_rate().per_second().unwrap_or(0.0);
                        info!(
                            height = progress.height,
                            peer = %peer.url(),
                            blocks_per_second = %format!("{rate:.1}"),
                            "caught up with the peer"
                        );
                    }
                    caught_up = synced;
                    // A peer that does not hold the long poll must not make this a busy loop.
                    if progress.applied == 0 && started.elapsed() < Duration::from_millis(50) {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
                Err(e) => {
                    if let Some(kind) = e.refusal_kind() {
                        self.refused.fetch_add(1, Ordering::Relaxed);
                        self.metrics.refused.with_label_values(&[kind]).inc();
                        error!(peer = %peer.url(), reason = kind, error = %e, "refused a block from a peer: it is not applied");
                    } else {
                        self.metrics.errors.inc();
                        warn!(peer = %peer.url(), error = %e, "sync round failed");
                    }
                    *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(e.to_string());
                    if self.peers.len() > 1 {
                        self.current
                            .store((index + 1) % self.peers.len(), Ordering::Relaxed);
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    fn lock_rate(&self) -> std::sync::MutexGuard<'_, SyncRate> {
        self.rate.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sample_rate(&self) {
        self.lock_rate()
            .record(Instant::now(), self.ledger.height());
    }

    /// Logs where catching up stands (height, lag, pace, time left), at most every
    /// [`PROGRESS_LOG_INTERVAL`].
    fn log_progress(&self, peer: &str, height: u64, peer_head: u64) {
        let now = Instant::now();
        {
            let mut logged = self
                .progress_logged
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if logged.is_some_and(|at| now.duration_since(at) < PROGRESS_LOG_INTERVAL) {
                return;
            }
            *logged = Some(now);
        }
        let lag = peer_head.saturating_sub(height);
        let (rate, eta) = {
            let r = self.lock_rate();
            (r.per_second().unwrap_or(0.0), r.eta(lag))
        };
        info!(
            height,
            peer_height = peer_head,
            lag,
            peer,
            blocks_per_second = %format!("{rate:.1}"),
            eta_secs = %eta.map_or_else(|| "unknown".to_string(), |d| d.as_secs().to_string()),
            "catching up with the peer"
        );
    }

    fn lag(&self) -> u64 {
        self.peer_head
            .load(Ordering::Relaxed)
            .saturating_sub(self.ledger.height())
    }

    fn update_gauges(&self) {
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.metrics
            .peer_head
            .set(clamp(self.peer_head.load(Ordering::Relaxed)));
        let lag = self.lag();
        self.metrics.lag.set(clamp(lag));
        let (rate, eta) = {
            let r = self.lock_rate();
            (r.per_second(), r.eta(lag))
        };
        self.metrics.rate.set(rate.unwrap_or(0.0));
        // -1: no pace to tell the time left by (nothing applied lately while behind).
        self.metrics
            .eta
            .set(eta.map_or(-1.0, |d| d.as_secs_f64().round()));
    }

    /// The sync state for `/healthz`, and whether the follower is current enough to serve.
    pub fn health(&self) -> (bool, Value) {
        self.update_gauges();
        let index = self.current.load(Ordering::Relaxed) % self.peers.len();
        let lag = self.lag();
        let last_error = self
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let healthy = lag <= MAX_HEALTHY_LAG;
        let (rate, eta) = {
            let r = self.lock_rate();
            (r.per_second(), r.eta(lag))
        };
        let state = if !healthy {
            "catching-up"
        } else if last_error.is_some() {
            "degraded"
        } else {
            "synced"
        };
        (
            healthy,
            json!({
                "state": state,
                "peer": self.peers[index].url(),
                "height": self.ledger.height(),
                "peerHeight": self.peer_head.load(Ordering::Relaxed),
                "lag": lag,
                "refusedBlocks": self.refused.load(Ordering::Relaxed),
                "lastError": last_error,
                "blocksPerSecond": rate.map(|r| (r * 10.0).round() / 10.0),
                "etaSeconds": eta.map(|d| d.as_secs()),
            }),
        )
    }

    fn job_upstream(&self, body: &[u8]) -> Option<usize> {
        let job = serde_json::from_slice::<Value>(body).ok()?;
        let id = job.get("jobId")?.as_str()?;
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.get(id).map(|(i, _)| *i)
    }

    fn remember_job(&self, answer: &Value, upstream: usize) {
        let Some(id) = answer.get("jobId").and_then(Value::as_str) else {
            return;
        };
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if jobs.len() >= MAX_JOBS {
            let ttl = sparkid_registrar::api::JOB_TTL;
            jobs.retain(|_, (_, at)| at.elapsed() < ttl);
            if jobs.len() >= MAX_JOBS {
                jobs.clear();
            }
        }
        jobs.insert(id.to_string(), (upstream, Instant::now()));
    }

    /// Forwards a registrar request (`path_and_query` of `/1.0/create` and the like, its
    /// `Content-Type` and body) to a validator and returns the validator's answer as it is; see
    /// the module documentation for jobs and read-your-writes. When no validator answers, a
    /// 502 registrar answer made here.
    pub async fn forward(
        &self,
        path_and_query: &str,
        content_type: Option<&HeaderValue>,
        body: Bytes,
    ) -> Forwarded {
        let n = self.upstream.len();
        // A job continues where it started; anything else goes to the preferred validator and,
        // when that one cannot be reached at all, to the next.
        let (first, tries) = match self.job_upstream(&body) {
            Some(i) => (i, 1),
            None => (self.preferred.load(Ordering::Relaxed) % n, n),
        };
        let mut last_error = String::new();
        for k in 0..tries {
            let index = (first + k) % n;
            let url = format!("{}{}", self.upstream[index], path_and_query);
            let mut request = self.http.post(&url).body(body.clone());
            if let Some(ct) = content_type {
                request = request.header(header::CONTENT_TYPE, ct.clone());
            }
            match request.send().await {
                Ok(response) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return self.relay(index, response).await;
                }
                // Only a request that never reached the validator is tried elsewhere: one that
                // did may have been submitted.
                Err(e) if e.is_connect() => {
                    warn!(validator = %self.upstream[index], error = %e, "cannot reach the validator");
                    last_error = format!("{}: {e}", self.upstream[index]);
                }
                Err(e) => {
                    last_error = format!("{}: {e}", self.upstream[index]);
                    break;
                }
            }
        }
        self.metrics.forwarded.with_label_values(&["502"]).inc();
        Forwarded::failed(
            502,
            format!(
                "this follower forwards writes to a validator, and none answered ({last_error})"
            ),
        )
    }

    async fn relay(&self, index: usize, response: reqwest::Response) -> Forwarded {
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static("application/json"));
        let body = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                self.metrics.forwarded.with_label_values(&["502"]).inc();
                return Forwarded::failed(502, format!("the validator's answer broke off: {e}"));
            }
        };
        self.metrics
            .forwarded
            .with_label_values(&[status.as_str()])
            .inc();
        if let Ok(answer) = serde_json::from_slice::<Value>(&body) {
            self.remember_job(&answer, index);
            let finished_at = (answer["didState"]["state"] == "finished")
                .then(|| answer["didRegistrationMetadata"]["height"].as_u64())
                .flatten();
            if let Some(height) = finished_at {
                if !self.watch.wait_for(height, READ_YOUR_WRITES_WAIT).await {
                    warn!(
                        height,
                        local = self.ledger.height(),
                        "a forwarded write finished at a height this follower has not applied yet"
                    );
                }
            }
        }
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, content_type);
        headers.insert(
            FOLLOWER_HEIGHT_HEADER,
            HeaderValue::from(self.ledger.height()),
        );
        Forwarded {
            status: status.as_u16(),
            headers,
            body,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_is_told_over_the_window_and_the_time_left_from_it() {
        let t0 = Instant::now();
        let mut rate = SyncRate::default();
        assert_eq!(rate.per_second(), None);
        rate.record(t0, 100);
        assert_eq!(rate.per_second(), None, "one sample tells no pace");
        rate.record(t0 + Duration::from_secs(2), 1100);
        assert_eq!(rate.per_second(), Some(500.0));
        assert_eq!(rate.eta(2000), Some(Duration::from_secs(4)));
        assert_eq!(rate.eta(0), Some(Duration::ZERO));
        // Samples older than the window go: the pace is the recent one.
        rate.record(t0 + Duration::from_secs(40), 1100);
        rate.record(t0 + Duration::from_secs(42), 1300);
        assert_eq!(rate.per_second(), Some(100.0));
        // Stalled while behind: no time left can be told.
        rate.record(t0 + Duration::from_secs(80), 1300);
        rate.record(t0 + Duration::from_secs(81), 1300);
        assert_eq!(rate.per_second(), Some(0.0));
        assert_eq!(rate.eta(10), None);
    }
}
