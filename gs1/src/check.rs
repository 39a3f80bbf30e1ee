//! The content checks ("linters") the dictionary names after a component, for the AIs a Digital
//! Link path carries: check digits (`csum`, `csumalpha`) and the small structural rules of the
//! keys and their qualifiers. A linter this build does not implement passes (it is listed in
//! [`UNCHECKED`]): the format check still applies, and nothing is guessed.

/// Linters that constrain nothing a resolver must refuse: GS1 Company Prefix positions (used
/// for delegation, not validation) and rules of data attributes the resolver passes on.
pub const UNCHECKED: &[&str] = &["gcppos1", "gcppos2"];

/// The GS1 mod-10 check digit of `digits` (the data, without the check digit): weights 3, 1,
/// 3, ... from the rightmost digit leftwards; (10 - sum mod 10) mod 10. None if not all digits.
pub fn gs1_check_digit(digits: &str) -> Option<u8> {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        let d = u32::from(b - b'0');
        sum += if i % 2 == 0 { 3 * d } else { d };
    }
    Some(((10 - sum % 10) % 10) as u8)
}

/// The characters of GS1 character set 82, in the order the alphanumeric check pair counts
/// them.
const CSET82: &str =
    "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
/// The 32 characters a check character pair is written in.
const CSET32: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
const PRIMES: [u32; 30] = [
    2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
    101, 103, 107, 109, 113,
];

/// The GS1 alphanumeric check character pair of `data` (without the pair): each character's
/// position in character set 82 times a prime weight (2 for the rightmost, then 3, 5, ...),
/// summed mod 1021, written as two characters of the 32-character set (high 5 bits, low 5).
pub fn gs1_check_pair(data: &str) -> Option<[char; 2]> {
    if data.len() > PRIMES.len() {
        return None;
    }
    let mut sum = 0u32;
    for (i, c) in data.chars().rev().enumerate() {
        let position = CSET82.find(c)? as u32;
        sum += position * PRIMES[i];
    }
    let sum = (sum % 1021) as usize;
    Some([char::from(CSET32[sum >> 5]), char::from(CSET32[sum & 31])])
}

/// Runs linter `name` on a component's text (already of the right set and length): why it
/// fails, if it does.
pub fn lint(name: &str, text: &str) -> Result<(), String> {
    match name {
        "csum" => {
            let (data, check) = text.split_at(text.len().saturating_sub(1));
            let expected = gs1_check_digit(data).ok_or("not all digits")?;
            if check.as_bytes().first() != Some(&(b'0' + expected)) {
                return Err(format!(
                    "check digit {check} is wrong: the GS1 mod-10 check digit of {data} is {expected}"
                ));
            }
            Ok(())
        }
        "csumalpha" => {
            let count = text.chars().count();
            if count < 3 {
                return Err("too short to carry a check character pair".into());
            }
            let split = text.char_indices().nth(count - 2).map_or(0, |(i, _)| i);
            let (data, pair) = text.split_at(split);
            let expected = gs1_check_pair(data).ok_or("not GS1 character set 82")?;
            let expected: String = expected.iter().collect();
            if pair != expected {
                return Err(format!(
                    "check character pair {pair} is wrong: the GS1 alphanumeric check pair of {data} is {expected}"
                ));
            }
            Ok(())
        }
        "zero" if text != "0" => Err("must be 0".into()),
        "nonzero" if text.bytes().all(|b| b == b'0') => Err("must not be zero".into()),
        "nozeroprefix" if text.len() > 1 && text.starts_with('0') => {
            Err("must not start with 0".into())
        }
        "hasnondigit" if text.bytes().all(|b| b.is_ascii_digit()) => {
            Err("must contain a character other than a digit".into())
        }
        "pieceoftotal" => {
            let (piece, total) = text.split_at(text.len() / 2);
            match (piece.parse::<u32>(), total.parse::<u32>()) {
                (Ok(p), Ok(t)) if p >= 1 && t >= 1 && p <= t => Ok(()),
                _ => Err(format!(
                    "{text} must be a piece number then a total, both from 1, piece ≤ total"
                )),
            }
        }
        "importeridx" => {
            let ok = text.len() == 1
                && text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if ok {
                Ok(())
            } else {
                Err("an importer index is one of 0-9, A-Z, a-z, '-', '_'".into())
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digits_follow_the_gs1_rule() {
        // GTIN-13 9506000134352 (GS1's own example), GTIN-12 036000291452.
        assert_eq!(gs1_check_digit("950600013435"), Some(2));
        assert_eq!(gs1_check_digit("03600029145"), Some(2));
        assert_eq!(gs1_check_digit("0950600013435"), Some(2));
        assert_eq!(gs1_check_digit("12a"), None);
        assert!(lint("csum", "09506000134352").is_ok());
        let e = lint("csum", "09506000134353").unwrap_err();
        assert!(
            e.contains("check digit 3 is wrong") && e.contains("is 2"),
            "{e}"
        );
    }

    #[test]
    fn the_alphanumeric_check_pair_matches_the_gmn_example() {
        // The GMN example of the GS1 General Specifications (AI 8013).
        assert!(lint("csumalpha", "1987654Ad4X4bL5ttr2310c2K").is_ok());
        assert!(lint("csumalpha", "1987654Ad4X4bL5ttr2310c2L").is_err());
    }

    #[test]
    fn structural_linters_name_their_rule() {
        assert!(lint("zero", "0").is_ok());
        assert_eq!(lint("zero", "1").unwrap_err(), "must be 0");
        assert!(lint("pieceoftotal", "0102").is_ok());
        assert!(lint("pieceoftotal", "0301").is_err());
        assert!(lint("nozeroprefix", "012").is_err());
        assert!(lint("hasnondigit", "123").is_err());
        assert!(lint("gcppos1", "anything").is_ok());
    }
}
