//! Several validators: blocks commit with the votes of a quorum (2f+1 of 3f+1) of the genesis
//! validators. The protocol, its proposer rule and its safety argument are in
//! `spec/consensus.md`; in short, it is single-decree Paxos per height with signed votes:
//!
//! - **Rounds and proposers.** Round `r` (at any height) belongs to `validators[r mod N]`. The
//!   stable leader is `validators[0]`: it proposes in round 0, with no prepare phase. A validator
//!   that cannot reach the validators before it in genesis order proposes in a round of its
//!   own, after a prepare phase; a write that arrives at a validator is forwarded to the first
//!   validator in genesis order that answers (itself at the latest).
//! - **Prepare** (`POST /1.0/consensus/prepare`): the proposer of round `r > 0` asks for
//!   promises; a validator promises never to vote in a round below `r` at that height and
//!   answers the block it last voted for. With a quorum of promises, the proposer re-proposes
//!   the block voted for in the highest round, if any, else a block of its own.
//! - **Proposal** (`POST /1.0/consensus/proposals`): a validator votes only for a block signed by
//!   the round's proposer, in a round it has not promised away, that extends its head (it
//!   catches up first when behind) and re-executes to exactly the header's state root
//!   ([`Ledger::check_block`]); it never votes for two blocks in one round at one height. Its
//!   promise and vote are synced to disk ([`VOTE_FILE`]) before it answers. These rules are
//!   [`crate::acceptor`]'s, with no I/O but the vote store.
//! - **Commit**: 2f+1 votes of one round are the block's commit certificate; the proposer
//!   commits and pushes the certified block to the others (`POST /1.0/consensus/commits`), who
//!   apply it with [`Ledger::apply_block`]. A validator that was down catches up from its peers
//!   ([`crate::peer::catch_up`]), at start and every second.
//! - **Forwarded writes** (`POST /1.0/consensus/transactions`): signed transactions another
//!   validator hands to this one to propose; each gets its committed position or its refusal.
//!   The forwarding validator answers its writer `finished` only once it holds the block
//!   itself; a block it cannot fetch in time gets a 503 naming the height.
//! - **Who may ask** ([`crate::validator_auth`]): every request above carries its sending
//!   validator's signature over the exact request, checked before the body is parsed; one
//!   that is unsigned is refused with 401, one signed by anyone else, stale or replayed with
//!   403 ([`PROBLEM_UNAUTHENTICATED`]), and nothing changes. A commit whose certificate does
//!   not verify is refused before this validator catches up towards its height.
//! - **Bounded numbers**: a height above [`MAX_HEIGHT`] or a round above [`MAX_ROUND`] in a
//!   request is refused (400); the round arithmetic is checked.
//!
//! Without a quorum nothing is committed and the writer gets
//! [`SubmitError::NoQuorum`] (a 503 registrar answer naming how many validators answered).
//!
//! This module knows no HTTP server: the daemon's consensus door parses nothing itself, hands
//! each request body to [`Consensus::on_prepare`], [`Consensus::on_proposal`],
//! [`Consensus::on_commit`] or [`Consensus::on_transactions`], and renders the answer or the
//! [`Rejection`] (problem types [`PROBLEM_REFUSED`] and [`PROBLEM_BAD_REQUEST`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus::{IntCounterVec, Opts, Registry};
use reqwest::header;
use serde::{Deserialize, Serialize};
use sparkid_bid::{PrivateKey, PublicKey, Signature};
use sparkid_ledger::block::MAX_BLOCK_BYTES;
use sparkid_ledger::block::{vote_bytes_in_round, Vote};
use sparkid_ledger::store::MAX_BLOCK_TXS;
use sparkid_ledger::{
    Block, BlockHeader, CommitCertificate, Hash, Ledger, LedgerError, Transaction, TxOutcome,
    VerifiedTransaction,
};
use sparkid_registrar::{
    BidStateMachine, Committed, OperationError, Sequencer, SubmitError, Submitter,
};
use thiserror::Error;
use tracing::{debug, info, warn};

use crate::acceptor::{check_height, Acceptor, FileVoteStore, VoteStoreError};
pub use crate::acceptor::{Accepted, Promise, Refusal, MAX_HEIGHT, MAX_ROUND, VOTE_FILE};
use crate::outbound::ClientBase;
use crate::peer::{catch_up, PeerClient, SyncError};
use crate::validator_auth::{now_ms, AuthError, Authenticator, RequestSignature};
/// The signing domain of prepare requests.
pub const PREPARE_DOMAIN: &[u8] = b"sparkid/prepare/v1\n";
/// The signing domain of proposals.
pub const PROPOSAL_DOMAIN: &[u8] = b"sparkid/proposal/v1\n";
/// Problem type of a refused prepare or proposal.
pub const PROBLEM_REFUSED: &str = "urn:sparkid:problem:consensus-refused";
/// Problem type of a consensus request that does not parse.
pub const PROBLEM_BAD_REQUEST: &str = "urn:sparkid:problem:bad-consensus-request";
/// Problem type of a consensus request not signed by a validator of the chain (401, 403).
pub const PROBLEM_UNAUTHENTICATED: &str = "urn:sparkid:problem:consensus-unauthenticated";
/// The paths of the consensus requests, as signed ([`crate::validator_auth::request_bytes`]).
pub const PREPARE_PATH: &str = "/1.0/consensus/prepare";
/// See [`PREPARE_PATH`].
pub const PROPOSALS_PATH: &str = "/1.0/consensus/proposals";
/// See [`PREPARE_PATH`].
pub const COMMITS_PATH: &str = "/1.0/consensus/commits";
/// See [`PREPARE_PATH`].
pub const TRANSACTIONS_PATH: &str = "/1.0/consensus/transactions";

/// Connecting to a validator.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// One prepare exchange.
const PREPARE_TIMEOUT: Duration = Duration::from_secs(3);
/// One proposal exchange: the validator re-executes the block before it answers.
const PROPOSAL_TIMEOUT: Duration = Duration::from_secs(8);
/// A forwarded batch: the proposer may need its own prepare and proposal rounds.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(25);
/// After a forward fails, the validator is skipped for this long.
const SUSPECT_FOR: Duration = Duration::from_secs(2);
/// How long a writer whose write another validator committed waits for this node to hold it.
const READ_YOUR_WRITE: Duration = Duration::from_secs(5);
/// Attempts of this node's own proposal for one batch (a prepare refused for a higher round,
/// a re-proposed block committed first, a catch-up: each costs one).
const OWN_ATTEMPTS: usize = 4;
/// The background catch-up's period.
const SYNC_PERIOD: Duration = Duration::from_secs(1);
/// The largest consensus request body, and the largest answer read from a validator: a
/// proposal, a commit, a forwarded batch or a promise is at most one block.
pub const MAX_REQUEST: usize = 64 * 1024 * 1024;

