//! Genesis, block headers, blocks and commit certificates.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sparkid_bid::{canonical_json, KeyError, PrivateKey, PublicKey, Signature};
use thiserror::Error;

use crate::hash::{merkle_root, Hash};
use crate::tx::{Transaction, MAX_TX_BYTES};

/// The signing domain of block headers.
pub const HEADER_DOMAIN: &[u8] = b"sparkid/header/v1\n";
/// The signing domain of commit votes.
pub const COMMIT_DOMAIN: &[u8] = b"sparkid/commit/v1\n";
/// The state key under which genesis is kept, so that it is provable like any record.
pub const GENESIS_KEY: &str = "chain/genesis";

/// The most bytes a block takes as it is stored and sent to peers: its JSON (header,
/// transactions, certificate).
///
/// Why a byte limit, and why 8 MiB: a block travels whole, in a page of the peer API and in a
/// consensus proposal or commit, and each of those has a cap (a peer must not be made to read
/// without bound). A block above a cap could be committed and then never transferred: followers
/// and lagging validators would stall at it for good. The limit sits below every cap (the
/// `node` crate asserts it at compile time), so every committed block always fits in one page
/// and one request; and a validator re-executes a block of this size in well under a second
/// before it votes.
pub const MAX_BLOCK_BYTES: usize = 8 * 1024 * 1024;

/// What a block's header and commit certificate may take of [`MAX_BLOCK_BYTES`]. A vote is
/// about 250 bytes of JSON: this is room for the votes of some 2,000 validators.
pub const BLOCK_ENVELOPE_BYTES: usize = 512 * 1024;

/// The most bytes of a block's transactions (each its canonical JSON and a separator, see
/// [`block_tx_bytes`]): the block producer fills a block up to this and no further, and a
/// validator refuses a block above it.
pub const MAX_BLOCK_TX_BYTES: usize = MAX_BLOCK_BYTES - BLOCK_ENVELOPE_BYTES;

// A single transaction of the largest size always fits in a block: a full block never stalls
// the producer.
const _: () = assert!(MAX_TX_BYTES < MAX_BLOCK_TX_BYTES);

/// What a transaction whose canonical JSON is `canonical_len` bytes takes of
/// [`MAX_BLOCK_TX_BYTES`]: the block stores that JSON and one separator.
pub const fn block_tx_bytes(canonical_len: usize) -> usize {
    canonical_len + 1
}

/// The chain's starting point: its id, its validators and its namespace authority.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Genesis {
    /// The chain id, part of every transaction and vote.
    pub chain_id: String,
    /// Unix seconds.
    pub time: u64,
    /// Encoded public keys (hex) of the validators, in a fixed order.
    pub validators: Vec<String>,
    /// The BID that may delegate namespaces, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// Members for later use.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Genesis {
    /// The canonical JSON, as stored under [`GENESIS_KEY`].
    pub fn canonical(&self) -> String {
        canonical_json(&serde_json::to_value(self).unwrap_or(Value::Null))
    }

    /// The validator set it names.
    pub fn validator_set(&self) -> Result<ValidatorSet, KeyError> {
        ValidatorSet::new(
            self.validators
                .iter()
                .map(|v| PublicKey::from_encoded(v))
                .collect::<Result<_, _>>()?,
        )
    }
}

/// The validators that certify blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSet {
    keys: Vec<PublicKey>,
}

impl ValidatorSet {
    /// A set of keys, in genesis order.
    pub fn new(keys: Vec<PublicKey>) -> Result<ValidatorSet, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::WrongLength {
                kind: "validator set",
                expected: 1,
                got: 0,
            });
        }
        Ok(ValidatorSet { keys })
    }

    /// Reads encoded public keys (hex).
    pub fn from_encoded(keys: &[String]) -> Result<ValidatorSet, KeyError> {
        Self::new(
            keys.iter()
                .map(|k| PublicKey::from_encoded(k))
                .collect::<Result<_, _>>()?,
        )
    }

    /// The keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// The votes a block needs: 2f + 1 of n = 3f + 1 (more than two thirds).
    pub fn quorum(&self) -> usize {
        let n = self.keys.len();
        n - (n - 1) / 3
    }
}

/// A block header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockHeader {
    /// The chain id.
    pub chain_id: String,
    /// 0 for the genesis block.
    pub height: u64,
    /// The hash of the previous header; zero for the genesis block.
    pub previous_hash: Hash,
    /// Unix seconds, never less than the previous block's.
    pub time: u64,
    /// Merkle root of the transaction hashes.
    pub tx_root: Hash,
    /// Number of transactions.
    pub tx_count: u32,
    /// Root of the authenticated state after this block.
    pub state_root: Hash,
    /// Encoded public key of the proposer.
    pub proposer: String,
}

