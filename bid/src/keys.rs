//! Keys as BIF encodes them.
//!
//! - Encoded public key: hex of `B0` ‖ key-type char (`e` 0x65, `z` 0x7A) ‖ `f` 0x66 ‖ raw key.
//! - Encoded private key: BIF Base58 of `18 9E 99` ‖ key-type char ‖ `f` ‖ raw 32 bytes (`priSPK...`).

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use thiserror::Error;

use crate::base58;

const PUBLIC_PREFIX: u8 = 0xB0;
const PRIVATE_PREFIX: [u8; 3] = [0x18, 0x9E, 0x99];
const ED25519: u8 = b'e';
const SM2: u8 = b'z';
const BASE58: u8 = b'f';

/// The longest encoded public key text: hex of the 3-byte prefix and an SM2 key's 65 bytes.
/// Longer text is refused before it is decoded.
pub const MAX_PUBLIC_KEY_HEX_LEN: usize = 2 * (3 + 65);
/// The longest encoded private key text: BIF Base58 of 37 bytes.
pub const MAX_PRIVATE_KEY_LEN: usize = base58::max_encoded_len(37);
/// The longest BIF Base58 text of a 64-byte signature.
pub const MAX_SIGNATURE_BASE58_LEN: usize = base58::max_encoded_len(64);
/// The length of a signature written as hex.
pub const SIGNATURE_HEX_LEN: usize = 128;
/// The longest signature text in any form a door accepts (hex is the longest, then base64 and
/// Base58): a longer text is refused on its length alone.
pub const MAX_SIGNATURE_TEXT_LEN: usize = SIGNATURE_HEX_LEN;

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
    /// A key or signature text longer than any valid one, refused before decoding: decoding
    /// costs grow with the length (quadratically for Base58).
    #[error("{what} text is {length} characters, at most {max}")]
    TooLong {
        /// `signature`, `public key` or `private key`.
        what: &'static str,
        /// The text's length in characters.
        length: usize,
        /// The longest valid text.
        max: usize,
    },
    /// A small-order Ed25519 point: every signature made without any secret "verifies" under
    /// it with the lax check, so it can authorize nothing.
    #[error("the Ed25519 public key is a small-order (weak) point, which anyone can sign for; it is refused")]
    WeakKey,
}

/// Refuses `text` when it is longer than `max` characters.
pub fn check_length(what: &'static str, text: &str, max: usize) -> Result<(), KeyError> {
    let length = base58::text_len(text);
    if length > max {
        return Err(KeyError::TooLong { what, length, max });
    }
    Ok(())
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
        check_length("public key", hex_str, MAX_PUBLIC_KEY_HEX_LEN)?;
        let bytes = hex::decode(hex_str).map_err(|e| KeyError::NotHex(e.to_string()))?;
        Self::from_encoded_bytes(&bytes)
    }

    /// Reads the bytes of an encoded public key. A small-order Ed25519 point is refused
    /// ([`KeyError::WeakKey`]): no registration, genesis or signature may rest on one.
    pub fn from_encoded_bytes(bytes: &[u8]) -> Result<PublicKey, KeyError> {
        match framed(bytes)? {
            (ED25519, raw) => {
                let raw: [u8; 32] = raw.try_into().map_err(|_| KeyError::WrongLength {
                    kind: "Ed25519",
                    expected: 32,
                    got: raw.len(),
                })?;
                let key = VerifyingKey::from_bytes(&raw).map_err(|_| KeyError::InvalidPoint)?;
                if key.is_weak() {
                    return Err(KeyError::WeakKey);
                }
                Ok(PublicKey::Ed25519(key))
            }
            (_, raw) => Ok(PublicKey::Sm2(raw.to_vec())),
        }
    }

    /// `publicKeyMultibase` ([`PublicKey::to_multibase`]) of a BIF encoded public key (hex),
    /// from its bytes as they are: the framing (prefix, type, encoding, length) is checked, the
    /// Ed25519 point is not decompressed. For the keys of validated documents (every stored
    /// one: their points were checked when they were written), where decompressing only to
    /// print the same bytes again was a fifth of a cold resolution's rendering.
    pub fn multibase_of_encoded(hex_str: &str) -> Result<String, KeyError> {
        check_length("public key", hex_str, MAX_PUBLIC_KEY_HEX_LEN)?;
        let bytes = hex::decode(hex_str).map_err(|e| KeyError::NotHex(e.to_string()))?;
        let (kind, raw) = framed(&bytes)?;
        let mut out = Vec::with_capacity(2 + raw.len());
        out.extend_from_slice(if kind == ED25519 {
            &[0xed, 0x01]
        } else {
            &[0x86, 0x24]
        });
        out.extend_from_slice(raw);
        Ok(format!("z{}", base58::BITCOIN.encode(&out)))
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

    /// Verifies an Ed25519 signature over `message`, strictly: a weak key, a small-order `R`
    /// or a non-canonical `s` fails, so that no signature has a second valid form.
    pub fn verify(&self, message: &[u8], signature: &Signature) -> Result<(), KeyError> {
        match self {
            PublicKey::Ed25519(k) => k
                .verify_strict(message, &ed25519_dalek::Signature::from_bytes(&signature.0))
                .map_err(|_| KeyError::VerificationFailed),
            PublicKey::Sm2(_) => Err(KeyError::Sm2DerivationUnsupported),
        }
    }
}

