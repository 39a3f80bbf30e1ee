//! The DID Resolution HTTP(S) binding of `/1.0/identifiers/{identifier}`: an HTTP request to a
//! DID URL, options and a representation; an outcome to a status, headers and a body.
//!
//! **The identifier.** Two forms are accepted, as the Universal Resolver accepts them:
//! - percent-encoded (`/1.0/identifiers/did%3Abid%3Aef…%23key-1?noCache=true`), DID Resolution's
//!   form: the path segment, once decoded, is the whole DID URL and the HTTP query string holds
//!   resolution options. A path that decodes to a DID URL with a query or fragment (an encoded
//!   `?` or `#`) is read the same way;
//! - plain (`/1.0/identifiers/did:bid:ef…?service=files&relativeRef=%2Fa.pdf`): the path and
//!   the HTTP query string together are the DID URL. DID Resolution passes DID parameters on as
//!   resolution options, so option names (`versionId`, `noCache`, `proof`, …) are accepted there
//!   too.
//!
//! The identifier is at most [`MAX_IDENTIFIER_LEN`] bytes, and so is the query string. A `%`
//! that does not start a `%XX` triplet is left for the DID URL parser, which refuses it with
//! `INVALID_DID` or `INVALID_DID_URL`.
//!
//! **Options** come from the query string (`name=value&…`, percent-decoded once, `+` is a plus)
//! and, for `POST`, from a JSON object body (strings, booleans and numbers); `Accept` can also be
//! given as the `accept` option. Unknown options are `INVALID_OPTIONS`.
//!
//! **Representations** ([`crate::negotiate`]): `application/did-resolution` (the default for a
//! DID, also for `*/*`), the legacy `application/ld+json;profile="https://w3id.org/did-resolution"`,
//! `application/did-url-dereferencing` (the default for a DID URL with a fragment) and its legacy
//! profile, the bare document as `application/did`, `application/did+json`,
//! `application/did+ld+json` (and, as the Universal Resolver does, `application/json` and
//! `application/ld+json`), and `text/uri-list` (the default for `service` / `serviceType`: `303
//! See Other` to the first endpoint, in `Location`, with an empty body as the binding requires;
//! the whole list is the dereferencing result's `contentStream`). Anything else is `406` with `REPRESENTATION_NOT_SUPPORTED`.
//! A DID URL with a fragment asked for as a resolution result gets the resolution of its DID
//! (the fragment is the client's to apply); as a bare type it gets the selected verification
//! method or service.
//!
//! **Errors** are always the full result with the RFC 9457 problem object in
//! `didResolutionMetadata.error` (or `dereferencingMetadata.error`), whatever was asked for,
//! with the binding's status: 400, 404, 406, 410 (deactivated, not an error), 500, 501.

use serde_json::{json, Map, Value};

use crate::did_url::{self, looks_like_did_url, DidUrl, DidUrlError};
use crate::negotiate::{self, Rendered, Representation, BARE_TYPES};
use crate::resolution::Resolver;
use crate::result::{
    Content, Dereferenced, ErrorKind, ResolutionError, ResolutionOptions, MAX_IDENTIFIER_LEN,
};
use crate::warm;

/// The path prefix of the binding.
pub const PREFIX: &str = "/1.0/identifiers";

/// Which result shape an answer takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Resolution { legacy: bool },
    Dereferencing { legacy: bool },
}

impl Shape {
    fn of(rep: Representation) -> Shape {
        match rep {
            Representation::LegacyResolutionResult => Shape::Resolution { legacy: true },
            Representation::DereferencingResult => Shape::Dereferencing { legacy: false },
            Representation::LegacyDereferencingResult => Shape::Dereferencing { legacy: true },
            _ => Shape::Resolution { legacy: false },
        }
    }

    fn media_type(self) -> &'static str {
        match self {
            Shape::Resolution { legacy: false } => negotiate::DID_RESOLUTION,
            Shape::Resolution { legacy: true } => negotiate::LEGACY_DID_RESOLUTION,
            Shape::Dereferencing { legacy: false } => negotiate::DID_URL_DEREFERENCING,
            Shape::Dereferencing { legacy: true } => negotiate::LEGACY_DID_URL_DEREFERENCING,
        }
    }
}

/// A parsed request.
#[derive(Debug)]
struct Request {
    url: DidUrl,
    options: ResolutionOptions,
}

