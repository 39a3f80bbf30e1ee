//! Canonical JSON and document proofs (\[RESPROTO\] §5).
//!
//! To sign a document: drop `proof`, sort object keys recursively (by UTF-16 code units, arrays
//! keep their order), serialize compactly as UTF-8, sign with Ed25519, write the signature in BIF
//! Base58 as `proof.signatureValue`, and the key id as `proof.creator`.

use serde_json::{Map, Value};
use thiserror::Error;

use crate::keys::{KeyError, PrivateKey, PublicKey, Signature};

/// Why a document proof is missing or does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProofError {
    /// The document is not a JSON object.
    #[error("a signed document must be a JSON object")]
    NotAnObject,
    /// No `proof` member.
    #[error("the document has no \"proof\"")]
    Missing,
    /// `proof.creator` or `proof.signatureValue` is missing or not a string.
    #[error("\"proof\" needs string members \"creator\" and \"signatureValue\"")]
    Malformed,
    /// The signature value cannot be read.
    #[error("proof.signatureValue: {0}")]
    BadSignature(KeyError),
    /// The signature does not verify over the canonical document.
    #[error(
        "proof.signatureValue does not verify over the canonical document with the creator's key"
    )]
    VerificationFailed,
}

/// Canonical JSON text of a value: keys sorted recursively, no whitespace.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::with_capacity(256);
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

fn write_string(s: &str, out: &mut String) {
    // serde_json escapes only `"`, `\` and control characters: a string without them is copied
    // as is, sparing a JSON value per string (this runs for every transaction a block checks).
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
        return;
    }
    // serde_json escapes exactly what JSON requires, like JSON.stringify and Python's
    // json.dumps(ensure_ascii=False).
    out.push_str(&Value::String(s.to_owned()).to_string());
}

/// The bytes a document proof signs: the canonical JSON of the document without `proof`.
pub fn signing_bytes(document: &Value) -> Result<Vec<u8>, ProofError> {
    let map = document.as_object().ok_or(ProofError::NotAnObject)?;
    let mut without: Map<String, Value> = map.clone();
    without.remove("proof");
    Ok(canonical_json(&Value::Object(without)).into_bytes())
}

/// Signs a document in place: sets `proof` to `{creator, signatureValue}`.
pub fn sign_document(
    document: &mut Value,
    creator: &str,
    key: &PrivateKey,
) -> Result<(), ProofError> {
    let bytes = signing_bytes(document)?;
    let signature = key.sign(&bytes);
    let map = document.as_object_mut().ok_or(ProofError::NotAnObject)?;
    map.insert(
        "proof".into(),
        serde_json::json!({ "creator": creator, "signatureValue": signature.to_base58() }),
    );
    Ok(())
}

/// The `proof.creator` of a document.
pub fn proof_creator(document: &Value) -> Result<&str, ProofError> {
    let proof = document.get("proof").ok_or(ProofError::Missing)?;
    proof
        .get("creator")
        .and_then(Value::as_str)
        .ok_or(ProofError::Malformed)
}

/// Verifies a document's proof with the given key (the caller resolves `proof.creator` to it).
pub fn verify_document(document: &Value, key: &PublicKey) -> Result<(), ProofError> {
    let proof = document.get("proof").ok_or(ProofError::Missing)?;
    let sig_text = proof
        .get("signatureValue")
        .and_then(Value::as_str)
        .ok_or(ProofError::Malformed)?;
    let signature = Signature::parse(sig_text).map_err(ProofError::BadSignature)?;
    let bytes = signing_bytes(document)?;
    key.verify(&bytes, &signature)
        .map_err(|_| ProofError::VerificationFailed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sorts_keys_recursively_and_keeps_array_order() {
        let v = json!({"b": [3, {"z": 1, "a": "é\n"}], "a": null, "A": true});
        assert_eq!(
            canonical_json(&v),
            r#"{"A":true,"a":null,"b":[3,{"a":"é\n","z":1}]}"#
        );
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut samples: Vec<String> = (0u8..0x80).map(|b| format!("a{}b", b as char)).collect();
        samples.extend(["", "plain", "é中文\u{1F600}\u{2028}\u{7f}", "\"\\/"].map(String::from));
        for s in samples {
            assert_eq!(
                canonical_json(&json!(s)),
                serde_json::to_string(&s).unwrap()
            );
        }
    }

    #[test]
    fn sorts_by_utf16_code_units_not_code_points() {
        // U+FF61 sorts after U+1F600 in UTF-16 (0xD83D < 0xFF61 is false: 0xFF61 > 0xD83D),
        // so the emoji (surrogate 0xD83D) comes first.
        let v = json!({"\u{FF61}": 1, "\u{1F600}": 2});
        assert_eq!(canonical_json(&v), "{\"\u{1F600}\":2,\"\u{FF61}\":1}");
    }

    #[test]
    fn sign_then_verify_and_detect_tampering() {
        let key = PrivateKey::generate();
        let mut doc = json!({"id": "x", "n": 1});
        sign_document(&mut doc, "x#key-1", &key).unwrap();
        assert_eq!(proof_creator(&doc).unwrap(), "x#key-1");
        verify_document(&doc, &key.public_key()).unwrap();
        doc["n"] = json!(2);
        assert_eq!(
            verify_document(&doc, &key.public_key()),
            Err(ProofError::VerificationFailed)
        );
    }
}
