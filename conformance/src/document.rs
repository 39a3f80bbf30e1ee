//! DID Core §5 and §6: the properties of a DID document and the rules of its representations.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::{check_did_syntax, check_did_url_syntax, Violation};

/// The JSON-LD context a DID Core 1.0 document starts with.
pub const DID_V1_CONTEXT: &str = "https://www.w3.org/ns/did/v1";
/// The DID Core 1.1 context.
pub const DID_V1_1_CONTEXT: &str = "https://www.w3.org/ns/did/v1.1";

/// The verification relationships of DID Core §5.3.
pub const RELATIONSHIPS: [&str; 5] = [
    "authentication",
    "assertionMethod",
    "keyAgreement",
    "capabilityInvocation",
    "capabilityDelegation",
];

/// How the document was represented, which decides the representation-specific rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// `application/did+json` (and `application/did`): `@context` optional.
    Json,
    /// `application/did+ld+json`: `@context` required, DID Core's first.
    JsonLd,
}

struct Checker<'a> {
    did: &'a str,
    violations: Vec<Violation>,
}

impl Checker<'_> {
    fn fail(&mut self, section: &'static str, message: String) {
        self.violations.push(Violation { section, message });
    }
}

/// Checks a DID document against DID Core's data model and the representation's rules.
/// Returns every violation found.
pub fn check_document(document: &Value, representation: Representation) -> Vec<Violation> {
    let Some(map) = document.as_object() else {
        return vec![Violation {
            section: "§4 Data Model",
            message: "a DID document is a map".into(),
        }];
    };
    let did = map.get("id").and_then(Value::as_str).unwrap_or_default();
    let mut c = Checker {
        did,
        violations: Vec::new(),
    };
    match map.get("id") {
        None => c.fail("§5.1.1 DID Subject", "id is required".into()),
        Some(Value::String(id)) => {
            if let Err(v) = check_did_syntax(id) {
                c.violations.push(v);
            }
        }
        Some(_) => c.fail("§5.1.1 DID Subject", "id must be a string".into()),
    }
    check_context(&mut c, map, representation);
    if let Some(controller) = map.get("controller") {
        let dids: Vec<&Value> = match controller {
            Value::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        for d in dids {
            match d.as_str() {
                Some(s) if check_did_syntax(s).is_ok() => {}
                _ => c.fail(
                    "§5.1.2 DID Controller",
                    format!("controller {d} is not a DID"),
                ),
            }
        }
    }
    if let Some(aka) = map.get("alsoKnownAs") {
        match aka.as_array() {
            None => c.fail(
                "§5.1.3 Also Known As",
                "alsoKnownAs must be a set (array)".into(),
            ),
            Some(items) => {
                let mut seen = HashSet::new();
                for item in items {
                    match item.as_str() {
                        Some(uri) if is_uri(uri) => {
                            if !seen.insert(uri) {
                                c.fail(
                                    "§5.1.3 Also Known As",
                                    format!("{uri} appears twice in a set"),
                                );
                            }
                        }
                        _ => c.fail("§5.1.3 Also Known As", format!("{item} is not a URI")),
                    }
                }
            }
        }
    }
    let mut method_ids = HashSet::new();
    match map.get("verificationMethod") {
        None => {}
        Some(Value::Array(methods)) => {
            for m in methods {
                check_method(&mut c, m, "§5.2 Verification Methods", &mut method_ids);
            }
        }
        Some(_) => c.fail(
            "§5.2 Verification Methods",
            "verificationMethod must be a set (array) of maps".into(),
        ),
    }
    // Embedded methods count as methods for references, so collect them first.
    for rel in RELATIONSHIPS {
        if let Some(Value::Array(items)) = map.get(rel) {
            for item in items.iter().filter(|i| i.is_object()) {
                check_method(
                    &mut c,
                    item,
                    "§5.3 Verification Relationships",
                    &mut method_ids,
                );
            }
        }
    }
    for rel in RELATIONSHIPS {
        match map.get(rel) {
            None => {}
            Some(Value::Array(items)) => {
                for item in items {
                    match item {
                        Value::String(reference) => {
                            check_reference(&mut c, rel, reference, &method_ids)
                        }
                        Value::Object(_) => {}
                        other => c.fail(
                            "§5.3 Verification Relationships",
                            format!("{rel} holds {other}: each entry is a DID URL string or a verification method map"),
                        ),
                    }
                }
            }
            Some(_) => c.fail(
                "§5.3 Verification Relationships",
                format!("{rel} must be a set (array)"),
            ),
        }
    }
    match map.get("service") {
        None => {}
        Some(Value::Array(services)) => {
            let mut ids = HashSet::new();
            for s in services {
                check_service(&mut c, s, &mut ids);
            }
        }
        Some(_) => c.fail(
            "§5.4 Services",
            "service must be a set (array) of maps".into(),
        ),
    }
    c.violations
}

fn check_context(c: &mut Checker<'_>, map: &Map<String, Value>, representation: Representation) {
    let section = "§6.3 JSON-LD";
    let first = match map.get("@context") {
        None if representation == Representation::JsonLd => {
            c.fail(
                section,
                "@context is required in application/did+ld+json".into(),
            );
            return;
        }
        None => return,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(Value::Array(items)) => items.first().and_then(Value::as_str),
        Some(other) => {
            c.fail(
                section,
                format!("@context must be a string or an ordered set, not {other}"),
            );
            return;
        }
    };
    if !matches!(first, Some(DID_V1_CONTEXT | DID_V1_1_CONTEXT)) {
        c.fail(
            section,
            format!("the first @context must be {DID_V1_CONTEXT} (or {DID_V1_1_CONTEXT})"),
        );
    }
}

/// A method id, absolute (as written, or made absolute against the document's DID).
fn absolute(did: &str, id: &str) -> String {
    if id.starts_with('#') {
        format!("{did}{id}")
    } else {
        id.to_string()
    }
}

fn check_method(
    c: &mut Checker<'_>,
    method: &Value,
    section: &'static str,
    ids: &mut HashSet<String>,
) {
    let Some(m) = method.as_object() else {
        c.fail(
            section,
            format!("{method} is not a verification method map"),
        );
        return;
    };
    let id = m.get("id").and_then(Value::as_str);
    match id {
        None => c.fail(
            section,
            "a verification method needs an id (a DID URL)".into(),
        ),
        Some(id) => {
            let abs = absolute(c.did, id);
            if check_did_url_syntax(&abs).is_err() {
                c.fail(
                    section,
                    format!("verification method id {id:?} is not a DID URL"),
                );
            }
            if !ids.insert(abs) {
                c.fail(
                    section,
                    format!("verification method id {id} is not unique"),
                );
            }
        }
    }
    let name = id.unwrap_or("?");
    if !m.get("type").is_some_and(Value::is_string) {
        c.fail(section, format!("{name}: type must be a string"));
    }
    match m.get("controller").and_then(Value::as_str) {
        Some(d) if check_did_syntax(d).is_ok() => {}
        _ => c.fail(section, format!("{name}: controller must be a DID")),
    }
    let jwk = m.get("publicKeyJwk");
    let multibase = m.get("publicKeyMultibase");
    if jwk.is_some() && multibase.is_some() {
        c.fail(
            section,
            format!("{name}: publicKeyJwk and publicKeyMultibase express the same material twice"),
        );
    }
    if let Some(mb) = multibase {
        match mb.as_str() {
            Some(s) if s.len() > 1 && s.is_ascii() => {}
            _ => c.fail(
                section,
                format!("{name}: publicKeyMultibase must be a multibase string"),
            ),
        }
    }
    if let Some(jwk) = jwk {
        match jwk.as_object() {
            Some(k) if k.contains_key("kty") => {
                if k.contains_key("d") {
                    c.fail(
                        section,
                        format!("{name}: publicKeyJwk must not contain private key material (d)"),
                    );
                }
            }
            _ => c.fail(
                section,
                format!("{name}: publicKeyJwk must be a JWK map with kty"),
            ),
        }
    }
}

fn check_reference(c: &mut Checker<'_>, rel: &str, reference: &str, ids: &HashSet<String>) {
    let section = "§5.3 Verification Relationships";
    let abs = absolute(c.did, reference);
    if check_did_url_syntax(&abs).is_err() {
        c.fail(
            section,
            format!("{rel} reference {reference:?} is not a DID URL or a relative reference"),
        );
        return;
    }
    // A reference into this document must name a method it holds.
    let own = abs.split('#').next() == Some(c.did);
    if own && !ids.contains(&abs) {
        c.fail(
            section,
            format!(
                "{rel} references {reference}, which is not a verification method of this document"
            ),
        );
    }
}

fn check_service(c: &mut Checker<'_>, service: &Value, ids: &mut HashSet<String>) {
    let section = "§5.4 Services";
    let Some(s) = service.as_object() else {
        c.fail(section, format!("{service} is not a service map"));
        return;
    };
    let id = s.get("id").and_then(Value::as_str);
    match id {
        Some(id) if is_uri(&absolute(c.did, id)) => {
            if !ids.insert(absolute(c.did, id)) {
                c.fail(section, format!("service id {id} is not unique"));
            }
        }
        _ => c.fail(section, "a service needs an id that is a URI".into()),
    }
    let name = id.unwrap_or("?");
    match s.get("type") {
        Some(Value::String(_)) => {}
        Some(Value::Array(types)) if !types.is_empty() && types.iter().all(Value::is_string) => {}
        _ => c.fail(
            section,
            format!("{name}: type must be a string or a set of strings"),
        ),
    }
    let endpoint_ok = |e: &Value| match e {
        Value::String(u) => is_uri(u),
        Value::Object(_) => true,
        _ => false,
    };
    match s.get("serviceEndpoint") {
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(endpoint_ok) => {}
        Some(e) if !e.is_array() && endpoint_ok(e) => {}
        _ => c.fail(
            section,
            format!("{name}: serviceEndpoint must be a URI, a map, or a set of them"),
        ),
    }
}

/// RFC 3986 in the shape DID Core needs: a scheme, `:`, and no whitespace.
pub fn is_uri(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DID: &str = "did:bid:efJgt44mNDewKK1VEN454R17cjso3mSG";

    fn good() -> Value {
        json!({
            "@context": [DID_V1_CONTEXT, "https://w3id.org/security/multikey/v1"],
            "id": DID,
            "verificationMethod": [{
                "id": format!("{DID}#key-1"), "type": "Multikey", "controller": DID,
                "publicKeyMultibase": "z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH"
            }],
            "authentication": [format!("{DID}#key-1")],
            "assertionMethod": ["#key-1"],
            "alsoKnownAs": ["hdl:86.100/x", "dns:pump.example.com"],
            "service": [{"id": "#hub", "type": "LinkedDomains", "serviceEndpoint": "https://example.com"}]
        })
    }

    #[test]
    fn a_well_formed_document_passes_in_both_representations() {
        assert_eq!(check_document(&good(), Representation::JsonLd), vec![]);
        let mut bare = good();
        bare.as_object_mut().unwrap().remove("@context");
        assert_eq!(check_document(&bare, Representation::Json), vec![]);
        assert_eq!(check_document(&bare, Representation::JsonLd).len(), 1);
    }

    #[test]
    fn each_broken_rule_is_named() {
        let cases: Vec<(&str, Value, &str)> = vec![
            ("id", Value::Null, "§5.1.1"),
            ("id", json!("not-a-did"), "§3.1"),
            ("controller", json!(["x"]), "§5.1.2"),
            ("alsoKnownAs", json!("hdl:x"), "§5.1.3"),
            ("alsoKnownAs", json!(["a b"]), "§5.1.3"),
            ("authentication", json!(["#missing"]), "§5.3"),
            ("authentication", json!([3]), "§5.3"),
            (
                "verificationMethod",
                json!([{"id": "#k", "type": "Multikey", "controller": DID,
                        "publicKeyMultibase": "z6Mk", "publicKeyJwk": {"kty": "OKP"}}]),
                "§5.2",
            ),
            (
                "verificationMethod",
                json!([{"id": "#k", "type": "JsonWebKey2020", "controller": DID,
                        "publicKeyJwk": {"kty": "OKP", "d": "secret"}}]),
                "§5.2",
            ),
            (
                "service",
                json!([{"id": "#s", "type": "X", "serviceEndpoint": 5}]),
                "§5.4",
            ),
            (
                "service",
                json!([{"id": "#s", "type": "X", "serviceEndpoint": "https://a"},
                       {"id": format!("{DID}#s"), "type": "X", "serviceEndpoint": "https://b"}]),
                "§5.4",
            ),
            ("@context", json!(["https://example.com/other"]), "§6.3"),
        ];
        for (member, value, section) in cases {
            let mut doc = good();
            if value.is_null() {
                doc.as_object_mut().unwrap().remove(member);
            } else {
                doc[member] = value.clone();
            }
            let violations = check_document(&doc, Representation::JsonLd);
            assert!(
                violations.iter().any(|v| v.section.starts_with(section)),
                "{member}={value}: expected a {section} violation, got {violations:?}"
            );
        }
    }
}
