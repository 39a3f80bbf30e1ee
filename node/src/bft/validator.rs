//! A validator of several: its identity, peers, pool, metrics and evidence, the writes it
//! sequences and the requests other validators send it. The engine thread
//! ([`super::engine`]) decides; this is what it works with.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use reqwest::header;
use serde::{Deserialize, Serialize};
use sparkid_bid::PrivateKey;
use sparkid_ledger::block::MAX_BLOCK_BYTES;
use sparkid_ledger::checked::CheckedBlock;
use sparkid_ledger::store::TxRejection;
use sparkid_ledger::store::MAX_BLOCK_TXS;
use sparkid_ledger::validators::{ScheduledSet, MIN_LEAD};
use sparkid_ledger::{Hash, Ledger, Transaction, TxBody, ValidatorChange, VerifiedTransaction};
use sparkid_registrar::{BidStateMachine, Committed, Sequencer, SubmitError};
use thiserror::Error;
use tracing::{debug, info, warn};

use super::wire::Message;
use super::{context, signing};
use crate::outbound::ClientBase;
use crate::peer::{catch_up, PeerClient, SyncError};
use crate::validator_auth::{now_ms, AuthError, Authenticator, RequestSignature};

/// Problem type of a refused consensus message.
pub const PROBLEM_REFUSED: &str = "urn:sparkid:problem:consensus-refused";
/// Problem type of a consensus request that does not parse.
pub const PROBLEM_BAD_REQUEST: &str = "urn:sparkid:problem:bad-consensus-request";
/// Problem type of a consensus request not signed by a validator of the chain (401, 403).
pub const PROBLEM_UNAUTHENTICATED: &str = "urn:sparkid:problem:consensus-unauthenticated";
/// The path of consensus messages, as signed ([`crate::validator_auth::request_bytes`]).
pub const MESSAGES_PATH: &str = "/1.0/consensus/messages";
/// The path of transactions handed to the other validators' pools.
pub const TRANSACTIONS_PATH: &str = "/1.0/consensus/transactions";
/// The path of validator-set changes (`GET` the sets, `POST` a signed change).
pub const VALIDATORS_PATH: &str = "/1.0/consensus/validators";
/// The write-ahead log of the engine, in the data directory.
pub const WAL_FILE: &str = "consensus-wal.jsonl";
/// The double-signing evidence this validator recorded, in the data directory.
pub const EVIDENCE_FILE: &str = "consensus-evidence.jsonl";
/// The largest consensus request body (a proposal carries one block).
pub const MAX_REQUEST: usize = 64 * 1024 * 1024;
/// A dev-only switch: with `double-vote`, this validator equivocates (it signs and sends a
/// second, conflicting vote for each vote, and a second block for each proposal), so tests can
/// check that honest validators stay safe and record the evidence.
pub const BYZANTINE_ENV: &str = "SPARKID_DEV_BYZANTINE";

const _: () = assert!(2 * MAX_BLOCK_BYTES <= MAX_REQUEST);

/// Connecting to a validator.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// One message to a validator.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a writer waits for its write to commit before a 503.
const COMMIT_WAIT: Duration = Duration::from_secs(8);
/// A validator heard from within this long counts as answering.
const ALIVE_FOR: Duration = Duration::from_secs(3);
/// The background catch-up's period.
const SYNC_PERIOD: Duration = Duration::from_secs(1);
/// A pooled transaction not committed this long after it was handed to the other validators
/// is handed to them again.
const RESHARE_AFTER: Duration = Duration::from_secs(2);
/// The most transactions a pool holds.
const MAX_POOL: usize = 4 * MAX_BLOCK_TXS;

/// `GET /1.0/consensus/status`: who this validator is and where it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The chain.
    pub chain_id: String,
    /// This validator's encoded key.
    pub validator: String,
    /// Its index among every validator the chain has had (genesis order, then added ones).
    pub index: usize,
    /// How many validators the set of the next height has.
    pub validators: usize,
    /// How many votes commit a block at the next height.
    pub quorum: usize,
    /// Whether this validator is in the set of the next height (it votes); one not yet added,
    /// or removed, follows the chain without voting.
    #[serde(default)]
    pub member: bool,
    /// This validator's head height.
    pub height: u64,
    /// The engine that decides: `malachite-tendermint`.
    pub engine: String,
    /// The height consensus works on, and its round.
    pub consensus_height: u64,
    /// The round at that height.
    pub round: u64,
}

/// `GET /1.0/consensus/validators`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatorSets {
    /// The chain: part of the bytes a change's signers sign.
    pub chain_id: String,
    /// This validator's head height.
    pub height: u64,
    /// The set of the next height (the one whose quorum signs a change now).
    pub current: ScheduledSet,
    /// A change committed that has not taken over yet: no other is accepted until it has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<ScheduledSet>,
    /// Every set by its first height, genesis first.
    pub sets: Vec<ScheduledSet>,
    /// The earliest `from` a change submitted now may name (the next height plus the lead).
    pub earliest: u64,
}

/// One recorded case of double signing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// `double-vote` or `double-proposal`.
    pub kind: String,
    /// The validator that signed both.
    pub validator: String,
    /// The height.
    pub height: u64,
    /// The round.
    pub round: u64,
    /// The two signed messages, as sent.
    pub messages: Vec<Message>,
    /// When this validator recorded it (Unix ms).
    pub recorded_at: u64,
}

