//! The OID bridge: object identifiers (ITU-T X.660) bound to DIDs under delegated arcs, and their
//! ORS layout (ITU-T X.672 | ISO/IEC 29168-1): the DNS name of an OID in the ORS zone and the
//! NAPTR records a bound OID answers. Pure mapping and rendering, no I/O; the DNS door serves
//! the layout (`resolver/src/dns_zone.rs`), the HTTP door the record (`GET /1.0/oid/{dotted}`).
//! `spec/oid.md` is the layout's specification, with the source of every field.
//!
//! | owner name | what it names |
//! |---|---|
//! | `<arcs, last first>.<ors zone>` | the OID `<arcs>` (`7.1.3001.156.2.1.oid.sparkid.test` is `1.2.156.3001.1.7`) |
//!
//! The grammar is the registrar's (`sparkid_registrar::oid`); this module only lays it out.

use sparkid_registrar::namespace::{normalize_dns_name, normalize_identifier, Kind};
use sparkid_registrar::oid::MAX_OID_LEN;

use crate::bridge::{Bridge, BridgeError, RecordSource};
use crate::record::{lookup, Lookup};

/// The system's name.
pub const SYSTEM: &str = "oid";
/// The RR type of NAPTR records (RFC 3403).
pub const NAPTR_TYPE: u16 = 35;
/// The longest DNS name, without the final dot.
const MAX_NAME_LEN: usize = 253;
/// The longest DNS label.
const MAX_LABEL_LEN: usize = 63;
/// The longest ORS zone: the longest OID (100 bytes of arcs and dots) and one more dot must fit
/// in front of it.
pub const MAX_ORS_ZONE_LEN: usize = MAX_NAME_LEN - MAX_OID_LEN - 1;
/// The label under the service zone that holds the ORS zone by default (`oid.<service zone>`).
pub const DEFAULT_ORS_LABEL: &str = "oid";
/// The ORS service type of the answers (X.672's URI service, assigned by ITU-T after the 2010
/// edition: see `spec/oid.md`).
pub const ORS_SERVICE: &str = "ORS+UINF";
/// The NAPTR order of every answer: one rule set.
pub const NAPTR_ORDER: u16 = 100;
/// NAPTR preference of the DID itself.
pub const DID_PREFERENCE: u16 = 10;
/// NAPTR preference of the resolver URL that answers the DID.
pub const RESOLVER_PREFERENCE: u16 = 20;
/// The longest character-string (the NAPTR regexp is one).
const MAX_CHARACTER_STRING: usize = 255;

/// The OID bridge.
#[derive(Debug, Clone, Copy, Default)]
pub struct OidBridge;

impl Bridge for OidBridge {
    fn system(&self) -> &'static str {
        SYSTEM
    }

    fn kind(&self) -> Kind {
        Kind::Oid
    }

    fn uri_scheme(&self) -> &'static str {
        "urn:oid"
    }
}

impl OidBridge {
    /// Resolves an OID (dotted, or `urn:oid:` URI) on this ledger.
    pub fn lookup(&self, source: &dyn RecordSource, oid: &str) -> Result<Lookup, BridgeError> {
        lookup(self, source, oid)
    }
}

fn invalid(rule: impl Into<String>) -> BridgeError {
    BridgeError::Invalid {
        system: SYSTEM,
        rule: rule.into(),
    }
}

/// One NAPTR record of the ORS layout (RFC 3403 §4.1). Its replacement is always the root
/// (`.`): the records are terminal and rewrite by `regexp`, and RFC 3403 makes the two fields
/// exclusive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrsNaptr {
    /// Order: lower first.
    pub order: u16,
    /// Preference among equal orders: lower preferred.
    pub preference: u16,
    /// `U`: terminal, the regexp yields a URI (RFC 3404 §4.3).
    pub flags: &'static str,
    /// The ORS service field (`ORS+UINF`).
    pub services: &'static str,
    /// `!^.*$!<URI>!`: replaces the whole input with the URI.
    pub regexp: String,
}

