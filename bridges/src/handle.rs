//! The Handle bridge: handles bound on the ledger, prefix handles (`0.NA/<prefix>`, and the bare
//! prefix as the IDIS SDK asks for it), DIDs read as handle records (`bid/<address>`) and the
//! identifiers of the other kinds read as the record of the DID bound to them (`gs1/…`,
//! `ecode/…`, `urn.oid/…`), rendered as handle values for the native protocol ([`wire`]) and the REST API
//! ([`rest_json`]). A prefix's record carries the `HS_SITE` ([`site`]) of the node serving it.
//! The mapping is `spec/handle.md`.

pub mod site;
pub mod wire;

use serde_json::{json, Value};
use sparkid_bid::Bid;
use sparkid_registrar::namespace::{
    alias_key, binding_key, namespace_key, normalize_identifier, normalize_namespace, AliasRecord,
    BindingRecord, HandleEndpoint, Kind, NamespaceRecord,
};
use sparkid_registrar::{did_key, DidRecord};

use crate::bridge::{read, Bridge, BridgeError, RecordSource};
use site::SiteInfo;
use wire::{response_code, HandleValue};

/// The prefix of prefix handles.
pub const NA_PREFIX: &str = "0.NA";
/// The reserved prefix under which a main-chain DID reads as a handle (`bid/<address>`); a
/// sub-chain DID reads under `bid.<ac>`. (Not `did.…`: pyhandle strips the leading characters
/// `h`, `d`, `l`, `o`, `i` and `:` of every handle it is given.)
pub const DID_PREFIX: &str = "bid";
/// The reserved prefix under which a GS1 key reads as the record of the DID bound to it: the
/// Digital Link path without its first `/` (`gs1/01/09506000134352/10/LOT7`).
pub const GS1_PREFIX: &str = "gs1";
/// The reserved prefix under which an Ecode reads as the record of the DID bound to it
/// (`ecode/100010000001`; a V0 code answers from the binding of its GS1 key).
pub const ECODE_PREFIX: &str = "ecode";
/// The reserved prefix under which an OID reads as the record of the DID bound to it
/// (`urn.oid/1.2.156.3001.1.7`; not `oid/`, which pyhandle would strip to `/…`).
pub const OID_PREFIX: &str = "urn.oid";
/// The TTL of every value, in seconds (relative).
pub const VALUE_TTL: u32 = 3600;

/// Index of the resolver URL value.
pub const INDEX_URL: u32 = 1;
/// Index of the DID value.
pub const INDEX_DID: u32 = 2;
/// Index of the DID document (DID records) or the namespace record (prefix handles).
pub const INDEX_DOCUMENT: u32 = 3;
/// Index of the DID's metadata.
pub const INDEX_METADATA: u32 = 4;
/// Index of a prefix's `HS_SITE` value: the site of the node serving it.
pub const INDEX_SITE: u32 = 5;
/// Index of the first service endpoint; services take 10 to 99.
pub const FIRST_SERVICE_INDEX: u32 = 10;
/// The most service endpoints rendered as values.
pub const MAX_SERVICES: usize = 90;
/// Index of the first of the DID's confirmed identifiers (`ALIAS` values); a DID has at most
/// 64 bound identifiers, so they take 100 to 163.
pub const FIRST_ALIAS_INDEX: u32 = 100;

/// Type of the resolver URL and of service endpoints.
pub const TYPE_URL: &str = "URL";
/// Type of the DID.
pub const TYPE_DID: &str = "DID";
/// Type of the DID document (DID Core JSON).
pub const TYPE_DID_DOCUMENT: &str = "DID_DOCUMENT";
/// Type of the DID's metadata (JSON: created, updated, versionId, deactivated).
pub const TYPE_DID_METADATA: &str = "DID_METADATA";
/// Type of a prefix handle's namespace record (JSON).
pub const TYPE_NAMESPACE: &str = "NAMESPACE";
/// Type of an identifier the DID's controller confirmed, as its alias URI (`urn:oid:…`,
/// `https://id.gs1.org/…`, `ecode:…`, `vaa:…`, `hdl:…`, `dns:…`): the DID's `alsoKnownAs`.
/// Not `HS_ALIAS`, which tells a client to resolve another handle instead.
pub const TYPE_ALIAS: &str = "ALIAS";

