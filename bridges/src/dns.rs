//! The DNS bridge: DNS names to DIDs (`_did.<name>` URI and TXT records in delegated zones), and
//! DIDs, VAA codes and Handles to DNS names under a service zone. Pure mapping and rendering, no
//! I/O: the daemon's DNS door (`sparkid/src/doors/dns.rs`) serves what this module lays out, answering from
//! the resolver's zone service (`resolver/src/dns_zone.rs`).
//! `spec/dns.md` is the specification of the layout implemented here.
//!
//! | owner name | what it names |
//! |---|---|
//! | `_did.<name>` in a delegated zone | the DID the DNS name `<name>` is bound to |
//! | `<address>.did.<zone>`, `<address>.<ac>.did.<zone>`, `<ac>.did.<zone>` | a `did:bid` DID |
//! | `<code, lower-case, 63-character labels, last first>.vaa.<zone>` | a VAA code |
//! | `<suffix labels>._.<prefix segments, last first>.handle.<zone>` | a Handle |
//! | `<base32 SHA-256 of the handle>._hash.handle.<zone>` | a Handle too long for the above |
//! | `<arcs, last first>.oid.<zone>` | an OID (the default ORS zone's names) |
//! | `<code>.ecode.<zone>` | an Ecode (a V0 code: the GS1 key it stands for) |
//! | `<Digital Link path segments, escaped, last first>.gs1.<zone>` | a GS1 key |
//!
//! Labels are LDH (letters, digits, inner hyphens) except the fixed underscore labels, so every
//! name is a valid DNS name of at most 253 characters.

use sha2::{Digest, Sha256};
use sparkid_bid::base58;
use sparkid_bid::Bid;
use sparkid_registrar::ecode::v0_gs1_path;
use sparkid_registrar::namespace::{normalize_dns_name, normalize_identifier, Kind};

use crate::bridge::{Bridge, BridgeError};

/// The system's name.
pub const SYSTEM: &str = "dns";
/// The RR type of URI records (RFC 7553).
pub const URI_TYPE: u16 = 256;
/// The RR type of TXT records.
pub const TXT_TYPE: u16 = 16;
/// The owner label that holds a name's DID (`_did.<name>`).
pub const DID_LABEL: &str = "_did";
/// The longest DNS name in text form, without the final dot.
pub const MAX_NAME_LEN: usize = 253;
/// The longest label.
pub const MAX_LABEL_LEN: usize = 63;
/// The longest service zone: the deepest service name (a 64-character VAA code, two labels)
/// adds 70 characters to it.
pub const MAX_SERVICE_ZONE_LEN: usize = MAX_NAME_LEN - 70;
/// The longest character-string in a TXT record.
pub const MAX_TXT_STRING: usize = 255;
/// The label under the service zone that holds OIDs' names.
pub const OID_LABEL: &str = "oid";
/// The label under the service zone that holds Ecodes' names.
pub const ECODE_LABEL: &str = "ecode";
/// The label under the service zone that holds GS1 keys' names.
pub const GS1_LABEL: &str = "gs1";
/// URI priority of the DID itself.
pub const DID_PRIORITY: u16 = 1;
/// URI priority of the resolver URL that answers the DID.
pub const RESOLVER_PRIORITY: u16 = 10;

/// The DNS bridge: DNS names bound to DIDs under delegated zones.
#[derive(Debug, Clone, Copy, Default)]
pub struct DnsBridge;

impl Bridge for DnsBridge {
    fn system(&self) -> &'static str {
        SYSTEM
    }

    fn kind(&self) -> Kind {
        Kind::Dns
    }

    fn uri_scheme(&self) -> &'static str {
        "dns"
    }
}

fn invalid(rule: impl Into<String>) -> BridgeError {
    BridgeError::Invalid {
        system: SYSTEM,
        rule: rule.into(),
    }
}

/// The data of one resource record this bridge renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordData {
    /// A URI record (RFC 7553, type 256).
    Uri {
        /// Lower is preferred.
        priority: u16,
        /// Relative weight among equal priorities.
        weight: u16,
        /// The URI, non-empty.
        target: String,
    },
    /// A TXT record holding one `key=value` attribute (RFC 1464 style). A value longer than a
    /// character-string is split into several strings of the one record, to be concatenated.
    Txt(String),
}

impl RecordData {
    /// The RR type.
    pub fn rtype(&self) -> u16 {
        match self {
            RecordData::Uri { .. } => URI_TYPE,
            RecordData::Txt(_) => TXT_TYPE,
        }
    }

    /// A TXT record's character-strings: the text cut at character boundaries into pieces of
    /// at most 255 bytes. Empty for a URI record.
    pub fn txt_strings(&self) -> Vec<String> {
        let RecordData::Txt(text) = self else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut current = String::new();
        for c in text.chars() {
            if current.len() + c.len_utf8() > MAX_TXT_STRING {
                out.push(std::mem::take(&mut current));
            }
            current.push(c);
        }
        if !current.is_empty() || out.is_empty() {
            out.push(current);
        }
        out
    }

