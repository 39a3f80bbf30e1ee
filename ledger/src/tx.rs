//! Signed transactions and replay protection.
//!
//! A transaction carries one operation (opaque to the ledger, interpreted by the
//! [`StateMachine`](crate::StateMachine)), the signer's key id and encoded public key, a random
//! nonce and the last height that may include it. It is signed with Ed25519 over
//! `"sparkid/tx/v1\n" ‖ canonical JSON of the body`. The ledger refuses a transaction whose hash
//! it has already included, or whose `validUntil` has passed: a signed operation runs at most
//! once, and only soon after it was signed.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sparkid_bid::{canonical_json, KeyError, PrivateKey, PublicKey, Signature};
use thiserror::Error;

use crate::hash::Hash;

/// The signing domain of transactions.
pub const TX_DOMAIN: &[u8] = b"sparkid/tx/v1\n";
/// The largest canonical transaction accepted, in bytes.
pub const MAX_TX_BYTES: usize = 64 * 1024;
/// How far ahead of the next height `validUntil` may be.
pub const MAX_VALIDITY_BLOCKS: u64 = 100_000;

/// What a transaction says, without its signature. (Its canonical JSON is written member by
/// member in [`TxBody::canonical`]: a new member goes there too.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TxBody {
    /// The chain this transaction is for.
    pub chain_id: String,
    /// The key id that signs (`<bid>#key-1`).
    pub signer: String,
    /// The signer's BIF encoded public key (hex).
    pub public_key: String,
    /// Random hex, so that two identical operations are two transactions.
    pub nonce: String,
    /// The last block height that may include this transaction.
    pub valid_until: u64,
    /// The operation, interpreted by the state machine.
    pub operation: Value,
}

impl TxBody {
    /// The bytes that the signature covers.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let body = self.canonical();
        let mut out = Vec::with_capacity(TX_DOMAIN.len() + body.len());
        out.extend_from_slice(TX_DOMAIN);
        out.extend_from_slice(body.as_bytes());
        out
    }

    /// The body's canonical JSON, written field by field: the same text as `canonical_json` of
    /// the serialized body, without first copying the operation into a new JSON value (this runs
    /// for every transaction a block checks).
    pub fn canonical(&self) -> String {
        let operation = canonical_json(&self.operation);
        let mut out = String::with_capacity(operation.len() + 256);
        // The members in canonical (UTF-16 code unit) order.
        out.push_str("{\"chainId\":");
        push_json_string(&mut out, &self.chain_id);
        out.push_str(",\"nonce\":");
        push_json_string(&mut out, &self.nonce);
        out.push_str(",\"operation\":");
        out.push_str(&operation);
        out.push_str(",\"publicKey\":");
        push_json_string(&mut out, &self.public_key);
        out.push_str(",\"signer\":");
        push_json_string(&mut out, &self.signer);
        out.push_str(",\"validUntil\":");
        out.push_str(&self.valid_until.to_string());
        out.push('}');
        // What is signed must be all of the body: a member added to the struct and not here
        // fails every debug build's transactions.
        debug_assert_eq!(
            out,
            canonical_json(&serde_json::to_value(self).unwrap_or(Value::Null))
        );
        out
    }

    /// Signs the body.
    pub fn sign(self, key: &PrivateKey) -> Transaction {
        let signature = key.sign(&self.signing_bytes());
        Transaction {
            body: self,
            signature,
        }
    }

    /// Signs the body with `key` and returns it verified, without checking the signature just
    /// made: Ed25519 signing is deterministic and a signature made with a key verifies under
    /// its public key, so a writer that signs for itself (a dev registrar's internal secret
    /// mode) need not spend a verification on it. Everything else [`Transaction::verify`]
    /// checks is checked; a `key` that is not the body's `publicKey` is refused as a bad
    /// signature, as verifying would.
    pub fn sign_verified(self, key: &PrivateKey) -> Result<VerifiedTransaction, TxError> {
        let public = key.public_key();
        if public.to_encoded() != self.public_key.to_ascii_lowercase() {
            return Err(TxError::BadSignature);
        }
        let body = self.canonical();
        let mut signed = Vec::with_capacity(TX_DOMAIN.len() + body.len());
        signed.extend_from_slice(TX_DOMAIN);
        signed.extend_from_slice(body.as_bytes());
        let signature = key.sign(&signed);
        Transaction {
            body: self,
            signature,
        }
        .checked(body, Some(public))
    }

    /// Refuses a body whose transaction, once signed, could exceed [`MAX_TX_BYTES`]: a
    /// registrar asks for a signature only for a body that can still be committed. The bound
    /// counts the longest signature text (64 bytes of 0xff in Base58), so that no signature
    /// can push a body that passes here over the limit. Returns that bound, in bytes.
    pub fn check_size(&self) -> Result<usize, TxError> {
        let size = canonical_of(&self.canonical(), &Signature([0xff; 64])).len();
        if size > MAX_TX_BYTES {
            return Err(TxError::TooLarge(size));
        }
        Ok(size)
    }

    /// A fresh random nonce: 8 random bytes in hex, as BIF uses.
    pub fn random_nonce() -> String {
        hex::encode(rand::random::<[u8; 8]>())
    }
}

