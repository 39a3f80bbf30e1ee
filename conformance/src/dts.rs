//! The rules of the W3C did-test-suite (DTS, `w3c/did-test-suite`, DID Core 1.0 era) for the
//! implementation fixtures it reads from `packages/did-core-test-server/suites/implementations/`,
//! written from the suite's own test code so that a fixture is known to pass before it is
//! submitted.
//!
//! The suite never calls an implementation: each suite walks the recorded fixture, and code
//! that runs while jest *collects* the tests (outside any `it`) throws on a missing member and
//! takes the whole run down. That is how the first did:bid fixture broke the suite in 2021: a
//! resolver-shaped file (`executions` only) was registered with the method suites, whose
//! collection code calls `dids.forEach` and reads `supportedContentTypes`. The checks here name
//! such members first.
//!
//! - [`check_method_fixture`] checks for `did-identifier`, `did-core-properties` (with 7.3
//!   metadata structure), `did-production` and `did-consumption`.
//! - [`check_resolver_fixture`] checks for `did-resolution`.
//! - [`check_dereferencer_fixture`] checks for `did-url-dereferencing`.

use serde_json::{Map, Value};

use crate::Violation;

/// The representations the suite can consume (`suites/resolution-utils.js`
/// `consumeRepresentation`) and produce (`did-production/did-producer.js` throws on others).
pub const JSON_TYPES: [&str; 2] = ["application/did+json", "application/did+ld+json"];

/// The representation-specific entries the suite knows (`did-consumption/did-consumer.js`).
pub const REPRESENTATION_SPECIFIC: [&str; 1] = ["@context"];

/// The expected-outcome names of resolver fixtures (`resolution-utils.js` `findExpectedOutcome`).
pub const RESOLVER_OUTCOMES: [&str; 5] = [
    "defaultOutcome",
    "invalidDidErrorOutcome",
    "notFoundErrorOutcome",
    "representationNotSupportedErrorOutcome",
    "deactivatedOutcome",
];

/// The expected-outcome names of dereferencer fixtures.
pub const DEREFERENCER_OUTCOMES: [&str; 3] = [
    "defaultOutcome",
    "invalidDidUrlErrorOutcome",
    "notFoundErrorOutcome",
];

const COLLECT: &str = "DTS (test collection)";
const IDENTIFIER: &str = "DTS 3.x Identifier";
const PROPERTIES: &str = "DTS 5.x Core Properties";
const PRODUCTION: &str = "DTS 6.x Production";
const METADATA: &str = "DTS 7.3 Metadata Structure";
const RESOLUTION: &str = "DTS 7.1 DID Resolution";
const DEREFERENCING: &str = "DTS 7.2 DID URL Dereferencing";

fn v(section: &'static str, message: String) -> Violation {
    Violation { section, message }
}

/// `toBeValidDid` of the suite's `jest-did-matcher`: `did:` method `:` then idchars, `%XX` and
/// colons, not ending with a colon.
pub fn is_valid_did(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("did:") else {
        return false;
    };
    let Some((method, id)) = rest.split_once(':') else {
        return false;
    };
    !method.is_empty()
        && method
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && !id.is_empty()
        && !id.ends_with(':')
        && scan(id, |b| b.is_ascii_alphanumeric() || b".-_:".contains(&b)) == id.len()
}

/// How many bytes from the start of `text` are made of bytes `allowed` accepts and valid
/// `%XX` triplets.
fn scan(text: &str, allowed: impl Fn(u8) -> bool) -> usize {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
            {
                i += 3;
                continue;
            }
            return i;
        }
        if !allowed(b[i]) {
            return i;
        }
        i += 1;
    }
    i
}

fn is_pchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b)
}

