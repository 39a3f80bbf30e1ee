//! The JSON the validators exchange (`POST /1.0/consensus/messages`) and the engine's
//! write-ahead log is made of: proposals carrying their whole block, votes, and the polka and
//! round certificates Malachite's liveness layer sends. Conversions check the numbers first
//! (heights up to [`MAX_HEIGHT`], rounds up to [`MAX_ROUND`]), so no arithmetic on them can
//! overflow.

use malachitebft_core_consensus::{ProposedValue, SignedConsensusMsg};
use malachitebft_core_types::{
    NilOrVal, PolkaCertificate, Round, RoundCertificate, RoundCertificateType, SignedProposal,
    SignedVote, Timeout, TimeoutKind, Validity, VoteType,
};
use serde::{Deserialize, Serialize};
use sparkid_bid::Signature;
use sparkid_ledger::{BlockHeader, Hash, Transaction};

use super::context::{Address, BlockProposal, BlockValue, Height, SparkContext, Vote};

/// The highest height a message may name.
pub const MAX_HEIGHT: u64 = i64::MAX as u64;
/// The highest round a message may name.
pub const MAX_ROUND: u64 = u32::MAX as u64 - 1;

/// A vote on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WireVote {
    /// The height.
    pub height: u64,
    /// The round.
    pub round: u64,
    /// `prevote` or `precommit`.
    #[serde(rename = "type")]
    pub kind: WireVoteType,
    /// The block voted for; absent for nil.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_hash: Option<Hash>,
    /// The voter's encoded key.
    pub validator: String,
    /// Over [`super::context::vote_signing_bytes`].
    pub signature: Signature,
}

/// A vote's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireVoteType {
    /// First phase.
    Prevote,
    /// Second phase; a quorum of precommits for a block commits it.
    Precommit,
}

/// A proposal on the wire: the whole block.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WireProposal {
    /// The round.
    pub round: u64,
    /// The proof-of-lock round, absent for none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pol_round: Option<u64>,
    /// The header (its height is the proposal's).
    pub header: BlockHeader,
    /// The transactions, in order.
    pub transactions: Vec<Transaction>,
    /// The proposer's encoded key.
    pub validator: String,
    /// Over [`super::context::proposal_signing_bytes`].
    pub signature: Signature,
}

/// Votes of one height and round that make a certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WireCertificate {
    /// `polka` (2f+1 prevotes for a block), `precommit` (2f+1 precommits of a round) or
    /// `skip` (f+1 votes of a higher round).
    #[serde(rename = "type")]
    pub kind: String,
    /// The votes.
    pub votes: Vec<WireVote>,
}

/// One message between validators.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Message {
    /// A proposal.
    Proposal(WireProposal),
    /// A vote.
    Vote(WireVote),
    /// A certificate.
    Certificate(WireCertificate),
}

/// Why a message does not convert.
pub type WireError = String;

fn check_numbers(height: u64, round: u64) -> Result<(), WireError> {
    if height > MAX_HEIGHT {
        return Err(format!(
            "height {height} is out of range: a consensus message names a height of at most \
             {MAX_HEIGHT}"
        ));
    }
    if round > MAX_ROUND {
        return Err(format!(
            "round {round} is out of range: a consensus message names a round of at most \
             {MAX_ROUND}"
        ));
    }
    Ok(())
}

fn round_of(r: u64) -> Round {
    // Callers checked r <= MAX_ROUND < u32::MAX.
    Round::new(u32::try_from(r).unwrap_or(u32::MAX - 1))
}

impl WireVote {
    /// The wire form of a signed vote.
    pub fn from_signed(v: &SignedVote<SparkContext>) -> WireVote {
        WireVote {
            height: v.message.height.0,
            round: super::context::round_number(v.message.round),
            kind: match v.message.kind {
                VoteType::Prevote => WireVoteType::Prevote,
                VoteType::Precommit => WireVoteType::Precommit,
            },
            block_hash: match &v.message.value {
                NilOrVal::Val(h) => Some(*h),
                NilOrVal::Nil => None,
            },
            validator: v.message.validator.0.clone(),
            signature: Signature(v.signature.0),
        }
    }

