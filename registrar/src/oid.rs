//! The grammar of object identifiers (ITU-T X.660; resolved over ORS, ITU-T X.672): the canonical form of a namespace and of an identifier, the
//! namespaces that cover an identifier, and its alias URI (`urn:oid:<dotted>`).
//!
//! Until this build checks the grammar, every oid name is refused, never guessed.

use crate::state::NameError;

/// The canonical form of a oid namespace, or why it is refused.
pub fn normalize_namespace(_namespace: &str) -> Result<String, NameError> {
    Err(NameError::Unsupported("oid"))
}

/// The canonical form of a oid identifier, or why it is refused.
pub fn normalize_identifier(_identifier: &str) -> Result<String, NameError> {
    Err(NameError::Unsupported("oid"))
}

/// The namespaces that could cover a canonical identifier, longest first.
pub fn covering_namespaces(identifier: &str) -> Vec<String> {
    vec![identifier.to_string()]
}

/// A canonical identifier as the URI `alsoKnownAs` lists.
pub fn uri(identifier: &str) -> String {
    format!("oid:{identifier}")
}

/// The canonical identifier a URI names, if it is a oid URI.
pub fn from_uri(_uri: &str) -> Option<String> {
    None
}
