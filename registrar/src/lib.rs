//! The write path: did:bid operations, the rules that authorize them, and their submission to
//! the ledger, with the Universal Registrar protocol on top.
//!
//! - [`operation`]: the operations and the state machine the ledger runs them with.
//! - [`namespace`]: namespaces delegated by the chain authority and the identifiers bound under them.
//! - [`service`]: the pool and block producer (group commit).
//! - [`api`]: Universal Registrar requests and responses.
#![deny(missing_docs)]

pub mod anchor;
pub mod api;
pub mod namespace;
pub mod operation;
pub mod service;

pub use api::{Function, Registrar, RegistrarRequest, RegistrarResponse};
pub use namespace::{AliasRecord, BindingRecord, Kind, NamespaceRecord};
pub use operation::{did_key, BidStateMachine, DidRecord, Operation, OperationError};
pub use service::{Certifier, Committed, LocalSequencer, Sequencer, SubmitError, Submitter};
