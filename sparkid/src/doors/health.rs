//! `GET /healthz`: the chain and height this daemon serves; for a follower, its sync state,
//! with 503 while it is far behind its peer so that a load balancer skips it; 503 `failed`
//! once a block producer stopped for good (the daemon is about to exit).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;
use sparkid_ledger::Ledger;
use sparkid_node::follow::Follower;
use sparkid_registrar::Submitter;

use crate::doors::resolution::json_response;
use crate::doors::routes::{get, Routes};

/// What the health answer reads.
#[derive(Clone)]
struct Health {
    ledger: Arc<Ledger>,
    follower: Option<Arc<Follower>>,
    producers: Vec<Submitter>,
}

/// The route. `producers`: the block producers whose failure makes the daemon unhealthy.
pub fn router(
    ledger: Arc<Ledger>,
    follower: Option<Arc<Follower>>,
    producers: Vec<Submitter>,
) -> Routes {
    Routes::new()
        .route("/healthz", get(healthz))
        .with_state(Health {
            ledger,
            follower,
            producers,
        })
}

async fn healthz(State(state): State<Health>) -> Response {
    let head = state.ledger.head();
    let mut body =
        json!({ "status": "ok", "chainId": head.header.chain_id, "height": head.header.height });
    let mut status = StatusCode::OK;
    // A follower far behind its peer is catching up: 503, so a load balancer skips it.
    if let Some(follower) = &state.follower {
        let (healthy, sync) = follower.health();
        if !healthy {
            status = StatusCode::SERVICE_UNAVAILABLE;
            body["status"] = json!("syncing");
        }
        body["sync"] = sync;
    }
    // Writes cannot be committed any more: say so, rather than look healthy while they fail.
    if let Some(reason) = state.producers.iter().find_map(Submitter::failure) {
        status = StatusCode::SERVICE_UNAVAILABLE;
        body["status"] = json!("failed");
        body["error"] = json!(reason);
    }
    json_response(status, "application/json", &body)
}