    /// The RDATA in wire format: URI = priority (2) ‖ weight (2) ‖ target bytes (RFC 7553 §4.5);
    /// TXT = length-prefixed character-strings.
    pub fn rdata(&self) -> Vec<u8> {
        match self {
            RecordData::Uri {
                priority,
                weight,
                target,
            } => {
                let mut out = Vec::with_capacity(4 + target.len());
                out.extend_from_slice(&priority.to_be_bytes());
                out.extend_from_slice(&weight.to_be_bytes());
                out.extend_from_slice(target.as_bytes());
                out
            }
            RecordData::Txt(_) => {
                let mut out = Vec::new();
                for s in self.txt_strings() {
                    // Each piece is at most 255 bytes by construction.
                    out.push(s.len() as u8);
                    out.extend_from_slice(s.as_bytes());
                }
                out
            }
        }
    }

    /// The record's data in zone-file presentation format.
    pub fn presentation(&self) -> String {
        match self {
            RecordData::Uri {
                priority,
                weight,
                target,
            } => format!("URI {priority} {weight} \"{}\"", escape_quoted(target)),
            RecordData::Txt(_) => {
                let parts: Vec<String> = self
                    .txt_strings()
                    .iter()
                    .map(|s| format!("\"{}\"", escape_quoted(s)))
                    .collect();
                format!("TXT {}", parts.join(" "))
            }
        }
    }
}

fn escape_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out
}

/// The URL at which the daemon resolves `did` (W3C DID Resolution over HTTP), from its public
/// base URL.
pub fn resolver_url(base: &str, did: &str) -> String {
    format!("{}/1.0/identifiers/{did}", base.trim_end_matches('/'))
}

/// The records of a name that stands for `did`, in the service zone: URI `1 0 "<did>"`, URI
/// `10 0 "<resolver URL>"`, and TXT `did=`, `resolver=`, then `extra` attributes (such as
/// `vaa=…`, `hdl=…`, `aka=…`, `deactivated=true`) in the given order.
pub fn service_records(
    did: &str,
    resolver_base: Option<&str>,
    extra: &[(&str, &str)],
) -> Vec<RecordData> {
    let url = resolver_base.map(|b| resolver_url(b, did));
    let mut out = vec![RecordData::Uri {
        priority: DID_PRIORITY,
        weight: 0,
        target: did.to_string(),
    }];
    if let Some(url) = &url {
        out.push(RecordData::Uri {
            priority: RESOLVER_PRIORITY,
            weight: 0,
            target: url.clone(),
        });
    }
    out.push(RecordData::Txt(format!("did={did}")));
    if let Some(url) = &url {
        out.push(RecordData::Txt(format!("resolver={url}")));
    }
    for (key, value) in extra {
        out.push(RecordData::Txt(format!("{key}={value}")));
    }
    out
}

/// The records of `_did.<name>` for a DNS name bound to `did`: URI `1 0 "<did>"` (the `_did`
/// convention of draft-mayrhofer-did-dns), TXT `did=<did>`, and TXT `resolver=<URL>` when the
/// daemon's public URL is known.
pub fn binding_records(did: &str, resolver_base: Option<&str>) -> Vec<RecordData> {
    let mut out = vec![
        RecordData::Uri {
            priority: DID_PRIORITY,
            weight: 0,
            target: did.to_string(),
        },
        RecordData::Txt(format!("did={did}")),
    ];
    if let Some(base) = resolver_base {
        out.push(RecordData::Txt(format!(
            "resolver={}",
            resolver_url(base, did)
        )));
    }
    out
}

/// The owner name of a bound DNS name's DID records: `_did.<name>`.
pub fn did_owner(identifier: &str) -> String {
    format!("{DID_LABEL}.{identifier}")
}

/// The DNS name whose DID records `name` holds, when `name` is `_did.<name>`.
pub fn did_owner_target(name: &str) -> Option<&str> {
    name.strip_prefix(DID_LABEL)?.strip_prefix('.')
}

