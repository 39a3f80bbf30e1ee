//! Namespaces and bindings: how foreign identifiers (VAA codes, Handles, DNS names) and sub-chain
//! AC codes reach DIDs through the ledger.
//!
//! | operation | signed by | rule |
//! |---|---|---|
//! | `delegate` | the chain authority named in genesis | the namespace is well formed; the owner DID is live on this chain |
//! | `bind` | an `authentication` key of the owner of the longest delegated namespace covering the identifier | the identifier is well formed; a DID of this chain must be live |
//! | `unbind` | the same owner | the identifier is bound |
//! | `link` | an `authentication` key of the DID | the DID is live on this chain; at most [`MAX_LINKS_PER_DID`] |
//! | `unlink` | the same | the identifier is linked |
//!
//! **Consent.** A binding always resolves forward, identifier to DID. It shows on the DID's
//! side (`alsoKnownAs`, DNS `aka`) only once the DID's controller has confirmed it: with a
//! signed `link` naming the identifier, or by listing it in the document's own `alsoKnownAs`
//! ([`AliasRecord::confirmed`]). Otherwise any namespace owner could make any DID claim its
//! names. A DID holds at most [`MAX_ALIASES_PER_DID`] bindings.
//!
//! The authority signs with an `authentication` key of its DID document when that DID is on the
//! ledger, or, before it is, with the key its BID derives from (how a new chain starts).
//!
//! State keys: `ns/<kind>/<namespace>` ([`NamespaceRecord`]), `bind/<kind>/<identifier>`
//! ([`BindingRecord`], kept with `did: null` after an unbind so that history stays provable),
//! and `aka/<did>` ([`AliasRecord`], the reverse index: every identifier bound to a DID, and the
//! ones its controller linked).
//!
//! [`Kind`], [`NameError`] and the length limits of names live in [`crate::state`], because the
//! operations and their refusals name them too; they are re-exported here with the grammars.

use serde::{Deserialize, Serialize};
use sparkid_bid::{AcCode, Bid, BidDocument, PublicKey};
use sparkid_ledger::{ExecContext, LedgerError, StateView, Writes};

use crate::state::{did_key, format_time, DidRecord, OperationError};
pub use crate::state::{
    Kind, NameError, MAX_ALIASES_PER_DID, MAX_DNS_NAME_LEN, MAX_HANDLE_LEN, MAX_LINKS_PER_DID,
    MAX_VAA_LEN, MIN_VAA_PREFIX_LEN,
};

/// The most resolver endpoints an AC-code delegation names.
pub const MAX_ENDPOINTS: usize = 8;
/// The longest endpoint URL.
pub const MAX_ENDPOINT_LEN: usize = 512;

/// The port of the Handle protocol over UDP and TCP when an endpoint names none (Handle.Net's
/// `DEFAULT_TCP_UDP_PORT`).
pub const HANDLE_DEFAULT_PORT: u16 = 2641;

/// How a Handle interface is reached: the protocol of an `HS_SITE` interface
/// (`spec/handle.md`). Ordered as discovery prefers them: the IDIS SDK speaks TCP only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HandleTransport {
    /// The Handle protocol over TCP.
    Tcp,
    /// The Handle protocol over UDP.
    Udp,
    /// Handle messages tunnelled in HTTP POSTs.
    Http,
    /// Handle messages tunnelled in HTTPS POSTs.
    Https,
}

impl HandleTransport {
    /// The URI scheme that names it in an endpoint.
    pub fn scheme(self) -> &'static str {
        match self {
            HandleTransport::Tcp => "tcp",
            HandleTransport::Udp => "udp",
            HandleTransport::Http => "http",
            HandleTransport::Https => "https",
        }
    }
}

/// Where a node answers the Handle protocol: `<tcp|udp|http|https>://<IP>[:<port>]`, as a
/// Handle-prefix delegation's endpoints and the daemon's `handle_site_addresses` name it.
///
/// The host is an IP literal (IPv6 in brackets) because an `HS_SITE` value carries a 16-byte
/// address, never a name: resolving a name here would make a record's meaning depend on the
/// resolver. TCP and UDP default to port 2641; HTTP and HTTPS name theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HandleEndpoint {
    /// The transport.
    pub transport: HandleTransport,
    /// The address and port.
    pub address: std::net::SocketAddr,
}

impl std::fmt::Display for HandleEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.transport.scheme(), self.address)
    }
}

impl std::str::FromStr for HandleEndpoint {
    type Err = String;

