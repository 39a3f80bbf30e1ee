//! `sparkid-bench`: the helpers of `scripts/bench-resolver`.
//!
//! - `load`: creates a dev ledger (as `sparkid serve --dev` would) holding N new DIDs with random
//!   keys, signed and verified in parallel and committed in full blocks; writes the DIDs, one a
//!   line.
//! - `sign-creates`: signs N creates of new DIDs (random keys) for a running chain and writes
//!   each transaction as one JSON line, for `scripts/bench-writes` to post to
//!   `POST /1.0/transactions` (client-signed writes, the signing outside the measured run).
//! - `fetch`: resolves DIDs through a running daemon (warming its cache) and, with `--out`,
//!   saves each answer as a static file at `<out>/1.0/identifiers/<did>` for nginx.
//! - `sync-latency`: writes through one node and times, for each write, how long after its
//!   `finished` answer every follower serves it (`/1.0/identifiers/<did>` answers 200).
//! - `sync-speed`: creates a follower ledger from a peer and times catching up with it through
//!   the peer API (fetch, verify certificates, re-execute, commit), in blocks per second.
//! - `creates`: creates DIDs through running daemons in the client-managed exchange (as a
//!   wallet does: ask, sign, answer), or, with `--signed FILE`, in one step each
//!   (`POST /1.0/transactions` of a create `sign-creates` signed beforehand, so that the load
//!   generator spends no CPU on keys and signatures during the run), one at a time (commit
//!   latency: median, p99) or many in flight (durable creates per second); with `--kill PID`,
//!   kills that process with SIGKILL first and times the kill to the first commit
//!   (`scripts/bench-consensus`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use sparkid_bid::PrivateKey;
use sparkid_ledger::store::MAX_BLOCK_TXS;
use sparkid_ledger::{CommitCertificate, Genesis, Ledger, TxBody, TxOutcome, VerifiedTransaction};
use sparkid_registrar::{BidStateMachine, Operation};

