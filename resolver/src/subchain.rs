//! Sub-chains ("1+N") on the read path.
//!
//! A `did:bid:<ac>:<address>` lives on the sub-chain whose genesis names the AC code `<ac>`. The
//! resolver answers it, in this order:
//! 1. from this daemon's own ledger, when that ledger is the sub-chain;
//! 2. from a sub-chain ledger hosted beside the main chain (`--subchain <ac>`);
//! 3. by asking a resolver endpoint that the AC code's delegation on the main chain names
//!    (`ns/ac/<ac>`, written by the authority's `delegate {kind: "ac", endpoints}`), in order,
//!    until one answers: recursive resolution, as the BID protocol describes it.
//!
//! An AC code that is neither hosted nor delegated is `NOT_FOUND`. A bare `did:bid:<ac>` names
//! the sub-chain itself and resolves to the delegation record, rendered by [`crate::ac_code::ac_document`]: its
//! controller is the delegation's owner and its `DIDSubResolver` services are the endpoints.
//!
//! A recursive request carries [`HOPS_HEADER`]; a daemon asked with it does not recurse again,
//! so two resolvers naming each other answer an error instead of looping.
//!
//! **Bounded work** ([`SubChainLimits`]). One incoming request causes at most `fanout`
//! outbound requests, whatever the endpoints and however they fail (counted in
//! [`crate::result::FanOut`], shared by every copy of the request's options); past it the answer
//! is a 502 naming the budget. A negative answer (`NOT_FOUND`, or an endpoint that failed or
//! whose answer did not hold against the anchor) is reused for `negative_ttl` without asking
//! again (also with `noCache`: it is what keeps a flood of requests for one DID from becoming a
//! flood towards its resolver). Endpoints on loopback, link-local, private, shared, multicast
//! or reserved addresses are refused (502) unless `allow_private_targets`: a name is resolved
//! first, and the client connects only to the public addresses it resolved to, so a name
//! cannot be rebound to a private address between the check and the connection. Answers are
//! read up to [`crate::drivers::MAX_DRIVER_BODY`] bytes.
//!
//! **What the anchor check covers.** A checked answer's document and every member of its
//! `didDocumentMetadata` must be what the proven record renders: `versionId`, `deactivated`,
//! `created`, `updated` are compared, and any other member (`alsoKnownAs`, `equivalentId`,
//! `canonicalId`, `nextVersionId`, …) is refused, for the proof does not cover it. Answering a
//! recursive request, a daemon therefore leaves out what it cannot prove (the aliases its own
//! bridges know): the asking resolver adds the aliases its own chain binds.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sparkid_bid::AcCode;
use sparkid_registrar::anchor::{anchor_key, AnchorRecord};
use sparkid_registrar::namespace::namespace_key;
use sparkid_registrar::{Kind, NamespaceRecord};

use crate::drivers::{Upstream, UpstreamMetrics, MAX_DRIVER_BODY, UPSTREAM_FAILED};
use crate::outbound::ClientBase;
use crate::records::Records;
use crate::result::{ErrorKind, Resolution, ResolutionError, ResolutionOptions, LEDGER_PROOF};

/// The header a recursive sub-chain request carries: the number of resolvers it went through.
pub const HOPS_HEADER: &str = "sparkid-subchain-hops";

/// Connect timeout of a recursive request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Total timeout of one recursive request.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The default fan-out budget: outbound requests one incoming request may cause.
pub const DEFAULT_FANOUT: u32 = 4;
/// How long a negative answer is reused by default, in seconds.
pub const DEFAULT_NEGATIVE_TTL_SECS: u64 = 5;
/// Negative answers kept at most (each a URL and an error detail: well under 4 MiB in all).
const NEGATIVE_ENTRIES: usize = 4096;

/// How much work recursive resolution may do for one request (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubChainLimits {
    /// Outbound requests one incoming request may cause.
    pub fanout: u32,
    /// How long a negative answer is reused; zero: never.
    pub negative_ttl: Duration,
    /// Whether endpoints on loopback, link-local and private addresses may be asked (a test
    /// or a dev network; never on a public node, where a delegation could aim the resolver at
    /// its own internal services).
    pub allow_private_targets: bool,
}

