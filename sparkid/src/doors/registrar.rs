//! The Universal Registrar door: `POST /1.0/create|update|deactivate` and the namespace
//! operations (`POST /1.0/namespaces`), and the one-step submission of a transaction its client
//! signed (`POST /1.0/transactions`), each routed to the registrar of the chain it writes
//! (the main chain's or a hosted sub-chain's).
//!
//! The client a request counts against (pending jobs are capped per client) is the peer's IP
//! address, from the connection; a daemon served without connection info counts every request
//! as one unknown client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::BytesRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::Value;
use sparkid_bid::AcCode;
use sparkid_ledger::Transaction;
use sparkid_registrar::{Client, Function, Registrar, RegistrarRequest, RegistrarResponse};

use crate::doors::routes::{post, Routes};

/// The largest request body, in bytes.
pub const MAX_BODY: usize = 256 * 1024;

/// The registrars this daemon writes through.
#[derive(Clone)]
pub struct Registrars {
    /// The main chain's.
    pub main: Arc<Registrar>,
    /// The hosted sub-chains', by AC code.
    pub subchains: Arc<HashMap<AcCode, Arc<Registrar>>>,
}

/// The routes.
pub fn router(registrars: Registrars) -> Routes {
    Routes::new()
        .route("/1.0/create", post(create))
        .route("/1.0/update", post(update))
        .route("/1.0/deactivate", post(deactivate))
        .route("/1.0/namespaces", post(namespaces))
        .route("/1.0/transactions", post(transactions))
        .layer_with(|r| r.layer(DefaultBodyLimit::max(MAX_BODY)))
        .with_state(registrars)
}

fn registrar_response(response: RegistrarResponse) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // Written straight from the struct: no JSON tree built and walked again per write.
    let body = serde_json::to_vec(&response).unwrap_or_else(|_| b"null".to_vec());
    let mut answer = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response();
    if let Some(after) = response.retry_after {
        // Whole seconds, rounded up: retrying a little late is better than a little early.
        let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
        answer
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    answer
}

/// The client a request counts against: its peer's address.
type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

fn client_of(peer: Peer) -> Client {
    peer.map_or_else(Client::unknown, |Extension(ConnectInfo(addr))| {
        Client::from_ip(addr.ip())
    })
}

/// The request body, or its refusal: a body over MAX_BODY (or one that breaks off) is answered
/// in the registrar's own shape, not axum's plain-text rejection.
fn read_body(body: Result<Bytes, BytesRejection>) -> Result<Bytes, Box<Response>> {
    body.map_err(|rejection| {
        Box::new(if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            registrar_response(failed(
                413,
                format!("the request body is over {MAX_BODY} bytes"),
            ))
        } else {
            registrar_response(failed(
                rejection.status().as_u16(),
                format!(
                    "the request body could not be read: {}",
                    rejection.body_text()
                ),
            ))
        })
    })
}

