//! The native BID document (\[SPEC\] §4, \[RESPROTO\] §3) and its W3C DID Core rendering.
//!
//! The native shape predates DID Core (`publicKey` with `publicKeyHex`, custom key types). Every
//! member of the reference is typed here; members this code does not know are kept in `other`
//! maps so that a document read and written again loses nothing.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use thiserror::Error;

use crate::address::{AddressError, Bid};
use crate::keys::{KeyError, PublicKey};

/// The DID Core v1 context, which a BID document's `@context` must include.
pub const DID_CONTEXT: &str = "https://www.w3.org/ns/did/v1";
/// The Multikey context, for `Multikey` verification methods.
pub const MULTIKEY_CONTEXT: &str = "https://w3id.org/security/multikey/v1";
/// The property under which the DID Core rendering keeps what only BID documents have.
pub const BID_PROPERTY: &str = "bid";
/// The IRI that the `bid` property is defined at in the rendering's embedded context.
pub const BID_PROPERTY_IRI: &str = "https://github.com/teleinfo-bif/bid#document";
/// Default cache lifetime when a document does not give `extension.ttl`.
pub const DEFAULT_TTL: u64 = 86_400;

/// Why a BID document is not acceptable. Each variant names the rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DocumentError {
    /// Not a JSON object, or a member has the wrong JSON type.
    #[error("the document does not have the BID document shape: {0}")]
    Shape(String),
    /// `@context` lacks the DID v1 context.
    #[error("@context must include \"{DID_CONTEXT}\"")]
    MissingDidContext,
    /// `id` is not a BID.
    #[error("id is not a valid BID: {0}")]
    InvalidId(AddressError),
    /// A publicKey entry's id is not `<document id>#<fragment>`.
    #[error("publicKey id {0:?} must be the document id followed by '#' and a fragment")]
    KeyIdNotInDocument(String),
    /// Two entries share an id.
    #[error("id {0:?} appears more than once")]
    DuplicateId(String),
    /// A publicKey entry's key cannot be read.
    #[error("publicKey {id:?}: {error}")]
    BadPublicKey {
        /// The entry's id.
        id: String,
        /// What is wrong with the key.
        error: KeyError,
    },
    /// A publicKey's `type` disagrees with the key bytes.
    #[error("publicKey {id:?} has type {declared:?} but its publicKeyHex holds an {actual} key")]
    KeyTypeMismatch {
        /// The entry's id.
        id: String,
        /// The declared type.
        declared: String,
        /// The type of the key bytes.
        actual: &'static str,
    },
    /// `authentication` is empty.
    #[error("authentication must name at least one publicKey")]
    NoAuthentication,
    /// A reference names no publicKey of this document.
    #[error("{relationship} references {id:?}, which is not a publicKey of this document")]
    DanglingReference {
        /// `authentication` or `extension.recovery`.
        relationship: &'static str,
        /// The reference.
        id: String,
    },
    /// A service lacks a member.
    #[error("service {0:?} needs a non-empty id, type and serviceEndpoint")]
    BadService(String),
}

/// `@context`: one string or a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Context {
    /// A single context.
    One(String),
    /// Several contexts.
    Many(Vec<Value>),
}

impl Context {
    fn includes(&self, iri: &str) -> bool {
        match self {
            Context::One(s) => s == iri,
            Context::Many(items) => items.iter().any(|v| v.as_str() == Some(iri)),
        }
    }
}

/// A `publicKey` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicKeyEntry {
    /// `<bid>#<fragment>`.
    pub id: String,
    /// `Ed25519` or `SM2` (the SDKs write `ED25519`).
    #[serde(rename = "type")]
    pub key_type: String,
    /// The controlling BID.
    pub controller: String,
    /// The BIF encoded public key in hex.
    pub public_key_hex: String,
    /// Members not in the reference.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl PublicKeyEntry {
    /// The key, read from `publicKeyHex`.
    pub fn key(&self) -> Result<PublicKey, KeyError> {
        PublicKey::from_encoded(&self.public_key_hex)
    }
}

