//! The DNS door: an authoritative DNS server (hickory-server, UDP and TCP) for the service zone
//! and for every DNS zone delegated on the ledger. The layout is `spec/dns.md`; the mapping and
//! the record data come from [`sparkid_bridges::dns`], the records from [`Records`].
//!
//! - Every zone's SOA serial is the ledger height (mod 2^32), read before the answer's records,
//!   so an answer is at least as new as the serial it is served with, and the serial moves with
//!   each committed block.
//! - NXDOMAIN when the name does not exist; NODATA (NOERROR, empty answer) when it exists with
//!   other types, or only as the parent of names that do (empty non-terminals). Both carry the
//!   zone's SOA in the authority section.
//! - EDNS0: a UDP answer is at most the client's advertised size, capped at
//!   [`UDP_PAYLOAD_CAP`], and 512 bytes without EDNS; larger answers are sent with TC set and
//!   no records, so that the client retries over TCP, where the limit is 65535 bytes.
//! - Names outside every zone are REFUSED; other opcodes NOTIMP; zone transfers REFUSED;
//!   EDNS versions above 0 BADVERS; malformed messages FORMERR (hickory-server's parser).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use anyhow::Context;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::rdata::{NS, NULL, SOA, TXT};
use hickory_server::proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_server::proto::serialize::binary::BinEncoder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::Server;
use serde_json::Value;
use sparkid_bid::Bid;
use sparkid_bridges::dns::{
    binding_records, did_owner, did_owner_target, service_records, RecordData, ServiceName,
    ServiceZone,
};
use sparkid_bridges::{read, BridgeError, RecordSource};
use sparkid_ledger::Ledger;
use sparkid_registrar::namespace::{
    alias_key, binding_key, namespace_key, normalize_dns_name, normalize_identifier, AliasRecord,
    BindingRecord, Kind,
};
use tracing::{info, warn};

use crate::config::DnsConfig;
use crate::records::Records;

