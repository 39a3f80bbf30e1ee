//! Opening the ledger a daemon serves, and the key that certifies its blocks.
//!
//! Dev mode: the data directory holds `validator.key` and the ledger; a missing ledger is created
//! with a fresh key and a genesis naming it as the only validator. Otherwise a genesis file and a
//! validator key file are given, and the key must be one of the genesis validators.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use sparkid_bid::{AcCode, PrivateKey};
use sparkid_ledger::{CommitCertificate, Genesis, Ledger};
use sparkid_registrar::{BidStateMachine, Certifier, Registrar, Submitter};
use tracing::info;

use crate::config::ServeConfig;

/// The validator key file in a dev data directory.
pub const DEV_KEY_FILE: &str = "validator.key";

/// A running node's ledger and write path.
pub struct Node {
    /// The ledger.
    pub ledger: Arc<Ledger>,
    /// The registrar.
    pub registrar: Arc<Registrar>,
    /// Dev mode.
    pub dev: bool,
    /// The sub-chains this node hosts beside the main chain.
    pub subchains: Vec<SubChain>,
    /// A validator of several: its consensus (routes `/1.0/consensus/...`).
    pub consensus: Option<Arc<crate::consensus::Consensus>>,
}

/// A sub-chain ("1+N") hosted in this daemon: its own ledger (whose genesis names its AC code)
/// and its own registrar.
pub struct SubChain {
    /// The sub-chain's AC code.
    pub ac: AcCode,
    /// Its ledger.
    pub ledger: Arc<Ledger>,
    /// Its registrar.
    pub registrar: Arc<Registrar>,
}

/// The data directory of a hosted sub-chain, under the main data directory.
pub fn subchain_dir(data: &Path, ac: &AcCode) -> PathBuf {
    data.join("subchains").join(ac.to_string())
}

/// Reads a private key file (`priSPK...`).
pub fn read_key(path: &Path) -> anyhow::Result<PrivateKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading validator key {}", path.display()))?;
    PrivateKey::from_encoded(text.trim())
        .with_context(|| format!("validator key {}", path.display()))
}

