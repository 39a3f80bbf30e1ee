//! The ledger with a minimal state machine: `{"set": key, "value": v}` writes `kv/<key>`, and
//! only when the key is unset or was set by the same signer.

use serde_json::json;
use sparkid_bid::PrivateKey;
use sparkid_ledger::*;

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("{0}")]
struct Refused(String);

struct Kv;

impl StateMachine for Kv {
    type Rejection = Refused;
    fn execute(
        &self,
        tx: &VerifiedTransaction,
        _: &ExecContext<'_>,
        state: &dyn StateView,
    ) -> Result<Result<Writes, Refused>, LedgerError> {
        let op = &tx.tx().body.operation;
        let (Some(key), Some(value)) = (op["set"].as_str(), op["value"].as_str()) else {
            return Ok(Err(Refused("bad operation".into())));
        };
        let k = format!("kv/{key}");
        let owner = &tx.tx().body.public_key;
        if let Some(old) = state.get(&k)? {
            let old: serde_json::Value = serde_json::from_str(&old).unwrap();
            if old["owner"] != json!(owner) {
                return Ok(Err(Refused("not the owner".into())));
            }
        }
        Ok(Ok(vec![(
            k,
            json!({"owner": owner, "value": value}).to_string(),
        )]))
    }
}

fn genesis(key: &PrivateKey) -> Genesis {
    sparkid_test_support::genesis("test", &[key])
}

fn tx(key: &PrivateKey, set: &str, value: &str, valid_until: u64) -> VerifiedTransaction {
    let operation = json!({"set": set, "value": value});
    sparkid_test_support::transaction("test", "s#key-1", key, operation, valid_until)
}

fn commit(
    ledger: &Ledger,
    validator: &PrivateKey,
    txs: Vec<VerifiedTransaction>,
) -> Proposal<Refused> {
    ledger
        .propose(&Kv, txs, 1_700_000_100, |h| {
            Ok(CommitCertificate::sign(h, &[validator]))
        })
        .unwrap()
}

#[test]
fn blocks_commit_prove_reopen_replicate_and_verify() {
    let dir = tempfile::tempdir().unwrap();
    let validator = PrivateKey::generate();
    let alice = PrivateKey::generate();
    let bob = PrivateKey::generate();
    let ledger = Ledger::create(dir.path(), genesis(&validator), &[&validator]).unwrap();

    let t1 = tx(&alice, "a", "1", 10);
    let replay = t1.clone();
    let p = commit(
        &ledger,
        &validator,
        vec![
            t1,
            tx(&bob, "b", "2", 10),
            tx(&bob, "a", "stolen", 10),
            tx(&alice, "x", "late", 0),
        ],
    );
    let outcomes: Vec<String> = p
        .outcomes
        .iter()
        .map(|o| match o {
            TxOutcome::Included { .. } => "in".to_string(),
            TxOutcome::Rejected { reason, .. } => reason.to_string(),
        })
        .collect();
    assert_eq!(outcomes[..3], ["in", "in", "not the owner"]);
    assert!(outcomes[3].contains("expired"), "{}", outcomes[3]);
    assert_eq!(ledger.height(), 1);

    // A replayed transaction is refused and no block is made.
    let p = commit(&ledger, &validator, vec![replay]);
    assert!(p.block.is_none());
    assert!(matches!(
        &p.outcomes[0],
        TxOutcome::Rejected {
            reason: TxRejection::Duplicate(1),
            ..
        }
    ));

    commit(&ledger, &validator, vec![tx(&alice, "a", "3", 10)]);
    assert_eq!(ledger.height(), 2);
    let history = ledger.history("kv/a").unwrap();
    assert_eq!(history.iter().map(|(h, _)| *h).collect::<Vec<_>>(), [1, 2]);

    // Proofs of presence and absence verify with the validator keys alone.
    let validators = ValidatorSet::from_encoded(&[validator.public_key().to_encoded()]).unwrap();
    let present = ledger.prove("kv/a").unwrap();
    assert!(present.value.as_deref().unwrap().contains("\"3\""));
    present.verify(&validators).unwrap();
    let absent = ledger.prove("kv/zzz").unwrap();
    assert_eq!(absent.value, None);
    absent.verify(&validators).unwrap();
    let mut lie = present.clone();
    lie.value = Some(lie.value.unwrap().replace("\"3\"", "\"4\""));
    assert!(matches!(
        lie.verify(&validators),
        Err(RecordProofError::Path(_))
    ));
    let stranger =
        ValidatorSet::from_encoded(&[PrivateKey::generate().public_key().to_encoded()]).unwrap();
    assert!(matches!(
        present.verify(&stranger),
        Err(RecordProofError::Certificate(_))
    ));

    // A follower applies the same blocks and reaches the same root; a tampered block is refused.
    let fdir = tempfile::tempdir().unwrap();
    let follower = Ledger::create(fdir.path(), genesis(&validator), &[&validator]).unwrap();
    let mut b1 = ledger.block(1).unwrap().unwrap();
    let honest = b1.clone();
    b1.transactions.pop();
    // Its certificate still commits its header; its transactions no longer match it.
    match follower.apply_block(&Kv, b1) {
        Err(LedgerError::BadBlock { height: 1, reason }) => assert_eq!(
            reason, "txRoot or txCount does not match the transactions",
            "{reason}"
        ),
        other => panic!("a block missing a transaction: {other:?}"),
    }
    let mut forged = honest.clone();
    forged.header.state_root = Hash([7; 32]);
    // Another header than the certified one: refused at the certificate.
    match follower.apply_block(&Kv, forged) {
        Err(LedgerError::Certificate(block::CertificateError::WrongBlock {
            certified,
            actual,
        })) => {
            assert_eq!(certified, honest.header.hash());
            assert_ne!(actual, certified);
        }
        other => panic!("a forged state root: {other:?}"),
    }
    follower.apply_block(&Kv, honest).unwrap();
    follower
        .apply_block(&Kv, ledger.block(2).unwrap().unwrap())
        .unwrap();
    assert_eq!(follower.head(), ledger.head());

    // The whole chain re-verifies, and after reopening, serves at once.
    let report = verify_chain(&ledger, &Kv).unwrap();
    assert_eq!(
        (report.blocks, report.transactions, report.state_keys),
        (3, 3, 3)
    );
    let head = ledger.head();
    drop(ledger);
    let reopened = Ledger::open(dir.path()).unwrap();
    assert_eq!(reopened.head(), head);
    assert!(reopened.get("kv/b").unwrap().unwrap().contains("\"2\""));
    verify_chain(&reopened, &Kv).unwrap();
}

