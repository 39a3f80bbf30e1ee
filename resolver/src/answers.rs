//! A DID's answer record: its resolution result, rendered at commit and kept by the ledger
//! beside the state it derives from (see [`sparkid_ledger::answers`]), so that a cold read of a
//! plain did:bid is one ledger lookup: nothing parsed, no point decompressed, nothing rendered,
//! no Redis round trip.
//!
//! **What is kept.** For each DID of this ledger (a main-chain DID, no AC code) the body the
//! HTTP binding answers in the default representation, the full resolution result
//! (`application/did-resolution`), rendered by the same code as the other paths
//! ([`crate::binding`]) from the DID's two state keys: its record `did/<did>` and its reverse
//! index `aka/<did>` (bound identifiers). A block that writes either re-renders it in the same
//! transaction: create, update, deactivate (the answer is dropped: a deactivated DID's answer
//! is not a 200 and takes the general path), bind and unbind; followers and catch-up too (they
//! commit through the same path). Other representations, options and DIDs take the paths of
//! [`crate::warm`].
//!
//! **Why Redis is skipped.** The cold read used to ask Redis (`MGET`, HMAC checks) before the
//! ledger, then queue both values for Redis. Every replica holds the full ledger; with answer
//! records its read is one lookup in this process, current by construction (written in the
//! block's own transaction), so a Redis round trip can only cost more (and the replicas'
//! Redis writes cost CPU on every cold miss). Redis keeps what only it does: the invalidation
//! channel between replicas' L1s, and the shared cache of the general path (other
//! representations, other doors, and a ledger whose answers are not served yet). With L1 off
//! and Redis on, Redis stays the read cache of this path too: the operator chose it as the
//! only one.
//!
//! **Format.** One version byte, the TTL (the document's `extension.ttl`, little-endian u64),
//! then the body. [`crate::answer_deriver::ResolutionAnswers`]'s version carries a fingerprint of a sample rendering,
//! so that a build that renders differently rebuilds the table instead of serving old bytes.
//!
//! **L1.** A read fills L1 under [`l1_key`] with the body (the answer's TTL under the cap), where
//! the warm path finds it; a block that writes `did/<did>` or `aka/<did>` drops it from L1 as
//! it drops those keys ([`crate::cache::answer_key_of_state`]).
//!
//! This file is the record's format; the deriver that renders it at commit is
//! [`crate::answer_deriver`], the reads are [`crate::warm`]'s.

use std::sync::Arc;

use crate::cache::ANSWER_PREFIX;
use crate::negotiate::{Rendered, Representation};

/// The representation answer records hold.
pub const REPRESENTATION: Representation = Representation::ResolutionResult;
/// The first byte of an answer record: its layout.
pub const LAYOUT: u8 = 1;
/// Bytes before the body: the layout byte and the TTL.
const HEADER: usize = 1 + 8;

/// The L1 key of `did`'s answer.
pub fn l1_key(did: &str) -> String {
    format!("{ANSWER_PREFIX}{did}")
}

/// The answer record of a rendered answer with the document's TTL; none when the answer is not
/// a plain 200 in [`REPRESENTATION`] (a deactivated DID's 410: the general path answers it).
pub fn encode(rendered: &Rendered, ttl: u64) -> Option<Vec<u8>> {
    if rendered.status != 200
        || rendered.content_type != Some(REPRESENTATION.media_type())
        || rendered.location.is_some()
    {
        return None;
    }
    let mut out = Vec::with_capacity(HEADER + rendered.body.len());
    out.push(LAYOUT);
    out.extend_from_slice(&ttl.to_le_bytes());
    out.extend_from_slice(&rendered.body);
    Some(out)
}

/// The TTL and body of an answer record; none when it is not one of this layout.
pub fn decode(stored: &[u8]) -> Option<(u64, &str)> {
    if stored.len() < HEADER || stored[0] != LAYOUT {
        return None;
    }
    let ttl = u64::from_le_bytes(stored[1..HEADER].try_into().ok()?);
    let body = std::str::from_utf8(&stored[HEADER..]).ok()?;
    Some((ttl, body))
}

/// A body held in L1, shared (not copied) by the responses that send it.
struct Body(Arc<str>);

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// The HTTP answer of a stored body.
pub fn rendered(body: &Arc<str>) -> Rendered {
    Rendered {
        status: 200,
        content_type: Some(REPRESENTATION.media_type()),
        location: None,
        body: bytes::Bytes::from_owner(Body(body.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_of_another_layout_or_truncated_is_not_served() {
        assert!(decode(b"").is_none());
        assert!(decode(&[LAYOUT, 0, 0]).is_none());
        assert!(decode(&[9, 0, 0, 0, 0, 0, 0, 0, 0, b'{', b'}']).is_none());
        let ok = encode(&rendered(&Arc::from("{}")), 60).unwrap();
        assert_eq!(decode(&ok), Some((60, "{}")));
    }

    #[test]
    fn only_a_plain_200_in_the_records_representation_is_kept() {
        let ok = rendered(&Arc::from("{}"));
        let mut gone = ok.clone();
        gone.status = 410;
        let mut other = ok.clone();
        other.content_type = Some("application/did+ld+json");
        assert!(encode(&ok, 1).is_some());
        assert!(encode(&gone, 1).is_none());
        assert!(encode(&other, 1).is_none());
    }

    #[test]
    fn l1_keys_follow_both_state_keys_of_a_did() {
        use crate::cache::answer_key_of_state;
        let key = Some(l1_key("did:bid:x"));
        assert_eq!(answer_key_of_state("did/did:bid:x"), key);
        assert_eq!(answer_key_of_state("aka/did:bid:x"), key);
        assert_eq!(answer_key_of_state("vaa/x"), None);
    }
}
