//! The write path: did:bid operations, the rules that authorize them, and their submission to
//! the ledger, with the Universal Registrar protocol on top.
//!
//! It is a library: it takes operations, signed transactions and Universal Registrar requests,
//! judges them by the rules, commits the accepted ones to the ledger and answers with values. It
//! must not know how requests arrive or how the process runs: no HTTP framework, no CLI, no logging
//! set-up (it emits `tracing` events; the daemon decides where they go), and nothing of the doors
//! or of replication, which depend on it, never the other way.
//!
//! Its modules, from the base up; each uses only those above it:
//!
//! - [`state`]: what the rules share: the DID record, the kinds of namespace, the refusal.
//! - [`oid`], [`gs1`], [`ecode`]: the grammars of the newer identifier kinds, which
//!   [`namespace`] dispatches to.
//! - [`namespace`]: namespaces delegated by the chain authority and the identifiers bound under them.
//! - [`anchor`]: sub-chain headers anchored on the main chain.
//! - [`operation`]: the operations and the state machine the ledger runs them with.
//! - [`service`]: the pool and block producer (group commit).
//! - [`jobs`]: the jobs waiting for their clients' signatures, bounded, each with its secret.
//! - [`submitters`]: `registrar.submitters`, the allow-list of a permissioned registrar.
//! - [`api`]: Universal Registrar requests and responses.
#![deny(missing_docs)]

pub mod anchor;
pub mod api;
pub mod ecode;
pub mod gs1;
pub mod jobs;
pub mod namespace;
pub mod oid;
pub mod operation;
pub mod service;
pub mod state;
pub mod submitters;

pub use api::{
    Function, PolicyRefusal, Registrar, RegistrarPolicy, RegistrarRequest, RegistrarResponse,
};
pub use jobs::{Client, JobLimits};
pub use namespace::{AliasRecord, BindingRecord, NamespaceRecord};
pub use operation::{BidStateMachine, Operation};
pub use service::{Certifier, Committed, LocalSequencer, Sequencer, SubmitError, Submitter};
pub use state::{did_key, DidRecord, Kind, OperationError};
pub use submitters::Submitters;