/// What a name in the service zone stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceName {
    /// The zone's apex.
    Apex,
    /// `did.<zone>`, `vaa.<zone>`, `handle.<zone>`, `_hash.handle.<zone>`: fixed interior names
    /// that hold no records of their own.
    Branch,
    /// A `did:bid` DID (not checked against the ledger).
    Did(String),
    /// A VAA code, canonical.
    Vaa(String),
    /// A Handle, canonical.
    Handle(String),
    /// The hashed name of a long Handle: the label (52 base32 characters).
    HandleHash(String),
    /// An OID, canonical (`<arcs, last first>.oid.<zone>`).
    Oid(String),
    /// An Ecode of version 1 to 3, canonical (`<code>.ecode.<zone>`).
    Ecode(String),
    /// A V0 Ecode (`<code>.ecode.<zone>`) and the GS1 key it stands for (a canonical Digital
    /// Link path), whose binding answers it.
    EcodeV0 {
        /// The V0 code.
        code: String,
        /// Its GS1 key.
        gs1: String,
    },
    /// A GS1 key, canonical Digital Link path (`/01/09506000134352/10/LOT7`).
    Gs1(String),
    /// A name of the zone that the layout gives no meaning (it may still be the parent of a
    /// name that has one).
    Other,
}

/// The service zone: the DNS zone under which DIDs, VAA codes and Handles have names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceZone {
    origin: String,
}

impl ServiceZone {
    /// The zone `origin` (a DNS name of at most [`MAX_SERVICE_ZONE_LEN`] characters).
    pub fn new(origin: &str) -> Result<ServiceZone, BridgeError> {
        let origin = normalize_dns_name(origin).map_err(|e| invalid(e.to_string()))?;
        if origin.len() > MAX_SERVICE_ZONE_LEN {
            return Err(invalid(format!(
                "a service zone has at most {MAX_SERVICE_ZONE_LEN} characters"
            )));
        }
        Ok(ServiceZone { origin })
    }

    /// The zone's name, canonical (lower-case, no final dot).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The service name of a foreign identifier of `kind`: VAA codes, Handles, OIDs, Ecodes and
    /// GS1 keys have names in the service zone; a DNS name's DID lives at `_did.<name>`; AC
    /// codes have none.
    pub fn name_for(&self, kind: Kind, identifier: &str) -> Result<String, BridgeError> {
        match kind {
            Kind::Vaa => self.vaa_name(identifier),
            Kind::Handle => self.handle_name(identifier),
            Kind::Dns => {
                let name = normalize_identifier(Kind::Dns, identifier)
                    .map_err(|e| invalid(e.to_string()))?;
                let owner = did_owner(&name);
                if owner.len() > MAX_NAME_LEN {
                    return Err(invalid(format!(
                        "_did.{name} is longer than {MAX_NAME_LEN} characters"
                    )));
                }
                Ok(owner)
            }
            Kind::Ac => Err(invalid("AC codes have no DNS name")),
            Kind::Oid => self.oid_name(identifier),
            Kind::Ecode => self.ecode_name(identifier),
            Kind::Gs1 => self.gs1_name(identifier),
        }
    }

    /// The name of an OID: its arcs last first, then `oid.<zone>` (so the default ORS zone,
    /// `spec/oid.md`, is this subtree). An arc of more than 63 digits, or a name over 253
    /// characters, has no name.
    pub fn oid_name(&self, oid: &str) -> Result<String, BridgeError> {
        let oid = normalize_identifier(Kind::Oid, oid).map_err(|e| invalid(e.to_string()))?;
        if oid.split('.').any(|arc| arc.len() > MAX_LABEL_LEN) {
            return Err(invalid(format!(
                "{oid}: an arc of more than {MAX_LABEL_LEN} digits does not fit a DNS label"
            )));
        }
        let mut labels: Vec<&str> = oid.split('.').rev().collect();
        labels.push(OID_LABEL);
        labels.push(&self.origin);
        fits(labels.join("."))
    }

    /// The name of an Ecode: the code (decimal, at most 48 characters: one label), then
    /// `ecode.<zone>`. A V0 code has a name too: it answers from the binding of the GS1 key it
    /// stands for (`spec/ecode.md`).
    pub fn ecode_name(&self, code: &str) -> Result<String, BridgeError> {
        let code = match normalize_identifier(Kind::Ecode, code) {
            Ok(code) => code,
            Err(e) => {
                v0_gs1_path(code).map_err(|_| invalid(e.to_string()))?;
                code.to_string()
            }
        };
        fits(format!("{code}.{ECODE_LABEL}.{}", self.origin))
    }

    /// The name of a GS1 key: the segments of its canonical Digital Link path (primary key,
    /// value, then each qualifier and value), each escaped into one label as Handle labels are
    /// (upper-case letters, `%` and `.` escaped: GS1 values are case-sensitive, DNS is not),
    /// **last first**, so that the DNS tree follows the qualifier path; then `gs1.<zone>`. A
    /// segment that does not fit one label, or a name over 253 characters, has no name.
    pub fn gs1_name(&self, key: &str) -> Result<String, BridgeError> {
        let path = normalize_identifier(Kind::Gs1, key).map_err(|e| invalid(e.to_string()))?;
        let mut labels = Vec::new();
        for segment in path.trim_start_matches('/').split('/').rev() {
            let mut escaped = escape_labels(segment);
            if escaped.len() != 1 {
                return Err(invalid(format!(
                    "{path}: the segment {segment:?} does not fit one DNS label, so the key has no DNS name"
                )));
            }
            labels.append(&mut escaped);
        }
        labels.push(GS1_LABEL.to_string());
        labels.push(self.origin.clone());
        fits(labels.join("."))
    }

