//! The `sparkid` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use sparkid_bid::{AcCode, Bid, PrivateKey, PublicKey};

use sparkid_node::registrar_client::client_managed;

use crate::config::{FileConfig, ServeConfig, DEFAULT_DATA, DEFAULT_HTTP};

/// The default log filter: hickory-server logs every query at `info`, and queries name
/// identifiers, which the logs should not collect by default.
const DEFAULT_LOG: &str = "info,hickory_server=warn";

/// sparkid: did:bid, VAA, Handle and DNS identity resolution from a verifiable ledger.
#[derive(Debug, Parser)]
#[command(name = "sparkid", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon.
    Serve(Box<ServeArgs>),
    /// Make an Ed25519 key pair and print it with its BID (JSON).
    Keygen {
        /// Print the BID on this sub-chain.
        #[arg(long)]
        ac: Option<String>,
    },
    /// BID addresses.
    #[command(subcommand)]
    Bid(BidCommand),
    /// Write DIDs through a running daemon's registrar (the key stays here: client-managed mode).
    #[command(subcommand)]
    Did(DidCommand),
    /// Ledger maintenance.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Delegate namespaces and bind identifiers through a running daemon's registrar.
    #[command(subcommand)]
    Namespace(NamespaceCommand),
    /// Change the validator set of a chain of several: propose, sign (each validator of the
    /// current set), submit (spec/consensus.md).
    #[command(subcommand)]
    Validators(crate::validators_cli::ValidatorsCommand),
    /// Check a saved resolution result offline, with only the validators' public keys: the
    /// commit certificate, the Merkle path, the state key, and that the document and its
    /// metadata are what the proven record renders. Exits non-zero saying what failed.
    Verify(VerifyArgs),
    /// Record W3C did-test-suite fixtures (did-bid.json, did-key.json and their dereferencer
    /// files) from what a daemon answers: one started on a temporary ledger, or --endpoint.
    /// Exits non-zero naming every rule an answer or a fixture breaks.
    Conformance(ConformanceArgs),
}

#[derive(Debug, clap::Args)]
struct ConformanceArgs {
    /// The directory to write the fixtures to (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Record this running daemon instead of starting one. It registers the DIDs it needs
    /// there, so it must accept registrations and host the --ac sub-chain.
    #[arg(long)]
    endpoint: Option<reqwest::Url>,
    /// The AC code of the sub-chain the sub-chain DID is registered on.
    #[arg(long, default_value = "cf01")]
    ac: String,
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The saved result: `application/did-resolution` JSON of `/1.0/identifiers/{did}?proof=true`,
    /// or a BID-protocol answer of `/{bid}?proof=true`; `-` reads standard input.
    file: PathBuf,
    /// The chain's genesis (JSON; a running daemon serves it at `/1.0/genesis`).
    #[arg(
        long,
        required_unless_present = "validators",
        conflicts_with = "validators"
    )]
    genesis: Option<PathBuf>,
    /// The validators' encoded public keys (b06566...), separated by commas or whitespace, or a
    /// file holding them. The chain id is then not checked.
    #[arg(long)]
    validators: Option<String>,
    /// The DID the result must be about [default: the document's id, else the proof's DID].
    #[arg(long)]
    did: Option<String>,
}

#[derive(Debug, clap::Args)]
struct NamespaceSigner {
    #[command(flatten)]
    endpoint: Endpoint,
    /// The signing private key (priSPK...) or a file holding it (in dev mode the authority's
    /// key is the data directory's validator.key).
    #[arg(long)]
    key: String,
    /// The signing key id [default: <the BID the key derives>#key-1].
    #[arg(long)]
    signer: Option<String>,
}

