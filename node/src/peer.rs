//! The peer API: certified blocks over HTTP, served by every node, and the client that syncs a
//! ledger from it.
//!
//! **Served** (by the daemon's peer door, over [`HeadWatch`], [`PageRequest`] and
//! [`blocks_page`]):
//!
//! - `GET /1.0/ledger/head`: the newest certified header (`{"header", "certificate"}`).
//! - `GET /1.0/ledger/blocks?from=H&limit=N&wait=MS`: `{"chainId", "head", "blocks": [...]}`,
//!   the committed blocks from height `H` on, in order, each with its transactions and commit
//!   certificate, at most `N` of them ([`MAX_LIMIT`], default [`DEFAULT_LIMIT`]), the whole
//!   answer at most [`MAX_PAGE_BYTES`]: a page stops adding blocks before that cap, and a
//!   single block always fits, since a block is at most
//!   [`sparkid_ledger::block::MAX_BLOCK_BYTES`]. When `H` is past the head, the answer waits up to `MS`
//!   milliseconds ([`MAX_WAIT_MS`]) for the block to be committed (a long poll), so a follower
//!   sees a block within milliseconds of its commit instead of at its next poll. A parameter
//!   that is not a number or is out of range gets a 400 problem object naming it.
//!
//! Blocks are sent as the ledger stored them: the receiver checks everything (see
//! [`sparkid_ledger::Ledger::apply_block`]), so a peer needs no trust, only availability.
//!
//! **Client** ([`PeerClient`], [`sync_step`], [`catch_up`]): fetch pages of blocks after the local
//! head and apply them, on a blocking thread, through `apply_block`, which refuses a block whose
//! certificate lacks a quorum of the genesis validators, whose state root or transaction root
//! does not match its re-execution, or that does not extend the head. A refused block is never
//! applied; the error says which block, from which peer, and why.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use sparkid_ledger::block::MAX_BLOCK_BYTES;
use sparkid_ledger::{Block, CertifiedHeader, Genesis, Ledger, LedgerError, StateMachine};
use thiserror::Error;
use tokio::sync::watch;
use tracing::debug;

use crate::outbound::ClientBase;

/// Blocks per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// The most blocks per page.
pub const MAX_LIMIT: usize = 1000;
/// The most bytes of a page of blocks, the whole answer: it holds at least one block of the
/// largest size ([`MAX_BLOCK_BYTES`]) with room to spare, asserted below.
pub const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;
/// What a page's members other than its blocks may take (`chainId`, `head`, brackets): the
/// room a single block of [`MAX_BLOCK_BYTES`] needs besides itself.
const PAGE_ENVELOPE_BYTES: usize = 64 * 1024;
/// The longest long poll, in milliseconds.
pub const MAX_WAIT_MS: u64 = 30_000;
/// The largest answer the client reads: a full page plus one block of the largest size.
pub const MAX_ANSWER_BYTES: usize = 4 * MAX_PAGE_BYTES;
// Every committed block can be transferred: it fits in one page, and a page in what a client
// reads.
const _: () = assert!(MAX_BLOCK_BYTES + PAGE_ENVELOPE_BYTES <= MAX_PAGE_BYTES);
const _: () = assert!(MAX_PAGE_BYTES <= MAX_ANSWER_BYTES);

/// Problem type: a query parameter of the peer API is not usable.
pub const PROBLEM_INVALID_PARAMETER: &str = "urn:sparkid:problem:invalid-parameter";

/// The head height of a ledger, as a channel that long polls wait on.
#[derive(Clone)]
pub struct HeadWatch {
    ledger: Arc<Ledger>,
    height: watch::Sender<u64>,
}

impl HeadWatch {
    /// Watches `ledger`: every committed block (proposed here or applied from a peer) moves the
    /// watched height.
    pub fn new(ledger: &Arc<Ledger>) -> HeadWatch {
        let (height, _) = watch::channel(ledger.height());
        let sender = height.clone();
        ledger.on_commit(Box::new(move |block| {
            sender.send_replace(block.height);
        }));
        HeadWatch {
            ledger: ledger.clone(),
            height,
        }
    }

    /// The ledger watched.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// Waits until the head is at `height` or above, at most `timeout`; whether it is.
    pub async fn wait_for(&self, height: u64, timeout: Duration) -> bool {
        let mut rx = self.height.subscribe();
        if self.ledger.height() >= height {
            return true;
        }
        let reached = match tokio::time::timeout(timeout, rx.wait_for(|h| *h >= height)).await {
            Ok(Ok(_)) => true,
            Ok(Err(_)) | Err(_) => false,
        };
        reached
    }
}

