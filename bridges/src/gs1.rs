//! The GS1 bridge: GS1 keys in Digital Link form (`/01/09506000134352/10/LOT7`), delegated by
//! GS1 Company Prefix and bound at any level (key, or key with qualifiers), and the answers of a
//! GS1-Conformant Resolver (GS1-Conformant Resolver standard 1.2.0) built from the bound DIDs'
//! documents. The grammar is `sparkid-gs1` (the GS1 Barcode Syntax Dictionary); the mapping and
//! its rules are `spec/gs1.md`.
//!
//! - **Lookup** walks up the qualifier path: `/01/X/10/L/21/S`, then `/01/X/10/L`, then
//!   `/01/X`; a binding at a qualifier level wins over its primary key.
//! - **Links** come from each bound DID's document: a service whose `type` is a GS1 link type
//!   (`gs1:pip`, `https://gs1.org/voc/pip`, ...) with an http(s) endpoint is a link of that type.
//!   The DID's resolution URL (`<base>/1.0/identifiers/<did>`) is always a link (`describedby`)
//!   and is the default link (`gs1:defaultLink`) unless a service is one. A `did:` endpoint is
//!   replaced by that DID's resolution URL: a linkset `href` is http(s).
//! - **Answers**: a 307 to the default link (query string passed on), to the requested
//!   `linkType`, 300 when several equal links match, the RFC 9264 linkset for
//!   `linkType=linkset`/`all` or `Accept: application/linkset+json`, 400 naming the broken
//!   rule, 404 when nothing is bound.

use serde_json::{json, Map, Value};
use sparkid_gs1::DigitalLink;
use sparkid_registrar::namespace::{binding_key, namespace_key, BindingRecord, Kind};
use sparkid_registrar::{did_key, DidRecord};

use crate::bridge::{read, Bridge, BridgeError, RecordSource};

/// The GS1 link type vocabulary (`gs1:` in CURIEs).
pub const GS1_VOC: &str = "https://gs1.org/voc/";
/// Other spellings of the vocabulary that mean the same types.
const GS1_VOC_ALIASES: [&str; 4] = [
    "https://ref.gs1.org/voc/",
    "https://www.gs1.org/voc/",
    "http://gs1.org/voc/",
    "http://www.gs1.org/voc/",
];
/// The JSON-LD context of GS1 linksets (GS1-Conformant Resolver 1.2.0 artefacts).
pub const LINKSET_CONTEXT: &str = "https://ref.gs1.org/standards/resolver/linkset-context";
/// The IANA link relation under which a DID's resolution URL is always listed.
pub const DESCRIBED_BY: &str = "describedby";
/// The most links taken from one DID document (a document is capped in size anyway).
pub const MAX_LINKS_PER_DID: usize = 64;

/// The GS1 bridge.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gs1Bridge;

impl Bridge for Gs1Bridge {
    fn system(&self) -> &'static str {
        "gs1"
    }

    fn kind(&self) -> Kind {
        Kind::Gs1
    }

    fn uri_scheme(&self) -> &'static str {
        "https"
    }
}

/// One link of a linkset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The link relation: a full GS1 link type URI or an IANA relation.
    pub rel: String,
    /// The target (http or https).
    pub href: String,
    /// Its title.
    pub title: String,
    /// The target's languages.
    pub hreflang: Vec<String>,
    /// The target's media type.
    pub media_type: Option<String>,
    /// Its contexts (e.g. jurisdictions).
    pub context: Vec<Value>,
}

/// The links of one bound level of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level {
    /// The canonical path bound.
    pub path: String,
    /// The DID it is bound to.
    pub did: String,
    /// Its links, the default link first.
    pub links: Vec<Link>,
}

/// What a checked key resolves to: each bound level, most specific first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gs1Resolution {
    /// The key as asked, canonical.
    pub path: String,
    /// The bound levels, most specific first.
    pub levels: Vec<Level>,
    /// The longest delegated GS1 Company Prefix covering it, when nothing is bound (it only
    /// explains a miss, so it is not looked up otherwise).
    pub company_prefix: Option<String>,
}

/// A request to the resolver, as the door reads it off HTTP.
#[derive(Debug, Clone, Copy)]
pub struct Gs1Request<'a> {
    /// The request path, still percent-encoded (`/01/09506000134352/10/LOT7`).
    pub path: &'a str,
    /// The raw query string, if any.
    pub query: Option<&'a str>,
    /// The client asked for `application/linkset+json`.
    pub accept_linkset: bool,
}

