//! The read cache's counters and gauges, for Prometheus: hits and misses per tier, Redis
//! errors and state, invalidations, stale values refused, L1 size, and the warm path's kept
//! renderings. The daemon registers them with the rest of its metrics and serves `/metrics`.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// The cache's counters and gauges (cheap to clone: handles to shared atomics).
#[derive(Clone)]
pub struct CacheMetrics {
    /// L1 hits.
    pub l1_hits: IntCounter,
    /// L1 misses (only counted while L1 is on).
    pub l1_misses: IntCounter,
    /// L2 hits.
    pub l2_hits: IntCounter,
    /// L2 misses.
    pub l2_misses: IntCounter,
    /// Failed Redis commands and connection attempts.
    pub l2_errors: IntCounter,
    /// Reads that skipped Redis while it was down.
    pub l2_skipped: IntCounter,
    /// 1 while Redis is in use.
    pub l2_up: IntGauge,
    /// Keys invalidated by blocks committed here.
    pub invalidations_local: IntCounter,
    /// Keys invalidated by replicas' blocks (Redis channel).
    pub invalidations_remote: IntCounter,
    /// Values kept out of the cache because a newer block changed them.
    pub stale_refused: IntCounter,
    /// Redis values ignored because their HMAC does not hold (forged, or another secret).
    pub l2_refused_hmac: IntCounter,
    /// Redis values ignored because their stamp is above the local head plus the slack.
    pub l2_refused_stamp: IntCounter,
    /// Invalidation messages ignored because their HMAC does not hold.
    pub messages_refused: IntCounter,
    /// L1 bytes in use (the cache's weight).
    pub l1_bytes: IntGauge,
    /// L1 entries.
    pub l1_entries: IntGauge,
    /// did:bid answers sent as kept with their L1 entry.
    pub rendered_kept: IntCounter,
    /// did:bid answers rendered from L1 (and kept).
    pub rendered_new: IntCounter,
    /// did:bid answers read from the ledger's answer records, nothing rendered (the cold path
    /// of [`crate::answers`]).
    pub rendered_stored: IntCounter,
}

impl CacheMetrics {
    /// Metrics in a registry of their own (for a cache outside a daemon, such as in tests).
    pub fn standalone() -> Result<CacheMetrics, prometheus::Error> {
        CacheMetrics::register(&Registry::new())
    }

    /// The metrics, registered in `registry` (the daemon's, which `/metrics` exposes).
    pub fn register(registry: &Registry) -> Result<CacheMetrics, prometheus::Error> {
        let hits = IntCounterVec::new(
            Opts::new("sparkid_cache_hits_total", "Cache hits by tier."),
            &["tier"],
        )?;
        let misses = IntCounterVec::new(
            Opts::new("sparkid_cache_misses_total", "Cache misses by tier."),
            &["tier"],
        )?;
        let invalidations = IntCounterVec::new(
            Opts::new(
                "sparkid_cache_invalidations_total",
                "State keys dropped from the cache by committed blocks.",
            ),
            &["source"],
        )?;
        let l2_errors = IntCounter::new(
            "sparkid_cache_l2_errors_total",
            "Failed Redis commands and connection attempts.",
        )?;
        let l2_skipped = IntCounter::new(
            "sparkid_cache_l2_skipped_total",
            "Reads that did not try Redis because it was down.",
        )?;
        let l2_up = IntGauge::new("sparkid_cache_l2_up", "1 while the Redis tier is in use.")?;
        let stale_refused = IntCounter::new(
            "sparkid_cache_stale_refused_total",
            "Values kept out of the cache because a newer block changed their key.",
        )?;
        let refused = IntCounterVec::new(
            Opts::new(
                "sparkid_cache_l2_refused_total",
                "Redis values and invalidation messages ignored: their HMAC does not hold \
                 (value_hmac, message_hmac) or their stamp is above the head (stamp).",
            ),
            &["reason"],
        )?;
        let l1_bytes = IntGauge::new("sparkid_cache_l1_bytes", "L1 cache bytes in use.")?;
        let l1_entries = IntGauge::new("sparkid_cache_l1_entries", "L1 cache entries.")?;
        let rendered = IntCounterVec::new(
            Opts::new(
                "sparkid_cache_rendered_total",
                "did:bid answers from L1 (sent as kept, or rendered and kept) or read stored from the ledger's answer records.",
            ),
            &["outcome"],
        )?;
        registry.register(Box::new(hits.clone()))?;
        registry.register(Box::new(misses.clone()))?;
        registry.register(Box::new(invalidations.clone()))?;
        registry.register(Box::new(l2_errors.clone()))?;
        registry.register(Box::new(l2_skipped.clone()))?;
        registry.register(Box::new(l2_up.clone()))?;
        registry.register(Box::new(stale_refused.clone()))?;
        registry.register(Box::new(l1_bytes.clone()))?;
        registry.register(Box::new(l1_entries.clone()))?;
        registry.register(Box::new(rendered.clone()))?;
        registry.register(Box::new(refused.clone()))?;
        Ok(CacheMetrics {
            l1_hits: hits.get_metric_with_label_values(&["l1"])?,
            l1_misses: misses.get_metric_with_label_values(&["l1"])?,
            l2_hits: hits.get_metric_with_label_values(&["l2"])?,
            l2_misses: misses.get_metric_with_label_values(&["l2"])?,
            l2_errors,
            l2_skipped,
            l2_up,
            invalidations_local: invalidations.get_metric_with_label_values(&["local"])?,
            invalidations_remote: invalidations.get_metric_with_label_values(&["remote"])?,
            stale_refused,
            l2_refused_hmac: refused.get_metric_with_label_values(&["value_hmac"])?,
            l2_refused_stamp: refused.get_metric_with_label_values(&["stamp"])?,
            messages_refused: refused.get_metric_with_label_values(&["message_hmac"])?,
            l1_bytes,
            l1_entries,
            rendered_kept: rendered.get_metric_with_label_values(&["kept"])?,
            rendered_new: rendered.get_metric_with_label_values(&["rendered"])?,
            rendered_stored: rendered.get_metric_with_label_values(&["stored"])?,
        })
    }
}