/// `GET /1.0/consensus/evidence`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceList {
    /// Everything recorded, oldest first.
    pub evidence: Vec<Evidence>,
}

/// `POST /1.0/consensus/transactions`: signed transactions for this validator's pool.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PoolRequest {
    /// The transactions.
    pub transactions: Vec<Transaction>,
}

/// Why a consensus request got no positive answer.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Rejection {
    /// The request does not parse or names numbers out of range (400).
    #[error("{0}")]
    BadRequest(String),
    /// The message is not acceptable: a signature that does not verify or a proposer not of its
    /// round (403), a block that does not check (422), a full pool (503).
    #[error("{reason}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Why.
        reason: String,
    },
    /// Not signed by a validator of the chain, or stale or replayed (401 unsigned, else 403).
    #[error(transparent)]
    Unauthenticated(#[from] AuthError),
}

impl Rejection {
    /// A short reason class, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Rejection::BadRequest(_) => "bad_request",
            Rejection::Unauthenticated(e) => e.kind(),
            Rejection::Refused { status: 403, .. } => "bad_signature",
            Rejection::Refused { status: 422, .. } => "invalid",
            Rejection::Refused { .. } => "busy",
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
    /// The write-ahead log or the evidence file could not be read.
    #[error("the consensus log {path}: {reason}")]
    Log {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The consensus metrics could not be made.
    #[error("the consensus metrics: {0}")]
    Metrics(String),
}

/// The evidence recorded before this start.
pub(crate) fn read_evidence(dir: &Path) -> Result<Vec<Evidence>, StartError> {
    let path = dir.join(EVIDENCE_FILE);
    let Ok(file) = File::open(&path) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| StartError::Log {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        // A torn last line (a crash mid-write) is skipped.
        if let Ok(e) = serde_json::from_str(&line) {
            out.push(e);
        }
    }
    Ok(out)
}

/// The consensus metrics (`/metrics`).
#[derive(Clone)]
pub(crate) struct BftMetrics {
    pub(crate) refused: IntCounterVec,
    pub(crate) height: IntGauge,
    pub(crate) round: IntGauge,
    pub(crate) propose_timeout: prometheus::Gauge,
    pub(crate) proposals: IntCounterVec,
    pub(crate) timeouts: IntCounterVec,
    pub(crate) evidence: IntCounterVec,
    pub(crate) peers_seen: IntGauge,
    pub(crate) decided: IntCounter,
    pub(crate) validators: IntGauge,
    pub(crate) member: IntGauge,
    pub(crate) set_changes: IntCounter,
}

impl BftMetrics {
    pub(crate) fn new() -> Result<BftMetrics, prometheus::Error> {
        Ok(BftMetrics {
            refused: IntCounterVec::new(
                Opts::new(
                    "sparkid_consensus_requests_refused_total",
                    "Consensus requests refused, by endpoint and reason (unsigned, \
                     not_a_validator, bad_signature, stale, replayed, bad_request, invalid, busy).",
                ),
                &["endpoint", "reason"],
            )?,
            height: IntGauge::new(
                "sparkid_consensus_height",
                "The height the consensus engine works on.",
            )?,
            round: IntGauge::new(
                "sparkid_consensus_round",
                "The engine's round at its height.",
            )?,
            propose_timeout: prometheus::Gauge::new(
                "sparkid_consensus_propose_timeout_seconds",
                "The propose timeout of the engine's current round, in seconds: it grows with \
                 the round (Tendermint's liveness rule), up to a ceiling.",
            )?,
            proposals: IntCounterVec::new(
                Opts::new(
                    "sparkid_consensus_proposals_total",
                    "Proposals, by origin (made: by this validator; received: checked from \
                     another) and validity.",
                ),
                &["origin", "validity"],
            )?,
            timeouts: IntCounterVec::new(
                Opts::new(
                    "sparkid_consensus_timeouts_total",
                    "Round timeouts that elapsed, by kind (propose, prevote, precommit, \
                     rebroadcast).",
                ),
                &["kind"],
            )?,
            evidence: IntCounterVec::new(
                Opts::new(
                    "sparkid_consensus_evidence_total",
                    "Double signing recorded, by kind (double-vote, double-proposal).",
                ),
                &["kind"],
            )?,
            peers_seen: IntGauge::new(
                "sparkid_consensus_peers_seen",
                "Other validators heard from in the last 3 seconds.",
            )?,
            decided: IntCounter::new(
                "sparkid_consensus_decided_total",
                "Blocks this validator's engine decided.",
            )?,
            validators: IntGauge::new(
                "sparkid_consensus_validators",
                "Validators in the set of the next height.",
            )?,
            member: IntGauge::new(
                "sparkid_consensus_member",
                "1 when this validator is in the set of the next height (it votes), else 0.",
            )?,
            set_changes: IntCounter::new(
                "sparkid_consensus_validator_set_changes_total",
                "Validator-set changes committed on this chain (pending ones included).",
            )?,
        })
    }

    fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.refused.clone()))?;
        registry.register(Box::new(self.height.clone()))?;
        registry.register(Box::new(self.round.clone()))?;
        registry.register(Box::new(self.propose_timeout.clone()))?;
        registry.register(Box::new(self.proposals.clone()))?;
        registry.register(Box::new(self.timeouts.clone()))?;
        registry.register(Box::new(self.evidence.clone()))?;
        registry.register(Box::new(self.peers_seen.clone()))?;
        registry.register(Box::new(self.decided.clone()))?;
        registry.register(Box::new(self.validators.clone()))?;
        registry.register(Box::new(self.member.clone()))?;
        registry.register(Box::new(self.set_changes.clone()))?;
        Ok(())
    }
}

/// The transactions waiting for a block, in arrival order.
#[derive(Default)]
pub(crate) struct Pool {
    /// Arrival order; may still name transactions removed since (skipped, and compacted away
    /// once they are the majority), so that removing a block's worth is not quadratic.
    order: VecDeque<Hash>,
    txs: HashMap<Hash, Pooled>,
}

/// A pooled transaction, when it was pooled and when it was last handed to the other
/// validators.
pub(crate) struct Pooled {
    tx: VerifiedTransaction,
    pooled: Instant,
    shared: Instant,
}

impl Pool {
    pub(crate) fn insert(&mut self, tx: VerifiedTransaction) -> bool {
        let hash = tx.hash();
        if self.txs.contains_key(&hash) {
            return false;
        }
        self.order.push_back(hash);
        let now = Instant::now();
        self.txs.insert(
            hash,
            Pooled {
                tx,
                pooled: now,
                shared: now,
            },
        );
        true
    }

    pub(crate) fn contains(&self, hash: &Hash) -> bool {
        self.txs.contains_key(hash)
    }

    pub(crate) fn get(&self, hash: &Hash) -> Option<VerifiedTransaction> {
        self.txs.get(hash).map(|p| p.tx.clone())
    }

    pub(crate) fn remove(&mut self, hash: &Hash) {
        if self.txs.remove(hash).is_some() && self.order.len() > 2 * self.txs.len() + 64 {
            let txs = &self.txs;
            self.order.retain(|h| txs.contains_key(h));
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    pub(crate) fn len(&self) -> usize {
        self.txs.len()
    }

    /// Up to a block's worth, oldest first.
    pub(crate) fn batch(&self) -> Vec<VerifiedTransaction> {
        self.batch_before(None)
    }

    /// Up to a block's worth of those pooled before `before` (all with none), oldest first.
    pub(crate) fn batch_before(&self, before: Option<Instant>) -> Vec<VerifiedTransaction> {
        // A transaction removed and pooled again is named twice in `order`.
        let mut seen = HashSet::new();
        self.order
            .iter()
            .filter(|h| seen.insert(**h))
            .filter_map(|h| self.txs.get(h))
            .filter(|p| before.is_none_or(|t| p.pooled < t))
            .map(|p| p.tx.clone())
            .take(MAX_BLOCK_TXS)
            .collect()
    }

    /// Up to a block's worth of the transactions handed to the others longer than `age` ago,
    /// oldest first, marked as handed now: what a lost message (a partition, a restarted
    /// peer) may have kept from the other pools.
    pub(crate) fn unshared(&mut self, age: Duration) -> Vec<Transaction> {
        let now = Instant::now();
        let mut out = Vec::new();
        for h in &self.order {
            if out.len() == MAX_BLOCK_TXS {
                break;
            }
            if let Some(p) = self.txs.get_mut(h) {
                // Marked when taken, so a hash named twice in `order` is taken once.
                if now.duration_since(p.shared) >= age {
                    p.shared = now;
                    out.push(p.tx.tx().clone());
                }
            }
        }
        out
    }
}

/// A block built or checked here, with its execution's writes, and its height.
pub(crate) type Checked = (u64, CheckedBlock);

/// What the engine thread hears.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Event {
    /// A checked message from another validator (a proposal with its validity, when it was
    /// checked against the head it names).
    Message(Message, Option<(u64, bool)>),
    /// A timer the engine set.
    Timeout(u64, malachitebft_core_types::Timeout, u64),
    /// The pool has work.
    Work,
    /// The ledger moved without the engine (catch-up).
    Synced,
}

/// A validator of several: its key, peers, pool and engine.
pub struct Consensus {
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) machine: Arc<BidStateMachine>,
    pub(crate) key: PrivateKey,
    /// This validator's index in `validators`.
    pub(crate) me: usize,
    /// Encoded keys of every validator of any set so far, genesis order, then those that
    /// validator-set changes added (and this one's, when no set names it yet): an index never
    /// moves, so `urls` and `seen` keep theirs.
    pub(crate) validators: RwLock<Vec<String>>,
    /// This validator's encoded key.
    pub(crate) address: String,
    pub(crate) ctx: context::SparkContext,
    /// The engine's sets by first height, and how many ledger changes they reflect.
    pub(crate) sets: Mutex<(usize, Vec<(u64, context::ValidatorSet)>)>,
    pub(crate) peers: Vec<PeerClient>,
    pub(crate) http: reqwest::Client,
    /// Validator index → base URL, learned from `GET /1.0/consensus/status` of each peer.
    pub(crate) urls: Mutex<Vec<Option<String>>>,
    /// When each validator was last heard from.
    pub(crate) seen: Mutex<Vec<Option<Instant>>>,
    pub(crate) runtime: tokio::runtime::Handle,
    pub(crate) events: std::sync::mpsc::Sender<Event>,
    pub(crate) pool: Mutex<Pool>,
    /// Refusals of pooled transactions, for their writers.
    pub(crate) refusals: Mutex<HashMap<Hash, SubmitError>>,
    /// Notified on every commit and refusal.
    pub(crate) progress: (Mutex<u64>, Condvar),
    pub(crate) auth: Authenticator,
    pub(crate) metrics: BftMetrics,
    pub(crate) evidence: Mutex<Vec<Evidence>>,
    /// (height, round) of the engine, for the status.
    pub(crate) position: Mutex<(u64, u64)>,
    pub(crate) byzantine: bool,
    pub(crate) sync_now: tokio::sync::Notify,
    /// Signatures the door checked already, so the engine does not check them again.
    pub(crate) verified: Mutex<HashSet<[u8; 64]>>,
    /// The blocks built or checked at the running height, by block id, with what their
    /// execution wrote: a decided block is committed without checking its signatures or
    /// executing it again.
    pub(crate) checked: Mutex<HashMap<Hash, Checked>>,
}

