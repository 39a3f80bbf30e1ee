//! The DNS bridge's name mapping on arbitrary input (`sparkid_bridges::dns`): no input makes it
//! panic; every name it makes for a VAA code, a Handle, an OID, an Ecode, a GS1 key or a DID is
//! a valid DNS name (at most
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
    for (kind, identifier) in [
        (Kind::Vaa, text),
        (Kind::Handle, text),
        (Kind::Oid, text),
        (Kind::Ecode, text),
        (Kind::Gs1, text),
    ] {
        if let Ok(name) = zone.name_for(kind, identifier) {
            valid_name(&name);
            let read = zone.classify(&name);
            if let Some(ServiceName::EcodeV0 { code, gs1 }) = &read {
                // A V0 Ecode is named as it is written; it stands for its GS1 key.
                assert_eq!(code, identifier);
                assert_eq!(
                    sparkid_registrar::ecode::v0_gs1_path(identifier)
                        .ok()
                        .as_ref(),
                    Some(gs1)
                );
                continue;
            }
            let canonical = normalize_identifier(kind, identifier).expect("named, so valid");
            match read {
                Some(ServiceName::Oid(oid)) => assert_eq!(oid, canonical),
                Some(ServiceName::Ecode(code)) => assert_eq!(code, canonical),
                Some(ServiceName::Gs1(key)) => assert_eq!(key, canonical),
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
        let lower = candidate
            .to_ascii_lowercase()
            .trim_end_matches('.')
            .to_string();
        match zone.classify(&candidate) {
            Some(ServiceName::Oid(oid)) => assert_eq!(zone.oid_name(&oid).ok(), Some(lower)),
            Some(ServiceName::Ecode(code)) => {
                assert_eq!(zone.ecode_name(&code).ok(), Some(lower))
            }
            Some(ServiceName::EcodeV0 { code, .. }) => {
                assert_eq!(zone.ecode_name(&code).ok(), Some(lower))
            }
            Some(ServiceName::Gs1(key)) => assert_eq!(zone.gs1_name(&key).ok(), Some(lower)),
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
