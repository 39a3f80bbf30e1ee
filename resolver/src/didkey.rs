//! `did:key`, computed in process: the did:key Method v0.7 (W3C CCG) read operation.
//!
//! The method-specific id is a base58btc multibase (`z…`) multicodec public key. Supported key
//! types: Ed25519 (`0xed`, `z6Mk…`), X25519 (`0xec`, `z6LS…`), secp256k1 (`0xe7`, `zQ3s…`) and
//! P-256 (`0x1200`, `zDna…`); every key is checked (length, and that it is a point of its curve)
//! before a document is made. P-384, P-521, BLS12-381 and RSA keys are recognized but not
//! rendered ([`DidKeyError::Unsupported`]).
//!
//! Resolution options (the spec's "document creation" options):
//! - `publicKeyFormat`: `Multikey` (default), `Ed25519VerificationKey2020`,
//!   `Ed25519VerificationKey2018`, `X25519KeyAgreementKey2020`, `X25519KeyAgreementKey2019`,
//!   `JsonWebKey2020`, `EcdsaSecp256k1VerificationKey2019`;
//! - `enableEncryptionKeyDerivation` (default false): adds a `keyAgreement` key, for Ed25519 the
//!   X25519 key derived from it (the birational map), for secp256k1 and P-256 the key itself.
//!
//! Why not the `did-method-key` crate (ssi): version 0.5.0 builds on this toolchain (about three
//! minutes, 300 crates), but it panics on some input (an `unwrap` on the DID it rebuilds),
//! renders `did:key:zzzz` and truncated keys as if they were keys, and leaves out the
//! `capabilityInvocation`, `capabilityDelegation` and `keyAgreement` members that the spec and
//! its test vectors have. What remains of it here is small: multibase, multicodec and the key
//! checks of the curves' own crates.

use base64::Engine;
use serde_json::{json, Map, Value};
use sparkid_bid::base58;
use thiserror::Error;

/// The DID Core context.
pub const DID_V1: &str = "https://www.w3.org/ns/did/v1";

const ED25519_PUB: u64 = 0xed;
const X25519_PUB: u64 = 0xec;
const SECP256K1_PUB: u64 = 0xe7;
const P256_PUB: u64 = 0x1200;

/// Why a did:key cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DidKeyError {
    /// Not a did:key: bad multibase, multicodec, key length or key (the message names the
    /// spec's error: `invalidDid`, `invalidPublicKeyLength`, `invalidPublicKey`).
    #[error("{0}")]
    InvalidDid(String),
    /// An option the method does not accept (`unsupportedPublicKeyType`,
    /// `invalidPublicKeyType`, or a value that is not a boolean).
    #[error("{0}")]
    InvalidOptions(String),
    /// A key type the spec knows but this resolver does not render.
    #[error("{0}")]
    Unsupported(String),
}

/// The document-creation options of did:key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyOptions {
    /// `publicKeyFormat`; none is `Multikey`.
    pub public_key_format: Option<String>,
    /// `enableEncryptionKeyDerivation`.
    pub enable_encryption_key_derivation: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    Ed25519,
    X25519,
    Secp256k1,
    P256,
}

