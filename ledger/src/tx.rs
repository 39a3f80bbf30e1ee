//! Signed transactions and replay protection.
//!
//! A transaction carries one operation (opaque to the ledger, interpreted by the
//! [`StateMachine`](crate::StateMachine)), the signer's key id and encoded public key, a random
//! nonce and the last height that may include it. It is signed with Ed25519 over
//! `"sparkid/tx/v1\n" ‖ canonical JSON of the body`. The ledger refuses a transaction whose hash
//! it has already included, or whose `validUntil` has passed: a signed operation runs at most
//! once, and only soon after it was signed.

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

/// What a transaction says, without its signature.
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
        let body = serde_json::to_value(self).unwrap_or(Value::Null);
        let mut out = TX_DOMAIN.to_vec();
        out.extend_from_slice(canonical_json(&body).as_bytes());
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

impl Transaction {
    /// The transaction's canonical JSON.
    pub fn canonical(&self) -> String {
        canonical_json(&serde_json::to_value(self).unwrap_or(Value::Null))
    }

    /// The transaction hash: SHA-256 of its canonical JSON.
    pub fn hash(&self) -> Hash {
        Hash::of(&[self.canonical().as_bytes()])
    }

    /// Checks size, nonce and signature, and returns the transaction with its hash.
    pub fn verify(self) -> Result<VerifiedTransaction, TxError> {
        let canonical = self.canonical();
        if canonical.len() > MAX_TX_BYTES {
            return Err(TxError::TooLarge(canonical.len()));
        }
        let nonce = &self.body.nonce;
        if !(16..=64).contains(&nonce.len()) || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TxError::BadNonce);
        }
        let key = PublicKey::from_encoded(&self.body.public_key).map_err(TxError::BadPublicKey)?;
        key.verify(&self.body.signing_bytes(), &self.signature)
            .map_err(|_| TxError::BadSignature)?;
        let hash = Hash::of(&[canonical.as_bytes()]);
        Ok(VerifiedTransaction {
            tx: self,
            hash,
            key,
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
    let chunk = txs.len().div_ceil(threads);
    let mut chunks: Vec<Vec<Transaction>> = Vec::new();
    let mut iter = txs.into_iter().peekable();
    while iter.peek().is_some() {
        chunks.push(iter.by_ref().take(chunk).collect());
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| s.spawn(move || c.into_iter().map(Transaction::verify).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    })
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
