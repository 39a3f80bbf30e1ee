//! The warm path of a did:bid resolution: answered from the in-process cache (L1) on the
//! async worker that received the request, with no blocking-pool hop, no Redis and no ledger.
//!
//! A did:bid answer is a function of two state keys: the DID's record `did/<did>` and its
//! reverse index `aka/<did>` (the bridges' bound identifiers, `alsoKnownAs`). When L1 holds both
//! (present or cached as absent), the answer is computed from them here; otherwise the caller
//! takes the general path, which reads them on a blocking thread and fills L1 for the next time.
//!
//! **Rendered answers.** The HTTP binding keeps, in the derived form of the DID's L1 entry
//! ([`crate::cache::Memo`]), the bytes it last answered for it ([`RenderSlot`]), with the
//! representation and the `aka/<did>` value they were rendered with. A request for a DID whose
//! entry holds a rendering of the same representation made with the `aka/<did>` value that L1
//! holds now is answered with those bytes. That is exactly as current as the general path:
//! - the rendering dies with its entry, which the block that changes the DID's record drops;
//! - it is used only while `aka/<did>` (itself kept current in L1 by the blocks that change it)
//!   still has the value it was rendered with, so binding or unbinding an identifier, which
//!   changes `aka/<did>` and not the DID's record, is seen at once;
//! - only requests whose answer is the current record's take this path ([`serves`]): no
//!   `versionId`, `versionTime`, `noCache`, `proof`, `expandRelativeUrls`, key options, and only
//!   DIDs of this ledger with no AC code (sub-chain DIDs are routed by the general path).
//!
//! An entry keeps one rendering (the last representation asked for): L1 charges each entry
//! room for one derived form about the size of its value ([`crate::cache::entry_weight`]).
//!
//! **The cold path** ([`cold_answer`]): when L1 lacks either key, the same requests read both on
//! one blocking-pool hop, in one Redis round trip and one ledger snapshot, fill L1 and keep the
//! rendering, instead of the general path's two hops and two reads per key.

use std::sync::{Arc, Mutex};

use serde_json::Map;
use sparkid_bid::Bid;
use sparkid_bridges::{BridgeError, Bridges, RecordSource};
use sparkid_registrar::namespace::alias_key;
use sparkid_registrar::{did_key, DidRecord};

use crate::answers;
use crate::didkey::KeyOptions;
use crate::negotiate::{Rendered, Representation};
use crate::records::Records;
use crate::result::{add_aliases, document_metadata, Aliases, Resolution, ResolutionOptions};

/// The derived form of a `did/<did>` L1 entry: the last answer rendered from it.
#[derive(Default)]
pub struct RenderSlot(Mutex<Option<Arc<Kept>>>);

impl RenderSlot {
    fn get(&self) -> Option<Arc<Kept>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, kept: Arc<Kept>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(kept);
    }
}

/// A rendered answer and what it was rendered from (besides the entry's own value).
struct Kept {
    did: Box<str>,
    aka: Option<Arc<str>>,
    rep: Representation,
    rendered: Rendered,
}

/// Whether the options leave the answer the current record's: no version selected, no
/// `noCache`, no `proof`, no did:key options, not forwarded by another resolver (sub-chain
/// hops). `expandRelativeUrls` is allowed (the caller applies it).
pub fn applies(options: &ResolutionOptions) -> bool {
    options.version_id.is_none()
        && options.version_time.is_none()
        && !options.no_cache
        && !options.proof
        && options.key == KeyOptions::default()
        && options.subchain_hops == 0
}

/// Whether the HTTP binding may answer these options with a kept rendering: [`applies`] and
/// no `expandRelativeUrls`.
pub fn serves(options: &ResolutionOptions) -> bool {
    applies(options) && !options.expand_relative_urls
}

/// What L1 holds for a DID: its record (present) with the entry's slot, and its `aka/<did>`.
struct Peeked {
    record: Arc<str>,
    slot: Arc<RenderSlot>,
    aka: Option<Arc<str>>,
}

/// Both keys of `did` from L1, or none when either is missing (or the DID is cached as absent:
/// the general path words that answer).
fn peek(records: &Records, did: &str) -> Option<Peeked> {
    let key = format!("did/{did}");
    let (anchored, slot) = records.peek_derived(&key, |_| RenderSlot::default())??;
    let aka = records.peek(&alias_key(did))?.map(|a| a.value);
    Some(Peeked {
        record: anchored.value,
        slot,
        aka,
    })
}