async fn registrar_call(
    state: Registrars,
    client: Client,
    function: Function,
    method: Option<&str>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match read_body(body) {
        Ok(body) => body,
        Err(refusal) => return *refusal,
    };
    if let Some(method) = method {
        if method != "bid" {
            return registrar_response(failed(
                400,
                format!("method {method:?} is not supported: this registrar writes did:bid"),
            ));
        }
    }
    // An object, and nothing else: serde reads a struct from a JSON array too (its members in
    // order), which would make `[null, null]` an empty request that creates a DID.
    let request: RegistrarRequest = match serde_json::from_slice::<Value>(&body) {
        Ok(value @ Value::Object(_)) => match serde_json::from_value(value) {
            Ok(r) => r,
            Err(e) => {
                return registrar_response(failed(
                    400,
                    format!("the request body is not a registrar request: {e}"),
                ))
            }
        },
        Ok(other) => {
            return registrar_response(failed(
                400,
                format!(
                    "the request body is not a registrar request: a JSON {}, not an object",
                    json_type(&other)
                ),
            ))
        }
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
    registrar_response(registrar.handle_from(client, function, request).await)
}

/// The JSON type of a value, as a refusal names it.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The registrar of the chain a request writes: a continued job's, else the chain of the DID
/// it names (`did`, `didDocument.id`, or `options.acCode` for a create whose document the
/// registrar makes). Namespaces are delegated on the main chain.
fn registrar_for(
    state: &Registrars,
    function: Function,
    request: &RegistrarRequest,
) -> Result<Arc<Registrar>, Box<RegistrarResponse>> {
    if function == Function::Namespace || state.subchains.is_empty() {
        return Ok(state.main.clone());
    }
    if let Some(job) = &request.job_id {
        let owner = state.subchains.values().find(|r| r.has_job(job));
        return Ok(owner.unwrap_or(&state.main).clone());
    }
    let ac = match request.named_did() {
        Some(did) => match did.parse::<sparkid_bid::Bid>() {
            Ok(bid) => bid.ac_code(),
            // The registrar names what is wrong with the DID.
            Err(_) => return Ok(state.main.clone()),
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
        return Ok(state.main.clone());
    };
    if let Some(registrar) = state.subchains.get(&ac) {
        return Ok(registrar.clone());
    }
    let own =
        sparkid_registrar::BidStateMachine::for_genesis(state.main.ledger().genesis()).ac_code;
    if own == Some(ac) {
        return Ok(state.main.clone());
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
    State(state): State<Registrars>,
    peer: Peer,
    query: Result<Query<MethodQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match method_query(query) {
        Err(reason) => registrar_response(failed(400, reason)),
        Ok(None) => registrar_response(failed(400, "create needs ?method=bid".into())),
        Ok(Some(m)) => {
            registrar_call(state, client_of(peer), Function::Create, Some(&m), body).await
        }
    }
}

async fn update(
    State(state): State<Registrars>,
    peer: Peer,
    query: Result<Query<MethodQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match method_query(query) {
        Err(reason) => registrar_response(failed(400, reason)),
        Ok(m) => registrar_call(state, client_of(peer), Function::Update, m.as_deref(), body).await,
    }
}

async fn deactivate(
    State(state): State<Registrars>,
    peer: Peer,
    query: Result<Query<MethodQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match method_query(query) {
        Err(reason) => registrar_response(failed(400, reason)),
        Ok(m) => {
            let client = client_of(peer);
            registrar_call(state, client, Function::Deactivate, m.as_deref(), body).await
        }
    }
}

/// Delegate, bind, unbind: the registrar's namespace operations, in the same job protocol.
async fn namespaces(
    State(state): State<Registrars>,
    peer: Peer,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    registrar_call(state, client_of(peer), Function::Namespace, None, body).await
}

/// `POST /1.0/transactions`: a transaction its client built and signed (`{"body", "signature"}`,
/// as `signingRequest0.payload` shows a body), submitted in one step as BIF's
/// `submitTransaction` is; answered as a registrar answers, `finished` once its block is durable.
/// It goes to the registrar of the chain its `body.chainId` names.
async fn transactions(
    State(state): State<Registrars>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match read_body(body) {
        Ok(body) => body,
        Err(refusal) => return *refusal,
    };
    // An object only: serde would read the struct from a JSON array too.
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return registrar_response(failed(
            400,
            "the request body is not a signed transaction: a JSON object \
             {\"body\": {...}, \"signature\": \"...\"} is expected"
                .into(),
        ));
    }
    let tx: Transaction = match serde_json::from_slice(&body) {
        Ok(tx) => tx,
        Err(e) => {
            return registrar_response(failed(
                400,
                format!("the request body is not a signed transaction: {e}"),
            ))
        }
    };
    let registrar = state
        .subchains
        .values()
        .find(|r| r.ledger().genesis().chain_id == tx.body.chain_id)
        .unwrap_or(&state.main)
        .clone();
    registrar_response(registrar.submit_signed(tx).await)
}
