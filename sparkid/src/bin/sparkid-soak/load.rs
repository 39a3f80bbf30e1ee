//! The soak's traffic and faults, as tokio tasks sharing one [`Ctx`]:
//!
//! - writers create DIDs and update their own DIDs (a new service each time) through random
//!   nodes, in client-managed mode (signed here, as a real client does);
//! - readers resolve acknowledged DIDs (and now and then one nobody registered) through random
//!   nodes, some with `?proof=true`, and judge each answer against the acknowledged writes and
//!   the height the node was seen at before the read;
//! - the fault injector SIGKILLs a random node every interval and restarts it on its data
//!   directory, and restarts Redis once, halfway;
//! - the monitor notes each node's height.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sparkid_bid::{Bid, PrivateKey};
use sparkid_node::registrar_client::{client_managed, ClientError};

use crate::book::{count, Book, Stats, Written};
use crate::cluster::Cluster;
use crate::rng::Rng;

/// A write with no answer after this long is counted as an error (its outcome unknown).
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// The knobs of a run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The seed of every random choice.
    pub seed: u64,
    /// Writer tasks.
    pub writers: usize,
    /// Reader tasks.
    pub readers: usize,
    /// Writes started per second, all writers together (0: as fast as they go).
    pub write_rate: f64,
    /// Reads started per second, all readers together (0: as fast as they go).
    pub read_rate: f64,
    /// The share of reads asking for a ledger proof.
    pub proof_share: f64,
    /// The share of reads of a DID nobody registered (they must be NOT_FOUND).
    pub unknown_share: f64,
    /// Proof answers kept for `sparkid verify` at the end.
    pub verify_sample: usize,
    /// Time between node kills.
    pub fault_interval: Duration,
    /// How long a killed node stays down.
    pub down: Duration,
}

/// What every task shares.
pub struct Ctx {
    /// The processes.
    pub cluster: Cluster,
    /// The acknowledged writes.
    pub book: Mutex<Book>,
    /// The figures.
    pub stats: Mutex<Stats>,
    /// The knobs.
    pub settings: Settings,
    /// Set to stop the height monitor.
    pub stop_monitor: AtomicBool,
    /// The readers' client (keep-alive, 10 s timeout).
    pub http: reqwest::Client,
}

impl Ctx {
    /// The acknowledged writes, locked.
    pub fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The figures, locked.
    pub fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The pause between the starts of one task's requests for `rate` per second over `tasks`.
fn pause(rate: f64, tasks: usize) -> Duration {
    if rate <= 0.0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(tasks.max(1) as f64 / rate)
    }
}

async fn pace(started: Instant, pause: Duration) {
    if pause.is_zero() {
        tokio::task::yield_now().await;
    } else {
        tokio::time::sleep_until((started + pause).into()).await;
    }
}

/// A DID of this writer: its key and its current native document.
pub struct Owned {
    did: String,
    key: PrivateKey,
    document: Value,
}

/// Creates and updates DIDs through random nodes until `until`.
pub async fn writer(ctx: Arc<Ctx>, id: usize, until: Instant) {
    let mut rng = Rng::new(ctx.settings.seed, 100 + id as u64);
    let pause = pause(ctx.settings.write_rate, ctx.settings.writers);
    let mut mine: Vec<Owned> = Vec::new();
    let mut n = 0u64;
    while Instant::now() < until {
        let started = Instant::now();
        if let Some(node) = ctx.cluster.pick_up(&mut rng) {
            if mine.is_empty() || rng.chance(0.5) {
                if let Some(owned) = create(&ctx, node).await {
                    mine.push(owned);
                }
            } else {
                n += 1;
                let k = rng.below(mine.len());
                let marker = format!("https://w{id}-{n}.soak.example/");
                update(&ctx, node, &mut mine[k], marker).await;
            }
        }
        pace(started, pause).await;
    }
}

