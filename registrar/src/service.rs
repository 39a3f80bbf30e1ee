//! Submission: the transaction pool and the block producer.
//!
//! Writers hand signed transactions to one producer thread. It takes everything waiting (up to
//! a block's worth), proposes one block, commits it durably and answers every writer: while one
//! block is being fsynced, the next batch gathers, so durable throughput grows with load.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use sparkid_ledger::store::MAX_BLOCK_TXS;
use sparkid_ledger::{
    BlockHeader, CommitCertificate, Hash, Ledger, LedgerError, TxError, TxOutcome, TxRejection,
    VerifiedTransaction,
};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error};

use crate::operation::{BidStateMachine, OperationError};

/// Signs the commit certificate of a proposed block (the local validator key in dev mode).
pub type Certifier = Box<dyn Fn(&BlockHeader) -> Result<CommitCertificate, LedgerError> + Send>;

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
}

impl SubmitError {
    /// Whether the client's input caused it (as opposed to the server).
    pub fn is_client_error(&self) -> bool {
        matches!(self, SubmitError::Tx(_) | SubmitError::Rejected(_))
    }
}

struct Submission {
    tx: VerifiedTransaction,
    reply: oneshot::Sender<Result<Committed, SubmitError>>,
}

/// Hands transactions to the block producer.
#[derive(Clone)]
pub struct Submitter {
    sender: mpsc::Sender<Submission>,
}

impl Submitter {
    /// Starts the producer thread for `ledger`.
    pub fn start(ledger: Arc<Ledger>, machine: BidStateMachine, certify: Certifier) -> Submitter {
        let (sender, receiver) = mpsc::channel::<Submission>(MAX_BLOCK_TXS * 4);
        std::thread::Builder::new()
            .name("block-producer".into())
            .spawn(move || produce(ledger, machine, certify, receiver))
            .map_err(|e| error!("cannot start the block producer: {e}"))
            .ok();
        Submitter { sender }
    }

    /// Submits a verified transaction and waits until its block is committed (or it is refused).
    pub async fn submit(&self, tx: VerifiedTransaction) -> Result<Committed, SubmitError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Submission { tx, reply })
            .await
            .map_err(|_| SubmitError::Unavailable)?;
        answer.await.map_err(|_| SubmitError::Unavailable)?
    }
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
    certify: Certifier,
    mut receiver: mpsc::Receiver<Submission>,
) {
    while let Some(first) = receiver.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BLOCK_TXS {
            match receiver.try_recv() {
                Ok(s) => batch.push(s),
                Err(_) => break,
            }
        }
        let (txs, replies): (Vec<_>, Vec<_>) = batch.into_iter().map(|s| (s.tx, s.reply)).unzip();
        match ledger.propose(&machine, txs, now(), &certify) {
            Ok(proposal) => {
                if let Some(block) = &proposal.block {
                    debug!(
                        height = block.header.height,
                        txs = block.header.tx_count,
                        "committed block"
                    );
                }
                for (outcome, reply) in proposal.outcomes.into_iter().zip(replies) {
                    let answer = match outcome {
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
                    };
                    let _ = reply.send(answer);
                }
            }
            Err(e) => {
                error!("block commit failed: {e}");
                for reply in replies {
                    let _ = reply.send(Err(SubmitError::Ledger(e.to_string())));
                }
            }
        }
    }
}
