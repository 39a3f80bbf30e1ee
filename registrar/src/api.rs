//! The Universal Registrar API for did:bid: `create`, `update`, `deactivate`.
//!
//! Client-managed secret mode (always available): the registrar builds the transaction and
//! answers `didState.state = "action"`, `action = "signPayload"` with a `signingRequest`; the
//! client signs `serializedPayload` (base64 of the exact bytes) with the named key and posts again
//! with the `jobId` and `secret.signingResponse`. Internal secret mode (dev only, create only): the
//! registrar makes the key, signs, and returns the key in `didState.secret`.
//!
//! A job is its client's alone: the `action` answer carries a random `jobSecret` (256 bits) in
//! `didRegistrationMetadata`, and only a request with that `secret.jobSecret` continues the job
//! or cancels it (`options.cancel: true`). A job whose transaction could not be committed is
//! refused when it is asked for; pending jobs are bounded ([`crate::jobs`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sparkid_bid::document::DID_CONTEXT;
use sparkid_bid::{Bid, BidDocument, PrivateKey, Signature};
use sparkid_ledger::{Ledger, Transaction, TxBody, VerifiedTransaction};

use crate::jobs::{Client, JobBook, JobLimits, Refused};
use crate::operation::{BidStateMachine, Operation};
use crate::service::Submitter;
use crate::state::{did_key, DidRecord};
use crate::submitters::Submitters;

/// How many blocks a prepared transaction stays valid.
pub const VALIDITY_BLOCKS: u64 = 1000;
/// How long a job waits for its signature by default ([`JobLimits::ttl`]).
pub const JOB_TTL: Duration = crate::jobs::DEFAULT_JOB_TTL;

/// Which registrar function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// `/1.0/create`.
    Create,
    /// `/1.0/update`.
    Update,
    /// `/1.0/deactivate`.
    Deactivate,
    /// `/1.0/namespaces`: delegate, bind, unbind (see [`crate::namespace`]).
    Namespace,
}

/// A registrar request body (DIF did-registration).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrarRequest {
    /// Continues a job.
    #[serde(default)]
    pub job_id: Option<String>,
    /// The DID (update, deactivate).
    #[serde(default)]
    pub did: Option<String>,
    /// Options: `clientSecretMode`, `returnSecrets`, `signer`.
    #[serde(default)]
    pub options: Map<String, Value>,
    /// Secrets: `signingResponse`.
    #[serde(default)]
    pub secret: Map<String, Value>,
    /// The document (native BID form).
    #[serde(default)]
    pub did_document: Option<Value>,
    /// `setDidDocument` (default) or the method-specific `recover`.
    #[serde(default)]
    pub did_document_operation: Option<Vec<String>>,
    /// A namespace operation (`delegate`, `bind`, `unbind`), for [`Function::Namespace`].
    #[serde(default)]
    pub operation: Option<Value>,
}

impl RegistrarRequest {
    /// The DID the request names: `did`, else its document's `id`.
    pub fn named_did(&self) -> Option<String> {
        self.did.clone().or_else(|| {
            self.did_document
                .as_ref()
                .and_then(|d| d.get("id"))
                .and_then(Value::as_str)
                .map(String::from)
        })
    }
}

/// `didState`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DidState {
    /// `finished`, `failed` or `action`.
    pub state: String,
    /// The DID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub did: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `signPayload`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// What to sign.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_request: Option<Value>,
    /// Keys made by the registrar (internal secret mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<Value>,
    /// The DID document (DID Core rendering).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub did_document: Option<Value>,
}

/// A registrar response.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RegistrarResponse {
    /// Set while a job waits for the client.
    pub job_id: Option<String>,
    /// The state.
    pub did_state: DidState,
    /// `height`, `txHash`, `method`.
    pub did_registration_metadata: Map<String, Value>,
    /// `versionId`, `created`, `updated`, `deactivated`.
    pub did_document_metadata: Map<String, Value>,
    /// The HTTP status for this answer.
    #[serde(skip)]
    pub status: u16,
    /// With a 429: when to try again (the door's `Retry-After`).
    #[serde(skip)]
    pub retry_after: Option<Duration>,
}

