//! Opening the ledger a daemon serves, and the key that certifies its blocks.
//!
//! Dev mode: the data directory holds `validator.key` and the ledger; a missing ledger is created
//! with a fresh key and a genesis naming it as the only validator. Otherwise a genesis file and a
//! validator key file are given, and the key must be one of the genesis validators.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sparkid_bid::{AcCode, KeyError, PrivateKey};
use sparkid_ledger::{CommitCertificate, Genesis, Ledger, LedgerError, LedgerOptions};
use sparkid_registrar::{BidStateMachine, Certifier, Registrar, RegistrarPolicy, Submitter};
use thiserror::Error;
use tracing::info;

/// How to open a node (validator or dev): what the daemon's configuration says about it.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// The data directory (`--data`).
    pub data: PathBuf,
    /// Dev mode (`--dev`): a single validator whose key lives in the data directory.
    pub dev: bool,
    /// The genesis file for a new non-dev ledger (`--genesis`).
    pub genesis: Option<PathBuf>,
    /// The validator key file of a non-dev node (`--validator-key`).
    pub validator_key: Option<PathBuf>,
    /// The sub-chains hosted beside the main chain (`--subchain`).
    pub subchains: Vec<AcCode>,
    /// A validator of several: the other validators' base URLs (`--peer`).
    pub peers: Vec<String>,
    /// How the ledgers (main chain and hosted sub-chains) are opened.
    pub ledger: LedgerOptions,
    /// What the registrars (main chain and hosted sub-chains) admit: job limits, submitters.
    pub registrar: RegistrarPolicy,
    /// What clients of the other validators are built from (the daemon's trust roots).
    pub client: crate::outbound::ClientBase,
}

/// Why a node could not be opened.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NodeError {
    /// A directory could not be created.
    #[error("creating {}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// A validator key file could not be read.
    #[error("reading validator key {}", path.display())]
    ReadKey {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// A validator key file does not hold a private key.
    #[error("validator key {}", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: KeyError,
    },
    /// A secret could not be written.
    #[error("creating {}", path.display())]
    WriteSecret {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The genesis file cannot be used.
    #[error(transparent)]
    Genesis(#[from] GenesisFileError),
    /// A dev data directory holds a ledger but no key.
    #[error("{} holds a ledger but no {DEV_KEY_FILE}: it is not a dev ledger", dir.display())]
    NotDevLedger {
        /// The data directory.
        dir: PathBuf,
    },
    /// Dev mode was asked for on a ledger that is not a dev ledger: dev mode keeps the only
    /// validator key beside the data and signs for anyone, so it never opens a real chain.
    #[error(
        "{} holds the ledger of chain {chain_id:?}, which is not a dev ledger: dev mode never \
         opens it (start without --dev, with this chain's --validator-key)",
        dir.display()
    )]
    DevModeOnRealLedger {
        /// The data directory.
        dir: PathBuf,
        /// The chain the ledger holds.
        chain_id: String,
    },
    /// A dev ledger was opened outside dev mode: its genesis was made without a ceremony and
    /// its only validator key lies in the data directory, so it never becomes a real chain.
    #[error(
        "{} holds a dev ledger (chain {DEV_CHAIN_ID:?}): it only opens in dev mode (--dev); \
         a real node starts from its own genesis (--genesis, spec/consensus.md)",
        dir.display()
    )]
    DevLedgerOutsideDevMode {
        /// The data directory.
        dir: PathBuf,
    },
    /// The dev key derives no BID (the dev genesis names it as the namespace authority).
    #[error("the dev key's BID")]
    DevAuthority(#[source] KeyError),
    /// A non-dev node was given no validator key.
    #[error("a non-dev node needs --validator-key")]
    NoValidatorKey,
    /// A new non-dev ledger was given no genesis.
    #[error("a new non-dev ledger needs --genesis")]
    NoGenesis,
    /// The genesis names several validators: block 0 needs their votes first.
    #[error(
        "genesis {} names {validators} validators: its block needs a quorum of their votes; \
         create the ledger with `sparkid ledger genesis-vote` (on each validator) \
         and `sparkid ledger init --votes` (spec/consensus.md)",
        path.display()
    )]
    GenesisNeedsVotes {
        /// The genesis file.
        path: PathBuf,
        /// How many validators it names.
        validators: usize,
    },
    /// A non-dev hosted sub-chain has no ledger yet.
    #[error(
        "sub-chain {ac}: {} holds no ledger; create it with its own genesis (acCode {ac}) first",
        dir.display()
    )]
    NoSubChainLedger {
        /// The sub-chain.
        ac: AcCode,
        /// Its data directory.
        dir: PathBuf,
    },
    /// A sub-chain's directory holds another chain's ledger.
    #[error("the ledger in {} is not sub-chain {ac}", dir.display())]
    NotSubChain {
        /// The sub-chain.
        ac: AcCode,
        /// Its data directory.
        dir: PathBuf,
    },
    /// The validator key is not one of the chain's validators.
    #[error("the validator key is not one of chain {chain_id:?}'s validators")]
    NotAValidator {
        /// The chain.
        chain_id: String,
    },
    /// The ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Consensus could not start.
    #[error(transparent)]
    Consensus(#[from] crate::bft::StartError),
}

