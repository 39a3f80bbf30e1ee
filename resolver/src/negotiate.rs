//! Content negotiation for the DID Resolution HTTP binding: which representation of an answer
//! the client's `Accept` header (RFC 9110 §12.5.1) asks for.
//!
//! Each media range is weighed by its `q` (0 refuses) and by how specifically it names a
//! representation: the full type with a matching `profile` parameter, then the full type,
//! then `type/*`, then `*/*`. The representation with the highest `q` wins, then the most
//! specific match, then the server's order of preference (the first offered is the default,
//! also when there is no `Accept` at all).

/// The result media type of DID resolution.
pub const DID_RESOLUTION: &str = "application/did-resolution";
/// The result media type of DID URL dereferencing.
pub const DID_URL_DEREFERENCING: &str = "application/did-url-dereferencing";
/// The JSON-LD media type, whose `profile` named the results before `application/did-resolution`.
pub const LD_JSON: &str = "application/ld+json";
/// The legacy resolution result profile.
pub const RESOLUTION_PROFILE: &str = "https://w3id.org/did-resolution";
/// The legacy dereferencing result profile.
pub const DEREFERENCING_PROFILE: &str = "https://w3id.org/did-url-dereferencing";
/// The legacy resolution result media type, as a `Content-Type`.
pub const LEGACY_DID_RESOLUTION: &str =
    "application/ld+json;profile=\"https://w3id.org/did-resolution\"";
/// The legacy dereferencing result media type, as a `Content-Type`.
pub const LEGACY_DID_URL_DEREFERENCING: &str =
    "application/ld+json;profile=\"https://w3id.org/did-url-dereferencing\"";
/// A list of URIs: where a service DID URL leads.
pub const URI_LIST: &str = "text/uri-list";

/// One way to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    /// The full resolution result (`application/did-resolution`).
    ResolutionResult,
    /// The full resolution result under its older JSON-LD profile media type.
    LegacyResolutionResult,
    /// The full dereferencing result (`application/did-url-dereferencing`).
    DereferencingResult,
    /// The full dereferencing result under its older JSON-LD profile media type.
    LegacyDereferencingResult,
    /// The bare document (or resource), with this media type: `application/did`,
    /// `application/did+json`, `application/did+ld+json`, `application/json` or
    /// `application/ld+json`.
    Bare(&'static str),
    /// A `303 See Other` to the selected service endpoint (`text/uri-list`).
    UriList,
}

impl Representation {
    /// The `Content-Type` this representation is served with.
    pub fn media_type(self) -> &'static str {
        match self {
            Representation::ResolutionResult => DID_RESOLUTION,
            Representation::LegacyResolutionResult => LEGACY_DID_RESOLUTION,
            Representation::DereferencingResult => DID_URL_DEREFERENCING,
            Representation::LegacyDereferencingResult => LEGACY_DID_URL_DEREFERENCING,
            Representation::Bare(media) => media,
            Representation::UriList => URI_LIST,
        }
    }

    /// `(type/subtype, profile)` to match ranges against.
    fn parts(self) -> (&'static str, Option<&'static str>) {
        match self {
            Representation::ResolutionResult => (DID_RESOLUTION, None),
            Representation::LegacyResolutionResult => (LD_JSON, Some(RESOLUTION_PROFILE)),
            Representation::DereferencingResult => (DID_URL_DEREFERENCING, None),
            Representation::LegacyDereferencingResult => (LD_JSON, Some(DEREFERENCING_PROFILE)),
            Representation::Bare(media) => (media, None),
            Representation::UriList => (URI_LIST, None),
        }
    }
}

/// The bare-document media types, in the order of preference.
pub const BARE_TYPES: [&str; 5] = [
    "application/did",
    "application/did+json",
    "application/did+ld+json",
    "application/json",
    LD_JSON,
];

/// One media range of an `Accept` header.
#[derive(Debug)]
struct Range {
    kind: String,
    subtype: String,
    profile: Option<String>,
    q: f32,
}

fn parse_accept(accept: &str) -> Vec<Range> {
    let mut ranges = Vec::new();
    for item in accept.split(',') {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let Some((kind, subtype)) = media.split_once('/') else {
            continue;
        };
        if kind.is_empty() || subtype.is_empty() {
            continue;
        }
        let mut q = 1.0f32;
        let mut profile = None;
        let mut valid = true;
        for param in parts {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim().trim_matches('"');
            match name.as_str() {
                "q" => match value.parse::<f32>() {
                    Ok(v) if (0.0..=1.0).contains(&v) => q = v,
                    _ => valid = false,
                },
                "profile" => profile = Some(value.to_string()),
                _ => {}
            }
        }
        if valid {
            ranges.push(Range {
                kind: kind.trim().to_string(),
                subtype: subtype.trim().to_string(),
                profile,
                q,
            });
        }
    }
    ranges
}

/// How specifically `range` names `rep`, or none when it does not.
fn specificity(range: &Range, rep: Representation) -> Option<u8> {
    let (media, rep_profile) = rep.parts();
    let (kind, subtype) = media.split_once('/').unwrap_or((media, ""));
    if range.kind == "*" {
        return (range.subtype == "*").then_some(0);
    }
    if range.kind != kind {
        return None;
    }
    if range.subtype == "*" {
        return Some(1);
    }
    if range.subtype != subtype {
        return None;
    }
    match (&range.profile, rep_profile) {
        (Some(p), Some(rp)) if p == rp => Some(4),
        (Some(_), _) => None,
        (None, None) => Some(3),
        (None, Some(_)) => Some(2),
    }
}

