//! The resolution service: one place that answers "what is this DID, or this DID URL", for
//! every door. Method dispatch sits here: `did:bid` from the ledger (through [`Records`], where
//! the cache is), `did:key` computed in process ([`crate::didkey`], and through ssi for the key
//! types it does not render), did:web, did:jwk and did:pkh through ssi ([`crate::ssi_methods`]),
//! any other method through the configured Universal Resolver drivers ([`crate::drivers`]).
//!
//! - [`Resolver::resolve_did`] is DID Resolution's `resolve` (options [`ResolutionOptions`]):
//!   a [`Resolution`] (a deactivated DID is a resolution without a document, not an error) or a
//!   [`ResolutionError`] of one of DID Resolution's error types ([`ErrorKind`]).
//! - [`Resolver::dereference`] is DID URL dereferencing: fragments (a verification method or a
//!   service by id), `service` / `serviceType` with `relativeRef`, versions.
//! - [`Resolver::resolve`] is the older, did:bid-only read of the current record, which the BID
//!   protocol door uses.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use sparkid_bid::Bid;
use sparkid_ledger::Ledger;
use sparkid_registrar::{did_key, DidRecord};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::did_url::DidUrl;
use crate::didkey::{self, DidKeyError, KeyOptions};
use crate::drivers::Drivers;
use crate::records::Records;
pub use crate::result::*;
use crate::result::{internal, invalid_options};
use crate::ssi_methods::SsiMethods;
use crate::subchain::{self, Route, SubChains};

/// Resolves DIDs and dereferences DID URLs.
#[derive(Clone)]
pub struct Resolver {
    records: Records,
    drivers: Arc<Drivers>,
    ssi: Arc<SsiMethods>,
    subchains: Arc<SubChains>,
    /// The DIDs most recently written on this chain, newest last: `/1.0/testIdentifiers`.
    recent: Arc<std::sync::Mutex<std::collections::VecDeque<String>>>,
}

/// How many recently written DIDs `/1.0/testIdentifiers` lists.
const RECENT_DIDS: usize = 5;

/// Where a did:bid resolution was answered: here, or at a sub-chain's resolver.
enum BidAnswer {
    /// Answered from a ledger this daemon holds.
    Local(Resolution),
    /// To ask the resolvers of this AC-code delegation, checking against this anchor.
    Remote(Box<subchain::Delegated>),
}

impl Resolver {
    /// A resolver over `records`, with no drivers.
    pub fn new(records: Records) -> Resolver {
        Resolver {
            records,
            drivers: Arc::new(Drivers::default()),
            ssi: Arc::new(SsiMethods::default()),
            subchains: Arc::new(SubChains::default()),
            recent: Arc::default(),
        }
    }

    /// Keeps the last few DIDs that blocks write, which `/1.0/testIdentifiers` offers as
    /// did:bid examples that resolve here.
    pub fn watch_recent_dids(&self) {
        let recent = Arc::downgrade(&self.recent);
        self.records.ledger().on_commit(Box::new(move |block| {
            let Some(recent) = recent.upgrade() else {
                return;
            };
            let mut list = recent.lock().unwrap_or_else(|p| p.into_inner());
            for key in &block.keys {
                if let Some(bid) = key.strip_prefix("did/") {
                    let did = format!("did:bid:{}", bid.trim_start_matches("did:bid:"));
                    list.retain(|d| *d != did);
                    list.push_back(did);
                    if list.len() > RECENT_DIDS {
                        list.pop_front();
                    }
                }
            }
        }));
    }

    /// The DIDs most recently written on this chain, newest first.
    pub fn recent_dids(&self) -> Vec<String> {
        let list = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        list.iter().rev().cloned().collect()
    }

    /// The same resolver answering `did:bid:<ac>:…` from `subchains` (hosted or delegated).
    pub fn with_subchains(mut self, subchains: SubChains) -> Resolver {
        self.subchains = Arc::new(subchains);
        self
    }

    /// The sub-chains this resolver knows of.
    pub fn subchains(&self) -> &SubChains {
        &self.subchains
    }

    /// The same resolver proxying other methods to `drivers`.
    pub fn with_drivers(mut self, drivers: Drivers) -> Resolver {
        self.drivers = Arc::new(drivers);
        self
    }

    /// The same resolver answering did:web, did:jwk, did:pkh (and the did:key types
    /// [`crate::didkey`] does not render) through `methods`.
    pub fn with_ssi_methods(mut self, methods: SsiMethods) -> Resolver {
        self.ssi = Arc::new(methods);
        self
    }

    /// The ledger.
    pub fn ledger(&self) -> &Arc<Ledger> {
        self.records.ledger()
    }

    /// The records (the read path's cache sits behind them).
    pub fn records(&self) -> &Records {
        &self.records
    }

    /// The configured drivers.
    pub fn drivers(&self) -> &Drivers {
        &self.drivers
    }