impl OrsNaptr {
    /// The record's data in zone-file presentation format.
    pub fn presentation(&self) -> String {
        format!(
            "NAPTR {} {} \"{}\" \"{}\" \"{}\" .",
            self.order,
            self.preference,
            self.flags,
            self.services,
            self.regexp.replace('\\', "\\\\").replace('"', "\\\"")
        )
    }
}

/// The substitution expression that turns any input into `uri` (RFC 3402 §3.2: `!` as the
/// delimiter; a `\` or `!` inside the URI is escaped with `\`), or none when it does not fit a
/// character-string.
pub fn uri_regexp(uri: &str) -> Option<String> {
    let escaped = uri.replace('\\', "\\\\").replace('!', "\\!");
    let regexp = format!("!^.*$!{escaped}!");
    (regexp.len() <= MAX_CHARACTER_STRING).then_some(regexp)
}

/// The NAPTR records of an OID bound to `did`: `ORS+UINF` to the DID (preference
/// [`DID_PREFERENCE`]), and to the URL that resolves it (`resolver_url`, preference
/// [`RESOLVER_PREFERENCE`]), when known. A URI too long for a character-string is left out.
pub fn naptr_records(did: &str, resolver_url: Option<&str>) -> Vec<OrsNaptr> {
    let mut out = Vec::new();
    let targets = [
        (DID_PREFERENCE, Some(did)),
        (RESOLVER_PREFERENCE, resolver_url),
    ];
    for (preference, uri) in targets {
        if let Some(regexp) = uri.and_then(uri_regexp) {
            out.push(OrsNaptr {
                order: NAPTR_ORDER,
                preference,
                flags: "U",
                services: ORS_SERVICE,
                regexp,
            });
        }
    }
    out
}

/// What a name in the ORS zone stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrsName {
    /// The zone's apex.
    Apex,
    /// An OID of two arcs or more, canonical.
    Oid(String),
    /// A name the layout gives no meaning (a root arc, a non-canonical arc); it may still be
    /// the parent of a name that has one.
    Other,
}

/// The ORS zone: where OIDs have names, their arcs last first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrsZone {
    origin: String,
}

impl OrsZone {
    /// The zone `origin` (a DNS name of at most [`MAX_ORS_ZONE_LEN`] characters).
    pub fn new(origin: &str) -> Result<OrsZone, BridgeError> {
        let origin = normalize_dns_name(origin).map_err(|e| invalid(e.to_string()))?;
        if origin.len() > MAX_ORS_ZONE_LEN {
            return Err(invalid(format!(
                "an ORS zone has at most {MAX_ORS_ZONE_LEN} characters, so that every OID has a name"
            )));
        }
        Ok(OrsZone { origin })
    }

    /// The default ORS zone under a service zone: `oid.<service zone>`.
    pub fn under(service_zone: &str) -> Result<OrsZone, BridgeError> {
        let zone = normalize_dns_name(service_zone).map_err(|e| invalid(e.to_string()))?;
        OrsZone::new(&format!("{DEFAULT_ORS_LABEL}.{zone}"))
    }

    /// The zone's name, canonical (lower-case, no final dot).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether `name` (canonical text) is the zone's apex or below it.
    pub fn contains(&self, name: &str) -> bool {
        name == self.origin
            || name
                .strip_suffix(self.origin.as_str())
                .is_some_and(|head| head.ends_with('.'))
    }

    /// The name of an OID: its arcs last first, then the zone (X.672 §7.3's conversion of a
    /// numeric OID-IRI to an FQDN).
    pub fn name(&self, oid: &str) -> Result<String, BridgeError> {
        let oid = normalize_identifier(Kind::Oid, oid).map_err(|e| invalid(e.to_string()))?;
        if oid.split('.').any(|arc| arc.len() > MAX_LABEL_LEN) {
            return Err(invalid(format!(
                "{oid}: an arc of more than {MAX_LABEL_LEN} digits does not fit a DNS label, so it has no ORS name"
            )));
        }
        let mut labels: Vec<&str> = oid.split('.').rev().collect();
        labels.push(&self.origin);
        Ok(labels.join("."))
    }