/// `toBeValidDidUrl` of the suite's `jest-did-matcher`: a DID whose method-specific-id has no
/// empty segment, then path segments of one or more pchars, a query and a fragment of pchars,
/// `/` and `?`.
pub fn is_valid_did_url(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("did:") else {
        return false;
    };
    let method_len = scan(rest, |b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if method_len == 0 || rest.as_bytes().get(method_len) != Some(&b':') {
        return false;
    }
    let mut rest = &rest[method_len..];
    let mut segments = 0;
    while let Some(after) = rest.strip_prefix(':') {
        let n = scan(after, |b| b.is_ascii_alphanumeric() || b".-_".contains(&b));
        if n == 0 {
            return false;
        }
        segments += 1;
        rest = &after[n..];
    }
    if segments == 0 {
        return false;
    }
    while let Some(after) = rest.strip_prefix('/') {
        let n = scan(after, is_pchar);
        if n == 0 {
            return false;
        }
        rest = &after[n..];
    }
    for delimiter in ['?', '#'] {
        if let Some(after) = rest.strip_prefix(delimiter) {
            let n = scan(after, |b| is_pchar(b) || b == b'/' || b == b'?');
            if n == 0 {
                return false;
            }
            rest = &after[n..];
        }
    }
    rest.is_empty()
}

/// `toBeMediaType`: `^\w+/[-+.\w]+`.
pub fn is_media_type(text: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let Some((kind, subtype)) = text.split_once('/') else {
        return false;
    };
    !kind.is_empty()
        && kind.bytes().all(word)
        && subtype
            .bytes()
            .next()
            .is_some_and(|b| word(b) || b"-+.".contains(&b))
}

/// `toBeDidDocumentMap` / `toBeDidDocumentPropertyValueType`: metadata values are strings,
/// booleans, null, lists and maps of them, never numbers.
fn is_metadata_value(value: &Value) -> bool {
    match value {
        Value::Number(_) => false,
        Value::Array(items) => items.iter().all(is_metadata_value),
        Value::Object(map) => map.values().all(is_metadata_value),
        _ => true,
    }
}

fn str_member<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    map.get(name).and_then(Value::as_str)
}

/// Checks a DID method fixture (`did-*.json`) as the identifier, core-properties, production and
/// consumption suites read it.
pub fn check_method_fixture(fixture: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let Some(f) = fixture.as_object() else {
        return vec![v(COLLECT, "a fixture is a JSON object".into())];
    };
    for member in ["didMethod", "implementation", "implementer"] {
        if str_member(f, member).is_none() {
            out.push(v(COLLECT, format!("{member} must be a string")));
        }
    }
    let Some(dids) = f.get("dids").and_then(Value::as_array) else {
        out.push(v(
            COLLECT,
            "dids must be a list: every method suite calls dids.forEach while collecting".into(),
        ));
        return out;
    };
    let Some(types) = f.get("supportedContentTypes").and_then(Value::as_array) else {
        out.push(v(
            COLLECT,
            "supportedContentTypes must be a list: the 7.3 metadata suite walks it".into(),
        ));
        return out;
    };
    let types: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
    for t in &types {
        if !JSON_TYPES.contains(t) {
            out.push(v(
                PRODUCTION,
                format!("{t} cannot be produced or consumed by the suite (only {JSON_TYPES:?})"),
            ));
        }
    }
    if dids.is_empty() {
        out.push(v(IDENTIFIER, "dids must list at least one DID".into()));
    }
    match f.get("didParameters") {
        None => {}
        Some(Value::Object(params)) => {
            for (name, url) in params {
                check_did_parameter(name, url, &mut out);
            }
        }
        Some(_) => out.push(v(IDENTIFIER, "didParameters must be a map".into())),
    }
    for did in dids {
        let Some(did) = did.as_str() else {
            out.push(v(IDENTIFIER, format!("dids holds {did}, not a string")));
            continue;
        };
        if !is_valid_did(did) {
            out.push(v(IDENTIFIER, format!("{did} is not a valid DID")));
        }
        let Some(entry) = f.get(did).and_then(Value::as_object) else {
            out.push(v(
                COLLECT,
                format!("{did} is listed in dids but has no entry"),
            ));
            continue;
        };
        let Some(properties) = entry
            .get("didDocumentDataModel")
            .and_then(|m| m.get("properties"))
            .and_then(Value::as_object)
        else {
            out.push(v(
                COLLECT,
                format!("{did}: didDocumentDataModel.properties must be a map"),
            ));
            continue;
        };
        if properties.get("id").and_then(Value::as_str) != Some(did) {
            out.push(v(PROPERTIES, format!("{did}: properties.id must be {did}")));
        }
        for key in REPRESENTATION_SPECIFIC {
            if properties.contains_key(key) {
                out.push(v(
                    PRODUCTION,
                    format!("{did}: {key} is representation-specific, not a property"),
                ));
            }
        }
        for t in &types {
            match entry.get(*t).and_then(Value::as_object) {
                Some(result) => {
                    check_representation_entry(did, t, properties, result, &mut out);
                }
                None => out.push(v(
                    COLLECT,
                    format!("{did} has no {t} entry, which supportedContentTypes promises"),
                )),
            }
        }
    }
    out
}

