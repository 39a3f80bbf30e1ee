//! The alias readers on arbitrary input (issue 12): a document's `alsoKnownAs` read as the
//! identifiers its controller confirms, and alias URIs. Never a panic; what is accepted is
//! canonical (reading its URI again gives the same alias), and a confirmed alias is always one
//! of the record's bound aliases.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparkid_registrar::namespace::{listed_aliases, Alias, AliasRecord};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(alias) = Alias::from_uri(text) {
        let uri = alias.uri().expect("a bridged kind has a URI");
        assert_eq!(Alias::from_uri(&uri), Some(alias));
    }
    let Ok(document) = serde_json::from_str::<serde_json::Value>(text) else {
        return;
    };
    let listed = listed_aliases(&document);
    for alias in &listed {
        let uri = alias.uri().expect("a bridged kind has a URI");
        assert_eq!(Alias::from_uri(&uri).as_ref(), Some(alias));
    }
    let record = AliasRecord {
        did: "did:bid:ef18F9AVK4SQLZPRrPkrVWwp9kbpdXHx".into(),
        aliases: listed.iter().skip(1).cloned().collect(),
        linked: listed.iter().take(1).cloned().collect(),
        version_id: 1,
        height: 1,
    };
    for confirmed in record.confirmed(Some(&document)) {
        assert!(record.aliases.contains(confirmed));
    }
});
