//! The write path: did:bid operations, the rules that authorize them, and their submission to
//! the ledger, with the Universal Registrar protocol on top.
//!
//! - [`operation`]: the operations and the state machine the ledger runs them with.
//! - [`service`]: the pool and block producer (group commit).
//! - [`api`]: Universal Registrar requests and responses.
#![deny(missing_docs)]

pub mod api;
pub mod operation;
pub mod service;

pub use api::{Function, Registrar, RegistrarRequest, RegistrarResponse};
pub use operation::{did_key, BidStateMachine, DidRecord, Operation, OperationError};
pub use service::{Certifier, Committed, SubmitError, Submitter};
