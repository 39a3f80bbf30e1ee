//! Operator metrics: `GET /metrics` in the Prometheus text exposition format.
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `sparkid_cache_hits_total` | counter | `tier` (`l1`, `l2`) |
//! | `sparkid_cache_misses_total` | counter | `tier` (`l1`, `l2`) |
//! | `sparkid_cache_l2_errors_total` | counter | - (a failed Redis command or connection attempt) |
//! | `sparkid_cache_l2_skipped_total` | counter | - (reads that did not try Redis because it is down) |
//! | `sparkid_cache_l2_up` | gauge | - (1 while Redis is in use) |
//! | `sparkid_cache_invalidations_total` | counter | `source` (`local`: a block committed here; `remote`: a replica's, over Redis) |
//! | `sparkid_cache_stale_refused_total` | counter | - (values read before a block that changed them, kept out of the cache) |
//! | `sparkid_cache_l1_bytes`, `sparkid_cache_l1_entries` | gauge | - |
//! | `sparkid_cache_rendered_total` | counter | `outcome` (`kept`: a did:bid answer sent as kept in L1; `rendered`: rendered from L1 and kept; see `sparkid_resolver::warm`; `stored`: read from the ledger's answer records, see `sparkid_resolver::answers`) |
//! | `sparkid_ledger_head_height` | gauge | - |
//! | `sparkid_ledger_answers_ready` | gauge | - |
//! | `sparkid_http_requests_total` | counter | `route`, `status` |
//! | `sparkid_http_request_duration_seconds` | histogram | `route` |
//! | `sparkid_udp_rrl_total` | counter | `door` (`dns`, `handle`), `action` (`drop`: not answered; `slip`: answered truncated) — UDP answers held back by response-rate limiting |
//! | `sparkid_handle_udp_truncated_total` | counter | `reason` (`packet`: over 512 bytes; `amplification`: over 4x the request) — Handle UDP answers sent as the truncated envelope alone |
//! | `sparkid_rate_limited_total` | counter | `class` (`write`, `expensive`, `peer`: requests refused 429 by a per-client rate limit, [`crate::edge`]) |
//! | `sparkid_http_refused_total` | counter | `reason` (`connections_per_client`, `connections`, `long_polls_per_client`) |
//! | `sparkid_http_connections_timed_out_total` | counter | `timeout` (`header_read`, `idle`) |
//! | `sparkid_http_connections_open` | gauge | - |
//! | `sparkid_registrar_jobs_pending` | gauge | - (jobs waiting for their clients' signatures, all chains) |
//! | `sparkid_registrar_refused_total` | counter | `reason` (`client_jobs`, `total_jobs`: a pending-job cap; `job_secret`: a job continued without its secret; `submitter`: not in `registrar.submitters`; `too_large`: a job that could never commit) |
//! | `sparkid_sync_*` (followers: peer head, lag, blocks applied and refused, forwarded writes) | see [`sparkid_node::follow`] | |
//! | `sparkid_consensus_requests_refused_total` | counter | `endpoint` (`messages`, `transactions`), `reason` (`unsigned`, `not_a_validator`, `bad_signature`, `stale`, `replayed`, `malformed`, `bad_request`, `invalid`, `busy`; see [`sparkid_node::bft::Rejection::kind`]) |
//! | `sparkid_consensus_height`, `sparkid_consensus_round` | gauge | - (the height and round the consensus engine works on) |
//! | `sparkid_consensus_proposals_total` | counter | `origin` (`made`, `received`), `validity` (`valid`, `invalid`) |
//! | `sparkid_consensus_timeouts_total` | counter | `kind` (`propose`, `prevote`, `precommit`, `rebroadcast`) |
//! | `sparkid_consensus_evidence_total` | counter | `kind` (`double-vote`, `double-proposal`) |
//! | `sparkid_consensus_peers_seen` | gauge | - (other validators heard from in the last 3 s) |
//! | `sparkid_consensus_decided_total` | counter | - (blocks this validator's engine decided) |

use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};
use sparkid_ledger::Ledger;
use thiserror::Error;

