//! BID addresses: `did:bid:[<ac>:]<key-type><encoding><hash>`.
//!
//! Derivation follows BIF's SDKs: hash the raw public key (SHA-256 for Ed25519), keep the last
//! 22 bytes, encode them in BIF Base58, prefix `ef`. On a sub-chain, `<ac>:` comes first.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::base58::{self, Base58Error};
use crate::keys::PublicKey;

/// The fixed method prefix.
pub const PREFIX: &str = "did:bid:";
/// The longest BID the method allows ("32–57 bytes" in BIF's documentation).
pub const MAX_LEN: usize = 57;
/// How many hash bytes an address keeps.
pub const HASH_LEN: usize = 22;

/// Why a string is not a valid BID. Each variant names the rule that was broken.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AddressError {
    /// The string does not begin with `did:bid:`.
    #[error("a BID must begin with the lowercase prefix \"did:bid:\"")]
    MissingPrefix,
    /// Longer than [`MAX_LEN`].
    #[error("a BID is at most {MAX_LEN} characters long, this one has {0}")]
    TooLong(usize),
    /// Nothing after `did:bid:`.
    #[error("a BID needs a method-specific identifier after \"did:bid:\"")]
    Empty,
    /// More than one `:` after the prefix.
    #[error("a BID has at most one ':' after \"did:bid:\" (an AC code, then the address)")]
    TooManyParts,
    /// The AC code is not 4 characters of `[a-z0-9]`.
    #[error("an AC code is exactly 4 characters of a-z and 0-9, got {0:?}")]
    InvalidAcCode(String),
    /// The address part is too short to hold a type letter, an encoding letter and a hash.
    #[error("the address part {0:?} is too short: it needs a key-type letter, an encoding letter and 22 to 31 Base58 characters")]
    TooShort(String),
    /// The first letter of the address is not a known key type.
    #[error("key-type letter {0:?} is not one of 'e' (Ed25519), 'z' (SM2), 's' (secp256k1)")]
    UnknownKeyType(char),
    /// The second letter of the address is not a known encoding.
    #[error("encoding letter {0:?} is not one of 'f' (Base58), 's' (Base64), 't' (Bech32)")]
    UnknownEncoding(char),
    /// A known encoding that this implementation does not decode.
    #[error(
        "encoding letter {0:?} is recognized but only 'f' (BIF Base58) addresses are supported"
    )]
    UnsupportedEncoding(char),
    /// The hash part is not BIF Base58.
    #[error("the address hash is not BIF Base58: {0}")]
    Base58(#[from] Base58Error),
    /// The hash part does not decode to exactly 22 bytes.
    #[error("the address hash must decode to exactly 22 bytes, got {0}")]
    WrongHashLength(usize),
}

/// The key type a BID was derived from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `e`: Ed25519, hashed with SHA-256.
    Ed25519,
    /// `z`: SM2, hashed with SM3.
    Sm2,
    /// `s`: secp256k1, hashed with SHA-256.
    Secp256k1,
}

impl KeyType {
    /// The letter that stands for this key type in an address.
    pub fn letter(self) -> char {
        match self {
            KeyType::Ed25519 => 'e',
            KeyType::Sm2 => 'z',
            KeyType::Secp256k1 => 's',
        }
    }

    fn from_letter(c: char) -> Result<Self, AddressError> {
        match c {
            'e' => Ok(KeyType::Ed25519),
            'z' => Ok(KeyType::Sm2),
            's' => Ok(KeyType::Secp256k1),
            other => Err(AddressError::UnknownKeyType(other)),
        }
    }
}

/// An AC code: the 4-character number of a sub-chain (autonomous consensus system).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AcCode([u8; 4]);

impl AcCode {
    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII [a-z0-9] is ever stored.
        std::str::from_utf8(&self.0).unwrap_or("????")
    }
}

impl FromStr for AcCode {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = s.as_bytes();
        if bytes.len() != 4
            || !bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(AddressError::InvalidAcCode(s.to_string()));
        }
        Ok(AcCode([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }
}

impl fmt::Display for AcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed `did:bid` identifier: an address on the main chain or a sub-chain, or a bare AC code
/// (`did:bid:<ac>`), which names a sub-chain itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bid {
    ac: Option<AcCode>,
    address: Option<Address>,
}

/// The address part of a BID: key type and the 22 hash bytes (encoding is always Base58 here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    key_type: u8,
    hash: [u8; HASH_LEN],
}

impl Address {
    /// The key type letter's meaning.
    pub fn key_type(&self) -> KeyType {
        // Only letters accepted by `KeyType::from_letter` are stored.
        KeyType::from_letter(self.key_type as char).unwrap_or(KeyType::Ed25519)
    }

    /// The 22 hash bytes.
    pub fn hash(&self) -> &[u8; HASH_LEN] {
        &self.hash
    }
}

impl Bid {
    /// Derives the BID of a public key, on the main chain (`ac` = None) or on a sub-chain.
    ///
    /// Only Ed25519 keys derive for now: SM2 addresses need SM3, which is not implemented.
    pub fn derive(key: &PublicKey, ac: Option<AcCode>) -> Result<Bid, crate::keys::KeyError> {
        match key {
            PublicKey::Ed25519(k) => {
                let digest = Sha256::digest(k.as_bytes());
                let mut hash = [0u8; HASH_LEN];
                hash.copy_from_slice(&digest[32 - HASH_LEN..]);
                Ok(Bid {
                    ac,
                    address: Some(Address {
                        key_type: b'e',
                        hash,
                    }),
                })
            }
            PublicKey::Sm2(_) => Err(crate::keys::KeyError::Sm2DerivationUnsupported),
        }
    }