// A block of the largest size always fits in a request (its JSON there may order members
// differently from the stored block, never double it).
const _: () = assert!(2 * MAX_BLOCK_BYTES <= MAX_REQUEST);

/// `POST /1.0/consensus/prepare`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Prepare {
    /// The chain.
    pub chain_id: String,
    /// The height being decided.
    pub height: u64,
    /// The proposer's round.
    pub round: u64,
    /// The proposer's encoded key: `validators[round mod N]`.
    pub validator: String,
    /// Over [`prepare_bytes`].
    pub signature: Signature,
}

/// `POST /1.0/consensus/proposals`: a block without its certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProposalRequest {
    /// The round.
    pub round: u64,
    /// The header.
    pub header: BlockHeader,
    /// The transactions, in order.
    pub transactions: Vec<Transaction>,
    /// The proposer's encoded key: `validators[round mod N]`.
    pub validator: String,
    /// Over [`proposal_bytes`].
    pub signature: Signature,
}

/// What a prepare request's signature covers.
pub fn prepare_bytes(chain_id: &str, height: u64, round: u64) -> Vec<u8> {
    let mut out = PREPARE_DOMAIN.to_vec();
    out.extend_from_slice(format!("{chain_id}\n{height}\n{round}").as_bytes());
    out
}

/// What a proposal's signature covers.
pub fn proposal_bytes(chain_id: &str, height: u64, round: u64, block_hash: &Hash) -> Vec<u8> {
    let mut out = PROPOSAL_DOMAIN.to_vec();
    out.extend_from_slice(format!("{chain_id}\n{height}\n{round}\n{block_hash}").as_bytes());
    out
}

impl ProposalRequest {
    /// A proposal of `header` and `transactions` in `round`, signed by `key`.
    pub fn sign(
        round: u64,
        header: BlockHeader,
        transactions: Vec<Transaction>,
        key: &PrivateKey,
    ) -> ProposalRequest {
        let bytes = proposal_bytes(&header.chain_id, header.height, round, &header.hash());
        ProposalRequest {
            round,
            header,
            transactions,
            validator: key.public_key().to_encoded(),
            signature: key.sign(&bytes),
        }
    }
}

/// `POST /1.0/consensus/transactions`: signed transactions another validator hands to this
/// one to propose.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForwardRequest {
    /// The transactions.
    pub transactions: Vec<Transaction>,
}

/// One forwarded transaction's fate: committed (`height`, `index`, `txHash`) or refused
/// (`status`, `reason`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ForwardOutcome {
    /// The height of the block that holds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// Its index in that block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// Its hash (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_hash: Option<String>,
    /// The registrar status of its refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer to [`ForwardRequest`]: one outcome per transaction, in order.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForwardAnswer {
    /// The outcomes.
    pub outcomes: Vec<ForwardOutcome>,
}

/// `GET /1.0/consensus/status`: who this validator is and where its head is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The chain.
    pub chain_id: String,
    /// This validator's encoded key.
    pub validator: String,
    /// Its index in genesis order.
    pub index: usize,
    /// How many validators the genesis names.
    pub validators: usize,
    /// How many votes commit a block.
    pub quorum: usize,
    /// This validator's head height.
    pub height: u64,
}

/// Why a consensus request from another validator got no positive answer.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Rejection {
    /// The request does not parse (problem type [`PROBLEM_BAD_REQUEST`], status 400).
    #[error("{0}")]
    BadRequest(String),
    /// The validator refused (problem type [`PROBLEM_REFUSED`]).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The request is not signed by a validator of the chain, or is stale or replayed
    /// (problem type [`PROBLEM_UNAUTHENTICATED`]; 401 when unsigned, else 403).
    #[error(transparent)]
    Unauthenticated(#[from] AuthError),
}

impl Rejection {
    /// A short reason class, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::BadRequest(_) => "bad_request",
            Rejection::Unauthenticated(e) => e.kind(),
            Rejection::Refused(r) => match r {
                Refusal::Committed { .. } => "committed",
                Refusal::Behind { .. } => "behind",
                Refusal::Promised { .. } => "promised",
                Refusal::Equivocation { .. } => "equivocation",
                Refusal::WrongProposer(_) => "wrong_proposer",
                Refusal::Invalid(_) => "invalid",
                Refusal::Storage(_) => "storage",
            },
        }
    }
}

/// Why consensus could not start.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StartError {
    /// The validator key is not one of the genesis validators.
    #[error("the validator key is not a genesis validator")]
    NotAValidator,
    /// A `--peer` URL is not usable.
    #[error("--peer {url}")]
    Peer {
        /// The URL.
        url: String,
        /// What is wrong.
        source: Box<SyncError>,
    },
    /// The HTTP client could not be built.
    #[error("the consensus HTTP client")]
    Http(#[from] reqwest::Error),
    /// The vote file could not be read.
    #[error(transparent)]
    VoteStore(#[from] VoteStoreError),
    /// The consensus metrics could not be made.
    #[error("the consensus metrics: {0}")]
    Metrics(String),
}

/// A validator's answer to a consensus request: its status and JSON body, or why none came.
type PeerAnswer = Result<(u16, serde_json::Value), String>;

/// Why this node's own attempt to commit a batch failed.
#[derive(Debug)]
enum DriveError {
    /// Too few votes or promises.
    NoQuorum { answered: usize },
    /// Worth another attempt at once: a higher round was promised, a re-proposed block was
    /// committed first, or this node caught up.
    Retry(String),
    /// The validator of this index is past the height: catch up from it, then try again.
    Behind(usize),
    /// The local ledger failed.
    Ledger(String),
}

/// A validator of several: its key, its peers and its vote.
pub struct Consensus {
    ledger: Arc<Ledger>,
    machine: Arc<BidStateMachine>,
    key: PrivateKey,
    /// This validator's index in genesis order.
    me: usize,
    /// Encoded validator keys, genesis order.
    validators: Vec<String>,
    quorum: usize,
    peers: Vec<PeerClient>,
    http: reqwest::Client,
    /// What clients of peers learned later are built from.
    client: ClientBase,
    /// Validator index → base URL, learned from `GET /1.0/consensus/status` of each peer.
    urls: Mutex<Vec<Option<String>>>,
    /// When each validator may be tried again after a failed forward.
    suspect: Mutex<Vec<Option<Instant>>>,
    /// The highest round seen refused-for at each height, to start above it.
    seen_round: Mutex<HashMap<u64, u64>>,
    acceptor: Mutex<Acceptor<FileVoteStore>>,
    runtime: tokio::runtime::Handle,
    submitter: OnceLock<Submitter>,
    /// Checks that a request comes from a validator ([`crate::validator_auth`]).
    auth: Authenticator,
    /// `sparkid_consensus_requests_refused_total{endpoint, reason}`.
    refused: IntCounterVec,
}

impl std::fmt::Debug for Consensus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consensus")
            .field("me", &self.me)
            .field("validators", &self.validators.len())
            .finish()
    }
}

