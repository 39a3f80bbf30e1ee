//! The DNS door: an authoritative DNS server (hickory-server, UDP and TCP) for the service zone
//! and for every DNS zone delegated on the ledger. What is answered is the zone service's
//! ([`sparkid_resolver::dns_zone`], laid out in `spec/dns.md`); this door owns the sockets and
//! fits each answer to the transport.
//!
//! - EDNS0: a UDP answer is at most the client's advertised size, capped at
//!   [`UDP_PAYLOAD_CAP`], and 512 bytes without EDNS; larger answers are sent with TC set and
//!   no records, so that the client retries over TCP, where the limit is 65535 bytes.
//! - Names outside every zone are REFUSED; other opcodes NOTIMP; zone transfers REFUSED;
//!   EDNS versions above 0 BADVERS; malformed messages FORMERR (hickory-server's parser).

use std::net::SocketAddr;
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
use tracing::{info, warn};

use crate::config::{DnsConfig, RrlConfig};
use crate::doors::rrl::{ResponseRateLimiter, Verdict};
use crate::metrics::UdpMetrics;

/// The largest UDP answer sent, whatever the client advertises (the DNS Flag Day 2020 size,
/// which avoids IP fragmentation).
pub const UDP_PAYLOAD_CAP: u16 = 1232;
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
/// create, binds UDP and TCP, and serves until dropped. UDP answers are limited by `rrl`, and
/// what it holds back is counted in `metrics`.
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
    let udp = tokio::net::UdpSocket::bind(listen)
        .await
        .with_context(|| format!("binding DNS UDP {listen}"))?;
    // Same port for TCP (when the UDP port was chosen by the system, TCP takes it too).
    let udp_addr = udp.local_addr()?;
    let tcp = tokio::net::TcpListener::bind(udp_addr)
        .await
        .with_context(|| format!("binding DNS TCP {udp_addr}"))?;
    let tcp_addr = tcp.local_addr()?;
    let mut server = Server::new(Handler {
        authority,
        rrl: ResponseRateLimiter::new(rrl).map(Arc::new),
        metrics: Some(metrics),
    });
    server.register_socket(udp);
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
        "DNS door serving"
    );
    Ok(Some(DnsDoor {
        udp: udp_addr,
        tcp: tcp_addr,
        task,
    }))
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
                    rrl: None,
                    metrics: None,
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
        let verdict = rrl.check(request.src().ip());
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

        match self.rate_limit(request) {
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
