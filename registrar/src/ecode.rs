//! The grammar of Ecodes (GB/T 31866, 物联网标识体系 物品编码Ecode): the canonical form of a
//! namespace and of an identifier, the namespaces that cover an identifier, and its alias URI
//! (`ecode:<code>`).
//!
//! Only the structure that public text confirms is checked (`spec/ecode.md`,
//! `shared/reference/identifier-systems.md` §2): an Ecode is V ‖ NSI ‖ MD — version, numbering
//! scheme identifier, master code. Versions 1 to 3 are Ecode proper; **V0** is reserved for GS1
//! compatibility (GB/T 31866-2023), so a V0 code is a GS1 key and is refused here with a
//! pointer to `--kind gs1`. The standard's per-version field widths and character sets are in
//! paid texts not available to this project, so:
//!
//! - the version is the first character (the versions are named V0–V3);
//! - the rest is decimal digits; a code with any other character is refused as something
//!   public text cannot validate, never guessed at;
//! - where NSI ends and MD begins is not decided by the grammar: the chain authority delegates
//!   `V‖NSI` (and issuers' longer prefixes) as namespaces, and a code is covered by its
//!   character prefixes, longest first, as VAA codes are.
//!
//! Lengths are capped before the text is looked at ([`MAX_ECODE_LEN`]).

use crate::state::NameError;

/// The longest Ecode accepted, in characters: a cap of this registry, set above every
/// decimal GS1 key (18 digits) and below a DNS label (63).
pub const MAX_ECODE_LEN: usize = 48;
/// The shortest namespace: a version and at least one digit of the scheme identifier.
pub const MIN_ECODE_NAMESPACE_LEN: usize = 2;
/// The shortest identifier: version, scheme identifier and master code, one digit each at least.
pub const MIN_ECODE_LEN: usize = 3;
/// The scheme of an Ecode alias. No URI scheme is registered for Ecodes (IANA), so this is the
/// project's own (`spec/ecode.md`).
pub const URI_SCHEME: &str = "ecode";

fn refuse(text: &str, rule: impl Into<String>) -> NameError {
    NameError::Ecode(text.chars().take(80).collect(), rule.into())
}

/// The canonical form of `text` with at least `min_len` characters, or the rule it breaks.
fn canonical(text: &str, min_len: usize) -> Result<String, NameError> {
    if text.len() > MAX_ECODE_LEN {
        return Err(refuse(
            text,
            format!("an Ecode is at most {MAX_ECODE_LEN} characters here"),
        ));
    }
    let Some(version) = text.chars().next() else {
        return Err(refuse(text, "an Ecode is not empty"));
    };
    match version {
        '0' => {
            let rule = match v0_gs1_path(text) {
                Ok(path) => format!(
                    "version V0 is reserved for GS1 compatibility (GB/T 31866-2023): this V0 code is the GS1 key {path}; bind it with --kind gs1 --identifier {path}, and GET /1.0/ecode/{text} answers from that binding"
                ),
                Err(NameError::Ecode(_, why)) => why,
                Err(other) => other.to_string(),
            };
            return Err(refuse(text, rule));
        }
        '1'..='3' => {}
        _ => {
            return Err(refuse(
                text,
                "an Ecode begins with its version, and the versions public text names are V0-V3 (V1-V3 here, V0 is GS1's)",
            ))
        }
    }
    if let Some(bad) = text.chars().find(|c| !c.is_ascii_digit()) {
        return Err(refuse(
            text,
            format!(
                "{bad:?} is not a decimal digit; the character sets of Ecode V1-V3 (GB/T 31866-2023) are not in public text, so only decimal codes are accepted, nothing is guessed"
            ),
        ));
    }
    if text.len() < min_len {
        return Err(refuse(
            text,
            format!(
                "at least {min_len} characters: version, scheme identifier (NSI) and master code"
            ),
        ));
    }
    Ok(text.to_string())
}

/// The lengths of the GTINs an EAN/UPC symbol carries (GB/T 15425: EAN-8, UPC-A, EAN-13), and
/// GTIN-14, which is a GTIN-13 with its indicator digit.
pub const V0_GTIN_LENGTHS: [usize; 4] = [8, 12, 13, 14];

/// The GS1 key (a canonical Digital Link path, `/01/<GTIN-14>`) that a V0 Ecode stands for, or
/// why it is refused.
///
/// Public text confirms that V0 is reserved for GS1 compatibility (GB/T 31866-2023) and that a
/// V0 code in a 1D barcode is stored without V and NSI, as an EAN/UPC symbol (GB/T 15425),
/// which carries a GTIN; it does not give V0's NSI in the text form, nor any GS1 key other
/// than the GTIN. So a V0 code is read as `0` followed directly by a GTIN (8, 12, 13 or 14
/// digits, its check digit checked); anything else is refused, saying that public text does
/// not confirm it (`spec/ecode.md`).
pub fn v0_gs1_path(code: &str) -> Result<String, NameError> {
    if code.len() > MAX_ECODE_LEN {
        return Err(refuse(
            code,
            format!("an Ecode is at most {MAX_ECODE_LEN} characters here"),
        ));
    }
    let Some(gtin) = code.strip_prefix('0') else {
        return Err(refuse(code, "a V0 Ecode begins with its version, 0"));
    };
    if !gtin.bytes().all(|b| b.is_ascii_digit()) || !V0_GTIN_LENGTHS.contains(&gtin.len()) {
        return Err(refuse(
            code,
            "version V0 is reserved for GS1 compatibility (GB/T 31866-2023); public text confirms only V0 codes whose barcode is an EAN/UPC symbol (GB/T 15425), so only 0 followed by a GTIN of 8, 12, 13 or 14 digits is read as one (V0's NSI layout and other GS1 keys are not in public text); bind other GS1 keys with --kind gs1",
        ));
    }
    sparkid_gs1::parse(&format!("/01/{gtin}"))
        .map(|link| link.path())
        .map_err(|e| refuse(code, format!("a V0 Ecode's GTIN {gtin}: {e}")))
}