/// The resolver's answer, for the door to render.
#[derive(Debug, Clone, PartialEq)]
pub enum Gs1Answer {
    /// 307 to `location`; `linkset` is the URL of the item's linkset.
    Redirect {
        /// The target, with the query string passed on.
        location: String,
        /// The linkset's URL (for the `Link: rel="linkset"` header).
        linkset: String,
    },
    /// 300: several equal links of the requested type; the linkset lists them.
    Choices {
        /// The linkset.
        linkset: Value,
    },
    /// 200: the linkset.
    Linkset {
        /// The linkset.
        linkset: Value,
    },
    /// 400: the path or query breaks a rule, named.
    Invalid {
        /// The broken rule.
        rule: String,
    },
    /// 404: nothing bound.
    NotFound {
        /// Why.
        detail: String,
    },
}

impl Gs1Bridge {
    /// Resolves a checked key on the ledger: each bound level, most specific first, with the
    /// links of its DID. `base_url` is the daemon's public base (for resolution URLs).
    pub fn resolve(
        &self,
        source: &dyn RecordSource,
        link: &DigitalLink,
        base_url: &str,
    ) -> Result<Gs1Resolution, BridgeError> {
        let mut levels = Vec::new();
        for path in link.levels() {
            let Some(binding) = read::<BindingRecord>(source, &binding_key(Kind::Gs1, &path))?
            else {
                continue;
            };
            let Some(did) = binding.did else { continue };
            let document = match did.parse::<sparkid_bid::Bid>() {
                Ok(bid) => read::<DidRecord>(source, &did_key(&bid))?
                    .filter(|r| !r.deactivated)
                    .map(|r| r.document),
                Err(_) => None,
            };
            let links = links_of(&did, document.as_ref(), base_url);
            levels.push(Level { path, did, links });
        }
        // The delegation only matters to explain a miss: not read when something is bound.
        let company_prefix = match levels.is_empty() {
            true => self.company_prefix(source, link)?,
            false => None,
        };
        Ok(Gs1Resolution {
            path: link.path(),
            levels,
            company_prefix,
        })
    }

    /// The longest delegated GS1 Company Prefix covering a key, if any.
    pub fn company_prefix(
        &self,
        source: &dyn RecordSource,
        link: &DigitalLink,
    ) -> Result<Option<String>, BridgeError> {
        for prefix in link.company_prefixes() {
            if source.record(&namespace_key(Kind::Gs1, &prefix))?.is_some() {
                return Ok(Some(prefix));
            }
        }
        Ok(None)
    }

    /// Answers a GS1-Conformant Resolver request. `resolver_root` is this resolver's public
    /// base URL (no trailing slash); `base_url` the daemon's (for resolution URLs).
    pub fn answer(
        &self,
        source: &dyn RecordSource,
        request: &Gs1Request<'_>,
        resolver_root: &str,
    ) -> Result<Gs1Answer, BridgeError> {
        let link = match sparkid_gs1::parse(request.path) {
            Ok(l) => l,
            Err(e) => {
                return Ok(Gs1Answer::Invalid {
                    rule: e.to_string(),
                })
            }
        };
        let query = match Query::parse(request.query) {
            Ok(q) => q,
            Err(rule) => return Ok(Gs1Answer::Invalid { rule }),
        };
        let resolution = self.resolve(source, &link, resolver_root)?;
        if resolution.levels.is_empty() {
            let detail = match &resolution.company_prefix {
                Some(prefix) => format!(
                    "{} falls under the GS1 Company Prefix {prefix}, which binds no DID to it or to a less granular key",
                    resolution.path
                ),
                None => format!(
                    "no GS1 Company Prefix covering {} is delegated here",
                    resolution.path
                ),
            };
            return Ok(Gs1Answer::NotFound { detail });
        }
        let wants_linkset =
            request.accept_linkset || matches!(query.link_type.as_deref(), Some("linkset" | "all"));
        if wants_linkset {
            return Ok(Gs1Answer::Linkset {
                linkset: linkset(&resolution, resolver_root),
            });
        }
        let wanted = query
            .link_type
            .as_deref()
            .map(expand_link_type)
            .unwrap_or_else(|| format!("{GS1_VOC}defaultLink"));
        // The most specific level that has the type; failing every level, the default link.
        let matches = resolution
            .levels
            .iter()
            .map(|l| {
                l.links
                    .iter()
                    .filter(|k| k.rel == wanted)
                    .collect::<Vec<_>>()
            })
            .find(|m| !m.is_empty());
        let chosen = match matches {
            Some(m) if m.len() > 1 && m.iter().all(|k| same_attributes(k, m[0])) => {
                return Ok(Gs1Answer::Choices {
                    linkset: linkset(&resolution, resolver_root),
                });
            }
            Some(m) => m[0].clone(),
            None => {
                let default = format!("{GS1_VOC}defaultLink");
                match resolution
                    .levels
                    .iter()
                    .flat_map(|l| l.links.iter())
                    .find(|k| k.rel == default)
                {
                    Some(k) => k.clone(),
                    None => {
                        return Ok(Gs1Answer::NotFound {
                            detail: format!("{} has no default link", resolution.path),
                        })
                    }
                }
            }
        };
        let location = match query.passed_on.is_empty() {
            true => chosen.href,
            false => {
                let joiner = if chosen.href.contains('?') { '&' } else { '?' };
                format!("{}{joiner}{}", chosen.href, query.passed_on)
            }
        };
        Ok(Gs1Answer::Redirect {
            location,
            linkset: format!("{resolver_root}{}?linkType=linkset", resolution.path),
        })
    }
}