/// The DID if this ledger answers it as it is: a main-chain-style DID (no AC code) written
/// canonically (its state key is `did/<did>`, the key [`peek`] looked up).
pub(crate) fn local_bid(did: &str) -> Option<Bid> {
    let bid: Bid = did.parse().ok()?;
    if bid.ac_code().is_some() || bid.is_ac_code_only() {
        return None;
    }
    (did_key(&bid).strip_prefix("did/") == Some(did)).then_some(bid)
}

fn same(a: &Option<Arc<str>>, b: &Option<Arc<str>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
        _ => false,
    }
}

/// The two records of a DID, as the bridges read them: `aka/<did>` and `did/<did>` (whose
/// document may confirm bound identifiers) as L1 holds them.
struct DidRecords<'a> {
    aka_key: &'a str,
    aka: Option<&'a Arc<str>>,
    did_key: &'a str,
    record: Option<&'a str>,
}

impl RecordSource for DidRecords<'_> {
    fn record(&self, key: &str) -> Result<Option<Arc<str>>, BridgeError> {
        if key == self.aka_key {
            Ok(self.aka.cloned())
        } else if key == self.did_key {
            Ok(self.record.map(Arc::from))
        } else {
            Err(BridgeError::Source(format!("{key} was not read")))
        }
    }
}

fn bridges() -> &'static Bridges {
    static BRIDGES: std::sync::OnceLock<Bridges> = std::sync::OnceLock::new();
    BRIDGES.get_or_init(Bridges::standard)
}

/// The confirmed bound identifiers of `did` from its `aka/<did>` value and its record `did/<did>`
/// (its stored JSON; none when absent).
fn aliases_of(
    did: &str,
    aka: Option<&Arc<str>>,
    record: Option<&str>,
) -> Result<Aliases, BridgeError> {
    let aka_key = alias_key(did);
    let record_key = format!("did/{did}");
    let source = DidRecords {
        aka_key: &aka_key,
        aka,
        did_key: &record_key,
        record,
    };
    Ok(Aliases {
        also_known_as: bridges().aliases(&source, did)?,
        ..Aliases::default()
    })
}

/// The resolution of the current record `record` (its stored JSON) of `did`, with the aliases
/// of `aka`: what the general path answers. None when something does not parse (the general
/// path then words the error).
pub(crate) fn resolution_of(did: &str, stored: &str, aka: Option<&Arc<str>>) -> Option<Resolution> {
    let record: DidRecord = serde_json::from_str(stored).ok()?;
    let document = if record.deactivated {
        None
    } else {
        Some(record.bid_document().ok()?.to_did_core())
    };
    let mut resolution = Resolution {
        document,
        document_metadata: document_metadata(&record, None),
        resolution_metadata: Map::new(),
    };
    add_aliases(&mut resolution, aliases_of(did, aka, Some(stored)).ok()?);
    Some(resolution)
}

/// The resolution of `did` from L1 alone, if it holds both keys and the options leave the
/// answer the current record's ([`applies`]; `expandRelativeUrls` is the caller's to apply).
/// Never blocks.
pub fn peek_resolution(
    records: &Records,
    did: &str,
    options: &ResolutionOptions,
) -> Option<Resolution> {
    if !applies(options) {
        return None;
    }
    let peeked = peek(records, did)?;
    local_bid(did)?;
    resolution_of(did, &peeked.record, peeked.aka.as_ref())
}