impl BlockHeader {
    /// SHA-256 of the header domain and the header's canonical JSON.
    pub fn hash(&self) -> Hash {
        let json = canonical_json(&serde_json::to_value(self).unwrap_or(Value::Null));
        Hash::of(&[HEADER_DOMAIN, json.as_bytes()])
    }
}

/// One validator's signature on a block hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Vote {
    /// The validator's encoded public key.
    pub validator: String,
    /// Ed25519 over [`vote_bytes_in_round`].
    pub signature: Signature,
    /// The consensus round the vote was cast in (`spec/consensus.md`); 0, the round of a
    /// block's first proposal and of every single-validator chain, is left out of the JSON.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub round: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What a validator signs to commit a block in round 0.
pub fn vote_bytes(chain_id: &str, height: u64, block_hash: &Hash) -> Vec<u8> {
    vote_bytes_in_round(chain_id, height, block_hash, 0)
}

/// What a validator signs to commit a block in `round`. Round 0 signs the bytes of the first
/// format (no round line), so every certificate made before rounds existed still verifies; a
/// later round is part of the signed bytes, so a vote cannot be moved to another round.
pub fn vote_bytes_in_round(chain_id: &str, height: u64, block_hash: &Hash, round: u64) -> Vec<u8> {
    let mut out = COMMIT_DOMAIN.to_vec();
    out.extend_from_slice(format!("{chain_id}\n{height}\n{block_hash}").as_bytes());
    if round > 0 {
        out.extend_from_slice(format!("\n{round}").as_bytes());
    }
    out
}

impl Vote {
    /// `key`'s vote for `header` in `round`.
    pub fn sign(header: &BlockHeader, round: u64, key: &PrivateKey) -> Vote {
        let bytes = vote_bytes_in_round(&header.chain_id, header.height, &header.hash(), round);
        Vote {
            validator: key.public_key().to_encoded(),
            signature: key.sign(&bytes),
            round,
        }
    }
}

/// A quorum of votes on one header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CommitCertificate {
    /// The certified header's hash.
    pub block_hash: Hash,
    /// The votes.
    pub votes: Vec<Vote>,
}

/// Why a certificate does not certify a header.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CertificateError {
    /// The certificate names another block.
    #[error("the certificate is for block {certified}, not {actual}")]
    WrongBlock {
        /// In the certificate.
        certified: Hash,
        /// The header's hash.
        actual: Hash,
    },
    /// A vote by a key outside the validator set.
    #[error("vote by {0}, which is not a validator")]
    NotAValidator(String),
    /// Two votes by one validator.
    #[error("two votes by validator {0}")]
    DuplicateVote(String),
    /// Votes of different rounds: a quorum must vote in one round (`spec/consensus.md`).
    #[error("votes of rounds {0} and {1}: a certificate's votes are of one round")]
    MixedRounds(u64, u64),
    /// A vote does not verify.
    #[error("the vote of validator {0} does not verify")]
    BadVote(String),
    /// Fewer valid votes than the quorum.
    #[error("{got} valid votes, a quorum is {needed}")]
    NoQuorum {
        /// Valid votes.
        got: usize,
        /// The quorum.
        needed: usize,
    },
}

impl CommitCertificate {
    /// A certificate with the round-0 votes of the given validator keys.
    pub fn sign(header: &BlockHeader, signers: &[&PrivateKey]) -> CommitCertificate {
        let block_hash = header.hash();
        let bytes = vote_bytes(&header.chain_id, header.height, &block_hash);
        let votes = signers
            .iter()
            .map(|k| Vote {
                validator: k.public_key().to_encoded(),
                signature: k.sign(&bytes),
                round: 0,
            })
            .collect();
        CommitCertificate { block_hash, votes }
    }

    /// The round its votes were cast in (0 for a certificate without votes).
    pub fn round(&self) -> u64 {
        self.votes.first().map(|v| v.round).unwrap_or(0)
    }

