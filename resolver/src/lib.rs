//! The sparkid daemon: front doors over one resolution service and one registrar.
//!
//! - [`config`]: the TOML file, environment and flags.
//! - [`node`]: the ledger and the key that certifies its blocks.
//! - [`records`]: current ledger records for the read path, where the cache sits.
//! - [`cache`]: the chain-anchored two-tier cache (L1 in process, L2 Redis).
//! - [`metrics`]: `/metrics` for Prometheus.
//! - [`resolution`]: the read path every door calls: DID resolution and DID URL dereferencing
//!   for did:bid (the ledger), did:key ([`didkey`]) and driver methods ([`drivers`]).
//! - [`did_url`]: DID and DID URL syntax.
//! - [`negotiate`], [`binding`]: content negotiation and the DID Resolution HTTP binding.
//! - [`http`]: DID Resolution and Universal Registrar over HTTP.
//! - [`bidproto`]: the BID resolution protocol (`GET /{bid}` and its sub-paths) for BIF clients.
//! - [`verifiable`]: ledger proofs on answers, their offline check, `GET /1.0/genesis`.
//! - [`bridge_source`], [`bridge_http`], [`handle_door`]: VAA and Handle (REST and native
//!   UDP/TCP) over the bridges.
//! - [`dns_door`]: the authoritative DNS server (UDP and TCP) for the service zone and the
//!   DNS zones delegated on the ledger.
//! - [`cli`]: the `sparkid` command.
#![deny(missing_docs)]

pub mod bidproto;
pub mod binding;
pub mod bridge_http;
pub mod bridge_source;
pub mod cache;
pub mod cli;
pub mod config;
pub mod did_url;
pub mod didkey;
pub mod dns_door;
pub mod drivers;
pub mod handle_door;
pub mod http;
pub mod metrics;
pub mod negotiate;
pub mod node;
pub mod records;
pub mod resolution;
pub mod verifiable;

use std::sync::Arc;

use anyhow::Context;
use tracing::info;

/// Runs the daemon until Ctrl-C or SIGTERM.
pub async fn serve(config: config::ServeConfig) -> anyhow::Result<()> {
    let node = tokio::task::block_in_place(|| node::open(&config))?;
    let metrics = metrics::Metrics::new()?;
    metrics.watch_ledger(&node.ledger);
    let records =
        records::Records::cached(node.ledger.clone(), &config.cache, metrics.cache.clone())?;
    if let Some(cache) = records.cache() {
        let cache = Arc::downgrade(cache);
        metrics.on_scrape(Box::new(move || {
            if let Some(c) = cache.upgrade() {
                c.refresh_gauges();
            }
        }));
    }
    let bridge_records = records.clone();
    let state = http::AppState {
        resolver: resolution::Resolver::new(records)
            .with_drivers(drivers::Drivers::new(&config.drivers)?),
        registrar: node.registrar.clone(),
    };
    let listener = tokio::net::TcpListener::bind(config.http)
        .await
        .with_context(|| format!("binding {}", config.http))?;
    info!(
        http = %listener.local_addr()?,
        data = %config.data.display(),
        dev = node.dev,
        height = node.ledger.height(),
        "sparkid serving"
    );
    let bridge_ctx = Arc::new(bridge_source::BridgeContext {
        subchains: node
            .subchains
            .iter()
            .map(|s| (s.ac.to_string(), records::Records::new(s.ledger.clone())))
            .collect(),
        ..bridge_source::BridgeContext::new(
            bridge_records,
            config.handle.base_url(listener.local_addr()?),
        )
    });
    if let Some(addr) = config.handle.listen_addr(config.http) {
        match handle_door::start(addr, bridge_ctx.clone()).await {
            Ok(door) => info!(udp = %door.udp, tcp = %door.tcp, "handle door listening"),
            Err(e) if config.handle.listen.is_none() => tracing::warn!(
                %addr, error = %e, "the default Handle address is taken: no Handle door (set --handle)"
            ),
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("binding the Handle door {addr}")))
            }
        }
    }
    let _dns = dns_door::start(
        &config.dns,
        &config.handle.base_url(listener.local_addr()?),
        bridge_ctx.records.clone(),
    )
    .await?;
    // Static routes (`/1.0/...`, `/healthz`) keep priority over the BID protocol's `/{bid}`.
    let app = http::router(state.clone()).merge(
        bidproto::router()
            .merge(verifiable::router())
            .merge(bridge_http::router(bridge_ctx))
            .with_state(state),
    );
    let app = metrics::instrument(app.merge(metrics::router(metrics.clone())), metrics);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await?;
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