impl Default for SubChainLimits {
    fn default() -> SubChainLimits {
        SubChainLimits {
            fanout: DEFAULT_FANOUT,
            negative_ttl: Duration::from_secs(DEFAULT_NEGATIVE_TTL_SECS),
            allow_private_targets: false,
        }
    }
}

/// The sub-chains a resolver knows of: those hosted in this daemon, and a client for the
/// resolvers of the others.
#[derive(Clone)]
pub struct SubChains {
    hosted: HashMap<AcCode, Records>,
    client: reqwest::Client,
    limits: SubChainLimits,
    /// Recent negative answers by request URL, with when they came.
    negative: Arc<quick_cache::sync::Cache<String, (Instant, ResolutionError)>>,
    metrics: Option<UpstreamMetrics>,
}

impl Default for SubChains {
    fn default() -> SubChains {
        SubChains::new(Vec::new())
    }
}

impl std::fmt::Debug for SubChains {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubChains")
            .field("hosted", &self.hosted.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Where a sub-chain DID is answered.
pub enum Route {
    /// From these records (this daemon's ledger or a hosted sub-chain).
    Local(Records),
    /// By the resolvers the delegation names.
    Remote(Box<Delegated>),
}

/// A sub-chain resolved elsewhere: its delegation, and its latest anchor on this chain (what
/// the answers are checked against), if any.
#[derive(Debug, Clone)]
pub struct Delegated {
    /// The AC code's delegation.
    pub delegation: NamespaceRecord,
    /// The latest anchor.
    pub anchor: Option<AnchorRecord>,
}

impl SubChains {
    /// Knows the hosted sub-chains `hosted` (AC code, records), with the default limits.
    pub fn new(hosted: Vec<(AcCode, Records)>) -> SubChains {
        SubChains::with_limits(hosted, SubChainLimits::default())
    }

    /// Knows the hosted sub-chains `hosted`, and recurses within `limits`.
    pub fn with_limits(hosted: Vec<(AcCode, Records)>, limits: SubChainLimits) -> SubChains {
        SubChains::with_client(hosted, limits, &ClientBase::default())
    }

    /// The same, asking other resolvers (`http://` or `https://`) with a client built from
    /// `base` (the daemon's trust roots).
    pub fn with_client(
        hosted: Vec<(AcCode, Records)>,
        limits: SubChainLimits,
        base: &ClientBase,
    ) -> SubChains {
        let mut builder = base
            .builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none());
        if !limits.allow_private_targets {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        let client = builder.build().unwrap_or_default();
        SubChains {
            hosted: hosted.into_iter().collect(),
            client,
            limits,
            negative: Arc::new(quick_cache::sync::Cache::new(NEGATIVE_ENTRIES)),
            metrics: None,
        }
    }

    /// The same, counting what recursion refuses in `metrics`.
    pub fn with_metrics(mut self, metrics: UpstreamMetrics) -> SubChains {
        self.metrics = Some(metrics);
        self
    }

    fn count(&self, counter: impl Fn(&UpstreamMetrics) -> &prometheus::IntCounter) {
        if let Some(m) = &self.metrics {
            counter(m).inc();
        }
    }

    /// The limits recursion runs within.
    pub fn limits(&self) -> &SubChainLimits {
        &self.limits
    }

    /// A negative answer for `url` still fresh, if any.
    fn negative(&self, url: &str) -> Option<ResolutionError> {
        let (at, error) = self.negative.get(url)?;
        if at.elapsed() < self.limits.negative_ttl {
            return Some(error);
        }
        self.negative.remove(url);
        None
    }

    /// Remembers a negative answer for `url`.
    fn remember(&self, url: &str, error: &ResolutionError) {
        if !self.limits.negative_ttl.is_zero() {
            self.negative
                .insert(url.to_string(), (Instant::now(), error.clone()));
        }
    }

    /// The records of a hosted sub-chain.
    pub fn hosted(&self, ac: &AcCode) -> Option<&Records> {
        self.hosted.get(ac)
    }

    /// Every hosted sub-chain.
    pub fn iter(&self) -> impl Iterator<Item = (&AcCode, &Records)> {
        self.hosted.iter()
    }

    /// Where a DID with the AC code `ac` is answered, given the main chain's `main` records
    /// (blocking: may read the ledger). `did` is for the error message.
    pub fn route(&self, main: &Records, ac: &AcCode, did: &str) -> Result<Route, ResolutionError> {
        if chain_ac(main).as_ref() == Some(ac) {
            return Ok(Route::Local(main.clone()));
        }
        if let Some(records) = self.hosted.get(ac) {
            return Ok(Route::Local(records.clone()));
        }
        match delegation(main, ac)? {
            Some(record) if !record.endpoints.is_empty() => {
                Ok(Route::Remote(Box::new(Delegated {
                    delegation: record,
                    anchor: latest_anchor(main, ac)?,
                })))
            }
            Some(_) => Err(ResolutionError::new(
                ErrorKind::NotFound,
                format!(
                    "{did}: the sub-chain {ac} is delegated on this chain but its delegation \
                     names no resolver endpoint, and this daemon does not host it"
                ),
            )),
            None => Err(ResolutionError::new(
                ErrorKind::NotFound,
                format!(
                    "{did}: the AC code {ac} is not delegated on chain {:?}, and this daemon \
                     does not host that sub-chain",
                    main.ledger().genesis().chain_id
                ),
            )),
        }
    }

    /// Resolves `did` through the endpoints of its sub-chain's delegation, in order: the first
    /// answer that is a resolution or a DID Resolution error other than `INTERNAL_ERROR` is
    /// kept; when every endpoint fails, the last failure is returned. `hops` is how many
    /// resolvers the request went through before this one.
    ///
    /// With an anchor, the resolver is asked for a proof and its answer is kept only if the
    /// proof holds against the anchor: the proof's header is the anchored block or a later one
    /// certified by the validators the anchor records, its Merkle path leads to the record, and
    /// the document and metadata are that record's. An answer that fails is treated as a
    /// failed endpoint. (A `NOT_FOUND` is passed on unchecked: a resolver can deny a DID, not
    /// forge one.)
    pub async fn resolve_remote(
        &self,
        delegation: &NamespaceRecord,
        anchor: Option<&AnchorRecord>,
        did: &str,
        options: &ResolutionOptions,
        hops: u32,
    ) -> Result<Resolution, ResolutionError> {
        if hops > 0 {
            return Err(ResolutionError::new(
                ErrorKind::NotFound,
                format!(
                    "{did}: this resolver was asked on behalf of another one and does not host \
                     sub-chain {}; it does not recurse twice (a loop between resolvers?)",
                    delegation.namespace
                ),
            ));
        }
        // The ledger proves current records only: an older version cannot be checked.
        let check = anchor.filter(|_| !options.selects_version());
        let mut asked = options.clone();
        asked.proof |= check.is_some();
        let query = forwarded_query(&asked);
        let hops_value = (hops + 1).to_string();
        let upstream = Upstream {
            client: &self.client,
            name: format!("the resolver of sub-chain {}", delegation.namespace),
            connect_timeout: CONNECT_TIMEOUT,
            timeout: TIMEOUT,
            max_body: MAX_DRIVER_BODY,
            metrics: self.metrics.as_ref(),
        };
        let mut last: Option<ResolutionError> = None;
        for endpoint in &delegation.endpoints {
            let url = format!("{}{query}", request_url(endpoint, did));
            if let Some(e) = self.negative(&url) {
                self.count(|m| &m.negative_hits);
                if e.kind != ErrorKind::Internal {
                    return Err(e);
                }
                last = Some(e);
                continue;
            }
            if !self.limits.allow_private_targets {
                if let Err(why) = public_target(&url).await {
                    let e = ResolutionError::new(
                        ErrorKind::Internal,
                        format!(
                            "{} at {url} is not asked: {why} (subchain_allow_private_targets \
                             is off)",
                            upstream.name
                        ),
                    )
                    .with_status(UPSTREAM_FAILED);
                    tracing::warn!(did, endpoint, error = %e.detail, "sub-chain endpoint refused");
                    self.count(|m| &m.private_target);
                    last = Some(e);
                    continue;
                }
            }
            if !options.fanout.take(self.limits.fanout) {
                let e = ResolutionError::new(
                    ErrorKind::Internal,
                    format!(
                        "{did}: the fan-out budget of {} outbound requests per request is spent \
                         before {url} could be asked{}",
                        self.limits.fanout,
                        last.as_ref()
                            .map(|l| format!(" (the last failure: {})", l.detail))
                            .unwrap_or_default()
                    ),
                )
                .with_status(UPSTREAM_FAILED);
                tracing::warn!(did, error = %e.detail, "sub-chain fan-out budget spent");
                self.count(|m| &m.fanout);
                return Err(e);
            }
            match upstream
                .fetch(&url, did, &[(HOPS_HEADER, hops_value.as_str())])
                .await
            {
                Ok((mut resolution, duration)) => {
                    let checked = match check {
                        Some(anchor) => match check_against_anchor(&resolution, anchor, did) {
                            Ok(()) => json!({
                                "checked": true,
                                "height": anchor.height,
                                "blockHash": anchor.block_hash,
                                "mainHeight": anchor.main_height,
                            }),
                            Err(why) => {
                                let e = ResolutionError::new(
                                    ErrorKind::Internal,
                                    format!(
                                        "the answer of {url} does not hold against the latest \
                                         anchor of sub-chain {} (height {}): {why}",
                                        delegation.namespace, anchor.height
                                    ),
                                );
                                tracing::warn!(did, endpoint, error = %e.detail, "sub-chain answer refused");
                                self.count(|m| &m.anchor);
                                self.remember(&url, &e);
                                last = Some(e);
                                continue;
                            }
                        },
                        None if anchor.is_some() => json!({
                            "checked": false,
                            "reason": "an earlier version carries no proof to check",
                        }),
                        None => json!({
                            "checked": false,
                            "reason": format!(
                                "sub-chain {} has no anchor on this chain yet",
                                delegation.namespace
                            ),
                        }),
                    };
                    let meta = &mut resolution.resolution_metadata;
                    if !options.proof {
                        meta.remove(LEDGER_PROOF);
                    }
                    meta.insert("subChainResolver".into(), json!(url));
                    meta.insert("subChainDuration".into(), json!(duration));
                    meta.insert("subChainAnchor".into(), checked);
                    return Ok(resolution);
                }
                Err(e) if e.kind != ErrorKind::Internal => {
                    if e.kind == ErrorKind::NotFound {
                        self.remember(&url, &e);
                    }
                    return Err(e);
                }
                Err(e) => {
                    tracing::warn!(did, endpoint, error = %e.detail, "sub-chain resolver failed");
                    self.remember(&url, &e);
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| {
            ResolutionError::new(
                ErrorKind::NotFound,
                format!("{did}: the sub-chain's delegation names no resolver endpoint"),
            )
        }))
    }
}

/// Checks a sub-chain resolver's answer, which carries its ledger proof, against `anchor`.
fn check_against_anchor(
    resolution: &Resolution,
    anchor: &AnchorRecord,
    did: &str,
) -> Result<(), String> {
    let proof = resolution
        .resolution_metadata
        .get(LEDGER_PROOF)
        .ok_or("it carries no ledger proof")?;
    let header: sparkid_ledger::CertifiedHeader =
        serde_json::from_value(proof.get("anchor").cloned().unwrap_or(Value::Null))
            .map_err(|e| format!("its proof's header: {e}"))?;
    anchor.check(&header)?;
    let validators = sparkid_ledger::ValidatorSet::from_encoded(&anchor.validators)
        .map_err(|e| format!("the anchored validators: {e}"))?;
    let result = json!({
        "didDocument": resolution.document,
        "didDocumentMetadata": resolution.document_metadata,
        "didResolutionMetadata": resolution.resolution_metadata,
    });
    let trust = crate::verifiable::TrustAnchor::new(validators, Some(anchor.chain_id.clone()));
    crate::verifiable::verify_result(&result, &trust, Some(did)).map_err(|e| e.to_string())?;
    // The proof covers the record: the members it renders were compared above; any other
    // member would be the resolver's word alone.
    if let Some(member) = resolution
        .document_metadata
        .keys()
        .find(|m| !PROVEN_METADATA.contains(&m.as_str()))
    {
        return Err(format!(
            "didDocumentMetadata.{member} is not covered by the proof (only {} are)",
            PROVEN_METADATA.join(", ")
        ));
    }
    Ok(())
}

/// The document metadata members a current record's proof covers.
pub const PROVEN_METADATA: [&str; 4] = ["created", "updated", "versionId", "deactivated"];

/// Why `url`'s host is not a public address, if it is not. A name must resolve, and only to
/// public addresses.
async fn public_target(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    let host = parsed.host_str().ok_or("it names no host")?;
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<IpAddr> = match literal.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("{host} does not resolve: {e}"))?
            .map(|a| a.ip())
            .collect(),
    };
    match addresses.iter().find(|ip| is_private_target(**ip)) {
        Some(ip) => Err(format!(
            "{ip} is a loopback, link-local, private or reserved address"
        )),
        None if addresses.is_empty() => Err("its host resolves to no address".into()),
        None => Ok(()),
    }
}

/// True for the addresses a public resolver must not be made to ask: loopback, unspecified,
/// link-local, private (RFC 1918, unique local), shared (RFC 6598), multicast, broadcast,
/// documentation and reserved ranges, and IPv4-mapped forms of them.
pub fn is_private_target(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first & 0xffc0) == 0xfec0
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (b & 0xc0) == 64)
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || a >= 240
}