    /// Checks that a quorum of `validators` signed exactly this header.
    pub fn verify(
        &self,
        header: &BlockHeader,
        validators: &ValidatorSet,
    ) -> Result<(), CertificateError> {
        let actual = header.hash();
        if self.block_hash != actual {
            return Err(CertificateError::WrongBlock {
                certified: self.block_hash,
                actual,
            });
        }
        let round = self.round();
        let bytes = vote_bytes_in_round(&header.chain_id, header.height, &actual, round);
        let mut seen: Vec<&str> = Vec::with_capacity(self.votes.len());
        for vote in &self.votes {
            let key = PublicKey::from_encoded(&vote.validator)
                .ok()
                .filter(|k| validators.keys().contains(k))
                .ok_or_else(|| CertificateError::NotAValidator(vote.validator.clone()))?;
            let normalized = vote.validator.as_str();
            if seen.iter().any(|s| s.eq_ignore_ascii_case(normalized)) {
                return Err(CertificateError::DuplicateVote(vote.validator.clone()));
            }
            seen.push(normalized);
            if vote.round != round {
                return Err(CertificateError::MixedRounds(round, vote.round));
            }
            key.verify(&bytes, &vote.signature)
                .map_err(|_| CertificateError::BadVote(vote.validator.clone()))?;
        }
        if seen.len() < validators.quorum() {
            return Err(CertificateError::NoQuorum {
                got: seen.len(),
                needed: validators.quorum(),
            });
        }
        Ok(())
    }
}

/// A header with its commit certificate: what a proof is anchored to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertifiedHeader {
    /// The header.
    pub header: BlockHeader,
    /// Its certificate.
    pub certificate: CommitCertificate,
}

/// A committed block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// The transactions, in execution order.
    pub transactions: Vec<Transaction>,
    /// The commit certificate.
    pub certificate: CommitCertificate,
}

/// The Merkle root of transaction hashes.
pub fn tx_root(hashes: &[Hash]) -> Hash {
    merkle_root(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> BlockHeader {
        BlockHeader {
            chain_id: "t".into(),
            height: 1,
            previous_hash: Hash::ZERO,
            time: 0,
            tx_root: Hash::ZERO,
            tx_count: 0,
            state_root: Hash::ZERO,
            proposer: String::new(),
        }
    }

    #[test]
    fn quorum_is_two_f_plus_one() {
        let keys: Vec<PrivateKey> = (0..7).map(|_| PrivateKey::generate()).collect();
        let quorum = |n: usize| {
            ValidatorSet::new(keys[..n].iter().map(|k| k.public_key()).collect())
                .unwrap()
                .quorum()
        };
        assert_eq!(
            (quorum(1), quorum(2), quorum(3), quorum(4), quorum(7)),
            (1, 2, 3, 3, 5)
        );
    }

    #[test]
    fn certificates_need_a_quorum_of_distinct_validators() {
        let keys: Vec<PrivateKey> = (0..4).map(|_| PrivateKey::generate()).collect();
        let set = ValidatorSet::new(keys.iter().map(|k| k.public_key()).collect()).unwrap();
        let h = header();
        CommitCertificate::sign(&h, &[&keys[0], &keys[1], &keys[2]])
            .verify(&h, &set)
            .unwrap();
        let two = CommitCertificate::sign(&h, &[&keys[0], &keys[1]]);
        assert_eq!(
            two.verify(&h, &set),
            Err(CertificateError::NoQuorum { got: 2, needed: 3 })
        );
        let dup = CommitCertificate::sign(&h, &[&keys[0], &keys[0], &keys[1]]);
        assert!(matches!(
            dup.verify(&h, &set),
            Err(CertificateError::DuplicateVote(_))
        ));
        let outsider = PrivateKey::generate();
        let bad = CommitCertificate::sign(&h, &[&keys[0], &keys[1], &outsider]);
        assert!(matches!(
            bad.verify(&h, &set),
            Err(CertificateError::NotAValidator(_))
        ));
        let round_two: Vec<Vote> = keys[..3].iter().map(|k| Vote::sign(&h, 2, k)).collect();
        let in_round_two = CommitCertificate {
            block_hash: h.hash(),
            votes: round_two.clone(),
        };
        in_round_two.verify(&h, &set).unwrap();
        // A vote moved to another round does not verify, and rounds do not mix.
        let mut moved = in_round_two.clone();
        moved.votes[0].round = 3;
        assert!(moved.verify(&h, &set).is_err());
        let mixed = CommitCertificate {
            block_hash: h.hash(),
            votes: vec![
                round_two[0].clone(),
                round_two[1].clone(),
                Vote::sign(&h, 0, &keys[2]),
            ],
        };
        assert_eq!(
            mixed.verify(&h, &set),
            Err(CertificateError::MixedRounds(2, 0))
        );
        let mut other = h.clone();
        other.state_root = Hash([1; 32]);
        assert!(matches!(
            CommitCertificate::sign(&h, &[&keys[0], &keys[1], &keys[2]]).verify(&other, &set),
            Err(CertificateError::WrongBlock { .. })
        ));
    }
}
