//! Configuration: one TOML file, overridden by environment variables, overridden by flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
pub use sparkid_resolver::cache::CacheConfig;
pub use sparkid_resolver::drivers::DriverConfig;

pub use crate::doors::rrl::RrlConfig;
use sparkid_registrar::namespace::{HandleEndpoint, HandleTransport};
use thiserror::Error;

/// The default data directory.
pub const DEFAULT_DATA: &str = "./sparkid-data";
/// The default HTTP address.
pub const DEFAULT_HTTP: &str = "127.0.0.1:8080";

/// The configuration file's shape. Every member is optional.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Data directory.
    pub data: Option<PathBuf>,
    /// HTTP listen address.
    pub http: Option<SocketAddr>,
    /// Dev mode: a single local validator whose key lives in the data directory.
    pub dev: Option<bool>,
    /// A genesis file (JSON), for a ledger that is not a dev ledger.
    pub genesis: Option<PathBuf>,
    /// This node's validator key file (`priSPK...`).
    pub validator_key: Option<PathBuf>,
    /// Log filter, as `RUST_LOG` takes it.
    pub log: Option<String>,
    /// AC codes of the sub-chains this daemon hosts (each in `<data>/subchains/<ac>`).
    pub subchains: Option<Vec<String>>,
    /// Anchor the sub-chains this daemon holds on the main chain whose registrar is at this
    /// base URL (`spec/did-bid.md` §6).
    pub anchor_to: Option<String>,
    /// The key that signs anchors: the AC code owner's (`priSPK...` file) [dev: the validator
    /// key].
    pub anchor_key: Option<PathBuf>,
    /// Seconds between anchors [default: 60].
    pub anchor_interval: Option<u64>,
    /// L1 (in-process) cache size in bytes; 0 turns L1 off.
    pub cache_bytes: Option<u64>,
    /// L2 cache: a Redis URL (`redis://host:port/db`), shared by replicas.
    pub redis_url: Option<String>,
    /// The longest a cache entry lives, in seconds, whatever the document's `extension.ttl`.
    pub cache_ttl_max: Option<u64>,
    /// The shared secret keying the HMAC of every Redis value and invalidation message (at
    /// least 16 bytes, the same on every replica of one Redis). Required with `redis_url`
    /// outside dev mode; in dev mode a random one is made for the process.
    pub redis_secret: Option<String>,
    /// The ledger database's page cache, in MiB (most of the daemon's memory with a large
    /// ledger) [default: 256].
    pub ledger_cache_mb: Option<u64>,
    /// Keep each DID's answer record, rendered at commit, for one-lookup cold reads
    /// [default: true]. A validator that serves no reads can turn it off: each block then
    /// costs no rendering.
    pub answer_records: Option<bool>,
    /// Handle native protocol (UDP and TCP) listen address, or `off`.
    pub handle: Option<Listen>,
    /// A second Handle listener (UDP and TCP), on the IDIS SDK's port 3641 for instance, or
    /// `off` (the default).
    pub handle_idis: Option<Listen>,
    /// This node's public Handle interfaces, `tcp://<IP>[:port]`, `udp://…` (TCP first), named
    /// in the `HS_SITE` of the prefixes it serves and in its `GET_SITE_INFO` answer \[default:
    /// the Handle listeners' TCP and UDP addresses, unless they are wildcards\].
    pub handle_site_addresses: Option<Vec<String>>,
    /// This daemon's public base URL, for the URLs the bridges hand out.
    pub public_url: Option<String>,
    /// DNS door (UDP and TCP) listen address, or `off` (the default).
    pub dns: Option<Listen>,
    /// The DNS service zone, under which DIDs, VAA codes and Handles have names.
    pub service_zone: Option<String>,
    /// The host names of the DNS name servers (NS records) \[default: `ns1.<service_zone>`\].
    pub dns_nameservers: Option<Vec<String>>,
    /// The ORS zone, where OIDs have NAPTR records under their reversed arcs (ITU-T X.672,
    /// `spec/oid.md`) \[default: `oid.<service_zone>`\]. A zone outside the service zone is
    /// served as a zone of its own (SOA and NS at its apex).
    pub ors_zone: Option<String>,
    /// Universal Resolver drivers for other DID methods (`[[driver]]` tables).
    #[serde(default, rename = "driver")]
    pub drivers: Vec<DriverConfig>,
    /// Follower mode: the base URLs of peers to sync certified blocks from, tried in order.
    pub follow: Option<Vec<String>>,
    /// Where a follower forwards writes [default: the `follow` peers].
    pub validator_url: Option<Vec<String>>,
    /// A validator of several: the other validators' base URLs (`spec/consensus.md`).
    pub peers: Option<Vec<String>>,
    /// Bytes of driver answers kept for reuse, all drivers together; 0 keeps none
    /// [default: 67108864].
    pub driver_cache_bytes: Option<u64>,
    /// Outbound requests one incoming request may cause through sub-chain recursion
    /// [default: 4].
    pub subchain_fanout: Option<u32>,
    /// Seconds a sub-chain resolver's negative answer (not found, failed, refused) is reused;
    /// 0 never [default: 5].
    pub subchain_negative_ttl: Option<u64>,
    /// Whether sub-chain resolver endpoints on loopback, link-local and private addresses are
    /// asked [default: in dev mode only].
    pub subchain_allow_private_targets: Option<bool>,
    /// UDP response-rate limiting (DNS and Handle doors, each its own table): answers per
    /// second per source prefix (IPv4 /24, IPv6 /56); 0 turns it off [default: 200].
    pub udp_rrl_rate: Option<u32>,
    /// Every n-th rate-limited UDP answer goes out truncated (the client retries over TCP),
    /// the others are dropped; 0 drops them all [default: 2].
    pub udp_rrl_slip: Option<u32>,
    /// Source prefixes the rate limiter tracks at once, per door (a fixed table, about 32 bytes
    /// a slot) [default: 65536].
    pub udp_rrl_table_size: Option<usize>,
    /// The HTTP server's limits (`[limits]`: timeouts, connection caps, rate limits); see
    /// [`crate::edge`].
    pub limits: Option<crate::edge::LimitsFile>,
    /// `[registrar]`: pending-job limits and the submitters allow-list.
    pub registrar: Option<RegistrarFile>,
    /// PEM certificates trusted for did:web hosts besides the public roots (a private CA).
    pub did_web_ca_file: Option<PathBuf>,
    /// Whether did:web hosts on loopback, link-local and private addresses are asked
    /// [default: in dev mode only].
    pub did_web_allow_private_targets: Option<bool>,
    /// Seconds a fetched did:web document is reused; 0 fetches every time [default: 60].
    pub did_web_cache_ttl: Option<u64>,
    /// The HTTP door answers TLS with this certificate chain (PEM; needs `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// The private key of `tls_cert` (PEM).
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM) every outbound HTTPS client trusts besides the built-in web roots:
    /// drivers, sub-chain resolvers, followed peers, other validators, anchoring targets.
    pub ca_file: Option<PathBuf>,
    /// Follower mode: blocks asked for in one page, 1 to 1000 [default: 1000].
    pub sync_page_blocks: Option<usize>,
}

