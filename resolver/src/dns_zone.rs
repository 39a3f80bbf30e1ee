//! The DNS zone service: what sparkid answers, authoritatively, for the service zone and for
//! every DNS zone delegated on the ledger. The layout is `spec/dns.md`; the mapping and the
//! record data come from [`sparkid_bridges::dns`], the records from [`Records`].
//!
//! [`Authority`] computes the [`Answer`] to one question (a name and a type). It knows no
//! socket, no message format and no transport: the server (UDP and TCP, EDNS, size limits,
//! truncation, opcodes) is the daemon's DNS door, which asks this module and sends its answer.
//!
//! - Every zone's SOA serial is the ledger height (mod 2^32), read before the answer's records,
//!   so an answer is at least as new as the serial it is served with, and the serial moves with
//!   each committed block.
//! - NXDOMAIN when the name does not exist; NODATA (NOERROR, empty answer) when it exists with
//!   other types, or only as the parent of names that do (empty non-terminals, from a name
//!   index kept current by a commit listener). Both carry the zone's SOA in the authority
//!   section.
//! - Names outside every zone are REFUSED.
//! - Answers computed at one height are kept until the next block.
//! - `ANY` is answered the RFC 8482 way: a name with records answers one synthesized
//!   `HINFO "RFC8482" ""` record instead of all its RRsets, so that a small query never draws
//!   a large answer (ANY is the classic amplification query) and no client takes it for the
//!   full set of records.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{HINFO, NAPTR, NS, NULL, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde_json::Value;
use sparkid_bid::Bid;
use sparkid_bridges::dns::{
    binding_records, did_owner, did_owner_target, service_records, RecordData, ServiceName,
    ServiceZone,
};
use sparkid_bridges::oid::{naptr_records, OrsName, OrsZone};
use sparkid_bridges::{read, BridgeError, RecordSource};
use sparkid_ledger::{Ledger, LedgerError};
use sparkid_registrar::namespace::{
    alias_key, binding_key, namespace_key, normalize_dns_name, normalize_identifier, AliasRecord,
    BindingRecord, Kind, NameError,
};
use tracing::warn;

use crate::records::Records;

/// The TTL of answer records (URI, TXT, addresses of name servers).
pub const RECORD_TTL: u32 = 60;
/// The TTL of SOA and NS records.
pub const ZONE_TTL: u32 = 3600;
/// The SOA minimum: how long a negative answer may be cached.
pub const NEGATIVE_TTL: u32 = 60;

/// The CPU field of the HINFO record that answers `ANY` (RFC 8482 §4.2).
pub const RFC8482_CPU: &str = "RFC8482";

/// The most answers kept for one height.
const ANSWER_CACHE_ENTRIES: usize = 100_000;

/// What the zones are: the service zone and the name servers named in SOA and NS records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneConfig {
    /// The service zone (e.g. `sparkid.test`).
    pub service_zone: String,
    /// Name server host names for NS and SOA; empty means `ns1.<service_zone>`.
    pub nameservers: Vec<String>,
    /// The ORS zone (`spec/oid.md`); none means `oid.<service_zone>`. Inside the service zone
    /// it is part of that zone; elsewhere it is a zone of its own.
    pub ors_zone: Option<String>,
    /// The address a name server inside the service zone answers for A or AAAA (and as glue):
    /// the server's own, when it is a specific one.
    pub ns_address: Option<IpAddr>,
}

