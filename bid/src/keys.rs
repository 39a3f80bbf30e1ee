//! Keys as BIF encodes them.
//!
//! - Encoded public key: hex of `B0` ‖ key-type char (`e` 0x65, `z` 0x7A) ‖ `f` 0x66 ‖ raw key.
//! - Encoded private key: BIF Base58 of `18 9E 99` ‖ key-type char ‖ `f` ‖ raw 32 bytes (`priSPK...`).

use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use thiserror::Error;

use crate::base58;

const PUBLIC_PREFIX: u8 = 0xB0;
const PRIVATE_PREFIX: [u8; 3] = [0x18, 0x9E, 0x99];
const ED25519: u8 = b'e';
const SM2: u8 = b'z';
const BASE58: u8 = b'f';

/// Why a key or signature could not be read or used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The encoded public key is not hexadecimal.
    #[error("an encoded public key is hexadecimal: {0}")]
    NotHex(String),
    /// The first byte is not 0xB0.
    #[error("an encoded public key begins with byte 0xb0, got 0x{0:02x}")]
    BadPublicPrefix(u8),
    /// The key-type byte is neither `e` nor `z`.
    #[error("key-type byte 0x{0:02x} is neither 'e' (Ed25519) nor 'z' (SM2)")]
    UnknownKeyType(u8),
    /// The encoding byte is not `f`.
    #[error("encoding byte 0x{0:02x} is not 'f' (0x66)")]
    UnknownEncoding(u8),
    /// Wrong length for the key type.
    #[error("a {kind} key is {expected} bytes after the 3-byte prefix, got {got}")]
    WrongLength {
        /// Key type.
        kind: &'static str,
        /// Expected raw length.
        expected: usize,
        /// Actual raw length.
        got: usize,
    },
    /// The bytes are not a valid point on the curve.
    #[error("the Ed25519 public key is not a valid curve point")]
    InvalidPoint,
    /// The encoded private key is malformed.
    #[error("an encoded private key is BIF Base58 of 18 9e 99 'e' 'f' and 32 bytes: {0}")]
    BadPrivateKey(String),
    /// SM2 keys parse but cannot derive a BID or verify yet.
    #[error("SM2 keys are recognized but SM2/SM3 cryptography is not supported yet")]
    Sm2DerivationUnsupported,
    /// A signature is malformed.
    #[error("a signature is 64 bytes in BIF Base58 or hex: {0}")]
    BadSignature(String),
    /// A signature does not verify.
    #[error("the signature does not verify with the given key")]
    VerificationFailed,
}

/// A public key found in a BID document or a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// Ed25519, 32 raw bytes.
    Ed25519(VerifyingKey),
    /// SM2, 65 raw bytes `04 ‖ X ‖ Y`; parsed and rendered, not yet usable for signatures.
    Sm2(Vec<u8>),
}

impl PublicKey {
    /// Reads a BIF encoded public key (hex, any case).
    pub fn from_encoded(hex_str: &str) -> Result<PublicKey, KeyError> {
        let bytes = hex::decode(hex_str).map_err(|e| KeyError::NotHex(e.to_string()))?;
        Self::from_encoded_bytes(&bytes)
    }

    /// Reads the bytes of an encoded public key.
    pub fn from_encoded_bytes(bytes: &[u8]) -> Result<PublicKey, KeyError> {
        let (&prefix, rest) = bytes.split_first().ok_or(KeyError::BadPublicPrefix(0))?;
        if prefix != PUBLIC_PREFIX {
            return Err(KeyError::BadPublicPrefix(prefix));
        }
        let [kind, enc, raw @ ..] = rest else {
            return Err(KeyError::WrongLength {
                kind: "BIF",
                expected: 32,
                got: 0,
            });
        };
        if *enc != BASE58 {
            return Err(KeyError::UnknownEncoding(*enc));
        }
        match *kind {
            ED25519 => {
                let raw: [u8; 32] = raw.try_into().map_err(|_| KeyError::WrongLength {
                    kind: "Ed25519",
                    expected: 32,
                    got: raw.len(),
                })?;
                VerifyingKey::from_bytes(&raw)
                    .map(PublicKey::Ed25519)
                    .map_err(|_| KeyError::InvalidPoint)
            }
            SM2 => {
                if raw.len() != 65 {
                    return Err(KeyError::WrongLength {
                        kind: "SM2",
                        expected: 65,
                        got: raw.len(),
                    });
                }
                Ok(PublicKey::Sm2(raw.to_vec()))
            }
            other => Err(KeyError::UnknownKeyType(other)),
        }
    }

    /// The encoded form as bytes: `B0 65 66 ‖ raw` for Ed25519.
    pub fn encoded_bytes(&self) -> Vec<u8> {
        let (kind, raw): (u8, &[u8]) = match self {
            PublicKey::Ed25519(k) => (ED25519, k.as_bytes()),
            PublicKey::Sm2(raw) => (SM2, raw),
        };
        let mut out = Vec::with_capacity(3 + raw.len());
        out.extend_from_slice(&[PUBLIC_PREFIX, kind, BASE58]);
        out.extend_from_slice(raw);
        out
    }

    /// The encoded form as lowercase hex, as documents carry it in `publicKeyHex`.
    pub fn to_encoded(&self) -> String {
        hex::encode(self.encoded_bytes())
    }

    /// The raw key bytes.
    pub fn raw(&self) -> &[u8] {
        match self {
            PublicKey::Ed25519(k) => k.as_bytes(),
            PublicKey::Sm2(raw) => raw,
        }
    }

