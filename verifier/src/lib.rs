//! Verifiable credential and presentation verification for sparkid, as a library: a request
//! body in, an [`Outcome`] (the W3C VC API's verification result) out.
//!
//! A credential's proof is verified in one of two formats:
//! - W3C Data Integrity (`proof.type`), by spruceid's ssi ([`data_integrity`]);
//! - BIF's own (`proof` = `{creator, signatureValue}`: canonical JSON, Ed25519, BIF Base58;
//!   [`bif`]).
//!
//! Either way the signing key is found by resolving its DID through sparkid's own resolver
//! ([`dids::SparkidDids`]): a `did:bid` issuer is checked against the chain, through the same
//! cache as every resolution, and did:key, did:web, did:jwk, did:pkh through the methods the
//! resolver answers. The key must belong to the credential's `issuer` (a presentation's
//! `holder`). Then the validity period and the status are checked ([`validity`]); the answer
//! names each check that passed and a problem for each that failed.
//!
//! It knows no HTTP framework: the daemon's verifier door (`sparkid/src/doors/verifier.rs`)
//! hands it the body and sends what it answers.
#![deny(missing_docs)]

pub mod bif;
pub mod data_integrity;
pub mod dids;
pub mod outcome;
pub mod validity;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};
use sparkid_resolver::resolution::Resolver;
use time::OffsetDateTime;

pub use crate::dids::SparkidDids;
use crate::outcome::{types, ALL_CHECKS, EXPIRATION, PROOF, STATUS};
pub use crate::outcome::{Outcome, Problem};

/// The largest request body read, in bytes (256 KiB).
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// The most credentials one presentation may carry.
pub const MAX_CREDENTIALS: usize = 32;
/// The most proofs one credential or presentation may carry.
pub const MAX_PROOFS: usize = 8;
/// How many verifications run at once; more wait their turn (each holds a blocking thread:
/// ssi's futures are not `Send`, so they run on a blocking thread of their own).
pub const MAX_CONCURRENT: usize = 16;

/// `options` of a verification request (VC API).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VerifyOptions {
    /// The checks to run, among `proof`, `expiration`, `status`; all by default.
    pub checks: Option<Vec<String>>,
    /// The challenge a presentation's proof must carry.
    pub challenge: Option<String>,
    /// The domain a presentation's proof must carry.
    pub domain: Option<String>,
}

/// Verifies credentials and presentations.
#[derive(Clone)]
pub struct Verifier {
    dids: SparkidDids,
    permits: Arc<tokio::sync::Semaphore>,
}

impl Verifier {
    /// A verifier resolving DIDs through `resolver`.
    pub fn new(resolver: Resolver) -> Verifier {
        Verifier {
            dids: SparkidDids::new(resolver),
            permits: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT)),
        }
    }

    /// `POST /credentials/verify`: `{"verifiableCredential": {…}, "options": {…}}`. A request
    /// that cannot be read is an `Err` (a 400 problem); a credential that does not verify is an
    /// [`Outcome`] with `verified: false`.
    pub async fn verify_credential(&self, body: &[u8]) -> Result<Outcome, Problem> {
        let (credential, options) = read_request(body, "verifiableCredential")?;
        let checks = requested_checks(&options)?;
        self.run(move |dids| async move {
            verify_one_credential(&dids, &credential, &checks, OffsetDateTime::now_utc()).await
        })
        .await
    }

    /// `POST /presentations/verify`: `{"verifiablePresentation": {…}, "options": {…}}`: the
    /// presentation's proof (by its `holder`, with `options.challenge` and `options.domain`),
    /// then each credential in it, whose outcomes are in `credentialResults`.
    pub async fn verify_presentation(&self, body: &[u8]) -> Result<Outcome, Problem> {
        let (presentation, options) = read_request(body, "verifiablePresentation")?;
        let checks = requested_checks(&options)?;
        let credentials: Vec<Value> = match presentation.get("verifiableCredential") {
            None => Vec::new(),
            Some(Value::Array(list)) => list.clone(),
            Some(one) => vec![one.clone()],
        };
        if credentials.len() > MAX_CREDENTIALS {
            return Err(bad_request(format!(
                "a presentation carries at most {MAX_CREDENTIALS} credentials here; this one \
                 has {}",
                credentials.len()
            )));
        }
        self.run(move |dids| async move {
            let mut outcome = Outcome::default();
            let holder = id_of(presentation.get("holder"));
            if checks.iter().any(|c| c == PROOF) {
                match verify_proof(
                    &dids,
                    &presentation,
                    data_integrity::Kind::Presentation,
                    holder.as_deref(),
                    options.challenge.as_deref(),
                    options.domain.as_deref(),
                )
                .await
                {
                    Ok(()) => outcome.pass(PROOF),
                    Err(problem) => outcome.fail(problem),
                }
            }
            let now = OffsetDateTime::now_utc();
            for credential in &credentials {
                let result = if credential.is_object() {
                    verify_one_credential(&dids, credential, &checks, now).await
                } else {
                    let mut failed = Outcome::default();
                    failed.fail(Problem::new(
                        types::PARSING_ERROR,
                        None,
                        "only embedded (JSON object) credentials are verified here, not \
                         enveloped or JWT ones",
                    ));
                    failed.conclude()
                };
                outcome.credential_results.push(result);
            }
            outcome.conclude()
        })
        .await
    }

    /// Runs a verification on a blocking thread of its own, within the concurrency bound.
    async fn run<F, Fut>(&self, verification: F) -> Result<Outcome, Problem>
    where
        F: FnOnce(SparkidDids) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Outcome>,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| internal("the verifier is shutting down"))?;
        let dids = self.dids.clone();
        let handle = tokio::runtime::Handle::current();
        let outcome = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            handle.block_on(verification(dids))
        })
        .await
        .map_err(|e| internal(format!("the verification did not finish: {e}")))?;
        Ok(outcome)
    }
}

