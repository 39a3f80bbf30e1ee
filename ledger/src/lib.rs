//! The embedded light ledger: a verifiable replica of the identifier registry.
//!
//! - [`tx`]: signed transactions with replay protection.
//! - [`block`]: genesis, headers, blocks and quorum commit certificates.
//! - [`smt`]: the authenticated state, a sparse Merkle tree, with proofs of presence and absence.
//! - [`store`]: the redb store; one atomic, durable write per block.
//! - [`checked`]: a block executed and not committed yet, committed without executing it again.
//! - [`validators`]: validator-set changes, the sets by height, and proofs' hand-offs.
//! - [`verify`]: re-checks a whole chain.
//! - [`answers`]: per-subject answer records derived from state at commit (a DID's rendered
//!   resolution), for reads that are one lookup.
//!
//! The ledger knows nothing of HTTP, DNS or Handle, and nothing of what operations mean: a
//! [`StateMachine`] (the registrar's) decides that.
#![deny(missing_docs)]

pub mod answers;
pub mod block;
pub mod checked;
mod chunk;
pub mod error;
pub mod hash;
pub mod machine;
pub mod smt;
pub mod store;
pub mod tx;
pub mod validators;
pub mod verify;

pub use answers::AnswerDeriver;
pub use block::{Block, BlockHeader, CertifiedHeader, CommitCertificate, Genesis, ValidatorSet};
pub use error::LedgerError;
pub use hash::Hash;
pub use machine::{ExecContext, StateMachine, StateView, Writes};
pub use store::{
    CommitListener, CommittedBlock, Ledger, LedgerOptions, Proposal, RecordProof, RecordProofError,
    TxOutcome, TxRejection,
};
pub use tx::{Transaction, TxBody, TxError, VerifiedTransaction};
pub use validators::{ChangeError, Handoff, HandoffError, Schedule, ValidatorChange};
pub use verify::{verify_chain, verify_chain_with_progress, VerifyReport};