    /// Resolves a did:bid DID to its current record (blocking: reads the ledger).
    pub fn resolve(&self, did: &str) -> Result<Resolved, ResolveError> {
        if did.len() > MAX_IDENTIFIER_LEN {
            return Err(ResolveError::InvalidDid(format!(
                "a DID is at most {MAX_IDENTIFIER_LEN} bytes here"
            )));
        }
        let mut parts = did.splitn(3, ':');
        let (Some("did"), Some(method), Some(rest)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ResolveError::InvalidDid(format!(
                "{did:?} is not a DID: it must be did:<method>:<method-specific-id>"
            )));
        };
        if method.is_empty()
            || !method
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            || rest.is_empty()
        {
            return Err(ResolveError::InvalidDid(format!(
                "{did:?} is not a DID: the method name is lowercase letters and digits"
            )));
        }
        if method != "bid" {
            return Err(ResolveError::MethodNotSupported(method.to_string()));
        }
        let bid: Bid = did
            .parse()
            .map_err(|e| ResolveError::InvalidDid(format!("{did}: {e}")))?;
        let records = self
            .local_records(&bid)
            .ok_or_else(|| ResolveError::NotFound(did.to_string()))?;
        let anchored = records
            .current(&did_key(&bid), false)
            .map_err(|e| ResolveError::Internal(e.to_string()))?
            .ok_or_else(|| ResolveError::NotFound(did.to_string()))?;
        let record: DidRecord = serde_json::from_str(&anchored.value)
            .map_err(|e| ResolveError::Internal(format!("stored record: {e}")))?;
        Ok(Resolved { bid, record })
    }

    /// The records of the ledger in this daemon that holds `bid`: this daemon's own ledger for a
    /// DID of its chain, a hosted sub-chain's for a DID of that sub-chain, else none (the DID
    /// lives on a sub-chain resolved elsewhere). A bare `did:bid:<ac>` is held by the chain
    /// that delegates the code: this daemon's own.
    pub fn local_records(&self, bid: &Bid) -> Option<Records> {
        let Some(ac) = bid.ac_code().filter(|_| !bid.is_ac_code_only()) else {
            return Some(self.records.clone());
        };
        if subchain::chain_ac(&self.records) == Some(ac) {
            return Some(self.records.clone());
        }
        self.subchains.hosted(&ac).cloned()
    }

    /// The DID methods this resolver answers: `bid`, `key`, then the drivers' methods.
    pub fn methods(&self) -> Vec<String> {
        let mut methods = vec!["bid".to_string(), "key".to_string()];
        methods.extend(crate::ssi_methods::METHODS.iter().map(|m| m.to_string()));
        for driver in self.drivers.iter() {
            for m in driver.methods() {
                if !methods.contains(&m) {
                    methods.push(m);
                }
            }
        }
        methods
    }

    /// Example DIDs per method, as the Universal Resolver's `/1.0/testIdentifiers` lists them:
    /// the did:key spec's vectors, and the drivers' configured test identifiers. did:bid has
    /// none to offer until a DID is registered; `bid` lists the DIDs in `bid_examples`.
    pub fn test_identifiers(&self, bid_examples: &[String]) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("bid".into(), json!(bid_examples));
        map.insert(
            "key".into(),
            json!([
                "did:key:z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp",
                "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme",
                "did:key:zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169",
                // P-521, from the did:key test vectors (rendered through ssi).
                "did:key:z2J9gaYxrKVpdoG9A4gRnmpnRCcxU6agDtFVVBVdn1JedouoZN7SzcyREXXzWgt3gGiwpoHq7K68X4m32D8HgzG8wv3sY5j7",
            ]),
        );
        // The did:jwk spec's P-256 example and a did:pkh test vector.
        map.insert(
            "jwk".into(),
            json!(["did:jwk:eyJjcnYiOiJQLTI1NiIsImt0eSI6IkVDIiwieCI6ImFjYklRaXVNczNpOF91c3pFakoydHBUdFJNNEVVM3l6OTFQSDZDZEgyVjAiLCJ5IjoiX0tjeUxqOXZXTXB0bm1LdG00NkdxRHo4d2Y3NEk1TEtncmwyR3pIM25TRSJ9"]),
        );
        map.insert(
            "pkh".into(),
            json!(["did:pkh:eip155:1:0xb9c5714089478a327f09197987f16f9e5d936e8a"]),
        );
        for driver in self.drivers.iter() {
            for id in driver.test_identifiers() {
                let Some(method) = id.strip_prefix("did:").and_then(|r| r.split(':').next()) else {
                    continue;
                };
                let entry = map.entry(method.to_string()).or_insert_with(|| json!([]));
                if let Some(list) = entry.as_array_mut() {
                    if !list.iter().any(|v| v == id) {
                        list.push(json!(id));
                    }
                }
            }
        }
        map
    }

    /// The resolver's properties, as the Universal Resolver's `/1.0/properties` gives them: one
    /// entry per driver, keyed by its pattern.
    pub fn properties(&self) -> Map<String, Value> {
        let ledger = self.ledger();
        let mut map = Map::new();
        map.insert(
            "^(did:bid:.+)$".into(),
            json!({ "local": {
                "method": "bid",
                "chainId": ledger.genesis().chain_id,
                "height": ledger.height(),
                "cache": self.records.cache().is_some(),
                "options": ["versionId", "versionTime", "noCache", "proof", "expandRelativeUrls"],
            }}),
        );
        map.insert(
            "^(did:key:.+)$".into(),
            json!({ "local": {
                "method": "key",
                "keyTypes": ["Ed25519", "X25519", "secp256k1", "P-256"],
                "options": ["publicKeyFormat", "enableEncryptionKeyDerivation", "expandRelativeUrls"],
            }}),
        );
        for method in crate::ssi_methods::METHODS {
            map.insert(
                format!("^(did:{method}:.+)$"),
                json!({ "local": {
                    "method": method,
                    "implementation": "ssi",
                    "options": ["noCache", "expandRelativeUrls"],
                }}),
            );
        }
        for driver in self.drivers.iter() {
            map.insert(driver.pattern().to_string(), driver.properties());
        }
        map
    }

    /// What bridges know about a DID's other identifiers: the VAA codes, handles and DNS names
    /// bound to it that its controller confirmed (its reverse index on the ledger, read
    /// through the cache).
    /// [`Resolver::resolve_did`] writes them into the document metadata (`alsoKnownAs`;
    /// `equivalentId` and `canonicalId` are for same-method DIDs and stay empty).
    pub fn aliases(&self, did: &str) -> Aliases {
        crate::bridge_source::did_aliases(&self.records, did)
    }

    /// DID Resolution's `resolve`: `did` must be a DID (no path, query or fragment).
    pub async fn resolve_did(
        &self,
        did: &DidUrl,
        options: &ResolutionOptions,
    ) -> Result<Resolution, ResolutionError> {
        if !did.is_did() {
            return Err(ResolutionError::new(
                ErrorKind::InvalidDid,
                format!("{did} is a DID URL, not a DID"),
            ));
        }
        let method = did.method();
        if method != "key" && options.key != KeyOptions::default() {
            return Err(invalid_options(
                "publicKeyFormat and enableEncryptionKeyDerivation apply to did:key only",
            ));
        }
        // The current record of a DID that L1 holds: answered here, with no blocking-pool hop.
        if method == "bid" {
            if let Some(mut resolution) =
                crate::warm::peek_resolution(&self.records, did.did(), options)
            {
                if options.expand_relative_urls {
                    if let Some(document) = resolution.document.as_mut() {
                        expand_relative_urls(document, did.did());
                    }
                }
                return Ok(resolution);
            }
        }
        let mut resolution = match method {
            "bid" => {
                let this = self.clone();
                let did_text = did.did().to_string();
                let owned = options.clone();
                let answer =
                    tokio::task::spawn_blocking(move || this.resolve_bid(&did_text, &owned))
                        .await
                        .map_err(internal)??;
                match answer {
                    BidAnswer::Local(resolution) => resolution,
                    BidAnswer::Remote(remote) => {
                        self.subchains
                            .resolve_remote(
                                &remote.delegation,
                                remote.anchor.as_ref(),
                                did.did(),
                                options,
                                options.subchain_hops,
                            )
                            .await?
                    }
                }
            }
            "key" => {
                if options.proof {
                    return Err(ResolutionError::new(
                        ErrorKind::FeatureNotSupported,
                        "proof=true: did:key is not on the ledger, there is nothing to prove",
                    ));
                }
                if options.selects_version() {
                    return Err(ResolutionError::new(
                        ErrorKind::FeatureNotSupported,
                        "did:key documents have no versions (versionId, versionTime)",
                    ));
                }
                let document =
                    didkey::resolve(did.method_specific_id(), &options.key).map_err(|e| match e {
                        DidKeyError::InvalidDid(m) => {
                            ResolutionError::new(ErrorKind::InvalidDid, format!("{did}: {m}"))
                        }
                        DidKeyError::InvalidOptions(m) => invalid_options(m),
                        DidKeyError::Unsupported(m) => {
                            ResolutionError::new(ErrorKind::FeatureNotSupported, m)
                        }
                    });
                match document {
                    Ok(document) => Resolution {
                        document: Some(document),
                        ..Resolution::default()
                    },
                    // Key types sparkid recognizes but does not render: ssi's Multikey document.
                    Err(e)
                        if e.kind == ErrorKind::FeatureNotSupported
                            && !options.key.enable_encryption_key_derivation
                            && options
                                .key
                                .public_key_format
                                .as_deref()
                                .is_none_or(|f| f == "Multikey") =>
                    {
                        self.ssi
                            .resolve_key(did.did(), did.method_specific_id())
                            .await?
                    }
                    Err(e) => return Err(e),
                }
            }
            other if SsiMethods::answers(other) => {
                if options.proof || options.selects_version() {
                    return Err(ResolutionError::new(
                        ErrorKind::FeatureNotSupported,
                        format!(
                            "did:{other} is resolved through ssi: proof, versionId and \
                             versionTime are answered for did:bid only"
                        ),
                    ));
                }
                self.ssi
                    .resolve(did.did(), other, did.method_specific_id(), options.no_cache)
                    .await?
            }
            other => {
                let Some(driver) = self.drivers.find(did.did()) else {
                    return Err(ResolutionError::new(
                        ErrorKind::MethodNotSupported,
                        format!(
                            "did:{other} is not supported here: this resolver answers {}",
                            self.methods()
                                .iter()
                                .map(|m| format!("did:{m}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                };
                if options.proof || options.selects_version() {
                    return Err(ResolutionError::new(
                        ErrorKind::FeatureNotSupported,
                        format!(
                            "did:{other} is resolved by a driver: proof, versionId and \
                             versionTime are answered for did:bid only"
                        ),
                    ));
                }
                driver.resolve_cached(did.did(), options.no_cache).await?
            }
        };
        if options.expand_relative_urls {
            if let Some(document) = resolution.document.as_mut() {
                expand_relative_urls(document, did.did());
            }
        }
        // From L1 when it holds them; a miss is read on a blocking thread, not on this worker.
        // Not for a recursive request: the asking resolver checks the answer against a proof
        // that does not cover them (crate::subchain), and adds the aliases its chain binds.
        // noCache reads them from the ledger, as it does the document.
        if options.subchain_hops == 0 {
            let aliases = if options.no_cache {
                crate::warm::aliases_from_ledger(&self.records, did.did()).await
            } else {
                crate::warm::aliases(&self.records, did.did()).await
            };
            add_aliases(&mut resolution, aliases);
        }
        Ok(resolution)
    }

    /// The did:bid read (blocking): routes a sub-chain DID ([`crate::subchain`]), then reads
    /// the ledger that holds it, or says which resolvers to ask.
    fn resolve_bid(
        &self,
        did: &str,
        options: &ResolutionOptions,
    ) -> Result<BidAnswer, ResolutionError> {
        let bid: Bid = did
            .parse()
            .map_err(|e| ResolutionError::new(ErrorKind::InvalidDid, format!("{did}: {e}")))?;
        if bid.is_ac_code_only() {
            return self
                .resolve_ac_code(did, &bid, options)
                .map(BidAnswer::Local);
        }
        let records = match bid.ac_code() {
            None => &self.records,
            Some(ac) => match self.subchains.route(&self.records, &ac, did)? {
                Route::Local(records) => {
                    return Self::read_bid(&records, did, &bid, options).map(BidAnswer::Local)
                }
                Route::Remote(remote) => return Ok(BidAnswer::Remote(remote)),
            },
        };
        Self::read_bid(records, did, &bid, options).map(BidAnswer::Local)
    }

    /// A bare `did:bid:<ac>`: the AC code's delegation on this chain, as a document
    /// ([`subchain::ac_document`]), current, proven, or a version from its history.
    fn resolve_ac_code(
        &self,
        did: &str,
        bid: &Bid,
        options: &ResolutionOptions,
    ) -> Result<Resolution, ResolutionError> {
        let ac = bid
            .ac_code()
            .ok_or_else(|| internal(format!("{did} has no AC code")))?;
        let key =
            sparkid_registrar::namespace::namespace_key(sparkid_registrar::Kind::Ac, ac.as_str());
        let chain = &self.records.ledger().genesis().chain_id;
        let selected: Selected<sparkid_registrar::NamespaceRecord> =
            select_record(&self.records, &key, did, options, || {
                format!("{did}: the AC code {ac} is not delegated on chain {chain:?}")
            })?;
        let mut document_metadata = crate::ac_code::ac_metadata(&selected.record);
        if let Some(next) = &selected.next {
            document_metadata.insert("nextUpdate".into(), json!(next.updated));
            document_metadata.insert("nextVersionId".into(), json!(next.version_id.to_string()));
        }
        let document = crate::ac_code::ac_document(did, &selected.record);
        Ok(selected.into_resolution(Some(document), document_metadata))
    }

    /// Reads the did:bid DID `did` (`bid`) from `records`: the current record through the
    /// cache, or the proven one, or a version from the ledger's history.
    fn read_bid(
        records: &Records,
        did: &str,
        bid: &Bid,
        options: &ResolutionOptions,
    ) -> Result<Resolution, ResolutionError> {
        let selected: Selected<DidRecord> =
            select_record(records, &did_key(bid), did, options, || {
                format!("{did} is not registered on this ledger")
            })?;
        let record = &selected.record;
        let document = if record.deactivated {
            None
        } else {
            let document = record
                .bid_document()
                .map_err(|e| internal(format!("stored document of {did}: {e}")))?;
            Some(document.to_did_core())
        };
        let metadata = document_metadata(record, selected.next.as_ref());
        Ok(selected.into_resolution(document, metadata))
    }

    /// DID URL dereferencing. A path is `NOT_FOUND` (no method here defines paths); `service`
    /// and `serviceType` select services and `relativeRef` resolves against their endpoints; a
    /// fragment alone selects a verification method or a service by id. A deactivated DID
    /// dereferences to its resolution ([`Content::Document`]) whatever the DID URL selects.
    pub async fn dereference(
        &self,
        url: &DidUrl,
        options: &ResolutionOptions,
    ) -> Result<Dereferenced, ResolutionError> {
        if !url.path().is_empty() {
            return Err(ResolutionError::new(
                ErrorKind::NotFound,
                format!(
                    "{url}: did:{} defines no DID URL paths, so {:?} names nothing",
                    url.method(),
                    url.path()
                ),
            ));
        }
        let service = url.param("service");
        let service_type = url.param("serviceType");
        let relative_ref = url.param("relativeRef");
        let fragment = url.fragment().filter(|f| !f.is_empty());
        let selects_services = service.is_some() || service_type.is_some();
        if relative_ref.is_some() && !selects_services {
            return Err(ResolutionError::new(
                ErrorKind::InvalidDidUrl,
                format!("{url}: relativeRef needs service or serviceType to resolve against"),
            ));
        }
        if options.proof && (selects_services || fragment.is_some()) {
            return Err(invalid_options(
                "proof=true applies to resolving a DID (with versionId or versionTime), not to \
                 dereferencing a fragment or a service",
            ));
        }
        let did = DidUrl::parse(url.did())
            .map_err(|e| ResolutionError::new(ErrorKind::InvalidDid, e.to_string()))?;
        let resolution = self.resolve_did(&did, options).await?;
        let Some(document) = resolution
            .document
            .as_ref()
            .filter(|_| !resolution.deactivated())
        else {
            return Ok(Dereferenced {
                resolution,
                content: Content::Document,
            });
        };
        let content = if selects_services {
            select_services(url, document, service, service_type, relative_ref, fragment)?
        } else if let Some(fragment) = fragment {
            Content::Resource(
                find_by_fragment(document, url.did(), fragment).ok_or_else(|| {
                    ResolutionError::new(
                        ErrorKind::NotFound,
                        format!(
                            "{} has no verification method or service with id #{fragment}",
                            url.did()
                        ),
                    )
                })?,
            )
        } else {
            Content::Document
        };
        Ok(Dereferenced {
            resolution,
            content,
        })
    }
}

/// The record a resolution answers from: the version the options select (the current one,
/// through the cache or proven), the version after it, and the proof when one was asked for.
struct Selected<R> {
    record: R,
    next: Option<R>,
    proof: Option<Value>,
}

impl<R> Selected<R> {
    /// The resolution of `document` with `document_metadata`, carrying the proof.
    fn into_resolution(
        self,
        document: Option<Value>,
        document_metadata: Map<String, Value>,
    ) -> Resolution {
        let mut resolution_metadata = Map::new();
        if let Some(p) = self.proof {
            resolution_metadata.insert(LEDGER_PROOF.into(), p);
        }
        Resolution {
            document,
            document_metadata,
            resolution_metadata,
        }
    }
}

/// Reads the versioned record under `key` for `did`: with `proof`, the proven current value
/// (the answer is rendered from it: one snapshot for both), else the current value through the
/// cache (`noCache` honoured); then the version `versionId` / `versionTime` select from the
/// ledger's history. Absent: `NOT_FOUND` with `not_found()` (and the absence proof).
fn select_record<R: Versioned + serde::de::DeserializeOwned + Clone>(
    records: &Records,
    key: &str,
    did: &str,
    options: &ResolutionOptions,
    not_found: impl FnOnce() -> String,
) -> Result<Selected<R>, ResolutionError> {
    let parse = |text: &str| -> Result<R, ResolutionError> {
        serde_json::from_str(text).map_err(|e| internal(format!("stored {key}: {e}")))
    };
    let ledger = records.ledger();
    let mut proof = None;
    let current = if options.proof {
        let proven = ledger.prove(key).map_err(internal)?;
        proof = Some(serde_json::to_value(&proven).map_err(internal)?);
        proven.value.as_deref().map(parse).transpose()?
    } else {
        records
            .current(key, options.no_cache)
            .map_err(internal)?
            .map(|anchored| parse(&anchored.value))
            .transpose()?
    };
    let Some(current) = current else {
        let error = ResolutionError::new(ErrorKind::NotFound, not_found());
        return Err(match proof {
            Some(p) => error.with_metadata(LEDGER_PROOF, p),
            None => error,
        });
    };
    if !options.selects_version() {
        return Ok(Selected {
            record: current,
            next: None,
            proof,
        });
    }
    let history = ledger
        .history(key)
        .map_err(internal)?
        .iter()
        .map(|(_, text)| parse(text))
        .collect::<Result<Vec<_>, _>>()?;
    let index = select_version(&history, options, did, current.version_id())?;
    let record = history[index].clone();
    if options.proof && record.version_id() != current.version_id() {
        return Err(invalid_options(format!(
            "proof=true: the ledger proves only the current state (versionId {}), \
             not version {}; ask without proof for older versions",
            current.version_id(),
            record.version_id()
        )));
    }
    Ok(Selected {
        record,
        next: history.get(index + 1).cloned(),
        proof,
    })
}

/// A versioned ledger record: a DID's, or an AC code's delegation.
trait Versioned {
    fn version_id(&self) -> u64;
    fn created(&self) -> &str;
    fn updated(&self) -> &str;
}

impl Versioned for DidRecord {
    fn version_id(&self) -> u64 {
        self.version_id
    }
    fn created(&self) -> &str {
        &self.created
    }
    fn updated(&self) -> &str {
        &self.updated
    }
}

impl Versioned for sparkid_registrar::NamespaceRecord {
    fn version_id(&self) -> u64 {
        self.version_id
    }
    fn created(&self) -> &str {
        &self.created
    }
    fn updated(&self) -> &str {
        &self.updated
    }
}

/// The index in `history` of the version the options select; `current` is the latest
/// version's id.
fn select_version<R: Versioned>(
    history: &[R],
    options: &ResolutionOptions,
    did: &str,
    current: u64,
) -> Result<usize, ResolutionError> {
    if let Some(version) = &options.version_id {
        return history
            .iter()
            .position(|r| r.version_id().to_string() == *version)
            .ok_or_else(|| {
                ResolutionError::new(
                    ErrorKind::NotFound,
                    format!(
                        "{did} has no version {version:?}: its versions are 1 to {}",
                        current
                    ),
                )
            });
    }
    let Some(at) = options.version_time else {
        return Err(internal("no version selected"));
    };
    let mut found = None;
    for (i, record) in history.iter().enumerate() {
        let updated = OffsetDateTime::parse(record.updated(), &Rfc3339)
            .map_err(|e| internal(format!("stored time {:?}: {e}", record.updated())))?;
        if updated <= at {
            found = Some(i);
        } else {
            break;
        }
    }
    found.ok_or_else(|| {
        let at = at.format(&Rfc3339).unwrap_or_default();
        let created = history.first().map(|r| r.created()).unwrap_or("?");
        ResolutionError::new(
            ErrorKind::NotFound,
            format!("{did} did not exist at {at}: it was created at {created}"),
        )
    })
}

/// Whether a document member's `id` names `#fragment` of `did`.
fn id_matches(id: Option<&Value>, did: &str, fragment: &str) -> bool {
    match id.and_then(Value::as_str) {
        Some(id) => match id.split_once('#') {
            Some((base, frag)) => frag == fragment && (base.is_empty() || base == did),
            None => false,
        },
        None => false,
    }
}

/// The verification method or service of `document` whose id is `did#fragment` (or
/// `#fragment`), also among those embedded in verification relationships.
fn find_by_fragment(document: &Value, did: &str, fragment: &str) -> Option<Value> {
    let members = [
        "verificationMethod",
        "service",
        "authentication",
        "assertionMethod",
        "keyAgreement",
        "capabilityInvocation",
        "capabilityDelegation",
    ];
    members
        .iter()
        .filter_map(|m| document.get(*m).and_then(Value::as_array))
        .flatten()
        .find(|item| item.is_object() && id_matches(item.get("id"), did, fragment))
        .cloned()
}

fn select_services(
    url: &DidUrl,
    document: &Value,
    service: Option<&str>,
    service_type: Option<&str>,
    relative_ref: Option<&str>,
    fragment: Option<&str>,
) -> Result<Content, ResolutionError> {
    let did = url.did();
    let selected: Vec<Value> = document
        .get("service")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|s| service.is_none_or(|name| id_matches(s.get("id"), did, name)))
        .filter(|s| {
            service_type.is_none_or(|t| match s.get("type") {
                Some(Value::String(x)) => x == t,
                Some(Value::Array(xs)) => xs.iter().any(|x| x.as_str() == Some(t)),
                _ => false,
            })
        })
        .cloned()
        .collect();
    if selected.is_empty() {
        let what = match (service, service_type) {
            (Some(s), Some(t)) => format!("a service #{s} of type {t:?}"),
            (Some(s), None) => format!("a service #{s}"),
            (_, Some(t)) => format!("a service of type {t:?}"),
            (None, None) => "a service".into(),
        };
        return Err(ResolutionError::new(
            ErrorKind::NotFound,
            format!("{did} has no {what}"),
        ));
    }
    let mut urls = Vec::new();
    for s in &selected {
        let endpoints: Vec<&str> = match s.get("serviceEndpoint") {
            Some(Value::String(e)) => vec![e.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for endpoint in endpoints {
            if let Some(u) = endpoint_url(endpoint, relative_ref, fragment)? {
                urls.push(u);
            }
        }
    }
    let mut filtered = document.clone();
    if let Some(map) = filtered.as_object_mut() {
        map.insert("service".into(), Value::Array(selected));
    }
    Ok(Content::Services {
        document: filtered,
        urls,
    })
}

/// An endpoint with `relativeRef` applied (its path appended to the endpoint's path, its query
/// added to the endpoint's, as DID Resolution's worked example does) and the DID URL's
/// fragment. Endpoints that are not absolute URLs (a BID resolver service's bare IP address)
/// give none.
fn endpoint_url(
    endpoint: &str,
    relative_ref: Option<&str>,
    fragment: Option<&str>,
) -> Result<Option<String>, ResolutionError> {
    let Ok(mut u) = reqwest::Url::parse(endpoint) else {
        return Ok(None);
    };
    if u.cannot_be_a_base() {
        return Ok(None);
    }
    let bad = |why: &str| {
        ResolutionError::new(
            ErrorKind::InvalidDidUrl,
            format!("relativeRef {:?} {why}", relative_ref.unwrap_or_default()),
        )
    };
    let mut ref_fragment = None;
    if let Some(rel) = relative_ref {
        let scheme_like = rel
            .split(['/', '?', '#'])
            .next()
            .is_some_and(|first| first.contains(':'));
        if scheme_like || rel.starts_with("//") {
            return Err(bad(
                "must be a relative reference (no scheme, no authority)",
            ));
        }
        let (rest, frag) = match rel.split_once('#') {
            Some((r, f)) => (r, Some(f)),
            None => (rel, None),
        };
        ref_fragment = frag;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        if path.split('/').any(|seg| seg == ".." || seg == ".") {
            return Err(bad("must not contain \".\" or \"..\" path segments"));
        }
        if !path.is_empty() {
            let base = u.path().trim_end_matches('/').to_string();
            let joined = if path.starts_with('/') {
                format!("{base}{path}")
            } else {
                format!("{base}/{path}")
            };
            u.set_path(&joined);
        }
        if let Some(q) = query {
            let merged = match u.query() {
                Some(existing) if !existing.is_empty() => format!("{existing}&{q}"),
                _ => q.to_string(),
            };
            u.set_query(Some(&merged));
        }
    }
    if let Some(f) = ref_fragment.or(fragment) {
        if u.fragment().is_some() {
            return Err(ResolutionError::new(
                ErrorKind::InvalidDidUrl,
                format!(
                    "the service endpoint {endpoint} already has a fragment; #{f} cannot be added"
                ),
            ));
        }
        u.set_fragment(Some(f));
    }
    Ok(Some(u.to_string()))
}

/// Absolutizes relative DID URLs (`#key-1`) in a document's verification methods, services and
/// verification relationships (DID Resolution's `expandRelativeUrls`).
fn expand_relative_urls(document: &mut Value, did: &str) {
    let absolute = |v: &mut Value| {
        if let Some(s) = v.as_str() {
            if s.starts_with('#') || s.starts_with('?') || s.starts_with('/') {
                *v = json!(format!("{did}{s}"));
            }
        }
    };
    for member in ["verificationMethod", "service"] {
        if let Some(list) = document.get_mut(member).and_then(Value::as_array_mut) {
            for item in list {
                if let Some(id) = item.get_mut("id") {
                    absolute(id);
                }
                if let Some(controller) = item.get_mut("controller") {
                    absolute(controller);
                }
            }
        }
    }
    for member in [
        "authentication",
        "assertionMethod",
        "keyAgreement",
        "capabilityInvocation",
        "capabilityDelegation",
    ] {
        if let Some(list) = document.get_mut(member).and_then(Value::as_array_mut) {
            for item in list {
                if item.is_string() {
                    absolute(item);
                } else if let Some(id) = item.get_mut("id") {
                    absolute(id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> DidUrl {
        DidUrl::parse(s).unwrap()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn options_merge_did_parameters_and_request_options() {
        let o = ResolutionOptions::collect(
            &url("did:bid:x?versionId=2&noCache=true"),
            &pairs(&[("proof", "true"), ("noCache", "true")]),
        )
        .unwrap();
        assert_eq!(o.version_id.as_deref(), Some("2"));
        assert!(o.no_cache && o.proof);
        let kind = |u: &str, p: &[(&str, &str)]| {
            ResolutionOptions::collect(&url(u), &pairs(p))
                .unwrap_err()
                .kind
        };
        assert_eq!(
            kind("did:bid:x", &[("bogus", "1")]),
            ErrorKind::InvalidOptions
        );
        assert_eq!(kind("did:bid:x?bogus=1", &[]), ErrorKind::InvalidDidUrl);
        assert_eq!(
            ResolutionOptions::collect(&url("did:bid:x?accept=a"), &[])
                .unwrap()
                .accept
                .as_deref(),
            Some("a")
        );
        assert_eq!(
            kind("did:bid:x", &[("service", "a")]),
            ErrorKind::InvalidOptions
        );
        assert_eq!(
            kind("did:bid:x", &[("noCache", "yes")]),
            ErrorKind::InvalidOptions
        );
        assert_eq!(
            kind("did:bid:x?versionId=1", &[("versionId", "2")]),
            ErrorKind::InvalidOptions
        );
        assert_eq!(
            kind(
                "did:bid:x",
                &[("versionId", "1"), ("versionTime", "2024-01-01T00:00:00Z")]
            ),
            ErrorKind::InvalidOptions
        );
        assert_eq!(
            kind("did:bid:x", &[("versionTime", "yesterday")]),
            ErrorKind::InvalidOptions
        );
        assert_eq!(
            kind(
                "did:bid:x",
                &[("proof", "true"), ("expandRelativeUrls", "true")]
            ),
            ErrorKind::InvalidOptions
        );
        assert_eq!(
            kind("did:bid:x", &[("noCache", "true"), ("noCache", "true")]),
            ErrorKind::InvalidOptions
        );
        // The same value in both places is fine.
        assert!(ResolutionOptions::collect(
            &url("did:bid:x?versionId=1"),
            &pairs(&[("versionId", "1")])
        )
        .is_ok());
    }

    #[test]
    fn error_kinds_have_the_binding_status_codes() {
        for (kind, status) in [
            (ErrorKind::InvalidDid, 400),
            (ErrorKind::InvalidDidUrl, 400),
            (ErrorKind::InvalidOptions, 400),
            (ErrorKind::NotFound, 404),
            (ErrorKind::RepresentationNotSupported, 406),
            (ErrorKind::MethodNotSupported, 501),
            (ErrorKind::FeatureNotSupported, 501),
            (ErrorKind::Internal, 500),
            (ErrorKind::InvalidDidDocument, 500),
        ] {
            assert_eq!(kind.status(), status, "{kind:?}");
        }
        let p = ResolutionError::new(ErrorKind::NotFound, "gone").problem();
        assert_eq!(p["type"], "https://www.w3.org/ns/did#NOT_FOUND");
        assert_eq!(p["detail"], "gone");
    }

    #[test]
    fn relative_refs_append_to_endpoints() {
        let f = |e: &str, r: Option<&str>, frag: Option<&str>| endpoint_url(e, r, frag);
        // DID Resolution's worked example.
        assert_eq!(
            f(
                "https://example.com/messages/8377464",
                Some("/some/path?query"),
                Some("frag")
            )
            .unwrap()
            .unwrap(),
            "https://example.com/messages/8377464/some/path?query#frag"
        );
        assert_eq!(
            f("https://example.com/files/", Some("resume.pdf"), None)
                .unwrap()
                .unwrap(),
            "https://example.com/files/resume.pdf"
        );
        assert_eq!(
            f("https://api.example/v1?key=a", Some("/items?id=3"), None)
                .unwrap()
                .unwrap(),
            "https://api.example/v1/items?key=a&id=3"
        );
        assert_eq!(
            f("https://x.example", None, None).unwrap().unwrap(),
            "https://x.example/"
        );
        assert_eq!(f("192.168.1.23", Some("/a"), None).unwrap(), None);
        for bad in [
            "https://evil.example/",
            "//evil.example/x",
            "/a/../b",
            "javascript:x",
        ] {
            assert_eq!(
                f("https://x.example/", Some(bad), None).unwrap_err().kind,
                ErrorKind::InvalidDidUrl,
                "{bad}"
            );
        }
        assert_eq!(
            f("https://x.example/#top", None, Some("f"))
                .unwrap_err()
                .kind,
            ErrorKind::InvalidDidUrl
        );
    }

    #[test]
    fn fragments_and_services_are_found_by_id_and_type() {
        let did = "did:bid:x";
        let doc = json!({
            "id": did,
            "verificationMethod": [{"id": "did:bid:x#key-1", "type": "Multikey"}],
            "authentication": ["did:bid:x#key-1", {"id": "#key-2", "type": "Multikey"}],
            "service": [
                {"id": "#files", "type": "DIDStorage", "serviceEndpoint": "https://files.example/"},
                {"id": "did:bid:x#hub", "type": ["Hub", "DIDStorage"],
                 "serviceEndpoint": ["https://a.example", {"uri": "x"}, "https://b.example"]},
            ],
        });
        assert_eq!(
            find_by_fragment(&doc, did, "key-1").unwrap()["type"],
            "Multikey"
        );
        assert_eq!(
            find_by_fragment(&doc, did, "key-2").unwrap()["id"],
            "#key-2"
        );
        assert_eq!(
            find_by_fragment(&doc, did, "files").unwrap()["type"],
            "DIDStorage"
        );
        assert!(find_by_fragment(&doc, did, "nope").is_none());
        assert!(find_by_fragment(&doc, "did:bid:y", "key-1").is_none());
        let u = url("did:bid:x?serviceType=DIDStorage&relativeRef=%2Fa.pdf");
        let Content::Services { document, urls } =
            select_services(&u, &doc, None, Some("DIDStorage"), Some("/a.pdf"), None).unwrap()
        else {
            panic!()
        };
        assert_eq!(document["service"].as_array().unwrap().len(), 2);
        assert_eq!(
            urls,
            vec![
                "https://files.example/a.pdf",
                "https://a.example/a.pdf",
                "https://b.example/a.pdf"
            ]
        );
        let none = select_services(&u, &doc, Some("files"), Some("Hub"), None, None).unwrap_err();
        assert_eq!(none.kind, ErrorKind::NotFound);
    }

    #[test]
    fn relative_urls_expand() {
        let mut doc = json!({
            "verificationMethod": [{"id": "#k", "controller": "did:x:y"}],
            "authentication": ["#k", {"id": "#k2"}],
            "service": [{"id": "#s"}],
        });
        expand_relative_urls(&mut doc, "did:x:y");
        assert_eq!(doc["verificationMethod"][0]["id"], "did:x:y#k");
        assert_eq!(
            doc["authentication"],
            json!(["did:x:y#k", {"id": "did:x:y#k2"}])
        );
        assert_eq!(doc["service"][0]["id"], "did:x:y#s");
    }
}