/// Why the configuration cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

impl FileConfig {
    /// Reads a TOML file.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })
    }
}

/// The settings `serve` runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    /// Data directory.
    pub data: PathBuf,
    /// HTTP listen address.
    pub http: SocketAddr,
    /// Dev mode.
    pub dev: bool,
    /// Genesis file for a new non-dev ledger.
    pub genesis: Option<PathBuf>,
    /// Validator key file.
    pub validator_key: Option<PathBuf>,
    /// Log filter.
    pub log: String,
    /// The sub-chains hosted beside the main chain.
    pub subchains: Vec<sparkid_bid::AcCode>,
    /// Anchoring of the sub-chains held here on the main chain.
    pub anchor: AnchorConfig,
    /// The read cache.
    pub cache: CacheConfig,
    /// Bounds on the work done asking drivers and sub-chain resolvers.
    pub upstream: UpstreamConfig,
    /// How the ledgers (main chain and hosted sub-chains) are opened: their page cache size.
    pub ledger: sparkid_ledger::LedgerOptions,
    /// Whether the main chain's ledger keeps DIDs' answer records (`answer_records`).
    pub answer_records: bool,
    /// The Handle door and the bridges' public URL.
    pub handle: HandleConfig,
    /// The DNS door.
    pub dns: DnsConfig,
    /// Universal Resolver drivers for the DID methods not answered in process.
    pub drivers: Vec<DriverConfig>,
    /// Follower mode when not empty: peers to sync blocks from (see [`sparkid_node::follow`]).
    pub follow: Vec<String>,
    /// Where a follower forwards writes; empty: the `follow` peers.
    pub validator_urls: Vec<String>,
    /// A validator of several: the other validators' base URLs, in any order (each says which
    /// validator it is); see [`sparkid_node::bft`].
    pub peers: Vec<String>,
    /// Response-rate limiting of the UDP doors (DNS and Handle).
    pub udp_rrl: RrlConfig,
    /// The HTTP server's limits ([`crate::edge`]).
    pub limits: crate::edge::LimitsConfig,
    /// What the registrars admit: pending-job limits, submitters.
    pub registrar: sparkid_registrar::RegistrarPolicy,
    /// How did:web documents are fetched.
    pub did_web: DidWebConfig,
    /// TLS on the HTTP door, and what outbound clients trust.
    pub tls: TlsConfig,
    /// Follower mode: blocks asked for in one page (0: the most, 1000).
    pub sync_page_blocks: usize,
}

impl ServeConfig {
    /// What the node is opened with: the main chain, its validator key, hosted sub-chains.
    pub fn node_options(&self) -> sparkid_node::node::NodeOptions {
        sparkid_node::node::NodeOptions {
            data: self.data.clone(),
            dev: self.dev,
            genesis: self.genesis.clone(),
            validator_key: self.validator_key.clone(),
            subchains: self.subchains.clone(),
            peers: self.peers.clone(),
            ledger: self.ledger,
            registrar: self.registrar.clone(),
            // The daemon's trust roots: set by `serve` from [`crate::outbound`].
            client: Default::default(),
        }
    }

    /// What a follower (`--follow`) is opened and started with.
    pub fn follow_options(&self) -> sparkid_node::follow::FollowOptions {
        sparkid_node::follow::FollowOptions {
            data: self.data.clone(),
            follow: self.follow.clone(),
            validator_urls: self.validator_urls.clone(),
            genesis: self.genesis.clone(),
            ledger: self.ledger,
            dev: self.dev,
            validator_key: self.validator_key.clone(),
            subchains: self.subchains.clone(),
            // The daemon's trust roots: set by `serve` from [`crate::outbound`].
            client: Default::default(),
            page_blocks: self.sync_page_blocks,
        }
    }
}