fn check_did_parameter(name: &str, url: &Value, out: &mut Vec<Violation>) {
    let Some(url) = url.as_str() else {
        out.push(v(
            IDENTIFIER,
            format!("didParameters.{name} must be a DID URL"),
        ));
        return;
    };
    if !is_valid_did_url(url) {
        out.push(v(
            IDENTIFIER,
            format!("didParameters.{name}: {url} is not a DID URL"),
        ));
    }
    // The suite reads the value with node's querystring.parse, which percent-decodes.
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let query = query.split('#').next().unwrap_or_default();
    let value = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value);
    let Some(value) = value else {
        out.push(v(
            IDENTIFIER,
            format!("didParameters.{name}: {url} does not carry {name}"),
        ));
        return;
    };
    if !value.is_ascii() {
        out.push(v(IDENTIFIER, format!("didParameters.{name} must be ASCII")));
    }
    if name == "relativeRef" && value.contains('/') {
        out.push(v(
            IDENTIFIER,
            format!("didParameters.relativeRef: {url} must percent-encode '/' as %2F"),
        ));
    }
    if name == "versionTime" && !crate::resolution::is_utc_datetime(value) {
        out.push(v(
            IDENTIFIER,
            format!("didParameters.versionTime {value:?} must be YYYY-MM-DDThh:mm:ssZ"),
        ));
    }
}

fn check_representation_entry(
    did: &str,
    content_type: &str,
    properties: &Map<String, Value>,
    result: &Map<String, Value>,
    out: &mut Vec<Violation>,
) {
    let at = format!("{did} {content_type}");
    let Some(rse) = result
        .get("didDocumentDataModel")
        .and_then(|m| m.get("representationSpecificEntries"))
        .and_then(Value::as_object)
    else {
        out.push(v(
            COLLECT,
            format!("{at}: didDocumentDataModel.representationSpecificEntries must be a map"),
        ));
        return;
    };
    match result
        .get("didResolutionMetadata")
        .and_then(|m| m.get("contentType"))
        .and_then(Value::as_str)
    {
        Some(t) if t == content_type => {}
        other => out.push(v(
            PRODUCTION,
            format!(
                "{at}: didResolutionMetadata.contentType must be {content_type}, not {other:?}"
            ),
        )),
    }
    let Some(representation) = result.get("representation").and_then(Value::as_str) else {
        out.push(v(COLLECT, format!("{at}: representation must be a string")));
        return;
    };
    match serde_json::from_str::<Value>(representation) {
        Ok(Value::Object(parsed)) => {
            let mut model = properties.clone();
            model.extend(rse.clone());
            if parsed != model {
                out.push(v(
                    PRODUCTION,
                    format!(
                        "{at}: the representation must be exactly the properties plus the \
                         representation-specific entries"
                    ),
                ));
            }
            let context_first = match parsed.get("@context") {
                Some(Value::String(c)) => Some(c.as_str()),
                Some(Value::Array(items)) => items.first().and_then(Value::as_str),
                _ => None,
            };
            if content_type == "application/did+ld+json"
                && !matches!(
                    context_first,
                    Some(crate::document::DID_V1_CONTEXT | crate::document::DID_V1_1_CONTEXT)
                )
            {
                out.push(v(
                    PRODUCTION,
                    format!("{at}: JSON-LD needs @context starting with the DID context"),
                ));
            }
        }
        _ => out.push(v(
            PRODUCTION,
            format!("{at}: the representation must be a JSON object"),
        )),
    }
    match result.get("didDocumentMetadata") {
        None => {}
        Some(Value::Object(meta)) => {
            for (name, value) in meta {
                if !is_metadata_value(value) {
                    out.push(v(
                        METADATA,
                        format!("{at}: didDocumentMetadata.{name} holds a number"),
                    ));
                }
            }
        }
        Some(_) => out.push(v(
            METADATA,
            format!("{at}: didDocumentMetadata must be a map"),
        )),
    }
}

