//! A block a validator built or checked and has not committed yet, with what its execution
//! produced: the state writes, the changed tree chunks and the new root, so that committing it
//! writes them as they are instead of executing the block a second time
//! ([`crate::Ledger::apply_checked`]).
//!
//! What was computed is only valid on the state it was computed on: the header names its
//! parent (`previousHash`), and a checked block is applied only while that parent is the head,
//! the committed state its execution read. Anything else (a head that moved through a peer's
//! block, a block this validator never checked) is executed again.

use crate::block::BlockHeader;
use crate::hash::Hash;
use crate::smt::Position;
use crate::tx::VerifiedTransaction;

/// A block executed on its parent, not committed: its header, its transactions and every write
/// its commit makes.
#[derive(Debug)]
pub struct CheckedBlock {
    /// The header (its `previousHash` names the state this was computed on).
    pub(crate) header: BlockHeader,
    /// The header's hash, computed once.
    pub(crate) id: Hash,
    /// The transactions, verified, in order.
    pub(crate) included: Vec<VerifiedTransaction>,
    /// Their hashes, in order (the transaction index).
    pub(crate) hashes: Vec<Hash>,
    /// The state writes, in key order.
    pub(crate) writes: Vec<(String, String)>,
    /// The tree chunks the writes change, encoded, by position.
    pub(crate) chunks: Vec<(Position, Vec<u8>)>,
}

impl CheckedBlock {
    /// The block's header.
    pub fn header(&self) -> &BlockHeader {
        &self.header
    }

    /// The header's hash: the block's id.
    pub fn id(&self) -> Hash {
        self.id
    }

    /// The block's height.
    pub fn height(&self) -> u64 {
        self.header.height
    }

    /// The block's transactions, verified, in order.
    pub fn transactions(&self) -> &[VerifiedTransaction] {
        &self.included
    }

    /// The state keys the block writes, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.writes.iter().map(|(k, _)| k.as_str())
    }
}
