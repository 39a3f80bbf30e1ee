//! The Ecode grammar on arbitrary text: never a panic; what it accepts is canonical, decimal,
//! of version 1 to 3 and within the caps of spec/ecode.md (V0 is never accepted: it is GS1's);
//! its covering prefixes are prefixes of it, longest first; its alias round-trips. A V0 code
//! maps to a GS1 key only when it is `0` followed by a GTIN of 8, 12, 13 or 14 digits, and the
//! key is that GTIN as GTIN-14.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparkid_bridges::ecode::EcodeBridge;
use sparkid_bridges::Bridge;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(path) = sparkid_registrar::ecode::v0_gs1_path(text) {
        let gtin = &text[1..];
        assert!([8, 12, 13, 14].contains(&gtin.len()), "{text}");
        assert_eq!(path, format!("/01/{gtin:0>14}"));
        assert!(
            EcodeBridge.normalize(text).is_err(),
            "V0 is never an Ecode binding"
        );
    }
    let Ok(code) = EcodeBridge.normalize(text) else {
        return;
    };
    assert_eq!(code, text, "an Ecode is its own canonical form");
    assert!((3..=48).contains(&code.len()));
    assert!(code.bytes().all(|b| b.is_ascii_digit()));
    assert!(matches!(code.as_bytes()[0], b'1'..=b'3'));
    let prefixes = EcodeBridge.namespaces(&code);
    assert!(prefixes.windows(2).all(|w| w[0].len() > w[1].len()));
    assert!(prefixes
        .iter()
        .all(|p| code.starts_with(p.as_str()) && p.len() >= 2));
    let uri = EcodeBridge.uri(&code).expect("an Ecode has an alias");
    assert_eq!(EcodeBridge.identifier_of_uri(&uri), Some(code));
});
