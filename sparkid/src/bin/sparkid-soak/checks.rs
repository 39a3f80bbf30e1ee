//! What must hold once the load and the faults are over: writes still commit through every
//! node, every node reaches the same head, every acknowledged write is served by every node,
//! every ledger passes `sparkid ledger verify` (alike), and the sampled proof answers pass
//! `sparkid verify`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::run;
use crate::load::{self, check_content, judge, Ctx};

/// Creates one DID through each node; a node whose writes do not commit within `timeout`
/// (trying again each second) is a liveness failure, named.
pub async fn liveness(ctx: &Ctx, timeout: Duration) -> Vec<String> {
    let mut failures = Vec::new();
    for i in 0..ctx.cluster.len() {
        let started = Instant::now();
        while load::create(ctx, i).await.is_none() {
            if started.elapsed() > timeout {
                failures.push(format!(
                    "no write through {} committed within {timeout:?} after the faults (log: {})",
                    ctx.cluster.name(i),
                    ctx.cluster.log(&ctx.cluster.name(i)).display()
                ));
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    failures
}

/// Waits until every node has the same head; its height, or what differs.
pub async fn converge(ctx: &Ctx, timeout: Duration) -> Result<u64, String> {
    let started = Instant::now();
    let http = &ctx.http;
    loop {
        let mut heads = Vec::new();
        for i in 0..ctx.cluster.len() {
            let url = format!("{}/1.0/ledger/head", ctx.cluster.base(i));
            let head = match http.get(&url).send().await {
                Ok(r) => r.json::<Value>().await.ok().map(|v| v["header"].clone()),
                Err(_) => None,
            };
            heads.push(head);
        }
        if let Some(Some(first)) = heads.first() {
            if heads.iter().all(|h| h.as_ref() == Some(first)) {
                return first["height"]
                    .as_u64()
                    .ok_or_else(|| format!("a head without a height: {first}"));
            }
        }
        if started.elapsed() > timeout {
            let seen: Vec<String> = heads
                .iter()
                .enumerate()
                .map(|(i, h)| match h {
                    Some(h) => format!("{} at {}", ctx.cluster.name(i), h["height"]),
                    None => format!("{} without a head", ctx.cluster.name(i)),
                })
                .collect();
            return Err(format!(
                "the nodes did not reach one head within {timeout:?}: {}",
                seen.join(", ")
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The outcome of asking every node for every acknowledged write.
#[derive(Debug, Default)]
pub struct Presence {
    /// Requests made.
    pub checked: u64,
    /// Acknowledged writes (DID and version) that some node does not serve.
    pub lost: BTreeSet<(String, u64)>,
    /// Answers contradicting an acknowledged write otherwise (content, current version).
    pub wrong: u64,
    /// The first failures, described.
    pub examples: Vec<String>,
}

/// Asks every node for every acknowledged version (`?versionId=`) and for the current
/// version of every DID (at least the last acknowledged; through the cache), four requests
/// in flight.
pub async fn presence(ctx: Arc<Ctx>, head: u64) -> Presence {
    let mut jobs: Vec<(usize, String, Option<u64>)> = Vec::new();
    for (did, versions) in ctx.book().all() {
        for node in 0..ctx.cluster.len() {
            jobs.push((node, did.clone(), None));
            for w in &versions {
                jobs.push((node, did.clone(), Some(w.version)));
            }
        }
    }
    let jobs = Arc::new(jobs);
    let next = Arc::new(AtomicUsize::new(0));
    let out = Arc::new(Mutex::new(Presence::default()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (ctx, jobs, next, out) = (ctx.clone(), jobs.clone(), next.clone(), out.clone());
        tasks.spawn(async move {
            while let Some((node, did, version)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                let verdict = check_one(&ctx, *node, did, *version, head).await;
                let mut out = out.lock().unwrap_or_else(|e| e.into_inner());
                out.checked += 1;
                if let Err((lost, what)) = verdict {
                    match (lost, version) {
                        (true, Some(v)) => {
                            out.lost.insert((did.clone(), *v));
                        }
                        _ => out.wrong += 1,
                    }
                    if out.examples.len() < 20 {
                        out.examples
                            .push(format!("{}: {did}: {what}", ctx.cluster.name(*node)));
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let presence = std::mem::take(&mut *out.lock().unwrap_or_else(|e| e.into_inner()));
    presence
}

/// One presence request: ok, or whether the write is missing (`true`) or wrong, and why.
async fn check_one(
    ctx: &Ctx,
    node: usize,
    did: &str,
    version: Option<u64>,
    head: u64,
) -> Result<(), (bool, String)> {
    let base = ctx.cluster.base(node);
    let url = match version {
        Some(v) => format!("{base}/1.0/identifiers/{did}?versionId={v}"),
        None => format!("{base}/1.0/identifiers/{did}"),
    };
    // A throttled or busy answer (429, 503) is asked again after its Retry-After (at most 5 s).
    let mut tries = 0;
    let response = loop {
        let response = ctx
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| (true, format!("no answer: {e}")))?;
        let status = response.status().as_u16();
        tries += 1;
        if !matches!(status, 429 | 503) || tries >= 5 {
            break response;
        }
        let wait = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .unwrap_or(1)
            .min(5);
        tokio::time::sleep(Duration::from_secs(wait)).await;
    };
    let status = response.status().as_u16();
    let answer: Value = response
        .json()
        .await
        .map_err(|e| (true, format!("HTTP {status}, not JSON: {e}")))?;
    let Some(v) = version else {
        return judge(&ctx.book(), did, true, status, &answer, head, false).map_err(|e| (false, e));
    };
    if status != 200 {
        return Err((true, format!("version {v}: HTTP {status}")));
    }
    let served = answer["didDocumentMetadata"]["versionId"].as_str();
    if answer["didDocument"]["id"] != did || served != Some(v.to_string().as_str()) {
        return Err((
            true,
            format!(
                "version {v}: served {served:?} of {}",
                answer["didDocument"]["id"]
            ),
        ));
    }
    check_content(&ctx.book(), did, v, &answer["didDocument"]).map_err(|e| (false, e))
}

/// Runs `sparkid ledger verify` on each named data directory (the nodes must be stopped), two
/// at a time: each report, or why it failed.
pub fn verify_ledgers(
    sparkid: &Path,
    ledgers: &[(String, PathBuf)],
) -> Vec<(String, Result<String, String>)> {
    two_at_a_time(ledgers, |(name, data)| {
        let report = run(sparkid, &["ledger", "verify", "--data"], &[data])
            .map(|out| out.trim().to_string())
            .map_err(|e| format!("{e:#}"));
        (name.clone(), report)
    })
}

/// Runs `sparkid verify FILE --genesis GENESIS` on each sampled proof answer, saved under
/// `dir`, two at a time; the failures, described.
pub fn verify_proofs(
    sparkid: &Path,
    genesis: &Path,
    dir: &Path,
    proofs: &[Value],
) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut files = Vec::new();
    for (n, answer) in proofs.iter().enumerate() {
        let file = dir.join(format!("proof-{n}.json"));
        std::fs::write(&file, answer.to_string())?;
        files.push(file);
    }
    let outcomes = two_at_a_time(&files, |file| {
        run(
            sparkid,
            &["verify"],
            &[file, Path::new("--genesis"), genesis],
        )
        .err()
        .map(|e| format!("{}: {e:#}", file.display()))
    });
    Ok(outcomes.into_iter().flatten().collect())
}

/// `f` over `items` on two threads (the soak's machine has two cores); results in order.
fn two_at_a_time<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new(items.iter().map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { return };
                let r = f(item);
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect()
}
