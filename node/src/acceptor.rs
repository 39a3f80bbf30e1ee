//! The acceptor of `spec/consensus.md`: what a validator promises and votes for, as a type with
//! no I/O but its [`VoteStore`].
//!
//! At the height after its head a validator keeps one [`AcceptorRecord`]: the round it promised
//! (it votes in no round below it) and its last vote. The rules:
//!
//! - a height at or below the head is committed ([`Refusal::Committed`]); one past the height
//!   after the head is out of reach ([`Refusal::Behind`]);
//! - a prepare for round `r` is promised only above any round promised before; the promise
//!   answers the last vote at that height;
//! - a proposal in round `r` is voted for only when no higher round was promised, and never
//!   for a second block in one round ([`Refusal::Equivocation`]); the same block again gets the
//!   same vote. A vote also promises its round.
//!
//! Every change of the record is made durable through the [`VoteStore`] before the answer
//! that depends on it is returned; a record that cannot be stored is not changed
//! ([`Refusal::Storage`]). [`FileVoteStore`] keeps it in [`VOTE_FILE`] of the data directory.
//! The block's own validity ([`sparkid_ledger::Ledger::check_block`]) and the proposer's
//! signature are checked by the caller, [`crate::consensus::Consensus`], before it asks here.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sparkid_ledger::{BlockHeader, Transaction};
use thiserror::Error;

/// The file in the data directory that holds this validator's promise and vote at the height
/// being decided, synced before any answer that depends on it.
pub const VOTE_FILE: &str = "consensus-vote.json";

/// The block a validator voted for, and the round of that vote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Accepted {
    /// The round of the vote.
    pub round: u64,
    /// The block's header.
    pub header: BlockHeader,
    /// Its transactions.
    pub transactions: Vec<Transaction>,
}

/// The answer to a prepare: a promise.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Promise {
    /// The validator's head height.
    pub head: u64,
    /// Its last vote at this height, if any.
    pub accepted: Option<Accepted>,
}

/// A validator's durable state at the height being decided.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceptorRecord {
    /// The height it is for.
    pub height: u64,
    /// The round below which it votes no more at this height.
    pub promised: Option<u64>,
    /// Its last vote at this height.
    pub accepted: Option<Accepted>,
}

/// Why a validator did not promise or vote.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Refusal {
    /// The height is committed here.
    #[error("this height is committed here (head {head})")]
    Committed {
        /// This validator's head.
        head: u64,
    },
    /// This validator is behind and could not catch up.
    #[error("this validator is behind (head {head})")]
    Behind {
        /// This validator's head.
        head: u64,
    },
    /// It promised a higher round.
    #[error("promised round {round} at this height")]
    Promised {
        /// The round promised.
        round: u64,
    },
    /// It voted for another block in this round.
    #[error(
        "already voted for another block at this height in round {round}: a validator votes \
         for one block per height and round"
    )]
    Equivocation {
        /// The round.
        round: u64,
    },
    /// The request is not signed by the round's proposer.
    #[error("{0}")]
    WrongProposer(String),
    /// The block does not check.
    #[error("the block does not check: {0}")]
    Invalid(String),
    /// Its vote could not be made durable.
    #[error("the vote could not be stored: {0}")]
    Storage(String),
}

/// The highest height a consensus message may name: far above any chain (a block a
/// millisecond for 290 million years), and `height + 1` is always representable.
pub const MAX_HEIGHT: u64 = i64::MAX as u64;

/// The highest round a validator takes part in. A failed attempt moves a proposer up by at most
/// the number of validators; 2^32 rounds at one height is beyond any contention, and the bound
/// keeps the next-round arithmetic far from overflow. Without it, one message naming round
/// `u64::MAX` would make a validator promise away every round it could ever vote in.
pub const MAX_ROUND: u64 = u32::MAX as u64;

/// Whether height `h` is the one being decided on a validator whose head is `head`.
pub fn check_height(head: u64, h: u64) -> Result<(), Refusal> {
    if h <= head {
        Err(Refusal::Committed { head })
    } else if h > head.saturating_add(1) {
        Err(Refusal::Behind { head })
    } else {
        Ok(())
    }
}

/// Where an acceptor keeps its record.
pub trait VoteStore: Send {
    /// Makes `record` durable: once it returns `Ok`, a crash at any point leaves `record`.
    fn save(&mut self, record: &AcceptorRecord) -> std::io::Result<()>;
}

/// Why the stored record could not be read.
#[derive(Debug, Error)]
pub enum VoteStoreError {
    /// The file could not be read.
    #[error("{}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The file does not hold a record.
    #[error("{}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: serde_json::Error,
    },
}

