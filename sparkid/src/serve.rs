//! The wiring of `sparkid serve`: opens the node, builds the services, starts every door, and
//! serves until Ctrl-C or SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use sparkid_node::anchoring;
use sparkid_node::follow::{self, Follower};
use sparkid_node::node::{self, Node};
use sparkid_node::peer::HeadWatch;
use sparkid_registrar::Submitter;
use sparkid_resolver::bridge_source::BridgeContext;
use sparkid_resolver::drivers::Drivers;
use sparkid_resolver::records::Records;
use sparkid_resolver::resolution::Resolver;
use sparkid_resolver::subchain::SubChains;
use tracing::info;

use crate::config::ServeConfig;
use crate::doors;
use crate::doors::routes::Routes;
use crate::edge::{self, Edge};
use crate::metrics::{self, Metrics};

/// Runs the daemon until Ctrl-C or SIGTERM.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    if config.cache.redis_url.is_some() && config.cache.redis_secret.is_none() && !config.dev {
        // Without a shared secret Redis values cannot be authenticated, and anyone who can
        // write to Redis could make every replica serve a forged record.
        anyhow::bail!(
            "redis_url needs redis_secret (--redis-secret, SPARKID_REDIS_SECRET): the shared \
             secret that authenticates the Redis cache's values"
        );
    }
    let node = if config.follow.is_empty() {
        tokio::task::block_in_place(|| node::open(&config.node_options()))?
    } else {
        follow::open_node(&config.follow_options()).await?
    };
    let metrics = Metrics::new()?;
    metrics.watch_ledger(&node.ledger);
    let records = Records::cached(node.ledger.clone(), &config.cache, metrics.cache.clone())?;
    if let Some(cache) = records.cache() {
        let cache = Arc::downgrade(cache);
        metrics.on_scrape(Box::new(move || {
            if let Some(c) = cache.upgrade() {
                c.refresh_gauges();
            }
        }));
    }
    let bridge_records = records.clone();
    // Each hosted sub-chain has its own cache (its entries are named after its genesis).
    let mut hosted = Vec::new();
    for sub in &node.subchains {
        let sub_records =
            Records::cached(sub.ledger.clone(), &config.cache, metrics.cache.clone())?;
        hosted.push((sub.ac, sub_records));
    }
    // Long polls of the peer API wait on this; a follower starts syncing only now, after the
    // cache's commit listener is in place.
    let head_watch = HeadWatch::new(&node.ledger);
    let follower = if config.follow.is_empty() {
        None
    } else {
        Some(Follower::start(
            node.ledger.clone(),
            head_watch.clone(),
            &config.follow_options(),
            metrics.registry(),
        )?)
    };
    if let Some(consensus) = &node.consensus {
        consensus.register_metrics(metrics.registry())?;
    }
    let resolver = Resolver::new(records)
        .with_drivers(
            Drivers::with_cache_bytes(&config.drivers, config.upstream.driver_cache_bytes)?
                .with_metrics(metrics.upstream()?),
        )
        .with_subchains(
            SubChains::with_limits(hosted.clone(), config.upstream.subchain.clone())
                .with_metrics(metrics.upstream()?),
        );
    metrics.watch_drivers(resolver.drivers().clone())?;
    let registrars = doors::registrar::Registrars {
        main: node.registrar.clone(),
        subchains: Arc::new(
            node.subchains
                .iter()
                .map(|s| (s.ac, s.registrar.clone()))
                .collect(),
        ),
    };
    metrics.watch_registrars(
        std::iter::once(node.registrar.clone())
            .chain(node.subchains.iter().map(|s| s.registrar.clone()))
            .collect(),
    )?;
    resolver.watch_recent_dids();
    // Every block producer this daemon runs (main chain and hosted sub-chains), for /healthz
    // and for the supervision below.
    let producers: Vec<Submitter> = std::iter::once(node.registrar.submitter().clone())
        .chain(
            node.subchains
                .iter()
                .map(|s| s.registrar.submitter().clone()),
        )
        .collect();
    if node.dev {
        if let Ok(fault) = std::env::var(FAULT_INJECTION_ENV) {
            if fault == "block-producer-panic" {
                tracing::warn!("fault injection: the block producer will panic on its next batch");
                node.registrar.submitter().inject_panic_for_fault_testing();
            } else {
                anyhow::bail!(
                    "{FAULT_INJECTION_ENV}={fault:?}: the only fault is block-producer-panic"
                );
            }
        }
    }
    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .with_context(|| format!("binding {}", config.http))?;
    if let Some(to) = &config.anchor.to {
        start_anchoring(&config, &node, to)?;
    }
    info!(
        http = %listener.local_addr()?,
        data = %config.data.display(),
        dev = node.dev,
        height = node.ledger.height(),
        "sparkid serving"
    );
    let bridge_ctx = Arc::new(BridgeContext {
        subchains: hosted
            .into_iter()
            .map(|(ac, records)| (ac.to_string(), records))
            .collect(),
        ..BridgeContext::new(
            bridge_records,
            config.handle.base_url(listener.local_addr()?),
        )
    });
    if let Some(addr) = config.handle.listen_addr(config.http) {
        match doors::handle::start(
            addr,
            bridge_ctx.clone(),
            config.udp_rrl,
            metrics.udp.clone(),
        )
        .await
        {
            Ok(door) => info!(udp = %door.udp, tcp = %door.tcp, "handle door listening"),
            Err(e) if config.handle.listen.is_none() => tracing::warn!(
                %addr, error = %e, "the default Handle address is taken: no Handle door (set --handle)"
            ),
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("binding the Handle door {addr}")))
            }
        }
    }
    let _dns = doors::dns::start(
        &config.dns,
        &config.handle.base_url(listener.local_addr()?),
        bridge_ctx.records.clone(),
        config.udp_rrl,
        metrics.udp.clone(),
    )
    .await?;
    // Static routes (`/1.0/...`, `/healthz`) keep priority over the BID protocol's `/{bid}`.
    // Every route goes through `Routes`, so `GET /1.0/routes` lists exactly what is served (one
    // `.merge(...)` per door).
    let app = doors::resolution::router(resolver.clone())
        .merge(doors::registrar::router(registrars))
        .merge(doors::health::router(
            node.ledger.clone(),
            follower.clone(),
            producers.clone(),
        ))
        .merge(doors::bidproto::router(resolver.clone()))
        .merge(doors::verifiable::router(resolver))
        .merge(doors::peer::router(head_watch))
        .merge(match &node.consensus {
            Some(c) => doors::consensus::router(c.clone()),
            None => Routes::new(),
        })
        .merge(doors::gs1::router(bridge_ctx.clone()))
        .merge(doors::bridges::router(bridge_ctx))
        .merge(metrics::router(metrics.clone()));
    let mut app = app.into_router_with_listing();
    if let Some(follower) = follower {
        app = app.layer(axum::middleware::from_fn_with_state(
            follower,
            doors::forward::forward_writes,
        ));
    }
    let edge = Edge::new(config.limits.clone(), metrics.registry())?;
    let app = edge::limit_requests(app, edge.clone());
    let app = metrics::instrument(app, metrics);
    // The HTTP server runs beside the block producers' watch: a producer that stopped for good
    // (a panic) makes the daemon report unhealthy, then exit non-zero for its supervisor to
    // restart it, rather than serve reads while every write fails.
    let server = tokio::spawn(edge::serve(listener, app, edge, shutdown()));
    tokio::select! {
        served = server => {
            served.context("the HTTP server stopped")?;
            Ok(())
        }
        reason = producer_failure(&producers) => {
            tracing::error!(
                "{reason}: /healthz answers 503; exiting in {} s for a supervisor to restart \
                 the daemon",
                PRODUCER_FAILURE_GRACE.as_secs()
            );
            tokio::time::sleep(PRODUCER_FAILURE_GRACE).await;
            Err(anyhow::anyhow!("{reason}"))
        }
    }
}

