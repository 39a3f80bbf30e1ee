//! Submission: the transaction pool and the block producer.
//!
//! Writers hand signed transactions to one producer thread. It takes everything waiting (up to
//! a block's worth), proposes one block, commits it durably and answers every writer: while one
//! block is being fsynced, the next batch gathers, so durable throughput grows with load.
//!
//! How a batch becomes a committed block is a [`Sequencer`]: a single validator certifies it
//! with its own key ([`LocalSequencer`]); a validator of several runs the consensus of
//! `spec/consensus.md` (the daemon's `consensus` module), which may forward the batch to
//! another validator.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sparkid_ledger::block::{block_tx_bytes, MAX_BLOCK_TX_BYTES};
use sparkid_ledger::store::MAX_BLOCK_TXS;
use sparkid_ledger::{
    BlockHeader, CommitCertificate, Hash, Ledger, LedgerError, TxError, TxOutcome, TxRejection,
    VerifiedTransaction,
};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error};

use crate::operation::BidStateMachine;
use crate::state::OperationError;

/// Signs the commit certificate of a proposed block (the local validator key in dev mode).
pub type Certifier = Box<dyn Fn(&BlockHeader) -> Result<CommitCertificate, LedgerError> + Send>;

/// Turns a batch of transactions into committed blocks: one answer per transaction, in order.
pub trait Sequencer: Send + 'static {
    /// Commits what it can of `txs`. `forwarded`: another validator forwarded some of them
    /// here to be proposed, so this node must propose them itself, never forward them again.
    fn sequence(
        &mut self,
        ledger: &Ledger,
        machine: &BidStateMachine,
        txs: Vec<VerifiedTransaction>,
        forwarded: bool,
    ) -> Vec<Result<Committed, SubmitError>>;
}

/// The single-validator sequencer: proposes on the local ledger and certifies with `certify`.
pub struct LocalSequencer(pub Certifier);

impl Sequencer for LocalSequencer {
    fn sequence(
        &mut self,
        ledger: &Ledger,
        machine: &BidStateMachine,
        txs: Vec<VerifiedTransaction>,
        _forwarded: bool,
    ) -> Vec<Result<Committed, SubmitError>> {
        let count = txs.len();
        match ledger.propose(machine, txs, now(), &self.0) {
            Ok(proposal) => {
                if let Some(block) = &proposal.block {
                    debug!(
                        height = block.header.height,
                        txs = block.header.tx_count,
                        "committed block"
                    );
                }
                answers(proposal.outcomes)
            }
            Err(e) => {
                error!("block commit failed: {e}");
                vec![Err(SubmitError::Ledger(e.to_string())); count]
            }
        }
    }
}

/// The writers' answers for a proposal's outcomes.
pub fn answers(outcomes: Vec<TxOutcome<OperationError>>) -> Vec<Result<Committed, SubmitError>> {
    outcomes
        .into_iter()
        .map(|outcome| match outcome {
            TxOutcome::Included {
                height,
                index,
                hash,
            } => Ok(Committed {
                height,
                index,
                tx_hash: hash,
            }),
            TxOutcome::Rejected { reason, .. } => Err(SubmitError::Rejected(reason)),
        })
        .collect()
}

/// A transaction committed in a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The block height.
    pub height: u64,
    /// Position in the block.
    pub index: u32,
    /// The transaction hash.
    pub tx_hash: Hash,
}

/// Why a submitted transaction was not committed.
#[derive(Debug, Clone, Error)]
pub enum SubmitError {
    /// Malformed or badly signed.
    #[error("{0}")]
    Tx(#[from] TxError),
    /// Refused by the ledger or by the operation rules.
    #[error("{0}")]
    Rejected(TxRejection<OperationError>),
    /// The ledger failed; nothing was committed.
    #[error("the ledger could not commit: {0}")]
    Ledger(String),
    /// The producer is not running.
    #[error("the block producer is not running")]
    Unavailable,
    /// Too few validators voted: nothing was committed (`spec/consensus.md`).
    #[error(
        "no quorum: {answered} of {validators} validators answered, {needed} are needed; \
         nothing was committed, submit again later"
    )]
    NoQuorum {
        /// Validators that answered (this one included).
        answered: usize,
        /// The quorum.
        needed: usize,
        /// The validator set's size.
        validators: usize,
    },
    /// Too few validators took part in consensus for the write to commit in time; it was
    /// accepted by the validators that answered and may still commit later, so the writer
    /// polls for it (`spec/consensus.md`).
    #[error(
        "no quorum: {answered} of {validators} validators answered, {needed} are needed; \
         the write is not committed yet and may still commit once a quorum is back: look it up \
         before submitting it again"
    )]
    Pending {
        /// Validators heard from recently (this one included).
        answered: usize,
        /// The quorum.
        needed: usize,
        /// The validator set's size.
        validators: usize,
    },
    /// The validator this write was forwarded to refused it or failed, with this status.
    #[error("{reason}")]
    Remote {
        /// The HTTP status it answered with (4xx: the transaction was refused).
        status: u16,
        /// Its reason.
        reason: String,
    },
}