    fn from_str(text: &str) -> Result<HandleEndpoint, String> {
        let shown = || text.chars().take(80).collect::<String>();
        let rule = "a Handle interface is <tcp|udp|http|https>://<IP address>[:<port>] \
                    (an IPv6 address in brackets; http and https name their port)";
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| format!("endpoint {:?}: {rule}", shown()))?;
        let transport = match scheme.to_ascii_lowercase().as_str() {
            "tcp" => HandleTransport::Tcp,
            "udp" => HandleTransport::Udp,
            "http" => HandleTransport::Http,
            "https" => HandleTransport::Https,
            _ => return Err(format!("endpoint {:?}: {rule}", shown())),
        };
        let host = rest.strip_suffix('/').unwrap_or(rest);
        let address = match host.parse::<std::net::SocketAddr>() {
            Ok(a) => a,
            Err(_) if matches!(transport, HandleTransport::Tcp | HandleTransport::Udp) => {
                let bare = host
                    .strip_prefix('[')
                    .and_then(|h| h.strip_suffix(']'))
                    .unwrap_or(host);
                let ip = bare
                    .parse::<std::net::IpAddr>()
                    .map_err(|_| format!("endpoint {:?}: {rule}", shown()))?;
                if ip.is_ipv6() && !host.starts_with('[') {
                    return Err(format!("endpoint {:?}: {rule}", shown()));
                }
                std::net::SocketAddr::new(ip, HANDLE_DEFAULT_PORT)
            }
            Err(_) => return Err(format!("endpoint {:?}: {rule}", shown())),
        };
        if address.port() == 0 {
            return Err(format!("endpoint {:?}: port 0 is not a port", shown()));
        }
        Ok(HandleEndpoint { transport, address })
    }
}

/// The canonical form of a namespace of `kind`, or why it is malformed. Handles and DNS names
/// are case-insensitive and stored lower-case; VAA codes are upper-case by definition.
pub fn normalize_namespace(kind: Kind, namespace: &str) -> Result<String, NameError> {
    match kind {
        Kind::Vaa => {
            check_vaa(namespace)?;
            if namespace.len() < MIN_VAA_PREFIX_LEN {
                return Err(NameError::VaaLength(namespace.into()));
            }
            Ok(namespace.to_string())
        }
        Kind::Handle => {
            let lower = handle_prefix(namespace)?;
            // `bid/<address>` and `bid.<ac>/<address>` read DIDs as handles (spec/handle.md).
            if lower == "bid" || lower.starts_with("bid.") {
                return Err(NameError::ReservedHandlePrefix(namespace.into()));
            }
            Ok(lower)
        }
        Kind::Dns => normalize_dns_name(namespace),
        Kind::Ac => namespace
            .parse::<AcCode>()
            .map(|a| a.to_string())
            .map_err(|_| NameError::AcCode(namespace.into())),
        Kind::Oid => crate::oid::normalize_namespace(namespace),
        Kind::Gs1 => crate::gs1::normalize_namespace(namespace),
        Kind::Ecode => crate::ecode::normalize_namespace(namespace),
    }
}

/// The canonical form of an identifier of `kind`, or why it is malformed.
pub fn normalize_identifier(kind: Kind, identifier: &str) -> Result<String, NameError> {
    match kind {
        Kind::Vaa => {
            check_vaa(identifier)?;
            Ok(identifier.to_string())
        }
        Kind::Handle => {
            if identifier.len() > MAX_HANDLE_LEN {
                return Err(NameError::HandleLength);
            }
            let (prefix, suffix) = identifier
                .split_once('/')
                .ok_or_else(|| NameError::Handle(identifier.into()))?;
            if suffix.is_empty() || suffix.chars().any(|c| c.is_control()) {
                return Err(NameError::Handle(identifier.into()));
            }
            let prefix = handle_prefix(prefix).map_err(|_| NameError::Handle(identifier.into()))?;
            // Handle.Net compares ASCII case-insensitively.
            Ok(format!("{prefix}/{}", suffix.to_ascii_lowercase()))
        }
        Kind::Dns => normalize_dns_name(identifier),
        Kind::Ac => Err(NameError::NoBindingsUnderAc),
        Kind::Oid => crate::oid::normalize_identifier(identifier),
        Kind::Gs1 => crate::gs1::normalize_identifier(identifier),
        Kind::Ecode => crate::ecode::normalize_identifier(identifier),
    }
}

/// A handle prefix's canonical (lower-case) form, by its syntax alone.
fn handle_prefix(prefix: &str) -> Result<String, NameError> {
    let lower = prefix.to_ascii_lowercase();
    let ok = !lower.is_empty()
        && lower.len() < MAX_HANDLE_LEN
        && lower.split('.').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !ok {
        return Err(NameError::HandlePrefix(prefix.into()));
    }
    Ok(lower)
}