/// The sequencer the block producer runs with: [`Consensus::sequence`].
struct ConsensusSequencer(Arc<Consensus>);

impl Sequencer for ConsensusSequencer {
    fn sequence(
        &mut self,
        _ledger: &Ledger,
        _machine: &BidStateMachine,
        txs: Vec<VerifiedTransaction>,
        forwarded: bool,
    ) -> Vec<Result<Committed, SubmitError>> {
        self.0.sequence(txs, forwarded)
    }
}

impl Consensus {
    /// Starts consensus for `ledger` with this validator's `key` and the peers' base URLs, and
    /// the block producer that uses it. Must run inside the tokio runtime.
    pub fn start(
        ledger: Arc<Ledger>,
        machine: BidStateMachine,
        key: PrivateKey,
        peers: &[String],
        client: &ClientBase,
    ) -> Result<(Arc<Consensus>, Submitter), StartError> {
        let validators = ledger.genesis().validators.clone();
        let me = ledger
            .validators()
            .keys()
            .iter()
            .position(|k| *k == key.public_key())
            .ok_or(StartError::NotAValidator)?;
        let peers = peers
            .iter()
            .map(|url| {
                PeerClient::with_base(url, client).map_err(|source| StartError::Peer {
                    url: url.clone(),
                    source: Box::new(source),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let http = client.builder().connect_timeout(CONNECT_TIMEOUT).build()?;
        let n = validators.len();
        let (store, record) = FileVoteStore::open(ledger.dir())?;
        let auth = Authenticator::new(
            &ledger.genesis().chain_id,
            &validators[me],
            validators
                .iter()
                .cloned()
                .zip(ledger.validators().keys().iter().cloned())
                .collect(),
        );
        let refused = IntCounterVec::new(
            Opts::new(
                "sparkid_consensus_requests_refused_total",
                "Consensus requests refused, by endpoint and reason (unsigned, not_a_validator, \
                 bad_signature, stale, replayed, bad_request, invalid, ...).",
            ),
            &["endpoint", "reason"],
        )
        .map_err(|e| StartError::Metrics(e.to_string()))?;
        let consensus = Arc::new(Consensus {
            quorum: ledger.validators().quorum(),
            machine: Arc::new(machine.clone()),
            ledger: ledger.clone(),
            key,
            me,
            validators,
            peers,
            http,
            client: client.clone(),
            urls: Mutex::new(vec![None; n]),
            suspect: Mutex::new(vec![None; n]),
            seen_round: Mutex::new(HashMap::new()),
            acceptor: Mutex::new(Acceptor::new(store, record)),
            runtime: tokio::runtime::Handle::current(),
            submitter: OnceLock::new(),
            auth,
            refused,
        });
        let submitter = Submitter::start_with(
            ledger,
            machine,
            Box::new(ConsensusSequencer(consensus.clone())),
        );
        let _ = consensus.submitter.set(submitter.clone());
        info!(
            validator = me,
            validators = n,
            quorum = consensus.quorum,
            peers = consensus.peers.len(),
            "consensus: validator of several"
        );
        let background = consensus.clone();
        tokio::spawn(async move { background.sync_loop().await });
        Ok((consensus, submitter))
    }

    fn n(&self) -> usize {
        self.validators.len()
    }

    fn chain_id(&self) -> &str {
        &self.ledger.genesis().chain_id
    }

    /// Exposes this validator's metrics (`sparkid_consensus_requests_refused_total`) in
    /// `registry`.
    pub fn register_metrics(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.refused.clone()))
    }

    /// Counts a refused request to `endpoint` (the last path segment).
    fn count_refusal(&self, endpoint: &str, rejection: &Rejection) {
        if let Ok(c) = self
            .refused
            .get_metric_with_label_values(&[endpoint, rejection.kind()])
        {
            c.inc();
        }
    }

    /// The validator whose round `round` is.
    pub fn owner(&self, round: u64) -> usize {
        (round % self.n() as u64) as usize
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This validator's head height.
    pub fn height(&self) -> u64 {
        self.ledger.height()
    }

    /// Who this validator is and where its head is (`GET /1.0/consensus/status`).
    pub fn status(&self) -> Status {
        Status {
            chain_id: self.chain_id().to_string(),
            validator: self.validators[self.me].clone(),
            index: self.me,
            validators: self.n(),
            quorum: self.quorum,
            height: self.ledger.height(),
        }
    }

    // ---- The acceptor: what this validator promises and votes ([`crate::acceptor`]). ----

    /// Promises round `r` at height `h`: never to vote below it there. Synced before it returns.
    fn promise(&self, h: u64, r: u64) -> Result<Promise, Refusal> {
        let mut acceptor = Self::lock(&self.acceptor);
        acceptor.prepare(self.ledger.height(), h, r)
    }

    /// Votes for a block in round `r`, after checking it when `check` (a block this node built
    /// itself is not checked again). The vote is synced before it is returned.
    fn vote(
        &self,
        r: u64,
        header: &BlockHeader,
        transactions: &[Transaction],
        check: bool,
    ) -> Result<Vote, Refusal> {
        if check {
            check_height(self.ledger.height(), header.height)?;
            // Outside the acceptor's lock: checking takes the ledger's writer lock, which this
            // node's own proposal holds while it gathers votes (and takes this lock).
            self.ledger
                .check_block(self.machine.as_ref(), header, transactions)
                .map_err(|e| Refusal::Invalid(e.to_string()))?;
        }
        let mut acceptor = Self::lock(&self.acceptor);
        acceptor.accept(self.ledger.height(), r, header, transactions)?;
        Ok(Vote::sign(header, r, &self.key))
    }

    /// Checks that `validator` is the proposer of `round` and signed `bytes`.
    fn check_proposer(
        &self,
        round: u64,
        validator: &str,
        bytes: &[u8],
        signature: &Signature,
    ) -> Result<(), Refusal> {
        let owner = self.owner(round);
        let expected = &self.validators[owner];
        if !validator.eq_ignore_ascii_case(expected) {
            return Err(Refusal::WrongProposer(format!(
                "round {round} is validator {owner}'s ({expected}), not {validator}'s"
            )));
        }
        PublicKey::from_encoded(expected)
            .ok()
            .and_then(|k| k.verify(bytes, signature).ok())
            .ok_or_else(|| Refusal::WrongProposer("the request's signature does not verify".into()))
    }

    /// Catches up from the proposer of `round` when this node is behind height `h`.
    async fn catch_up_for(&self, h: u64, round: u64) {
        if self.ledger.height().saturating_add(1) >= h {
            return;
        }
        if let Some(url) = self.url_of(self.owner(round)).await {
            if let Ok(peer) = PeerClient::with_base(&url, &self.client) {
                if let Err(e) = catch_up(&self.ledger, &self.machine, &peer).await {
                    // A block pushed meanwhile makes the fetched one stale: not a failure.
                    if self.ledger.height().saturating_add(1) >= h {
                        debug!(peer = %url, error = %e, "consensus: caught up meanwhile");
                    } else {
                        warn!(peer = %url, error = %e, "consensus: catching up failed");
                    }
                }
            }
        }
    }

    // ---- Peers. ----

    /// The base URL of validator `idx`, asking the peers who they are when it is not known.
    async fn url_of(&self, idx: usize) -> Option<String> {
        if let Some(url) = Self::lock(&self.urls)[idx].clone() {
            return Some(url);
        }
        self.discover().await;
        Self::lock(&self.urls)[idx].clone()
    }

    /// Asks every peer whose validator is unknown for `GET /1.0/consensus/status`.
    async fn discover(&self) {
        let known: Vec<String> = Self::lock(&self.urls).iter().flatten().cloned().collect();
        let mut tasks = tokio::task::JoinSet::new();
        for peer in &self.peers {
            if known.iter().any(|u| u == peer.url()) {
                continue;
            }
            let url = peer.url().to_string();
            let http = self.http.clone();
            tasks.spawn(async move {
                let answer = http
                    .get(format!("{url}/1.0/consensus/status"))
                    .timeout(PREPARE_TIMEOUT)
                    .send()
                    .await
                    .ok()?
                    .json::<serde_json::Value>()
                    .await
                    .ok()?;
                Some((url, answer["validator"].as_str()?.to_string()))
            });
        }
        while let Some(found) = tasks.join_next().await {
            if let Ok(Some((url, key))) = found {
                if let Some(idx) = self
                    .validators
                    .iter()
                    .position(|v| v.eq_ignore_ascii_case(&key))
                {
                    Self::lock(&self.urls)[idx] = Some(url);
                }
            }
        }
    }

    /// Posts `body` to `path` of validator `idx` at `url`, signed by this validator for it
    /// ([`crate::validator_auth`]); its status and JSON answer (read up to [`MAX_REQUEST`]).
    async fn post(
        &self,
        idx: usize,
        url: &str,
        path: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<(u16, serde_json::Value), String> {
        let signature = RequestSignature::sign(
            &self.key,
            self.chain_id(),
            path,
            &self.validators[idx],
            now_ms(),
            &body,
        );
        let mut request = self
            .http
            .post(format!("{url}{path}"))
            .header(header::CONTENT_TYPE, "application/json");
        for (name, value) in signature.headers() {
            request = request.header(name, value);
        }
        let mut response = request
            .body(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let mut answer = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
            if answer.len() + chunk.len() > MAX_REQUEST {
                return Err(format!("the answer is over {MAX_REQUEST} bytes"));
            }
            answer.extend_from_slice(&chunk);
        }
        let value = serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
        Ok((status, value))
    }

    /// Sends `body` to `path` of every other validator; answers as they come.
    fn fan_out(
        self: &Arc<Self>,
        path: &'static str,
        body: Bytes,
        timeout: Duration,
    ) -> tokio::sync::mpsc::Receiver<(usize, PeerAnswer)> {
        let (tx, rx) = tokio::sync::mpsc::channel(self.n());
        for idx in (0..self.n()).filter(|&i| i != self.me) {
            let this = self.clone();
            let body = body.clone();
            let tx = tx.clone();
            self.runtime.spawn(async move {
                let answer = match this.url_of(idx).await {
                    Some(url) => this.post(idx, &url, path, body, timeout).await,
                    None => Err("no peer answers as this validator".into()),
                };
                let _ = tx.send((idx, answer)).await;
            });
        }
        rx
    }

    /// Pushes a committed block to the other validators, without waiting.
    fn push_commit(self: &Arc<Self>, height: u64) {
        let block = match self.ledger.block(height) {
            Ok(Some(b)) => b,
            _ => return,
        };
        let body = Bytes::from(serde_json::to_vec(&block).unwrap_or_default());
        let this = self.clone();
        self.runtime.spawn(async move {
            let mut answers = this.fan_out(COMMITS_PATH, body, PROPOSAL_TIMEOUT);
            while answers.recv().await.is_some() {}
        });
    }

    /// Every [`SYNC_PERIOD`]: catch up from any peer that is ahead (after a restart, a missed
    /// push, a partition).
    async fn sync_loop(self: Arc<Self>) {
        loop {
            for peer in &self.peers {
                let head = tokio::time::timeout(PREPARE_TIMEOUT, peer.head()).await;
                if let Ok(Ok(head)) = head {
                    if head.header.height > self.ledger.height() {
                        match catch_up(&self.ledger, &self.machine, peer).await {
                            Ok(n) if n > 0 => info!(blocks = n, peer = %peer.url(), "caught up"),
                            Ok(_) => {}
                            Err(e) => debug!(peer = %peer.url(), error = %e, "catch-up"),
                        }
                    }
                }
            }
            tokio::time::sleep(SYNC_PERIOD).await;
        }
    }

    // ---- The proposer. ----

    /// This node's next round at height `h`: its own rounds are `me`, `me + N`, ...; round 0
    /// only while it has promised nothing at `h`, past that above anything promised or seen.
    fn next_round(&self, h: u64) -> Result<u64, DriveError> {
        let record = Self::lock(&self.acceptor).record_at(h);
        let seen = Self::lock(&self.seen_round).get(&h).copied();
        let floor = match (
            record.promised,
            record.accepted.as_ref().map(|a| a.round),
            seen,
        ) {
            (None, None, None) => None,
            (p, a, s) => Some(p.unwrap_or(0).max(a.unwrap_or(0)).max(s.unwrap_or(0))),
        };
        let n = self.n() as u64;
        let me = self.me as u64;
        let round = match floor {
            None => Some(me),
            // The smallest round > f that is ≡ me (mod n); `me < n`, so `me + n` cannot
            // overflow, and the rest is checked.
            Some(f) => f
                .checked_add(1)
                .and_then(|next| next.checked_add((me + n - next % n) % n)),
        };
        round.filter(|r| *r <= MAX_ROUND).ok_or_else(|| {
            DriveError::Ledger(format!(
                "no round left at height {h}: the rounds seen reach the maximum {MAX_ROUND}"
            ))
        })
    }

    fn note_round(&self, h: u64, round: u64) {
        // A round no validator may use is no floor: it would leave no round to propose in.
        if round > MAX_ROUND {
            return;
        }
        let mut seen = Self::lock(&self.seen_round);
        seen.retain(|&height, _| height >= h);
        let entry = seen.entry(h).or_insert(round);
        *entry = (*entry).max(round);
    }

    /// Commits a batch: forwards it to the first validator in genesis order that answers
    /// (proposing it here when that is this node, or when it was forwarded here).
    fn sequence(
        self: &Arc<Self>,
        txs: Vec<VerifiedTransaction>,
        forwarded: bool,
    ) -> Vec<Result<Committed, SubmitError>> {
        let mut answers: Vec<Option<Result<Committed, SubmitError>>> = vec![None; txs.len()];
        let mut last: Option<SubmitError> = None;
        let first = if forwarded { self.me } else { 0 };
        for target in first..=self.me {
            let pending: Vec<usize> = (0..txs.len()).filter(|&i| answers[i].is_none()).collect();
            if pending.is_empty() {
                break;
            }
            if target != self.me {
                let suspected =
                    Self::lock(&self.suspect)[target].is_some_and(|t| t > Instant::now());
                if suspected {
                    continue;
                }
                match self.forward(target, &txs, &pending, &mut answers) {
                    Ok(()) => {}
                    Err(e) => {
                        debug!(target, error = %e, "consensus: forward failed");
                        Self::lock(&self.suspect)[target] = Some(Instant::now() + SUSPECT_FOR);
                        if !matches!(last, Some(SubmitError::NoQuorum { .. })) {
                            last = Some(e);
                        }
                    }
                }
                continue;
            }
            let batch: Vec<VerifiedTransaction> = pending.iter().map(|&i| txs[i].clone()).collect();
            match self.propose_here(batch) {
                Ok(outcomes) => {
                    for (i, answer) in pending.into_iter().zip(outcomes) {
                        answers[i] = Some(answer);
                    }
                }
                Err(e) => last = Some(e),
            }
        }
        let fallback = last.unwrap_or(SubmitError::NoQuorum {
            answered: 1,
            needed: self.quorum,
            validators: self.n(),
        });
        answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| Err(fallback.clone())))
            .collect()
    }

    /// Forwards the pending transactions to validator `target`; fills in the answers it gives
    /// (a committed write only once this node holds its block). An error: try the next one.
    fn forward(
        self: &Arc<Self>,
        target: usize,
        txs: &[VerifiedTransaction],
        pending: &[usize],
        answers: &mut [Option<Result<Committed, SubmitError>>],
    ) -> Result<(), SubmitError> {
        let request = ForwardRequest {
            transactions: pending.iter().map(|&i| txs[i].tx().clone()).collect(),
        };
        let body = Bytes::from(serde_json::to_vec(&request).unwrap_or_default());
        let unreachable = |reason: String| SubmitError::Remote {
            status: 503,
            reason: format!("validator {target} did not answer: {reason}"),
        };
        let (url, status, value) = self.runtime.block_on(async {
            let url = self
                .url_of(target)
                .await
                .ok_or_else(|| unreachable("no peer answers as this validator".into()))?;
            let (status, value) = self
                .post(target, &url, TRANSACTIONS_PATH, body, FORWARD_TIMEOUT)
                .await
                .map_err(unreachable)?;
            Ok::<_, SubmitError>((url, status, value))
        })?;
        if status != 200 {
            return Err(unreachable(format!("status {status}: {value}")));
        }
        let answer: ForwardAnswer =
            serde_json::from_value(value).map_err(|e| unreachable(e.to_string()))?;
        if answer.outcomes.len() != pending.len() {
            return Err(unreachable("it answered for other transactions".into()));
        }
        let mut retry: Option<SubmitError> = None;
        let highest = answer.outcomes.iter().filter_map(|o| o.height).max();
        if let Some(height) = highest {
            // Read-your-writes: the writer's next read through this node sees its write.
            self.runtime.block_on(self.wait_for_height(height, &url));
        }
        let held = self.ledger.height();
        for (&i, outcome) in pending.iter().zip(answer.outcomes) {
            match (outcome.height, outcome.index, outcome.status) {
                (Some(height), Some(_), _) if height > held => {
                    // Committed elsewhere, not held here: `finished` would promise the writer
                    // a read this node cannot serve, with no version to show.
                    warn!(
                        height,
                        held,
                        target,
                        "consensus: a forwarded write committed, but its block is not held here"
                    );
                    answers[i] = Some(Err(SubmitError::Remote {
                        status: 503,
                        reason: format!(
                            "the transaction {} was committed at height {height} by validator \
                             {target}, but this validator does not hold that block yet (its \
                             head is {held}): read it from another node, or here once it has \
                             caught up",
                            txs[i].hash()
                        ),
                    }))
                }
                (Some(height), Some(index), _) => {
                    answers[i] = Some(Ok(Committed {
                        height,
                        index,
                        tx_hash: txs[i].hash(),
                    }))
                }
                (_, _, Some(status)) if status < 500 => {
                    answers[i] = Some(Err(SubmitError::Remote {
                        status,
                        reason: outcome.reason.unwrap_or_default(),
                    }))
                }
                (_, _, status) => {
                    retry = Some(SubmitError::Remote {
                        status: status.unwrap_or(503),
                        reason: outcome.reason.unwrap_or_default(),
                    })
                }
            }
        }
        match retry {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn wait_for_height(&self, height: u64, url: &str) {
        let deadline = Instant::now() + READ_YOUR_WRITE;
        let Ok(peer) = PeerClient::with_base(url, &self.client) else {
            return;
        };
        while self.ledger.height() < height && Instant::now() < deadline {
            // The proposer pushes the block; if it has not arrived, fetch it.
            tokio::time::sleep(Duration::from_millis(5)).await;
            if self.ledger.height() < height {
                let _ = catch_up(&self.ledger, &self.machine, &peer).await;
            }
        }
    }

    /// Proposes the batch from this node, retrying a few times when that is worth it.
    fn propose_here(
        self: &Arc<Self>,
        txs: Vec<VerifiedTransaction>,
    ) -> Result<Vec<Result<Committed, SubmitError>>, SubmitError> {
        let mut last = String::new();
        for attempt in 0..OWN_ATTEMPTS {
            // Transactions a re-proposed block included meanwhile are committed already.
            let mut done: Vec<Option<Result<Committed, SubmitError>>> = vec![None; txs.len()];
            if attempt > 0 {
                for (i, tx) in txs.iter().enumerate() {
                    if let Ok(Some((height, index))) = self.ledger.find_transaction(&tx.hash()) {
                        done[i] = Some(Ok(Committed {
                            height,
                            index,
                            tx_hash: tx.hash(),
                        }));
                    }
                }
            }
            let batch: Vec<VerifiedTransaction> = txs
                .iter()
                .zip(&done)
                .filter(|(_, d)| d.is_none())
                .map(|(t, _)| t.clone())
                .collect();
            let result = if batch.is_empty() {
                Ok(Vec::new())
            } else {
                self.drive(batch)
            };
            match result {
                Ok(outcomes) => {
                    let mut outcomes = outcomes.into_iter();
                    return Ok(done
                        .into_iter()
                        .map(|d| {
                            d.unwrap_or_else(|| {
                                outcomes.next().unwrap_or_else(|| {
                                    Err(SubmitError::Ledger("no outcome".into()))
                                })
                            })
                        })
                        .collect());
                }
                Err(DriveError::Retry(why)) => {
                    debug!(attempt, reason = %why, "consensus: proposing again");
                    last = why;
                }
                Err(DriveError::Behind(idx)) => {
                    // Here, not inside the proposal: that holds the ledger's writer lock.
                    self.catch_up_from(idx);
                    last = format!("validator {idx} was past this node's head");
                }
                Err(DriveError::NoQuorum { answered }) => {
                    warn!(
                        answered,
                        needed = self.quorum,
                        validators = self.n(),
                        "consensus: no quorum, nothing committed"
                    );
                    return Err(SubmitError::NoQuorum {
                        answered,
                        needed: self.quorum,
                        validators: self.n(),
                    });
                }
                Err(DriveError::Ledger(e)) => return Err(SubmitError::Ledger(e)),
            }
        }
        Err(SubmitError::Remote {
            status: 503,
            reason: format!("the validators did not agree on a block in time: {last}"),
        })
    }

    /// One attempt: prepare (above round 0), re-propose a block voted for earlier or propose
    /// the batch, gather a quorum of votes, commit, push.
    fn drive(
        self: &Arc<Self>,
        txs: Vec<VerifiedTransaction>,
    ) -> Result<Vec<Result<Committed, SubmitError>>, DriveError> {
        let h = self.ledger.height().saturating_add(1);
        let round = self.next_round(h)?;
        if round > 0 {
            let previous = self.gather_promises(h, round)?;
            if let Some(accepted) = previous {
                // A block may be decided already: it is the only one this round may propose.
                info!(
                    height = h,
                    round,
                    from_round = accepted.round,
                    "consensus: re-proposing the block voted for earlier"
                );
                let certificate =
                    self.gather_votes(round, &accepted.header, &accepted.transactions, true)?;
                let block = Block {
                    header: accepted.header,
                    transactions: accepted.transactions,
                    certificate,
                };
                self.ledger
                    .apply_block(self.machine.as_ref(), block)
                    .map_err(|e| {
                        DriveError::Retry(format!("applying the re-proposed block: {e}"))
                    })?;
                self.push_commit(h);
                return Err(DriveError::Retry(
                    "a re-proposed block took the height".into(),
                ));
            }
        }
        let mut failure: Option<DriveError> = None;
        let proposer = self.validators[self.me].clone();
        let proposed = self.ledger.propose_as(
            self.machine.as_ref(),
            txs,
            sparkid_registrar::service::now(),
            &proposer,
            |header, included| {
                let transactions: Vec<Transaction> =
                    included.iter().map(|t| t.tx().clone()).collect();
                match self.gather_votes(round, header, &transactions, false) {
                    Ok(certificate) => Ok(certificate),
                    Err(e) => {
                        failure = Some(e);
                        Err(LedgerError::Corrupt("no commit certificate".into()))
                    }
                }
            },
        );
        match proposed {
            Ok(proposal) => {
                if let Some(block) = &proposal.block {
                    debug!(
                        height = block.header.height,
                        round,
                        txs = block.header.tx_count,
                        "consensus: committed block"
                    );
                    self.push_commit(block.header.height);
                }
                Ok(answers(proposal.outcomes))
            }
            Err(e) => Err(failure.unwrap_or(DriveError::Ledger(e.to_string()))),
        }
    }

    /// Phase 1: a quorum of promises for `round` at `h`; the block voted for in the highest
    /// round among them, if any.
    fn gather_promises(
        self: &Arc<Self>,
        h: u64,
        round: u64,
    ) -> Result<Option<Accepted>, DriveError> {
        let own = self.promise(h, round).map_err(|r| match r {
            Refusal::Promised { round: p } => {
                self.note_round(h, p);
                DriveError::Retry(r.to_string())
            }
            Refusal::Storage(e) => DriveError::Ledger(e),
            other => DriveError::Retry(other.to_string()),
        })?;
        let request = Prepare {
            chain_id: self.chain_id().to_string(),
            height: h,
            round,
            validator: self.validators[self.me].clone(),
            signature: self.key.sign(&prepare_bytes(self.chain_id(), h, round)),
        };
        let body = Bytes::from(serde_json::to_vec(&request).unwrap_or_default());
        let this = self.clone();
        let (promises, ahead, higher) = self.runtime.block_on(async move {
            let mut answers = this.fan_out(PREPARE_PATH, body, PREPARE_TIMEOUT);
            let mut promises = vec![own];
            let mut ahead: Option<usize> = None;
            let mut higher: Option<u64> = None;
            while let Some((idx, answer)) = answers.recv().await {
                match answer {
                    Ok((200, value)) => {
                        if let Ok(p) = serde_json::from_value::<Promise>(value) {
                            promises.push(p);
                        }
                    }
                    Ok((_, value)) => {
                        if value["head"].as_u64().is_some_and(|head| head >= h) {
                            ahead = Some(idx);
                        }
                        if let Some(p) = value["promised"].as_u64() {
                            higher = Some(higher.unwrap_or(0).max(p));
                        }
                    }
                    Err(_) => {}
                }
            }
            (promises, ahead, higher)
        });
        if let Some(p) = higher {
            self.note_round(h, p);
        }
        if let Some(idx) = ahead {
            return Err(DriveError::Behind(idx));
        }
        if promises.len() < self.quorum {
            if higher.is_some() {
                return Err(DriveError::Retry("a higher round was promised".into()));
            }
            return Err(DriveError::NoQuorum {
                answered: promises.len(),
            });
        }
        Ok(promises
            .into_iter()
            .filter_map(|p| p.accepted)
            .max_by_key(|a| a.round))
    }

    fn catch_up_from(self: &Arc<Self>, idx: usize) {
        let this = self.clone();
        self.runtime.block_on(async move {
            if let Some(url) = this.url_of(idx).await {
                if let Ok(peer) = PeerClient::with_base(&url, &this.client) {
                    let _ = catch_up(&this.ledger, &this.machine, &peer).await;
                }
            }
        });
    }

    /// Phase 2: this node's vote and the others', until a quorum; the certificate.
    fn gather_votes(
        self: &Arc<Self>,
        round: u64,
        header: &BlockHeader,
        transactions: &[Transaction],
        check_own: bool,
    ) -> Result<CommitCertificate, DriveError> {
        let h = header.height;
        let own = self
            .vote(round, header, transactions, check_own)
            .map_err(|r| {
                if let Refusal::Promised { round: p } = r {
                    self.note_round(h, p);
                }
                DriveError::Retry(r.to_string())
            })?;
        let request =
            ProposalRequest::sign(round, header.clone(), transactions.to_vec(), &self.key);
        let body = Bytes::from(serde_json::to_vec(&request).unwrap_or_default());
        let block_hash = header.hash();
        let bytes = vote_bytes_in_round(&header.chain_id, h, &block_hash, round);
        let this = self.clone();
        let quorum = self.quorum;
        let (votes, ahead, higher) = self.runtime.block_on(async move {
            let mut answers = this.fan_out(PROPOSALS_PATH, body, PROPOSAL_TIMEOUT);
            let mut votes = vec![own];
            let mut ahead = None;
            let mut higher: Option<u64> = None;
            while votes.len() < quorum {
                let Some((idx, answer)) = answers.recv().await else {
                    break;
                };
                match answer {
                    Ok((200, value)) => {
                        let vote: Option<Vote> = serde_json::from_value(value["vote"].clone()).ok();
                        // Only a vote of that validator, for this block and round, counts.
                        let valid = vote.filter(|v| {
                            v.round == round
                                && v.validator.eq_ignore_ascii_case(&this.validators[idx])
                                && PublicKey::from_encoded(&v.validator)
                                    .is_ok_and(|k| k.verify(&bytes, &v.signature).is_ok())
                        });
                        match valid {
                            Some(v) => votes.push(v),
                            None => warn!(validator = idx, "consensus: an invalid vote"),
                        }
                    }
                    Ok((status, value)) => {
                        debug!(validator = idx, status, answer = %value, "consensus: vote refused");
                        if value["head"].as_u64().is_some_and(|head| head >= h) {
                            ahead = Some(idx);
                        }
                        if let Some(p) = value["promised"].as_u64() {
                            higher = Some(higher.unwrap_or(0).max(p));
                        }
                    }
                    Err(e) => debug!(validator = idx, error = %e, "consensus: no answer"),
                }
            }
            (votes, ahead, higher)
        });
        if votes.len() >= self.quorum {
            return Ok(CommitCertificate { block_hash, votes });
        }
        if let Some(p) = higher {
            self.note_round(h, p);
            return Err(DriveError::Retry(format!("round {p} was promised")));
        }
        if let Some(idx) = ahead {
            return Err(DriveError::Behind(idx));
        }
        Err(DriveError::NoQuorum {
            answered: votes.len(),
        })
    }
}

fn answers(outcomes: Vec<TxOutcome<OperationError>>) -> Vec<Result<Committed, SubmitError>> {
    sparkid_registrar::service::answers(outcomes)
}

// ---- Requests from the other validators (served by the daemon's consensus door). ----

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Rejection> {
    serde_json::from_slice(body).map_err(|e| Rejection::BadRequest(e.to_string()))
}

/// Refuses a height or round no chain reaches: the arithmetic on them (`height + 1`, the next
/// round) stays far from overflow, and a validator promises away no round it could never use.
fn check_numbers(height: u64, round: u64) -> Result<(), Rejection> {
    if height > MAX_HEIGHT {
        return Err(Rejection::BadRequest(format!(
            "height {height} is out of range: a consensus request names a height of at most \
             {MAX_HEIGHT}"
        )));
    }
    if round > MAX_ROUND {
        return Err(Rejection::BadRequest(format!(
            "round {round} is out of range: a consensus request names a round of at most \
             {MAX_ROUND}"
        )));
    }
    Ok(())
}

impl Consensus {
    /// Checks that a request to `path` comes from a validator of the chain, for this one, fresh
    /// and new ([`Authenticator::check`]), before its body is parsed; counts the refusals.
    fn authenticate(
        &self,
        path: &str,
        signature: &RequestSignature,
        body: &[u8],
    ) -> Result<usize, Rejection> {
        self.auth
            .check(path, signature, body, now_ms())
            .map_err(|e| {
                warn!(path, reason = %e, "consensus: an unauthenticated request refused");
                Rejection::from(e)
            })
    }

    /// Runs `handle` for an authenticated request to `path`, counting a refusal under the
    /// path's last segment.
    fn refused<T>(&self, path: &str, result: Result<T, Rejection>) -> Result<T, Rejection> {
        if let Err(e) = &result {
            let endpoint = path.rsplit('/').next().unwrap_or(path);
            self.count_refusal(endpoint, e);
        }
        result
    }

    /// `POST /1.0/consensus/prepare`: a [`Prepare`] from the proposer of its round, signed
    /// by a validator ([`crate::validator_auth`]); this validator catches up when it is
    /// behind, then promises.
    pub async fn on_prepare(
        self: &Arc<Self>,
        signature: &RequestSignature,
        body: &[u8],
    ) -> Result<Promise, Rejection> {
        let result = self.prepare_request(signature, body).await;
        self.refused(PREPARE_PATH, result)
    }

    async fn prepare_request(
        self: &Arc<Self>,
        signature: &RequestSignature,
        body: &[u8],
    ) -> Result<Promise, Rejection> {
        self.authenticate(PREPARE_PATH, signature, body)?;
        let request: Prepare = parse(body)?;
        check_numbers(request.height, request.round)?;
        if request.chain_id != self.chain_id() {
            return Err(Refusal::Invalid(format!(
                "chain {:?} is not this chain",
                request.chain_id
            ))
            .into());
        }
        let bytes = prepare_bytes(&request.chain_id, request.height, request.round);
        self.check_proposer(
            request.round,
            &request.validator,
            &bytes,
            &request.signature,
        )?;
        self.catch_up_for(request.height, request.round).await;
        let this = self.clone();
        let answer =
            tokio::task::spawn_blocking(move || this.promise(request.height, request.round))
                .await
                .unwrap_or_else(|e| Err(Refusal::Storage(e.to_string())));
        Ok(answer?)
    }

    /// `POST /1.0/consensus/proposals`: a [`ProposalRequest`] from the proposer of its round,
    /// signed by a validator; this validator catches up when it is behind, checks the block
    /// and votes for it (the answer's `vote`).
    pub async fn on_proposal(
        self: &Arc<Self>,
        signature: &RequestSignature,
        body: &[u8],
    ) -> Result<Vote, Rejection> {
        let result = self.proposal_request(signature, body).await;
        self.refused(PROPOSALS_PATH, result)
    }

    async fn proposal_request(
        self: &Arc<Self>,
        signature: &RequestSignature,
        body: &[u8],
    ) -> Result<Vote, Rejection> {
        self.authenticate(PROPOSALS_PATH, signature, body)?;
        let request: ProposalRequest = parse(body)?;
        let header = &request.header;
        check_numbers(header.height, request.round)?;
        let bytes = proposal_bytes(
            &header.chain_id,
            header.height,
            request.round,
            &header.hash(),
        );
        self.check_proposer(
            request.round,
            &request.validator,
            &bytes,
            &request.signature,
        )?;
        let started = Instant::now();
        self.catch_up_for(header.height, request.round).await;
        let caught_up = started.elapsed();
        let this = self.clone();
        let (height, round) = (header.height, request.round);
        let answer = tokio::task::spawn_blocking(move || {
            this.vote(request.round, &request.header, &request.transactions, true)
        })
        .await
        .unwrap_or_else(|e| Err(Refusal::Storage(e.to_string())));
        match answer {
            Ok(vote) => {
                debug!(height, round, catch_up = ?caught_up, total = ?started.elapsed(), "consensus: voted");
                Ok(vote)
            }
            Err(r) => {
                info!(reason = %r, "consensus: refused to vote");
                Err(r.into())
            }
        }
    }

    /// `POST /1.0/consensus/commits`: a certified [`Block`] the proposer pushes, signed by a
    /// validator; applied (after catching up when it is not the next one). Its certificate is
    /// checked first: a block that no quorum certified does not make this validator fetch
    /// anything. The head height after it.
    pub async fn on_commit(
        self: &Arc<Self>,
        signature: &RequestSignature,
        body: &[u8],
    ) -> Result<u64, Rejection> {
        let result = self.commit_request(signature, body).await;
        self.refused(COMMITS_PATH, result)
    }

    async fn commit_request(
        self: &Arc<Self>,
        signature: &RequestSignature,
        body: &[u8],
    ) -> Result<u64, Rejection> {
        self.authenticate(COMMITS_PATH, signature, body)?;
        let block: Block = parse(body)?;
        let height = block.header.height;
        check_numbers(height, block.certificate.round())?;
        if height <= self.ledger.height() {
            return Ok(self.ledger.height());
        }
        if height > self.ledger.height().saturating_add(1) {
            // Behind: the blocks before it come from whoever has them, but only for a block a
            // quorum of this chain's validators certified (a forged height costs nothing else).
            if block.header.chain_id != self.chain_id() {
                return Err(Refusal::Invalid(format!(
                    "chain {:?} is not this chain",
                    block.header.chain_id
                ))
                .into());
            }
            block
                .certificate
                .verify(&block.header, self.ledger.validators())
                .map_err(|e| {
                    warn!(height, reason = %e, "consensus: an uncertified commit refused");
                    Refusal::Invalid(format!("certificate: {e}"))
                })?;
            for peer in &self.peers {
                let _ = catch_up(&self.ledger, &self.machine, peer).await;
                if self.ledger.height().saturating_add(1) >= height {
                    break;
                }
            }
        }
        let this = self.clone();
        let applied = tokio::task::spawn_blocking(move || {
            if this.ledger.height() >= height {
                return Ok(());
            }
            this.ledger.apply_block(this.machine.as_ref(), block)
        })
        .await;
        match applied {
            Ok(Ok(())) => Ok(self.ledger.height()),
            Ok(Err(e)) => Err(Refusal::Invalid(e.to_string()).into()),
            Err(e) => Err(Refusal::Storage(e.to_string()).into()),
        }
    }

    /// `POST /1.0/consensus/transactions`: a [`ForwardRequest`] from another validator,
    /// signed by it; each transaction is submitted here as forwarded, and gets its committed
    /// position or its refusal.
    pub async fn on_transactions(
        self: &Arc<Self>,
        signature: &RequestSignature,
        body: &[u8],
    ) -> Result<ForwardAnswer, Rejection> {
        let result = self.transactions_request(signature, body).await;
        self.refused(TRANSACTIONS_PATH, result)
    }

    async fn transactions_request(
        self: &Arc<Self>,
        signature: &RequestSignature,
        body: &[u8],
    ) -> Result<ForwardAnswer, Rejection> {
        let from = self.authenticate(TRANSACTIONS_PATH, signature, body)?;
        let request: ForwardRequest = parse(body)?;
        if request.transactions.len() > MAX_BLOCK_TXS {
            return Err(Rejection::BadRequest(format!(
                "{} transactions, over the {MAX_BLOCK_TXS} a block holds",
                request.transactions.len()
            )));
        }
        debug!(
            from,
            txs = request.transactions.len(),
            "consensus: forwarded transactions"
        );
        let Some(submitter) = self.submitter.get().cloned() else {
            return Err(Refusal::Storage("the block producer is not running".into()).into());
        };
        let mut tasks = tokio::task::JoinSet::new();
        for (i, tx) in request.transactions.into_iter().enumerate() {
            let submitter = submitter.clone();
            tasks.spawn(async move {
                let answer = match tx.verify() {
                    Ok(v) => submitter.submit_forwarded(v).await,
                    Err(e) => Err(SubmitError::Tx(e)),
                };
                (i, answer)
            });
        }
        let mut outcomes = Vec::new();
        while let Some(done) = tasks.join_next().await {
            if let Ok((i, answer)) = done {
                let outcome = match answer {
                    Ok(committed) => ForwardOutcome {
                        height: Some(committed.height),
                        index: Some(committed.index),
                        tx_hash: Some(committed.tx_hash.to_hex()),
                        ..Default::default()
                    },
                    Err(e) => ForwardOutcome {
                        status: Some(e.http_status()),
                        reason: Some(e.to_string()),
                        ..Default::default()
                    },
                };
                outcomes.push((i, outcome));
            }
        }
        outcomes.sort_by_key(|(i, _)| *i);
        Ok(ForwardAnswer {
            outcomes: outcomes.into_iter().map(|(_, o)| o).collect(),
        })
    }
}
