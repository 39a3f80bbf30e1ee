//! Replication for sparkid: how blocks are made and how they travel between nodes.
//!
//! - [`node`]: opening a node's ledger, its validator key and its hosted sub-chains.
//! - [`bft`]: a validator of several, on Malachite's Tendermint engine
//!   (`spec/consensus.md`).
//! - [`peer`]: the peer API's pages (certified blocks, long-polled), the peer client and
//!   syncing from it.
//! - [`follow`]: follower mode: sync, and forwarded writes.
//! - [`anchoring`]: a sub-chain's certified headers anchored on the main chain.
//! - [`outbound`]: the base of every outbound HTTP client (the daemon's TLS trust roots).
//! - [`registrar_client`]: the client-managed-secret exchange with a Universal Registrar.
//! - [`validator_auth`]: requests between validators, signed by their sender and checked.
//!
//! It depends on the ledger and the registrar and knows no door: no HTTP framework, no CLI, no
//! log set-up. The endpoints other nodes call are served by the daemon's doors over the
//! interfaces this crate defines.
#![deny(missing_docs)]

pub mod anchoring;
pub mod bft;
pub mod follow;
pub mod node;
pub mod outbound;
pub mod peer;
pub mod registrar_client;
pub mod validator_auth;
