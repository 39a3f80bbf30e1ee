//! The wiring of `sparkid serve`: opens the node, builds the services, starts every door, and
//! serves until Ctrl-C or SIGTERM.

use std::sync::Arc;

use anyhow::Context;
use sparkid_bridges::handle::site::SiteInfo;
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
use crate::outbound::Outbound;

/// Runs the daemon until Ctrl-C or SIGTERM.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    run(config, None, shutdown()).await
}

/// Runs the daemon on `listener` (already bound, e.g. to port 0) instead of binding
/// `config.http`, until `stop` completes: a daemon in the caller's process, for tests that need
/// no process of their own. `config.http` becomes the listener's address.
pub async fn serve_on(
    mut config: ServeConfig,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    config.http = listener.local_addr()?;
    run(config, Some(listener), stop).await
}

/// A daemon running in this process on its own runtime thread ([`start`]); stopped, and its
/// thread joined, when dropped.
pub struct InProcess {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl InProcess {
    /// The address its HTTP door listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }

    /// Stops it and waits for it: how its run ended.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .map_err(|_| anyhow::anyhow!("the daemon's thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// Starts the daemon of `config` in this process on `listener` (a bound std listener, e.g.
/// `127.0.0.1:0`), on a multi-threaded runtime of its own thread ([`serve_on`]). Returns at
/// once; the caller waits for `/healthz` as it would for a process.
pub fn start(config: ServeConfig, listener: std::net::TcpListener) -> anyhow::Result<InProcess> {
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(format!("sparkid {addr}"))
        .spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let result = runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                serve_on(config, listener, async move {
                    let _ = stopped.await;
                })
                .await
            });
            // Background tasks (sync, long polls) end with the runtime, not one by one.
            runtime.shutdown_background();
            result
        })?;
    Ok(InProcess {
        addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}

/// The daemon's run: `listener` when given, else `config.http` bound; until `stop`.
async fn run(
    config: ServeConfig,
    listener: Option<tokio::net::TcpListener>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if config.cache.redis_url.is_some() && config.cache.redis_secret.is_none() && !config.dev {
        // Without a shared secret Redis values cannot be authenticated, and anyone who can
        // write to Redis could make every replica serve a forged record.
        anyhow::bail!(
            "redis_url needs redis_secret (--redis-secret, SPARKID_REDIS_SECRET): the shared \
             secret that authenticates the Redis cache's values"
        );
    }
    // TLS settings are checked before anything is opened: a bad file stops the start at once.
    let tls = config
        .tls
        .inbound
        .as_ref()
        .map(crate::edge::TlsFiles::acceptor)
        .transpose()?;
    let outbound = Outbound::load(config.tls.ca_file.as_deref())?;
    if outbound.extra_roots() > 0 {
        info!(
            certificates = outbound.extra_roots(),
            "outbound clients trust the CA file's certificates"
        );
    }
    let node_options = sparkid_node::node::NodeOptions {
        client: outbound.node(),
        ..config.node_options()
    };
    let follow_options = follow::FollowOptions {
        client: outbound.node(),
        ..config.follow_options()
    };
    let node = if config.follow.is_empty() {
        tokio::task::block_in_place(|| node::open(&node_options))?
    } else {
        follow::open_node(&follow_options).await?
    };
    let metrics = Metrics::new()?;
    metrics.watch_ledger(&node.ledger);
    let records = Records::cached(node.ledger.clone(), &config.cache, metrics.cache.clone())?;
    // Cold did:bid reads from answer records written at commit (sparkid_resolver::answers).
    if config.answer_records {
        sparkid_resolver::answer_deriver::install(&node.ledger);
    } else {
        tracing::info!("answer records off: cold did:bid reads render");
    }
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
            &follow_options,
            metrics.registry(),
        )?)
    };
    if let Some(consensus) = &node.consensus {
        consensus.register_metrics(metrics.registry())?;
    }
    let resolver = Resolver::new(records)
        .with_drivers(
            Drivers::with_client(
                &config.drivers,
                config.upstream.driver_cache_bytes,
                &outbound.resolver(),
            )?
            .with_metrics(metrics.upstream()?),
        )
        .with_subchains(
            SubChains::with_client(
                hosted.clone(),
                config.upstream.subchain.clone(),
                &outbound.resolver(),
            )
            .with_metrics(metrics.upstream()?),
        )
        .with_ssi_methods(
            sparkid_resolver::ssi_methods::SsiMethods::new(config.did_web.options()?)
                .context("did:web")?,
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
    let listener = match listener {
        Some(listener) => listener,
        None => tokio::net::TcpListener::bind(config.http)
            .await
            .with_context(|| format!("binding {}", config.http))?,
    };
    if let Some(to) = &config.anchor.to {
        start_anchoring(&config, &node, to, &outbound)?;
    }
    let edge = Edge::with_tls(config.limits.clone(), tls, metrics.registry())?;
    info!(
        http = %listener.local_addr()?,
        tls = edge.is_tls(),
        data = %config.data.display(),
        dev = node.dev,
        height = node.ledger.height(),
        "sparkid serving"
    );
    let handle_doors = bind_handle_doors(&config).await?;
    let handle_site = handle_site(&config, &handle_doors)?;
    // The URLs the bridges hand out point at this door: `https://` when it answers TLS.
    let public_url = match (&config.handle.public_url, edge.is_tls()) {
        (None, true) => format!("https://{}", listener.local_addr()?),
        _ => config.handle.base_url(listener.local_addr()?),
    };
    let bridge_ctx = Arc::new(BridgeContext {
        subchains: hosted
            .into_iter()
            .map(|(ac, records)| (ac.to_string(), records))
            .collect(),
        handle_site,
        ..BridgeContext::new(bridge_records, public_url.clone())
    });
    for (name, sockets) in handle_doors {
        let door = sockets.serve(
            bridge_ctx.clone(),
            config.udp_rrl,
            metrics.udp.clone(),
            name,
        )?;
        info!(udp = %door.udp, tcp = %door.tcp, door = name, "handle door listening");
    }
    let _dns = doors::dns::start(
        &config.dns,
        &public_url,
        bridge_ctx.records.clone(),
        config.udp_rrl,
        metrics.udp.clone(),
    )
    .await?;
    // Static routes (`/1.0/...`, `/healthz`) keep priority over the BID protocol's `/{bid}`.
    // Every route goes through `Routes`, so `GET /1.0/routes` lists exactly what is served (one
    // `.merge(...)` per door).
    // The resolution door's warm answers go before the router (`edge::FastLane`).
    let lane: Arc<dyn edge::FastLane> = Arc::new(doors::resolution::WarmLane::new(
        resolver.clone(),
        &metrics,
    )?);
    let app = doors::resolution::router(resolver.clone())
        .merge(doors::registrar::router(registrars))
        .merge(doors::health::router(
            node.ledger.clone(),
            follower.clone(),
            producers.clone(),
        ))
        .merge(doors::bidproto::router(resolver.clone()))
        .merge(doors::verifier::router(
            sparkid_verifier::Verifier::new(resolver.clone()),
            metrics.registry(),
        )?)
        .merge(doors::verifiable::router(resolver))
        .merge(doors::peer::router(head_watch))
        .merge(match &node.consensus {
            Some(c) => doors::consensus::router(c.clone()),
            None => Routes::new(),
        })
        .merge(doors::oid_ecode::router(bridge_ctx.clone()))
        .merge(doors::gs1::router(bridge_ctx.clone()))
        .merge(doors::bridges::router(bridge_ctx))
        .merge(doors::explorer::router(
            sparkid_resolver::explorer::Explorer::new(
                node.ledger.clone(),
                node.subchains
                    .iter()
                    .map(|s| (s.ac, s.ledger.clone()))
                    .collect(),
            ),
            follower.clone(),
        ))
        .merge(metrics::router(metrics.clone()));
    let mut app = app.into_router_with_listing();
    if let Some(follower) = follower {
        app = app.layer(axum::middleware::from_fn_with_state(
            follower,
            doors::forward::forward_writes,
        ));
    }
    let app = edge::limit_requests(app, edge.clone());
    let app = metrics::instrument(app, metrics);
    // The HTTP server runs beside the block producers' watch: a producer that stopped for good
    // (a panic) makes the daemon report unhealthy, then exit non-zero for its supervisor to
    // restart it, rather than serve reads while every write fails.
    let server = tokio::spawn(edge::serve(listener, app, edge, Some(lane), stop));
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
fn start_anchoring(
    config: &ServeConfig,
    node: &Node,
    to: &str,
    outbound: &Outbound,
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
        &outbound.node(),
    )?;
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

/// Binds the Handle doors, the default one (`handle`) and the IDIS one (`handle-idis`), before
/// serving them: the site they describe names their bound addresses.
async fn bind_handle_doors(
    config: &ServeConfig,
) -> anyhow::Result<Vec<(&'static str, doors::handle::HandleSockets)>> {
    let mut bound = Vec::new();
    if let Some(addr) = config.handle.listen_addr(config.http) {
        match doors::handle::bind(addr).await {
            Ok(sockets) => bound.push(("handle", sockets)),
            Err(e) if config.handle.listen.is_none() => tracing::warn!(
                %addr, error = %e, "the default Handle address is taken: no Handle door (set --handle)"
            ),
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("binding the Handle door {addr}")))
            }
        }
    }
    if let Some(addr) = config.handle.idis {
        let sockets = doors::handle::bind(addr)
            .await
            .with_context(|| format!("binding the Handle IDIS door {addr}"))?;
        bound.push(("handle-idis", sockets));
    }
    Ok(bound)
}

