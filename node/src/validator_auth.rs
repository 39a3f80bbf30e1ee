//! Authenticated requests between validators: every consensus write
//! (`POST /1.0/consensus/messages|transactions`) carries the validator that sent
//! it, when, and that validator's Ed25519 signature over the request, in three headers:
//!
//! - [`VALIDATOR_HEADER`]: the sender's encoded key, one of the genesis validators;
//! - [`SIGNED_AT_HEADER`]: Unix milliseconds when it was signed;
//! - [`SIGNATURE_HEADER`]: 128 hex digits, the signature over [`request_bytes`]: the chain, the
//!   path, the receiving validator's key, the time and the SHA-256 of the body.
//!
//! Why: without it anyone who can reach a validator can hand it transactions to propose
//! (`/transactions`), and a validator that is not the leader then proposes, in a round of its
//! own, against the leader: the two block each other. The messages that were signed before
//! (a prepare, a proposal) or certified (a commit) are still checked as they were; this adds
//! the sender's identity to every request, checked on the exact bytes before anything parses
//! them, so a request from outside the validator set costs one hash and one signature check.
//!
//! **Freshness and replay.** A request signed more than [`MAX_SKEW`] away from this
//! validator's clock is refused, and so is a request seen before within that window (its
//! signature is remembered until it would be stale anyway). Naming the receiver in the signed
//! bytes keeps a request sent to one validator from being replayed to another; naming the path
//! keeps it from being replayed to another endpoint.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sparkid_bid::{PrivateKey, PublicKey, Signature};
use sparkid_ledger::Hash;
use thiserror::Error;

/// The signing domain of requests between validators.
pub const REQUEST_DOMAIN: &[u8] = b"sparkid/validator-request/v1\n";
/// The header naming the sending validator (its encoded key).
pub const VALIDATOR_HEADER: &str = "sparkid-validator";
/// The header with the signing time, Unix milliseconds.
pub const SIGNED_AT_HEADER: &str = "sparkid-signed-at";
/// The header with the signature over [`request_bytes`], 128 hex digits.
pub const SIGNATURE_HEADER: &str = "sparkid-signature";
/// How far a request's signing time may be from this validator's clock, either way.
pub const MAX_SKEW: Duration = Duration::from_secs(30);
/// The most request signatures remembered against replay: requests signed within
/// `2 * MAX_SKEW`, far above what validators send each other (a few per block).
pub const REPLAY_MEMORY: usize = 200_000;
/// The longest encoded key accepted in [`VALIDATOR_HEADER`] (an encoded key is 76 hex digits).
const MAX_VALIDATOR_LEN: usize = 128;

/// The bytes a request's signature covers.
pub fn request_bytes(
    chain_id: &str,
    path: &str,
    audience: &str,
    signed_at: u64,
    body: &[u8],
) -> Vec<u8> {
    let digest = Hash::of(&[body]);
    let mut out = REQUEST_DOMAIN.to_vec();
    out.extend_from_slice(
        format!(
            "{chain_id}\n{path}\n{}\n{signed_at}\n{digest}",
            audience.to_ascii_lowercase()
        )
        .as_bytes(),
    );
    out
}

/// Unix milliseconds now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The three headers of a signed request, as they are sent or as they came (each absent one
/// `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestSignature {
    /// [`VALIDATOR_HEADER`].
    pub validator: Option<String>,
    /// [`SIGNED_AT_HEADER`].
    pub signed_at: Option<String>,
    /// [`SIGNATURE_HEADER`].
    pub signature: Option<String>,
}

impl RequestSignature {
    /// `key`'s signature of a request of `body` to `path` of the validator `audience` (its
    /// encoded key), at `signed_at` (Unix milliseconds).
    pub fn sign(
        key: &PrivateKey,
        chain_id: &str,
        path: &str,
        audience: &str,
        signed_at: u64,
        body: &[u8],
    ) -> RequestSignature {
        let bytes = request_bytes(chain_id, path, audience, signed_at, body);
        RequestSignature {
            validator: Some(key.public_key().to_encoded()),
            signed_at: Some(signed_at.to_string()),
            signature: Some(hex::encode(key.sign(&bytes).0)),
        }
    }

    /// The headers to send: (name, value) pairs.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        [
            (VALIDATOR_HEADER, &self.validator),
            (SIGNED_AT_HEADER, &self.signed_at),
            (SIGNATURE_HEADER, &self.signature),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.clone().map(|v| (name, v)))
        .collect()
    }
}

