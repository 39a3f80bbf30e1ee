//! [`LedgerOptions::cache_size`] bounds what the database keeps in memory: reading a state much
//! larger than the cache leaves the process's resident set about the cache's size, while a large
//! cache keeps what was read. Measured on `VmRSS` (Linux) of a fresh process per cache size (this
//! test binary run again for one test), so that what writing the ledger allocated, and what an
//! earlier measurement's cache took, do not blur the figure.

use std::path::Path;

use sparkid_bid::PrivateKey;
use sparkid_ledger::{
    ExecContext, Ledger, LedgerError, LedgerOptions, StateMachine, StateView, VerifiedTransaction,
    Writes,
};
use sparkid_test_support::{genesis, transaction, DevChain};
use tempfile::TempDir;

/// Writes `kv/<name>` = the operation's `value`.
struct Set;

#[derive(Debug, Clone, thiserror::Error)]
#[error("refused")]
struct Refused;

impl StateMachine for Set {
    type Rejection = Refused;
    fn execute(
        &self,
        tx: &VerifiedTransaction,
        _: &ExecContext<'_>,
        _: &dyn StateView,
    ) -> Result<Result<Writes, Refused>, LedgerError> {
        let op = &tx.tx().body.operation;
        Ok(Ok(vec![(
            format!("kv/{}", op["set"].as_str().unwrap_or_default()),
            op["value"].to_string(),
        )]))
    }
}

const KEYS: usize = 800;
const VALUE_BYTES: usize = 32 * 1024;
const MIB: u64 = 1024 * 1024;

fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// ~38 MiB of state in a new directory: KEYS keys of VALUE_BYTES random-looking bytes each.
fn fill() -> TempDir {
    let validator = PrivateKey::generate();
    let user = PrivateKey::generate();
    let mut chain = DevChain::create(genesis("t", &[&validator]), vec![validator], Set);
    for block in 0..KEYS / 100 {
        let txs = (0..100)
            .map(|i| {
                let n = block * 100 + i;
                // Letters from a xorshift stream seeded by the key: no two values share pages.
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (n as u64 + 1);
                let value: String = (0..VALUE_BYTES)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        (b'a' + (x % 26) as u8) as char
                    })
                    .collect();
                let operation = serde_json::json!({"set": format!("k{n}"), "value": value});
                transaction("t", "s#key-1", &user, operation, 1000)
            })
            .collect();
        chain.propose(txs);
    }
    // Closed here: the measuring processes open it.
    chain.into_dir()
}

/// How much the resident set grows while a ledger is opened with `options` and every key is
/// read twice through it (opening may read the whole file already, to check it).
fn growth_reading_everything(dir: &Path, options: &LedgerOptions) -> u64 {
    let before = rss();
    let ledger = Ledger::open_with_options(dir, options).unwrap();
    for _ in 0..2 {
        for n in 0..KEYS {
            let value = ledger.get(&format!("kv/k{n}")).unwrap().unwrap();
            assert!(value.len() > VALUE_BYTES);
        }
    }
    rss().saturating_sub(before)
}

const DIR_VAR: &str = "SPARKID_TEST_CACHE_SIZE_DIR";
const BYTES_VAR: &str = "SPARKID_TEST_CACHE_SIZE_BYTES";

/// The measuring half, not a test of its own: [`the_page_cache_size_bounds_the_ledgers_memory`]
/// runs it (`--ignored --exact`) in a process of its own, with the ledger's directory and the
/// cache size in the environment.
#[test]
#[ignore = "a helper process of the_page_cache_size_bounds_the_ledgers_memory, which runs it"]
fn measure_in_a_fresh_process() {
    let (Ok(dir), Ok(bytes)) = (std::env::var(DIR_VAR), std::env::var(BYTES_VAR)) else {
        panic!("run by the_page_cache_size_bounds_the_ledgers_memory: {DIR_VAR} and {BYTES_VAR} are unset");
    };
    let options = LedgerOptions {
        cache_size: Some(bytes.parse().unwrap()),
    };
    let growth = growth_reading_everything(Path::new(&dir), &options);
    println!("\nGROWTH {growth}");
}

/// The helper's name as the test harness lists it: its module path in this binary (the
/// binary's crate name, the path's first segment, is not part of it).
fn helper_test_name() -> String {
    let module = module_path!().split_once("::").map_or("", |(_, m)| m);
    format!("{module}::measure_in_a_fresh_process")
}

/// The resident set growth reading everything with a cache of `bytes`, in a fresh process.
fn measure(dir: &Path, bytes: u64) -> u64 {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", &helper_test_name(), "--nocapture"])
        .args(["--test-threads", "1"])
        .env(DIR_VAR, dir)
        .env(BYTES_VAR, bytes.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.split("GROWTH ").nth(1))
        .unwrap_or_else(|| panic!("no figure in {stdout}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn the_page_cache_size_bounds_the_ledgers_memory() {
    let dir = fill();
    let data = (KEYS * VALUE_BYTES) as u64;
    let small = measure(dir.path(), 4 * MIB);
    let large = measure(dir.path(), 512 * MIB);
    eprintln!(
        "state {} MiB; RSS growth: 4 MiB cache {} MiB, 512 MiB cache {} MiB",
        data / MIB,
        small / MIB,
        large / MIB
    );
    // Opening and reading cost a few MiB besides the cache (the allocator's state, buffers).
    assert!(
        small < 24 * MIB,
        "a 4 MiB cache grew the RSS by {} MiB",
        small / MIB
    );
    assert!(
        large > small + data / 2,
        "a 512 MiB cache should keep what was read ({} MiB): grew {} MiB, a 4 MiB one {} MiB",
        data / MIB,
        large / MIB,
        small / MIB
    );
    // The default (no size given) is redb's own.
    assert_eq!(LedgerOptions::default().cache_size, None);
}