/// Creates a new DID through node `node`; the DID once acknowledged.
pub async fn create(ctx: &Ctx, node: usize) -> Option<Owned> {
    let key = PrivateKey::generate();
    let document = match sparkid_registrar::api::new_document(&key.public_key(), None) {
        Ok(d) => d,
        Err(e) => {
            ctx.stats()
                .wrong(format!("a new document could not be made: {e}"));
            return None;
        }
    };
    let did = document["id"].as_str()?.to_string();
    let body = json!({ "didDocument": document });
    let (answer, ms) = exchange(ctx, node, "/1.0/create?method=bid", body, &key).await?;
    let version = answer["didDocumentMetadata"]["versionId"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    acknowledge(ctx, node, &did, &answer, version, None, ms, true)?;
    Some(Owned { did, key, document })
}

/// Replaces `owned`'s services with one at `marker`, through node `node`.
async fn update(ctx: &Ctx, node: usize, owned: &mut Owned, marker: String) {
    let mut document = owned.document.clone();
    document["service"] = json!([{
        "id": "#soak", "type": "LinkedDomains", "serviceEndpoint": marker,
    }]);
    let body = json!({ "did": owned.did, "didDocument": document });
    let Some((answer, ms)) = exchange(ctx, node, "/1.0/update", body, &owned.key).await else {
        return;
    };
    let Some(version) = answer["didDocumentMetadata"]["versionId"]
        .as_str()
        .and_then(|v| v.parse().ok())
    else {
        ctx.stats().wrong(format!(
            "{}: a finished update without didDocumentMetadata.versionId: {answer}",
            ctx.cluster.name(node)
        ));
        return;
    };
    if acknowledge(
        ctx,
        node,
        &owned.did,
        &answer,
        version,
        Some(marker),
        ms,
        false,
    )
    .is_some()
    {
        owned.document = document;
    }
}

/// Records a `finished` answer in the book; none if it lacks its block height.
#[allow(clippy::too_many_arguments)]
fn acknowledge(
    ctx: &Ctx,
    node: usize,
    did: &str,
    answer: &Value,
    version: u64,
    marker: Option<String>,
    ms: f64,
    create: bool,
) -> Option<()> {
    let Some(height) = answer["didRegistrationMetadata"]["height"].as_u64() else {
        ctx.stats().wrong(format!(
            "{}: a finished write without didRegistrationMetadata.height: {answer}",
            ctx.cluster.name(node)
        ));
        return None;
    };
    // `acks.jsonl`: the evidence to read the logs against when a check fails.
    let line = json!({
        "at": ctx.stats().started.elapsed().as_secs_f64(),
        "node": ctx.cluster.name(node), "did": did, "version": version, "height": height,
    });
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ctx.cluster.dir().join("acks.jsonl"))
    {
        let _ = writeln!(f, "{line}");
    }
    ctx.book().record(
        did,
        Written {
            version,
            height,
            marker,
        },
    );
    ctx.stats().acked(create, ms);
    Some(())
}

/// Runs one client-managed exchange through node `node`: the `finished` answer and its
/// duration in ms, or none (counted as refused or as an error).
pub async fn exchange(
    ctx: &Ctx,
    node: usize,
    path: &str,
    body: Value,
    key: &PrivateKey,
) -> Option<(Value, f64)> {
    let base = ctx.cluster.base(node);
    let started = Instant::now();
    let result = tokio::time::timeout(WRITE_TIMEOUT, client_managed(&base, path, body, key)).await;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let answer = match result {
        Err(_) => {
            count(
                &mut ctx.stats().write_errors,
                "no answer within 60 s".into(),
            );
            return None;
        }
        Ok(Err(e)) => {
            let kind = match e {
                ClientError::Send { .. } => "connection failed or reset",
                ClientError::Decode { .. } => "an answer that is not JSON",
                _ => "a signing request without a payload",
            };
            count(&mut ctx.stats().write_errors, kind.into());
            return None;
        }
        Ok(Ok(answer)) => answer,
    };
    if answer["didState"]["state"] == "finished" {
        return Some((answer, ms));
    }
    let reason = answer["didState"]["reason"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("not a registrar answer: {answer}"));
    let node = format!(
        "{} (seen at height {})",
        ctx.cluster.name(node),
        ctx.cluster.seen_height(node)
    );
    ctx.stats().refused(&node, &reason);
    None
}