    /// The engine's signed vote (signature not yet checked).
    pub fn to_signed(&self) -> Result<SignedVote<SparkContext>, WireError> {
        check_numbers(self.height, self.round)?;
        let vote = Vote {
            height: Height(self.height),
            round: round_of(self.round),
            value: match self.block_hash {
                Some(h) => NilOrVal::Val(h),
                None => NilOrVal::Nil,
            },
            kind: match self.kind {
                WireVoteType::Prevote => VoteType::Prevote,
                WireVoteType::Precommit => VoteType::Precommit,
            },
            validator: Address(self.validator.clone()),
        };
        Ok(SignedVote::new(vote, self.signature.into()))
    }
}

impl WireProposal {
    /// The wire form of a signed proposal.
    pub fn from_signed(p: &SignedProposal<SparkContext>) -> WireProposal {
        WireProposal {
            round: super::context::round_number(p.message.round),
            pol_round: p.message.pol_round.as_u32().map(u64::from),
            header: (*p.message.value.header).clone(),
            transactions: (*p.message.value.transactions).clone(),
            validator: p.message.validator.0.clone(),
            signature: Signature(p.signature.0),
        }
    }

    /// The engine's signed proposal (signature not yet checked).
    pub fn to_signed(&self) -> Result<SignedProposal<SparkContext>, WireError> {
        check_numbers(self.header.height, self.round)?;
        if let Some(p) = self.pol_round {
            check_numbers(self.header.height, p)?;
        }
        let proposal = BlockProposal {
            height: Height(self.header.height),
            round: round_of(self.round),
            value: BlockValue::new(self.header.clone(), self.transactions.clone()),
            pol_round: self.pol_round.map(round_of).unwrap_or(Round::Nil),
            validator: Address(self.validator.clone()),
        };
        Ok(SignedProposal::new(proposal, self.signature.into()))
    }
}

impl Message {
    /// The wire form of a message the engine publishes.
    pub fn from_engine(msg: &SignedConsensusMsg<SparkContext>) -> Message {
        match msg {
            SignedConsensusMsg::Vote(v) => Message::Vote(WireVote::from_signed(v)),
            SignedConsensusMsg::Proposal(p) => Message::Proposal(WireProposal::from_signed(p)),
        }
    }

    /// The height the message is about.
    pub fn height(&self) -> u64 {
        match self {
            Message::Proposal(p) => p.header.height,
            Message::Vote(v) => v.height,
            Message::Certificate(c) => c.votes.first().map(|v| v.height).unwrap_or(0),
        }
    }

    /// Checks the numbers of every part of the message.
    pub fn check(&self) -> Result<(), WireError> {
        match self {
            Message::Proposal(p) => p.to_signed().map(|_| ()),
            Message::Vote(v) => v.to_signed().map(|_| ()),
            Message::Certificate(c) => {
                if c.votes.is_empty() {
                    return Err("a certificate without votes".into());
                }
                if c.votes.len() > 1024 {
                    return Err(format!("{} votes in a certificate", c.votes.len()));
                }
                if !["polka", "precommit", "skip"].contains(&c.kind.as_str()) {
                    return Err(format!("certificate type {:?}", c.kind));
                }
                for v in &c.votes {
                    v.to_signed()?;
                }
                Ok(())
            }
        }
    }
}

/// The wire form of a polka certificate.
pub fn polka_to_wire(c: &PolkaCertificate<SparkContext>, ctx: &SparkContext) -> WireCertificate {
    WireCertificate {
        kind: "polka".into(),
        votes: c.votes(ctx).map(|v| WireVote::from_signed(&v)).collect(),
    }
}

/// The wire form of a round certificate.
pub fn round_to_wire(c: &RoundCertificate<SparkContext>, ctx: &SparkContext) -> WireCertificate {
    WireCertificate {
        kind: match c.cert_type {
            RoundCertificateType::Precommit => "precommit".into(),
            RoundCertificateType::Skip => "skip".into(),
        },
        votes: c.votes(ctx).map(|v| WireVote::from_signed(&v)).collect(),
    }
}

/// A certificate the engine takes.
pub enum EngineCertificate {
    /// 2f+1 prevotes for one block in one round.
    Polka(PolkaCertificate<SparkContext>),
    /// A round's precommits, or f+1 votes of a higher round.
    Round(RoundCertificate<SparkContext>),
}