/// The HTTP binding's answer to a plain `did` in `rep`: from L1, the kept rendering when it is
/// still the answer (its body shared, not copied), else one rendered now by `render` (and
/// kept); in the answer records' representation, when L1 lacks it, the DID's answer record read
/// here (one ledger lookup, which fills L1). None: take the general path. The caller checks
/// [`serves`]. Never waits on Redis or another thread.
///
/// The answer record is read on the caller's thread, an event loop or an async worker: one
/// lookup in redb's cache or the OS page cache takes microseconds, less than the hop to the
/// blocking pool and back that it replaces (that hop's futex wake-ups topped the cold run's
/// profile, 18 % of the daemon's samples).
pub fn answer(
    records: &Records,
    did: &str,
    rep: Representation,
    render: impl FnOnce(Resolution) -> Rendered,
) -> Option<Rendered> {
    if rep == answers::REPRESENTATION {
        if let Some(answer) = stored_peek(records, did) {
            if let Some(m) = records.cache().map(|c| c.metrics()) {
                m.rendered_kept.inc();
            }
            return Some(answer);
        }
        if local_bid(did).is_some() {
            if let Some(answer) = stored_read(records, did) {
                return Some(answer);
            }
        }
    }
    let peeked = peek(records, did)?;
    let metrics = records.cache().map(|c| c.metrics());
    if let Some(kept) = peeked.slot.get() {
        if kept.rep == rep && same(&kept.aka, &peeked.aka) && *kept.did == *did {
            if let Some(m) = metrics {
                m.rendered_kept.inc();
            }
            return Some(kept.rendered.clone());
        }
    }
    local_bid(did)?;
    let resolution = resolution_of(did, &peeked.record, peeked.aka.as_ref())?;
    let rendered = render(resolution);
    if let Some(m) = metrics {
        m.rendered_new.inc();
    }
    peeked.slot.set(Arc::new(Kept {
        did: did.into(),
        aka: peeked.aka,
        rep,
        rendered: rendered.clone(),
    }));
    Some(rendered)
}

/// The HTTP binding's answer to a plain `did` in `rep` when L1 lacks it (the cold path): its
/// record and its `aka/<did>` read together on one blocking-pool hop (one Redis round trip,
/// one ledger snapshot; see [`Records::current_many`]), which fills L1; the answer rendered
/// there by `render` and kept in the record's new entry, so the next request for it is warm.
/// The general path would hop twice (the record, then the aliases) and read each key alone.
/// None: take the general path (a DID of another chain or not canonical, not registered, a
/// failed read, a record that does not parse: it words those answers). The caller checks
/// [`serves`].
pub async fn cold_answer(
    records: &Records,
    did: &str,
    rep: Representation,
    render: impl FnOnce(Resolution) -> Rendered + Send + 'static,
) -> Option<Rendered> {
    local_bid(did)?;
    let records = records.clone();
    let did = did.to_string();
    tokio::task::spawn_blocking(move || {
        if rep == answers::REPRESENTATION {
            if let Some(answer) = stored_read(&records, &did) {
                return Some(answer);
            }
        }
        read_and_render(&records, &did, rep, render)
    })
    .await
    .ok()
    .flatten()
}

/// `did`'s answer record ([`crate::answers`]) from L1 alone; none when L1 lacks it. Never
/// blocks.
fn stored_peek(records: &Records, did: &str) -> Option<Rendered> {
    let (_, answer) =
        records.peek_derived(&answers::l1_key(did), |a| answers::rendered(&a.value))??;
    Some((*answer).clone())
}

/// `did`'s answer from the ledger's answer record (blocking: a ledger read; no Redis: see
/// [`crate::answers`]), filling L1; none when answers are not served yet, the DID has none, or
/// the read failed (the caller then takes the other paths).
fn stored_read(records: &Records, did: &str) -> Option<Rendered> {
    let ledger = records.ledger();
    if !ledger.answers_ready() {
        return None;
    }
    if let Some(cache) = records.cache() {
        // L1 off with Redis on: Redis is the cache the operator chose; its reads are kept.
        if cache.l1_bytes().1 == 0 && cache.l2_configured() {
            return None;
        }
        // The answer's L1 entry missed (the warm path peeked first), as a read through the
        // cache counts it.
        cache.metrics().l1_misses.inc();
    }
    let token = records.cache().map(|c| c.begin());
    // The head first, so that the answer is at least as new as the height stamped on it.
    let height = ledger.height();
    let stored = match ledger.answer(did) {
        Ok(stored) => stored?,
        Err(error) => {
            tracing::debug!(did, %error, "reading an answer record failed; the other paths answer");
            return None;
        }
    };
    let Some((ttl, body)) = answers::decode(&stored) else {
        tracing::warn!(did, "an answer record of another layout: ignored");
        return None;
    };
    let body: Arc<str> = Arc::from(body);
    let Some(cache) = records.cache() else {
        return Some(answers::rendered(&body));
    };
    cache.metrics().rendered_stored.inc();
    match token.and_then(|t| cache.fill_l1(&answers::l1_key(did), body.clone(), height, ttl, t)) {
        Some(memo) => Some((*memo.get_or_derive(|| answers::rendered(&body))).clone()),
        None => Some(answers::rendered(&body)),
    }
}

