//! `registrar.submitters`: the allow-list that turns a public registrar into a permissioned
//! one, as a licensed chain expects. Without it (the default) anyone may submit.
//!
//! An entry is a public key (BIF encoded hex, `b065…`) or a did:bid DID. A transaction is
//! admitted when its key is a listed key, or when its signer is a listed DID and the key speaks
//! for it: an authentication or recovery key of the DID's current document, or, before the DID
//! exists, the key the DID derives from (its create). The signer id alone proves nothing (a
//! create names any key id it likes), hence the check against the document.
//!
//! This is a registrar policy, not a chain rule: it judges what this registrar is asked to
//! write, not the blocks other validators propose.

use std::collections::HashSet;

use sparkid_bid::{Bid, PublicKey};
use sparkid_ledger::{Ledger, TxBody};
use thiserror::Error;

use crate::state::{did_key, DidRecord};

/// A `registrar.submitters` entry that is neither a key nor a DID.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "registrar.submitters: {entry:?} is neither a BIF encoded public key (b065…) nor a did:bid \
     DID ({reason})"
)]
pub struct SubmitterError {
    /// The entry.
    pub entry: String,
    /// Why it was not read as a DID either.
    pub reason: String,
}

/// The submitters a permissioned registrar admits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Submitters {
    /// Listed keys, by their encoded bytes.
    keys: HashSet<Vec<u8>>,
    /// Listed DIDs, in their canonical text.
    dids: HashSet<String>,
}

impl Submitters {
    /// Reads the entries; none: no allow-list (a public registrar).
    pub fn parse(entries: &[String]) -> Result<Option<Submitters>, SubmitterError> {
        let mut submitters = Submitters::default();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            if let Ok(key) = PublicKey::from_encoded(entry) {
                submitters.keys.insert(key.encoded_bytes());
                continue;
            }
            let bid: Bid =
                entry
                    .parse()
                    .map_err(|e: sparkid_bid::AddressError| SubmitterError {
                        entry: entry.to_string(),
                        reason: e.to_string(),
                    })?;
            submitters.dids.insert(bid.to_string());
        }
        Ok((!submitters.keys.is_empty() || !submitters.dids.is_empty()).then_some(submitters))
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.keys.len() + self.dids.len()
    }

    /// Whether the list is empty (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `body`'s signer is a listed submitter, given the current state of `ledger`.
    pub fn admits(&self, body: &TxBody, ledger: &Ledger) -> bool {
        let Ok(key) = PublicKey::from_encoded(&body.public_key) else {
            return false;
        };
        let encoded = key.encoded_bytes();
        if self.keys.contains(&encoded) {
            return true;
        }
        let signer_did = body.signer.split('#').next().unwrap_or_default();
        let Ok(bid) = signer_did.parse::<Bid>() else {
            return false;
        };
        if !self.dids.contains(&bid.to_string()) {
            return false;
        }
        let record = ledger
            .get(&did_key(&bid))
            .ok()
            .flatten()
            .and_then(|text| serde_json::from_str::<DidRecord>(&text).ok());
        let Some(record) = record else {
            // Not on the ledger: only its own create, by the key it derives from.
            return bid.is_derived_from(&key);
        };
        if record.deactivated {
            return false;
        }
        let Ok(doc) = record.bid_document() else {
            return false;
        };
        doc.authentication
            .iter()
            .chain(doc.recovery())
            .filter_map(|id| doc.find_key(id))
            .any(|entry| hex::decode(&entry.public_key_hex).is_ok_and(|b| b == encoded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sparkid_bid::PrivateKey;

    #[test]
    fn entries_are_keys_or_dids_and_anything_else_is_refused() {
        let key = PrivateKey::generate().public_key();
        let did = Bid::derive(&key, None).unwrap().to_string();
        let parsed = Submitters::parse(&[key.to_encoded(), did.clone(), " ".into()])
            .unwrap()
            .unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(Submitters::parse(&[]).unwrap(), None);
        let error = Submitters::parse(&["alice".into()]).unwrap_err();
        assert_eq!(error.entry, "alice");
        assert!(
            error.to_string().contains("registrar.submitters"),
            "{error}"
        );
    }
}