    /// The name of a `did:bid` DID: `<address>.did.<zone>` on the main chain,
    /// `<address>.<ac>.did.<zone>` on a sub-chain, `<ac>.did.<zone>` for a sub-chain's own
    /// record. The address label keeps the BID's two letters (key type, encoding) and carries
    /// the 22 hash bytes in base32 (RFC 4648, lower-case, unpadded), since DNS ignores case and
    /// Base58 does not.
    pub fn did_name(&self, did: &str) -> Result<String, BridgeError> {
        let bid: Bid = did.parse().map_err(|e| invalid(format!("{did:?}: {e}")))?;
        let mut name = String::new();
        if let Some(address) = bid.address() {
            name.push(address.key_type().letter());
            name.push('f');
            name.push_str(&base32_encode(address.hash()));
            name.push('.');
        }
        if let Some(ac) = bid.ac_code() {
            name.push_str(ac.as_str());
            name.push('.');
        }
        name.push_str("did.");
        name.push_str(&self.origin);
        Ok(name)
    }

    /// The name of a VAA code: the code in lower case, cut from its start into labels of 63
    /// characters that are written last first (the name tree follows the code's prefixes), then
    /// `vaa.<zone>`. Every VAA code is at most 64 characters, so at most two labels.
    pub fn vaa_name(&self, code: &str) -> Result<String, BridgeError> {
        let code = normalize_identifier(Kind::Vaa, code).map_err(|e| invalid(e.to_string()))?;
        let lower = code.to_ascii_lowercase();
        let chunks: Vec<&str> = lower
            .as_bytes()
            .chunks(MAX_LABEL_LEN)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        let mut labels: Vec<&str> = chunks.into_iter().rev().collect();
        labels.push("vaa");
        labels.push(&self.origin);
        Ok(labels.join("."))
    }

    /// The name of a Handle `<prefix>/<suffix>`: the suffix, escaped and cut into labels in
    /// reading order, then the label `_`, then the prefix's segments, each escaped into one
    /// label, last first (as in `in-addr.arpa`, so that the DNS tree follows the Handle prefix
    /// tree), then `handle.<zone>`. When that is over 253 characters (or a segment over 63),
    /// the name is `<base32 SHA-256 of the handle>._hash.handle.<zone>` instead.
    ///
    /// Escaping: a-w, y, z and 0-9 stand for themselves; `-` stands for itself inside a label
    /// (never first, never last, never after another `-`); every other byte of the UTF-8 text,
    /// `x` included, is `x` and two lower-case hex digits (`-` where it may not stand is `x2d`).
    pub fn handle_name(&self, handle: &str) -> Result<String, BridgeError> {
        let handle =
            normalize_identifier(Kind::Handle, handle).map_err(|e| invalid(e.to_string()))?;
        let tail = format!(".handle.{}", self.origin);
        if let Some(relative) = readable_handle_labels(&handle) {
            if relative.len() + tail.len() <= MAX_NAME_LEN {
                return Ok(relative + &tail);
            }
        }
        Ok(format!("{}._hash{tail}", handle_hash_label(&handle)))
    }

    /// What `name` stands for in this zone, or none when `name` is not in it. Total: any text
    /// is accepted, and a name that is not in the layout's canonical form is [`ServiceName::Other`].
    pub fn classify(&self, name: &str) -> Option<ServiceName> {
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        if name == self.origin {
            return Some(ServiceName::Apex);
        }
        let relative = name.strip_suffix(&self.origin)?.strip_suffix('.')?;
        let mut labels: Vec<&str> = relative.split('.').collect();
        labels.reverse();
        Some(match labels.as_slice() {
            ["did"]
            | ["vaa"]
            | ["handle"]
            | ["handle", "_hash"]
            | ["oid"]
            | ["ecode"]
            | ["gs1"] => ServiceName::Branch,
            ["oid", rest @ ..] => self.classify_oid(&name, rest),
            ["ecode", code] => self.classify_ecode(code),
            ["gs1", rest @ ..] => self.classify_gs1(&name, rest),
            ["did", rest @ ..] => self.classify_did(rest),
            ["vaa", rest @ ..] => self.classify_vaa(&name, rest),
            ["handle", "_hash", hash] => {
                if hash.len() == 52 && base32_decode(hash).is_some_and(|b| b.len() == 32) {
                    ServiceName::HandleHash((*hash).to_string())
                } else {
                    ServiceName::Other
                }
            }
            ["handle", rest @ ..] => self.classify_handle(&name, rest),
            _ => ServiceName::Other,
        })
    }

