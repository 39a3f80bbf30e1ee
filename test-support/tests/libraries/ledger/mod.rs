//! `sparkid-ledger` as its users see it.

mod blocks;
mod cache_size;
