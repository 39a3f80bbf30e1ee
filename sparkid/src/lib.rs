//! The sparkid daemon: front doors over one resolution service and one registrar.
//!
//! - [`config`]: the TOML file, environment and flags.
//! - [`node`]: the ledger and the key that certifies its blocks.
//! - [`consensus`]: a validator of several: prepare, proposals, votes, commits
//!   (`spec/consensus.md`).
//! - [`records`]: current ledger records for the read path, where the cache sits.
//! - [`cache`]: the chain-anchored two-tier cache (L1 in process, L2 Redis).
//! - [`metrics`]: `/metrics` for Prometheus.
//! - [`resolution`]: the read path every door calls: DID resolution and DID URL dereferencing
//!   for did:bid (the ledger), did:key ([`didkey`]) and driver methods ([`drivers`]).
//! - [`did_url`]: DID and DID URL syntax.
//! - [`negotiate`], [`binding`]: content negotiation and the DID Resolution HTTP binding.
//! - [`http`]: DID Resolution and Universal Registrar over HTTP.
//! - [`bidproto`]: the BID resolution protocol (`GET /{bid}` and its sub-paths) for BIF clients.
//! - [`anchoring`]: a sub-chain's certified headers anchored on the main chain.
//! - [`subchain`]: `did:bid:<ac>:…` from a hosted sub-chain or its delegated resolvers.
//! - [`verifiable`]: ledger proofs on answers, their offline check, `GET /1.0/genesis`.
//! - [`bridge_source`], [`bridge_http`], [`handle_door`]: VAA and Handle (REST and native
//!   UDP/TCP) over the bridges.
//! - [`dns_door`]: the authoritative DNS server (UDP and TCP) for the service zone and the
//!   DNS zones delegated on the ledger.
//! - [`routes`]: the route table every HTTP route is mounted through, listed at
//!   `GET /1.0/routes` and held to `spec/openapi.yaml` by `tests/openapi.rs`.
//! - [`peer`]: the peer API (certified blocks over HTTP, long-polled) and syncing from it.
//! - [`follow`]: follower mode (`--follow`): sync, read doors from the local copy, forwarded
//!   writes.
//! - [`warm`]: the did:bid read answered from L1 without a blocking hop, and the HTTP binding's
//!   kept renderings.
//! - [`cli`]: the `sparkid` command.
#![deny(missing_docs)]

pub mod anchoring;
pub mod bidproto;
pub mod binding;
pub mod bridge_http;
pub mod bridge_source;
pub mod cache;
pub mod cli;
pub mod config;
pub mod consensus;
pub mod did_url;
pub mod didkey;
pub mod dns_door;
pub mod drivers;
pub mod follow;
pub mod handle_door;
pub mod http;
pub mod metrics;
pub mod negotiate;
pub mod node;
pub mod peer;
pub mod records;
pub mod resolution;
pub mod routes;
pub mod subchain;
pub mod verifiable;
pub mod warm;

use std::sync::Arc;

use anyhow::Context;
use tracing::info;

/// Runs the daemon until Ctrl-C or SIGTERM.
pub async fn serve(config: config::ServeConfig) -> anyhow::Result<()> {
    let node = if config.follow.is_empty() {
        tokio::task::block_in_place(|| node::open(&config))?
    } else {
        follow::open_node(&config).await?
    };
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
    // Each hosted sub-chain has its own cache (its entries are named after its genesis).
    let mut hosted = Vec::new();
    for sub in &node.subchains {
        let sub_records =
            records::Records::cached(sub.ledger.clone(), &config.cache, metrics.cache.clone())?;
        hosted.push((sub.ac, sub_records));
    }
    // Long polls of the peer API wait on this; a follower starts syncing only now, after the
    // cache's commit listener is in place.
    let head_watch = peer::HeadWatch::new(&node.ledger);
    let follower = if config.follow.is_empty() {
        None
    } else {
        Some(follow::Follower::start(
            node.ledger.clone(),
            head_watch.clone(),
            &config,
            metrics.registry(),
        )?)
    };
    let state = http::AppState {
        resolver: resolution::Resolver::new(records)
            .with_drivers(drivers::Drivers::new(&config.drivers)?)
            .with_subchains(subchain::SubChains::new(hosted.clone())),
        registrar: node.registrar.clone(),
        subchain_registrars: Arc::new(
            node.subchains
                .iter()
                .map(|s| (s.ac, s.registrar.clone()))
                .collect(),
        ),
        follower: follower.clone(),
    };
    state.resolver.watch_recent_dids();
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
    let bridge_ctx = Arc::new(bridge_source::BridgeContext {
        subchains: hosted
            .into_iter()
            .map(|(ac, records)| (ac.to_string(), records))
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
    // Every route goes through `routes::Routes`, so `GET /1.0/routes` lists exactly what is
    // served (one `.merge(...)` per module).
    let app = http::router(state.clone())
        .merge(
            bidproto::router()
                .merge(verifiable::router())
                .merge(peer::router(head_watch))
                .merge(match &node.consensus {
                    Some(c) => consensus::router(c.clone()),
                    None => routes::Routes::new(),
                })
                .merge(bridge_http::router(bridge_ctx))
                .with_state(state),
        )
        .merge(metrics::router(metrics.clone()));
    let mut app = app.into_router_with_listing();
    if let Some(follower) = follower {
        app = app.layer(axum::middleware::from_fn_with_state(
            follower,
            follow::Follower::forward_writes,
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
fn start_anchoring(
    config: &config::ServeConfig,
    node: &node::Node,
    to: &str,
) -> anyhow::Result<()> {
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
