//! DID and DID URL syntax (W3C DID Core 1.0 §3.1 and §3.2), with the query parameters that DID
//! Resolution gives meaning to. Pure: no I/O, no allocation beyond the parsed parts, and no input
//! can make it panic (see the `did_url` fuzz target in `fuzz/`).
//!
//! ```text
//! did                = "did:" method-name ":" method-specific-id
//! method-name        = 1*( %x61-7A / DIGIT )
//! method-specific-id = *( *idchar ":" ) 1*idchar
//! idchar             = ALPHA / DIGIT / "." / "-" / "_" / pct-encoded
//! did-url            = did path-abempty [ "?" query ] [ "#" fragment ]      (RFC 3986 rules)
//! ```
//!
//! A malformed DID is [`DidUrlError::InvalidDid`]; a well-formed DID followed by a malformed path,
//! query or fragment is [`DidUrlError::InvalidDidUrl`]. Query parameters are `name=value` pairs
//! separated by `&`, each percent-decoded once; a repeated name is ambiguous and refused, as DID
//! Resolution suggests.

use thiserror::Error;

/// The longest identifier a door accepts, in bytes.
pub const MAX_IDENTIFIER_LEN: usize = 2048;

/// The longest DID URL, in bytes: [`MAX_IDENTIFIER_LEN`].
pub const MAX_DID_URL_LEN: usize = MAX_IDENTIFIER_LEN;

/// Why a text is not a DID or a DID URL. The message says where and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DidUrlError {
    /// The DID itself is malformed (DID Resolution's `INVALID_DID`).
    #[error("{0}")]
    InvalidDid(String),
    /// The DID is well formed but its path, query or fragment is not (`INVALID_DID_URL`).
    #[error("{0}")]
    InvalidDidUrl(String),
}

/// A parsed DID URL: a DID with an optional path, query and fragment. A bare DID is a DID URL
/// with none of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DidUrl {
    text: String,
    method_end: usize,
    did_end: usize,
    path_end: usize,
    query_end: usize,
    params: Vec<(String, String)>,
}