/// Writes a secret to a new file readable by its owner only (mode 0600 on Unix), synced.
pub fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Opens (or, in dev mode, creates) the ledger and starts the block producer.
pub fn open(config: &ServeConfig) -> anyhow::Result<Node> {
    std::fs::create_dir_all(&config.data)
        .with_context(|| format!("creating {}", config.data.display()))?;
    let (ledger, key) = if config.dev {
        let key_path = config.data.join(DEV_KEY_FILE);
        let key = if key_path.exists() {
            read_key(&key_path)?
        } else {
            if Ledger::exists(&config.data) {
                bail!(
                    "{} holds a ledger but no {DEV_KEY_FILE}: it is not a dev ledger",
                    config.data.display()
                );
            }
            let key = PrivateKey::generate();
            write_secret(&key_path, &key.to_encoded())?;
            key
        };
        let ledger = if Ledger::exists(&config.data) {
            Ledger::open_with_options(&config.data, &config.ledger)?
        } else {
            let genesis = Genesis {
                chain_id: "sparkid-dev".into(),
                time: sparkid_registrar::service::now(),
                validators: vec![key.public_key().to_encoded()],
                // The dev operator holds every role: its validator key also speaks for the
                // namespace authority (the BID that key derives), so delegation can be tried.
                authority: Some(sparkid_bid::Bid::derive(&key.public_key(), None)?.to_string()),
                other: Default::default(),
            };
            info!(dir = %config.data.display(), "creating a dev ledger");
            Ledger::create_with_options(&config.data, genesis, &[&key], &config.ledger)?
        };
        (ledger, key)
    } else {
        let key_path = config
            .validator_key
            .as_ref()
            .context("a non-dev node needs --validator-key")?;
        let key = read_key(key_path)?;
        let ledger = if Ledger::exists(&config.data) {
            Ledger::open_with_options(&config.data, &config.ledger)?
        } else {
            let path = config
                .genesis
                .as_ref()
                .context("a new non-dev ledger needs --genesis")?;
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let genesis: Genesis = serde_json::from_str(&text)
                .with_context(|| format!("genesis {}", path.display()))?;
            if genesis.validators.len() > 1 {
                bail!(
                    "genesis {} names {} validators: its block needs a quorum of their votes; \
                     create the ledger with `sparkid ledger genesis-vote` (on each validator) \
                     and `sparkid ledger init --votes` (spec/consensus.md)",
                    path.display(),
                    genesis.validators.len()
                );
            }
            Ledger::create_with_options(&config.data, genesis, &[&key], &config.ledger)?
        };
        (ledger, key)
    };
    let mut subchains = Vec::new();
    for ac in &config.subchains {
        let dir = subchain_dir(&config.data, ac);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let sub = if Ledger::exists(&dir) {
            Ledger::open_with_options(&dir, &config.ledger)?
        } else if config.dev {
            let mut other = serde_json::Map::new();
            other.insert("acCode".into(), serde_json::json!(ac.to_string()));
            let genesis = Genesis {
                chain_id: format!("{}-{ac}", ledger.genesis().chain_id),
                time: sparkid_registrar::service::now(),
                validators: vec![key.public_key().to_encoded()],
                authority: ledger.genesis().authority.clone(),
                other,
            };
            info!(ac = %ac, dir = %dir.display(), "creating a dev sub-chain ledger");
            Ledger::create_with_options(&dir, genesis, &[&key], &config.ledger)?
        } else {
            bail!(
                "sub-chain {ac}: {} holds no ledger; create it with its own genesis (acCode {ac}) first",
                dir.display()
            );
        };
        let machine = BidStateMachine::for_genesis(sub.genesis());
        if machine.ac_code.as_ref() != Some(ac) {
            bail!("the ledger in {} is not sub-chain {ac}", dir.display());
        }
        let sub = Arc::new(sub);
        subchains.push(SubChain {
            ac: *ac,
            registrar: start_registrar(&sub, machine, &key, config.dev)?,
            ledger: sub,
        });
    }
    let ledger = Arc::new(ledger);
    let machine = BidStateMachine::for_genesis(ledger.genesis());
    // A chain of several validators commits by their votes; a single validator (dev mode
    // included) signs alone, exactly as before.
    let (registrar, consensus) = if ledger.validators().keys().len() > 1 {
        if !ledger.validators().keys().contains(&key.public_key()) {
            bail!(
                "the validator key is not one of chain {:?}'s validators",
                ledger.genesis().chain_id
            );
        }
        let (consensus, submitter) = crate::consensus::Consensus::start(
            ledger.clone(),
            machine,
            key.clone(),
            &config.peers,
        )?;
        let registrar = Arc::new(Registrar::new(ledger.clone(), submitter, config.dev));
        (registrar, Some(consensus))
    } else {
        (start_registrar(&ledger, machine, &key, config.dev)?, None)
    };
    Ok(Node {
        ledger,
        registrar,
        dev: config.dev,
        subchains,
        consensus,
    })
}

fn start_registrar(
    ledger: &Arc<Ledger>,
    machine: BidStateMachine,
    key: &PrivateKey,
    dev: bool,
) -> anyhow::Result<Arc<Registrar>> {
    if !ledger.validators().keys().contains(&key.public_key()) {
        bail!(
            "the validator key is not one of chain {:?}'s validators",
            ledger.genesis().chain_id
        );
    }
    let key = key.clone();
    let certify: Certifier = Box::new(move |header| Ok(CommitCertificate::sign(header, &[&key])));
    let submitter = Submitter::start(ledger.clone(), machine, certify);
    Ok(Arc::new(Registrar::new(ledger.clone(), submitter, dev)))
}