/// Resolves DIDs through random nodes until `until`, judging every answer.
pub async fn reader(ctx: Arc<Ctx>, id: usize, until: Instant) {
    let mut rng = Rng::new(ctx.settings.seed, 200 + id as u64);
    let pause = pause(ctx.settings.read_rate, ctx.settings.readers);
    while Instant::now() < until {
        let started = Instant::now();
        if let Some(node) = ctx.cluster.pick_up(&mut rng) {
            let known = if rng.chance(ctx.settings.unknown_share) {
                None
            } else {
                ctx.book().random_did(&mut rng)
            };
            let did = match &known {
                Some(did) => did.clone(),
                None => unregistered_did(),
            };
            let proof = rng.chance(ctx.settings.proof_share);
            read(&ctx, node, &did, known.is_some(), proof, &mut rng).await;
        }
        pace(started, pause).await;
    }
}

/// A DID nobody registered (a new key's BID).
fn unregistered_did() -> String {
    Bid::derive(&PrivateKey::generate().public_key(), None)
        .map(|b| b.to_string())
        .unwrap_or_else(|_| "did:bid:efnotregistered".into())
}

/// One read of `did` through node `node`, judged and counted.
async fn read(ctx: &Ctx, node: usize, did: &str, registered: bool, proof: bool, rng: &mut Rng) {
    // Noted before the request: the node's height when it answers is at least this.
    let bound = ctx.cluster.seen_height(node);
    let url = format!(
        "{}/1.0/identifiers/{did}{}",
        ctx.cluster.base(node),
        if proof { "?proof=true" } else { "" }
    );
    let started = Instant::now();
    let response = match ctx.http.get(&url).send().await {
        Ok(r) => r,
        Err(_) => {
            count(&mut ctx.stats().read_errors, "no answer".into());
            return;
        }
    };
    let status = response.status().as_u16();
    let Ok(text) = response.text().await else {
        count(&mut ctx.stats().read_errors, "answer cut short".into());
        return;
    };
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    // Unavailable or throttled (429 with Retry-After) is no answer, not a wrong one.
    if status >= 500 || status == 429 {
        count(&mut ctx.stats().read_errors, format!("HTTP {status}"));
        return;
    }
    let verdict = match serde_json::from_str::<Value>(&text) {
        Ok(answer) => {
            let verdict = judge(&ctx.book(), did, registered, status, &answer, bound, proof);
            if proof {
                let sample = ctx.settings.verify_sample;
                ctx.stats().offer_proof(answer, sample, rng);
            }
            verdict
        }
        Err(e) => Err(format!("HTTP {status}, not JSON ({e}): {text:.200}")),
    };
    let mut stats = ctx.stats();
    stats.reads += 1;
    stats.proof_reads += u64::from(proof);
    stats.read_ms.push(ms);
    if let Err(what) = verdict {
        stats.wrong(format!("{} GET {url}: {what}", ctx.cluster.name(node)));
    }
}

