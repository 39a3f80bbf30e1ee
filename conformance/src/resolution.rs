//! DID Core §7 and DID Resolution: the shape of resolution and dereferencing results, their
//! metadata, their errors, and the HTTP status each outcome goes out with.

use serde_json::{Map, Value};

use crate::document::{check_document, Representation};
use crate::{check_did_syntax, Violation};

/// The prefix of every DID Resolution error type.
pub const ERROR_TYPE_PREFIX: &str = "https://www.w3.org/ns/did#";

/// The error type name of a result (`NOT_FOUND`, ...), if it carries an error.
pub fn error_name(metadata: &Value) -> Option<&str> {
    match metadata.get("error")? {
        Value::String(s) => Some(s.as_str()),
        Value::Object(o) => o
            .get("type")
            .and_then(Value::as_str)
            .map(|t| t.strip_prefix(ERROR_TYPE_PREFIX).unwrap_or(t)),
        _ => None,
    }
}

/// The HTTP status the binding gives a resolution or dereferencing result.
pub fn expected_status(result: &Value, metadata_member: &str, content_metadata: &str) -> u16 {
    let metadata = result.get(metadata_member).unwrap_or(&Value::Null);
    match error_name(metadata) {
        Some("INVALID_DID" | "INVALID_DID_URL" | "INVALID_OPTIONS") => 400,
        Some("NOT_FOUND") => 404,
        Some("REPRESENTATION_NOT_SUPPORTED") => 406,
        Some("METHOD_NOT_SUPPORTED" | "FEATURE_NOT_SUPPORTED") => 501,
        Some(_) => 500,
        None => {
            let deactivated = result
                .get(content_metadata)
                .and_then(|m| m.get("deactivated"))
                == Some(&Value::Bool(true));
            if deactivated {
                410
            } else {
                200
            }
        }
    }
}

/// Checks a full resolution result (`application/did-resolution`) for `did`, answered with HTTP
/// `status`. Returns every violation found.
pub fn check_resolution_result(did: &str, result: &Value, status: u16) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut fail =
        |section: &'static str, message: String| out.push(Violation { section, message });
    let Some(map) = result.as_object() else {
        return vec![Violation {
            section: "§7.1 DID Resolution",
            message: "a resolution result is a map".into(),
        }];
    };
    let metadata = map.get("didResolutionMetadata");
    if !metadata.is_some_and(Value::is_object) {
        fail(
            "§7.1.2 DID Resolution Metadata",
            "didResolutionMetadata must be a map".into(),
        );
    }
    let doc_meta = map.get("didDocumentMetadata");
    if !doc_meta.is_some_and(Value::is_object) {
        fail(
            "§7.1.3 DID Document Metadata",
            "didDocumentMetadata must be a map".into(),
        );
    }
    let metadata = metadata.cloned().unwrap_or(Value::Null);
    let document = map.get("didDocument").unwrap_or(&Value::Null);
    if metadata.get("error").is_some() {
        check_error(&metadata, &mut fail);
        if !document.is_null() {
            fail(
                "§7.1 DID Resolution",
                "an error result has a null didDocument".into(),
            );
        }
    } else if doc_meta.and_then(|m| m.get("deactivated")) == Some(&Value::Bool(true)) {
        // DID Resolution v1.0: a deactivated DID has no document and no error.
        if !document.is_null() && !document.is_object() {
            fail(
                "§7.1 DID Resolution",
                "didDocument must be a map or null".into(),
            );
        }
    } else {
        let representation = match metadata.get("contentType").and_then(Value::as_str) {
            Some("application/did+json") => Representation::Json,
            Some(_) => Representation::JsonLd,
            None => {
                fail(
                    "§7.1.2 DID Resolution Metadata",
                    "contentType must say how didDocument is represented (the HTTP binding's Content-Type follows it)".into(),
                );
                Representation::JsonLd
            }
        };
        out_extend(&mut fail, check_document(document, representation));
        if document.get("id").and_then(Value::as_str) != Some(did) {
            fail(
                "§7.1 DID Resolution",
                format!("didDocument.id must be the resolved DID {did}"),
            );
        }
    }
    if let Some(m) = doc_meta.and_then(Value::as_object) {
        check_document_metadata(did, m, &mut fail);
    }
    let expected = expected_status(result, "didResolutionMetadata", "didDocumentMetadata");
    if status != expected {
        fail(
            "DID Resolution HTTP(S) Binding",
            format!("this result goes out with HTTP {expected}, not {status}"),
        );
    }
    out
}

