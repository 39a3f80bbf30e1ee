//! The sparkid resolution service, as a library: a request value in, a result value out.
//!
//! It answers `did:bid` DIDs from a ledger ([`resolution::Resolver`]), did:key in process
//! ([`didkey`]), other methods through Universal Resolver drivers ([`drivers`]) and sub-chain DIDs
//! from a hosted ledger or recursively through the resolvers the main chain names ([`subchain`]).
//! Reads go through the chain-anchored cache ([`records::Records`], [`cache`]: L1 in process, L2
//! Redis). Answers can carry ledger proofs that [`verifiable`] checks offline. [`binding`] and
//! [`bidproto`] render results in the DID Resolution HTTP binding's and the BID protocol's
//! formats, as pure functions of a request value; [`dns_zone`] answers DNS questions for the
//! zones on the ledger; [`explorer`] gathers the chain browser's pages. Every outbound HTTP
//! client starts from [`outbound::ClientBase`] (the daemon's TLS trust roots).
//!
//! It knows no HTTP framework, no CLI, no socket server and no log set-up: the daemon's doors
//! (the `sparkid` crate) parse their protocol, call this crate and send what it returns.
//!
//! ```
//! use sparkid_resolver::did_url::DidUrl;
//!
//! let url = DidUrl::parse("did:bid:efnVUgqQFfYeu97ABf6sGm3WFtVXHZB2#key-1").unwrap();
//! assert_eq!(url.method(), "bid");
//! assert_eq!(url.fragment(), Some("key-1"));
//! ```
#![deny(missing_docs)]

pub mod ac_code;
pub mod answer_deriver;
pub mod answers;
pub mod bidproto;
pub mod binding;
pub mod bridge_source;
pub mod cache;
pub mod cache_metrics;
pub mod did_url;
pub mod didkey;
pub mod dns_zone;
pub mod drivers;
pub mod explorer;
pub mod gs1;
pub mod negotiate;
pub mod outbound;
pub mod records;
pub mod resolution;
pub mod result;
pub mod ssi_methods;
pub mod subchain;
pub mod verifiable;
pub mod warm;
