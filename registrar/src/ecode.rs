//! The grammar of Ecodes (GB/T 31866): the canonical form of a namespace and of an identifier, the
//! namespaces that cover an identifier, and its alias URI (`ecode:<code>`).
//!
//! Until this build checks the grammar, every ecode name is refused, never guessed.

use crate::state::NameError;

/// The canonical form of a ecode namespace, or why it is refused.
pub fn normalize_namespace(_namespace: &str) -> Result<String, NameError> {
    Err(NameError::Unsupported("ecode"))
}

/// The canonical form of a ecode identifier, or why it is refused.
pub fn normalize_identifier(_identifier: &str) -> Result<String, NameError> {
    Err(NameError::Unsupported("ecode"))
}

/// The namespaces that could cover a canonical identifier, longest first.
pub fn covering_namespaces(identifier: &str) -> Vec<String> {
    vec![identifier.to_string()]
}

/// A canonical identifier as the URI `alsoKnownAs` lists.
pub fn uri(identifier: &str) -> String {
    format!("ecode:{identifier}")
}

/// The canonical identifier a URI names, if it is a ecode URI.
pub fn from_uri(_uri: &str) -> Option<String> {
    None
}
