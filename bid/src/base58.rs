//! Base58 with a chosen alphabet.
//!
//! BIF writes addresses, private keys and signatures in its own Base58 alphabet: Bitcoin's with
//! `B`/`b` and `U`/`u` swapped. Multibase (`z...` keys in DID Core documents) uses Bitcoin's.

use thiserror::Error;

/// The longest text [`Alphabet::decode`] reads: far more than any key, signature or address
/// of the method needs, small enough that decoding it costs microseconds. Base58 decoding is
/// quadratic in the text's length, so an unbounded input would be an unbounded cost.
pub const MAX_DECODE_LEN: usize = 1024;

/// The longest Base58 text of `n` bytes: `n` characters when every byte is zero (each leading
/// zero byte is one `1`), else the digits of the largest `n`-byte number, ceil(8n / log2 58).
pub const fn max_encoded_len(n: usize) -> usize {
    // log2(58) = 5.857980995127572; 8n / log2(58) = n * 8e12 / 5857980995127.
    let digits = (n as u128 * 8_000_000_000_000).div_ceil(5_857_980_995_127) as usize;
    if digits > n {
        digits
    } else {
        n
    }
}

/// A Base58 alphabet: 58 distinct ASCII characters, digit value = position.
#[derive(Clone, Copy)]
pub struct Alphabet {
    codec: &'static bs58::Alphabet,
    name: &'static str,
}

impl std::fmt::Debug for Alphabet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Alphabet({})", self.name)
    }
}

impl PartialEq for Alphabet {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Alphabet {}

const BIF_CODEC: bs58::Alphabet =
    bs58::Alphabet::new_unwrap(b"123456789AbCDEFGHJKLMNPQRSTuVWXYZaBcdefghijkmnopqrstUvwxyz");

/// BIF's alphabet (Java `utils/base/Base58.java`, Go `utils/base/base58.go`).
pub const BIF: Alphabet = Alphabet {
    codec: &BIF_CODEC,
    name: "BIF",
};

/// Bitcoin's alphabet, as multibase `z` (base58btc) uses it.
pub const BITCOIN: Alphabet = Alphabet {
    codec: bs58::Alphabet::BITCOIN,
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
    /// Longer than the caller's bound: refused before any decoding.
    #[error("the Base58 text is {length} characters, at most {max}")]
    TooLong {
        /// The text's length in characters.
        length: usize,
        /// The most the caller reads.
        max: usize,
    },
}

impl Alphabet {
    /// Encodes bytes; each leading zero byte is written as the first character (`1`).
    pub fn encode(&self, input: &[u8]) -> String {
        bs58::encode(input).with_alphabet(self.codec).into_string()
    }

    /// Decodes a string of at most [`MAX_DECODE_LEN`] characters; each leading `1` becomes a
    /// zero byte.
    pub fn decode(&self, input: &str) -> Result<Vec<u8>, Base58Error> {
        self.decode_at_most(input, MAX_DECODE_LEN)
    }

    /// Decodes a string of at most `max` characters, refusing a longer one before decoding.
    pub fn decode_at_most(&self, input: &str, max: usize) -> Result<Vec<u8>, Base58Error> {
        let length = text_len(input);
        if length > max {
            return Err(Base58Error::TooLong { length, max });
        }
        bs58::decode(input)
            .with_alphabet(self.codec)
            .into_vec()
            .map_err(|e| self.invalid(input, e))
    }

    fn invalid(&self, input: &str, error: bs58::decode::Error) -> Base58Error {
        // bs58 names the byte index of the first character it cannot read; every character
        // before it is ASCII, so the byte index is the character position too.
        let index = match error {
            bs58::decode::Error::InvalidCharacter { index, .. }
            | bs58::decode::Error::NonAsciiCharacter { index } => index,
            _ => 0,
        };
        let ch = input
            .get(index..)
            .and_then(|rest| rest.chars().next())
            .unwrap_or('\u{fffd}');
        Base58Error::InvalidCharacter {
            ch,
            position: input.get(..index).map_or(index, |s| s.chars().count()),
            alphabet: self.name,
        }
    }
}

/// The length of `text` in characters, as bounds are stated. Counting is linear and cheap;
/// only decoding must wait until the bound is checked.
pub fn text_len(text: &str) -> usize {
    text.chars().count()
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
        assert_eq!(
            BIF.decode("ab\u{e9}c").unwrap_err(),
            Base58Error::InvalidCharacter {
                ch: '\u{e9}',
                position: 2,
                alphabet: "BIF"
            }
        );
    }

    #[test]
    fn refuses_text_over_its_bound_before_decoding() {
        let long = "2".repeat(250_000);
        let started = std::time::Instant::now();
        assert_eq!(
            BIF.decode(&long).unwrap_err(),
            Base58Error::TooLong {
                length: 250_000,
                max: MAX_DECODE_LEN
            }
        );
        assert_eq!(
            BITCOIN.decode_at_most("22222", 4).unwrap_err(),
            Base58Error::TooLong { length: 5, max: 4 }
        );
        // Characters, not bytes: four two-byte characters are four.
        assert!(matches!(
            BIF.decode_at_most("\u{e9}\u{e9}\u{e9}\u{e9}", 4),
            Err(Base58Error::InvalidCharacter { position: 0, .. })
        ));
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
        // The longest text the bound lets through decodes quickly too.
        let started = std::time::Instant::now();
        BIF.decode(&"z".repeat(MAX_DECODE_LEN)).unwrap();
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
    }

    #[test]
    fn max_encoded_len_is_exact() {
        for n in [0usize, 1, 2, 5, 22, 32, 37, 64, 100] {
            let longest = BIF.encode(&vec![0xff; n]).len().max(n);
            assert_eq!(max_encoded_len(n), longest, "{n} bytes");
        }
        assert_eq!(max_encoded_len(22), 31);
        assert_eq!(max_encoded_len(37), 51);
        assert_eq!(max_encoded_len(64), 88);
    }
}