/// Whether a resolution answer agrees with every acknowledged write: a node seen at height
/// `bound` (or proving its answer at a height) serves at least the version acknowledged at or
/// below that height, with that version's content, and knows no DID nobody registered.
pub fn judge(
    book: &Book,
    did: &str,
    registered: bool,
    status: u16,
    answer: &Value,
    bound: u64,
    proof: bool,
) -> Result<(), String> {
    let height = if proof {
        let at = answer
            .pointer("/didResolutionMetadata/ledgerProof/anchor/header/height")
            .and_then(Value::as_u64)
            .ok_or("a ?proof=true answer without ledgerProof.anchor.header.height")?;
        at.max(bound)
    } else {
        bound
    };
    let required = book.required(did, height);
    match status {
        200 if !registered => Err("a DID nobody registered resolved".into()),
        200 => {
            if answer["didDocument"]["id"] != did {
                return Err(format!("the document is {}", answer["didDocument"]["id"]));
            }
            if answer["didDocumentMetadata"]["deactivated"] == true {
                return Err("deactivated, yet nobody deactivated it".into());
            }
            let version: u64 = answer["didDocumentMetadata"]["versionId"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .ok_or("no didDocumentMetadata.versionId")?;
            if version < required {
                return Err(format!(
                    "version {version} served, but version {required} was acknowledged at or \
                     below height {height}"
                ));
            }
            check_content(book, did, version, &answer["didDocument"])
        }
        404 if required > 0 => Err(format!(
            "NOT_FOUND, but version {required} was acknowledged at or below height {height}"
        )),
        404 => Ok(()),
        other => Err(format!("HTTP {other}: {:.300}", answer.to_string())),
    }
}

/// Whether `document`, served as `version` of `did`, is what the soak wrote as that version.
pub fn check_content(book: &Book, did: &str, version: u64, document: &Value) -> Result<(), String> {
    let Some(written) = book.version(did, version) else {
        return Ok(()); // a version whose write had no answer: its content is unknown here
    };
    let endpoints: Vec<&Value> = document["service"]
        .as_array()
        .map(|s| s.iter().map(|s| &s["serviceEndpoint"]).collect())
        .unwrap_or_default();
    match &written.marker {
        Some(m) if !endpoints.iter().any(|e| *e == m) => Err(format!(
            "version {version} lacks its service {m}: {endpoints:?}"
        )),
        None if !endpoints.is_empty() => Err(format!(
            "version {version} (the create) carries services {endpoints:?}"
        )),
        _ => Ok(()),
    }
}

/// Kills a random node every fault interval and restarts it after the down time; restarts
/// Redis once, halfway through the load.
pub async fn faults(ctx: Arc<Ctx>, until: Instant) {
    let mut rng = Rng::new(ctx.settings.seed, 7);
    let interval = ctx.settings.fault_interval;
    let start = Instant::now();
    let mut next_kill = start + interval;
    let mut redis_at = Some(start + (until - start) / 2 + interval / 2);
    loop {
        let next = redis_at.map_or(next_kill, |r| r.min(next_kill));
        if next >= until {
            break;
        }
        tokio::time::sleep_until(next.into()).await;
        if redis_at == Some(next) {
            redis_at = None;
            ctx.cluster.kill_redis();
            tokio::time::sleep(Duration::from_secs(1)).await;
            match ctx.cluster.start_redis().await {
                Ok(()) => ctx.stats().redis_restarts += 1,
                Err(e) => ctx.stats().fault_errors.push(format!("redis: {e:#}")),
            }
            continue;
        }
        next_kill += interval;
        let i = rng.below(ctx.cluster.len());
        let name = ctx.cluster.name(i);
        ctx.cluster.kill9(i);
        count(&mut ctx.stats().kills, name.clone());
        eprintln!(
            "soak: {:>5.1} s: kill -9 {name}",
            start.elapsed().as_secs_f64()
        );
        tokio::time::sleep(ctx.settings.down).await;
        if let Err(e) = restart(&ctx.cluster, i).await {
            ctx.stats().fault_errors.push(format!("{e:#}"));
        } else {
            eprintln!(
                "soak: {:>5.1} s: {name} is back",
                start.elapsed().as_secs_f64()
            );
        }
    }
}

/// Starts node `i` again on its data directory and port, trying again if the process exits.
pub async fn restart(cluster: &Cluster, i: usize) -> anyhow::Result<()> {
    let mut last = None;
    for _ in 0..3 {
        cluster.spawn(i)?;
        match cluster.wait_up(i, Duration::from_secs(90)).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                cluster.kill9(i);
                last = Some(e);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("{} did not restart", cluster.name(i))))
}

