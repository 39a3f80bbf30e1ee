//! The handle parser on arbitrary text: never a panic; a parsed handle's canonical form parses
//! to itself (so does a mapped identifier's handle, `gs1/…`, `ecode/…`, `urn.oid/…`); the REST
//! and native answers of an empty ledger agree.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use sparkid_bridges::handle::{identifier_handle, parse_handle, HandleBridge, HandleName};
use sparkid_bridges::{BridgeError, RecordSource};

struct Empty;

impl RecordSource for Empty {
    fn record(&self, _key: &str) -> Result<Option<Arc<str>>, BridgeError> {
        Ok(None)
    }
}

fuzz_target!(|data: &[u8]| {
    let answer = HandleBridge.answer(&Empty, data, &[], &[] as &[&[u8]], "http://x");
    let Ok(text) = std::str::from_utf8(data) else {
        assert_eq!(answer.code, 102);
        return;
    };
    match parse_handle(text) {
        Err(_) => assert_eq!(answer.code, 102),
        Ok(name) => {
            assert_eq!(answer.code, 100, "nothing is bound on an empty ledger");
            if let HandleName::Bound(canonical) = &name {
                assert_eq!(parse_handle(canonical).ok(), Some(name.clone()));
                assert!(canonical.len() <= 255);
            }
            // A mapped identifier's own handle reads back to it (a V0 Ecode reads as its GS1
            // key, whose handle is `gs1/…`).
            if let HandleName::Identifier { kind, identifier } = &name {
                let own = identifier_handle(*kind, identifier).expect("a mapped kind");
                assert_eq!(parse_handle(&own).ok(), Some(name.clone()));
            }
        }
    }
});
