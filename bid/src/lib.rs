//! The `did:bid` method core: BID addresses, BIF keys, the native BID document, its DID Core
//! rendering, and document proofs. This crate does no I/O.
//!
//! ```
//! use sparkid_bid::{Bid, PublicKey};
//! let key = PublicKey::from_encoded(
//!     "b06566f76733ae048fda721d47afe8780b572636496c93253db86dc8d5427fc54e9a06").unwrap();
//! let bid = Bid::derive(&key, None).unwrap();
//! assert_eq!(bid.to_string(), "did:bid:ef18F9AVK4SQLZPRrPkrVWwp9kbpdXHx");
//! ```
#![deny(missing_docs)]

pub mod address;
pub mod base58;
pub mod document;
pub mod keys;
pub mod proof;

pub use address::{AcCode, AddressError, Bid, KeyType};
pub use document::{BidDocument, DocumentError};
pub use keys::{KeyError, PrivateKey, PublicKey, Signature};
pub use proof::{canonical_json, ProofError};
