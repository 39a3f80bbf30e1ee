//! The DNS door: an authoritative DNS server (UDP and TCP) for the service zone and for every
//! DNS zone delegated on the ledger. What is answered is the zone service's
//! ([`sparkid_resolver::dns_zone`], laid out in `spec/dns.md`); this door owns the sockets and
//! fits each answer to the transport.
//!
//! - UDP: one receive loop per core, each a thread with its own socket on the port
//!   (`SO_REUSEPORT`) and its own cache of encoded answers ([`crate::doors::dns_wire`]), dropped
//!   by the next block. A cache hit is a copy with the query's id, flags and spelling patched
//!   in; everything else goes through hickory-proto's parser and the handler below.
//! - TCP: hickory-server, with the same handler.
//!
//! - EDNS0: a UDP answer is at most the client's advertised size, capped at
//!   [`UDP_PAYLOAD_CAP`], and 512 bytes without EDNS; larger answers are sent with TC set and
//!   no records, so that the client retries over TCP, where the limit is 65535 bytes.
//! - Names outside every zone are REFUSED; other opcodes NOTIMP; zone transfers REFUSED;
//!   EDNS versions above 0 BADVERS; malformed messages FORMERR (hickory-server's parser).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hickory_server::net::runtime::Time;
use hickory_server::proto::op::{Edns, Metadata, OpCode, ResponseCode};
use hickory_server::proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_server::proto::serialize::binary::BinEncoder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::Server;
use sparkid_resolver::dns_zone::{Answer, Authority, ZoneConfig};
use sparkid_resolver::records::Records;
use tracing::{debug, info, warn};

use crate::config::{DnsConfig, RrlConfig};
use crate::doors::dns_wire::{patch, read_query, AnswerCache};
use crate::doors::rrl::{ResponseRateLimiter, Verdict};
use crate::metrics::UdpMetrics;

/// The largest UDP answer sent, whatever the client advertises (the DNS Flag Day 2020 size,
/// which avoids IP fragmentation).
pub const UDP_PAYLOAD_CAP: u16 = 1232;
/// How long an idle TCP connection is kept.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);

/// The most the answer caches of the UDP receive loops hold together, in bytes (each loop
/// keeps its own share; a full cache is emptied).
pub const ANSWER_CACHE_BYTES: usize = 32 << 20;
/// The largest UDP query read; the rest of a longer datagram is cut off (and the message then
/// fails to parse).
const UDP_QUERY_MAX: usize = 4096;
/// How often an idle receive loop looks whether the door was dropped.
const UDP_STOP_POLL: Duration = Duration::from_millis(100);
/// The kernel receive buffer asked for each UDP socket: bursts wait there rather than being
/// dropped while a loop computes an answer.
const UDP_RECEIVE_BUFFER: usize = 4 << 20;

