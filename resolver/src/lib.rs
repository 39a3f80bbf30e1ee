//! The sparkid daemon: front doors over one resolution service and one registrar.
//!
//! - [`config`]: the TOML file, environment and flags.
//! - [`node`]: the ledger and the key that certifies its blocks.
//! - [`records`]: current ledger records for the read path, where the cache sits.
//! - [`resolution`]: the read path every door calls.
//! - [`http`]: DID Resolution and Universal Registrar over HTTP.
//! - [`cli`]: the `sparkid` command.
#![deny(missing_docs)]

pub mod cli;
pub mod config;
pub mod http;
pub mod node;
pub mod records;
pub mod resolution;

use anyhow::Context;
use tracing::info;

/// Runs the daemon until Ctrl-C or SIGTERM.
pub async fn serve(config: config::ServeConfig) -> anyhow::Result<()> {
    let node = tokio::task::block_in_place(|| node::open(&config))?;
    let state = http::AppState {
        resolver: resolution::Resolver::new(records::Records::new(node.ledger.clone())),
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
    axum::serve(listener, http::router(state))
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
