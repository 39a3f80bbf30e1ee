//! Partitions between validators (issue 13, spec/consensus.md "Liveness"): four `sparkid`
//! processes on loopback that reach each other only through cuttable proxies
//! ([`common::proxy::Proxy`], one per directed pair, `--peer` pointing at it).
//!
//! - {3} | {1}: the majority keeps committing, the minority commits nothing and its writer is
//!   told the write is pending (503); after healing all four hold one chain (equal headers,
//!   state roots included) and the minority's pending write committed exactly once.
//! - {2} | {2}: nobody commits; after healing the pending writes commit and new ones finish.
//! - An idle chain makes no blocks, before and after a partition.
//!
//! Latencies are printed, never asserted: the machine is shared.

mod common;

use std::time::{Duration, Instant};

use common::proxy::{validator_chain, Proxy};
use common::{create_did, get_json, metric, sign_and_send, Daemon};
use serde_json::{json, Value};

const N: usize = 4;

struct Cluster {
    _dir: tempfile::TempDir,
    ports: Vec<u16>,
    /// `proxies[i][j]`: validator i's way to validator j (none for i == j).
    proxies: Vec<Vec<Option<Proxy>>>,
    _nodes: Vec<Daemon>,
}

impl Cluster {
    fn new() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let (_keys, key_files, data) = validator_chain(dir.path(), "sparkid-partition-test", N);
        let ports: Vec<u16> = (0..N).map(|_| common::free_port()).collect();
        let proxies: Vec<Vec<Option<Proxy>>> = (0..N)
            .map(|i| {
                (0..N)
                    .map(|j| (i != j).then(|| Proxy::start(ports[j])))
                    .collect()
            })
            .collect();
        let nodes = (0..N)
            .map(|i| {
                let key = key_files[i].to_str().unwrap().to_string();
                let peers: Vec<String> = proxies[i]
                    .iter()
                    .flatten()
                    .map(|p| format!("http://127.0.0.1:{}", p.port))
                    .collect();
                let mut args = vec!["--validator-key", &key, "--handle", "off"];
                for p in &peers {
                    args.extend(["--peer", p.as_str()]);
                }
                Daemon::start_at(&data[i], ports[i], &args)
            })
            .collect();
        Cluster {
            _dir: dir,
            ports,
            proxies,
            _nodes: nodes,
        }
    }

    fn base(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    /// Cuts every link between a validator of `a` and one of `b`, both ways.
    fn partition(&self, a: &[usize], b: &[usize]) {
        for &i in a {
            for &j in b {
                self.proxies[i][j].as_ref().unwrap().cut();
                self.proxies[j][i].as_ref().unwrap().cut();
            }
        }
    }

    fn heal(&self) {
        for p in self.proxies.iter().flatten().flatten() {
            p.heal();
        }
    }

    fn header(&self, i: usize) -> Value {
        get_json(&format!("{}/1.0/ledger/head", self.base(i))).1["header"].clone()
    }

    fn height(&self, i: usize) -> u64 {
        self.header(i)["height"].as_u64().unwrap()
    }

    /// Waits until the given validators hold one head (header, state root included).
    fn converge(&self, which: &[usize], within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let heads: Vec<Value> = which.iter().map(|&i| self.header(i)).collect();
            if heads.windows(2).all(|w| w[0] == w[1]) {
                return heads[0].clone();
            }
            assert!(Instant::now() < deadline, "no convergence: {heads:#?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The chain holds `did`'s create exactly once, on validator `i`.
    fn created_once(&self, i: usize, did: &str) -> usize {
        let (status, page) = get_json(&format!(
            "{}/1.0/ledger/blocks?from=1&limit=1000",
            self.base(i)
        ));
        assert_eq!(status, 200, "{page}");
        page["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|b| b["transactions"].as_array().unwrap().iter())
            .filter(|t| t.to_string().contains(did))
            .count()
    }

    /// Waits until every validator resolves `did`.
    fn resolves_everywhere(&self, did: &str, within: Duration) {
        let deadline = Instant::now() + within;
        for i in 0..N {
            let url = format!("{}/1.0/identifiers/{did}", self.base(i));
            while common::get(&url).0 != 200 {
                assert!(
                    Instant::now() < deadline,
                    "validator {i} does not resolve {did}"
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// An idle chain makes no blocks: every head stays put for `quiet`.
    fn assert_idle(&self, quiet: Duration) {
        let before: Vec<u64> = (0..N).map(|i| self.height(i)).collect();
        std::thread::sleep(quiet);
        let after: Vec<u64> = (0..N).map(|i| self.height(i)).collect();
        assert_eq!(before, after, "an idle chain made blocks");
    }
}

/// A create through `base` in the client-managed exchange, not asserting its outcome: the
/// status, the answer and the DID.
fn try_create(base: &str) -> (u16, Value, String) {
    let key = sparkid_bid::PrivateKey::generate();
    let doc = sparkid_registrar::api::new_document_on(&key.public_key(), None, None).unwrap();
    let did = doc["id"].as_str().unwrap().to_string();
    let (status, answer) = sign_and_send(
        &format!("{base}/1.0/create?method=bid"),
        json!({"options": {"clientSecretMode": true}, "didDocument": doc}),
        &key,
    );
    (status, answer, did)
}

/// A write the minority (or a side without quorum) takes: it does not finish, and the writer
/// is told it may still commit.
fn assert_pending(status: u16, answer: &Value, took: Duration) {
    eprintln!("a write without quorum: {status} after {took:?}: {answer}");
    assert_eq!(status, 503, "{answer}");
    assert_ne!(answer["didState"]["state"], "finished", "{answer}");
    assert!(
        answer.to_string().contains("may still commit"),
        "the writer must learn the write is pending: {answer}"
    );
}

#[test]
fn a_minority_of_one_commits_nothing_and_all_converge_after_healing() {
    let c = Cluster::new();
    let (_, first) = create_did(&c.base(0), None);
    let start = c.converge(&[0, 1, 2, 3], Duration::from_secs(30));
    let h0 = start["height"].as_u64().unwrap();
    c.resolves_everywhere(&first, Duration::from_secs(10));
    c.assert_idle(Duration::from_secs(4));

    c.partition(&[0, 1, 2], &[3]);
    let minority_base = c.base(3);
    let minority = std::thread::spawn(move || {
        let started = Instant::now();
        let (status, answer, did) = try_create(&minority_base);
        (status, answer, did, started.elapsed())
    });
    // The majority commits, a write after another, through each of its validators; with the
    // heights whose round-0 proposer is validator 3 costing a round.
    let mut took = Vec::new();
    for i in [0, 1, 2, 0, 1, 2, 0, 1] {
        let started = Instant::now();
        create_did(&c.base(i), None);
        took.push(started.elapsed());
    }
    eprintln!("majority writes during the partition: {took:?}");
    let (status, answer, pending_did, minority_took) = minority.join().unwrap();
    assert_pending(status, &answer, minority_took);
    let majority = c.converge(&[0, 1, 2], Duration::from_secs(30));
    assert!(
        majority["height"].as_u64().unwrap() >= h0 + 8,
        "the majority stalled: {majority}"
    );
    assert_eq!(c.height(3), h0, "the minority committed alone");
    assert_eq!(
        common::get(&format!("{}/1.0/identifiers/{pending_did}", c.base(3))).0,
        404,
        "the minority's write is visible before it committed"
    );

    let healed = Instant::now();
    c.heal();
    // The minority catches up and its pending write commits, once, everywhere.
    c.resolves_everywhere(&pending_did, Duration::from_secs(60));
    eprintln!(
        "after healing, the minority's pending write committed in {:?}",
        healed.elapsed()
    );
    let head = c.converge(&[0, 1, 2, 3], Duration::from_secs(60));
    eprintln!("after healing, one head in {:?}: {head}", healed.elapsed());
    for i in 0..N {
        assert_eq!(c.created_once(i, &pending_did), 1, "validator {i}");
    }
    // Writes through the former minority finish again.
    let started = Instant::now();
    create_did(&c.base(3), None);
    eprintln!(
        "a write through the former minority: {:?}",
        started.elapsed()
    );
    c.converge(&[0, 1, 2, 3], Duration::from_secs(30));
    c.assert_idle(Duration::from_secs(4));
}

#[test]
fn two_against_two_commit_nothing_and_progress_resumes_after_healing() {
    let c = Cluster::new();
    create_did(&c.base(1), None);
    let start = c.converge(&[0, 1, 2, 3], Duration::from_secs(30));
    let h0 = start["height"].as_u64().unwrap();

    c.partition(&[0, 1], &[2, 3]);
    let writers: Vec<_> = [0, 2]
        .into_iter()
        .map(|i| {
            let base = c.base(i);
            std::thread::spawn(move || {
                let started = Instant::now();
                let (status, answer, did) = try_create(&base);
                (status, answer, did, started.elapsed())
            })
        })
        .collect();
    let mut pending = Vec::new();
    for w in writers {
        let (status, answer, did, took) = w.join().unwrap();
        assert_pending(status, &answer, took);
        pending.push(did);
    }
    for i in 0..N {
        assert_eq!(c.height(i), h0, "validator {i} committed without a quorum");
    }
    // Neither side livelocks into a stream of rounds: each waits in its round for votes.
    let rounds: Vec<f64> = (0..N)
        .map(|i| metric(&c.base(i), "sparkid_consensus_round").unwrap_or(-1.0))
        .collect();
    eprintln!("rounds during the 2|2 partition: {rounds:?}");

    let healed = Instant::now();
    c.heal();
    for did in &pending {
        c.resolves_everywhere(did, Duration::from_secs(60));
    }
    eprintln!(
        "after healing, both pending writes committed in {:?}",
        healed.elapsed()
    );
    let started = Instant::now();
    create_did(&c.base(3), None);
    eprintln!("a write after healing: {:?}", started.elapsed());
    let head = c.converge(&[0, 1, 2, 3], Duration::from_secs(60));
    assert!(head["height"].as_u64().unwrap() > h0, "{head}");
    for i in 0..N {
        for did in &pending {
            assert_eq!(c.created_once(i, did), 1, "validator {i}: {did}");
        }
    }
    c.assert_idle(Duration::from_secs(4));
}