impl std::fmt::Debug for Consensus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consensus")
            .field("me", &self.me)
            .field("validators", &self.n())
            .finish()
    }
}

/// The sequencer the block producer runs with: [`Consensus::sequence`].
pub(crate) struct BftSequencer(pub(crate) Arc<Consensus>);

impl Sequencer for BftSequencer {
    fn sequence(
        &mut self,
        _ledger: &Ledger,
        _machine: &BidStateMachine,
        txs: Vec<VerifiedTransaction>,
        _forwarded: bool,
    ) -> Vec<Result<Committed, SubmitError>> {
        self.0.sequence(txs)
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Consensus {
    /// The validator of `key` on `ledger`, with its peers' base URLs, and the receiving end of
    /// its engine's events. Must run inside the tokio runtime.
    pub(crate) fn build(
        ledger: Arc<Ledger>,
        machine: &BidStateMachine,
        key: PrivateKey,
        peers: &[String],
        client: &ClientBase,
    ) -> Result<(Arc<Consensus>, std::sync::mpsc::Receiver<Event>), StartError> {
        let address = key.public_key().to_encoded();
        let mut validators: Vec<String> = ledger.genesis().validators.clone();
        let mut keys: Vec<sparkid_bid::PublicKey> = ledger.validators().keys().to_vec();
        for (_, set) in ledger.schedule().sets() {
            for k in set.keys() {
                if !keys.contains(k) {
                    keys.push(k.clone());
                    validators.push(k.to_encoded());
                }
            }
        }
        // A validator no set names yet (it joins at a change's height) runs too: it follows
        // the chain, and votes from the height whose set names it.
        let me = match keys.iter().position(|k| *k == key.public_key()) {
            Some(i) => i,
            None => {
                info!("consensus: this validator is in no validator set yet; following until one names it");
                keys.push(key.public_key());
                validators.push(address.clone());
                validators.len() - 1
            }
        };
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
        let auth = Authenticator::new(
            &ledger.genesis().chain_id,
            &validators[me],
            validators
                .iter()
                .cloned()
                .zip(keys.iter().cloned())
                .collect(),
        );
        let metrics = BftMetrics::new().map_err(|e| StartError::Metrics(e.to_string()))?;
        let evidence = read_evidence(ledger.dir())?;
        let byzantine = std::env::var(BYZANTINE_ENV).is_ok_and(|v| v == "double-vote");
        if byzantine {
            warn!(
                "consensus: {BYZANTINE_ENV}=double-vote: this validator equivocates (tests only)"
            );
        }
        let (events, inbox) = std::sync::mpsc::channel();
        let consensus = Arc::new(Consensus {
            ctx: context::SparkContext {
                chain_id: ledger.genesis().chain_id.as_str().into(),
            },
            sets: Mutex::new((usize::MAX, Vec::new())),
            address,
            machine: Arc::new(machine.clone()),
            ledger: ledger.clone(),
            key,
            me,
            validators: RwLock::new(validators),
            peers,
            http,
            urls: Mutex::new(vec![None; n]),
            seen: Mutex::new(vec![None; n]),
            runtime: tokio::runtime::Handle::current(),
            events,
            pool: Mutex::new(Pool::default()),
            refusals: Mutex::new(HashMap::new()),
            progress: (Mutex::new(0), Condvar::new()),
            auth,
            metrics,
            evidence: Mutex::new(evidence),
            position: Mutex::new((ledger.height() + 1, 0)),
            byzantine,
            sync_now: tokio::sync::Notify::new(),
            verified: Mutex::new(HashSet::new()),
            checked: Mutex::new(HashMap::new()),
        });
        {
            let weak = Arc::downgrade(&consensus);
            ledger.on_commit(Box::new(move |block| {
                if let Some(c) = weak.upgrade() {
                    c.refresh_sets(block.height + 1);
                    c.wake_writers();
                }
            }));
        }
        consensus.refresh_sets(ledger.height() + 1);
        Ok((consensus, inbox))
    }

    /// How many validators any set has named (this one included).
    pub(crate) fn n(&self) -> usize {
        self.validators
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// The encoded key of validator `idx`.
    pub(crate) fn member(&self, idx: usize) -> Option<String> {
        self.validators
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(idx)
            .cloned()
    }

    /// Takes in the ledger's validator-set changes (new validators are admitted for requests
    /// and get a slot for their URL), and updates the set metrics for height `next`.
    pub(crate) fn refresh_sets(&self, next: u64) {
        let changes = self.ledger.set_changes();
        {
            let mut sets = lock(&self.sets);
            if sets.0 != changes {
                let schedule = self.ledger.schedule();
                if sets.0 != usize::MAX && changes > sets.0 {
                    self.metrics.set_changes.inc_by((changes - sets.0) as u64);
                } else if sets.0 == usize::MAX {
                    self.metrics.set_changes.inc_by(changes as u64);
                }
                sets.1 = schedule
                    .sets()
                    .iter()
                    .map(|(from, set)| (*from, context::ValidatorSet::from_keys(set.keys())))
                    .collect();
                sets.0 = changes;
                let mut validators = self.validators.write().unwrap_or_else(|p| p.into_inner());
                for (_, set) in schedule.sets() {
                    for k in set.keys() {
                        let encoded = k.to_encoded();
                        if !validators.iter().any(|v| v.eq_ignore_ascii_case(&encoded)) {
                            info!(validator = %encoded, "consensus: a validator-set change adds a validator");
                            self.auth.admit(&encoded, k.clone());
                            validators.push(encoded);
                        }
                    }
                }
                let n = validators.len();
                lock(&self.urls).resize(n, None);
                lock(&self.seen).resize(n, None);
            }
        }
        let set = self.vset_at(next);
        self.metrics.validators.set(set.validators.len() as i64);
        self.metrics.member.set(i64::from(
            set.index_of(&context::Address(self.address.clone()))
                .is_some(),
        ));
    }

    /// The engine's validator set of `height`.
    pub(crate) fn vset_at(&self, height: u64) -> context::ValidatorSet {
        let sets = lock(&self.sets);
        sets.1
            .iter()
            .rev()
            .find(|(from, _)| *from <= height)
            .or(sets.1.first())
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| {
                context::ValidatorSet::from_keys(self.ledger.validators_at(height).keys())
            })
    }

    /// The votes that commit the next block.
    pub(crate) fn quorum(&self) -> usize {
        self.ledger.validators_at(self.ledger.height() + 1).quorum()
    }

    fn chain_id(&self) -> &str {
        &self.ledger.genesis().chain_id
    }

    /// Exposes this validator's consensus metrics in `registry`.
    pub fn register_metrics(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        self.metrics.register(registry)
    }

    /// This validator's head height.
    pub fn height(&self) -> u64 {
        self.ledger.height()
    }

    /// Who this validator is and where it is (`GET /1.0/consensus/status`).
    pub fn status(&self) -> Status {
        let (consensus_height, round) = *lock(&self.position);
        let next = self.ledger.validators_at(self.ledger.height() + 1);
        Status {
            chain_id: self.chain_id().to_string(),
            validator: self.address.clone(),
            index: self.me,
            validators: next.keys().len(),
            quorum: next.quorum(),
            member: next.keys().iter().any(|k| k.to_encoded() == self.address),
            height: self.ledger.height(),
            engine: "malachite-tendermint".into(),
            consensus_height,
            round,
        }
    }

    /// The double signing this validator recorded (`GET /1.0/consensus/evidence`).
    pub fn evidence(&self) -> EvidenceList {
        EvidenceList {
            evidence: lock(&self.evidence).clone(),
        }
    }

    /// Validators heard from within [`ALIVE_FOR`], this one included.
    fn answering(&self) -> usize {
        let now = Instant::now();
        let seen = lock(&self.seen);
        let others = seen
            .iter()
            .enumerate()
            .filter(|(i, s)| *i != self.me && s.is_some_and(|t| now - t < ALIVE_FOR))
            .count();
        self.metrics.peers_seen.set(others as i64);
        others + 1
    }

    fn heard_from(&self, idx: usize) {
        if let Some(slot) = lock(&self.seen).get_mut(idx) {
            *slot = Some(Instant::now());
        }
    }

    pub(crate) fn wake_writers(&self) {
        let (m, cv) = &self.progress;
        *lock(m) += 1;
        cv.notify_all();
    }

    // ---- Writes. ----

    /// Pools `txs`, hands them to the other validators and waits for each to commit here or
    /// be refused, up to [`COMMIT_WAIT`].
    fn sequence(
        self: &Arc<Self>,
        txs: Vec<VerifiedTransaction>,
    ) -> Vec<Result<Committed, SubmitError>> {
        let hashes: Vec<Hash> = txs.iter().map(VerifiedTransaction::hash).collect();
        {
            let mut pool = lock(&self.pool);
            if pool.len() + txs.len() > MAX_POOL {
                return txs
                    .iter()
                    .map(|_| {
                        Err(SubmitError::Remote {
                            status: 503,
                            reason: "the validator's pool is full: submit again later".into(),
                        })
                    })
                    .collect();
            }
            for tx in &txs {
                pool.insert(tx.clone());
            }
        }
        self.share(txs.iter().map(|t| t.tx().clone()).collect());
        let _ = self.events.send(Event::Work);
        let deadline = Instant::now() + COMMIT_WAIT;
        let mut answers: Vec<Option<Result<Committed, SubmitError>>> = vec![None; txs.len()];
        let (m, cv) = &self.progress;
        let mut guard = lock(m);
        loop {
            drop(guard);
            for (i, hash) in hashes.iter().enumerate() {
                if answers[i].is_some() {
                    continue;
                }
                if let Ok(Some((height, index))) = self.ledger.find_transaction(hash) {
                    answers[i] = Some(Ok(Committed {
                        height,
                        index,
                        tx_hash: *hash,
                    }));
                } else if let Some(e) = lock(&self.refusals).remove(hash) {
                    answers[i] = Some(Err(e));
                }
            }
            guard = lock(m);
            if answers.iter().all(Option::is_some) {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            guard = cv
                .wait_timeout(guard, (deadline - now).min(Duration::from_millis(200)))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        drop(guard);
        let next = self.ledger.validators_at(self.ledger.height() + 1);
        let pending = SubmitError::Pending {
            answered: self.answering(),
            needed: next.quorum(),
            validators: next.keys().len(),
        };
        answers
            .into_iter()
            .map(|a| {
                a.unwrap_or_else(|| {
                    warn!("consensus: a write did not commit in time");
                    Err(pending.clone())
                })
            })
            .collect()
    }

    /// Hands transactions to every other validator's pool, without waiting.
    fn share(self: &Arc<Self>, transactions: Vec<Transaction>) {
        let body =
            Bytes::from(serde_json::to_vec(&PoolRequest { transactions }).unwrap_or_default());
        self.broadcast(TRANSACTIONS_PATH, body, None);
    }

    /// Answers writers whose transactions a block left out for good, and drops them.
    pub(crate) fn refuse(&self, refused: Vec<(Hash, SubmitError)>) {
        if refused.is_empty() {
            return;
        }
        {
            let mut pool = lock(&self.pool);
            let mut refusals = lock(&self.refusals);
            for (hash, e) in refused {
                pool.remove(&hash);
                refusals.insert(hash, e);
            }
            // Nobody may ever read a refusal: keep the map bounded.
            if refusals.len() > MAX_POOL {
                refusals.clear();
            }
        }
        self.wake_writers();
    }

    // ---- Peers. ----

    /// The base URL of validator `idx`, asking the peers who they are when it is not known.
    async fn url_of(&self, idx: usize) -> Option<String> {
        if let Some(url) = lock(&self.urls)[idx].clone() {
            return Some(url);
        }
        self.discover().await;
        lock(&self.urls)[idx].clone()
    }

    /// Asks every peer whose validator is unknown for `GET /1.0/consensus/status`.
    async fn discover(&self) {
        let known: Vec<String> = lock(&self.urls).iter().flatten().cloned().collect();
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
                    .timeout(Duration::from_secs(2))
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
                let found = self
                    .validators
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .position(|v| v.eq_ignore_ascii_case(&key));
                if let Some(idx) = found {
                    lock(&self.urls)[idx] = Some(url);
                }
            }
        }
    }

    /// Posts `body` to `path` of validator `idx`, signed by this validator for it.
    async fn post(&self, idx: usize, path: &str, body: Bytes) -> Result<u16, String> {
        let url = self
            .url_of(idx)
            .await
            .ok_or_else(|| "no peer answers as this validator".to_string())?;
        let to = self
            .member(idx)
            .ok_or_else(|| "no such validator".to_string())?;
        let signature =
            RequestSignature::sign(&self.key, self.chain_id(), path, &to, now_ms(), &body);
        let mut request = self
            .http
            .post(format!("{url}{path}"))
            .header(header::CONTENT_TYPE, "application/json");
        for (name, value) in signature.headers() {
            request = request.header(name, value);
        }
        let response = request
            .body(body)
            .timeout(SEND_TIMEOUT)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Ok(response.status().as_u16())
    }

    /// Sends `body` to `path` of every other validator (or only `only`), without waiting.
    fn broadcast(self: &Arc<Self>, path: &'static str, body: Bytes, only: Option<&[usize]>) {
        for idx in (0..self.n()).filter(|&i| i != self.me) {
            if only.is_some_and(|o| !o.contains(&idx)) {
                continue;
            }
            let this = self.clone();
            let body = body.clone();
            self.runtime.spawn(async move {
                match this.post(idx, path, body).await {
                    Ok(status) if status < 500 => this.heard_from(idx),
                    Ok(status) => debug!(validator = idx, status, path, "consensus: refused"),
                    Err(e) => debug!(validator = idx, error = %e, path, "consensus: not sent"),
                }
            });
        }
    }

    /// Sends a message to every other validator.
    pub(crate) fn publish(self: &Arc<Self>, message: &Message) {
        let body = Bytes::from(serde_json::to_vec(message).unwrap_or_default());
        self.broadcast(MESSAGES_PATH, body, None);
    }

    /// Every [`SYNC_PERIOD`], or when a message names a height ahead: catch up from any peer
    /// that is ahead (after a restart, a missed proposal, a partition), then tell the engine;
    /// and hand pooled transactions on again when they wait too long ([`RESHARE_AFTER`]).
    pub(crate) async fn sync_loop(self: Arc<Self>) {
        loop {
            let before = self.ledger.height();
            for peer in &self.peers {
                let head = tokio::time::timeout(Duration::from_secs(2), peer.head()).await;
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
            if self.ledger.height() > before {
                let _ = self.events.send(Event::Synced);
            }
            self.answering();
            // Transactions still pooled a while after they were handed on: hand them on
            // again, so that writes accepted by a cut-off minority reach the others once the
            // partition heals (the receivers keep one copy).
            let stale = lock(&self.pool).unshared(RESHARE_AFTER);
            if !stale.is_empty() {
                debug!(
                    transactions = stale.len(),
                    "consensus: handing pooled transactions on again"
                );
                self.share(stale);
            }
            let _ = tokio::time::timeout(SYNC_PERIOD, self.sync_now.notified()).await;
        }
    }

    // ---- Validator-set changes (`spec/consensus.md`). ----

    /// `GET /1.0/consensus/validators`: the sets by height, the next height's set, and the
    /// chain id, which is what an operator's `sparkid validators propose` builds a change from.
    pub fn validator_sets(&self) -> ValidatorSets {
        let head = self.ledger.height();
        let schedule = self.ledger.schedule();
        let sets: Vec<ScheduledSet> = schedule
            .sets()
            .iter()
            .map(|(from, set)| ScheduledSet {
                from: *from,
                validators: set.keys().iter().map(|k| k.to_encoded()).collect(),
            })
            .collect();
        let pending = schedule.last_from() > head + 1;
        ValidatorSets {
            chain_id: self.chain_id().to_string(),
            height: head,
            current: sets
                .iter()
                .rev()
                .find(|s| s.from <= head + 1)
                .cloned()
                .unwrap_or_else(|| sets[0].clone()),
            pending: pending.then(|| sets[sets.len() - 1].clone()),
            sets,
            earliest: head + 1 + MIN_LEAD,
        }
    }

    /// `POST /1.0/consensus/validators`: a change signed by a quorum of the current set, checked
    /// here against the next height (a refusal says exactly why, before anything is pooled),
    /// then wrapped in a transaction this validator signs and committed like any write. The
    /// ledger checks it again where it executes.
    pub fn submit_change(
        self: &Arc<Self>,
        change: ValidatorChange,
    ) -> Result<Committed, SubmitError> {
        let next = self.ledger.height() + 1;
        let schedule = self.ledger.schedule();
        let pending = (schedule.last_from() > next).then(|| schedule.last_from());
        change
            .check(self.chain_id(), next, schedule.at(next), pending)
            .map_err(|e| SubmitError::Rejected(TxRejection::Validators(e)))?;
        let tx = TxBody {
            chain_id: self.chain_id().to_string(),
            signer: format!("{}#validator", self.address),
            public_key: self.address.clone(),
            nonce: TxBody::random_nonce(),
            // Valid until just before it would take over: it runs then or never.
            valid_until: change
                .from
                .saturating_sub(MIN_LEAD)
                .min(next + sparkid_ledger::tx::MAX_VALIDITY_BLOCKS),
            operation: change.to_operation(),
        }
        .sign(&self.key)
        .verify()?;
        self.sequence(vec![tx])
            .pop()
            .unwrap_or(Err(SubmitError::Unavailable))
    }

    // ---- Requests from the other validators (served by the daemon's consensus door). ----

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

    fn counted<T>(&self, endpoint: &str, result: Result<T, Rejection>) -> Result<T, Rejection> {
        if let Err(e) = &result {
            if let Ok(c) = self
                .metrics
                .refused
                .get_metric_with_label_values(&[endpoint, e.kind()])
            {
                c.inc();
            }
        }
        result
    }

    /// `POST /1.0/consensus/messages`: a proposal, vote or certificate from another validator,
    /// signed by it. The message's own signatures are checked here (403 when one does not
    /// verify or a proposer is not its round's); a proposal for the next height is checked
    /// against the head (422 with the reason when it does not check; the engine then prevotes
    /// nil). Accepted messages go to the engine. The answer is the head height.
    pub async fn on_message(
        self: &Arc<Self>,
        signature: &RequestSignature,
        body: &[u8],
    ) -> Result<u64, Rejection> {
        let result = self.message_request(signature, body).await;
        self.counted("messages", result)
    }

    async fn message_request(
        self: &Arc<Self>,
        signature: &RequestSignature,
        body: &[u8],
    ) -> Result<u64, Rejection> {
        let from = self.authenticate(MESSAGES_PATH, signature, body)?;
        self.heard_from(from);
        let message: Message =
            serde_json::from_slice(body).map_err(|e| Rejection::BadRequest(e.to_string()))?;
        message.check().map_err(Rejection::BadRequest)?;
        let vset = self.vset_at(message.height());
        signing::check_signatures(&self.ctx.chain_id, &vset, &message).map_err(|reason| {
            Rejection::Refused {
                status: 403,
                reason,
            }
        })?;
        self.note_verified(&message);
        let head = self.ledger.height();
        if message.height() > head.saturating_add(1) {
            self.sync_now.notify_one();
        }
        let mut checked = None;
        if let Message::Proposal(p) = &message {
            if p.header.height == head + 1 {
                let this = self.clone();
                let (header, transactions) = (p.header.clone(), p.transactions.clone());
                let verdict = tokio::task::spawn_blocking(move || {
                    this.check_proposal(&header, &transactions)
                })
                .await
                .map_err(|e| Rejection::Refused {
                    status: 503,
                    reason: e.to_string(),
                })?;
                let valid = verdict.is_ok();
                let _ = self
                    .events
                    .send(Event::Message(message.clone(), Some((head, valid))));
                return match verdict {
                    Ok(()) => Ok(head),
                    Err(e) => {
                        info!(reason = %e, "consensus: a proposal does not check");
                        Err(Rejection::Refused {
                            status: 422,
                            reason: e.to_string(),
                        })
                    }
                };
            }
        }
        let _ = self.events.send(Event::Message(message, checked.take()));
        Ok(head)
    }

    /// The transactions of a block, verified: those this validator pooled are verified
    /// already (by their hash), the others are verified now, on all cores.
    pub(crate) fn verified_of(
        &self,
        transactions: &[Transaction],
    ) -> Result<Vec<VerifiedTransaction>, sparkid_ledger::LedgerError> {
        let mut out: Vec<Option<VerifiedTransaction>> = Vec::with_capacity(transactions.len());
        let mut missing = Vec::new();
        {
            let pool = lock(&self.pool);
            for tx in transactions {
                let known = pool.get(&tx.hash());
                if known.is_none() {
                    missing.push(tx.clone());
                }
                out.push(known);
            }
        }
        let mut fresh = sparkid_ledger::tx::verify_all(missing).into_iter();
        let mut verified = Vec::with_capacity(out.len());
        for known in out {
            match known.map(Ok).or_else(|| fresh.next()) {
                Some(v) => verified.push(v?),
                // Never: one result per transaction. A short list fails the block's txCount.
                None => break,
            }
        }
        Ok(verified)
    }

    /// Checks a proposed block against the head (`Ledger::check_block`, with the signatures
    /// this validator checked when pooling the transactions not checked again), and keeps what
    /// its execution wrote for the commit.
    pub(crate) fn check_proposal(
        &self,
        header: &sparkid_ledger::BlockHeader,
        transactions: &[Transaction],
    ) -> Result<(), sparkid_ledger::LedgerError> {
        let verified = self.verified_of(transactions)?;
        let checked = self
            .ledger
            .check_block_kept(self.machine.as_ref(), header, verified)?;
        self.keep_checked(checked);
        Ok(())
    }

    /// Keeps a block built or checked here, with its writes, for its commit (bounded: a height
    /// has few proposals, and a block's writes take megabytes).
    pub(crate) fn keep_checked(&self, block: CheckedBlock) {
        let mut checked = lock(&self.checked);
        if checked.len() >= 4 {
            checked.clear();
        }
        checked.insert(block.id(), (block.height(), block));
    }

    /// Remembers the signatures of a checked message (bounded: cleared when full).
    fn note_verified(&self, message: &Message) {
        let mut verified = lock(&self.verified);
        if verified.len() > 100_000 {
            verified.clear();
        }
        match message {
            Message::Vote(v) => {
                verified.insert(v.signature.0);
            }
            Message::Proposal(p) => {
                verified.insert(p.signature.0);
            }
            Message::Certificate(c) => {
                for v in &c.votes {
                    verified.insert(v.signature.0);
                }
            }
        }
    }

    /// `POST /1.0/consensus/transactions`: signed transactions another validator hands to
    /// this one's pool. The answer is how many were new here.
    pub async fn on_transactions(
        self: &Arc<Self>,
        signature: &RequestSignature,
        body: &[u8],
    ) -> Result<usize, Rejection> {
        let result = self.transactions_request(signature, body);
        self.counted("transactions", result)
    }

    fn transactions_request(
        self: &Arc<Self>,
        signature: &RequestSignature,
        body: &[u8],
    ) -> Result<usize, Rejection> {
        let from = self.authenticate(TRANSACTIONS_PATH, signature, body)?;
        self.heard_from(from);
        let request: PoolRequest =
            serde_json::from_slice(body).map_err(|e| Rejection::BadRequest(e.to_string()))?;
        if request.transactions.len() > MAX_BLOCK_TXS {
            return Err(Rejection::BadRequest(format!(
                "{} transactions, over the {MAX_BLOCK_TXS} a block holds",
                request.transactions.len()
            )));
        }
        // A transaction already pooled here (handed on again, or by several validators) is
        // not verified again: its hash names it.
        let fresh: Vec<Transaction> = {
            let pool = lock(&self.pool);
            request
                .transactions
                .into_iter()
                .filter(|tx| !pool.contains(&tx.hash()))
                .collect()
        };
        let mut verified = Vec::with_capacity(fresh.len());
        for tx in fresh {
            let v = tx
                .verify()
                .map_err(|e| Rejection::BadRequest(format!("a transaction: {e}")))?;
            verified.push(v);
        }
        let mut added = 0;
        {
            let mut pool = lock(&self.pool);
            if pool.len() + verified.len() > MAX_POOL {
                return Err(Rejection::Refused {
                    status: 503,
                    reason: "the pool is full".into(),
                });
            }
            let mut seen = HashSet::new();
            for tx in verified {
                if seen.insert(tx.hash()) && pool.insert(tx) {
                    added += 1;
                }
            }
        }
        if added > 0 {
            let _ = self.events.send(Event::Work);
        }
        Ok(added)
    }
}