impl DidUrl {
    /// Parses a DID or DID URL.
    pub fn parse(input: &str) -> Result<DidUrl, DidUrlError> {
        if input.len() > MAX_DID_URL_LEN {
            let message = format!(
                "the identifier is {} bytes; at most {MAX_DID_URL_LEN} are accepted",
                input.len()
            );
            return Err(if looks_like_did_url(input) {
                DidUrlError::InvalidDidUrl(message)
            } else {
                DidUrlError::InvalidDid(message)
            });
        }
        let did_end = input.find(['/', '?', '#']).unwrap_or(input.len());
        let method_end = check_did(&input[..did_end])?;
        let rest = &input[did_end..];
        let (before_fragment, fragment) = match rest.find('#') {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (path, query) = match before_fragment.find('?') {
            Some(i) => (&before_fragment[..i], Some(&before_fragment[i + 1..])),
            None => (before_fragment, None),
        };
        let path_end = did_end + path.len();
        check_component(path, "path", did_end, |b| b == b'/')?;
        let query_end = match query {
            Some(q) => {
                check_component(q, "query", path_end + 1, |b| b == b'/' || b == b'?')?;
                path_end + 1 + q.len()
            }
            None => path_end,
        };
        if let Some(f) = fragment {
            check_component(f, "fragment", input.len() - f.len(), |b| {
                b == b'/' || b == b'?'
            })?;
        }
        let params = match query {
            Some(q) => parse_params(q).map_err(DidUrlError::InvalidDidUrl)?,
            None => Vec::new(),
        };
        let mut seen: Vec<&str> = Vec::with_capacity(params.len());
        for (name, _) in &params {
            if seen.contains(&name.as_str()) {
                return Err(DidUrlError::InvalidDidUrl(format!(
                    "the DID parameter {name:?} is given more than once"
                )));
            }
            seen.push(name);
        }
        Ok(DidUrl {
            text: input.to_string(),
            method_end,
            did_end,
            path_end,
            query_end,
            params,
        })
    }

    /// The whole DID URL as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The DID: `did:<method>:<method-specific-id>`.
    pub fn did(&self) -> &str {
        &self.text[..self.did_end]
    }

    /// The method name.
    pub fn method(&self) -> &str {
        &self.text[4..self.method_end]
    }

    /// The method-specific identifier (still percent-encoded, as DID syntax keeps it).
    pub fn method_specific_id(&self) -> &str {
        &self.text[self.method_end + 1..self.did_end]
    }

    /// The path, `""` when there is none (otherwise it starts with `/`).
    pub fn path(&self) -> &str {
        &self.text[self.did_end..self.path_end]
    }

    /// The raw query, without `?`, if there is one (it may be empty).
    pub fn query(&self) -> Option<&str> {
        (self.query_end > self.path_end).then(|| &self.text[self.path_end + 1..self.query_end])
    }

    /// The raw fragment, without `#`, if there is one.
    pub fn fragment(&self) -> Option<&str> {
        let start = self.query_end;
        (start < self.text.len()).then(|| &self.text[start + 1..])
    }

    /// The query's parameters, percent-decoded, in their order.
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// One query parameter's decoded value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// True for a bare DID: no path, no query, no fragment.
    pub fn is_did(&self) -> bool {
        self.did_end == self.text.len()
    }
}

impl std::fmt::Display for DidUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for DidUrl {
    type Err = DidUrlError;
    fn from_str(s: &str) -> Result<DidUrl, DidUrlError> {
        DidUrl::parse(s)
    }
}

/// Whether a text that may still be percent-encoded has a path, query or fragment after its
/// DID: how an input that cannot be parsed at all is classified (`INVALID_DID_URL` rather than
/// `INVALID_DID`).
pub fn looks_like_did_url(raw: &str) -> bool {
    let lower = raw.to_ascii_lowercase();
    let body = lower
        .strip_prefix("did:")
        .or_else(|| lower.strip_prefix("did%3a"));
    match body {
        Some(body) => ["/", "?", "#", "%2f", "%3f", "%23"]
            .iter()
            .any(|s| body.contains(s)),
        None => false,
    }
}

/// Checks a DID; returns the index of the `:` that ends its method name.
fn check_did(did: &str) -> Result<usize, DidUrlError> {
    let invalid = |why: String| DidUrlError::InvalidDid(format!("{}: {why}", shorten(did)));
    let Some(rest) = did.strip_prefix("did:") else {
        return Err(invalid(
            "a DID is did:<method>:<method-specific-id> and starts with \"did:\"".into(),
        ));
    };
    let colon = rest.find(':');
    let method = &rest[..colon.unwrap_or(rest.len())];
    if method.is_empty() {
        return Err(invalid("the method name is empty".into()));
    }
    if let Some((i, c)) = method
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
    {
        return Err(invalid(format!(
            "{c:?} at byte {} is not allowed in a method name (lowercase letters and digits)",
            4 + i
        )));
    }
    let Some(colon) = colon else {
        return Err(invalid(
            "a DID is did:<method>:<method-specific-id>; the method-specific id is missing".into(),
        ));
    };
    let msi_start = 4 + colon + 1;
    let msi = &did[msi_start..];
    if msi.is_empty() {
        return Err(invalid("the method-specific id is empty".into()));
    }
    if msi.ends_with(':') {
        return Err(invalid(
            "the method-specific id must not end with \":\"".into(),
        ));
    }
    check_chars(msi, msi_start, |b| {
        b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':')
    })
    .map_err(invalid)?;
    Ok(4 + colon)
}

/// Checks a path, query or fragment: RFC 3986 `pchar`s plus the characters `extra` allows.
fn check_component(
    text: &str,
    what: &str,
    offset: usize,
    extra: impl Fn(u8) -> bool,
) -> Result<(), DidUrlError> {
    check_chars(text, offset, |b| is_pchar(b) || extra(b))
        .map_err(|why| DidUrlError::InvalidDidUrl(format!("in the DID URL's {what}: {why}")))
}

/// RFC 3986 `unreserved / sub-delims / ":" / "@"` (percent-encoding is checked apart).
fn is_pchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
        )
}

/// Checks every byte against `allowed`, and every `%` for two hex digits after it.
fn check_chars(text: &str, offset: usize, allowed: impl Fn(u8) -> bool) -> Result<(), String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let ok = bytes.len() > i + 2
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit();
            if !ok {
                let end = (i + 3).min(bytes.len());
                return Err(format!(
                    "bad percent-encoding {:?} at byte {}: \"%\" must be followed by two hex digits",
                    String::from_utf8_lossy(&bytes[i..end]),
                    offset + i
                ));
            }
            i += 3;
            continue;
        }
        if !allowed(b) {
            let c = text[i..].chars().next().unwrap_or('\u{fffd}');
            return Err(format!(
                "{c:?} at byte {} is not allowed here (percent-encode it)",
                offset + i
            ));
        }
        i += 1;
    }
    Ok(())
}

