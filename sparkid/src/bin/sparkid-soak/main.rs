//! `sparkid-soak`: the load and fault driver of `scripts/soak`.
//!
//! It builds the compose topology from processes (four validators made by the genesis
//! ceremony, two followers of all four sharing a real `redis-server`, loopback ports, data
//! directories under `--dir`), then for `--minutes` runs writers (DID creates and updates in
//! client-managed mode through random nodes) and readers (resolutions through random nodes,
//! some with `?proof=true`), while it SIGKILLs a random node every `--fault-interval` seconds
//! (restarting it on its data directory) and restarts Redis once. Afterwards every acknowledged
//! write must be served by every node, every ledger must pass `sparkid ledger verify`, and a
//! sample of the proof answers must pass `sparkid verify`; it prints the figures and exits
//! non-zero if any of that fails, or if no answer may be trusted (a wrong read), or if writes
//! stopped.

mod book;
mod checks;
mod cluster;
mod load;
mod rng;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;

use book::{quantile, Book, Stats};
use cluster::{Cluster, Role};
use load::{Ctx, Settings};
use rng::Rng;

/// Soak a four-validator, two-follower sparkid cluster with Redis under load and faults.
#[derive(Debug, Parser)]
#[command(name = "sparkid-soak")]
struct Args {
    /// The `sparkid` binary under test.
    #[arg(long, env = "SPARKID_BIN")]
    sparkid: PathBuf,
    /// A new directory for data, keys and logs (kept for inspection).
    #[arg(long, env = "SOAK_DIR")]
    dir: PathBuf,
    /// Minutes of load and faults.
    #[arg(long, env = "SOAK_MINUTES", default_value_t = 2.0)]
    minutes: f64,
    /// Writer tasks.
    #[arg(long, env = "SOAK_WRITERS", default_value_t = 2)]
    writers: usize,
    /// Reader tasks.
    #[arg(long, env = "SOAK_READERS", default_value_t = 3)]
    readers: usize,
    /// Writes started per second, all writers together (0: no pacing).
    #[arg(long, env = "SOAK_WRITE_RATE", default_value_t = 4.0)]
    write_rate: f64,
    /// Reads started per second, all readers together (0: no pacing).
    #[arg(long, env = "SOAK_READ_RATE", default_value_t = 30.0)]
    read_rate: f64,
    /// Share of reads with `?proof=true`.
    #[arg(long, env = "SOAK_PROOF_SHARE", default_value_t = 0.2)]
    proof_share: f64,
    /// Share of reads of a DID nobody registered.
    #[arg(long, env = "SOAK_UNKNOWN_SHARE", default_value_t = 0.05)]
    unknown_share: f64,
    /// Proof answers checked with `sparkid verify` at the end (a uniform sample).
    #[arg(long, env = "SOAK_VERIFY_SAMPLE", default_value_t = 60)]
    verify_sample: usize,
    /// Seconds between node kills.
    #[arg(long, env = "SOAK_FAULT_INTERVAL", default_value_t = 20.0)]
    fault_interval: f64,
    /// Seconds a killed node stays down before its restart.
    #[arg(long, env = "SOAK_DOWN_SECS", default_value_t = 3.0)]
    down: f64,
    /// The longest time without an acknowledged write the run tolerates, in seconds.
    #[arg(long, env = "SOAK_MAX_GAP", default_value_t = 60.0)]
    max_gap: f64,
    /// The seed of every random choice [default: from the clock; printed].
    #[arg(long, env = "SOAK_SEED")]
    seed: Option<u64>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("soak: no runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = soak(args) => outcome,
            _ = interrupted() => Err(anyhow::anyhow!("interrupted")),
        }
    });
    match outcome {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("soak: error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Ctrl-C or SIGTERM: the cluster is dropped (its processes killed) on the way out.
async fn interrupted() {
    let ctrl_c = tokio::signal::ctrl_c();
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    } else {
        let _ = ctrl_c.await;
    }
}

/// The whole run; whether everything held.
async fn soak(args: Args) -> anyhow::Result<bool> {
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let sparkid = std::fs::canonicalize(&args.sparkid)?;
    let settings = Settings {
        seed,
        writers: args.writers,
        readers: args.readers,
        write_rate: args.write_rate,
        read_rate: args.read_rate,
        proof_share: args.proof_share,
        unknown_share: args.unknown_share,
        verify_sample: args.verify_sample,
        fault_interval: Duration::from_secs_f64(args.fault_interval.max(1.0)),
        down: Duration::from_secs_f64(args.down.max(0.0)),
    };
    eprintln!(
        "soak: seed {seed}, {} min, {} writers ({}/s), {} readers ({}/s), a kill every {:?}; \
         data and logs in {}",
        args.minutes,
        args.writers,
        args.write_rate,
        args.readers,
        args.read_rate,
        settings.fault_interval,
        args.dir.display()
    );
    let mut rng = Rng::new(seed, 1);
    let setup = Instant::now();
    let cluster = Cluster::start(&sparkid, &args.dir, &mut rng).await?;
    eprintln!(
        "soak: 4 validators, 2 followers and redis up in {:.1} s",
        setup.elapsed().as_secs_f64()
    );
    let ctx = Arc::new(Ctx {
        cluster,
        book: Mutex::new(Book::default()),
        stats: Mutex::new(Stats::new()),
        settings,
        stop_monitor: AtomicBool::new(false),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
    });
    let monitor = tokio::spawn(load::monitor(ctx.clone()));

    // The load and the faults.
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(args.minutes.max(0.0) * 60.0);
    let mut tasks = tokio::task::JoinSet::new();
    for id in 0..args.writers {
        tasks.spawn(load::writer(ctx.clone(), id, until));
    }
    for id in 0..args.readers {
        tasks.spawn(load::reader(ctx.clone(), id, until));
    }
    tasks.spawn(load::faults(ctx.clone(), until));
    while let Some(done) = tasks.join_next().await {
        done?;
    }
    let load_secs = started.elapsed().as_secs_f64();
    eprintln!("soak: load over after {load_secs:.1} s; checking");

    // Every node is up (the fault injector restarts each node it kills); writes commit
    // through each; all reach one head; every acknowledged write is everywhere.
    let mut failures: Vec<String> = std::mem::take(&mut ctx.stats().fault_errors);
    for i in 0..ctx.cluster.len() {
        if !ctx.cluster.is_up(i) {
            if let Err(e) = load::restart(&ctx.cluster, i).await {
                failures.push(format!("{e:#}"));
            }
        }
    }
    let phase = Instant::now();
    failures.extend(checks::liveness(&ctx, Duration::from_secs(60)).await);
    let head = match checks::converge(&ctx, Duration::from_secs(60)).await {
        Ok(h) => h,
        Err(e) => {
            failures.push(e);
            (0..ctx.cluster.len())
                .map(|i| ctx.cluster.seen_height(i))
                .min()
                .unwrap_or(0)
        }
    };
    eprintln!(
        "soak: a write through each node, and one head ({head}) on all, in {:.1} s",
        phase.elapsed().as_secs_f64()
    );
    let phase = Instant::now();
    let presence = checks::presence(ctx.clone(), head).await;
    eprintln!(
        "soak: {} requests for the acknowledged writes in {:.1} s",
        presence.checked,
        phase.elapsed().as_secs_f64()
    );
    ctx.stop_monitor.store(true, Ordering::Release);
    let _ = monitor.await;

    // The ledgers, with the nodes stopped (the database is opened exclusively).
    let phase = Instant::now();
    let mut stops = tokio::task::JoinSet::new();
    for i in 0..ctx.cluster.len() {
        let ctx = ctx.clone();
        stops.spawn(async move { ctx.cluster.stop(i, Duration::from_secs(10)).await });
    }
    while stops.join_next().await.is_some() {}
    ctx.cluster.kill_redis();
    eprintln!(
        "soak: nodes stopped (SIGTERM) in {:.1} s",
        phase.elapsed().as_secs_f64()
    );
    let ledgers: Vec<(String, PathBuf)> = (0..ctx.cluster.len())
        .map(|i| (ctx.cluster.name(i), ctx.cluster.data(i)))
        .collect();
    let verified = {
        let sparkid = sparkid.clone();
        tokio::task::spawn_blocking(move || checks::verify_ledgers(&sparkid, &ledgers)).await?
    };
    let mut reports = Vec::new();
    for (name, report) in verified {
        match report {
            Ok(r) => reports.push(r),
            Err(e) => failures.push(format!("sparkid ledger verify of {name}: {e}")),
        }
    }
    if reports.windows(2).any(|w| w[0] != w[1]) {
        failures.push(format!("the ledgers differ: {reports:?}"));
    }
    eprintln!(
        "soak: nodes stopped and ledgers verified in {:.1} s in all",
        phase.elapsed().as_secs_f64()
    );
    let phase = Instant::now();
    let proofs = std::mem::take(&mut ctx.stats().proofs);
    let proof_failures = {
        let (sparkid, genesis, dir) = (
            sparkid.clone(),
            ctx.cluster.genesis.clone(),
            args.dir.join("proofs"),
        );
        let proofs = proofs.clone();
        tokio::task::spawn_blocking(move || {
            checks::verify_proofs(&sparkid, &genesis, &dir, &proofs)
        })
        .await??
    };
    eprintln!(
        "soak: {} proof answers checked with sparkid verify in {:.1} s",
        proofs.len(),
        phase.elapsed().as_secs_f64()
    );

    // The figures.
    let mut stats = ctx.stats();
    let acked = stats.creates + stats.updates;
    let wrong = stats.wrong + presence.wrong;
    let lost = presence.lost.len() as u64;
    let faults = stats.kills.values().sum::<u64>() + stats.redis_restarts;
    let validators = (0..ctx.cluster.len())
        .filter(|&i| ctx.cluster.role(i) == Role::Validator)
        .count();
    println!("soak figures (seed {seed}, {load_secs:.0} s of load, {validators} validators, {} followers, redis):", ctx.cluster.len() - validators);
    println!(
        "  acknowledged writes: {acked} ({} creates, {} updates); lost: {lost}",
        stats.creates, stats.updates
    );
    println!(
        "  writes refused: {:?}; without an answer: {:?}",
        stats.refused, stats.write_errors
    );
    for example in stats.refused_examples.values() {
        println!("    refused {example}");
    }
    println!(
        "  reads: {} ({} with proof); wrong: {wrong} ({} during the load, {} in the final check); errors: {:?}",
        stats.reads, stats.proof_reads, stats.wrong, presence.wrong, stats.read_errors
    );
    println!(
        "  faults injected: {faults} (kill -9: {:?}; redis restarts: {})",
        stats.kills, stats.redis_restarts
    );
    let (w50, w99) = (
        quantile(&mut stats.write_ms, 0.5),
        quantile(&mut stats.write_ms, 0.99),
    );
    let (r50, r99) = (
        quantile(&mut stats.read_ms, 0.5),
        quantile(&mut stats.read_ms, 0.99),
    );
    println!("  write latency (acknowledged, whole exchange): p50 {w50:.1} ms, p99 {w99:.1} ms");
    println!("  read latency: p50 {r50:.1} ms, p99 {r99:.1} ms");
    println!(
        "  longest time without an acknowledged write: {:.1} s",
        stats.longest_gap.as_secs_f64()
    );
    println!(
        "  final check: {} requests to every node for every acknowledged write, head {head}",
        presence.checked
    );
    println!(
        "  sparkid ledger verify: {}/{} ledgers ok{}",
        reports.len(),
        ctx.cluster.len(),
        reports
            .first()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    println!(
        "  sparkid verify: {} sampled proof answers (of {}), {} failed",
        proofs.len(),
        stats.proofs_seen,
        proof_failures.len()
    );

    if acked == 0 {
        failures.push("no write was acknowledged".into());
    }
    if lost > 0 {
        failures.push(format!(
            "{lost} acknowledged writes are missing on some node"
        ));
    }
    if wrong > 0 {
        failures.push(format!("{wrong} wrong answers"));
    }
    if stats.longest_gap.as_secs_f64() > args.max_gap {
        failures.push(format!(
            "no write was acknowledged for {:.1} s (more than {} s)",
            stats.longest_gap.as_secs_f64(),
            args.max_gap
        ));
    }
    if !proof_failures.is_empty() {
        failures.push(format!(
            "{} proof answers failed sparkid verify",
            proof_failures.len()
        ));
    }
    for example in stats
        .wrong_examples
        .iter()
        .chain(&presence.examples)
        .chain(&proof_failures)
        .take(20)
    {
        println!("  - {example}");
    }
    if failures.is_empty() {
        println!("soak: PASS");
        Ok(true)
    } else {
        for f in &failures {
            println!("soak: FAIL: {f}");
        }
        println!("soak: logs in {}", args.dir.join("logs").display());
        Ok(false)
    }
}
