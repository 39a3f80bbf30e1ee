//! The soak's ledger of expectations: every acknowledged write (the registrar answered
//! `finished` with the block height holding it), what each read must therefore show, and the
//! figures of the run.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::rng::Rng;

/// One acknowledged version of a DID.
#[derive(Debug, Clone)]
pub struct Written {
    /// Its `versionId`.
    pub version: u64,
    /// The height of the block holding it.
    pub height: u64,
    /// The service endpoint only this version carries (none for a create).
    pub marker: Option<String>,
}

/// Every acknowledged write, by DID.
#[derive(Debug, Default)]
pub struct Book {
    dids: Vec<String>,
    writes: HashMap<String, Vec<Written>>,
}

impl Book {
    /// Records an acknowledged write.
    pub fn record(&mut self, did: &str, written: Written) {
        let versions = self.writes.entry(did.to_string()).or_default();
        if versions.is_empty() {
            self.dids.push(did.to_string());
        }
        versions.push(written);
    }

    /// A random DID with an acknowledged create.
    pub fn random_did(&self, rng: &mut Rng) -> Option<String> {
        (!self.dids.is_empty()).then(|| self.dids[rng.below(self.dids.len())].clone())
    }

    /// The least version a node at `height` must serve for `did`: the latest acknowledged
    /// version committed at or below that height (0: none, the DID may be unknown there).
    /// Unacknowledged writes that committed anyway only raise the version, never lower it.
    pub fn required(&self, did: &str, height: u64) -> u64 {
        self.writes.get(did).map_or(0, |v| {
            v.iter()
                .filter(|w| w.height <= height)
                .map(|w| w.version)
                .max()
                .unwrap_or(0)
        })
    }

    /// The acknowledged write of `did` at `version`, if the soak made it.
    pub fn version(&self, did: &str, version: u64) -> Option<&Written> {
        self.writes.get(did)?.iter().find(|w| w.version == version)
    }

    /// Every acknowledged write, by DID.
    pub fn all(&self) -> Vec<(String, Vec<Written>)> {
        self.dids
            .iter()
            .map(|d| (d.clone(), self.writes[d].clone()))
            .collect()
    }
}

/// The figures of a run.
#[derive(Debug)]
pub struct Stats {
    /// Acknowledged creates.
    pub creates: u64,
    /// Acknowledged updates.
    pub updates: u64,
    /// Writes the registrar refused (`failed`, or another answer), by reason.
    pub refused: BTreeMap<String, u64>,
    /// The first refusal of each kind: when, through which node, the whole reason.
    pub refused_examples: BTreeMap<String, String>,
    /// Writes with no answer (connection lost, timeout): their outcome is unknown.
    pub write_errors: BTreeMap<String, u64>,
    /// Reads answered.
    pub reads: u64,
    /// Of which with `?proof=true`.
    pub proof_reads: u64,
    /// Wrong answers: a read or a final check contradicting an acknowledged write.
    pub wrong: u64,
    /// The first wrong answers, described.
    pub wrong_examples: Vec<String>,
    /// Reads with no usable answer (connection refused during a kill, 5xx), by kind.
    pub read_errors: BTreeMap<String, u64>,
    /// Milliseconds of each acknowledged write (the whole client-managed exchange).
    pub write_ms: Vec<f64>,
    /// Milliseconds of each answered read.
    pub read_ms: Vec<f64>,
    /// A uniform sample of the proof answers, for `sparkid verify` at the end.
    pub proofs: Vec<Value>,
    /// Proof answers seen (the sample's population).
    pub proofs_seen: u64,
    /// SIGKILLs, by node name.
    pub kills: BTreeMap<String, u64>,
    /// Redis restarts.
    pub redis_restarts: u64,
    /// Faults that went wrong (a node that did not come back).
    pub fault_errors: Vec<String>,
    /// When the load started.
    pub started: Instant,
    /// When the load started, then when the last write was acknowledged.
    pub last_ack: Instant,
    /// The longest time without an acknowledged write during the load.
    pub longest_gap: Duration,
}

impl Stats {
    /// Empty figures; the load starts now.
    pub fn new() -> Stats {
        Stats {
            creates: 0,
            updates: 0,
            refused: BTreeMap::new(),
            refused_examples: BTreeMap::new(),
            write_errors: BTreeMap::new(),
            reads: 0,
            proof_reads: 0,
            wrong: 0,
            wrong_examples: Vec::new(),
            read_errors: BTreeMap::new(),
            write_ms: Vec::new(),
            read_ms: Vec::new(),
            proofs: Vec::new(),
            proofs_seen: 0,
            kills: BTreeMap::new(),
            redis_restarts: 0,
            fault_errors: Vec::new(),
            started: Instant::now(),
            last_ack: Instant::now(),
            longest_gap: Duration::ZERO,
        }
    }

    /// Notes a wrong answer.
    pub fn wrong(&mut self, what: String) {
        self.wrong += 1;
        if self.wrong_examples.len() < 20 {
            self.wrong_examples.push(what);
        }
    }

    /// Notes a write the registrar refused through `node`, with its whole reason.
    pub fn refused(&mut self, node: &str, reason: &str) {
        let kind = class(reason);
        count(&mut self.refused, kind.clone());
        let at = self.started.elapsed().as_secs_f64();
        self.refused_examples
            .entry(kind)
            .or_insert_with(|| format!("at {at:.1} s through {node}: {reason:.300}"));
    }

    /// Notes an acknowledged write that took `ms`.
    pub fn acked(&mut self, create: bool, ms: f64) {
        if create {
            self.creates += 1;
        } else {
            self.updates += 1;
        }
        self.write_ms.push(ms);
        let now = Instant::now();
        self.longest_gap = self.longest_gap.max(now - self.last_ack);
        self.last_ack = now;
    }

    /// Offers a proof answer to the sample (reservoir sampling: each is kept with equal odds).
    pub fn offer_proof(&mut self, answer: Value, sample: usize, rng: &mut Rng) {
        self.proofs_seen += 1;
        if self.proofs.len() < sample {
            self.proofs.push(answer);
        } else {
            let j = rng.below(self.proofs_seen as usize);
            if j < sample {
                self.proofs[j] = answer;
            }
        }
    }
}

/// Adds one to `key`'s count.
pub fn count(map: &mut BTreeMap<String, u64>, key: String) {
    *map.entry(key).or_default() += 1;
}

/// The value at quantile `p` of `values` (sorted here), NaN if empty.
pub fn quantile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() as f64 - 1.0) * p).round() as usize]
}

/// A short, stable class for a message: its first clause (up to `": "`), DIDs, URLs and numbers
/// masked, at most 80 characters.
pub fn class(message: &str) -> String {
    let masked: Vec<String> = message
        .split(' ')
        .map(|word| {
            if word.contains("did:") {
                "<did>".to_string()
            } else if word.contains("http://") {
                "<url>".to_string()
            } else {
                word.chars()
                    .map(|c| if c.is_ascii_digit() { '#' } else { c })
                    .collect()
            }
        })
        .collect();
    let masked = masked.join(" ");
    let first = masked.split([':', '\n']).next().unwrap_or_default();
    first.chars().take(80).collect()
}
