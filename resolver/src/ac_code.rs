//! The documents of a bare AC code (`did:bid:<ac>`): a sub-chain's delegation on the main
//! chain rendered as a DID Core document ([`ac_document`], [`ac_metadata`]) and as the BID
//! protocol's native document ([`ac_native_document`]). Resolution, the BID protocol and the
//! offline proof check ([`crate::verifiable`]) all render them, so they live apart from each.

use serde_json::{json, Map, Value};
use sparkid_bid::document::DID_CONTEXT;
use sparkid_registrar::NamespaceRecord;

/// The service type of a sub-chain resolver in an AC code's document (BIF's convention).
pub const SUB_RESOLVER_TYPE: &str = "DIDSubResolver";

/// The protocol version that sub-path answers carry in `data.version`.
pub const PROTOCOL_VERSION: &str = "1.0.0";

/// The DID Core document of the bare DID `did` (`did:bid:<ac>`) rendered from its AC code's
/// delegation: the owner is the controller, each endpoint a `DIDSubResolver` service.
pub fn ac_document(did: &str, record: &NamespaceRecord) -> Value {
    let services: Vec<Value> = record
        .endpoints
        .iter()
        .enumerate()
        .map(|(i, endpoint)| {
            json!({
                "id": format!("{did}#subResolver-{}", i + 1),
                "type": SUB_RESOLVER_TYPE,
                "serviceEndpoint": endpoint,
            })
        })
        .collect();
    let mut document = Map::new();
    document.insert("@context".into(), json!([DID_CONTEXT]));
    document.insert("id".into(), json!(did));
    document.insert("controller".into(), json!(record.owner));
    if !services.is_empty() {
        document.insert("service".into(), Value::Array(services));
    }
    Value::Object(document)
}

/// The document metadata of a bare AC-code DID: the delegation's times and version.
pub fn ac_metadata(record: &NamespaceRecord) -> Map<String, Value> {
    let mut metadata = Map::new();
    metadata.insert("created".into(), json!(record.created));
    metadata.insert("updated".into(), json!(record.updated));
    metadata.insert("versionId".into(), json!(record.version_id.to_string()));
    metadata
}

/// The native BID document of a sub-chain's AC code (`extension.type` 206): the delegation's
/// owner as controller, and one `DIDSubResolver` service per resolver endpoint, with the
/// protocol's resolver extras (`version`, `protocol` 2 HTTP / 3 HTTPS, `serverType` 0 domain).
pub fn ac_native_document(did: &str, delegation: &sparkid_registrar::NamespaceRecord) -> Value {
    let services: Vec<Value> = ac_document(did, delegation)["service"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut service| {
            let https = service["serviceEndpoint"]
                .as_str()
                .is_some_and(|e| e.starts_with("https://"));
            service["version"] = json!(PROTOCOL_VERSION);
            service["protocol"] = json!(if https { 3 } else { 2 });
            service["serverType"] = json!(0);
            service
        })
        .collect();
    json!({
        "@context": [sparkid_bid::document::DID_CONTEXT],
        "version": PROTOCOL_VERSION,
        "id": did,
        "controller": delegation.owner,
        "service": services,
        "extension": { "type": 206, "ttl": 3600 },
        "created": delegation.created,
        "updated": delegation.updated,
    })
}