fn check_vaa(code: &str) -> Result<(), NameError> {
    if code.len() > MAX_VAA_LEN {
        return Err(NameError::VaaLength(code.chars().take(80).collect()));
    }
    if !code
        .bytes()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(NameError::VaaCharacters(code.into()));
    }
    if !code.starts_with("VAA") {
        return Err(NameError::VaaAgency(code.into()));
    }
    Ok(())
}

/// A DNS name in canonical form: lower-case, no final dot.
pub fn normalize_dns_name(name: &str) -> Result<String, NameError> {
    let bad = || NameError::DnsName(name.chars().take(300).collect());
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() || trimmed.len() > MAX_DNS_NAME_LEN {
        return Err(bad());
    }
    let lower = trimmed.to_ascii_lowercase();
    for label in lower.split('.') {
        let bytes = label.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= 63
            && bytes.iter().enumerate().all(|(i, &b)| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || (b == b'_' && i == 0)
            })
            && bytes.first() != Some(&b'-')
            && bytes.last() != Some(&b'-');
        if !ok {
            return Err(bad());
        }
    }
    Ok(lower)
}

/// The namespaces that could cover `identifier` (canonical), longest first: the order in which
/// resolution and authorization look for a delegation.
pub fn covering_namespaces(kind: Kind, identifier: &str) -> Vec<String> {
    match kind {
        // `get`: a caller's text that is not canonical (non-ASCII) cannot make it panic.
        Kind::Vaa => (MIN_VAA_PREFIX_LEN..=identifier.len())
            .rev()
            .filter_map(|n| identifier.get(..n).map(str::to_string))
            .collect(),
        Kind::Handle => {
            let prefix = identifier.split('/').next().unwrap_or_default();
            let mut out = vec![prefix.to_string()];
            let mut rest = prefix;
            while let Some((parent, _)) = rest.rsplit_once('.') {
                out.push(parent.to_string());
                rest = parent;
            }
            out
        }
        Kind::Dns => {
            let mut out = vec![identifier.to_string()];
            let mut rest = identifier;
            while let Some((_, parent)) = rest.split_once('.') {
                out.push(parent.to_string());
                rest = parent;
            }
            out
        }
        Kind::Ac => vec![identifier.to_string()],
        Kind::Oid => crate::oid::covering_namespaces(identifier),
        Kind::Gs1 => crate::gs1::covering_namespaces(identifier),
        Kind::Ecode => crate::ecode::covering_namespaces(identifier),
    }
}

/// The state key of a namespace.
pub fn namespace_key(kind: Kind, namespace: &str) -> String {
    format!("ns/{kind}/{namespace}")
}

/// The state key of a binding.
pub fn binding_key(kind: Kind, identifier: &str) -> String {
    format!("bind/{kind}/{identifier}")
}

/// The state key of a DID's reverse index.
pub fn alias_key(did: &str) -> String {
    format!("aka/{did}")
}

/// A delegated namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceRecord {
    /// Its kind.
    pub kind: Kind,
    /// The namespace, canonical.
    pub namespace: String,
    /// The DID that binds identifiers under it (for an AC code: the sub-chain's operator).
    pub owner: String,
    /// Where its items live: `main`, or the AC code of a sub-chain (VAA prefixes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
    /// Resolver endpoints: for an AC code, where the sub-chain is resolved (http(s) URLs); for a
    /// Handle prefix, the Handle interfaces of the node that serves it ([`HandleEndpoint`]s),
    /// which its `HS_SITE` value names. None for a Handle prefix: this chain's nodes serve it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<String>,
    /// When first delegated (block time).
    pub created: String,
    /// When last changed.
    pub updated: String,
    /// 1 at the first delegation, +1 per change.
    pub version_id: u64,
    /// The block that wrote this version.
    pub height: u64,
}

/// A binding of a foreign identifier to a DID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BindingRecord {
    /// Its kind.
    pub kind: Kind,
    /// The identifier, canonical.
    pub identifier: String,
    /// The DID it names; none once unbound.
    pub did: Option<String>,
    /// The delegated namespace it was bound under.
    pub namespace: String,
    /// When first bound.
    pub created: String,
    /// When last changed.
    pub updated: String,
    /// 1 at the first bind, +1 per change.
    pub version_id: u64,
    /// The block that wrote this version.
    pub height: u64,
}

/// An identifier bound to a DID, as the reverse index lists it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Alias {
    /// Its kind.
    pub kind: Kind,
    /// The identifier, canonical.
    pub identifier: String,
}