/// The Handle bridge.
#[derive(Debug, Clone, Copy, Default)]
pub struct HandleBridge;

impl Bridge for HandleBridge {
    fn system(&self) -> &'static str {
        "handle"
    }

    fn kind(&self) -> Kind {
        Kind::Handle
    }

    fn uri_scheme(&self) -> &'static str {
        "hdl"
    }
}

/// What a handle names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandleName {
    /// A handle that bindings may name, canonical (lower-case).
    Bound(String),
    /// `0.NA/<prefix>`, or the bare `<prefix>` (the IDIS SDK's discovery form): a delegated
    /// prefix, canonical.
    Prefix(String),
    /// `bid[.<ac>]/<address>`: the record of a DID.
    Did(String),
    /// `gs1/…`, `ecode/…`, `urn.oid/…`: the record of the DID an identifier of that kind is
    /// bound to (a V0 Ecode is read as its GS1 key).
    Identifier {
        /// The kind whose binding answers.
        kind: Kind,
        /// The identifier, canonical.
        identifier: String,
    },
}

fn invalid(rule: impl Into<String>) -> BridgeError {
    BridgeError::Invalid {
        system: "handle",
        rule: rule.into(),
    }
}

/// Parses a handle as a client sends it. Prefixes compare ASCII case-insensitively; suffixes of
/// bound handles and prefix handles too; the address in `bid/<address>` keeps its case.
pub fn parse_handle(handle: &str) -> Result<HandleName, BridgeError> {
    if handle.len() > wire::MAX_HANDLE_LEN {
        return Err(invalid(format!(
            "a handle is at most {} bytes",
            wire::MAX_HANDLE_LEN
        )));
    }
    let Some((prefix, suffix)) = handle.split_once('/') else {
        // A bare prefix names the prefix, as the IDIS SDK resolves it to find its node.
        return normalize_namespace(Kind::Handle, handle)
            .map(HandleName::Prefix)
            .map_err(|e| {
                invalid(format!(
                    "{handle:?}: a handle is <prefix>/<suffix>, or a bare prefix: {e}"
                ))
            });
    };
    if prefix.eq_ignore_ascii_case(NA_PREFIX) {
        return normalize_namespace(Kind::Handle, suffix)
            .map(HandleName::Prefix)
            .map_err(|e| invalid(e.to_string()));
    }
    let lower = prefix.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix(DID_PREFIX) {
        let did = match rest.strip_prefix('.') {
            None if rest.is_empty() => format!("did:bid:{suffix}"),
            Some(ac) => format!("did:bid:{ac}:{suffix}"),
            None => return bound(handle),
        };
        return match did.parse::<Bid>() {
            Ok(bid) if !bid.is_ac_code_only() => Ok(HandleName::Did(bid.to_string())),
            Ok(_) => Err(invalid(format!(
                "{handle:?}: {DID_PREFIX}/ names a DID address"
            ))),
            Err(e) => Err(invalid(format!(
                "{handle:?}: {DID_PREFIX}[.<ac>]/<address> names a DID: {e}"
            ))),
        };
    }
    if let Some(kind) = mapped_kind(&lower) {
        return mapped(handle, kind, suffix);
    }
    bound(handle)
}

/// The kind whose identifiers a reserved prefix (lower-case) maps.
fn mapped_kind(prefix: &str) -> Option<Kind> {
    match prefix {
        GS1_PREFIX => Some(Kind::Gs1),
        ECODE_PREFIX => Some(Kind::Ecode),
        OID_PREFIX => Some(Kind::Oid),
        _ => None,
    }
}

/// The handle of an identifier under its kind's reserved prefix (`spec/handle.md`, "Other
/// identifiers"), or none for kinds that have none.
pub fn identifier_handle(kind: Kind, identifier: &str) -> Option<String> {
    match kind {
        Kind::Gs1 => Some(format!("{GS1_PREFIX}{identifier}")),
        Kind::Ecode => Some(format!("{ECODE_PREFIX}/{identifier}")),
        Kind::Oid => Some(format!("{OID_PREFIX}/{identifier}")),
        _ => None,
    }
}