fn same_attributes(a: &Link, b: &Link) -> bool {
    a.hreflang == b.hreflang && a.media_type == b.media_type && a.context == b.context
}

/// The query string: `linkType`, and the rest as passed on (in order, as sent).
struct Query {
    link_type: Option<String>,
    passed_on: String,
}

/// The longest query string read.
const MAX_QUERY_LEN: usize = 2048;

impl Query {
    fn parse(raw: Option<&str>) -> Result<Query, String> {
        let raw = raw.unwrap_or_default();
        if raw.len() > MAX_QUERY_LEN {
            return Err(format!("the query string is at most {MAX_QUERY_LEN} bytes"));
        }
        let mut link_type = None;
        let mut passed_on = Vec::new();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if key == "linkType" {
                if link_type.is_some() {
                    return Err("linkType is given more than once".into());
                }
                let decoded = percent_decode(value)
                    .ok_or_else(|| format!("linkType {value:?} has a bad percent escape"))?;
                link_type = Some(decoded);
            } else {
                passed_on.push(pair);
            }
        }
        Ok(Query {
            link_type,
            passed_on: passed_on.join("&"),
        })
    }
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// A link type as the client or a document writes it (`gs1:pip`, `https://ref.gs1.org/voc/pip`,
/// `describedby`) in the one form links carry (`https://gs1.org/voc/pip`).
pub fn expand_link_type(text: &str) -> String {
    if let Some(term) = text.strip_prefix("gs1:") {
        return format!("{GS1_VOC}{term}");
    }
    for alias in GS1_VOC_ALIASES {
        if let Some(term) = text.strip_prefix(alias) {
            return format!("{GS1_VOC}{term}");
        }
    }
    text.to_string()
}

/// The GS1 link type a service `type` names, in full form, if it is one.
fn gs1_link_type(service_type: &str) -> Option<String> {
    let full = expand_link_type(service_type);
    let term = full.strip_prefix(GS1_VOC)?;
    let ok = !term.is_empty() && term.bytes().all(|b| b.is_ascii_alphanumeric());
    ok.then_some(full)
}

