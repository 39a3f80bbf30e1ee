//! Base58 with a chosen alphabet.
//!
//! BIF writes addresses, private keys and signatures in its own Base58 alphabet: Bitcoin's with
//! `B`/`b` and `U`/`u` swapped. Multibase (`z...` keys in DID Core documents) uses Bitcoin's.

use thiserror::Error;

/// A Base58 alphabet: 58 distinct ASCII characters, digit value = position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alphabet {
    chars: &'static [u8; 58],
    name: &'static str,
}

/// BIF's alphabet (Java `utils/base/Base58.java`, Go `utils/base/base58.go`).
pub const BIF: Alphabet = Alphabet {
    chars: b"123456789AbCDEFGHJKLMNPQRSTuVWXYZaBcdefghijkmnopqrstUvwxyz",
    name: "BIF",
};

/// Bitcoin's alphabet, as multibase `z` (base58btc) uses it.
pub const BITCOIN: Alphabet = Alphabet {
    chars: b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz",
    name: "Bitcoin",
};

/// Why a string is not Base58 in the expected alphabet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Base58Error {
    /// A character outside the alphabet.
    #[error("character {ch:?} at position {position} is not in the {alphabet} Base58 alphabet")]
    InvalidCharacter {
        /// The offending character.
        ch: char,
        /// Its 0-based character position.
        position: usize,
        /// Which alphabet was expected.
        alphabet: &'static str,
    },
}

impl Alphabet {
    fn digit(&self, c: u8) -> Option<u8> {
        self.chars.iter().position(|&a| a == c).map(|p| p as u8)
    }

    /// Encodes bytes; each leading zero byte is written as the first character (`1`).
    pub fn encode(&self, input: &[u8]) -> String {
        let zeros = input.iter().take_while(|&&b| b == 0).count();
        // Base-58 digits, least significant first.
        let mut digits: Vec<u8> = Vec::with_capacity(input.len() * 138 / 100 + 1);
        for &byte in &input[zeros..] {
            let mut carry = byte as u32;
            for d in digits.iter_mut() {
                carry += (*d as u32) << 8;
                *d = (carry % 58) as u8;
                carry /= 58;
            }
            while carry > 0 {
                digits.push((carry % 58) as u8);
                carry /= 58;
            }
        }
        let mut out = String::with_capacity(zeros + digits.len());
        out.extend(std::iter::repeat_n(self.chars[0] as char, zeros));
        out.extend(digits.iter().rev().map(|&d| self.chars[d as usize] as char));
        out
    }

    /// Decodes a string; each leading `1` becomes a zero byte.
    pub fn decode(&self, input: &str) -> Result<Vec<u8>, Base58Error> {
        let zero = self.chars[0];
        let bytes = input.as_bytes();
        let zeros = bytes.iter().take_while(|&&b| b == zero).count();
        // Base-256 digits, least significant first.
        let mut out: Vec<u8> = Vec::with_capacity(bytes.len() * 733 / 1000 + 1);
        for (position, ch) in input.char_indices().skip(zeros) {
            let value = u8::try_from(ch).ok().and_then(|c| self.digit(c)).ok_or(
                Base58Error::InvalidCharacter {
                    ch,
                    position: input[..position].chars().count(),
                    alphabet: self.name,
                },
            )?;
            let mut carry = value as u32;
            for b in out.iter_mut() {
                carry += (*b as u32) * 58;
                *b = (carry & 0xff) as u8;
                carry >>= 8;
            }
            while carry > 0 {
                out.push((carry & 0xff) as u8);
                carry >>= 8;
            }
        }
        let mut result = vec![0u8; zeros];
        result.extend(out.iter().rev());
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_leading_zeros() {
        for input in [&[][..], &[0], &[0, 0, 1], &[255; 40], &[0, 255, 3, 9]] {
            assert_eq!(BIF.decode(&BIF.encode(input)).unwrap(), input);
            assert_eq!(BITCOIN.decode(&BITCOIN.encode(input)).unwrap(), input);
        }
    }

    #[test]
    fn alphabets_differ_exactly_at_b_and_u() {
        // Digit 10 is `b` in BIF and `B` in Bitcoin.
        assert_eq!(BIF.encode(&[10]), "b");
        assert_eq!(BITCOIN.encode(&[10]), "B");
        assert_eq!(BIF.encode(&[27]), "u");
        assert_eq!(BIF.encode(&[34]), "B");
        assert_eq!(BIF.encode(&[52]), "U");
    }

    #[test]
    fn rejects_characters_outside_the_alphabet() {
        let err = BIF.decode("abc0def").unwrap_err();
        assert_eq!(
            err,
            Base58Error::InvalidCharacter {
                ch: '0',
                position: 3,
                alphabet: "BIF"
            }
        );
        assert!(BIF.decode("abcé").is_err());
        assert!(BIF.decode("l").is_err());
    }
}
