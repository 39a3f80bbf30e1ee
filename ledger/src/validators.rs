//! Validator-set changes (`spec/consensus.md`, "Validator-set changes").
//!
//! A change is the ledger's own operation `chain/validators`: the new key list and the height
//! `from` at which it takes over, signed by a quorum of the set in force where the operation
//! executes, over `sparkid/validators/v1\n{chain}\n{from}\n{key}\n{key}…`. The ledger executes
//! it itself (no state machine sees it) and writes the state key [`VALIDATORS_KEY`]; the
//! certificate of a block at height `h` then verifies against [`Schedule::at`]`(h)`.
//!
//! A proof anchored after a change carries the hand-offs ([`Handoff`]): for each change, the
//! certified header of the block that holds it, the change's transaction and its Merkle path to
//! that header's `txRoot`. A client holding only the genesis keys checks each hand-off with the
//! set before it ([`Schedule::extend`]), then the answer with the last.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sparkid_bid::{canonical_json, PrivateKey, PublicKey, Signature};
use thiserror::Error;

use crate::block::{CertificateError, CertifiedHeader, ValidatorSet};
use crate::error::LedgerError;
use crate::hash::Hash;
use crate::machine::{ExecContext, StateView, Writes};
use crate::tx::{Transaction, VerifiedTransaction};

/// The signing domain of a validator-set change.
pub const VALIDATORS_DOMAIN: &[u8] = b"sparkid/validators/v1\n";
/// The operation name (`operation.op`) of a validator-set change.
pub const VALIDATORS_OP: &str = "chain/validators";
/// The state key a change writes: `{"from", "validators"}` of the newest change.
pub const VALIDATORS_KEY: &str = "chain/validators";
/// A change executed in block `w` takes over at `w + MIN_LEAD` at the earliest: every validator
/// has committed `w` (and so knows the next set) before the first height the new set decides.
pub const MIN_LEAD: u64 = 2;
/// The most validators a set holds: every certificate must fit in a block's envelope
/// (`BLOCK_ENVELOPE_BYTES`, room for some 2,000 votes).
pub const MAX_VALIDATORS: usize = 1000;

/// One validator's signature on a change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangeSignature {
    /// The signing validator's encoded public key.
    pub validator: String,
    /// Ed25519 over [`change_bytes`].
    pub signature: Signature,
}

/// The `chain/validators` operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValidatorChange {
    /// Always [`VALIDATORS_OP`].
    pub op: String,
    /// The first height the new set certifies.
    pub from: u64,
    /// The new set's encoded keys, in proposer order.
    pub validators: Vec<String>,
    /// Signatures of a quorum of the set in force where the change executes.
    #[serde(default)]
    pub signatures: Vec<ChangeSignature>,
}

/// What [`VALIDATORS_KEY`] holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduledSet {
    /// The first height of the set.
    pub from: u64,
    /// Its encoded keys.
    pub validators: Vec<String>,
}

impl ScheduledSet {
    /// The canonical JSON stored under [`VALIDATORS_KEY`].
    pub fn canonical(&self) -> String {
        canonical_json(&serde_json::to_value(self).unwrap_or(Value::Null))
    }
}

/// Why a validator-set change is refused. Each says exactly what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChangeError {
    /// The operation does not have the change's shape.
    #[error("a chain/validators operation is {{op, from, validators, signatures}}: {0}")]
    Malformed(String),
    /// No keys.
    #[error("the new validator set is empty")]
    EmptySet,
    /// Too many keys.
    #[error("the new validator set has {0} keys, at most {MAX_VALIDATORS} are allowed")]
    TooManyValidators(usize),
    /// A key that does not read.
    #[error("validator key {key:?} does not read: {reason}")]
    BadKey {
        /// The key as given.
        key: String,
        /// Why.
        reason: String,
    },
    /// The same key twice in the new set.
    #[error("validator key {0} is listed twice in the new set")]
    DuplicateKey(String),
    /// `from` is not far enough ahead.
    #[error(
        "the change would take over at height {from}, but executed at height {height} it can \
         take over at {earliest} at the earliest (propose it for a later height)"
    )]
    PastHeight {
        /// The change's height.
        from: u64,
        /// Where it executes.
        height: u64,
        /// The earliest allowed.
        earliest: u64,
    },
    /// Another change has not taken over yet.
    #[error("a change taking over at height {0} is pending: one change at a time")]
    Pending(u64),
    /// The new set is the set in force.
    #[error("the new validator set is the current one")]
    Unchanged,
    /// A signature by a key outside the current set.
    #[error("signature by {0}, which is not a validator of the current set")]
    WrongSigner(String),
    /// Two signatures by one validator.
    #[error("two signatures by validator {0}")]
    DuplicateSigner(String),
    /// A signature that does not verify.
    #[error("the signature of validator {0} does not verify over the change")]
    BadSignature(String),
    /// Fewer signatures than the current set's quorum.
    #[error("{got} signatures of the current set, a quorum is {needed}")]
    TooFew {
        /// Valid signatures.
        got: usize,
        /// The current set's quorum.
        needed: usize,
    },
}

