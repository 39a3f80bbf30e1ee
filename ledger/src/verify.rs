//! Re-checks a whole stored chain: every header link, certificate, transaction signature and
//! Merkle root, and every state root by re-executing all blocks from genesis into a fresh tree.

use std::collections::HashMap;

use crate::block::{tx_root, BlockHeader, GENESIS_KEY};
use crate::error::LedgerError;
use crate::hash::Hash;
use crate::machine::{ExecContext, StateMachine, StateView};
use crate::smt::{self, key_hash, MemoryNodes};
use crate::store::{Ledger, TxRejection};
use crate::tx::verify_all;
use crate::validators::{self, Schedule, ScheduledSet, VALIDATORS_KEY};
use crate::ValidatorSet;

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Blocks checked, genesis included.
    pub blocks: u64,
    /// Transactions re-executed.
    pub transactions: u64,
    /// State keys compared with the stored state.
    pub state_keys: u64,
    /// The final state root.
    pub state_root: Hash,
}

struct AsOf<'a> {
    ledger: &'a Ledger,
    height: u64,
    writes: &'a HashMap<String, String>,
}

impl StateView for AsOf<'_> {
    fn get(&self, key: &str) -> Result<Option<String>, LedgerError> {
        if let Some(v) = self.writes.get(key) {
            return Ok(Some(v.clone()));
        }
        self.ledger.value_before(key, self.height)
    }
}

/// Verifies the chain stored in `ledger` with `machine`.
pub fn verify_chain<M: StateMachine>(
    ledger: &Ledger,
    machine: &M,
) -> Result<VerifyReport, LedgerError> {
    verify_chain_with_progress(ledger, machine, &mut |_, _| {})
}

