//! The grammar of object identifiers (ITU-T X.660; resolved over ORS, ITU-T X.672): the canonical
//! form of a namespace and of an identifier, the namespaces that cover an identifier (its arc
//! prefixes), and its alias URI (`urn:oid:<dotted>`, RFC 3061).
//!
//! An OID is written in dotted decimal (`1.2.156.3001.1.7`). The rules, each named by the error
//! that refuses it:
//!
//! - at most [`MAX_OID_LEN`] bytes, checked before anything is split (CESI's rule for a whole
//!   OID, `shared/reference/identifier-systems.md` §1.3), so at most [`MAX_OID_ARCS`] arcs;
//! - an arc is at most [`MAX_ARC_DIGITS`] digits (one DNS label: every OID has an ORS name);
//! - arcs are decimal digits without a leading zero (`0` itself is an arc): one spelling per
//!   OID, so that a binding has one state key and one ORS name;
//! - the first arc is 0, 1 or 2, and under 0 and 1 the second is at most 39 (X.660 §A.3's
//!   root arcs and their number of children);
//! - an identifier has at least two arcs (an ASN.1 OBJECT IDENTIFIER value has two); a
//!   namespace may be a root arc.
//!
//! A `urn:oid:` prefix (RFC 3061, any case) is accepted and dropped.

use crate::state::NameError;

/// The longest OID, in bytes of its dotted form.
pub const MAX_OID_LEN: usize = 100;
/// The most arcs an OID has: what [`MAX_OID_LEN`] leaves room for (`0.0.0…`).
pub const MAX_OID_ARCS: usize = MAX_OID_LEN.div_ceil(2);
/// The most digits in one arc: a DNS label's length, so that every accepted OID has a name in
/// the ORS zone.
pub const MAX_ARC_DIGITS: usize = 63;
/// The URN prefix of an OID alias (RFC 3061).
pub const URN_PREFIX: &str = "urn:oid:";

fn refuse(text: &str, rule: impl Into<String>) -> NameError {
    NameError::Oid(text.chars().take(120).collect(), rule.into())
}

/// The canonical dotted form of `text` with at least `min_arcs` arcs, or the rule it breaks.
fn canonical(text: &str, min_arcs: usize) -> Result<String, NameError> {
    let dotted = match text.get(..URN_PREFIX.len()) {
        Some(head) if head.eq_ignore_ascii_case(URN_PREFIX) => &text[URN_PREFIX.len()..],
        _ => text,
    };
    if dotted.len() > MAX_OID_LEN {
        return Err(refuse(
            text,
            format!("an OID is at most {MAX_OID_LEN} bytes in dotted form"),
        ));
    }
    if dotted.is_empty() {
        return Err(refuse(text, "an OID has at least one arc"));
    }
    let arcs: Vec<&str> = dotted.split('.').collect();
    if arcs.len() > MAX_OID_ARCS {
        return Err(refuse(
            text,
            format!("an OID has at most {MAX_OID_ARCS} arcs"),
        ));
    }
    for arc in &arcs {
        if arc.is_empty() {
            return Err(refuse(
                text,
                "an OID is arcs separated by single dots (an arc is empty)",
            ));
        }
        if !arc.bytes().all(|b| b.is_ascii_digit()) {
            return Err(refuse(
                text,
                format!("arc {arc:?} is not a decimal number (an arc is digits 0-9)"),
            ));
        }
        if arc.len() > MAX_ARC_DIGITS {
            return Err(refuse(
                text,
                format!("an arc is at most {MAX_ARC_DIGITS} digits (one DNS label, so that every OID has an ORS name)"),
            ));
        }
        if arc.len() > 1 && arc.starts_with('0') {
            return Err(refuse(text, format!("arc {arc:?} has a leading zero")));
        }
    }
    if !matches!(arcs[0], "0" | "1" | "2") {
        return Err(refuse(
            text,
            "the first arc is 0, 1 or 2 (ITU-T X.660 root arcs)",
        ));
    }
    if let (Some(first @ ("0" | "1")), Some(second)) = (arcs.first().copied(), arcs.get(1).copied())
    {
        // Digits only and at most 100 of them: compare by length, then text.
        let over = second.len() > 2 || (second.len() == 2 && second > "39");
        if over {
            return Err(refuse(
                text,
                format!("under arc {first} the second arc is at most 39 (ITU-T X.660)"),
            ));
        }
    }
    if arcs.len() < min_arcs {
        return Err(refuse(
            text,
            format!("an OID identifier has at least {min_arcs} arcs"),
        ));
    }
    Ok(dotted.to_string())
}