/// [`cold_answer`]'s blocking half.
fn read_and_render(
    records: &Records,
    did: &str,
    rep: Representation,
    render: impl FnOnce(Resolution) -> Rendered,
) -> Option<Rendered> {
    let record_key = format!("did/{did}");
    let aka_key = alias_key(did);
    let mut read = match records.current_many(&[&record_key, &aka_key]) {
        Ok(read) => read.into_iter(),
        Err(error) => {
            tracing::debug!(did, %error, "cold read failed; the general path answers");
            return None;
        }
    };
    let (record, aka) = (read.next()?, read.next()?);
    let (record, slot) = record.derived(|_| RenderSlot::default())?;
    let aka = aka.into_anchored().map(|a| a.value);
    let resolution = resolution_of(did, &record.value, aka.as_ref())?;
    let rendered = render(resolution);
    if let Some(m) = records.cache().map(|c| c.metrics()) {
        m.rendered_new.inc();
    }
    slot.set(Arc::new(Kept {
        did: did.into(),
        aka,
        rep,
        rendered: rendered.clone(),
    }));
    Some(rendered)
}

/// [`crate::bridge_source::did_aliases`] without blocking an async worker: from L1 when it
/// holds `aka/<did>` and `did/<did>`, else read on a blocking thread (which fills L1).
pub async fn aliases(records: &Records, did: &str) -> Aliases {
    if let (Some(aka), Some(record)) = (
        records.peek(&alias_key(did)),
        records.peek(&format!("did/{did}")),
    ) {
        let record = record.map(|r| r.value);
        if let Ok(aliases) = aliases_of(did, aka.map(|a| a.value).as_ref(), record.as_deref()) {
            return aliases;
        }
    }
    let records = records.clone();
    let owned = did.to_string();
    match tokio::task::spawn_blocking(move || crate::bridge_source::did_aliases(&records, &owned))
        .await
    {
        Ok(aliases) => aliases,
        Err(e) => {
            tracing::warn!(did, error = %e, "reading the DID's bound identifiers");
            Aliases::default()
        }
    }
}

/// The identifiers bound to `did` read from the ledger itself, past both cache tiers: the
/// aliases of a `noCache` resolution, which must not come from a cache any more than its
/// document does (the read refreshes the cache, as [`Records::current`] does).
pub async fn aliases_from_ledger(records: &Records, did: &str) -> Aliases {
    let records = records.clone();
    let owned = did.to_string();
    let read = tokio::task::spawn_blocking(move || {
        let aka = records.current(&alias_key(&owned), true)?;
        let record = records.current(&format!("did/{owned}"), true)?;
        Ok::<_, sparkid_ledger::LedgerError>((aka.map(|a| a.value), record.map(|r| r.value)))
    })
    .await;
    let aliases = match read {
        Ok(Ok((aka, record))) => {
            aliases_of(did, aka.as_ref(), record.as_deref()).map_err(|e| e.to_string())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    aliases.unwrap_or_else(|error| {
        tracing::warn!(did, %error, "reading the DID's bound identifiers");
        Aliases::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_current_record_options_take_the_warm_path() {
        let mut o = ResolutionOptions::default();
        assert!(applies(&o) && serves(&o));
        o.expand_relative_urls = true;
        assert!(applies(&o) && !serves(&o));
        for change in [
            |o: &mut ResolutionOptions| o.no_cache = true,
            |o: &mut ResolutionOptions| o.proof = true,
            |o: &mut ResolutionOptions| o.version_id = Some("1".into()),
            |o: &mut ResolutionOptions| o.subchain_hops = 1,
            |o: &mut ResolutionOptions| o.key.public_key_format = Some("Multikey".into()),
        ] {
            let mut o = ResolutionOptions::default();
            change(&mut o);
            assert!(!applies(&o) && !serves(&o), "{o:?}");
        }
    }

    #[test]
    fn only_canonical_main_chain_dids_are_local() {
        let key = sparkid_bid::PrivateKey::generate();
        let bid = Bid::derive(&key.public_key(), None).unwrap().to_string();
        assert!(local_bid(&bid).is_some());
        let ac: sparkid_bid::AcCode = "by01".parse().unwrap();
        let sub = Bid::derive(&key.public_key(), Some(ac))
            .unwrap()
            .to_string();
        assert!(local_bid(&sub).is_none());
        assert!(local_bid("did:bid:by01").is_none());
        assert!(local_bid("did:bid:nope").is_none());
    }
}
