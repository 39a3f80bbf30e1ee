//! The bridges over HTTP: `GET /1.0/vaa/{code}` (a VAA code's record and DID) and the Handle
//! REST API `GET /api/handles/{handle}` (Handle.Net's JSON shape and status codes).

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery};
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{json, Value};
use sparkid_bridges::handle::{rest_json, rest_status, wire, HandleAnswer, HandleBridge};
use sparkid_bridges::vaa::{VaaBridge, VaaOutcome};
use sparkid_bridges::{BridgeError, RecordSource};

use sparkid_resolver::bridge_source::BridgeContext;

use crate::doors::routes::{get, Routes};

/// Problem type: the identifier breaks its grammar.
pub const PROBLEM_INVALID: &str = "urn:sparkid:problem:invalid-identifier";
/// Problem type: nothing is bound to the identifier here.
pub const PROBLEM_NOT_FOUND: &str = "urn:sparkid:problem:not-found";
/// Problem type: another chain holds the identifier.
pub const PROBLEM_REFERRAL: &str = "urn:sparkid:problem:referral";
/// Problem type: the resolver failed.
pub const PROBLEM_INTERNAL: &str = "urn:sparkid:problem:internal";

/// The routes, for merging into the daemon's router.
pub fn router(ctx: Arc<BridgeContext>) -> Routes {
    Routes::new()
        .route("/1.0/vaa/{code}", get(vaa))
        .route("/api/handles/{*handle}", get(handle))
        .layer_with(|r| r.layer(Extension(ctx)))
}

pub(crate) fn problem(
    status: StatusCode,
    kind: &str,
    title: &str,
    detail: String,
    extra: Value,
) -> Response {
    let mut body = json!({
        "type": kind,
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    if let (Some(map), Value::Object(extra)) = (body.as_object_mut(), extra) {
        map.extend(extra);
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

pub(crate) fn bridge_problem(error: &BridgeError) -> Response {
    match error {
        BridgeError::Invalid { .. } => problem(
            StatusCode::BAD_REQUEST,
            PROBLEM_INVALID,
            "The identifier is not valid.",
            error.to_string(),
            Value::Null,
        ),
        _ => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            PROBLEM_INTERNAL,
            "The resolver failed.",
            error.to_string(),
            Value::Null,
        ),
    }
}

/// Runs a blocking lookup (ledger and cache reads) off the I/O threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BridgeError> + Send + 'static,
) -> Result<T, BridgeError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(BridgeError::Source(e.to_string())))
}

/// Resolves `code` on this chain, or on a sub-chain this daemon hosts when the company prefix
/// names it.
fn lookup_vaa(ctx: &BridgeContext, code: &str) -> Result<VaaOutcome, BridgeError> {
    let outcome = VaaBridge.lookup(&ctx.records, code, ctx.chain.as_deref())?;
    if let VaaOutcome::Elsewhere { chain, .. } = &outcome {
        if let Some((_, records)) = ctx.subchains.iter().find(|(ac, _)| ac == chain) {
            let source: &dyn RecordSource = records;
            return VaaBridge.lookup(source, code, Some(chain));
        }
    }
    Ok(outcome)
}

async fn vaa(
    Extension(ctx): Extension<Arc<BridgeContext>>,
    code: Result<Path<String>, PathRejection>,
) -> Response {
    // A path axum cannot decode (not UTF-8) is a bad identifier, answered as a problem like any
    // other, not with axum's plain-text rejection.
    let code = match code {
        Ok(Path(code)) => code,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                PROBLEM_INVALID,
                "The identifier is not valid.",
                e.body_text(),
                Value::Null,
            )
        }
    };
    let lookup_ctx = ctx.clone();
    let outcome = match blocking(move || lookup_vaa(&lookup_ctx, &code)).await {
        Ok(o) => o,
        Err(e) => return bridge_problem(&e),
    };
    match outcome {
        VaaOutcome::Bound(record) => {
            let mut body = serde_json::to_value(&record).unwrap_or(Value::Null);
            body["didResolution"] =
                json!(format!("{}/1.0/identifiers/{}", ctx.base_url, record.did));
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        VaaOutcome::NotBound {
            code,
            company_prefix,
        } => problem(
            StatusCode::NOT_FOUND,
            PROBLEM_NOT_FOUND,
            "The VAA code is not bound.",
            format!(
                "{code} falls under the company prefix {company_prefix}, which binds no DID to it"
            ),
            json!({ "code": code, "companyPrefix": company_prefix }),
        ),
        VaaOutcome::NoPrefix { code } => problem(
            StatusCode::NOT_FOUND,
            PROBLEM_NOT_FOUND,
            "No company prefix covers the VAA code.",
            format!("no delegated company prefix covers {code}"),
            json!({ "code": code }),
        ),
        VaaOutcome::Elsewhere {
            code,
            company_prefix,
            chain,
            endpoints,
        } => {
            let extra = json!({
                "code": code, "companyPrefix": company_prefix, "chain": chain, "endpoints": endpoints,
            });
            match endpoints.first() {
                Some(base) => {
                    let location = format!("{}/1.0/vaa/{code}", base.trim_end_matches('/'));
                    let mut response = problem(
                        StatusCode::SEE_OTHER,
                        PROBLEM_REFERRAL,
                        "The VAA code is held by another chain.",
                        format!("the items of {company_prefix} live on chain {chain}: ask {location}"),
                        extra,
                    );
                    if let Ok(value) = header::HeaderValue::from_str(&location) {
                        response.headers_mut().insert(header::LOCATION, value);
                    }
                    response
                }
                None => problem(
                    StatusCode::NOT_FOUND,
                    PROBLEM_REFERRAL,
                    "The VAA code is held by another chain.",
                    format!(
                        "the items of {company_prefix} live on chain {chain}, for which this ledger names no resolver endpoint"
                    ),
                    extra,
                ),
            }
        }
    }
}