/// Verifies one credential: the requested checks, in order.
async fn verify_one_credential(
    dids: &SparkidDids,
    credential: &Value,
    checks: &[String],
    now: OffsetDateTime,
) -> Outcome {
    let mut outcome = Outcome::default();
    let wants = |check: &str| checks.iter().any(|c| c == check);
    if wants(PROOF) {
        let issuer = id_of(credential.get("issuer"));
        let result = match issuer {
            None => Err(Problem::new(
                types::MALFORMED_VALUE_ERROR,
                Some(PROOF),
                "the credential has no issuer (a DID, or an object with one as id) to hold its \
                 proof to",
            )),
            Some(issuer) => {
                verify_proof(
                    dids,
                    credential,
                    data_integrity::Kind::Credential,
                    Some(&issuer),
                    None,
                    None,
                )
                .await
            }
        };
        match result {
            Ok(()) => outcome.pass(PROOF),
            Err(problem) => outcome.fail(problem),
        }
    }
    if wants(EXPIRATION) {
        match validity::check_period(credential, now) {
            Ok(_) => outcome.pass(EXPIRATION),
            Err(problem) => outcome.fail(problem),
        }
    }
    if wants(STATUS) {
        match validity::check_status(credential) {
            Ok(_) => outcome.pass(STATUS),
            Err(problem) => outcome.fail(problem),
        }
    }
    outcome.conclude()
}

/// Verifies a document's proofs in the format they are in, held to `signer`.
async fn verify_proof(
    dids: &SparkidDids,
    document: &Value,
    kind: data_integrity::Kind,
    signer: Option<&str>,
    challenge: Option<&str>,
    domain: Option<&str>,
) -> Result<(), Problem> {
    let Some(proof) = document.get("proof") else {
        return Err(Problem::new(
            types::CRYPTOGRAPHIC_SECURITY_ERROR,
            Some(PROOF),
            "the document has no proof",
        ));
    };
    if proof.as_array().is_some_and(|list| list.len() > MAX_PROOFS) {
        return Err(Problem::new(
            types::MALFORMED_VALUE_ERROR,
            Some(PROOF),
            format!("at most {MAX_PROOFS} proofs are verified here"),
        ));
    }
    if bif::is_bif_proof(proof) {
        if challenge.is_some() || domain.is_some() {
            return Err(Problem::new(
                types::CRYPTOGRAPHIC_SECURITY_ERROR,
                Some(PROOF),
                "a BIF proof carries no challenge or domain to hold it to",
            ));
        }
        return bif::verify(dids, document, signer).await;
    }
    data_integrity::verify(dids, document, kind, signer, challenge, domain).await
}