#[derive(Debug, Subcommand)]
enum NamespaceCommand {
    /// Delegate a namespace to an owner DID (signed by the chain authority).
    Delegate {
        #[command(flatten)]
        signer: NamespaceSigner,
        /// vaa, handle, dns, ac, oid, gs1 or ecode.
        #[arg(long)]
        kind: String,
        /// The namespace: a VAA company prefix, a Handle prefix, a DNS zone, an AC code, an OID
        /// arc (`1.2.156.3001`), a GS1 Company Prefix (4-12 digits) or an Ecode prefix (version
        /// and scheme identifier).
        #[arg(long)]
        namespace: String,
        /// The owner DID.
        #[arg(long)]
        owner: String,
        /// VAA prefixes: the chain holding the items (main or an AC code).
        #[arg(long)]
        chain: Option<String>,
        /// AC codes: a resolver endpoint of the sub-chain (repeatable). Handle prefixes served
        /// by another node: its Handle interfaces, `tcp://<IP>[:port]`, `udp://…`, `http://…`
        /// (repeatable; TCP first).
        #[arg(long = "endpoint-url")]
        endpoints: Vec<String>,
    },
    /// Bind an identifier under an owned namespace to a DID (signed by the namespace owner).
    Bind {
        #[command(flatten)]
        signer: NamespaceSigner,
        /// vaa, handle, dns, oid, gs1 or ecode.
        #[arg(long)]
        kind: String,
        /// The identifier (gs1: a Digital Link path, `/01/09506000134352/10/LOT7`).
        #[arg(long)]
        identifier: String,
        /// The DID.
        #[arg(long)]
        did: String,
    },
    /// Remove a binding (signed by the namespace owner).
    Unbind {
        #[command(flatten)]
        signer: NamespaceSigner,
        /// vaa, handle, dns, oid or ecode.
        #[arg(long)]
        kind: String,
        /// The identifier.
        #[arg(long)]
        identifier: String,
    },
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TOML configuration file.
    #[arg(long, env = "SPARKID_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory [default: ./sparkid-data].
    #[arg(long, env = "SPARKID_DATA")]
    data: Option<PathBuf>,
    /// HTTP listen address [default: 127.0.0.1:8080].
    #[arg(long, env = "SPARKID_HTTP")]
    http: Option<SocketAddr>,
    /// Dev mode: one local validator whose key lives in the data directory. On when no
    /// validator configuration is given, but then only on loopback addresses: elsewhere it
    /// needs `--dev` (or `--dev true`) itself.
    #[arg(long, env = "SPARKID_DEV", num_args = 0..=1, default_missing_value = "true")]
    dev: Option<bool>,
    /// Genesis file (JSON) for a new non-dev ledger.
    #[arg(long, env = "SPARKID_GENESIS")]
    genesis: Option<PathBuf>,
    /// This node's validator key file (priSPK...).
    #[arg(long, env = "SPARKID_VALIDATOR_KEY")]
    validator_key: Option<PathBuf>,
    /// Log filter (RUST_LOG syntax) [default: info,hickory_server=warn].
    #[arg(long, env = "SPARKID_LOG")]
    log: Option<String>,
    /// Host the sub-chain with this AC code (repeatable; a dev node creates its ledger in
    /// <data>/subchains/<ac>).
    #[arg(long = "subchain", env = "SPARKID_SUBCHAINS", value_delimiter = ',')]
    subchains: Vec<String>,
    /// Follower mode: sync certified blocks from this peer's base URL (repeatable; tried in
    /// order, the next on failure), serve reads from the local copy, forward writes.
    #[arg(long = "follow", env = "SPARKID_FOLLOW", value_delimiter = ',')]
    follow: Vec<String>,
    /// Where a follower forwards writes (repeatable) [default: the --follow peers].
    #[arg(
        long = "validator-url",
        env = "SPARKID_VALIDATOR_URL",
        value_delimiter = ','
    )]
    validator_urls: Vec<String>,
    /// A validator of several: another validator's base URL (repeatable), for proposals,
    /// votes, forwarded writes and catch-up (spec/consensus.md).
    #[arg(long = "peer", env = "SPARKID_PEERS", value_delimiter = ',')]
    peers: Vec<String>,
    #[command(flatten)]
    cache: crate::config::CacheArgs,
    #[command(flatten)]
    anchor: crate::config::AnchorArgs,
    #[command(flatten)]
    ledger: crate::config::LedgerArgs,
    #[command(flatten)]
    tls: crate::config::TlsArgs,
    /// Follower mode: blocks asked for in one page, 1 to 1000 [default: 1000]. Smaller pages
    /// hold less memory and report catching up more often.
    #[arg(long, env = "SPARKID_SYNC_PAGE_BLOCKS")]
    sync_page_blocks: Option<usize>,
    #[command(flatten)]
    handle: crate::config::HandleArgs,
    #[command(flatten)]
    dns: crate::config::DnsArgs,
    #[command(flatten)]
    upstream: crate::config::UpstreamArgs,
    #[command(flatten)]
    udp_rrl: crate::config::RrlArgs,
    #[command(flatten)]
    limits: crate::edge::LimitsArgs,
    #[command(flatten)]
    registrar: crate::config::RegistrarArgs,
    #[command(flatten)]
    did_web: crate::config::DidWebArgs,
}

#[derive(Debug, Subcommand)]
enum BidCommand {
    /// Print the BID of an encoded public key (hex, b06566...).
    Derive {
        /// The encoded public key.
        encoded_public_key: String,
        /// A sub-chain AC code.
        #[arg(long)]
        ac: Option<String>,
    },
    /// Check a BID and print its parts (JSON).
    Parse {
        /// The BID.
        bid: String,
    },
}

#[derive(Debug, clap::Args)]
struct Endpoint {
    /// The daemon's base URL.
    #[arg(
        long,
        env = "SPARKID_ENDPOINT",
        default_value = "http://127.0.0.1:8080"
    )]
    endpoint: String,
}