/// Benchmark helpers for the sparkid resolver.
#[derive(Debug, Parser)]
#[command(name = "sparkid-bench")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a dev ledger holding COUNT new DIDs.
    Load {
        /// Data directory (must not hold a ledger yet).
        #[arg(long)]
        data: PathBuf,
        /// How many DIDs.
        #[arg(long, default_value_t = 1_000_000)]
        count: usize,
        /// Where to write the DIDs, one a line.
        #[arg(long)]
        dids: PathBuf,
        /// Signing threads [default: the number of cores].
        #[arg(long)]
        threads: Option<usize>,
        /// Transactions per block (at most 4096): small blocks make a long chain.
        #[arg(long, default_value_t = MAX_BLOCK_TXS)]
        block_txs: usize,
    },
    /// Time from a write's `finished` to its visibility on every follower.
    SyncLatency {
        /// The node the writes go through (a dev validator, or a follower that forwards).
        #[arg(long)]
        writer: String,
        /// A follower's base URL (repeatable).
        #[arg(long = "follower", required = true)]
        followers: Vec<String>,
        /// How many writes (each a DID created in internal secret mode: dev validators only).
        #[arg(long, default_value_t = 300)]
        writes: usize,
    },
    /// Catch up from a peer into a new follower ledger; report blocks per second.
    SyncSpeed {
        /// The peer's base URL.
        #[arg(long)]
        peer: String,
        /// The new follower's data directory (must not hold a ledger).
        #[arg(long)]
        data: PathBuf,
    },
    /// Sign COUNT creates of new DIDs for chain CHAIN_ID; write them, one JSON line each.
    SignCreates {
        /// The chain's id (`GET /1.0/genesis`, `chainId`).
        #[arg(long)]
        chain_id: String,
        /// The last height that may include them.
        #[arg(long)]
        valid_until: u64,
        /// How many.
        #[arg(long)]
        count: usize,
        /// Where to write them.
        #[arg(long)]
        out: PathBuf,
    },
    /// Create DIDs through running daemons; report latency and creates per second.
    Creates {
        /// A daemon's base URL (repeatable: writes go round-robin).
        #[arg(long = "endpoint", required = true)]
        endpoints: Vec<String>,
        /// How many creates.
        #[arg(long, default_value_t = 200)]
        count: usize,
        /// Creates in flight.
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        /// Kill this process with SIGKILL first; report the time to the first commit.
        #[arg(long)]
        kill: Option<u32>,
        /// Post these pre-signed creates (`sign-creates` output, one JSON line each) to
        /// `POST /1.0/transactions`, one step each, instead of the registrar's exchange;
        /// `--skip` lines are left for another run.
        #[arg(long)]
        signed: Option<PathBuf>,
        /// Lines of `--signed` to skip (used by an earlier run on the same chain).
        #[arg(long, default_value_t = 0)]
        skip: usize,
    },
    /// Resolve DIDs through a daemon; save the answers with --out.
    Fetch {
        /// The daemon's base URL.
        #[arg(long)]
        endpoint: String,
        /// A file of DIDs, one a line.
        #[arg(long)]
        dids: PathBuf,
        /// A directory to save the answers under (`1.0/identifiers/<did>`).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Requests in flight.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Load {
            data,
            count,
            dids,
            threads,
            block_txs,
        } => load(&data, count, &dids, threads, block_txs),
        Command::SignCreates {
            chain_id,
            valid_until,
            count,
            out,
        } => sign_creates(&chain_id, valid_until, count, &out),
        Command::SyncLatency {
            writer,
            followers,
            writes,
        } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(sync_latency(writer, followers, writes)),
        Command::Creates {
            endpoints,
            count,
            concurrency,
            kill,
            signed,
            skip,
        } => {
            let signed = match signed {
                Some(path) => Some(signed_lines(&path, skip, count)?),
                None => None,
            };
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(creates(endpoints, count, concurrency, kill, signed))
        }
        Command::SyncSpeed { peer, data } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(sync_speed(peer, data)),
        Command::Fetch {
            endpoint,
            dids,
            out,
            concurrency,
        } => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(fetch(endpoint, &dids, out, concurrency)),
    }
}

struct Batch {
    txs: Vec<VerifiedTransaction>,
    dids: Vec<String>,
}

fn make_batch(chain_id: &str, valid_until: u64, n: usize) -> anyhow::Result<Batch> {
    let mut txs = Vec::with_capacity(n);
    let mut dids = Vec::with_capacity(n);
    for _ in 0..n {
        let key = PrivateKey::generate();
        let document = sparkid_registrar::api::new_document(&key.public_key(), None)
            .map_err(|e| anyhow::anyhow!(e))?;
        let did = document["id"].as_str().context("document id")?.to_string();
        let tx = TxBody {
            chain_id: chain_id.to_string(),
            signer: format!("{did}#key-1"),
            public_key: key.public_key().to_encoded(),
            nonce: TxBody::random_nonce(),
            valid_until,
            operation: Operation::Create { document }.to_value(),
        }
        .sign(&key)
        .verify()?;
        txs.push(tx);
        dids.push(did);
    }
    Ok(Batch { txs, dids })
}