/// The expected outcome of each execution index, as `findExpectedOutcome` maps it; violations
/// for indexes without one and for unknown names.
fn outcomes(
    f: &Map<String, Value>,
    count: usize,
    known: &[&str],
    section: &'static str,
    out: &mut Vec<Violation>,
) -> Vec<Option<String>> {
    let mut by_index = vec![None; count];
    match f.get("expectedOutcomes").and_then(Value::as_object) {
        None => out.push(v(COLLECT, "expectedOutcomes must be a map".into())),
        Some(map) => {
            for (name, indexes) in map {
                if !known.contains(&name.as_str()) {
                    out.push(v(section, format!("unknown expected outcome {name:?}")));
                }
                for i in indexes.as_array().into_iter().flatten() {
                    match i.as_u64().map(|i| i as usize) {
                        Some(i) if i < count => by_index[i] = Some(name.clone()),
                        _ => out.push(v(
                            section,
                            format!("{name} names execution {i}, which does not exist"),
                        )),
                    }
                }
            }
        }
    }
    for (i, o) in by_index.iter().enumerate() {
        if o.is_none() {
            out.push(v(section, format!("execution {i} has no expected outcome")));
        }
    }
    by_index
}

fn executions(f: &Map<String, Value>, out: &mut Vec<Violation>) -> Vec<Value> {
    match f.get("executions").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list.clone(),
        _ => {
            out.push(v(COLLECT, "executions must be a non-empty list".into()));
            Vec::new()
        }
    }
}

fn is_error(outcome: &Option<String>) -> bool {
    outcome
        .as_deref()
        .is_some_and(|o| o.ends_with("ErrorOutcome"))
}

fn check_error_keyword(
    at: &str,
    metadata: &Map<String, Value>,
    section: &'static str,
) -> Option<Violation> {
    match metadata.get("error") {
        None => None,
        Some(Value::String(e))
            if !e.is_empty() && e.is_ascii() && !e.contains(char::is_whitespace) =>
        {
            None
        }
        Some(e) => Some(v(
            section,
            format!("{at}: error must be one ASCII keyword (invalidDid, notFound, ...), not {e}"),
        )),
    }
}

/// The document a representation stream holds, as the suite's `consumeRepresentation` reads it
/// (`None` for types it does not read).
fn consume(stream: &str, content_type: &str) -> Option<Result<Value, ()>> {
    if content_type.starts_with("application/did+ld+json")
        || content_type.starts_with("application/did+json")
    {
        Some(serde_json::from_str::<Value>(stream).map_err(|_| ()))
    } else {
        None
    }
}