/// Splits a query into `name=value` pairs and percent-decodes each part once. Empty queries have
/// no pairs; an empty pair, a pair without `=`, an empty name, bad percent-encoding or a value
/// that does not decode to UTF-8 is an error (the message says which).
pub fn parse_params(query: &str) -> Result<Vec<(String, String)>, String> {
    if query.is_empty() {
        return Ok(Vec::new());
    }
    query
        .split('&')
        .map(|pair| {
            if pair.is_empty() {
                return Err("an empty parameter (\"&&\" or a trailing \"&\")".to_string());
            }
            let Some((name, value)) = pair.split_once('=') else {
                return Err(format!(
                    "the parameter {:?} has no \"=value\"",
                    shorten(pair)
                ));
            };
            if name.is_empty() {
                return Err(format!("the parameter {:?} has no name", shorten(pair)));
            }
            Ok((percent_decode(name)?, percent_decode(value)?))
        })
        .collect()
}

/// Strict percent-decoding: every `%` must start a `%XX` triplet and the result must be UTF-8.
pub fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            match (bytes.get(i + 1), bytes.get(i + 2)) {
                (Some(&hi), Some(&lo)) if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => {
                    out.push(hex_value(hi) << 4 | hex_value(lo));
                    i += 3;
                }
                _ => {
                    let end = (i + 3).min(bytes.len());
                    return Err(format!(
                        "bad percent-encoding {:?}: \"%\" must be followed by two hex digits",
                        String::from_utf8_lossy(&bytes[i..end])
                    ));
                }
            }
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| format!("{:?} does not percent-decode to UTF-8 text", shorten(text)))
}

fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        _ => digit.wrapping_sub(b'A').wrapping_add(10),
    }
}