    fn classify_did(&self, labels: &[&str]) -> ServiceName {
        let did = match labels {
            [ac] if ac.len() == 4 => format!("did:bid:{ac}"),
            [address] => match decode_address_label(address) {
                Some(a) => format!("did:bid:{a}"),
                None => return ServiceName::Other,
            },
            [ac, address] => match decode_address_label(address) {
                Some(a) => format!("did:bid:{ac}:{a}"),
                None => return ServiceName::Other,
            },
            _ => return ServiceName::Other,
        };
        match self.did_name(&did) {
            Ok(_) => ServiceName::Did(did),
            Err(_) => ServiceName::Other,
        }
    }

    fn classify_oid(&self, name: &str, labels: &[&str]) -> ServiceName {
        // labels: the arcs, first first.
        let oid = labels.join(".");
        match self.oid_name(&oid) {
            Ok(canonical) if canonical == name => ServiceName::Oid(oid),
            _ => ServiceName::Other,
        }
    }

    fn classify_ecode(&self, code: &str) -> ServiceName {
        if let Ok(canonical) = normalize_identifier(Kind::Ecode, code) {
            if canonical == *code {
                return ServiceName::Ecode(canonical);
            }
        }
        match v0_gs1_path(code) {
            Ok(gs1) => ServiceName::EcodeV0 {
                code: code.to_string(),
                gs1,
            },
            Err(_) => ServiceName::Other,
        }
    }

    fn classify_gs1(&self, name: &str, labels: &[&str]) -> ServiceName {
        // labels: the path's segments, first first.
        let mut segments = Vec::with_capacity(labels.len());
        for label in labels {
            match unescape(label).and_then(|b| String::from_utf8(b).ok()) {
                Some(s) => segments.push(s),
                None => return ServiceName::Other,
            }
        }
        let path = format!("/{}", segments.join("/"));
        match self.gs1_name(&path) {
            Ok(canonical) if canonical == name => match normalize_identifier(Kind::Gs1, &path) {
                Ok(key) => ServiceName::Gs1(key),
                Err(_) => ServiceName::Other,
            },
            _ => ServiceName::Other,
        }
    }

    fn classify_vaa(&self, name: &str, labels: &[&str]) -> ServiceName {
        if labels.is_empty() || labels.len() > 2 {
            return ServiceName::Other;
        }
        let code: String = labels.concat().to_ascii_uppercase();
        match self.vaa_name(&code) {
            Ok(canonical) if canonical == name => ServiceName::Vaa(code),
            _ => ServiceName::Other,
        }
    }

    fn classify_handle(&self, name: &str, labels: &[&str]) -> ServiceName {
        // labels: the prefix's segments (first first), `_`, then the suffix labels last first.
        let Some(marker) = labels.iter().position(|l| *l == "_") else {
            return ServiceName::Other;
        };
        let (segments, suffix) = (&labels[..marker], &labels[marker + 1..]);
        if segments.is_empty() || suffix.is_empty() {
            return ServiceName::Other;
        }
        let mut prefix = Vec::new();
        for segment in segments {
            match unescape(segment).and_then(|b| String::from_utf8(b).ok()) {
                Some(s) => prefix.push(s),
                None => return ServiceName::Other,
            }
        }
        let mut bytes = Vec::new();
        for label in suffix.iter().rev() {
            match unescape(label) {
                Some(b) => bytes.extend_from_slice(&b),
                None => return ServiceName::Other,
            }
        }
        let Ok(text) = String::from_utf8(bytes) else {
            return ServiceName::Other;
        };
        let handle = format!("{}/{text}", prefix.join("."));
        match self.handle_name(&handle) {
            Ok(canonical) if canonical == name => ServiceName::Handle(handle),
            _ => ServiceName::Other,
        }
    }
}

/// A name, when it is not over [`MAX_NAME_LEN`] characters.
fn fits(name: String) -> Result<String, BridgeError> {
    if name.len() > MAX_NAME_LEN {
        return Err(invalid(format!(
            "{name}: longer than {MAX_NAME_LEN} characters, so it has no DNS name"
        )));
    }
    Ok(name)
}

/// The hashed label of a Handle (canonical): base32 of its SHA-256, 52 characters.
pub fn handle_hash_label(handle: &str) -> String {
    base32_encode(&Sha256::digest(handle.as_bytes()))
}

/// The readable labels of a canonical handle, relative to `handle.<zone>`, or none when a
/// prefix segment does not fit one label.
fn readable_handle_labels(handle: &str) -> Option<String> {
    let (prefix, suffix) = handle.split_once('/')?;
    let mut labels = escape_labels(suffix);
    labels.push("_".to_string());
    for segment in prefix.split('.').rev() {
        let mut escaped = escape_labels(segment);
        if escaped.len() != 1 {
            return None;
        }
        labels.append(&mut escaped);
    }
    Some(labels.join("."))
}