/// Why the zones could not be set up, indexed or answered from.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ZoneError {
    /// The service zone is not a valid zone name.
    #[error("service_zone")]
    ServiceZone(#[source] BridgeError),
    /// The ORS zone is not a valid zone name.
    #[error("ors_zone")]
    OrsZone(#[source] BridgeError),
    /// A name server is not a valid DNS name.
    #[error("dns_nameservers: {0}")]
    Nameserver(NameError),
    /// A record's owner name is not a valid DNS name.
    #[error("record name: {0}")]
    Name(String),
    /// Reading the ledger failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Reading a record failed.
    #[error(transparent)]
    Bridge(#[from] BridgeError),
}

/// The answer to one question, before it is fitted to a transport.
#[derive(Debug)]
pub struct Answer {
    /// NOERROR, NXDOMAIN or REFUSED.
    pub rcode: ResponseCode,
    /// Whether the name is in one of the zones (the AA flag).
    pub authoritative: bool,
    /// The answer section.
    pub answers: Vec<Record>,
    /// The authority section (the zone's SOA when the answer section is empty).
    pub authority: Vec<Record>,
    /// The additional section (glue).
    pub additionals: Vec<Record>,
}

impl Answer {
    fn refused() -> Answer {
        Answer {
            rcode: ResponseCode::Refused,
            authoritative: false,
            answers: Vec::new(),
            authority: Vec::new(),
            additionals: Vec::new(),
        }
    }
}

/// The zone a query falls in.
enum Zone {
    Service,
    /// The ORS zone, when it is not inside the service zone.
    Ors,
    Delegated(String),
}

/// Names that exist because a binding creates them, for NXDOMAIN versus empty non-terminal,
/// and the hashed names of long Handles. Kept from the chain at start and from each commit.
#[derive(Default)]
struct NameIndex {
    /// Owner names, labels reversed (`com.example._did`), so that a name's descendants follow it.
    names: BTreeSet<String>,
    /// Handle hash label to Handle.
    hashed: HashMap<String, String>,
    /// The DNS zones delegated on the ledger (a delegation is never withdrawn).
    zones: HashSet<String>,
    /// The last block the index (and, since its listener runs after the cache's, the read
    /// cache) has taken in.
    height: u64,
}

/// Answers already computed at one height: valid until the next block, whatever it changes.
#[derive(Default)]
struct AnswerCache {
    height: u64,
    answers: HashMap<(String, RecordType), Arc<Answer>>,
}

fn reversed(name: &str) -> String {
    let mut labels: Vec<&str> = name.split('.').collect();
    labels.reverse();
    labels.join(".")
}

impl NameIndex {
    fn has_descendant(&self, name: &str) -> bool {
        let prefix = format!("{}.", reversed(name));
        self.names
            .range(prefix.clone()..)
            .next()
            .is_some_and(|n| n.starts_with(&prefix))
    }

    /// The longest delegated zone holding `qname` (canonical text), if any.
    fn delegated_zone<'a>(&self, qname: &'a str) -> Option<&'a str> {
        let mut candidate = qname;
        loop {
            if self.zones.contains(candidate) {
                return Some(candidate);
            }
            match candidate.split_once('.') {
                Some((_, parent)) if !parent.is_empty() => candidate = parent,
                _ => return None,
            }
        }
    }
}

/// The zones, the records they are answered from, the name index and the answers computed at
/// the current height. Build it, call [`Authority::index_chain`] once, then
/// [`Authority::answer`] for each question.
pub struct Authority {
    records: Records,
    zone: ServiceZone,
    /// Where OIDs have names (`spec/oid.md`).
    ors: OrsZone,
    /// Whether the ORS zone lies inside the service zone (then it has no apex records of its
    /// own).
    ors_inside: bool,
    origin: Name,
    nameservers: Vec<Name>,
    /// Addresses of name servers that are in the service zone (the listen address).
    ns_address: Option<IpAddr>,
    hostmaster: Name,
    public_url: String,
    index: RwLock<NameIndex>,
    /// The index's height, readable without its lock (see [`Authority::settled_height`]).
    settled: AtomicU64,
    cache: RwLock<AnswerCache>,
}

fn name(text: &str) -> Result<Name, ZoneError> {
    Name::from_ascii(format!("{}.", text.trim_end_matches('.')))
        .map_err(|e| ZoneError::Name(format!("{text}: {e}")))
}

impl Authority {
    /// The authority of the zones `config` names, reading `records`; `base_url` is the
    /// daemon's public HTTP URL, for the resolver URLs in answers. Call
    /// [`Authority::index_chain`] before answering.
    pub fn new(config: &ZoneConfig, base_url: &str, records: Records) -> Result<Self, ZoneError> {
        let zone = ServiceZone::new(&config.service_zone).map_err(ZoneError::ServiceZone)?;
        let mut nameservers = Vec::new();
        for ns in &config.nameservers {
            let canonical = normalize_dns_name(ns).map_err(ZoneError::Nameserver)?;
            nameservers.push(name(&canonical)?);
        }
        if nameservers.is_empty() {
            nameservers.push(name(&format!("ns1.{}", zone.origin()))?);
        }
        let ors = match &config.ors_zone {
            Some(ors) => OrsZone::new(ors),
            None => OrsZone::under(zone.origin()),
        }
        .map_err(ZoneError::OrsZone)?;
        let ors_inside =
            ors.origin() == zone.origin() || ors.origin().ends_with(&format!(".{}", zone.origin()));
        Ok(Authority {
            ors,
            ors_inside,
            origin: name(zone.origin())?,
            hostmaster: name(&format!("hostmaster.{}", zone.origin()))?,
            zone,
            nameservers,
            ns_address: config.ns_address,
            public_url: base_url.trim_end_matches('/').to_string(),
            records,
            index: RwLock::new(NameIndex::default()),
            settled: AtomicU64::new(0),
            cache: RwLock::new(AnswerCache::default()),
        })
    }

