//! The grammar of GS1 keys in Digital Link form (GS1 Digital Link, GS1-Conformant Resolver 1.2.0): the canonical form of a namespace and of an identifier, the
//! namespaces that cover an identifier, and its alias URI (the canonical `https://id.gs1.org/…` URI).
//!
//! Until this build checks the grammar, every gs1 name is refused, never guessed.

use crate::state::NameError;

/// The canonical form of a gs1 namespace, or why it is refused.
pub fn normalize_namespace(_namespace: &str) -> Result<String, NameError> {
    Err(NameError::Unsupported("gs1"))
}

/// The canonical form of a gs1 identifier, or why it is refused.
pub fn normalize_identifier(_identifier: &str) -> Result<String, NameError> {
    Err(NameError::Unsupported("gs1"))
}

/// The namespaces that could cover a canonical identifier, longest first.
pub fn covering_namespaces(identifier: &str) -> Vec<String> {
    vec![identifier.to_string()]
}

/// A canonical identifier as the URI `alsoKnownAs` lists.
pub fn uri(identifier: &str) -> String {
    format!("gs1:{identifier}")
}

/// The canonical identifier a URI names, if it is a gs1 URI.
pub fn from_uri(_uri: &str) -> Option<String> {
    None
}
