//! Several validators (`spec/consensus.md`): four `sparkid` processes on loopback, with a
//! genesis naming four keys and made by the genesis ceremony (`ledger genesis-vote`, `ledger
//! init`). Writes through any validator commit with a quorum (3 of 4) and every validator
//! answers the same; with one validator killed (kill -9) writes go on; with two, writes fail
//! with a clear 503 in bounded time and reads go on; restarted validators catch up. A proposal
//! whose state root is wrong or that is not by its round's proposer is refused, and a validator
//! killed with -9 mid-height never signs twice in a round (its write-ahead log).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{client, create_did, free_port, get, get_json, Daemon};
use serde_json::{json, Value};
use sparkid_bid::PrivateKey;
use sparkid_ledger::block::tx_root;
use sparkid_ledger::{BlockHeader, Hash};

const N: usize = 4;

/// Four validators of one chain, each with its data directory, key file and port.
struct Cluster {
    _dir: tempfile::TempDir,
    keys: Vec<PrivateKey>,
    key_files: Vec<PathBuf>,
    data: Vec<PathBuf>,
    ports: Vec<u16>,
    nodes: Vec<Option<Daemon>>,
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

impl Cluster {
    fn new() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<PrivateKey> = (0..N).map(|_| PrivateKey::generate()).collect();
        let key_files: Vec<PathBuf> = (0..N)
            .map(|i| {
                let path = dir.path().join(format!("validator-{i}.key"));
                write(&path, &keys[i].to_encoded());
                path
            })
            .collect();
        let genesis = json!({
            "chainId": "sparkid-quorum-test",
            "time": 1_700_000_000u64,
            "validators": keys.iter().map(|k| k.public_key().to_encoded()).collect::<Vec<_>>(),
        });
        let genesis_path = dir.path().join("genesis.json");
        write(&genesis_path, &genesis.to_string());
        // The ceremony: three validators (a quorum) sign the genesis block, each with its key.
        let votes: Vec<Value> = key_files[..3]
            .iter()
            .map(|k| {
                common::cli(&[
                    "ledger",
                    "genesis-vote",
                    "--genesis",
                    genesis_path.to_str().unwrap(),
                    "--validator-key",
                    k.to_str().unwrap(),
                ])
            })
            .collect();
        let votes_path = dir.path().join("votes.json");
        write(&votes_path, &Value::Array(votes).to_string());
        let data: Vec<PathBuf> = (0..N)
            .map(|i| {
                let d = dir.path().join(format!("node-{i}"));
                let out = std::process::Command::new(common::BIN)
                    .args(["ledger", "init", "--data"])
                    .arg(&d)
                    .args(["--genesis", genesis_path.to_str().unwrap()])
                    .args(["--votes", votes_path.to_str().unwrap()])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{out:?}");
                d
            })
            .collect();
        let ports: Vec<u16> = (0..N).map(|_| free_port()).collect();
        let mut cluster = Cluster {
            _dir: dir,
            keys,
            key_files,
            data,
            ports,
            nodes: (0..N).map(|_| None).collect(),
        };
        for i in 0..N {
            cluster.start(i);
        }
        cluster
    }

