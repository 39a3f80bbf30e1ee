//! Validator-set changes (issue 13, spec/consensus.md "Validator-set changes"), real `sparkid`
//! processes on loopback: four validators add a fifth (started with its key, following until
//! its set takes over) through `sparkid validators propose|sign|submit`, commit writes with
//! five, then remove one and commit more; a follower follows across both changes; an answer
//! saved after both verifies offline with `sparkid verify` and the genesis alone (the proof
//! carries the hand-offs); every malformed change is refused with its reason.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{create_did, free_port, get_json, metric, verify_file, Daemon};
use serde_json::Value;
use sparkid_bid::PrivateKey;
use sparkid_ledger::ValidatorChange;

const CHAIN: &str = "sparkid-vset-test";

struct Chain {
    dir: tempfile::TempDir,
    keys: Vec<PrivateKey>,
    key_files: Vec<PathBuf>,
    data: Vec<PathBuf>,
    ports: Vec<u16>,
    nodes: Vec<Option<Daemon>>,
    genesis: PathBuf,
}

impl Chain {
    /// Five keys, a genesis naming the first four, a ledger for each of the five.
    fn new() -> Chain {
        let dir = tempfile::tempdir().unwrap();
        let (keys, key_files, data) =
            common::proxy::validator_chain_with_newcomers(dir.path(), CHAIN, 4, 1);
        let genesis = dir.path().join("genesis.json");
        Chain {
            dir,
            keys,
            key_files,
            data,
            ports: (0..5).map(|_| free_port()).collect(),
            nodes: (0..5).map(|_| None).collect(),
            genesis,
        }
    }

