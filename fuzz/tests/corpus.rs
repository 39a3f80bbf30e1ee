//! Every fuzz target, built as libFuzzer builds it (on stable, without coverage), runs its
//! committed seed corpus (`corpus/<target>/`, written by `seed_corpus.py`): a target that stops
//! building fails the test command's build, and one whose own assertions reject a seed, or that
//! panics on one, fails here. Fuzzing proper (`cargo +nightly fuzz run <target>`) starts from the
//! same seeds.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Each target and the binary cargo built for it; `every_target_is_listed` keeps this complete.
const TARGETS: [(&str, &str); 17] = [
    ("alias_uri", env!("CARGO_BIN_EXE_alias_uri")),
    ("bid_address", env!("CARGO_BIN_EXE_bid_address")),
    ("bid_keys", env!("CARGO_BIN_EXE_bid_keys")),
    ("did_url", env!("CARGO_BIN_EXE_did_url")),
    ("did_web_url", env!("CARGO_BIN_EXE_did_web_url")),
    ("dns_name_mapping", env!("CARGO_BIN_EXE_dns_name_mapping")),
    ("dns_parse", env!("CARGO_BIN_EXE_dns_parse")),
    ("ecode_parse", env!("CARGO_BIN_EXE_ecode_parse")),
    ("edge_request", env!("CARGO_BIN_EXE_edge_request")),
    ("gs1_digital_link", env!("CARGO_BIN_EXE_gs1_digital_link")),
    ("handle_decode", env!("CARGO_BIN_EXE_handle_decode")),
    ("handle_parse", env!("CARGO_BIN_EXE_handle_parse")),
    ("handle_site", env!("CARGO_BIN_EXE_handle_site")),
    ("oid_parse", env!("CARGO_BIN_EXE_oid_parse")),
    ("redis_entry", env!("CARGO_BIN_EXE_redis_entry")),
    ("vaa_parse", env!("CARGO_BIN_EXE_vaa_parse")),
    ("validator_request", env!("CARGO_BIN_EXE_validator_request")),
];

fn fuzz_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files of a directory, sorted, or none when it is missing.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn every_target_is_listed() {
    let mut on_disk: Vec<String> = files(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_string()))
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
    assert_eq!(on_disk, listed, "fuzz_targets/ and TARGETS differ");
}

#[test]
fn every_target_runs_its_seed_corpus() {
    let mut failures = Vec::new();
    for (name, binary) in TARGETS {
        let seeds = files(&fuzz_dir().join("corpus").join(name));
        if seeds.is_empty() {
            failures.push(format!(
                "{name}: no seed in corpus/{name}/ (add some to seed_corpus.py)"
            ));
            continue;
        }
        // Given files rather than a directory, libFuzzer runs each once and exits: no fuzzing.
        let out = Command::new(binary)
            .args(&seeds)
            .output()
            .unwrap_or_else(|e| panic!("{name}: cannot start {binary}: {e}"));
        let log = String::from_utf8_lossy(&out.stderr);
        let ran = log.matches("Executed ").count();
        if !out.status.success() || ran != seeds.len() {
            let tail: Vec<&str> = log.lines().rev().take(25).collect();
            failures.push(format!(
                "{name}: {} after {ran} of {} seeds; the end of its log:\n{}",
                out.status,
                seeds.len(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
