//! The DID URL parser on arbitrary input: it never panics, and what it accepts splits back into
//! exactly the text it was given.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sparkid_resolver::did_url::{looks_like_did_url, parse_params, percent_decode, DidUrl};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = looks_like_did_url(text);
    let _ = percent_decode(text);
    let _ = parse_params(text);
    let Ok(url) = DidUrl::parse(text) else {
        return;
    };
    let mut rebuilt = format!("{}{}", url.did(), url.path());
    if let Some(query) = url.query() {
        rebuilt.push('?');
        rebuilt.push_str(query);
    }
    if let Some(fragment) = url.fragment() {
        rebuilt.push('#');
        rebuilt.push_str(fragment);
    }
    assert_eq!(rebuilt, text);
    assert_eq!(url.as_str(), text);
    assert_eq!(
        url.did(),
        format!("did:{}:{}", url.method(), url.method_specific_id())
    );
    assert!(!url.method().is_empty() && !url.method_specific_id().is_empty());
    // The DID of a DID URL is a DID.
    let did = DidUrl::parse(url.did()).expect("the DID part parses alone");
    assert!(did.is_did());
    assert_eq!(url.is_did(), url.as_str() == url.did());
    for (name, _) in url.params() {
        assert_eq!(url.params().iter().filter(|(n, _)| n == name).count(), 1);
    }
});