fn is_plain(b: u8) -> bool {
    (b.is_ascii_lowercase() && b != b'x') || b.is_ascii_digit()
}

/// Escapes text into LDH labels of at most 63 characters (see [`ServiceZone::handle_name`]).
pub fn escape_labels(text: &str) -> Vec<String> {
    fn close(labels: &mut Vec<String>, mut label: String) -> Option<String> {
        // A label never ends with '-': move it to the next label, where it is escaped.
        if label.ends_with('-') {
            label.pop();
            if label.len() + 3 <= MAX_LABEL_LEN {
                label.push_str("x2d");
                labels.push(label);
                return None;
            }
            labels.push(label);
            return Some("x2d".to_string());
        }
        labels.push(label);
        None
    }
    let mut labels = Vec::new();
    let mut current = String::new();
    for b in text.bytes() {
        let unit = if is_plain(b) {
            (b as char).to_string()
        } else if b == b'-' && !current.is_empty() && !current.ends_with('-') {
            "-".to_string()
        } else {
            format!("x{b:02x}")
        };
        if current.len() + unit.len() > MAX_LABEL_LEN {
            let carried = close(&mut labels, std::mem::take(&mut current));
            current = carried.unwrap_or_default();
            // At a label's start '-' is escaped.
            let unit = if b == b'-' { "x2d".to_string() } else { unit };
            if current.len() + unit.len() > MAX_LABEL_LEN {
                labels.push(std::mem::take(&mut current));
            }
            current.push_str(&unit);
        } else {
            current.push_str(&unit);
        }
    }
    if !current.is_empty() {
        if let Some(carried) = close(&mut labels, current) {
            labels.push(carried);
        }
    }
    labels
}