/// This node's Handle site: the configured public interfaces, else the doors' bound addresses
/// (TCP first). None, with a warning, when no address is one a client could reach.
fn handle_site(
    config: &ServeConfig,
    doors: &[(&'static str, doors::handle::HandleSockets)],
) -> anyhow::Result<Option<Arc<SiteInfo>>> {
    let mut bound = Vec::new();
    for (_, sockets) in doors {
        let door = sockets.addresses()?;
        bound.push(door.tcp);
    }
    let (endpoints, wildcards) = config.handle.site_endpoints(&bound);
    if !wildcards.is_empty() {
        tracing::warn!(
            addresses = ?wildcards,
            "Handle listeners on wildcard addresses are left out of this node's HS_SITE: \
             set handle_site_addresses (--handle-site-address) to its public addresses"
        );
    }
    let site = SiteInfo::from_endpoints(
        &endpoints,
        1,
        &format!("sparkid {}", env!("CARGO_PKG_VERSION")),
    );
    match &site {
        Some(_) => info!(
            interfaces = ?endpoints.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "handle site: HS_SITE and GET_SITE_INFO name these interfaces"
        ),
        None if !doors.is_empty() => tracing::warn!(
            "no public Handle address known: prefixes carry no HS_SITE and GET_SITE_INFO is not \
             supported (set handle_site_addresses)"
        ),
        None => {}
    }
    Ok(site.map(Arc::new))
}
