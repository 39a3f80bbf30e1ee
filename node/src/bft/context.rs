//! The types Malachite's Tendermint runs on (its `Context`): heights are ledger heights, a
//! validator's address is its encoded genesis key, a value is a whole block (header and
//! transactions) identified by its header hash, every validator has voting power 1 and the
//! proposer of round `r` at height `h` is `validators[(h + r) mod N]`.
//!
//! The signed bytes are the application's: a precommit for a block signs exactly
//! [`vote_bytes_in_round`] (today's commit vote, so a decision converts to a
//! [`sparkid_ledger::CommitCertificate`] clients already verify); prevotes, nil precommits and
//! proposals each sign in a domain of their own ([`vote_signing_bytes`],
//! [`proposal_signing_bytes`]), so no signature of one
//! kind can be replayed as another.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use malachitebft_core_types::{
    Address as AddressTrait, Context, Extension, Height as HeightTrait, NilOrVal, Proposal,
    ProposalPart, Round, SignedExtension, SigningScheme, Validator as ValidatorTrait,
    ValidatorSet as ValidatorSetTrait, Value as ValueTrait, Vote as VoteTrait, VoteType,
    VotingPower,
};
use sparkid_bid::{PublicKey, Signature};
use sparkid_ledger::block::vote_bytes_in_round;
use sparkid_ledger::{BlockHeader, Hash, Transaction};

/// The signing domain of prevotes.
pub const PREVOTE_DOMAIN: &[u8] = b"sparkid/prevote/v1\n";
/// The signing domain of precommits for no block (nil); a precommit for a block signs the
/// commit vote bytes ([`vote_bytes_in_round`]).
pub const NIL_PRECOMMIT_DOMAIN: &[u8] = b"sparkid/precommit-nil/v1\n";
/// The signing domain of Tendermint proposals (the Paxos proposals of `sparkid/proposal/v1`
/// are not accepted any more).
pub const PROPOSAL_DOMAIN: &[u8] = b"sparkid/proposal/v2\n";

/// The engine's context: the chain id, which every signed message names.
#[derive(Clone, Debug)]
pub struct SparkContext {
    /// The chain.
    pub chain_id: Arc<str>,
}

/// A ledger height.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Height(pub u64);

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl HeightTrait for Height {
    const ZERO: Self = Height(0);
    const INITIAL: Self = Height(1);

    fn increment_by(&self, n: u64) -> Self {
        Height(self.0.saturating_add(n))
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Height)
    }

    fn as_u64(&self) -> u64 {
        self.0
    }
}

/// A validator's address: its encoded public key, as the genesis writes it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address(pub String);

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AddressTrait for Address {}

/// A block proposed for a height: header and transactions; its id is the header hash (which
/// binds the transactions through `txRoot`), and values are equal when their ids are.
#[derive(Clone, Debug)]
pub struct BlockValue {
    /// The header hash, computed once.
    pub id: Hash,
    /// The header.
    pub header: Arc<BlockHeader>,
    /// The transactions, in order (bound to the header by its `txRoot`).
    pub transactions: Arc<Vec<Transaction>>,
}

impl BlockValue {
    /// The value of `header` and `transactions`.
    pub fn new(header: BlockHeader, transactions: Vec<Transaction>) -> BlockValue {
        BlockValue {
            id: header.hash(),
            header: Arc::new(header),
            transactions: Arc::new(transactions),
        }
    }
}

impl PartialEq for BlockValue {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for BlockValue {}

impl PartialOrd for BlockValue {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BlockValue {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.id.cmp(&other.id)
    }
}

impl ValueTrait for BlockValue {
    type Id = Hash;

    fn id(&self) -> Hash {
        self.id
    }
}

/// A prevote or precommit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vote {
    /// The height.
    pub height: Height,
    /// The round.
    pub round: Round,
    /// The block voted for, or nil.
    pub value: NilOrVal<Hash>,
    /// Prevote or precommit.
    pub kind: VoteType,
    /// The voter.
    pub validator: Address,
}

impl VoteTrait<SparkContext> for Vote {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &NilOrVal<Hash> {
        &self.value
    }
    fn take_value(self) -> NilOrVal<Hash> {
        self.value
    }
    fn vote_type(&self) -> VoteType {
        self.kind
    }
    fn validator_address(&self) -> &Address {
        &self.validator
    }
    fn extension(&self) -> Option<&SignedExtension<SparkContext>> {
        None
    }
    fn take_extension(&mut self) -> Option<SignedExtension<SparkContext>> {
        None
    }
    fn extend(self, _extension: SignedExtension<SparkContext>) -> Self {
        self
    }
}