/// The chain id of every dev ledger's genesis: what marks a ledger as a dev ledger.
pub const DEV_CHAIN_ID: &str = "sparkid-dev";

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
    pub consensus: Option<Arc<crate::bft::Consensus>>,
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
pub fn read_key(path: &Path) -> Result<PrivateKey, NodeError> {
    let text = std::fs::read_to_string(path).map_err(|source| NodeError::ReadKey {
        path: path.to_path_buf(),
        source,
    })?;
    PrivateKey::from_encoded(text.trim()).map_err(|source| NodeError::BadKey {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes a secret to a new file readable by its owner only (mode 0600 on Unix), synced.
pub fn write_secret(path: &Path, text: &str) -> Result<(), NodeError> {
    use std::io::Write;
    let failed = |source| NodeError::WriteSecret {
        path: path.to_path_buf(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(failed)?;
    file.write_all(text.as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    Ok(())
}

fn create_dir(path: &Path) -> Result<(), NodeError> {
    std::fs::create_dir_all(path).map_err(|source| NodeError::CreateDir {
        path: path.to_path_buf(),
        source,
    })
}

/// Why a genesis file cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GenesisFileError {
    /// The file could not be read.
    #[error("reading {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a genesis.
    #[error("genesis {}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: serde_json::Error,
    },
}

/// Reads a genesis file (`--genesis`).
pub fn read_genesis(path: &Path) -> Result<Genesis, GenesisFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| GenesisFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| GenesisFileError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// Opens (or, in dev mode, creates) the ledger and starts the block producer; a validator of
/// several starts its consensus ([`crate::bft::Consensus::start`]). Blocks the thread
/// (opening a database); must run inside the tokio runtime (the block producer and consensus
/// spawn their tasks on it).
pub fn open(config: &NodeOptions) -> Result<Node, NodeError> {
    create_dir(&config.data)?;
    let (ledger, key) = if config.dev {
        let key_path = config.data.join(DEV_KEY_FILE);
        let key = if key_path.exists() {
            read_key(&key_path)?
        } else {
            if Ledger::exists(&config.data) {
                return Err(NodeError::NotDevLedger {
                    dir: config.data.clone(),
                });
            }
            let key = PrivateKey::generate();
            write_secret(&key_path, &key.to_encoded())?;
            key
        };
        let ledger = if Ledger::exists(&config.data) {
            let ledger = Ledger::open_with_options(&config.data, &config.ledger)?;
            let genesis = ledger.genesis();
            if genesis.chain_id != DEV_CHAIN_ID
                || genesis.validators != [key.public_key().to_encoded()]
            {
                return Err(NodeError::DevModeOnRealLedger {
                    dir: config.data.clone(),
                    chain_id: genesis.chain_id.clone(),
                });
            }
            ledger
        } else {
            let genesis = Genesis {
                chain_id: DEV_CHAIN_ID.into(),
                time: sparkid_registrar::service::now(),
                validators: vec![key.public_key().to_encoded()],
                // The dev operator holds every role: its validator key also speaks for the
                // namespace authority (the BID that key derives), so delegation can be tried.
                authority: Some(
                    sparkid_bid::Bid::derive(&key.public_key(), None)
                        .map_err(NodeError::DevAuthority)?
                        .to_string(),
                ),
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
            .ok_or(NodeError::NoValidatorKey)?;
        let key = read_key(key_path)?;
        let ledger = if Ledger::exists(&config.data) {
            let ledger = Ledger::open_with_options(&config.data, &config.ledger)?;
            if ledger.genesis().chain_id == DEV_CHAIN_ID {
                return Err(NodeError::DevLedgerOutsideDevMode {
                    dir: config.data.clone(),
                });
            }
            ledger
        } else {
            let path = config.genesis.as_ref().ok_or(NodeError::NoGenesis)?;
            let genesis = read_genesis(path)?;
            if genesis.validators.len() > 1 {
                return Err(NodeError::GenesisNeedsVotes {
                    path: path.clone(),
                    validators: genesis.validators.len(),
                });
            }
            Ledger::create_with_options(&config.data, genesis, &[&key], &config.ledger)?
        };
        (ledger, key)
    };
    let mut subchains = Vec::new();
    for ac in &config.subchains {
        let dir = subchain_dir(&config.data, ac);
        create_dir(&dir)?;
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
            return Err(NodeError::NoSubChainLedger { ac: *ac, dir });
        };
        let machine = BidStateMachine::for_genesis(sub.genesis());
        if machine.ac_code.as_ref() != Some(ac) {
            return Err(NodeError::NotSubChain { ac: *ac, dir });
        }
        let sub = Arc::new(sub);
        subchains.push(SubChain {
            ac: *ac,
            registrar: start_registrar(&sub, machine, &key, config)?,
            ledger: sub,
        });
    }
    let ledger = Arc::new(ledger);
    let machine = BidStateMachine::for_genesis(ledger.genesis());
    // A chain of several validators commits by their votes; a single validator (dev mode
    // included) signs alone, exactly as before.
    let (registrar, consensus) = if ledger.validators().keys().len() > 1 {
        // A key of no set known here yet may be a validator a pending or later change adds
        // (its ledger learns the change by catching up): it follows, and votes from the height
        // whose set names it. Without peers it could never learn of one: refused.
        let known = ledger
            .schedule()
            .sets()
            .iter()
            .any(|(_, set)| set.keys().contains(&key.public_key()));
        if !known && config.peers.is_empty() {
            return Err(NodeError::NotAValidator {
                chain_id: ledger.genesis().chain_id.clone(),
            });
        }
        let (consensus, submitter) = crate::bft::Consensus::start(
            ledger.clone(),
            machine,
            key.clone(),
            &config.peers,
            &config.client,
        )?;
        let registrar = Arc::new(Registrar::with_policy(
            ledger.clone(),
            submitter,
            config.dev,
            config.registrar.clone(),
        ));
        (registrar, Some(consensus))
    } else {
        (start_registrar(&ledger, machine, &key, config)?, None)
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
    config: &NodeOptions,
) -> Result<Arc<Registrar>, NodeError> {
    if !ledger.validators().keys().contains(&key.public_key()) {
        return Err(NodeError::NotAValidator {
            chain_id: ledger.genesis().chain_id.clone(),
        });
    }
    let key = key.clone();
    let certify: Certifier = Box::new(move |header| Ok(CommitCertificate::sign(header, &[&key])));
    let submitter = Submitter::start(ledger.clone(), machine, certify);
    Ok(Arc::new(Registrar::with_policy(
        ledger.clone(),
        submitter,
        config.dev,
        config.registrar.clone(),
    )))
}
