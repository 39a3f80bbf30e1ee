//! The Handle native door: RFC 3652 resolution over UDP and TCP (port 2641 by default), and
//! optionally a second listener for IDIS clients (`--handle-idis`, their SDK's port 3641). Both
//! answer `GET_SITE_INFO` and the prefixes' `HS_SITE` with this node's site, built once the
//! listeners are bound (`spec/handle.md`, "Discovery").
//!
//! The protocol itself (decoding, answering, truncation) is `sparkid_bridges::handle::wire`;
//! this module only moves bytes. A UDP answer goes out whole when it fits in one 512-byte
//! datagram and is at most 4 times the request; otherwise only its envelope goes, with the
//! truncated flag, so that the client asks again over TCP ([`wire::udp_datagram`]). UDP answers
//! are also response-rate limited per source prefix ([`super::rrl`]): past the rate they are
//! dropped, or every `slip`-th sent as that truncated envelope. TCP carries any number of
//! messages per connection, each an envelope and the message it announces, and is not limited
//! this way (its source cannot be spoofed).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sparkid_bridges::handle::site::SiteInfo;
use sparkid_bridges::handle::{wire, HandleBridge};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use sparkid_resolver::bridge_source::BridgeContext;

use crate::config::RrlConfig;
use crate::doors::rrl::{ResponseRateLimiter, Verdict};
use crate::metrics::UdpMetrics;

/// UDP threads (blocking sockets: a datagram is read, answered and sent by one thread, with no
/// task hand-offs).
pub const UDP_THREADS: usize = 4;
/// Open TCP connections at most; more are closed at once.
pub const MAX_TCP_CONNECTIONS: usize = 512;
/// How long a TCP connection may sit idle between messages.
pub const TCP_IDLE: Duration = Duration::from_secs(30);
/// How long a client may take to send one whole message once its envelope arrived.
pub const TCP_READ: Duration = Duration::from_secs(10);
/// The largest UDP datagram read (requests past 512 bytes are answered with a protocol error).
const UDP_BUFFER: usize = 65_536;

/// The addresses the door listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandleDoor {
    /// UDP.
    pub udp: SocketAddr,
    /// TCP.
    pub tcp: SocketAddr,
}

/// The answer to one message (an envelope and its message), or none when it must not be
/// answered. `GET_SITE_INFO` and the `HS_SITE` of the prefixes served here describe
/// `ctx.handle_site`.
pub fn answer(ctx: &BridgeContext, bytes: &[u8]) -> Option<Vec<u8>> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs().min(u32::MAX.into()) as u32);
    let site = ctx.handle_site.as_deref();
    // Encoded only for the one operation that sends it whole.
    let asks_site = bytes.get(20..24) == Some(&wire::opcode::GET_SITE_INFO.to_be_bytes()[..]);
    let encoded = site.filter(|_| asks_site).map(SiteInfo::encode);
    wire::respond_with_site(bytes, now, encoded.as_deref(), |request| {
        HandleBridge
            .answer_with_site(
                &ctx.records,
                request.handle,
                &request.indexes,
                &request.types,
                &ctx.base_url,
                site,
            )
            .into_lookup()
    })
}

/// Whether `reply` answers a `GET_SITE_INFO` with the site (operation 2, response code 1).
fn is_site_info(reply: &[u8]) -> bool {
    let at = |i: usize| reply.get(i..i + 4);
    at(20) == Some(&wire::opcode::GET_SITE_INFO.to_be_bytes()[..])
        && at(24) == Some(&wire::response_code::SUCCESS.to_be_bytes()[..])
}

async fn answer_blocking(ctx: &Arc<BridgeContext>, bytes: Vec<u8>) -> Option<Vec<u8>> {
    let ctx = ctx.clone();
    // Ledger and cache reads block; keep them off the I/O threads.
    match tokio::task::spawn_blocking(move || answer(&ctx, &bytes)).await {
        Ok(out) => out,
        Err(e) => {
            warn!(error = %e, "handle request failed");
            None
        }
    }
}

/// Binds UDP and TCP on `addr` (TCP first; with port 0, UDP takes the port TCP got) and serves
/// until the process ends. UDP answers are limited by `rrl`; what it holds back, and the
/// answers sent truncated, are counted in `metrics`.
pub async fn start(
    addr: SocketAddr,
    ctx: Arc<BridgeContext>,
    rrl: RrlConfig,
    metrics: UdpMetrics,
) -> std::io::Result<HandleDoor> {
    bind(addr).await?.serve(ctx, rrl, metrics, "handle")
}

/// Binds UDP and TCP on `addr` (TCP first; with port 0, UDP takes the port TCP got), without
/// serving yet: the daemon learns the bound addresses first, for its site
/// ([`HandleSockets::serve`] then answers with it).
pub async fn bind(addr: SocketAddr) -> std::io::Result<HandleSockets> {
    let tcp = TcpListener::bind(addr).await?;
    let udp = std::net::UdpSocket::bind(tcp.local_addr()?)?;
    Ok(HandleSockets { tcp, udp })
}

/// A Handle door's sockets, bound and not served yet.
#[derive(Debug)]
pub struct HandleSockets {
    tcp: TcpListener,
    udp: std::net::UdpSocket,
}

impl HandleSockets {
    /// The bound addresses.
    pub fn addresses(&self) -> std::io::Result<HandleDoor> {
        Ok(HandleDoor {
            udp: self.udp.local_addr()?,
            tcp: self.tcp.local_addr()?,
        })
    }