/// [`verify_chain`], telling `progress` after each block the height verified and the head's
/// (for a progress bar: `height + 1` of `head + 1` blocks).
pub fn verify_chain_with_progress<M: StateMachine>(
    ledger: &Ledger,
    machine: &M,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<VerifyReport, LedgerError> {
    let head = ledger.head();
    // The sets by height, as the re-executed changes schedule them.
    let mut schedule = Schedule::new(ledger.validators().clone());
    let genesis = ledger.genesis();
    let mut nodes = MemoryNodes::default();
    let genesis_json = genesis.canonical();
    let mut root = smt::update(
        &mut nodes,
        Hash::ZERO,
        &[(key_hash(GENESIS_KEY), Hash::of(&[genesis_json.as_bytes()]))],
    )
    .map_err(|e| LedgerError::Tree(e.to_string()))?;
    let mut previous: Option<BlockHeader> = None;
    let mut transactions = 0u64;
    let mut latest: HashMap<String, Hash> = HashMap::new();
    latest.insert(
        GENESIS_KEY.to_string(),
        Hash::of(&[genesis_json.as_bytes()]),
    );
    for height in 0..=head.header.height {
        let block = ledger
            .block(height)?
            .ok_or_else(|| LedgerError::Corrupt(format!("block {height} is missing")))?;
        let header = &block.header;
        let bad = |reason: String| LedgerError::BadBlock { height, reason };
        if header.height != height || header.chain_id != genesis.chain_id {
            return Err(bad("height or chain id does not match its position".into()));
        }
        block.certificate.verify(header, schedule.at(height))?;
        match &previous {
            None => {
                if header.previous_hash != Hash::ZERO
                    || header.tx_root != Hash::of(&[genesis_json.as_bytes()])
                {
                    return Err(bad(
                        "the genesis block does not commit to the stored genesis".into(),
                    ));
                }
            }
            Some(prev) => {
                if header.previous_hash != prev.hash() {
                    return Err(bad("previousHash does not match the previous header".into()));
                }
                if header.time < prev.time {
                    return Err(bad("time goes backwards".into()));
                }
                let verified = verify_all(block.transactions.clone())
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()?;
                let hashes: Vec<Hash> = verified.iter().map(|v| v.hash()).collect();
                if tx_root(&hashes) != header.tx_root || hashes.len() != header.tx_count as usize {
                    return Err(bad(
                        "txRoot or txCount does not match the transactions".into()
                    ));
                }
                let ctx = ExecContext {
                    height,
                    time: header.time,
                    genesis,
                };
                let mut writes: HashMap<String, String> = HashMap::new();
                for vtx in &verified {
                    let view = AsOf {
                        ledger,
                        height,
                        writes: &writes,
                    };
                    let valid_until = vtx.tx().body.valid_until;
                    if valid_until < height || valid_until > height + crate::tx::MAX_VALIDITY_BLOCKS
                    {
                        return Err(bad(format!(
                            "transaction {} is outside its validity window",
                            vtx.hash()
                        )));
                    }
                    if ledger.find_transaction(&vtx.hash())?.map(|(h, _)| h) != Some(height) {
                        return Err(bad(format!(
                            "transaction {} is not indexed at this height (a replay?)",
                            vtx.hash()
                        )));
                    }
                    let result = if validators::is_change(&vtx.tx().body.operation) {
                        validators::execute(vtx, &ctx, &view)?.map_err(TxRejection::Validators)
                    } else {
                        machine
                            .execute(vtx, &ctx, &view)?
                            .map_err(TxRejection::Operation)
                    };
                    match result {
                        Ok(w) => writes.extend(w),
                        Err(rejection) => {
                            let reason: TxRejection<M::Rejection> = rejection;
                            return Err(LedgerError::BadTransaction {
                                height,
                                hash: vtx.hash(),
                                reason: reason.to_string(),
                            });
                        }
                    }
                }
                transactions += verified.len() as u64;
                if let Some(text) = writes.get(VALIDATORS_KEY) {
                    let change: ScheduledSet = serde_json::from_str(text)
                        .map_err(|e| bad(format!("{VALIDATORS_KEY}: {e}")))?;
                    let set = ValidatorSet::from_encoded(&change.validators)
                        .map_err(|e| bad(format!("{VALIDATORS_KEY}: {e}")))?;
                    schedule.push(change.from, set);
                }
                let mut updates: Vec<(Hash, Hash)> = Vec::with_capacity(writes.len());
                for (key, value) in &writes {
                    if ledger.value_written_at(key, height)?.as_deref() != Some(value.as_str()) {
                        return Err(bad(format!(
                            "stored history of {key:?} differs from re-execution"
                        )));
                    }
                    let value_hash = Hash::of(&[value.as_bytes()]);
                    latest.insert(key.clone(), value_hash);
                    updates.push((key_hash(key), value_hash));
                }
                updates.sort_unstable();
                root = smt::update(&mut nodes, root, &updates)
                    .map_err(|e| LedgerError::Tree(e.to_string()))?;
            }
        }
        if root != header.state_root {
            return Err(bad(format!(
                "stateRoot {} is not the re-executed {root}",
                header.state_root
            )));
        }
        previous = Some(header.clone());
        progress(height, head.header.height);
    }
    if previous.as_ref().map(BlockHeader::hash) != Some(head.header.hash()) {
        return Err(LedgerError::Corrupt(
            "the stored head is not the last block".into(),
        ));
    }
    let mut state_keys = 0u64;
    ledger.for_each_state(|key, value| {
        state_keys += 1;
        match latest.get(key) {
            Some(h) if *h == Hash::of(&[value.as_bytes()]) => Ok(()),
            _ => Err(LedgerError::Corrupt(format!(
                "stored state of {key:?} differs from re-execution"
            ))),
        }
    })?;
    if state_keys != latest.len() as u64 {
        return Err(LedgerError::Corrupt(format!(
            "{} state keys stored, {} re-executed",
            state_keys,
            latest.len()
        )));
    }
    Ok(VerifyReport {
        blocks: head.header.height + 1,
        transactions,
        state_keys,
        state_root: root,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{set, Format1Ledger, Set};

    #[test]
    fn a_ledger_migrated_from_format_1_verifies_before_and_after_a_new_block() {
        let dir = tempfile::tempdir().unwrap();
        let old = Format1Ledger::create(dir.path());
        let ledger = Ledger::open(dir.path()).unwrap();
        verify_chain(&ledger, &Set).unwrap();
        let c = set(&old.user, "c", "4");
        let p = ledger
            .propose(&Set, vec![c], 4, |h| old.certify(h))
            .unwrap();
        assert!(p.block.is_some());
        drop(ledger);
        let ledger = Ledger::open(dir.path()).unwrap();
        verify_chain(&ledger, &Set).unwrap();
    }
}