/// One `/1.0/identifiers` request, as the binding reads it from HTTP.
#[derive(Debug, Clone, Copy, Default)]
pub struct BindingRequest<'a> {
    /// The request path as sent (percent-encoded), starting with [`PREFIX`].
    pub path: &'a str,
    /// The query string, without its `?`.
    pub query: Option<&'a str>,
    /// The `Accept` header's values, joined with `,` (empty when there is none).
    pub accept: &'a str,
    /// The sub-chain hop count header ([`crate::subchain::HOPS_HEADER`]), as sent.
    pub hops: Option<&'a str>,
    /// The POST body (options as a JSON object), if any.
    pub body: Option<&'a [u8]>,
}

/// Answers one `/1.0/identifiers` request: the status, headers and body to send.
pub async fn answer(resolver: &Resolver, http: &BindingRequest<'_>) -> Rendered {
    let (request, rep) = match prepare(http) {
        Ok(prepared) => prepared,
        Err(error) => return error,
    };
    // A plain did:bid asked for its current record: answered from L1 when it holds the DID
    // (see `crate::warm`), without a blocking-pool hop; else both its keys are read on one hop
    // and L1 filled (`warm::cold_answer`). The general path words every other answer.
    if takes_warm_path(&request) {
        let rendered = document_renderer(rep);
        if let Some(kept) = warm::answer(resolver.records(), request.url.did(), rep, rendered) {
            return kept;
        }
        if let Some(cold) =
            warm::cold_answer(resolver.records(), request.url.did(), rep, rendered).await
        {
            return cold;
        }
    }
    match resolver.dereference(&request.url, &request.options).await {
        Ok(d) => rendered(d, rep),
        Err(e) => error_rendered(&e, Shape::of(rep)),
    }
}

/// [`answer`]'s warm path on the caller's thread, never waiting on Redis or another thread: the
/// answer when the request is a plain did:bid asked for its current record and L1 holds it, or
/// (in the answer records' representation) its answer record does ([`crate::warm::answer`]),
/// byte for byte what [`answer`] would send. None for everything else (errors included): ask
/// [`answer`], which words it.
pub fn answer_warm(resolver: &Resolver, http: &BindingRequest<'_>) -> Option<Rendered> {
    let (request, rep) = prepare(http).ok()?;
    if !takes_warm_path(&request) {
        return None;
    }
    warm::answer(
        resolver.records(),
        request.url.did(),
        rep,
        document_renderer(rep),
    )
}

/// The request parsed and its representation negotiated, or the error answer.
fn prepare(http: &BindingRequest<'_>) -> Result<(Request, Representation), Rendered> {
    let mut request = match parse_request(http.path, http.query, http.body) {
        Ok(r) => r,
        Err(e) => return Err(error_rendered(&e, requested_shape(http.accept))),
    };
    request.options.subchain_hops = http.hops.and_then(|v| v.parse().ok()).unwrap_or(0);
    let accept = request
        .options
        .accept
        .clone()
        .or((!http.accept.is_empty()).then(|| http.accept.to_string()));
    let offered = offered(&request.url);
    match negotiate::negotiate(accept.as_deref(), &offered) {
        Ok(rep) => Ok((request, rep)),
        Err(detail) => {
            let e = ResolutionError::new(ErrorKind::RepresentationNotSupported, detail);
            Err(error_rendered(&e, Shape::of(offered[0])))
        }
    }
}

/// Whether the answer is a plain did:bid's current record, which [`crate::warm`] serves.
fn takes_warm_path(request: &Request) -> bool {
    request.url.is_did() && request.url.method() == "bid" && warm::serves(&request.options)
}

/// Renders a DID's resolution as its document in `rep`.
fn document_renderer(
    rep: Representation,
) -> impl FnOnce(crate::result::Resolution) -> Rendered + Copy + Send + 'static {
    move |resolution| {
        rendered(
            Dereferenced {
                resolution,
                content: Content::Document,
            },
            rep,
        )
    }
}

/// The result shape of an answer given before the DID URL is parsed (it was invalid): a
/// dereferencing result when the client asked for one, else a resolution result, so that an
/// `INVALID_DID_URL` reaches a dereferencing client in `dereferencingMetadata`.
fn requested_shape(accept: &str) -> Shape {
    let results = [
        Representation::ResolutionResult,
        Representation::LegacyResolutionResult,
        Representation::DereferencingResult,
        Representation::LegacyDereferencingResult,
    ];
    match negotiate::negotiate(Some(accept), &results) {
        Ok(rep) => Shape::of(rep),
        Err(_) => Shape::Resolution { legacy: false },
    }
}