/// A running DNS door.
pub struct DnsDoor {
    /// The bound UDP address.
    pub udp: SocketAddr,
    /// The bound TCP address.
    pub tcp: SocketAddr,
    task: tokio::task::JoinHandle<()>,
    stop: Arc<AtomicBool>,
    udp_loops: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for DnsDoor {
    fn drop(&mut self) {
        self.task.abort();
        // The loops close their sockets as they end: once dropped, the door answers no more.
        self.stop.store(true, Ordering::Relaxed);
        for udp_loop in self.udp_loops.drain(..) {
            let _ = udp_loop.join();
        }
    }
}

/// Starts the DNS door when `config.listen` is set (`base_url`: the daemon's public HTTP URL,
/// for the resolver URLs in answers): indexes the names the ledger's bindings
/// create, binds UDP and TCP, and serves until dropped. UDP answers are limited by `rrl`, and
/// what it holds back is counted in `metrics`.
///
/// UDP is served by one receive loop per core, each on its own thread and its own socket
/// bound to the port with `SO_REUSEPORT` (the kernel spreads clients over them), each with its
/// own answer cache ([`super::dns_wire`]): no task, lock or allocation per datagram on a cache hit.
/// TCP is hickory-server's.
pub async fn start(
    config: &DnsConfig,
    base_url: &str,
    records: Records,
    rrl: RrlConfig,
    metrics: UdpMetrics,
) -> anyhow::Result<Option<DnsDoor>> {
    let Some(listen) = config.listen else {
        return Ok(None);
    };
    let door = DnsAuthority::new(config, base_url, records)?;
    let authority = door.authority.clone();
    tokio::task::spawn_blocking(move || door.index_chain())
        .await
        .context("indexing bound names")??;
    let loops = std::thread::available_parallelism().map_or(1, |n| n.get());
    let first = udp_socket(listen).with_context(|| format!("binding DNS UDP {listen}"))?;
    // Same port for the other loops and for TCP (when the UDP port was chosen by the system,
    // they all take it).
    let udp_addr = first.local_addr()?;
    let mut sockets = vec![first];
    for _ in 1..loops {
        sockets.push(udp_socket(udp_addr).with_context(|| format!("binding DNS UDP {udp_addr}"))?);
    }
    let tcp = tokio::net::TcpListener::bind(udp_addr)
        .await
        .with_context(|| format!("binding DNS TCP {udp_addr}"))?;
    let tcp_addr = tcp.local_addr()?;
    let rrl_limiter = ResponseRateLimiter::new(rrl).map(Arc::new);
    let handler = Arc::new(Handler {
        authority,
        rrl: rrl_limiter,
        metrics: Some(metrics),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let mut udp_loops = Vec::new();
    for (n, socket) in sockets.into_iter().enumerate() {
        let answerer = UdpAnswerer::new(handler.clone(), ANSWER_CACHE_BYTES / loops);
        let stop = stop.clone();
        udp_loops.push(
            std::thread::Builder::new()
                .name(format!("dns-udp-{n}"))
                .spawn(move || serve_udp(socket, answerer, &stop))
                .context("starting a DNS UDP loop")?,
        );
    }
    let mut server = Server::new(TcpHandler(handler));
    server.register_listener(tcp, TCP_TIMEOUT, 64 * 1024);
    let task = tokio::spawn(async move {
        if let Err(e) = server.block_until_done().await {
            warn!(error = %e, "DNS server stopped");
        }
    });
    info!(
        dns = %udp_addr,
        zone = %config.service_zone,
        ors_zone = config.ors_zone.as_deref().unwrap_or("oid.<service zone>"),
        udp_rrl_rate = rrl.rate,
        udp_rrl_slip = rrl.slip,
        udp_loops = loops,
        "DNS door serving"
    );
    Ok(Some(DnsDoor {
        udp: udp_addr,
        tcp: tcp_addr,
        task,
        stop,
        udp_loops,
    }))
}

/// A UDP socket bound to `addr` with `SO_REUSEPORT`, so that each receive loop has its own,
/// blocking with a timeout (so that a loop sees when the door is dropped).
fn udp_socket(addr: SocketAddr) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    // A smaller buffer than asked for (the system's maximum) is still a buffer.
    let _ = socket.set_recv_buffer_size(UDP_RECEIVE_BUFFER);
    socket.bind(&addr.into())?;
    socket.set_read_timeout(Some(UDP_STOP_POLL))?;
    Ok(socket.into())
}

/// One receive loop: a datagram in, its answer (if any) out, until `stop`.
fn serve_udp(socket: std::net::UdpSocket, mut answerer: UdpAnswerer, stop: &AtomicBool) {
    let mut buffer = vec![0u8; UDP_QUERY_MAX];
    while !stop.load(Ordering::Relaxed) {
        let (len, source) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(e) => {
                use std::io::ErrorKind::{Interrupted, TimedOut, WouldBlock};
                if !matches!(e.kind(), WouldBlock | TimedOut | Interrupted) {
                    // E.g. an ICMP error for an earlier answer: not this loop's to fix.
                    debug!(error = %e, "DNS UDP receive");
                }
                continue;
            }
        };
        if let Some(answer) = answerer.answer(&buffer[..len], source) {
            if let Err(e) = socket.send_to(answer, source) {
                debug!(error = %e, "DNS UDP send");
            }
        }
    }
}

/// Answers UDP datagrams: plain queries from the answer cache ([`super::dns_wire`]) when it holds
/// their answer, everything else (and misses, which fill the cache) through the full parser and
/// the handler. Each receive loop owns one.
pub struct UdpAnswerer {
    handler: Arc<Handler>,
    cache: AnswerCache,
    key: Vec<u8>,
    out: Vec<u8>,
}

impl UdpAnswerer {
    fn new(handler: Arc<Handler>, cache_bytes: usize) -> UdpAnswerer {
        UdpAnswerer {
            handler,
            cache: AnswerCache::new(cache_bytes),
            key: Vec::with_capacity(MAX_KEY),
            out: Vec::with_capacity(usize::from(UDP_PAYLOAD_CAP)),
        }
    }

