//! The libraries' integration tests, one module per library, in one test binary: `ledger` (a
//! ledger under a minimal state machine, and its page cache), `registrar` (the did:bid rules,
//! namespaces, writes and batching). They live here, beside the support crate, because the
//! libraries cannot use it in their own tests (see `src/lib.rs`).
//!
//! Run one library's tests with a filter: `cargo test -p sparkid-test-support --test libraries
//! registrar::`.

mod ledger;
mod registrar;
