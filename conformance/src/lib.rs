//! Conformance: checks written from the W3C DID Core and DID Resolution specifications, run
//! against what the daemon answers, and the generator of W3C did-test-suite fixtures.
//!
//! - [`check_did_syntax`], [`check_did_url_syntax`]: DID Core §3.1 and §3.2.
//! - [`document`]: the properties of a DID document (DID Core §5).
//! - [`resolution`]: resolution and dereferencing results, their metadata and error shapes
//!   (DID Core §7, DID Resolution).
//! - [`dts`]: the rules the W3C did-test-suite applies to the implementation fixtures it reads.
//! - [`fixtures`]: records a resolver's answers and writes them as did-test-suite fixtures
//!   (`sparkid conformance --out DIR`).
//!
//! Every check returns all the violations it finds, each naming its section, so that a failing
//! run says everything that is wrong at once.
//!
//! The crate does not know how sparkid is built: it depends on no other sparkid crate and sees
//! the daemon only through its answers (JSON values, or the HTTP exchanges the recorder makes),
//! so a check cannot share the bug it is meant to catch. It starts no daemon and writes no
//! files; the `sparkid conformance` command does both.
#![deny(missing_docs)]

pub mod document;
pub mod dts;
pub mod fixtures;
pub mod resolution;

use thiserror::Error;

/// A DID Core rule that an answer breaks.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("DID Core {section}: {message}")]
pub struct Violation {
    /// The section of the specification.
    pub section: &'static str,
    /// What is wrong.
    pub message: String,
}

/// DID Core §3.1: `did = "did:" method-name ":" method-specific-id`, `method-name = 1*method-char`
/// (`%x61-7A / DIGIT`), `method-specific-id = *( *idchar ":" ) 1*idchar`, `idchar = ALPHA / DIGIT
/// / "." / "-" / "_" / pct-encoded`.
pub fn check_did_syntax(did: &str) -> Result<(), Violation> {
    let violation = |message: String| Violation {
        section: "§3.1 DID Syntax",
        message,
    };
    let rest = did
        .strip_prefix("did:")
        .ok_or_else(|| violation(format!("{did:?} does not begin with \"did:\"")))?;
    let (method, id) = rest
        .split_once(':')
        .ok_or_else(|| violation(format!("{did:?} has no method-specific-id")))?;
    if method.is_empty()
        || !method
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(violation(format!(
            "method name {method:?} must be lowercase letters and digits"
        )));
    }
    if id.is_empty() || id.ends_with(':') {
        return Err(violation(
            "the method-specific-id must end with at least one idchar".into(),
        ));
    }
    check_characters(id, b".-_:", "a method-specific-id").map_err(violation)
}

/// Checks that `text` holds only ASCII letters, digits, the `allowed` bytes and valid
/// percent-encodings; the error says where it does not.
fn check_characters(text: &str, allowed: &[u8], what: &str) -> Result<(), String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let ok = bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
                if !ok {
                    return Err(format!("bad percent-encoding at offset {i}"));
                }
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || allowed.contains(&b) => i += 1,
            b => {
                return Err(format!(
                    "character {:?} is not allowed in {what}",
                    b as char
                ))
            }
        }
    }
    Ok(())
}

/// DID Core §3.2: `did-url = did path-abempty [ "?" query ] [ "#" fragment ]`; the path, query
/// and fragment use RFC 3986 characters and valid percent-encoding.
pub fn check_did_url_syntax(url: &str) -> Result<(), Violation> {
    let violation = |message: String| Violation {
        section: "§3.2 DID URL Syntax",
        message,
    };
    let end = url.find(['/', '?', '#']).unwrap_or(url.len());
    check_did_syntax(&url[..end])?;
    let rest = &url[end..];
    check_characters(rest, b"-._~!$&'()*+,;=:@/?#", "a DID URL").map_err(violation)?;
    if rest.matches('#').count() > 1 {
        return Err(violation("a DID URL has at most one fragment".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_syntax() {
        for ok in [
            "did:bid:efJgt44mNDewKK1VEN454R17cjso3mSG",
            "did:bid:by01:efphXYwrDzCgE5RTCC1HesQKJvyDrQDm",
            "did:web:a%3A1",
        ] {
            check_did_syntax(ok).unwrap();
        }
        for bad in [
            "did:BID:x",
            "did:bid:",
            "did:bid:x:",
            "bid:x",
            "did:bid:a b",
            "did:bid:%zz",
            "did::x",
        ] {
            assert!(check_did_syntax(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn did_url_syntax() {
        for ok in [
            "did:bid:efJgt44mNDewKK1VEN454R17cjso3mSG#key-1",
            "did:bid:efJgt44mNDewKK1VEN454R17cjso3mSG?service=hub&relativeRef=%2Fx",
            "did:bid:efJgt44mNDewKK1VEN454R17cjso3mSG/path/to",
        ] {
            check_did_url_syntax(ok).unwrap();
        }
        for bad in [
            "did:bid:x#a#b",
            "did:bid:x?q=%g1",
            "did:bid:x#a b",
            "did:bid#frag",
        ] {
            assert!(check_did_url_syntax(bad).is_err(), "{bad}");
        }
    }
}