/// An `alsoKnownAs` entry: 101 BID, 102 other DID, 103 domain name, 104 Zid, 105 Handle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlsoKnownAs {
    /// The kind of identifier.
    #[serde(rename = "type")]
    pub kind: u32,
    /// The identifier.
    pub id: String,
    /// Members not in the reference.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl AlsoKnownAs {
    /// The identifier as a URI, as DID Core's `alsoKnownAs` requires: DIDs and anything with a
    /// scheme stay as they are; a domain name becomes `dns:`, a Handle `hdl:`, a Zid `urn:zid:`.
    pub fn to_uri(&self) -> String {
        let has_scheme = self.id.split_once(':').is_some_and(|(scheme, _)| {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !scheme.contains('.')
        });
        if has_scheme {
            return self.id.clone();
        }
        match self.kind {
            103 => format!("dns:{}", self.id),
            105 => format!("hdl:{}", self.id),
            104 => format!("urn:zid:{}", self.id),
            _ => self.id.clone(),
        }
    }
}

/// A `service` entry, with the resolver extras (`version`, `protocol`, `serverType`, `port`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// The service id, usually `<bid>#<fragment>`.
    pub id: String,
    /// `DIDResolver`, `DIDSubResolver`, `DIDStorage`, ... or any type.
    #[serde(rename = "type")]
    pub service_type: Value,
    /// A URL, a list or a map.
    pub service_endpoint: Value,
    /// Extras and members not in the reference.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl Service {
    /// The endpoint as a URI, for a BID resolver service whose `serviceEndpoint` is a bare host
    /// (`serverType` 0, a domain name, or 1, an IP address) with `protocol` (0 UDP, 1 TCP,
    /// 2 HTTP, 3 HTTPS) and `port` beside it: `https://192.168.1.23:8080` for the spec's example
    /// `{"serverType":1,"protocol":3,"serviceEndpoint":"192.168.1.23","port":8080}`. DID Core
    /// requires a URI there. None when the endpoint is already a URI (or not a string).
    ///
    /// Without `protocol` the scheme is `https`: the BID resolution protocol runs over HTTP or
    /// HTTPS, and the secure one is the safe guess. An IPv6 address is bracketed.
    pub fn endpoint_uri(&self) -> Option<String> {
        let host = self.service_endpoint.as_str()?.trim();
        // `fe80::1` reads like a scheme; an IP address is a bare host whatever it looks like.
        let ip = host.parse::<std::net::IpAddr>().is_ok();
        if host.is_empty() || (!ip && has_scheme(host)) {
            return None;
        }
        let number = |name: &str| match self.other.get(name) {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        let scheme = match number("protocol") {
            Some(0) => "udp",
            Some(1) => "tcp",
            Some(2) => "http",
            _ => "https",
        };
        let (authority, path) = match host.find('/') {
            Some(i) => host.split_at(i),
            None => (host, ""),
        };
        let authority = if authority.contains(':') && !authority.starts_with('[') {
            format!("[{authority}]")
        } else {
            authority.to_string()
        };
        let port = number("port")
            .filter(|p| *p <= u64::from(u16::MAX))
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        Some(format!("{scheme}://{authority}{port}{path}"))
    }
}

/// Whether `text` starts with an RFC 3986 scheme and `:` (`https:`, `did:`, `urn:`). A bare
/// host, `192.168.1.23` or `::1`, does not.
fn has_scheme(text: &str) -> bool {
    let Some((scheme, _)) = text.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
}