    /// Ledger records through the cache (`crate::bridge_source` makes [`Records`] a source).
    fn source(&self) -> &dyn RecordSource {
        &self.records
    }

    /// Indexes the delegated zones and the names the chain's bindings create, from every
    /// block so far, then keeps the index current from each commit. The listener is registered
    /// first: a block committed meanwhile is seen twice, which is harmless since each update
    /// re-reads the binding's current state. Blocking (it reads every block).
    pub fn index_chain(self: &Arc<Self>) -> Result<(), ZoneError> {
        let ledger = self.records.ledger().clone();
        let weak: Weak<Authority> = Arc::downgrade(self);
        ledger.on_commit(Box::new(move |block| {
            let Some(authority) = weak.upgrade() else {
                return;
            };
            for key in &block.keys {
                if let Some(zone) = key.strip_prefix("ns/dns/") {
                    authority.add_zone(zone);
                }
                if let Some(rest) = key.strip_prefix("bind/") {
                    if let Some((kind, identifier)) = rest.split_once('/') {
                        if let Ok(kind) = kind.parse::<Kind>() {
                            authority.refresh(
                                &authority.records.ledger().clone(),
                                kind,
                                identifier,
                            );
                        }
                    }
                }
            }
            authority.settle(block.height);
        }));
        let height = ledger.height();
        for h in 0..=height {
            let Some(block) = ledger.block(h)? else {
                continue;
            };
            for tx in &block.transactions {
                let op = &tx.body.operation;
                if op["type"] == "delegate" && op["kind"] == "dns" {
                    if let Some(zone) = op["namespace"]
                        .as_str()
                        .and_then(|z| normalize_dns_name(z).ok())
                    {
                        if ledger.get(&namespace_key(Kind::Dns, &zone))?.is_some() {
                            self.add_zone(&zone);
                        }
                    }
                    continue;
                }
                if !matches!(op["type"].as_str(), Some("bind" | "unbind")) {
                    continue;
                }
                let (Some(kind), Some(identifier)) = (
                    op["kind"].as_str().and_then(|k| k.parse::<Kind>().ok()),
                    op["identifier"].as_str(),
                ) else {
                    continue;
                };
                if let Ok(identifier) = normalize_identifier(kind, identifier) {
                    self.refresh(&ledger, kind, &identifier);
                }
            }
        }
        self.settle(height);
        Ok(())
    }

    /// Records that the index (and so the read cache) has taken in the block at `height`.
    fn settle(&self, height: u64) {
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        index.height = index.height.max(height);
        self.settled.fetch_max(index.height, Ordering::Release);
    }

    /// The height of the last block the zone has taken in (its name index, and the read cache
    /// whose commit listener runs before the index's). An answer computed after reading it is
    /// at least as new as that block, so a cache of encoded answers may keep one under it, and
    /// must drop it once it moves. One atomic load: cheap enough for every query.
    pub fn settled_height(&self) -> u64 {
        self.settled.load(Ordering::Acquire)
    }

    fn add_zone(&self, zone: &str) {
        self.index
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .zones
            .insert(zone.to_string());
    }