/// TLS settings: the HTTP door's certificate and key, and the outbound clients' extra CA.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsConfig {
    /// The HTTP door answers TLS with these (none: plain HTTP).
    pub inbound: Option<crate::edge::TlsFiles>,
    /// CA certificates (PEM) trusted by every outbound client besides the web roots.
    pub ca_file: Option<PathBuf>,
}

/// The TLS flags of `sparkid serve` (each also an environment variable).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Answer TLS on the HTTP door with this certificate chain (PEM; needs --tls-key).
    #[arg(long, env = "SPARKID_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "SPARKID_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that outbound HTTPS clients trust besides the built-in web roots
    /// (drivers, sub-chain resolvers, followed peers, validators, anchoring targets).
    #[arg(long, env = "SPARKID_CA_FILE")]
    pub ca_file: Option<PathBuf>,
}

/// Why TLS settings cannot be used.
#[derive(Debug, Error)]
pub enum TlsConfigError {
    /// Only one of the certificate and the key was given.
    #[error("TLS on the HTTP door needs both --tls-cert and --tls-key (tls_cert, tls_key)")]
    Incomplete,
}

impl TlsArgs {
    /// The settings: flags (and environment) over the file's `tls_cert`, `tls_key`, `ca_file`.
    pub fn resolve(
        self,
        tls_cert: Option<PathBuf>,
        tls_key: Option<PathBuf>,
        ca_file: Option<PathBuf>,
    ) -> Result<TlsConfig, TlsConfigError> {
        let inbound = match (self.tls_cert.or(tls_cert), self.tls_key.or(tls_key)) {
            (Some(cert), Some(key)) => Some(crate::edge::TlsFiles { cert, key }),
            (None, None) => None,
            _ => return Err(TlsConfigError::Incomplete),
        };
        Ok(TlsConfig {
            inbound,
            ca_file: self.ca_file.or(ca_file),
        })
    }
}

/// The default page cache of a ledger's database, in MiB: with the default L1 (128 MiB) it keeps
/// a daemon serving a 1,000,000-DID ledger under 1 GiB resident (redb's own default is 1 GiB).
pub const DEFAULT_LEDGER_CACHE_MB: u64 = 256;

/// The ledger flags of `sparkid serve` (each also an environment variable).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LedgerArgs {
    /// The ledger database's page cache, in MiB [default: 256].
    #[arg(long, env = "SPARKID_LEDGER_CACHE_MB")]
    pub ledger_cache_mb: Option<u64>,
    /// Keep DIDs' answer records, rendered at commit, for one-lookup cold reads
    /// [default: true].
    #[arg(long, env = "SPARKID_ANSWER_RECORDS")]
    pub answer_records: Option<bool>,
}

impl LedgerArgs {
    /// The options: the flag (and environment) over the file's `ledger_cache_mb` over the
    /// default. At least 1 MiB.
    pub fn resolve(self, ledger_cache_mb: Option<u64>) -> sparkid_ledger::LedgerOptions {
        let mb = self
            .ledger_cache_mb
            .or(ledger_cache_mb)
            .unwrap_or(DEFAULT_LEDGER_CACHE_MB)
            .max(1);
        sparkid_ledger::LedgerOptions {
            cache_size: Some(usize::try_from(mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)),
        }
    }
}

/// The default number of seconds between two anchors of a sub-chain.
pub const DEFAULT_ANCHOR_INTERVAL: u64 = 60;

/// Where and how the sub-chains this daemon holds are anchored on the main chain.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AnchorConfig {
    /// The main chain's registrar (base URL); none: no anchoring.
    pub to: Option<String>,
    /// The AC code owner's key file; none: the validator key (dev mode).
    pub key: Option<PathBuf>,
    /// Seconds between anchors.
    pub interval: u64,
}

/// The anchoring flags of `sparkid serve`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AnchorArgs {
    /// Anchor the sub-chains held here on the main chain whose registrar is at this base URL.
    #[arg(long, env = "SPARKID_ANCHOR_TO")]
    pub anchor_to: Option<String>,
    /// The key file that signs anchors (the AC code owner's) [dev: the validator key].
    #[arg(long, env = "SPARKID_ANCHOR_KEY")]
    pub anchor_key: Option<PathBuf>,
    /// Seconds between anchors [default: 60].
    #[arg(long, env = "SPARKID_ANCHOR_INTERVAL")]
    pub anchor_interval: Option<u64>,
}

impl AnchorArgs {
    /// The settings: flags (and environment) over the file's values over the defaults.
    pub fn resolve(
        self,
        to: Option<String>,
        key: Option<PathBuf>,
        interval: Option<u64>,
    ) -> AnchorConfig {
        AnchorConfig {
            to: self.anchor_to.or(to).filter(|u| !u.trim().is_empty()),
            key: self.anchor_key.or(key),
            interval: self
                .anchor_interval
                .or(interval)
                .unwrap_or(DEFAULT_ANCHOR_INTERVAL)
                .max(1),
        }
    }
}

