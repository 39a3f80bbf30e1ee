//! The Ecode bridge (GB/T 31866): Ecodes bound to DIDs under delegated `V‖NSI` prefixes,
//! answered over HTTP (`GET /1.0/ecode/{code}`). The grammar, and what it refuses because
//! public text cannot confirm it, is the registrar's (`sparkid_registrar::ecode`);
//! `spec/ecode.md` names the sources and the open questions.

use sparkid_registrar::namespace::Kind;

use crate::bridge::{Bridge, BridgeError, RecordSource};
use crate::record::{lookup, Lookup};

/// The system's name.
pub const SYSTEM: &str = "ecode";

/// The Ecode bridge.
#[derive(Debug, Clone, Copy, Default)]
pub struct EcodeBridge;

impl Bridge for EcodeBridge {
    fn system(&self) -> &'static str {
        SYSTEM
    }

    fn kind(&self) -> Kind {
        Kind::Ecode
    }

    fn uri_scheme(&self) -> &'static str {
        sparkid_registrar::ecode::URI_SCHEME
    }
}

impl EcodeBridge {
    /// Resolves an Ecode on this ledger.
    pub fn lookup(&self, source: &dyn RecordSource, code: &str) -> Result<Lookup, BridgeError> {
        lookup(self, source, code)
    }
}

/// The version of a canonical Ecode (its first character), `V1`..`V3`.
pub fn version(code: &str) -> Option<String> {
    code.chars().next().map(|v| format!("V{v}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v0_is_sent_to_gs1_and_aliases_are_ecode_uris() {
        let err = EcodeBridge.normalize("06901234567892").unwrap_err();
        assert!(err.to_string().contains("--kind gs1"), "{err}");
        assert_eq!(EcodeBridge.uri("10012").as_deref(), Some("ecode:10012"));
        assert_eq!(
            EcodeBridge.identifier_of_uri("ecode:10012").as_deref(),
            Some("10012")
        );
        assert_eq!(version("10012").as_deref(), Some("V1"));
    }
}