    /// Re-reads one binding from the ledger (the truth, not a cache that may not have heard of
    /// the block yet) and updates the index.
    fn refresh(&self, ledger: &Arc<Ledger>, kind: Kind, identifier: &str) {
        let bound = match ledger.get(&binding_key(kind, identifier)) {
            Ok(Some(text)) => serde_json::from_str::<BindingRecord>(&text)
                .map(|b| b.did.is_some())
                .unwrap_or(false),
            Ok(None) => false,
            Err(e) => {
                warn!(error = %e, "DNS index: reading a binding");
                return;
            }
        };
        // An OID has its ORS name and its service-zone name (the same name unless the ORS
        // zone is configured elsewhere).
        let mut owners: Vec<String> = Vec::new();
        if kind == Kind::Oid {
            owners.extend(self.ors.name(identifier).ok());
        }
        if let Ok(owner) = self.zone.name_for(kind, identifier) {
            if !owners.contains(&owner) {
                owners.push(owner);
            }
        }
        let Some(owner) = owners.last().cloned() else {
            return;
        };
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        for name in &owners {
            let key = reversed(name);
            if bound {
                index.names.insert(key);
            } else {
                index.names.remove(&key);
            }
        }
        if kind == Kind::Handle {
            if let Some(label) =
                owner.strip_suffix(&format!("._hash.handle.{}", self.zone.origin()))
            {
                if bound {
                    index
                        .hashed
                        .insert(label.to_string(), identifier.to_string());
                } else {
                    index.hashed.remove(label);
                }
            }
        }
    }

    fn has_descendant(&self, name: &str) -> bool {
        self.index
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .has_descendant(name)
    }

    /// The zone holding `qname` (canonical text): the service zone, else the longest DNS zone
    /// delegated on the ledger (from the index, which each commit of a delegation updates).
    fn find_zone(&self, qname: &str) -> Option<Zone> {
        if !self.ors_inside && self.ors.contains(qname) {
            return Some(Zone::Ors);
        }
        let origin = self.zone.origin();
        if qname == origin || qname.ends_with(&format!(".{origin}")) {
            return Some(Zone::Service);
        }
        let index = self.index.read().unwrap_or_else(|p| p.into_inner());
        index
            .delegated_zone(qname)
            .map(|z| Zone::Delegated(z.to_string()))
    }

    fn soa(&self, apex: &Name, serial: u32) -> Record {
        let mname = self
            .nameservers
            .first()
            .cloned()
            .unwrap_or_else(|| self.origin.clone());
        Record::from_rdata(
            apex.clone(),
            ZONE_TTL,
            RData::SOA(SOA::new(
                mname,
                self.hostmaster.clone(),
                serial,
                3600,
                600,
                1_209_600,
                NEGATIVE_TTL,
            )),
        )
    }

    fn negative_soa(&self, apex: &Name, serial: u32) -> Record {
        let mut soa = self.soa(apex, serial);
        soa.ttl = ZONE_TTL.min(NEGATIVE_TTL);
        soa
    }

    /// The answer to one question (`qname` in lower case: one cached answer serves every
    /// spelling), from the answers computed at the current height when there is one. An answer
    /// is kept only when the index (and so the read cache) has taken in the block it was
    /// computed at, and is dropped at the next block.
    pub fn answer(&self, qname: &Name, qtype: RecordType) -> Result<Arc<Answer>, ZoneError> {
        // The height is read first: the records read after it are at least as new.
        let height = self.records.ledger().height();
        let indexed = self.index.read().unwrap_or_else(|p| p.into_inner()).height;
        let text = qname.to_string();
        let text = text.trim_end_matches('.').to_string();
        let key = (text, qtype);
        {
            let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
            if cache.height == height {
                if let Some(hit) = cache.answers.get(&key) {
                    return Ok(hit.clone());
                }
            }
        }
        let answer = Arc::new(self.compute(qname, &key.0, qtype, height)?);
        if indexed >= height {
            let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
            if cache.height != height || cache.answers.len() >= ANSWER_CACHE_ENTRIES {
                cache.answers.clear();
                cache.height = height;
            }
            cache.answers.insert(key, answer.clone());
        }
        Ok(answer)
    }

