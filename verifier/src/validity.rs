//! The checks beside the proof: the validity period, and the status.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::outcome::{types, Problem, EXPIRATION, STATUS};

/// Members that open a credential's validity period: VC 2.0 `validFrom`, VC 1.1
/// `issuanceDate`, BIF's `effectiveDate`.
const STARTS: [&str; 3] = ["validFrom", "issuanceDate", "effectiveDate"];
/// Members that close it: VC 2.0 `validUntil`, VC 1.1 `expirationDate`, BIF's
/// `expirationDate` too.
const ENDS: [&str; 2] = ["validUntil", "expirationDate"];

/// Checks that `now` is within the credential's validity period. `Ok(false)` when the
/// credential states no period at all (nothing was checked).
pub fn check_period(credential: &Value, now: OffsetDateTime) -> Result<bool, Problem> {
    let mut stated = false;
    for member in STARTS {
        if let Some(start) = date(credential, member)? {
            stated = true;
            if now < start {
                return Err(Problem::new(
                    types::RANGE_ERROR,
                    Some(EXPIRATION),
                    format!(
                        "the credential is not valid yet: {member} is {}",
                        text(credential, member)
                    ),
                ));
            }
        }
    }
    for member in ENDS {
        if let Some(end) = date(credential, member)? {
            stated = true;
            if now > end {
                return Err(Problem::new(
                    types::RANGE_ERROR,
                    Some(EXPIRATION),
                    format!(
                        "the credential has expired: {member} is {}",
                        text(credential, member)
                    ),
                ));
            }
        }
    }
    Ok(stated)
}

fn text<'a>(credential: &'a Value, member: &str) -> &'a str {
    credential
        .get(member)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The date `member` states, if it is there; a value that is not an RFC 3339 date-time (XML
/// Schema dateTimeStamp, as the data model asks) is malformed.
fn date(credential: &Value, member: &str) -> Result<Option<OffsetDateTime>, Problem> {
    let Some(value) = credential.get(member) else {
        return Ok(None);
    };
    let malformed = || {
        Problem::new(
            types::MALFORMED_VALUE_ERROR,
            Some(EXPIRATION),
            format!("{member} must be a date-time with a time zone, e.g. 2024-01-01T00:00:00Z; it is {value}"),
        )
    };
    let text = value.as_str().ok_or_else(malformed)?;
    OffsetDateTime::parse(text, &Rfc3339)
        .map(Some)
        .map_err(|_| malformed())
}

/// The status check: a credential without `credentialStatus` has nothing that could revoke
/// it (`Ok(false)`); status lists are not fetched here, so a credential that has one cannot be
/// said to be unrevoked and fails, naming its type (ask without the `status` check to accept
/// that).
pub fn check_status(credential: &Value) -> Result<bool, Problem> {
    let Some(status) = credential.get("credentialStatus") else {
        return Ok(false);
    };
    let kinds: Vec<String> = match status {
        Value::Array(list) => list.iter().map(status_type).collect(),
        one => vec![status_type(one)],
    };
    Err(Problem::new(
        types::RANGE_ERROR,
        Some(STATUS),
        format!(
            "credentialStatus of type {} cannot be checked here (status lists are not \
             fetched); ask with options.checks without \"status\" to verify the rest",
            kinds.join(", ")
        ),
    ))
}

fn status_type(status: &Value) -> String {
    match status.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(other) => other.to_string(),
        None => "(none)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    #[test]
    fn periods_are_checked_against_now() {
        let now = datetime!(2025-06-01 00:00 UTC);
        let ok = json!({"validFrom": "2025-01-01T00:00:00Z", "validUntil": "2026-01-01T00:00:00Z"});
        assert_eq!(check_period(&ok, now), Ok(true));
        assert_eq!(check_period(&json!({}), now), Ok(false));
        let expired = json!({"expirationDate": "2025-05-31T23:59:59Z"});
        let e = check_period(&expired, now).unwrap_err();
        assert!(e.detail.contains("expired"), "{}", e.detail);
        assert_eq!(e.check.as_deref(), Some(EXPIRATION));
        let early = json!({"issuanceDate": "2025-06-02T00:00:00Z"});
        assert!(check_period(&early, now)
            .unwrap_err()
            .detail
            .contains("not valid yet"));
        let bad = json!({"validUntil": "next year"});
        assert_eq!(
            check_period(&bad, now).unwrap_err().kind,
            types::MALFORMED_VALUE_ERROR
        );
    }

    #[test]
    fn a_status_that_cannot_be_checked_fails() {
        assert_eq!(check_status(&json!({})), Ok(false));
        let e = check_status(&json!({"credentialStatus": {"type": "BitstringStatusListEntry"}}))
            .unwrap_err();
        assert!(e.detail.contains("BitstringStatusListEntry"));
    }
}
