//! The OID grammar and its ORS layout on arbitrary text: never a panic; what it accepts is
//! canonical and obeys every rule of spec/oid.md; its covering namespaces are its arc
//! prefixes, longest first; its ORS name classifies back to it; its URN round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparkid_bridges::oid::{OidBridge, OrsName, OrsZone};
use sparkid_bridges::Bridge;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let zone = OrsZone::under("sparkid.test").expect("the default zone is valid");
    // Any text as a DNS name in the zone: total, never a panic.
    let _ = zone.classify(text);
    let Ok(oid) = OidBridge.normalize(text) else {
        return;
    };
    assert!(oid.len() <= 100);
    let arcs: Vec<&str> = oid.split('.').collect();
    assert!(arcs.len() >= 2);
    assert!(matches!(arcs[0], "0" | "1" | "2"));
    for arc in &arcs {
        assert!(!arc.is_empty() && arc.len() <= 63);
        assert!(arc.bytes().all(|b| b.is_ascii_digit()));
        assert!(arc.len() == 1 || !arc.starts_with('0'));
    }
    if arcs[0] != "2" {
        assert!(arcs[1].len() == 1 || (arcs[1].len() == 2 && arcs[1] <= "39"));
    }
    assert_eq!(OidBridge.normalize(&oid).as_deref(), Ok(oid.as_str()));
    let covering = OidBridge.namespaces(&oid);
    assert_eq!(covering.len(), arcs.len());
    assert!(covering
        .iter()
        .all(|ns| ns == &oid || oid.starts_with(&format!("{ns}."))));
    let name = zone.name(&oid).expect("every accepted OID has an ORS name");
    assert!(name.len() <= 253);
    assert_eq!(zone.classify(&name), Some(OrsName::Oid(oid.clone())));
    let uri = OidBridge.uri(&oid).expect("an OID has a URN");
    assert_eq!(OidBridge.identifier_of_uri(&uri), Some(oid));
});
