//! Commit certificates of a four-validator chain, end to end, written against the certificate
//! (`spec/consensus.md`: a quorum of 3 distinct validators of 4 signs the header), not against the
//! protocol that collects the votes.
//!
//! A fake peer — a small HTTP server in this test, serving the peer API a follower reads
//! (`/1.0/genesis`, `/1.0/ledger/head`, `/1.0/ledger/blocks`) — serves real blocks of a chain
//! whose genesis names four validators, built here with the ledger and the registrar's state
//! machine. When it serves a block whose certificate carries 2 of 4 votes, or one vote
//! repeated, the follower (a real `sparkid serve --follow`) refuses it:
//! `sparkid_sync_blocks_refused_total{reason="certificate"}` rises and the height holds. Once the
//! peer serves the real certificate, the same block applies. `sparkid verify` on a verifiable
//! answer whose certificate lost a vote names the count.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{get_json, start_in_process, verify_file};
use serde_json::{json, Value};
use sparkid_bid::PrivateKey;
use sparkid_ledger::{Block, Genesis};
use sparkid_test_support::{genesis, DevChain};

const CHAIN: &str = "sparkid-four-validators";

/// A four-validator chain held in memory: its genesis and every block, each certified by
/// validators 0, 1 and 2 (a quorum of 3).
struct FourValidatorChain {
    genesis: Genesis,
    blocks: Vec<Block>,
    dids: Vec<String>,
}

impl FourValidatorChain {
    /// The genesis (block 0) and `creates` blocks of one DID creation each.
    fn build(creates: usize) -> FourValidatorChain {
        let keys: Vec<PrivateKey> = (0..4).map(|_| PrivateKey::generate()).collect();
        let genesis = genesis(CHAIN, &keys.iter().collect::<Vec<_>>());
        let quorum = keys[..3].to_vec();
        let mut chain = DevChain::for_genesis(genesis.clone(), quorum);
        let dids = (0..creates)
            .map(|_| chain.register(None).1.to_string())
            .collect();
        let blocks = chain.blocks();
        FourValidatorChain {
            genesis,
            blocks,
            dids,
        }
    }
}

/// What the fake peer does to the certificate of the block it serves at `from` and above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Certificate {
    /// The real one: 3 of 4 votes.
    Real,
    /// Only the votes of validators 0 and 1: 2 of 4, under the quorum of 3.
    TwoOfFour,
    /// Three votes, one of them validator 1's twice: 2 distinct validators.
    RepeatedVote,
}

/// The fake peer's state: the chain, the highest height it admits to having, and what it does
/// to certificates.
struct PeerState {
    chain: FourValidatorChain,
    served_up_to: u64,
    certificate: Certificate,
    tamper_from: u64,
    /// Blocks served with an altered certificate.
    tampered: u64,
}

/// A peer API server over a [`FourValidatorChain`], on a port-0 listener.
struct FakePeer {
    base: String,
    state: Arc<Mutex<PeerState>>,
}

impl FakePeer {
    fn start(chain: FourValidatorChain, served_up_to: u64) -> FakePeer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(PeerState {
            chain,
            served_up_to,
            certificate: Certificate::Real,
            tamper_from: u64::MAX,
            tampered: 0,
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let state = shared.clone();
                std::thread::spawn(move || {
                    let _ = answer(stream, &state);
                });
            }
        });
        FakePeer { base, state }
    }

    /// Admits to blocks up to `height`, altering the certificate of those from `from` on.
    fn serve(&self, height: u64, certificate: Certificate, from: u64) {
        let mut state = self.state.lock().unwrap();
        state.served_up_to = height;
        state.certificate = certificate;
        state.tamper_from = from;
    }

    fn tampered(&self) -> u64 {
        self.state.lock().unwrap().tampered
    }
}

/// One request, one answer, then the connection closes.
fn answer(stream: TcpStream, state: &Mutex<PeerState>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" {
            break;
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse::<u64>().ok())
    };
    let (status, body) = {
        let mut state = state.lock().unwrap();
        let top = state.served_up_to as usize;
        match path {
            "/1.0/genesis" => (200, serde_json::to_value(&state.chain.genesis).unwrap()),
            "/1.0/ledger/head" => {
                let b = &state.chain.blocks[top];
                (
                    200,
                    json!({"header": b.header, "certificate": b.certificate}),
                )
            }
            "/1.0/ledger/blocks" => {
                let from = param("from").unwrap_or(0) as usize;
                let limit = param("limit").unwrap_or(100).max(1) as usize;
                let mut blocks = Vec::new();
                let page: Vec<Block> = state
                    .chain
                    .blocks
                    .iter()
                    .take(top + 1)
                    .skip(from)
                    .take(limit)
                    .cloned()
                    .collect();
                for mut block in page {
                    if block.header.height >= state.tamper_from {
                        let votes = &block.certificate.votes;
                        block.certificate.votes = match state.certificate {
                            Certificate::Real => votes.clone(),
                            Certificate::TwoOfFour => votes[..2].to_vec(),
                            Certificate::RepeatedVote => {
                                vec![votes[0].clone(), votes[1].clone(), votes[1].clone()]
                            }
                        };
                        if state.certificate != Certificate::Real {
                            state.tampered += 1;
                        }
                    }
                    blocks.push(block);
                }
                (
                    200,
                    json!({"chainId": CHAIN, "head": top, "blocks": blocks}),
                )
            }
            _ => (404, json!({"title": "not found"})),
        }
    };
    // A peer that does not hold the long poll: the follower paces itself (`follow.rs`).
    let body = body.to_string();
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn height(base: &str) -> u64 {
    get_json(&format!("{base}/healthz")).1["height"]
        .as_u64()
        .unwrap()
}