#[derive(Debug, Subcommand)]
enum DidCommand {
    /// Create a DID. Without --key a new key is made and printed.
    Create {
        #[command(flatten)]
        endpoint: Endpoint,
        /// The private key (priSPK...) or a file holding it.
        #[arg(long)]
        key: Option<String>,
        /// A JSON file with document members to include (service, alsoKnownAs, extension).
        #[arg(long)]
        document: Option<PathBuf>,
        /// Create the DID on the sub-chain with this AC code (`did:bid:<ac>:…`); the endpoint
        /// must host that sub-chain.
        #[arg(long)]
        ac: Option<sparkid_bid::AcCode>,
    },
    /// Replace a DID's document (signed by an authentication key).
    Update {
        #[command(flatten)]
        endpoint: Endpoint,
        /// The DID.
        #[arg(long)]
        did: String,
        /// The signing private key (priSPK...) or a file holding it.
        #[arg(long)]
        key: String,
        /// The new native document (JSON file).
        #[arg(long)]
        document: PathBuf,
        /// Recover instead (signed by a recovery key): replaces keys and authentication.
        #[arg(long)]
        recover: bool,
    },
    /// Deactivate a DID (signed by a recovery key).
    Deactivate {
        #[command(flatten)]
        endpoint: Endpoint,
        /// The DID.
        #[arg(long)]
        did: String,
        /// The recovery private key (priSPK...) or a file holding it.
        #[arg(long)]
        key: String,
    },
    /// Confirm, as the DID's controller, an identifier a namespace owner bound to the DID:
    /// only then does it show in the DID's alsoKnownAs and DNS aka records (signed by an
    /// authentication key).
    Link {
        #[command(flatten)]
        endpoint: Endpoint,
        /// The DID.
        #[arg(long)]
        did: String,
        /// An authentication private key of the DID (priSPK...) or a file holding it.
        #[arg(long)]
        key: String,
        /// vaa, handle, dns, oid or ecode.
        #[arg(long)]
        kind: String,
        /// The identifier.
        #[arg(long)]
        identifier: String,
        /// Withdraw the confirmation instead.
        #[arg(long)]
        unlink: bool,
    },
}

#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// Re-check the whole chain: links, certificates, signatures, roots, re-executed state.
    Verify {
        /// Data directory.
        #[arg(long, default_value = DEFAULT_DATA)]
        data: PathBuf,
    },
    /// Sign the genesis block of a genesis naming several validators with this validator's
    /// key, and print the vote (JSON): each validator runs it on its own machine, and a quorum
    /// of the votes goes to `ledger init` (spec/consensus.md).
    GenesisVote {
        /// The genesis file (JSON).
        #[arg(long)]
        genesis: PathBuf,
        /// This validator's key file (priSPK...).
        #[arg(long)]
        validator_key: PathBuf,
    },
    /// Create a validator's ledger from a genesis and a quorum of genesis votes.
    Init {
        /// Data directory.
        #[arg(long, default_value = DEFAULT_DATA)]
        data: PathBuf,
        /// The genesis file (JSON).
        #[arg(long)]
        genesis: PathBuf,
        /// A JSON array of the votes `ledger genesis-vote` printed.
        #[arg(long)]
        votes: PathBuf,
    },
}

fn read_genesis(path: &std::path::Path) -> anyhow::Result<sparkid_ledger::Genesis> {
    serde_json::from_str(&read_input(path)?).with_context(|| format!("genesis {}", path.display()))
}

/// Runs the command line.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Keygen { ac } => {
            let key = PrivateKey::generate();
            let bid = Bid::derive(&key.public_key(), parse_ac(ac)?)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "bid": bid.to_string(),
                    "publicKeyHex": key.public_key().to_encoded(),
                    "privateKey": key.to_encoded(),
                }))?
            );
            Ok(())
        }
        Command::Bid(BidCommand::Derive {
            encoded_public_key,
            ac,
        }) => {
            let key = PublicKey::from_encoded(encoded_public_key.trim())?;
            println!("{}", Bid::derive(&key, parse_ac(ac)?)?);
            Ok(())
        }
        Command::Bid(BidCommand::Parse { bid }) => {
            let parsed: Bid = bid.parse()?;
            let address = parsed.address();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "bid": parsed.to_string(),
                    "acCode": parsed.ac_code().map(|a| a.to_string()),
                    "keyType": address.map(|a| format!("{:?}", a.key_type())),
                    "hash": address.map(|a| hex::encode(a.hash())),
                }))?
            );
            Ok(())
        }
        Command::Did(cmd) => runtime()?.block_on(did_command(cmd)),
        Command::Namespace(cmd) => runtime()?.block_on(namespace_command(cmd)),
        Command::Validators(cmd) => runtime()?.block_on(crate::validators_cli::run(cmd)),
        Command::Verify(args) => verify(args),
        Command::Conformance(args) => conformance(args),
        Command::Ledger(LedgerCommand::GenesisVote {
            genesis,
            validator_key,
        }) => {
            let genesis = read_genesis(&genesis)?;
            let key = load_key(&read_input(&validator_key)?)?;
            let header = sparkid_ledger::Ledger::genesis_header(&genesis)?;
            let vote = sparkid_ledger::block::Vote::sign(&header, 0, &key);
            println!("{}", serde_json::to_string_pretty(&vote)?);
            Ok(())
        }
        Command::Ledger(LedgerCommand::Init {
            data,
            genesis,
            votes,
        }) => {
            let genesis = read_genesis(&genesis)?;
            let votes: Vec<sparkid_ledger::block::Vote> =
                serde_json::from_str(&read_input(&votes)?)
                    .with_context(|| format!("votes {}", votes.display()))?;
            let header = sparkid_ledger::Ledger::genesis_header(&genesis)?;
            let certificate = sparkid_ledger::CommitCertificate {
                block_hash: header.hash(),
                votes,
            };
            let ledger = sparkid_ledger::Ledger::create_certified(&data, genesis, certificate)?;
            println!(
                "created the ledger of chain {} in {}",
                ledger.genesis().chain_id,
                data.display()
            );
            Ok(())
        }
        Command::Ledger(LedgerCommand::Verify { data }) => {
            let ledger = sparkid_ledger::Ledger::open(&data)?;
            let machine = sparkid_registrar::BidStateMachine::for_genesis(ledger.genesis());
            let progress = crate::progress::Progress::new(
                "verify",
                "blocks",
                ledger.height().saturating_add(1),
            );
            let report =
                sparkid_ledger::verify_chain_with_progress(&ledger, &machine, &mut |height, _| {
                    progress.set(height.saturating_add(1))
                });
            progress.finish();
            let report = report?;
            println!(
                "ok: {} blocks, {} transactions, {} state keys, state root {}",
                report.blocks, report.transactions, report.state_keys, report.state_root
            );
            Ok(())
        }
    }
}