impl RegistrarResponse {
    /// A `failed` answer with the HTTP status it goes out with.
    pub fn failed(
        did: Option<String>,
        status: u16,
        reason: impl Into<String>,
    ) -> RegistrarResponse {
        RegistrarResponse {
            job_id: None,
            did_state: DidState {
                state: "failed".into(),
                did,
                reason: Some(reason.into()),
                ..Default::default()
            },
            did_registration_metadata: Map::new(),
            did_document_metadata: Map::new(),
            status,
            retry_after: None,
        }
    }
}

/// What a registrar admits beyond the rules of the chain: how many jobs wait, and who may
/// submit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrarPolicy {
    /// The bounds of the jobs waiting for signatures.
    pub jobs: JobLimits,
    /// `registrar.submitters`: when set, only these submitters' transactions are accepted.
    pub submitters: Option<Submitters>,
}

struct Job {
    function: Function,
    body: TxBody,
}

/// Why a registrar refused a request by its policy, for the operator's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyRefusal {
    /// The client had its most jobs waiting.
    ClientJobs,
    /// The registrar held its most jobs, or bytes of jobs.
    TotalJobs,
    /// A job was continued or cancelled without its secret.
    JobSecret,
    /// The transaction's signer is not in `registrar.submitters`.
    Submitter,
    /// The transaction could never be committed (too large), refused when asked for.
    TooLarge,
}

impl PolicyRefusal {
    /// Every kind, in a fixed order.
    pub const ALL: [PolicyRefusal; 5] = [
        PolicyRefusal::ClientJobs,
        PolicyRefusal::TotalJobs,
        PolicyRefusal::JobSecret,
        PolicyRefusal::Submitter,
        PolicyRefusal::TooLarge,
    ];

    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            PolicyRefusal::ClientJobs => "client_jobs",
            PolicyRefusal::TotalJobs => "total_jobs",
            PolicyRefusal::JobSecret => "job_secret",
            PolicyRefusal::Submitter => "submitter",
            PolicyRefusal::TooLarge => "too_large",
        }
    }
}

/// The registrar: turns registrar requests into signed transactions on the ledger.
pub struct Registrar {
    ledger: Arc<Ledger>,
    submitter: Submitter,
    dev: bool,
    jobs: Mutex<JobBook<Job>>,
    submitters: Option<Submitters>,
    /// Refusals by [`PolicyRefusal`], in its `ALL` order.
    refused: [AtomicU64; 5],
}

impl Registrar {
    /// A registrar over `ledger` with the default policy (public, default job limits). `dev`
    /// enables internal secret mode.
    pub fn new(ledger: Arc<Ledger>, submitter: Submitter, dev: bool) -> Registrar {
        Registrar::with_policy(ledger, submitter, dev, RegistrarPolicy::default())
    }

    /// A registrar over `ledger` that admits what `policy` allows.
    pub fn with_policy(
        ledger: Arc<Ledger>,
        submitter: Submitter,
        dev: bool,
        policy: RegistrarPolicy,
    ) -> Registrar {
        Registrar {
            ledger,
            submitter,
            dev,
            jobs: Mutex::new(JobBook::new(policy.jobs)),
            submitters: policy.submitters,
            refused: Default::default(),
        }
    }

    /// How many requests this registrar refused for `why` since it started.
    pub fn refused(&self, why: PolicyRefusal) -> u64 {
        self.refused[why as usize].load(Ordering::Relaxed)
    }