    /// The answer to one datagram from `source`, or none (held back by rate limiting, shorter
    /// than a header, or a response).
    pub fn answer(&mut self, message: &[u8], source: SocketAddr) -> Option<&[u8]> {
        let Some(query) = read_query(message, UDP_PAYLOAD_CAP, &mut self.key) else {
            self.out = respond_now(&self.handler, message, source, true, None)?;
            return Some(&self.out);
        };
        let verdict = match &self.handler.rrl {
            Some(rrl) => self.handler.rate_limit_udp(rrl, source.ip()),
            None => Verdict::Answer,
        };
        match verdict {
            Verdict::Answer => {}
            Verdict::Drop => return None,
            Verdict::Slip => {
                self.out = respond_now(&self.handler, message, source, true, Some(verdict))?;
                return Some(&self.out);
            }
        }
        // Read before the answer is computed, so that what is kept is at least this new.
        let generation = self.handler.authority.settled_height();
        if let Some(cached) = self.cache.get(generation, &self.key) {
            patch(cached, message, query, &mut self.out);
            return Some(&self.out);
        }
        // The answer is computed for the question in lower case, so that every spelling gets
        // the same bytes (the answer's owner names point at the question, and so echo each
        // query's spelling once patched).
        let mut lower = message.to_vec();
        lower[12..query.question_end - 4].make_ascii_lowercase();
        let answer = respond_now(&self.handler, &lower, source, true, Some(verdict))?;
        // NOERROR, NXDOMAIN and REFUSED follow from the question and the height alone; a
        // SERVFAIL (a read that failed) is not kept.
        if matches!(answer.get(3).map(|b| b & 0x0f), Some(0 | 3 | 5)) {
            self.cache.insert(generation, &self.key, &answer);
        }
        patch(&answer, message, query, &mut self.out);
        Some(&self.out)
    }
}

/// The longest cache key: a name, type and class, and the EDNS part.
const MAX_KEY: usize = 255 + 4 + 4;

/// hickory-server's handler for TCP: the UDP loops answer UDP themselves.
struct TcpHandler(Arc<Handler>);

#[async_trait::async_trait]
impl RequestHandler for TcpHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        self.0
            .handle_request::<R, T>(request, response_handle)
            .await
    }
}

/// The answer to one message as hickory-server gives it (`udp`: over UDP, else one TCP frame
/// without its length prefix), computed on the calling thread: FORMERR when only the header
/// parses, silence when not even that does or the message is a response. `verdict`: response-rate
/// limiting already decided; none: the handler decides.
fn respond_now(
    handler: &Handler,
    bytes: &[u8],
    source: SocketAddr,
    udp: bool,
    verdict: Option<Verdict>,
) -> Option<Vec<u8>> {
    use hickory_server::net::xfer::Protocol;
    use hickory_server::proto::op::{Header, MessageType};
    use hickory_server::proto::serialize::binary::{BinDecodable, BinDecoder};
    let protocol = if udp { Protocol::Udp } else { Protocol::Tcp };
    let capture = Capture {
        udp,
        out: Arc::new(std::sync::Mutex::new(None)),
    };
    match Request::from_bytes(bytes.to_vec(), source, protocol) {
        Ok(request) => {
            if request.metadata.message_type == MessageType::Response {
                return None;
            }
            let verdict = verdict.unwrap_or_else(|| handler.rate_limit(&request));
            poll_ready(handler.respond(&request, verdict, capture.clone()))?;
        }
        Err(_) => {
            // As hickory-server does: FORMERR when the header parses, else silence.
            let header = Header::read(&mut BinDecoder::new(bytes)).ok()?;
            let queries =
                hickory_server::zone_handler::Queries::read(&mut BinDecoder::new(&[]), 0).ok()?;
            let response = MessageResponseBuilder::new(&queries, None)
                .error_msg(&header.metadata, ResponseCode::FormErr);
            let mut sink = capture.clone();
            poll_ready(async move {
                let _ = sink.send_response(response).await;
            })?;
        }
    }
    let out = capture.out.lock().unwrap_or_else(|p| p.into_inner()).take();
    out
}

