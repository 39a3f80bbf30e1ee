//! The did:bid core on its hot paths: deriving an address from a key, parsing a BID, and
//! verifying a document proof.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};
use sparkid_bid::document::DID_CONTEXT;
use sparkid_bid::proof::{sign_document, signing_bytes, verify_document};
use sparkid_bid::{Bid, PrivateKey, PublicKey};

/// A signed native document of about 1 KB: two keys, services, alsoKnownAs, an extension.
fn signed_document(key: &PrivateKey, recovery: &PrivateKey) -> Value {
    let did = Bid::derive(&key.public_key(), None).unwrap().to_string();
    let mut doc = json!({
        "@context": [DID_CONTEXT],
        "version": "1.0.0",
        "id": did,
        "publicKey": [
            {"id": format!("{did}#key-1"), "type": "Ed25519", "controller": did, "publicKeyHex": key.public_key().to_encoded()},
            {"id": format!("{did}#key-2"), "type": "Ed25519", "controller": did, "publicKeyHex": recovery.public_key().to_encoded()},
        ],
        "authentication": [format!("{did}#key-1")],
        "alsoKnownAs": [{"type": 103, "id": "example.com"}],
        "service": [
            {"id": format!("{did}#resolver"), "type": "DIDResolver", "serviceEndpoint": "https://resolver.example.com", "protocol": 3},
        ],
        "extension": {
            "recovery": [format!("{did}#key-2")],
            "ttl": 86400,
            "type": 102,
            "attributes": [{"key": "name", "encrypt": 0, "format": "text", "value": "Example Co."}],
        },
    });
    sign_document(&mut doc, &format!("{did}#key-1"), key).unwrap();
    doc
}

fn bench(c: &mut Criterion) {
    let key = PrivateKey::from_seed([7; 32]);
    let encoded = key.public_key().to_encoded();
    let did = Bid::derive(&key.public_key(), None).unwrap().to_string();
    let sub_did = Bid::derive(&key.public_key(), Some("ab12".parse().unwrap()))
        .unwrap()
        .to_string();

    let mut group = c.benchmark_group("bid");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);

    group.throughput(Throughput::Elements(1));
    group.bench_function("derive address (from_encoded + derive + to_string)", |b| {
        b.iter(|| {
            let key = PublicKey::from_encoded(black_box(&encoded)).unwrap();
            Bid::derive(&key, None).unwrap().to_string()
        })
    });
    group.bench_function("parse BID (main chain)", |b| {
        b.iter(|| black_box(did.as_str()).parse::<Bid>().unwrap())
    });
    group.bench_function("parse BID (sub-chain)", |b| {
        b.iter(|| black_box(sub_did.as_str()).parse::<Bid>().unwrap())
    });

    let doc = signed_document(&key, &PrivateKey::from_seed([8; 32]));
    let size = serde_json::to_string(&doc).unwrap().len();
    assert!((900..=1200).contains(&size), "the document is {size} bytes");
    let signed = signing_bytes(&doc).unwrap().len();
    let public = key.public_key();
    verify_document(&doc, &public).unwrap();
    group.throughput(Throughput::Bytes(signed as u64));
    group.bench_function(format!("verify document proof ({size} B document)"), |b| {
        b.iter(|| verify_document(black_box(&doc), &public).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