impl WireCertificate {
    /// The engine's certificate (signatures not yet checked).
    pub fn to_engine(&self) -> Result<EngineCertificate, WireError> {
        let votes: Vec<SignedVote<SparkContext>> = self
            .votes
            .iter()
            .map(WireVote::to_signed)
            .collect::<Result<_, _>>()?;
        let first = votes.first().ok_or("a certificate without votes")?;
        let (height, round) = (first.message.height, first.message.round);
        if votes
            .iter()
            .any(|v| v.message.height != height || v.message.round != round)
        {
            return Err("a certificate's votes are of one height and round".into());
        }
        match self.kind.as_str() {
            "polka" => {
                let NilOrVal::Val(id) = first.message.value else {
                    return Err("a polka is for a block".into());
                };
                if votes.iter().any(|v| {
                    v.message.kind != VoteType::Prevote || v.message.value != NilOrVal::Val(id)
                }) {
                    return Err("a polka's votes are prevotes for one block".into());
                }
                Ok(EngineCertificate::Polka(PolkaCertificate::new(
                    height, round, id, votes,
                )))
            }
            "precommit" | "skip" => {
                let kind = if self.kind == "precommit" {
                    RoundCertificateType::Precommit
                } else {
                    RoundCertificateType::Skip
                };
                Ok(EngineCertificate::Round(RoundCertificate::new_from_votes(
                    height, round, kind, votes,
                )))
            }
            other => Err(format!("certificate type {other:?}")),
        }
    }
}

/// One entry of the write-ahead log: the inputs whose effect on this validator's votes must
/// survive a crash.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum WalEntry {
    /// A vote received or cast.
    Vote(WireVote),
    /// A proposal received or made.
    Proposal(WireProposal),
    /// A full value and its validity.
    Value {
        /// The value's round.
        round: u64,
        /// Its valid round, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        valid_round: Option<u64>,
        /// The proposer.
        proposer: String,
        /// The header.
        header: BlockHeader,
        /// The transactions.
        transactions: Vec<Transaction>,
        /// Whether it checked.
        valid: bool,
    },
    /// A timeout that elapsed.
    Timeout {
        /// `propose`, `prevote`, `precommit` or `rebroadcast`.
        kind: String,
        /// Its round.
        round: u64,
    },
    /// A polka certificate.
    Polka(WireCertificate),
}

/// The log form of a proposed value.
pub fn value_to_wal(v: &ProposedValue<SparkContext>) -> WalEntry {
    WalEntry::Value {
        round: super::context::round_number(v.round),
        valid_round: v.valid_round.as_u32().map(u64::from),
        proposer: v.proposer.0.clone(),
        header: (*v.value.header).clone(),
        transactions: (*v.value.transactions).clone(),
        valid: v.validity.is_valid(),
    }
}

/// The engine's proposed value from its log form.
pub fn value_from_wal(
    round: u64,
    valid_round: Option<u64>,
    proposer: &str,
    header: &BlockHeader,
    transactions: &[Transaction],
    valid: bool,
) -> Result<ProposedValue<SparkContext>, WireError> {
    check_numbers(header.height, round)?;
    Ok(ProposedValue {
        height: Height(header.height),
        round: round_of(round),
        valid_round: valid_round.map(round_of).unwrap_or(Round::Nil),
        proposer: Address(proposer.to_string()),
        value: BlockValue::new(header.clone(), transactions.to_vec()),
        validity: Validity::from_bool(valid),
    })
}

/// The log form of a timeout (none for the finalization timer, which is not logged).
pub fn timeout_to_wal(t: &Timeout) -> Option<WalEntry> {
    let kind = match t.kind {
        TimeoutKind::Propose => "propose",
        TimeoutKind::Prevote => "prevote",
        TimeoutKind::Precommit => "precommit",
        TimeoutKind::Rebroadcast => "rebroadcast",
        TimeoutKind::FinalizeHeight(_) => return None,
    };
    Some(WalEntry::Timeout {
        kind: kind.into(),
        round: super::context::round_number(t.round),
    })
}

/// A timeout from its log form.
pub fn timeout_from_wal(kind: &str, round: u64) -> Result<Timeout, WireError> {
    check_numbers(0, round)?;
    let r = round_of(round);
    Ok(match kind {
        "propose" => Timeout::propose(r),
        "prevote" => Timeout::prevote(r),
        "precommit" => Timeout::precommit(r),
        "rebroadcast" => Timeout::rebroadcast(r),
        other => return Err(format!("timeout kind {other:?}")),
    })
}