fn read_input(path: &std::path::Path) -> anyhow::Result<String> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .context("reading standard input")?;
        return Ok(text);
    }
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    use sparkid_resolver::verifiable::{verify_text, TrustAnchor};
    let anchor = match (&args.genesis, &args.validators) {
        (Some(genesis), _) => TrustAnchor::from_genesis_json(&read_input(genesis)?)
            .with_context(|| format!("--genesis {}", genesis.display()))?,
        (None, Some(keys)) => {
            let path = std::path::Path::new(keys);
            let text = if path.is_file() {
                read_input(path)?
            } else {
                keys.clone()
            };
            TrustAnchor::from_encoded_keys(&text).context("--validators")?
        }
        (None, None) => bail!("give --genesis or --validators"),
    };
    let text = read_input(&args.file)?;
    match verify_text(&text, &anchor, args.did.as_deref()) {
        Ok(verified) => {
            println!("{verified}");
            Ok(())
        }
        Err(e) => Err(anyhow!("verification failed: {e}")),
    }
}

fn parse_ac(ac: Option<String>) -> anyhow::Result<Option<AcCode>> {
    ac.map(|a| a.parse::<AcCode>().map_err(|e| anyhow!(e)))
        .transpose()
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = serve_config_of(args)?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&config.log).context("log filter")?)
        .with_writer(std::io::stderr)
        .init();
    runtime()?.block_on(crate::serve(config))
}

/// The configuration `sparkid serve <args>` runs with (flags, then the environment, then the
/// `--config` file), for a daemon started in process ([`crate::serve::start`]).
pub fn serve_config<I, T>(args: I) -> anyhow::Result<ServeConfig>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let all = ["sparkid".into(), "serve".into()]
        .into_iter()
        .chain(args.into_iter().map(Into::into));
    match Cli::try_parse_from(all)?.command {
        Command::Serve(args) => serve_config_of(*args),
        _ => bail!("not a serve command"),
    }
}