/// The cache flags of `sparkid serve` (each also an environment variable).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CacheArgs {
    /// L1 (in-process) cache size in bytes; 0 turns L1 off [default: 134217728].
    #[arg(long, env = "SPARKID_CACHE_BYTES")]
    pub cache_bytes: Option<u64>,
    /// L2 cache: a Redis URL (redis://127.0.0.1:6379/0), shared by replicas [default: none].
    #[arg(long, env = "SPARKID_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Cap on a cache entry's lifetime, in seconds [default: 3600].
    #[arg(long, env = "SPARKID_CACHE_TTL_MAX")]
    pub cache_ttl_max: Option<u64>,
    /// The shared secret keying the HMAC of Redis values and invalidation messages (at least
    /// 16 bytes, the same on every replica); required with --redis-url outside dev mode.
    #[arg(long, env = "SPARKID_REDIS_SECRET", hide_env_values = true)]
    pub redis_secret: Option<String>,
}

impl CacheArgs {
    /// The settings: flags (and environment) over the file's values over the defaults.
    pub fn resolve(
        self,
        cache_bytes: Option<u64>,
        redis_url: Option<String>,
        cache_ttl_max: Option<u64>,
    ) -> CacheConfig {
        let defaults = CacheConfig::default();
        CacheConfig {
            l1_bytes: self
                .cache_bytes
                .or(cache_bytes)
                .unwrap_or(defaults.l1_bytes),
            redis_url: self
                .redis_url
                .or(redis_url)
                .filter(|url| !url.trim().is_empty()),
            ttl_max: self
                .cache_ttl_max
                .or(cache_ttl_max)
                .unwrap_or(defaults.ttl_max),
            redis_secret: self.redis_secret.filter(|s| !s.is_empty()),
        }
    }
}

/// Bounds on the work the resolver does asking other resolvers (drivers, sub-chains).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// Bytes of driver answers kept for reuse (all drivers); 0: none.
    pub driver_cache_bytes: u64,
    /// Sub-chain recursion's fan-out budget, negative cache and target policy.
    pub subchain: sparkid_resolver::subchain::SubChainLimits,
}

/// The driver and sub-chain flags of `sparkid serve` (each also an environment variable).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct UpstreamArgs {
    /// Bytes of driver answers kept for reuse, all drivers together; 0 keeps none [default:
    /// 67108864].
    #[arg(long, env = "SPARKID_DRIVER_CACHE_BYTES")]
    pub driver_cache_bytes: Option<u64>,
    /// Outbound requests one incoming request may cause through sub-chain recursion [default:
    /// 4].
    #[arg(long, env = "SPARKID_SUBCHAIN_FANOUT")]
    pub subchain_fanout: Option<u32>,
    /// Seconds a sub-chain resolver's negative answer is reused; 0 never [default: 5].
    #[arg(long, env = "SPARKID_SUBCHAIN_NEGATIVE_TTL")]
    pub subchain_negative_ttl: Option<u64>,
    /// Ask sub-chain resolver endpoints on loopback, link-local and private addresses
    /// [default: in dev mode only].
    #[arg(long, env = "SPARKID_SUBCHAIN_ALLOW_PRIVATE_TARGETS")]
    pub subchain_allow_private_targets: Option<bool>,
}

impl UpstreamArgs {
    /// The settings: flags (and environment) over the file's values over the defaults, which
    /// for private targets depend on `dev`.
    pub fn resolve(
        self,
        driver_cache_bytes: Option<u64>,
        subchain_fanout: Option<u32>,
        subchain_negative_ttl: Option<u64>,
        subchain_allow_private_targets: Option<bool>,
        dev: bool,
    ) -> UpstreamConfig {
        use sparkid_resolver::subchain::{SubChainLimits, DEFAULT_FANOUT};
        UpstreamConfig {
            driver_cache_bytes: self
                .driver_cache_bytes
                .or(driver_cache_bytes)
                .unwrap_or(sparkid_resolver::drivers::DEFAULT_DRIVER_CACHE_BYTES),
            subchain: SubChainLimits {
                fanout: self
                    .subchain_fanout
                    .or(subchain_fanout)
                    .unwrap_or(DEFAULT_FANOUT),
                negative_ttl: std::time::Duration::from_secs(
                    self.subchain_negative_ttl
                        .or(subchain_negative_ttl)
                        .unwrap_or(sparkid_resolver::subchain::DEFAULT_NEGATIVE_TTL_SECS),
                ),
                allow_private_targets: self
                    .subchain_allow_private_targets
                    .or(subchain_allow_private_targets)
                    .unwrap_or(dev),
            },
        }
    }
}

/// The default port of the Handle native protocol (UDP and TCP).
pub const DEFAULT_HANDLE_PORT: u16 = 2641;

/// Where a door listens: an address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// The door is closed.
    Off,
    /// The door listens here.
    At(SocketAddr),
}