impl KeyType {
    fn name(self) -> &'static str {
        match self {
            KeyType::Ed25519 => "Ed25519",
            KeyType::X25519 => "X25519",
            KeyType::Secp256k1 => "secp256k1",
            KeyType::P256 => "P-256",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Multikey,
    Ed25519_2020,
    Ed25519_2018,
    X25519_2020,
    X25519_2019,
    Jwk2020,
    Secp256k1_2019,
}

impl Format {
    fn parse(name: &str) -> Option<Format> {
        Some(match name {
            "Multikey" => Format::Multikey,
            "Ed25519VerificationKey2020" => Format::Ed25519_2020,
            "Ed25519VerificationKey2018" => Format::Ed25519_2018,
            "X25519KeyAgreementKey2020" => Format::X25519_2020,
            "X25519KeyAgreementKey2019" => Format::X25519_2019,
            "JsonWebKey2020" => Format::Jwk2020,
            "EcdsaSecp256k1VerificationKey2019" => Format::Secp256k1_2019,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Format::Multikey => "Multikey",
            Format::Ed25519_2020 => "Ed25519VerificationKey2020",
            Format::Ed25519_2018 => "Ed25519VerificationKey2018",
            Format::X25519_2020 => "X25519KeyAgreementKey2020",
            Format::X25519_2019 => "X25519KeyAgreementKey2019",
            Format::Jwk2020 => "JsonWebKey2020",
            Format::Secp256k1_2019 => "EcdsaSecp256k1VerificationKey2019",
        }
    }

    fn context(self) -> &'static str {
        match self {
            Format::Multikey => "https://w3id.org/security/multikey/v1",
            Format::Ed25519_2020 => "https://w3id.org/security/suites/ed25519-2020/v1",
            Format::Ed25519_2018 => "https://w3id.org/security/suites/ed25519-2018/v1",
            Format::X25519_2020 => "https://w3id.org/security/suites/x25519-2020/v1",
            Format::X25519_2019 => "https://w3id.org/security/suites/x25519-2019/v1",
            Format::Jwk2020 => "https://w3id.org/security/suites/jws-2020/v1",
            Format::Secp256k1_2019 => "https://w3id.org/security/suites/secp256k1-2019/v1",
        }
    }

    /// Whether keys of `key` type can be written in this format.
    fn fits(self, key: KeyType) -> bool {
        match self {
            Format::Multikey | Format::Jwk2020 => true,
            Format::Ed25519_2020 | Format::Ed25519_2018 => key == KeyType::Ed25519,
            Format::X25519_2020 | Format::X25519_2019 => key == KeyType::X25519,
            Format::Secp256k1_2019 => key == KeyType::Secp256k1,
        }
    }

    /// The format of the X25519 key derived from an Ed25519 key written in this format.
    fn for_derived_x25519(self) -> Format {
        match self {
            Format::Ed25519_2018 => Format::X25519_2019,
            Format::Ed25519_2020 => Format::X25519_2020,
            other => other,
        }
    }
}

/// A decoded multicodec public key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    kind: KeyType,
    raw: Vec<u8>,
}

impl Key {
    /// `z` + base58btc(multicodec varint ‖ raw).
    fn multibase(&self) -> String {
        let codec = match self.kind {
            KeyType::Ed25519 => ED25519_PUB,
            KeyType::X25519 => X25519_PUB,
            KeyType::Secp256k1 => SECP256K1_PUB,
            KeyType::P256 => P256_PUB,
        };
        let mut bytes = varint(codec);
        bytes.extend_from_slice(&self.raw);
        format!("z{}", base58::BITCOIN.encode(&bytes))
    }

    fn jwk(&self) -> Result<Value, DidKeyError> {
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        Ok(match self.kind {
            KeyType::Ed25519 => json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&self.raw)}),
            KeyType::X25519 => json!({"kty": "OKP", "crv": "X25519", "x": b64(&self.raw)}),
            KeyType::Secp256k1 => {
                use k256::elliptic_curve::sec1::ToEncodedPoint;
                let key = k256::PublicKey::from_sec1_bytes(&self.raw)
                    .map_err(|_| invalid_key(self.kind))?;
                let point = key.to_encoded_point(false);
                let (Some(x), Some(y)) = (point.x(), point.y()) else {
                    return Err(invalid_key(self.kind));
                };
                json!({"kty": "EC", "crv": "secp256k1", "x": b64(x), "y": b64(y)})
            }
            KeyType::P256 => {
                use p256::elliptic_curve::sec1::ToEncodedPoint;
                let key = p256::PublicKey::from_sec1_bytes(&self.raw)
                    .map_err(|_| invalid_key(self.kind))?;
                let point = key.to_encoded_point(false);
                let (Some(x), Some(y)) = (point.x(), point.y()) else {
                    return Err(invalid_key(self.kind));
                };
                json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)})
            }
        })
    }

    /// The verification method `did#<multibase>` in `format`.
    fn verification_method(&self, did: &str, format: Format) -> Result<Value, DidKeyError> {
        let multibase = self.multibase();
        let mut vm = Map::new();
        vm.insert("id".into(), json!(format!("{did}#{multibase}")));
        vm.insert("type".into(), json!(format.name()));
        vm.insert("controller".into(), json!(did));
        match format {
            Format::Multikey | Format::Ed25519_2020 | Format::X25519_2020 => {
                vm.insert("publicKeyMultibase".into(), json!(multibase));
            }
            Format::Ed25519_2018 | Format::X25519_2019 | Format::Secp256k1_2019 => {
                vm.insert(
                    "publicKeyBase58".into(),
                    json!(base58::BITCOIN.encode(&self.raw)),
                );
            }
            Format::Jwk2020 => {
                vm.insert("publicKeyJwk".into(), self.jwk()?);
            }
        }
        Ok(Value::Object(vm))
    }
}