/// The key type and raw bytes of an encoded public key, its framing checked: the prefix, the
/// encoding, a known type and that type's length (32 bytes for Ed25519, 65 for SM2).
fn framed(bytes: &[u8]) -> Result<(u8, &[u8]), KeyError> {
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
    let (name, expected) = match *kind {
        ED25519 => ("Ed25519", 32),
        SM2 => ("SM2", 65),
        other => return Err(KeyError::UnknownKeyType(other)),
    };
    if raw.len() != expected {
        return Err(KeyError::WrongLength {
            kind: name,
            expected,
            got: raw.len(),
        });
    }
    Ok((*kind, raw))
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

    /// Reads BIF Base58 text, or 128 hex digits (the SDKs' uppercase-hex convention). Text
    /// longer than [`MAX_SIGNATURE_BASE58_LEN`] that is not hex is refused on its length.
    pub fn parse(s: &str) -> Result<Signature, KeyError> {
        let bytes = if s.len() == SIGNATURE_HEX_LEN && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(s).map_err(|e| KeyError::BadSignature(e.to_string()))?
        } else {
            check_length("signature", s, MAX_SIGNATURE_BASE58_LEN)?;
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
        check_length("private key", s, MAX_PRIVATE_KEY_LEN)?;
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
    fn multibase_from_the_encoded_bytes_is_the_parsed_keys() {
        for _ in 0..64 {
            let k = PrivateKey::generate().public_key();
            let upper = k.to_encoded().to_uppercase();
            assert_eq!(
                PublicKey::multibase_of_encoded(&upper).unwrap(),
                k.to_multibase()
            );
        }
        let mut sm2 = vec![PUBLIC_PREFIX, SM2, BASE58, 0x04];
        sm2.extend_from_slice(&[7; 64]);
        let key = PublicKey::from_encoded_bytes(&sm2).unwrap();
        assert_eq!(
            PublicKey::multibase_of_encoded(&hex::encode(&sm2)).unwrap(),
            key.to_multibase()
        );
        // The framing is still checked: each of these is refused as the parser refuses it.
        let good = PrivateKey::generate().public_key().to_encoded();
        for bad in [
            format!("b1{}", &good[2..]),
            format!("{}00", good),
            good[..good.len() - 2].to_string(),
            format!("b078{}", &good[4..]),
            format!("b06567{}", &good[6..]),
            "zz".to_string(),
            "b0".repeat(200),
        ] {
            assert_eq!(
                PublicKey::multibase_of_encoded(&bad).unwrap_err(),
                PublicKey::from_encoded(&bad).unwrap_err(),
                "{bad}"
            );
        }
    }

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

    #[test]
    fn texts_longer_than_any_valid_one_are_refused_on_their_length() {
        let long = "2".repeat(250_000);
        let started = std::time::Instant::now();
        assert_eq!(
            Signature::parse(&long).unwrap_err(),
            KeyError::TooLong {
                what: "signature",
                length: 250_000,
                max: 88
            }
        );
        assert_eq!(
            Signature::parse(&long).unwrap_err().to_string(),
            "signature text is 250000 characters, at most 88"
        );
        assert!(matches!(
            PrivateKey::from_encoded(&long),
            Err(KeyError::TooLong { max: 51, .. })
        ));
        assert!(matches!(
            PublicKey::from_encoded(&format!("b06566{}", "ab".repeat(125_000))),
            Err(KeyError::TooLong {
                what: "public key",
                length: 250_006,
                max: 136
            })
        ));
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
        // The longest valid texts still read.
        let key = PrivateKey::from_seed([0xff; 32]);
        let sig = Signature([0xff; 64]);
        assert_eq!(sig.to_base58().len(), MAX_SIGNATURE_BASE58_LEN);
        assert_eq!(Signature::parse(&sig.to_base58()).unwrap(), sig);
        assert!(key.to_encoded().len() <= MAX_PRIVATE_KEY_LEN);
        let sm2 = PublicKey::Sm2(vec![4; 65]);
        assert_eq!(sm2.to_encoded().len(), MAX_PUBLIC_KEY_HEX_LEN);
        assert_eq!(PublicKey::from_encoded(&sm2.to_encoded()).unwrap(), sm2);
    }

    /// The identity point, of order 1: `[s]B = R + [k]A` holds for `A` = identity whenever
    /// `R = [s]B`, for every message.
    fn identity_point() -> VerifyingKey {
        let mut bytes = [0u8; 32];
        bytes[0] = 1;
        VerifyingKey::from_bytes(&bytes).unwrap()
    }

    #[test]
    fn small_order_keys_are_refused_and_signatures_forged_for_them_do_not_verify() {
        let mut encoded = vec![PUBLIC_PREFIX, ED25519, BASE58];
        encoded.extend_from_slice(identity_point().as_bytes());
        assert_eq!(
            PublicKey::from_encoded_bytes(&encoded).unwrap_err(),
            KeyError::WeakKey
        );
        // Another small-order point: the one of order 2, y = -1.
        let mut minus_one = [0xffu8; 32];
        minus_one[0] = 0xec;
        minus_one[31] = 0x7f;
        let mut encoded = vec![PUBLIC_PREFIX, ED25519, BASE58];
        encoded.extend_from_slice(&minus_one);
        assert_eq!(
            PublicKey::from_encoded_bytes(&encoded).unwrap_err(),
            KeyError::WeakKey
        );

        // A signature forged without any secret: R = [s]B for a known s.
        let known = SigningKey::from_bytes(&[7; 32]);
        let mut forged = [0u8; 64];
        forged[..32].copy_from_slice(known.verifying_key().as_bytes());
        forged[32..].copy_from_slice(&known.to_scalar().to_bytes());
        let weak = identity_point();
        let signature = ed25519_dalek::Signature::from_bytes(&forged);
        // The lax check is fooled; the one this crate uses is not.
        use ed25519_dalek::Verifier;
        assert!(weak.verify(b"any message", &signature).is_ok());
        assert_eq!(
            PublicKey::Ed25519(weak).verify(b"any message", &Signature(forged)),
            Err(KeyError::VerificationFailed)
        );
    }

    #[test]
    fn a_malleated_signature_does_not_verify() {
        let k = PrivateKey::generate();
        let sig = k.sign(b"hello");
        // s + l: the same value mod l, a second encoding of the signature.
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut malleated = sig.0;
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(malleated[32 + i]) + u16::from(L[i]) + carry;
            malleated[32 + i] = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(
            k.public_key().verify(b"hello", &Signature(malleated)),
            Err(KeyError::VerificationFailed)
        );
        k.public_key().verify(b"hello", &sig).unwrap();
    }
}
