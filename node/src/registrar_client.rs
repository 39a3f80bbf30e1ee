//! A client of a Universal Registrar endpoint in client-managed-secret mode: the request is
//! sent with `options.clientSecretMode`, the registrar answers a signing request
//! (`didState.state = "action"`), the client signs its payload and sends the signature back
//! with the job id and the job's secret (`didRegistrationMetadata.jobSecret`). Used by anchoring ([`crate::anchoring`]) and by the `sparkid` CLI.

use base64::Engine;
use serde_json::{json, Value};
use sparkid_bid::PrivateKey;
use thiserror::Error;

/// Why a client-managed exchange got no answer from the registrar.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The request could not be sent, or its answer could not be read.
    #[error("POST {url}")]
    Send {
        /// The URL posted to.
        url: String,
        /// What failed.
        #[source]
        source: reqwest::Error,
    },
    /// The answer is not JSON.
    #[error("answer of {url}: {text}")]
    Decode {
        /// The URL posted to.
        url: String,
        /// The answer as it came.
        text: String,
        /// What is wrong with it.
        #[source]
        source: serde_json::Error,
    },
    /// The registrar asked for a signature without a payload to sign.
    #[error("signingRequest0.serializedPayload")]
    NoPayload,
    /// The payload to sign is not base64.
    #[error("signingRequest0.serializedPayload is not base64")]
    Payload(#[source] base64::DecodeError),
}

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> Result<Value, ClientError> {
    let send = |source| ClientError::Send {
        url: url.to_string(),
        source,
    };
    let response = client.post(url).json(body).send().await.map_err(send)?;
    let text = response.text().await.map_err(send)?;
    serde_json::from_str(&text).map_err(|source| ClientError::Decode {
        url: url.to_string(),
        text,
        source,
    })
}

/// Runs a client-managed registrar exchange: sends `body` to `path` of the registrar at
/// `endpoint` (`http://host:port`), signs with `key` what the registrar asks for, sends the
/// signature, and returns the final answer (whatever its state: a refusal is an answer too).
pub async fn client_managed(
    endpoint: &str,
    path: &str,
    body: Value,
    key: &PrivateKey,
) -> Result<Value, ClientError> {
    client_managed_with(&reqwest::Client::new(), endpoint, path, body, key).await
}

/// [`client_managed`] over `client` (e.g. one trusting the daemon's CA file).
pub async fn client_managed_with(
    client: &reqwest::Client,
    endpoint: &str,
    path: &str,
    mut body: Value,
    key: &PrivateKey,
) -> Result<Value, ClientError> {
    let url = format!("{}{}", endpoint.trim_end_matches('/'), path);
    body["options"]["clientSecretMode"] = json!(true);
    let first = post(client, &url, &body).await?;
    if first["didState"]["state"] != "action" {
        return Ok(first);
    }
    let request = &first["didState"]["signingRequest"]["signingRequest0"];
    let payload = request["serializedPayload"]
        .as_str()
        .ok_or(ClientError::NoPayload)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .map_err(ClientError::Payload)?;
    let signature = key.sign(&bytes);
    // The job's secret: without it the registrar continues no job.
    let second = json!({
        "jobId": first["jobId"],
        "secret": {
            "jobSecret": first["didRegistrationMetadata"]["jobSecret"],
            "signingResponse": { "signingRequest0": {
                "signature": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(signature.0)
            }}
        }
    });
    post(client, &url, &second).await
}