fn invalid_key(kind: KeyType) -> DidKeyError {
    DidKeyError::InvalidDid(format!(
        "invalidPublicKey: the key is not a {} public key",
        kind.name()
    ))
}

/// Unsigned LEB128, as multicodec writes codes.
fn varint(mut n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Reads a multicodec code (at most 9 bytes); returns it and the bytes after it.
fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut n: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(9) {
        n |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((n, &bytes[i + 1..]));
        }
    }
    None
}

/// The longest base58btc text of a did:key id this resolver decodes: an RSA-4096 key, the
/// longest did:key names, takes about 740 characters. Longer text is refused before decoding,
/// whose cost grows with the square of the length.
pub const MAX_ENCODED_KEY_LEN: usize = 1024;

/// Decodes and checks the key of a did:key method-specific id.
fn decode(msi: &str) -> Result<Key, DidKeyError> {
    let Some(encoded) = msi.strip_prefix('z') else {
        return Err(DidKeyError::InvalidDid(format!(
            "invalidDid: a did:key id is a base58btc multibase value starting with \"z\", not {:?}",
            msi.chars().next().unwrap_or(' ')
        )));
    };
    let bytes = base58::BITCOIN
        .decode_at_most(encoded, MAX_ENCODED_KEY_LEN)
        .map_err(|e| match e {
            base58::Base58Error::TooLong { length, max } => DidKeyError::InvalidDid(format!(
                "invalidDid: the did:key id is {length} characters after \"z\"; no did:key \
                 key type takes more than {max}"
            )),
            e => {
                DidKeyError::InvalidDid(format!("invalidDid: the did:key id is not base58btc: {e}"))
            }
        })?;
    let Some((codec, raw)) = read_varint(&bytes) else {
        return Err(DidKeyError::InvalidDid(
            "invalidDid: the did:key id does not start with a multicodec code".into(),
        ));
    };
    let (kind, length) = match codec {
        ED25519_PUB => (KeyType::Ed25519, 32),
        X25519_PUB => (KeyType::X25519, 32),
        SECP256K1_PUB => (KeyType::Secp256k1, 33),
        P256_PUB => (KeyType::P256, 33),
        0x1201 | 0x1202 | 0xeb | 0xee | 0x1205 => {
            let name = match codec {
                0x1201 => "P-384",
                0x1202 => "P-521",
                0xeb => "BLS12-381 G2",
                0xee => "BLS12-381 G1",
                _ => "RSA",
            };
            return Err(DidKeyError::Unsupported(format!(
                "{name} did:key identifiers are valid but not rendered by this resolver \
                 (supported: Ed25519, X25519, secp256k1, P-256)"
            )));
        }
        other => {
            return Err(DidKeyError::InvalidDid(format!(
                "invalidDid: multicodec 0x{other:x} is not a public key type of did:key"
            )))
        }
    };
    if raw.len() != length {
        return Err(DidKeyError::InvalidDid(format!(
            "invalidPublicKeyLength: a {} key is {length} bytes, this one is {}",
            kind.name(),
            raw.len()
        )));
    }
    let valid = match kind {
        KeyType::Ed25519 => <[u8; 32]>::try_from(raw)
            .ok()
            .is_some_and(|b| ed25519_dalek::VerifyingKey::from_bytes(&b).is_ok()),
        // Every 32-byte string is an X25519 u-coordinate.
        KeyType::X25519 => true,
        KeyType::Secp256k1 => k256::PublicKey::from_sec1_bytes(raw).is_ok(),
        KeyType::P256 => p256::PublicKey::from_sec1_bytes(raw).is_ok(),
    };
    if !valid {
        return Err(invalid_key(kind));
    }
    Ok(Key {
        kind,
        raw: raw.to_vec(),
    })
}

