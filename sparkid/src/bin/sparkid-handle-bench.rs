//! `sparkid-handle-bench`: a load tool for the Handle native door over UDP. Each thread keeps a
//! window of resolution requests in flight on its own socket, matches answers by request id,
//! and records each one's latency; the totals are resolutions per second and latency
//! percentiles. Used by `scripts/bench-handle`.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use sparkid_bridges::handle::wire::{
    opcode, Envelope, Header, ResolutionRequest, ENVELOPE_LEN, HEADER_LEN, MAJOR_VERSION,
    MINOR_VERSION,
};

/// Handle native resolutions per second over UDP.
#[derive(Debug, Parser)]
#[command(name = "sparkid-handle-bench")]
struct Args {
    /// The Handle door (UDP).
    #[arg(long, default_value = "127.0.0.1:2641")]
    server: SocketAddr,
    /// A handle to resolve (repeatable; requests go round-robin).
    #[arg(long = "handle", required = true)]
    handles: Vec<String>,
    /// Only values of this type (repeatable).
    #[arg(long = "type")]
    types: Vec<String>,
    /// Only values at this index (repeatable).
    #[arg(long = "index")]
    indexes: Vec<u32>,
    /// How long to run, in seconds (after a 1 s warm-up).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Sending threads, each with its own socket.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Requests in flight per thread.
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// How long an unanswered request waits before it counts as lost, in milliseconds.
    #[arg(long, default_value_t = 500)]
    timeout_ms: u64,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u32>,
    codes: HashMap<u32, u64>,
    truncated: u64,
    lost: u64,
}

fn request(id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ENVELOPE_LEN + HEADER_LEN + body.len() + 4);
    Envelope {
        major: MAJOR_VERSION,
        minor: MINOR_VERSION,
        flags: 0,
        suggested_minor: 0,
        session_id: 0,
        request_id: id,
        sequence: 0,
        message_length: (HEADER_LEN + body.len() + 4) as u32,
    }
    .encode(&mut out);
    Header {
        opcode: opcode::RESOLUTION,
        response_code: 0,
        op_flags: 0x1900_0000,
        site_info_serial: 0xffff,
        recursion_count: 0,
        expiration: 0,
        body_length: body.len() as u32,
    }
    .encode(&mut out);
    out.extend_from_slice(body);
    out.extend_from_slice(&[0; 4]);
    out
}

fn run_thread(
    args: &Args,
    thread: usize,
    bodies: &[Vec<u8>],
    start: Instant,
    end: Instant,
) -> anyhow::Result<Tally> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.connect(args.server)?;
    socket.set_read_timeout(Some(Duration::from_millis(args.timeout_ms)))?;
    let mut tally = Tally::default();
    let mut in_flight: HashMap<u32, Instant> = HashMap::with_capacity(args.window * 2);
    let mut sequence: u32 = 0;
    let mut next = thread;
    let mut buf = [0u8; 2048];
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        while in_flight.len() < args.window {
            let id = ((thread as u32) << 24) | (sequence & 0x00ff_ffff);
            sequence = sequence.wrapping_add(1);
            let body = &bodies[next % bodies.len()];
            next += 1;
            socket.send(&request(id, body))?;
            in_flight.insert(id, Instant::now());
        }
        match socket.recv(&mut buf) {
            Ok(n) if n >= ENVELOPE_LEN + HEADER_LEN => {
                let id = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
                if let Some(sent) = in_flight.remove(&id) {
                    if sent >= start {
                        let code = u32::from_be_bytes([buf[24], buf[25], buf[26], buf[27]]);
                        *tally.codes.entry(code).or_default() += 1;
                        tally.truncated += u64::from(buf[2] & 0x20 != 0);
                        tally
                            .latencies_us
                            .push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    }
                }
            }
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                // Nothing answered within the timeout: what is in flight is lost.
                tally.lost += in_flight.len() as u64;
                in_flight.clear();
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(tally)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.threads == 0 || args.window == 0 {
        bail!("--threads and --window must be at least 1");
    }
    let type_bytes: Vec<&[u8]> = args.types.iter().map(|t| t.as_bytes()).collect();
    let bodies: Vec<Vec<u8>> = args
        .handles
        .iter()
        .map(|h| {
            let mut body = Vec::new();
            ResolutionRequest {
                handle: h.as_bytes(),
                indexes: args.indexes.clone(),
                types: type_bytes.clone(),
            }
            .encode(&mut body);
            body
        })
        .collect();
    let start = Instant::now() + Duration::from_secs(1);
    let end = start + Duration::from_secs_f64(args.seconds);
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..args.threads)
            .map(|t| {
                let (args, bodies) = (&args, &bodies);
                scope.spawn(move || run_thread(args, t, bodies, start, end))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("a thread panicked"))?)
            .collect::<anyhow::Result<Vec<_>>>()
    })
    .context("load threads")?;
    let mut all = Tally::default();
    for t in tallies {
        all.latencies_us.extend(t.latencies_us);
        for (code, n) in t.codes {
            *all.codes.entry(code).or_default() += n;
        }
        all.truncated += t.truncated;
        all.lost += t.lost;
    }
    all.latencies_us.sort_unstable();
    let answered = all.latencies_us.len() as f64;
    let mut codes: Vec<_> = all.codes.into_iter().collect();
    codes.sort();
    let report = serde_json::json!({
        "server": args.server.to_string(),
        "handles": args.handles.len(),
        "types": args.types,
        "indexes": args.indexes,
        "threads": args.threads,
        "window": args.window,
        "seconds": args.seconds,
        "answered": answered as u64,
        "resolutionsPerSecond": (answered / args.seconds).round(),
        "latencyMs": {
            "p50": percentile(&all.latencies_us, 50.0),
            "p90": percentile(&all.latencies_us, 90.0),
            "p99": percentile(&all.latencies_us, 99.0),
            "p999": percentile(&all.latencies_us, 99.9),
            "max": percentile(&all.latencies_us, 100.0),
        },
        "responseCodes": codes.iter().map(|(c, n)| (c.to_string(), serde_json::json!(n))).collect::<serde_json::Map<_, _>>(),
        "truncated": all.truncated,
        "lost": all.lost,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