/// Checks a resolver fixture as the `did-resolution` suite reads it.
pub fn check_resolver_fixture(fixture: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let Some(f) = fixture.as_object() else {
        return vec![v(COLLECT, "a fixture is a JSON object".into())];
    };
    let executions = executions(f, &mut out);
    let outcomes = outcomes(
        f,
        executions.len(),
        &RESOLVER_OUTCOMES,
        RESOLUTION,
        &mut out,
    );
    if !executions
        .iter()
        .any(|e| e["function"] == "resolveRepresentation")
    {
        out.push(v(
            RESOLUTION,
            "a resolver must show one resolveRepresentation execution".into(),
        ));
    }
    for (i, (e, outcome)) in executions.iter().zip(&outcomes).enumerate() {
        let function = e["function"].as_str().unwrap_or_default();
        let did = e["input"]["did"].as_str().unwrap_or_default();
        let at = format!("execution {i} ({function} {did})");
        let (Some(options), Some(meta), Some(doc_meta)) = (
            e["input"]["resolutionOptions"].as_object(),
            e["output"]["didResolutionMetadata"].as_object(),
            e["output"]["didDocumentMetadata"].as_object(),
        ) else {
            out.push(v(
                COLLECT,
                format!("{at}: input.resolutionOptions, output.didResolutionMetadata and output.didDocumentMetadata must be maps"),
            ));
            continue;
        };
        if !matches!(function, "resolve" | "resolveRepresentation") {
            out.push(v(
                RESOLUTION,
                format!("{at}: function must be resolve or resolveRepresentation"),
            ));
            continue;
        }
        let failed = meta.contains_key("error");
        if did.is_empty() {
            out.push(v(RESOLUTION, format!("{at}: input.did is required")));
        }
        if meta.get("error").and_then(Value::as_str) != Some("invalidDid") && !is_valid_did(did) {
            out.push(v(RESOLUTION, format!("{at}: {did} is not a valid DID")));
        }
        if is_error(outcome) && !failed {
            out.push(v(
                RESOLUTION,
                format!("{at}: an error outcome needs an error"),
            ));
        }
        if let Some(bad) = check_error_keyword(&at, meta, RESOLUTION) {
            out.push(bad);
        }
        let expected_error = match outcome.as_deref() {
            Some("invalidDidErrorOutcome") => Some("invalidDid"),
            Some("notFoundErrorOutcome") => Some("notFound"),
            Some("representationNotSupportedErrorOutcome") => Some("representationNotSupported"),
            _ => None,
        };
        if let Some(expected) = expected_error {
            if meta.get("error").and_then(Value::as_str) != Some(expected) {
                out.push(v(RESOLUTION, format!("{at}: error must be {expected}")));
            }
        }
        if outcome.as_deref() == Some("invalidDidErrorOutcome") && is_valid_did(did) {
            out.push(v(
                RESOLUTION,
                format!("{at}: invalidDid is expected for {did}, which the suite holds valid"),
            ));
        }
        if failed && !doc_meta.is_empty() {
            out.push(v(
                RESOLUTION,
                format!("{at}: after an error didDocumentMetadata is {{}}"),
            ));
        }
        let deactivated = doc_meta.get("deactivated");
        if outcome.as_deref() == Some("deactivatedOutcome") {
            if deactivated != Some(&Value::Bool(true)) {
                out.push(v(RESOLUTION, format!("{at}: deactivated must be true")));
            }
        } else if deactivated.is_some_and(|d| d != &Value::Bool(false)) {
            out.push(v(
                RESOLUTION,
                format!("{at}: deactivated, when present, is false"),
            ));
        }
        for member in ["created", "updated", "nextUpdate"] {
            if let Some(t) = doc_meta.get(member) {
                if !t.as_str().is_some_and(crate::resolution::is_utc_datetime) {
                    out.push(v(
                        RESOLUTION,
                        format!("{at}: {member} must be a UTC datetime"),
                    ));
                }
            }
        }
        match function {
            "resolve" => {
                if options.contains_key("accept") {
                    out.push(v(
                        RESOLUTION,
                        format!("{at}: accept must not be given to resolve"),
                    ));
                }
                if meta.contains_key("contentType") {
                    out.push(v(
                        RESOLUTION,
                        format!("{at}: resolve returns no contentType"),
                    ));
                }
                let document = &e["output"]["didDocument"];
                if failed {
                    if !(document.is_null() || document == &Value::Bool(false)) {
                        out.push(v(
                            RESOLUTION,
                            format!("{at}: after an error didDocument is empty"),
                        ));
                    }
                } else if document.get("id").and_then(Value::as_str)
                    != Some(did.split('?').next().unwrap_or_default())
                {
                    out.push(v(
                        RESOLUTION,
                        format!("{at}: didDocument must be a map whose id is the resolved DID"),
                    ));
                }
            }
            _ => {
                let stream = e["output"]["didDocumentStream"].as_str();
                if let Some(accept) = options.get("accept") {
                    if !accept
                        .as_str()
                        .is_some_and(|a| is_media_type(a) && a.is_ascii())
                    {
                        out.push(v(
                            RESOLUTION,
                            format!("{at}: accept must be an ASCII media type"),
                        ));
                    }
                }
                // Asserted for every resolveRepresentation execution, errors included.
                let content_type = meta.get("contentType").and_then(Value::as_str);
                let Some(content_type) = content_type.filter(|t| is_media_type(t)) else {
                    out.push(v(
                        RESOLUTION,
                        format!("{at}: resolveRepresentation needs a contentType media type"),
                    ));
                    continue;
                };
                if failed {
                    if stream != Some("") {
                        out.push(v(
                            RESOLUTION,
                            format!("{at}: after an error the stream is \"\""),
                        ));
                    }
                    continue;
                }
                match (stream, consume(stream.unwrap_or_default(), content_type)) {
                    (Some(s), Some(Ok(Value::Object(doc)))) if !s.is_empty() => {
                        if content_type.starts_with("application/did+ld+json")
                            && !doc.contains_key("@context")
                        {
                            out.push(v(RESOLUTION, format!("{at}: a JSON-LD stream has @context")));
                        }
                        if !doc.contains_key("id") {
                            out.push(v(RESOLUTION, format!("{at}: the streamed document has no id")));
                        }
                    }
                    _ => out.push(v(
                        RESOLUTION,
                        format!("{at}: didDocumentStream must hold a {content_type} document the suite can read"),
                    )),
                }
            }
        }
    }
    out
}