/// At most 80 characters of `text`, for messages.
fn shorten(text: &str) -> String {
    const MAX: usize = 80;
    if text.chars().count() <= MAX {
        return text.to_string();
    }
    let cut: String = text.chars().take(MAX).collect();
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> DidUrl {
        DidUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn invalid_did(s: &str) -> String {
        match DidUrl::parse(s) {
            Err(DidUrlError::InvalidDid(m)) => m,
            other => panic!("{s}: expected InvalidDid, got {other:?}"),
        }
    }

    fn invalid_url(s: &str) -> String {
        match DidUrl::parse(s) {
            Err(DidUrlError::InvalidDidUrl(m)) => m,
            other => panic!("{s}: expected InvalidDidUrl, got {other:?}"),
        }
    }

    #[test]
    fn dids_parse_into_their_parts() {
        let u = ok("did:bid:efJgt44mNDewKK1VEN454R17cjso3mSG");
        assert!(u.is_did());
        assert_eq!(u.method(), "bid");
        assert_eq!(u.method_specific_id(), "efJgt44mNDewKK1VEN454R17cjso3mSG");
        assert_eq!(u.did(), "did:bid:efJgt44mNDewKK1VEN454R17cjso3mSG");
        assert_eq!((u.path(), u.query(), u.fragment()), ("", None, None));
        let u = ok("did:bid:by01:efJgt44mNDewKK1VEN454R17cjso3mSG");
        assert_eq!(
            u.method_specific_id(),
            "by01:efJgt44mNDewKK1VEN454R17cjso3mSG"
        );
        // Empty segments and percent-encoded characters are allowed in the id.
        assert_eq!(ok("did:example::a%3Ab").method_specific_id(), ":a%3Ab");
        assert_eq!(ok("did:w3c2:x").method(), "w3c2");
    }

    #[test]
    fn did_urls_keep_path_query_and_fragment() {
        let u = ok("did:example:123/a/b?service=files&relativeRef=%2Fresume.pdf#frag/x?y");
        assert!(!u.is_did());
        assert_eq!(u.did(), "did:example:123");
        assert_eq!(u.path(), "/a/b");
        assert_eq!(u.query(), Some("service=files&relativeRef=%2Fresume.pdf"));
        assert_eq!(u.fragment(), Some("frag/x?y"));
        assert_eq!(u.param("service"), Some("files"));
        assert_eq!(u.param("relativeRef"), Some("/resume.pdf"));
        assert_eq!(u.param("none"), None);
        let u = ok("did:example:123#key-1");
        assert_eq!(
            (u.path(), u.query(), u.fragment()),
            ("", None, Some("key-1"))
        );
        let u = ok("did:example:123?");
        assert_eq!((u.query(), u.params().len()), (Some(""), 0));
        let u = ok("did:example:123#");
        assert_eq!(u.fragment(), Some(""));
        // '?' inside the fragment is the fragment's.
        let u = ok("did:example:123#a?service=x");
        assert_eq!((u.query(), u.fragment()), (None, Some("a?service=x")));
        assert_eq!(u.to_string(), "did:example:123#a?service=x");
    }

    #[test]
    fn malformed_dids_are_invalid_did() {
        assert!(invalid_did("").contains("starts with"));
        assert!(invalid_did("not-a-did").contains("starts with"));
        assert!(invalid_did("did:bid").contains("missing"));
        assert!(invalid_did("did::abc").contains("empty"));
        assert!(invalid_did("did:BID:abc").contains("method name"));
        assert!(invalid_did("did:bid:").contains("empty"));
        assert!(invalid_did("did:bid:abc:").contains("end with"));
        assert!(invalid_did("did:bid:ab c").contains("' '"));
        assert!(invalid_did("did:bid:ab%zz").contains("percent-encoding"));
        assert!(invalid_did("did:bid:ab%4").contains("percent-encoding"));
        assert!(invalid_did("did:bid:é").contains("not allowed"));
        assert!(invalid_did("did:key;invalid").contains("method name"));
        assert!(invalid_did("DID:bid:abc").contains("starts with"));
        assert!(invalid_did("did:bid:a+b").contains("'+'"));
    }

    #[test]
    fn malformed_did_urls_are_invalid_did_url() {
        assert!(invalid_url("did:bid:abc/a b").contains("path"));
        assert!(invalid_url("did:bid:abc?x=%zz").contains("percent-encoding"));
        assert!(invalid_url("did:bid:abc#a#b").contains("'#'"));
        assert!(invalid_url("did:bid:abc?a=1&a=2").contains("more than once"));
        assert!(invalid_url("did:bid:abc?a").contains("no \"=value\""));
        assert!(invalid_url("did:bid:abc?=1").contains("no name"));
        assert!(invalid_url("did:bid:abc?a=1&&b=2").contains("empty parameter"));
        assert!(invalid_url("did:bid:abc?a=%FF").contains("UTF-8"));
        assert!(invalid_url("did:bid:abc?a=<script>").contains("'<'"));
        assert!(invalid_url("did:bid:abc#é").contains("fragment"));
    }

    #[test]
    fn over_long_input_is_refused_with_the_limit_in_the_message() {
        let long = format!("did:bid:{}", "a".repeat(MAX_DID_URL_LEN));
        assert!(invalid_did(&long).contains(&MAX_DID_URL_LEN.to_string()));
        let long_url = format!("did:bid:abc?x={}", "a".repeat(MAX_DID_URL_LEN));
        assert!(invalid_url(&long_url).contains("at most"));
        let at_limit = format!("did:bid:{}", "a".repeat(MAX_DID_URL_LEN - 8));
        assert_eq!(ok(&at_limit).as_str().len(), MAX_DID_URL_LEN);
    }

    #[test]
    fn percent_decoding_is_strict() {
        assert_eq!(percent_decode("%2Fa%3fb").unwrap(), "/a?b");
        assert_eq!(percent_decode("a+b").unwrap(), "a+b");
        assert!(percent_decode("%").is_err());
        assert!(percent_decode("%g0").is_err());
        assert!(percent_decode("%+1").is_err());
        assert!(percent_decode("%C3").is_err());
        assert_eq!(percent_decode("%C3%A9").unwrap(), "é");
    }

    #[test]
    fn url_like_inputs_are_recognized_even_encoded() {
        assert!(looks_like_did_url("did:x:y#a"));
        assert!(looks_like_did_url("did%3Ax%3Ay%23a"));
        assert!(!looks_like_did_url("did:x:y"));
        assert!(!looks_like_did_url("nope/x"));
    }

    #[test]
    fn no_input_panics() {
        // Every prefix of some tricky inputs, byte by byte where it is a char boundary.
        for s in [
            "did:a:b/c?d=e&f=%41#g",
            "did:é:ü?%é=%",
            "did:a:%",
            "did:a:b?%",
            "did:a:b#%4",
            "did:a:b?a=%F0%9F%98%80",
        ] {
            for end in 0..=s.len() {
                if s.is_char_boundary(end) {
                    let _ = DidUrl::parse(&s[..end]);
                }
            }
        }
    }
}
