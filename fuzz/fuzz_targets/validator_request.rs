//! The signature headers of a request between validators (`sparkid_node::validator_auth`) on
//! arbitrary text and bodies: never a panic, and nothing that is not signed by a validator of
//! the chain is accepted (the fuzzer holds no validator key).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sparkid_bid::PrivateKey;
use sparkid_node::validator_auth::{Authenticator, RequestSignature};

fn authenticator() -> &'static Authenticator {
    static AUTH: OnceLock<Authenticator> = OnceLock::new();
    AUTH.get_or_init(|| {
        let keys: Vec<PrivateKey> = (0..4u8).map(|i| PrivateKey::from_seed([i; 32])).collect();
        let validators = keys
            .iter()
            .map(|k| (k.public_key().to_encoded(), k.public_key()))
            .collect();
        Authenticator::new("fuzz", &keys[0].public_key().to_encoded(), validators)
    })
}

fuzz_target!(|data: &[u8]| {
    // Fields separated by NUL: validator, signedAt, signature, path, then the body.
    let mut parts = data.splitn(5, |b| *b == 0);
    let mut text = || {
        parts
            .next()
            .and_then(|p| std::str::from_utf8(p).ok())
            .map(str::to_string)
    };
    let signature = RequestSignature {
        validator: text(),
        signed_at: text(),
        signature: text(),
    };
    let path = text().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let now = 1_700_000_000_000;
    let result = authenticator().check(&path, &signature, body, now);
    assert!(result.is_err(), "accepted without a validator's signature");
});
