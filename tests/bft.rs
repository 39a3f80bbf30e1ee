//! Validators on the BFT engine (issue 13, spec/consensus.md), four `sparkid` processes on
//! loopback: a Byzantine validator that double-votes (the dev-only `SPARKID_DEV_BYZANTINE`
//! mode) makes no fork and leaves evidence, exposed at `GET /1.0/consensus/evidence` and in
//! `/metrics`; the next proposer killed with -9 costs one round, not the chain.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{create_did, free_port, get_json, metric, Daemon};
use serde_json::{json, Value};
use sparkid_bid::PrivateKey;

const N: usize = 4;

struct Cluster {
    _dir: tempfile::TempDir,
    keys: Vec<PrivateKey>,
    key_files: Vec<PathBuf>,
    data: Vec<PathBuf>,
    ports: Vec<u16>,
    nodes: Vec<Option<Daemon>>,
}

impl Cluster {
    /// Four validators of a new chain; `env` for each (the Byzantine mode).
    fn new(env: &[Vec<(&str, &str)>]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let (keys, key_files, data) =
            common::proxy::validator_chain(dir.path(), "sparkid-bft-test", N);
        let ports: Vec<u16> = (0..N).map(|_| free_port()).collect();
        let mut c = Cluster {
            _dir: dir,
            keys,
            key_files,
            data,
            ports,
            nodes: (0..N).map(|_| None).collect(),
        };
        for i in 0..N {
            let e = env.get(i).cloned().unwrap_or_default();
            c.start(i, &e);
        }
        c
    }

    fn base(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    fn start(&mut self, i: usize, env: &[(&str, &str)]) {
        let key = self.key_files[i].to_str().unwrap().to_string();
        let peers: Vec<String> = (0..N).filter(|&j| j != i).map(|j| self.base(j)).collect();
        let mut args = vec!["--validator-key", &key, "--handle", "off"];
        for p in &peers {
            args.extend(["--peer", p.as_str()]);
        }
        self.nodes[i] = Some(Daemon::start_at_with_env(
            &self.data[i],
            self.ports[i],
            &args,
            env,
        ));
    }

    fn head(&self, i: usize) -> Value {
        get_json(&format!("{}/1.0/ledger/head", self.base(i))).1
    }

    /// Waits until the given validators have one head.
    fn converge(&self, which: &[usize]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let heads: Vec<Value> = which
                .iter()
                .map(|&i| self.head(i)["header"].clone())
                .collect();
            if heads.windows(2).all(|w| w[0] == w[1]) {
                return heads[0].clone();
            }
            assert!(Instant::now() < deadline, "no convergence: {heads:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn a_double_voting_validator_makes_no_fork_and_its_evidence_is_kept() {
    let byzantine = vec![("SPARKID_DEV_BYZANTINE", "double-vote")];
    let c = Cluster::new(&[vec![], vec![], vec![], byzantine]);
    // Writes through the honest validators commit while validator 3 signs two votes for every
    // vote (one for the block, one for nil) and two blocks for each of its proposals.
    for i in [0, 1, 2, 0, 1, 2] {
        let (_, did) = create_did(&c.base(i), None);
        let url = format!("{}/1.0/identifiers/{did}", c.base((i + 1) % 3));
        let deadline = Instant::now() + Duration::from_secs(10);
        while common::get(&url).0 != 200 {
            assert!(Instant::now() < deadline, "{did} not read back");
            std::thread::sleep(Duration::from_millis(25));
        }
    }
    // No fork: every validator, the Byzantine one included, holds the same chain.
    let head = c.converge(&[0, 1, 2, 3]);
    assert!(head["height"].as_u64().unwrap() >= 6, "{head}");
    let culprit = c.keys[3].public_key().to_encoded();
    let mut kept = 0;
    for i in 0..3 {
        let (status, evidence) = get_json(&format!("{}/1.0/consensus/evidence", c.base(i)));
        assert_eq!(status, 200);
        for e in evidence["evidence"].as_array().unwrap() {
            // Only the Byzantine validator double-signed; each record holds its two messages.
            assert_eq!(e["validator"], json!(culprit), "{e}");
            assert_eq!(e["messages"].as_array().unwrap().len(), 2, "{e}");
            kept += 1;
        }
        let counted = metric(
            &c.base(i),
            "sparkid_consensus_evidence_total{kind=\"double-vote\"}",
        )
        .unwrap_or(0.0);
        let listed = evidence["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "double-vote")
            .count();
        assert_eq!(counted as usize, listed, "validator {i}: {evidence}");
    }
    assert!(
        kept > 0,
        "no honest validator kept evidence of the double votes"
    );
    eprintln!("evidence records kept by the honest validators: {kept}");
}

#[test]
fn the_next_proposer_killed_with_kill9_costs_one_round_not_the_chain() {
    let mut c = Cluster::new(&[]);
    let (_, did) = create_did(&c.base(0), None);
    let head = c.converge(&[0, 1, 2, 3]);
    assert!(head.is_object(), "{did}");
    // The proposer of round 0 at the next height is validators[(h + 0) mod N]: kill it, then
    // write through another validator. Round 0 times out; round 1's proposer commits.
    let next = head["height"].as_u64().unwrap() + 1;
    let proposer = (next % N as u64) as usize;
    c.nodes[proposer].take().unwrap().kill9();
    let through = (proposer + 1) % N;
    let started = Instant::now();
    let (_, did) = create_did(&c.base(through), None);
    let took = started.elapsed();
    eprintln!("next proposer killed: the write committed in {took:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");
    let alive: Vec<usize> = (0..N).filter(|&i| i != proposer).collect();
    c.converge(&alive);
    for i in alive {
        let url = format!("{}/1.0/identifiers/{did}", c.base(i));
        let deadline = Instant::now() + Duration::from_secs(10);
        while common::get(&url).0 != 200 {
            assert!(
                Instant::now() < deadline,
                "validator {i} does not resolve {did}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }
    // The timeouts that elapsed are counted.
    let timeouts = metric(
        &c.base(through),
        "sparkid_consensus_timeouts_total{kind=\"propose\"}",
    );
    assert!(timeouts.unwrap_or(0.0) >= 1.0, "{timeouts:?}");
    // Round 1 waits longer for its proposal than round 0 did: the timeouts grow per round.
    let round0 = sparkid_node::bft::timeouts().propose.as_secs_f64();
    let waited = metric(
        &c.base(through),
        "sparkid_consensus_propose_timeout_seconds",
    );
    assert!(waited.unwrap_or(0.0) > round0, "{waited:?} vs {round0}");
}
