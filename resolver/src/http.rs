//! The HTTP door: W3C DID Resolution (`/1.0/identifiers`), the Universal Registrar API
//! (`/1.0/create|update|deactivate`) and `/healthz`. Handlers parse, call one service, render.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use sparkid_registrar::{Function, Registrar, RegistrarRequest, RegistrarResponse};

use crate::resolution::{ResolveError, Resolver};

/// The largest request body, in bytes.
pub const MAX_BODY: usize = 256 * 1024;
/// The full resolution result media type.
pub const DID_RESOLUTION: &str = "application/did-resolution";

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
        .route("/1.0/identifiers/{*identifier}", get(resolve))
        .route("/1.0/create", post(create))
        .route("/1.0/update", post(update))
        .route("/1.0/deactivate", post(deactivate))
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

fn problem(error: &ResolveError) -> (StatusCode, Value) {
    let status = match error {
        ResolveError::InvalidDid(_) => StatusCode::BAD_REQUEST,
        ResolveError::NotFound(_) => StatusCode::NOT_FOUND,
        ResolveError::MethodNotSupported(_) => StatusCode::NOT_IMPLEMENTED,
        ResolveError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let title = match error {
        ResolveError::InvalidDid(_) => "The DID is not valid.",
        ResolveError::NotFound(_) => "The DID was not found.",
        ResolveError::MethodNotSupported(_) => "The DID method is not supported.",
        ResolveError::Internal(_) => "The resolver failed.",
    };
    let body = json!({
        "didDocument": null,
        "didResolutionMetadata": { "error": {
            "type": format!("https://www.w3.org/ns/did#{}", error.code()),
            "title": title,
            "detail": error.to_string(),
        }},
        "didDocumentMetadata": {},
    });
    (status, body)
}

/// The bare-document media type the client asked for, if it asked for one.
fn document_media_type(headers: &HeaderMap) -> Option<&'static str> {
    let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
    for item in accept.split(',') {
        let media = item.split(';').next().unwrap_or("").trim();
        match media {
            "application/did+ld+json" => return Some("application/did+ld+json"),
            "application/did+json" => return Some("application/did+json"),
            "application/did" => return Some("application/did"),
            _ => {}
        }
    }
    None
}

async fn resolve(
    State(state): State<AppState>,
    Path(identifier): Path<String>,
    headers: HeaderMap,
) -> Response {
    let resolver = state.resolver.clone();
    let did = identifier.clone();
    let result = match tokio::task::spawn_blocking(move || resolver.resolve(&did)).await {
        Ok(r) => r,
        Err(e) => Err(ResolveError::Internal(e.to_string())),
    };
    match result {
        Err(error) => {
            let (status, body) = problem(&error);
            json_response(status, DID_RESOLUTION, &body)
        }
        Ok(resolved) => {
            let record = &resolved.record;
            let mut metadata = json!({
                "created": record.created,
                "updated": record.updated,
                "versionId": record.version_id.to_string(),
                "deactivated": record.deactivated,
            });
            if record.deactivated {
                metadata["deactivated"] = json!(true);
                let body = json!({
                    "didDocument": null,
                    "didResolutionMetadata": { "contentType": "application/did" },
                    "didDocumentMetadata": metadata,
                });
                return json_response(StatusCode::GONE, DID_RESOLUTION, &body);
            }
            let document = resolved.did_core_document().unwrap_or(Value::Null);
            if let Some(media) = document_media_type(&headers) {
                return json_response(StatusCode::OK, media, &document);
            }
            let body = json!({
                "didDocument": document,
                "didResolutionMetadata": { "contentType": "application/did" },
                "didDocumentMetadata": metadata,
            });
            json_response(StatusCode::OK, DID_RESOLUTION, &body)
        }
    }
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

async fn healthz(State(state): State<AppState>) -> Response {
    let head = state.resolver.ledger().head();
    json_response(
        StatusCode::OK,
        "application/json",
        &json!({ "status": "ok", "chainId": head.header.chain_id, "height": head.header.height }),
    )
}
