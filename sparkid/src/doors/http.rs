//! The HTTP door: W3C DID Resolution (`/1.0/identifiers`, `/1.0/methods`, `/1.0/properties`,
//! `/1.0/testIdentifiers`; the binding itself is [`crate::binding`]), the Universal Registrar
//! API (`/1.0/create|update|deactivate`) and `/healthz`. Handlers parse, call one service,
//! render.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use sparkid_registrar::{Function, Registrar, RegistrarRequest, RegistrarResponse};

use crate::binding;
use crate::resolution::Resolver;
use crate::routes::{get, post, Routes};

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
    /// The write paths of the hosted sub-chains, by AC code.
    pub subchain_registrars: Arc<std::collections::HashMap<sparkid_bid::AcCode, Arc<Registrar>>>,
    /// Follower mode: the sync state (for `/healthz`); writes are forwarded before they reach
    /// the handlers here (see [`crate::follow`]).
    pub follower: Option<Arc<crate::follow::Follower>>,
}

/// The routes.
pub fn router(state: AppState) -> Routes {
    Routes::new()
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
        .layer_with(|r| r.layer(DefaultBodyLimit::max(MAX_BODY)))
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
        &Value::Object(
            state
                .resolver
                .test_identifiers(&state.resolver.recent_dids()),
        ),
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
    let registrar = match registrar_for(&state, function, &request) {
        Ok(r) => r,
        Err(refusal) => return registrar_response(*refusal),
    };
    registrar_response(registrar.handle(function, request).await)
}

/// The registrar of the chain a request writes: a continued job's, else the chain of the DID
/// it names (`did`, `didDocument.id`, or `options.acCode` for a create whose document the
/// registrar makes). Namespaces are delegated on the main chain.
fn registrar_for(
    state: &AppState,
    function: Function,
    request: &RegistrarRequest,
) -> Result<Arc<Registrar>, Box<RegistrarResponse>> {
    if function == Function::Namespace || state.subchain_registrars.is_empty() {
        return Ok(state.registrar.clone());
    }
    if let Some(job) = &request.job_id {
        let owner = state.subchain_registrars.values().find(|r| r.has_job(job));
        return Ok(owner.unwrap_or(&state.registrar).clone());
    }
    let named = request.did.clone().or_else(|| {
        request
            .did_document
            .as_ref()
            .and_then(|d| d.get("id"))
            .and_then(Value::as_str)
            .map(String::from)
    });
    let ac = match named {
        Some(did) => match did.parse::<sparkid_bid::Bid>() {
            Ok(bid) => bid.ac_code(),
            // The registrar names what is wrong with the DID.
            Err(_) => return Ok(state.registrar.clone()),
        },
        None => match request.options.get("acCode").and_then(Value::as_str) {
            Some(code) => Some(code.parse::<sparkid_bid::AcCode>().map_err(|e| {
                Box::new(failed(
                    400,
                    format!("options.acCode {code:?} is not an AC code: {e}"),
                ))
            })?),
            None => None,
        },
    };
    let Some(ac) = ac else {
        return Ok(state.registrar.clone());
    };
    if let Some(registrar) = state.subchain_registrars.get(&ac) {
        return Ok(registrar.clone());
    }
    let own =
        sparkid_registrar::BidStateMachine::for_genesis(state.registrar.ledger().genesis()).ac_code;
    if own == Some(ac) {
        return Ok(state.registrar.clone());
    }
    Err(Box::new(failed(
        400,
        format!(
            "this registrar does not host sub-chain {ac}: write did:bid:{ac}:… DIDs through \
             the sub-chain's own registrar"
        ),
    )))
}

fn failed(status: u16, reason: String) -> RegistrarResponse {
    RegistrarResponse::failed(None, status, reason)
}

#[derive(serde::Deserialize)]
struct MethodQuery {
    method: Option<String>,
}

/// `?method=`, or why the query string cannot be read (such as `method` given twice): the
/// caller answers that as a registrar `failed` state, not as axum's plain-text rejection.
fn method_query(
    query: Result<Query<MethodQuery>, QueryRejection>,
) -> Result<Option<String>, String> {
    query.map(|Query(q)| q.method).map_err(|e| {
        format!(
            "the query string is not ?method=<method>: {}",
            e.body_text()
        )
    })
}

async fn create(
    State(state): State<AppState>,
    query: Result<Query<MethodQuery>, QueryRejection>,
    body: Bytes,
) -> Response {
    match method_query(query) {
        Err(reason) => registrar_response(failed(400, reason)),
        Ok(None) => registrar_response(failed(400, "create needs ?method=bid".into())),
        Ok(Some(m)) => registrar_call(state, Function::Create, Some(&m), body).await,
    }
}

async fn update(
    State(state): State<AppState>,
    query: Result<Query<MethodQuery>, QueryRejection>,
    body: Bytes,
) -> Response {
    match method_query(query) {
        Err(reason) => registrar_response(failed(400, reason)),
        Ok(m) => registrar_call(state, Function::Update, m.as_deref(), body).await,
    }
}

async fn deactivate(
    State(state): State<AppState>,
    query: Result<Query<MethodQuery>, QueryRejection>,
    body: Bytes,
) -> Response {
    match method_query(query) {
        Err(reason) => registrar_response(failed(400, reason)),
        Ok(m) => registrar_call(state, Function::Deactivate, m.as_deref(), body).await,
    }
}

/// Delegate, bind, unbind: the registrar's namespace operations, in the same job protocol.
async fn namespaces(State(state): State<AppState>, body: Bytes) -> Response {
    registrar_call(state, Function::Namespace, None, body).await
}

async fn healthz(State(state): State<AppState>) -> Response {
    let head = state.resolver.ledger().head();
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
    json_response(status, "application/json", &body)
}