impl Alias {
    /// The identifier as a URI, as `alsoKnownAs` lists it: `vaa:`, `hdl:`, `dns:`, and each
    /// newer kind's own form (its module's `uri`); none for AC codes.
    pub fn uri(&self) -> Option<String> {
        let scheme = match self.kind {
            Kind::Vaa => "vaa",
            Kind::Handle => "hdl",
            Kind::Dns => "dns",
            Kind::Ac => return None,
            Kind::Oid => return Some(crate::oid::uri(&self.identifier)),
            Kind::Gs1 => return Some(crate::gs1::uri(&self.identifier)),
            Kind::Ecode => return Some(crate::ecode::uri(&self.identifier)),
        };
        Some(format!("{scheme}:{}", self.identifier))
    }

    /// The alias a URI names, in canonical form; none for anything else.
    pub fn from_uri(uri: &str) -> Option<Alias> {
        let typed = |kind, identifier: Option<String>| {
            identifier.map(|identifier| Alias { kind, identifier })
        };
        if let Some(alias) = typed(Kind::Oid, crate::oid::from_uri(uri))
            .or_else(|| typed(Kind::Gs1, crate::gs1::from_uri(uri)))
            .or_else(|| typed(Kind::Ecode, crate::ecode::from_uri(uri)))
        {
            return Some(alias);
        }
        let (scheme, rest) = uri.split_once(':')?;
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "vaa" => Kind::Vaa,
            "hdl" => Kind::Handle,
            "dns" => Kind::Dns,
            _ => return None,
        };
        let identifier = normalize_identifier(kind, rest).ok()?;
        Some(Alias { kind, identifier })
    }
}

/// The bridged identifiers a native BID document lists in its own `alsoKnownAs`: its
/// controller's confirmation of them (`vaa:…`, `hdl:…` or type 105, `dns:…` or type 103).
pub fn listed_aliases(document: &serde_json::Value) -> Vec<Alias> {
    let Some(entries) = document.get("alsoKnownAs").and_then(|a| a.as_array()) else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|e| {
            serde_json::from_value::<sparkid_bid::document::AlsoKnownAs>(e.clone()).ok()
        })
        .filter_map(|a| Alias::from_uri(&a.to_uri()))
        .collect()
}

/// The reverse index of one DID: every identifier bound to it, and the ones its controller
/// confirmed with `link`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AliasRecord {
    /// The DID.
    pub did: String,
    /// Its bound identifiers, sorted: confirmed or not (see [`AliasRecord::confirmed`]).
    pub aliases: Vec<Alias>,
    /// The identifiers its controller confirmed with `link`, sorted; bound or not (yet).
    /// Absent from records written before `link` existed, which then confirm none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub linked: Vec<Alias>,
    /// +1 per change.
    pub version_id: u64,
    /// The block that wrote this version.
    pub height: u64,
}

impl AliasRecord {
    /// Every bound identifier as a URI (`vaa:`, `hdl:`, `dns:`), confirmed or not: the reverse
    /// index as stored. What the DID's side shows is [`AliasRecord::confirmed_uris`].
    pub fn uris(&self) -> Vec<String> {
        self.aliases.iter().filter_map(Alias::uri).collect()
    }

    /// The bound identifiers the DID's controller confirmed: linked, or listed in the
    /// `alsoKnownAs` of `document` (the DID's current native document, if this chain holds it).
    /// Only these show on the DID's side; a binding alone resolves forward only.
    pub fn confirmed(&self, document: Option<&serde_json::Value>) -> Vec<&Alias> {
        let listed = document.map(listed_aliases).unwrap_or_default();
        self.aliases
            .iter()
            .filter(|a| self.linked.contains(a) || listed.contains(a))
            .collect()
    }

    /// [`AliasRecord::confirmed`] as URIs, for `alsoKnownAs` and DNS `aka`.
    pub fn confirmed_uris(&self, document: Option<&serde_json::Value>) -> Vec<String> {
        self.confirmed(document)
            .into_iter()
            .filter_map(Alias::uri)
            .collect()
    }
}

/// Reads and parses a JSON record from state.
pub fn read<T: serde::de::DeserializeOwned>(
    state: &dyn StateView,
    key: &str,
) -> Result<Option<T>, LedgerError> {
    match state.get(key)? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| LedgerError::Corrupt(format!("{key}: {e}"))),
    }
}

/// The longest delegated namespace covering `identifier` (canonical), if any.
pub fn find_namespace(
    state: &dyn StateView,
    kind: Kind,
    identifier: &str,
) -> Result<Option<NamespaceRecord>, LedgerError> {
    for ns in covering_namespaces(kind, identifier) {
        if let Some(record) = read::<NamespaceRecord>(state, &namespace_key(kind, &ns))? {
            return Ok(Some(record));
        }
    }
    Ok(None)
}