impl SubmitError {
    /// Whether the client's input caused it (as opposed to the server).
    pub fn is_client_error(&self) -> bool {
        match self {
            SubmitError::Tx(_) | SubmitError::Rejected(_) => true,
            SubmitError::Remote { status, .. } => (400..500).contains(status),
            _ => false,
        }
    }

    /// The HTTP status a registrar answers with: 404 and 409 for a DID that is missing or
    /// exists, 409 for an operation signed against a version that is no longer current, 400 for other refusals, 503 when the validators cannot commit now (retrying
    /// later may work), 500 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            SubmitError::Rejected(TxRejection::Operation(OperationError::NotFound(_))) => 404,
            SubmitError::Rejected(TxRejection::Operation(OperationError::AlreadyExists(_))) => 409,
            SubmitError::Rejected(TxRejection::Operation(OperationError::VersionConflict {
                ..
            })) => 409,
            SubmitError::Tx(_) | SubmitError::Rejected(_) => 400,
            SubmitError::Remote { status, .. } => *status,
            SubmitError::NoQuorum { .. }
            | SubmitError::Pending { .. }
            | SubmitError::Unavailable => 503,
            SubmitError::Ledger(_) => 500,
        }
    }
}

struct Submission {
    tx: VerifiedTransaction,
    /// Forwarded by another validator: propose it here.
    forwarded: bool,
    reply: oneshot::Sender<Result<Committed, SubmitError>>,
}

/// Hands transactions to the block producer.
#[derive(Clone)]
pub struct Submitter {
    sender: mpsc::Sender<Submission>,
    /// Why the producer stopped for good (a panic, or a thread that never started); none while
    /// it runs. The daemon watches it: writes must not stop silently.
    failure: watch::Receiver<Option<String>>,
    /// Fault injection: the producer panics on its next batch (see
    /// [`Submitter::inject_panic_for_fault_testing`]).
    panic_next: Arc<AtomicBool>,
}

/// What the producer thread shares with its [`Submitter`]s.
struct ProducerSignals {
    failure: watch::Sender<Option<String>>,
    panic_next: Arc<AtomicBool>,
}

impl Submitter {
    /// Starts the producer thread for `ledger`, certifying blocks with `certify` (a single
    /// validator).
    pub fn start(ledger: Arc<Ledger>, machine: BidStateMachine, certify: Certifier) -> Submitter {
        Self::start_with(ledger, machine, Box::new(LocalSequencer(certify)))
    }

    /// Starts the producer thread for `ledger`, making blocks with `sequencer`.
    pub fn start_with(
        ledger: Arc<Ledger>,
        machine: BidStateMachine,
        sequencer: Box<dyn Sequencer>,
    ) -> Submitter {
        let (sender, receiver) = mpsc::channel::<Submission>(MAX_BLOCK_TXS * 4);
        let (failure_tx, failure) = watch::channel(None);
        let panic_next = Arc::new(AtomicBool::new(false));
        let signals = ProducerSignals {
            failure: failure_tx.clone(),
            panic_next: panic_next.clone(),
        };
        if let Err(e) = std::thread::Builder::new()
            .name("block-producer".into())
            .spawn(move || produce(ledger, machine, sequencer, receiver, signals))
        {
            error!("cannot start the block producer: {e}");
            failure_tx.send_replace(Some(format!("the block producer could not start: {e}")));
        }
        Submitter {
            sender,
            failure,
            panic_next,
        }
    }

    /// Why the block producer stopped for good, or none while it runs.
    pub fn failure(&self) -> Option<String> {
        self.failure.borrow().clone()
    }