fn serve_config_of(args: ServeArgs) -> anyhow::Result<ServeConfig> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let genesis = args.genesis.or(file.genesis);
    let validator_key = args.validator_key.or(file.validator_key);
    let follow = if args.follow.is_empty() {
        file.follow.unwrap_or_default()
    } else {
        args.follow
    };
    let dev = args
        .dev
        .or(file.dev)
        .unwrap_or(genesis.is_none() && validator_key.is_none() && follow.is_empty());
    let validator_urls = if args.validator_urls.is_empty() {
        file.validator_url.unwrap_or_default()
    } else {
        args.validator_urls
    };
    // Dev mode asked for in so many words (flag, environment or file), as opposed to the
    // default a bare `sparkid serve` gets.
    let dev_asked = args.dev.or(file.dev) == Some(true);
    let mut config = ServeConfig {
        data: args
            .data
            .or(file.data)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA)),
        http: match args.http.or(file.http) {
            Some(a) => a,
            None => DEFAULT_HTTP.parse()?,
        },
        dev,
        genesis,
        validator_key,
        log: args.log.or(file.log).unwrap_or_else(|| DEFAULT_LOG.into()),
        subchains: if args.subchains.is_empty() {
            file.subchains.unwrap_or_default()
        } else {
            args.subchains
        }
        .iter()
        .map(|ac| {
            ac.parse::<AcCode>()
                .map_err(|e| anyhow!("sub-chain {ac:?}: {e}"))
        })
        .collect::<anyhow::Result<_>>()?,
        anchor: args
            .anchor
            .resolve(file.anchor_to, file.anchor_key, file.anchor_interval),
        cache: crate::config::CacheConfig {
            redis_secret: (args.cache.redis_secret.clone())
                .or(file.redis_secret)
                .filter(|s| !s.is_empty()),
            ..args
                .cache
                .resolve(file.cache_bytes, file.redis_url, file.cache_ttl_max)
        },
        answer_records: args
            .ledger
            .answer_records
            .or(file.answer_records)
            .unwrap_or(true),
        ledger: args.ledger.resolve(file.ledger_cache_mb),
        handle: args
            .handle
            .resolve_with_site(
                file.handle,
                file.public_url,
                file.handle_idis,
                file.handle_site_addresses,
            )
            .map_err(|e| anyhow!(e))?,
        dns: args.dns.resolve(
            file.dns,
            file.service_zone,
            file.dns_nameservers,
            file.ors_zone,
        ),
        drivers: file.drivers,
        follow,
        validator_urls,
        peers: if args.peers.is_empty() {
            file.peers.unwrap_or_default()
        } else {
            args.peers
        },
        upstream: args.upstream.resolve(
            file.driver_cache_bytes,
            file.subchain_fanout,
            file.subchain_negative_ttl,
            file.subchain_allow_private_targets,
            dev,
        ),
        udp_rrl: args.udp_rrl.resolve(
            file.udp_rrl_rate,
            file.udp_rrl_slip,
            file.udp_rrl_table_size,
        ),
        limits: args.limits.resolve(file.limits),
        registrar: args.registrar.resolve(file.registrar)?,
        did_web: args.did_web.resolve(
            file.did_web_ca_file,
            file.did_web_allow_private_targets,
            file.did_web_cache_ttl,
            dev,
        ),
        tls: args
            .tls
            .resolve(file.tls_cert, file.tls_key, file.ca_file)?,
        sync_page_blocks: args.sync_page_blocks.or(file.sync_page_blocks).unwrap_or(0),
    };
    // did:web hosts trust the outbound CA file too, unless did:web is given one of its own.
    if config.did_web.ca_file.is_none() {
        config.did_web.ca_file = config.tls.ca_file.clone();
    }
    if config.dev && !dev_asked {
        refuse_implicit_dev_off_loopback(&config)?;
    }
    Ok(config)
}

/// Dev mode by default only where nobody else can reach it: its one validator key lies in the
/// data directory and its registrar signs for anyone (internal secret mode), so a daemon that
/// listens beyond loopback runs in dev mode only when told to with `--dev`.
fn refuse_implicit_dev_off_loopback(config: &ServeConfig) -> anyhow::Result<()> {
    let mut doors = vec![("HTTP", config.http)];
    if let Some(addr) = config.handle.listen_addr(config.http) {
        doors.push(("Handle", addr));
    }
    if let Some(addr) = config.handle.idis {
        doors.push(("Handle IDIS", addr));
    }
    if let Some(addr) = config.dns.listen {
        doors.push(("DNS", addr));
    }
    if let Some((door, addr)) = doors.into_iter().find(|(_, a)| !a.ip().is_loopback()) {
        bail!(
            "refusing to start in dev mode on {addr} ({door}), which is not a loopback address: \
             dev mode keeps its only validator key in the data directory and signs writes for \
             anyone. Pass --dev (or SPARKID_DEV=true) if that is what you want, or run a real \
             node with --validator-key and --genesis"
        );
    }
    Ok(())
}

fn load_key(text: &str) -> anyhow::Result<PrivateKey> {
    let value = if std::path::Path::new(text).exists() {
        std::fs::read_to_string(text)?
    } else {
        text.to_string()
    };
    PrivateKey::from_encoded(value.trim()).map_err(|e| anyhow!("--key: {e}"))
}

