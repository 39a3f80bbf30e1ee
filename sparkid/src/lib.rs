//! The sparkid daemon: the `sparkid` command, its configuration, metrics, and every door.
//!
//! This crate is glue. It reads the configuration ([`config`]: one TOML file, overridden by
//! environment variables, overridden by flags), opens the node (`sparkid-node`), builds the
//! resolution service (`sparkid-resolver`) and the registrar (`sparkid-registrar`), and puts a
//! door in front of each ([`doors`]): HTTP routes for DID Resolution, the Universal Registrar,
//! the BID protocol, VAA, Handle REST, the peer API and consensus, plus the DNS and Handle
//! servers. A door parses its protocol, calls one service and renders the answer; what an
//! answer is belongs to the libraries below, which know nothing of HTTP, the CLI or logs.
//!
//! - [`cli`]: the `sparkid` command.
//! - [`mod@serve`]: the wiring of `sparkid serve`.
//! - [`metrics`]: `/metrics` for Prometheus.
//! - [`edge`]: the HTTP server's limits (connections, timeouts, long polls, rate limits) and
//!   its optional TLS.
//! - [`progress`]: progress bars (on a terminal) and lines (elsewhere) of long commands.
//! - [`outbound`]: every outbound HTTP client's base (rustls, the operator's CA file).
//! - [`validators_cli`]: `sparkid validators propose|sign|submit`, a validator-set change.
#![deny(missing_docs)]

pub mod cli;
pub mod config;
pub mod doors;
pub mod edge;
pub mod metrics;
pub mod outbound;
pub mod progress;
pub mod serve;
pub mod validators_cli;

pub use serve::serve;
