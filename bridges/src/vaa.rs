//! The VAA bridge: ISO/IEC 15459-style codes (`VAA` issuing agency code, then upper-case A-Z
//! and 0-9, at most 64 characters), resolved through the longest delegated company prefix,
//! whose record names the chain that holds its items. The grammar is `spec/vaa.md`; the
//! registrar's `normalize_identifier` is its one implementation.

use serde::Serialize;
use sparkid_registrar::namespace::{namespace_key, Kind, NamespaceRecord};

use crate::bridge::{map, read, Bridge, BridgeError, RecordSource};

/// The chain name of the main chain in VAA records.
pub const MAIN_CHAIN: &str = "main";

/// The VAA bridge.
#[derive(Debug, Clone, Copy, Default)]
pub struct VaaBridge;

impl Bridge for VaaBridge {
    fn system(&self) -> &'static str {
        "vaa"
    }

    fn kind(&self) -> Kind {
        Kind::Vaa
    }

    fn uri_scheme(&self) -> &'static str {
        "vaa"
    }
}

/// Checks a VAA code against the grammar; the error names the broken rule.
pub fn parse_vaa(code: &str) -> Result<String, BridgeError> {
    VaaBridge.normalize(code)
}

/// A bound VAA code, as `GET /1.0/vaa/{code}` renders it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VaaRecord {
    /// The code.
    pub code: String,
    /// The longest delegated company prefix covering it.
    pub company_prefix: String,
    /// The chain holding the prefix's items: `main` or an AC code.
    pub chain: String,
    /// The DID it names.
    pub did: String,
    /// The company prefix's owner, who bound it.
    pub owner: String,
    /// The binding's version (1 at the first bind).
    pub version_id: String,
    /// When first bound.
    pub created: String,
    /// When last changed.
    pub updated: String,
    /// The block that wrote this version.
    pub height: u64,
}

/// What a VAA code resolves to on this ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VaaOutcome {
    /// Bound here.
    Bound(VaaRecord),
    /// Its company prefix is delegated and its items live here, but the code is not bound
    /// (never, or no longer).
    NotBound {
        /// The code.
        code: String,
        /// The company prefix.
        company_prefix: String,
    },
    /// Its company prefix names another chain: resolve it there.
    Elsewhere {
        /// The code.
        code: String,
        /// The company prefix.
        company_prefix: String,
        /// The chain's AC code (or `main`).
        chain: String,
        /// That chain's resolver base URLs, from its AC-code delegation on this ledger.
        endpoints: Vec<String>,
    },
    /// No delegated company prefix covers it.
    NoPrefix {
        /// The code.
        code: String,
    },
}

impl VaaBridge {
    /// Resolves a VAA code on the ledger of chain `this_chain` (none: the main chain).
    pub fn lookup(
        &self,
        source: &dyn RecordSource,
        code: &str,
        this_chain: Option<&str>,
    ) -> Result<VaaOutcome, BridgeError> {
        let mapping = map(self, source, code)?;
        let code = mapping.identifier.clone();
        let Some(prefix) = mapping.namespace.clone() else {
            return Ok(VaaOutcome::NoPrefix { code });
        };
        let chain = prefix.chain.clone().unwrap_or_else(|| MAIN_CHAIN.into());
        if chain != this_chain.unwrap_or(MAIN_CHAIN) {
            let endpoints = if chain == MAIN_CHAIN {
                Vec::new()
            } else {
                read::<NamespaceRecord>(source, &namespace_key(Kind::Ac, &chain))?
                    .map(|ac| ac.endpoints)
                    .unwrap_or_default()
            };
            return Ok(VaaOutcome::Elsewhere {
                code,
                company_prefix: prefix.namespace,
                chain,
                endpoints,
            });
        }
        match (&mapping.binding, mapping.did()) {
            (Some(b), Some(did)) => Ok(VaaOutcome::Bound(VaaRecord {
                code,
                company_prefix: prefix.namespace,
                chain,
                did: did.to_string(),
                owner: prefix.owner,
                version_id: b.version_id.to_string(),
                created: b.created.clone(),
                updated: b.updated.clone(),
                height: b.height,
            })),
            _ => Ok(VaaOutcome::NotBound {
                code,
                company_prefix: prefix.namespace,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_names_its_rules() {
        assert_eq!(parse_vaa("VAA12345XYZ").unwrap(), "VAA12345XYZ");
        let rule = |c: &str| parse_vaa(c).unwrap_err().to_string();
        assert!(rule("vaa123").contains("upper-case A-Z and 0-9"));
        assert!(rule("VA-123").contains("upper-case A-Z and 0-9"));
        assert!(rule("ABC123").contains("issuing agency code VAA"));
        assert!(rule(&format!("VAA{}", "9".repeat(62))).contains("at most 64"));
        assert!(parse_vaa(&format!("VAA{}", "9".repeat(61))).is_ok());
    }
}
