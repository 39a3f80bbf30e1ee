//! The soak's topology as real processes: four validators made by the genesis ceremony, two
//! followers of all four sharing one `redis-server` (the L2 cache), on loopback ports, each with
//! its data directory and log file under the soak directory. Nodes are killed with SIGKILL and
//! restarted on the same data directory and port; Redis is killed and started again empty.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};
use sparkid_bid::PrivateKey;

use crate::rng::Rng;

/// Validators of the soak's chain (N = 3f + 1 with f = 1: one may be down at a time).
pub const VALIDATORS: usize = 4;
/// Followers, each following all validators and caching in the shared Redis.
pub const FOLLOWERS: usize = 2;

/// What a node is: it decides its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A validator with its key and the other validators as `--peer`s.
    Validator,
    /// A follower of every validator (`--follow`), with the shared Redis as L2.
    Follower,
}

/// One `sparkid serve` process: how to start it and, while it runs, its handle.
struct NodeProcess {
    name: String,
    role: Role,
    port: u16,
    data: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

/// The `redis-server` all followers share, restartable on its port.
struct RedisProcess {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// The running cluster. Children are killed when it is dropped, whatever ended the soak.
pub struct Cluster {
    sparkid: PathBuf,
    dir: PathBuf,
    nodes: Vec<Mutex<NodeProcess>>,
    up: Vec<AtomicBool>,
    heights: Vec<AtomicU64>,
    redis: Mutex<RedisProcess>,
    /// The genesis file (followers' trust anchor, and `sparkid verify --genesis`).
    pub genesis: PathBuf,
    http: reqwest::Client,
}

/// A loopback port free now, below the kernel's ephemeral range: no outgoing connection or
/// `bind(0)` of another process takes it while its node is down for a restart.
fn fixed_port(rng: &mut Rng, taken: &[u16]) -> anyhow::Result<u16> {
    for _ in 0..1000 {
        let port = 20_000 + rng.below(12_000) as u16;
        if taken.contains(&port) {
            continue;
        }
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free loopback port between 20000 and 32000")
}

impl Cluster {
    /// Makes the chain (keys, genesis, the genesis ceremony, each validator's ledger) under
    /// `dir` and starts every process: validators, Redis, then followers.
    pub async fn start(sparkid: &Path, dir: &Path, rng: &mut Rng) -> anyhow::Result<Cluster> {
        std::fs::create_dir_all(dir.join("logs"))?;
        let keys: Vec<PrivateKey> = (0..VALIDATORS).map(|_| PrivateKey::generate()).collect();
        let key_files: Vec<PathBuf> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let path = dir.join(format!("v{i}.key"));
                std::fs::write(&path, k.to_encoded())?;
                Ok(path)
            })
            .collect::<anyhow::Result<_>>()?;
        let genesis = dir.join("genesis.json");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        let body = json!({
            "chainId": "sparkid-soak",
            "time": now,
            "validators": keys.iter().map(|k| k.public_key().to_encoded()).collect::<Vec<_>>(),
        });
        std::fs::write(&genesis, body.to_string())?;
        // The ceremony, as each validator would run it on its machine.
        let mut votes = Vec::new();
        for key in &key_files {
            let out = run(
                sparkid,
                &["ledger", "genesis-vote", "--genesis"],
                &[&genesis, Path::new("--validator-key"), key],
            )?;
            votes.push(serde_json::from_str::<Value>(&out).context("a genesis vote")?);
        }
        let votes_file = dir.join("votes.json");
        std::fs::write(&votes_file, Value::Array(votes).to_string())?;

        let mut taken = Vec::new();
        for _ in 0..VALIDATORS + FOLLOWERS + 1 {
            let port = fixed_port(rng, &taken)?;
            taken.push(port);
        }
        let base = |p: u16| format!("http://127.0.0.1:{p}");
        let redis_port = taken[VALIDATORS + FOLLOWERS];
        let mut nodes = Vec::new();
        for (i, key) in key_files.iter().enumerate() {
            let data = dir.join(format!("v{i}"));
            run(
                sparkid,
                &["ledger", "init", "--data"],
                &[
                    &data,
                    Path::new("--genesis"),
                    &genesis,
                    Path::new("--votes"),
                    &votes_file,
                ],
            )?;
            let mut args = vec!["--validator-key".to_string(), key.display().to_string()];
            for (j, port) in taken[..VALIDATORS].iter().enumerate() {
                if j != i {
                    args.extend(["--peer".to_string(), base(*port)]);
                }
            }
            nodes.push(NodeProcess {
                name: format!("v{i}"),
                role: Role::Validator,
                port: taken[i],
                data,
                args,
                child: None,
            });
        }
        for f in 0..FOLLOWERS {
            let mut args = vec![
                "--genesis".to_string(),
                genesis.display().to_string(),
                "--redis-url".to_string(),
                format!("redis://127.0.0.1:{redis_port}/0"),
                // The key of the HMAC every Redis value and invalidation carries; the same on
                // both followers, as on every replica of one Redis.
                "--redis-secret".to_string(),
                "soak-shared-redis-secret".to_string(),
            ];
            for port in &taken[..VALIDATORS] {
                args.extend(["--follow".to_string(), base(*port)]);
            }
            nodes.push(NodeProcess {
                name: format!("f{f}"),
                role: Role::Follower,
                port: taken[VALIDATORS + f],
                data: dir.join(format!("f{f}")),
                args,
                child: None,
            });
        }
        let redis_dir = dir.join("redis");
        std::fs::create_dir_all(&redis_dir)?;
        let count = nodes.len();
        let cluster = Cluster {
            sparkid: sparkid.to_path_buf(),
            dir: dir.to_path_buf(),
            nodes: nodes.into_iter().map(Mutex::new).collect(),
            up: (0..count).map(|_| AtomicBool::new(false)).collect(),
            heights: (0..count).map(|_| AtomicU64::new(0)).collect(),
            redis: Mutex::new(RedisProcess {
                port: redis_port,
                dir: redis_dir,
                child: None,
            }),
            genesis,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()?,
        };
        for i in 0..VALIDATORS {
            cluster.spawn(i)?;
        }
        for i in 0..VALIDATORS {
            cluster.wait_up(i, Duration::from_secs(60)).await?;
        }
        cluster.start_redis().await?;
        for i in VALIDATORS..count {
            cluster.spawn(i)?;
            cluster.wait_up(i, Duration::from_secs(60)).await?;
        }
        Ok(cluster)
    }

