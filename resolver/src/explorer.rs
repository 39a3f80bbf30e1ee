//! The chain browser's read service: what each page of `/explorer/` shows, gathered from the
//! ledgers as plain values (serializable: the JSON form of each page is the value itself).
//!
//! Every list that grows with the chain is read a page at a time with a cursor taken from the
//! previous page (a height, a key, a position in a block), never an offset: a page costs the
//! same however far back it is. Nothing here renders HTML; the daemon's door does, and it
//! escapes every string this module returns.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use sparkid_bid::{AcCode, Bid};
use sparkid_ledger::{Block, Hash, Ledger, LedgerError};
use sparkid_registrar::anchor::{anchor_key, AnchorRecord};
use sparkid_registrar::namespace::{
    alias_key, binding_key, covering_namespaces, namespace_key, normalize_identifier,
    normalize_namespace, Alias, AliasRecord, BindingRecord, NamespaceRecord,
};
use sparkid_registrar::state::format_time;
use sparkid_registrar::{did_key, DidRecord, Kind};
use thiserror::Error;

/// Items per page unless the request asks for fewer.
pub const PAGE_SIZE: usize = 20;
/// The longest search query or path parameter read, in bytes: longer is refused before parsing.
pub const MAX_INPUT_BYTES: usize = 512;
/// Binding keys read for one page of a namespace's bindings (the namespace's own are a filter
/// of its kind's keys for kinds whose identifiers do not start with their namespace).
const MAX_SCANNED_BINDINGS: usize = 1000;

/// Why a page cannot be shown.
#[derive(Debug, Error)]
pub enum ExplorerError {
    /// The request is malformed (a cursor, a kind, an identifier that breaks its grammar).
    #[error("{0}")]
    BadRequest(String),
    /// Well formed, but the chain holds nothing under it.
    #[error("{0}")]
    NotFound(String),
    /// Reading the ledger failed.
    #[error("reading the ledger: {0}")]
    Ledger(#[from] LedgerError),
}

fn corrupt(key: &str, e: serde_json::Error) -> ExplorerError {
    ExplorerError::Ledger(LedgerError::Corrupt(format!("{key}: {e}")))
}

/// The chain browser over the main chain and the sub-chains this daemon hosts.
#[derive(Clone)]
pub struct Explorer {
    main: Arc<Ledger>,
    hosted: Vec<(AcCode, Arc<Ledger>)>,
}

/// Counts of what the chain holds (one read each).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// DIDs ever created on this chain.
    pub dids: u64,
    /// Namespaces ever delegated.
    pub namespaces: u64,
    /// Identifiers ever bound (unbound ones included).
    pub bindings: u64,
}

/// A block in a list.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockSummary {
    /// Its height.
    pub height: u64,
    /// Its header hash (hex).
    pub hash: String,
    /// Block time, `YYYY-MM-DDThh:mm:ssZ`.
    pub time: String,
    /// How many transactions it holds.
    pub tx_count: u32,
}

/// What a transaction's operation is about: the page it links to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Subject {
    /// A DID (its page).
    Did {
        /// The DID.
        did: String,
    },
    /// A delegated namespace.
    Namespace {
        /// Its kind.
        kind: Kind,
        /// The namespace.
        namespace: String,
    },
    /// A bound identifier.
    Identifier {
        /// Its kind.
        kind: Kind,
        /// The identifier.
        identifier: String,
    },
    /// A sub-chain (AC code).
    Subchain {
        /// The AC code.
        ac: String,
    },
}

/// A transaction in a list.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TxSummary {
    /// The transaction hash (hex).
    pub hash: String,
    /// The block it is in.
    pub height: u64,
    /// Its position in the block.
    pub index: u32,
    /// The operation's type (`create`, `bind` ...).
    pub operation: String,
    /// The key id that signed it.
    pub signer: String,
    /// What the operation is about.
    pub subjects: Vec<Subject>,
}

/// The home page.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Home {
    /// The chain id.
    pub chain_id: String,
    /// The head's height.
    pub height: u64,
    /// The head's time.
    pub time: String,
    /// The head's hash (hex).
    pub hash: String,
    /// What the chain holds.
    pub counts: Counts,
    /// The newest blocks.
    pub recent_blocks: Vec<BlockSummary>,
    /// The newest transactions.
    pub recent_transactions: Vec<TxSummary>,
    /// The namespace kinds (each links to its list).
    pub kinds: Vec<Kind>,
    /// The sub-chains this daemon hosts.
    pub hosted_subchains: Vec<String>,
    /// A follower's sync state (as `/healthz` gives it); none on a validator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync: Option<Value>,
}

/// A page of blocks, newest first.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockList {
    /// The blocks.
    pub blocks: Vec<BlockSummary>,
    /// The cursor of the next (older) page: `?before=` this height.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
}