/// Notes every node's height five times a second until stopped.
pub async fn monitor(ctx: Arc<Ctx>) {
    while !ctx.stop_monitor.load(Ordering::Acquire) {
        ctx.cluster.observe_heights().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DID: &str = "did:bid:efSoakJudgeTest";

    /// Created at height 5 (version 1), updated at height 9 (version 2, service `m2`).
    fn book() -> Book {
        let mut book = Book::default();
        book.record(
            DID,
            Written {
                version: 1,
                height: 5,
                marker: None,
            },
        );
        book.record(
            DID,
            Written {
                version: 2,
                height: 9,
                marker: Some("https://m2.example/".into()),
            },
        );
        book
    }

    fn answer(version: u64, endpoint: Option<&str>) -> Value {
        let service: Vec<Value> = endpoint
            .map(|e| json!({"id": format!("{DID}#soak"), "serviceEndpoint": e}))
            .into_iter()
            .collect();
        json!({
            "didDocument": {"id": DID, "service": service},
            "didDocumentMetadata": {"versionId": version.to_string()},
        })
    }

    #[test]
    fn an_answer_older_than_the_height_the_node_was_seen_at_is_wrong() {
        let book = book();
        let v1 = answer(1, None);
        // Seen at 8: version 1 is all it must have; seen at 9, version 2 is due.
        assert!(judge(&book, DID, true, 200, &v1, 8, false).is_ok());
        let err = judge(&book, DID, true, 200, &v1, 9, false).unwrap_err();
        assert!(err.contains("version 2 was acknowledged"), "{err}");
        // A proof anchored at 12 must show version 2 whatever the node was seen at.
        let mut proven = v1.clone();
        proven["didResolutionMetadata"] =
            json!({"ledgerProof": {"anchor": {"header": {"height": 12}}}});
        assert!(judge(&book, DID, true, 200, &proven, 0, true).is_err());
        let mut v2 = answer(2, Some("https://m2.example/"));
        v2["didResolutionMetadata"] = proven["didResolutionMetadata"].clone();
        assert!(judge(&book, DID, true, 200, &v2, 0, true).is_ok());
    }

    #[test]
    fn not_found_after_an_acknowledged_create_and_a_found_stranger_are_wrong() {
        let book = book();
        let missing = json!({"didResolutionMetadata": {"error": {"type": "notFound"}}});
        assert!(judge(&book, DID, true, 404, &missing, 4, false).is_ok());
        assert!(judge(&book, DID, true, 404, &missing, 5, false).is_err());
        assert!(judge(&book, DID, false, 200, &answer(1, None), 0, false).is_err());
        assert!(judge(&book, DID, true, 400, &missing, 0, false).is_err());
    }

    #[test]
    fn a_version_with_other_content_than_written_is_wrong() {
        let book = book();
        assert!(judge(
            &book,
            DID,
            true,
            200,
            &answer(2, Some("https://m2.example/")),
            9,
            false
        )
        .is_ok());
        let err = judge(
            &book,
            DID,
            true,
            200,
            &answer(2, Some("https://evil.example/")),
            9,
            false,
        )
        .unwrap_err();
        assert!(err.contains("lacks its service"), "{err}");
        assert!(judge(
            &book,
            DID,
            true,
            200,
            &answer(1, Some("https://x.example/")),
            5,
            false
        )
        .is_err());
        // A version the soak has no answer for (a write whose answer was lost) is not judged.
        assert!(judge(
            &book,
            DID,
            true,
            200,
            &answer(3, Some("https://x.example/")),
            9,
            false
        )
        .is_ok());
    }
}
