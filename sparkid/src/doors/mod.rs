//! The doors: each parses its protocol, calls one service, and renders the answer in its own
//! format. HTTP routes are mounted through [`routes::Routes`], so `GET /1.0/routes` lists what
//! is served.

pub mod bidproto;
pub mod bridges;
pub mod consensus;
pub mod dns;
pub mod dns_wire;
pub mod explorer;
pub mod forward;
pub mod gs1;
pub mod handle;
pub mod health;
pub mod oid_ecode;
pub mod peer;
pub mod registrar;
pub mod resolution;
pub mod routes;
pub mod rrl;
pub mod verifiable;
pub mod verifier;