/// The record in [`VOTE_FILE`] of a data directory.
#[derive(Debug)]
pub struct FileVoteStore {
    path: PathBuf,
}

impl FileVoteStore {
    /// The store in `dir` and the record it holds (an empty one when there is no file yet).
    pub fn open(dir: &Path) -> Result<(FileVoteStore, AcceptorRecord), VoteStoreError> {
        let path = dir.join(VOTE_FILE);
        let record = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).map_err(|source| VoteStoreError::Decode {
                path: path.clone(),
                source,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => AcceptorRecord::default(),
            Err(source) => return Err(VoteStoreError::Read { path, source }),
        };
        Ok((FileVoteStore { path }, record))
    }
}

impl VoteStore for FileVoteStore {
    /// A new file, synced, renamed over the old one, the directory synced, so that a kill -9 at
    /// any point leaves the old record or the new one.
    fn save(&mut self, record: &AcceptorRecord) -> std::io::Result<()> {
        use std::io::Write;
        let tmp = self.path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&serde_json::to_vec(record).unwrap_or_default())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// The acceptor: its record and the store that keeps it.
#[derive(Debug)]
pub struct Acceptor<S> {
    store: S,
    record: AcceptorRecord,
}

impl<S: VoteStore> Acceptor<S> {
    /// An acceptor whose store holds `record`.
    pub fn new(store: S, record: AcceptorRecord) -> Acceptor<S> {
        Acceptor { store, record }
    }

    /// The record for height `h`: the stored one, or a fresh one when that is for another
    /// height (an older record is for a committed height, where every request is refused).
    pub fn record_at(&self, h: u64) -> AcceptorRecord {
        if self.record.height == h {
            self.record.clone()
        } else {
            AcceptorRecord {
                height: h,
                ..Default::default()
            }
        }
    }

    fn store(&mut self, record: AcceptorRecord) -> Result<(), Refusal> {
        self.store
            .save(&record)
            .map_err(|e| Refusal::Storage(e.to_string()))?;
        self.record = record;
        Ok(())
    }

    /// Promises round `r` at height `h` (the head being `head`): never to vote below it there.
    /// Stored before it returns.
    pub fn prepare(&mut self, head: u64, h: u64, r: u64) -> Result<Promise, Refusal> {
        check_height(head, h)?;
        let mut record = self.record_at(h);
        if let Some(p) = record.promised {
            if r <= p {
                return Err(Refusal::Promised { round: p });
            }
        }
        record.promised = Some(r);
        let accepted = record.accepted.clone();
        self.store(record)?;
        Ok(Promise {
            head: h - 1,
            accepted,
        })
    }