/// A signed transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transaction {
    /// What is signed.
    pub body: TxBody,
    /// Ed25519 over [`TxBody::signing_bytes`], BIF Base58.
    pub signature: Signature,
}

/// Why a transaction is not well formed or not signed by its key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TxError {
    /// Larger than [`MAX_TX_BYTES`].
    #[error("a transaction is at most {MAX_TX_BYTES} bytes of canonical JSON, this one has {0}")]
    TooLarge(usize),
    /// The nonce is not 8 to 64 hex digits.
    #[error("nonce must be 16 to 64 hexadecimal digits")]
    BadNonce,
    /// The public key cannot be read.
    #[error("publicKey: {0}")]
    BadPublicKey(KeyError),
    /// The signature does not verify.
    #[error("the transaction signature does not verify with its publicKey")]
    BadSignature,
}

/// Appends `s` as a JSON string, escaped exactly as `canonical_json` escapes strings.
fn push_json_string(out: &mut String, s: &str) {
    out.push_str(&canonical_json(&Value::String(s.to_owned())));
}

/// The canonical JSON of a transaction, given its body's: `body` sorts before `signature`.
fn canonical_of(body: &str, signature: &Signature) -> String {
    let signature = signature.to_base58();
    let mut out = String::with_capacity(body.len() + signature.len() + 24);
    out.push_str("{\"body\":");
    out.push_str(body);
    out.push_str(",\"signature\":");
    push_json_string(&mut out, &signature);
    out.push('}');
    out
}

impl Transaction {
    /// The transaction's canonical JSON.
    pub fn canonical(&self) -> String {
        canonical_of(&self.body.canonical(), &self.signature)
    }

    /// The transaction hash: SHA-256 of its canonical JSON.
    pub fn hash(&self) -> Hash {
        Hash::of(&[self.canonical().as_bytes()])
    }

    /// Checks size, nonce and signature, and returns the transaction with its hash.
    pub fn verify(self) -> Result<VerifiedTransaction, TxError> {
        // The body's canonical JSON is both what the signature covers and most of the
        // transaction's canonical JSON: write it once.
        let body = self.body.canonical();
        self.checked(body, None)
    }

    /// The checks of [`Transaction::verify`] on a body already written canonically (`body`).
    /// `signed_by`: the key that has just made the signature, which then needs no check;
    /// without it the key is read from the body and the signature checked.
    fn checked(
        self,
        body: String,
        signed_by: Option<PublicKey>,
    ) -> Result<VerifiedTransaction, TxError> {
        let canonical = canonical_of(&body, &self.signature);
        if canonical.len() > MAX_TX_BYTES {
            return Err(TxError::TooLarge(canonical.len()));
        }
        let nonce = &self.body.nonce;
        if !(16..=64).contains(&nonce.len()) || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TxError::BadNonce);
        }
        let key = match signed_by {
            Some(key) => key,
            None => {
                let key = PublicKey::from_encoded(&self.body.public_key)
                    .map_err(TxError::BadPublicKey)?;
                let mut signed = Vec::with_capacity(TX_DOMAIN.len() + body.len());
                signed.extend_from_slice(TX_DOMAIN);
                signed.extend_from_slice(body.as_bytes());
                key.verify(&signed, &self.signature)
                    .map_err(|_| TxError::BadSignature)?;
                key
            }
        };
        let hash = Hash::of(&[canonical.as_bytes()]);
        Ok(VerifiedTransaction {
            tx: self,
            hash,
            key,
            canonical,
        })
    }
}