/// How long a daemon whose block producer stopped keeps answering (`/healthz` 503, so a load
/// balancer moves away) before it exits.
const PRODUCER_FAILURE_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// The environment variable that injects a fault in dev mode only (never outside it): the value
/// `block-producer-panic` makes the main chain's block producer panic on its next batch, to
/// test the daemon's supervision.
pub const FAULT_INJECTION_ENV: &str = "SPARKID_DEV_FAULT";

/// Completes when any of `producers` stops for good, with why.
async fn producer_failure(producers: &[Submitter]) -> String {
    let waits: Vec<_> = producers.iter().map(|p| Box::pin(p.failed())).collect();
    if waits.is_empty() {
        return std::future::pending().await;
    }
    futures_select_all(waits).await
}

/// The first of `futures` to complete.
async fn futures_select_all<F: std::future::Future<Output = String> + Unpin>(
    mut futures: Vec<F>,
) -> String {
    std::future::poll_fn(move |cx| {
        for f in futures.iter_mut() {
            if let std::task::Poll::Ready(v) = std::pin::Pin::new(f).poll(cx) {
                return std::task::Poll::Ready(v);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Anchors the sub-chains this node holds on the main chain at `to` ([`anchoring`]).
fn start_anchoring(config: &ServeConfig, node: &Node, to: &str) -> anyhow::Result<()> {
    let key_path = match (&config.anchor.key, config.dev) {
        (Some(path), _) => path.clone(),
        (None, true) => config.data.join(node::DEV_KEY_FILE),
        (None, false) => {
            anyhow::bail!("--anchor-to needs --anchor-key, the AC code owner's key file")
        }
    };
    let key = node::read_key(&key_path)?;
    let mut chains: Vec<anchoring::Anchored> = node
        .subchains
        .iter()
        .map(|s| anchoring::Anchored {
            ac: s.ac,
            ledger: s.ledger.clone(),
        })
        .collect();
    if let Some(ac) = sparkid_registrar::BidStateMachine::for_genesis(node.ledger.genesis()).ac_code
    {
        chains.push(anchoring::Anchored {
            ac,
            ledger: node.ledger.clone(),
        });
    }
    if chains.is_empty() {
        tracing::warn!(
            to,
            "--anchor-to is set but this daemon holds no sub-chain to anchor"
        );
    }
    anchoring::start(
        chains,
        to.to_string(),
        key,
        std::time::Duration::from_secs(config.anchor.interval),
    );
    Ok(())
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
            return;
        }
    }
    let _ = ctrl_c.await;
}