/// The largest UDP answer sent, whatever the client advertises (the DNS Flag Day 2020 size,
/// which avoids IP fragmentation).
pub const UDP_PAYLOAD_CAP: u16 = 1232;
/// The TTL of answer records (URI, TXT, addresses of name servers).
pub const RECORD_TTL: u32 = 60;
/// The TTL of SOA and NS records.
pub const ZONE_TTL: u32 = 3600;
/// The SOA minimum: how long a negative answer may be cached.
pub const NEGATIVE_TTL: u32 = 60;
/// How long an idle TCP connection is kept.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running DNS door.
pub struct DnsDoor {
    /// The bound UDP address.
    pub udp: SocketAddr,
    /// The bound TCP address.
    pub tcp: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DnsDoor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the DNS door when `config.listen` is set (`base_url`: the daemon's public HTTP URL,
/// for the resolver URLs in answers): indexes the names the ledger's bindings
/// create, binds UDP and TCP, and serves until dropped.
pub async fn start(
    config: &DnsConfig,
    base_url: &str,
    records: Records,
) -> anyhow::Result<Option<DnsDoor>> {
    let Some(listen) = config.listen else {
        return Ok(None);
    };
    let door = DnsAuthority::new(config, base_url, records)?;
    let authority = door.authority.clone();
    tokio::task::spawn_blocking(move || door.index_chain())
        .await
        .context("indexing bound names")??;
    let udp = tokio::net::UdpSocket::bind(listen)
        .await
        .with_context(|| format!("binding DNS UDP {listen}"))?;
    // Same port for TCP (when the UDP port was chosen by the system, TCP takes it too).
    let udp_addr = udp.local_addr()?;
    let tcp = tokio::net::TcpListener::bind(udp_addr)
        .await
        .with_context(|| format!("binding DNS TCP {udp_addr}"))?;
    let tcp_addr = tcp.local_addr()?;
    let mut server = Server::new(Handler { authority });
    server.register_socket(udp);
    server.register_listener(tcp, TCP_TIMEOUT, 64 * 1024);
    let task = tokio::spawn(async move {
        if let Err(e) = server.block_until_done().await {
            warn!(error = %e, "DNS server stopped");
        }
    });
    info!(dns = %udp_addr, zone = %config.service_zone, "DNS door serving");
    Ok(Some(DnsDoor {
        udp: udp_addr,
        tcp: tcp_addr,
        task,
    }))
}

/// The door's answering logic without sockets: what the server runs for each message, for
/// tests and fuzzing.
pub struct DnsAuthority {
    authority: Arc<Authority>,
}

impl DnsAuthority {
    /// The authority of the zones `config` names, reading `records`; `base_url` is the
    /// daemon's public HTTP URL. Call [`DnsAuthority::index_chain`] before answering.
    pub fn new(config: &DnsConfig, base_url: &str, records: Records) -> anyhow::Result<Self> {
        Ok(DnsAuthority {
            authority: Arc::new(Authority::new(config, base_url, records)?),
        })
    }

    /// Indexes the names the chain's bindings create, and keeps the index current from each
    /// commit from now on.
    pub fn index_chain(&self) -> anyhow::Result<()> {
        self.authority.build_index()
    }

    /// The answer to one message as it arrived over UDP (`udp`) or TCP (one frame, without
    /// its length prefix), or none when it gets no answer (shorter than a header, or a
    /// response).
    pub async fn respond(&self, bytes: &[u8], udp: bool) -> Option<Vec<u8>> {
        use hickory_server::net::xfer::Protocol;
        use hickory_server::proto::op::{Header, MessageType};
        use hickory_server::proto::serialize::binary::{BinDecodable, BinDecoder};
        let protocol = if udp { Protocol::Udp } else { Protocol::Tcp };
        let src: SocketAddr = ([127, 0, 0, 1], 53000).into();
        let capture = Capture {
            udp,
            out: Arc::new(std::sync::Mutex::new(None)),
        };
        match Request::from_bytes(bytes.to_vec(), src, protocol) {
            Ok(request) => {
                if request.metadata.message_type == MessageType::Response {
                    return None;
                }
                Handler {
                    authority: self.authority.clone(),
                }
                .handle_request::<_, hickory_server::net::runtime::TokioTime>(
                    &request,
                    capture.clone(),
                )
                .await;
            }
            Err(_) => {
                // As hickory-server does: FORMERR when the header parses, else silence.
                let header = Header::read(&mut BinDecoder::new(bytes)).ok()?;
                let queries =
                    hickory_server::zone_handler::Queries::read(&mut BinDecoder::new(&[]), 0)
                        .ok()?;
                let response = MessageResponseBuilder::new(&queries, None)
                    .error_msg(&header.metadata, ResponseCode::FormErr);
                let mut sink = capture.clone();
                let _ = sink.send_response(response).await;
            }
        }
        let out = capture.out.lock().unwrap_or_else(|p| p.into_inner()).take();
        out
    }
}

/// A response handler that keeps the encoded answer, with the size limit the server applies.
#[derive(Clone)]
struct Capture {
    udp: bool,
    out: Arc<std::sync::Mutex<Option<Vec<u8>>>>,
}

#[async_trait::async_trait]
impl ResponseHandler for Capture {
    async fn send_response<'a>(
        &mut self,
        response: hickory_server::zone_handler::MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, hickory_server::net::NetError> {
        let max = if self.udp {
            response.edns().map_or(512, |e| e.max_payload())
        } else {
            u16::MAX
        };
        let mut buffer = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut buffer);
        encoder.set_max_size(max);
        let info = response.destructive_emit(&mut encoder)?;
        *self.out.lock().unwrap_or_else(|p| p.into_inner()) = Some(buffer);
        Ok(info)
    }
}

/// Why an answer could not be computed.
#[derive(Debug, thiserror::Error)]
enum AnswerError {
    #[error(transparent)]
    Bridge(#[from] BridgeError),
    #[error("record name: {0}")]
    Name(String),
}

/// The zone a query falls in.
enum Zone {
    Service,
    Delegated(String),
}

/// The answer to one question, before it is fitted to the transport.
struct Answer {
    rcode: ResponseCode,
    authoritative: bool,
    answers: Vec<Record>,
    authority: Vec<Record>,
    additionals: Vec<Record>,
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

/// The most answers kept for one height.
const ANSWER_CACHE_ENTRIES: usize = 100_000;

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
}

/// What the door answers from: the zones, the records, the index.
struct Authority {
    records: Records,
    zone: ServiceZone,
    origin: Name,
    nameservers: Vec<Name>,
    /// Addresses of name servers that are in the service zone (the listen address).
    ns_address: Option<IpAddr>,
    hostmaster: Name,
    public_url: String,
    index: RwLock<NameIndex>,
    cache: RwLock<AnswerCache>,
}

fn name(text: &str) -> Result<Name, AnswerError> {
    Name::from_ascii(format!("{}.", text.trim_end_matches('.')))
        .map_err(|e| AnswerError::Name(format!("{text}: {e}")))
}

impl Authority {
    fn new(config: &DnsConfig, base_url: &str, records: Records) -> anyhow::Result<Authority> {
        let zone = ServiceZone::new(&config.service_zone).context("service_zone")?;
        let mut nameservers = Vec::new();
        for ns in &config.nameservers {
            let canonical =
                normalize_dns_name(ns).map_err(|e| anyhow::anyhow!("dns_nameservers: {e}"))?;
            nameservers.push(name(&canonical)?);
        }
        if nameservers.is_empty() {
            nameservers.push(name(&format!("ns1.{}", zone.origin()))?);
        }
        let ns_address = config
            .listen
            .map(|a| a.ip())
            .filter(|ip| !ip.is_unspecified());
        Ok(Authority {
            origin: name(zone.origin())?,
            hostmaster: name(&format!("hostmaster.{}", zone.origin()))?,
            zone,
            nameservers,
            ns_address,
            public_url: base_url.trim_end_matches('/').to_string(),
            records,
            index: RwLock::new(NameIndex::default()),
            cache: RwLock::new(AnswerCache::default()),
        })
    }

