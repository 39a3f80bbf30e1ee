//! Every end-to-end test of `tests/` in one test binary: each file is a module here, kept where
//! it is. Each binary links the whole daemon; one binary links it once instead of once per file,
//! which is most of the suite's build time (issue 17). A new test file is a new line below,
//! not a new `[[test]]` in `sparkid/Cargo.toml`.
//!
//! Run one file's tests with a filter: `cargo test -p sparkid --test it dns::` (the module
//! path); `cargo test -p sparkid --test it -- --list` lists them all.
//!
//! Each file declares `mod common;` itself, which resolves to `tests/common/mod.rs` (a file
//! loaded through `#[path]` owns its directory like a `mod.rs`), so the files also compile alone.
//! So `tests/common` is a module of each file: loaded once per file, on purpose.
#![allow(clippy::duplicate_mod)]

#[path = "../adversarial_consensus.rs"]
mod adversarial_consensus;
#[path = "../adversarial_http.rs"]
mod adversarial_http;
#[path = "../adversarial_input.rs"]
mod adversarial_input;
#[path = "../adversarial_registrar.rs"]
mod adversarial_registrar;
#[path = "../adversarial_resolver.rs"]
mod adversarial_resolver;
#[path = "../adversarial_udp.rs"]
mod adversarial_udp;
#[path = "../adversarial_writes.rs"]
mod adversarial_writes;
#[path = "../answers.rs"]
mod answers;
#[path = "../battery.rs"]
mod battery;
#[path = "../bft.rs"]
mod bft;
#[path = "../bidproto.rs"]
mod bidproto;
#[path = "../cache.rs"]
mod cache;
#[path = "../certificates.rs"]
mod certificates;
#[path = "../cluster.rs"]
mod cluster;
#[path = "../conformance.rs"]
mod conformance;
#[path = "../dns.rs"]
mod dns;
#[path = "../dns_cache.rs"]
mod dns_cache;
#[path = "../e2e.rs"]
mod e2e;
#[path = "../explorer.rs"]
mod explorer;
#[path = "../gs1.rs"]
mod gs1;
#[path = "../handle.rs"]
mod handle;
#[path = "../handle_idis.rs"]
mod handle_idis;
#[path = "../layout.rs"]
mod layout;
#[path = "../oid_ecode.rs"]
mod oid_ecode;
#[path = "../openapi.rs"]
mod openapi;
#[path = "../partition.rs"]
mod partition;
#[path = "../progress.rs"]
mod progress;
#[path = "../resolution.rs"]
mod resolution;
#[path = "../ssi_methods.rs"]
mod ssi_methods;
#[path = "../subchain.rs"]
mod subchain;
#[path = "../tls.rs"]
mod tls;
#[path = "../transactions.rs"]
mod transactions;
#[path = "../vaa.rs"]
mod vaa;
#[path = "../validator_set.rs"]
mod validator_set;
#[path = "../validators.rs"]
mod validators;
#[path = "../verifier.rs"]
mod verifier;
#[path = "../verify.rs"]
mod verify;
#[path = "../warm.rs"]
mod warm;
