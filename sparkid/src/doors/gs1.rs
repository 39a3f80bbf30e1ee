//! The GS1-Conformant Resolver door (GS1-Conformant Resolver standard 1.2.0) at the HTTP root:
//! `/{primary key AI}/{value}[/{qualifier AI}/{value}…][?query]` for every Digital Link primary
//! key of the GS1 syntax dictionary, and the resolver description file
//! `/.well-known/gs1resolver`. The answers are the GS1 bridge's (`sparkid_bridges::gs1`); this
//! file only reads HTTP and writes it, with CORS on every answer and `OPTIONS` preflights.
//!
//! Each primary key is mounted as a static first segment (`/01/{*path}`), so the root routes
//! never shadow `/1.0/…`, `/healthz`, `/metrics` or the BID protocol's `/{bid}`.

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{json, Value};
use sparkid_bridges::gs1::{Gs1Answer, Gs1Request, GS1_VOC, LINKSET_CONTEXT};
use sparkid_gs1::Dictionary;
use sparkid_resolver::bridge_source::BridgeContext;
use sparkid_resolver::gs1::Gs1Resolver;

use crate::doors::bridges::{PROBLEM_INTERNAL, PROBLEM_INVALID, PROBLEM_NOT_FOUND};
use crate::doors::routes::{get, Routes};

/// The resolver description file's path (GS1-Conformant Resolver 1.2.0: "SHALL").
pub const DESCRIPTION_PATH: &str = "/.well-known/gs1resolver";
/// The linkset media type (RFC 9264).
pub const LINKSET_MEDIA_TYPE: &str = "application/linkset+json";
/// The longest request path read; longer ones are refused before parsing.
const MAX_PATH: usize = sparkid_gs1::MAX_PATH_LEN;

/// What the handlers share.
struct Gs1Door {
    service: Gs1Resolver,
    /// The description file, rendered once.
    description: String,
}

/// The routes: one per Digital Link primary key of the dictionary, and the description file.
pub fn router(ctx: Arc<BridgeContext>) -> Routes {
    let description = description(&ctx.base_url).to_string();
    let service = Gs1Resolver::new(ctx.records.clone(), &ctx.base_url);
    let door = Arc::new(Gs1Door {
        service,
        description,
    });
    let mut routes = Routes::new();
    for key in Dictionary::embedded().primary_keys() {
        routes = routes.route(
            &format!("/{}/{{*path}}", key.code),
            get(resolve).options(preflight),
        );
    }
    routes
        .route(DESCRIPTION_PATH, get(description_file).options(preflight))
        .layer_with(|r| r.layer(Extension(door)))
}

/// The resolver description file (`resolverRoot`, `supportedPrimaryKeys`, ...).
pub fn description(base_url: &str) -> Value {
    let keys: Vec<&str> = Dictionary::embedded()
        .primary_keys()
        .map(|k| k.code.as_str())
        .collect();
    json!({
        "name": "sparkid GS1-Conformant resolver (GS1 keys bound to did:bid DIDs)",
        "resolverRoot": base_url,
        "supportedPrimaryKeys": keys,
        "supportedLinkType": [
            {"namespace": GS1_VOC, "prefix": "gs1:", "profile": "https://ref.gs1.org/voc/?show=linktypes"}
        ],
        "linkTypeDefaultCanBeLinkset": false,
        "linkTypeDefaultCanBeAll": false,
        "supportsSemanticInterpretation": false,
        "validatesAIcombinations": false,
        "jsonLdContextLocation": LINKSET_CONTEXT,
        "contact": {"fn": "sparkid operator"},
    })
}

/// CORS on every answer (GS1-Conformant Resolver 1.2.0: `Access-Control-Allow-Origin`, and
/// methods including GET, HEAD, OPTIONS).
fn cors(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Accept, Accept-Language, Content-Type"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Link, Location, Content-Type"),
    );
}

async fn preflight() -> Response {
    let mut response = (
        StatusCode::NO_CONTENT,
        [(header::ALLOW, "GET, HEAD, OPTIONS")],
    )
        .into_response();
    cors(&mut response);
    response
}

