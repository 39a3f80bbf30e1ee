//! Answer records: a per-subject record derived from state (for the resolver: a DID's rendered
//! resolution result), written in the same transaction as the state it derives from, so that
//! a read of it is one table lookup with nothing to parse or render.
//!
//! The ledger knows nothing of what an answer is: an [`AnswerDeriver`] (the resolver's) names
//! the subject a state key belongs to and derives its answer from current state. Once one is
//! installed ([`crate::Ledger::install_answers`]), every commit path (blocks proposed here,
//! applied from peers or in catch-up, the same `write_records`) re-derives the answers of the
//! subjects whose keys the block wrote.
//!
//! **Validity.** The table is served only while it is known to match the state: the metadata
//! names the deriver's version and the height through which its answers were kept. A ledger
//! written by a build without a deriver (or with another version) falls behind on that height,
//! and the next install rebuilds the table from the state ([`crate::Ledger::rebuild_answers`],
//! in chunks that let commits through) before serving from it again.

use crate::error::LedgerError;
use crate::machine::StateView;

/// Derives answer records from state. Must be deterministic: an answer may be derived again
/// (a rebuild) and must come out the same from the same state.
pub trait AnswerDeriver: Send + Sync {
    /// Names the answers' format and what they are rendered by: a different version makes the
    /// table be rebuilt on install.
    fn version(&self) -> String;

    /// The subject whose answer a change of the state key `key` changes, if any.
    fn subject(&self, key: &str) -> Option<String>;

    /// The answer of `subject` from current `state`; none: no answer (removed if stored).
    fn derive(&self, subject: &str, state: &dyn StateView) -> Result<Option<Vec<u8>>, LedgerError>;
}

/// Subjects rebuilt per write transaction: commits wait at most one chunk.
pub const REBUILD_CHUNK: usize = 20_000;