    /// Serves until the process ends, as [`start`] does; `name` tells this door's threads
    /// apart (the default door and the IDIS one).
    pub fn serve(
        self,
        ctx: Arc<BridgeContext>,
        rrl: RrlConfig,
        metrics: UdpMetrics,
        name: &str,
    ) -> std::io::Result<HandleDoor> {
        let door = self.addresses()?;
        serve(self.tcp, self.udp, ctx, rrl, metrics, name)?;
        Ok(door)
    }
}

fn serve(
    tcp: TcpListener,
    udp: std::net::UdpSocket,
    ctx: Arc<BridgeContext>,
    rrl: RrlConfig,
    metrics: UdpMetrics,
    name: &str,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Handle::current();
    let limits = Arc::new(UdpLimits {
        rrl: ResponseRateLimiter::new(rrl),
        metrics,
    });
    for i in 0..UDP_THREADS {
        let (socket, ctx, runtime, limits) = (
            udp.try_clone()?,
            ctx.clone(),
            runtime.clone(),
            limits.clone(),
        );
        let door = name.to_string();
        std::thread::Builder::new()
            .name(format!("{name}-udp-{i}"))
            .spawn(move || {
                // Inside the runtime's context, should a read ever need it.
                let _guard = runtime.enter();
                udp_thread(&socket, &ctx, &limits, &door)
            })?;
    }
    let door = Door {
        name: name.to_string(),
        metrics: limits.metrics.clone(),
    };
    tokio::spawn(tcp_loop(tcp, ctx, Arc::new(door)));
    info!(
        udp_rrl_rate = rrl.rate,
        udp_rrl_slip = rrl.slip,
        door = name,
        "handle door: UDP response-rate limiting (answers per second per source prefix; 0: off)"
    );
    Ok(())
}

/// A door's name and counters, for its TCP connections.
struct Door {
    name: String,
    metrics: UdpMetrics,
}

/// What bounds the UDP answers: the rate limiter (none: off) and the counters.
struct UdpLimits {
    rrl: Option<ResponseRateLimiter>,
    metrics: UdpMetrics,
}

fn udp_thread(socket: &std::net::UdpSocket, ctx: &BridgeContext, limits: &UdpLimits, door: &str) {
    let mut buf = vec![0u8; UDP_BUFFER];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) => {
                // ICMP errors of earlier sends surface here; the socket is still good.
                debug!(error = %e, "handle udp receive");
                continue;
            }
        };
        let verdict = limits
            .rrl
            .as_ref()
            .map_or(Verdict::Answer, |rrl| rrl.check(peer.ip()));
        if let Some(action) = verdict.label() {
            limits.metrics.rate_limited("handle", action);
        }
        if verdict == Verdict::Drop {
            continue;
        }
        let Some(reply) = answer(ctx, &buf[..n]) else {
            debug!(%peer, bytes = n, "handle udp: not a request, not answered");
            continue;
        };
        if is_site_info(&reply) {
            limits.metrics.handle_site_info(door, "udp");
        }
        let datagram = if verdict == Verdict::Slip {
            wire::udp_truncated(&reply)
        } else {
            let (datagram, truncation) = wire::udp_datagram(reply, n);
            if let Some(why) = truncation {
                limits.metrics.handle_truncated(why.as_str());
            }
            datagram
        };
        if let Err(e) = socket.send_to(&datagram, peer) {
            debug!(%peer, error = %e, "handle udp send");
        }
    }
}

async fn tcp_loop(listener: TcpListener, ctx: Arc<BridgeContext>, door: Arc<Door>) {
    let slots = Arc::new(Semaphore::new(MAX_TCP_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "handle tcp accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            debug!(%peer, "handle tcp: too many connections");
            continue;
        };
        let (ctx, door) = (ctx.clone(), door.clone());
        tokio::spawn(async move {
            if let Err(e) = connection(stream, &ctx, &door).await {
                debug!(%peer, error = %e, "handle tcp connection");
            }
            drop(permit);
        });
    }
}

/// Serves one connection: envelope, message, answer, until the client closes or idles.
async fn connection(
    mut stream: TcpStream,
    ctx: &Arc<BridgeContext>,
    door: &Door,
) -> std::io::Result<()> {
    loop {
        let mut envelope = [0u8; wire::ENVELOPE_LEN];
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut envelope)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        }
        let announced =
            u32::from_be_bytes([envelope[16], envelope[17], envelope[18], envelope[19]]) as usize;
        // Past the limit, read only the header: enough to answer with a protocol error, and the
        // stream cannot be trusted afterwards.
        let over = announced > wire::MAX_MESSAGE_LEN;
        let mut message = vec![0u8; if over { wire::HEADER_LEN } else { announced }];
        match tokio::time::timeout(TCP_READ, stream.read_exact(&mut message)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        }
        let mut bytes = Vec::with_capacity(wire::ENVELOPE_LEN + message.len());
        bytes.extend_from_slice(&envelope);
        bytes.extend_from_slice(&message);
        match answer_blocking(ctx, bytes).await {
            Some(reply) => {
                if is_site_info(&reply) {
                    door.metrics.handle_site_info(&door.name, "tcp");
                }
                stream.write_all(&reply).await?
            }
            None => return Ok(()),
        }
        if over {
            return Ok(());
        }
    }
}