/// A namespace operation (`delegate`, `bind`, `unbind`), borrowed from the operation a
/// transaction carries: the fields of its variant of the same name.
#[derive(Debug, Clone, Copy)]
pub(crate) enum NamespaceOperation<'a> {
    /// Delegate `namespace` of `kind` to `owner`.
    Delegate {
        kind: Kind,
        namespace: &'a str,
        owner: &'a str,
        chain: Option<&'a str>,
        endpoints: &'a [String],
    },
    /// Bind `identifier` of `kind` to `did`.
    Bind {
        kind: Kind,
        identifier: &'a str,
        did: &'a str,
    },
    /// Remove the binding of `identifier` of `kind`.
    Unbind { kind: Kind, identifier: &'a str },
    /// `did`'s controller confirms (`link`) or withdraws (`unlink`) `identifier` of `kind`.
    Link {
        did: &'a str,
        kind: Kind,
        identifier: &'a str,
        confirm: bool,
    },
}

/// Executes a namespace operation: the storage error outside, the refusal inside.
pub(crate) fn execute(
    op: NamespaceOperation<'_>,
    ac_code: Option<AcCode>,
    signer: &str,
    signer_key: &PublicKey,
    state: &dyn StateView,
    ctx: &ExecContext<'_>,
) -> Result<Result<Writes, OperationError>, LedgerError> {
    let now = format_time(ctx.time);
    match op {
        NamespaceOperation::Delegate {
            kind,
            namespace,
            owner,
            chain,
            endpoints,
        } => {
            let namespace = match normalize_namespace(kind, namespace) {
                Ok(n) => n,
                Err(e) => return Ok(Err(e.into())),
            };
            if let Err(e) = check_authority(signer, signer_key, state, ctx)? {
                return Ok(Err(e));
            }
            if let Err(e) = check_endpoints(kind, endpoints) {
                return Ok(Err(e));
            }
            let chain = match (kind, chain) {
                (Kind::Vaa, None | Some("main")) => None,
                (Kind::Vaa, Some(ac)) => match ac.parse::<AcCode>() {
                    Ok(ac) => Some(ac.to_string()),
                    Err(_) => return Ok(Err(NameError::AcCode(ac.into()).into())),
                },
                (_, None) => None,
                (_, Some(_)) => {
                    return Ok(Err(OperationError::Malformed(format!(
                        "chain applies to VAA company prefixes only, not to {kind} namespaces"
                    ))))
                }
            };
            if let Err(e) = live_did(owner, ac_code, state)? {
                return Ok(Err(e));
            }
            let key = namespace_key(kind, &namespace);
            let previous = read::<NamespaceRecord>(state, &key)?;
            let record = NamespaceRecord {
                kind,
                namespace,
                owner: owner.to_string(),
                chain,
                endpoints: endpoints.to_vec(),
                created: previous
                    .as_ref()
                    .map_or_else(|| now.clone(), |p| p.created.clone()),
                updated: now,
                version_id: previous.map_or(1, |p| p.version_id + 1),
                height: ctx.height,
            };
            Ok(Ok(vec![(key, json(&record))]))
        }
        NamespaceOperation::Bind {
            kind,
            identifier,
            did,
        } => {
            let identifier = match normalize_identifier(kind, identifier) {
                Ok(i) => i,
                Err(e) => return Ok(Err(e.into())),
            };
            let namespace = match owned_namespace(kind, &identifier, signer, signer_key, state)? {
                Ok(ns) => ns,
                Err(e) => return Ok(Err(e)),
            };
            let here = ac_code.map(|a| a.to_string());
            if let Some(chain) = namespace
                .chain
                .as_ref()
                .filter(|c| Some(*c) != here.as_ref())
            {
                return Ok(Err(OperationError::ItemsOnAnotherChain {
                    namespace: namespace.namespace,
                    chain: format!("sub-chain {chain}"),
                }));
            }
            if let Err(e) = live_did(did, ac_code, state)? {
                return Ok(Err(e));
            }
            let key = binding_key(kind, &identifier);
            let previous = read::<BindingRecord>(state, &key)?;
            let mut writes = Vec::new();
            if let Some(old) = previous.as_ref().and_then(|p| p.did.as_deref()) {
                if old == did {
                    return Ok(Err(OperationError::AlreadyExists(format!(
                        "{kind} {identifier} bound to {did}"
                    ))));
                }
                match alias_change(state, old, kind, &identifier, false, ctx)? {
                    Ok(write) => writes.push(write),
                    Err(e) => return Ok(Err(e)),
                }
            }
            match alias_change(state, did, kind, &identifier, true, ctx)? {
                Ok(write) => writes.push(write),
                Err(e) => return Ok(Err(e)),
            }
            let record = BindingRecord {
                kind,
                identifier,
                did: Some(did.to_string()),
                namespace: namespace.namespace,
                created: previous
                    .as_ref()
                    .map_or_else(|| now.clone(), |p| p.created.clone()),
                updated: now,
                version_id: previous.map_or(1, |p| p.version_id + 1),
                height: ctx.height,
            };
            writes.push((key, json(&record)));
            Ok(Ok(writes))
        }
        NamespaceOperation::Unbind { kind, identifier } => {
            let identifier = match normalize_identifier(kind, identifier) {
                Ok(i) => i,
                Err(e) => return Ok(Err(e.into())),
            };
            if let Err(e) = owned_namespace(kind, &identifier, signer, signer_key, state)? {
                return Ok(Err(e));
            }
            let key = binding_key(kind, &identifier);
            let previous = read::<BindingRecord>(state, &key)?;
            let Some((previous, old)) = previous.and_then(|p| p.did.clone().map(|did| (p, did)))
            else {
                return Ok(Err(OperationError::NotFound(format!(
                    "{kind} {identifier} is not bound"
                ))));
            };
            let record = BindingRecord {
                did: None,
                updated: now,
                version_id: previous.version_id + 1,
                height: ctx.height,
                ..previous
            };
            let removal = match alias_change(state, &old, kind, &identifier, false, ctx)? {
                Ok(write) => write,
                Err(e) => return Ok(Err(e)),
            };
            Ok(Ok(vec![removal, (key, json(&record))]))
        }
        NamespaceOperation::Link {
            did,
            kind,
            identifier,
            confirm,
        } => link(
            did, kind, identifier, confirm, ac_code, signer, signer_key, state, ctx,
        ),
    }
}