/// Checks a dereferencer fixture as the `did-url-dereferencing` suite reads it.
pub fn check_dereferencer_fixture(fixture: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    let Some(f) = fixture.as_object() else {
        return vec![v(COLLECT, "a fixture is a JSON object".into())];
    };
    let executions = executions(f, &mut out);
    let outcomes = outcomes(
        f,
        executions.len(),
        &DEREFERENCER_OUTCOMES,
        DEREFERENCING,
        &mut out,
    );
    for (i, (e, outcome)) in executions.iter().zip(&outcomes).enumerate() {
        let url = e["input"]["didUrl"].as_str().unwrap_or_default();
        let at = format!("execution {i} (dereference {url})");
        let (Some(_), Some(meta), Some(content_meta)) = (
            e["input"]["dereferenceOptions"].as_object(),
            e["output"]["dereferencingMetadata"].as_object(),
            e["output"]["contentMetadata"].as_object(),
        ) else {
            out.push(v(
                COLLECT,
                format!("{at}: input.dereferenceOptions, output.dereferencingMetadata and output.contentMetadata must be maps"),
            ));
            continue;
        };
        if e["function"] != "dereference" {
            out.push(v(
                DEREFERENCING,
                format!("{at}: function must be dereference"),
            ));
        }
        let failed = meta.contains_key("error");
        let stream = e["output"]["contentStream"].as_str();
        if meta.get("error").and_then(Value::as_str) != Some("invalidDidUrl")
            && !is_valid_did_url(url)
        {
            out.push(v(
                DEREFERENCING,
                format!("{at}: {url} is not a valid DID URL"),
            ));
        }
        if is_error(outcome) && !failed {
            out.push(v(
                DEREFERENCING,
                format!("{at}: an error outcome needs an error"),
            ));
        }
        if let Some(bad) = check_error_keyword(&at, meta, DEREFERENCING) {
            out.push(bad);
        }
        match outcome.as_deref() {
            Some("invalidDidUrlErrorOutcome") => {
                if meta.get("error").and_then(Value::as_str) != Some("invalidDidUrl") {
                    out.push(v(
                        DEREFERENCING,
                        format!("{at}: error must be invalidDidUrl"),
                    ));
                }
                if is_valid_did_url(url) {
                    out.push(v(
                        DEREFERENCING,
                        format!("{at}: invalidDidUrl is expected for {url}, which the suite holds valid"),
                    ));
                }
            }
            Some("notFoundErrorOutcome")
                if meta.get("error").and_then(Value::as_str) != Some("notFound") =>
            {
                out.push(v(DEREFERENCING, format!("{at}: error must be notFound")));
            }
            _ => {}
        }
        if failed {
            if stream != Some("") {
                out.push(v(
                    DEREFERENCING,
                    format!("{at}: after an error contentStream is \"\""),
                ));
            }
            if !content_meta.is_empty() {
                out.push(v(
                    DEREFERENCING,
                    format!("{at}: after an error contentMetadata is {{}}"),
                ));
            }
            continue;
        }
        if stream.is_none_or(str::is_empty) {
            out.push(v(
                DEREFERENCING,
                format!("{at}: contentStream must hold the resource"),
            ));
        }
        // The suite reads contentType while collecting; a missing one throws there.
        let Some(content_type) = meta.get("contentType").and_then(Value::as_str) else {
            out.push(v(
                COLLECT,
                format!("{at}: a successful dereference needs a contentType"),
            ));
            continue;
        };
        if !is_media_type(content_type) {
            out.push(v(
                DEREFERENCING,
                format!("{at}: contentType must be a media type"),
            ));
        }
        // Also run while collecting: a JSON-LD document without @context throws there.
        match consume(stream.unwrap_or_default(), content_type) {
            None => {}
            Some(Ok(Value::Object(doc)))
                if content_type.starts_with("application/did+ld+json")
                    && !doc.contains_key("@context") =>
            {
                out.push(v(
                    COLLECT,
                    format!("{at}: {content_type} content without @context"),
                ));
            }
            Some(Ok(Value::Object(_))) => {}
            Some(_) => out.push(v(
                COLLECT,
                format!("{at}: {content_type} content is not a JSON object"),
            )),
        }
        if content_meta
            .get("deactivated")
            .is_some_and(|d| d != &Value::Bool(false))
        {
            out.push(v(
                DEREFERENCING,
                format!("{at}: contentMetadata.deactivated must be false"),
            ));
        }
        if let Some((without, _)) = url.split_once('#') {
            let sibling = executions
                .iter()
                .find(|x| x["input"]["didUrl"].as_str() == Some(without));
            match sibling {
                None => out.push(v(
                    DEREFERENCING,
                    format!("{at}: the suite needs an execution for {without} to compare the fragment's content with"),
                )),
                Some(x) if x["output"]["contentStream"].as_str() == stream => out.push(v(
                    DEREFERENCING,
                    format!("{at}: the fragment's content must differ from {without}'s"),
                )),
                Some(_) => {}
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DID: &str = "did:bid:efJgt44mNDewKK1VEN454R17cjso3mSG";

    #[test]
    fn the_suites_did_and_did_url_patterns() {
        assert!(is_valid_did(DID));
        assert!(is_valid_did(
            "did:bid:by01:efphXYwrDzCgE5RTCC1HesQKJvyDrQDm"
        ));
        for bad in [
            "did:BID:x",
            "did:bid:",
            "did:bid:x:",
            "did:bid:ef!x",
            "bad:invalid",
            "did:bid:a?b",
        ] {
            assert!(!is_valid_did(bad), "{bad}");
        }
        for ok in [
            DID.to_string(),
            format!("{DID}#key-1"),
            format!("{DID}?service=files&relativeRef=%2Fa.pdf"),
            format!("{DID}/path/to?x=1#f"),
            "did:bid:by01:efphXYwrDzCgE5RTCC1HesQKJvyDrQDm#k".into(),
        ] {
            assert!(is_valid_did_url(&ok), "{ok}");
        }
        for bad in [
            format!("{DID}#a#b"),
            format!("{DID}#"),
            format!("{DID}//x"),
            "did:bid::x".into(),
            "bad:invalid".into(),
            format!("{DID}?q=%zz"),
        ] {
            assert!(!is_valid_did_url(&bad), "{bad}");
        }
        assert!(is_media_type("application/did+ld+json"));
        assert!(!is_media_type("nonsense"));
    }

    fn method_fixture() -> Value {
        let doc = json!({"id": DID, "authentication": [format!("{DID}#key-1")]});
        let ld = json!({"@context": ["https://www.w3.org/ns/did/v1"], "id": DID, "authentication": [format!("{DID}#key-1")]});
        json!({
            "didMethod": "did:bid", "implementation": "x", "implementer": "y",
            "supportedContentTypes": ["application/did+json", "application/did+ld+json"],
            "dids": [DID],
            "didParameters": {"relativeRef": format!("{DID}?service=a&relativeRef=%2Fx")},
            DID: {
                "didDocumentDataModel": {"properties": doc},
                "application/did+json": {
                    "didDocumentDataModel": {"representationSpecificEntries": {}},
                    "representation": doc.to_string(),
                    "didDocumentMetadata": {"created": "2026-11-21T10:00:00Z"},
                    "didResolutionMetadata": {"contentType": "application/did+json"}
                },
                "application/did+ld+json": {
                    "didDocumentDataModel": {"representationSpecificEntries": {"@context": ["https://www.w3.org/ns/did/v1"]}},
                    "representation": ld.to_string(),
                    "didDocumentMetadata": {},
                    "didResolutionMetadata": {"contentType": "application/did+ld+json"}
                }
            }
        })
    }

    #[test]
    fn a_method_fixture_passes_and_each_broken_rule_is_named() {
        assert_eq!(check_method_fixture(&method_fixture()), vec![]);
        // The 2021 did:bid fixture: executions only.
        let resolver_shaped = json!({"didMethod": "did:bid", "implementation": "x", "implementer": "y", "executions": []});
        assert_eq!(check_method_fixture(&resolver_shaped)[0].section, COLLECT);
        let mut f = method_fixture();
        f[DID]["application/did+json"]["representation"] = json!("{\"id\":\"did:bid:other\"}");
        f[DID]["application/did+ld+json"]["didResolutionMetadata"]["contentType"] =
            json!("application/did");
        f[DID]["application/did+json"]["didDocumentMetadata"]["ttl"] = json!(600);
        f["didParameters"]["relativeRef"] = json!(format!("{DID}?service=a&relativeRef=/x"));
        assert_eq!(
            check_method_fixture(&f).len(),
            4,
            "{:?}",
            check_method_fixture(&f)
        );
        let mut f = method_fixture();
        f["supportedContentTypes"] = json!(["application/did+json", "application/did+cbor"]);
        assert_eq!(check_method_fixture(&f).len(), 2);
    }

    #[test]
    fn resolver_fixtures() {
        let good = json!({
            "expectedOutcomes": {"defaultOutcome": [0, 1], "notFoundErrorOutcome": [2], "invalidDidErrorOutcome": [3]},
            "executions": [
                {"function": "resolve", "input": {"did": DID, "resolutionOptions": {}},
                 "output": {"didResolutionMetadata": {}, "didDocument": {"id": DID}, "didDocumentMetadata": {"deactivated": false}}},
                {"function": "resolveRepresentation", "input": {"did": DID, "resolutionOptions": {"accept": "application/did+ld+json"}},
                 "output": {"didResolutionMetadata": {"contentType": "application/did+ld+json"},
                            "didDocumentStream": format!("{{\"@context\":\"https://www.w3.org/ns/did/v1\",\"id\":\"{DID}\"}}"),
                            "didDocumentMetadata": {}}},
                {"function": "resolve", "input": {"did": "did:bid:efnotthere", "resolutionOptions": {}},
                 "output": {"didResolutionMetadata": {"error": "notFound"}, "didDocument": null, "didDocumentMetadata": {}}},
                {"function": "resolve", "input": {"did": "did:bid:ef!", "resolutionOptions": {}},
                 "output": {"didResolutionMetadata": {"error": "invalidDid"}, "didDocument": null, "didDocumentMetadata": {}}}
            ]
        });
        assert_eq!(check_resolver_fixture(&good), vec![]);
        let mut bad = good.clone();
        bad["executions"][0]["output"]["didResolutionMetadata"]["contentType"] =
            json!("application/did");
        bad["executions"][2]["output"]["didResolutionMetadata"]["error"] =
            json!({"type": "https://www.w3.org/ns/did#NOT_FOUND"});
        bad["executions"][3]["input"]["did"] = json!("did:bid:fine");
        bad["expectedOutcomes"]["defaultOutcomes"] = json!([0]);
        assert_eq!(
            check_resolver_fixture(&bad).len(),
            5,
            "{:?}",
            check_resolver_fixture(&bad)
        );
        let mut null_doc = good.clone();
        null_doc["executions"][0]["output"]["didDocument"] = Value::Null;
        null_doc["executions"][0]["output"]["didDocumentMetadata"]["deactivated"] = json!(true);
        null_doc["expectedOutcomes"] = json!({"defaultOutcome": [1], "deactivatedOutcome": [0], "notFoundErrorOutcome": [2], "invalidDidErrorOutcome": [3]});
        assert_eq!(check_resolver_fixture(&null_doc).len(), 1);
    }

    #[test]
    fn dereferencer_fixtures() {
        let good = json!({
            "expectedOutcomes": {"defaultOutcome": [0, 1], "invalidDidUrlErrorOutcome": [2]},
            "executions": [
                {"function": "dereference", "input": {"didUrl": DID, "dereferenceOptions": {}},
                 "output": {"dereferencingMetadata": {"contentType": "application/did"}, "contentStream": "{\"id\":1}", "contentMetadata": {}}},
                {"function": "dereference", "input": {"didUrl": format!("{DID}#key-1"), "dereferenceOptions": {}},
                 "output": {"dereferencingMetadata": {"contentType": "application/did"}, "contentStream": "{\"id\":2}", "contentMetadata": {}}},
                {"function": "dereference", "input": {"didUrl": format!("{DID}#a#b"), "dereferenceOptions": {}},
                 "output": {"dereferencingMetadata": {"error": "invalidDidUrl"}, "contentStream": "", "contentMetadata": {}}}
            ]
        });
        assert_eq!(check_dereferencer_fixture(&good), vec![]);
        let mut bad = good.clone();
        bad["executions"][0]["output"]["dereferencingMetadata"] = json!({});
        bad["executions"][1]["output"]["contentStream"] = json!("{\"id\":1}");
        bad["executions"][2]["output"]["contentStream"] = Value::Null;
        assert_eq!(
            check_dereferencer_fixture(&bad).len(),
            3,
            "{:?}",
            check_dereferencer_fixture(&bad)
        );
    }
}
