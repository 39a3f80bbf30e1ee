//! Every vector in `shared/vectors/bid-vectors.json` is a test here.

use serde_json::Value;
use sparkid_bid::{base58, proof, Bid, PrivateKey, PublicKey};

fn vectors() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/vectors/bid-vectors.json"
    );
    let text = std::fs::read_to_string(path)
        .expect("shared/vectors/bid-vectors.json beside the repository");
    serde_json::from_str(&text).expect("vectors are JSON")
}

#[test]
fn alphabet_is_the_published_one() {
    let v = vectors();
    let expected = v["base58Alphabet"].as_str().unwrap();
    let rendered: String = (0u8..58)
        .map(|d| base58::BIF.encode(&[d]))
        .collect::<Vec<_>>()
        .concat();
    // Digit 0 encodes as the empty string after stripping (a single zero byte is "1").
    assert_eq!(format!("1{}", &rendered[1..]), expected);
}

#[test]
fn addresses_derive_from_encoded_public_keys() {
    for case in vectors()["addresses"].as_array().unwrap() {
        let key = PublicKey::from_encoded(case["encodedPublicKey"].as_str().unwrap()).unwrap();
        let did = case["did"].as_str().unwrap();
        assert_eq!(Bid::derive(&key, None).unwrap().to_string(), did);
        let parsed: Bid = did.parse().unwrap();
        assert!(parsed.is_derived_from(&key));
    }
}

#[test]
fn private_keys_decode_to_their_bid() {
    for case in vectors()["privateKeys"].as_array().unwrap() {
        let encoded = case["encoded"].as_str().unwrap();
        let key = PrivateKey::from_encoded(encoded).unwrap();
        assert_eq!(
            Bid::derive(&key.public_key(), None).unwrap().to_string(),
            case["did"].as_str().unwrap()
        );
        assert_eq!(key.to_encoded(), encoded);
    }
}

#[test]
fn document_proofs_reproduce_and_verify() {
    for case in vectors()["documentProofs"].as_array().unwrap() {
        let key = PrivateKey::from_encoded(case["creatorPrivateKey"].as_str().unwrap()).unwrap();
        let mut doc = case["document"].clone();
        let creator = doc["authentication"][0].as_str().unwrap().to_string();
        proof::sign_document(&mut doc, &creator, &key).unwrap();
        assert_eq!(doc["proof"]["signatureValue"], case["signatureValue"]);
        proof::verify_document(&doc, &key.public_key()).unwrap();
        // The signed bytes are the published 710-byte sorted form.
        assert_eq!(proof::signing_bytes(&doc).unwrap().len(), 710);
        // The same signature decoded with Bitcoin's alphabet must not verify.
        let wrong = base58::BITCOIN
            .decode(case["signatureValue"].as_str().unwrap())
            .unwrap();
        let mut tampered = doc.clone();
        tampered["proof"]["signatureValue"] = Value::String(hex::encode(&wrong));
        assert!(proof::verify_document(&tampered, &key.public_key()).is_err());
    }
}

#[test]
fn sdk_document_key_derives_its_id_and_delegate_sign_is_over_encoded_key_bytes() {
    // Reference bid.md §5: the SDK-produced document of efj3FikDU8c7An3SPUoRtEWf2JDg1Hg9. Its
    // delegateSign is an uppercase-hex Ed25519 signature over the 35 encoded key bytes.
    let key = PublicKey::from_encoded(
        "b0656616cef061d0cae2b3e4fa49694cad29b4eb864ec85f1538ccb2edb926b71d276e",
    )
    .unwrap();
    let sig = sparkid_bid::Signature::parse("07E5B21A42B38B89A409A720E6BC1BDAC1ED2BD22F7786682470C8B975A9DC9C23E8DD9AC416712E7DE3026CED7F3866A4073368B01750698CBB0FEF783BC60C").unwrap();
    key.verify(&key.encoded_bytes(), &sig).unwrap();
    assert_eq!(
        Bid::derive(&key, None).unwrap().to_string(),
        "did:bid:efj3FikDU8c7An3SPUoRtEWf2JDg1Hg9"
    );
}

#[test]
fn bitcoin_alphabet_would_give_the_wrong_addresses() {
    // Reference bid.md §3: under Bitcoin's alphabet these keys would print other addresses.
    let key = PublicKey::from_encoded(
        "b06566f76733ae048fda721d47afe8780b572636496c93253db86dc8d5427fc54e9a06",
    )
    .unwrap();
    let bid = Bid::derive(&key, None).unwrap();
    let bitcoin = format!(
        "did:bid:ef{}",
        base58::BITCOIN.encode(bid.address().unwrap().hash())
    );
    assert_eq!(bitcoin, "did:bid:ef18F9AVK4SQLZPRrPkrVWwp9kBpdXHx");
    assert_ne!(bitcoin, bid.to_string());
}

#[test]
fn published_pairs_beyond_the_shared_vectors_derive() {
    // A key pair printed in a public BIF SDK test (encAddress, encPublicKey, encPrivateKey).
    let public = "b065666cee70556107436be380dca88a5a5e403fd54a14d59f4eac322d598136264333";
    let private = "priSPKq5XtWDeVp4nCiQZP39xkK9dUaT4mkRxBxTvVjKE7Fib4";
    let did = "did:bid:efNc8GGh3Yh2GkNJwBwHmKsqWPEayBtM";
    let key = PublicKey::from_encoded(public).unwrap();
    assert_eq!(Bid::derive(&key, None).unwrap().to_string(), did);
    assert_eq!(PrivateKey::from_encoded(private).unwrap().public_key(), key);
}
