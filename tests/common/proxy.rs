//! A TCP forwarder on loopback that a test can cut: validators reach each other through one
//! proxy per directed pair (`--peer` pointing at the proxy), so a test partitions them by
//! cutting chosen proxies and heals by restoring them. Cut means real loss: open connections
//! are reset and new ones are closed unanswered, as a dead link would.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use sparkid_bid::PrivateKey;

/// One forwarder: `127.0.0.1:<port>` → `127.0.0.1:<target>`. Stopped when dropped.
pub struct Proxy {
    /// The port it listens on.
    pub port: u16,
    shared: Arc<Shared>,
}

struct Shared {
    cut: AtomicBool,
    stop: AtomicBool,
    /// Both ends of every open connection, to reset them on a cut.
    open: Mutex<Vec<TcpStream>>,
}

impl Proxy {
    /// Starts forwarding to `target`.
    pub fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            cut: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if s.cut.load(Ordering::SeqCst) {
                    // Closed unanswered: the sender sees a dead link.
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                {
                    // Registered under the lock that a cut takes: no connection slips past it.
                    let mut open = s.open.lock().unwrap();
                    if s.cut.load(Ordering::SeqCst) {
                        continue;
                    }
                    open.extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                }
                pump(client.try_clone().unwrap(), server.try_clone().unwrap());
                pump(server, client);
            }
        });
        Proxy { port, shared }
    }

    /// Cuts the link: open connections are reset, new ones closed, until [`Proxy::heal`].
    pub fn cut(&self) {
        let mut open = self.shared.open.lock().unwrap();
        self.shared.cut.store(true, Ordering::SeqCst);
        for stream in open.drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Restores the link.
    pub fn heal(&self) {
        self.shared.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees the stop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Copies `from` to `to` on a thread of its own until either end closes.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// A new chain of `n` validators under `dir`: their keys (also written to
/// `validator-<i>.key`), key files, and data directories with the genesis created from a
/// quorum of the validators' genesis votes (`sparkid ledger genesis-vote`, `ledger init`).
pub fn validator_chain(
    dir: &Path,
    chain_id: &str,
    n: usize,
) -> (Vec<PrivateKey>, Vec<PathBuf>, Vec<PathBuf>) {
    validator_chain_with_newcomers(dir, chain_id, n, 0)
}

/// [`validator_chain`] with `newcomers` more keys and data directories, on the same genesis
/// but not named by it (validators a set change will add). The genesis is `dir/genesis.json`.
pub fn validator_chain_with_newcomers(
    dir: &Path,
    chain_id: &str,
    n: usize,
    newcomers: usize,
) -> (Vec<PrivateKey>, Vec<PathBuf>, Vec<PathBuf>) {
    let all = n + newcomers;
    let keys: Vec<PrivateKey> = (0..all).map(|_| PrivateKey::generate()).collect();
    let key_files: Vec<PathBuf> = (0..all)
        .map(|i| {
            let path = dir.join(format!("validator-{i}.key"));
            std::fs::write(&path, keys[i].to_encoded()).unwrap();
            path
        })
        .collect();
    let genesis = dir.join("genesis.json");
    let doc = json!({
        "chainId": chain_id,
        "time": 1_700_000_000u64,
        "validators": keys[..n].iter().map(|k| k.public_key().to_encoded()).collect::<Vec<_>>(),
    });
    std::fs::write(&genesis, doc.to_string()).unwrap();
    let quorum = n - (n - 1) / 3;
    let votes: Vec<Value> = key_files[..quorum]
        .iter()
        .map(|k| {
            super::cli(&[
                "ledger",
                "genesis-vote",
                "--genesis",
                genesis.to_str().unwrap(),
                "--validator-key",
                k.to_str().unwrap(),
            ])
        })
        .collect();
    let votes_path = dir.join("votes.json");
    std::fs::write(&votes_path, Value::Array(votes).to_string()).unwrap();
    let data: Vec<PathBuf> = (0..all)
        .map(|i| {
            let d = dir.join(format!("node-{i}"));
            super::cli(&[
                "ledger",
                "init",
                "--data",
                d.to_str().unwrap(),
                "--genesis",
                genesis.to_str().unwrap(),
                "--votes",
                votes_path.to_str().unwrap(),
            ]);
            d
        })
        .collect();
    (keys, key_files, data)
}