/// `index` and `type` filters (repeatable) and `pretty`, from a raw query string.
struct HandleQuery {
    indexes: Vec<u32>,
    types: Vec<String>,
    pretty: bool,
}

fn parse_query(raw: Option<&str>) -> Result<HandleQuery, String> {
    let mut q = HandleQuery {
        indexes: Vec::new(),
        types: Vec::new(),
        pretty: false,
    };
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value)?;
        match key {
            "index" => q.indexes.push(
                value
                    .parse()
                    .map_err(|_| format!("index {value:?} is not a number"))?,
            ),
            "type" => q.types.push(value),
            "pretty" => q.pretty = matches!(value.as_str(), "" | "true" | "yes"),
            _ => {}
        }
        if q.indexes.len() > wire::MAX_FILTERS || q.types.len() > wire::MAX_FILTERS {
            return Err(format!(
                "at most {} index and type filters",
                wire::MAX_FILTERS
            ));
        }
    }
    Ok(q)
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent escape in {text:?}"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("{text:?} is not UTF-8"))
}

fn handle_response(handle: &str, answer: &HandleAnswer, pretty: bool) -> Response {
    let status =
        StatusCode::from_u16(rest_status(answer.code)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = rest_json(handle, answer);
    let text = if pretty {
        serde_json::to_string_pretty(&body).unwrap_or_default()
    } else {
        body.to_string()
    };
    (
        status,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        text,
    )
        .into_response()
}

async fn handle(
    Extension(ctx): Extension<Arc<BridgeContext>>,
    handle: Result<Path<String>, PathRejection>,
    uri: Uri,
    RawQuery(query): RawQuery,
) -> Response {
    // A Handle that is not UTF-8 once decoded: a protocol error in the REST API's JSON (echoing
    // the handle as sent), not axum's plain-text rejection.
    let handle = match handle {
        Ok(Path(handle)) => handle,
        Err(e) => {
            let raw = uri
                .path()
                .strip_prefix("/api/handles/")
                .unwrap_or(uri.path());
            let answer = HandleAnswer {
                code: wire::response_code::PROTOCOL_ERROR,
                values: Vec::new(),
                message: Some(e.body_text()),
            };
            return handle_response(raw, &answer, false);
        }
    };
    let query = match parse_query(query.as_deref()) {
        Ok(q) => q,
        Err(message) => {
            let answer = HandleAnswer {
                code: wire::response_code::PROTOCOL_ERROR,
                values: Vec::new(),
                message: Some(message),
            };
            return handle_response(&handle, &answer, false);
        }
    };
    let pretty = query.pretty;
    let name = handle.clone();
    let answer = tokio::task::spawn_blocking(move || {
        HandleBridge.answer_with_site(
            &ctx.records,
            name.as_bytes(),
            &query.indexes,
            &query.types,
            &ctx.base_url,
            ctx.handle_site.as_deref(),
        )
    })
    .await
    .unwrap_or_else(|e| HandleAnswer {
        code: wire::response_code::ERROR,
        values: Vec::new(),
        message: Some(e.to_string()),
    });
    handle_response(&handle, &answer, pretty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_repeat_index_and_type_and_decode_escapes() {
        let q = parse_query(Some("index=1&type=URL&index=2&type=HS%5FSITE&auth&pretty")).unwrap();
        assert_eq!(q.indexes, [1, 2]);
        assert_eq!(q.types, ["URL", "HS_SITE"]);
        assert!(q.pretty);
        assert!(parse_query(Some("index=x")).is_err());
        assert!(parse_query(Some("type=%zz")).is_err());
        assert!(parse_query(None).unwrap().indexes.is_empty());
    }
}