pub use sparkid_resolver::cache::CacheMetrics;

use crate::doors::routes::{get, Routes};

/// Why the metrics could not be set up.
#[derive(Debug, Error)]
#[error("metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

type Refresh = Box<dyn Fn() + Send + Sync>;

/// The daemon's metrics and the registry they are exposed from.
pub struct Metrics {
    registry: Registry,
    /// The cache's.
    pub cache: CacheMetrics,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    head_height: IntGauge,
    refresh: Mutex<Vec<Refresh>>,
    upstream: Mutex<Option<sparkid_resolver::drivers::UpstreamMetrics>>,
    /// The UDP doors' (DNS and Handle).
    pub udp: UdpMetrics,
}

/// The UDP doors' counters: what response-rate limiting held back, and the Handle answers
/// that went out truncated; and the Handle doors' site-info answers (IDIS discovery, UDP or
/// TCP). Cheap to clone (the counters are shared).
#[derive(Clone)]
pub struct UdpMetrics {
    rrl: IntCounterVec,
    handle_truncated: IntCounterVec,
    handle_site_info: IntCounterVec,
}

impl UdpMetrics {
    fn register(registry: &Registry) -> Result<UdpMetrics, MetricsError> {
        let rrl = IntCounterVec::new(
            Opts::new(
                "sparkid_udp_rrl_total",
                "UDP answers held back by response-rate limiting, by door and action (drop, slip).",
            ),
            &["door", "action"],
        )?;
        let handle_truncated = IntCounterVec::new(
            Opts::new(
                "sparkid_handle_udp_truncated_total",
                "Handle UDP answers sent truncated, by reason (packet, amplification).",
            ),
            &["reason"],
        )?;
        let handle_site_info = IntCounterVec::new(
            Opts::new(
                "sparkid_handle_site_info_total",
                "Handle GET_SITE_INFO requests answered with this node's site, by door (handle, \
                 handle-idis) and transport (udp, tcp).",
            ),
            &["door", "transport"],
        )?;
        registry.register(Box::new(rrl.clone()))?;
        registry.register(Box::new(handle_truncated.clone()))?;
        registry.register(Box::new(handle_site_info.clone()))?;
        Ok(UdpMetrics {
            rrl,
            handle_truncated,
            handle_site_info,
        })
    }

    /// Counts one answer of `door` dropped or slipped (`action`) by response-rate limiting.
    pub fn rate_limited(&self, door: &str, action: &str) {
        if let Ok(c) = self.rrl.get_metric_with_label_values(&[door, action]) {
            c.inc();
        }
    }

    /// Counts one `GET_SITE_INFO` answered with the site, on `door` over `transport`.
    pub fn handle_site_info(&self, door: &str, transport: &str) {
        if let Ok(c) = self
            .handle_site_info
            .get_metric_with_label_values(&[door, transport])
        {
            c.inc();
        }
    }

    /// Counts one Handle UDP answer sent truncated, and why (`reason`).
    pub fn handle_truncated(&self, reason: &str) {
        if let Ok(c) = self
            .handle_truncated
            .get_metric_with_label_values(&[reason])
        {
            c.inc();
        }
    }
}