    /// The soak directory (data, keys, logs).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Node `i`'s name (`v0`…`v3`, `f0`, `f1`).
    pub fn name(&self, i: usize) -> String {
        lock(&self.nodes[i]).name.clone()
    }

    /// Node `i`'s role.
    pub fn role(&self, i: usize) -> Role {
        lock(&self.nodes[i]).role
    }

    /// Node `i`'s base URL.
    pub fn base(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", lock(&self.nodes[i]).port)
    }

    /// Node `i`'s data directory.
    pub fn data(&self, i: usize) -> PathBuf {
        lock(&self.nodes[i]).data.clone()
    }

    /// Whether node `i` is running and answered `/healthz` since it started.
    pub fn is_up(&self, i: usize) -> bool {
        self.up[i].load(Ordering::Acquire)
    }

    /// A random node that is up (clients, like a load balancer, do not aim at a node known to
    /// be down); none when all are down.
    pub fn pick_up(&self, rng: &mut Rng) -> Option<usize> {
        let up: Vec<usize> = (0..self.len()).filter(|&i| self.is_up(i)).collect();
        (!up.is_empty()).then(|| up[rng.below(up.len())])
    }

    /// The highest height node `i` was seen at: a lower bound of its height from then on (a
    /// node's ledger is durable, so a restart does not lower it).
    pub fn seen_height(&self, i: usize) -> u64 {
        self.heights[i].load(Ordering::Acquire)
    }

    /// Asks every node that is up for its height, once.
    pub async fn observe_heights(&self) {
        for i in 0..self.len() {
            if !self.is_up(i) {
                continue;
            }
            if let Some(h) = self.height(i).await {
                self.heights[i].fetch_max(h, Ordering::AcqRel);
            }
        }
    }

    /// Node `i`'s height from `/healthz`, if it answers.
    pub async fn height(&self, i: usize) -> Option<u64> {
        let r = self
            .http
            .get(format!("{}/healthz", self.base(i)))
            .send()
            .await
            .ok()?;
        let v: Value = r.json().await.ok()?;
        v["height"].as_u64()
    }