    /// What `name` stands for in this zone, or none when it is not in it. Total: a name that
    /// is not an OID's canonical name is [`OrsName::Other`].
    pub fn classify(&self, name: &str) -> Option<OrsName> {
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        if name == self.origin {
            return Some(OrsName::Apex);
        }
        let relative = name.strip_suffix(&self.origin)?.strip_suffix('.')?;
        let oid: Vec<&str> = relative.split('.').rev().collect();
        let oid = oid.join(".");
        Some(match normalize_identifier(Kind::Oid, &oid) {
            Ok(canonical) if canonical == oid => OrsName::Oid(oid),
            _ => OrsName::Other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_have_reversed_arc_names_that_round_trip() {
        let zone = OrsZone::under("Sparkid.Test.").unwrap();
        assert_eq!(zone.origin(), "oid.sparkid.test");
        assert_eq!(
            zone.name("1.2.156.3001.1.7").unwrap(),
            "7.1.3001.156.2.1.oid.sparkid.test"
        );
        assert_eq!(
            zone.classify("7.1.3001.156.2.1.OID.sparkid.test."),
            Some(OrsName::Oid("1.2.156.3001.1.7".into()))
        );
        assert_eq!(zone.classify("oid.sparkid.test"), Some(OrsName::Apex));
        assert_eq!(zone.classify("1.oid.sparkid.test"), Some(OrsName::Other));
        assert_eq!(zone.classify("07.1.oid.sparkid.test"), Some(OrsName::Other));
        assert_eq!(zone.classify("x.1.oid.sparkid.test"), Some(OrsName::Other));
        assert_eq!(zone.classify("1.2.sparkid.test"), None);
        assert_eq!(zone.classify("xoid.sparkid.test"), None);
        assert!(zone.contains("2.1.oid.sparkid.test"));
        assert!(!zone.contains("xoid.sparkid.test"));
        let longest = format!("2.{}", "9".repeat(98));
        let name = OrsZone::new(&"a".repeat(MAX_ORS_ZONE_LEN))
            .unwrap_err()
            .to_string();
        assert!(name.contains("DNS name"), "{name}");
        let zone = OrsZone::new(&["a"; 76].join(".")).unwrap();
        assert!(zone.name(&longest).is_err(), "a 98-digit arc is no label");
        let deep = vec!["1"; 50].join(".");
        assert!(zone.name(&deep).unwrap().len() <= 253);
    }

    #[test]
    fn naptr_records_carry_the_did_and_the_resolver_url() {
        let did = "did:bid:ef18F9AVK4SQLZPRrPkrVWwp9kbpdXHx";
        let url = "https://id.example/1.0/identifiers/did:bid:ef18F9AVK4SQLZPRrPkrVWwp9kbpdXHx";
        let records = naptr_records(did, Some(url));
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].regexp, format!("!^.*$!{did}!"));
        assert_eq!(
            records[1].presentation(),
            format!("NAPTR 100 20 \"U\" \"ORS+UINF\" \"!^.*$!{url}!\" .")
        );
        assert_eq!(uri_regexp("a!b\\c").unwrap(), "!^.*$!a\\!b\\\\c!");
        assert!(uri_regexp(&"a".repeat(300)).is_none());
        assert_eq!(naptr_records(did, None).len(), 1);
        assert_eq!(OidBridge.uri("1.2.3").as_deref(), Some("urn:oid:1.2.3"));
        assert_eq!(
            OidBridge.identifier_of_uri("urn:oid:1.2.3").as_deref(),
            Some("1.2.3")
        );
    }
}