impl Metrics {
    /// A registry holding every sparkid metric.
    pub fn new() -> Result<Arc<Metrics>, MetricsError> {
        let registry = Registry::new();
        let cache = CacheMetrics::register(&registry)?;
        let udp = UdpMetrics::register(&registry)?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "sparkid_http_requests_total",
                "HTTP requests by route and status.",
            ),
            &["route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "sparkid_http_request_duration_seconds",
                "HTTP request latency by route.",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5,
            ]),
            &["route"],
        )?;
        let head_height = IntGauge::new(
            "sparkid_ledger_head_height",
            "The newest committed block height.",
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(head_height.clone()))?;
        Ok(Arc::new(Metrics {
            registry,
            cache,
            http_requests,
            http_duration,
            head_height,
            refresh: Mutex::new(Vec::new()),
            upstream: Mutex::new(None),
            udp,
        }))
    }

    /// Reports `ledger`'s head height (read at each scrape), and whether its answer records
    /// are served (`sparkid_ledger_answers_ready`: 0 while the table is rebuilt).
    pub fn watch_ledger(&self, ledger: &Arc<Ledger>) {
        let ledger: Weak<Ledger> = Arc::downgrade(ledger);
        let gauge = self.head_height.clone();
        let answers = IntGauge::new(
            "sparkid_ledger_answers_ready",
            "1 when cold did:bid reads are served from the ledger's answer records, 0 while the table is rebuilt.",
        )
        .ok()
        .filter(|g| self.registry.register(Box::new(g.clone())).is_ok());
        self.on_scrape(Box::new(move || {
            if let Some(ledger) = ledger.upgrade() {
                gauge.set(i64::try_from(ledger.height()).unwrap_or(i64::MAX));
                if let Some(answers) = &answers {
                    answers.set(i64::from(ledger.answers_ready()));
                }
            }
        }));
    }

    /// Reports the registrars' pending jobs and policy refusals (read at each scrape), summed
    /// over `registrars` (the main chain's and the hosted sub-chains').
    pub fn watch_registrars(
        &self,
        registrars: Vec<Arc<sparkid_registrar::Registrar>>,
    ) -> Result<(), MetricsError> {
        let pending = IntGauge::new(
            "sparkid_registrar_jobs_pending",
            "Registrar jobs waiting for their clients' signatures.",
        )?;
        let refused = IntCounterVec::new(
            Opts::new(
                "sparkid_registrar_refused_total",
                "Registrar requests refused by its policy (job caps, job secrets, submitters, size).",
            ),
            &["reason"],
        )?;
        self.registry.register(Box::new(pending.clone()))?;
        self.registry.register(Box::new(refused.clone()))?;
        let registrars: Vec<Weak<sparkid_registrar::Registrar>> =
            registrars.iter().map(Arc::downgrade).collect();
        self.on_scrape(Box::new(move || {
            let live: Vec<_> = registrars.iter().filter_map(Weak::upgrade).collect();
            let jobs: usize = live.iter().map(|r| r.pending_jobs()).sum();
            pending.set(i64::try_from(jobs).unwrap_or(i64::MAX));
            for why in sparkid_registrar::PolicyRefusal::ALL {
                let total: u64 = live.iter().map(|r| r.refused(why)).sum();
                if let Ok(counter) = refused.get_metric_with_label_values(&[why.label()]) {
                    // The registrars count; the counter catches up at each scrape.
                    counter.inc_by(total.saturating_sub(counter.get()));
                }
            }
        }));
        Ok(())
    }

    /// Reports the driver answer cache's size (bytes charged, entries, bound; read at each
    /// scrape): `sparkid_driver_cache_bytes`, `sparkid_driver_cache_entries`,
    /// `sparkid_driver_cache_capacity_bytes`.
    pub fn watch_drivers(
        &self,
        drivers: sparkid_resolver::drivers::Drivers,
    ) -> Result<(), MetricsError> {
        let bytes = IntGauge::new(
            "sparkid_driver_cache_bytes",
            "Bytes the driver answer cache is charged for its entries.",
        )?;
        let entries = IntGauge::new(
            "sparkid_driver_cache_entries",
            "Driver answers in the cache.",
        )?;
        let capacity = IntGauge::new(
            "sparkid_driver_cache_capacity_bytes",
            "The driver answer cache's bound in bytes.",
        )?;
        self.registry.register(Box::new(bytes.clone()))?;
        self.registry.register(Box::new(entries.clone()))?;
        self.registry.register(Box::new(capacity.clone()))?;
        self.on_scrape(Box::new(move || {
            let (used, len, bound) = drivers.cache_usage();
            bytes.set(i64::try_from(used).unwrap_or(i64::MAX));
            entries.set(i64::try_from(len).unwrap_or(i64::MAX));
            capacity.set(i64::try_from(bound).unwrap_or(i64::MAX));
        }));
        Ok(())
    }

    /// The counters of what the resolver refuses from drivers and sub-chain resolvers
    /// (registered once; later calls share them).
    pub fn upstream(&self) -> Result<sparkid_resolver::drivers::UpstreamMetrics, MetricsError> {
        let mut slot = self.upstream.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(m) = slot.as_ref() {
            return Ok(m.clone());
        }
        let m = sparkid_resolver::drivers::UpstreamMetrics::register(&self.registry)?;
        *slot = Some(m.clone());
        Ok(m)
    }

    /// The registry, for modules that bring metrics of their own (such as
    /// [`sparkid_node::follow`]'s sync metrics).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Runs `refresh` before each scrape (to set gauges that are read, not counted).
    pub fn on_scrape(&self, refresh: Box<dyn Fn() + Send + Sync>) {
        self.refresh
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(refresh);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        for refresh in self
            .refresh
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            refresh();
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!("encoding metrics: {e}");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    fn observe(&self, route: &str, status: StatusCode, seconds: f64) {
        if let Ok(c) = self
            .http_requests
            .get_metric_with_label_values(&[route, status.as_str()])
        {
            c.inc();
        }
        if let Ok(h) = self.http_duration.get_metric_with_label_values(&[route]) {
            h.observe(seconds);
        }
    }
}