/// A query parameter of `GET /1.0/ledger/blocks` that is not usable: the problem object
/// ([`PROBLEM_INVALID_PARAMETER`], status 400) names `parameter` and says `detail`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{parameter}: {detail}")]
pub struct ParameterError {
    /// The parameter.
    pub parameter: &'static str,
    /// What is wrong with it.
    pub detail: String,
}

impl ParameterError {
    fn new(parameter: &'static str, detail: impl Into<String>) -> ParameterError {
        ParameterError {
            parameter,
            detail: detail.into(),
        }
    }
}

/// A query number: none when absent; the problem's detail when it is not a number up to `max`.
fn number(name: &str, value: Option<&str>, max: u64) -> Result<Option<u64>, String> {
    let Some(text) = value else { return Ok(None) };
    let n: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{name}={text:?} is not a non-negative integer"))?;
    if n > max {
        return Err(format!("{name}={n} is above the maximum {max}"));
    }
    Ok(Some(n))
}

/// What `GET /1.0/ledger/blocks` asks for, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// The first height wanted.
    pub from: u64,
    /// The most blocks wanted (1 to [`MAX_LIMIT`]).
    pub limit: usize,
    /// How long to wait for block `from` when it is past the head (at most [`MAX_WAIT_MS`]).
    pub wait: Duration,
}

impl PageRequest {
    /// Checks the query's `from`, `limit` and `wait`, as they came (absent: `None`): `from` is
    /// required, `limit` is 1 to [`MAX_LIMIT`] ([`DEFAULT_LIMIT`] when absent), `wait` is
    /// milliseconds up to [`MAX_WAIT_MS`] (0 when absent).
    pub fn parse(
        from: Option<&str>,
        limit: Option<&str>,
        wait: Option<&str>,
    ) -> Result<PageRequest, ParameterError> {
        let from = match number("from", from, u64::MAX) {
            Ok(Some(n)) => n,
            Ok(None) => {
                return Err(ParameterError::new(
                    "from",
                    "from (the first height wanted) is required",
                ))
            }
            Err(detail) => return Err(ParameterError::new("from", detail)),
        };
        let limit = match number("limit", limit, MAX_LIMIT as u64) {
            Ok(Some(0)) => return Err(ParameterError::new("limit", "limit must be at least 1")),
            Ok(n) => n.map_or(DEFAULT_LIMIT, |n| n as usize),
            Err(detail) => return Err(ParameterError::new("limit", detail)),
        };
        let wait = match number("wait", wait, MAX_WAIT_MS) {
            Ok(n) => Duration::from_millis(n.unwrap_or(0)),
            Err(detail) => return Err(ParameterError::new("wait", detail)),
        };
        Ok(PageRequest { from, limit, wait })
    }
}

/// Why a page of blocks could not be read (an internal error of this node).
#[derive(Debug, Error)]
pub enum PageError {
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// The blocking read did not finish.
    #[error("{0}")]
    Thread(String),
}

/// The newest certified header, as JSON (`GET /1.0/ledger/head`).
pub fn head_json(watch: &HeadWatch) -> String {
    serde_json::to_string(&watch.ledger().head()).unwrap_or_default()
}

/// The answer to `GET /1.0/ledger/blocks` (JSON: `{"chainId", "head", "blocks"}`): waits up to
/// `request.wait` when `request.from` is past the head, then reads the blocks on a blocking
/// thread.
pub async fn blocks_page(watch: &HeadWatch, request: PageRequest) -> Result<Vec<u8>, PageError> {
    let PageRequest { from, limit, wait } = request;
    if from > watch.ledger().height() && !wait.is_zero() {
        watch.wait_for(from, wait).await;
    }
    let ledger = watch.ledger().clone();
    let chain_id = Value::from(ledger.genesis().chain_id.as_str()).to_string();
    // What the blocks may take: the cap less the other members (the head's 20 digits at most).
    let envelope = chain_id.len() + 64;
    let budget = MAX_PAGE_BYTES.saturating_sub(envelope);
    let (head, blocks) = tokio::task::spawn_blocking(move || {
        // The head is read first: the blocks read after it reach at least that far.
        let head = ledger.height();
        ledger
            .block_range_json(from, limit, budget)
            .map(|blocks| (head, blocks))
    })
    .await
    .map_err(|e| PageError::Thread(e.to_string()))??;
    // A long poll is woken by the commit listener, which runs before the head moves: the page
    // may hold a block past the head read above, and the head it reports covers it.
    let head = match blocks.len() as u64 {
        0 => head,
        n => head.max(from.saturating_add(n - 1)),
    };
    let size: usize = blocks.iter().map(|b| b.len() + 1).sum();
    let mut body = Vec::with_capacity(size + envelope);
    body.extend_from_slice(b"{\"chainId\":");
    body.extend_from_slice(chain_id.as_bytes());
    body.extend_from_slice(format!(",\"head\":{head},\"blocks\":[").as_bytes());
    for (i, block) in blocks.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(block);
    }
    body.extend_from_slice(b"]}");
    Ok(body)
}

