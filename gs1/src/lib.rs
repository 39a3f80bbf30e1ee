//! GS1 keys for the GS1 bridge: the GS1 Barcode Syntax Dictionary (Apache-2.0, embedded from
//! `data/`) parsed into Application Identifiers, and GS1 Digital Link paths checked against it
//! (primary keys, qualifier order, value formats, check digits), normalised (GTIN-14) and cut
//! into the levels and GS1 Company Prefixes that bindings and delegations are found under.
//! This crate does no I/O and knows no ledger, no HTTP and no DID: it takes text and returns
//! checked values or the rule they break.
//!
//! ```
//! let dl = sparkid_gs1::parse("/01/9506000134352/10/LOT7").unwrap();
//! assert_eq!(dl.path(), "/01/09506000134352/10/LOT7");
//! assert_eq!(dl.levels()[1], "/01/09506000134352");
//! assert_eq!(dl.company_prefixes()[0], "950600013435");
//! ```
#![deny(missing_docs)]

pub mod check;
pub mod dictionary;
pub mod digital_link;

pub use check::{gs1_check_digit, gs1_check_pair};
pub use dictionary::{Ai, Charset, Component, Dictionary, DictionaryError};
pub use digital_link::{
    check_company_prefix, parse, DigitalLink, DigitalLinkError, Element, MAX_PATH_LEN,
};