/// Why a request between validators is not accepted as one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// A header is missing: the request is not signed (HTTP 401).
    #[error(
        "the request is not signed by a validator: the {0} header is missing (requests between \
         validators carry sparkid-validator, sparkid-signed-at and sparkid-signature)"
    )]
    Unsigned(&'static str),
    /// The sender is not one of the chain's validators.
    #[error("{0:?} is not a validator of this chain")]
    NotAValidator(String),
    /// A header does not have its form.
    #[error("the {header} header is malformed: {detail}")]
    Malformed {
        /// The header.
        header: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The signature does not verify with the sender's key over this request.
    #[error(
        "the request's signature does not verify with validator {0}'s key (over the chain, the \
         path, this validator's key, the time and the body's SHA-256)"
    )]
    BadSignature(usize),
    /// Signed too far from this validator's clock.
    #[error("the request was signed {skew_ms} ms away from this validator's clock, over the {max_ms} ms allowed")]
    Stale {
        /// How far, in milliseconds.
        skew_ms: u64,
        /// The most allowed.
        max_ms: u64,
    },
    /// The same signed request came before.
    #[error("the request was already received: a signed request is accepted once")]
    Replayed,
    /// Too many requests in the freshness window to remember them all.
    #[error("too many signed requests to remember against replay; retry shortly")]
    Busy,
}

impl AuthError {
    /// Whether the request carried no signature at all (HTTP 401) rather than a wrong one
    /// (HTTP 403, or 503 for [`AuthError::Busy`]).
    pub fn is_unsigned(&self) -> bool {
        matches!(self, AuthError::Unsigned(_))
    }

    /// A short reason class, for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthError::Unsigned(_) => "unsigned",
            AuthError::NotAValidator(_) => "not_a_validator",
            AuthError::Malformed { .. } => "malformed",
            AuthError::BadSignature(_) => "bad_signature",
            AuthError::Stale { .. } => "stale",
            AuthError::Replayed => "replayed",
            AuthError::Busy => "busy",
        }
    }
}

/// The signatures seen within the freshness window, oldest first.
#[derive(Debug, Default)]
struct Seen {
    expiry: VecDeque<(u64, [u8; 64])>,
    set: HashMap<[u8; 64], u64>,
}

/// Checks requests addressed to one validator.
#[derive(Debug)]
pub struct Authenticator {
    chain_id: String,
    /// This validator's encoded key: the audience every request must name.
    me: String,
    /// Encoded keys, genesis order (then validators added by set changes), and the keys.
    validators: std::sync::RwLock<Vec<(String, PublicKey)>>,
    seen: Mutex<Seen>,
}

impl Authenticator {
    /// Checks requests to the validator `me` of `chain_id`, whose validators are `validators`
    /// (encoded keys in genesis order, with their keys).
    pub fn new(chain_id: &str, me: &str, validators: Vec<(String, PublicKey)>) -> Authenticator {
        Authenticator {
            chain_id: chain_id.to_string(),
            me: me.to_string(),
            validators: std::sync::RwLock::new(validators),
            seen: Mutex::new(Seen::default()),
        }
    }

    /// Admits a validator added by a validator-set change, at the next index (indexes of the
    /// others do not move). A key already admitted is left as it is.
    pub fn admit(&self, encoded: &str, key: PublicKey) {
        let mut validators = self.validators.write().unwrap_or_else(|p| p.into_inner());
        if !validators.iter().any(|(_, k)| *k == key) {
            validators.push((encoded.to_string(), key));
        }
    }

