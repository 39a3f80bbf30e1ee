//! The interface between the ledger and the operations it orders.
//!
//! The ledger checks signatures, replay and validity windows; what an operation means (create a
//! DID, bind a name, ...) is the state machine's, which the registrar provides.

use crate::block::Genesis;
use crate::error::LedgerError;
use crate::tx::VerifiedTransaction;

/// Reads state as it stands at this point of a block.
pub trait StateView {
    /// The value of a state key.
    fn get(&self, key: &str) -> Result<Option<String>, LedgerError>;
}

/// Where a transaction executes.
#[derive(Debug, Clone, Copy)]
pub struct ExecContext<'a> {
    /// The height of the block being built.
    pub height: u64,
    /// The block's time, unix seconds.
    pub time: u64,
    /// The chain's genesis.
    pub genesis: &'a Genesis,
}

/// State writes: key and new value (text, JSON by convention, so that proofs carry it readably).
pub type Writes = Vec<(String, String)>;

/// Executes operations: decides whether a transaction is allowed against current state and
/// what it writes.
pub trait StateMachine: Send + Sync {
    /// Why an operation is refused.
    type Rejection: std::error::Error + Send + Sync + Clone + 'static;

    /// Executes one transaction. The outer error is a storage failure (the block is abandoned);
    /// the inner one a refusal of this transaction (it is left out of the block).
    ///
    /// The result must depend on nothing but `tx`, `ctx` and what is read from `state`:
    /// followers re-execute blocks to the same root, and the ledger executes a block's
    /// transactions ahead, on all cores, keeping a result only when nothing it read changed
    /// earlier in the block.
    fn execute(
        &self,
        tx: &VerifiedTransaction,
        ctx: &ExecContext<'_>,
        state: &dyn StateView,
    ) -> Result<Result<Writes, Self::Rejection>, LedgerError>;
}
