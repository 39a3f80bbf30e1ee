//! The follower's write door: on a follower (`--follow`), a `POST` to a registrar route
//! ([`sparkid_node::follow::WRITE_ROUTES`]) is not handled here but forwarded to a validator
//! by [`Follower::forward`], whose answer is returned as it is; every other request goes on to
//! its handler. Mounted by the daemon as a middleware over the whole router.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sparkid_node::follow::{is_forwarded, Follower};
use sparkid_registrar::RegistrarResponse;

use crate::doors::registrar::MAX_BODY;

/// Middleware for the daemon's router on a follower: `POST` to a registrar route is forwarded
/// ([`Follower::forward`]); every other request goes on to its handler. A body over
/// [`MAX_BODY`] gets a 413 registrar answer.
pub async fn forward_writes(
    State(follower): State<Arc<Follower>>,
    request: Request,
    next: Next,
) -> Response {
    if !is_forwarded(request.method().as_str(), request.uri().path()) {
        return next.run(request).await;
    }
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) => {
            let answer = RegistrarResponse::failed(
                None,
                413,
                format!("the request body is not readable or over {MAX_BODY} bytes: {e}"),
            );
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                [(header::CONTENT_TYPE, "application/json")],
                serde_json::to_string(&answer).unwrap_or_default(),
            )
                .into_response();
        }
    };
    let forwarded = follower
        .forward(
            &path_and_query,
            parts.headers.get(header::CONTENT_TYPE),
            body,
        )
        .await;
    let status = StatusCode::from_u16(forwarded.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = (status, forwarded.body).into_response();
    response.headers_mut().extend(forwarded.headers);
    response
}