    /// Computes the answer to one question at `height` (`text`: `qname` without the final dot).
    fn compute(
        &self,
        qname: &Name,
        text: &str,
        qtype: RecordType,
        height: u64,
    ) -> Result<Answer, ZoneError> {
        let serial = height as u32;
        let text = text.to_ascii_lowercase();
        let Some(zone) = self.find_zone(&text) else {
            return Ok(Answer::refused());
        };
        let apex_text = match &zone {
            Zone::Service => self.zone.origin().to_string(),
            Zone::Ors => self.ors.origin().to_string(),
            Zone::Delegated(z) => z.clone(),
        };
        let apex = name(&apex_text)?;
        let mut rrs: Vec<Record> = Vec::new();
        let mut additionals = Vec::new();
        let exists;
        if text == apex_text {
            rrs.push(self.soa(&apex, serial));
            for ns in &self.nameservers {
                rrs.push(Record::from_rdata(
                    apex.clone(),
                    ZONE_TTL,
                    RData::NS(NS(ns.clone())),
                ));
            }
            if qtype == RecordType::NS {
                additionals = self.glue();
            }
            exists = true;
        } else if let Some(ns) = self.nameservers.iter().find(|n| n == &qname) {
            // A name server inside the zone answers its address (the listen address).
            rrs.extend(self.address(ns));
            exists = true;
        } else {
            let layout = |data: Option<Vec<RecordData>>| {
                data.map(|d| d.iter().map(|d| to_record(qname, d)).collect::<Vec<_>>())
            };
            let data = match &zone {
                Zone::Service | Zone::Ors if self.ors.contains(&text) => {
                    match self.ors.classify(&text) {
                        Some(OrsName::Oid(oid)) => self.oid_data(qname, &oid)?,
                        Some(OrsName::Apex) => Some(Vec::new()),
                        Some(OrsName::Other) | None => None,
                    }
                }
                Zone::Service => match self.zone.classify(&text) {
                    // The ORS zone is elsewhere: the OID's service-zone name answers the same.
                    Some(ServiceName::Oid(oid)) => self.oid_data(qname, &oid)?,
                    class => layout(self.service_data(class)?),
                },
                Zone::Ors => None,
                Zone::Delegated(_) => layout(self.delegated_data(&text)?),
            };
            match data {
                Some(data) => {
                    rrs.extend(data);
                    exists = true;
                }
                None => exists = self.has_descendant(&text),
            }
        }
        let answers: Vec<Record> = if qtype == RecordType::ANY {
            // RFC 8482 §4.2: one synthesized HINFO, whatever the name holds. Its TTL is the
            // records' own, so a cache forgets it as soon as it would forget them (a name can
            // be unbound at the next block).
            if rrs.is_empty() {
                Vec::new()
            } else {
                vec![Record::from_rdata(
                    qname.clone(),
                    RECORD_TTL,
                    RData::HINFO(HINFO::new(RFC8482_CPU.into(), String::new())),
                )]
            }
        } else {
            rrs.into_iter()
                .filter(|r| r.record_type() == qtype)
                .collect()
        };
        let rcode = if exists {
            ResponseCode::NoError
        } else {
            ResponseCode::NXDomain
        };
        let authority = if answers.is_empty() {
            vec![self.negative_soa(&apex, serial)]
        } else {
            Vec::new()
        };
        Ok(Answer {
            rcode,
            authoritative: true,
            answers,
            authority,
            additionals,
        })
    }

    /// The address record of name server `ns`, when the server's address is known.
    fn address(&self, ns: &Name) -> Option<Record> {
        match self.ns_address {
            Some(IpAddr::V4(ip)) => Some(Record::from_rdata(
                ns.clone(),
                RECORD_TTL,
                RData::A(ip.into()),
            )),
            Some(IpAddr::V6(ip)) => Some(Record::from_rdata(
                ns.clone(),
                RECORD_TTL,
                RData::AAAA(ip.into()),
            )),
            None => None,
        }
    }

    /// The addresses of the name servers inside the service zone.
    fn glue(&self) -> Vec<Record> {
        self.nameservers
            .iter()
            .filter(|ns| self.origin.zone_of(ns))
            .filter_map(|ns| self.address(ns))
            .collect()
    }

    /// Whether the DID's record on this ledger says it is deactivated.
    fn deactivated(&self, did: &str) -> Result<bool, ZoneError> {
        Ok(did
            .parse::<Bid>()
            .ok()
            .map(|bid| read::<Value>(self.source(), &sparkid_registrar::did_key(&bid)))
            .transpose()?
            .flatten()
            .is_some_and(|record| record["deactivated"] == Value::Bool(true)))
    }