/// The client's name resolver when private targets are refused: a name resolves to its public
/// addresses only, so the connection goes where the check said (no DNS rebinding in between).
pub(crate) struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let public: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !is_private_target(a.ip()))
                .collect();
            if public.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: reqwest::dns::Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// The latest anchor of the sub-chain `ac` on the chain `records` holds, through the cache.
pub fn latest_anchor(
    records: &Records,
    ac: &AcCode,
) -> Result<Option<AnchorRecord>, ResolutionError> {
    read_record(records, &anchor_key(ac.as_str()))
}

/// The AC code of the chain `records` holds (none for a main chain).
pub fn chain_ac(records: &Records) -> Option<AcCode> {
    sparkid_registrar::BidStateMachine::for_genesis(records.ledger().genesis()).ac_code
}

/// The delegation of the AC code `ac` on the chain `records` holds, through the cache.
pub fn delegation(
    records: &Records,
    ac: &AcCode,
) -> Result<Option<NamespaceRecord>, ResolutionError> {
    read_record(records, &namespace_key(Kind::Ac, ac.as_str()))
}

/// The JSON record under `key`, through the cache.
fn read_record<T: serde::de::DeserializeOwned>(
    records: &Records,
    key: &str,
) -> Result<Option<T>, ResolutionError> {
    let Some(anchored) = records
        .current(key, false)
        .map_err(|e| ResolutionError::new(ErrorKind::Internal, format!("reading {key}: {e}")))?
    else {
        return Ok(None);
    };
    serde_json::from_str(&anchored.value)
        .map(Some)
        .map_err(|e| ResolutionError::new(ErrorKind::Internal, format!("stored {key}: {e}")))
}