/// A proposal: a whole block for a height and round, with its proof-of-lock round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockProposal {
    /// The height.
    pub height: Height,
    /// The round.
    pub round: Round,
    /// The block.
    pub value: BlockValue,
    /// The round of the polka the proposer re-proposes, or nil.
    pub pol_round: Round,
    /// The proposer.
    pub validator: Address,
}

impl Proposal<SparkContext> for BlockProposal {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &BlockValue {
        &self.value
    }
    fn take_value(self) -> BlockValue {
        self.value
    }
    fn pol_round(&self) -> Round {
        self.pol_round
    }
    fn validator_address(&self) -> &Address {
        &self.validator
    }
}

/// Unused: a proposal carries its whole block, never parts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoPart;

impl ProposalPart<SparkContext> for NoPart {
    fn is_first(&self) -> bool {
        true
    }
    fn is_last(&self) -> bool {
        true
    }
}

/// Unused: precommits carry no vote extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoExtension;

impl Extension for NoExtension {
    fn size_bytes(&self) -> usize {
        0
    }
}

/// A validator: its key, power 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    /// Its address (encoded key).
    pub address: Address,
    /// Its key.
    pub public_key: PublicKey,
}

impl ValidatorTrait<SparkContext> for Validator {
    fn address(&self) -> &Address {
        &self.address
    }
    fn public_key(&self) -> &PublicKey {
        &self.public_key
    }
    fn voting_power(&self) -> VotingPower {
        1
    }
}

/// The validators of a height, in genesis order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    /// The validators.
    pub validators: Arc<Vec<Validator>>,
}

impl ValidatorSet {
    /// The set of the ledger's validators, addressed by their canonical encoding.
    pub fn from_keys(keys: &[PublicKey]) -> ValidatorSet {
        ValidatorSet {
            validators: Arc::new(
                keys.iter()
                    .map(|k| Validator {
                        address: Address(k.to_encoded()),
                        public_key: k.clone(),
                    })
                    .collect(),
            ),
        }
    }

    /// The index of `address`, if it is a validator.
    pub fn index_of(&self, address: &Address) -> Option<usize> {
        self.validators.iter().position(|v| v.address == *address)
    }
}

impl ValidatorSetTrait<SparkContext> for ValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }
    fn total_voting_power(&self) -> VotingPower {
        self.validators.len() as u64
    }
    fn get_by_address(&self, address: &Address) -> Option<&Validator> {
        self.validators.iter().find(|v| v.address == *address)
    }
    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }
}

/// Ed25519 over the application's bytes, with `sparkid_bid` keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ed25519;

/// A signature, ordered by its bytes (the engine keeps signatures in ordered sets).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sig(pub [u8; 64]);

impl From<Signature> for Sig {
    fn from(s: Signature) -> Sig {
        Sig(s.0)
    }
}

impl From<Sig> for Signature {
    fn from(s: Sig) -> Signature {
        Signature(s.0)
    }
}

impl SigningScheme for Ed25519 {
    type DecodingError = String;
    type Signature = Sig;
    type PublicKey = PublicKey;
    type PrivateKey = sparkid_bid::PrivateKey;

    fn decode_signature(bytes: &[u8]) -> Result<Sig, String> {
        <[u8; 64]>::try_from(bytes)
            .map(Sig)
            .map_err(|_| format!("a signature is 64 bytes, not {}", bytes.len()))
    }
    fn encode_signature(signature: &Sig) -> Vec<u8> {
        signature.0.to_vec()
    }
    fn decode_public_key(bytes: &[u8]) -> Result<PublicKey, String> {
        PublicKey::from_encoded_bytes(bytes).map_err(|e| e.to_string())
    }
    fn encode_public_key(public_key: &PublicKey) -> Vec<u8> {
        public_key.encoded_bytes()
    }
}

/// Growing round timeouts (`propose + round × delta`, up to a ceiling).
pub type Timeouts = malachitebft_core_types::LinearTimeouts;

impl Context for SparkContext {
    type Address = Address;
    type Height = Height;
    type ProposalPart = NoPart;
    type Proposal = BlockProposal;
    type Validator = Validator;
    type ValidatorSet = ValidatorSet;
    type Timeouts = Timeouts;
    type Value = BlockValue;
    type Vote = Vote;
    type Extension = NoExtension;
    type SigningScheme = Ed25519;

