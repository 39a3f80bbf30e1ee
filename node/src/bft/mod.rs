//! Several validators on an existing BFT engine: Malachite's Tendermint
//! (`arc-malachitebft-core-consensus`, pinned), driven over the project's HTTP between
//! validators, every request signed by its sending validator ([`crate::validator_auth`]). The
//! protocol, its guarantees and how certificates map to the ledger are in
//! `spec/consensus.md`; in short:
//!
//! - **The engine** (`engine.rs`) owns the consensus state machine (proposals, prevotes,
//!   precommits, locks and proof-of-lock, growing round timeouts, rotating proposers,
//!   equivocation evidence). This crate supplies the types ([`context`]), the signed bytes,
//!   block building and checking (`Ledger::build_block`, `Ledger::check_block`), the
//!   transport, the write-ahead log and the commit.
//! - **Certificates are unchanged**: a precommit for a block signs the commit vote bytes, so a
//!   decision is today's [`sparkid_ledger::CommitCertificate`] ([`sparkid_ledger::block::Vote`]
//!   per precommit), which `sparkid verify`, proofs, followers and sub-chain anchors check.
//! - **Writes** (the registrar's `Sequencer`, `validator.rs`): a validator puts the writer's transactions in its
//!   pool, hands them to the others (`POST /1.0/consensus/transactions`) and answers the writer
//!   once the block holding them is applied here (read-your-writes), or with its refusal; with
//!   no quorum in time, a 503 that says the write may still commit
//!   (`SubmitError::Pending`).
//! - **Idle**: a height starts only when a validator has work or hears of the height from a
//!   peer, so an idle chain makes no blocks.
//! - **Who may ask**: every `POST` is checked (`validator_auth::Authenticator`) before its body is parsed.

pub mod context;
mod engine;
mod signing;
mod validator;
pub mod wire;

use std::sync::Arc;

use sparkid_bid::PrivateKey;
use sparkid_ledger::Ledger;
use sparkid_registrar::{BidStateMachine, Submitter};

use crate::outbound::ClientBase;
use tracing::info;

pub use context::timeouts;
pub use validator::{
    Consensus, Evidence, EvidenceList, PoolRequest, Rejection, StartError, Status, ValidatorSets,
    BYZANTINE_ENV, EVIDENCE_FILE, MAX_REQUEST, MESSAGES_PATH, PROBLEM_BAD_REQUEST, PROBLEM_REFUSED,
    PROBLEM_UNAUTHENTICATED, TRANSACTIONS_PATH, VALIDATORS_PATH, WAL_FILE,
};
pub use wire::{Message, MAX_HEIGHT, MAX_ROUND};

impl Consensus {
    /// Starts consensus for `ledger` with this validator's `key` and the peers' base URLs, and
    /// the block producer that uses it; clients of peers are built from `client` (its TLS trust
    /// roots). Must run inside the tokio runtime.
    pub fn start(
        ledger: Arc<Ledger>,
        machine: BidStateMachine,
        key: PrivateKey,
        peers: &[String],
        client: &ClientBase,
    ) -> Result<(Arc<Consensus>, Submitter), StartError> {
        let (consensus, inbox) = Consensus::build(ledger.clone(), &machine, key, peers, client)?;
        let engine = engine::Engine::open(consensus.clone(), inbox)?;
        std::thread::Builder::new()
            .name("consensus".into())
            .spawn(move || engine.run())
            .map_err(|e| StartError::Log {
                path: "consensus thread".into(),
                reason: e.to_string(),
            })?;
        let submitter = Submitter::start_with(
            ledger,
            machine,
            Box::new(validator::BftSequencer(consensus.clone())),
        );
        info!(
            validator = consensus.me,
            validators = consensus.n(),
            quorum = consensus.quorum(),
            peers = consensus.peers.len(),
            "consensus: Malachite Tendermint, validator of several"
        );
        let background = consensus.clone();
        tokio::spawn(async move { background.sync_loop().await });
        Ok((consensus, submitter))
    }
}
