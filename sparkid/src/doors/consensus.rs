//! The consensus door of a validator of several (`spec/consensus.md`): `GET
//! /1.0/consensus/status` and `/1.0/consensus/evidence`, and `POST
//! /1.0/consensus/messages|transactions`, called by the other validators.
//! [`sparkid_node::bft::Consensus`] decides every answer; this door hands it the request body
//! and maps its [`Rejection`] to HTTP: a body that does not parse or names numbers out of range
//! is a 400 `bad-consensus-request` problem; a refused message a `consensus-refused` problem
//! carrying this validator's head: 403 for a signature that does not verify or a proposer not
//! of its round, 422 for a block that does not check, 503 for a full pool.
//!
//! Every `POST` must be signed by a validator of the chain in the `sparkid-validator`,
//! `sparkid-signed-at` and `sparkid-signature` headers
//! ([`sparkid_node::validator_auth`]): without them the answer is 401 (with
//! `WWW-Authenticate`), with a wrong, stale or replayed signature 403, both a
//! `consensus-unauthenticated` problem, and nothing changes.
//!
//! `GET|POST /1.0/consensus/validators` is for operators, not validators: the sets by height,
//! and a validator-set change signed by a quorum of the current set (its signatures are its
//! authority, so the request itself needs none). A change that does not hold is a 400
//! `validator-change-refused` problem saying exactly why.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use sparkid_ledger::tx::MAX_TX_BYTES;
use sparkid_ledger::{ChangeError, ValidatorChange};
use sparkid_node::bft::{
    Consensus, Rejection, MAX_REQUEST, PROBLEM_BAD_REQUEST, PROBLEM_REFUSED,
    PROBLEM_UNAUTHENTICATED,
};
use sparkid_node::validator_auth::{
    AuthError, RequestSignature, SIGNATURE_HEADER, SIGNED_AT_HEADER, VALIDATOR_HEADER,
};

use crate::doors::routes::{get, post, Routes};

/// The consensus routes.
pub fn router(consensus: Arc<Consensus>) -> Routes {
    Routes::new()
        .route("/1.0/consensus/status", get(status))
        .route("/1.0/consensus/evidence", get(evidence))
        .route("/1.0/consensus/messages", post(messages))
        .route("/1.0/consensus/transactions", post(transactions))
        .route(
            "/1.0/consensus/validators",
            get(validator_sets).post(change_validators),
        )
        .layer_with(|r| r.layer(DefaultBodyLimit::max(MAX_REQUEST)))
        .with_state(consensus)
}

fn ok_json(body: &impl Serialize) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(body).unwrap_or_default(),
    )
        .into_response()
}

fn problem(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

/// The problem object of a rejection; `head` is this validator's head height.
fn rejection(rejection: Rejection, head: u64) -> Response {
    match rejection {
        Rejection::Unauthenticated(e) => {
            let status = match e {
                AuthError::Unsigned(_) => StatusCode::UNAUTHORIZED,
                AuthError::Busy => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::FORBIDDEN,
            };
            let mut response = problem(
                status,
                json!({
                    "type": PROBLEM_UNAUTHENTICATED,
                    "title": "The request is not from a validator of this chain.",
                    "status": status.as_u16(),
                    "detail": e.to_string(),
                }),
            );
            if status == StatusCode::UNAUTHORIZED {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Sparkid-Validator-Signature"),
                );
            }
            response
        }
        Rejection::BadRequest(detail) => problem(
            StatusCode::BAD_REQUEST,
            json!({
                "type": PROBLEM_BAD_REQUEST,
                "title": "The consensus request does not parse.",
                "status": 400,
                "detail": detail,
            }),
        ),
        Rejection::Refused { status, reason } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::CONFLICT);
            problem(
                status,
                json!({
                    "type": PROBLEM_REFUSED,
                    "title": "The validator refused.",
                    "status": status.as_u16(),
                    "detail": reason,
                    "head": head,
                }),
            )
        }
    }
}

/// `GET /1.0/consensus/status`: who this validator is and where it is.
async fn status(State(c): State<Arc<Consensus>>) -> Response {
    ok_json(&c.status())
}

/// `GET /1.0/consensus/evidence`: the double signing this validator recorded.
async fn evidence(State(c): State<Arc<Consensus>>) -> Response {
    ok_json(&c.evidence())
}

/// Problem type of a refused validator-set change.
pub const PROBLEM_CHANGE_REFUSED: &str = "urn:sparkid:problem:validator-change-refused";

/// `GET /1.0/consensus/validators`: the sets by height and the next height's.
async fn validator_sets(State(c): State<Arc<Consensus>>) -> Response {
    ok_json(&c.validator_sets())
}

/// `POST /1.0/consensus/validators`: a signed change; `{height, index, txHash, from}` once
/// the block holding it is committed here.
async fn change_validators(State(c): State<Arc<Consensus>>, body: Bytes) -> Response {
    let refused = |status: StatusCode, detail: String| {
        problem(
            status,
            json!({
                "type": PROBLEM_CHANGE_REFUSED,
                "title": "The validator-set change is refused.",
                "status": status.as_u16(),
                "detail": detail,
            }),
        )
    };
    // A change is one operation of one transaction: never larger than a transaction may be.
    if body.len() > MAX_TX_BYTES {
        return refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("a change is at most {MAX_TX_BYTES} bytes"),
        );
    }
    let change = match serde_json::from_slice::<serde_json::Value>(&body)
        .map_err(|e| ChangeError::Malformed(e.to_string()))
        .and_then(|v| ValidatorChange::parse(&v))
    {
        Ok(change) => change,
        Err(e) => return refused(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let from = change.from;
    let worker = c.clone();
    match tokio::task::spawn_blocking(move || worker.submit_change(change)).await {
        Ok(Ok(committed)) => ok_json(&json!({
            "height": committed.height,
            "index": committed.index,
            "txHash": committed.tx_hash.to_string(),
            "from": from,
        })),
        Ok(Err(e)) => {
            let status =
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            refused(status, e.to_string())
        }
        Err(e) => refused(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// The sender's signature headers, as they came (a header that is not text counts as absent).
fn signature(headers: &HeaderMap) -> RequestSignature {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    RequestSignature {
        validator: text(VALIDATOR_HEADER),
        signed_at: text(SIGNED_AT_HEADER),
        signature: text(SIGNATURE_HEADER),
    }
}

/// `POST /1.0/consensus/messages`: `{"head"}`.
async fn messages(State(c): State<Arc<Consensus>>, headers: HeaderMap, body: Bytes) -> Response {
    match c.on_message(&signature(&headers), &body).await {
        Ok(head) => ok_json(&json!({ "head": head })),
        Err(e) => rejection(e, c.height()),
    }
}

/// `POST /1.0/consensus/transactions`: `{"added"}`, how many were new to this pool.
async fn transactions(
    State(c): State<Arc<Consensus>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match c.on_transactions(&signature(&headers), &body).await {
        Ok(added) => ok_json(&json!({ "added": added })),
        Err(e) => rejection(e, c.height()),
    }
}