/// Why syncing from a peer failed.
#[derive(Debug, Error)]
pub enum SyncError {
    /// The peer could not be reached, or the exchange broke.
    #[error("peer {url}: {reason}")]
    Unreachable {
        /// The peer.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The peer answered with an error status.
    #[error("peer {url} answered {status}: {body}")]
    Status {
        /// The peer.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of its answer.
        body: String,
    },
    /// The peer's answer does not decode.
    #[error("peer {url}: the answer does not decode: {reason}")]
    Decode {
        /// The peer.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The peer serves another chain.
    #[error("peer {url} serves chain {got:?}, this ledger is chain {expected:?}")]
    WrongChain {
        /// The peer.
        url: String,
        /// This ledger's chain id.
        expected: String,
        /// The peer's.
        got: String,
    },
    /// A block from the peer was refused: it was not applied.
    #[error("block {height} from {url} refused: {source}")]
    Refused {
        /// The peer.
        url: String,
        /// The block's height.
        height: u64,
        /// Why the ledger refused it.
        source: LedgerError,
    },
    /// The local ledger failed (not the peer's fault).
    #[error("local ledger: {0}")]
    Ledger(LedgerError),
}

impl SyncError {
    /// For a refused block: a short reason class for metrics (`certificate`, `state_root`,
    /// `transaction`, `chain`, `other`).
    pub fn refusal_kind(&self) -> Option<&'static str> {
        let SyncError::Refused { source, .. } = self else {
            return None;
        };
        Some(match source {
            LedgerError::Certificate(_) => "certificate",
            LedgerError::BadTransaction { .. } | LedgerError::Tx(_) => "transaction",
            LedgerError::BadBlock { reason, .. } => {
                if reason.contains("state root") {
                    "state_root"
                } else if reason.contains("txRoot") {
                    "transaction"
                } else if reason.contains("previousHash") || reason.contains("the head is at") {
                    "link"
                } else if reason.contains("chain") {
                    "chain"
                } else {
                    "other"
                }
            }
            _ => "other",
        })
    }
}

/// A page of blocks from a peer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockPage {
    /// The peer's chain id.
    pub chain_id: String,
    /// The peer's head height when it read the page.
    pub head: u64,
    /// The blocks, in height order.
    pub blocks: Vec<Block>,
}

/// A client of one peer's API.
#[derive(Debug, Clone)]
pub struct PeerClient {
    base: String,
    http: reqwest::Client,
}

/// How long connecting to a peer may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an answer may take beyond the long poll it asked for.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

impl PeerClient {
    /// A client of the peer at `base` (`http://host:port`).
    pub fn new(base: &str) -> Result<PeerClient, SyncError> {
        PeerClient::with_base(base, &ClientBase::default())
    }

    /// A client of the peer at `base` (`http://host:port` or `https://host:port`), built from
    /// `client` (the daemon's trust roots).
    pub fn with_base(base: &str, client: &ClientBase) -> Result<PeerClient, SyncError> {
        let base = base.trim_end_matches('/').to_string();
        let http = client
            .builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| SyncError::Unreachable {
                url: base.clone(),
                reason: e.to_string(),
            })?;
        Ok(PeerClient { base, http })
    }

    /// The peer's base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    async fn get(&self, path: &str, timeout: Duration) -> Result<Vec<u8>, SyncError> {
        let url = format!("{}{path}", self.base);
        let unreachable = |e: reqwest::Error| SyncError::Unreachable {
            url: self.base.clone(),
            reason: crate::outbound::error_chain(&e),
        };
        let mut response = self
            .http
            .get(&url)
            .timeout(timeout)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        // Read in chunks, bounded: a peer is not trusted with this process's memory.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(SyncError::Decode {
                    url: self.base.clone(),
                    reason: format!("the answer to {path} is over {MAX_ANSWER_BYTES} bytes"),
                });
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(SyncError::Status {
                url: self.base.clone(),
                status: status.as_u16(),
                body: text,
            });
        }
        Ok(body)
    }

    fn decode<T: for<'de> Deserialize<'de>>(&self, body: &[u8]) -> Result<T, SyncError> {
        serde_json::from_slice(body).map_err(|e| SyncError::Decode {
            url: self.base.clone(),
            reason: e.to_string(),
        })
    }

    /// The peer's genesis (`GET /1.0/genesis`).
    pub async fn genesis(&self) -> Result<Genesis, SyncError> {
        let body = self.get("/1.0/genesis", ANSWER_TIMEOUT).await?;
        self.decode(&body)
    }

    /// The peer's newest certified header (`GET /1.0/ledger/head`).
    pub async fn head(&self) -> Result<CertifiedHeader, SyncError> {
        let body = self.get("/1.0/ledger/head", ANSWER_TIMEOUT).await?;
        self.decode(&body)
    }

    /// Blocks from height `from`, at most `limit`; when `from` is past the peer's head, the
    /// peer waits up to `wait` for it.
    pub async fn blocks(
        &self,
        from: u64,
        limit: usize,
        wait: Duration,
    ) -> Result<BlockPage, SyncError> {
        let wait_ms = u64::try_from(wait.as_millis())
            .unwrap_or(MAX_WAIT_MS)
            .min(MAX_WAIT_MS);
        let path = format!(
            "/1.0/ledger/blocks?from={from}&limit={}&wait={wait_ms}",
            limit.clamp(1, MAX_LIMIT)
        );
        let body = self
            .get(&path, Duration::from_millis(wait_ms) + ANSWER_TIMEOUT)
            .await?;
        let this = self.clone();
        // Decoding a page of thousands of transactions is CPU work: off the async threads.
        tokio::task::spawn_blocking(move || this.decode::<BlockPage>(&body))
            .await
            .map_err(|e| SyncError::Decode {
                url: self.base.clone(),
                reason: e.to_string(),
            })?
    }
}

