//! Sub-chain anchoring ("1+N"): a sub-chain's certified headers recorded on the main chain.
//!
//! The owner of an AC code's delegation (`ns/ac/<ac>`) submits `anchor {ac, genesis, header}`
//! to the main chain. The first anchor carries the sub-chain's genesis: its `acCode` must be the
//! delegated code, and its validators become the set that every later anchor of that code is
//! checked against. Each anchor's header must be of that chain, certified by a quorum of those
//! validators, and higher than the last anchored one. The record `anchor/<ac>` then says, on the
//! main chain and provably, which sub-chain block is the latest that the main chain vouches
//! for; a resolver checks a sub-chain's answer against it.

use serde::{Deserialize, Serialize};
use sparkid_bid::{AcCode, PublicKey};
use sparkid_ledger::{CertifiedHeader, ExecContext, Genesis, Hash, LedgerError, StateView, Writes};

use crate::namespace::{namespace_key, read, speaks_for, NamespaceRecord};
use crate::state::{format_time, Kind, OperationError};

/// The state key of an AC code's latest anchor.
pub fn anchor_key(ac: &str) -> String {
    format!("anchor/{ac}")
}

/// The latest anchored header of a sub-chain, as the main chain records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnchorRecord {
    /// The sub-chain's AC code.
    pub ac: String,
    /// The sub-chain's chain id.
    pub chain_id: String,
    /// Hash of the sub-chain's canonical genesis (hex).
    pub genesis_hash: String,
    /// The sub-chain's validators (encoded public keys), from its genesis.
    pub validators: Vec<String>,
    /// The anchored header's height.
    pub height: u64,
    /// The anchored header's hash (hex).
    pub block_hash: String,
    /// The anchored header's state root (hex).
    pub state_root: String,
    /// The anchored header's time (Unix seconds).
    pub time: u64,
    /// When the main chain recorded it (block time).
    pub anchored: String,
    /// 1 at the first anchor, +1 per anchor.
    pub version_id: u64,
    /// The main-chain block that wrote this version.
    pub main_height: u64,
}

impl AnchorRecord {
    /// Whether `header` is the anchored header or a later one certified by the anchored
    /// validators: what a resolver asks of a sub-chain answer's proof header. The error says
    /// what does not hold.
    pub fn check(&self, header: &CertifiedHeader) -> Result<(), String> {
        let h = &header.header;
        if h.chain_id != self.chain_id {
            return Err(format!(
                "the header is of chain {:?}, the anchors of {} are of {:?}",
                h.chain_id, self.ac, self.chain_id
            ));
        }
        if h.height < self.height {
            return Err(format!(
                "the header is at height {}, older than the latest anchor ({})",
                h.height, self.height
            ));
        }
        if h.height == self.height && h.hash().to_hex() != self.block_hash {
            return Err(format!(
                "the header at height {} is not the anchored block {}",
                h.height, self.block_hash
            ));
        }
        let validators = sparkid_ledger::ValidatorSet::from_encoded(&self.validators)
            .map_err(|e| format!("the anchored validators: {e}"))?;
        header
            .certificate
            .verify(h, &validators)
            .map_err(|e| format!("not certified by the anchored validators: {e}"))
    }
}

/// Executes `anchor`: the storage error outside, the refusal inside.
pub(crate) fn execute(
    ac: &str,
    genesis: Option<&Genesis>,
    header: &CertifiedHeader,
    signer: &str,
    signer_key: &PublicKey,
    state: &dyn StateView,
    ctx: &ExecContext<'_>,
) -> Result<Result<Writes, OperationError>, LedgerError> {
    let malformed = |m: String| Ok(Err(OperationError::Malformed(m)));
    let ac: AcCode = match ac.parse() {
        Ok(a) => a,
        Err(e) => return malformed(format!("anchor: {ac:?} is not an AC code: {e}")),
    };
    let Some(delegation) = read::<NamespaceRecord>(state, &namespace_key(Kind::Ac, ac.as_str()))?
    else {
        return Ok(Err(OperationError::NoNamespace {
            kind: Kind::Ac,
            identifier: ac.to_string(),
        }));
    };
    if !speaks_for(&delegation.owner, signer, signer_key, state, true)? {
        return Ok(Err(OperationError::NotNamespaceOwner {
            signer: signer.to_string(),
            namespace: ac.to_string(),
            owner: delegation.owner,
        }));
    }
    let key = anchor_key(ac.as_str());
    let previous = read::<AnchorRecord>(state, &key)?;
    let (chain_id, genesis_hash, validators) = match (&previous, genesis) {
        (None, None) => {
            return malformed(format!(
                "the first anchor of {ac} must carry the sub-chain's genesis"
            ))
        }
        (_, Some(g)) => {
            let named = g.other.get("acCode").and_then(|v| v.as_str());
            if named != Some(ac.as_str()) {
                return malformed(format!("the genesis names acCode {named:?}, not {ac}"));
            }
            if let Err(e) = g.validator_set() {
                return malformed(format!("the genesis validators: {e}"));
            }
            let hash = Hash::of(&[g.canonical().as_bytes()]).to_hex();
            if let Some(p) = previous.as_ref().filter(|p| p.genesis_hash != hash) {
                return malformed(format!(
                    "the genesis differs from the one {ac} was first anchored with ({})",
                    p.genesis_hash
                ));
            }
            (g.chain_id.clone(), hash, g.validators.clone())
        }
        (Some(p), None) => (
            p.chain_id.clone(),
            p.genesis_hash.clone(),
            p.validators.clone(),
        ),
    };
    let record = AnchorRecord {
        ac: ac.to_string(),
        chain_id,
        genesis_hash,
        validators,
        height: header.header.height,
        block_hash: header.header.hash().to_hex(),
        state_root: header.header.state_root.to_hex(),
        time: header.header.time,
        anchored: format_time(ctx.time),
        version_id: previous.as_ref().map_or(1, |p| p.version_id + 1),
        main_height: ctx.height,
    };
    // Certified by the sub-chain's validators, and of its chain.
    let checked = AnchorRecord {
        height: 0,
        ..record.clone()
    };
    if let Err(e) = checked.check(header) {
        return malformed(format!("anchor of {ac}: {e}"));
    }
    if let Some(p) = previous
        .as_ref()
        .filter(|p| header.header.height <= p.height)
    {
        return malformed(format!(
            "anchor of {ac}: height {} is not above the latest anchor ({})",
            header.header.height, p.height
        ));
    }
    let text = serde_json::to_string(&record).unwrap_or_default();
    Ok(Ok(vec![(key, text)]))
}
