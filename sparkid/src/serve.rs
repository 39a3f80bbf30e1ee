//! The wiring of `sparkid serve`: opens the node, builds the services, starts every door, and
//! serves until Ctrl-C or SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use sparkid_node::anchoring;
use sparkid_node::follow::{self, Follower};
use sparkid_node::node::{self, Node};
use sparkid_node::peer::HeadWatch;
use sparkid_resolver::bridge_source::BridgeContext;
use sparkid_resolver::drivers::Drivers;
use sparkid_resolver::records::Records;
use sparkid_resolver::resolution::Resolver;
use sparkid_resolver::subchain::SubChains;
use tracing::info;

use crate::config::ServeConfig;
use crate::doors;
use crate::doors::routes::Routes;
use crate::metrics::{self, Metrics};

/// Runs the daemon until Ctrl-C or SIGTERM.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
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
        .with_drivers(Drivers::new(&config.drivers)?)
        .with_subchains(SubChains::new(hosted.clone()));
    let registrars = doors::registrar::Registrars {
        main: node.registrar.clone(),
        subchains: Arc::new(
            node.subchains
                .iter()
                .map(|s| (s.ac, s.registrar.clone()))
                .collect(),
        ),
    };
    resolver.watch_recent_dids();
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
        match doors::handle::start(addr, bridge_ctx.clone()).await {
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
    )
    .await?;
    // Static routes (`/1.0/...`, `/healthz`) keep priority over the BID protocol's `/{bid}`.
    // Every route goes through `Routes`, so `GET /1.0/routes` lists exactly what is served (one
    // `.merge(...)` per door).
    let app = doors::resolution::router(resolver.clone())
        .merge(doors::registrar::router(registrars))
        .merge(doors::health::router(node.ledger.clone(), follower.clone()))
        .merge(doors::bidproto::router(resolver.clone()))
        .merge(doors::verifiable::router(resolver))
        .merge(doors::peer::router(head_watch))
        .merge(match &node.consensus {
            Some(c) => doors::consensus::router(c.clone()),
            None => Routes::new(),
        })
        .merge(doors::bridges::router(bridge_ctx))
        .merge(metrics::router(metrics.clone()));
    let mut app = app.into_router_with_listing();
    if let Some(follower) = follower {
        app = app.layer(axum::middleware::from_fn_with_state(
            follower,
            doors::forward::forward_writes,
        ));
    }
    let app = metrics::instrument(app, metrics);
    // TCP_NODELAY: an answer is one write; it must not wait for the client's ACK of the last.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY on an accepted connection: {e}");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await?;
    Ok(())
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