    /// Waits until the block producer stops for good, and says why. Never returns while it
    /// runs.
    pub async fn failed(&self) -> String {
        let mut failure = self.failure.clone();
        let reason = match failure.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            // The producer's side is gone without a reason: it cannot commit either.
            Err(_) => "the block producer is gone".into(),
        };
        reason
    }

    /// Fault injection for tests of the daemon's supervision: the producer panics on its next
    /// batch, as a bug in a sequencer would. Nothing else can make it panic on purpose; the
    /// daemon calls this only in dev mode, when its fault-injection variable asks for it.
    pub fn inject_panic_for_fault_testing(&self) {
        self.panic_next.store(true, Ordering::SeqCst);
    }

    /// Submits a verified transaction and waits until its block is committed (or it is refused).
    pub async fn submit(&self, tx: VerifiedTransaction) -> Result<Committed, SubmitError> {
        self.send(tx, false).await
    }

    /// Submits a transaction another validator forwarded: this node proposes it itself.
    pub async fn submit_forwarded(
        &self,
        tx: VerifiedTransaction,
    ) -> Result<Committed, SubmitError> {
        self.send(tx, true).await
    }

    async fn send(
        &self,
        tx: VerifiedTransaction,
        forwarded: bool,
    ) -> Result<Committed, SubmitError> {
        // New transactions only: blocks already certified are re-executed without this rule.
        crate::operation::admit(&tx.tx().body.operation)
            .map_err(|e| SubmitError::Rejected(TxRejection::Operation(e)))?;
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Submission {
                tx,
                forwarded,
                reply,
            })
            .await
            .map_err(|_| SubmitError::Unavailable)?;
        answer.await.map_err(|_| SubmitError::Unavailable)?
    }
}

/// A batch opened by `first`, with what is waiting after it, up to a block's worth: at most
/// [`MAX_BLOCK_TXS`] transactions and [`MAX_BLOCK_TX_BYTES`] bytes of them, so that the
/// sequencer is never handed more than one block holds (the ledger would leave the rest out as
/// `BlockFull`, failing writes that only had to wait for the next block). The submission that
/// does not fit is returned, to open the next batch.
fn gather_batch(
    first: Submission,
    receiver: &mut mpsc::Receiver<Submission>,
) -> (Vec<Submission>, Option<Submission>) {
    let mut bytes = block_tx_bytes(first.tx.canonical().len());
    let mut batch = vec![first];
    while batch.len() < MAX_BLOCK_TXS {
        let Ok(next) = receiver.try_recv() else {
            break;
        };
        let size = block_tx_bytes(next.tx.canonical().len());
        if bytes + size > MAX_BLOCK_TX_BYTES {
            return (batch, Some(next));
        }
        bytes += size;
        batch.push(next);
    }
    (batch, None)
}

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn produce(
    ledger: Arc<Ledger>,
    machine: BidStateMachine,
    mut sequencer: Box<dyn Sequencer>,
    mut receiver: mpsc::Receiver<Submission>,
    signals: ProducerSignals,
) {
    // A submission that did not fit in the last batch: it opens the next one.
    let mut carried: Option<Submission> = None;
    while let Some(first) = carried.take().or_else(|| receiver.blocking_recv()) {
        let (batch, over) = gather_batch(first, &mut receiver);
        carried = over;
        let forwarded = batch.iter().any(|s| s.forwarded);
        let (txs, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|s| (s.tx, s.reply)).unzip();
        let count = replies.len();
        // A panic while sequencing leaves the ledger and the sequencer in an unknown state: the
        // producer stops for good, says so (the daemon then reports unhealthy and exits, for a
        // supervisor to restart it), and every writer of the batch gets an answer.
        let sequenced = catch_unwind(AssertUnwindSafe(|| {
            if signals.panic_next.swap(false, Ordering::SeqCst) {
                panic!("fault injection: the block producer panics");
            }
            sequencer.sequence(&ledger, &machine, txs, forwarded)
        }));
        let mut answers = match sequenced {
            Ok(answers) => answers.into_iter(),
            Err(payload) => {
                let what = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                let reason = format!("the block producer panicked: {what}");
                error!(chain = %ledger.genesis().chain_id, "{reason}; no more writes are committed");
                signals.failure.send_replace(Some(reason));
                for reply in replies {
                    let _ = reply.send(Err(SubmitError::Unavailable));
                }
                return;
            }
        };
        for reply in replies {
            // A sequencer answers every transaction; one that did not is a bug, not the
            // writer's fault, and the writer must not wait forever.
            let answer = answers.next().unwrap_or_else(|| {
                error!(count, "the sequencer left a transaction unanswered");
                Err(SubmitError::Ledger("no answer for this transaction".into()))
            });
            let _ = reply.send(answer);
        }
    }
}