async fn did_command(cmd: DidCommand) -> anyhow::Result<()> {
    let (answer, generated) = match cmd {
        DidCommand::Create {
            endpoint,
            key,
            document,
            ac,
        } => {
            let (key, generated) = match key {
                Some(k) => (load_key(&k)?, false),
                None => (PrivateKey::generate(), true),
            };
            let template = match document {
                Some(path) => Some(serde_json::from_str(&std::fs::read_to_string(&path)?)?),
                None => None,
            };
            let doc = sparkid_registrar::api::new_document_on(&key.public_key(), ac, template)
                .map_err(|e| anyhow!(e))?;
            let answer = client_managed(
                &endpoint.endpoint,
                "/1.0/create?method=bid",
                json!({ "didDocument": doc }),
                &key,
            )
            .await?;
            (answer, generated.then_some(key))
        }
        DidCommand::Update {
            endpoint,
            did,
            key,
            document,
            recover,
        } => {
            let key = load_key(&key)?;
            let doc: Value = serde_json::from_str(&std::fs::read_to_string(&document)?)?;
            let mut body = json!({ "did": did, "didDocument": doc });
            if recover {
                body["didDocumentOperation"] = json!(["recover"]);
            }
            body["options"]["signer"] = signer_for(
                &endpoint.endpoint,
                &did,
                &key,
                if recover {
                    "recovery"
                } else {
                    "authentication"
                },
            )
            .await?;
            (
                client_managed(&endpoint.endpoint, "/1.0/update", body, &key).await?,
                None,
            )
        }
        DidCommand::Link {
            endpoint,
            did,
            key,
            kind,
            identifier,
            unlink,
        } => {
            let key = load_key(&key)?;
            let signer = signer_for(&endpoint.endpoint, &did, &key, "authentication").await?;
            let body = json!({
                "operation": { "type": if unlink { "unlink" } else { "link" },
                               "did": did, "kind": kind, "identifier": identifier },
                "options": { "signer": signer },
            });
            (
                client_managed(&endpoint.endpoint, "/1.0/namespaces", body, &key).await?,
                None,
            )
        }
        DidCommand::Deactivate { endpoint, did, key } => {
            let key = load_key(&key)?;
            let mut body = json!({ "did": did });
            body["options"]["signer"] =
                signer_for(&endpoint.endpoint, &did, &key, "recovery").await?;
            (
                client_managed(&endpoint.endpoint, "/1.0/deactivate", body, &key).await?,
                None,
            )
        }
    };
    let mut out = answer.clone();
    if let Some(key) = generated {
        out["generatedKey"] = json!({ "privateKey": key.to_encoded(), "publicKeyHex": key.public_key().to_encoded() });
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    finished(&answer)
}

/// Ok when the registrar's answer is `finished`; otherwise an error naming its state and the
/// reason it gave (the answer itself is printed on stdout).
fn finished(answer: &Value) -> anyhow::Result<()> {
    let state = &answer["didState"];
    match (state["state"].as_str(), state["reason"].as_str()) {
        (Some("finished"), _) => Ok(()),
        (Some(other), Some(reason)) => bail!("the registrar answered {other}: {reason}"),
        (Some(other), None) => bail!("the registrar answered {other}"),
        (None, _) => bail!("the registrar's answer has no didState.state: {answer}"),
    }
}

async fn namespace_command(cmd: NamespaceCommand) -> anyhow::Result<()> {
    let (signer, operation) = match cmd {
        NamespaceCommand::Delegate {
            signer,
            kind,
            namespace,
            owner,
            chain,
            endpoints,
        } => (
            signer,
            json!({ "type": "delegate", "kind": kind, "namespace": namespace, "owner": owner,
                    "chain": chain, "endpoints": endpoints }),
        ),
        NamespaceCommand::Bind {
            signer,
            kind,
            identifier,
            did,
        } => (
            signer,
            json!({ "type": "bind", "kind": kind, "identifier": identifier, "did": did }),
        ),
        NamespaceCommand::Unbind {
            signer,
            kind,
            identifier,
        } => (
            signer,
            json!({ "type": "unbind", "kind": kind, "identifier": identifier }),
        ),
    };
    let mut operation = operation;
    if let Some(map) = operation.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    let key = load_key(&signer.key)?;
    let kid = match signer.signer {
        Some(kid) => kid,
        None => format!("{}#key-1", Bid::derive(&key.public_key(), None)?),
    };
    let body = json!({
        "operation": operation,
        "options": { "signer": kid, "publicKeyHex": key.public_key().to_encoded() },
    });
    let answer = client_managed(&signer.endpoint.endpoint, "/1.0/namespaces", body, &key).await?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    finished(&answer)
}

/// Finds the key id under which the DID's current document lists `key`.
async fn signer_for(
    endpoint: &str,
    did: &str,
    key: &PrivateKey,
    relation: &str,
) -> anyhow::Result<Value> {
    let url = format!("{}/1.0/identifiers/{did}", endpoint.trim_end_matches('/'));
    let result: Value = reqwest::Client::new()
        .get(&url)
        .header("accept", sparkid_resolver::negotiate::DID_RESOLUTION)
        .send()
        .await?
        .json()
        .await?;
    let multibase = key.public_key().to_multibase();
    let methods = result["didDocument"]["verificationMethod"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let id = methods
        .iter()
        .find(|m| m["publicKeyMultibase"] == json!(multibase))
        .and_then(|m| m["id"].as_str())
        .ok_or_else(|| {
            anyhow!("{did} lists no key matching --key (as {relation} key or otherwise)")
        })?;
    Ok(json!(id))
}

/// The did:key DIDs `sparkid conformance` records: the did:key specification's Ed25519,
/// secp256k1 and P-256 examples (the resolver's `/1.0/testIdentifiers` lists them too).
const DID_KEY_EXAMPLES: [&str; 3] = [
    "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
    "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme",
    "did:key:zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169",
];

/// A daemon of `sparkid conformance`'s own: dev mode on a temporary data directory, killed and
/// removed when dropped.
struct OwnDaemon {
    child: std::process::Child,
    base: String,
    data: PathBuf,
}

impl OwnDaemon {
    fn start(ac: &AcCode) -> anyhow::Result<OwnDaemon> {
        let exe = std::env::current_exe().context("finding the sparkid binary")?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let data = std::env::temp_dir().join(format!(
            "sparkid-conformance-{}-{nanos}",
            std::process::id()
        ));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .context("finding a free port")?
            .port();
        let mut command = std::process::Command::new(&exe);
        command
            .arg("serve")
            .arg("--data")
            .arg(&data)
            .args(["--http", &format!("127.0.0.1:{port}")])
            .args(["--subchain", ac.as_str(), "--dev", "true", "--log", "error"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null());
        // The caller's SPARKID_* settings (a config file, a validator key) are not this
        // daemon's: it is a throwaway dev node.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("SPARKID_") {
                command.env_remove(name);
            }
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {} serve", exe.display()))?;
        Ok(OwnDaemon {
            child,
            base: format!("http://127.0.0.1:{port}"),
            data,
        })
    }
}

impl Drop for OwnDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// The DIDs `sparkid conformance` registers.
struct Subjects {
    main: String,
    services: String,
    subchain: String,
    deactivated: String,
    not_found: String,
}

async fn wait_healthy(base: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match client.get(format!("{base}/healthz")).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            _ if std::time::Instant::now() > deadline => {
                bail!("the daemon at {base} did not answer /healthz within 60 s")
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
}

/// Registers `document` signed by `key` (client-managed); returns its DID.
async fn register(base: &str, document: Value, key: &PrivateKey) -> anyhow::Result<String> {
    let did = document["id"].as_str().unwrap_or_default().to_string();
    let answer = client_managed(
        base,
        "/1.0/create?method=bid",
        json!({ "didDocument": document }),
        key,
    )
    .await?;
    if answer["didState"]["state"] != "finished" {
        bail!("registering {did}: the registrar answered {answer}");
    }
    Ok(did)
}

async fn register_subjects(base: &str, ac: AcCode) -> anyhow::Result<Subjects> {
    let new_document = |key: &PrivateKey, template: Option<Value>| {
        sparkid_registrar::api::new_document(&key.public_key(), template).map_err(|e| anyhow!(e))
    };
    let key = PrivateKey::generate();
    let main = register(base, new_document(&key, None)?, &key).await?;

    // A BID resolver service with the protocol's bare IP address and port beside a URL one:
    // the DID Core rendering must give both as URIs.
    let key = PrivateKey::generate();
    let template = json!({ "service": [
        { "id": "#files", "type": "DIDStorage", "serviceEndpoint": "https://files.example/bid" },
        { "id": "#resolver", "type": "DIDSubResolver", "version": "1.0.0", "serverType": 1,
          "protocol": 3, "serviceEndpoint": "192.168.1.23", "port": 8080 }
    ]});
    let services = register(base, new_document(&key, Some(template))?, &key).await?;

    // The same document shape on the sub-chain: every id moves to did:bid:<ac>:...
    let key = PrivateKey::generate();
    let document = new_document(&key, None)?;
    let main_id = Bid::derive(&key.public_key(), None)?.to_string();
    let sub_id = Bid::derive(&key.public_key(), Some(ac))?.to_string();
    let document: Value = serde_json::from_str(&document.to_string().replace(&main_id, &sub_id))?;
    let subchain = register(base, document, &key).await?;

    let key = PrivateKey::generate();
    let deactivated = register(base, new_document(&key, None)?, &key).await?;
    let body =
        json!({ "did": deactivated, "options": { "signer": format!("{deactivated}#key-1") } });
    let answer = client_managed(base, "/1.0/deactivate", body, &key).await?;
    if answer["didState"]["state"] != "finished" {
        bail!("deactivating {deactivated}: the registrar answered {answer}");
    }

    let not_found = Bid::derive(&PrivateKey::generate().public_key(), None)?.to_string();
    Ok(Subjects {
        main,
        services,
        subchain,
        deactivated,
        not_found,
    })
}

fn conformance_plans(s: &Subjects) -> Vec<sparkid_conformance::fixtures::MethodPlan> {
    use sparkid_conformance::fixtures::{MethodPlan, Outcome};
    let implementation = format!("sparkid {}", env!("CARGO_PKG_VERSION"));
    let implementer = "The sparkid project".to_string();
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let (main, services, sub) = (&s.main, &s.services, &s.subchain);
    let service = format!("{services}?service=files");
    let relative_ref = format!("{services}?service=files&relativeRef=%2Fdocs%2Fa.pdf");
    let version_id = format!("{main}?versionId=1");
    let version_time = format!("{main}?versionTime={now}");
    let bid = MethodPlan {
        method: "did:bid".into(),
        implementation: implementation.clone(),
        implementer: implementer.clone(),
        dids: vec![main.clone(), sub.clone(), services.clone()],
        deactivated: vec![s.deactivated.clone()],
        not_found: vec![s.not_found.clone()],
        invalid: vec!["did:bid:ef!invalid".into(), "did:BID:efinvalid".into()],
        did_urls: vec![
            (main.clone(), Outcome::Default),
            (format!("{main}#key-1"), Outcome::Default),
            (version_id.clone(), Outcome::Default),
            (version_time.clone(), Outcome::Default),
            (format!("{main}#missing"), Outcome::NotFound),
            (format!("{main}#a#b"), Outcome::InvalidDidUrl),
            (sub.clone(), Outcome::Default),
            (format!("{sub}#key-1"), Outcome::Default),
            (services.clone(), Outcome::Default),
            (format!("{services}#resolver"), Outcome::Default),
            (service.clone(), Outcome::Default),
            (relative_ref.clone(), Outcome::Default),
            (format!("{services}?service=missing"), Outcome::NotFound),
            (s.not_found.clone(), Outcome::NotFound),
        ],
        did_parameters: vec![
            ("service".into(), service),
            ("relativeRef".into(), relative_ref),
            ("versionId".into(), version_id),
            ("versionTime".into(), version_time),
        ],
    };
    let first = DID_KEY_EXAMPLES[0];
    let fragment = first.rsplit(':').next().unwrap_or_default();
    let key = MethodPlan {
        method: "did:key".into(),
        implementation,
        implementer,
        dids: DID_KEY_EXAMPLES.iter().map(|d| d.to_string()).collect(),
        invalid: vec!["did:key:z6Mk!invalid".into()],
        did_urls: vec![
            (first.into(), Outcome::Default),
            (format!("{first}#{fragment}"), Outcome::Default),
            (format!("{first}#missing"), Outcome::NotFound),
            (format!("{first}#a#b"), Outcome::InvalidDidUrl),
        ],
        ..MethodPlan::default()
    };
    vec![bid, key]
}

fn conformance(args: ConformanceArgs) -> anyhow::Result<()> {
    let ac: AcCode = args
        .ac
        .parse()
        .map_err(|e| anyhow!("--ac {:?}: {e}", args.ac))?;
    let daemon = match &args.endpoint {
        Some(_) => None,
        None => Some(OwnDaemon::start(&ac)?),
    };
    let base = match (&args.endpoint, &daemon) {
        (Some(url), _) => url.as_str().trim_end_matches('/').to_string(),
        (None, Some(d)) => d.base.clone(),
        (None, None) => bail!("no daemon to record"),
    };
    let subjects = runtime()?.block_on(async {
        wait_healthy(&base).await?;
        register_subjects(&base, ac).await
    })?;
    // Recording uses a blocking client, so it runs outside the runtime above.
    let plans = conformance_plans(&subjects);
    let total = plans.iter().map(|p| p.exchanges() as u64).sum();
    let progress = std::sync::Arc::new(crate::progress::Progress::new(
        "conformance",
        "exchanges",
        total,
    ));
    let shown = progress.clone();
    let recording = sparkid_conformance::fixtures::record_with_progress(
        &base,
        &plans,
        Box::new(move |made| shown.set(made as u64)),
    );
    progress.finish();
    let recording = recording?;
    drop(daemon);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    for (name, value) in &recording.files {
        let path = args.out.join(name);
        let text = serde_json::to_string_pretty(value)? + "\n";
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        let count = |member: &str| value[member].as_array().map_or(0, Vec::len);
        match value.get("exchanges") {
            Some(_) => println!("{} ({} exchanges)", path.display(), count("exchanges")),
            None if count("dids") == 0 => {
                println!("{} ({} executions)", path.display(), count("executions"))
            }
            None => println!(
                "{} ({} DIDs, {} executions)",
                path.display(),
                count("dids"),
                count("executions")
            ),
        }
    }
    if !recording.violations.is_empty() {
        for v in &recording.violations {
            eprintln!("violation: {v}");
        }
        bail!(
            "{} rule(s) broken: the fixtures in {} are not fit for the did-test-suite",
            recording.violations.len(),
            args.out.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::serve_config;

    #[test]
    fn did_web_trusts_the_outbound_ca_file_unless_given_its_own() {
        let config = serve_config(["--ca-file", "/etc/sparkid/ca.pem"]).unwrap();
        assert_eq!(
            config.did_web.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/sparkid/ca.pem"))
        );
        let config = serve_config([
            "--ca-file",
            "/etc/sparkid/ca.pem",
            "--did-web-ca-file",
            "/etc/sparkid/web-ca.pem",
        ])
        .unwrap();
        assert_eq!(
            config.did_web.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/sparkid/web-ca.pem"))
        );
        assert_eq!(
            config.tls.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/sparkid/ca.pem"))
        );
    }
}