    /// Accepts `header` and its `transactions` in round `r` (the head being `head`): when it
    /// returns `Ok`, the vote is stored and may be signed. The block is checked by the caller.
    pub fn accept(
        &mut self,
        head: u64,
        r: u64,
        header: &BlockHeader,
        transactions: &[Transaction],
    ) -> Result<(), Refusal> {
        check_height(head, header.height)?;
        let mut record = self.record_at(header.height);
        if let Some(p) = record.promised {
            if r < p {
                return Err(Refusal::Promised { round: p });
            }
        }
        if let Some(a) = &record.accepted {
            if a.round == r {
                if a.header.hash() == header.hash() {
                    // The same proposal again: the same vote.
                    return Ok(());
                }
                return Err(Refusal::Equivocation { round: r });
            }
        }
        record.promised = Some(r);
        record.accepted = Some(Accepted {
            round: r,
            header: header.clone(),
            transactions: transactions.to_vec(),
        });
        self.store(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparkid_ledger::Hash;

    /// Keeps the records saved; fails every save while `broken`.
    #[derive(Default)]
    struct Memory {
        saved: Vec<AcceptorRecord>,
        broken: bool,
    }

    impl VoteStore for Memory {
        fn save(&mut self, record: &AcceptorRecord) -> std::io::Result<()> {
            if self.broken {
                return Err(std::io::Error::other("disk full"));
            }
            self.saved.push(record.clone());
            Ok(())
        }
    }

    fn header(height: u64, time: u64) -> BlockHeader {
        BlockHeader {
            chain_id: "test".into(),
            height,
            previous_hash: Hash::of(&[b"previous"]),
            time,
            tx_root: Hash::of(&[b"txs"]),
            tx_count: 0,
            state_root: Hash::of(&[b"state"]),
            proposer: "proposer".into(),
        }
    }

    fn acceptor() -> Acceptor<Memory> {
        Acceptor::new(Memory::default(), AcceptorRecord::default())
    }

    #[test]
    fn only_the_height_after_the_head_is_decided() {
        let mut a = acceptor();
        assert_eq!(
            a.prepare(5, 5, 1).unwrap_err(),
            Refusal::Committed { head: 5 }
        );
        assert_eq!(a.prepare(5, 7, 1).unwrap_err(), Refusal::Behind { head: 5 });
        assert_eq!(
            a.accept(5, 0, &header(4, 1), &[]).unwrap_err(),
            Refusal::Committed { head: 5 }
        );
        assert!(a.store.saved.is_empty());
        assert_eq!(a.prepare(5, 6, 1).unwrap().head, 5);
    }

    #[test]
    fn a_promise_is_only_made_above_the_rounds_promised() {
        let mut a = acceptor();
        a.prepare(0, 1, 3).unwrap();
        assert_eq!(
            a.prepare(0, 1, 3).unwrap_err(),
            Refusal::Promised { round: 3 }
        );
        assert_eq!(
            a.prepare(0, 1, 2).unwrap_err(),
            Refusal::Promised { round: 3 }
        );
        a.prepare(0, 1, 4).unwrap();
        assert_eq!(a.store.saved.last().unwrap().promised, Some(4));
    }

    #[test]
    fn no_vote_below_a_promise() {
        let mut a = acceptor();
        a.prepare(0, 1, 2).unwrap();
        assert_eq!(
            a.accept(0, 1, &header(1, 1), &[]).unwrap_err(),
            Refusal::Promised { round: 2 }
        );
        // The promised round itself is votable.
        a.accept(0, 2, &header(1, 1), &[]).unwrap();
    }

    #[test]
    fn one_block_per_round() {
        let mut a = acceptor();
        a.accept(0, 0, &header(1, 1), &[]).unwrap();
        // The same block again: the same vote, nothing stored anew.
        a.accept(0, 0, &header(1, 1), &[]).unwrap();
        assert_eq!(a.store.saved.len(), 1);
        assert_eq!(
            a.accept(0, 0, &header(1, 2), &[]).unwrap_err(),
            Refusal::Equivocation { round: 0 }
        );
        // Another block in a higher round is a new vote, which also promises that round.
        a.accept(0, 3, &header(1, 2), &[]).unwrap();
        assert_eq!(
            a.accept(0, 2, &header(1, 1), &[]).unwrap_err(),
            Refusal::Promised { round: 3 }
        );
    }

    #[test]
    fn a_promise_answers_the_last_vote() {
        let mut a = acceptor();
        a.accept(0, 0, &header(1, 1), &[]).unwrap();
        let promise = a.prepare(0, 1, 1).unwrap();
        let accepted = promise.accepted.expect("the vote of round 0");
        assert_eq!(accepted.round, 0);
        assert_eq!(accepted.header, header(1, 1));
    }

    #[test]
    fn a_new_height_starts_afresh() {
        let mut a = acceptor();
        a.prepare(0, 1, 5).unwrap();
        a.accept(0, 5, &header(1, 1), &[]).unwrap();
        // Height 1 committed: height 2 knows nothing of height 1's rounds.
        let promise = a.prepare(1, 2, 1).unwrap();
        assert!(promise.accepted.is_none());
        assert_eq!(a.record_at(2).promised, Some(1));
        assert_eq!(
            a.record_at(3),
            AcceptorRecord {
                height: 3,
                ..Default::default()
            }
        );
    }

    #[test]
    fn what_cannot_be_stored_is_not_promised() {
        let mut a = acceptor();
        a.store.broken = true;
        assert!(matches!(a.prepare(0, 1, 1), Err(Refusal::Storage(_))));
        assert!(matches!(
            a.accept(0, 0, &header(1, 1), &[]),
            Err(Refusal::Storage(_))
        ));
        assert_eq!(a.record_at(1).promised, None);
        assert_eq!(a.record_at(1).accepted, None);
        a.store.broken = false;
        a.accept(0, 0, &header(1, 2), &[]).unwrap();
    }

    #[test]
    fn the_file_store_keeps_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let (store, record) = FileVoteStore::open(dir.path()).unwrap();
        assert_eq!(record, AcceptorRecord::default());
        let mut a = Acceptor::new(store, record);
        a.accept(0, 2, &header(1, 1), &[]).unwrap();
        let (_, reopened) = FileVoteStore::open(dir.path()).unwrap();
        assert_eq!(reopened, a.record_at(1));
        assert_eq!(reopened.accepted.unwrap().round, 2);
    }
}
