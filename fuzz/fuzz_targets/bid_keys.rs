//! BIF Base58 (both alphabets), signatures, encoded public and private keys and did:key ids on
//! arbitrary text: never a panic; text over each bound is refused on its length alone; what
//! decodes encodes back to the same bytes; an accepted key is never a small-order point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparkid_bid::base58::{self, Base58Error};
use sparkid_bid::keys::{
    KeyError, MAX_PRIVATE_KEY_LEN, MAX_PUBLIC_KEY_HEX_LEN, MAX_SIGNATURE_BASE58_LEN,
};
use sparkid_bid::{PrivateKey, PublicKey, Signature};

fuzz_target!(|data: &[u8]| {
    // Bytes round-trip through both alphabets, and never encode longer than the bound says.
    for alphabet in [base58::BIF, base58::BITCOIN] {
        let text = alphabet.encode(data);
        assert!(text.len() <= base58::max_encoded_len(data.len()));
        if text.len() <= base58::MAX_DECODE_LEN {
            assert_eq!(alphabet.decode(&text).as_deref(), Ok(data));
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let chars = text.chars().count();
    for alphabet in [base58::BIF, base58::BITCOIN] {
        match alphabet.decode(text) {
            Ok(bytes) => assert_eq!(alphabet.encode(&bytes), text),
            Err(Base58Error::TooLong { length, max }) => {
                assert_eq!((length, max), (chars, base58::MAX_DECODE_LEN));
                assert!(chars > base58::MAX_DECODE_LEN);
            }
            Err(Base58Error::InvalidCharacter { position, .. }) => assert!(position < chars),
        }
    }
    match Signature::parse(text) {
        Ok(signature) => {
            assert!(chars <= 128);
            if chars != 128 {
                assert_eq!(signature.to_base58(), text);
            }
        }
        Err(KeyError::TooLong { max, length, .. }) => {
            assert_eq!((max, length), (MAX_SIGNATURE_BASE58_LEN, chars));
        }
        Err(_) => {}
    }
    match PublicKey::from_encoded(text) {
        Ok(key) => {
            assert_eq!(key.to_encoded(), text.to_ascii_lowercase());
            if let PublicKey::Ed25519(k) = &key {
                assert!(!k.is_weak());
            }
        }
        Err(KeyError::TooLong { max, .. }) => assert!(chars > max && max == MAX_PUBLIC_KEY_HEX_LEN),
        Err(_) => {}
    }
    match PrivateKey::from_encoded(text) {
        Ok(key) => assert_eq!(key.to_encoded(), text),
        Err(KeyError::TooLong { max, .. }) => assert!(chars > max && max == MAX_PRIVATE_KEY_LEN),
        Err(_) => {}
    }
    let _ = sparkid_resolver::didkey::resolve(text, &Default::default());
});
