//! `sparkid-registrar`: the did:bid operations' rules, namespaces, writes through the block
//! producer, and its batching.

mod batching;
mod namespaces;
mod rules;
mod writes;