/// What one [`sync_step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncProgress {
    /// Blocks applied.
    pub applied: u64,
    /// The local head height after it.
    pub height: u64,
    /// The peer's head height, as it last said.
    pub peer_head: u64,
}

/// One round of sync from a peer: asks `peer` for the blocks after `ledger`'s head (waiting up
/// to `wait` at the peer when there is none yet), and applies them in order on a blocking
/// thread with [`Ledger::apply_block`], which verifies each block's commit certificate against
/// the genesis validators, its link to the head, its transaction root, and its state root by
/// re-executing it with `machine`, and commits it durably. Blocks applied before a refused one
/// stay applied; the refused block and those after it are not.
///
/// This is the whole of syncing: a follower calls it in a loop ([`crate::follow`]); a validator
/// that restarts behind its peers calls [`catch_up`], which calls it until the peer's head is
/// reached. It is safe to call while other blocks are being committed locally: `apply_block`
/// refuses a block that no longer extends the head (reported as [`SyncError::Refused`] with a
/// link error, after which the next round starts from the new head).
pub async fn sync_step<M: StateMachine + 'static>(
    ledger: &Arc<Ledger>,
    machine: &Arc<M>,
    peer: &PeerClient,
    limit: usize,
    wait: Duration,
) -> Result<SyncProgress, SyncError> {
    let from = ledger.height().saturating_add(1);
    let page = peer.blocks(from, limit, wait).await?;
    if page.chain_id != ledger.genesis().chain_id {
        return Err(SyncError::WrongChain {
            url: peer.url().to_string(),
            expected: ledger.genesis().chain_id.clone(),
            got: page.chain_id,
        });
    }
    let peer_head = page.head;
    if page.blocks.is_empty() {
        return Ok(SyncProgress {
            applied: 0,
            height: ledger.height(),
            peer_head,
        });
    }
    let (ledger, machine, url) = (ledger.clone(), machine.clone(), peer.url().to_string());
    tokio::task::spawn_blocking(move || {
        let mut applied = 0u64;
        for block in page.blocks {
            let height = block.header.height;
            ledger
                .apply_block(machine.as_ref(), block)
                .map_err(|source| match source {
                    LedgerError::Storage(_) | LedgerError::Io(_) | LedgerError::Tree(_) => {
                        SyncError::Ledger(source)
                    }
                    source => SyncError::Refused {
                        url: url.clone(),
                        height,
                        source,
                    },
                })?;
            applied += 1;
            debug!(height, peer = %url, "applied block");
        }
        Ok(SyncProgress {
            applied,
            height: ledger.height(),
            peer_head,
        })
    })
    .await
    .map_err(|e| SyncError::Ledger(LedgerError::Corrupt(format!("sync thread: {e}"))))?
}

/// Applies blocks from `peer` until `ledger` reaches the peer's head as the peer reported it
/// along the way (no long poll: it returns once caught up). Returns the number of blocks
/// applied. For a validator that restarts behind its peers, and for a new follower's first
/// catch-up.
pub async fn catch_up<M: StateMachine + 'static>(
    ledger: &Arc<Ledger>,
    machine: &Arc<M>,
    peer: &PeerClient,
) -> Result<u64, SyncError> {
    let mut applied = 0;
    loop {
        let step = sync_step(ledger, machine, peer, MAX_LIMIT, Duration::ZERO).await?;
        applied += step.applied;
        if step.applied == 0 || step.height >= step.peer_head {
            return Ok(applied);
        }
    }
}
