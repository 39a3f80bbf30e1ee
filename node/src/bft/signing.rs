//! Checking the signatures of consensus messages against a validator set: a vote by a
//! validator over its signed bytes, a proposal by its round's proposer, a certificate of
//! distinct validators reaching a threshold.

use malachitebft_core_types::{
    CertificateError, Context, Round, SignedProposal, SignedVote, ThresholdParam,
};

use super::context::{
    proposal_signing_bytes, vote_signing_bytes, Address, Height, SparkContext, ValidatorSet,
};
use super::wire::Message;

/// Checks the signatures a message carries: a vote by a validator over its bytes, a proposal
/// by its round's proposer, a certificate's votes.
pub(crate) fn check_signatures(
    chain_id: &str,
    vset: &ValidatorSet,
    message: &Message,
) -> Result<(), String> {
    match message {
        Message::Vote(v) => check_vote(chain_id, vset, &v.to_signed()?),
        Message::Proposal(p) => {
            let signed = p.to_signed()?;
            let expected = proposer(vset, signed.message.height, signed.message.round);
            if signed.message.validator != expected {
                return Err(format!(
                    "round {} at height {} is {}'s to propose, not {}'s",
                    p.round, p.header.height, expected, signed.message.validator
                ));
            }
            check_proposal(chain_id, vset, &signed)
        }
        Message::Certificate(cert) => {
            for v in &cert.votes {
                check_vote(chain_id, vset, &v.to_signed()?)?;
            }
            Ok(())
        }
    }
}

/// The proposer of `round` at `height`.
pub(crate) fn proposer(vset: &ValidatorSet, height: Height, round: Round) -> Address {
    let ctx = SparkContext {
        chain_id: "".into(),
    };
    ctx.select_proposer(vset, height, round).address.clone()
}

/// Checks a vote's signature by a validator of `vset`.
pub(crate) fn check_vote(
    chain_id: &str,
    vset: &ValidatorSet,
    v: &SignedVote<SparkContext>,
) -> Result<(), String> {
    let validator = vset
        .validators
        .iter()
        .find(|x| x.address == v.message.validator)
        .ok_or_else(|| format!("{} is not a validator", v.message.validator))?;
    validator
        .public_key
        .verify(
            &vote_signing_bytes(chain_id, &v.message),
            &v.signature.into(),
        )
        .map_err(|_| format!("the vote of {} does not verify", v.message.validator))
}

/// Checks a proposal's signature by a validator of `vset`.
pub(crate) fn check_proposal(
    chain_id: &str,
    vset: &ValidatorSet,
    p: &SignedProposal<SparkContext>,
) -> Result<(), String> {
    let validator = vset
        .validators
        .iter()
        .find(|x| x.address == p.message.validator)
        .ok_or_else(|| format!("{} is not a validator", p.message.validator))?;
    validator
        .public_key
        .verify(
            &proposal_signing_bytes(chain_id, &p.message),
            &p.signature.into(),
        )
        .map_err(|_| "the proposal's signature does not verify".to_string())
}

/// Checks that `votes` are distinct validators' valid signatures reaching `threshold`.
// The verdict's error type is the engine's own (large) one.
#[allow(clippy::result_large_err)]
pub(crate) fn check_certificate(
    chain_id: &str,
    vset: &ValidatorSet,
    votes: impl Iterator<Item = SignedVote<SparkContext>>,
    threshold: ThresholdParam,
) -> Result<(), CertificateError<SparkContext>> {
    let mut seen = Vec::new();
    for v in votes {
        if seen.contains(&v.message.validator) {
            return Err(CertificateError::DuplicateVote(v.message.validator));
        }
        if vset.index_of(&v.message.validator).is_none() {
            return Err(CertificateError::UnknownValidator(v.message.validator));
        }
        if check_vote(chain_id, vset, &v).is_err() {
            return Err(CertificateError::VerificationError(None));
        }
        seen.push(v.message.validator);
    }
    let total = vset.validators.len() as u64;
    let signed = seen.len() as u64;
    if !threshold.is_met(signed, total) {
        return Err(CertificateError::NotEnoughVotingPower {
            signed,
            total,
            expected: threshold.min_expected(total),
        });
    }
    Ok(())
}