/// The X25519 key that an Ed25519 key maps to (RFC 7748's birational map).
fn derive_x25519(ed25519: &Key) -> Result<Key, DidKeyError> {
    let bytes =
        <[u8; 32]>::try_from(ed25519.raw.as_slice()).map_err(|_| invalid_key(ed25519.kind))?;
    let key =
        ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| invalid_key(ed25519.kind))?;
    Ok(Key {
        kind: KeyType::X25519,
        raw: key.to_montgomery().to_bytes().to_vec(),
    })
}

/// Resolves `did:key:<msi>` to its DID document.
pub fn resolve(msi: &str, options: &KeyOptions) -> Result<Value, DidKeyError> {
    let format = match options.public_key_format.as_deref() {
        None => Format::Multikey,
        Some(name) => Format::parse(name).ok_or_else(|| {
            DidKeyError::InvalidOptions(format!(
                "unsupportedPublicKeyType: publicKeyFormat {name:?} is not one of Multikey, \
                 Ed25519VerificationKey2020, Ed25519VerificationKey2018, \
                 X25519KeyAgreementKey2020, X25519KeyAgreementKey2019, JsonWebKey2020, \
                 EcdsaSecp256k1VerificationKey2019"
            ))
        })?,
    };
    let key = decode(msi)?;
    if !format.fits(key.kind) {
        return Err(DidKeyError::InvalidOptions(format!(
            "invalidPublicKeyType: a {} key cannot be written as {}",
            key.kind.name(),
            format.name()
        )));
    }
    let did = format!("did:key:{msi}");
    let vm = key.verification_method(&did, format)?;
    let vm_id = vm["id"].clone();
    let mut contexts = vec![DID_V1, format.context()];
    let mut methods = vec![vm];
    let mut doc = Map::new();
    let mut relationships: Vec<(&str, Value)> = Vec::new();
    if key.kind == KeyType::X25519 {
        // An encryption key: key agreement only.
        relationships.push(("keyAgreement", json!([vm_id])));
    } else {
        for name in [
            "authentication",
            "assertionMethod",
            "capabilityInvocation",
            "capabilityDelegation",
        ] {
            relationships.push((name, json!([vm_id])));
        }
        if options.enable_encryption_key_derivation {
            match key.kind {
                KeyType::Ed25519 => {
                    let x25519 = derive_x25519(&key)?;
                    let x_format = format.for_derived_x25519();
                    let x_vm = x25519.verification_method(&did, x_format)?;
                    relationships.push(("keyAgreement", json!([x_vm["id"]])));
                    if !contexts.contains(&x_format.context()) {
                        contexts.push(x_format.context());
                    }
                    methods.push(x_vm);
                }
                _ => relationships.push(("keyAgreement", json!([vm_id]))),
            }
        }
    }
    doc.insert("@context".into(), json!(contexts));
    doc.insert("id".into(), json!(did));
    doc.insert("verificationMethod".into(), Value::Array(methods));
    for (name, value) in relationships {
        doc.insert(name.into(), value);
    }
    Ok(Value::Object(doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(format: Option<&str>, derive: bool) -> KeyOptions {
        KeyOptions {
            public_key_format: format.map(str::to_string),
            enable_encryption_key_derivation: derive,
        }
    }

    const ED: &str = "z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3djdX3mDooWp";

    /// The did:key spec's test vector `test-vectors/ed25519-x25519.json`, seed 0 (the whole
    /// document, with the X25519 key derived).
    #[test]
    fn ed25519_vector_with_derived_x25519_matches_the_whole_document() {
        let did = format!("did:key:{ED}");
        let x = "z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW";
        let expected = json!({
          "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/suites/ed25519-2018/v1",
            "https://w3id.org/security/suites/x25519-2019/v1"
          ],
          "id": did,
          "verificationMethod": [
            { "id": format!("{did}#{ED}"), "type": "Ed25519VerificationKey2018",
              "controller": did, "publicKeyBase58": "4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS" },
            { "id": format!("{did}#{x}"), "type": "X25519KeyAgreementKey2019",
              "controller": did, "publicKeyBase58": "7By6kV2t2d188odEM4ExAve1UithKT6dLva4dwsDT3ak" }
          ],
          "assertionMethod": [format!("{did}#{ED}")],
          "authentication": [format!("{did}#{ED}")],
          "capabilityInvocation": [format!("{did}#{ED}")],
          "capabilityDelegation": [format!("{did}#{ED}")],
          "keyAgreement": [format!("{did}#{x}")]
        });
        let got = resolve(ED, &opts(Some("Ed25519VerificationKey2018"), true)).unwrap();
        assert_eq!(got, expected);
    }

    /// More vectors of the same file: seeds 1 to 4, their Ed25519 and derived X25519 keys.
    #[test]
    fn more_ed25519_vectors() {
        for (msi, ed58, x_msi, x58) in [
            (
                "z6MkjchhfUsD6mmvni8mCdXHw216Xrm9bQe2mBH1P5RDjVJG",
                "6ASf5EcmmEHTgDJ4X4ZT5vT6iHVJBXPg5AN5YoTCpGWt",
                "z6LSrHyXiPBhUbvPUtyUCdf32sniiMGPTAesgHrtEa4FePtr",
                "FcoNC5NqP9CePWbhfz95iHaEsCjGkZUioK9Ck7Qiw286",
            ),
            (
                "z6MknGc3ocHs3zdPiJbnaaqDi58NGb4pk1Sp9WxWufuXSdxf",
                "8pM1DN3RiT8vbom5u1sNryaNT1nyL8CTTW3b5PwWXRBH",
                "z6LSkkqoZRC34AEpbkhZCqLDcHQVAxuLpQ7kC8XCXMVUfvjE",
                "A5fe37PAxhX5WNKngBpGHhC1KpNE7nwbK9oX2tqwxYxU",
            ),
            (
                "z6MkvqoYXQfDDJRv8L4wKzxYeuKyVZBfi9Qo6Ro8MiLH3kDQ",
                "HPYVwAQmskwT1qEEeRzhoomyfyupJGASQQtCXSNG8XS2",
                "z6LSiUo6AEDat8Ze4nQzDo67SGuHLLwsUGkxndHGUjsywHow",
                "7ocvdvQinfqtyQ3Dh9aA7ggoVCQkmfaoueZazHETDv3B",
            ),
            (
                "z6MkwW6aqMnjgrhJXFUko3NnZPGzVpkNzhYK7yEhnsibmLwL",
                "J3qYF7YJMKCqQke47UQwiHizgFUXapHxRxKmxbkar89x",
                "z6LSrGb3qm4xMCEBjvwkLb2WEcXfTM94Tu1RyGCbT5wbg8i9",
                "FbQtKTG6FjWSeYZyowWYv2KBcCbwmHqH6HUuxdJ4xkwP",
            ),
        ] {
            let doc = resolve(msi, &opts(Some("Ed25519VerificationKey2018"), true)).unwrap();
            let did = format!("did:key:{msi}");
            assert_eq!(
                doc["verificationMethod"][0]["publicKeyBase58"], ed58,
                "{msi}"
            );
            assert_eq!(
                doc["verificationMethod"][1]["publicKeyBase58"], x58,
                "{msi}"
            );
            assert_eq!(
                doc["keyAgreement"][0],
                json!(format!("{did}#{x_msi}")),
                "{msi}"
            );
        }
    }

    #[test]
    fn the_default_is_multikey_with_the_id_as_the_key() {
        let did = format!("did:key:{ED}");
        let doc = resolve(ED, &KeyOptions::default()).unwrap();
        assert_eq!(
            doc,
            json!({
                "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
                "id": did,
                "verificationMethod": [{ "id": format!("{did}#{ED}"), "type": "Multikey",
                    "controller": did, "publicKeyMultibase": ED }],
                "authentication": [format!("{did}#{ED}")],
                "assertionMethod": [format!("{did}#{ED}")],
                "capabilityInvocation": [format!("{did}#{ED}")],
                "capabilityDelegation": [format!("{did}#{ED}")],
            })
        );
        // Multikey with derivation: the X25519 key as a Multikey too.
        let doc = resolve(ED, &opts(None, true)).unwrap();
        assert_eq!(
            doc["verificationMethod"][1]["publicKeyMultibase"],
            "z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW"
        );
        assert_eq!(doc["@context"].as_array().map(Vec::len), Some(2));
        // Ed25519VerificationKey2020 writes the multibase key.
        let doc = resolve(ED, &opts(Some("Ed25519VerificationKey2020"), false)).unwrap();
        assert_eq!(doc["verificationMethod"][0]["publicKeyMultibase"], ED);
        assert_eq!(
            doc["@context"][1],
            "https://w3id.org/security/suites/ed25519-2020/v1"
        );
    }

    /// `test-vectors/secp256k1.json`: the first vector's whole document.
    #[test]
    fn secp256k1_vector_matches_the_whole_document() {
        let msi = "zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme";
        let did = format!("did:key:{msi}");
        let vm_id = format!("{did}#{msi}");
        let expected = json!({
          "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/suites/secp256k1-2019/v1"],
          "id": did,
          "verificationMethod": [{ "id": vm_id, "type": "EcdsaSecp256k1VerificationKey2019",
              "controller": did, "publicKeyBase58": "23o6Sau8NxxzXcgSc3PLcNxrzrZpbLeBn1izfv3jbKhuv" }],
          "assertionMethod": [vm_id], "authentication": [vm_id], "capabilityInvocation": [vm_id],
          "capabilityDelegation": [vm_id], "keyAgreement": [vm_id]
        });
        let got = resolve(msi, &opts(Some("EcdsaSecp256k1VerificationKey2019"), true)).unwrap();
        assert_eq!(got, expected);
        for (msi, b58) in [
            (
                "zQ3shtxV1FrJfhqE1dvxYRcCknWNjHc3c5X1y3ZSoPDi2aur2",
                "291KzQhqCPC18PqH83XKhxv1HdqrdnxyS7dh15t2uNRzJ",
            ),
            (
                "zQ3shZc2QzApp2oymGvQbzP8eKheVshBHbU4ZYjeXqwSKEn6N",
                "oesQ92MLiAkt2pjBcJFbW7H4DvzKJv22cotjYbmC2JEe",
            ),
        ] {
            let doc =
                resolve(msi, &opts(Some("EcdsaSecp256k1VerificationKey2019"), false)).unwrap();
            assert_eq!(doc["verificationMethod"][0]["publicKeyBase58"], b58);
        }
    }

    /// `test-vectors/nist-curves.json`: P-256 keys as JsonWebKey2020.
    #[test]
    fn p256_vectors_give_the_published_jwks() {
        for (msi, x, y) in [
            (
                "zDnaerx9CtbPJ1q36T5Ln5wYt3MQYeGRG5ehnPAmxcf5mDZpv",
                "igrFmi0whuihKnj9R3Om1SoMph72wUGeFaBbzG2vzns",
                "efsX5b10x8yjyrj4ny3pGfLcY7Xby1KzgqOdqnsrJIM",
            ),
            (
                "zDnaerDaTF5BXEavCrfRZEk316dpbLsfPDZ3WJ5hRTPFU2169",
                "fyNYMN0976ci7xqiSdag3buk-ZCwgXU4kz9XNkBlNUI",
                "hW2ojTNfH7Jbi8--CJUo3OCbH3y5n91g-IMA9MLMbTU",
            ),
        ] {
            let doc = resolve(msi, &opts(Some("JsonWebKey2020"), false)).unwrap();
            assert_eq!(
                doc["verificationMethod"][0]["publicKeyJwk"],
                json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}),
                "{msi}"
            );
            assert_eq!(doc["verificationMethod"][0]["type"], "JsonWebKey2020");
            // The default is the Multikey of the id itself.
            let doc = resolve(msi, &KeyOptions::default()).unwrap();
            assert_eq!(doc["verificationMethod"][0]["publicKeyMultibase"], msi);
        }
    }

    #[test]
    fn ed25519_jwk_and_x25519_dids() {
        let doc = resolve(ED, &opts(Some("JsonWebKey2020"), false)).unwrap();
        // base64url of the raw key whose base58 is 4zvwRjXU… (the vector's publicKeyBase58).
        let raw = base58::BITCOIN
            .decode("4zvwRjXUKGfvwnParsHAS3HuSVzV5cA4McphgmoCtajS")
            .unwrap();
        assert_eq!(
            doc["verificationMethod"][0]["publicKeyJwk"],
            json!({"kty": "OKP", "crv": "Ed25519",
                   "x": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)})
        );
        let x = "z6LShs9GGnqk85isEBzzshkuVWrVKsRp24GnDuHk8QWkARMW";
        let doc = resolve(x, &KeyOptions::default()).unwrap();
        assert!(doc.get("authentication").is_none());
        assert_eq!(doc["keyAgreement"], json!([format!("did:key:{x}#{x}")]));
        let doc = resolve(x, &opts(Some("X25519KeyAgreementKey2019"), false)).unwrap();
        assert_eq!(
            doc["verificationMethod"][0]["publicKeyBase58"],
            "7By6kV2t2d188odEM4ExAve1UithKT6dLva4dwsDT3ak"
        );
    }

    #[test]
    fn bad_identifiers_and_options_are_refused() {
        let invalid = |msi: &str| match resolve(msi, &KeyOptions::default()) {
            Err(DidKeyError::InvalidDid(m)) => m,
            other => panic!("{msi}: {other:?}"),
        };
        assert!(invalid("zzzz").contains("invalid"));
        assert!(invalid("abc").contains("\"z\""));
        assert!(invalid("z0OIl").contains("base58"));
        // Longer than any key: refused on its length before decoding.
        assert!(invalid(&format!("z{}", "2".repeat(1500))).contains("is 1500 characters"));
        assert!(invalid("z").contains("multicodec"));
        // Cut short, a base58 text decodes to other bytes: not a key type at all.
        assert!(invalid("z6MkiTBz1ymuepAQ4HEHYSF1H8quG5GLVVQR3dj").contains("multicodec"));
        // An Ed25519 key one byte short.
        let mut bytes = varint(ED25519_PUB);
        bytes.extend_from_slice(&[7u8; 31]);
        let short = format!("z{}", base58::BITCOIN.encode(&bytes));
        assert!(invalid(&short).contains("invalidPublicKeyLength"));
        // 33 bytes that are not a secp256k1 point (0x04 prefix is not compressed).
        let mut bytes = varint(SECP256K1_PUB);
        bytes.extend_from_slice(&[4u8; 33]);
        let bad = format!("z{}", base58::BITCOIN.encode(&bytes));
        assert!(invalid(&bad).contains("invalidPublicKey"));
        // An Ed25519 y-coordinate that is not on the curve.
        let y = (2u8..=255)
            .map(|b| {
                let mut y = [0u8; 32];
                y[0] = b;
                y
            })
            .find(|y| ed25519_dalek::VerifyingKey::from_bytes(y).is_err())
            .unwrap();
        let mut bytes = varint(ED25519_PUB);
        bytes.extend_from_slice(&y);
        let not_point = format!("z{}", base58::BITCOIN.encode(&bytes));
        assert!(invalid(&not_point).contains("invalidPublicKey:"));
        // P-384 is known but not rendered.
        let mut bytes = varint(0x1201);
        bytes.extend_from_slice(&[2u8; 49]);
        let p384 = format!("z{}", base58::BITCOIN.encode(&bytes));
        assert!(matches!(
            resolve(&p384, &KeyOptions::default()),
            Err(DidKeyError::Unsupported(_))
        ));
        assert!(matches!(
            resolve(ED, &opts(Some("Bogus"), false)),
            Err(DidKeyError::InvalidOptions(m)) if m.contains("unsupportedPublicKeyType")
        ));
        assert!(matches!(
            resolve(ED, &opts(Some("EcdsaSecp256k1VerificationKey2019"), false)),
            Err(DidKeyError::InvalidOptions(m)) if m.contains("invalidPublicKeyType")
        ));
    }

    #[test]
    fn varints_round_trip() {
        for n in [
            0u64,
            1,
            0x7f,
            0x80,
            0xed,
            0x1200,
            0x3fff,
            0x4000,
            u64::MAX >> 2,
        ] {
            let bytes = varint(n);
            assert_eq!(read_varint(&bytes), Some((n, &[][..])), "{n:x}");
        }
        assert_eq!(varint(0xed), vec![0xed, 0x01]);
        assert_eq!(varint(0x1200), vec![0x80, 0x24]);
        assert_eq!(read_varint(&[0x80]), None);
    }
}
