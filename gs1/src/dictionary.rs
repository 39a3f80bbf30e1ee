//! The GS1 Barcode Syntax Dictionary (`data/gs1-syntax-dictionary.txt`, Apache-2.0), parsed:
//! each Application Identifier's components (character set, length, optional, linters) and its
//! Digital Link role (`dlpkey`: a primary key and its ordered qualifier sequences).
//!
//! The file's own header is the grammar followed here: `AIs [Flags] Specification
//! [Attributes...] [# Title]`; a component is `Type[,linter...]` with `N`/`X`/`Y`/`Z`, a fixed
//! (`N14`) or variable (`X..20`) length, optional when bracketed (`[X..17]`, `[N3],iso3166`).

use std::sync::OnceLock;

use thiserror::Error;

/// The dictionary's text, embedded at build time.
pub const DICTIONARY_TEXT: &str = include_str!("../data/gs1-syntax-dictionary.txt");

/// A line of the dictionary that breaks the dictionary's own grammar.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("gs1-syntax-dictionary.txt line {line}: {message}")]
pub struct DictionaryError {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// A component's character set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// `N`: digits.
    Numeric,
    /// `X`: GS1 AI encodable character set 82.
    Cset82,
    /// `Y`: GS1 AI encodable character set 39.
    Cset39,
    /// `Z`: base64url (file-safe base64) characters.
    Base64Url,
}

impl Charset {
    /// Whether `c` belongs to the set.
    pub fn contains(self, c: char) -> bool {
        match self {
            Charset::Numeric => c.is_ascii_digit(),
            Charset::Cset82 => c.is_ascii_alphanumeric() || "!\"%&'()*+,-./:;<=>?_".contains(c),
            Charset::Cset39 => c.is_ascii_uppercase() || c.is_ascii_digit() || "#-/".contains(c),
            Charset::Base64Url => c.is_ascii_alphanumeric() || "-_=".contains(c),
        }
    }

    /// Its name as the rules cite it.
    pub fn name(self) -> &'static str {
        match self {
            Charset::Numeric => "digits",
            Charset::Cset82 => "GS1 character set 82",
            Charset::Cset39 => "GS1 character set 39",
            Charset::Base64Url => "base64url characters",
        }
    }
}

/// One component of an AI's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// Its characters.
    pub charset: Charset,
    /// Its shortest length.
    pub min: usize,
    /// Its longest length.
    pub max: usize,
    /// May be left out (only at the end of the value).
    pub optional: bool,
    /// The content checks named after it (`csum`, `gcppos1`, ...).
    pub linters: Vec<String>,
}

/// One Application Identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ai {
    /// The AI's digits (`01`, `8006`).
    pub code: String,
    /// Its title (`GTIN`).
    pub title: String,
    /// Flag `?`: permitted as a Digital Link data attribute (query string).
    pub dl_attribute: bool,
    /// Its value's components, in order.
    pub components: Vec<Component>,
    /// As a Digital Link primary key: its alternative qualifier sequences, each ordered (`01`:
    /// `[[22, 10, 21], [235]]`; a key without qualifiers has one empty sequence). None: not a
    /// primary key.
    pub dl_primary_key: Option<Vec<Vec<String>>>,
}

impl Ai {
    /// The offset in the value at which the GS1 Company Prefix starts, if the dictionary marks
    /// one (`gcppos1`: first character of its component; `gcppos2`: the second, after an
    /// indicator or extension digit), and the component that holds it.
    pub fn company_prefix_position(&self) -> Option<(usize, &Component)> {
        let mut offset = 0;
        for component in &self.components {
            if component.linters.iter().any(|l| l == "gcppos1") {
                return Some((offset, component));
            }
            if component.linters.iter().any(|l| l == "gcppos2") {
                return Some((offset + 1, component));
            }
            // Only fixed-length components can precede another (the dictionary's rule).
            offset += component.max;
        }
        None
    }

    /// The longest value the AI takes.
    pub fn max_len(&self) -> usize {
        self.components.iter().map(|c| c.max).sum()
    }
}

/// The parsed dictionary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dictionary {
    ais: Vec<Ai>,
}

impl Dictionary {
    /// The embedded dictionary, parsed once. The embedded text is tested to parse, so this is
    /// an empty dictionary (refusing every key) only if a build shipped a broken file.
    pub fn embedded() -> &'static Dictionary {
        static DICTIONARY: OnceLock<Dictionary> = OnceLock::new();
        DICTIONARY.get_or_init(|| {
            Dictionary::parse(DICTIONARY_TEXT).unwrap_or(Dictionary { ais: Vec::new() })
        })
    }

    /// Parses dictionary text.
    pub fn parse(text: &str) -> Result<Dictionary, DictionaryError> {
        let mut ais = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |message: String| DictionaryError { line, message };
            let (body, title) = match raw.split_once('#') {
                Some((b, t)) => (b, t.trim()),
                None => (raw, ""),
            };
            let mut tokens = body.split_whitespace().peekable();
            let Some(range) = tokens.next() else {
                continue;
            };
            let codes = expand_range(range).map_err(err)?;
            let mut dl_attribute = false;
            if let Some(flags) = tokens.next_if(|t| t.chars().all(is_flag)) {
                dl_attribute = flags.contains('?');
            }
            let mut components = Vec::new();
            while let Some(spec) = tokens.next_if(|t| is_component(t)) {
                components.push(parse_component(spec).map_err(err)?);
            }
            if components.is_empty() {
                return Err(err(format!("{range}: no specification")));
            }
            let mut dl_primary_key = None;
            for attribute in tokens {
                let (key, value) = attribute.split_once('=').unwrap_or((attribute, ""));
                if key == "dlpkey" {
                    let sequences = if value.is_empty() {
                        vec![Vec::new()]
                    } else {
                        value
                            .split('|')
                            .map(|seq| seq.split(',').map(str::to_string).collect())
                            .collect()
                    };
                    dl_primary_key = Some(sequences);
                }
            }
            for code in codes {
                ais.push(Ai {
                    code,
                    title: title.to_string(),
                    dl_attribute,
                    components: components.clone(),
                    dl_primary_key: dl_primary_key.clone(),
                });
            }
        }
        ais.sort_by(|a, b| a.code.cmp(&b.code));
        Ok(Dictionary { ais })
    }

    /// The AI with these digits.
    pub fn ai(&self, code: &str) -> Option<&Ai> {
        self.ais
            .binary_search_by(|a| a.code.as_str().cmp(code))
            .ok()
            .map(|i| &self.ais[i])
    }

    /// Every AI, by code.
    pub fn ais(&self) -> &[Ai] {
        &self.ais
    }

    /// The Digital Link primary keys, in dictionary (lexical) order.
    pub fn primary_keys(&self) -> impl Iterator<Item = &Ai> {
        self.ais.iter().filter(|a| a.dl_primary_key.is_some())
    }
}