/// One route's request counter and timer, for a fast lane that answers without the router
/// (whose layer, [`instrument`], counts every other request): the same series, the label
/// lookup done once rather than per request.
pub struct RouteMetrics {
    route: &'static str,
    requests: IntCounterVec,
    /// The `200` series, made on the first 200 (a series shows only once it was counted).
    ok: std::sync::OnceLock<prometheus::IntCounter>,
    duration: prometheus::Histogram,
}

impl RouteMetrics {
    /// Counts one answer of `status`, taken `elapsed`.
    pub fn observe(&self, status: StatusCode, elapsed: std::time::Duration) {
        if status == StatusCode::OK {
            let ok = self.ok.get_or_init(|| {
                self.requests
                    .with_label_values(&[self.route, StatusCode::OK.as_str()])
            });
            ok.inc();
        } else if let Ok(c) = self
            .requests
            .get_metric_with_label_values(&[self.route, status.as_str()])
        {
            c.inc();
        }
        self.duration.observe(elapsed.as_secs_f64());
    }
}

impl Metrics {
    /// The counter and timer of `route` (a route template, as the router names it).
    pub fn route(&self, route: &'static str) -> Result<RouteMetrics, MetricsError> {
        Ok(RouteMetrics {
            route,
            requests: self.http_requests.clone(),
            ok: std::sync::OnceLock::new(),
            duration: self.http_duration.get_metric_with_label_values(&[route])?,
        })
    }
}

/// The `/metrics` route.
pub fn router(metrics: Arc<Metrics>) -> Routes {
    Routes::new()
        .route("/metrics", get(scrape))
        .with_state(metrics)
}

/// Counts every request of `router` by route template and status, and times it.
pub fn instrument(router: Router, metrics: Arc<Metrics>) -> Router {
    router.layer(axum::middleware::from_fn_with_state(metrics, track))
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics.render(),
    )
        .into_response()
}

async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let start = Instant::now();
    let response = next.run(request).await;
    let route = route
        .as_ref()
        .map(MatchedPath::as_str)
        .unwrap_or("unmatched");
    metrics.observe(route, response.status(), start.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_cache_metric() {
        let m = Metrics::new().unwrap();
        m.cache.l1_hits.inc();
        m.cache.l2_errors.inc_by(3);
        m.observe("/healthz", StatusCode::OK, 0.001);
        let text = m.render();
        assert!(
            text.contains("sparkid_cache_hits_total{tier=\"l1\"} 1"),
            "{text}"
        );
        assert!(text.contains("sparkid_cache_l2_errors_total 3"), "{text}");
        assert!(text.contains("sparkid_http_requests_total{route=\"/healthz\",status=\"200\"} 1"));
        assert!(text.contains("sparkid_ledger_head_height"));
    }
}