/// The canonical form of an ecode namespace (`V‖NSI`, or an issuer's longer prefix), or why
/// it is refused.
pub fn normalize_namespace(namespace: &str) -> Result<String, NameError> {
    canonical(namespace, MIN_ECODE_NAMESPACE_LEN).map_err(|e| match e {
        NameError::Ecode(text, rule) if rule.starts_with("at least") => NameError::Ecode(
            text,
            format!("a namespace is at least {MIN_ECODE_NAMESPACE_LEN} characters: the version and the scheme identifier (NSI)"),
        ),
        other => other,
    })
}

/// The canonical form of an ecode identifier, or why it is refused.
pub fn normalize_identifier(identifier: &str) -> Result<String, NameError> {
    canonical(identifier, MIN_ECODE_LEN)
}

/// The namespaces that could cover a canonical identifier, longest first: its character
/// prefixes down to `V‖NSI`'s shortest ([`MIN_ECODE_NAMESPACE_LEN`]), the code itself first.
pub fn covering_namespaces(identifier: &str) -> Vec<String> {
    (MIN_ECODE_NAMESPACE_LEN..=identifier.len())
        .rev()
        // `get`: text that is not canonical (non-ASCII) cannot make it panic.
        .filter_map(|n| identifier.get(..n).map(str::to_string))
        .collect()
}

/// A canonical identifier as the URI `alsoKnownAs` lists.
pub fn uri(identifier: &str) -> String {
    format!("{URI_SCHEME}:{identifier}")
}

/// The canonical identifier a URI names, if it is a valid `ecode:` URI (any case of the scheme).
pub fn from_uri(uri: &str) -> Option<String> {
    let (scheme, rest) = uri.split_once(':')?;
    if !scheme.eq_ignore_ascii_case(URI_SCHEME) {
        return None;
    }
    normalize_identifier(rest).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> String {
        normalize_identifier(text).unwrap_err().to_string()
    }

    #[test]
    fn decimal_v1_to_v3_codes_are_accepted() {
        for code in ["10001000012345", "2000", "312"] {
            assert_eq!(normalize_identifier(code).unwrap(), code);
        }
        assert_eq!(normalize_namespace("10001").unwrap(), "10001");
    }

    #[test]
    fn v0_goes_to_gs1_and_the_unconfirmed_is_refused_saying_so() {
        assert!(rule("006901234567892").contains("--kind gs1"));
        assert!(rule("406901234567892").contains("versions public text names"));
        assert!(rule("1000A12").contains("not in public text"));
        assert!(rule("12").contains("at least 3"));
        assert!(rule("").contains("not empty"));
        assert!(rule(&"1".repeat(49)).contains("at most 48"));
        assert!(normalize_namespace("1")
            .unwrap_err()
            .to_string()
            .contains("scheme identifier"));
    }

    #[test]
    fn a_v0_code_is_0_then_a_gtin_and_nothing_else() {
        // 0 ‖ GTIN-13 9506000134352 is the GTIN-14 09506000134352.
        assert_eq!(v0_gs1_path("09506000134352").unwrap(), "/01/09506000134352");
        // 0 ‖ GTIN-8 and 0 ‖ UPC-A (GTIN-12) are padded to GTIN-14.
        assert_eq!(v0_gs1_path("095012346").unwrap(), "/01/00000095012346");
        assert_eq!(v0_gs1_path("0036000291452").unwrap(), "/01/00036000291452");
        let bad_check = v0_gs1_path("09506000134353").unwrap_err().to_string();
        assert!(bad_check.contains("check digit"), "{bad_check}");
        for unconfirmed in ["0123", "0950600013435212", "0abc12345678"] {
            let e = v0_gs1_path(unconfirmed).unwrap_err().to_string();
            assert!(e.contains("not in public text"), "{unconfirmed}: {e}");
        }
        assert!(rule("09506000134352").contains("/01/09506000134352"));
    }

    #[test]
    fn prefixes_cover_longest_first_and_the_alias_round_trips() {
        assert_eq!(covering_namespaces("10012"), ["10012", "1001", "100", "10"]);
        assert_eq!(uri("10012"), "ecode:10012");
        assert_eq!(from_uri("Ecode:10012").as_deref(), Some("10012"));
        assert_eq!(from_uri("ecode:0690"), None);
        assert_eq!(from_uri("vaa:10012"), None);
    }
}