fn mapped(handle: &str, kind: Kind, suffix: &str) -> Result<HandleName, BridgeError> {
    let refused = |e: String| invalid(format!("{handle:?}: {e}"));
    let identifier = match kind {
        Kind::Gs1 => normalize_identifier(kind, &format!("/{suffix}")),
        Kind::Ecode if suffix.starts_with('0') => {
            // V0 is GS1's: the code answers from its GS1 key's binding.
            return sparkid_registrar::ecode::v0_gs1_path(suffix)
                .map(|identifier| HandleName::Identifier {
                    kind: Kind::Gs1,
                    identifier,
                })
                .map_err(|e| refused(e.to_string()));
        }
        _ => normalize_identifier(kind, suffix),
    }
    .map_err(|e| refused(e.to_string()))?;
    Ok(HandleName::Identifier { kind, identifier })
}

fn bound(handle: &str) -> Result<HandleName, BridgeError> {
    normalize_identifier(Kind::Handle, handle)
        .map(HandleName::Bound)
        .map_err(|e| invalid(e.to_string()))
}

/// Seconds since the epoch of a record's RFC 3339 time (0 if it does not parse).
pub fn epoch(rfc3339: &str) -> u32 {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp().clamp(0, u32::MAX.into()) as u32)
        .unwrap_or(0)
}

/// ISO 8601 (UTC, seconds) of an epoch time, as Handle.Net's REST API writes timestamps.
pub fn iso8601(epoch: u32) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch.into())
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// Whether a value of type `actual` answers a request for type `requested`: equal ignoring
/// ASCII case, or `requested` is a parent type (`HS_SITE` matches `HS_SITE.PREFIX`).
pub fn type_matches(requested: &[u8], actual: &[u8]) -> bool {
    if requested.len() > actual.len() {
        return false;
    }
    let (head, tail) = actual.split_at(requested.len());
    head.eq_ignore_ascii_case(requested) && (tail.is_empty() || tail[0] == b'.')
}

/// The values that match the filters: all when both lists are empty, else those whose index is
/// listed or whose type matches a listed type.
pub fn filter_values<T: AsRef<[u8]>>(
    values: Vec<HandleValue>,
    indexes: &[u32],
    types: &[T],
) -> Vec<HandleValue> {
    if indexes.is_empty() && types.is_empty() {
        return values;
    }
    values
        .into_iter()
        .filter(|v| {
            indexes.contains(&v.index)
                || types
                    .iter()
                    .any(|t| type_matches(t.as_ref(), &v.value_type))
        })
        .collect()
}

/// The outcome of a resolution, for either door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandleAnswer {
    /// The response code (1, 2, 100, 102 or 200).
    pub code: u32,
    /// The values (when the code is 1).
    pub values: Vec<HandleValue>,
    /// What went wrong (other codes).
    pub message: Option<String>,
}

impl HandleAnswer {
    fn error(code: u32, message: impl Into<String>) -> HandleAnswer {
        HandleAnswer {
            code,
            values: Vec::new(),
            message: Some(message.into()),
        }
    }

    /// As the native protocol's resolver outcome.
    pub fn into_lookup(self) -> wire::Lookup {
        match self.code {
            response_code::SUCCESS => wire::Lookup::Values(self.values),
            code => wire::Lookup::Error(code, self.message.unwrap_or_default()),
        }
    }
}