/// The representations a DID URL can be answered in, the default first.
fn offered(url: &DidUrl) -> Vec<Representation> {
    let resolution = [
        Representation::ResolutionResult,
        Representation::LegacyResolutionResult,
    ];
    let dereferencing = [
        Representation::DereferencingResult,
        Representation::LegacyDereferencingResult,
    ];
    let bare = BARE_TYPES.iter().map(|t| Representation::Bare(t));
    let mut reps = Vec::new();
    if url.param("service").is_some() || url.param("serviceType").is_some() {
        reps.push(Representation::UriList);
        reps.extend(dereferencing);
        reps.extend(resolution);
    } else if url.fragment().is_some_and(|f| !f.is_empty()) {
        reps.extend(dereferencing);
        reps.extend(resolution);
    } else {
        reps.extend(resolution);
        reps.extend(dereferencing);
    }
    reps.extend(bare);
    reps
}

/// Decodes `%XX` triplets; anything else (a lone `%`) stays as it is, for the DID URL parser to
/// judge. Bytes that are not UTF-8 become U+FFFD, which no DID URL allows.
fn decode_lenient(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let (hi, lo) = (bytes[i + 1], bytes[i + 2]);
            if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() {
                let value = |d: u8| match d {
                    b'0'..=b'9' => d - b'0',
                    b'a'..=b'f' => d - b'a' + 10,
                    _ => d - b'A' + 10,
                };
                out.push(value(hi) << 4 | value(lo));
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_request(
    path: &str,
    query: Option<&str>,
    body: Option<&[u8]>,
) -> Result<Request, ResolutionError> {
    let raw = path
        .strip_prefix(PREFIX)
        .map(|rest| rest.strip_prefix('/').unwrap_or(rest))
        .unwrap_or("");
    if raw.is_empty() {
        return Err(ResolutionError::new(
            ErrorKind::InvalidDid,
            format!("no DID: ask for {PREFIX}/{{did or DID URL}}"),
        ));
    }
    let too_long = |what: &str, len: usize, url_like: bool| {
        let kind = if url_like {
            ErrorKind::InvalidDidUrl
        } else {
            ErrorKind::InvalidDid
        };
        ResolutionError::new(
            kind,
            format!("the {what} is {len} bytes; at most {MAX_IDENTIFIER_LEN} are accepted"),
        )
    };
    if raw.len() > MAX_IDENTIFIER_LEN {
        return Err(too_long(
            "identifier",
            raw.len(),
            looks_like_did_url(raw) || query.is_some(),
        ));
    }
    let decoded = decode_lenient(raw);
    // `get`, not `[..6]`: the sixth byte may fall inside a character (`abcdeé`).
    let encoded_form = raw
        .get(..6)
        .is_some_and(|head| head.eq_ignore_ascii_case("did%3a"))
        || decoded.contains(['?', '#']);
    let (identifier, option_query) = match query {
        Some(q) if q.len() > MAX_IDENTIFIER_LEN => {
            return Err(if encoded_form {
                ResolutionError::new(
                    ErrorKind::InvalidOptions,
                    format!(
                        "the query string is {} bytes; at most {MAX_IDENTIFIER_LEN} are accepted",
                        q.len()
                    ),
                )
            } else {
                too_long("DID URL's query", q.len(), true)
            })
        }
        Some(q) if !encoded_form => (format!("{decoded}?{q}"), None),
        other => (decoded, other),
    };
    let url = DidUrl::parse(&identifier).map_err(|e| match e {
        DidUrlError::InvalidDid(m) => ResolutionError::new(ErrorKind::InvalidDid, m),
        DidUrlError::InvalidDidUrl(m) => ResolutionError::new(ErrorKind::InvalidDidUrl, m),
    })?;
    let mut options = match option_query {
        Some(q) => did_url::parse_params(q).map_err(|m| {
            ResolutionError::new(
                ErrorKind::InvalidOptions,
                format!("in the query string: {m}"),
            )
        })?,
        None => Vec::new(),
    };
    if let Some(body) = body.filter(|b| !b.iter().all(u8::is_ascii_whitespace)) {
        options.extend(body_options(body)?);
    }
    let options = ResolutionOptions::collect(&url, &options)?;
    Ok(Request { url, options })
}

/// The options of a POST body: a JSON object of strings, booleans and numbers.
fn body_options(body: &[u8]) -> Result<Vec<(String, String)>, ResolutionError> {
    let invalid = |m: String| ResolutionError::new(ErrorKind::InvalidOptions, m);
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| invalid(format!("the POST body is not JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(invalid(
            "the POST body is a JSON object of resolution options".into(),
        ));
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map {
        let text = match value {
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            Value::Null => continue,
            other => {
                return Err(invalid(format!(
                    "the option {name:?} is {other}; options are strings, booleans or numbers"
                )))
            }
        };
        out.push((name, text));
    }
    Ok(out)
}

fn respond(status: u16, content_type: &'static str, body: String) -> Rendered {
    Rendered {
        status,
        content_type: Some(content_type),
        location: None,
        body: body.into(),
    }
}

fn with_content_type(mut metadata: Map<String, Value>, content_type: &str) -> Value {
    metadata.insert("contentType".into(), json!(content_type));
    Value::Object(metadata)
}

/// The full result: resolution shape `{didDocument, didResolutionMetadata,
/// didDocumentMetadata}` or dereferencing shape `{content, contentStream,
/// dereferencingMetadata, contentMetadata}` (`content` is DID Resolution's name,
/// `contentStream` the test suite's; both hold the same).
fn full_result(shape: Shape, content: Value, metadata: Value, content_metadata: Value) -> Value {
    let mut body = match shape {
        Shape::Resolution { .. } => json!({
            "didDocument": content,
            "didResolutionMetadata": metadata,
            "didDocumentMetadata": content_metadata,
        }),
        Shape::Dereferencing { .. } => json!({
            "content": content,
            "contentStream": content,
            "dereferencingMetadata": metadata,
            "contentMetadata": content_metadata,
        }),
    };
    if matches!(
        shape,
        Shape::Resolution { legacy: true } | Shape::Dereferencing { legacy: true }
    ) {
        body["@context"] = json!("https://w3id.org/did-resolution/v1");
    }
    body
}

fn error_rendered(error: &ResolutionError, shape: Shape) -> Rendered {
    let mut metadata = error.metadata.clone();
    metadata.insert("error".into(), error.problem());
    let body = full_result(shape, Value::Null, Value::Object(metadata), json!({}));
    respond(error.http_status(), shape.media_type(), body.to_string())
}

/// The answer to a resolution of a DID's current document in `rep`: what the HTTP binding
/// sends for it (the answer records of [`crate::answers`] are rendered here too).
pub(crate) fn render_document(
    resolution: crate::result::Resolution,
    rep: Representation,
) -> Rendered {
    rendered(
        Dereferenced {
            resolution,
            content: Content::Document,
        },
        rep,
    )
}

fn rendered(d: Dereferenced, rep: Representation) -> Rendered {
    let Dereferenced {
        resolution,
        content,
    } = d;
    let inner_type = match rep {
        Representation::LegacyResolutionResult | Representation::LegacyDereferencingResult => {
            "application/did+ld+json"
        }
        _ => "application/did",
    };
    let metadata = resolution.resolution_metadata.clone();
    let document_metadata = Value::Object(resolution.document_metadata.clone());
    if resolution.deactivated() {
        let shape = match rep {
            Representation::Bare(_) | Representation::UriList => {
                Shape::Resolution { legacy: false }
            }
            other => Shape::of(other),
        };
        let body = full_result(
            shape,
            Value::Null,
            with_content_type(metadata, inner_type),
            document_metadata,
        );
        return respond(410, shape.media_type(), body.to_string());
    }
    let document = resolution.document.unwrap_or(Value::Null);
    match rep {
        Representation::ResolutionResult | Representation::LegacyResolutionResult => {
            let document = match content {
                Content::Services { document, .. } => document,
                _ => document,
            };
            let shape = Shape::of(rep);
            let body = full_result(
                shape,
                document,
                with_content_type(metadata, inner_type),
                document_metadata,
            );
            respond(200, shape.media_type(), body.to_string())
        }
        Representation::DereferencingResult | Representation::LegacyDereferencingResult => {
            let (value, content_type) = match content {
                Content::Document => (document, inner_type),
                Content::Resource(v) => (v, inner_type),
                Content::Services { urls, .. } => (json!(uri_list(&urls)), negotiate::URI_LIST),
            };
            let shape = Shape::of(rep);
            let body = full_result(
                shape,
                value,
                with_content_type(metadata, content_type),
                document_metadata,
            );
            respond(200, shape.media_type(), body.to_string())
        }
        Representation::Bare(media) => {
            let value = match content {
                Content::Document => document,
                Content::Resource(v) => v,
                Content::Services { document, .. } => document,
            };
            respond(200, media, value.to_string())
        }
        Representation::UriList => {
            let urls = match content {
                Content::Services { urls, .. } => urls,
                _ => Vec::new(),
            };
            let Some(first) = urls.first() else {
                let e = ResolutionError::new(
                    ErrorKind::NotFound,
                    "the selected services have no URL endpoint to redirect to",
                );
                return error_rendered(&e, Shape::Resolution { legacy: false });
            };
            // DID Resolution's HTTP binding: a 303's body MUST be empty; the endpoint is in
            // `Location` (the whole list is the dereferencing result's `contentStream`).
            Rendered {
                status: 303,
                content_type: None,
                location: Some(first.clone()),
                body: Default::default(),
            }
        }
    }
}

fn uri_list(urls: &[String]) -> String {
    urls.iter().map(|u| format!("{u}\r\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(uri: &str) -> Result<Request, ResolutionError> {
        let (path, query) = match uri.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (uri, None),
        };
        parse_request(path, query, None)
    }

    #[test]
    fn both_identifier_forms_parse() {
        let r = parse("/1.0/identifiers/did:bid:abc?versionId=2&noCache=true").unwrap();
        assert_eq!(r.url.as_str(), "did:bid:abc?versionId=2&noCache=true");
        assert_eq!(r.options.version_id.as_deref(), Some("2"));
        assert!(r.options.no_cache);
        let r = parse("/1.0/identifiers/did%3Abid%3Aabc%23key-1?noCache=true").unwrap();
        assert_eq!(r.url.as_str(), "did:bid:abc#key-1");
        assert!(r.options.no_cache);
        let r = parse(
            "/1.0/identifiers/did%3Aexample%3A1234%3Fservice%3Dfiles%26relativeRef%3D%252Fresume.pdf?proof=false",
        )
        .unwrap();
        assert_eq!(r.url.param("relativeRef"), Some("/resume.pdf"));
        // An encoded '#' in a plain path is a DID URL too, and the query string is options.
        let r = parse("/1.0/identifiers/did:bid:abc%23key-1?noCache=true").unwrap();
        assert_eq!(r.url.fragment(), Some("key-1"));
        assert!(r.options.no_cache);
    }

    #[test]
    fn bad_requests_get_the_standard_errors() {
        let kind = |uri: &str| parse(uri).unwrap_err().kind;
        assert_eq!(kind("/1.0/identifiers/"), ErrorKind::InvalidDid);
        assert_eq!(
            kind("/1.0/identifiers/did%3Abid%3Aab%zz"),
            ErrorKind::InvalidDid
        );
        assert_eq!(
            kind("/1.0/identifiers/did:bid:ab%zz"),
            ErrorKind::InvalidDid
        );
        assert_eq!(
            kind("/1.0/identifiers/did:bid:ab?x=%zz"),
            ErrorKind::InvalidDidUrl
        );
        assert_eq!(
            kind("/1.0/identifiers/did%3Abid%3Aab?x=%zz"),
            ErrorKind::InvalidOptions
        );
        assert_eq!(
            kind("/1.0/identifiers/did%3Abid%3Aab?bogus=1"),
            ErrorKind::InvalidOptions
        );
        assert_eq!(
            kind("/1.0/identifiers/did:bid:ab?bogus=1"),
            ErrorKind::InvalidDidUrl
        );
        assert_eq!(
            kind("/1.0/identifiers/did%3Abid%3Aab%FF"),
            ErrorKind::InvalidDid
        );
        let long = format!(
            "/1.0/identifiers/did:bid:{}",
            "a".repeat(MAX_IDENTIFIER_LEN)
        );
        assert_eq!(kind(&long), ErrorKind::InvalidDid);
        let long = format!(
            "/1.0/identifiers/did:bid:a?x={}",
            "a".repeat(MAX_IDENTIFIER_LEN)
        );
        assert_eq!(kind(&long), ErrorKind::InvalidDidUrl);
    }

    #[test]
    fn post_bodies_are_options() {
        let uri = "/1.0/identifiers/did:bid:abc";
        let r = parse_request(uri, None, Some(br#"{"noCache": true, "versionId": 3}"#)).unwrap();
        assert!(r.options.no_cache);
        assert_eq!(r.options.version_id.as_deref(), Some("3"));
        for body in [
            &b"nope"[..],
            b"[1]",
            br#"{"noCache": [true]}"#,
            br#"{"x": "1"}"#,
        ] {
            assert_eq!(
                parse_request(uri, None, Some(body)).unwrap_err().kind,
                ErrorKind::InvalidOptions
            );
        }
        assert!(parse_request(uri, None, Some(b"  \n")).is_ok());
    }

    #[test]
    fn lenient_decoding_keeps_lone_percent_signs() {
        assert_eq!(decode_lenient("a%3Ab%zz%4"), "a:b%zz%4");
        assert_eq!(decode_lenient("%"), "%");
        assert_eq!(decode_lenient("%F0%9F%98%80"), "😀");
        assert_eq!(decode_lenient("%FF"), "\u{fffd}");
    }
}