impl std::str::FromStr for Listen {
    type Err = String;
    fn from_str(s: &str) -> Result<Listen, String> {
        match s.trim() {
            "off" | "none" | "" => Ok(Listen::Off),
            addr => addr
                .parse()
                .map(Listen::At)
                .map_err(|e| format!("{addr:?}: {e} (an address such as 127.0.0.1:2641, or off)")),
        }
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Listen, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The Handle door's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HandleConfig {
    /// Where it listens; none: the HTTP address's IP, port 2641, and a failure to bind it is
    /// only a warning (an explicit address that cannot be bound stops the daemon).
    pub listen: Option<Listen>,
    /// The public base URL; none: `http://<http address>`.
    pub public_url: Option<String>,
    /// The IDIS listener (a second Handle listener, e.g. on port 3641); none: off.
    pub idis: Option<SocketAddr>,
    /// This node's public Handle interfaces, for its `HS_SITE`; empty: the listeners' bound
    /// addresses ([`HandleConfig::site_endpoints`]).
    pub site_addresses: Vec<HandleEndpoint>,
}

impl HandleConfig {
    /// The listen address, given the HTTP address; none when off.
    pub fn listen_addr(&self, http: SocketAddr) -> Option<SocketAddr> {
        match self.listen {
            Some(Listen::Off) => None,
            Some(Listen::At(addr)) => Some(addr),
            None => Some(SocketAddr::new(http.ip(), DEFAULT_HANDLE_PORT)),
        }
    }

    /// The public base URL, given the HTTP address.
    pub fn base_url(&self, http: SocketAddr) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{http}"))
    }

    /// The interfaces this node's `HS_SITE` names: the configured ones, else the TCP and UDP
    /// addresses the Handle listeners are bound to (`bound`, in order), leaving out wildcard
    /// addresses (`0.0.0.0`, `::`), which no client can connect to. The second list is those
    /// left out, for a warning.
    pub fn site_endpoints(&self, bound: &[SocketAddr]) -> (Vec<HandleEndpoint>, Vec<SocketAddr>) {
        if !self.site_addresses.is_empty() {
            return (self.site_addresses.clone(), Vec::new());
        }
        let (usable, wildcards): (Vec<SocketAddr>, Vec<SocketAddr>) =
            bound.iter().partition(|a| !a.ip().is_unspecified());
        let endpoints = [HandleTransport::Tcp, HandleTransport::Udp]
            .into_iter()
            .flat_map(|transport| {
                usable
                    .iter()
                    .map(move |&address| HandleEndpoint { transport, address })
            })
            .collect();
        (endpoints, wildcards)
    }
}

/// The Handle flags of `sparkid serve` (each also an environment variable).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct HandleArgs {
    /// Handle native protocol (UDP and TCP) listen address, or off [default: the HTTP IP, port
    /// 2641].
    #[arg(long, env = "SPARKID_HANDLE")]
    pub handle: Option<Listen>,
    /// This daemon's public base URL, for the URLs bridges hand out \[default: `http://<http>`\].
    #[arg(long, env = "SPARKID_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// A second Handle listener (UDP and TCP) for IDIS clients, whose SDK asks port 3641, e.g.
    /// 0.0.0.0:3641; or off [default: off].
    #[arg(long, env = "SPARKID_HANDLE_IDIS")]
    pub handle_idis: Option<Listen>,
    /// A public Handle interface of this node for its HS_SITE, `tcp://<IP>[:port]` or `udp://…`
    /// (repeatable or comma-separated; TCP first) \[default: the Handle listeners' addresses\].
    #[arg(
        long = "handle-site-address",
        env = "SPARKID_HANDLE_SITE_ADDRESSES",
        value_delimiter = ','
    )]
    pub handle_site_addresses: Vec<HandleEndpoint>,
}

impl HandleArgs {
    /// The settings: flags (and environment) over the file's values.
    pub fn resolve(self, handle: Option<Listen>, public_url: Option<String>) -> HandleConfig {
        HandleConfig {
            listen: self.handle.or(handle),
            public_url: self
                .public_url
                .or(public_url)
                .filter(|u| !u.trim().is_empty()),
            idis: None,
            site_addresses: Vec::new(),
        }
    }

