//! Progress and feedback on long work, off a terminal (standard error piped, as in CI or a log):
//!
//! - `sparkid-bench load`, `sparkid ledger verify` and `sparkid conformance` print plain
//!   progress lines with the count, the rate and the time left (no bar, no control characters),
//!   and a last line at 100%.
//! - A follower catching up with a peer 60 blocks ahead, in pages of 20 blocks
//!   (`--sync-page-blocks`), logs its height, lag, pace and time left, and once synced shows its
//!   pace in `/healthz` and `/metrics` with no time left.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, get_json, metric, Daemon, BIN};

const BENCH: &str = env!("CARGO_BIN_EXE_sparkid-bench");
/// Blocks of one DID each: three pages of [`PAGE`] blocks for a follower to fetch.
const BLOCKS: u64 = 60;
/// The follower's page of blocks (`--sync-page-blocks`).
const PAGE: u64 = 20;

/// `text` without ANSI escape sequences (the daemon's log colours).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Loads a dev ledger of [`BLOCKS`] blocks into `data` with `sparkid-bench load`; returns its
/// standard error.
fn load(data: &Path, interval_ms: &str) -> String {
    let out = Command::new(BENCH)
        .args(["load", "--data"])
        .arg(data)
        .args(["--count", &BLOCKS.to_string(), "--block-txs", "1", "--dids"])
        .arg(data.with_extension("dids"))
        .env("SPARKID_PROGRESS_INTERVAL_MS", interval_ms)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    stderr
}

/// The progress lines of `what` in `text`, checked for the count of `total` `unit`, the rate
/// and the time left; returns their counts.
fn progress_lines(text: &str, what: &str, unit: &str, total: u64) -> Vec<u64> {
    assert!(
        !text.contains('\r') && !text.contains('\x1b'),
        "no bar drawing off a terminal: {text:?}"
    );
    let prefix = format!("{what}: ");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|rest| {
            let (count, rest) = rest.split_once(' ').unwrap();
            let (done, of) = count.split_once('/').unwrap();
            assert_eq!(of.parse::<u64>().unwrap(), total, "{rest}");
            assert!(rest.starts_with(&format!("{unit} (")), "{rest}");
            assert!(rest.contains("/s, ETA "), "{rest}");
            done.parse().unwrap()
        })
        .collect()
}

#[test]
fn long_commands_print_plain_progress_lines_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    // Every step shown (interval 0): the lines count up to the total, and end at 100%.
    let said = load(&data, "0");
    let counts = progress_lines(&said, "load", "DIDs", BLOCKS);
    assert!(counts.len() >= 10, "{said}");
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
    assert_eq!(counts[0], 1, "the first block's line: {said}");
    assert_eq!(counts.last(), Some(&BLOCKS));
    assert!(said.contains(&format!("load: {BLOCKS}/{BLOCKS} DIDs (100%)")));
    assert!(
        said.contains(&format!("loaded {BLOCKS} DIDs in ")),
        "{said}"
    );

    // `ledger verify`: the result on standard output, the progress on standard error.
    let out = Command::new(BIN)
        .args(["ledger", "verify", "--data"])
        .arg(&data)
        .env("SPARKID_PROGRESS_INTERVAL_MS", "0")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let blocks = BLOCKS + 1;
    assert!(
        stdout.starts_with(&format!("ok: {blocks} blocks")),
        "{stdout}"
    );
    assert!(!stdout.contains("verify:"), "{stdout}");
    let counts = progress_lines(&stderr, "verify", "blocks", blocks);
    assert_eq!(counts.len() as u64, blocks + 1, "one a block, and the last");
    assert_eq!(counts.last(), Some(&blocks));

    // The default interval (5 s) keeps a short run to its first and last lines.
    let out = Command::new(BIN)
        .args(["ledger", "verify", "--data"])
        .arg(&data)
        .env_remove("SPARKID_PROGRESS_INTERVAL_MS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let counts = progress_lines(&stderr, "verify", "blocks", blocks);
    assert!(counts.len() <= 3, "{stderr}");
    assert_eq!(counts.last(), Some(&blocks));

    // `conformance`: its exchanges with the daemon it records.
    let out = Command::new(BIN)
        .args(["conformance", "--out"])
        .arg(dir.path().join("fixtures"))
        .env("SPARKID_PROGRESS_INTERVAL_MS", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let recorded: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("conformance: "))
        .collect();
    let total: u64 = recorded[0]
        .split_once('/')
        .and_then(|(_, r)| r.split_once(' '))
        .map(|(t, _)| t.parse().unwrap())
        .unwrap();
    let counts = progress_lines(&stderr, "conformance", "exchanges", total);
    assert!(counts.len() >= 10, "{stderr}");
    assert_eq!(
        counts.last(),
        Some(&total),
        "every planned exchange was made"
    );
}

#[test]
fn a_follower_catching_up_logs_its_pace_and_shows_it_in_healthz_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("validator");
    load(&data, "100000");
    let validator = Daemon::start(&data);
    let port = free_port();
    let mut follower = Command::new(BIN)
        .args(["serve", "--data"])
        .arg(dir.path().join("follower"))
        .args(["--http", &format!("127.0.0.1:{port}"), "--handle", "off"])
        .args(["--log", "info", "--follow", &validator.base])
        .args(["--sync-page-blocks", &PAGE.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let lines = log.clone();
    let stderr = follower.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("[follower] {line}");
            lines.lock().unwrap().push(plain(&line));
        }
    });
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let health = loop {
        assert!(Instant::now() < deadline, "the follower never caught up");
        if let Ok(r) = reqwest::blocking::get(format!("{base}/healthz")) {
            let health: serde_json::Value = r.json().unwrap();
            if health["sync"]["state"] == "synced" && health["height"] == BLOCKS {
                break health;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    };

    // The log: while behind, the height, the lag, the pace and the time left.
    let lines = log.lock().unwrap().clone();
    let catching_up = lines
        .iter()
        .find(|l| l.contains("catching up with the peer"))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    let first_page = [
        format!("height={PAGE}"),
        format!("lag={}", BLOCKS - PAGE),
        "blocks_per_second=".into(),
        "eta_secs=".into(),
    ];
    for field in first_page {
        assert!(catching_up.contains(&field), "{field}: {catching_up}");
    }
    let rate = |l: &str| -> f64 {
        l.split("blocks_per_second=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(rate(catching_up) > 0.0, "{catching_up}");
    let eta: u64 = catching_up
        .split("eta_secs=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // The blocks left at the pace of the first page.
    let expected = (BLOCKS - PAGE) as f64 / rate(catching_up);
    // (The logged pace is rounded to 0.1 and the time left to whole seconds.)
    assert!(
        (eta as f64 - expected).abs() <= 1.0 + expected / 10.0,
        "{eta} vs {expected}: {catching_up}"
    );
    let caught_up = lines
        .iter()
        .find(|l| l.contains("caught up with the peer"))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(rate(caught_up) > 0.0, "{caught_up}");

    // /healthz and /metrics: the recent pace, and nothing left to do.
    let sync = &health["sync"];
    assert!(sync["blocksPerSecond"].as_f64().unwrap() > 0.0, "{health}");
    assert_eq!(sync["etaSeconds"], 0, "{health}");
    assert!(metric(&base, "sparkid_sync_blocks_per_second").unwrap() > 0.0);
    assert_eq!(metric(&base, "sparkid_sync_eta_seconds"), Some(0.0));
    let (_, health) = get_json(&format!("{base}/healthz"));
    assert_eq!(health["sync"]["lag"], 0);
    let _ = follower.kill();
    let _ = follower.wait();
}