/// The DID of an `issuer` or `holder`: a string, or an object's `id`.
fn id_of(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Object(map) => map.get("id").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// Reads `{"<member>": {…}, "options": {…}}`.
fn read_request(body: &[u8], member: &str) -> Result<(Value, VerifyOptions), Problem> {
    if body.len() > MAX_REQUEST_BYTES {
        return Err(bad_request(format!(
            "the request is {} bytes; at most {MAX_REQUEST_BYTES} are read",
            body.len()
        )));
    }
    let request: Map<String, Value> = serde_json::from_slice(body).map_err(|e| {
        Problem::new(
            types::PARSING_ERROR,
            None,
            format!("the request body is not a JSON object: {e}"),
        )
    })?;
    if let Some(unknown) = request
        .keys()
        .find(|k| k.as_str() != member && k.as_str() != "options")
    {
        return Err(bad_request(format!(
            "unknown member {unknown:?}: the request is {{\"{member}\": {{…}}, \"options\": {{…}}}}"
        )));
    }
    let document = match request.get(member) {
        Some(Value::Object(_)) => request[member].clone(),
        Some(Value::String(_)) => {
            return Err(Problem::new(
                types::PARSING_ERROR,
                None,
                format!(
                    "{member} is a string: enveloped and JWT-secured ones are not verified here, \
                     only embedded proofs (a JSON object with \"proof\")"
                ),
            ))
        }
        Some(_) => return Err(bad_request(format!("{member} must be a JSON object"))),
        None => return Err(bad_request(format!("the request has no {member:?}"))),
    };
    let options = match request.get("options") {
        None | Some(Value::Null) => VerifyOptions::default(),
        Some(value) => serde_json::from_value(value.clone())
            .map_err(|e| bad_request(format!("options: {e}")))?,
    };
    Ok((document, options))
}

/// The checks `options.checks` asks for (all by default); an unknown one is refused.
fn requested_checks(options: &VerifyOptions) -> Result<Vec<String>, Problem> {
    let Some(checks) = &options.checks else {
        return Ok(ALL_CHECKS.iter().map(|c| c.to_string()).collect());
    };
    if let Some(unknown) = checks.iter().find(|c| !ALL_CHECKS.contains(&c.as_str())) {
        return Err(bad_request(format!(
            "options.checks: {unknown:?} is not a check here; they are {}",
            ALL_CHECKS.join(", ")
        )));
    }
    Ok(checks.clone())
}

fn bad_request(detail: impl Into<String>) -> Problem {
    Problem::new(types::MALFORMED_VALUE_ERROR, None, detail)
}

fn internal(detail: impl Into<String>) -> Problem {
    Problem::new("about:blank", None, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_strictly() {
        let member = "verifiableCredential";
        let e = read_request(b"[]", member).unwrap_err();
        assert_eq!(e.kind, types::PARSING_ERROR);
        let e = read_request(br#"{"verifiableCredential": {}, "x": 1}"#, member).unwrap_err();
        assert!(e.detail.contains("unknown member \"x\""), "{}", e.detail);
        let e = read_request(br#"{"verifiableCredential": "eyJ..."}"#, member).unwrap_err();
        assert!(e.detail.contains("JWT"), "{}", e.detail);
        let e = read_request(br#"{}"#, member).unwrap_err();
        assert!(e.detail.contains("has no"), "{}", e.detail);
        let e = read_request(
            br#"{"verifiableCredential": {}, "options": {"bogus": 1}}"#,
            member,
        )
        .unwrap_err();
        assert!(e.detail.contains("bogus"), "{}", e.detail);
        let big = vec![b' '; MAX_REQUEST_BYTES + 1];
        assert!(read_request(&big, member).is_err());
        let (_, options) = read_request(
            br#"{"verifiableCredential": {}, "options": {"checks": ["proof"]}}"#,
            member,
        )
        .unwrap();
        assert_eq!(requested_checks(&options).unwrap(), vec!["proof"]);
        let options = VerifyOptions {
            checks: Some(vec!["nope".into()]),
            ..VerifyOptions::default()
        };
        assert!(requested_checks(&options).is_err());
    }
}