    /// [`HandleArgs::resolve`], with the IDIS listener and the site addresses: flags (and
    /// environment) over the file's `handle_idis` and `handle_site_addresses`. Fails on a site
    /// address that is not a Handle interface.
    pub fn resolve_with_site(
        self,
        handle: Option<Listen>,
        public_url: Option<String>,
        handle_idis: Option<Listen>,
        handle_site_addresses: Option<Vec<String>>,
    ) -> Result<HandleConfig, String> {
        let idis = match self.handle_idis.or(handle_idis) {
            Some(Listen::At(addr)) => Some(addr),
            Some(Listen::Off) | None => None,
        };
        let site_addresses = if self.handle_site_addresses.is_empty() {
            handle_site_addresses
                .iter()
                .flatten()
                .map(|a| {
                    a.parse::<HandleEndpoint>()
                        .map_err(|e| format!("handle_site_addresses: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?
        } else {
            self.handle_site_addresses.clone()
        };
        Ok(HandleConfig {
            idis,
            site_addresses,
            ..self.resolve(handle, public_url)
        })
    }
}

/// The default DNS service zone.
pub const DEFAULT_SERVICE_ZONE: &str = "sparkid.test";

/// The DNS door's settings (`spec/dns.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// UDP and TCP listen address; none (the default) leaves the DNS door off.
    pub listen: Option<SocketAddr>,
    /// The service zone.
    pub service_zone: String,
    /// Name server host names for NS and SOA; empty means `ns1.<service_zone>`.
    pub nameservers: Vec<String>,
    /// The ORS zone (`spec/oid.md`); none means `oid.<service_zone>`.
    pub ors_zone: Option<String>,
}

impl Default for DnsConfig {
    fn default() -> DnsConfig {
        DnsConfig {
            listen: None,
            service_zone: DEFAULT_SERVICE_ZONE.into(),
            nameservers: Vec::new(),
            ors_zone: None,
        }
    }
}

/// The DNS flags of `sparkid serve` (each also an environment variable).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DnsArgs {
    /// DNS door (UDP and TCP) listen address, e.g. 127.0.0.1:5300, or off [default: off].
    #[arg(long, env = "SPARKID_DNS")]
    pub dns: Option<Listen>,
    /// The DNS service zone [default: sparkid.test].
    #[arg(long, env = "SPARKID_SERVICE_ZONE")]
    pub service_zone: Option<String>,
    /// A name server host name for NS records (repeatable) \[default: `ns1.<service-zone>`\].
    #[arg(long = "dns-nameserver")]
    pub dns_nameservers: Vec<String>,
    /// The ORS zone, where OIDs have NAPTR records (ITU-T X.672) \[default: `oid.<service-zone>`\].
    #[arg(long, env = "SPARKID_ORS_ZONE")]
    pub ors_zone: Option<String>,
}

impl DnsArgs {
    /// The settings: flags (and environment) over the file's values over the defaults.
    pub fn resolve(
        self,
        dns: Option<Listen>,
        service_zone: Option<String>,
        dns_nameservers: Option<Vec<String>>,
        ors_zone: Option<String>,
    ) -> DnsConfig {
        DnsConfig {
            listen: match self.dns.or(dns) {
                Some(Listen::At(addr)) => Some(addr),
                Some(Listen::Off) | None => None,
            },
            service_zone: self
                .service_zone
                .or(service_zone)
                .unwrap_or_else(|| DEFAULT_SERVICE_ZONE.into()),
            nameservers: if self.dns_nameservers.is_empty() {
                dns_nameservers.unwrap_or_default()
            } else {
                self.dns_nameservers
            },
            ors_zone: self.ors_zone.or(ors_zone),
        }
    }
}

/// The UDP response-rate limiting flags of `sparkid serve` (each also an environment
/// variable); see [`crate::doors::rrl`].
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RrlArgs {
    /// UDP answers per second per source prefix (IPv4 /24, IPv6 /56) on the DNS and Handle
    /// doors; 0 turns rate limiting off [default: 200].
    #[arg(long, env = "SPARKID_UDP_RRL_RATE")]
    pub udp_rrl_rate: Option<u32>,
    /// Every n-th rate-limited UDP answer is sent truncated (TC) instead of dropped; 0 drops
    /// them all [default: 2].
    #[arg(long, env = "SPARKID_UDP_RRL_SLIP")]
    pub udp_rrl_slip: Option<u32>,
    /// Source prefixes tracked at once, per door [default: 65536].
    #[arg(long, env = "SPARKID_UDP_RRL_TABLE_SIZE")]
    pub udp_rrl_table_size: Option<usize>,
}

impl RrlArgs {
    /// The settings: flags (and environment) over the file's values over the defaults.
    pub fn resolve(
        self,
        rate: Option<u32>,
        slip: Option<u32>,
        table_size: Option<usize>,
    ) -> RrlConfig {
        let defaults = RrlConfig::default();
        RrlConfig {
            rate: self.udp_rrl_rate.or(rate).unwrap_or(defaults.rate),
            slip: self.udp_rrl_slip.or(slip).unwrap_or(defaults.slip),
            table_size: self
                .udp_rrl_table_size
                .or(table_size)
                .unwrap_or(defaults.table_size)
                .max(1),
        }
    }
}

/// `[registrar]` in the configuration file: what the registrars admit.
///
/// A client-managed request opens a job that waits for the client's signature; pending jobs
/// are capped per client (its IP address; an IPv6 client by its /64) and in total, and a
/// request over a cap is answered 429 with `Retry-After`. Clients behind one proxy or follower
/// share its address, hence its allowance.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegistrarFile {
    /// Only transactions signed by these submitters are accepted: did:bid DIDs (a key of the
    /// DID's document signs) or BIF encoded public keys (`b065…`); others get 403. Unset or
    /// empty: anyone may submit [default: unset].
    pub submitters: Option<Vec<String>>,
    /// The most jobs waiting for signatures at once [default: 4096].
    pub max_pending_jobs: Option<usize>,
    /// The most jobs one client may have waiting at once [default: 64].
    pub max_pending_jobs_per_client: Option<usize>,
    /// The most bytes of waiting transactions at once [default: 67108864].
    pub max_pending_job_bytes: Option<usize>,
}

/// The registrar flags of `sparkid serve` (each also an environment variable).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegistrarArgs {
    /// Accept only transactions signed by this submitter: a did:bid DID or a BIF encoded public
    /// key (repeatable) [default: anyone].
    #[arg(
        long = "registrar-submitter",
        env = "SPARKID_REGISTRAR_SUBMITTERS",
        value_delimiter = ','
    )]
    pub registrar_submitters: Vec<String>,
    /// The most jobs waiting for signatures at once [default: 4096].
    #[arg(long, env = "SPARKID_REGISTRAR_MAX_PENDING_JOBS")]
    pub registrar_max_pending_jobs: Option<usize>,
    /// The most jobs one client (IP address) may have waiting at once [default: 64].
    #[arg(long, env = "SPARKID_REGISTRAR_MAX_PENDING_JOBS_PER_CLIENT")]
    pub registrar_max_pending_jobs_per_client: Option<usize>,
    /// The most bytes of waiting transactions at once [default: 67108864].
    #[arg(long, env = "SPARKID_REGISTRAR_MAX_PENDING_JOB_BYTES")]
    pub registrar_max_pending_job_bytes: Option<usize>,
}