/// A page of transactions, newest first.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TxList {
    /// The transactions.
    pub transactions: Vec<TxSummary>,
    /// The cursor of the next (older) page: `?before=<height>.<index>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A vote of a block's commit certificate.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Signer {
    /// The validator's encoded public key.
    pub validator: String,
    /// The consensus round of the vote.
    pub round: u64,
    /// Whether the key is one of the chain's validators.
    pub is_validator: bool,
}

/// A block page.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockPage {
    /// The sub-chain it belongs to; none on the main chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
    /// The chain id.
    pub chain_id: String,
    /// Its height.
    pub height: u64,
    /// Its header hash (hex).
    pub hash: String,
    /// The previous block's hash (hex).
    pub previous_hash: String,
    /// Block time.
    pub time: String,
    /// The Merkle root of its transactions (hex).
    pub tx_root: String,
    /// How many transactions it holds.
    pub tx_count: u32,
    /// The state root after it (hex).
    pub state_root: String,
    /// The proposing validator's key.
    pub proposer: String,
    /// The commit certificate's signers.
    pub signers: Vec<Signer>,
    /// How many votes certify a block.
    pub quorum: usize,
    /// Whether the certificate holds under the chain's validators; if not, why.
    pub certificate: Check,
    /// A page of its transactions, in block order.
    pub transactions: Vec<TxSummary>,
    /// The cursor of the next page of transactions: `?after=` this index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<u32>,
    /// Whether a newer block exists.
    pub has_next_block: bool,
}

/// The outcome of a check.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// Whether it holds.
    pub ok: bool,
    /// What was checked, or why it failed.
    pub detail: String,
}

/// A transaction page.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TxPage {
    /// The sub-chain it belongs to; none on the main chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
    /// The transaction hash (hex).
    pub hash: String,
    /// The block that includes it.
    pub height: u64,
    /// Its position in the block.
    pub index: u32,
    /// The block's time.
    pub time: String,
    /// The outcome: a transaction on the ledger was accepted and committed (refused ones are
    /// never stored).
    pub outcome: String,
    /// The operation's type.
    pub operation_type: String,
    /// The operation as signed.
    pub operation: Value,
    /// The key id that signed it.
    pub signer: String,
    /// The signer's encoded public key.
    pub public_key: String,
    /// The last height that could include it.
    pub valid_until: u64,
    /// What the operation is about.
    pub subjects: Vec<Subject>,
}

/// One version of a DID's record.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DidVersion {
    /// Its version id.
    pub version_id: u64,
    /// The block that wrote it.
    pub height: u64,
    /// The operation that wrote it.
    pub operation: String,
    /// Its `updated` time.
    pub updated: String,
    /// Whether the DID was deactivated by it.
    pub deactivated: bool,
}

/// An identifier bound to a DID.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BoundIdentifier {
    /// Its kind.
    pub kind: Kind,
    /// The identifier.
    pub identifier: String,
    /// Its URI form, when the kind has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Whether the DID's controller confirmed it (linked, or listed in `alsoKnownAs`).
    pub confirmed: bool,
}

/// A DID page.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DidPage {
    /// The DID.
    pub did: String,
    /// Its sub-chain; none on the main chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
    /// The current native document.
    pub document: Value,
    /// The current version id.
    pub version_id: u64,
    /// When it was created.
    pub created: String,
    /// When it last changed.
    pub updated: String,
    /// Whether it is deactivated.
    pub deactivated: bool,
    /// Its versions, newest first (a page).
    pub history: Vec<DidVersion>,
    /// The cursor of the next (older) page of versions: `?before=` this height.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
    /// The identifiers bound to it.
    pub bound: Vec<BoundIdentifier>,
    /// The record checked with its ledger proof against the newest certified header.
    pub verified: Verified,
}

/// The "verified" badge: the record's Merkle proof checked against a certified header.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verified {
    /// Whether the proof holds and proves the value shown.
    pub ok: bool,
    /// The height of the certified header the proof leads to.
    pub height: u64,
    /// That header's state root (hex).
    pub state_root: String,
    /// What holds, or why it does not.
    pub detail: String,
}

/// A page of namespaces of one kind.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceList {
    /// The kind.
    pub kind: Kind,
    /// The namespaces, in key order.
    pub namespaces: Vec<NamespaceRecord>,
    /// The cursor of the next page: `?after=` this namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// One version of a namespace or binding record.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordVersion<T> {
    /// The block that wrote it.
    pub height: u64,
    /// The record as written.
    pub record: T,
}