    /// Starts node `i`'s process (not waiting for it); its stderr goes to `logs/<name>.log`.
    pub fn spawn(&self, i: usize) -> anyhow::Result<()> {
        let mut node = lock(&self.nodes[i]);
        let log_path = self.dir.join("logs").join(format!("{}.log", node.name));
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)?;
        writeln!(log, "==== soak: starting {} ====", node.name)?;
        let child = Command::new(&self.sparkid)
            .args(["serve", "--data"])
            .arg(&node.data)
            .args(["--http", &format!("127.0.0.1:{}", node.port)])
            .args(["--handle", "off"])
            .args(&node.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", self.sparkid.display()))?;
        self.note_pid(child.id(), &node.name);
        node.child = Some(child);
        Ok(())
    }

    /// Waits until node `i` answers `/healthz` (any status: a follower catching up answers 503
    /// and still serves reads from its own copy), then marks it up.
    pub async fn wait_up(&self, i: usize, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        let url = format!("{}/healthz", self.base(i));
        loop {
            if self.http.get(&url).send().await.is_ok() {
                if let Some(h) = self.height(i).await {
                    self.heights[i].fetch_max(h, Ordering::AcqRel);
                }
                self.up[i].store(true, Ordering::Release);
                return Ok(());
            }
            {
                let mut node = lock(&self.nodes[i]);
                if let Some(status) = node.child.as_mut().and_then(|c| c.try_wait().ok()?) {
                    node.child = None;
                    bail!(
                        "{} exited at start ({status}); see {}",
                        node.name,
                        self.log(&node.name).display()
                    );
                }
            }
            if started.elapsed() > timeout {
                bail!(
                    "{} did not answer /healthz within {timeout:?}; see {}",
                    self.name(i),
                    self.log(&self.name(i)).display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL node `i`: no shutdown code runs.
    pub fn kill9(&self, i: usize) {
        self.up[i].store(false, Ordering::Release);
        let mut node = lock(&self.nodes[i]);
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops node `i` with SIGTERM (a graceful shutdown), SIGKILL after `grace`.
    pub async fn stop(&self, i: usize, grace: Duration) {
        self.up[i].store(false, Ordering::Release);
        let child = lock(&self.nodes[i]).child.take();
        let Some(mut child) = child else { return };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let started = Instant::now();
        while started.elapsed() < grace {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!(
            "soak: {} did not stop within {grace:?} of SIGTERM; SIGKILL",
            self.name(i)
        );
        let _ = child.kill();
        let _ = child.wait();
    }

    /// The log file of the node named `name`.
    pub fn log(&self, name: &str) -> PathBuf {
        self.dir.join("logs").join(format!("{name}.log"))
    }

    /// Starts (or starts again, empty) the Redis server and waits until it answers PING.
    pub async fn start_redis(&self) -> anyhow::Result<()> {
        let port = {
            let mut redis = lock(&self.redis);
            let log = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join("logs/redis.log"))?;
            let child = Command::new("redis-server")
                .args(["--port", &redis.port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--dir"])
                .arg(&redis.dir)
                .stdin(Stdio::null())
                .stdout(Stdio::from(log))
                .stderr(Stdio::null())
                .spawn()
                .context("redis-server must be installed (scripts/test installs it)")?;
            self.note_pid(child.id(), "redis");
            redis.child = Some(child);
            redis.port
        };
        let started = Instant::now();
        while !redis_pong(port) {
            if started.elapsed() > Duration::from_secs(15) {
                bail!("redis-server on port {port} did not answer PING");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// SIGKILL the Redis server.
    pub fn kill_redis(&self) {
        if let Some(mut child) = lock(&self.redis).child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Records a started process in `pids` so that `scripts/soak` can end it if this driver is
    /// itself killed before its own cleanup runs.
    fn note_pid(&self, pid: u32, name: &str) {
        if let Ok(mut f) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("pids"))
        {
            let _ = writeln!(f, "{pid} {name}");
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill9(i);
        }
        self.kill_redis();
    }
}

/// Locks a mutex, also one a panicking thread left poisoned (a process handle stays valid).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether Redis on `port` answers `PING` with `+PONG`.
fn redis_pong(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        Duration::from_millis(200),
    ) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

/// Runs the `sparkid` CLI with `args` then `paths`; it must succeed. Its standard output.
pub fn run(sparkid: &Path, args: &[&str], paths: &[&Path]) -> anyhow::Result<String> {
    let out = Command::new(sparkid)
        .args(args)
        .args(paths)
        .output()
        .with_context(|| format!("running {}", sparkid.display()))?;
    if !out.status.success() {
        bail!(
            "sparkid {args:?} {paths:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