/// `proof` of a native document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentProof {
    /// The publicKey id that signed.
    pub creator: String,
    /// BIF Base58 (or SDK hex) signature.
    pub signature_value: String,
    /// Members not in the reference.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `extension`: everything BID-specific.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Extension {
    /// publicKey ids allowed to deactivate or recover.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recovery: Vec<String>,
    /// Cache lifetime in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
    /// A third party's signature over the public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegate_sign: Option<Value>,
    /// 101 person, 102 enterprise, ... 206 AC code, 999 other.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<u32>,
    /// `{key, desc, encrypt, format, value}` attributes, or credential attributes (type 205).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Value>,
    /// AC codes owned by this main-chain BID.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acsns: Vec<String>,
    /// `{id, type}` credential references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verifiable_credentials: Vec<Value>,
    /// Members not in the reference.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// A native BID document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BidDocument {
    /// Must include [`DID_CONTEXT`].
    #[serde(rename = "@context")]
    pub context: Context,
    /// The document version, e.g. `1.0.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The BID.
    pub id: String,
    /// Keys.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_key: Vec<PublicKeyEntry>,
    /// publicKey ids that authenticate (and sign create and update).
    #[serde(default)]
    pub authentication: Vec<String>,
    /// Other names of this identity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_known_as: Vec<AlsoKnownAs>,
    /// Services.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service: Vec<Service>,
    /// `YYYY-MM-DDThh:mm:ssZ`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// `YYYY-MM-DDThh:mm:ssZ`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    /// A document proof.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<DocumentProof>,
    /// BID-specific members.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extension: Option<Extension>,
    /// Members not in the reference.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl BidDocument {
    /// Reads a document from JSON.
    pub fn from_value(value: Value) -> Result<BidDocument, DocumentError> {
        if !value.is_object() {
            return Err(DocumentError::Shape("a document is a JSON object".into()));
        }
        serde_json::from_value(value).map_err(|e| DocumentError::Shape(e.to_string()))
    }

    /// The document as JSON.
    pub fn to_value(&self) -> Value {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The parsed `id`.
    pub fn bid(&self) -> Result<Bid, DocumentError> {
        self.id.parse().map_err(DocumentError::InvalidId)
    }

    /// Finds a publicKey entry by id.
    pub fn find_key(&self, id: &str) -> Option<&PublicKeyEntry> {
        self.public_key.iter().find(|k| k.id == id)
    }

    /// `extension.recovery`, empty when absent.
    pub fn recovery(&self) -> &[String] {
        self.extension
            .as_ref()
            .map(|e| e.recovery.as_slice())
            .unwrap_or(&[])
    }

    /// `extension.ttl` or the default.
    pub fn ttl(&self) -> u64 {
        self.extension
            .as_ref()
            .and_then(|e| e.ttl)
            .unwrap_or(DEFAULT_TTL)
    }

    /// Checks the method's rules for a document that is to be written to the ledger.
    pub fn validate(&self) -> Result<(), DocumentError> {
        if !self.context.includes(DID_CONTEXT) {
            return Err(DocumentError::MissingDidContext);
        }
        self.bid()?;
        let prefix = format!("{}#", self.id);
        let mut seen = std::collections::HashSet::new();
        for entry in &self.public_key {
            if !entry.id.starts_with(&prefix) || entry.id.len() == prefix.len() {
                return Err(DocumentError::KeyIdNotInDocument(entry.id.clone()));
            }
            if !seen.insert(entry.id.as_str()) {
                return Err(DocumentError::DuplicateId(entry.id.clone()));
            }
            let key = entry.key().map_err(|error| DocumentError::BadPublicKey {
                id: entry.id.clone(),
                error,
            })?;
            if !entry.key_type.eq_ignore_ascii_case(key.type_name()) {
                return Err(DocumentError::KeyTypeMismatch {
                    id: entry.id.clone(),
                    declared: entry.key_type.clone(),
                    actual: key.type_name(),
                });
            }
        }
        if self.authentication.is_empty() {
            return Err(DocumentError::NoAuthentication);
        }
        let refs = self
            .authentication
            .iter()
            .map(|id| ("authentication", id))
            .chain(self.recovery().iter().map(|id| ("extension.recovery", id)));
        for (relationship, id) in refs {
            if self.find_key(id).is_none() {
                return Err(DocumentError::DanglingReference {
                    relationship,
                    id: id.clone(),
                });
            }
        }
        let mut service_ids = std::collections::HashSet::new();
        for service in &self.service {
            let empty_type = matches!(&service.service_type, Value::String(s) if s.is_empty())
                || service.service_type.is_null();
            if service.id.is_empty() || empty_type || service.service_endpoint.is_null() {
                return Err(DocumentError::BadService(service.id.clone()));
            }
            if !service_ids.insert(service.id.as_str()) {
                return Err(DocumentError::DuplicateId(service.id.clone()));
            }
        }
        Ok(())
    }

    /// The W3C DID Core rendering.
    ///
    /// Keys become `Multikey` verification methods with `publicKeyMultibase`; `authentication`
    /// stays a list of references; `alsoKnownAs` becomes URIs; services keep their extras. What
    /// only BID documents have (`version`, `extension`, the typed `alsoKnownAs`, the native
    /// `proof`, unknown members) is kept under the [`BID_PROPERTY`] member, declared as a JSON
    /// literal in an embedded context so that JSON-LD processing keeps it too.
    pub fn to_did_core(&self) -> Value {
        let mut doc = Map::new();
        doc.insert(
            "@context".into(),
            json!([
                DID_CONTEXT,
                MULTIKEY_CONTEXT,
                { BID_PROPERTY: { "@id": BID_PROPERTY_IRI, "@type": "@json" } }
            ]),
        );
        doc.insert("id".into(), json!(self.id));
        if !self.public_key.is_empty() {
            let methods: Vec<Value> = self
                .public_key
                .iter()
                .map(|entry| {
                    let mut vm = Map::new();
                    vm.insert("id".into(), json!(entry.id));
                    vm.insert("controller".into(), json!(entry.controller));
                    // From the encoded bytes, without decompressing the point: a stored
                    // document was validated (its points too) when it was written.
                    match PublicKey::multibase_of_encoded(&entry.public_key_hex) {
                        Ok(multibase) => {
                            vm.insert("type".into(), json!("Multikey"));
                            vm.insert("publicKeyMultibase".into(), json!(multibase));
                        }
                        // A stored document was validated; this only keeps an odd key visible.
                        Err(_) => {
                            vm.insert("type".into(), json!(entry.key_type));
                            vm.insert("publicKeyHex".into(), json!(entry.public_key_hex));
                        }
                    }
                    Value::Object(vm)
                })
                .collect();
            doc.insert("verificationMethod".into(), Value::Array(methods));
        }
        doc.insert("authentication".into(), json!(self.authentication));
        if !self.also_known_as.is_empty() {
            let uris: Vec<String> = self.also_known_as.iter().map(AlsoKnownAs::to_uri).collect();
            doc.insert("alsoKnownAs".into(), json!(uris));
        }
        if !self.service.is_empty() {
            let services: Vec<Value> = self
                .service
                .iter()
                .map(|s| {
                    let mut value = serde_json::to_value(s).unwrap_or(Value::Null);
                    if let Some(uri) = s.endpoint_uri() {
                        value["serviceEndpoint"] = json!(uri);
                    }
                    value
                })
                .collect();
            doc.insert("service".into(), Value::Array(services));
        }
        let mut bid = Map::new();
        if let Some(version) = &self.version {
            bid.insert("version".into(), json!(version));
        }
        if let Some(extension) = &self.extension {
            bid.insert(
                "extension".into(),
                serde_json::to_value(extension).unwrap_or(Value::Null),
            );
        }
        if !self.also_known_as.is_empty() {
            bid.insert(
                "alsoKnownAs".into(),
                serde_json::to_value(&self.also_known_as).unwrap_or(Value::Null),
            );
        }
        if let Some(proof) = &self.proof {
            bid.insert(
                "proof".into(),
                serde_json::to_value(proof).unwrap_or(Value::Null),
            );
        }
        if let Context::Many(items) = &self.context {
            if items.len() > 1 || !self.context.includes(DID_CONTEXT) {
                bid.insert("@context".into(), json!(items));
            }
        }
        for (k, v) in &self.other {
            bid.insert(k.clone(), v.clone());
        }
        if !bid.is_empty() {
            doc.insert(BID_PROPERTY.into(), Value::Object(bid));
        }
        Value::Object(doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;

    fn sample() -> (BidDocument, PrivateKey) {
        let key = PrivateKey::generate();
        let bid = Bid::derive(&key.public_key(), None).unwrap().to_string();
        let doc = json!({
            "@context": [DID_CONTEXT],
            "version": "1.0.0",
            "id": bid,
            "publicKey": [{"id": format!("{bid}#key-1"), "type": "Ed25519", "controller": bid,
                           "publicKeyHex": key.public_key().to_encoded()}],
            "authentication": [format!("{bid}#key-1")],
            "alsoKnownAs": [{"type": 105, "id": "88.111.1/abc"}, {"type": 101, "id": "did:bid:efJgt44mNDewKK1VEN454R17cjso3mSG"}],
            "service": [{"id": format!("{bid}#resolver"), "type": "DIDResolver", "serviceEndpoint": "https://r.example", "protocol": 3}],
            "extension": {"recovery": [format!("{bid}#key-1")], "ttl": 600, "type": 101, "future": {"x": 1}},
            "unknownTop": true
        });
        (BidDocument::from_value(doc).unwrap(), key)
    }

    #[test]
    fn round_trip_keeps_every_member() {
        let (doc, _) = sample();
        let again = BidDocument::from_value(doc.to_value()).unwrap();
        assert_eq!(again, doc);
        assert_eq!(doc.to_value()["extension"]["future"]["x"], 1);
        assert_eq!(doc.to_value()["unknownTop"], true);
        doc.validate().unwrap();
        assert_eq!(doc.ttl(), 600);
    }

    #[test]
    fn did_core_rendering_uses_multikey_and_keeps_bid_members() {
        let (doc, key) = sample();
        let core = doc.to_did_core();
        assert_eq!(core["verificationMethod"][0]["type"], "Multikey");
        assert_eq!(
            core["verificationMethod"][0]["publicKeyMultibase"],
            json!(key.public_key().to_multibase())
        );
        assert!(core["verificationMethod"][0]["publicKeyMultibase"]
            .as_str()
            .unwrap()
            .starts_with("z6Mk"));
        assert_eq!(
            core["authentication"][0],
            json!(format!("{}#key-1", doc.id))
        );
        assert_eq!(
            core["alsoKnownAs"],
            json!([
                "hdl:88.111.1/abc",
                "did:bid:efJgt44mNDewKK1VEN454R17cjso3mSG"
            ])
        );
        assert_eq!(core["service"][0]["protocol"], 3);
        assert_eq!(core["bid"]["extension"]["ttl"], 600);
        assert_eq!(core["bid"]["extension"]["future"]["x"], 1);
        assert_eq!(core["bid"]["unknownTop"], true);
        assert_eq!(core["bid"]["alsoKnownAs"][0]["type"], 105);
    }

    #[test]
    fn bare_host_endpoints_become_uris() {
        let (doc, _) = sample();
        let service = |extra: Value| {
            let mut s = json!({"id": format!("{}#sub", doc.id), "type": "DIDSubResolver"});
            for (k, v) in extra.as_object().unwrap() {
                s[k] = v.clone();
            }
            serde_json::from_value::<Service>(s).unwrap()
        };
        // The spec's example.
        let spec = service(json!({"version": "1.0.0", "serverType": 1, "protocol": 3,
                                  "serviceEndpoint": "192.168.1.23", "port": 8080}));
        assert_eq!(
            spec.endpoint_uri().as_deref(),
            Some("https://192.168.1.23:8080")
        );
        let cases = [
            (
                json!({"serverType": "1", "protocol": "2", "serviceEndpoint": "10.0.0.1", "port": "80"}),
                Some("http://10.0.0.1:80"),
            ),
            (
                json!({"serverType": 0, "protocol": 3, "serviceEndpoint": "resolver.example/bid"}),
                Some("https://resolver.example/bid"),
            ),
            (
                json!({"serverType": 1, "protocol": 1, "serviceEndpoint": "fe80::1", "port": 9000}),
                Some("tcp://[fe80::1]:9000"),
            ),
            (
                json!({"serviceEndpoint": "192.168.1.23"}),
                Some("https://192.168.1.23"),
            ),
            (
                json!({"protocol": 3, "serviceEndpoint": "https://r.example", "port": 1}),
                None,
            ),
            (json!({"serviceEndpoint": {"uri": "x"}}), None),
        ];
        for (fields, want) in cases {
            assert_eq!(
                service(fields.clone()).endpoint_uri().as_deref(),
                want,
                "{fields}"
            );
        }
        let mut with_ip = doc.clone();
        with_ip.service = vec![spec];
        let core = with_ip.to_did_core();
        assert_eq!(
            core["service"][0]["serviceEndpoint"],
            "https://192.168.1.23:8080"
        );
        // The BID fields stay for BID clients.
        assert_eq!(core["service"][0]["port"], 8080);
        assert_eq!(core["service"][0]["serverType"], 1);
    }

    #[test]
    fn validation_names_the_broken_rule() {
        let (doc, _) = sample();
        let mut d = doc.clone();
        d.authentication = vec![];
        assert_eq!(d.validate(), Err(DocumentError::NoAuthentication));
        let mut d = doc.clone();
        d.authentication = vec![format!("{}#nope", doc.id)];
        assert!(matches!(
            d.validate(),
            Err(DocumentError::DanglingReference {
                relationship: "authentication",
                ..
            })
        ));
        let mut d = doc.clone();
        d.public_key[0].key_type = "SM2".into();
        assert!(matches!(
            d.validate(),
            Err(DocumentError::KeyTypeMismatch { .. })
        ));
        let mut d = doc.clone();
        d.public_key[0].id = "did:bid:other#key-1".into();
        assert!(matches!(
            d.validate(),
            Err(DocumentError::KeyIdNotInDocument(_))
        ));
        let mut d = doc.clone();
        d.context = Context::One("https://example.org".into());
        assert_eq!(d.validate(), Err(DocumentError::MissingDidContext));
        let mut d = doc.clone();
        d.public_key[0].public_key_hex = "b06566zz".into();
        assert!(matches!(
            d.validate(),
            Err(DocumentError::BadPublicKey { .. })
        ));
        assert!(matches!(
            BidDocument::from_value(json!([1])),
            Err(DocumentError::Shape(_))
        ));
        assert!(matches!(
            BidDocument::from_value(json!({"id": 5})),
            Err(DocumentError::Shape(_))
        ));
    }
}