/// A namespace page.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespacePage {
    /// Its current delegation.
    pub record: NamespaceRecord,
    /// Its delegations, newest first.
    pub history: Vec<RecordVersion<NamespaceRecord>>,
    /// The identifiers bound under it (a page).
    pub bindings: Vec<BindingRecord>,
    /// The cursor of the next page of bindings: `?after=` this identifier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// An identifier page.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentifierPage {
    /// Its kind.
    pub kind: Kind,
    /// The identifier, canonical.
    pub identifier: String,
    /// Its URI form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// The longest delegated namespace covering it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<NamespaceRecord>,
    /// Its binding, current.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding: Option<BindingRecord>,
    /// Its bindings, newest first.
    pub history: Vec<RecordVersion<BindingRecord>>,
}

/// A sub-chain page.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubchainPage {
    /// The AC code.
    pub ac: String,
    /// Its delegation on the main chain (owner, resolver endpoints).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delegation: Option<NamespaceRecord>,
    /// Its latest anchor on the main chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anchor: Option<AnchorRecord>,
    /// Its anchors, newest first (a page).
    pub anchors: Vec<AnchorRecord>,
    /// The cursor of the next page of anchors: `?before=` this main-chain height.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
    /// The height of the hosted copy, when this daemon hosts it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosted_height: Option<u64>,
}

/// What a search found: the pages its input names.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResult {
    /// The input, trimmed.
    pub query: String,
    /// What the input was read as, and whether the chain holds it.
    pub understood: Vec<Reading>,
    /// The pages found.
    pub matches: Vec<Match>,
}

/// One way a search input was read.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reading {
    /// What it was read as (`a block height`, `a VAA code` ...).
    pub as_what: String,
    /// The canonical form it was read in.
    pub value: String,
    /// Whether the chain holds it.
    pub found: bool,
}

/// A page a search found.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Match {
    /// What it is.
    pub label: String,
    /// What the page is about.
    pub target: Target,
}

/// The page a link leads to; the door turns it into a URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "page", rename_all = "camelCase")]
pub enum Target {
    /// A block by height.
    Block {
        /// Its height.
        height: u64,
    },
    /// A transaction.
    Tx {
        /// Its hash (hex).
        hash: String,
    },
    /// Another page (a DID, a namespace, an identifier, a sub-chain).
    #[serde(untagged)]
    Subject(Subject),
}

impl Explorer {
    /// The browser over `main` and the hosted sub-chains.
    pub fn new(main: Arc<Ledger>, hosted: Vec<(AcCode, Arc<Ledger>)>) -> Explorer {
        Explorer { main, hosted }
    }

    /// The ledger of `chain` (an AC code hosted here; none: the main chain).
    pub fn ledger(&self, chain: Option<&str>) -> Result<&Arc<Ledger>, ExplorerError> {
        let Some(chain) = chain else {
            return Ok(&self.main);
        };
        let ac: AcCode = chain
            .parse()
            .map_err(|e| ExplorerError::BadRequest(format!("chain {chain:?}: {e}")))?;
        self.hosted
            .iter()
            .find(|(code, _)| *code == ac)
            .map(|(_, ledger)| ledger)
            .ok_or_else(|| {
                ExplorerError::NotFound(format!("this daemon does not host sub-chain {ac}"))
            })
    }

    /// The home page; `sync`: the follower's sync state, if this daemon follows.
    pub fn home(&self, sync: Option<Value>) -> Result<Home, ExplorerError> {
        let head = self.main.head();
        let recent_blocks = self.blocks(None, 10)?.blocks;
        let recent_transactions = self.transactions(None, 10)?.transactions;
        Ok(Home {
            chain_id: head.header.chain_id.clone(),
            height: head.header.height,
            time: format_time(head.header.time),
            hash: head.header.hash().to_hex(),
            counts: Counts {
                dids: self.main.key_count("did")?,
                namespaces: self.main.key_count("ns")?,
                bindings: self.main.key_count("bind")?,
            },
            recent_blocks,
            recent_transactions,
            kinds: Kind::ALL.to_vec(),
            hosted_subchains: self.hosted.iter().map(|(ac, _)| ac.to_string()).collect(),
            sync,
        })
    }

    /// Blocks, newest first, below height `before`.
    pub fn blocks(&self, before: Option<u64>, limit: usize) -> Result<BlockList, ExplorerError> {
        let top = match before {
            Some(h) => h.min(self.main.height() + 1),
            None => self.main.height() + 1,
        };
        let mut blocks = Vec::new();
        let mut height = top;
        while height > 0 && blocks.len() < limit {
            height -= 1;
            if let Some(block) = self.main.block(height)? {
                blocks.push(block_summary(&block));
            }
        }
        Ok(BlockList {
            next: (height > 0).then_some(height),
            blocks,
        })
    }

