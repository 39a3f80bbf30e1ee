//! Anchoring the sub-chains this daemon holds on the main chain (`--anchor-to`).
//!
//! Every `--anchor-interval` seconds, for each sub-chain ledger held here (the hosted
//! `--subchain` ledgers, and this daemon's own ledger when its genesis names an AC code) whose
//! head moved since the last anchor, an `anchor {ac, genesis, header}` operation carrying the
//! head's certified header is signed with the AC code owner's key and written through the main
//! chain's registrar (`POST /1.0/namespaces`, client-managed). The main chain checks it against
//! the sub-chain's validators ([`sparkid_registrar::anchor`]). A failed anchor is logged and
//! tried again at the next tick; anchoring never blocks the sub-chain itself.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sparkid_bid::{AcCode, Bid, PrivateKey};
use sparkid_ledger::Ledger;
use tracing::{debug, info, warn};

use crate::outbound::ClientBase;
use crate::registrar_client::client_managed_with;

/// One sub-chain to anchor.
pub struct Anchored {
    /// Its AC code.
    pub ac: AcCode,
    /// Its ledger.
    pub ledger: Arc<Ledger>,
}

/// Starts one anchoring task per sub-chain in `chains`, writing to the main chain's registrar
/// at `to` (`http://` or `https://`, through a client built from `client`), signed with `key`,
/// every `interval`.
pub fn start(
    chains: Vec<Anchored>,
    to: String,
    key: PrivateKey,
    interval: Duration,
    client: &ClientBase,
) -> Result<(), reqwest::Error> {
    let http = client.builder().timeout(ANCHOR_TIMEOUT).build()?;
    for chain in chains {
        let to = to.clone();
        let key = key.clone();
        let http = http.clone();
        tokio::spawn(async move { run(chain, to, key, interval, http).await });
    }
    Ok(())
}

/// How long one exchange with the main chain's registrar may take.
const ANCHOR_TIMEOUT: Duration = Duration::from_secs(30);

async fn run(
    chain: Anchored,
    to: String,
    key: PrivateKey,
    interval: Duration,
    http: reqwest::Client,
) {
    let ac = chain.ac;
    info!(%ac, to, every = ?interval, "anchoring the sub-chain on the main chain");
    let mut last: Option<u64> = None;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let head = chain.ledger.head();
        let height = head.header.height;
        if last.is_some_and(|l| height <= l) {
            continue;
        }
        match anchor(&http, &chain, &to, &key, &head).await {
            Ok(()) => {
                debug!(%ac, height, "anchored");
                last = Some(height);
            }
            Err(reason) if reason.contains("is not above the latest anchor") => {
                // Anchored already (before a restart): nothing to do until the head moves.
                last = Some(height);
            }
            Err(reason) => warn!(%ac, height, reason, "anchoring failed; trying again"),
        }
    }
}

/// Writes one anchor; the registrar's reason when it is refused.
async fn anchor(
    http: &reqwest::Client,
    chain: &Anchored,
    to: &str,
    key: &PrivateKey,
    head: &sparkid_ledger::CertifiedHeader,
) -> Result<(), String> {
    let kid = Bid::derive(&key.public_key(), None)
        .map(|bid| format!("{bid}#key-1"))
        .map_err(|e| e.to_string())?;
    let body = json!({
        "operation": {
            "type": "anchor",
            "ac": chain.ac.to_string(),
            "genesis": chain.ledger.genesis(),
            "header": head,
        },
        "options": { "signer": kid, "publicKeyHex": key.public_key().to_encoded() },
    });
    let answer = client_managed_with(http, to, "/1.0/namespaces", body, key)
        .await
        .map_err(|e| with_causes(&e))?;
    match answer["didState"]["state"].as_str() {
        Some("finished") => Ok(()),
        _ => Err(answer["didState"]["reason"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| brief(&answer))),
    }
}

/// An error and its causes, `: `-separated.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn brief(value: &Value) -> String {
    let text = value.to_string();
    text.chars().take(300).collect()
}
