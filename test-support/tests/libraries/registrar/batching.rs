//! The block producer's batching (issue 12, item 3): it never hands the sequencer more than one
//! block holds, in bytes as well as in transactions, and what did not fit waits for the next
//! batch instead of being refused.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sparkid_bid::PrivateKey;
use sparkid_ledger::block::{block_tx_bytes, MAX_BLOCK_TX_BYTES};
use sparkid_ledger::{Ledger, VerifiedTransaction};
use sparkid_registrar::{BidStateMachine, Committed, Sequencer, SubmitError, Submitter};
use sparkid_test_support::{transaction, DevChain, DEV_CHAIN};

/// Records each batch's size in bytes; holds its first batch until `gate` opens, so that
/// everything submitted meanwhile waits in the queue.
struct Recording {
    batches: Arc<Mutex<Vec<(usize, usize)>>>,
    gate: Option<std_mpsc::Receiver<()>>,
}

impl Sequencer for Recording {
    fn sequence(
        &mut self,
        _ledger: &Ledger,
        _machine: &BidStateMachine,
        txs: Vec<VerifiedTransaction>,
        _forwarded: bool,
    ) -> Vec<Result<Committed, SubmitError>> {
        if let Some(gate) = self.gate.take() {
            let _ = gate.recv();
        }
        let bytes = txs
            .iter()
            .map(|t| block_tx_bytes(t.canonical().len()))
            .sum();
        self.batches.lock().unwrap().push((txs.len(), bytes));
        txs.iter()
            .enumerate()
            .map(|(i, t)| {
                Ok(Committed {
                    height: 1,
                    index: i as u32,
                    tx_hash: t.hash(),
                })
            })
            .collect()
    }
}

fn padded(key: &PrivateKey, pad: usize) -> VerifiedTransaction {
    let operation = serde_json::json!({ "pad": "x".repeat(pad) });
    transaction(DEV_CHAIN, "s#key-1", key, operation, 50)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_never_holds_more_bytes_than_a_block() {
    let chain = DevChain::new();
    let batches = Arc::new(Mutex::new(Vec::new()));
    let (open, gate) = std_mpsc::channel();
    let submitter = Submitter::start_with(
        chain.ledger.clone(),
        BidStateMachine::default(),
        Box::new(Recording {
            batches: batches.clone(),
            gate: Some(gate),
        }),
    );
    let user = PrivateKey::generate();
    let first = {
        let s = submitter.clone();
        let tx = padded(&user, 100);
        tokio::spawn(async move { s.submit(tx).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    // 12 MiB waiting while the first batch is held: more than one block's worth.
    let mut waiting = Vec::new();
    for _ in 0..210 {
        let s = submitter.clone();
        let tx = padded(&user, 60_000);
        waiting.push(tokio::spawn(async move { s.submit(tx).await }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    open.send(()).unwrap();
    assert!(first.await.unwrap().is_ok());
    for w in waiting {
        let answer = w.await.unwrap();
        assert!(answer.is_ok(), "{:?}", answer.map(|c| c.height));
    }
    let batches = batches.lock().unwrap().clone();
    let total: usize = batches.iter().map(|(n, _)| n).sum();
    assert_eq!(total, 211, "{batches:?}");
    for (n, bytes) in &batches {
        assert!(
            *bytes <= MAX_BLOCK_TX_BYTES,
            "a batch of {n} transactions, {bytes} bytes: {batches:?}"
        );
    }
    assert!(
        batches.len() >= 3,
        "the waiting transactions took two batches: {batches:?}"
    );
}