    /// Transactions, newest first, before position `before` (`(height, index)`).
    pub fn transactions(
        &self,
        before: Option<(u64, u32)>,
        limit: usize,
    ) -> Result<TxList, ExplorerError> {
        let head = self.main.height();
        let (mut height, mut end) = match before {
            Some((h, i)) if h <= head => (h, Some(i)),
            _ => (head, None),
        };
        let mut transactions = Vec::new();
        let mut next = None;
        loop {
            if let Some(block) = self.main.block(height)? {
                let end_index = end.map_or(block.transactions.len(), |i| {
                    (i as usize).min(block.transactions.len())
                });
                for index in (0..end_index).rev() {
                    if transactions.len() == limit {
                        next = Some(format!("{height}.{}", index + 1));
                        break;
                    }
                    transactions.push(tx_summary(&block, index));
                }
            }
            if next.is_some() || height == 0 {
                break;
            }
            height -= 1;
            end = None;
        }
        Ok(TxList { transactions, next })
    }

    /// A block by height or header hash (hex), with a page of its transactions from `after`.
    pub fn block(
        &self,
        chain: Option<&str>,
        id: &str,
        after: Option<u32>,
        limit: usize,
    ) -> Result<BlockPage, ExplorerError> {
        let ledger = self.ledger(chain)?;
        let height = if let Ok(height) = id.parse::<u64>() {
            height
        } else if let Some(hash) = Hash::from_hex(id) {
            ledger
                .find_block(&hash)?
                .ok_or_else(|| ExplorerError::NotFound(format!("no block has hash {id}")))?
        } else {
            return Err(ExplorerError::BadRequest(format!(
                "{id:?} is neither a block height nor a block hash (64 hex digits)"
            )));
        };
        let block = ledger.block(height)?.ok_or_else(|| {
            ExplorerError::NotFound(format!(
                "no block at height {height}: the head is at {}",
                ledger.height()
            ))
        })?;
        let header = &block.header;
        // The set of this height: it differs from genesis after a validator-set change.
        let validators = &ledger.validators_at(height);
        let signers = block
            .certificate
            .votes
            .iter()
            .map(|vote| Signer {
                validator: vote.validator.clone(),
                round: vote.round,
                is_validator: sparkid_bid::PublicKey::from_encoded(&vote.validator)
                    .map(|k| validators.keys().contains(&k))
                    .unwrap_or(false),
            })
            .collect();
        let certificate = match block.certificate.verify(header, validators) {
            Ok(()) => Check {
                ok: true,
                detail: format!(
                    "certified by {} of {} validators (quorum {})",
                    block.certificate.votes.len(),
                    validators.keys().len(),
                    validators.quorum()
                ),
            },
            Err(e) => Check {
                ok: false,
                detail: e.to_string(),
            },
        };
        let start = after.map_or(0, |i| i as usize + 1);
        let transactions: Vec<TxSummary> = (start..block.transactions.len())
            .take(limit)
            .map(|index| tx_summary(&block, index))
            .collect();
        let shown_to = start + transactions.len();
        Ok(BlockPage {
            chain: chain.map(str::to_string),
            chain_id: header.chain_id.clone(),
            height: header.height,
            hash: header.hash().to_hex(),
            previous_hash: header.previous_hash.to_hex(),
            time: format_time(header.time),
            tx_root: header.tx_root.to_hex(),
            tx_count: header.tx_count,
            state_root: header.state_root.to_hex(),
            proposer: header.proposer.clone(),
            signers,
            quorum: validators.quorum(),
            certificate,
            next: (shown_to < block.transactions.len() && shown_to > 0)
                .then(|| (shown_to - 1) as u32),
            transactions,
            has_next_block: header.height < ledger.height(),
        })
    }

    /// A transaction by hash (hex).
    pub fn transaction(&self, chain: Option<&str>, hash: &str) -> Result<TxPage, ExplorerError> {
        let ledger = self.ledger(chain)?;
        let parsed = Hash::from_hex(hash).ok_or_else(|| {
            ExplorerError::BadRequest(format!(
                "{hash:?} is not a transaction hash (64 hex digits)"
            ))
        })?;
        let (height, index) = ledger.find_transaction(&parsed)?.ok_or_else(|| {
            ExplorerError::NotFound(format!("no transaction {hash} on this chain"))
        })?;
        let block = ledger.block(height)?.ok_or_else(|| {
            ExplorerError::Ledger(LedgerError::Corrupt(format!(
                "transaction {hash} is indexed at height {height}, which has no block"
            )))
        })?;
        let tx = block.transactions.get(index as usize).ok_or_else(|| {
            ExplorerError::Ledger(LedgerError::Corrupt(format!(
                "transaction {hash} is indexed at {height}.{index}, past the block's end"
            )))
        })?;
        let body = &tx.body;
        Ok(TxPage {
            chain: chain.map(str::to_string),
            hash: parsed.to_hex(),
            height,
            index,
            time: format_time(block.header.time),
            outcome: "committed".into(),
            operation_type: operation_type(&body.operation),
            operation: body.operation.clone(),
            signer: body.signer.clone(),
            public_key: body.public_key.clone(),
            valid_until: body.valid_until,
            subjects: subjects(&body.operation),
        })
    }