    fn base(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    fn start(&mut self, i: usize) {
        let key = self.key_files[i].to_str().unwrap().to_string();
        let peers: Vec<String> = (0..N).filter(|&j| j != i).map(|j| self.base(j)).collect();
        let mut args = vec!["--validator-key", &key, "--handle", "off"];
        for p in &peers {
            args.extend(["--peer", p.as_str()]);
        }
        self.nodes[i] = Some(Daemon::start_at(&self.data[i], self.ports[i], &args));
    }

    fn kill9(&mut self, i: usize) {
        if let Some(node) = self.nodes[i].take() {
            node.kill9();
        }
    }

    fn height(&self, i: usize) -> u64 {
        get_json(&format!("{}/healthz", self.base(i))).1["height"]
            .as_u64()
            .unwrap()
    }

    fn head(&self, i: usize) -> Value {
        get_json(&format!("{}/1.0/ledger/head", self.base(i))).1
    }

    /// Waits until every running validator has the same head (same header), at most 20 s.
    fn converge(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let heads: Vec<Value> = (0..N)
                .filter(|&i| self.nodes[i].is_some())
                .map(|i| self.head(i)["header"].clone())
                .collect();
            if heads.windows(2).all(|w| w[0] == w[1]) {
                return heads[0].clone();
            }
            assert!(
                Instant::now() < deadline,
                "the validators do not converge: {heads:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The DID's document as validator `i` resolves it, waiting up to 10 s for it to exist.
    fn resolve(&self, i: usize, did: &str) -> Value {
        let url = format!("{}/1.0/identifiers/{did}", self.base(i));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, _, body) = get(&url);
            if status == 200 {
                let v: Value = serde_json::from_str(&body).unwrap();
                return v["didDocument"].clone();
            }
            assert!(
                Instant::now() < deadline,
                "validator {i} does not resolve {did}: {body}"
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Every running validator answers the same document for `did`.
    fn same_everywhere(&self, did: &str) {
        let docs: Vec<Value> = (0..N)
            .filter(|&i| self.nodes[i].is_some())
            .map(|i| self.resolve(i, did))
            .collect();
        assert!(docs[0]["id"] == json!(did), "{docs:?}");
        assert!(docs.windows(2).all(|w| w[0] == w[1]), "{docs:?}");
    }
}

/// A create attempt that may fail: status, answer, and how long the call that commits (the
/// signed second step of the client-managed exchange) took.
fn try_create_timed(base: &str) -> (u16, Value, Duration) {
    use base64::Engine;
    let key = PrivateKey::generate();
    let doc = sparkid_registrar::api::new_document(&key.public_key(), None).unwrap();
    let url = format!("{base}/1.0/create?method=bid");
    let (status, first) = common::post(
        &url,
        &json!({"options": {"clientSecretMode": true}, "didDocument": doc}),
    );
    assert_eq!(first["didState"]["state"], "action", "{status} {first}");
    let payload = first["didState"]["signingRequest"]["signingRequest0"]["serializedPayload"]
        .as_str()
        .unwrap();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .unwrap();
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.sign(&bytes).0);
    let started = Instant::now();
    let (status, answer) = common::post(
        &url,
        &json!({ "jobId": first["jobId"], "secret": {
            "jobSecret": first["didRegistrationMetadata"]["jobSecret"],
            "signingResponse": { "signingRequest0": { "signature": signature } } } }),
    );
    (status, answer, started.elapsed())
}

/// A create attempt that may fail: status and answer.
fn try_create(base: &str) -> (u16, Value) {
    let (status, answer, _) = try_create_timed(base);
    (status, answer)
}

#[test]
fn four_validators_commit_with_a_quorum_and_survive_failures() {
    let mut c = Cluster::new();
    // Writes through every validator (the leader, and three that forward) commit, and every
    // validator answers the same.
    let mut dids = Vec::new();
    for i in 0..N {
        let (_, did) = create_did(&c.base(i), None);
        c.same_everywhere(&did);
        dids.push(did);
    }
    let head = c.converge();
    assert!(head["height"].as_u64().unwrap() >= N as u64, "{head}");
    // The head's certificate is a quorum of valid votes by the genesis validators: verified
    // against the genesis set (signatures, distinct validators, one round), not counted.
    let (_, genesis) = get_json(&format!("{}/1.0/genesis", c.base(2)));
    let genesis: sparkid_ledger::Genesis = serde_json::from_value(genesis).unwrap();
    let validators = genesis.validator_set().unwrap();
    let certified: sparkid_ledger::CertifiedHeader = serde_json::from_value(c.head(2)).unwrap();
    assert_eq!(certified.header.height, head["height"].as_u64().unwrap());
    certified
        .certificate
        .verify(&certified.header, &validators)
        .unwrap_or_else(|e| panic!("the head's certificate: {e}"));

    // One validator down (the leader, kill -9): writes go on, through any other.
    c.kill9(0);
    for i in 1..N {
        let (_, did) = create_did(&c.base(i), None);
        c.same_everywhere(&did);
        dids.push(did);
    }

    // Two down: a write fails in bounded time with a clear answer; reads go on.
    c.kill9(3);
    let started = Instant::now();
    let (status, answer) = try_create(&c.base(1));
    let took = started.elapsed();
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["didState"]["state"], "failed", "{answer}");
    let reason = answer["didState"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("no quorum") && reason.contains("3 are needed") && reason.contains("of 4"),
        "{reason}"
    );
    assert!(took < Duration::from_secs(20), "the refusal took {took:?}");
    eprintln!("two of four down: refused in {took:?}: {reason}");
    let (status, answer) = try_create(&c.base(2));
    assert_eq!(status, 503, "{answer}");
    for i in [1, 2] {
        for did in &dids {
            assert_eq!(c.resolve(i, did)["id"], json!(did));
        }
    }
    let stalled = c.height(1);

    // Restarted, they catch up from their peers, and writes go on (through the restarted
    // leader too).
    c.start(0);
    c.start(3);
    let head = c.converge();
    assert!(head["height"].as_u64().unwrap() >= stalled);
    for did in &dids {
        c.same_everywhere(did);
    }
    for i in [0, 3, 1] {
        let (_, did) = create_did(&c.base(i), None);
        c.same_everywhere(&did);
    }
    c.converge();
    // Every validator's chain verifies from genesis.
    drop(c.nodes.iter_mut().map(Option::take).collect::<Vec<_>>());
    for d in &c.data {
        common::cli(&["ledger", "verify", "--data", d.to_str().unwrap()]);
    }
}

/// An empty block on top of validator `i`'s head, proposed by validator `proposer`.
fn empty_block(c: &Cluster, i: usize, proposer: usize, time_offset: u64) -> BlockHeader {
    let head: BlockHeader = serde_json::from_value(c.head(i)["header"].clone()).unwrap();
    BlockHeader {
        chain_id: head.chain_id.clone(),
        height: head.height + 1,
        previous_hash: head.hash(),
        time: head.time + time_offset,
        tx_root: tx_root(&[]),
        tx_count: 0,
        state_root: head.state_root,
        proposer: c.keys[proposer].public_key().to_encoded(),
    }
}

/// The proposer of `round` at `height` (spec/consensus.md): `validators[(height + round) mod N]`.
fn proposer_of(height: u64, round: u64) -> usize {
    ((height + round) % N as u64) as usize
}

/// Posts a Tendermint proposal of `header` (no transactions) in `round`, signed by validator
/// `signer` in the proposal domain, to validator `to`, as validator `signer` (every request
/// between validators is signed by its sender).
fn propose(
    c: &Cluster,
    to: usize,
    round: u64,
    header: &BlockHeader,
    signer: usize,
) -> (u16, Value) {
    let hash = header.hash();
    let mut bytes = b"sparkid/proposal/v2\n".to_vec();
    bytes.extend_from_slice(
        format!(
            "{}\n{}\n{round}\n-1\n{hash}",
            header.chain_id, header.height
        )
        .as_bytes(),
    );
    let body = json!({ "proposal": {
        "round": round,
        "header": header,
        "transactions": [],
        "validator": c.keys[signer].public_key().to_encoded(),
        "signature": c.keys[signer].sign(&bytes),
    }});
    let body = serde_json::to_vec(&body).unwrap();
    let path = "/1.0/consensus/messages";
    let headers = common::validator_request_headers(
        &c.keys[signer],
        &header.chain_id,
        path,
        &c.keys[to].public_key().to_encoded(),
        &body,
    );
    let mut request = client()
        .post(format!("{}{path}", c.base(to)))
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let r = request.send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap())
}

#[test]
fn a_validator_accepts_only_checked_proposals_by_the_rounds_proposer_and_keeps_its_votes_across_kill9(
) {
    let mut c = Cluster::new();
    let (_, did) = create_did(&c.base(0), None);
    c.same_everywhere(&did);
    let head = c.converge();
    let height = head["height"].as_u64().unwrap() + 1;
    let to = (0..N).find(|&i| i != proposer_of(height, 1)).unwrap();
    let owner = proposer_of(height, 1);

    // A wrong state root, by the round's proposer: refused with the reason (the engine
    // prevotes nil for it).
    let mut bad = empty_block(&c, to, owner, 0);
    bad.state_root = Hash([7; 32]);
    let (status, answer) = propose(&c, to, 1, &bad, owner);
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["detail"].as_str().unwrap().contains("state root"),
        "{answer}"
    );