/// `link` / `unlink`: the DID's controller confirms an identifier, or withdraws that.
#[allow(clippy::too_many_arguments)]
fn link(
    did: &str,
    kind: Kind,
    identifier: &str,
    confirm: bool,
    ac_code: Option<AcCode>,
    signer: &str,
    signer_key: &PublicKey,
    state: &dyn StateView,
    ctx: &ExecContext<'_>,
) -> Result<Result<Writes, OperationError>, LedgerError> {
    let identifier = match normalize_identifier(kind, identifier) {
        Ok(i) => i,
        Err(e) => return Ok(Err(e.into())),
    };
    let bid: Bid = match did.parse() {
        Ok(b) => b,
        Err(e) => {
            return Ok(Err(OperationError::Document(
                sparkid_bid::DocumentError::InvalidId(e),
            )))
        }
    };
    // Consent is given where the DID lives: its keys are on no other chain.
    if bid.ac_code() != ac_code || bid.is_ac_code_only() {
        return Ok(Err(OperationError::WrongChain {
            did: did.to_string(),
            expected: bid
                .ac_code()
                .map_or_else(|| "the main chain".into(), |a| format!("sub-chain {a}")),
            this: ac_code.map_or_else(|| "the main chain".into(), |a| format!("sub-chain {a}")),
        }));
    }
    if let Err(e) = live_did(did, ac_code, state)? {
        return Ok(Err(e));
    }
    if !speaks_for(did, signer, signer_key, state, false)? {
        return Ok(Err(OperationError::NotController {
            signer: signer.to_string(),
            did: did.to_string(),
        }));
    }
    let key = alias_key(did);
    let mut record = read::<AliasRecord>(state, &key)?.unwrap_or(AliasRecord {
        did: did.to_string(),
        aliases: Vec::new(),
        linked: Vec::new(),
        version_id: 0,
        height: ctx.height,
    });
    let alias = Alias { kind, identifier };
    let position = record.linked.binary_search(&alias);
    match (confirm, position) {
        (true, Ok(_)) => {
            return Ok(Err(OperationError::AlreadyExists(format!(
                "{kind} {} linked to {did}",
                alias.identifier
            ))))
        }
        (true, Err(_)) if record.linked.len() >= MAX_LINKS_PER_DID => {
            return Ok(Err(OperationError::TooManyAliases {
                did: did.to_string(),
                what: "linked identifiers",
                limit: MAX_LINKS_PER_DID,
            }))
        }
        (true, Err(at)) => record.linked.insert(at, alias),
        (false, Ok(at)) => {
            record.linked.remove(at);
        }
        (false, Err(_)) => {
            return Ok(Err(OperationError::NotFound(format!(
                "{kind} {} is not linked to {did}",
                alias.identifier
            ))))
        }
    }
    record.version_id += 1;
    record.height = ctx.height;
    Ok(Ok(vec![(key, json(&record))]))
}

