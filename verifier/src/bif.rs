//! BIF's own credential proof (`reference/bid.md` §7): `proof` is `{creator, signatureValue}`
//! (or a list of them), the signature an Ed25519 signature in BIF Base58 over the canonical
//! JSON of the credential without `proof` ([`sparkid_bid::proof`]); `creator` names a key of
//! the issuer's DID document.

use serde_json::Value;
use sparkid_bid::keys::PublicKey;
use sparkid_bid::proof::verify_document;

use crate::dids::SparkidDids;
use crate::outcome::{types, Problem, PROOF};

/// Whether `proof` is in BIF's format (no `type`, a `creator` and a `signatureValue`).
pub fn is_bif_proof(proof: &Value) -> bool {
    let one = |p: &Value| {
        p.get("type").is_none() && p.get("creator").is_some() && p.get("signatureValue").is_some()
    };
    match proof {
        Value::Array(list) => !list.is_empty() && list.iter().all(one),
        other => one(other),
    }
}

/// Verifies every BIF proof of `document` whose expected signer is `signer` (the issuer's or
/// holder's DID, when the document names one).
pub async fn verify(
    dids: &SparkidDids,
    document: &Value,
    signer: Option<&str>,
) -> Result<(), Problem> {
    let proofs: Vec<&Value> = match document.get("proof") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one) => vec![one],
        None => return Err(crypto("the document has no proof")),
    };
    for proof in proofs {
        let creator = proof
            .get("creator")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("proof.creator must be a DID URL string"))?;
        let (did, fragment) = creator.split_once('#').ok_or_else(|| {
            malformed(format!(
                "proof.creator {creator:?} must name a key: <DID>#<key id>"
            ))
        })?;
        if let Some(signer) = signer {
            if did != signer {
                return Err(crypto(format!(
                    "proof.creator {creator:?} is a key of {did}, not of the issuer {signer}"
                )));
            }
        }
        let document_of_creator = dids
            .document(did)
            .await
            .map_err(|e| crypto(format!("the creator's DID {did} does not resolve: {e}")))?;
        let key = find_key(&document_of_creator, did, fragment).ok_or_else(|| {
            crypto(format!(
                "{did} has no Ed25519 key #{fragment} it may sign with (authentication or \
                 assertionMethod)"
            ))
        })?;
        // `verify_document` reads the one proof object; a list's entries all sign the same bytes.
        let mut single = document.clone();
        if let Some(map) = single.as_object_mut() {
            map.insert("proof".into(), proof.clone());
        }
        verify_document(&single, &key).map_err(|e| crypto(format!("{creator}: {e}")))?;
    }
    Ok(())
}

/// The Ed25519 key `did#fragment` of `document`, when a relationship that signs
/// (`assertionMethod`, `authentication`) lists it.
fn find_key(document: &Value, did: &str, fragment: &str) -> Option<PublicKey> {
    let matches = |id: &str| match id.split_once('#') {
        Some((base, f)) => f == fragment && (base.is_empty() || base == did),
        None => false,
    };
    let listed = ["assertionMethod", "authentication"].iter().any(|rel| {
        document
            .get(*rel)
            .and_then(Value::as_array)
            .is_some_and(|list| {
                list.iter().any(|entry| match entry {
                    Value::String(id) => matches(id),
                    other => other.get("id").and_then(Value::as_str).is_some_and(matches),
                })
            })
    });
    if !listed {
        return None;
    }
    let method = document
        .get("verificationMethod")
        .and_then(Value::as_array)?
        .iter()
        .find(|vm| vm.get("id").and_then(Value::as_str).is_some_and(matches))?;
    if let Some(multibase) = method.get("publicKeyMultibase").and_then(Value::as_str) {
        let bytes = sparkid_bid::base58::BITCOIN
            .decode_at_most(multibase.strip_prefix('z')?, 64)
            .ok()?;
        let raw = bytes.strip_prefix(&[0xed, 0x01])?;
        let mut encoded = vec![0xb0, 0x65, 0x66];
        encoded.extend_from_slice(raw);
        return PublicKey::from_encoded_bytes(&encoded).ok();
    }
    let hex = method.get("publicKeyHex").and_then(Value::as_str)?;
    PublicKey::from_encoded(hex).ok()
}

fn crypto(detail: impl Into<String>) -> Problem {
    Problem::new(types::CRYPTOGRAPHIC_SECURITY_ERROR, Some(PROOF), detail)
}

fn malformed(detail: impl Into<String>) -> Problem {
    Problem::new(types::MALFORMED_VALUE_ERROR, Some(PROOF), detail)
}