    // Round 1 is its proposer's: another validator cannot propose in it.
    let good = empty_block(&c, to, owner, 0);
    let other = (0..N).find(|&i| i != owner && i != to).unwrap();
    let (status, answer) = propose(&c, to, 1, &good, other);
    assert_eq!(status, 403, "{answer}");
    assert!(
        answer["detail"].as_str().unwrap().contains("to propose"),
        "{answer}"
    );

    // A checked block by the right proposer is accepted for the engine.
    let (status, answer) = propose(&c, to, 1, &good, owner);
    assert_eq!(status, 200, "{answer}");

    // Kill -9 a validator while writes go on; restarted, it replays its write-ahead log,
    // catches up, and no validator ever saw it (or anyone) sign twice in one round.
    let writer = std::thread::spawn({
        let base = c.base(1);
        move || {
            for _ in 0..3 {
                let _ = try_create(&base);
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    c.kill9(to);
    writer.join().unwrap();
    c.start(to);
    let (_, did) = create_did(&c.base(to), None);
    c.same_everywhere(&did);
    c.converge();
    // The two proposals signed above for one round are the only double signing on record:
    // the validator that got both kept them as evidence; nobody else signed twice.
    let owner_key = c.keys[owner].public_key().to_encoded();
    let mut recorded = 0;
    for i in 0..N {
        let (_, evidence) = get_json(&format!("{}/1.0/consensus/evidence", c.base(i)));
        for e in evidence["evidence"].as_array().unwrap() {
            assert_eq!(e["kind"], "double-proposal", "validator {i}: {e}");
            assert_eq!(e["validator"], json!(owner_key), "validator {i}: {e}");
            assert_eq!(e["height"], json!(height), "validator {i}: {e}");
            assert_eq!(e["round"], 1, "validator {i}: {e}");
            recorded += 1;
        }
    }
    assert!(recorded >= 1, "the forged double proposal was not recorded");
}

/// Commit latency with four validators: writes through the leader and through a validator
/// that forwards to it each commit, one at a time. Prints median and p99 of 20 each
/// (`SPARKID_LATENCY_WRITES`); the latency figures themselves come from
/// `scripts/bench-consensus`, in release, with its baseline.
#[test]
fn commit_latency_with_four_validators() {
    let c = Cluster::new();
    let writes: usize = std::env::var("SPARKID_LATENCY_WRITES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    for (label, node) in [("leader", 0), ("forwarded", 2)] {
        let mut took: Vec<Duration> = Vec::with_capacity(writes);
        for _ in 0..writes {
            let (status, answer, elapsed) = try_create_timed(&c.base(node));
            took.push(elapsed);
            assert_eq!(status, 201, "{answer}");
        }
        took.sort();
        let median = took[took.len() / 2];
        let p99 = took[(took.len() * 99 / 100).min(took.len() - 1)];
        eprintln!(
            "commit latency, 4 validators, through the {label} (validator {node}), {writes} \
             sequential creates (the committing registrar call): median {median:?}, p99 {p99:?}"
        );
        assert!(p99 < Duration::from_secs(10), "p99 {p99:?}");
    }
    c.converge();
}