/// A record as state stores it. Records are plain data, so serializing cannot fail.
fn json<T: Serialize>(record: &T) -> String {
    serde_json::to_string(record).unwrap_or_default()
}

fn check_endpoints(kind: Kind, endpoints: &[String]) -> Result<(), OperationError> {
    if !matches!(kind, Kind::Ac | Kind::Handle) && !endpoints.is_empty() {
        return Err(OperationError::Malformed(
            "endpoints apply to AC-code and Handle-prefix delegations only".into(),
        ));
    }
    if endpoints.len() > MAX_ENDPOINTS {
        return Err(OperationError::Malformed(format!(
            "at most {MAX_ENDPOINTS} endpoints"
        )));
    }
    if kind == Kind::Handle {
        for e in endpoints {
            if e.len() > MAX_ENDPOINT_LEN {
                return Err(OperationError::Malformed(format!(
                    "endpoint {:?}… is over {MAX_ENDPOINT_LEN} characters",
                    e.chars().take(80).collect::<String>()
                )));
            }
            e.parse::<HandleEndpoint>()
                .map_err(OperationError::Malformed)?;
        }
        return Ok(());
    }
    for e in endpoints {
        let ok = e.len() <= MAX_ENDPOINT_LEN
            && (e.starts_with("https://") || e.starts_with("http://"))
            && !e.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            return Err(OperationError::Malformed(format!(
                "endpoint {:?} is not an http(s) URL of at most {MAX_ENDPOINT_LEN} characters",
                e.chars().take(80).collect::<String>()
            )));
        }
    }
    Ok(())
}

/// The DID's record, which must exist and be live when the DID is on this chain. A DID of
/// another chain is that chain's to answer for.
fn live_did(
    did: &str,
    ac_code: Option<AcCode>,
    state: &dyn StateView,
) -> Result<Result<(), OperationError>, LedgerError> {
    let bid: Bid = match did.parse() {
        Ok(b) => b,
        Err(e) => {
            return Ok(Err(OperationError::Document(
                sparkid_bid::DocumentError::InvalidId(e),
            )))
        }
    };
    if bid.is_ac_code_only() {
        return Ok(Err(OperationError::AcCodeRecord(did.to_string())));
    }
    if bid.ac_code() != ac_code {
        return Ok(Ok(()));
    }
    match read::<DidRecord>(state, &did_key(&bid))? {
        None => Ok(Err(OperationError::NotFound(did.to_string()))),
        Some(r) if r.deactivated => Ok(Err(OperationError::Deactivated(did.to_string()))),
        Some(_) => Ok(Ok(())),
    }
}

/// Checks that the signer speaks for `controller`: an authentication key of its live document,
/// or, when `allow_derived` and the DID has no record yet, the key its BID derives from.
pub(crate) fn speaks_for(
    controller: &str,
    signer: &str,
    signer_key: &PublicKey,
    state: &dyn StateView,
    allow_derived: bool,
) -> Result<bool, LedgerError> {
    let Ok(bid) = controller.parse::<Bid>() else {
        return Ok(false);
    };
    match read::<DidRecord>(state, &did_key(&bid))? {
        Some(record) if !record.deactivated => {
            let Ok(doc) = record.bid_document() else {
                return Ok(false);
            };
            Ok(is_authentication_key(&doc, signer, signer_key))
        }
        Some(_) => Ok(false),
        None => Ok(allow_derived
            && bid.is_derived_from(signer_key)
            && signer.split('#').next() == Some(controller)),
    }
}

fn is_authentication_key(doc: &BidDocument, signer: &str, signer_key: &PublicKey) -> bool {
    doc.authentication.iter().any(|a| a == signer)
        && doc
            .find_key(signer)
            .and_then(|k| k.key().ok())
            .is_some_and(|k| &k == signer_key)
}

fn check_authority(
    signer: &str,
    signer_key: &PublicKey,
    state: &dyn StateView,
    ctx: &ExecContext<'_>,
) -> Result<Result<(), OperationError>, LedgerError> {
    let Some(authority) = ctx.genesis.authority.as_deref() else {
        return Ok(Err(OperationError::NoAuthority));
    };
    if speaks_for(authority, signer, signer_key, state, true)? {
        Ok(Ok(()))
    } else {
        Ok(Err(OperationError::NotAuthority {
            signer: signer.to_string(),
            authority: authority.to_string(),
        }))
    }
}

