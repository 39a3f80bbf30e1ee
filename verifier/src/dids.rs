//! sparkid as ssi's DID resolver: proofs name their keys by DID URL, and ssi dereferences them
//! through [`Resolver::resolve_did`], so a did:bid issuer is checked against the chain (with its
//! cache), and every other method resolves as the resolution door resolves it.

use serde_json::{json, Value};
use sparkid_resolver::did_url::DidUrl;
use sparkid_resolver::resolution::{ErrorKind, ResolutionOptions, Resolver};
use ssi_dids_core::resolution::{self, DIDResolver, Error, Output};
use ssi_dids_core::{document, DID};

/// The media type documents are handed to ssi in: plain JSON, so ssi reads them without
/// JSON-LD processing (did:bid's `@context` carries a term of its own).
const DOCUMENT_MEDIA_TYPE: &str = "application/did+json";

/// ssi's [`DIDResolver`] over sparkid's resolver.
#[derive(Clone)]
pub struct SparkidDids {
    resolver: Resolver,
}

impl SparkidDids {
    /// Resolves through `resolver`.
    pub fn new(resolver: Resolver) -> SparkidDids {
        SparkidDids { resolver }
    }

    /// The DID document of `did` as ssi gets it (see [`for_verification`]).
    pub async fn document(&self, did: &str) -> Result<Value, Error> {
        let url = DidUrl::parse(did)
            .map_err(|e| Error::InvalidMethodSpecificId(format!("{did}: {e}")))?;
        if !url.is_did() {
            return Err(Error::InvalidMethodSpecificId(format!(
                "{did} is a DID URL, not a DID"
            )));
        }
        let resolution = self
            .resolver
            .resolve_did(&url, &ResolutionOptions::default())
            .await
            .map_err(|e| match e.kind {
                ErrorKind::NotFound => Error::NotFound,
                ErrorKind::MethodNotSupported => Error::MethodNotSupported(e.detail),
                ErrorKind::InvalidDid => Error::InvalidMethodSpecificId(e.detail),
                _ => Error::Internal(format!("{}: {}", e.kind.code(), e.detail)),
            })?;
        if resolution.deactivated() {
            // A deactivated DID's keys prove nothing any more.
            return Err(Error::Internal(format!("{did} is deactivated")));
        }
        let document = resolution.document.ok_or(Error::NotFound)?;
        Ok(for_verification(url.method(), document))
    }
}

/// The document verification reads: did:bid documents list their keys under `authentication`
/// only (the BID document has no other relationship, and BIF signs credentials with those
/// keys), so they are also the DID's `assertionMethod` here. Other methods' documents are kept
/// as resolved.
pub fn for_verification(method: &str, mut document: Value) -> Value {
    if method == "bid" {
        if let Some(map) = document.as_object_mut() {
            if !map.contains_key("assertionMethod") {
                let authentication = map.get("authentication").cloned().unwrap_or(json!([]));
                map.insert("assertionMethod".into(), authentication);
            }
        }
    }
    document
}

impl DIDResolver for SparkidDids {
    async fn resolve_representation<'a>(
        &'a self,
        did: &'a DID,
        _options: resolution::Options,
    ) -> Result<Output<Vec<u8>>, Error> {
        let document = self.document(did.as_str()).await?;
        let bytes = serde_json::to_vec(&document).map_err(Error::internal)?;
        Ok(Output::new(
            bytes,
            document::Metadata::default(),
            resolution::Metadata::from_content_type(Some(DOCUMENT_MEDIA_TYPE.to_string())),
        ))
    }
}
