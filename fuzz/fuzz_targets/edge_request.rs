//! The HTTP edge's view of a request on arbitrary input (issue 12, items 4 and 7): classifying
//! a path and query string for the rate limits, spotting a long poll and rendering a 429 in the
//! door's shape never panic, whatever the path or query holds.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sparkid::edge::{classify, is_long_poll, refusal};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = match text.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (text, None),
    };
    for method in [http::Method::GET, http::Method::POST] {
        let _ = classify(&method, path, query);
    }
    let _ = is_long_poll(path, query);
    let response = refusal(path, 1, text);
    assert_eq!(response.status(), 429);
});