/// Picks the representation for `accept` among `offered` (in the server's order of
/// preference; the first is the default). Errs with a detail when none is acceptable.
pub fn negotiate(
    accept: Option<&str>,
    offered: &[Representation],
) -> Result<Representation, String> {
    let Some(first) = offered.first() else {
        return Err("nothing to offer".into());
    };
    let accept = accept.map(str::trim).filter(|a| !a.is_empty());
    let Some(accept) = accept else {
        return Ok(*first);
    };
    let ranges = parse_accept(accept);
    let mut best: Option<(f32, u8, usize)> = None;
    for (index, rep) in offered.iter().enumerate() {
        // The most specific range that names this representation decides its q.
        let Some((spec, q)) = ranges
            .iter()
            .filter_map(|r| specificity(r, *rep).map(|s| (s, r.q)))
            .max_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)))
        else {
            continue;
        };
        if q <= 0.0 {
            continue;
        }
        let better = match best {
            None => true,
            Some((bq, bs, _)) => q > bq || (q == bq && spec > bs),
        };
        if better {
            best = Some((q, spec, index));
        }
    }
    match best {
        Some((_, _, index)) => Ok(offered[index]),
        None => Err(format!(
            "no representation of this answer is acceptable for Accept: {accept}; this one can \
             be answered as {}",
            offered
                .iter()
                .map(|r| r.media_type())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// An answer rendered in a negotiated representation, ready to send and cheap to keep and
/// clone (the body is shared): what the HTTP binding answers and the warm path keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// The HTTP status of the DID Resolution binding.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: Option<&'static str>,
    /// `Location` (a `303` to a service endpoint).
    pub location: Option<String>,
    /// The body.
    pub body: bytes::Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;
    use Representation::*;

    const DOC: [Representation; 9] = [
        ResolutionResult,
        LegacyResolutionResult,
        DereferencingResult,
        LegacyDereferencingResult,
        Bare("application/did"),
        Bare("application/did+json"),
        Bare("application/did+ld+json"),
        Bare("application/json"),
        Bare("application/ld+json"),
    ];

    fn pick(accept: Option<&str>) -> Result<Representation, String> {
        negotiate(accept, &DOC)
    }

    #[test]
    fn defaults_and_exact_types() {
        assert_eq!(pick(None), Ok(ResolutionResult));
        assert_eq!(pick(Some("")), Ok(ResolutionResult));
        assert_eq!(pick(Some("*/*")), Ok(ResolutionResult));
        assert_eq!(pick(Some("application/*")), Ok(ResolutionResult));
        assert_eq!(
            pick(Some("application/did-resolution")),
            Ok(ResolutionResult)
        );
        assert_eq!(
            pick(Some(
                "application/ld+json;profile=\"https://w3id.org/did-resolution\""
            )),
            Ok(LegacyResolutionResult)
        );
        assert_eq!(
            pick(Some(
                "application/ld+json; profile=https://w3id.org/did-resolution"
            )),
            Ok(LegacyResolutionResult)
        );
        assert_eq!(
            pick(Some("application/ld+json")),
            Ok(Bare("application/ld+json"))
        );
        assert_eq!(pick(Some("application/did")), Ok(Bare("application/did")));
        assert_eq!(
            pick(Some("Application/DID+JSON")),
            Ok(Bare("application/did+json"))
        );
        assert_eq!(
            pick(Some("application/did+ld+json")),
            Ok(Bare("application/did+ld+json"))
        );
        assert_eq!(
            pick(Some("application/did-url-dereferencing")),
            Ok(DereferencingResult)
        );
    }

    #[test]
    fn q_values_and_specificity_decide() {
        assert_eq!(
            pick(Some(
                "application/did-resolution;q=0.5, application/did+json"
            )),
            Ok(Bare("application/did+json"))
        );
        assert_eq!(
            pick(Some(
                "application/did+json;q=0.4, application/did-resolution;q=0.9"
            )),
            Ok(ResolutionResult)
        );
        // A specific type beats */* at the same q.
        assert_eq!(
            pick(Some("*/*, application/did+ld+json")),
            Ok(Bare("application/did+ld+json"))
        );
        // q=0 refuses, even under a wildcard.
        assert_eq!(
            pick(Some("*/*, application/did-resolution;q=0")),
            Ok(LegacyResolutionResult)
        );
        assert_eq!(
            pick(Some("application/did+json;q=0.1, text/html")),
            Ok(Bare("application/did+json"))
        );
        // A malformed q drops its range.
        assert!(pick(Some("application/did;q=high")).is_err());
    }

    #[test]
    fn unacceptable_types_are_refused_with_the_offer() {
        let e = pick(Some("text/html")).unwrap_err();
        assert!(e.contains("text/html") && e.contains("application/did-resolution"));
        assert!(pick(Some("application/xml, image/*")).is_err());
        assert!(pick(Some("application/did-resolution;q=0")).is_err());
        assert!(pick(Some("garbage")).is_err());
        assert!(pick(Some(
            "application/ld+json;profile=\"https://example.com/other\""
        ))
        .is_err());
        assert_eq!(
            negotiate(Some("text/*"), &[UriList, ResolutionResult]),
            Ok(UriList)
        );
    }
}