/// The links of `did`, from its document's services (none when the document is not on this
/// ledger): GS1-typed services, then the resolution URL.
pub fn links_of(did: &str, document: Option<&Value>, base_url: &str) -> Vec<Link> {
    let resolution_url = |d: &str| format!("{base_url}/1.0/identifiers/{d}");
    let mut links = Vec::new();
    let services = document
        .and_then(|d| d.get("service"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for service in services {
        let types: Vec<&str> = match service.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let endpoints: Vec<&str> = match service.get("serviceEndpoint") {
            Some(Value::String(e)) => vec![e.as_str()],
            Some(Value::Array(es)) => es.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let text = |k: &str| service.get(k).and_then(Value::as_str).map(str::to_string);
        let hreflang = match service.get("hreflang") {
            Some(Value::String(l)) => vec![l.clone()],
            Some(Value::Array(ls)) => ls
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        let context = match service.get("context") {
            Some(Value::Array(cs)) => cs.clone(),
            Some(c @ Value::String(_)) => vec![c.clone()],
            _ => Vec::new(),
        };
        for rel in types.iter().filter_map(|t| gs1_link_type(t)) {
            for endpoint in &endpoints {
                let href = if endpoint.starts_with("did:") {
                    resolution_url(endpoint)
                } else if endpoint.starts_with("https://") || endpoint.starts_with("http://") {
                    endpoint.to_string()
                } else {
                    continue;
                };
                if links.len() >= MAX_LINKS_PER_DID {
                    break;
                }
                let term = rel.trim_start_matches(GS1_VOC);
                links.push(Link {
                    rel: rel.clone(),
                    href,
                    title: text("title")
                        .or_else(|| text("name"))
                        .unwrap_or_else(|| format!("{term} of {did}")),
                    hreflang: hreflang.clone(),
                    media_type: text("mediaType"),
                    context: context.clone(),
                });
            }
        }
    }
    let default = format!("{GS1_VOC}defaultLink");
    let url = resolution_url(did);
    if !links.iter().any(|l| l.rel == default) {
        links.insert(
            0,
            Link {
                rel: default,
                href: url.clone(),
                title: format!("DID document of {did}"),
                hreflang: Vec::new(),
                media_type: Some("application/did-resolution".into()),
                context: Vec::new(),
            },
        );
    }
    links.push(Link {
        rel: DESCRIBED_BY.into(),
        href: url,
        title: format!("DID document of {did}"),
        hreflang: Vec::new(),
        media_type: Some("application/did-resolution".into()),
        context: Vec::new(),
    });
    links
}

/// The RFC 9264 linkset (`application/linkset+json`) of a resolution: one context object per
/// bound level, anchored at this resolver.
pub fn linkset(resolution: &Gs1Resolution, resolver_root: &str) -> Value {
    let contexts: Vec<Value> = resolution
        .levels
        .iter()
        .map(|level| {
            let mut object = Map::new();
            object.insert(
                "anchor".into(),
                json!(format!("{resolver_root}{}", level.path)),
            );
            object.insert(
                "itemDescription".into(),
                json!(format!("GS1 key {} (DID {})", level.path, level.did)),
            );
            for link in &level.links {
                let mut target = Map::new();
                target.insert("href".into(), json!(link.href));
                target.insert("title".into(), json!(link.title));
                if !link.hreflang.is_empty() {
                    target.insert("hreflang".into(), json!(link.hreflang));
                }
                if let Some(t) = &link.media_type {
                    target.insert("type".into(), json!(t));
                }
                if !link.context.is_empty() {
                    target.insert("context".into(), json!(link.context));
                }
                let entry = object.entry(link.rel.clone()).or_insert_with(|| json!([]));
                if let Value::Array(targets) = entry {
                    targets.push(Value::Object(target));
                }
            }
            Value::Object(object)
        })
        .collect();
    json!({ "linkset": contexts })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_of_gs1_link_types_become_links_and_the_did_is_the_default() {
        let doc = json!({"service": [
            {"id": "#pip", "type": "gs1:pip", "serviceEndpoint": "https://example.com/pip",
             "title": "Product page", "hreflang": ["en"]},
            {"id": "#cert", "type": ["https://ref.gs1.org/voc/certificationInfo"],
             "serviceEndpoint": ["https://example.com/c1", "did:bid:efX", "ftp://x"]},
            {"id": "#r", "type": "DIDResolver", "serviceEndpoint": "https://example.com/r"},
        ]});
        let links = links_of("did:bid:efA", Some(&doc), "http://h:1");
        let rels: Vec<(&str, &str)> = links
            .iter()
            .map(|l| (l.rel.as_str(), l.href.as_str()))
            .collect();
        assert_eq!(
            rels,
            [
                (
                    "https://gs1.org/voc/defaultLink",
                    "http://h:1/1.0/identifiers/did:bid:efA"
                ),
                ("https://gs1.org/voc/pip", "https://example.com/pip"),
                (
                    "https://gs1.org/voc/certificationInfo",
                    "https://example.com/c1"
                ),
                (
                    "https://gs1.org/voc/certificationInfo",
                    "http://h:1/1.0/identifiers/did:bid:efX"
                ),
                ("describedby", "http://h:1/1.0/identifiers/did:bid:efA"),
            ]
        );
        assert_eq!(links[1].title, "Product page");
        // A service may be the default link instead.
        let doc = json!({"service": [
            {"id": "#d", "type": "gs1:defaultLink", "serviceEndpoint": "https://example.com/d"}]});
        let links = links_of("did:bid:efA", Some(&doc), "http://h:1");
        assert_eq!(links[0].href, "https://example.com/d");
        assert_eq!(links.len(), 2);
    }

    #[test]
    fn queries_pass_on_everything_but_link_type() {
        let q = Query::parse(Some("17=261231&linkType=gs1%3Apip&x=1")).unwrap();
        assert_eq!(q.link_type.as_deref(), Some("gs1:pip"));
        assert_eq!(q.passed_on, "17=261231&x=1");
        assert!(Query::parse(Some("linkType=a&linkType=b")).is_err());
        assert!(Query::parse(Some("linkType=%zz")).is_err());
        assert_eq!(expand_link_type("gs1:pip"), "https://gs1.org/voc/pip");
        assert_eq!(
            expand_link_type("https://www.gs1.org/voc/pip"),
            "https://gs1.org/voc/pip"
        );
    }
}
