//! Ledger errors.

use thiserror::Error;

use crate::block::CertificateError;
use crate::hash::Hash;
use crate::tx::TxError;

/// A failure of the ledger itself (as opposed to a refused transaction).
#[derive(Debug, Error)]
pub enum LedgerError {
    /// The embedded store failed.
    #[error("storage: {0}")]
    Storage(#[from] redb::Error),
    /// Reading or writing the data directory failed.
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
    /// Stored data does not decode: the store is corrupt or from another version.
    #[error("corrupt ledger data: {0}")]
    Corrupt(String),
    /// No ledger in the directory.
    #[error("no ledger at {0}")]
    NotFound(String),
    /// A ledger is already there.
    #[error("a ledger already exists at {0}")]
    AlreadyExists(String),
    /// The genesis is not usable.
    #[error("invalid genesis: {0}")]
    InvalidGenesis(String),
    /// The certificate does not commit the block.
    #[error("certificate: {0}")]
    Certificate(#[from] CertificateError),
    /// A block that does not follow from the current head.
    #[error("block {height} does not extend the chain: {reason}")]
    BadBlock {
        /// Its height.
        height: u64,
        /// What is wrong.
        reason: String,
    },
    /// A transaction in a received block is invalid.
    #[error("transaction {hash} in block {height}: {reason}")]
    BadTransaction {
        /// The block.
        height: u64,
        /// The transaction.
        hash: Hash,
        /// What is wrong.
        reason: String,
    },
    /// A state-tree node is missing.
    #[error("state tree: {0}")]
    Tree(String),
    /// The signature check of a received transaction failed.
    #[error("transaction: {0}")]
    Tx(#[from] TxError),
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for LedgerError {
            fn from(e: $t) -> Self {
                LedgerError::Storage(e.into())
            }
        }
    )*};
}
storage_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
