//! `sparkid validators`: an operator's validator-set change (`spec/consensus.md`).
//!
//! 1. `propose` reads the sets from a validator (`GET /1.0/consensus/validators`) and prints a
//!    change file: the chain id, the change (`{op, from, validators, signatures: []}`) and the
//!    exact text its signers sign.
//! 2. `sign`, run by each validator of the current set on its own machine, adds its signature
//!    (the key never leaves it; the file is public).
//! 3. `submit` posts the change to any validator once a quorum signed (`POST
//!    /1.0/consensus/validators`) and prints where it committed.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use clap::Subcommand;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sparkid_bid::{PrivateKey, PublicKey};
use sparkid_ledger::ValidatorChange;

/// `sparkid validators ...`.
#[derive(Debug, Subcommand)]
pub enum ValidatorsCommand {
    /// Print a change file: the current set with keys added and removed, taking over at a
    /// height (the signers sign it with `sign`, then `submit` posts it).
    Propose {
        /// A validator's base URL, to read the chain id and the current set from.
        #[arg(
            long,
            env = "SPARKID_ENDPOINT",
            default_value = "http://127.0.0.1:8080"
        )]
        endpoint: String,
        /// An encoded public key (b06566...) to add (repeatable); it goes last in proposer order.
        #[arg(long)]
        add: Vec<String>,
        /// An encoded public key to remove (repeatable).
        #[arg(long)]
        remove: Vec<String>,
        /// The first height the new set certifies [default: 10 blocks after the earliest
        /// allowed, which leaves time to gather the signatures].
        #[arg(long)]
        at: Option<u64>,
    },
    /// Add this validator's signature to a change file and print the file.
    Sign {
        /// The change file `propose` printed (`-`: standard input).
        #[arg(long)]
        change: PathBuf,
        /// This validator's key file (priSPK...).
        #[arg(long)]
        validator_key: PathBuf,
    },
    /// Post a signed change file to a validator; prints the height it committed at.
    Submit {
        /// A validator's base URL.
        #[arg(
            long,
            env = "SPARKID_ENDPOINT",
            default_value = "http://127.0.0.1:8080"
        )]
        endpoint: String,
        /// The signed change file (`-`: standard input).
        #[arg(long)]
        change: PathBuf,
    },
}

/// What `propose` prints and `sign` and `submit` read.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeFile {
    /// The chain: part of the signed text.
    pub chain_id: String,
    /// The change and the signatures so far.
    pub change: ValidatorChange,
    /// The exact text each signer signs (informative; `sign` rebuilds it).
    pub signed_text: String,
}

impl ChangeFile {
    fn new(chain_id: String, change: ValidatorChange) -> ChangeFile {
        let signed_text = String::from_utf8_lossy(&change.signing_bytes(&chain_id)).into_owned();
        ChangeFile {
            chain_id,
            change,
            signed_text,
        }
    }
}

fn read(path: &Path) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("reading standard input")?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn read_change_file(path: &Path) -> anyhow::Result<ChangeFile> {
    serde_json::from_str(&read(path)?).with_context(|| {
        format!(
            "{} is not a change file (sparkid validators propose)",
            path.display()
        )
    })
}

/// Runs a `sparkid validators` command.
pub async fn run(command: ValidatorsCommand) -> anyhow::Result<()> {
    match command {
        ValidatorsCommand::Propose {
            endpoint,
            add,
            remove,
            at,
        } => {
            let base = endpoint.trim_end_matches('/');
            let sets: Value = reqwest::get(format!("{base}/1.0/consensus/validators"))
                .await
                .with_context(|| format!("asking {base} for its validator sets"))?
                .error_for_status()
                .with_context(|| {
                    format!("{base} serves no validator sets (not a validator of several?)")
                })?
                .json()
                .await?;
            let chain_id = sets["chainId"]
                .as_str()
                .ok_or_else(|| anyhow!("{base}: no chainId in the validator sets"))?
                .to_string();
            // A change builds on the newest set: the pending one if there is one (the ledger
            // then refuses it until that one takes over, saying so).
            let base_set = sets
                .get("pending")
                .filter(|p| !p.is_null())
                .unwrap_or(&sets["current"]);
            let mut keys: Vec<String> = serde_json::from_value(base_set["validators"].clone())
                .context("the current set")?;
            let same =
                |a: &str, b: &str| match (PublicKey::from_encoded(a), PublicKey::from_encoded(b)) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => a.eq_ignore_ascii_case(b),
                };
            for key in &remove {
                PublicKey::from_encoded(key).map_err(|e| anyhow!("--remove {key}: {e}"))?;
                let before = keys.len();
                keys.retain(|k| !same(k, key));
                if keys.len() == before {
                    bail!("--remove {key}: not in the current set");
                }
            }
            for key in &add {
                let parsed =
                    PublicKey::from_encoded(key).map_err(|e| anyhow!("--add {key}: {e}"))?;
                if keys.iter().any(|k| same(k, key)) {
                    bail!("--add {key}: already in the current set");
                }
                keys.push(parsed.to_encoded());
            }
            let earliest = sets["earliest"].as_u64().unwrap_or(0);
            let from = at.unwrap_or(earliest + 10);
            let file = ChangeFile::new(chain_id, ValidatorChange::new(from, keys));
            println!("{}", serde_json::to_string_pretty(&file)?);
            Ok(())
        }
        ValidatorsCommand::Sign {
            change,
            validator_key,
        } => {
            let mut file = read_change_file(&change)?;
            let key = PrivateKey::from_encoded(read(&validator_key)?.trim())
                .map_err(|e| anyhow!("--validator-key: {e}"))?;
            file.change.sign(&file.chain_id, &key);
            let file = ChangeFile::new(file.chain_id, file.change);
            println!("{}", serde_json::to_string_pretty(&file)?);
            Ok(())
        }
        ValidatorsCommand::Submit { endpoint, change } => {
            let file = read_change_file(&change)?;
            let base = endpoint.trim_end_matches('/');
            let response = reqwest::Client::new()
                .post(format!("{base}/1.0/consensus/validators"))
                .json(&file.change)
                .send()
                .await
                .with_context(|| format!("posting the change to {base}"))?;
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            if !status.is_success() {
                bail!(
                    "{base} refused the change ({status}): {}",
                    body["detail"].as_str().unwrap_or("no reason given")
                );
            }
            println!("{}", serde_json::to_string_pretty(&body)?);
            Ok(())
        }
    }
}
