//! The GS1 Digital Link parser (`sparkid_gs1::parse`, over the embedded GS1 syntax dictionary)
//! and the registrar's gs1 grammar on arbitrary text: never a panic; what it accepts has a
//! canonical path that parses back to itself, levels from that path down to the primary key, and
//! GS1 Company Prefixes of 4 to 12 digits, longest first; the alias URI reads back to the path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparkid_registrar::namespace::{covering_namespaces, normalize_identifier, Alias, Kind};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(link) = sparkid_gs1::parse(text) else {
        return;
    };
    let path = link.path();
    assert!(path.len() <= sparkid_gs1::MAX_PATH_LEN * 3);
    let again = sparkid_gs1::parse(&path).expect("a canonical path parses");
    assert_eq!(again, link, "the canonical path names the same key");
    assert_eq!(again.path(), path, "canonical is a fixed point");
    let levels = link.levels();
    assert_eq!(levels.first(), Some(&path));
    assert_eq!(levels.len(), link.qualifiers.len() + 1);
    assert!(levels.windows(2).all(|w| w[0].starts_with(w[1].as_str())));
    let prefixes = link.company_prefixes();
    assert!(prefixes.windows(2).all(|w| w[0].len() == w[1].len() + 1));
    assert!(prefixes
        .iter()
        .all(|p| (4..=12).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())));
    assert_eq!(
        normalize_identifier(Kind::Gs1, text).as_deref(),
        Ok(path.as_str())
    );
    assert_eq!(covering_namespaces(Kind::Gs1, &path), prefixes);
    let alias = Alias {
        kind: Kind::Gs1,
        identifier: path.clone(),
    };
    let uri = alias.uri().expect("a gs1 alias has a URI");
    assert_eq!(Alias::from_uri(&uri), Some(alias));
});