/// Checks a dereferencing result (`application/did-url-dereferencing`).
pub fn check_dereferencing_result(result: &Value, status: u16) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut fail =
        |section: &'static str, message: String| out.push(Violation { section, message });
    let section = "§7.2 DID URL Dereferencing";
    let metadata = result
        .get("dereferencingMetadata")
        .cloned()
        .unwrap_or(Value::Null);
    if !metadata.is_object() {
        fail(section, "dereferencingMetadata must be a map".into());
    }
    if !result.get("contentMetadata").is_some_and(Value::is_object) {
        fail(section, "contentMetadata must be a map".into());
    }
    if result.get("contentStream").is_none() {
        fail(section, "contentStream is required (null on error)".into());
    }
    if metadata.get("error").is_some() {
        check_error(&metadata, &mut fail);
    } else if !metadata.get("contentType").is_some_and(Value::is_string) {
        fail(
            section,
            "contentType must name the content's media type".into(),
        );
    }
    let expected = expected_status(result, "dereferencingMetadata", "contentMetadata");
    if status != expected {
        fail(
            "DID Resolution HTTP(S) Binding",
            format!("this result goes out with HTTP {expected}, not {status}"),
        );
    }
    out
}

fn out_extend(fail: &mut impl FnMut(&'static str, String), violations: Vec<Violation>) {
    for v in violations {
        fail(v.section, v.message);
    }
}

fn check_error(metadata: &Value, fail: &mut impl FnMut(&'static str, String)) {
    let section = "DID Resolution §Errors";
    match metadata.get("error") {
        Some(Value::Object(problem)) => {
            match problem.get("type").and_then(Value::as_str) {
                Some(t) => {
                    let name = t.strip_prefix(ERROR_TYPE_PREFIX).unwrap_or_default();
                    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
                    {
                        fail(
                            section,
                            format!(
                                "error type {t:?} must be {ERROR_TYPE_PREFIX}<UPPER_SNAKE_NAME>"
                            ),
                        );
                    }
                }
                None => fail(
                    section,
                    "an error is an RFC 9457 problem object with a type".into(),
                ),
            }
            for member in ["title", "detail"] {
                if problem.get(member).is_some_and(|v| !v.is_string()) {
                    fail(section, format!("problem {member} must be a string"));
                }
            }
        }
        Some(other) => fail(
            section,
            format!("error {other} must be an RFC 9457 problem object"),
        ),
        None => {}
    }
}

/// Checks the members of DID document metadata (DID Core §7.1.3, DID Resolution).
fn check_document_metadata(
    did: &str,
    meta: &Map<String, Value>,
    fail: &mut impl FnMut(&'static str, String),
) {
    let section = "§7.1.3 DID Document Metadata";
    for member in ["created", "updated", "nextUpdate"] {
        if let Some(v) = meta.get(member) {
            if !v.as_str().is_some_and(is_utc_datetime) {
                fail(
                    section,
                    format!("{member} {v} must be an XML datetime in UTC without sub-seconds"),
                );
            }
        }
    }
    for member in ["versionId", "nextVersionId"] {
        if meta.get(member).is_some_and(|v| !v.is_string()) {
            fail(section, format!("{member} must be a string"));
        }
    }
    if meta.get("deactivated").is_some_and(|v| !v.is_boolean()) {
        fail(section, "deactivated must be a boolean".into());
    }
    if meta.contains_key("nextVersionId") != meta.contains_key("nextUpdate") {
        fail(
            section,
            "nextUpdate and nextVersionId come together, for an older version".into(),
        );
    }
    let method = did.split(':').nth(1).unwrap_or_default();
    let same_method = |v: &Value| {
        v.as_str()
            .is_some_and(|d| check_did_syntax(d).is_ok() && d.split(':').nth(1) == Some(method))
    };
    if let Some(eq) = meta.get("equivalentId") {
        if !eq.as_array().is_some_and(|a| a.iter().all(same_method)) {
            fail(
                section,
                format!("equivalentId must be a set of {method} DIDs"),
            );
        }
    }
    if let Some(c) = meta.get("canonicalId") {
        if !same_method(c) {
            fail(
                section,
                format!("canonicalId must be a single {method} DID"),
            );
        }
    }
}

/// `YYYY-MM-DDThh:mm:ssZ`.
pub fn is_utc_datetime(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 20
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DID: &str = "did:bid:efJgt44mNDewKK1VEN454R17cjso3mSG";

    fn ok_result() -> Value {
        json!({
            "didDocument": {"@context": ["https://www.w3.org/ns/did/v1"], "id": DID},
            "didResolutionMetadata": {"contentType": "application/did+ld+json"},
            "didDocumentMetadata": {"created": "2026-11-21T10:00:00Z", "updated": "2026-11-21T10:00:00Z",
                                    "versionId": "1", "deactivated": false}
        })
    }

    #[test]
    fn results_pass_with_their_status_and_fail_with_another() {
        assert_eq!(check_resolution_result(DID, &ok_result(), 200), vec![]);
        assert_eq!(check_resolution_result(DID, &ok_result(), 404).len(), 1);
        let not_found = json!({
            "didDocument": null,
            "didResolutionMetadata": {"error": {"type": "https://www.w3.org/ns/did#NOT_FOUND", "title": "x"}},
            "didDocumentMetadata": {}
        });
        assert_eq!(check_resolution_result(DID, &not_found, 404), vec![]);
        let gone = json!({
            "didDocument": null,
            "didResolutionMetadata": {},
            "didDocumentMetadata": {"deactivated": true}
        });
        assert_eq!(check_resolution_result(DID, &gone, 410), vec![]);
    }

    #[test]
    fn broken_results_name_their_rule() {
        let mut r = ok_result();
        r["didDocumentMetadata"]["created"] = json!("2026-11-21T10:00:00.123Z");
        r["didDocumentMetadata"]["deactivated"] = json!("false");
        r["didDocumentMetadata"]["versionId"] = json!(1);
        r["didDocumentMetadata"]["equivalentId"] = json!(["did:web:x"]);
        assert_eq!(check_resolution_result(DID, &r, 200).len(), 4);
        let mut r = ok_result();
        r["didDocument"]["id"] = json!("did:bid:other");
        assert!(!check_resolution_result(DID, &r, 200).is_empty());
        let old_style = json!({
            "didDocument": null, "didResolutionMetadata": {"error": "notFound"}, "didDocumentMetadata": {}
        });
        assert!(!check_resolution_result(DID, &old_style, 404).is_empty());
        let lower = json!({
            "didDocument": null,
            "didResolutionMetadata": {"error": {"type": "https://www.w3.org/ns/did#notFound"}},
            "didDocumentMetadata": {}
        });
        assert!(!check_resolution_result(DID, &lower, 500).is_empty());
    }

    #[test]
    fn dereferencing_results() {
        let ok = json!({"dereferencingMetadata": {"contentType": "application/did+ld+json"},
                        "contentStream": {"id": "x"}, "contentMetadata": {}});
        assert_eq!(check_dereferencing_result(&ok, 200), vec![]);
        let bad = json!({"dereferencingMetadata": {}, "contentMetadata": {}});
        assert_eq!(check_dereferencing_result(&bad, 200).len(), 2);
    }
}