/// The bytes each validator of the current set signs to authorize a change.
pub fn change_bytes(chain_id: &str, from: u64, validators: &[String]) -> Vec<u8> {
    let mut out = VALIDATORS_DOMAIN.to_vec();
    out.extend_from_slice(format!("{chain_id}\n{from}").as_bytes());
    for key in validators {
        out.push(b'\n');
        out.extend_from_slice(key.as_bytes());
    }
    out
}

/// Whether an operation is a validator-set change (which the ledger executes itself).
pub fn is_change(operation: &Value) -> bool {
    operation.get("op").and_then(Value::as_str) == Some(VALIDATORS_OP)
}

impl ValidatorChange {
    /// An unsigned change.
    pub fn new(from: u64, validators: Vec<String>) -> ValidatorChange {
        ValidatorChange {
            op: VALIDATORS_OP.into(),
            from,
            validators,
            signatures: Vec::new(),
        }
    }

    /// Reads an operation.
    pub fn parse(operation: &Value) -> Result<ValidatorChange, ChangeError> {
        let change: ValidatorChange = serde_json::from_value(operation.clone())
            .map_err(|e| ChangeError::Malformed(e.to_string()))?;
        if change.op != VALIDATORS_OP {
            return Err(ChangeError::Malformed(format!(
                "op is {:?}, not {VALIDATORS_OP:?}",
                change.op
            )));
        }
        Ok(change)
    }

