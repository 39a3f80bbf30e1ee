//! The Ecode grammar on arbitrary text: never a panic; what it accepts is canonical, decimal,
//! of version 1 to 3 and within the caps of spec/ecode.md (V0 is never accepted: it is GS1's);
//! its covering prefixes are prefixes of it, longest first; its alias round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparkid_bridges::ecode::EcodeBridge;
use sparkid_bridges::Bridge;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
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
