//! `GET /1.0/genesis`: the chain's genesis, the file `sparkid verify --genesis` reads (see
//! [`sparkid_resolver::verifiable`]). Fetching it from the resolver you are about to check is
//! only good for development: in production, obtain the genesis (or the validator keys) from the
//! chain's operators.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use sparkid_resolver::resolution::Resolver;

use crate::doors::routes::{get, Routes};

/// The route, over the resolver (whose hosted sub-chains have their own genesis).
/// The `GET /1.0/genesis` route: the chain's genesis as JSON (`chainId`, `time`, `validators`,
/// `authority`), the file that `sparkid verify --genesis` and `sparkid serve --genesis` read.
pub fn router(resolver: Resolver) -> Routes {
    Routes::new()
        .route("/1.0/genesis", get(genesis))
        .with_state(resolver)
}

/// `?acCode=<ac>` asks for the genesis of a sub-chain hosted here (to check its answers).
async fn genesis(
    State(resolver): State<Resolver>,
    query: Result<Query<std::collections::HashMap<String, String>>, QueryRejection>,
) -> Response {
    let problem = |status: StatusCode, detail: String| {
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            serde_json::json!({"type": "about:blank", "title": status.canonical_reason(), "status": status.as_u16(), "detail": detail})
                .to_string(),
        )
            .into_response()
    };
    let query = match query {
        Ok(Query(q)) => q,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.body_text()),
    };
    if let Some(unknown) = query.keys().find(|k| *k != "acCode") {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("unknown parameter {unknown:?}: the only one is acCode"),
        );
    }
    let genesis = match query.get("acCode") {
        None => resolver.ledger().genesis().clone(),
        Some(code) => {
            let ac: sparkid_bid::AcCode = match code.parse() {
                Ok(ac) => ac,
                Err(e) => {
                    return problem(
                        StatusCode::BAD_REQUEST,
                        format!("acCode {code:?} is not an AC code: {e}"),
                    )
                }
            };
            match resolver.subchains().hosted(&ac) {
                Some(records) => records.ledger().genesis().clone(),
                None => {
                    return problem(
                        StatusCode::NOT_FOUND,
                        format!("this daemon does not host sub-chain {ac}"),
                    )
                }
            }
        }
    };
    let body = serde_json::to_string_pretty(&genesis).unwrap_or_default();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}
