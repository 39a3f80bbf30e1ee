//! BID addresses and the BID-protocol request parts on arbitrary text: never a panic; an
//! accepted BID is canonical (it prints back as exactly the text given) and parses again to
//! itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparkid_bid::Bid;
use sparkid_resolver::bidproto::{Options, SubPath};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(bid) = text.parse::<Bid>() {
        let printed = bid.to_string();
        assert_eq!(printed, text, "an accepted BID is its own canonical form");
        assert!(printed.len() <= sparkid_bid::address::MAX_LEN);
        assert_eq!(printed.parse::<Bid>().ok(), Some(bid));
        assert_eq!(bid.is_ac_code_only(), bid.address().is_none());
        assert_eq!(bid.on_main_chain().ac_code(), None);
    }
    // `/{bid}/{rest}?{query}` as the door splits it.
    let (path, query) = text.split_once('?').unwrap_or((text, ""));
    if let Some((_, rest)) = path.split_once('/') {
        if let Ok(SubPath::PublicKey(id)) = SubPath::parse(rest) {
            assert!(!id.is_empty());
        }
    }
    let pairs: Vec<(String, String)> = query
        .split('&')
        .map(|p| {
            let (n, v) = p.split_once('=').unwrap_or((p, ""));
            (n.to_string(), v.to_string())
        })
        .collect();
    if let Ok(options) = Options::parse(&pairs) {
        if let Some(id) = options.id {
            assert!(pairs.iter().any(|(n, v)| n == "id" && *v == id));
        }
    }
});
