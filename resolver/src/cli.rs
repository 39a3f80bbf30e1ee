//! The `sparkid` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use sparkid_bid::{AcCode, Bid, PrivateKey, PublicKey};

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
    Serve(ServeArgs),
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
    /// Check a saved resolution result offline, with only the validators' public keys: the
    /// commit certificate, the Merkle path, the state key, and that the document and its
    /// metadata are what the proven record renders. Exits non-zero saying what failed.
    Verify(VerifyArgs),
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
        /// vaa, handle, dns or ac.
        #[arg(long)]
        kind: String,
        /// The namespace: a VAA company prefix, a Handle prefix, a DNS zone or an AC code.
        #[arg(long)]
        namespace: String,
        /// The owner DID.
        #[arg(long)]
        owner: String,
        /// VAA prefixes: the chain holding the items (main or an AC code).
        #[arg(long)]
        chain: Option<String>,
        /// AC codes: a resolver endpoint of the sub-chain (repeatable).
        #[arg(long = "endpoint-url")]
        endpoints: Vec<String>,
    },
    /// Bind an identifier under an owned namespace to a DID (signed by the namespace owner).
    Bind {
        #[command(flatten)]
        signer: NamespaceSigner,
        /// vaa, handle or dns.
        #[arg(long)]
        kind: String,
        /// The identifier.
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
        /// vaa, handle or dns.
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
    /// validator configuration is given.
    #[arg(long, env = "SPARKID_DEV")]
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
    #[command(flatten)]
    cache: crate::config::CacheArgs,
    #[command(flatten)]
    handle: crate::config::HandleArgs,
    #[command(flatten)]
    dns: crate::config::DnsArgs,
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
}

#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// Re-check the whole chain: links, certificates, signatures, roots, re-executed state.
    Verify {
        /// Data directory.
        #[arg(long, default_value = DEFAULT_DATA)]
        data: PathBuf,
    },
}

/// Runs the command line.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
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
        Command::Verify(args) => verify(args),
        Command::Ledger(LedgerCommand::Verify { data }) => {
            let ledger = sparkid_ledger::Ledger::open(&data)?;
            let machine = sparkid_registrar::BidStateMachine::for_genesis(ledger.genesis());
            let report = sparkid_ledger::verify_chain(&ledger, &machine)?;
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
    use crate::verifiable::{verify_text, TrustAnchor};
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
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let genesis = args.genesis.or(file.genesis);
    let validator_key = args.validator_key.or(file.validator_key);
    let config = ServeConfig {
        data: args
            .data
            .or(file.data)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA)),
        http: match args.http.or(file.http) {
            Some(a) => a,
            None => DEFAULT_HTTP.parse()?,
        },
        dev: args
            .dev
            .or(file.dev)
            .unwrap_or(genesis.is_none() && validator_key.is_none()),
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
        cache: args
            .cache
            .resolve(file.cache_bytes, file.redis_url, file.cache_ttl_max),
        handle: args.handle.resolve(file.handle, file.public_url),
        dns: args
            .dns
            .resolve(file.dns, file.service_zone, file.dns_nameservers),
        drivers: file.drivers,
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&config.log).context("log filter")?)
        .with_writer(std::io::stderr)
        .init();
    runtime()?.block_on(crate::serve(config))
}

fn load_key(text: &str) -> anyhow::Result<PrivateKey> {
    let value = if std::path::Path::new(text).exists() {
        std::fs::read_to_string(text)?
    } else {
        text.to_string()
    };
    PrivateKey::from_encoded(value.trim()).map_err(|e| anyhow!("--key: {e}"))
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> anyhow::Result<Value> {
    let response = client
        .post(url)
        .json(body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let text = response.text().await?;
    serde_json::from_str(&text).with_context(|| format!("answer of {url}: {text}"))
}

/// Runs a client-managed registrar exchange: send the request, sign what the registrar asks
/// for, send the signature, return the final answer.
pub async fn client_managed(
    endpoint: &str,
    path: &str,
    mut body: Value,
    key: &PrivateKey,
) -> anyhow::Result<Value> {
    let client = reqwest::Client::new();
    let url = format!("{}{}", endpoint.trim_end_matches('/'), path);
    body["options"]["clientSecretMode"] = json!(true);
    let first = post(&client, &url, &body).await?;
    if first["didState"]["state"] != "action" {
        return Ok(first);
    }
    let request = &first["didState"]["signingRequest"]["signingRequest0"];
    let payload = request["serializedPayload"]
        .as_str()
        .context("signingRequest0.serializedPayload")?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(payload)?;
    let signature = key.sign(&bytes);
    let second = json!({
        "jobId": first["jobId"],
        "secret": { "signingResponse": { "signingRequest0": {
            "signature": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature.0)
        }}}
    });
    post(&client, &url, &second).await
}

async fn did_command(cmd: DidCommand) -> anyhow::Result<()> {
    let (answer, generated) = match cmd {
        DidCommand::Create {
            endpoint,
            key,
            document,
        } => {
            let (key, generated) = match key {
                Some(k) => (load_key(&k)?, false),
                None => (PrivateKey::generate(), true),
            };
            let template = match document {
                Some(path) => Some(serde_json::from_str(&std::fs::read_to_string(&path)?)?),
                None => None,
            };
            let doc = sparkid_registrar::api::new_document(&key.public_key(), template)
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
    if answer["didState"]["state"] != "finished" {
        bail!("the registrar answered {}", answer["didState"]["state"]);
    }
    Ok(())
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
    if answer["didState"]["state"] != "finished" {
        bail!("the registrar answered {}", answer["didState"]["state"]);
    }
    Ok(())
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
        .header("accept", crate::http::DID_RESOLUTION)
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