fn is_flag(c: char) -> bool {
    "*!?\"$%&'()+,-./:;<=>@[\\]^_`{|}~".contains(c)
}

fn is_component(token: &str) -> bool {
    let t = token.strip_prefix('[').unwrap_or(token);
    let mut chars = t.chars();
    matches!(chars.next(), Some('N' | 'X' | 'Y' | 'Z'))
        && matches!(chars.next(), Some('0'..='9' | '.'))
}

/// `3100-3105` to each AI; `01` to itself.
fn expand_range(range: &str) -> Result<Vec<String>, String> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match range.split_once('-') {
        None if digits(range) => Ok(vec![range.to_string()]),
        Some((a, b)) if digits(a) && digits(b) && a.len() == b.len() => {
            let (lo, hi): (u32, u32) = (
                a.parse().map_err(|_| format!("bad AI range {range}"))?,
                b.parse().map_err(|_| format!("bad AI range {range}"))?,
            );
            if lo > hi || hi - lo > 100 {
                return Err(format!("bad AI range {range}"));
            }
            Ok((lo..=hi)
                .map(|n| format!("{n:0width$}", width = a.len()))
                .collect())
        }
        _ => Err(format!("{range:?} is not an AI or a range of AIs")),
    }
}

/// `N14,csum,gcppos2`, `X..20`, `[X..17]`, `[N3],iso3166`.
fn parse_component(spec: &str) -> Result<Component, String> {
    let optional = spec.starts_with('[');
    let cleaned: String = spec.chars().filter(|c| *c != '[' && *c != ']').collect();
    let mut parts = cleaned.split(',');
    let kind = parts.next().unwrap_or_default();
    let mut chars = kind.chars();
    let charset = match chars.next() {
        Some('N') => Charset::Numeric,
        Some('X') => Charset::Cset82,
        Some('Y') => Charset::Cset39,
        Some('Z') => Charset::Base64Url,
        _ => return Err(format!("{spec}: unknown character set")),
    };
    let length = chars.as_str();
    let (min, max) = match length.strip_prefix("..") {
        Some(n) => (1, n.parse().map_err(|_| format!("{spec}: bad length"))?),
        None => {
            let n: usize = length.parse().map_err(|_| format!("{spec}: bad length"))?;
            (n, n)
        }
    };
    if max == 0 {
        return Err(format!("{spec}: zero length"));
    }
    Ok(Component {
        charset,
        min,
        max,
        optional,
        linters: parts.map(str::to_string).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_dictionary_parses_with_its_primary_keys() {
        let d = Dictionary::parse(DICTIONARY_TEXT).unwrap();
        let gtin = d.ai("01").unwrap();
        assert_eq!(gtin.title, "GTIN");
        assert_eq!(
            gtin.dl_primary_key,
            Some(vec![
                vec!["22".to_string(), "10".into(), "21".into()],
                vec!["235".into()]
            ])
        );
        assert_eq!(gtin.components[0].charset, Charset::Numeric);
        assert_eq!((gtin.components[0].min, gtin.components[0].max), (14, 14));
        assert_eq!(gtin.company_prefix_position().map(|p| p.0), Some(1));
        let sscc = d.ai("00").unwrap();
        assert_eq!(sscc.dl_primary_key, Some(vec![vec![]]));
        let grai = d.ai("8003").unwrap();
        assert_eq!(grai.company_prefix_position().map(|p| p.0), Some(1));
        assert!(grai.components[2].optional);
        let gdti = d.ai("253").unwrap();
        assert_eq!(gdti.company_prefix_position().map(|p| p.0), Some(0));
        assert!(d.ai("3103").is_some() && d.ai("3106").is_none());
        assert!(d.ai("95").is_some());
        let keys: Vec<&str> = d.primary_keys().map(|a| a.code.as_str()).collect();
        assert_eq!(
            keys,
            [
                "00", "01", "253", "255", "401", "402", "414", "415", "417", "8003", "8004",
                "8006", "8010", "8013", "8017", "8018"
            ]
        );
        assert_eq!(Dictionary::embedded(), &d);
    }

    #[test]
    fn broken_lines_are_refused_with_their_number() {
        let e = Dictionary::parse("# c\n01 *? Q14 dlpkey\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(Dictionary::parse("0x *? N14\n").is_err());
        assert!(Dictionary::parse("01 *? dlpkey\n").is_err());
    }
}
