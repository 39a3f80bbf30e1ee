//! The DNS bridge's name mapping on arbitrary input (`sparkid_bridges::dns`): no input makes it
//! panic; every name it makes for a VAA code, a Handle or a DID is a valid DNS name (at most
//! 253 characters, labels of 1 to 63, LDH except the fixed underscore markers) and reads back
//! to exactly that identifier; any text read as a name of the service zone either stands for
//! nothing or for an identifier whose own name is that text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sparkid_bridges::dns::{
    base32_decode, base32_encode, escape_labels, handle_hash_label, unescape, ServiceName,
    ServiceZone,
};
use sparkid_registrar::namespace::{normalize_identifier, Kind};

fn valid_name(name: &str) {
    assert!(name.len() <= 253, "{name}");
    for label in name.split('.') {
        assert!(!label.is_empty() && label.len() <= 63, "{name}");
        if matches!(label, "_" | "_hash" | "_did") {
            continue;
        }
        assert!(
            label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{name}"
        );
        assert!(!label.starts_with('-') && !label.ends_with('-'), "{name}");
        assert!(!label.contains("--"), "{name}");
    }
}

fuzz_target!(|data: &[u8]| {
    let zone = ServiceZone::new("sparkid.test").expect("zone");
    // Arbitrary bytes through base32 and the escaping.
    assert_eq!(base32_decode(&base32_encode(data)).as_deref(), Some(data));
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let labels = escape_labels(text);
    let mut decoded = Vec::new();
    for label in &labels {
        assert!(label.len() <= 63 && !label.is_empty());
        decoded.extend(unescape(label).expect("an escaped label decodes"));
    }
    assert_eq!(decoded, text.as_bytes());

    // Identifier -> name -> identifier.
    for (kind, identifier) in [(Kind::Vaa, text), (Kind::Handle, text)] {
        if let Ok(name) = zone.name_for(kind, identifier) {
            valid_name(&name);
            let canonical = normalize_identifier(kind, identifier).expect("named, so valid");
            match zone.classify(&name) {
                Some(ServiceName::Vaa(code)) => assert_eq!(code, canonical),
                Some(ServiceName::Handle(handle)) => assert_eq!(handle, canonical),
                Some(ServiceName::HandleHash(label)) => {
                    assert_eq!(label, handle_hash_label(&canonical))
                }
                other => panic!("{name} read back as {other:?}"),
            }
        }
    }
    if let Ok(name) = zone.did_name(text) {
        valid_name(&name);
        match zone.classify(&name) {
            Some(ServiceName::Did(did)) => {
                assert_eq!(did.parse::<sparkid_bid::Bid>().ok(), text.parse().ok())
            }
            other => panic!("{name} read back as {other:?}"),
        }
    }

    // Name -> identifier -> name.
    for candidate in [text.to_string(), format!("{text}.sparkid.test")] {
        match zone.classify(&candidate) {
            Some(ServiceName::Vaa(code)) => assert_eq!(
                zone.vaa_name(&code).ok(),
                Some(
                    candidate
                        .to_ascii_lowercase()
                        .trim_end_matches('.')
                        .to_string()
                )
            ),
            Some(ServiceName::Handle(handle)) => assert_eq!(
                zone.handle_name(&handle).ok(),
                Some(
                    candidate
                        .to_ascii_lowercase()
                        .trim_end_matches('.')
                        .to_string()
                )
            ),
            Some(ServiceName::Did(did)) => {
                let name = zone.did_name(&did).expect("a DID it read");
                assert_eq!(name, candidate.to_ascii_lowercase().trim_end_matches('.'));
            }
            _ => {}
        }
    }
});
