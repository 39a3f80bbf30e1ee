//! GS1 Digital Link paths (`/01/09506000134352/10/LOT7`): parsed against the dictionary, checked
//! (primary key, qualifier order, value formats, check digits) and rendered canonical.
//!
//! The canonical form: the uncompressed path, GTIN-8/12/13 padded to GTIN-14, qualifiers in the
//! dictionary's order (any other order is refused, as the dictionary says), each value
//! percent-encoded except for RFC 3986 unreserved characters, no trailing slash.

use thiserror::Error;

use crate::check::lint;
use crate::dictionary::{Ai, Charset, Component, Dictionary};

/// The longest path accepted, in bytes, checked before anything is parsed. The longest
/// canonical path of the dictionary's keys and qualifiers is far shorter.
pub const MAX_PATH_LEN: usize = 512;
/// The shortest GS1 Company Prefix delegated (GS1 General Specifications: 4 to 12 digits).
pub const MIN_COMPANY_PREFIX_LEN: usize = 4;
/// The longest GS1 Company Prefix.
pub const MAX_COMPANY_PREFIX_LEN: usize = 12;

/// Why a Digital Link path is refused; each variant names the broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DigitalLinkError {
    /// Over [`MAX_PATH_LEN`].
    #[error("a GS1 Digital Link path is at most {MAX_PATH_LEN} bytes")]
    TooLong,
    /// Not starting with `/`.
    #[error("a GS1 Digital Link path starts with '/': /<primary key AI>/<value>[/<qualifier AI>/<value>...]")]
    NotAbsolute,
    /// An empty segment (`//`).
    #[error("a GS1 Digital Link path has no empty segment")]
    EmptySegment,
    /// An odd number of segments.
    #[error("a GS1 Digital Link path is /<AI>/<value> pairs; {0:?} has no value")]
    NotPairs(String),
    /// A segment where an AI belongs that is not a numeric AI of the dictionary.
    #[error("{0:?} is not a GS1 Application Identifier (Digital Link paths use numeric AIs; the convenience alphas such as /gtin/ were removed in Digital Link 1.3.0)")]
    UnknownAi(String),
    /// The first AI is not a primary key.
    #[error(
        "AI ({ai}) {title} is not a GS1 Digital Link primary key; the primary keys are {keys}"
    )]
    NotPrimaryKey {
        /// The AI.
        ai: String,
        /// Its title.
        title: String,
        /// Every primary key.
        keys: String,
    },
    /// A qualifier the key does not take.
    #[error("AI ({qualifier}) does not qualify primary key ({key}); its qualifiers are {allowed}")]
    QualifierNotAllowed {
        /// The primary key AI.
        key: String,
        /// The qualifier AI.
        qualifier: String,
        /// The allowed sequences, as the dictionary lists them.
        allowed: String,
    },
    /// Qualifiers out of the dictionary's order, repeated, or mixing alternative sequences.
    #[error("the qualifiers of primary key ({key}) must follow one of the orders {allowed} (each at most once, no mixing); got {got}")]
    QualifierOrder {
        /// The primary key AI.
        key: String,
        /// The allowed sequences.
        allowed: String,
        /// The sequence given.
        got: String,
    },
    /// A bad percent escape, or a value that is not UTF-8 once decoded.
    #[error("the value {0:?} has a bad percent escape or is not UTF-8")]
    Escape(String),
    /// A value that breaks its AI's format or check.
    #[error("AI ({ai}) {title}: {rule}")]
    Value {
        /// The AI.
        ai: String,
        /// Its title.
        title: String,
        /// The broken rule.
        rule: String,
    },
}

/// An AI and its (decoded) value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// The AI's digits.
    pub ai: String,
    /// The value, decoded.
    pub value: String,
}

/// A checked Digital Link path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigitalLink {
    /// The primary key.
    pub key: Element,
    /// Its qualifiers, in the dictionary's order.
    pub qualifiers: Vec<Element>,
}

impl DigitalLink {
    /// The canonical path.
    pub fn path(&self) -> String {
        self.path_to(self.qualifiers.len())
    }

    /// The canonical path with the first `n` qualifiers only.
    fn path_to(&self, n: usize) -> String {
        let mut out = String::new();
        for e in std::iter::once(&self.key).chain(self.qualifiers.iter().take(n)) {
            out.push('/');
            out.push_str(&e.ai);
            out.push('/');
            encode_into(&e.value, &mut out);
        }
        out
    }

