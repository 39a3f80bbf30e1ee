//! The resolver's [`AnswerDeriver`]: what the ledger writes at commit as a DID's answer record
//! ([`crate::answers`]): its resolution result rendered by the HTTP binding's own code from its
//! record and its reverse index, and [`install`], which has a ledger keep them.

use std::sync::Arc;

use sparkid_bid::PrivateKey;
use sparkid_ledger::{AnswerDeriver, Ledger, LedgerError, StateView};
use sparkid_registrar::namespace::alias_key;

use crate::answers::{self, LAYOUT, REPRESENTATION};
use crate::cache::ttl_of;

/// DIDs' rendered resolution results, as answer records.
pub struct ResolutionAnswers {
    version: String,
}

impl Default for ResolutionAnswers {
    fn default() -> ResolutionAnswers {
        ResolutionAnswers::new()
    }
}

impl ResolutionAnswers {
    /// The deriver, its version fingerprinted by a sample rendering.
    pub fn new() -> ResolutionAnswers {
        ResolutionAnswers {
            version: format!("resolution/{LAYOUT}/{}", fingerprint()),
        }
    }
}

impl AnswerDeriver for ResolutionAnswers {
    fn version(&self) -> String {
        self.version.clone()
    }

    fn subject(&self, key: &str) -> Option<String> {
        let did = key
            .strip_prefix("did/")
            .or_else(|| key.strip_prefix("aka/"))?;
        crate::warm::local_bid(did)?;
        Some(did.to_string())
    }

    fn derive(&self, subject: &str, state: &dyn StateView) -> Result<Option<Vec<u8>>, LedgerError> {
        let Some(record) = state.get(&format!("did/{subject}"))? else {
            return Ok(None);
        };
        let aka = state.get(&alias_key(subject))?.map(Arc::<str>::from);
        Ok(derive(subject, &record, aka.as_ref()))
    }
}

/// The answer record of `did` from its stored record and `aka/<did>` value; none when the
/// record does not parse (the general path words that) or the answer is not a plain 200.
fn derive(did: &str, record: &str, aka: Option<&Arc<str>>) -> Option<Vec<u8>> {
    let resolution = crate::warm::resolution_of(did, record, aka)?;
    let rendered = crate::binding::render_document(resolution, REPRESENTATION);
    answers::encode(&rendered, ttl_of(Some(record), u64::MAX))
}

/// Has `ledger` keep DIDs' answer records from now on; when its table is not current (never
/// built, another rendering, blocks committed without it), rebuilds it on a thread of its own
/// while the other paths answer. A failure costs speed, never answers: it is logged, and
/// answers are then not served.
pub fn install(ledger: &Arc<Ledger>) {
    match ledger.install_answers(Arc::new(ResolutionAnswers::new())) {
        Ok(true) => {}
        Ok(false) => {
            let ledger = ledger.clone();
            let spawned = std::thread::Builder::new()
                .name("answers-rebuild".into())
                .spawn(move || {
                    if let Err(error) = ledger.rebuild_answers() {
                        tracing::warn!(%error, "rebuilding the answers table failed; cold reads render");
                    }
                });
            if let Err(error) = spawned {
                tracing::warn!(%error, "no thread to rebuild the answers table; cold reads render");
            }
        }
        Err(error) => {
            tracing::warn!(%error, "the answers table could not be installed; cold reads render");
        }
    }
}

/// A fingerprint of the rendering: the answer of a fixed sample DID (a key, a service), hashed.
/// Stored answers made by a build whose rendering differs are rebuilt rather than served.
fn fingerprint() -> String {
    let key = PrivateKey::from_seed([7; 32]).public_key();
    let template = serde_json::json!({
        "service": [{ "id": "#hub", "type": "DIDCommMessaging",
                      "serviceEndpoint": "https://example.com/hub" }],
    });
    let Ok(document) = sparkid_registrar::api::new_document(&key, Some(template)) else {
        return "unrendered".into();
    };
    let did = document["id"].as_str().unwrap_or_default().to_string();
    let record = sparkid_registrar::DidRecord {
        document,
        created: "2026-01-01T00:00:00Z".into(),
        updated: "2026-01-02T00:00:00Z".into(),
        version_id: 2,
        deactivated: false,
        height: 9,
        operation: "update".into(),
    };
    let stored = serde_json::to_string(&record).unwrap_or_default();
    let rendered = derive(&did, &stored, None).unwrap_or_default();
    sparkid_ledger::Hash::of(&[rendered.as_slice()]).to_hex()[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_stable_and_names_a_rendering() {
        let version = ResolutionAnswers::new().version();
        assert_eq!(version, ResolutionAnswers::new().version());
        assert!(!version.ends_with("unrendered"), "{version}");
        let empty = sparkid_ledger::Hash::of(&[b"".as_slice()]).to_hex();
        assert!(
            !version.ends_with(&empty[..16]),
            "the sample did not render: {version}"
        );
    }

    #[test]
    fn only_this_ledgers_dids_are_subjects() {
        let d = ResolutionAnswers::new();
        let key = PrivateKey::generate().public_key();
        let did = sparkid_bid::Bid::derive(&key, None).unwrap().to_string();
        assert_eq!(d.subject(&format!("did/{did}")), Some(did.clone()));
        assert_eq!(d.subject(&alias_key(&did)), Some(did.clone()));
        let ac: sparkid_bid::AcCode = "by01".parse().unwrap();
        let sub = sparkid_bid::Bid::derive(&key, Some(ac))
            .unwrap()
            .to_string();
        assert_eq!(d.subject(&format!("did/{sub}")), None);
        assert_eq!(d.subject("vaa/VAA1"), None);
    }
}