/// Runs a future that never waits (the handler's, over [`Capture`], which waits for nothing)
/// to its end on this thread; none if it would wait after all.
fn poll_ready<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => Some(output),
        std::task::Poll::Pending => {
            warn!("a DNS answer would have waited");
            None
        }
    }
}

/// The zone service's settings: a name server inside the service zone answers the listen
/// address, when it is a specific one.
fn zone_config(config: &DnsConfig) -> ZoneConfig {
    ZoneConfig {
        service_zone: config.service_zone.clone(),
        nameservers: config.nameservers.clone(),
        ors_zone: config.ors_zone.clone(),
        ns_address: config
            .listen
            .map(|a| a.ip())
            .filter(|ip| !ip.is_unspecified()),
    }
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
            authority: Arc::new(Authority::new(&zone_config(config), base_url, records)?),
        })
    }

    /// Indexes the names the chain's bindings create, and keeps the index current from each
    /// commit from now on.
    pub fn index_chain(&self) -> anyhow::Result<()> {
        Ok(self.authority.index_chain()?)
    }

    /// The answer to one message as it arrived over UDP (`udp`) or TCP (one frame, without
    /// its length prefix), or none when it gets no answer (shorter than a header, or a
    /// response). Never from the answer cache: see [`DnsAuthority::udp_answerer`].
    pub async fn respond(&self, bytes: &[u8], udp: bool) -> Option<Vec<u8>> {
        let source: SocketAddr = ([127, 0, 0, 1], 53000).into();
        respond_now(&self.handler(), bytes, source, udp, None)
    }

    /// What a UDP receive loop answers with: the answer cache in front of
    /// [`DnsAuthority::respond`], holding at most `cache_bytes`.
    pub fn udp_answerer(&self, cache_bytes: usize) -> UdpAnswerer {
        UdpAnswerer::new(Arc::new(self.handler()), cache_bytes)
    }

    fn handler(&self) -> Handler {
        Handler {
            authority: self.authority.clone(),
            rrl: None,
            metrics: None,
        }
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

/// hickory-server's request handler: one question in, one answer out, fitted to the transport.
struct Handler {
    authority: Arc<Authority>,
    /// UDP response-rate limiting; none: off.
    rrl: Option<Arc<ResponseRateLimiter>>,
    metrics: Option<UdpMetrics>,
}

impl Handler {
    /// What response-rate limiting makes of an answer to `request` (UDP only), counted.
    fn rate_limit(&self, request: &Request) -> Verdict {
        let Some(rrl) = &self.rrl else {
            return Verdict::Answer;
        };
        if request.protocol() != hickory_server::net::xfer::Protocol::Udp {
            return Verdict::Answer;
        }
        self.rate_limit_udp(rrl, request.src().ip())
    }

    /// What response-rate limiting makes of a UDP answer to `source`, counted.
    fn rate_limit_udp(&self, rrl: &ResponseRateLimiter, source: IpAddr) -> Verdict {
        let verdict = rrl.check(source);
        if let (Some(action), Some(metrics)) = (verdict.label(), &self.metrics) {
            metrics.rate_limited("dns", action);
        }
        verdict
    }
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
        RData::NAPTR(naptr) => {
            4 + naptr.flags.len()
                + naptr.services.len()
                + naptr.regexp.len()
                + 3
                + naptr.replacement.len()
                + 1
        }
        _ => 16,
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        let verdict = self.rate_limit(request);
        self.respond(request, verdict, response_handle).await
    }
}

impl Handler {
    /// Answers `request`, held back as response-rate limiting decided (`verdict`).
    async fn respond<R: ResponseHandler>(
        &self,
        request: &Request,
        verdict: Verdict,
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

        match verdict {
            Verdict::Answer => {}
            Verdict::Drop => {
                // Nothing is sent; the server only logs what a handler sends.
                return ResponseInfo::from(hickory_server::proto::op::Header {
                    metadata,
                    counts: Default::default(),
                });
            }
            Verdict::Slip => {
                metadata.truncation = true;
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
        }

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
