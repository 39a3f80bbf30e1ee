//! The BID resolution protocol door: `GET /{bid}` and its sub-paths for existing BIF clients.
//! The protocol (paths, options, envelope, error codes) is [`sparkid_resolver::bidproto`]; this
//! file only reads the path and query and sends the envelope.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use sparkid_resolver::bidproto::{self, BidProtoError, Options, SubPath};
use sparkid_resolver::resolution::Resolver;

use crate::doors::routes::{get, Routes};

/// The routes: `/{bid}` and `/{bid}/{sub-path}`. Static routes of other routers (`/1.0/…`,
/// `/healthz`, `/metrics`) take precedence over these.
pub fn router(resolver: Resolver) -> Routes {
    Routes::new()
        .route("/{bid}", get(document))
        .route("/{bid}/", get(document))
        .route("/{bid}/{*rest}", get(sub_path))
        .with_state(resolver)
}

type QueryPairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

fn unreadable_path(e: PathRejection) -> BidProtoError {
    BidProtoError::NotABid {
        input: String::new(),
        reason: e.body_text(),
    }
}

async fn document(
    State(resolver): State<Resolver>,
    bid: Result<Path<String>, PathRejection>,
    query: QueryPairs,
) -> Response {
    let request = bid
        .map_err(unreadable_path)
        .map(|Path(bid)| (bid, SubPath::Document));
    answer(&resolver, request, query).await
}

async fn sub_path(
    State(resolver): State<Resolver>,
    path: Result<Path<(String, String)>, PathRejection>,
    query: QueryPairs,
) -> Response {
    let request = path
        .map_err(unreadable_path)
        .and_then(|Path((bid, rest))| Ok((bid, SubPath::parse(&rest)?)));
    answer(&resolver, request, query).await
}

async fn answer(
    resolver: &Resolver,
    request: Result<(String, SubPath), BidProtoError>,
    query: QueryPairs,
) -> Response {
    let prepared = request.and_then(|(bid, sub)| {
        let Query(pairs) = query.map_err(|e| BidProtoError::NotABid {
            input: bid.clone(),
            reason: format!("bad query string: {}", e.body_text()),
        })?;
        Ok((bid, sub, Options::parse(&pairs)?))
    });
    let envelope = bidproto::answer(resolver, prepared).await;
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        envelope.to_string(),
    )
        .into_response()
}
