//! The verifier door, in the W3C VC API's shape: `POST /credentials/verify` and
//! `POST /presentations/verify` over [`sparkid_verifier::Verifier`].
//!
//! A verified credential answers 200 with `{"verified": true, "checks": [...], "warnings": [],
//! "errors": []}`; one that does not verify answers 400 with the same shape, `verified: false`
//! and a problem (RFC 9457 details typed with the VC Data Model's error URLs, naming the
//! `check`) per failed check. A request that cannot be read answers 400 (413 over
//! [`MAX_REQUEST_BYTES`]) with one problem details object saying what is wrong.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus::{IntCounterVec, Opts, Registry};
use sparkid_verifier::{Outcome, Problem, Verifier, MAX_REQUEST_BYTES};

use crate::doors::routes::{post, Routes};

/// The door's state: the verifier and its counters.
#[derive(Clone)]
struct Door {
    verifier: Verifier,
    verifications: IntCounterVec,
}

/// The routes, over `verifier`; `sparkid_verifications_total{kind, result}` is registered in
/// `registry`.
pub fn router(verifier: Verifier, registry: &Registry) -> Result<Routes, prometheus::Error> {
    let verifications = IntCounterVec::new(
        Opts::new(
            "sparkid_verifications_total",
            "Verification requests by kind (credential, presentation) and result (verified, \
             failed, refused).",
        ),
        &["kind", "result"],
    )?;
    registry.register(Box::new(verifications.clone()))?;
    Ok(Routes::new()
        .route("/credentials/verify", post(verify_credential))
        .route("/presentations/verify", post(verify_presentation))
        .layer_with(|r| r.layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES)))
        .with_state(Door {
            verifier,
            verifications,
        }))
}

async fn verify_credential(
    State(door): State<Door>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return refused(&door, "credential", rejection),
    };
    let result = door.verifier.verify_credential(&body).await;
    answer(&door, "credential", result)
}

async fn verify_presentation(
    State(door): State<Door>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return refused(&door, "presentation", rejection),
    };
    let result = door.verifier.verify_presentation(&body).await;
    answer(&door, "presentation", result)
}

fn answer(door: &Door, kind: &str, result: Result<Outcome, Problem>) -> Response {
    match result {
        Ok(outcome) => {
            let (status, label) = if outcome.verified {
                (StatusCode::OK, "verified")
            } else {
                (StatusCode::BAD_REQUEST, "failed")
            };
            door.verifications.with_label_values(&[kind, label]).inc();
            tracing::debug!(
                kind,
                verified = outcome.verified,
                errors = outcome.errors.len(),
                "verification"
            );
            json(status, serde_json::to_string(&outcome).unwrap_or_default())
        }
        Err(problem) => {
            door.verifications
                .with_label_values(&[kind, "refused"])
                .inc();
            let status = if problem.kind == "about:blank" {
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::BAD_REQUEST
            };
            problem_response(status, &problem)
        }
    }
}

/// A body that could not be read: too large (413), or not read at all (400).
fn refused(door: &Door, kind: &str, rejection: BytesRejection) -> Response {
    door.verifications
        .with_label_values(&[kind, "refused"])
        .inc();
    let status = rejection.status();
    let detail = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!("the request body is over {MAX_REQUEST_BYTES} bytes, the most read here")
    } else {
        format!("the request body cannot be read: {}", rejection.body_text())
    };
    let problem = Problem::new(
        sparkid_verifier::outcome::types::PARSING_ERROR,
        None,
        detail,
    );
    problem_response(status, &problem)
}

fn problem_response(status: StatusCode, problem: &Problem) -> Response {
    let mut value = serde_json::to_value(problem).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("status".into(), status.as_u16().into());
    }
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        value.to_string(),
    )
        .into_response()
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}