    /// The sub-chain AC code, if any.
    pub fn ac_code(&self) -> Option<AcCode> {
        self.ac
    }

    /// The address, absent for a bare AC-code BID.
    pub fn address(&self) -> Option<&Address> {
        self.address.as_ref()
    }

    /// True for `did:bid:<ac>`, the record of a sub-chain.
    pub fn is_ac_code_only(&self) -> bool {
        self.address.is_none()
    }

    /// The same address on the main chain (drops the AC code).
    pub fn on_main_chain(&self) -> Bid {
        Bid {
            ac: None,
            address: self.address,
        }
    }

    /// Whether `key` is the key this BID was derived from.
    pub fn is_derived_from(&self, key: &PublicKey) -> bool {
        match Bid::derive(key, self.ac) {
            Ok(derived) => derived == *self,
            Err(_) => false,
        }
    }
}

impl FromStr for Bid {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_LEN {
            return Err(AddressError::TooLong(s.chars().count()));
        }
        let rest = s.strip_prefix(PREFIX).ok_or(AddressError::MissingPrefix)?;
        if rest.is_empty() {
            return Err(AddressError::Empty);
        }
        let mut parts = rest.split(':');
        let first = parts.next().unwrap_or_default();
        let second = parts.next();
        if parts.next().is_some() {
            return Err(AddressError::TooManyParts);
        }
        let (ac, address) = match second {
            Some(addr) => (Some(first.parse::<AcCode>()?), addr),
            // A 4-character identifier can only be an AC code: addresses are at least 24 long.
            None if first.len() == 4 => {
                return Ok(Bid {
                    ac: Some(first.parse()?),
                    address: None,
                })
            }
            None => (None, first),
        };
        if address.is_empty() && ac.is_some() {
            return Err(AddressError::TooShort(String::new()));
        }
        Ok(Bid {
            ac,
            address: Some(parse_address(address)?),
        })
    }
}

fn parse_address(s: &str) -> Result<Address, AddressError> {
    let mut chars = s.chars();
    let (Some(kt), Some(enc)) = (chars.next(), chars.next()) else {
        return Err(AddressError::TooShort(s.to_string()));
    };
    if s.len() < 24 {
        return Err(AddressError::TooShort(s.to_string()));
    }
    let key_type = KeyType::from_letter(kt)?;
    match enc {
        'f' => {}
        's' | 't' => return Err(AddressError::UnsupportedEncoding(enc)),
        other => return Err(AddressError::UnknownEncoding(other)),
    }
    let body = chars.as_str();
    let bytes = base58::BIF.decode(body)?;
    let hash: [u8; HASH_LEN] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| AddressError::WrongHashLength(bytes.len()))?;
    Ok(Address {
        key_type: key_type.letter() as u8,
        hash,
    })
}

impl fmt::Display for Bid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PREFIX)?;
        match (&self.ac, &self.address) {
            (Some(ac), Some(a)) => write!(
                f,
                "{ac}:{}f{}",
                a.key_type as char,
                base58::BIF.encode(&a.hash)
            ),
            (None, Some(a)) => write!(f, "{}f{}", a.key_type as char, base58::BIF.encode(&a.hash)),
            (Some(ac), None) => write!(f, "{ac}"),
            (None, None) => Ok(()),
        }
    }
}

impl serde::Serialize for Bid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Bid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_main_and_sub_chain() {
        for s in [
            "did:bid:efJgt44mNDewKK1VEN454R17cjso3mSG",
            "did:bid:by01:efphXYwrDzCgE5RTCC1HesQKJvyDrQDm",
            "did:bid:byo1",
            "did:bid:zfJgt44mNDewKK1VEN454R17cjso3mSG",
        ] {
            let bid: Bid = s.parse().unwrap();
            assert_eq!(bid.to_string(), s);
        }
        let sub: Bid = "did:bid:by01:efphXYwrDzCgE5RTCC1HesQKJvyDrQDm"
            .parse()
            .unwrap();
        assert_eq!(sub.ac_code().unwrap().as_str(), "by01");
        assert!("did:bid:byo1".parse::<Bid>().unwrap().is_ac_code_only());
    }

    #[test]
    fn each_malformed_address_names_its_rule() {
        use AddressError::*;
        let cases: &[(&str, AddressError)] = &[
            ("did:BID:efJgt44mNDewKK1VEN454R17cjso3mSG", MissingPrefix),
            ("did:bid:", Empty),
            ("did:bid:a:b:c", TooManyParts),
            (
                "did:bid:BY01:efJgt44mNDewKK1VEN454R17cjso3mSG",
                InvalidAcCode("BY01".into()),
            ),
            ("did:bid:abc", TooShort("abc".into())),
            (
                "did:bid:qfJgt44mNDewKK1VEN454R17cjso3mSG",
                UnknownKeyType('q'),
            ),
            (
                "did:bid:eqJgt44mNDewKK1VEN454R17cjso3mSG",
                UnknownEncoding('q'),
            ),
            (
                "did:bid:esJgt44mNDewKK1VEN454R17cjso3mSG",
                UnsupportedEncoding('s'),
            ),
            (
                "did:bid:efJgt44mNDewKK1VEN454R17cjso3mS0",
                Base58(Base58Error::InvalidCharacter {
                    ch: '0',
                    position: 29,
                    alphabet: "BIF",
                }),
            ),
            ("did:bid:ef1111111111111111111111111", WrongHashLength(25)),
        ];
        for (input, expected) in cases {
            assert_eq!(&input.parse::<Bid>().unwrap_err(), expected, "{input}");
        }
        let long = format!("did:bid:ef{}", "1".repeat(60));
        assert!(matches!(long.parse::<Bid>(), Err(TooLong(_))));
    }
}