fn sign_creates(chain_id: &str, valid_until: u64, count: usize, out: &Path) -> anyhow::Result<()> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let per = count.div_ceil(threads.max(1));
    let lines: Vec<anyhow::Result<String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let n = per.min(count.saturating_sub(t * per));
                scope.spawn(move || -> anyhow::Result<String> {
                    let mut text = String::new();
                    for _ in 0..n {
                        let key = PrivateKey::generate();
                        let document =
                            sparkid_registrar::api::new_document(&key.public_key(), None)
                                .map_err(|e| anyhow::anyhow!(e))?;
                        let did = document["id"].as_str().context("document id")?.to_string();
                        let tx = TxBody {
                            chain_id: chain_id.to_string(),
                            signer: format!("{did}#key-1"),
                            public_key: key.public_key().to_encoded(),
                            nonce: TxBody::random_nonce(),
                            valid_until,
                            operation: Operation::Create { document }.to_value(),
                        }
                        .sign(&key);
                        text.push_str(&serde_json::to_string(&tx)?);
                        text.push('\n');
                    }
                    Ok(text)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
    for text in lines {
        file.write_all(text?.as_bytes())?;
    }
    file.flush()?;
    Ok(())
}

fn load(
    data: &Path,
    count: usize,
    dids_path: &Path,
    threads: Option<usize>,
    block_txs: usize,
) -> anyhow::Result<()> {
    let block_txs = block_txs.clamp(1, MAX_BLOCK_TXS);
    if Ledger::exists(data) {
        bail!("{} already holds a ledger", data.display());
    }
    // The dev ledger `sparkid serve --dev` opens: its key in `validator.key`, a genesis naming
    // it as the only validator. The ledger is dropped at the end, so redb closes it cleanly.
    std::fs::create_dir_all(data)?;
    let validator = PrivateKey::generate();
    sparkid_node::node::write_secret(
        &data.join(sparkid_node::node::DEV_KEY_FILE),
        &validator.to_encoded(),
    )?;
    let genesis = Genesis {
        chain_id: "sparkid-dev".into(),
        time: sparkid_registrar::service::now(),
        validators: vec![validator.public_key().to_encoded()],
        authority: None,
        other: Default::default(),
    };
    let ledger = Ledger::create(data, genesis, &[&validator])?;
    // Cold reads are served from answer records (sparkid_resolver::answers): written here with
    // each block, rather than rebuilt by the daemon's first start.
    let answers = Arc::new(sparkid_resolver::answer_deriver::ResolutionAnswers::new());
    if !ledger.install_answers(answers)? {
        ledger.rebuild_answers()?;
    }
    let machine = BidStateMachine::for_genesis(ledger.genesis());
    let chain_id = ledger.genesis().chain_id.clone();
    // Every block of the load commits well within the validity window.
    let valid_until = ledger.height() + 50_000;
    let blocks = count.div_ceil(block_txs);
    let threads = threads
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(2)
        .max(1);
    let next = Arc::new(AtomicUsize::new(0));
    let (sender, receiver) = mpsc::sync_channel::<anyhow::Result<Batch>>(threads * 2);
    let started = Instant::now();
    let mut out = std::io::BufWriter::new(std::fs::File::create(dids_path)?);
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for _ in 0..threads {
            let (next, sender, chain_id) = (next.clone(), sender.clone(), chain_id.clone());
            scope.spawn(move || loop {
                let b = next.fetch_add(1, Ordering::Relaxed);
                if b >= blocks {
                    return;
                }
                let n = block_txs.min(count - b * block_txs);
                if sender.send(make_batch(&chain_id, valid_until, n)).is_err() {
                    return;
                }
            });
        }
        drop(sender);
        let progress = sparkid::progress::Progress::new("load", "DIDs", count as u64);
        let mut done = 0usize;
        for batch in receiver {
            let batch = batch?;
            let commit_started = Instant::now();
            let proposal = ledger.propose(
                &machine,
                batch.txs,
                sparkid_registrar::service::now(),
                |h| Ok(CommitCertificate::sign(h, &[&validator])),
            )?;
            for outcome in &proposal.outcomes {
                if let TxOutcome::Rejected { reason, .. } = outcome {
                    bail!("a create was refused: {reason}");
                }
            }
            for did in &batch.dids {
                writeln!(out, "{did}")?;
            }
            done += batch.dids.len();
            progress.message(format!(
                "height {}, last block committed in {} ms",
                ledger.height(),
                commit_started.elapsed().as_millis()
            ));
            progress.set(done as u64);
        }
        progress.finish();
        Ok(())
    })?;
    out.flush()?;
    drop(ledger);
    eprintln!(
        "loaded {count} DIDs in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn fetch(
    endpoint: String,
    dids: &Path,
    out: Option<PathBuf>,
    concurrency: usize,
) -> anyhow::Result<()> {
    let dids: Arc<Vec<String>> = Arc::new(
        std::fs::read_to_string(dids)?
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect(),
    );
    if let Some(out) = &out {
        std::fs::create_dir_all(out.join("1.0/identifiers"))?;
    }
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (dids, next, client, out) = (dids.clone(), next.clone(), client.clone(), out.clone());
        let endpoint = endpoint.trim_end_matches('/').to_string();
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(did) = dids.get(i) else {
                    return Ok::<(), anyhow::Error>(());
                };
                let response = client
                    .get(format!("{endpoint}/1.0/identifiers/{did}"))
                    .send()
                    .await?;
                if !response.status().is_success() {
                    bail!("{did}: {}", response.status());
                }
                let body = response.bytes().await?;
                if let Some(out) = &out {
                    tokio::task::block_in_place(|| {
                        std::fs::write(out.join("1.0/identifiers").join(did), &body)
                    })?;
                }
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn sync_latency(writer: String, followers: Vec<String>, writes: usize) -> anyhow::Result<()> {
    let writer = writer.trim_end_matches('/').to_string();
    let followers: Vec<String> = followers
        .iter()
        .map(|f| f.trim_end_matches('/').to_string())
        .collect();
    let client = reqwest::Client::new();
    // Milliseconds from `finished` to visible: on every follower, and on each.
    let mut every = Vec::with_capacity(writes);
    let mut each: Vec<Vec<f64>> = vec![Vec::with_capacity(writes); followers.len()];
    for _ in 0..writes {
        let answer: serde_json::Value = client
            .post(format!("{writer}/1.0/create?method=bid"))
            .json(&serde_json::json!({}))
            .send()
            .await?
            .json()
            .await?;
        let finished = Instant::now();
        if answer["didState"]["state"] != "finished" {
            bail!("the write did not finish: {answer}");
        }
        let did = answer["didState"]["did"]
            .as_str()
            .context("didState.did")?
            .to_string();
        // Every follower polled at once, back to back: a poll is one loopback request.
        let mut polls = tokio::task::JoinSet::new();
        for (i, follower) in followers.iter().enumerate() {
            let (client, url) = (client.clone(), format!("{follower}/1.0/identifiers/{did}"));
            polls.spawn(async move {
                loop {
                    let response = client.get(&url).send().await?;
                    if response.status().is_success() {
                        return Ok::<_, anyhow::Error>((i, finished.elapsed()));
                    }
                    if finished.elapsed().as_secs() > 30 {
                        bail!("{url}: not visible after 30 s");
                    }
                }
            });
        }
        let mut slowest = 0f64;
        while let Some(result) = polls.join_next().await {
            let (i, elapsed) = result??;
            let ms = elapsed.as_secs_f64() * 1000.0;
            each[i].push(ms);
            slowest = slowest.max(ms);
        }
        every.push(slowest);
    }
    every.sort_by(f64::total_cmp);
    println!(
        "{writes} writes through {writer}; ms from finished to visible on every follower: median {:.2}, p99 {:.2}, max {:.2}",
        percentile(&every, 0.5),
        percentile(&every, 0.99),
        every.last().copied().unwrap_or(f64::NAN)
    );
    for (follower, mut ms) in followers.iter().zip(each) {
        ms.sort_by(f64::total_cmp);
        println!(
            "  {follower}: median {:.2}, p99 {:.2}",
            percentile(&ms, 0.5),
            percentile(&ms, 0.99)
        );
    }
    Ok(())
}

async fn sync_speed(peer: String, data: PathBuf) -> anyhow::Result<()> {
    use sparkid_node::peer::{catch_up, PeerClient};
    if Ledger::exists(&data) {
        bail!("{} already holds a ledger", data.display());
    }
    let client = PeerClient::new(&peer)?;
    let genesis = client.genesis().await?;
    let page = client.blocks(0, 1, std::time::Duration::ZERO).await?;
    let block0 = page
        .blocks
        .into_iter()
        .next()
        .context("the peer sent no block 0")?;
    let ledger = Arc::new(Ledger::create_certified(
        &data,
        genesis,
        block0.certificate,
    )?);
    let machine = Arc::new(BidStateMachine::for_genesis(ledger.genesis()));
    let target = client.head().await?.header.height;
    let started = Instant::now();
    let applied = catch_up(&ledger, &machine, &client).await?;
    let secs = started.elapsed().as_secs_f64();
    let report = tokio::task::spawn_blocking({
        let ledger = ledger.clone();
        move || -> anyhow::Result<u64> {
            let mut txs = 0u64;
            for h in 1..=ledger.height() {
                txs += ledger.block(h)?.map_or(0, |b| b.transactions.len() as u64);
            }
            Ok(txs)
        }
    })
    .await??;
    println!(
        "caught up {applied} blocks ({report} transactions) from {peer} (head {target}) in {secs:.2} s: {:.1} blocks/s, {:.0} transactions/s",
        applied as f64 / secs,
        report as f64 / secs
    );
    Ok(())
}

/// Requests sent again (or looked up) after their connection closed under them.
static RETRIED: AtomicUsize = AtomicUsize::new(0);

/// One create in the client-managed exchange: ask, sign the payload, answer. Returns how long
/// the answer (the write that waits for its commit) took.
async fn create_once(client: &reqwest::Client, endpoint: &str) -> anyhow::Result<Duration> {
    let key = PrivateKey::generate();
    let document = sparkid_registrar::api::new_document(&key.public_key(), None)
        .map_err(|e| anyhow::anyhow!(e))?;
    let did = document["id"].as_str().unwrap_or_default().to_string();
    let url = format!("{endpoint}/1.0/create?method=bid");
    let ask = serde_json::json!({"options": {"clientSecretMode": true}, "didDocument": document});
    // A keep-alive connection the server closed as it was reused: asked again on a new one.
    let asked: serde_json::Value = match client.post(&url).json(&ask).send().await {
        Ok(r) => r.json().await?,
        Err(_) => {
            RETRIED.fetch_add(1, Ordering::Relaxed);
            client.post(&url).json(&ask).send().await?.json().await?
        }
    };
    let request = &asked["didState"]["signingRequest"]["signingRequest0"];
    let body: TxBody = serde_json::from_value(request["payload"].clone())
        .with_context(|| format!("no signing request: {asked}"))?;
    let signature = hex::encode(key.sign(&body.signing_bytes()).0);
    let started = Instant::now();
    let response = client
        .post(&url)
        .json(&serde_json::json!({
            "jobId": asked["jobId"],
            "secret": {
                "jobSecret": asked["didRegistrationMetadata"]["jobSecret"],
                "signingResponse": {"signingRequest0": {"signature": signature}},
            },
        }))
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(_) => {
            // The answer was lost with its connection: the write may have committed, so it is
            // looked up, as a client of a 503 "may still commit" does, not submitted again.
            RETRIED.fetch_add(1, Ordering::Relaxed);
            let lookup = format!("{endpoint}/1.0/identifiers/{did}");
            while started.elapsed() < Duration::from_secs(30) {
                if let Ok(r) = client.get(&lookup).send().await {
                    if r.status().is_success() {
                        return Ok(started.elapsed());
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            bail!("{did}: its answer was lost and it did not commit within 30 s");
        }
    };
    let status = response.status();
    let answer: serde_json::Value = response.json().await?;
    let took = started.elapsed();
    if answer["didState"]["state"] != "finished" {
        bail!("the create did not finish ({status}): {answer}");
    }
    Ok(took)
}

/// Lines `skip..skip + count` of a `sign-creates` file: one signed create each.
fn signed_lines(path: &Path, skip: usize, count: usize) -> anyhow::Result<Arc<Vec<String>>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.is_empty())
        .skip(skip)
        .take(count)
        .map(str::to_string)
        .collect();
    if lines.len() < count {
        bail!(
            "{} holds {} signed creates past line {skip}, fewer than the {count} asked for",
            path.display(),
            lines.len()
        );
    }
    Ok(Arc::new(lines))
}

/// One create in one step: `POST /1.0/transactions` of a create signed beforehand. Returns how
/// long the answer (sent once its block is durable) took.
async fn create_signed(
    client: &reqwest::Client,
    endpoint: &str,
    line: &str,
) -> anyhow::Result<Duration> {
    let url = format!("{endpoint}/1.0/transactions");
    let started = Instant::now();
    let send = || {
        client
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(line.to_string())
            .send()
    };
    let (response, resent) = match send().await {
        Ok(r) => (r, false),
        Err(_) => {
            // A keep-alive connection closed under the request: the same transaction again is
            // harmless (a committed copy is refused as a duplicate, which then counts).
            RETRIED.fetch_add(1, Ordering::Relaxed);
            (send().await?, true)
        }
    };
    let status = response.status();
    let answer: serde_json::Value = response.json().await?;
    let took = started.elapsed();
    let committed_before = resent && answer.to_string().contains("already included");
    if answer["didState"]["state"] != "finished" && !committed_before {
        bail!("the create did not finish ({status}): {answer}");
    }
    Ok(took)
}

async fn creates(
    endpoints: Vec<String>,
    count: usize,
    concurrency: usize,
    kill: Option<u32>,
    signed: Option<Arc<Vec<String>>>,
) -> anyhow::Result<()> {
    let endpoints: Arc<Vec<String>> = Arc::new(
        endpoints
            .iter()
            .map(|e| e.trim_end_matches('/').to_string())
            .collect(),
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency.max(1))
        .build()?;
    if let Some(pid) = kill {
        let status = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -9 {pid} failed");
        }
        let killed = Instant::now();
        match &signed {
            Some(lines) => create_signed(&client, &endpoints[0], &lines[0]).await?,
            None => create_once(&client, &endpoints[0]).await?,
        };
        println!(
            "kill -9 of {pid} to the next commit: {:.0} ms",
            killed.elapsed().as_secs_f64() * 1000.0
        );
        return Ok(());
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let (client, endpoints, next) = (client.clone(), endpoints.clone(), next.clone());
        let signed = signed.clone();
        tasks.spawn(async move {
            let mut took = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>(took);
                }
                let endpoint = &endpoints[i % endpoints.len()];
                took.push(match &signed {
                    Some(lines) => create_signed(&client, endpoint, &lines[i]).await?,
                    None => create_once(&client, endpoint).await?,
                });
            }
        });
    }
    let mut ms = Vec::with_capacity(count);
    while let Some(result) = tasks.join_next().await {
        ms.extend(result??.iter().map(|d| d.as_secs_f64() * 1000.0));
    }
    let secs = started.elapsed().as_secs_f64();
    ms.sort_by(f64::total_cmp);
    println!(
        "{count} creates ({}), {} in flight, through {} endpoint(s) in {secs:.2} s: {:.0} creates/s; \
         commit wait ms: median {:.1}, p99 {:.1}, max {:.1}; {} resent after a closed connection",
        if signed.is_some() {
            "one step, pre-signed"
        } else {
            "registrar exchange"
        },
        concurrency.max(1),
        endpoints.len(),
        count as f64 / secs,
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms.last().copied().unwrap_or(f64::NAN),
        RETRIED.load(Ordering::Relaxed)
    );
    Ok(())
}