    /// The canonical paths of this item and every less granular one, most specific first:
    /// the order in which a binding is looked for (a binding at a qualifier level wins over
    /// its primary key).
    pub fn levels(&self) -> Vec<String> {
        (0..=self.qualifiers.len())
            .rev()
            .map(|n| self.path_to(n))
            .collect()
    }

    /// The GS1 Company Prefixes that could hold this key, longest first (12 digits down to 4,
    /// read where the dictionary's `gcppos1`/`gcppos2` puts them). Empty for a key without a
    /// numeric company prefix position.
    pub fn company_prefixes(&self) -> Vec<String> {
        company_prefixes(Dictionary::embedded(), &self.key)
    }
}

fn company_prefixes(dictionary: &Dictionary, key: &Element) -> Vec<String> {
    let Some((offset, _)) = dictionary
        .ai(&key.ai)
        .and_then(|ai| ai.company_prefix_position())
    else {
        return Vec::new();
    };
    let digits: String = key
        .value
        .get(offset..)
        .unwrap_or_default()
        .chars()
        .take_while(char::is_ascii_digit)
        .take(MAX_COMPANY_PREFIX_LEN)
        .collect();
    (MIN_COMPANY_PREFIX_LEN..=digits.len())
        .rev()
        .map(|n| digits[..n].to_string())
        .collect()
}

/// Checks a GS1 Company Prefix (a delegated namespace): 4 to 12 digits.
pub fn check_company_prefix(prefix: &str) -> Result<(), String> {
    let ok = (MIN_COMPANY_PREFIX_LEN..=MAX_COMPANY_PREFIX_LEN).contains(&prefix.len())
        && prefix.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{:?}: a GS1 Company Prefix is {MIN_COMPANY_PREFIX_LEN} to {MAX_COMPANY_PREFIX_LEN} digits",
            prefix.chars().take(40).collect::<String>()
        ))
    }
}

/// Parses and checks a Digital Link path against the embedded dictionary.
pub fn parse(path: &str) -> Result<DigitalLink, DigitalLinkError> {
    parse_with(Dictionary::embedded(), path)
}

