//! The DID Resolution door: `GET|POST /1.0/identifiers/{did or DID URL}` (the binding itself,
//! request to rendered answer, is [`sparkid_resolver::binding`]), and the Universal Resolver's
//! `/1.0/methods`, `/1.0/properties` and `/1.0/testIdentifiers`.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use sparkid_resolver::binding::{self, BindingRequest};
use sparkid_resolver::negotiate::Rendered;
use sparkid_resolver::resolution::Resolver;
use sparkid_resolver::subchain::HOPS_HEADER;

use crate::doors::routes::{get, Routes};
use crate::edge::FastLane;
use crate::metrics::{Metrics, MetricsError, RouteMetrics};

/// The full resolution result media type.
pub const DID_RESOLUTION: &str = sparkid_resolver::negotiate::DID_RESOLUTION;

/// The route of a resolution: `/1.0/identifiers/{did or DID URL}` (also its metrics label).
pub const IDENTIFIERS_ROUTE: &str = "/1.0/identifiers/{*identifier}";

/// The routes, over the resolver.
pub fn router(resolver: Resolver) -> Routes {
    Routes::new()
        .route("/1.0/identifiers", get(identifiers).post(identifiers_post))
        .route("/1.0/identifiers/", get(identifiers).post(identifiers_post))
        .route(IDENTIFIERS_ROUTE, get(identifiers).post(identifiers_post))
        .route("/1.0/methods", get(methods))
        .route("/1.0/properties", get(properties))
        .route("/1.0/testIdentifiers", get(test_identifiers))
        .with_state(resolver)
}

/// A JSON answer with its status and media type.
pub fn json_response(status: StatusCode, content_type: &str, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, content_type.to_string())],
        body.to_string(),
    )
        .into_response()
}

/// The `Accept` header's values, joined with `,` (values that are not visible ASCII left out).
fn accept_of(headers: &HeaderMap) -> String {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",")
}

/// Answers one `/1.0/identifiers` request through the binding.
async fn answer(
    resolver: &Resolver,
    uri: &Uri,
    headers: &HeaderMap,
    body: Option<&[u8]>,
) -> Response {
    let accept = accept_of(headers);
    let request = BindingRequest {
        path: uri.path(),
        query: uri.query(),
        accept: &accept,
        hops: headers.get(HOPS_HEADER).and_then(|v| v.to_str().ok()),
        body,
    };
    response(binding::answer(resolver, &request).await)
}

/// The HTTP response of a rendered answer (the body is shared, not copied).
fn response(rendered: Rendered) -> Response {
    let mut response = Response::new(Body::from(rendered.body));
    *response.status_mut() =
        StatusCode::from_u16(rendered.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    if let Some(media_type) = rendered.content_type {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    }
    headers.insert(header::VARY, HeaderValue::from_static("accept"));
    if let Some(location) = rendered
        .location
        .and_then(|l| HeaderValue::from_str(&l).ok())
    {
        headers.insert(header::LOCATION, location);
    }
    response
}

/// The door's fast lane ([`FastLane`]): `GET /1.0/identifiers/{did}` for a plain did:bid whose
/// answer L1 or its answer record holds ([`binding::answer_warm`]), answered on the
/// connection's own thread before the router, with the very response the route would send
/// (status, body, `Content-Type`, `Vary`), counted and timed under the route's own label.
/// Anything else (other options, a DID URL, a miss that needs rendering, an error to word)
/// goes on to the router.
pub struct WarmLane {
    resolver: Resolver,
    metrics: RouteMetrics,
}

impl WarmLane {
    /// The lane over `resolver`, counted in `metrics`.
    pub fn new(resolver: Resolver, metrics: &Metrics) -> Result<WarmLane, MetricsError> {
        Ok(WarmLane {
            resolver,
            metrics: metrics.route(IDENTIFIERS_ROUTE)?,
        })
    }
}

impl FastLane for WarmLane {
    fn answer(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
        // The route's own match: GET and a non-empty identifier after the prefix.
        if method != Method::GET {
            return None;
        }
        let path = uri.path();
        if path.strip_prefix("/1.0/identifiers/")?.is_empty() {
            return None;
        }
        let start = std::time::Instant::now();
        let joined;
        let accept = match headers.get_all(header::ACCEPT).iter().count() {
            0 => "",
            1 => headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
            _ => {
                joined = accept_of(headers);
                &joined
            }
        };
        let request = BindingRequest {
            path,
            query: uri.query(),
            accept,
            hops: headers.get(HOPS_HEADER).and_then(|v| v.to_str().ok()),
            body: None,
        };
        let response = response(binding::answer_warm(&self.resolver, &request)?);
        self.metrics.observe(response.status(), start.elapsed());
        Some(response)
    }
}

/// `GET /1.0/identifiers/{did or DID URL}`: resolve or dereference.
async fn identifiers(State(resolver): State<Resolver>, uri: Uri, headers: HeaderMap) -> Response {
    answer(&resolver, &uri, &headers, None).await
}

/// `POST /1.0/identifiers/{did or DID URL}` with the options as a JSON object.
async fn identifiers_post(
    State(resolver): State<Resolver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(&resolver, &uri, &headers, Some(&body)).await
}

/// `GET /1.0/methods`: the DID methods answered, as a JSON array.
async fn methods(State(resolver): State<Resolver>) -> Response {
    json_response(
        StatusCode::OK,
        "application/json",
        &json!(resolver.methods()),
    )
}

/// `GET /1.0/properties`: per driver (keyed by pattern), its properties.
async fn properties(State(resolver): State<Resolver>) -> Response {
    json_response(
        StatusCode::OK,
        "application/json",
        &Value::Object(resolver.properties()),
    )
}

/// `GET /1.0/testIdentifiers`: per method, example DIDs.
async fn test_identifiers(State(resolver): State<Resolver>) -> Response {
    json_response(
        StatusCode::OK,
        "application/json",
        &Value::Object(resolver.test_identifiers(&resolver.recent_dids())),
    )
}