/// Undoes [`escape_labels`] for one label, to bytes (a character's UTF-8 bytes may straddle two
/// labels): none when the label is not in the escaped alphabet.
pub fn unescape(label: &str) -> Option<Vec<u8>> {
    let bytes = label.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'x' => {
                let hex = label.get(i + 1..i + 3)?;
                if !hex
                    .bytes()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
                {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'-' => {
                out.push(b'-');
                i += 1;
            }
            b if is_plain(b) => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

fn decode_address_label(label: &str) -> Option<String> {
    let bytes = label.as_bytes();
    if bytes.len() < 3 || !matches!(bytes[0], b'e' | b'z' | b's') || bytes[1] != b'f' {
        return None;
    }
    let hash = base32_decode(&label[2..])?;
    if hash.len() != sparkid_bid::address::HASH_LEN {
        return None;
    }
    Some(format!(
        "{}f{}",
        bytes[0] as char,
        base58::BIF.encode(&hash)
    ))
}

const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// Base32 (RFC 4648 alphabet, lower-case, no padding).
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// Decodes [`base32_encode`]'s output (either case); none for any other text, including text
/// whose unused trailing bits are not zero (so that every byte string has one encoding).
pub fn base32_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let c = c.to_ascii_lowercase();
        let v = BASE32.iter().position(|&a| a == c)? as u32;
        buffer = ((buffer << 5) | v) & 0xFFFF;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    if bits >= 5 || buffer & ((1 << bits) - 1) != 0 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone() -> ServiceZone {
        ServiceZone::new("Sparkid.Test.").unwrap()
    }

    #[test]
    fn base32_round_trips_and_is_canonical() {
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let text = base32_encode(&bytes);
            assert_eq!(base32_decode(&text).unwrap(), bytes);
        }
        assert_eq!(base32_encode(b"foobar"), "mzxw6ytboi");
        // Non-zero trailing bits have no canonical byte string.
        assert!(base32_decode("mzxw6ytboj").is_none());
        assert!(base32_decode("a").is_none());
        assert!(base32_decode("ab1").is_none());
    }

    #[test]
    fn did_names_round_trip() {
        let z = zone();
        let did = "did:bid:ef18F9AVK4SQLZPRrPkrVWwp9kbpdXHx";
        let name = z.did_name(did).unwrap();
        assert!(name.ends_with(".did.sparkid.test"), "{name}");
        assert!(name.split('.').all(|l| l.len() <= 63));
        assert_eq!(z.classify(&name), Some(ServiceName::Did(did.into())));
        assert_eq!(
            z.classify(&name.to_ascii_uppercase()),
            Some(ServiceName::Did(did.into()))
        );
        let sub = "did:bid:abcd:ef18F9AVK4SQLZPRrPkrVWwp9kbpdXHx";
        let name = z.did_name(sub).unwrap();
        assert!(name.contains(".abcd.did."), "{name}");
        assert_eq!(z.classify(&name), Some(ServiceName::Did(sub.into())));
        assert_eq!(
            z.classify("abcd.did.sparkid.test"),
            Some(ServiceName::Did("did:bid:abcd".into()))
        );
        assert_eq!(z.classify("did.sparkid.test"), Some(ServiceName::Branch));
        assert_eq!(
            z.classify("efxyz.did.sparkid.test"),
            Some(ServiceName::Other)
        );
        assert_eq!(z.classify("example.com"), None);
        assert_eq!(z.classify("xsparkid.test"), None);
        assert_eq!(z.classify("sparkid.test."), Some(ServiceName::Apex));
    }

    #[test]
    fn vaa_names_follow_prefixes() {
        let z = zone();
        assert_eq!(
            z.vaa_name("VAA1234X9").unwrap(),
            "vaa1234x9.vaa.sparkid.test"
        );
        assert_eq!(
            z.classify("VAA1234X9.vaa.sparkid.test"),
            Some(ServiceName::Vaa("VAA1234X9".into()))
        );
        let long = format!("VAA{}", "7".repeat(61));
        assert_eq!(long.len(), 64);
        let name = z.vaa_name(&long).unwrap();
        assert!(name.starts_with("7.vaa7"), "{name}");
        assert_eq!(z.classify(&name), Some(ServiceName::Vaa(long)));
        assert!(z.vaa_name("vaa1").is_err());
        assert_eq!(
            z.classify("x.vaa1234.vaa.sparkid.test"),
            Some(ServiceName::Other)
        );
    }

    #[test]
    fn handle_names_escape_and_round_trip() {
        let z = zone();
        assert_eq!(
            z.handle_name("86.100.1/Pump-7").unwrap(),
            "pump-7._.1.100.86.handle.sparkid.test"
        );
        assert_eq!(
            z.handle_name("20.500.12345/a b/x.y").unwrap(),
            "ax20bx2fx78x2ey._.12345.500.20.handle.sparkid.test"
        );
        assert_eq!(
            z.handle_name("88.802.1/-a--b-").unwrap(),
            "x2da-x2dbx2d._.1.802.88.handle.sparkid.test"
        );
        assert_eq!(
            z.handle_name("88_x.1/泵").unwrap(),
            "xe6xb3xb5._.1.88x5fx78.handle.sparkid.test"
        );
        for handle in [
            "86.100.1/pump-7",
            "20.500.12345/a b/x.y",
            "88.802.1/-a--b-",
            "88_x.1/泵",
            &format!("86.1/{}", "-".repeat(120)),
            &format!("86.1/{}", "a-".repeat(100)),
            &format!("86.1/{}", "泵".repeat(80)),
            &format!("86.1/{}", "泵".repeat(25)),
            &format!("86.1/a{}", "泵".repeat(25)),
            &format!("86.1/ab{}", "泵".repeat(25)),
        ] {
            let name = z.handle_name(handle).unwrap();
            assert!(name.len() <= MAX_NAME_LEN, "{name}");
            for label in name.split('.') {
                assert!(!label.is_empty() && label.len() <= 63, "{name}");
                assert!(!label.starts_with('-') && !label.ends_with('-'), "{name}");
                assert!(!label.contains("--"), "{name}");
            }
            let canonical = normalize_identifier(Kind::Handle, handle).unwrap();
            match z.classify(&name) {
                Some(ServiceName::Handle(h)) => assert_eq!(h, canonical),
                Some(ServiceName::HandleHash(h)) => {
                    assert_eq!(h, handle_hash_label(&canonical));
                    assert!(name.ends_with("._hash.handle.sparkid.test"));
                }
                other => panic!("{handle}: {other:?}"),
            }
        }
        // Not canonical: an escaped letter that stands for itself.
        assert_eq!(
            z.classify("x61._.1.86.handle.sparkid.test"),
            Some(ServiceName::Other)
        );
        assert_eq!(
            z.classify("1.86.handle.sparkid.test"),
            Some(ServiceName::Other)
        );
    }

    #[test]
    fn records_render_in_wire_and_presentation_format() {
        let did = "did:bid:ef18F9AVK4SQLZPRrPkrVWwp9kbpdXHx";
        let records = binding_records(did, Some("https://id.example/"));
        let RecordData::Uri { .. } = &records[0] else {
            panic!("{records:?}")
        };
        let rdata = records[0].rdata();
        assert_eq!(&rdata[..4], &[0, 1, 0, 0]);
        assert_eq!(&rdata[4..], did.as_bytes());
        assert_eq!(records[0].rtype(), 256);
        assert_eq!(records[0].presentation(), format!("URI 1 0 \"{did}\""));
        assert_eq!(records[1].presentation(), format!("TXT \"did={did}\""));
        assert_eq!(
            records[2],
            RecordData::Txt(format!("resolver=https://id.example/1.0/identifiers/{did}"))
        );
        let long = RecordData::Txt(format!("aka=hdl:86.1/{}", "a".repeat(300)));
        let strings = long.txt_strings();
        assert_eq!(strings.len(), 2);
        assert_eq!(strings[0].len(), 255);
        assert_eq!(
            long.rdata().len(),
            strings.iter().map(|s| s.len() + 1).sum::<usize>()
        );
        assert_eq!(RecordData::Txt(String::new()).rdata(), vec![0]);
        let service = service_records(did, None, &[("vaa", "VAA1")]);
        assert_eq!(service.len(), 3);
    }

    #[test]
    fn oid_ecode_and_gs1_names_are_the_specs_worked_examples() {
        let z = zone();
        // spec/dns.md, "OIDs, Ecodes and GS1 keys": each name computed by hand from the rule.
        let names = [
            (
                Kind::Oid,
                "1.2.156.3001.1.7",
                "7.1.3001.156.2.1.oid.sparkid.test",
            ),
            (
                Kind::Ecode,
                "100010000001",
                "100010000001.ecode.sparkid.test",
            ),
            (
                Kind::Gs1,
                "/01/9506000134352/10/LOT7",
                "x4cx4fx547.10.09506000134352.01.gs1.sparkid.test",
            ),
            (
                Kind::Gs1,
                "/01/09506000134352/21/a.b",
                "ax2eb.21.09506000134352.01.gs1.sparkid.test",
            ),
            (
                Kind::Gs1,
                "/414/9506000000015",
                "9506000000015.414.gs1.sparkid.test",
            ),
        ];
        for (kind, identifier, name) in names {
            assert_eq!(z.name_for(kind, identifier).unwrap(), name);
            let canonical = normalize_identifier(kind, identifier).unwrap();
            let read = z.classify(&name.to_ascii_uppercase());
            let expected = match kind {
                Kind::Oid => ServiceName::Oid(canonical),
                Kind::Ecode => ServiceName::Ecode(canonical),
                _ => ServiceName::Gs1(canonical),
            };
            assert_eq!(read, Some(expected), "{name}");
        }
        assert_eq!(
            z.name_for(Kind::Ecode, "09506000134352").unwrap(),
            "09506000134352.ecode.sparkid.test"
        );
        assert_eq!(
            z.classify("09506000134352.ecode.sparkid.test"),
            Some(ServiceName::EcodeV0 {
                code: "09506000134352".into(),
                gs1: "/01/09506000134352".into()
            })
        );
        for branch in ["oid", "ecode", "gs1"] {
            assert_eq!(
                z.classify(&format!("{branch}.sparkid.test")),
                Some(ServiceName::Branch)
            );
        }
        // Not canonical, or not an identifier: no meaning (NXDOMAIN unless an ancestor).
        for other in [
            "7.01.2.1.oid.sparkid.test",
            "9506000134352.01.gs1.sparkid.test",
            "x6cot7.10.09506000134352.01.gs1.sparkid.test",
            "09506000134352.01.x.gs1.sparkid.test",
            "09506000134353.ecode.sparkid.test",
            "0123.ecode.sparkid.test",
            "1.2.ecode.sparkid.test",
        ] {
            assert_eq!(z.classify(other), Some(ServiceName::Other), "{other}");
        }
        // Lower-case `lot7` is another lot, with a name of its own.
        assert_eq!(
            z.classify("lot7.10.09506000134352.01.gs1.sparkid.test"),
            Some(ServiceName::Gs1("/01/09506000134352/10/lot7".into()))
        );
        // The ancestors of a key's name (its primary key, the AI) are names of the tree.
        assert_eq!(
            z.classify("09506000134352.01.gs1.sparkid.test"),
            Some(ServiceName::Gs1("/01/09506000134352".into()))
        );
        assert_eq!(z.classify("01.gs1.sparkid.test"), Some(ServiceName::Other));
        // Twenty capitals escape to 60 characters: one label. Thirteen `!` (`%21` in the
        // path) escape to 65: no name.
        let capitals = format!("/01/09506000134352/21/{}", "A".repeat(20));
        assert!(z.name_for(Kind::Gs1, &capitals).is_ok());
        let bangs = format!("/01/09506000134352/21/{}", "!".repeat(13));
        assert!(z.name_for(Kind::Gs1, &bangs).is_err());
    }

    #[test]
    fn dns_identifiers_map_to_did_owner_names() {
        let z = zone();
        assert_eq!(
            z.name_for(Kind::Dns, "Pump.Example.COM.").unwrap(),
            "_did.pump.example.com"
        );
        assert_eq!(
            did_owner_target("_did.pump.example.com"),
            Some("pump.example.com")
        );
        assert_eq!(did_owner_target("_didx.example.com"), None);
        assert!(z.name_for(Kind::Ac, "abcd").is_err());
        assert!(ServiceZone::new(&"a.".repeat(100)).is_err());
        assert_eq!(DnsBridge.uri_scheme(), "dns");
    }
}