async fn description_file(Extension(door): Extension<Arc<Gs1Door>>) -> Response {
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        door.description.clone(),
    )
        .into_response();
    cors(&mut response);
    response
}

fn problem(status: StatusCode, kind: &str, title: &str, detail: String) -> Response {
    let body = json!({
        "type": kind,
        "title": title,
        "status": status.as_u16(),
        "detail": detail,
    });
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

fn wants_linkset(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains(LINKSET_MEDIA_TYPE))
}

async fn resolve(
    Extension(door): Extension<Arc<Gs1Door>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let accept_linkset = wants_linkset(&headers);
    let mut response = if uri.path().len() > MAX_PATH {
        problem(
            StatusCode::BAD_REQUEST,
            PROBLEM_INVALID,
            "The GS1 Digital Link URI is not valid.",
            format!("a GS1 Digital Link path is at most {MAX_PATH} bytes"),
        )
    } else {
        let request = Gs1Request {
            path: uri.path(),
            query: uri.query(),
            accept_linkset,
        };
        match door.service.remembered(&request) {
            Some(answer) => render(&answer),
            None => {
                let worker = door.clone();
                let answer = tokio::task::spawn_blocking(move || {
                    let request = Gs1Request {
                        path: uri.path(),
                        query: uri.query(),
                        accept_linkset,
                    };
                    worker.service.answer(&request)
                })
                .await;
                match answer {
                    Ok(Ok(answer)) => render(&answer),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "GS1 resolution failed");
                        problem(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            PROBLEM_INTERNAL,
                            "The resolver failed.",
                            e.to_string(),
                        )
                    }
                    Err(e) => problem(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        PROBLEM_INTERNAL,
                        "The resolver failed.",
                        e.to_string(),
                    ),
                }
            }
        }
    };
    // The answer depends on Accept (linkset or redirect).
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    cors(&mut response);
    response
}

fn linkset_response(status: StatusCode, linkset: &Value) -> Response {
    let context = format!(
        "<{LINKSET_CONTEXT}>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\""
    );
    let mut response = (
        status,
        [(header::CONTENT_TYPE, LINKSET_MEDIA_TYPE)],
        linkset.to_string(),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&context) {
        response.headers_mut().insert(header::LINK, value);
    }
    response
}

fn render(answer: &Gs1Answer) -> Response {
    match answer {
        Gs1Answer::Redirect { location, linkset } => {
            let mut response = StatusCode::TEMPORARY_REDIRECT.into_response();
            let link = format!("<{linkset}>; rel=\"linkset\"; type=\"{LINKSET_MEDIA_TYPE}\"");
            match HeaderValue::from_str(location) {
                Ok(value) => {
                    response.headers_mut().insert(header::LOCATION, value);
                }
                Err(_) => {
                    return problem(
                        StatusCode::BAD_REQUEST,
                        PROBLEM_INVALID,
                        "The query string cannot be passed on.",
                        "the query string makes the redirect target an invalid header".into(),
                    )
                }
            }
            if let Ok(value) = HeaderValue::from_str(&link) {
                response.headers_mut().insert(header::LINK, value);
            }
            response
        }
        Gs1Answer::Choices { linkset } => linkset_response(StatusCode::MULTIPLE_CHOICES, linkset),
        Gs1Answer::Linkset { linkset } => linkset_response(StatusCode::OK, linkset),
        Gs1Answer::Invalid { rule } => problem(
            StatusCode::BAD_REQUEST,
            PROBLEM_INVALID,
            "The GS1 Digital Link URI is not valid.",
            rule.clone(),
        ),
        Gs1Answer::NotFound { detail } => problem(
            StatusCode::NOT_FOUND,
            PROBLEM_NOT_FOUND,
            "No link is known for the GS1 key.",
            detail.clone(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_description_lists_every_primary_key_of_the_dictionary() {
        let d = description("http://h:1");
        assert_eq!(d["resolverRoot"], "http://h:1");
        let keys = d["supportedPrimaryKeys"].as_array().unwrap();
        assert!(keys.contains(&json!("01")) && keys.contains(&json!("8018")));
        assert_eq!(keys.len(), 16);
    }
}