    /// The records of a name in the service zone (`class`: what it stands for), or none when
    /// it holds none.
    fn service_data(
        &self,
        class: Option<ServiceName>,
    ) -> Result<Option<Vec<RecordData>>, ZoneError> {
        let url = Some(self.public_url.as_str());
        let source = self.source();
        let bound = |kind: Kind, identifier: &str| -> Result<Option<String>, ZoneError> {
            Ok(read::<BindingRecord>(source, &binding_key(kind, identifier))?.and_then(|b| b.did))
        };
        // An identifier's name says what the DID's own name says about its state: a client
        // that reads `did=` there must not take a deactivated DID for a live one.
        let named = |did: &str, attributes: &[(&str, &str)]| {
            let mut extra = attributes.to_vec();
            if self.deactivated(did)? {
                extra.push(("deactivated", "true"));
            }
            Ok::<_, ZoneError>(service_records(did, url, &extra))
        };
        let named_records =
            |did: &str, key: &str, identifier: &str| named(did, &[(key, identifier)]);
        Ok(match class {
            Some(ServiceName::Did(did)) => {
                let Ok(bid) = did.parse::<Bid>() else {
                    return Ok(None);
                };
                let Some(record) = read::<Value>(source, &sparkid_registrar::did_key(&bid))? else {
                    return Ok(None);
                };
                // Only the bindings the DID's controller confirmed speak for it.
                let aliases = read::<AliasRecord>(source, &alias_key(&did))?
                    .map(|a| a.confirmed_uris(record.get("document")))
                    .unwrap_or_default();
                let mut extra: Vec<(&str, &str)> = Vec::new();
                if record["deactivated"] == Value::Bool(true) {
                    extra.push(("deactivated", "true"));
                }
                extra.extend(aliases.iter().map(|a| ("aka", a.as_str())));
                Some(service_records(&did, url, &extra))
            }
            Some(ServiceName::Vaa(code)) => match bound(Kind::Vaa, &code)? {
                Some(did) => Some(named_records(&did, "vaa", &code)?),
                None => None,
            },
            Some(ServiceName::Handle(handle)) => match bound(Kind::Handle, &handle)? {
                Some(did) => Some(named_records(&did, "hdl", &handle)?),
                None => None,
            },
            Some(ServiceName::HandleHash(label)) => {
                let handle = self
                    .index
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .hashed
                    .get(&label)
                    .cloned();
                match handle {
                    Some(handle) => match bound(Kind::Handle, &handle)? {
                        Some(did) => Some(named_records(&did, "hdl", &handle)?),
                        None => None,
                    },
                    None => None,
                }
            }
            Some(ServiceName::Ecode(code)) => match bound(Kind::Ecode, &code)? {
                Some(did) => Some(named_records(&did, "ecode", &code)?),
                None => None,
            },
            // A V0 Ecode is a GS1 key: its name answers from that key's binding.
            Some(ServiceName::EcodeV0 { code, gs1 }) => match bound(Kind::Gs1, &gs1)? {
                Some(did) => Some(named(&did, &[("ecode", &code), ("gs1", &gs1)])?),
                None => None,
            },
            Some(ServiceName::Gs1(key)) => match bound(Kind::Gs1, &key)? {
                Some(did) => Some(named_records(&did, "gs1", &key)?),
                None => None,
            },
            Some(ServiceName::Apex | ServiceName::Branch) => Some(Vec::new()),
            // Answered by `oid_data` before this is asked.
            Some(ServiceName::Oid(_)) => None,
            Some(ServiceName::Other) | None => None,
        })
    }

    /// The records of an OID's name, in the ORS zone or the service zone (`spec/oid.md`): for a
    /// bound OID, NAPTR `ORS+UINF` records to the DID and to its resolver URL, then the service
    /// zone's URI and TXT records (`did=`, `resolver=`, `oid=`, and `deactivated=true` once the
    /// DID is); none when it is not bound.
    fn oid_data(&self, qname: &Name, oid: &str) -> Result<Option<Vec<Record>>, ZoneError> {
        let binding = read::<BindingRecord>(self.source(), &binding_key(Kind::Oid, oid))?;
        let Some(did) = binding.and_then(|b| b.did) else {
            return Ok(None);
        };
        let url = sparkid_bridges::dns::resolver_url(&self.public_url, &did);
        let mut out = Vec::new();
        for naptr in naptr_records(&did, Some(&url)) {
            out.push(Record::from_rdata(
                qname.clone(),
                RECORD_TTL,
                RData::NAPTR(NAPTR::new(
                    naptr.order,
                    naptr.preference,
                    naptr.flags.as_bytes().into(),
                    naptr.services.as_bytes().into(),
                    naptr.regexp.as_bytes().into(),
                    Name::root(),
                )),
            ));
        }
        let mut extra = vec![("oid", oid)];
        if self.deactivated(&did)? {
            extra.push(("deactivated", "true"));
        }
        let layout = service_records(&did, Some(&self.public_url), &extra);
        out.extend(layout.iter().map(|d| to_record(qname, d)));
        Ok(Some(out))
    }