    fn select_proposer<'a>(
        &self,
        validator_set: &'a ValidatorSet,
        height: Height,
        round: Round,
    ) -> &'a Validator {
        let n = validator_set.validators.len().max(1) as u64;
        let r = round.as_u32().unwrap_or(0) as u64;
        let index = (height.0 % n + r % n) % n;
        // The set is never empty: a genesis names at least one validator.
        &validator_set.validators[index as usize]
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        value: BlockValue,
        pol_round: Round,
        address: Address,
    ) -> BlockProposal {
        BlockProposal {
            height,
            round,
            value,
            pol_round,
            validator: address,
        }
    }

    fn new_prevote(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<Hash>,
        address: Address,
    ) -> Vote {
        Vote {
            height,
            round,
            value: value_id,
            kind: VoteType::Prevote,
            validator: address,
        }
    }

    fn new_precommit(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<Hash>,
        address: Address,
    ) -> Vote {
        Vote {
            height,
            round,
            value: value_id,
            kind: VoteType::Precommit,
            validator: address,
        }
    }
}

/// A round as the ledger writes it (nil as 0: only proposals' proof-of-lock rounds are nil).
pub fn round_number(round: Round) -> u64 {
    round.as_u32().map(u64::from).unwrap_or(0)
}

/// What a vote's signature covers: a precommit for a block signs the commit vote bytes
/// ([`vote_bytes_in_round`]); a nil precommit and every prevote sign in their own domains.
pub fn vote_signing_bytes(chain_id: &str, vote: &Vote) -> Vec<u8> {
    let (h, r) = (vote.height.0, round_number(vote.round));
    match (vote.kind, &vote.value) {
        (VoteType::Precommit, NilOrVal::Val(id)) => vote_bytes_in_round(chain_id, h, id, r),
        (VoteType::Precommit, NilOrVal::Nil) => {
            let mut out = NIL_PRECOMMIT_DOMAIN.to_vec();
            out.extend_from_slice(format!("{chain_id}\n{h}\n{r}").as_bytes());
            out
        }
        (VoteType::Prevote, value) => {
            let mut out = PREVOTE_DOMAIN.to_vec();
            let target = match value {
                NilOrVal::Val(id) => id.to_string(),
                NilOrVal::Nil => "nil".to_string(),
            };
            out.extend_from_slice(format!("{chain_id}\n{h}\n{r}\n{target}").as_bytes());
            out
        }
    }
}

/// What a proposal's signature covers: chain, height, round, proof-of-lock round (`-1` for
/// none) and block hash.
pub fn proposal_signing_bytes(chain_id: &str, proposal: &BlockProposal) -> Vec<u8> {
    let mut out = PROPOSAL_DOMAIN.to_vec();
    out.extend_from_slice(
        format!(
            "{chain_id}\n{}\n{}\n{}\n{}",
            proposal.height.0,
            round_number(proposal.round),
            proposal.pol_round.as_i64(),
            proposal.value.id
        )
        .as_bytes(),
    );
    out
}

/// Growing round timeouts: a round's propose, prevote and precommit waits grow by a delta per
/// round, up to a ceiling (Tendermint's liveness rule).
///
/// A dead proposer costs round 0's propose timeout plus its precommit timeout (the nil
/// precommits of a quorum start it), so these two set the time from a proposer's death to the
/// next commit (issue 13's target: under 2 s). Round 0's propose wait must still cover building
/// a full block, sending it and re-executing it on the slowest validator (a few hundred ms for
/// 4096 creates in a release build on a loaded 2-core machine); a proposal that comes later
/// costs a round, not safety, and round 1 waits 0.5 s longer.
pub fn timeouts() -> Timeouts {
    Timeouts {
        propose: Duration::from_millis(1000),
        propose_delta: Duration::from_millis(500),
        prevote: Duration::from_millis(500),
        prevote_delta: Duration::from_millis(250),
        precommit: Duration::from_millis(250),
        precommit_delta: Duration::from_millis(250),
        rebroadcast: Duration::from_millis(3000),
        max_timeout: Duration::from_secs(10),
    }
}

#[cfg(test)]
mod tests {
    use malachitebft_core_types::{Timeout, TimeoutKind};

    use super::*;

    /// Two proposers cannot block each other for good: each round waits longer than the one
    /// before, up to the ceiling.
    #[test]
    fn round_timeouts_grow_up_to_the_ceiling() {
        let t = timeouts();
        for kind in [
            TimeoutKind::Propose,
            TimeoutKind::Prevote,
            TimeoutKind::Precommit,
        ] {
            let at = |r: u32| t.duration_for(Timeout::new(Round::new(r), kind));
            for r in 0..8 {
                assert!(at(r + 1) > at(r), "{kind:?}: round {r} to {}", r + 1);
            }
            assert_eq!(at(1_000), t.max_timeout, "{kind:?}");
        }
    }
}