/// A transaction whose signature has been checked. Only [`Transaction::verify`] makes one, so a
/// block proposer need not check it twice.
#[derive(Debug, Clone)]
pub struct VerifiedTransaction {
    tx: Transaction,
    hash: Hash,
    key: PublicKey,
    /// Kept from verification: the block stores exactly these bytes, without serializing the
    /// transaction (and Base58-encoding its signature) again.
    canonical: String,
}

impl VerifiedTransaction {
    /// The transaction.
    pub fn tx(&self) -> &Transaction {
        &self.tx
    }
    /// Its hash.
    pub fn hash(&self) -> Hash {
        self.hash
    }
    /// The signer's key.
    pub fn key(&self) -> &PublicKey {
        &self.key
    }
    /// The canonical JSON that the hash covers.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }
    /// Gives the transaction back.
    pub fn into_inner(self) -> Transaction {
        self.tx
    }
}

/// Verifies many transactions on all cores, in order.
pub fn verify_all(txs: Vec<Transaction>) -> Vec<Result<VerifiedTransaction, TxError>> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if txs.len() < 64 || threads == 1 {
        return txs.into_iter().map(Transaction::verify).collect();
    }
    // Small pieces, taken by whichever thread is free: on a shared machine a thread that waits
    // for a core leaves its share to the others instead of holding them up at the end.
    const PIECE: usize = 16;
    let mut pieces: Vec<(usize, Vec<Transaction>)> = Vec::new();
    let mut rest = txs.into_iter();
    let mut start = 0;
    loop {
        let piece: Vec<Transaction> = rest.by_ref().take(PIECE).collect();
        if piece.is_empty() {
            break;
        }
        let len = piece.len();
        pieces.push((start, piece));
        start += len;
    }
    // Taken from the end: reversed, they are taken in order.
    pieces.reverse();
    let queue = Mutex::new(pieces);
    let work = || {
        let mut done = Vec::new();
        loop {
            let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let Some((start, piece)) = next else {
                return done;
            };
            let verified: Vec<_> = piece.into_iter().map(Transaction::verify).collect();
            done.push((start, verified));
        }
    };
    let mut done = std::thread::scope(|s| {
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut all = work();
        for helper in helpers {
            all.extend(
                helper
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        all
    });
    done.sort_unstable_by_key(|(start, _)| *start);
    done.into_iter()
        .flat_map(|(_, verified)| verified)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(key: &PrivateKey) -> TxBody {
        TxBody {
            chain_id: "dev".into(),
            signer: "x#key-1".into(),
            public_key: key.public_key().to_encoded(),
            nonce: TxBody::random_nonce(),
            valid_until: 10,
            operation: serde_json::json!({"op": "noop"}),
        }
    }

    #[test]
    fn a_body_that_passes_the_size_check_verifies_once_signed_at_the_limit() {
        let key = PrivateKey::generate();
        let with_note = |n: usize| TxBody {
            operation: serde_json::json!({"op": "noop", "note": "x".repeat(n)}),
            ..body(&key)
        };
        // The largest note whose body passes: its signed transaction must fit too.
        let overhead = canonical_of(&with_note(0).canonical(), &Signature([0xff; 64])).len();
        let largest = MAX_TX_BYTES - overhead;
        assert!(with_note(largest).check_size().is_ok());
        assert!(with_note(largest).sign(&key).verify().is_ok());
        assert_eq!(
            with_note(largest + 1).check_size(),
            Err(TxError::TooLarge(MAX_TX_BYTES + 1))
        );
        // No 64-byte signature is longer in Base58 than the one the bound counts.
        assert_eq!(Signature([0xff; 64]).to_base58().len(), 88);
        assert!(Signature([0; 64]).to_base58().len() <= 88);
    }

    #[test]
    fn signed_transactions_verify_and_tampering_is_caught() {
        let key = PrivateKey::generate();
        let tx = body(&key).sign(&key);
        let text = serde_json::to_string(&tx).unwrap();
        let back: Transaction = serde_json::from_str(&text).unwrap();
        assert_eq!(back.hash(), tx.hash());
        assert!(back.clone().verify().is_ok());
        let mut bad = back.clone();
        bad.body.valid_until = 11;
        assert_eq!(bad.verify().unwrap_err(), TxError::BadSignature);
        let mut bad = back;
        bad.body.nonce = "xyz".into();
        assert_eq!(bad.verify().unwrap_err(), TxError::BadNonce);
    }

    #[test]
    fn the_written_canonical_json_is_the_generic_one() {
        let key = PrivateKey::generate();
        let odd = [
            "",
            "plain",
            "quote \" and backslash \\",
            "control \u{1} \n \t \u{7f}",
            "unicode é 中文 \u{1F600} \u{2028}",
        ];
        for (i, text) in odd.iter().enumerate() {
            let mut b = body(&key);
            b.chain_id = text.to_string();
            b.signer = format!("{text}#key-1");
            b.valid_until = u64::MAX - i as u64;
            b.operation = serde_json::json!({
                "z": [1, -2, 3.5, 1e300, null, true, {"b": text, "a": "x", "\u{e9}": 0, "\u{1F600}": 1, "\u{ff61}": 2}],
                "op": text,
            });
            let generic = canonical_json(&serde_json::to_value(&b).unwrap());
            assert_eq!(b.canonical(), generic);
            let mut signing = TX_DOMAIN.to_vec();
            signing.extend_from_slice(generic.as_bytes());
            assert_eq!(b.signing_bytes(), signing);
            let tx = b.sign(&key);
            let generic = canonical_json(&serde_json::to_value(&tx).unwrap());
            assert_eq!(tx.canonical(), generic);
            assert_eq!(tx.hash(), Hash::of(&[generic.as_bytes()]));
            let verified = tx.clone().verify().unwrap();
            assert_eq!(verified.canonical(), generic);
            assert_eq!(verified.hash(), tx.hash());
            let back: Transaction = serde_json::from_str(verified.canonical()).unwrap();
            assert_eq!(back, tx);
        }
    }

    #[test]
    fn a_body_signed_verified_is_the_transaction_verify_accepts() {
        let key = PrivateKey::generate();
        let b = body(&key);
        let verified = b.clone().sign_verified(&key).unwrap();
        let checked = b.clone().sign(&key).verify().unwrap();
        assert_eq!(verified.hash(), checked.hash());
        assert_eq!(verified.canonical(), checked.canonical());
        assert_eq!(verified.key(), checked.key());
        // A key that is not the body's would make a signature that never verifies.
        let other = PrivateKey::generate();
        assert_eq!(
            b.clone().sign_verified(&other).unwrap_err(),
            TxError::BadSignature
        );
        // The other checks still apply.
        let mut bad = b;
        bad.nonce = "xyz".into();
        assert_eq!(bad.sign_verified(&key).unwrap_err(), TxError::BadNonce);
    }

    #[test]
    fn verify_all_keeps_order() {
        let key = PrivateKey::generate();
        let mut txs: Vec<Transaction> = (0..100).map(|_| body(&key).sign(&key)).collect();
        txs[50].body.valid_until = 99;
        let hashes: Vec<Hash> = txs.iter().map(Transaction::hash).collect();
        let results = verify_all(txs);
        assert_eq!(results.len(), 100);
        for (i, r) in results.iter().enumerate() {
            match r {
                Ok(v) => assert_eq!(v.hash(), hashes[i]),
                Err(e) => assert!(i == 50 && *e == TxError::BadSignature),
            }
        }
    }
}