const REFUSED: &str = "sparkid_sync_blocks_refused_total{reason=\"certificate\"}";

#[test]
fn a_follower_refuses_blocks_of_a_four_validator_chain_without_a_quorum_of_distinct_votes() {
    let chain = FourValidatorChain::build(2);
    let dids = chain.dids.clone();
    let validators = chain.genesis.validators.clone();
    let dir = tempfile::tempdir().unwrap();
    let genesis_path = dir.path().join("genesis.json");
    std::fs::write(
        &genesis_path,
        serde_json::to_string(&chain.genesis).unwrap(),
    )
    .unwrap();
    // The peer admits to block 1 only: the follower starts from it.
    let peer = FakePeer::start(chain, 1);
    // In process: a follower needs no process of its own here.
    let follower = start_in_process(
        &dir.path().join("follower"),
        &[
            "--follow",
            &peer.base,
            "--genesis",
            genesis_path.to_str().unwrap(),
            "--handle",
            "off",
        ],
    );
    let base = follower.base.clone();
    assert!(
        wait_until(Duration::from_secs(30), || height(&base) == 1),
        "the follower did not apply the honest block 1"
    );

    for certificate in [Certificate::TwoOfFour, Certificate::RepeatedVote] {
        let refused = common::metric(&base, REFUSED).unwrap_or(0.0);
        let tampered = peer.tampered();
        peer.serve(2, certificate, 2);
        assert!(
            wait_until(Duration::from_secs(30), || {
                common::metric(&base, REFUSED).unwrap_or(0.0) > refused
            }),
            "{certificate:?}: no refusal counted under reason=\"certificate\""
        );
        assert!(peer.tampered() > tampered, "{certificate:?}: never served");
        let (_, health) = get_json(&format!("{base}/healthz"));
        let last = health["sync"]["lastError"].as_str().unwrap_or_default();
        let expected = match certificate {
            Certificate::TwoOfFour => "2 valid votes, a quorum is 3".to_string(),
            _ => format!("two votes by validator {}", validators[1]),
        };
        assert!(last.contains(&expected), "{certificate:?}: {health}");
        // Refused again and again, never applied: the height holds.
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(height(&base), 1, "{certificate:?}: the block was applied");
        let (status, _) = get_json(&format!("{base}/1.0/identifiers/{}", dids[1]));
        assert_eq!(status, 404, "{certificate:?}: its DID resolves");
    }

    // The same block with its real certificate (3 of 4) applies: the refusal was the
    // certificate's, not the block's.
    peer.serve(2, Certificate::Real, u64::MAX);
    assert!(
        wait_until(Duration::from_secs(30), || height(&base) == 2),
        "the real block 2 was not applied"
    );
    let (status, _) = get_json(&format!("{base}/1.0/identifiers/{}", dids[1]));
    assert_eq!(status, 200);

    // `sparkid verify` on a verifiable answer of this chain: 3 of 4 verifies; a certificate that
    // lost a vote, or repeats one, is refused with the count or the validator named.
    let (status, answer) = get_json(&format!("{base}/1.0/identifiers/{}?proof=true", dids[0]));
    assert_eq!(status, 200, "{answer}");
    let votes = find_votes(&answer)
        .unwrap_or_else(|| panic!("no certificate in {answer}"))
        .clone();
    assert_eq!(votes.as_array().unwrap().len(), 3, "{votes}");
    let check = |name: &str, votes: Value, ok: bool, expected: &str| {
        let mut altered = answer.clone();
        *votes_pointer_mut(&mut altered) = votes;
        let file = dir.path().join(name);
        std::fs::write(&file, altered.to_string()).unwrap();
        let (success, text) = verify_file(&file, &["--genesis", genesis_path.to_str().unwrap()]);
        assert_eq!(success, ok, "{name}: {text}");
        assert!(
            text.contains(expected),
            "{name}: {text:?} lacks {expected:?}"
        );
    };
    check(
        "real.json",
        votes.clone(),
        true,
        "certified by 3 of 4 validators (quorum 3)",
    );
    check(
        "two-of-four.json",
        json!([votes[0], votes[1]]),
        false,
        "2 valid votes, a quorum is 3",
    );
    check(
        "repeated.json",
        json!([votes[0], votes[1], votes[1]]),
        false,
        &format!(
            "two votes by validator {}",
            votes[1]["validator"].as_str().unwrap()
        ),
    );
}

/// The certificate's votes wherever the answer carries its ledger proof.
fn find_votes(answer: &Value) -> Option<&Value> {
    match answer {
        Value::Object(map) => map
            .get("anchor")
            .and_then(|a| a.pointer("/certificate/votes"))
            .or_else(|| map.values().find_map(find_votes)),
        _ => None,
    }
}

fn votes_pointer_mut(answer: &mut Value) -> &mut Value {
    fn walk(v: &mut Value) -> Option<&mut Value> {
        let Value::Object(map) = v else { return None };
        if map
            .get("anchor")
            .and_then(|a| a.pointer("/certificate/votes"))
            .is_some()
        {
            return map.get_mut("anchor")?.pointer_mut("/certificate/votes");
        }
        map.values_mut().find_map(walk)
    }
    walk(answer).expect("the answer carries a certificate")
}
