//! The peer API door: `GET /1.0/ledger/head` and `GET /1.0/ledger/blocks` (certified blocks,
//! long-polled), served by every node to followers and to validators catching up. What a page
//! holds and how long it waits is [`sparkid_node::peer`]'s; this door parses the query and
//! renders the answer or a problem object.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sparkid_node::peer::{
    blocks_page, head_json, HeadWatch, PageRequest, ParameterError, PROBLEM_INVALID_PARAMETER,
};

use crate::doors::routes::{get, Routes};

/// The peer API routes.
pub fn router(watch: HeadWatch) -> Routes {
    Routes::new()
        .route("/1.0/ledger/head", get(head))
        .route("/1.0/ledger/blocks", get(blocks))
        .with_state(watch)
}

fn problem_json(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

fn invalid(e: ParameterError) -> Response {
    problem_json(
        StatusCode::BAD_REQUEST,
        json!({
            "type": PROBLEM_INVALID_PARAMETER,
            "title": "A query parameter is not usable.",
            "status": 400,
            "detail": e.detail,
            "parameter": e.parameter,
        }),
    )
}

fn internal(detail: String) -> Response {
    tracing::error!(error = %detail, "peer API");
    problem_json(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({
            "type": "urn:sparkid:problem:internal",
            "title": "The ledger could not be read.",
            "status": 500,
            "detail": detail,
        }),
    )
}

async fn head(State(watch): State<HeadWatch>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        head_json(&watch),
    )
        .into_response()
}

/// The raw query: every member a string, so that a bad value gets this API's own problem
/// object rather than the extractor's plain-text rejection.
#[derive(Debug, Deserialize)]
struct BlocksQuery {
    from: Option<String>,
    limit: Option<String>,
    wait: Option<String>,
}

async fn blocks(
    State(watch): State<HeadWatch>,
    query: Result<Query<BlocksQuery>, QueryRejection>,
) -> Response {
    let q = match query {
        Ok(Query(q)) => q,
        Err(e) => {
            return invalid(ParameterError {
                parameter: "query",
                detail: format!("the query string does not decode: {e}"),
            })
        }
    };
    let request = match PageRequest::parse(q.from.as_deref(), q.limit.as_deref(), q.wait.as_deref())
    {
        Ok(r) => r,
        Err(e) => return invalid(e),
    };
    match blocks_page(&watch, request).await {
        Ok(body) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response(),
        Err(e) => internal(e.to_string()),
    }
}