    /// The operation as JSON.
    pub fn to_operation(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The bytes its signatures cover.
    pub fn signing_bytes(&self, chain_id: &str) -> Vec<u8> {
        change_bytes(chain_id, self.from, &self.validators)
    }

    /// Adds (or replaces) `key`'s signature.
    pub fn sign(&mut self, chain_id: &str, key: &PrivateKey) {
        let validator = key.public_key().to_encoded();
        let signature = key.sign(&self.signing_bytes(chain_id));
        self.signatures
            .retain(|s| !s.validator.eq_ignore_ascii_case(&validator));
        self.signatures.push(ChangeSignature {
            validator,
            signature,
        });
    }

    /// The new set: not empty, not too large, every key readable and listed once.
    pub fn new_set(&self) -> Result<ValidatorSet, ChangeError> {
        if self.validators.is_empty() {
            return Err(ChangeError::EmptySet);
        }
        if self.validators.len() > MAX_VALIDATORS {
            return Err(ChangeError::TooManyValidators(self.validators.len()));
        }
        let mut keys: Vec<PublicKey> = Vec::with_capacity(self.validators.len());
        for text in &self.validators {
            let key = PublicKey::from_encoded(text).map_err(|e| ChangeError::BadKey {
                key: text.clone(),
                reason: e.to_string(),
            })?;
            if keys.contains(&key) {
                return Err(ChangeError::DuplicateKey(text.clone()));
            }
            keys.push(key);
        }
        ValidatorSet::new(keys).map_err(|_| ChangeError::EmptySet)
    }

    /// Checks that a quorum of `current` signed this change, each once.
    pub fn check_signatures(
        &self,
        chain_id: &str,
        current: &ValidatorSet,
    ) -> Result<(), ChangeError> {
        let bytes = self.signing_bytes(chain_id);
        let mut seen: Vec<PublicKey> = Vec::with_capacity(self.signatures.len());
        for s in &self.signatures {
            let key = PublicKey::from_encoded(&s.validator)
                .ok()
                .filter(|k| current.keys().contains(k))
                .ok_or_else(|| ChangeError::WrongSigner(s.validator.clone()))?;
            if seen.contains(&key) {
                return Err(ChangeError::DuplicateSigner(s.validator.clone()));
            }
            key.verify(&bytes, &s.signature)
                .map_err(|_| ChangeError::BadSignature(s.validator.clone()))?;
            seen.push(key);
        }
        if seen.len() < current.quorum() {
            return Err(ChangeError::TooFew {
                got: seen.len(),
                needed: current.quorum(),
            });
        }
        Ok(())
    }

    /// Every rule of a change executed at `height`, where `current` is in force and
    /// `pending` is the height of a change not yet in force, if any. Returns the new set.
    pub fn check(
        &self,
        chain_id: &str,
        height: u64,
        current: &ValidatorSet,
        pending: Option<u64>,
    ) -> Result<ValidatorSet, ChangeError> {
        let new = self.new_set()?;
        let earliest = height.saturating_add(MIN_LEAD);
        if self.from < earliest {
            return Err(ChangeError::PastHeight {
                from: self.from,
                height,
                earliest,
            });
        }
        if let Some(from) = pending {
            return Err(ChangeError::Pending(from));
        }
        if new == *current {
            return Err(ChangeError::Unchanged);
        }
        self.check_signatures(chain_id, current)?;
        Ok(new)
    }

    /// What the change writes under [`VALIDATORS_KEY`].
    pub fn scheduled(&self) -> ScheduledSet {
        ScheduledSet {
            from: self.from,
            validators: self.validators.clone(),
        }
    }
}

/// Executes a change at `ctx.height` against `state`: the set in force is the newest change's
/// once it has taken over, the genesis set before any. The outer error is a storage failure,
/// the inner one the change's refusal.
pub fn execute(
    tx: &VerifiedTransaction,
    ctx: &ExecContext<'_>,
    state: &dyn StateView,
) -> Result<Result<Writes, ChangeError>, LedgerError> {
    let change = match ValidatorChange::parse(&tx.tx().body.operation) {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    let genesis = || {
        ctx.genesis
            .validator_set()
            .map_err(|e| LedgerError::InvalidGenesis(e.to_string()))
    };
    let (current, pending) = match state.get(VALIDATORS_KEY)? {
        Some(text) => {
            let scheduled: ScheduledSet = serde_json::from_str(&text)
                .map_err(|e| LedgerError::Corrupt(format!("{VALIDATORS_KEY}: {e}")))?;
            if scheduled.from > ctx.height {
                (genesis()?, Some(scheduled.from))
            } else {
                let set = ValidatorSet::from_encoded(&scheduled.validators)
                    .map_err(|e| LedgerError::Corrupt(format!("{VALIDATORS_KEY}: {e}")))?;
                (set, None)
            }
        }
        None => (genesis()?, None),
    };
    Ok(change
        .check(&ctx.genesis.chain_id, ctx.height, &current, pending)
        .map(|_| vec![(VALIDATORS_KEY.to_string(), change.scheduled().canonical())]))
}

/// The validator sets of a chain by height: the genesis set from 0, then each change's from
/// its `from`, in increasing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    sets: Vec<(u64, ValidatorSet)>,
}

impl Schedule {
    /// The genesis set alone.
    pub fn new(genesis: ValidatorSet) -> Schedule {
        Schedule {
            sets: vec![(0, genesis)],
        }
    }

    /// The set that certifies height `h`.
    pub fn at(&self, h: u64) -> &ValidatorSet {
        self.sets
            .iter()
            .rev()
            .find(|(from, _)| *from <= h)
            .map(|(_, s)| s)
            .unwrap_or(&self.sets[0].1)
    }

    /// Each set with its first height, oldest first.
    pub fn sets(&self) -> &[(u64, ValidatorSet)] {
        &self.sets
    }

    /// The first height of the newest set.
    pub fn last_from(&self) -> u64 {
        self.sets.last().map_or(0, |(from, _)| *from)
    }

    /// Adds a set from height `from` (after every set already scheduled).
    pub fn push(&mut self, from: u64, set: ValidatorSet) {
        self.sets.push((from, set));
    }