    /// The key type as BID documents name it.
    pub fn type_name(&self) -> &'static str {
        match self {
            PublicKey::Ed25519(_) => "Ed25519",
            PublicKey::Sm2(_) => "SM2",
        }
    }

    /// Multikey `publicKeyMultibase`: base58btc of the multicodec prefix and the raw key
    /// (`ed25519-pub` 0xed, `sm2-pub` 0x1206).
    pub fn to_multibase(&self) -> String {
        let mut bytes = match self {
            PublicKey::Ed25519(_) => vec![0xed, 0x01],
            PublicKey::Sm2(_) => vec![0x86, 0x24],
        };
        bytes.extend_from_slice(self.raw());
        format!("z{}", base58::BITCOIN.encode(&bytes))
    }

    /// Verifies an Ed25519 signature over `message`.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), KeyError> {
        match self {
            PublicKey::Ed25519(k) => k
                .verify(message, &ed25519_dalek::Signature::from_bytes(&signature.0))
                .map_err(|_| KeyError::VerificationFailed),
            PublicKey::Sm2(_) => Err(KeyError::Sm2DerivationUnsupported),
        }
    }
}

/// A 64-byte signature, written in BIF Base58 by default.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature({})", self.to_base58())
    }
}

impl Signature {
    /// BIF Base58 text, as `proof.signatureValue` carries it.
    pub fn to_base58(&self) -> String {
        base58::BIF.encode(&self.0)
    }

    /// Reads BIF Base58 text, or 128 hex digits (the SDKs' uppercase-hex convention).
    pub fn parse(s: &str) -> Result<Signature, KeyError> {
        let bytes = if s.len() == 128 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(s).map_err(|e| KeyError::BadSignature(e.to_string()))?
        } else {
            base58::BIF
                .decode(s)
                .map_err(|e| KeyError::BadSignature(e.to_string()))?
        };
        let arr: [u8; 64] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::BadSignature(format!("{} bytes, not 64", bytes.len())))?;
        Ok(Signature(arr))
    }
}

impl serde::Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base58())
    }
}

impl<'de> serde::Deserialize<'de> for Signature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Signature::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An Ed25519 private key. Its `Debug` form never shows the secret.
#[derive(Clone)]
pub struct PrivateKey(SigningKey);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey(public: {})", self.public_key().to_encoded())
    }
}

impl PrivateKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> PrivateKey {
        PrivateKey(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// A key from its 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> PrivateKey {
        PrivateKey(SigningKey::from_bytes(&seed))
    }

    /// Reads an encoded private key (`priSPK...`).
    pub fn from_encoded(s: &str) -> Result<PrivateKey, KeyError> {
        let bytes = base58::BIF
            .decode(s)
            .map_err(|e| KeyError::BadPrivateKey(e.to_string()))?;
        if bytes.len() != 37 {
            return Err(KeyError::BadPrivateKey(format!(
                "{} bytes, not 37",
                bytes.len()
            )));
        }
        if bytes[..3] != PRIVATE_PREFIX {
            return Err(KeyError::BadPrivateKey(format!(
                "prefix {} is not 189e99",
                hex::encode(&bytes[..3])
            )));
        }
        if bytes[3] != ED25519 || bytes[4] != BASE58 {
            return Err(KeyError::BadPrivateKey(
                "only Ed25519 ('e' 'f') private keys are supported".into(),
            ));
        }
        let mut seed = [0u8; 32];
        seed.copy_from_slice(&bytes[5..]);
        Ok(PrivateKey::from_seed(seed))
    }

    /// The encoded form, `priSPK...`.
    pub fn to_encoded(&self) -> String {
        let mut bytes = Vec::with_capacity(37);
        bytes.extend_from_slice(&PRIVATE_PREFIX);
        bytes.extend_from_slice(&[ED25519, BASE58]);
        bytes.extend_from_slice(self.0.as_bytes());
        base58::BIF.encode(&bytes)
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::Ed25519(self.0.verifying_key())
    }

    /// Signs a message.
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature(self.0.sign(message).to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_public_key_round_trips_and_rejects_bad_prefixes() {
        let k = PrivateKey::generate().public_key();
        let enc = k.to_encoded();
        assert!(enc.starts_with("b06566"));
        assert_eq!(PublicKey::from_encoded(&enc).unwrap(), k);
        assert_eq!(PublicKey::from_encoded(&enc.to_uppercase()).unwrap(), k);
        assert_eq!(
            PublicKey::from_encoded("a06566").unwrap_err(),
            KeyError::BadPublicPrefix(0xa0)
        );
        assert_eq!(
            PublicKey::from_encoded("b06166").unwrap_err(),
            KeyError::UnknownKeyType(0x61)
        );
        assert!(matches!(
            PublicKey::from_encoded("b0656600"),
            Err(KeyError::WrongLength { .. })
        ));
        assert!(matches!(
            PublicKey::from_encoded("xyz"),
            Err(KeyError::NotHex(_))
        ));
    }

    #[test]
    fn private_key_round_trips_as_pri_spk() {
        let k = PrivateKey::generate();
        let enc = k.to_encoded();
        assert!(enc.starts_with("priSPK"), "{enc}");
        assert_eq!(
            PrivateKey::from_encoded(&enc).unwrap().public_key(),
            k.public_key()
        );
    }

    #[test]
    fn signatures_verify_and_tampering_fails() {
        let k = PrivateKey::generate();
        let sig = k.sign(b"hello");
        k.public_key().verify(b"hello", &sig).unwrap();
        assert_eq!(
            k.public_key().verify(b"hellp", &sig),
            Err(KeyError::VerificationFailed)
        );
        assert_eq!(Signature::parse(&sig.to_base58()).unwrap(), sig);
        assert_eq!(Signature::parse(&hex::encode_upper(sig.0)).unwrap(), sig);
    }
}