impl RegistrarArgs {
    /// The policy: flags (and environment) over the file's `[registrar]` over the defaults.
    pub fn resolve(
        self,
        file: Option<RegistrarFile>,
    ) -> Result<sparkid_registrar::RegistrarPolicy, sparkid_registrar::submitters::SubmitterError>
    {
        let file = file.unwrap_or_default();
        let defaults = sparkid_registrar::JobLimits::default();
        let submitters = if self.registrar_submitters.is_empty() {
            file.submitters.unwrap_or_default()
        } else {
            self.registrar_submitters
        };
        Ok(sparkid_registrar::RegistrarPolicy {
            jobs: sparkid_registrar::JobLimits {
                max_pending: self
                    .registrar_max_pending_jobs
                    .or(file.max_pending_jobs)
                    .unwrap_or(defaults.max_pending),
                max_pending_per_client: self
                    .registrar_max_pending_jobs_per_client
                    .or(file.max_pending_jobs_per_client)
                    .unwrap_or(defaults.max_pending_per_client),
                max_pending_bytes: self
                    .registrar_max_pending_job_bytes
                    .or(file.max_pending_job_bytes)
                    .unwrap_or(defaults.max_pending_bytes),
                ttl: defaults.ttl,
            },
            submitters: sparkid_registrar::Submitters::parse(&submitters)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udp_rate_limiting_is_the_flag_then_the_file_then_the_default() {
        let file: FileConfig =
            toml::from_str("udp_rrl_rate = 50\nudp_rrl_slip = 0\nudp_rrl_table_size = 0").unwrap();
        let none = RrlArgs::default();
        assert_eq!(none.resolve(None, None, None), RrlConfig::default());
        let from_file = RrlArgs::default().resolve(
            file.udp_rrl_rate,
            file.udp_rrl_slip,
            file.udp_rrl_table_size,
        );
        assert_eq!(
            from_file,
            RrlConfig {
                rate: 50,
                slip: 0,
                table_size: 1
            }
        );
        let flags = RrlArgs {
            udp_rrl_rate: Some(0),
            ..RrlArgs::default()
        };
        assert_eq!(flags.resolve(Some(50), None, None).rate, 0);
    }

    #[test]
    fn handle_site_addresses_are_the_flag_then_the_file_then_the_bound_listeners() {
        let file: FileConfig = toml::from_str(
            "handle_idis = \"127.0.0.1:3641\"\nhandle_site_addresses = [\"tcp://192.0.2.5\"]",
        )
        .unwrap();
        let resolve = |args: HandleArgs, file: &FileConfig| {
            args.resolve_with_site(
                file.handle,
                file.public_url.clone(),
                file.handle_idis,
                file.handle_site_addresses.clone(),
            )
        };
        let from_file = resolve(HandleArgs::default(), &file).unwrap();
        assert_eq!(from_file.idis, Some("127.0.0.1:3641".parse().unwrap()));
        let (endpoints, _) = from_file.site_endpoints(&["127.0.0.1:2641".parse().unwrap()]);
        assert_eq!(
            endpoints
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["tcp://192.0.2.5:2641"],
            "the configured addresses, not the listeners'"
        );
        let flags = HandleArgs {
            handle_idis: Some(Listen::Off),
            handle_site_addresses: vec!["udp://192.0.2.6:9".parse().unwrap()],
            ..HandleArgs::default()
        };
        let from_flags = resolve(flags, &file).unwrap();
        assert_eq!(from_flags.idis, None);
        assert_eq!(
            from_flags.site_addresses[0].to_string(),
            "udp://192.0.2.6:9"
        );
        // Neither: the bound listeners, TCP then UDP, wildcards left out.
        let none = resolve(HandleArgs::default(), &FileConfig::default()).unwrap();
        let (endpoints, wildcards) = none.site_endpoints(&[
            "127.0.0.1:2641".parse().unwrap(),
            "0.0.0.0:3641".parse().unwrap(),
        ]);
        assert_eq!(
            endpoints
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["tcp://127.0.0.1:2641", "udp://127.0.0.1:2641"]
        );
        assert_eq!(wildcards, ["0.0.0.0:3641".parse::<SocketAddr>().unwrap()]);
        // A file address that is not a Handle interface stops the daemon, naming the key.
        let bad: FileConfig =
            toml::from_str("handle_site_addresses = [\"tcp://node.example\"]").unwrap();
        let e = resolve(HandleArgs::default(), &bad).unwrap_err();
        assert!(e.contains("handle_site_addresses"), "{e}");
    }

    #[test]
    fn the_ledger_cache_size_is_the_flag_then_the_file_then_256_mib() {
        let mib = |n: usize| Some(n * 1024 * 1024);
        let file: FileConfig = toml::from_str("ledger_cache_mb = 64").unwrap();
        assert_eq!(file.ledger_cache_mb, Some(64));
        let flag = |v: Option<u64>| LedgerArgs {
            ledger_cache_mb: v,
            answer_records: None,
        };
        assert_eq!(flag(None).resolve(None).cache_size, mib(256));
        assert_eq!(flag(None).resolve(file.ledger_cache_mb).cache_size, mib(64));
        assert_eq!(flag(Some(32)).resolve(Some(64)).cache_size, mib(32));
        // Zero would leave redb no room to commit: the least is 1 MiB.
        assert_eq!(flag(Some(0)).resolve(None).cache_size, mib(1));
    }

    #[test]
    fn the_ors_zone_is_the_flag_then_the_file_then_under_the_service_zone() {
        let file: FileConfig = toml::from_str("ors_zone = \"oid-res.example\"").unwrap();
        let flag = |v: Option<&str>| DnsArgs {
            ors_zone: v.map(str::to_string),
            ..DnsArgs::default()
        };
        let resolve =
            |args: DnsArgs, file: Option<String>| args.resolve(None, None, None, file).ors_zone;
        assert_eq!(resolve(flag(None), None), None, "none: oid.<service zone>");
        assert_eq!(
            resolve(flag(None), file.ors_zone.clone()).as_deref(),
            Some("oid-res.example")
        );
        assert_eq!(
            resolve(flag(Some("ors.test")), file.ors_zone).as_deref(),
            Some("ors.test")
        );
    }

    #[test]
    fn the_limits_are_the_files_limits_table() {
        // A misspelt limit is an error, not a silent default.
        assert!(toml::from_str::<FileConfig>("[limits]\nrate_write = 1\n").is_err());
        let file: FileConfig = toml::from_str("[limits]\nmax_long_polls_per_client = 4\n").unwrap();
        let limits = crate::edge::LimitsArgs::default().resolve(file.limits);
        assert_eq!(limits.max_long_polls_per_client, 4);
    }

    #[test]
    fn registrar_limits_are_the_flag_then_the_file_then_the_default() {
        let file: FileConfig = toml::from_str(
            "[registrar]\nmax_pending_jobs = 10\nmax_pending_jobs_per_client = 2\n\
             submitters = [\"did:bid:efJgt44mNDewKK1VEN454R17cjso3mSG\"]",
        )
        .unwrap();
        let policy = RegistrarArgs {
            registrar_max_pending_jobs_per_client: Some(5),
            ..Default::default()
        }
        .resolve(file.registrar)
        .unwrap();
        assert_eq!(policy.jobs.max_pending, 10);
        assert_eq!(policy.jobs.max_pending_per_client, 5);
        assert_eq!(
            policy.jobs.max_pending_bytes,
            sparkid_registrar::JobLimits::default().max_pending_bytes
        );
        assert_eq!(policy.submitters.map(|s| s.len()), Some(1));
        let public = RegistrarArgs::default().resolve(None).unwrap();
        assert_eq!(public.submitters, None);
        let bad = RegistrarArgs {
            registrar_submitters: vec!["alice".into()],
            ..Default::default()
        };
        assert!(bad.resolve(None).is_err());
    }
}

/// How did:web documents are fetched ([`sparkid_resolver::ssi_methods`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DidWebConfig {
    /// Extra trusted CA certificates (PEM).
    pub ca_file: Option<PathBuf>,
    /// Whether hosts on private addresses are asked.
    pub allow_private_targets: bool,
    /// Seconds a document is reused; 0: never.
    pub cache_ttl_secs: u64,
}

impl DidWebConfig {
    /// The resolver's options: the CA file read (an unreadable one stops the daemon).
    pub fn options(&self) -> Result<sparkid_resolver::ssi_methods::WebOptions, ConfigError> {
        let ca_pem = match &self.ca_file {
            None => None,
            Some(path) => Some(std::fs::read(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?),
        };
        Ok(sparkid_resolver::ssi_methods::WebOptions {
            ca_pem,
            allow_private_targets: self.allow_private_targets,
            cache_ttl_secs: self.cache_ttl_secs,
            ..sparkid_resolver::ssi_methods::WebOptions::default()
        })
    }
}

/// The did:web flags of `sparkid serve` (each also an environment variable).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DidWebArgs {
    /// PEM certificates trusted for did:web hosts besides the public roots (a private CA).
    #[arg(long, env = "SPARKID_DID_WEB_CA_FILE")]
    pub did_web_ca_file: Option<PathBuf>,
    /// Ask did:web hosts on loopback, link-local and private addresses [default: in dev mode
    /// only].
    #[arg(long, env = "SPARKID_DID_WEB_ALLOW_PRIVATE_TARGETS")]
    pub did_web_allow_private_targets: Option<bool>,
    /// Seconds a fetched did:web document is reused; 0 fetches every time [default: 60].
    #[arg(long, env = "SPARKID_DID_WEB_CACHE_TTL")]
    pub did_web_cache_ttl: Option<u64>,
}

impl DidWebArgs {
    /// The settings: flags (and environment) over the file's values over the defaults.
    pub fn resolve(
        self,
        ca_file: Option<PathBuf>,
        allow_private_targets: Option<bool>,
        cache_ttl: Option<u64>,
        dev: bool,
    ) -> DidWebConfig {
        DidWebConfig {
            ca_file: self.did_web_ca_file.or(ca_file),
            allow_private_targets: self
                .did_web_allow_private_targets
                .or(allow_private_targets)
                .unwrap_or(dev),
            cache_ttl_secs: self
                .did_web_cache_ttl
                .or(cache_ttl)
                .unwrap_or(sparkid_resolver::ssi_methods::DEFAULT_WEB_CACHE_TTL_SECS),
        }
    }
}
