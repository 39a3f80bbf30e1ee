//! The HTTP door: W3C DID Resolution (`/1.0/identifiers`, `/1.0/methods`, `/1.0/properties`,
//! `/1.0/testIdentifiers`; the binding itself is [`crate::binding`]), the Universal Registrar
//! API (`/1.0/create|update|deactivate`) and `/healthz`. Handlers parse, call one service,
//! render.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use sparkid_registrar::{Function, Registrar, RegistrarRequest, RegistrarResponse};

use crate::binding;
use crate::resolution::Resolver;

/// The largest request body, in bytes.
pub const MAX_BODY: usize = 256 * 1024;
/// The full resolution result media type.
pub const DID_RESOLUTION: &str = crate::negotiate::DID_RESOLUTION;

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct AppState {
    /// The read path.
    pub resolver: Resolver,
    /// The write path.
    pub registrar: Arc<Registrar>,
}

/// The router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/1.0/identifiers", get(identifiers).post(identifiers_post))
        .route("/1.0/identifiers/", get(identifiers).post(identifiers_post))
        .route(
            "/1.0/identifiers/{*identifier}",
            get(identifiers).post(identifiers_post),
        )
        .route("/1.0/methods", get(methods))
        .route("/1.0/properties", get(properties))
        .route("/1.0/testIdentifiers", get(test_identifiers))
        .route("/1.0/create", post(create))
        .route("/1.0/update", post(update))
        .route("/1.0/deactivate", post(deactivate))
        .route("/1.0/namespaces", post(namespaces))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn json_response(status: StatusCode, content_type: &str, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, content_type.to_string())],
        body.to_string(),
    )
        .into_response()
}

/// `GET /1.0/identifiers/{did or DID URL}`: resolve or dereference.
async fn identifiers(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    binding::identifiers(&state.resolver, &uri, &headers, None).await
}

/// `POST /1.0/identifiers/{did or DID URL}` with the options as a JSON object.
async fn identifiers_post(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    binding::identifiers(&state.resolver, &uri, &headers, Some(&body)).await
}

/// `GET /1.0/methods`: the DID methods answered, as a JSON array.
async fn methods(State(state): State<AppState>) -> Response {
    json_response(
        StatusCode::OK,
        "application/json",
        &json!(state.resolver.methods()),
    )
}

/// `GET /1.0/properties`: per driver (keyed by pattern), its properties.
async fn properties(State(state): State<AppState>) -> Response {
    json_response(
        StatusCode::OK,
        "application/json",
        &Value::Object(state.resolver.properties()),
    )
}

/// `GET /1.0/testIdentifiers`: per method, example DIDs.
async fn test_identifiers(State(state): State<AppState>) -> Response {
    json_response(
        StatusCode::OK,
        "application/json",
        &Value::Object(state.resolver.test_identifiers(&[])),
    )
}

fn registrar_response(response: RegistrarResponse) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_value(&response).unwrap_or(Value::Null);
    json_response(status, "application/json", &body)
}

async fn registrar_call(
    state: AppState,
    function: Function,
    method: Option<&str>,
    body: Bytes,
) -> Response {
    if let Some(method) = method {
        if method != "bid" {
            return registrar_response(failed(
                400,
                format!("method {method:?} is not supported: this registrar writes did:bid"),
            ));
        }
    }
    let request: RegistrarRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return registrar_response(failed(
                400,
                format!("the request body is not a registrar request: {e}"),
            ))
        }
    };
    registrar_response(state.registrar.handle(function, request).await)
}

fn failed(status: u16, reason: String) -> RegistrarResponse {
    RegistrarResponse::failed(None, status, reason)
}

#[derive(serde::Deserialize)]
struct MethodQuery {
    method: Option<String>,
}

async fn create(
    State(state): State<AppState>,
    Query(q): Query<MethodQuery>,
    body: Bytes,
) -> Response {
    match q.method.as_deref() {
        None => registrar_response(failed(400, "create needs ?method=bid".into())),
        Some(m) => registrar_call(state, Function::Create, Some(m), body).await,
    }
}

async fn update(
    State(state): State<AppState>,
    Query(q): Query<MethodQuery>,
    body: Bytes,
) -> Response {
    registrar_call(state, Function::Update, q.method.as_deref(), body).await
}

async fn deactivate(
    State(state): State<AppState>,
    Query(q): Query<MethodQuery>,
    body: Bytes,
) -> Response {
    registrar_call(state, Function::Deactivate, q.method.as_deref(), body).await
}

/// Delegate, bind, unbind: the registrar's namespace operations, in the same job protocol.
async fn namespaces(State(state): State<AppState>, body: Bytes) -> Response {
    registrar_call(state, Function::Namespace, None, body).await
}

async fn healthz(State(state): State<AppState>) -> Response {
    let head = state.resolver.ledger().head();
    json_response(
        StatusCode::OK,
        "application/json",
        &json!({ "status": "ok", "chainId": head.header.chain_id, "height": head.header.height }),
    )
}