impl HandleBridge {
    /// The values of the DID `did`: its resolver URL and the DID, then, when it is on this
    /// ledger and `with_record`, its document, metadata and service endpoints. `stamp` times
    /// the first two.
    fn did_values(
        &self,
        source: &dyn RecordSource,
        did: &str,
        stamp: u32,
        base_url: &str,
        with_record: bool,
    ) -> Result<Vec<HandleValue>, BridgeError> {
        let base = base_url.trim_end_matches('/');
        let mut values = vec![
            HandleValue::new(
                INDEX_URL,
                TYPE_URL,
                format!("{base}/1.0/identifiers/{did}"),
                stamp,
                VALUE_TTL,
            ),
            HandleValue::new(INDEX_DID, TYPE_DID, did, stamp, VALUE_TTL),
        ];
        let Ok(bid) = did.parse::<Bid>() else {
            return Ok(values);
        };
        if !with_record {
            return Ok(values);
        }
        let Some(record) = read::<DidRecord>(source, &did_key(&bid))? else {
            return Ok(values);
        };
        let updated = epoch(&record.updated);
        let document = if record.deactivated {
            None
        } else {
            record.bid_document().ok().map(|d| d.to_did_core())
        };
        if let Some(doc) = &document {
            values.push(HandleValue::new(
                INDEX_DOCUMENT,
                TYPE_DID_DOCUMENT,
                doc.to_string(),
                updated,
                VALUE_TTL,
            ));
        }
        let metadata = json!({
            "created": record.created,
            "updated": record.updated,
            "versionId": record.version_id.to_string(),
            "deactivated": record.deactivated,
        });
        values.push(HandleValue::new(
            INDEX_METADATA,
            TYPE_DID_METADATA,
            metadata.to_string(),
            updated,
            VALUE_TTL,
        ));
        let services = document
            .as_ref()
            .and_then(|d| d.get("service"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let endpoints = services
            .iter()
            .filter_map(|s| s.get("serviceEndpoint").and_then(Value::as_str))
            .take(MAX_SERVICES);
        for (i, endpoint) in endpoints.enumerate() {
            values.push(HandleValue::new(
                FIRST_SERVICE_INDEX + i as u32,
                TYPE_URL,
                endpoint,
                updated,
                VALUE_TTL,
            ));
        }
        // The DID's side: the identifiers its controller confirmed, as `alsoKnownAs` lists them.
        if let Some(aliases) = read::<AliasRecord>(source, &alias_key(did))? {
            let uris = aliases.confirmed_uris(Some(&record.document));
            for (i, uri) in uris.iter().enumerate() {
                values.push(HandleValue::new(
                    FIRST_ALIAS_INDEX + i as u32,
                    TYPE_ALIAS,
                    uri.as_str(),
                    updated,
                    VALUE_TTL,
                ));
            }
        }
        Ok(values)
    }

    /// The record of a parsed handle, or none when this ledger does not hold it.
    pub fn values(
        &self,
        source: &dyn RecordSource,
        name: &HandleName,
        base_url: &str,
    ) -> Result<Option<Vec<HandleValue>>, BridgeError> {
        self.candidates(source, name, base_url, None, true)
    }

    /// The record of a parsed handle; without `with_record`, a bound handle's values stop at
    /// the URL and the DID (the DID's own record is not read). `site` is this node's, for the
    /// prefixes it serves itself.
    fn candidates(
        &self,
        source: &dyn RecordSource,
        name: &HandleName,
        base_url: &str,
        site: Option<&SiteInfo>,
        with_record: bool,
    ) -> Result<Option<Vec<HandleValue>>, BridgeError> {
        match name {
            HandleName::Bound(handle)
            | HandleName::Identifier {
                identifier: handle, ..
            } => {
                let kind = match name {
                    HandleName::Identifier { kind, .. } => *kind,
                    _ => Kind::Handle,
                };
                let Some(binding) = read::<BindingRecord>(source, &binding_key(kind, handle))?
                else {
                    return Ok(None);
                };
                let Some(did) = binding.did.as_deref() else {
                    return Ok(None);
                };
                self.did_values(source, did, epoch(&binding.updated), base_url, with_record)
                    .map(Some)
            }
            HandleName::Prefix(prefix) => {
                let Some(ns) =
                    read::<NamespaceRecord>(source, &namespace_key(Kind::Handle, prefix))?
                else {
                    return Ok(None);
                };
                let stamp = epoch(&ns.updated);
                let base = base_url.trim_end_matches('/');
                let record = json!({
                    "prefix": ns.namespace,
                    "owner": ns.owner,
                    "created": ns.created,
                    "updated": ns.updated,
                    "versionId": ns.version_id.to_string(),
                    "height": ns.height,
                });
                let mut values = vec![
                    HandleValue::new(
                        INDEX_URL,
                        TYPE_URL,
                        format!("{base}/1.0/identifiers/{}", ns.owner),
                        stamp,
                        VALUE_TTL,
                    ),
                    HandleValue::new(INDEX_DID, TYPE_DID, ns.owner.as_str(), stamp, VALUE_TTL),
                    HandleValue::new(
                        INDEX_DOCUMENT,
                        TYPE_NAMESPACE,
                        record.to_string(),
                        stamp,
                        VALUE_TTL,
                    ),
                ];
                if let Some(site) = prefix_site(&ns, site) {
                    values.push(HandleValue::new(
                        INDEX_SITE,
                        site::TYPE_SITE,
                        site.encode(),
                        stamp,
                        VALUE_TTL,
                    ));
                }
                Ok(Some(values))
            }
            HandleName::Did(did) => {
                let Ok(bid) = did.parse::<Bid>() else {
                    return Ok(None);
                };
                let Some(record) = read::<DidRecord>(source, &did_key(&bid))? else {
                    return Ok(None);
                };
                self.did_values(source, did, epoch(&record.updated), base_url, true)
                    .map(Some)
            }
        }
    }

    /// Resolves a handle as either door receives it (bytes that should be UTF-8), with index
    /// and type filters, on a node whose site is not known (prefixes it serves carry no
    /// `HS_SITE`): [`HandleBridge::answer_with_site`] without a site.
    pub fn answer<T: AsRef<[u8]>>(
        &self,
        source: &dyn RecordSource,
        handle: &[u8],
        indexes: &[u32],
        types: &[T],
        base_url: &str,
    ) -> HandleAnswer {
        self.answer_with_site(source, handle, indexes, types, base_url, None)
    }

    /// Resolves a handle as either door receives it (bytes that should be UTF-8), with index
    /// and type filters. `site` is this node's: the `HS_SITE` of the prefixes this chain
    /// serves itself (a prefix delegated with endpoints names another node's).
    pub fn answer_with_site<T: AsRef<[u8]>>(
        &self,
        source: &dyn RecordSource,
        handle: &[u8],
        indexes: &[u32],
        types: &[T],
        base_url: &str,
        site: Option<&SiteInfo>,
    ) -> HandleAnswer {
        let Ok(text) = std::str::from_utf8(handle) else {
            return HandleAnswer::error(response_code::INVALID_HANDLE, "a handle is UTF-8");
        };
        let name = match parse_handle(text) {
            Ok(n) => n,
            Err(e) => return HandleAnswer::error(response_code::INVALID_HANDLE, e.to_string()),
        };
        // Only the URL and the DID asked for: the DID's record need not be read and rendered.
        let with_record = (indexes.is_empty() && types.is_empty())
            || indexes.iter().any(|i| *i > INDEX_DID)
            || types.iter().any(|t| {
                [TYPE_URL, TYPE_DID_DOCUMENT, TYPE_DID_METADATA, TYPE_ALIAS]
                    .iter()
                    .any(|actual| type_matches(t.as_ref(), actual.as_bytes()))
            });
        match self.candidates(source, &name, base_url, site, with_record) {
            Err(e) => HandleAnswer::error(response_code::ERROR, e.to_string()),
            Ok(None) => HandleAnswer::error(
                response_code::HANDLE_NOT_FOUND,
                format!("{text} is not bound here"),
            ),
            Ok(Some(values)) => {
                let values = filter_values(values, indexes, types);
                if values.is_empty() {
                    HandleAnswer::error(
                        response_code::VALUES_NOT_FOUND,
                        "no value matches the index and type filters",
                    )
                } else {
                    HandleAnswer {
                        code: response_code::SUCCESS,
                        values,
                        message: None,
                    }
                }
            }
        }
    }
}

/// The site serving a delegated prefix: the node its delegation's endpoints name, else this
/// node's (`here`). Endpoints that do not parse (none should: the registrar checks them) are
/// skipped.
fn prefix_site(ns: &NamespaceRecord, here: Option<&SiteInfo>) -> Option<SiteInfo> {
    if ns.endpoints.is_empty() {
        return here.cloned();
    }
    let endpoints: Vec<HandleEndpoint> =
        ns.endpoints.iter().filter_map(|e| e.parse().ok()).collect();
    SiteInfo::from_endpoints(
        &endpoints,
        ns.version_id.min(u16::MAX.into()) as u16,
        &format!("prefix {} (delegated to another node)", ns.namespace),
    )
}

/// A value as Handle.Net's REST API writes it.
pub fn value_json(v: &HandleValue) -> Value {
    let data = match std::str::from_utf8(&v.data) {
        Ok(s) => json!({ "format": "string", "value": s }),
        Err(_) => json!({ "format": "base64", "value": base64(&v.data) }),
    };
    let mut out = json!({
        "index": v.index,
        "type": String::from_utf8_lossy(&v.value_type),
        "data": data,
    });
    if v.ttl_type == 0 {
        out["ttl"] = json!(v.ttl);
    } else {
        out["ttl"] = json!(iso8601(v.ttl));
    }
    if v.timestamp != 0 {
        out["timestamp"] = json!(iso8601(v.timestamp));
    }
    if v.permissions != wire::permission::DEFAULT {
        let bit = |b: u8| if v.permissions & b != 0 { '1' } else { '0' };
        use wire::permission::*;
        out["permissions"] = json!([
            bit(ADMIN_READ),
            bit(ADMIN_WRITE),
            bit(PUBLIC_READ),
            bit(PUBLIC_WRITE)
        ]
        .iter()
        .collect::<String>());
    }
    if !v.references.is_empty() {
        out["references"] = v
            .references
            .iter()
            .map(|r| json!({ "handle": String::from_utf8_lossy(&r.handle), "index": r.index }))
            .collect();
    }
    out
}

/// The REST body of an answer: `{"responseCode", "handle", "values"}` (values empty for 200),
/// or `{"responseCode", "handle", "message"}`.
pub fn rest_json(handle: &str, answer: &HandleAnswer) -> Value {
    match answer.code {
        response_code::SUCCESS => json!({
            "responseCode": answer.code,
            "handle": handle,
            "values": answer.values.iter().map(value_json).collect::<Vec<_>>(),
        }),
        response_code::VALUES_NOT_FOUND => json!({
            "responseCode": answer.code,
            "handle": handle,
            "values": [],
        }),
        code => {
            let mut out = json!({ "responseCode": code, "handle": handle });
            if let Some(m) = &answer.message {
                out["message"] = json!(m);
            }
            out
        }
    }
}

/// The HTTP status Handle.Net's REST API gives a resolution's response code.
pub fn rest_status(code: u32) -> u16 {
    match code {
        1 | 200 => 200,
        302 | 303 => 300,
        100 => 404,
        101 | 201 => 409,
        4 | 102 | 202 | 301 => 400,
        5 => 501,
        3 | 7 => 503,
        402 => 401,
        400 | 401 | 403 | 404 => 403,
        _ => 500,
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_parse_into_bound_prefix_and_did_forms() {
        assert_eq!(
            parse_handle("86.100.A/Pump-7").unwrap(),
            HandleName::Bound("86.100.a/pump-7".into())
        );
        assert_eq!(
            parse_handle("0.na/86.100").unwrap(),
            HandleName::Prefix("86.100".into())
        );
        let did = "did:bid:ef18F9AVK4SQLZPRrPkrVWwp9kbpdXHx";
        assert_eq!(
            parse_handle("BID/ef18F9AVK4SQLZPRrPkrVWwp9kbpdXHx").unwrap(),
            HandleName::Did(did.into())
        );
        assert_eq!(
            parse_handle("bid.abcd/ef18F9AVK4SQLZPRrPkrVWwp9kbpdXHx").unwrap(),
            HandleName::Did("did:bid:abcd:ef18F9AVK4SQLZPRrPkrVWwp9kbpdXHx".into())
        );
        // A prefix that only starts with the reserved letters is an ordinary prefix.
        assert_eq!(
            parse_handle("bidx/a").unwrap(),
            HandleName::Bound("bidx/a".into())
        );
        assert_eq!(
            parse_handle("88.100").unwrap(),
            HandleName::Prefix("88.100".into()),
            "a bare prefix names the prefix (IDIS discovery)"
        );
        for bad in [
            "86..1",
            "bid",
            "86..1/x",
            "/x",
            "0.NA/8 6",
            "bid/notabid",
            "bid/abcd",
        ] {
            assert!(parse_handle(bad).is_err(), "{bad}");
        }
        assert!(parse_handle(&format!("86/{}", "x".repeat(3000))).is_err());
    }

    #[test]
    fn reserved_prefixes_map_gs1_keys_ecodes_and_oids() {
        let id = |kind, identifier: &str| HandleName::Identifier {
            kind,
            identifier: identifier.into(),
        };
        assert_eq!(
            parse_handle("GS1/01/9506000134352/10/LOT7").unwrap(),
            id(Kind::Gs1, "/01/09506000134352/10/LOT7"),
            "the prefix ignores case, the GS1 value keeps it"
        );
        assert_eq!(
            parse_handle("ecode/100010000001").unwrap(),
            id(Kind::Ecode, "100010000001")
        );
        assert_eq!(
            parse_handle("ecode/09506000134352").unwrap(),
            id(Kind::Gs1, "/01/09506000134352"),
            "a V0 Ecode is its GS1 key"
        );
        assert_eq!(
            parse_handle("urn.oid/1.2.156.3001.1.7").unwrap(),
            id(Kind::Oid, "1.2.156.3001.1.7")
        );
        for bad in [
            "gs1/01/9506000134353",
            "ecode/1A",
            "ecode/0123",
            "urn.oid/1.02",
        ] {
            let e = parse_handle(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
        assert_eq!(
            identifier_handle(Kind::Gs1, "/01/09506000134352").as_deref(),
            Some("gs1/01/09506000134352")
        );
        assert_eq!(
            identifier_handle(Kind::Oid, "1.2.3").as_deref(),
            Some("urn.oid/1.2.3")
        );
    }

    #[test]
    fn filters_take_indexes_or_types_and_parent_types() {
        let values = vec![
            HandleValue::new(1, "URL", "u", 0, 1),
            HandleValue::new(2, "DID", "d", 0, 1),
            HandleValue::new(7, "HS_SITE.PREFIX", "s", 0, 1),
        ];
        let idx = |v: Vec<HandleValue>| v.iter().map(|v| v.index).collect::<Vec<_>>();
        assert_eq!(
            idx(filter_values(values.clone(), &[], &[] as &[&str])),
            [1, 2, 7]
        );
        assert_eq!(idx(filter_values(values.clone(), &[2], &["url"])), [1, 2]);
        assert_eq!(idx(filter_values(values.clone(), &[], &["HS_SITE"])), [7]);
        assert_eq!(
            idx(filter_values(values.clone(), &[], &["HS_SIT"])),
            Vec::<u32>::new()
        );
        assert!(filter_values(values, &[9], &[] as &[&str]).is_empty());
    }

    #[test]
    fn rest_json_has_the_handle_net_shape() {
        let mut v = HandleValue::new(1, "URL", "https://x.example", 1_000_000_000, 3600);
        let j = value_json(&v);
        assert_eq!(
            j,
            json!({"index":1,"type":"URL","data":{"format":"string","value":"https://x.example"},
                   "ttl":3600,"timestamp":"2001-09-09T01:46:40Z"})
        );
        v.data = vec![0xff, 0, 1];
        v.permissions = 0x0f;
        let j = value_json(&v);
        assert_eq!(j["data"], json!({"format":"base64","value":"/wAB"}));
        assert_eq!(j["permissions"], "1111");
        assert_eq!(rest_status(100), 404);
        assert_eq!(rest_status(200), 200);
        assert_eq!(rest_status(102), 400);
        assert_eq!(epoch("2001-09-09T01:46:40Z"), 1_000_000_000);
    }
}
