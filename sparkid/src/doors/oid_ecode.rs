//! The OID and Ecode bridges over HTTP: `GET /1.0/oid/{dotted}` and `GET /1.0/ecode/{code}`,
//! each answering the identifier's binding record and the DID it names, in the VAA door's
//! shape (no standard HTTP API exists for either system). Errors are problem documents
//! (RFC 9457) naming the broken rule: 400 for a malformed identifier, 404 when nothing is
//! bound. A V0 Ecode is a GS1 key (`spec/ecode.md`): it is answered from that key's binding.

use std::sync::Arc;

use axum::extract::rejection::PathRejection;
use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use serde_json::{json, Value};
use sparkid_bridges::ecode::{self, EcodeBridge};
use sparkid_bridges::gs1::Gs1Bridge;
use sparkid_bridges::oid::OidBridge;
use sparkid_bridges::record::Lookup;
use sparkid_bridges::Bridge;
use sparkid_resolver::bridge_source::BridgeContext;
use tracing::debug;

use crate::doors::bridges::{
    blocking, bridge_problem, problem, PROBLEM_INVALID, PROBLEM_NOT_FOUND,
};
use crate::doors::routes::{get, Routes};

/// The routes, for merging into the daemon's router.
pub fn router(ctx: Arc<BridgeContext>) -> Routes {
    Routes::new()
        .route("/1.0/oid/{dotted}", get(oid))
        .route("/1.0/ecode/{code}", get(ecode))
        .layer_with(|r| r.layer(Extension(ctx)))
}

async fn oid(
    Extension(ctx): Extension<Arc<BridgeContext>>,
    dotted: Result<Path<String>, PathRejection>,
) -> Response {
    answer(ctx, &OidBridge, "OID", dotted).await
}

async fn ecode(
    Extension(ctx): Extension<Arc<BridgeContext>>,
    code: Result<Path<String>, PathRejection>,
) -> Response {
    if let Ok(Path(v0)) = &code {
        if v0.starts_with('0') {
            return ecode_v0(ctx, v0.clone()).await;
        }
    }
    answer(ctx, &EcodeBridge, "Ecode", code).await
}

/// A V0 Ecode: the GS1 key it stands for, answered from that key's binding (exactly: a V0
/// code names a GTIN, with no qualifiers to walk up). The record is the GS1 binding's, with
/// `system` `ecode`, the code as `identifier`, its key as `gs1` and `version` `V0`; `uri` stays
/// the GS1 alias, which is what the DID lists.
async fn ecode_v0(ctx: Arc<BridgeContext>, code: String) -> Response {
    let gs1 = match sparkid_registrar::ecode::v0_gs1_path(&code) {
        Ok(path) => path,
        Err(e) => {
            let e = sparkid_bridges::BridgeError::Invalid {
                system: ecode::SYSTEM,
                rule: e.to_string(),
            };
            return bridge_problem(&e);
        }
    };
    let lookup_ctx = ctx.clone();
    let key = gs1.clone();
    let outcome = match blocking(move || {
        sparkid_bridges::record::lookup(&Gs1Bridge, &lookup_ctx.records, &key)
    })
    .await
    {
        Ok(o) => o,
        Err(e) => return bridge_problem(&e),
    };
    match outcome {
        Lookup::Bound(record) => {
            let mut body = serde_json::to_value(&record).unwrap_or(Value::Null);
            body["system"] = json!(ecode::SYSTEM);
            body["identifier"] = json!(code);
            body["gs1"] = json!(gs1);
            body["version"] = json!("V0");
            body["didResolution"] = json!(format!(
                "{}/1.0/identifiers/{}",
                ctx.base_url.trim_end_matches('/'),
                record.did
            ));
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        Lookup::NotBound { namespace, .. } => problem(
            StatusCode::NOT_FOUND,
            PROBLEM_NOT_FOUND,
            "The Ecode is not bound.",
            format!("the V0 Ecode {code} is the GS1 key {gs1}, which falls under the GS1 Company Prefix {namespace} and is not bound"),
            json!({ "identifier": code, "gs1": gs1, "namespace": namespace }),
        ),
        Lookup::NoNamespace { .. } => problem(
            StatusCode::NOT_FOUND,
            PROBLEM_NOT_FOUND,
            "No namespace covers the Ecode.",
            format!("the V0 Ecode {code} is the GS1 key {gs1}, and no delegated GS1 Company Prefix covers it"),
            json!({ "identifier": code, "gs1": gs1 }),
        ),
    }
}

/// Looks `identifier` up with `bridge` (`OidBridge` or `EcodeBridge`, both stateless) and
/// renders the outcome; `noun` is the system's name in titles.
async fn answer<B: Bridge + Copy + 'static>(
    ctx: Arc<BridgeContext>,
    bridge: &B,
    noun: &'static str,
    identifier: Result<Path<String>, PathRejection>,
) -> Response {
    // A path axum cannot decode (not UTF-8) is a bad identifier, answered as a problem.
    let identifier = match identifier {
        Ok(Path(identifier)) => identifier,
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
    let bridge = *bridge;
    let lookup_ctx = ctx.clone();
    let outcome = match blocking(move || {
        sparkid_bridges::record::lookup(&bridge, &lookup_ctx.records, &identifier)
    })
    .await
    {
        Ok(o) => o,
        Err(e) => {
            debug!(system = bridge.system(), error = %e, "bridge lookup refused");
            return bridge_problem(&e);
        }
    };
    match outcome {
        Lookup::Bound(record) => {
            let mut body = serde_json::to_value(&record).unwrap_or(Value::Null);
            body["didResolution"] = json!(format!(
                "{}/1.0/identifiers/{}",
                ctx.base_url.trim_end_matches('/'),
                record.did
            ));
            if bridge.system() == ecode::SYSTEM {
                body["version"] = json!(ecode::version(&record.identifier));
            }
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
        Lookup::NotBound {
            identifier,
            namespace,
        } => problem(
            StatusCode::NOT_FOUND,
            PROBLEM_NOT_FOUND,
            &format!("The {noun} is not bound."),
            format!("{identifier} falls under the namespace {namespace}, which binds no DID to it"),
            json!({ "identifier": identifier, "namespace": namespace }),
        ),
        Lookup::NoNamespace { identifier } => problem(
            StatusCode::NOT_FOUND,
            PROBLEM_NOT_FOUND,
            &format!("No namespace covers the {noun}."),
            format!(
                "no delegated {} namespace covers {identifier}",
                bridge.system()
            ),
            json!({ "identifier": identifier }),
        ),
    }
}
