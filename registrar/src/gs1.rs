//! The grammar of GS1 keys in Digital Link form (GS1 Digital Link, GS1-Conformant Resolver
//! 1.2.0), over `sparkid-gs1` (the GS1 Barcode Syntax Dictionary, parsed): the canonical form of
//! a namespace (a GS1 Company Prefix) and of an identifier (a canonical Digital Link path), the
//! namespaces that cover an identifier (the company prefixes inside its key), and its alias URI
//! (the canonical `https://id.gs1.org/…` URI).

use crate::state::NameError;

/// The host of GS1's own resolver, whose URIs are a GS1 key's canonical alias.
pub const ALIAS_ROOT: &str = "https://id.gs1.org";

/// The canonical form of a gs1 namespace: a GS1 Company Prefix, 4 to 12 digits.
pub fn normalize_namespace(namespace: &str) -> Result<String, NameError> {
    sparkid_gs1::check_company_prefix(namespace).map_err(NameError::Gs1)?;
    Ok(namespace.to_string())
}

/// The canonical form of a gs1 identifier: its canonical Digital Link path (GTIN-14,
/// qualifiers in the dictionary's order, values percent-encoded but for unreserved characters).
/// A whole `https://id.gs1.org/…` URI is read as its path.
pub fn normalize_identifier(identifier: &str) -> Result<String, NameError> {
    let path = identifier.strip_prefix(ALIAS_ROOT).unwrap_or(identifier);
    sparkid_gs1::parse(path)
        .map(|dl| dl.path())
        .map_err(|e| NameError::Gs1(e.to_string()))
}

/// The namespaces that could cover a canonical identifier, longest first: the GS1 Company
/// Prefixes (12 digits down to 4) where the dictionary places them in the primary key.
pub fn covering_namespaces(identifier: &str) -> Vec<String> {
    sparkid_gs1::parse(identifier)
        .map(|dl| dl.company_prefixes())
        .unwrap_or_default()
}

/// A canonical identifier as the URI `alsoKnownAs` lists: `https://id.gs1.org<path>`.
pub fn uri(identifier: &str) -> String {
    format!("{ALIAS_ROOT}{identifier}")
}

/// The canonical identifier a URI names, if it is a GS1 Digital Link URI of `id.gs1.org`.
pub fn from_uri(uri: &str) -> Option<String> {
    let path = uri.strip_prefix(ALIAS_ROOT)?;
    // Data attributes and fragments are not part of the key.
    let path = path.split(['?', '#']).next().unwrap_or_default();
    normalize_identifier(path).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gs1_names_are_canonical_and_aliased_on_id_gs1_org() {
        assert_eq!(normalize_namespace("9506000").unwrap(), "9506000");
        let e = normalize_namespace("950").unwrap_err().to_string();
        assert!(e.contains("4 to 12 digits"), "{e}");
        let id = normalize_identifier("/01/9506000134352/10/LOT7").unwrap();
        assert_eq!(id, "/01/09506000134352/10/LOT7");
        let e = normalize_identifier("/01/9506000134353")
            .unwrap_err()
            .to_string();
        assert!(e.contains("check digit"), "{e}");
        assert_eq!(covering_namespaces(&id)[0], "950600013435");
        assert_eq!(covering_namespaces(&id).last().unwrap(), "9506");
        assert_eq!(uri(&id), "https://id.gs1.org/01/09506000134352/10/LOT7");
        assert_eq!(
            from_uri("https://id.gs1.org/01/9506000134352/10/LOT7?17=261231").as_deref(),
            Some("/01/09506000134352/10/LOT7")
        );
        assert_eq!(from_uri("https://example.com/01/09506000134352"), None);
        assert_eq!(from_uri("https://id.gs1.org/01/09506000134353"), None);
    }
}