    /// A DID's page: current document, a page of its versions below height `before`, its
    /// bound identifiers and the check of its ledger proof.
    pub fn did(
        &self,
        did: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<DidPage, ExplorerError> {
        let bid = parse_did(did)?;
        if bid.is_ac_code_only() {
            return Err(ExplorerError::BadRequest(format!(
                "{bid} names sub-chain {}: see its sub-chain page",
                bid.ac_code().map(|a| a.to_string()).unwrap_or_default()
            )));
        }
        let chain = bid.ac_code().map(|ac| ac.to_string());
        let ledger = match self.ledger(chain.as_deref()) {
            Ok(ledger) => ledger,
            Err(ExplorerError::NotFound(_)) => {
                return Err(ExplorerError::NotFound(format!(
                    "{bid} lives on sub-chain {}, which this daemon does not host: resolve it \
                     at /1.0/identifiers/{bid}",
                    chain.unwrap_or_default()
                )))
            }
            Err(e) => return Err(e),
        };
        let key = did_key(&bid);
        let proof = ledger.prove(&key)?;
        let Some(text) = proof.value.clone() else {
            return Err(ExplorerError::NotFound(format!(
                "{bid} is not on this chain"
            )));
        };
        let record: DidRecord = serde_json::from_str(&text).map_err(|e| corrupt(&key, e))?;
        let verified = {
            let anchor = &proof.anchor.header;
            let (ok, detail) = match proof.verify(ledger.validators()) {
                Ok(()) => (
                    true,
                    format!(
                        "the record's Merkle proof leads to the state root of block {}, which \
                         a quorum of the chain's validators certified",
                        anchor.height
                    ),
                ),
                Err(e) => (false, e.to_string()),
            };
            Verified {
                ok,
                height: anchor.height,
                state_root: anchor.state_root.to_hex(),
                detail,
            }
        };
        let mut history = Vec::new();
        let versions = ledger.history_page(&key, before, limit + 1)?;
        let more = versions.len() > limit;
        for (height, text) in versions.into_iter().take(limit) {
            let version: DidRecord = serde_json::from_str(&text).map_err(|e| corrupt(&key, e))?;
            history.push(DidVersion {
                version_id: version.version_id,
                height,
                operation: version.operation,
                updated: version.updated,
                deactivated: version.deactivated,
            });
        }
        let next = if more {
            history.last().map(|v| v.height)
        } else {
            None
        };
        let did_text = bid.to_string();
        let bound = match ledger.get(&alias_key(&did_text))? {
            None => Vec::new(),
            Some(text) => {
                let aliases: AliasRecord =
                    serde_json::from_str(&text).map_err(|e| corrupt(&alias_key(&did_text), e))?;
                let confirmed: Vec<Alias> = aliases
                    .confirmed(Some(&record.document))
                    .into_iter()
                    .cloned()
                    .collect();
                aliases
                    .aliases
                    .iter()
                    .map(|a| BoundIdentifier {
                        kind: a.kind,
                        identifier: a.identifier.clone(),
                        uri: a.uri(),
                        confirmed: confirmed.contains(a),
                    })
                    .collect()
            }
        };
        Ok(DidPage {
            did: did_text,
            chain,
            document: record.native_document(),
            version_id: record.version_id,
            created: record.created,
            updated: record.updated,
            deactivated: record.deactivated,
            history,
            next,
            bound,
            verified,
        })
    }

    /// The namespaces of `kind`, in key order, after `after`.
    pub fn namespaces(
        &self,
        kind: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<NamespaceList, ExplorerError> {
        let kind = parse_kind(kind)?;
        let prefix = namespace_key(kind, "");
        let after_key = after.map(|a| namespace_key(kind, a));
        let rows = self
            .main
            .keys_with_prefix(&prefix, after_key.as_deref(), limit + 1)?;
        let more = rows.len() > limit;
        let mut namespaces = Vec::new();
        for (key, value) in rows.into_iter().take(limit) {
            namespaces.push(
                serde_json::from_str::<NamespaceRecord>(&value).map_err(|e| corrupt(&key, e))?,
            );
        }
        let next = if more {
            namespaces.last().map(|n| n.namespace.clone())
        } else {
            None
        };
        Ok(NamespaceList {
            kind,
            namespaces,
            next,
        })
    }

    /// A namespace: its delegation, its history and a page of its bindings after `after`.
    pub fn namespace(
        &self,
        kind: &str,
        namespace: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<NamespacePage, ExplorerError> {
        let kind = parse_kind(kind)?;
        let namespace = normalize_namespace(kind, namespace)
            .map_err(|e| ExplorerError::BadRequest(e.to_string()))?;
        let key = namespace_key(kind, &namespace);
        let mut history = Vec::new();
        for (height, text) in self.main.history_page(&key, None, limit)? {
            history.push(RecordVersion {
                height,
                record: serde_json::from_str::<NamespaceRecord>(&text)
                    .map_err(|e| corrupt(&key, e))?,
            });
        }
        let Some(record) = history.first().map(|v| v.record.clone()) else {
            return Err(ExplorerError::NotFound(format!(
                "no {kind} namespace {namespace} is delegated on this chain"
            )));
        };
        // Identifiers of VAA and Handle begin with their namespace; the others are found among
        // all of their kind's, a bounded number of keys per page.
        let scan_prefix = match kind {
            Kind::Vaa | Kind::Handle => binding_key(kind, &namespace),
            _ => binding_key(kind, ""),
        };
        let mut cursor = after.map(|a| binding_key(kind, a));
        let mut bindings = Vec::new();
        let mut scanned = 0;
        let mut next = None;
        'pages: while scanned < MAX_SCANNED_BINDINGS {
            let rows = self
                .main
                .keys_with_prefix(&scan_prefix, cursor.as_deref(), 100)?;
            if rows.is_empty() {
                break;
            }
            for (row_key, value) in rows {
                scanned += 1;
                let binding: BindingRecord =
                    serde_json::from_str(&value).map_err(|e| corrupt(&row_key, e))?;
                cursor = Some(row_key);
                if binding.namespace == namespace {
                    if bindings.len() == limit {
                        // One more exists: the page ends at the last one shown.
                        next = bindings
                            .last()
                            .map(|b: &BindingRecord| b.identifier.clone());
                        break 'pages;
                    }
                    bindings.push(binding);
                }
            }
        }
        if next.is_none() && scanned >= MAX_SCANNED_BINDINGS {
            // The scan stopped before the kind's end: go on from where it stopped.
            let prefix = binding_key(kind, "");
            next = cursor.and_then(|c| c.strip_prefix(&prefix).map(str::to_string));
        }
        Ok(NamespacePage {
            record,
            history,
            bindings,
            next,
        })
    }

    /// An identifier: its namespace, its binding and the binding's history.
    pub fn identifier(
        &self,
        kind: &str,
        identifier: &str,
        limit: usize,
    ) -> Result<IdentifierPage, ExplorerError> {
        let kind = parse_kind(kind)?;
        let identifier = normalize_identifier(kind, identifier)
            .map_err(|e| ExplorerError::BadRequest(e.to_string()))?;
        let namespace = self.covering_namespace(kind, &identifier)?;
        let key = binding_key(kind, &identifier);
        let mut history = Vec::new();
        for (height, text) in self.main.history_page(&key, None, limit)? {
            history.push(RecordVersion {
                height,
                record: serde_json::from_str::<BindingRecord>(&text)
                    .map_err(|e| corrupt(&key, e))?,
            });
        }
        if namespace.is_none() && history.is_empty() {
            return Err(ExplorerError::NotFound(format!(
                "{kind} identifier {identifier} is neither bound nor under a delegated namespace"
            )));
        }
        Ok(IdentifierPage {
            kind,
            uri: Alias {
                kind,
                identifier: identifier.clone(),
            }
            .uri(),
            identifier,
            namespace,
            binding: history.first().map(|v| v.record.clone()),
            history,
        })
    }

    fn covering_namespace(
        &self,
        kind: Kind,
        identifier: &str,
    ) -> Result<Option<NamespaceRecord>, ExplorerError> {
        for ns in covering_namespaces(kind, identifier) {
            let key = namespace_key(kind, &ns);
            if let Some(text) = self.main.get(&key)? {
                return Ok(Some(
                    serde_json::from_str(&text).map_err(|e| corrupt(&key, e))?,
                ));
            }
        }
        Ok(None)
    }

    /// A sub-chain: its delegation, its anchors (a page below main-chain height `before`).
    pub fn subchain(
        &self,
        ac: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<SubchainPage, ExplorerError> {
        let code: AcCode = ac
            .parse()
            .map_err(|e| ExplorerError::BadRequest(format!("{ac:?} is not an AC code: {e}")))?;
        let ac = code.to_string();
        let ns_key = namespace_key(Kind::Ac, &ac);
        let delegation: Option<NamespaceRecord> = match self.main.get(&ns_key)? {
            Some(text) => Some(serde_json::from_str(&text).map_err(|e| corrupt(&ns_key, e))?),
            None => None,
        };
        let key = anchor_key(&ac);
        let rows = self.main.history_page(&key, before, limit + 1)?;
        let more = rows.len() > limit;
        let mut anchors = Vec::new();
        for (_, text) in rows.into_iter().take(limit) {
            anchors
                .push(serde_json::from_str::<AnchorRecord>(&text).map_err(|e| corrupt(&key, e))?);
        }
        let hosted_height = self
            .hosted
            .iter()
            .find(|(c, _)| *c == code)
            .map(|(_, l)| l.height());
        if delegation.is_none() && anchors.is_empty() && hosted_height.is_none() {
            return Err(ExplorerError::NotFound(format!(
                "sub-chain {ac} is not delegated on this chain"
            )));
        }
        let anchor = if before.is_none() {
            anchors.first().cloned()
        } else {
            match self.main.get(&key)? {
                Some(text) => Some(serde_json::from_str(&text).map_err(|e| corrupt(&key, e))?),
                None => None,
            }
        };
        Ok(SubchainPage {
            next: if more {
                anchors.last().map(|a| a.main_height)
            } else {
                None
            },
            ac,
            delegation,
            anchor,
            anchors,
            hosted_height,
        })
    }

    /// Reads a search input every way it can be read, and looks each reading up.
    pub fn search(&self, query: &str) -> Result<SearchResult, ExplorerError> {
        if query.len() > MAX_INPUT_BYTES {
            return Err(ExplorerError::BadRequest(format!(
                "a search is at most {MAX_INPUT_BYTES} bytes"
            )));
        }
        let q = query.trim();
        if q.is_empty() {
            return Err(ExplorerError::BadRequest(
                "type a DID, a BID, a transaction or block hash, a height or an identifier".into(),
            ));
        }
        let mut out = SearchResult {
            query: q.to_string(),
            understood: Vec::new(),
            matches: Vec::new(),
        };
        let reading = |out: &mut SearchResult, as_what: &str, value: String, found| {
            out.understood.push(Reading {
                as_what: as_what.to_string(),
                value,
                found,
            });
        };
        if let Ok(height) = q.parse::<u64>() {
            let found = height <= self.main.height();
            reading(&mut out, "a block height", height.to_string(), found);
            if found {
                out.matches.push(Match {
                    label: format!("block {height}"),
                    target: Target::Block { height },
                });
            }
        }
        if let Some(hash) = Hash::from_hex(q) {
            let tx = self.main.find_transaction(&hash)?;
            reading(&mut out, "a transaction hash", hash.to_hex(), tx.is_some());
            if tx.is_some() {
                out.matches.push(Match {
                    label: format!("transaction {hash}"),
                    target: Target::Tx {
                        hash: hash.to_hex(),
                    },
                });
            }
            let block = self.main.find_block(&hash)?;
            reading(&mut out, "a block hash", hash.to_hex(), block.is_some());
            if let Some(height) = block {
                out.matches.push(Match {
                    label: format!("block {height}"),
                    target: Target::Block { height },
                });
            }
        }
        // A DID, or a bare BID (the part after `did:bid:`).
        let as_did = if q.starts_with("did:") {
            q.to_string()
        } else {
            format!("did:bid:{q}")
        };
        if let Ok(bid) = as_did.parse::<Bid>() {
            if bid.is_ac_code_only() {
                let ac = bid.ac_code().map(|a| a.to_string()).unwrap_or_default();
                let found = self.main.get(&namespace_key(Kind::Ac, &ac))?.is_some()
                    || self.ledger(Some(&ac)).is_ok();
                reading(&mut out, "a sub-chain AC code", ac.clone(), found);
                if found {
                    out.matches.push(Match {
                        label: format!("sub-chain {ac}"),
                        target: Target::Subject(Subject::Subchain { ac }),
                    });
                }
            } else {
                let did = bid.to_string();
                let found = match self.ledger(bid.ac_code().map(|a| a.to_string()).as_deref()) {
                    Ok(ledger) => ledger.get(&did_key(&bid))?.is_some(),
                    Err(_) => false,
                };
                reading(&mut out, "a did:bid DID", did.clone(), found);
                if found {
                    out.matches.push(Match {
                        label: did.clone(),
                        target: Target::Subject(Subject::Did { did }),
                    });
                }
            }
        }
        // An alias URI (`vaa:…`, `hdl:…`, `urn:oid:…` …) names its kind; otherwise every kind
        // whose grammar accepts the input.
        let readings: Vec<(Kind, String)> = match Alias::from_uri(q) {
            Some(alias) => vec![(alias.kind, alias.identifier)],
            None => Kind::ALL
                .into_iter()
                .filter(|k| *k != Kind::Ac)
                .filter_map(|k| normalize_identifier(k, q).ok().map(|id| (k, id)))
                .collect(),
        };
        for (kind, identifier) in readings {
            let bound = self.main.get(&binding_key(kind, &identifier))?.is_some();
            reading(
                &mut out,
                &format!("{} identifier", kind_label(kind)),
                identifier.clone(),
                bound,
            );
            if bound {
                out.matches.push(Match {
                    label: format!("{} {identifier}", kind_label(kind)),
                    target: Target::Subject(Subject::Identifier {
                        kind,
                        identifier: identifier.clone(),
                    }),
                });
            }
        }
        for kind in Kind::ALL.into_iter().filter(|k| *k != Kind::Ac) {
            let Ok(namespace) = normalize_namespace(kind, q) else {
                continue;
            };
            let found = self.main.get(&namespace_key(kind, &namespace))?.is_some();
            if found {
                reading(
                    &mut out,
                    &format!("{} namespace", kind_label(kind)),
                    namespace.clone(),
                    true,
                );
                out.matches.push(Match {
                    label: format!("{} namespace {namespace}", kind_label(kind)),
                    target: Target::Subject(Subject::Namespace { kind, namespace }),
                });
            }
        }
        Ok(out)
    }
}

/// How a kind is named to people.
pub fn kind_label(kind: Kind) -> &'static str {
    match kind {
        Kind::Vaa => "VAA",
        Kind::Handle => "Handle",
        Kind::Dns => "DNS",
        Kind::Ac => "AC code",
        Kind::Oid => "OID",
        Kind::Gs1 => "GS1",
        Kind::Ecode => "Ecode",
    }
}

fn parse_kind(kind: &str) -> Result<Kind, ExplorerError> {
    kind.parse::<Kind>()
        .map_err(|e| ExplorerError::BadRequest(e.to_string()))
}

fn parse_did(did: &str) -> Result<Bid, ExplorerError> {
    if did.len() > MAX_INPUT_BYTES {
        return Err(ExplorerError::BadRequest(format!(
            "a DID is at most {MAX_INPUT_BYTES} bytes"
        )));
    }
    let text = if did.starts_with("did:") {
        did.to_string()
    } else {
        format!("did:bid:{did}")
    };
    text.parse::<Bid>()
        .map_err(|e| ExplorerError::BadRequest(format!("{did:?} is not a did:bid DID: {e}")))
}

fn block_summary(block: &Block) -> BlockSummary {
    BlockSummary {
        height: block.header.height,
        hash: block.header.hash().to_hex(),
        time: format_time(block.header.time),
        tx_count: block.header.tx_count,
    }
}

fn tx_summary(block: &Block, index: usize) -> TxSummary {
    let tx = &block.transactions[index];
    TxSummary {
        hash: tx.hash().to_hex(),
        height: block.header.height,
        index: index as u32,
        operation: operation_type(&tx.body.operation),
        signer: tx.body.signer.clone(),
        subjects: subjects(&tx.body.operation),
    }
}

/// The operation's `type`.
fn operation_type(operation: &Value) -> String {
    operation
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string()
}

/// The pages an operation is about, read from its members: the DID it writes, the namespace or
/// identifier it names, the sub-chain it anchors.
fn subjects(operation: &Value) -> Vec<Subject> {
    let text = |name: &str| operation.get(name).and_then(Value::as_str);
    let kind = text("kind").and_then(|k| k.parse::<Kind>().ok());
    let mut out = Vec::new();
    let did = text("did")
        .or_else(|| text("id"))
        .or_else(|| operation.get("document").and_then(|d| d["id"].as_str()));
    if let Some(did) = did {
        out.push(Subject::Did {
            did: did.to_string(),
        });
    }
    match (kind, text("namespace"), text("identifier")) {
        (Some(Kind::Ac), Some(ac), _) => out.push(Subject::Subchain { ac: ac.to_string() }),
        (Some(kind), Some(namespace), _) => out.push(Subject::Namespace {
            kind,
            namespace: namespace.to_string(),
        }),
        (Some(kind), None, Some(identifier)) => out.push(Subject::Identifier {
            kind,
            identifier: identifier.to_string(),
        }),
        _ => {}
    }
    if let Some(owner) = text("owner") {
        out.push(Subject::Did {
            did: owner.to_string(),
        });
    }
    if text("type") == Some("anchor") {
        if let Some(ac) = text("ac") {
            out.push(Subject::Subchain { ac: ac.to_string() });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_operation_links_to_what_it_is_about() {
        let did = "did:bid:efnVUgqQFfYeu97ABf6sGm3WFtVXHZB2";
        assert_eq!(
            subjects(&json!({"type": "create", "document": {"id": did}})),
            vec![Subject::Did { did: did.into() }]
        );
        assert_eq!(
            subjects(&json!({"type": "bind", "kind": "vaa", "identifier": "VAA1X", "did": did})),
            vec![
                Subject::Did { did: did.into() },
                Subject::Identifier {
                    kind: Kind::Vaa,
                    identifier: "VAA1X".into()
                }
            ]
        );
        assert_eq!(
            subjects(&json!({"type": "delegate", "kind": "ac", "namespace": "ab12", "owner": did})),
            vec![
                Subject::Subchain { ac: "ab12".into() },
                Subject::Did { did: did.into() }
            ]
        );
        assert!(subjects(&json!({"type": "weird"})).is_empty());
    }
}