    /// Checks a hand-off with the sets known so far and adds the set it hands over to: the
    /// header is of `chain_id` and certified by the set of its height, the transaction is in
    /// it, and it is a change signed by a quorum of that set, taking over after the newest set.
    pub fn extend(&mut self, chain_id: &str, handoff: &Handoff) -> Result<(), HandoffError> {
        let header = &handoff.block.header;
        let height = header.height;
        if header.chain_id != chain_id {
            return Err(HandoffError::WrongChain {
                height,
                got: header.chain_id.clone(),
            });
        }
        let before = self.at(height).clone();
        handoff
            .block
            .certificate
            .verify(header, &before)
            .map_err(|error| HandoffError::Certificate { height, error })?;
        let leaf = handoff.transaction.hash();
        let root = merkle_path_root(leaf, handoff.index, header.tx_count, &handoff.path)
            .ok_or(HandoffError::NotInBlock { height })?;
        if root != header.tx_root {
            return Err(HandoffError::NotInBlock { height });
        }
        let change = ValidatorChange::parse(&handoff.transaction.body.operation)
            .map_err(|error| HandoffError::Change { height, error })?;
        if handoff.transaction.body.chain_id != chain_id {
            return Err(HandoffError::WrongChain {
                height,
                got: handoff.transaction.body.chain_id.clone(),
            });
        }
        if change.from <= self.last_from() || change.from < height.saturating_add(MIN_LEAD) {
            return Err(HandoffError::OutOfOrder {
                height,
                from: change.from,
            });
        }
        let new = change
            .new_set()
            .map_err(|error| HandoffError::Change { height, error })?;
        change
            .check_signatures(chain_id, &before)
            .map_err(|error| HandoffError::Change { height, error })?;
        self.push(change.from, new);
        Ok(())
    }
}

/// One hand-off of a proof: a committed validator-set change and the block that holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Handoff {
    /// The header of the block holding the change, certified by the set before it.
    pub block: CertifiedHeader,
    /// The change's transaction.
    pub transaction: Transaction,
    /// Its position in the block.
    pub index: u32,
    /// The sibling hashes from the transaction's hash up to `txRoot` (levels where the node is
    /// carried up unpaired have none).
    pub path: Vec<Hash>,
}

/// Why a hand-off does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HandoffError {
    /// Of another chain.
    #[error("the hand-off at height {height} is for chain {got:?}")]
    WrongChain {
        /// The block's height.
        height: u64,
        /// Its chain.
        got: String,
    },
    /// The header is not certified by the set before the change.
    #[error(
        "the hand-off block at height {height} is not certified by the set in force there: {error}"
    )]
    Certificate {
        /// The block's height.
        height: u64,
        /// Why.
        error: CertificateError,
    },
    /// The Merkle path does not lead to `txRoot`.
    #[error("the hand-off transaction is not in the block at height {height}")]
    NotInBlock {
        /// The block's height.
        height: u64,
    },
    /// Not a valid change by the set before it.
    #[error("the hand-off at height {height}: {error}")]
    Change {
        /// The block's height.
        height: u64,
        /// Why.
        error: ChangeError,
    },
    /// Hand-offs out of order, or a change taking over too early.
    #[error("the hand-off at height {height} takes over at {from}, not after the previous set")]
    OutOfOrder {
        /// The block's height.
        height: u64,
        /// The change's height.
        from: u64,
    },
}

/// The Merkle path of leaf `index` among `leaves` (as [`crate::hash::merkle_root`] pairs them).
pub fn merkle_path(leaves: &[Hash], index: usize) -> Vec<Hash> {
    let mut path = Vec::new();
    let mut level = leaves.to_vec();
    let mut i = index;
    while level.len() > 1 {
        let sibling = i ^ 1;
        if sibling < level.len() {
            path.push(level[sibling]);
        }
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => Hash::of(&[&[1], &l.0, &r.0]),
                [one] => *one,
                _ => Hash::ZERO,
            })
            .collect();
        i /= 2;
    }
    path
}

