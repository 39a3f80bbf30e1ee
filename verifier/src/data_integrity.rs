//! W3C Data Integrity proofs (`DataIntegrityProof` with `eddsa-rdfc-2022`, `ecdsa-rdfc-2019`,
//! `Ed25519Signature2020`, …), verified by ssi: the document is read as a VC Data Model 1.1 or
//! 2.0 credential or presentation, its JSON-LD contexts come from ssi's built-in loader (no
//! network), and each proof's key is dereferenced through [`SparkidDids`].

use serde_json::Value;
use ssi_claims::data_integrity::{AnySuite, DataIntegrity};
use ssi_claims::vc::syntax::{AnyJsonCredential, AnyJsonPresentation};
use ssi_claims::{ValidateProof, VerificationParameters};
use ssi_dids_core::VerificationMethodDIDResolver;
use ssi_verification_methods::AnyMethod;

use crate::dids::SparkidDids;
use crate::outcome::{types, Problem, PROOF};

/// What is verified: a credential, or a presentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A verifiable credential.
    Credential,
    /// A verifiable presentation.
    Presentation,
}

/// Verifies the Data Integrity proofs of `document` with ssi. `expected` is the DID the proofs'
/// keys must belong to (the issuer, or the holder); `challenge` and `domain`, when given, must
/// be the proofs'.
pub async fn verify(
    dids: &SparkidDids,
    document: &Value,
    kind: Kind,
    expected: Option<&str>,
    challenge: Option<&str>,
    domain: Option<&str>,
) -> Result<(), Problem> {
    let proofs: Vec<&Value> = match document.get("proof") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(one) => vec![one],
        None => return Err(crypto("the document has no proof")),
    };
    for proof in &proofs {
        let method = proof
            .get("verificationMethod")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("proof.verificationMethod must be a DID URL string"))?;
        if let Some(expected) = expected {
            let did = method.split('#').next().unwrap_or_default();
            if did != expected {
                return Err(crypto(format!(
                    "proof.verificationMethod {method:?} is a key of {did}, not of {expected}"
                )));
            }
        }
        // The key must be one its DID lets prove this purpose (ssi dereferences the key but
        // does not look at the relationship).
        let purpose = proof
            .get("proofPurpose")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed("proof.proofPurpose must be a string"))?;
        let wanted = match kind {
            Kind::Credential => "assertionMethod",
            Kind::Presentation => "authentication",
        };
        if purpose != wanted {
            return Err(crypto(format!(
                "proof.proofPurpose is {purpose:?}; a {} is proven for {wanted:?}",
                match kind {
                    Kind::Credential => "credential",
                    Kind::Presentation => "presentation",
                }
            )));
        }
        let (did, _) = method.split_once('#').unwrap_or((method, ""));
        let controller = dids
            .document(did)
            .await
            .map_err(|e| crypto(format!("the key's DID {did} does not resolve: {e}")))?;
        if !lists(&controller, wanted, did, method) {
            return Err(crypto(format!(
                "{method} is not one of {did}'s {wanted} keys"
            )));
        }
        if let Some(challenge) = challenge {
            if proof.get("challenge").and_then(Value::as_str) != Some(challenge) {
                return Err(crypto(format!(
                    "the proof's challenge is not the expected {challenge:?}"
                )));
            }
        }
        if let Some(domain) = domain {
            let matches = match proof.get("domain") {
                Some(Value::String(d)) => d == domain,
                Some(Value::Array(list)) => list.iter().any(|d| d.as_str() == Some(domain)),
                _ => false,
            };
            if !matches {
                return Err(crypto(format!(
                    "the proof's domain is not the expected {domain:?}"
                )));
            }
        }
    }
    let params = VerificationParameters::from_resolver(VerificationMethodDIDResolver::<
        SparkidDids,
        AnyMethod,
    >::new(dids.clone()));
    let validity = match kind {
        Kind::Credential => {
            let vc: DataIntegrity<AnyJsonCredential, AnySuite> =
                serde_json::from_value(document.clone())
                    .map_err(|e| parsing(format!("not a Data Integrity credential: {e}")))?;
            vc.proofs.validate_proof(&params, &vc.claims).await
        }
        Kind::Presentation => {
            let vp: DataIntegrity<AnyJsonPresentation, AnySuite> =
                serde_json::from_value(document.clone())
                    .map_err(|e| parsing(format!("not a Data Integrity presentation: {e}")))?;
            vp.proofs.validate_proof(&params, &vp.claims).await
        }
    };
    match validity {
        Ok(Ok(())) => Ok(()),
        Ok(Err(invalid)) => Err(crypto(format!("the proof does not verify: {invalid}"))),
        Err(e) => Err(crypto(format!("the proof cannot be verified: {e}"))),
    }
}

/// Whether `relationship` of `document` (the DID `did`'s) lists the key `method`, by reference
/// (absolute or `#relative`) or embedded.
fn lists(document: &Value, relationship: &str, did: &str, method: &str) -> bool {
    let same = |id: &str| id == method || (id.starts_with('#') && format!("{did}{id}") == method);
    document
        .get(relationship)
        .and_then(Value::as_array)
        .is_some_and(|list| {
            list.iter().any(|entry| match entry {
                Value::String(id) => same(id),
                other => other.get("id").and_then(Value::as_str).is_some_and(same),
            })
        })
}

fn crypto(detail: impl Into<String>) -> Problem {
    Problem::new(types::CRYPTOGRAPHIC_SECURITY_ERROR, Some(PROOF), detail)
}

fn malformed(detail: impl Into<String>) -> Problem {
    Problem::new(types::MALFORMED_VALUE_ERROR, Some(PROOF), detail)
}

fn parsing(detail: impl Into<String>) -> Problem {
    Problem::new(types::PARSING_ERROR, Some(PROOF), detail)
}