/// The delegated namespace covering `identifier`, which the signer must speak for.
fn owned_namespace(
    kind: Kind,
    identifier: &str,
    signer: &str,
    signer_key: &PublicKey,
    state: &dyn StateView,
) -> Result<Result<NamespaceRecord, OperationError>, LedgerError> {
    let Some(namespace) = find_namespace(state, kind, identifier)? else {
        return Ok(Err(OperationError::NoNamespace {
            kind,
            identifier: identifier.to_string(),
        }));
    };
    if !speaks_for(&namespace.owner, signer, signer_key, state, false)? {
        return Ok(Err(OperationError::NotNamespaceOwner {
            signer: signer.to_string(),
            namespace: namespace.namespace,
            owner: namespace.owner,
        }));
    }
    Ok(Ok(namespace))
}

/// The write that adds `identifier` to (or removes it from) `did`'s bound identifiers; refused
/// when adding would pass [`MAX_ALIASES_PER_DID`]. A removal is never refused.
fn alias_change(
    state: &dyn StateView,
    did: &str,
    kind: Kind,
    identifier: &str,
    add: bool,
    ctx: &ExecContext<'_>,
) -> Result<Result<(String, String), OperationError>, LedgerError> {
    let key = alias_key(did);
    let mut record = read::<AliasRecord>(state, &key)?.unwrap_or(AliasRecord {
        did: did.to_string(),
        aliases: Vec::new(),
        linked: Vec::new(),
        version_id: 0,
        height: ctx.height,
    });
    let alias = Alias {
        kind,
        identifier: identifier.to_string(),
    };
    record.aliases.retain(|a| a != &alias);
    if add {
        if record.aliases.len() >= MAX_ALIASES_PER_DID {
            return Ok(Err(OperationError::TooManyAliases {
                did: did.to_string(),
                what: "bound identifiers",
                limit: MAX_ALIASES_PER_DID,
            }));
        }
        record.aliases.push(alias);
        record.aliases.sort();
    }
    record.version_id += 1;
    record.height = ctx.height;
    Ok(Ok((key, json(&record))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammars_accept_canonical_forms_and_name_the_broken_rule() {
        assert_eq!(normalize_namespace(Kind::Vaa, "VAA123").unwrap(), "VAA123");
        assert!(matches!(
            normalize_namespace(Kind::Vaa, "VAA"),
            Err(NameError::VaaLength(_))
        ));
        assert!(matches!(
            normalize_identifier(Kind::Vaa, "vaa123"),
            Err(NameError::VaaCharacters(_))
        ));
        assert!(matches!(
            normalize_identifier(Kind::Vaa, "ABC123"),
            Err(NameError::VaaAgency(_))
        ));
        assert!(matches!(
            normalize_identifier(Kind::Vaa, &format!("VAA{}", "1".repeat(70))),
            Err(NameError::VaaLength(_))
        ));
        assert_eq!(
            normalize_identifier(Kind::Handle, "86.100.A/Pump-7").unwrap(),
            "86.100.a/pump-7"
        );
        assert!(normalize_identifier(Kind::Handle, "86.100").is_err());
        assert!(normalize_identifier(Kind::Handle, "86..1/x").is_err());
        assert!(matches!(
            normalize_namespace(Kind::Handle, "BID.abcd"),
            Err(NameError::ReservedHandlePrefix(_))
        ));
        assert_eq!(
            normalize_identifier(Kind::Dns, "Pump.Example.COM.").unwrap(),
            "pump.example.com"
        );
        assert!(normalize_identifier(Kind::Dns, "-a.example").is_err());
        assert!(normalize_identifier(Kind::Dns, "a..example").is_err());
        assert_eq!(
            normalize_identifier(Kind::Dns, "_did.example.com").unwrap(),
            "_did.example.com"
        );
        assert!(normalize_namespace(Kind::Ac, "abcd").is_ok());
        assert!(normalize_namespace(Kind::Ac, "abcde").is_err());
        assert_eq!(
            normalize_identifier(Kind::Ac, "abcd"),
            Err(NameError::NoBindingsUnderAc)
        );
    }

    #[test]
    fn covering_namespaces_go_from_longest_to_shortest() {
        assert_eq!(
            covering_namespaces(Kind::Vaa, "VAA12345"),
            ["VAA12345", "VAA1234", "VAA123", "VAA12", "VAA1"]
        );
        assert_eq!(
            covering_namespaces(Kind::Handle, "86.100.1/x/y"),
            ["86.100.1", "86.100", "86"]
        );
        assert_eq!(
            covering_namespaces(Kind::Dns, "a.b.example.com"),
            ["a.b.example.com", "b.example.com", "example.com", "com"]
        );
        // Text that never went through normalization: no panic inside a character.
        assert_eq!(
            covering_namespaces(Kind::Vaa, "VAA1\u{e9}2"),
            ["VAA1\u{e9}2", "VAA1\u{e9}", "VAA1"]
        );
    }
}