    /// Ledger records through the cache (`crate::bridge_source` makes [`Records`] a source).
    fn source(&self) -> &dyn RecordSource {
        &self.records
    }

    /// Fills the index from every block so far, then keeps it current from each commit. The
    /// listener is registered first: a block committed meanwhile is seen twice, which is
    /// harmless since each update re-reads the binding's current state.
    fn build_index(self: &Arc<Self>) -> anyhow::Result<()> {
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
            let mut index = authority.index.write().unwrap_or_else(|p| p.into_inner());
            index.height = index.height.max(block.height);
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
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        index.height = index.height.max(height);
        Ok(())
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
        let Ok(owner) = self.zone.name_for(kind, identifier) else {
            return;
        };
        let mut index = self.index.write().unwrap_or_else(|p| p.into_inner());
        let key = reversed(&owner);
        if bound {
            index.names.insert(key);
        } else {
            index.names.remove(&key);
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
    fn find_zone(&self, qname: &str) -> Result<Option<Zone>, AnswerError> {
        let origin = self.zone.origin();
        if qname == origin || qname.ends_with(&format!(".{origin}")) {
            return Ok(Some(Zone::Service));
        }
        let index = self.index.read().unwrap_or_else(|p| p.into_inner());
        let mut candidate = qname;
        loop {
            if index.zones.contains(candidate) {
                return Ok(Some(Zone::Delegated(candidate.to_string())));
            }
            match candidate.split_once('.') {
                Some((_, parent)) if !parent.is_empty() => candidate = parent,
                _ => return Ok(None),
            }
        }
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

    /// The answer to one question (`qname` in lower case), from the answers computed at the
    /// current height when there is one. An answer is kept only when the index (and so the read
    /// cache) has taken in the block it was computed at, and is dropped at the next block.
    fn answer(&self, qname: &Name, qtype: RecordType) -> Result<Arc<Answer>, AnswerError> {
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
    ) -> Result<Answer, AnswerError> {
        let serial = height as u32;
        let text = text.to_ascii_lowercase();
        let Some(zone) = self.find_zone(&text)? else {
            return Ok(Answer::refused());
        };
        let apex_text = match &zone {
            Zone::Service => self.zone.origin().to_string(),
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
            match self.ns_address {
                Some(IpAddr::V4(ip)) => rrs.push(Record::from_rdata(
                    ns.clone(),
                    RECORD_TTL,
                    RData::A(ip.into()),
                )),
                Some(IpAddr::V6(ip)) => rrs.push(Record::from_rdata(
                    ns.clone(),
                    RECORD_TTL,
                    RData::AAAA(ip.into()),
                )),
                None => {}
            }
            exists = true;
        } else {
            let data = match &zone {
                Zone::Service => self.service_data(&text)?,
                Zone::Delegated(_) => self.delegated_data(&text)?,
            };
            match data {
                Some(data) => {
                    rrs.extend(data.iter().map(|d| to_record(qname, d)));
                    exists = true;
                }
                None => exists = self.has_descendant(&text),
            }
        }
        let answers: Vec<Record> = rrs
            .into_iter()
            .filter(|r| qtype == RecordType::ANY || r.record_type() == qtype)
            .collect();
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

    fn glue(&self) -> Vec<Record> {
        let mut out = Vec::new();
        for ns in &self.nameservers {
            if !self.origin.zone_of(ns) {
                continue;
            }
            match self.ns_address {
                Some(IpAddr::V4(ip)) => out.push(Record::from_rdata(
                    ns.clone(),
                    RECORD_TTL,
                    RData::A(ip.into()),
                )),
                Some(IpAddr::V6(ip)) => out.push(Record::from_rdata(
                    ns.clone(),
                    RECORD_TTL,
                    RData::AAAA(ip.into()),
                )),
                None => {}
            }
        }
        out
    }

    /// The records of a name in the service zone, or none when it holds none.
    fn service_data(&self, text: &str) -> Result<Option<Vec<RecordData>>, AnswerError> {
        let url = Some(self.public_url.as_str());
        let source = self.source();
        let bound = |kind: Kind, identifier: &str| -> Result<Option<String>, AnswerError> {
            Ok(read::<BindingRecord>(source, &binding_key(kind, identifier))?.and_then(|b| b.did))
        };
        Ok(match self.zone.classify(text) {
            Some(ServiceName::Did(did)) => {
                let Ok(bid) = did.parse::<Bid>() else {
                    return Ok(None);
                };
                let Some(record) = read::<Value>(source, &sparkid_registrar::did_key(&bid))? else {
                    return Ok(None);
                };
                let aliases = read::<AliasRecord>(source, &alias_key(&did))?
                    .map(|a| a.uris())
                    .unwrap_or_default();
                let mut extra: Vec<(&str, &str)> = Vec::new();
                if record["deactivated"] == Value::Bool(true) {
                    extra.push(("deactivated", "true"));
                }
                extra.extend(aliases.iter().map(|a| ("aka", a.as_str())));
                Some(service_records(&did, url, &extra))
            }
            Some(ServiceName::Vaa(code)) => bound(Kind::Vaa, &code)?
                .map(|did| service_records(&did, url, &[("vaa", code.as_str())])),
            Some(ServiceName::Handle(handle)) => bound(Kind::Handle, &handle)?
                .map(|did| service_records(&did, url, &[("hdl", handle.as_str())])),
            Some(ServiceName::HandleHash(label)) => {
                let handle = self
                    .index
                    .read()
                    .unwrap_or_else(|p| p.into_inner())
                    .hashed
                    .get(&label)
                    .cloned();
                match handle {
                    Some(handle) => bound(Kind::Handle, &handle)?
                        .map(|did| service_records(&did, url, &[("hdl", handle.as_str())])),
                    None => None,
                }
            }
            Some(ServiceName::Apex | ServiceName::Branch) => Some(Vec::new()),
            Some(ServiceName::Other) | None => None,
        })
    }

    /// The records of a name in a delegated zone: `_did.<name>` of a bound name.
    fn delegated_data(&self, text: &str) -> Result<Option<Vec<RecordData>>, AnswerError> {
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

/// hickory-server's request handler: one question in, one answer out, fitted to the transport.
struct Handler {
    authority: Arc<Authority>,
}

/// Upper bound of an answer's encoded size: names counted uncompressed (a name's text length
/// plus one is at least its wire length).
fn size_bound(answer: &Answer, question: usize) -> usize {
    let records = answer
        .answers
        .iter()
        .chain(&answer.authority)
        .chain(&answer.additionals);
    12 + question
        + 11 // OPT
        + records
            .map(|r| r.name.len() + 1 + 10 + record_data_len(r))
            .sum::<usize>()
}

fn record_data_len(record: &Record) -> usize {
    match &record.data {
        RData::Unknown { rdata, .. } => rdata.anything.len(),
        RData::TXT(txt) => txt.txt_data.iter().map(|s| s.len() + 1).sum(),
        RData::SOA(soa) => soa.mname.len() + 1 + soa.rname.len() + 1 + 20,
        RData::NS(ns) => ns.0.len() + 1,
        _ => 16,
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let udp = request.protocol() == hickory_server::net::xfer::Protocol::Udp;
        // EDNS0: answer with an OPT when asked with one; the UDP limit is the client's size
        // (at least 512), capped.
        let response_edns = request.edns.as_ref().map(|req| {
            let mut edns = Edns::new();
            edns.set_max_payload(req.max_payload().clamp(512, UDP_PAYLOAD_CAP));
            edns.set_version(0);
            edns
        });
        let limit: usize = if !udp {
            u16::MAX as usize
        } else {
            response_edns
                .as_ref()
                .map_or(512, |e| e.max_payload() as usize)
        };
        let mut metadata = Metadata::response_from_request(&request.metadata);

        let answer = if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
            Err(ResponseCode::BADVERS)
        } else if request.metadata.op_code != OpCode::Query {
            Err(ResponseCode::NotImp)
        } else if request.queries.len() != 1 {
            Err(ResponseCode::FormErr)
        } else {
            let query = &request.queries.queries()[0];
            let qtype = query.query_type();
            let qclass = query.query_class();
            // Other classes, and zone transfers (not offered), are refused.
            let class_ok = qclass == DNSClass::IN || qclass == DNSClass::ANY;
            if !class_ok || matches!(qtype, RecordType::AXFR | RecordType::IXFR) {
                Err(ResponseCode::Refused)
            } else {
                let authority = &self.authority;
                // Owner names in lower case: one cached answer serves every spelling.
                let qname = Name::from(query.name().clone());
                match authority.answer(&qname, qtype) {
                    Ok(a) => Ok(a),
                    Err(e) => {
                        warn!(error = %e, name = %qname, "DNS answer failed");
                        Err(ResponseCode::ServFail)
                    }
                }
            }
        };
        let answer = match answer {
            Ok(a) => a,
            Err(rcode) => {
                metadata.response_code = rcode;
                let mut builder = MessageResponseBuilder::new(&request.queries, None);
                if let Some(e) = &response_edns {
                    builder.edns(e);
                }
                return send(
                    &mut response_handle,
                    builder.build_no_records(metadata),
                    request,
                )
                .await;
            }
        };
        metadata.response_code = answer.rcode;
        metadata.authoritative = answer.authoritative;

        // Fit the answer to the transport: if it may not fit, encode it to find out, and when
        // it does not, send TC with no records (the client retries over TCP).
        let question = request.queries.as_bytes().len();
        let mut fits = true;
        if size_bound(&answer, question) > limit {
            let mut builder = MessageResponseBuilder::new(&request.queries, None);
            if let Some(e) = &response_edns {
                builder.edns(e);
            }
            let trial = builder.build(
                metadata,
                answer.answers.iter(),
                answer.authority.iter(),
                [].iter(),
                answer.additionals.iter(),
            );
            let mut buffer = Vec::with_capacity(limit);
            let mut encoder = BinEncoder::new(&mut buffer);
            encoder.set_max_size(limit as u16);
            fits = match trial.destructive_emit(&mut encoder) {
                Ok(info) => !info.truncation,
                Err(_) => false,
            };
        }
        let mut builder = MessageResponseBuilder::new(&request.queries, None);
        if let Some(e) = &response_edns {
            builder.edns(e);
        }
        if fits {
            let response = builder.build(
                metadata,
                answer.answers.iter(),
                answer.authority.iter(),
                [].iter(),
                answer.additionals.iter(),
            );
            send(&mut response_handle, response, request).await
        } else {
            metadata.truncation = true;
            send(
                &mut response_handle,
                builder.build_no_records(metadata),
                request,
            )
            .await
        }
    }
}

async fn send<'a, R: ResponseHandler>(
    handle: &mut R,
    response: hickory_server::zone_handler::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
    request: &Request,
) -> ResponseInfo {
    match handle.send_response(response).await {
        Ok(info) => info,
        Err(e) => {
            warn!(error = %e, "sending a DNS answer");
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.response_code = ResponseCode::ServFail;
            ResponseInfo::from(hickory_server::proto::op::Header {
                metadata,
                counts: Default::default(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