    fn count(&self, why: PolicyRefusal) {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Whether this registrar holds the job `job_id` (waiting for its signature).
    pub fn has_job(&self, job_id: &str) -> bool {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(job_id, Instant::now())
    }

    /// How many jobs wait for their signatures.
    pub fn pending_jobs(&self) -> usize {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// The ledger this registrar writes.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// The submitter, for callers that bring their own signed transactions.
    pub fn submitter(&self) -> &Submitter {
        &self.submitter
    }

    /// Handles one registrar request from a caller that names no client: such callers share
    /// one allowance of pending jobs ([`Client::unknown`]).
    pub async fn handle(&self, function: Function, request: RegistrarRequest) -> RegistrarResponse {
        self.handle_from(Client::unknown(), function, request).await
    }

    /// Handles one registrar request from `client` (whose pending jobs are capped).
    pub async fn handle_from(
        &self,
        client: Client,
        function: Function,
        request: RegistrarRequest,
    ) -> RegistrarResponse {
        if let Some(job_id) = &request.job_id {
            return self.continue_job(function, job_id, &request).await;
        }
        let prepared = match function {
            Function::Create => self.prepare_create(&request),
            Function::Update => self.prepare_update(&request),
            Function::Deactivate => self.prepare_deactivate(&request),
            Function::Namespace => self.prepare_namespace(&request),
        };
        match prepared {
            Ok(Prepared::Signed(tx, secret)) => {
                if let Err(refusal) = self.admit(&tx.tx().body) {
                    return refusal.into();
                }
                self.commit(function, *tx, secret).await
            }
            Ok(Prepared::NeedsSignature { body, purpose }) => {
                self.ask_for_signature(client, function, body, purpose)
            }
            Err(refusal) => refusal.into(),
        }
    }

    /// One-step submission of a transaction its client built and signed (as BIF's own
    /// `submitTransaction`), without the two-step job of [`Registrar::handle_from`]: the same
    /// checks (submitter allow-list, size, nonce, signature, the operation's rules) and the
    /// same `finished` answer once its block is durable. A transaction that is well formed but
    /// cannot be committed as it is (bad signature, wrong chain, expired, refused by the rules)
    /// is answered 422, not 400: the request was read, the transaction is what is wrong; a DID
    /// that exists (or a version that is no longer current) stays 409, a missing DID 404.
    pub async fn submit_signed(&self, tx: Transaction) -> RegistrarResponse {
        let function = match tx.body.operation.get("type").and_then(Value::as_str) {
            Some("create") => Function::Create,
            Some("deactivate") => Function::Deactivate,
            Some("update" | "recover") => Function::Update,
            _ => Function::Namespace,
        };
        let mut response = self.finish(function, tx, None).await;
        if response.status == 400 {
            response.status = 422;
        }
        response
    }

    fn body(&self, signer: String, public_key: String, op: &Operation) -> TxBody {
        TxBody {
            chain_id: self.ledger.genesis().chain_id.clone(),
            signer,
            public_key,
            nonce: TxBody::random_nonce(),
            valid_until: self.ledger.height() + VALIDITY_BLOCKS,
            operation: op.to_value(),
        }
    }

    fn current(&self, did: &str) -> Result<(Bid, DidRecord, BidDocument), Refusal> {
        let bad = |reason: String| refuse(Some(did.to_string()), 400, reason);
        let bid: Bid = did.parse().map_err(|e| bad(format!("invalid DID: {e}")))?;
        let text = self
            .ledger
            .get(&did_key(&bid))
            .map_err(|e| refuse(Some(did.to_string()), 500, format!("ledger: {e}")))?
            .ok_or_else(|| refuse(Some(did.to_string()), 404, format!("{did} does not exist")))?;
        let record: DidRecord = serde_json::from_str(&text)
            .map_err(|e| refuse(Some(did.to_string()), 500, format!("stored record: {e}")))?;
        if record.deactivated {
            return Err(bad(format!(
                "{did} is deactivated; a deactivated DID takes no further operation"
            )));
        }
        let doc = record
            .bid_document()
            .map_err(|e| refuse(Some(did.to_string()), 500, e.to_string()))?;
        Ok((bid, record, doc))
    }

    fn prepare_create(&self, request: &RegistrarRequest) -> Result<Prepared, Refusal> {
        let client_mode = request
            .options
            .get("clientSecretMode")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if !client_mode {
            if !self.dev {
                return Err(refuse(
                    None,
                    400,
                    "internal secret mode is only available in dev mode; set options.clientSecretMode to true and sign the payload",
                ));
            }
            return self.prepare_internal_create(request);
        }
        let mut document = request.did_document.clone().ok_or_else(|| {
            refuse(
                None,
                400,
                "client-managed create needs didDocument (a native BID document)",
            )
        })?;
        fill_defaults(&mut document);
        let doc = BidDocument::from_value(document.clone())
            .map_err(|e| refuse(None, 400, e.to_string()))?;
        let did = doc.id.clone();
        // A key that cannot be read (too long, weak, malformed) is named now, not after the
        // client has signed.
        for entry in &doc.public_key {
            if let Err(error) = entry.key() {
                let error = sparkid_bid::DocumentError::BadPublicKey {
                    id: entry.id.clone(),
                    error,
                };
                return Err(refuse(Some(did), 400, error.to_string()));
            }
        }
        let signer = match request.options.get("signer").and_then(Value::as_str) {
            Some(s) => s.to_string(),
            None => doc
                .authentication
                .iter()
                .find(|id| doc.find_key(id).and_then(|k| k.key().ok()).is_some_and(|k| doc.bid().is_ok_and(|b| b.is_derived_from(&k))))
                .cloned()
                .ok_or_else(|| {
                    refuse(Some(did.clone()), 400, "create is self-certifying: no authentication key of the document derives its id")
                })?,
        };
        let key = doc.find_key(&signer).ok_or_else(|| {
            refuse(
                Some(did.clone()),
                400,
                format!("signer {signer} is not a publicKey of the document"),
            )
        })?;
        let body = self.body(
            signer,
            key.public_key_hex.to_lowercase(),
            &Operation::Create { document },
        );
        Ok(Prepared::NeedsSignature {
            body,
            purpose: "authentication",
        })
    }

    fn prepare_internal_create(&self, request: &RegistrarRequest) -> Result<Prepared, Refusal> {
        let key = PrivateKey::generate();
        let ac = BidStateMachine::for_genesis(self.ledger.genesis()).ac_code;
        let document = new_document_on(&key.public_key(), ac, request.did_document.clone())
            .map_err(|reason| refuse(None, 400, reason))?;
        let kid = document["authentication"][0]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let body = self.body(
            kid.clone(),
            key.public_key().to_encoded(),
            &Operation::Create { document },
        );
        let tx = body
            .sign_verified(&key)
            .map_err(|e| refuse(None, 400, e.to_string()))?;
        let return_secrets = request
            .options
            .get("returnSecrets")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let secret = return_secrets.then(|| {
            json!({ "keys": [{ "kid": kid, "type": "Ed25519", "privateKey": key.to_encoded(),
                               "publicKeyHex": key.public_key().to_encoded(), "purpose": ["authentication", "recovery"] }] })
        });
        Ok(Prepared::Signed(Box::new(tx), secret))
    }

    fn prepare_update(&self, request: &RegistrarRequest) -> Result<Prepared, Refusal> {
        let did = request
            .named_did()
            .ok_or_else(|| refuse(None, 400, "update needs did"))?;
        let recover = match request.did_document_operation.as_deref() {
            None => false,
            Some([op]) if op == "setDidDocument" => false,
            Some([op]) if op == "recover" => true,
            Some(other) => {
                return Err(refuse(
                    Some(did),
                    400,
                    format!("didDocumentOperation {other:?} is not supported: use [\"setDidDocument\"] or the did:bid-specific [\"recover\"]"),
                ))
            }
        };
        let mut document = request.did_document.clone().ok_or_else(|| {
            refuse(
                Some(did.clone()),
                400,
                "update needs didDocument (the whole new native BID document)",
            )
        })?;
        if let Some(map) = document.as_object_mut() {
            map.entry("id").or_insert_with(|| json!(did));
        }
        if document.get("id").and_then(Value::as_str) != Some(did.as_str()) {
            return Err(refuse(
                Some(did),
                400,
                "didDocument.id must be the DID being updated",
            ));
        }
        fill_defaults(&mut document);
        let (_, record, current) = self.current(&did)?;
        let previous = expected_version(request, &did, &record)?;
        let allowed: &[String] = if recover {
            current.recovery()
        } else {
            &current.authentication
        };
        let signer = self.pick_signer(
            request,
            allowed,
            &did,
            if recover {
                "recovery"
            } else {
                "authentication"
            },
        )?;
        let key = current
            .find_key(&signer)
            .map(|k| k.public_key_hex.to_lowercase())
            .unwrap_or_default();
        let op = if recover {
            Operation::Recover {
                document,
                previous_version_id: Some(previous),
            }
        } else {
            Operation::Update {
                document,
                previous_version_id: Some(previous),
            }
        };
        Ok(Prepared::NeedsSignature {
            body: self.body(signer, key, &op),
            purpose: if recover {
                "recovery"
            } else {
                "authentication"
            },
        })
    }

    fn prepare_deactivate(&self, request: &RegistrarRequest) -> Result<Prepared, Refusal> {
        let did = request
            .did
            .clone()
            .ok_or_else(|| refuse(None, 400, "deactivate needs did"))?;
        let (_, record, current) = self.current(&did)?;
        let previous = expected_version(request, &did, &record)?;
        let signer = self.pick_signer(request, current.recovery(), &did, "recovery")?;
        let key = current
            .find_key(&signer)
            .map(|k| k.public_key_hex.to_lowercase())
            .unwrap_or_default();
        let body = self.body(
            signer,
            key,
            &Operation::Deactivate {
                id: did,
                previous_version_id: Some(previous),
            },
        );
        Ok(Prepared::NeedsSignature {
            body,
            purpose: "recovery",
        })
    }

    /// A namespace operation, signed by the client: `options.signer` names the key (an
    /// authentication key of the signer's DID document, or, for an authority whose DID is not on
    /// the ledger yet, `<authority>#key-1` with `options.publicKeyHex`).
    fn prepare_namespace(&self, request: &RegistrarRequest) -> Result<Prepared, Refusal> {
        let value = request.operation.clone().ok_or_else(|| {
            refuse(
                None,
                400,
                "a namespace request needs operation ({\"type\": \"delegate\"|\"bind\"|\"unbind\", ...})",
            )
        })?;
        let op: Operation = serde_json::from_value(value)
            .map_err(|e| refuse(None, 400, format!("malformed operation: {e}")))?;
        let did = Operation::did_of(&op.to_value());
        if !op.is_namespace_operation() {
            return Err(refuse(
                did,
                400,
                format!(
                    "{} is a DID operation: use /1.0/create, /1.0/update or /1.0/deactivate",
                    op.name()
                ),
            ));
        }
        let signer = request
            .options
            .get("signer")
            .and_then(Value::as_str)
            .ok_or_else(|| refuse(did.clone(), 400, "options.signer (a key id) is required"))?
            .to_string();
        let public_key = match request.options.get("publicKeyHex").and_then(Value::as_str) {
            Some(k) => {
                sparkid_bid::PublicKey::from_encoded(k)
                    .map_err(|e| refuse(did.clone(), 400, format!("options.publicKeyHex: {e}")))?;
                k.to_lowercase()
            }
            None => {
                let signer_did = signer.split('#').next().unwrap_or_default();
                let (_, _, doc) = self.current(signer_did)?;
                doc.find_key(&signer)
                    .map(|k| k.public_key_hex.to_lowercase())
                    .ok_or_else(|| {
                        refuse(
                            did.clone(),
                            400,
                            format!("{signer} is not a publicKey of {signer_did}"),
                        )
                    })?
            }
        };
        Ok(Prepared::NeedsSignature {
            body: self.body(signer, public_key, &op),
            purpose: "authentication",
        })
    }

    fn pick_signer(
        &self,
        request: &RegistrarRequest,
        allowed: &[String],
        did: &str,
        relation: &str,
    ) -> Result<String, Refusal> {
        match request.options.get("signer").and_then(Value::as_str) {
            Some(s) if allowed.iter().any(|a| a == s) => Ok(s.to_string()),
            Some(s) => Err(refuse(
                Some(did.to_string()),
                400,
                format!("options.signer {s} is not a {relation} key of {did}"),
            )),
            None => allowed.first().cloned().ok_or_else(|| {
                refuse(
                    Some(did.to_string()),
                    400,
                    format!("{did} has no {relation} key"),
                )
            }),
        }
    }

    /// Refuses a transaction whose signer `registrar.submitters` does not list.
    fn admit(&self, body: &TxBody) -> Result<(), Refusal> {
        match &self.submitters {
            Some(submitters) if !submitters.admits(body, &self.ledger) => {
                tracing::debug!(signer = %body.signer, "refused: not a listed submitter");
                self.count(PolicyRefusal::Submitter);
                Err(refuse(
                    Operation::did_of(&body.operation),
                    403,
                    format!(
                        "this registrar is permissioned: it accepts only transactions of the \
                         submitters it lists (registrar.submitters), and {} with key {} is not \
                         one of them",
                        body.signer, body.public_key
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    fn ask_for_signature(
        &self,
        client: Client,
        function: Function,
        body: TxBody,
        purpose: &str,
    ) -> RegistrarResponse {
        let did = Operation::did_of(&body.operation);
        if let Err(refusal) = self.admit(&body) {
            return refusal.into();
        }
        // Refused now rather than once signed: a signature cannot make it fit.
        let size = match body.check_size() {
            Ok(size) => size,
            Err(e) => {
                self.count(PolicyRefusal::TooLarge);
                return RegistrarResponse::failed(
                    did,
                    400,
                    format!("the transaction for this request could never be committed: {e}"),
                );
            }
        };
        let serialized = base64::engine::general_purpose::STANDARD.encode(body.signing_bytes());
        let request = json!({ "signingRequest0": {
            "kid": body.signer, "alg": "EdDSA", "purpose": purpose,
            "payload": body, "serializedPayload": serialized,
        }});
        let opened = self.jobs.lock().unwrap_or_else(|p| p.into_inner()).open(
            client,
            Job { function, body },
            size,
            Instant::now(),
        );
        let opened = match opened {
            Ok(opened) => opened,
            Err(full) => {
                tracing::info!(%client, "registrar job refused: {full}");
                self.count(match full {
                    crate::jobs::Full::Client { .. } => PolicyRefusal::ClientJobs,
                    _ => PolicyRefusal::TotalJobs,
                });
                let mut response = RegistrarResponse::failed(did, 429, full.to_string());
                response.retry_after = Some(full.retry_after());
                return response;
            }
        };
        let mut metadata = Map::new();
        metadata.insert("jobSecret".into(), json!(opened.secret));
        RegistrarResponse {
            job_id: Some(opened.id),
            did_state: DidState {
                state: "action".into(),
                did,
                action: Some("signPayload".into()),
                signing_request: Some(request),
                ..Default::default()
            },
            did_registration_metadata: metadata,
            did_document_metadata: Map::new(),
            status: 200,
            retry_after: None,
        }
    }

    /// Continues (or, with `options.cancel`, cancels) the job `job_id`; only its secret does.
    async fn continue_job(
        &self,
        function: Function,
        job_id: &str,
        request: &RegistrarRequest,
    ) -> RegistrarResponse {
        let secret = request.secret.get("jobSecret").and_then(Value::as_str);
        let did = {
            let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
            match jobs.job(job_id, secret, Instant::now()) {
                Err(e @ Refused::Unknown) => {
                    return RegistrarResponse::failed(None, 404, format!("no job {job_id}: {e}"))
                }
                Err(e @ Refused::WrongSecret) => {
                    tracing::debug!(job_id, "a job continued without its secret");
                    self.count(PolicyRefusal::JobSecret);
                    return RegistrarResponse::failed(None, 403, format!("job {job_id}: {e}"));
                }
                Ok(job) if job.function != function => {
                    return RegistrarResponse::failed(
                        None,
                        400,
                        format!("job {job_id} belongs to another registrar function"),
                    )
                }
                Ok(job) => Operation::did_of(&job.body.operation),
            }
        };
        let taken = |registrar: &Registrar| {
            registrar
                .jobs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(job_id)
        };
        let gone = || {
            RegistrarResponse::failed(
                None,
                404,
                format!("no job {job_id}: it was finished or cancelled meanwhile"),
            )
        };
        if request.options.get("cancel").and_then(Value::as_bool) == Some(true) {
            if taken(self).is_none() {
                return gone();
            }
            let mut response = RegistrarResponse::failed(
                did,
                200,
                format!("job {job_id} cancelled by its client: nothing was submitted"),
            );
            response
                .did_registration_metadata
                .insert("cancelled".into(), json!(true));
            return response;
        }
        // Read outside the lock: the job's secret has been shown, so this is its client.
        let signature = request
            .secret
            .get("signingResponse")
            .and_then(|r| r.get("signingRequest0"))
            .and_then(|r| r.get("signature"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                "secret.signingResponse.signingRequest0.signature is missing".to_string()
            })
            .and_then(parse_signature);
        match signature {
            Ok(signature) => {
                let Some(job) = taken(self) else {
                    return gone();
                };
                self.finish(
                    function,
                    Transaction {
                        body: job.body,
                        signature,
                    },
                    None,
                )
                .await
            }
            Err(reason) => {
                // The job stays: its client may retry with a correct signature.
                let mut response = RegistrarResponse::failed(did, 400, reason);
                response.job_id = Some(job_id.to_string());
                response
            }
        }
    }

    async fn finish(
        &self,
        function: Function,
        tx: Transaction,
        secret: Option<Value>,
    ) -> RegistrarResponse {
        let did = Operation::did_of(&tx.body.operation);
        // Again at the end: the signer's document may have changed while the job waited.
        if let Err(refusal) = self.admit(&tx.body) {
            return refusal.into();
        }
        match tx.verify() {
            Ok(verified) => self.commit(function, verified, secret).await,
            Err(e) => RegistrarResponse::failed(did, 400, e.to_string()),
        }
    }

    /// Submits a verified transaction and answers `finished` once its block is durable.
    async fn commit(
        &self,
        function: Function,
        verified: VerifiedTransaction,
        secret: Option<Value>,
    ) -> RegistrarResponse {
        let did = Operation::did_of(&verified.tx().body.operation);
        let operation = operation_name(&verified.tx().body.operation).to_string();
        match self.submitter.submit(verified).await {
            Ok(committed) => {
                let mut response = RegistrarResponse {
                    job_id: None,
                    did_state: DidState {
                        state: "finished".into(),
                        did: did.clone(),
                        secret,
                        ..Default::default()
                    },
                    did_registration_metadata: Map::new(),
                    did_document_metadata: Map::new(),
                    status: if function == Function::Create {
                        201
                    } else {
                        200
                    },
                    retry_after: None,
                };
                let meta = &mut response.did_registration_metadata;
                meta.insert("method".into(), json!("bid"));
                meta.insert("height".into(), json!(committed.height));
                meta.insert("txHash".into(), json!(committed.tx_hash.to_hex()));
                meta.insert("operation".into(), json!(operation));
                // A namespace operation changes no DID document.
                let record = did
                    .as_deref()
                    .filter(|_| function != Function::Namespace)
                    .and_then(|d| d.parse::<Bid>().ok())
                    .and_then(|b| {
                        self.ledger
                            .value_written_at(&did_key(&b), committed.height)
                            .ok()
                            .flatten()
                    })
                    .and_then(|text| serde_json::from_str::<DidRecord>(&text).ok());
                if let Some(record) = record {
                    let dm = &mut response.did_document_metadata;
                    dm.insert("versionId".into(), json!(record.version_id.to_string()));
                    dm.insert("created".into(), json!(record.created));
                    dm.insert("updated".into(), json!(record.updated));
                    dm.insert("deactivated".into(), json!(record.deactivated));
                    if !record.deactivated {
                        response.did_state.did_document =
                            record.bid_document().ok().map(|d| d.to_did_core());
                    }
                }
                response
            }
            Err(e) => RegistrarResponse::failed(did, e.http_status(), e.to_string()),
        }
    }
}

/// The version an update, recover or deactivate will name as the one it replaces: the current
/// one, which `options.previousVersionId` (a number or its decimal text), when the client gives
/// it, must be; otherwise the client is working from a document that has changed (409).
fn expected_version(
    request: &RegistrarRequest,
    did: &str,
    record: &DidRecord,
) -> Result<u64, Refusal> {
    let Some(given) = request.options.get("previousVersionId") else {
        return Ok(record.version_id);
    };
    let named = given
        .as_u64()
        .or_else(|| given.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| {
            refuse(
                Some(did.to_string()),
                400,
                "options.previousVersionId must be a version number",
            )
        })?;
    if named != record.version_id {
        return Err(refuse(
            Some(did.to_string()),
            409,
            format!(
                "options.previousVersionId is {named}, but {did} is at version {}: it has changed since",
                record.version_id
            ),
        ));
    }
    Ok(named)
}

/// A request refused before anything was submitted.
struct Refusal {
    did: Option<String>,
    status: u16,
    reason: String,
}

fn refuse(did: Option<String>, status: u16, reason: impl Into<String>) -> Refusal {
    Refusal {
        did,
        status,
        reason: reason.into(),
    }
}

impl From<Refusal> for RegistrarResponse {
    fn from(r: Refusal) -> Self {
        RegistrarResponse::failed(r.did, r.status, r.reason)
    }
}

enum Prepared {
    /// Signed by the registrar itself (internal secret mode): no signature to check.
    Signed(Box<VerifiedTransaction>, Option<Value>),
    NeedsSignature {
        body: TxBody,
        purpose: &'static str,
    },
}

impl Operation {
    /// The DID named by an operation's JSON.
    pub fn did_of(op: &Value) -> Option<String> {
        op.get("document")
            .and_then(|d| d.get("id"))
            .or_else(|| op.get("id"))
            .or_else(|| op.get("did"))
            .or_else(|| op.get("owner"))
            .and_then(Value::as_str)
            .map(String::from)
    }
}

fn operation_name(op: &Value) -> &str {
    op.get("type").and_then(Value::as_str).unwrap_or_default()
}

/// Reads a signature as base64url, base64, BIF Base58 or hex. A text longer than the longest
/// of these forms is refused on its length, before any decoding.
pub fn parse_signature(text: &str) -> Result<Signature, String> {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    sparkid_bid::keys::check_length("signature", text, sparkid_bid::keys::MAX_SIGNATURE_TEXT_LEN)
        .map_err(|e| format!("{e} (64 bytes in base64url, base64, BIF Base58 or hex)"))?;
    for bytes in [
        URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok(),
        STANDARD.decode(text).ok(),
    ]
    .into_iter()
    .flatten()
    {
        if let Ok(arr) = <[u8; 64]>::try_from(bytes.as_slice()) {
            return Ok(Signature(arr));
        }
    }
    if let Ok(sig) = Signature::parse(text) {
        return Ok(sig);
    }
    Err("the signature must be 64 bytes in base64url, base64, BIF Base58 or hex".into())
}

/// A new native document for `key`: its BID as `id`, the key as `#key-1` for authentication and
/// recovery, and whatever else the template gives (services, alsoKnownAs, extension members;
/// `#fragment` service ids become absolute).
pub fn new_document(
    key: &sparkid_bid::PublicKey,
    template: Option<Value>,
) -> Result<Value, String> {
    new_document_on(key, None, template)
}

/// [`new_document`] for the chain with AC code `ac` (none: the main chain): the BID carries
/// the code (`did:bid:<ac>:…`).
pub fn new_document_on(
    key: &sparkid_bid::PublicKey,
    ac: Option<sparkid_bid::AcCode>,
    template: Option<Value>,
) -> Result<Value, String> {
    let bid = Bid::derive(key, ac).map_err(|e| e.to_string())?;
    let did = bid.to_string();
    let kid = format!("{did}#key-1");
    let mut document = template.unwrap_or_else(|| json!({}));
    let Some(map) = document.as_object_mut() else {
        return Err("didDocument must be a JSON object".into());
    };
    map.insert("id".into(), json!(did));
    map.insert("publicKey".into(), json!([{ "id": kid, "type": "Ed25519", "controller": did, "publicKeyHex": key.to_encoded() }]));
    map.insert("authentication".into(), json!([kid]));
    let extension = map.entry("extension").or_insert_with(|| json!({}));
    if let Some(ext) = extension.as_object_mut() {
        ext.insert("recovery".into(), json!([kid]));
    }
    absolutize_ids(map, &did);
    fill_defaults(&mut document);
    Ok(document)
}

fn fill_defaults(document: &mut Value) {
    if let Some(map) = document.as_object_mut() {
        map.entry("@context")
            .or_insert_with(|| json!([DID_CONTEXT]));
        map.entry("version").or_insert_with(|| json!("1.0.0"));
        let ext = map.entry("extension").or_insert_with(|| json!({}));
        if let Some(ext) = ext.as_object_mut() {
            ext.entry("ttl")
                .or_insert_with(|| json!(sparkid_bid::document::DEFAULT_TTL));
        }
    }
}

/// Turns `#fragment` service ids of a template into `<did>#fragment`.
fn absolutize_ids(map: &mut Map<String, Value>, did: &str) {
    if let Some(Value::Array(services)) = map.get_mut("service") {
        for s in services {
            if let Some(id) = s.get("id").and_then(Value::as_str) {
                if let Some(frag) = id.strip_prefix('#') {
                    s["id"] = json!(format!("{did}#{frag}"));
                }
            }
        }
    }
}