/// The request URL of `did` at a sub-chain resolver endpoint: a `{did}` placeholder is filled;
/// an endpoint that already ends in `/1.0/identifiers/` gets the DID appended; any other
/// endpoint is a resolver's base URL and gets `/1.0/identifiers/<did>`.
pub fn request_url(endpoint: &str, did: &str) -> String {
    if endpoint.contains("{did}") {
        endpoint.replace("{did}", did)
    } else if endpoint.ends_with("/1.0/identifiers/") {
        format!("{endpoint}{did}")
    } else {
        format!("{}/1.0/identifiers/{did}", endpoint.trim_end_matches('/'))
    }
}

/// The options a recursive request passes on, as a query string (`?…`, or empty).
fn forwarded_query(options: &ResolutionOptions) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if let Some(v) = &options.version_id {
        pairs.push(("versionId", v.clone()));
    }
    if let Some(t) = options.version_time {
        if let Ok(text) = t.format(&time::format_description::well_known::Rfc3339) {
            pairs.push(("versionTime", text));
        }
    }
    for (name, on) in [
        ("noCache", options.no_cache),
        ("proof", options.proof),
        ("expandRelativeUrls", options.expand_relative_urls),
    ] {
        if on {
            pairs.push((name, "true".into()));
        }
    }
    if pairs.is_empty() {
        return String::new();
    }
    let encoded: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::drivers::encode_component(v)))
        .collect();
    format!("?{}", encoded.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ac_code::{ac_document, ac_metadata, SUB_RESOLVER_TYPE};

    fn record(endpoints: &[&str]) -> NamespaceRecord {
        NamespaceRecord {
            kind: Kind::Ac,
            namespace: "by01".into(),
            owner: "did:bid:efowner".into(),
            chain: None,
            endpoints: endpoints.iter().map(|s| s.to_string()).collect(),
            created: "2026-01-01T00:00:00Z".into(),
            updated: "2026-01-02T00:00:00Z".into(),
            version_id: 2,
            height: 7,
        }
    }

    #[test]
    fn private_and_reserved_targets_are_recognised() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private_target(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_private_target(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn a_private_literal_or_a_name_of_one_is_not_a_public_target() {
        assert!(public_target("http://127.0.0.1:8080/x").await.is_err());
        assert!(public_target("http://[::1]:8080/x").await.is_err());
        assert!(public_target("http://localhost:8080/x").await.is_err());
        assert!(public_target("http://8.8.8.8/x").await.is_ok());
    }

    #[test]
    fn the_fan_out_budget_is_shared_by_the_copies_of_the_options() {
        let options = ResolutionOptions::default();
        let copy = options.clone();
        assert!(options.fanout.take(2));
        assert!(copy.fanout.take(2));
        assert!(!options.fanout.take(2));
        assert_eq!(copy.fanout.used(), 2);
        // A new request has its own budget.
        assert!(ResolutionOptions::default().fanout.take(2));
    }

    #[test]
    fn request_urls_follow_the_endpoint_form() {
        let did = "did:bid:by01:efabc";
        assert_eq!(
            request_url("http://sub:8080", did),
            "http://sub:8080/1.0/identifiers/did:bid:by01:efabc"
        );
        assert_eq!(
            request_url("http://sub:8080/", did),
            "http://sub:8080/1.0/identifiers/did:bid:by01:efabc"
        );
        assert_eq!(
            request_url("http://sub/r/1.0/identifiers/", did),
            "http://sub/r/1.0/identifiers/did:bid:by01:efabc"
        );
        assert_eq!(
            request_url("http://sub/resolve?id={did}", did),
            "http://sub/resolve?id=did:bid:by01:efabc"
        );
    }

    #[test]
    fn options_that_change_the_answer_are_passed_on() {
        let mut options = ResolutionOptions::default();
        assert_eq!(forwarded_query(&options), "");
        options.version_id = Some("2".into());
        options.no_cache = true;
        options.proof = true;
        assert_eq!(
            forwarded_query(&options),
            "?versionId=2&noCache=true&proof=true"
        );
    }

    #[test]
    fn the_ac_document_names_the_owner_and_the_resolvers() {
        let doc = ac_document("did:bid:by01", &record(&["http://a", "http://b"]));
        assert_eq!(doc["id"], "did:bid:by01");
        assert_eq!(doc["controller"], "did:bid:efowner");
        assert_eq!(doc["service"][1]["id"], "did:bid:by01#subResolver-2");
        assert_eq!(doc["service"][1]["type"], SUB_RESOLVER_TYPE);
        assert_eq!(doc["service"][1]["serviceEndpoint"], "http://b");
        let bare = ac_document("did:bid:by01", &record(&[]));
        assert!(bare.get("service").is_none());
        let meta = ac_metadata(&record(&[]));
        assert_eq!(meta["versionId"], "2");
    }
}