    /// The records of a name in a delegated zone: `_did.<name>` of a bound name.
    fn delegated_data(&self, text: &str) -> Result<Option<Vec<RecordData>>, ZoneError> {
        let Some(target) = did_owner_target(text) else {
            return Ok(None);
        };
        let Ok(identifier) = normalize_identifier(Kind::Dns, target) else {
            return Ok(None);
        };
        debug_assert_eq!(did_owner(&identifier), text);
        let binding = read::<BindingRecord>(self.source(), &binding_key(Kind::Dns, &identifier))?;
        Ok(binding
            .and_then(|b| b.did)
            .map(|did| binding_records(&did, Some(self.public_url.as_str()))))
    }
}

/// A record of the layout as a DNS record owned by `owner` (URI as an unknown type: its
/// RDATA is the layout's own encoding).
fn to_record(owner: &Name, data: &RecordData) -> Record {
    let rdata = match data {
        RecordData::Txt(_) => RData::TXT(TXT::new(data.txt_strings())),
        RecordData::Uri { .. } => RData::Unknown {
            code: RecordType::Unknown(data.rtype()),
            rdata: NULL::with(data.rdata()),
        },
    };
    Record::from_rdata(owner.clone(), RECORD_TTL, rdata)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparkid_test_support::DevChain;

    #[test]
    fn the_index_finds_descendants_only() {
        let mut index = NameIndex::default();
        index.names.insert(reversed("_did.a.b.example.com"));
        assert!(index.has_descendant("b.example.com"));
        assert!(index.has_descendant("a.b.example.com"));
        assert!(index.has_descendant("example.com"));
        assert!(!index.has_descendant("_did.a.b.example.com"));
        assert!(!index.has_descendant("c.example.com"));
        assert!(!index.has_descendant("xample.com"));
        assert!(!index.has_descendant("b.example.co"));
    }

    #[test]
    fn the_longest_delegated_zone_holds_a_name() {
        let mut index = NameIndex::default();
        index.zones.insert("example.com".into());
        index.zones.insert("sub.example.com".into());
        assert_eq!(
            index.delegated_zone("_did.a.sub.example.com"),
            Some("sub.example.com")
        );
        assert_eq!(
            index.delegated_zone("sub.example.com"),
            Some("sub.example.com")
        );
        assert_eq!(index.delegated_zone("b.example.com"), Some("example.com"));
        assert_eq!(index.delegated_zone("xample.com"), None);
        assert_eq!(index.delegated_zone("com"), None);
    }

    /// An authority over a fresh one-validator ledger (no bindings, no delegations).
    fn authority(chain: &DevChain, ns_address: Option<IpAddr>) -> Arc<Authority> {
        authority_with_ors(chain, ns_address, None)
    }

    fn authority_with_ors(
        chain: &DevChain,
        ns_address: Option<IpAddr>,
        ors_zone: Option<&str>,
    ) -> Arc<Authority> {
        let config = ZoneConfig {
            service_zone: "sparkid.test".into(),
            nameservers: Vec::new(),
            ors_zone: ors_zone.map(str::to_string),
            ns_address,
        };
        let authority = Arc::new(
            Authority::new(
                &config,
                "http://127.0.0.1:8080/",
                Records::new(chain.ledger.clone()),
            )
            .unwrap(),
        );
        authority.index_chain().unwrap();
        authority
    }

    fn ask(authority: &Authority, qname: &str, qtype: RecordType) -> Arc<Answer> {
        authority
            .answer(&Name::from_ascii(qname).unwrap(), qtype)
            .unwrap()
    }

    #[test]
    fn the_apex_has_soa_and_ns_with_glue_for_an_inside_name_server() {
        let chain = DevChain::new();
        let authority = authority(&chain, Some([127, 0, 0, 1].into()));
        let soa = ask(&authority, "sparkid.test.", RecordType::SOA);
        assert_eq!(soa.rcode, ResponseCode::NoError);
        assert!(soa.authoritative);
        assert_eq!(soa.answers.len(), 1);
        let RData::SOA(data) = &soa.answers[0].data else {
            panic!("not an SOA: {:?}", soa.answers[0]);
        };
        assert_eq!(data.serial, 0, "the serial is the height");
        let ns = ask(&authority, "sparkid.test.", RecordType::NS);
        assert_eq!(ns.answers.len(), 1);
        assert_eq!(ns.additionals.len(), 1, "glue for ns1.sparkid.test");
        let a = ask(&authority, "ns1.sparkid.test.", RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert_eq!(a.answers.len(), 1);
    }

    #[test]
    fn any_is_one_synthesized_hinfo_where_the_name_has_records() {
        let chain = DevChain::new();
        let authority = authority(&chain, Some([127, 0, 0, 1].into()));
        // The apex holds SOA and NS (and glue for NS): ANY answers none of them.
        let any = ask(&authority, "sparkid.test.", RecordType::ANY);
        assert_eq!(any.rcode, ResponseCode::NoError);
        assert_eq!(any.answers.len(), 1, "{any:?}");
        assert!(any.additionals.is_empty() && any.authority.is_empty());
        let RData::HINFO(hinfo) = &any.answers[0].data else {
            panic!("not an HINFO: {:?}", any.answers[0]);
        };
        assert_eq!(&*hinfo.cpu, RFC8482_CPU.as_bytes());
        assert!(hinfo.os.is_empty());
        assert_eq!(
            any.answers[0].name,
            Name::from_ascii("sparkid.test.").unwrap()
        );
        // Names without records keep their negative answers.
        let branch = ask(&authority, "did.sparkid.test.", RecordType::ANY);
        assert_eq!(branch.rcode, ResponseCode::NoError);
        assert!(branch.answers.is_empty());
        let missing = ask(&authority, "nothing.sparkid.test.", RecordType::ANY);
        assert_eq!(missing.rcode, ResponseCode::NXDomain);
    }

    #[test]
    fn unknown_names_are_nxdomain_branches_nodata_and_other_zones_refused() {
        let chain = DevChain::new();
        let authority = authority(&chain, None);
        let missing = ask(&authority, "nothing.sparkid.test.", RecordType::TXT);
        assert_eq!(missing.rcode, ResponseCode::NXDomain);
        assert!(missing.answers.is_empty());
        assert_eq!(missing.authority.len(), 1, "the zone's SOA");
        assert_eq!(missing.authority[0].ttl, NEGATIVE_TTL);
        let branch = ask(&authority, "did.sparkid.test.", RecordType::TXT);
        assert_eq!(branch.rcode, ResponseCode::NoError);
        assert!(branch.answers.is_empty());
        assert_eq!(branch.authority.len(), 1);
        let glue = ask(&authority, "sparkid.test.", RecordType::NS);
        assert!(glue.additionals.is_empty(), "no address, no glue");
        let outside = ask(&authority, "example.org.", RecordType::A);
        assert_eq!(outside.rcode, ResponseCode::Refused);
        assert!(!outside.authoritative);
    }

    #[test]
    fn the_ors_zone_is_part_of_the_service_zone_or_a_zone_of_its_own() {
        let chain = DevChain::new();
        let inside = authority(&chain, None);
        // `oid.sparkid.test` is an interior name of the service zone: NODATA, the service SOA.
        let apex = ask(&inside, "oid.sparkid.test.", RecordType::NAPTR);
        assert_eq!(apex.rcode, ResponseCode::NoError);
        assert!(apex.answers.is_empty());
        assert_eq!(
            apex.authority[0].name,
            Name::from_ascii("sparkid.test.").unwrap()
        );
        let unbound = ask(
            &inside,
            "7.1.3001.156.2.1.oid.sparkid.test.",
            RecordType::NAPTR,
        );
        assert_eq!(unbound.rcode, ResponseCode::NXDomain);
        drop(inside);
        let chain = DevChain::new();
        let own = authority_with_ors(&chain, None, Some("ORS.Example."));
        let soa = ask(&own, "ors.example.", RecordType::SOA);
        assert_eq!(soa.rcode, ResponseCode::NoError);
        assert_eq!(soa.answers.len(), 1, "the ORS zone has its own apex");
        let unbound = ask(&own, "7.1.ors.example.", RecordType::NAPTR);
        assert_eq!(unbound.rcode, ResponseCode::NXDomain);
        assert_eq!(
            unbound.authority[0].name,
            Name::from_ascii("ors.example.").unwrap()
        );
        let outside = ask(&own, "xors.example.", RecordType::NAPTR);
        assert_eq!(outside.rcode, ResponseCode::Refused);
    }
}
