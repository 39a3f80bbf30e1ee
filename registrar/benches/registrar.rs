//! Durable registration throughput.
//!
//! - "commit a block of N registrations": each iteration gets N freshly signed create
//!   transactions (signing is setup, not timed) and times what a proposer does with them: check
//!   every signature (`verify_all`), execute them with the did:bid rules, and commit the block
//!   durably (one fsynced redb write). One ledger serves every iteration, so blocks land on a
//!   chain that already holds earlier ones.
//! - "daemon path, K registrations": the registrar's own path, sustained. K signed creates are
//!   submitted at once; each is verified on the async runtime, as the HTTP handler does, and
//!   handed to the block producer ([`Submitter`]), which commits whatever is waiting (up to a
//!   block) as one durable block while the next transactions are verified. The time is until
//!   the last one is answered committed.

use std::cell::Cell;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use serde_json::json;
use sparkid_bid::document::DID_CONTEXT;
use sparkid_bid::{Bid, PrivateKey};
use sparkid_ledger::store::MAX_BLOCK_TXS;
use sparkid_ledger::tx::verify_all;
use sparkid_ledger::{CommitCertificate, Genesis, Ledger, Transaction, TxBody, TxOutcome};
use sparkid_registrar::{BidStateMachine, Operation, Submitter};

const CHAIN: &str = "bench";
/// Blocks of [`EARLIER_BLOCK_TXS`] registrations committed before measuring.
const EARLIER_BLOCKS: usize = 10;
const EARLIER_BLOCK_TXS: usize = 1000;

/// A create of a fresh DID, signed by the key it derives from.
fn registration(valid_until: u64) -> Transaction {
    let key = PrivateKey::generate();
    let public = key.public_key();
    let did = Bid::derive(&public, None).unwrap().to_string();
    let kid = format!("{did}#key-1");
    let document = json!({
        "@context": [DID_CONTEXT],
        "version": "1.0.0",
        "id": did,
        "publicKey": [{"id": kid, "type": "Ed25519", "controller": did, "publicKeyHex": public.to_encoded()}],
        "authentication": [kid],
        "extension": {"recovery": [kid], "ttl": 86400},
    });
    TxBody {
        chain_id: CHAIN.into(),
        signer: kid,
        public_key: public.to_encoded(),
        nonce: TxBody::random_nonce(),
        valid_until,
        operation: Operation::Create { document }.to_value(),
    }
    .sign(&key)
}

struct Bench {
    ledger: Arc<Ledger>,
    machine: BidStateMachine,
    validator: PrivateKey,
    registered: Cell<u64>,
}

impl Bench {
    /// N signed registrations, valid from the next block on.
    fn batch(&self, n: usize) -> Vec<Transaction> {
        let valid_until = self.ledger.height() + 100;
        (0..n).map(|_| registration(valid_until)).collect()
    }

    /// What is timed: verify every signature, execute, commit durably.
    fn commit(&self, txs: Vec<Transaction>) -> usize {
        let n = txs.len();
        let verified = verify_all(txs)
            .into_iter()
            .map(|r| r.expect("signed correctly"))
            .collect();
        let now = self.ledger.head().header.time + 1;
        let proposal = self
            .ledger
            .propose(&self.machine, verified, now, |h| {
                Ok(CommitCertificate::sign(h, &[&self.validator]))
            })
            .expect("the block commits");
        let included = proposal
            .outcomes
            .iter()
            .filter(|o| matches!(o, TxOutcome::Included { .. }))
            .count();
        assert_eq!(included, n, "every registration is included");
        self.registered.set(self.registered.get() + n as u64);
        included
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let validator = PrivateKey::generate();
    let genesis = Genesis {
        chain_id: CHAIN.into(),
        time: 1_700_000_000,
        validators: vec![validator.public_key().to_encoded()],
        authority: None,
        other: Default::default(),
    };
    let ledger = Arc::new(Ledger::create(dir.path(), genesis, &[&validator]).unwrap());
    let bench = Bench {
        ledger,
        machine: BidStateMachine::default(),
        validator,
        registered: Cell::new(0),
    };
    for _ in 0..EARLIER_BLOCKS {
        bench.commit(bench.batch(EARLIER_BLOCK_TXS));
    }

    let mut group = c.benchmark_group("commit a block of N registrations");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    // 100: a light load; 1000: a busy one; 4096: the block limit, what the producer fills
    // under sustained load.
    for n in [100usize, 1000, MAX_BLOCK_TXS] {
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter_batched(
                || bench.batch(n),
                |txs| black_box(bench.commit(txs)),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
    eprintln!(
        "ledger after the benchmark: height {}, {} registrations",
        bench.ledger.height(),
        bench.registered.get()
    );
    daemon(c, &bench);
}

/// The daemon's path: verify on the runtime, group commit in the block producer.
fn daemon(c: &mut Criterion, bench: &Bench) {
    let validator = PrivateKey::from_encoded(&bench.validator.to_encoded()).unwrap();
    let submitter = Submitter::start(
        bench.ledger.clone(),
        bench.machine.clone(),
        Box::new(move |h| Ok(CommitCertificate::sign(h, &[&validator]))),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let start = bench.ledger.height();
    let mut group = c.benchmark_group("daemon path, K registrations");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    let k = 5000usize;
    let submitted = Cell::new(0u64);
    group.throughput(Throughput::Elements(k as u64));
    group.bench_with_input(BenchmarkId::from_parameter(k), &k, |b, &k| {
        b.iter_batched(
            || bench.batch(k),
            |txs| {
                submitted.set(submitted.get() + txs.len() as u64);
                runtime.block_on(async {
                    let answers: Vec<_> = txs
                        .into_iter()
                        .map(|tx| {
                            let submitter = submitter.clone();
                            tokio::spawn(async move {
                                let verified = tx.verify().expect("signed correctly");
                                submitter.submit(verified).await.expect("committed")
                            })
                        })
                        .collect();
                    for answer in answers {
                        black_box(answer.await.unwrap());
                    }
                })
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    let blocks = bench.ledger.height() - start;
    eprintln!(
        "daemon path: {} registrations in {blocks} blocks ({} per block on average)",
        submitted.get(),
        submitted.get() / blocks.max(1)
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