    fn base(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    fn encoded(&self, i: usize) -> String {
        self.keys[i].public_key().to_encoded()
    }

    /// Starts validator `i`; its peers are the other four (the newcomer's address is known to
    /// the others from the start: it answers once it runs).
    fn start(&mut self, i: usize) {
        let key = self.key_files[i].to_str().unwrap().to_string();
        let peers: Vec<String> = (0..5).filter(|&j| j != i).map(|j| self.base(j)).collect();
        let mut args = vec!["--validator-key", &key, "--handle", "off"];
        for p in &peers {
            args.extend(["--peer", p.as_str()]);
        }
        self.nodes[i] = Some(Daemon::start_at(&self.data[i], self.ports[i], &args));
    }

    fn height(&self, base: &str) -> u64 {
        get_json(&format!("{base}/1.0/ledger/head",)).1["header"]["height"]
            .as_u64()
            .unwrap_or(0)
    }

    fn wait_height(&self, base: &str, height: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.height(base) < height {
            assert!(
                Instant::now() < deadline,
                "{base} did not reach height {height} (at {})",
                self.height(base)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Writes DIDs through validator `i` until the head is at least `height`.
    fn write_until(&self, i: usize, height: u64) -> Vec<String> {
        let mut dids = Vec::new();
        while self.height(&self.base(i)) < height {
            dids.push(create_did(&self.base(i), None).1);
        }
        dids
    }

    /// The encoded keys that voted for block `height`, read from validator `i`.
    fn voters(&self, i: usize, height: u64) -> Vec<String> {
        let (status, block) = get_json(&format!(
            "{}/1.0/ledger/blocks?from={height}&limit=1",
            self.base(i)
        ));
        assert_eq!(status, 200, "{block}");
        block["blocks"][0]["certificate"]["votes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["validator"].as_str().unwrap().to_lowercase())
            .collect()
    }

    /// `sparkid validators propose`, then `sign` by `signers`, each with its own key file:
    /// the signed change file.
    fn propose_and_sign(&self, args: &[&str], signers: &[usize]) -> PathBuf {
        let base = self.base(0);
        let mut all = vec!["validators", "propose", "--endpoint", base.as_str()];
        all.extend_from_slice(args);
        let proposal = common::cli(&all);
        assert!(
            proposal["signedText"]
                .as_str()
                .unwrap()
                .starts_with(&format!("sparkid/validators/v1\n{CHAIN}\n")),
            "{proposal}"
        );
        let path = self.dir.path().join("change.json");
        std::fs::write(&path, proposal.to_string()).unwrap();
        for &s in signers {
            let signed = common::cli(&[
                "validators",
                "sign",
                "--change",
                path.to_str().unwrap(),
                "--validator-key",
                self.key_files[s].to_str().unwrap(),
            ]);
            std::fs::write(&path, signed.to_string()).unwrap();
        }
        path
    }

    fn submit(&self, change: &Path) -> Value {
        common::cli(&[
            "validators",
            "submit",
            "--endpoint",
            &self.base(0),
            "--change",
            change.to_str().unwrap(),
        ])
    }
}

/// Posts a change built here (signed by `signers`) and returns the status and the problem.
fn post_change(base: &str, from: u64, keys: Vec<String>, signers: &[&PrivateKey]) -> (u16, Value) {
    let mut change = ValidatorChange::new(from, keys);
    for k in signers {
        change.sign(CHAIN, k);
    }
    common::post(
        &format!("{base}/1.0/consensus/validators"),
        &change.to_operation(),
    )
}

fn save(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path
}

#[test]
fn four_validators_add_a_fifth_then_remove_one_and_answers_verify_from_the_genesis_keys() {
    let mut c = Chain::new();
    for i in 0..4 {
        c.start(i);
    }
    let genesis = c.genesis.to_str().unwrap().to_string();
    let follower = Daemon::start_with(
        &c.dir.path().join("follower"),
        &[
            "--handle",
            "off",
            "--follow",
            &c.base(0),
            "--genesis",
            &genesis,
        ],
    );
    let (_, early_did) = create_did(&c.base(0), None);
    let (_, early) = get_json(&format!(
        "{}/1.0/identifiers/{early_did}?proof=true",
        c.base(0)
    ));

    // Every malformed change is refused, each with its reason, and nothing is committed.
    let four: Vec<String> = (0..4).map(|i| c.encoded(i)).collect();
    let mut five = four.clone();
    five.push(c.encoded(4));
    let k = &c.keys;
    let far = c.height(&c.base(0)) + 50;
    let refusals: Vec<(u64, Vec<String>, Vec<&PrivateKey>, &str)> = vec![
        (
            far,
            five.clone(),
            vec![&k[0], &k[1]],
            "2 signatures of the current set, a quorum is 3",
        ),
        (
            far,
            five.clone(),
            vec![&k[0], &k[1], &k[4]],
            "which is not a validator of the current set",
        ),
        (
            1,
            five.clone(),
            vec![&k[0], &k[1], &k[2]],
            "at the earliest",
        ),
        (
            far,
            vec![],
            vec![&k[0], &k[1], &k[2]],
            "the new validator set is empty",
        ),
        (
            far,
            vec![four[0].clone(), four[1].clone(), four[0].clone()],
            vec![&k[0], &k[1], &k[2]],
            "is listed twice in the new set",
        ),
    ];
    for (from, keys, signers, reason) in refusals {
        let (status, problem) = post_change(&c.base(0), from, keys, &signers);
        assert_eq!(status, 400, "{problem}");
        assert_eq!(
            problem["type"],
            "urn:sparkid:problem:validator-change-refused"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains(reason),
            "{problem} lacks {reason:?}"
        );
    }
    let mut duplicate = ValidatorChange::new(far, five.clone());
    for key in &k[..2] {
        duplicate.sign(CHAIN, key);
    }
    duplicate.signatures.push(duplicate.signatures[0].clone());
    let (status, problem) = common::post(
        &format!("{}/1.0/consensus/validators", c.base(0)),
        &duplicate.to_operation(),
    );
    assert_eq!(status, 400, "{problem}");
    assert!(problem["detail"]
        .as_str()
        .unwrap()
        .contains("two signatures by validator"));
    let (_, sets) = get_json(&format!("{}/1.0/consensus/validators", c.base(0)));
    assert_eq!(sets["sets"].as_array().unwrap().len(), 1, "{sets}");

    // The fifth is added: proposed, signed by three of the four, submitted.
    let from1 = c.height(&c.base(0)) + 6;
    let change = c.propose_and_sign(
        &["--add", &c.encoded(4), "--at", &from1.to_string()],
        &[0, 1, 2],
    );
    let committed = c.submit(&change);
    assert_eq!(committed["from"], from1, "{committed}");
    assert!(committed["height"].as_u64().unwrap() + 2 <= from1);
    // A second change while one is pending is refused.
    let (status, problem) =
        post_change(&c.base(0), from1 + 20, four.clone(), &[&k[0], &k[1], &k[2]]);
    assert_eq!(status, 400);
    assert!(
        problem["detail"].as_str().unwrap().contains("is pending"),
        "{problem}"
    );

    // The newcomer starts with its key on a ledger that knows only genesis: it catches up.
    c.start(4);
    c.write_until(0, from1 + 3);
    c.wait_height(&c.base(4), from1 + 3);
    let (_, status) = get_json(&format!("{}/1.0/consensus/status", c.base(4)));
    assert_eq!(status["member"], true, "{status}");
    assert_eq!(status["validators"], 5, "{status}");
    assert_eq!(status["quorum"], 4, "{status}");
    assert_eq!(
        metric(&c.base(0), "sparkid_consensus_validators"),
        Some(5.0)
    );
    assert_eq!(
        metric(&c.base(0), "sparkid_consensus_validator_set_changes_total"),
        Some(1.0)
    );
    // Blocks from the change on carry four votes of the five; the fifth votes.
    let fifth = c.encoded(4).to_lowercase();
    let mut fifth_voted = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !fifth_voted {
        assert!(
            Instant::now() < deadline,
            "the fifth validator never voted in a certificate"
        );
        c.write_until(0, c.height(&c.base(0)) + 1);
        let head = c.height(&c.base(0));
        for h in from1..=head {
            let voters = c.voters(0, h);
            assert!(voters.len() >= 4, "block {h}: {voters:?}");
            fifth_voted |= voters.contains(&fifth);
        }
    }

    // Validator 1 is removed: signed by four of the five (the newcomer among them).
    let head = c.height(&c.base(0));
    let from2 = head + 6;
    let change = c.propose_and_sign(
        &["--remove", &c.encoded(1), "--at", &from2.to_string()],
        &[0, 2, 3, 4],
    );
    let committed = c.submit(&change);
    assert_eq!(committed["from"], from2, "{committed}");
    let dids = c.write_until(0, from2 + 3);
    let last_did = dids.last().unwrap().clone();
    let removed = c.encoded(1).to_lowercase();
    let head = c.height(&c.base(0));
    for h in from2..=head {
        let voters = c.voters(0, h);
        assert!(voters.len() >= 3, "block {h}: {voters:?}");
        assert!(
            !voters.contains(&removed),
            "block {h}: the removed validator voted"
        );
    }
    c.wait_height(&c.base(1), head);
    let (_, status) = get_json(&format!("{}/1.0/consensus/status", c.base(1)));
    assert_eq!(status["member"], false, "{status}");
    assert_eq!(metric(&c.base(1), "sparkid_consensus_member"), Some(0.0));

    // The follower follows across both changes.
    c.wait_height(&follower.base, head);
    let (_, ours) = get_json(&format!("{}/1.0/ledger/head", follower.base));
    let (_, theirs) = get_json(&format!(
        "{}/1.0/ledger/blocks?from={}&limit=1",
        c.base(0),
        head
    ));
    assert_eq!(ours["header"], theirs["blocks"][0]["header"]);

    // An answer after both changes verifies offline with only the genesis: two hand-offs.
    let (status, answer) = get_json(&format!(
        "{}/1.0/identifiers/{last_did}?proof=true",
        follower.base
    ));
    assert_eq!(status, 200, "{answer}");
    let proof = &answer["didResolutionMetadata"]["ledgerProof"];
    assert_eq!(
        proof["handoffs"].as_array().map(Vec::len),
        Some(2),
        "{proof}"
    );
    let file = save(c.dir.path(), "after.json", &answer);
    let (ok, text) = verify_file(&file, &["--genesis", &genesis]);
    assert!(ok, "{text}");
    assert!(text.contains("2 hand-off(s) checked"), "{text}");
    assert!(text.contains("of 4 validators (quorum 3)"), "{text}");
    // The answer from before any change verifies as before, without hand-offs.
    assert!(early["didResolutionMetadata"]["ledgerProof"]
        .get("handoffs")
        .is_none());
    let (ok, text) = verify_file(
        &save(c.dir.path(), "early.json", &early),
        &["--genesis", &genesis],
    );
    assert!(ok, "{text}");

    // Broken hand-offs are caught: the first left out (the second, signed by the fifth, is
    // then checked against the genesis set), or the first's block without a quorum of votes.
    // (All of them left out may still verify: a certificate that carries a quorum of genesis
    // validators is one the genesis keys accept.)
    let mut short = answer.clone();
    short["didResolutionMetadata"]["ledgerProof"]["handoffs"]
        .as_array_mut()
        .unwrap()
        .remove(0);
    let (ok, text) = verify_file(
        &save(c.dir.path(), "short.json", &short),
        &["--genesis", &genesis],
    );
    assert!(!ok, "{text}");
    assert!(text.contains("validator-set hand-off"), "{text}");
    let mut forged = answer.clone();
    let votes = &mut forged["didResolutionMetadata"]["ledgerProof"]["handoffs"][0]["block"]
        ["certificate"]["votes"];
    votes.as_array_mut().unwrap().truncate(2);
    let (ok, text) = verify_file(
        &save(c.dir.path(), "forged.json", &forged),
        &["--genesis", &genesis],
    );
    assert!(!ok, "{text}");
    assert!(text.contains("validator-set hand-off"), "{text}");

    // `sparkid ledger verify` re-checks a stopped validator's chain across both changes.
    c.nodes[3].take().unwrap().kill9();
    let out = std::process::Command::new(common::BIN)
        .args(["ledger", "verify", "--data"])
        .arg(&c.data[3])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}
