//! What a verification answers, in the W3C VC API's shape: the checks that passed, and a
//! problem (RFC 9457 details, typed with the VC Data Model's error URLs) for each that failed.

use serde::Serialize;

/// The cryptographic proof check.
pub const PROOF: &str = "proof";
/// The validity period check (`validFrom`/`validUntil`, `issuanceDate`/`expirationDate`,
/// BIF's `effectiveDate`).
pub const EXPIRATION: &str = "expiration";
/// The revocation or suspension status check (`credentialStatus`).
pub const STATUS: &str = "status";
/// Every check, in the order they run; the default of `options.checks`.
pub const ALL_CHECKS: [&str; 3] = [PROOF, EXPIRATION, STATUS];

/// The VC Data Model 2.0's error types (§ "Processing errors").
pub mod types {
    /// The input is not a credential or presentation that can be read.
    pub const PARSING_ERROR: &str = "https://www.w3.org/TR/vc-data-model#PARSING_ERROR";
    /// A proof does not verify, or its key cannot be found.
    pub const CRYPTOGRAPHIC_SECURITY_ERROR: &str =
        "https://www.w3.org/TR/vc-data-model#CRYPTOGRAPHIC_SECURITY_ERROR";
    /// A member has a value of the wrong form.
    pub const MALFORMED_VALUE_ERROR: &str =
        "https://www.w3.org/TR/vc-data-model#MALFORMED_VALUE_ERROR";
    /// A value is out of its range: a credential outside its validity period.
    pub const RANGE_ERROR: &str = "https://www.w3.org/TR/vc-data-model#RANGE_ERROR";
}

/// One problem: RFC 9457 problem details, with the check it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// A VC Data Model error type URL ([`types`]).
    #[serde(rename = "type")]
    pub kind: String,
    /// A short title of the kind.
    pub title: String,
    /// What exactly failed.
    pub detail: String,
    /// The check that failed ([`PROOF`], [`EXPIRATION`], [`STATUS`]), if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
}

impl Problem {
    /// A problem of `kind` found by `check`.
    pub fn new(kind: &str, check: Option<&str>, detail: impl Into<String>) -> Problem {
        let title = match kind {
            types::PARSING_ERROR => "Parsing error",
            types::CRYPTOGRAPHIC_SECURITY_ERROR => "Cryptographic security error",
            types::MALFORMED_VALUE_ERROR => "Malformed value error",
            types::RANGE_ERROR => "Range error",
            _ => "Verification error",
        };
        Problem {
            kind: kind.to_string(),
            title: title.to_string(),
            detail: detail.into(),
            check: check.map(str::to_string),
        }
    }
}

/// The answer to a verification request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// True when every requested check ran and passed.
    pub verified: bool,
    /// The checks that passed.
    pub checks: Vec<String>,
    /// What did not fail but is worth knowing (a check with nothing to check).
    pub warnings: Vec<Problem>,
    /// Why verification failed: one problem per failed check.
    pub errors: Vec<Problem>,
    /// For a presentation: each credential's outcome, in order.
    #[serde(
        rename = "credentialResults",
        skip_serializing_if = "Vec::is_empty",
        default
    )]
    pub credential_results: Vec<Outcome>,
}

impl Outcome {
    /// Records that `check` passed.
    pub fn pass(&mut self, check: &str) {
        if !self.checks.iter().any(|c| c == check) {
            self.checks.push(check.to_string());
        }
    }

    /// Records a failure.
    pub fn fail(&mut self, problem: Problem) {
        self.errors.push(problem);
    }

    /// Records a warning.
    pub fn warn(&mut self, problem: Problem) {
        self.warnings.push(problem);
    }

    /// Sets `verified` from the errors (and the credentials' outcomes).
    pub fn conclude(mut self) -> Outcome {
        self.verified =
            self.errors.is_empty() && self.credential_results.iter().all(|c| c.verified);
        self
    }
}