/// The canonical form of an oid namespace (one arc or more), or why it is refused.
pub fn normalize_namespace(namespace: &str) -> Result<String, NameError> {
    canonical(namespace, 1)
}

/// The canonical form of an oid identifier (two arcs or more), or why it is refused.
pub fn normalize_identifier(identifier: &str) -> Result<String, NameError> {
    canonical(identifier, 2)
}

/// The namespaces that could cover a canonical identifier, longest first: the identifier
/// itself, then each arc prefix (`1.2.156.3001.1.7`, `1.2.156.3001.1`, … `1`). Cut at arc
/// boundaries only, so `1.2.156.2000` never covers `1.2.156.20009.7`.
pub fn covering_namespaces(identifier: &str) -> Vec<String> {
    let mut out = vec![identifier.to_string()];
    let mut rest = identifier;
    while let Some((parent, _)) = rest.rsplit_once('.') {
        out.push(parent.to_string());
        rest = parent;
    }
    out
}

/// A canonical identifier as the URI `alsoKnownAs` lists: `urn:oid:<dotted>` (RFC 3061).
pub fn uri(identifier: &str) -> String {
    format!("{URN_PREFIX}{identifier}")
}

/// The canonical identifier a URI names, if it is a valid `urn:oid:` URI (any case of the
/// prefix).
pub fn from_uri(uri: &str) -> Option<String> {
    let head = uri.get(..URN_PREFIX.len())?;
    if !head.eq_ignore_ascii_case(URN_PREFIX) {
        return None;
    }
    normalize_identifier(&uri[URN_PREFIX.len()..]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> String {
        normalize_identifier(text).unwrap_err().to_string()
    }

    #[test]
    fn canonical_oids_are_accepted_as_written() {
        for oid in [
            "1.2.156.3001.1.7",
            "2.16.156.101818.102.1",
            "0.0",
            "2.999.1",
        ] {
            assert_eq!(normalize_identifier(oid).unwrap(), oid);
        }
        assert_eq!(
            normalize_identifier("URN:OID:1.2.156").unwrap(),
            "1.2.156",
            "the RFC 3061 prefix is dropped"
        );
        assert_eq!(normalize_namespace("2").unwrap(), "2");
        assert_eq!(normalize_namespace("1.39").unwrap(), "1.39");
    }

    #[test]
    fn each_rule_is_named() {
        assert!(rule("1.2.0156").contains("leading zero"));
        assert!(rule("1.2.x").contains("not a decimal number"));
        assert!(rule("1.2.-3").contains("not a decimal number"));
        assert!(rule("1..2").contains("single dots"));
        assert!(rule("1.2.").contains("single dots"));
        assert!(rule("3.1").contains("first arc is 0, 1 or 2"));
        assert!(rule("1.40").contains("second arc is at most 39"));
        assert!(rule("0.100").contains("second arc is at most 39"));
        assert!(normalize_identifier("2.40").is_ok(), "no limit under 2");
        assert!(rule("1").contains("at least 2 arcs"));
        assert!(rule("").contains("at least one arc"));
        let long = format!("1.2.{}", "7".repeat(97));
        assert!(rule(&long).contains("at most 100 bytes"));
        assert!(rule(&format!("2.{}", "9".repeat(64))).contains("at most 63 digits"));
        let many = vec!["1"; 51].join(".");
        assert!(many.len() > MAX_OID_LEN);
        let arcs = vec!["1"; 50].join(".");
        assert_eq!(arcs.len(), 99);
        assert!(normalize_identifier(&arcs).is_ok());
    }

    #[test]
    fn namespaces_cover_at_arc_boundaries() {
        assert_eq!(
            covering_namespaces("1.2.156.20009.7"),
            ["1.2.156.20009.7", "1.2.156.20009", "1.2.156", "1.2", "1"]
        );
        assert!(!covering_namespaces("1.2.156.20009.7").contains(&"1.2.156.2000".to_string()));
    }

    #[test]
    fn the_alias_is_an_oid_urn() {
        assert_eq!(uri("1.2.156.3001.1.7"), "urn:oid:1.2.156.3001.1.7");
        assert_eq!(
            from_uri("urn:oid:1.2.156.3001.1.7").as_deref(),
            Some("1.2.156.3001.1.7")
        );
        assert_eq!(from_uri("urn:OID:1.2.3").as_deref(), Some("1.2.3"));
        assert_eq!(from_uri("urn:oid:1.2.03"), None);
        assert_eq!(from_uri("oid:1.2.3"), None);
        assert_eq!(from_uri("urn:oi"), None);
    }
}