#[test]
fn a_large_block_executes_as_if_in_order() {
    // Blocks this large execute on all cores: the outcomes must be those of running the
    // transactions one after another, conflicts within the block included.
    let validator = PrivateKey::generate();
    let alice = PrivateKey::generate();
    let bob = PrivateKey::generate();
    let mut txs = Vec::new();
    for i in 0..40 {
        txs.push(tx(&alice, &format!("k{i}"), "alice", 100));
    }
    for i in 0..40 {
        // Reads what alice wrote earlier in the same block: refused.
        txs.push(tx(&bob, &format!("k{i}"), "bob", 100));
        txs.push(tx(&bob, &format!("b{i}"), "bob", 100));
    }
    for i in 0..20 {
        // Alice again, after bob's refused attempts; and a replay within the block.
        txs.push(tx(&alice, &format!("k{i}"), "again", 100));
        txs.push(txs[i].clone());
    }
    let expected = |i: usize| -> &str {
        match i {
            0..40 => "in",
            40..120 if (i - 40).is_multiple_of(2) => "not the owner",
            40..120 => "in",
            _ if (i - 120).is_multiple_of(2) => "in",
            _ => "duplicate",
        }
    };
    let outcome = |o: &TxOutcome<Refused>| match o {
        TxOutcome::Included { .. } => "in".to_string(),
        TxOutcome::Rejected {
            reason: TxRejection::Duplicate(1),
            ..
        } => "duplicate".to_string(),
        TxOutcome::Rejected { reason, .. } => reason.to_string(),
    };

    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::create(dir.path(), genesis(&validator), &[&validator]).unwrap();
    let p = commit(&ledger, &validator, txs.clone());
    for (i, o) in p.outcomes.iter().enumerate() {
        assert_eq!(outcome(o), expected(i), "transaction {i}");
    }
    assert!(ledger.get("kv/k3").unwrap().unwrap().contains("again"));
    assert!(ledger.get("kv/k30").unwrap().unwrap().contains("alice"));
    verify_chain(&ledger, &Kv).unwrap();

    // The same transactions in blocks too small for threads reach the same state.
    let sdir = tempfile::tempdir().unwrap();
    let small = Ledger::create(sdir.path(), genesis(&validator), &[&validator]).unwrap();
    let mut outcomes = Vec::new();
    for chunk in txs.chunks(100).next().unwrap().chunks(10) {
        outcomes.extend(commit(&small, &validator, chunk.to_vec()).outcomes);
    }
    let rest: Vec<_> = txs[100..].to_vec();
    for chunk in rest.chunks(10) {
        outcomes.extend(commit(&small, &validator, chunk.to_vec()).outcomes);
    }
    assert_eq!(outcomes.len(), txs.len());
    for (i, (a, b)) in p.outcomes.iter().zip(&outcomes).enumerate() {
        let (a, b) = (outcome(a), outcome(b));
        // Replays in later small blocks name the earlier block's height.
        if a == "duplicate" {
            assert!(
                b == "duplicate" || b.contains("already included"),
                "transaction {i}: {b}"
            );
        } else {
            assert_eq!(a, b, "transaction {i}");
        }
    }
    assert_eq!(
        small.head().header.state_root,
        ledger.head().header.state_root
    );
    verify_chain(&small, &Kv).unwrap();
}

/// `get_many` (the cold read of a DID: its record and its reverse index together) answers each
/// key's current value, its newest version after a block rewrote it, and none for an absent
/// key, in the order asked; exactly what `get` answers key by key.
#[test]
fn keys_read_together_are_each_keys_current_value() {
    let dir = tempfile::tempdir().unwrap();
    let validator = PrivateKey::generate();
    let user = PrivateKey::generate();
    let ledger = Ledger::create(dir.path(), genesis(&validator), &[&validator]).unwrap();
    commit(
        &ledger,
        &validator,
        vec![tx(&user, "a", "1", 10), tx(&user, "b", "2", 10)],
    );
    commit(&ledger, &validator, vec![tx(&user, "a", "3", 10)]);
    let keys = ["kv/b", "kv/none", "kv/a"];
    let together = ledger.get_many(&keys).unwrap();
    let value = |v: &Option<String>| {
        v.as_deref()
            .map(|v| serde_json::from_str::<serde_json::Value>(v).unwrap()["value"].clone())
    };
    assert_eq!(
        together.iter().map(value).collect::<Vec<_>>(),
        vec![Some(json!("2")), None, Some(json!("3"))]
    );
    let one_by_one: Vec<_> = keys.iter().map(|k| ledger.get(k).unwrap()).collect();
    assert_eq!(together, one_by_one);
    assert_eq!(ledger.get_many(&[]).unwrap(), Vec::<Option<String>>::new());
}