    /// Checks that a request of `body` to `path`, carrying `signature`, was signed by a
    /// validator for this validator within [`MAX_SKEW`] of `now_ms` and was not received
    /// before. The sender's index in genesis order. Costs one hash of the body and one
    /// signature check, nothing else: it runs before the body is parsed.
    pub fn check(
        &self,
        path: &str,
        signature: &RequestSignature,
        body: &[u8],
        now_ms: u64,
    ) -> Result<usize, AuthError> {
        let validator = signature
            .validator
            .as_deref()
            .ok_or(AuthError::Unsigned(VALIDATOR_HEADER))?;
        let signed_at = signature
            .signed_at
            .as_deref()
            .ok_or(AuthError::Unsigned(SIGNED_AT_HEADER))?;
        let text = signature
            .signature
            .as_deref()
            .ok_or(AuthError::Unsigned(SIGNATURE_HEADER))?;
        if validator.len() > MAX_VALIDATOR_LEN {
            return Err(AuthError::Malformed {
                header: VALIDATOR_HEADER,
                detail: format!("{} characters, over {MAX_VALIDATOR_LEN}", validator.len()),
            });
        }
        let validators = self.validators.read().unwrap_or_else(|p| p.into_inner());
        let index = validators
            .iter()
            .position(|(encoded, _)| encoded.eq_ignore_ascii_case(validator))
            .ok_or_else(|| AuthError::NotAValidator(validator.to_string()))?;
        let signed_at: u64 = signed_at
            .parse()
            .ok()
            .filter(|_| signed_at.len() <= 20)
            .ok_or_else(|| AuthError::Malformed {
                header: SIGNED_AT_HEADER,
                detail: "not Unix milliseconds".into(),
            })?;
        let skew_ms = signed_at.abs_diff(now_ms);
        let max_ms = u64::try_from(MAX_SKEW.as_millis()).unwrap_or(u64::MAX);
        if skew_ms > max_ms {
            return Err(AuthError::Stale { skew_ms, max_ms });
        }
        let raw: [u8; 64] = (text.len() == 128)
            .then(|| hex::decode(text).ok())
            .flatten()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| AuthError::Malformed {
                header: SIGNATURE_HEADER,
                detail: "not 128 hexadecimal digits".into(),
            })?;
        let bytes = request_bytes(&self.chain_id, path, &self.me, signed_at, body);
        validators[index]
            .1
            .verify(&bytes, &Signature(raw))
            .map_err(|_| AuthError::BadSignature(index))?;
        self.remember(raw, signed_at.saturating_add(max_ms), now_ms)?;
        Ok(index)
    }

    /// Remembers a verified signature until `expires` (Unix ms); refuses one seen before.
    fn remember(&self, signature: [u8; 64], expires: u64, now_ms: u64) -> Result<(), AuthError> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let Seen { expiry, set } = &mut *seen;
        // Requests arrive roughly in signing order: the front is the oldest.
        while expiry.front().is_some_and(|(e, _)| *e < now_ms) {
            if let Some((_, old)) = expiry.pop_front() {
                set.remove(&old);
            }
        }
        if set.contains_key(&signature) {
            return Err(AuthError::Replayed);
        }
        if set.len() >= REPLAY_MEMORY {
            return Err(AuthError::Busy);
        }
        set.insert(signature, expires);
        expiry.push_back((expires, signature));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (Vec<PrivateKey>, Authenticator) {
        let keys: Vec<PrivateKey> = (0..3).map(|_| PrivateKey::generate()).collect();
        let validators = keys
            .iter()
            .map(|k| (k.public_key().to_encoded(), k.public_key()))
            .collect();
        let me = keys[0].public_key().to_encoded();
        (keys, Authenticator::new("c", &me, validators))
    }

    #[test]
    fn only_a_validators_fresh_request_for_this_validator_is_accepted_once() {
        let (keys, auth) = setup();
        let me = keys[0].public_key().to_encoded();
        let now = 1_000_000_000;
        let body = b"{}";
        let path = "/1.0/consensus/transactions";
        let good = RequestSignature::sign(&keys[2], "c", path, &me, now, body);
        assert_eq!(auth.check(path, &good, body, now + 5), Ok(2));
        assert_eq!(
            auth.check(path, &good, body, now + 6),
            Err(AuthError::Replayed)
        );

        let unsigned = RequestSignature::default();
        assert!(auth
            .check(path, &unsigned, body, now)
            .unwrap_err()
            .is_unsigned());
        let outsider = PrivateKey::generate();
        let stranger = RequestSignature::sign(&outsider, "c", path, &me, now, body);
        assert!(matches!(
            auth.check(path, &stranger, body, now),
            Err(AuthError::NotAValidator(_))
        ));
        // Another body, path, audience or chain: the signature does not verify.
        let fresh = |at| RequestSignature::sign(&keys[1], "c", path, &me, at, body);
        assert_eq!(
            auth.check(path, &fresh(now + 1), b"{ }", now),
            Err(AuthError::BadSignature(1))
        );
        assert_eq!(
            auth.check("/1.0/consensus/prepare", &fresh(now + 2), body, now),
            Err(AuthError::BadSignature(1))
        );
        let to_other = RequestSignature::sign(
            &keys[1],
            "c",
            path,
            &keys[2].public_key().to_encoded(),
            now,
            body,
        );
        assert_eq!(
            auth.check(path, &to_other, body, now),
            Err(AuthError::BadSignature(1))
        );
        // Stale either way.
        let old = fresh(now - 31_000);
        assert!(matches!(
            auth.check(path, &old, body, now),
            Err(AuthError::Stale { .. })
        ));
        let ahead = fresh(now + 31_000);
        assert!(matches!(
            auth.check(path, &ahead, body, now),
            Err(AuthError::Stale { .. })
        ));
        let mut bad = fresh(now + 3);
        bad.signature = Some("zz".into());
        assert!(matches!(
            auth.check(path, &bad, body, now),
            Err(AuthError::Malformed { .. })
        ));
        bad.signed_at = Some("18446744073709551616".into());
        assert!(matches!(
            auth.check(path, &bad, body, now),
            Err(AuthError::Malformed { .. })
        ));
    }
}
