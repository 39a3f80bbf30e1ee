//! did:web's URL mapping on arbitrary method-specific ids: it never panics, and what it accepts
//! is an `https://` URL ending in `/did.json` that the HTTP client parses, on the host the id
//! names (no userinfo, no other authority smuggled in).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sparkid_resolver::ssi_methods::web_url;

fuzz_target!(|data: &[u8]| {
    let Ok(msi) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(url) = web_url(msi) else {
        return;
    };
    assert!(
        url.starts_with("https://") && url.ends_with("/did.json"),
        "{url}"
    );
    let parsed = reqwest::Url::parse(&url).expect("a did:web URL parses");
    assert!(parsed.username().is_empty() && parsed.password().is_none());
    let host = parsed.host_str().expect("a host");
    let named = msi.split(':').next().unwrap_or_default();
    let named = named.split("%3A").next().unwrap_or_default();
    let named = named.split("%3a").next().unwrap_or_default();
    assert_eq!(host, named.to_ascii_lowercase());
    assert!(parsed.query().is_none() && parsed.fragment().is_none());
});
