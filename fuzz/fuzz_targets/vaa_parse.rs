//! The VAA grammar on arbitrary text: never a panic; what it accepts is canonical and obeys
//! every rule of spec/vaa.md; its covering prefixes are prefixes of it, longest first.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparkid_bridges::vaa::{parse_vaa, VaaBridge};
use sparkid_bridges::Bridge;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(code) = parse_vaa(text) {
        assert_eq!(code, text, "a VAA code is its own canonical form");
        assert!(code.len() <= 64);
        assert!(code.starts_with("VAA"));
        assert!(code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        let prefixes = VaaBridge.namespaces(&code);
        assert!(prefixes.windows(2).all(|w| w[0].len() > w[1].len()));
        assert!(prefixes
            .iter()
            .all(|p| code.starts_with(p.as_str()) && p.len() >= 4));
    }
});