/// Parses and checks a Digital Link path against `dictionary`.
pub fn parse_with(dictionary: &Dictionary, path: &str) -> Result<DigitalLink, DigitalLinkError> {
    if path.len() > MAX_PATH_LEN {
        return Err(DigitalLinkError::TooLong);
    }
    let body = path
        .strip_prefix('/')
        .ok_or(DigitalLinkError::NotAbsolute)?;
    // A trailing slash names the same item (GS1-Conformant Resolver: SHOULD answer alike).
    let body = body.strip_suffix('/').unwrap_or(body);
    let segments: Vec<&str> = body.split('/').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(DigitalLinkError::EmptySegment);
    }
    if segments.len() % 2 == 1 {
        return Err(DigitalLinkError::NotPairs(
            segments.last().copied().unwrap_or_default().to_string(),
        ));
    }
    let mut elements = Vec::with_capacity(segments.len() / 2);
    for pair in segments.chunks(2) {
        let (code, raw) = (pair[0], pair[1]);
        let ai = dictionary
            .ai(code)
            .ok_or_else(|| DigitalLinkError::UnknownAi(code.chars().take(40).collect()))?;
        let value = decode(raw)?;
        elements.push((ai, value));
    }
    let mut elements = elements.into_iter();
    let Some((key_ai, key_value)) = elements.next() else {
        return Err(DigitalLinkError::NotPairs(String::new()));
    };
    let Some(sequences) = &key_ai.dl_primary_key else {
        return Err(DigitalLinkError::NotPrimaryKey {
            ai: key_ai.code.clone(),
            title: key_ai.title.clone(),
            keys: dictionary
                .primary_keys()
                .map(|a| a.code.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let key_value = normalize_key(key_ai, key_value);
    check_value(key_ai, &key_value)?;
    let qualifiers: Vec<(&Ai, String)> = elements.collect();
    let given: Vec<&str> = qualifiers.iter().map(|(a, _)| a.code.as_str()).collect();
    if !sequences
        .iter()
        .any(|seq| is_ordered_subsequence(&given, seq))
    {
        let allowed = render_sequences(sequences);
        if let Some(stray) = given
            .iter()
            .find(|q| !sequences.iter().flatten().any(|s| s == *q))
        {
            return Err(DigitalLinkError::QualifierNotAllowed {
                key: key_ai.code.clone(),
                qualifier: stray.to_string(),
                allowed,
            });
        }
        return Err(DigitalLinkError::QualifierOrder {
            key: key_ai.code.clone(),
            allowed,
            got: given.join(","),
        });
    }
    let mut out = Vec::with_capacity(qualifiers.len());
    for (ai, value) in qualifiers {
        check_value(ai, &value)?;
        out.push(Element {
            ai: ai.code.clone(),
            value,
        });
    }
    Ok(DigitalLink {
        key: Element {
            ai: key_ai.code.clone(),
            value: key_value,
        },
        qualifiers: out,
    })
}

/// GTIN-8, GTIN-12 and GTIN-13 are GTIN-14 with leading zeros (GS1 General Specifications;
/// Digital Link uses the 14-digit form).
fn normalize_key(ai: &Ai, value: String) -> String {
    if ai.code == "01"
        && matches!(value.len(), 8 | 12 | 13)
        && value.bytes().all(|b| b.is_ascii_digit())
    {
        format!("{value:0>14}")
    } else {
        value
    }
}

fn is_ordered_subsequence(given: &[&str], sequence: &[String]) -> bool {
    let mut at = 0;
    for q in given {
        match sequence[at..].iter().position(|s| s == q) {
            Some(i) => at += i + 1,
            None => return false,
        }
    }
    true
}

fn render_sequences(sequences: &[Vec<String>]) -> String {
    if sequences.iter().all(Vec::is_empty) {
        return "none".into();
    }
    sequences
        .iter()
        .map(|s| format!("[{}]", s.join(",")))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The AI's format as the dictionary writes it (`N14,csum`, `[X..17]`).
pub fn format_of(ai: &Ai) -> String {
    ai.components
        .iter()
        .map(|c| {
            let set = match c.charset {
                Charset::Numeric => 'N',
                Charset::Cset82 => 'X',
                Charset::Cset39 => 'Y',
                Charset::Base64Url => 'Z',
            };
            let len = if c.min == c.max {
                c.max.to_string()
            } else {
                format!("..{}", c.max)
            };
            if c.optional {
                format!("[{set}{len}]")
            } else {
                format!("{set}{len}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Checks a decoded value against its AI's components and their linters.
pub fn check_value(ai: &Ai, value: &str) -> Result<(), DigitalLinkError> {
    let fail = |rule: String| DigitalLinkError::Value {
        ai: ai.code.clone(),
        title: ai.title.clone(),
        rule,
    };
    let format = format_of(ai);
    if let Some(c) = value.chars().find(|c| !c.is_ascii()) {
        return Err(fail(format!(
            "{c:?} is outside the GS1 character sets (format {format})"
        )));
    }
    let mut rest = value;
    for component in &ai.components {
        if rest.is_empty() {
            if component.optional {
                break;
            }
            return Err(fail(format!(
                "the value {value:?} is too short for {format}"
            )));
        }
        let take = if component.min == component.max {
            component.max
        } else {
            rest.len().min(component.max)
        };
        if rest.len() < take {
            return Err(fail(format!(
                "the value {value:?} is too short for {format}"
            )));
        }
        let (part, tail) = rest.split_at(take);
        check_component(component, part).map_err(fail)?;
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(fail(format!(
            "the value {value:?} is too long for {format}"
        )));
    }
    Ok(())
}

fn check_component(component: &Component, part: &str) -> Result<(), String> {
    if part.len() < component.min {
        return Err(format!("{part:?} is shorter than {}", component.min));
    }
    if let Some(c) = part.chars().find(|c| !component.charset.contains(*c)) {
        return Err(format!(
            "{c:?} in {part:?} is not one of the {}",
            component.charset.name()
        ));
    }
    for linter in &component.linters {
        lint(linter, part)?;
    }
    Ok(())
}

/// Percent-decodes a path segment.
fn decode(raw: &str) -> Result<String, DigitalLinkError> {
    let bad = || DigitalLinkError::Escape(raw.chars().take(80).collect());
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// Appends `value` percent-encoded, keeping RFC 3986 unreserved characters.
fn encode_into(value: &str, out: &mut String) {
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(path: &str) -> String {
        parse(path).unwrap_err().to_string()
    }

    #[test]
    fn gtins_are_padded_to_14_and_paths_made_canonical() {
        for gtin in ["9506000134352", "09506000134352"] {
            let dl = parse(&format!("/01/{gtin}/10/LOT7/")).unwrap();
            assert_eq!(dl.path(), "/01/09506000134352/10/LOT7");
        }
        assert_eq!(
            parse("/01/036000291452").unwrap().path(),
            "/01/00036000291452"
        );
        assert_eq!(parse("/01/95050003").unwrap().path(), "/01/00000095050003");
        let dl = parse("/01/09506000134352/22/2A/10/AB%2F1/21/X%2712").unwrap();
        assert_eq!(dl.path(), "/01/09506000134352/22/2A/10/AB%2F1/21/X%2712");
        assert_eq!(dl.qualifiers[1].value, "AB/1");
        assert_eq!(
            dl.levels(),
            [
                "/01/09506000134352/22/2A/10/AB%2F1/21/X%2712",
                "/01/09506000134352/22/2A/10/AB%2F1",
                "/01/09506000134352/22/2A",
                "/01/09506000134352",
            ]
        );
        assert_eq!(
            parse("/01/09506000134352/235/TPX1")
                .unwrap()
                .qualifiers
                .len(),
            1
        );
    }

    #[test]
    fn every_primary_key_of_the_dictionary_parses() {
        for path in [
            "/00/106141411234567897",
            "/253/4602443000331XYZ",
            "/255/0811352010001",
            "/401/9506000ABC",
            "/402/95060001343520000",
            "/414/9506000134352/254/EXT1",
            "/415/9506000134352/8020/REF1",
            "/417/9506000134352",
            "/8003/09506000134352SER",
            "/8004/9506000XYZ/7040/1A2B",
            "/8006/095060001343520102/10/L1",
            "/8010/9506000ABC",
            "/8013/1987654Ad4X4bL5ttr2310c2K",
            "/8017/795260646700000008/8019/7",
            "/8018/795260646700000008",
        ] {
            let dl = parse(path).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(dl.path(), path);
        }
    }

    #[test]
    fn errors_name_the_broken_rule() {
        assert!(rule("/01/09506000134353").contains("check digit 3 is wrong"));
        assert!(rule("/01/09506000134").contains("too short for N14"));
        assert!(rule("/01/09506000134352/foo").contains("has no value"));
        assert!(rule("/gtin/09506000134352").contains("convenience alphas"));
        assert!(rule("/10/LOT7").contains("not a GS1 Digital Link primary key"));
        assert!(rule("/01/09506000134352/17/261231").contains("does not qualify"));
        assert!(rule("/01/09506000134352/21/S/10/L").contains("must follow one of the orders"));
        assert!(rule("/01/09506000134352/10/L/235/T").contains("no mixing"));
        assert!(rule("/01/09506000134352/10/L%ZZ").contains("percent escape"));
        assert!(rule("/01/09506000134352/10/L%C3%A9").contains("outside the GS1"));
        assert!(rule("/01/09506000134352/10/L%20").contains("not one of the GS1 character set 82"));
        assert!(rule(&format!("/01/09506000134352/10/{}", "A".repeat(21))).contains("too long"));
        assert!(rule("01/09506000134352").contains("starts with '/'"));
        assert!(rule("//01/09506000134352").contains("empty segment"));
        assert!(rule(&"/".repeat(600)).contains("at most"));
        assert!(rule("/8003/19506000134352").contains("must be 0"));
    }

    #[test]
    fn company_prefixes_sit_where_the_dictionary_puts_them() {
        let gtin = parse("/01/09506000134352").unwrap();
        let prefixes = gtin.company_prefixes();
        assert_eq!(prefixes.first().map(String::as_str), Some("950600013435"));
        assert_eq!(prefixes.last().map(String::as_str), Some("9506"));
        assert_eq!(prefixes.len(), 9);
        // GLN: the prefix starts at the first digit.
        let gln = parse("/414/9506000134352").unwrap();
        assert_eq!(gln.company_prefixes()[0], "950600013435");
        // GINC: digits only, up to the first other character.
        let ginc = parse("/401/9506000ABC").unwrap();
        assert_eq!(
            ginc.company_prefixes(),
            ["9506000", "950600", "95060", "9506"]
        );
        assert!(check_company_prefix("9506000").is_ok());
        assert!(check_company_prefix("950").is_err());
        assert!(check_company_prefix("95060001343521").is_err());
        assert!(check_company_prefix("9506x00").is_err());
    }
}
