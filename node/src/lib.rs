//! Replication for sparkid: how blocks are made and how they travel between nodes.
//!
//! - [`node`]: opening a node's ledger, its validator key and its hosted sub-chains.
//! - [`consensus`]: a validator of several: prepare, proposals, votes, commits
//!   (`spec/consensus.md`).
//! - [`peer`]: the peer client (certified blocks, long-polled) and syncing from it.
//! - [`follow`]: follower mode: sync, and forwarded writes.
//! - [`anchoring`]: a sub-chain's certified headers anchored on the main chain.
//!
//! It depends on the ledger and the registrar and knows no door: no HTTP framework, no CLI, no
//! log set-up. The endpoints other nodes call are served by the daemon's doors over the
//! interfaces this crate defines.
#![deny(missing_docs)]

pub mod anchoring;
pub mod consensus;
pub mod follow;
pub mod node;
pub mod peer;