/// The root a path leads to from `leaf` at `index` of `count` leaves; none when the path has
/// the wrong length or the index is out of range.
pub fn merkle_path_root(leaf: Hash, index: u32, count: u32, path: &[Hash]) -> Option<Hash> {
    if index >= count {
        return None;
    }
    let (mut i, mut n, mut node) = (index as u64, count as u64, leaf);
    let mut siblings = path.iter();
    while n > 1 {
        if i % 2 == 1 {
            let s = siblings.next()?;
            node = Hash::of(&[&[1], &s.0, &node.0]);
        } else if i + 1 < n {
            let s = siblings.next()?;
            node = Hash::of(&[&[1], &node.0, &s.0]);
        }
        i /= 2;
        n = n.div_ceil(2);
    }
    if siblings.next().is_some() {
        return None;
    }
    Some(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::merkle_root;

    #[test]
    fn merkle_paths_lead_to_the_root_for_every_leaf_and_size() {
        for n in 1..=13u32 {
            let leaves: Vec<Hash> = (0..n).map(|i| Hash::of(&[&i.to_be_bytes()])).collect();
            let root = merkle_root(&leaves);
            for i in 0..n {
                let path = merkle_path(&leaves, i as usize);
                assert_eq!(
                    merkle_path_root(leaves[i as usize], i, n, &path),
                    Some(root)
                );
                if n > 1 {
                    assert_ne!(
                        merkle_path_root(leaves[(i as usize + 1) % n as usize], i, n, &path),
                        Some(root)
                    );
                }
            }
            assert_eq!(merkle_path_root(leaves[0], n, n, &[]), None);
        }
    }

    fn keys(n: usize) -> Vec<PrivateKey> {
        (0..n).map(|_| PrivateKey::generate()).collect()
    }

    fn set(keys: &[PrivateKey]) -> ValidatorSet {
        ValidatorSet::new(keys.iter().map(|k| k.public_key()).collect()).unwrap()
    }

    fn encoded(keys: &[PrivateKey]) -> Vec<String> {
        keys.iter().map(|k| k.public_key().to_encoded()).collect()
    }

    #[test]
    fn a_change_needs_a_quorum_of_the_current_set_and_a_sound_new_set() {
        let old = keys(4);
        let newcomer = PrivateKey::generate();
        let current = set(&old);
        let mut next = encoded(&old);
        next.push(newcomer.public_key().to_encoded());
        let mut change = ValidatorChange::new(10, next.clone());
        for k in &old[..3] {
            change.sign("t", k);
        }
        let new = change.check("t", 5, &current, None).unwrap();
        assert_eq!(new.keys().len(), 5);

        let mut two = ValidatorChange::new(10, next.clone());
        two.sign("t", &old[0]);
        two.sign("t", &old[1]);
        assert_eq!(
            two.check("t", 5, &current, None),
            Err(ChangeError::TooFew { got: 2, needed: 3 })
        );
        let mut outsider = two.clone();
        outsider.sign("t", &newcomer);
        assert_eq!(
            outsider.check("t", 5, &current, None),
            Err(ChangeError::WrongSigner(newcomer.public_key().to_encoded()))
        );
        let mut dup = two.clone();
        dup.signatures.push(dup.signatures[0].clone());
        assert_eq!(
            dup.check("t", 5, &current, None),
            Err(ChangeError::DuplicateSigner(
                old[0].public_key().to_encoded()
            ))
        );
        // Signed for another chain or height: the bytes differ.
        let mut other_chain = ValidatorChange::new(10, next.clone());
        for k in &old[..3] {
            other_chain.sign("u", k);
        }
        assert!(matches!(
            other_chain.check("t", 5, &current, None),
            Err(ChangeError::BadSignature(_))
        ));
        let mut moved = change.clone();
        moved.from = 11;
        assert!(matches!(
            moved.check("t", 5, &current, None),
            Err(ChangeError::BadSignature(_))
        ));
        assert_eq!(
            change.check("t", 9, &current, None),
            Err(ChangeError::PastHeight {
                from: 10,
                height: 9,
                earliest: 11
            })
        );
        assert_eq!(
            change.check("t", 5, &current, Some(7)),
            Err(ChangeError::Pending(7))
        );
        let mut empty = ValidatorChange::new(10, vec![]);
        empty.sign("t", &old[0]);
        assert_eq!(
            empty.check("t", 5, &current, None),
            Err(ChangeError::EmptySet)
        );
        let mut twice = encoded(&old);
        twice.push(twice[0].clone());
        assert_eq!(
            ValidatorChange::new(10, twice.clone()).check("t", 5, &current, None),
            Err(ChangeError::DuplicateKey(twice[0].clone()))
        );
        let mut same = ValidatorChange::new(10, encoded(&old));
        for k in &old[..3] {
            same.sign("t", k);
        }
        assert_eq!(
            same.check("t", 5, &current, None),
            Err(ChangeError::Unchanged)
        );
        assert!(matches!(
            ValidatorChange::new(10, vec!["zz".into()]).check("t", 5, &current, None),
            Err(ChangeError::BadKey { .. })
        ));
        assert!(matches!(
            ValidatorChange::parse(&serde_json::json!({"op": VALIDATORS_OP, "from": "x"})),
            Err(ChangeError::Malformed(_))
        ));
        let bytes = change_bytes("t", 10, &next);
        assert!(bytes.starts_with(b"sparkid/validators/v1\nt\n10\n"));
    }

    #[test]
    fn the_schedule_answers_the_set_of_each_height() {
        let a = keys(4);
        let b = keys(5);
        let mut schedule = Schedule::new(set(&a));
        schedule.push(10, set(&b));
        assert_eq!(schedule.at(0), &set(&a));
        assert_eq!(schedule.at(9), &set(&a));
        assert_eq!(schedule.at(10), &set(&b));
        assert_eq!(schedule.at(1000), &set(&b));
        assert_eq!(schedule.last_from(), 10);
    }
}
