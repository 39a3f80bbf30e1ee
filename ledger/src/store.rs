//! The ledger on disk: one redb database, one write transaction per block.
//!
//! A block, its state writes, the new tree nodes, the transaction index and the new head are
//! written in a single redb transaction committed with immediate durability (fsync): after a
//! crash the ledger is at the last committed block, never between two. Opening reads the head
//! and serves at once; nothing is replayed.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use sparkid_bid::PrivateKey;
use thiserror::Error;
use tracing::info;

use crate::block::{
    tx_root, Block, BlockHeader, CertifiedHeader, CommitCertificate, Genesis, ValidatorSet,
    GENESIS_KEY,
};
use crate::error::LedgerError;
use crate::hash::Hash;
use crate::machine::{ExecContext, StateMachine, StateView};
use crate::smt::{self, key_hash, Node, NodeRead, NodeStore, StateProof};
use crate::tx::{verify_all, VerifiedTransaction, MAX_VALIDITY_BLOCKS};

const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
const STATE: TableDefinition<&str, &str> = TableDefinition::new("state");
const HISTORY: TableDefinition<&str, &str> = TableDefinition::new("history");
const NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("nodes");
const TXS: TableDefinition<&[u8], (u64, u32)> = TableDefinition::new("txs");

/// The database file inside a data directory.
pub const DB_FILE: &str = "ledger.redb";
/// The most transactions one block holds.
pub const MAX_BLOCK_TXS: usize = 4096;

/// Why the ledger left a transaction out of a block.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TxRejection<R> {
    /// For another chain.
    #[error("the transaction is for chain {got:?}, this is chain {expected:?}")]
    WrongChain {
        /// This chain.
        expected: String,
        /// The transaction's.
        got: String,
    },
    /// `validUntil` has passed.
    #[error("the transaction expired: validUntil {valid_until} is before height {height}")]
    Expired {
        /// The transaction's last height.
        valid_until: u64,
        /// The block being built.
        height: u64,
    },
    /// `validUntil` is too far ahead.
    #[error(
        "validUntil {valid_until} is more than {MAX_VALIDITY_BLOCKS} blocks after height {height}"
    )]
    ValidityTooLong {
        /// The transaction's last height.
        valid_until: u64,
        /// The block being built.
        height: u64,
    },
    /// The block was full; submit again.
    #[error("the block is full ({MAX_BLOCK_TXS} transactions); submit again")]
    BlockFull,
    /// Already included (a replay).
    #[error("the transaction was already included at height {0}: a signed operation runs once")]
    Duplicate(u64),
    /// The state machine refused the operation.
    #[error("{0}")]
    Operation(R),
}

/// What happened to one transaction of a proposal.
#[derive(Debug, Clone)]
pub enum TxOutcome<R> {
    /// Committed in a block.
    Included {
        /// The block height.
        height: u64,
        /// Position in the block.
        index: u32,
        /// The transaction hash.
        hash: Hash,
    },
    /// Left out.
    Rejected {
        /// The transaction hash.
        hash: Hash,
        /// Why.
        reason: TxRejection<R>,
    },
}

/// The result of proposing a block.
#[derive(Debug)]
pub struct Proposal<R> {
    /// The committed block's certified header, if any transaction was included.
    pub block: Option<CertifiedHeader>,
    /// One outcome per proposed transaction, in order.
    pub outcomes: Vec<TxOutcome<R>>,
}

/// A record, its proof, and the certified header the proof is anchored to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordProof {
    /// The state key.
    pub key: String,
    /// Its value, or none if absent.
    pub value: Option<String>,
    /// The Merkle path.
    pub proof: StateProof,
    /// The header whose `stateRoot` the path leads to, and its certificate.
    pub anchor: CertifiedHeader,
}

/// Why a record proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordProofError {
    /// The certificate does not hold under the given validators.
    #[error("the block header is not certified by the validators: {0}")]
    Certificate(#[from] crate::block::CertificateError),
    /// The Merkle path does not lead to the certified root.
    #[error("the Merkle path does not hold: {0}")]
    Path(#[from] smt::ProofError),
}

impl RecordProof {
    /// Checks the proof with nothing but the validators' keys.
    pub fn verify(&self, validators: &ValidatorSet) -> Result<(), RecordProofError> {
        self.anchor
            .certificate
            .verify(&self.anchor.header, validators)?;
        self.proof.verify(
            &self.anchor.header.state_root,
            &self.key,
            self.value.as_deref().map(str::as_bytes),
        )?;
        Ok(())
    }
}

/// The embedded ledger.
pub struct Ledger {
    db: Database,
    dir: PathBuf,
    genesis: Genesis,
    validators: ValidatorSet,
    head: RwLock<CertifiedHeader>,
    writer: Mutex<()>,
    listeners: RwLock<Vec<CommitListener>>,
}

/// What a committed block changed: its height and the state keys it wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedBlock {
    /// The block's height.
    pub height: u64,
    /// Every state key the block wrote, sorted.
    pub keys: Vec<String>,
}

/// Called after each block commits (proposed here or applied from a peer).
pub type CommitListener = Box<dyn Fn(&CommittedBlock) + Send + Sync>;

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("dir", &self.dir)
            .field("chain", &self.genesis.chain_id)
            .finish()
    }
}

struct TableNodes<'a, T>(&'a mut T);

impl<T: ReadableTable<&'static [u8], &'static [u8]>> NodeRead for TableNodes<'_, T> {
    type Error = redb::StorageError;
    fn get_node(&mut self, hash: &Hash) -> Result<Option<Node>, Self::Error> {
        Ok(self
            .0
            .get(hash.0.as_slice())?
            .and_then(|g| Node::decode(g.value())))
    }
}

impl NodeStore for TableNodes<'_, redb::Table<'_, &'static [u8], &'static [u8]>> {
    fn put_node(&mut self, hash: Hash, node: &Node) -> Result<(), Self::Error> {
        self.0.insert(hash.0.as_slice(), node.encode().as_slice())?;
        Ok(())
    }
    fn remove_node(&mut self, hash: &Hash) -> Result<(), Self::Error> {
        self.0.remove(hash.0.as_slice())?;
        Ok(())
    }
}

fn tree_err<E: std::fmt::Display>(e: smt::TreeError<E>) -> LedgerError {
    LedgerError::Tree(e.to_string())
}

fn history_key(key: &str, height: u64) -> String {
    format!("{key}\u{0}{height:020}")
}

/// State as of the current point in a block: this block's writes over the stored state.
struct Overlay<'a, T> {
    table: &'a T,
    writes: &'a HashMap<String, String>,
}

impl<T: ReadableTable<&'static str, &'static str>> StateView for Overlay<'_, T> {
    fn get(&self, key: &str) -> Result<Option<String>, LedgerError> {
        if let Some(v) = self.writes.get(key) {
            return Ok(Some(v.clone()));
        }
        Ok(self.table.get(key)?.map(|g| g.value().to_string()))
    }
}

impl Ledger {
    /// Creates a ledger in `dir` from a genesis, certified by `signers` (a quorum of its
    /// validators).
    pub fn create(
        dir: &Path,
        genesis: Genesis,
        signers: &[&PrivateKey],
    ) -> Result<Ledger, LedgerError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(DB_FILE);
        if path.exists() {
            return Err(LedgerError::AlreadyExists(path.display().to_string()));
        }
        let validators = genesis
            .validator_set()
            .map_err(|e| LedgerError::InvalidGenesis(e.to_string()))?;
        if genesis.chain_id.is_empty() {
            return Err(LedgerError::InvalidGenesis("chainId is empty".into()));
        }
        let db = Database::create(&path)?;
        let genesis_json = genesis.canonical();
        let wtx = db.begin_write()?;
        let certified;
        {
            let mut nodes = wtx.open_table(NODES)?;
            let root = smt::update(
                &mut TableNodes(&mut nodes),
                Hash::ZERO,
                &[(key_hash(GENESIS_KEY), Hash::of(&[genesis_json.as_bytes()]))],
            )
            .map_err(tree_err)?;
            let header = BlockHeader {
                chain_id: genesis.chain_id.clone(),
                height: 0,
                previous_hash: Hash::ZERO,
                time: genesis.time,
                tx_root: Hash::of(&[genesis_json.as_bytes()]),
                tx_count: 0,
                state_root: root,
                proposer: genesis.validators[0].clone(),
            };
            let certificate = CommitCertificate::sign(&header, signers);
            certificate.verify(&header, &validators)?;
            let block = Block {
                header: header.clone(),
                transactions: vec![],
                certificate: certificate.clone(),
            };
            certified = CertifiedHeader {
                header,
                certificate,
            };
            wtx.open_table(STATE)?
                .insert(GENESIS_KEY, genesis_json.as_str())?;
            wtx.open_table(HISTORY)?
                .insert(history_key(GENESIS_KEY, 0).as_str(), genesis_json.as_str())?;
            wtx.open_table(BLOCKS)?
                .insert(0, json_bytes(&block).as_slice())?;
            wtx.open_table(TXS)?;
            let mut meta = wtx.open_table(META)?;
            meta.insert("genesis", genesis_json.as_str())?;
            meta.insert("head", json_string(&certified).as_str())?;
        }
        wtx.commit()?;
        info!(chain = %genesis.chain_id, dir = %dir.display(), "created ledger");
        Ok(Ledger {
            db,
            dir: dir.to_path_buf(),
            genesis,
            validators,
            head: RwLock::new(certified),
            writer: Mutex::new(()),
            listeners: RwLock::new(Vec::new()),
        })
    }

    /// Opens the ledger in `dir`.
    pub fn open(dir: &Path) -> Result<Ledger, LedgerError> {
        let path = dir.join(DB_FILE);
        if !path.exists() {
            return Err(LedgerError::NotFound(path.display().to_string()));
        }
        let db = Database::open(&path)?;
        let (genesis, head) = {
            let rtx = db.begin_read()?;
            let meta = rtx.open_table(META)?;
            let read = |k: &str| -> Result<String, LedgerError> {
                Ok(meta
                    .get(k)?
                    .ok_or_else(|| LedgerError::Corrupt(format!("meta.{k} missing")))?
                    .value()
                    .to_string())
            };
            let genesis: Genesis = parse_json(&read("genesis")?)?;
            let head: CertifiedHeader = parse_json(&read("head")?)?;
            (genesis, head)
        };
        let validators = genesis
            .validator_set()
            .map_err(|e| LedgerError::InvalidGenesis(e.to_string()))?;
        info!(chain = %genesis.chain_id, height = head.header.height, "opened ledger");
        Ok(Ledger {
            db,
            dir: dir.to_path_buf(),
            genesis,
            validators,
            head: RwLock::new(head),
            writer: Mutex::new(()),
            listeners: RwLock::new(Vec::new()),
        })
    }

    /// Whether `dir` holds a ledger.
    pub fn exists(dir: &Path) -> bool {
        dir.join(DB_FILE).exists()
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The validators.
    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    /// The newest certified header.
    pub fn head(&self) -> CertifiedHeader {
        self.head
            .read()
            .map(|h| h.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    /// The newest height.
    pub fn height(&self) -> u64 {
        self.head
            .read()
            .map(|h| h.header.height)
            .unwrap_or_else(|p| p.into_inner().header.height)
    }

    /// The current value of a state key.
    pub fn get(&self, key: &str) -> Result<Option<String>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(STATE)?;
        Ok(table.get(key)?.map(|g| g.value().to_string()))
    }

    /// Every value a key has had, oldest first, with the height that wrote it.
    pub fn history(&self, key: &str) -> Result<Vec<(u64, String)>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(HISTORY)?;
        let start = format!("{key}\u{0}");
        let end = format!("{key}\u{1}");
        let mut out = Vec::new();
        for entry in table.range(start.as_str()..end.as_str())? {
            let (k, v) = entry?;
            let height = k.value()[start.len()..]
                .parse::<u64>()
                .map_err(|_| LedgerError::Corrupt(format!("history key {:?}", k.value())))?;
            out.push((height, v.value().to_string()));
        }
        Ok(out)
    }

    /// The value of a key and its proof against the newest certified header, read from one
    /// consistent snapshot.
    pub fn prove(&self, key: &str) -> Result<RecordProof, LedgerError> {
        let rtx = self.db.begin_read()?;
        let anchor: CertifiedHeader = {
            let meta = rtx.open_table(META)?;
            let head = meta
                .get("head")?
                .ok_or_else(|| LedgerError::Corrupt("meta.head missing".into()))?;
            parse_json(head.value())?
        };
        let value = rtx
            .open_table(STATE)?
            .get(key)?
            .map(|g| g.value().to_string());
        let mut nodes = rtx.open_table(NODES)?;
        let proof = smt::prove(&mut TableNodes(&mut nodes), anchor.header.state_root, key)
            .map_err(tree_err)?;
        Ok(RecordProof {
            key: key.to_string(),
            value,
            proof,
            anchor,
        })
    }

    /// A block by height.
    pub fn block(&self, height: u64) -> Result<Option<Block>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(BLOCKS)?;
        match table.get(height)? {
            Some(bytes) => Ok(Some(
                serde_json::from_slice(bytes.value())
                    .map_err(|e| LedgerError::Corrupt(e.to_string()))?,
            )),
            None => Ok(None),
        }
    }

    /// Where a transaction was included: height and index.
    pub fn find_transaction(&self, hash: &Hash) -> Result<Option<(u64, u32)>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(TXS)?;
        Ok(table.get(hash.0.as_slice())?.map(|g| g.value()))
    }

    /// Executes `txs` in order on top of the head, and commits the block of those that the
    /// ledger and the state machine accept, with the certificate `certify` returns. Nothing is
    /// written when no transaction is accepted.
    pub fn propose<M: StateMachine>(
        &self,
        machine: &M,
        txs: Vec<VerifiedTransaction>,
        now: u64,
        certify: impl FnOnce(&BlockHeader) -> Result<CommitCertificate, LedgerError>,
    ) -> Result<Proposal<M::Rejection>, LedgerError> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let head = self.head();
        let height = head.header.height + 1;
        let time = now.max(head.header.time);
        let wtx = self.db.begin_write()?;
        let (outcomes, included, writes) = {
            let state = wtx.open_table(STATE)?;
            let index = wtx.open_table(TXS)?;
            self.execute(machine, txs, height, time, &state, &index)?
        };
        if included.is_empty() {
            wtx.abort()?;
            return Ok(Proposal {
                block: None,
                outcomes,
            });
        }
        let hashes: Vec<Hash> = included.iter().map(VerifiedTransaction::hash).collect();
        let header = self.write_state(&wtx, &head.header, height, time, &hashes, &writes)?;
        let certificate = certify(&header)?;
        certificate.verify(&header, &self.validators)?;
        let block = Block {
            header: header.clone(),
            transactions: included
                .into_iter()
                .map(VerifiedTransaction::into_inner)
                .collect(),
            certificate: certificate.clone(),
        };
        let certified = CertifiedHeader {
            header,
            certificate,
        };
        self.write_block(&wtx, &block, &hashes, &certified)?;
        wtx.commit()?;
        *self.head.write().unwrap_or_else(|p| p.into_inner()) = certified.clone();
        self.notify(height, &writes);
        Ok(Proposal {
            block: Some(certified),
            outcomes,
        })
    }

    /// Applies a block received from a peer: it must extend the head, carry a quorum
    /// certificate, and re-execute to exactly its state root, with every transaction accepted.
    pub fn apply_block<M: StateMachine>(
        &self,
        machine: &M,
        block: Block,
    ) -> Result<(), LedgerError> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let head = self.head();
        let header = &block.header;
        let bad = |reason: String| LedgerError::BadBlock {
            height: header.height,
            reason,
        };
        if header.chain_id != self.genesis.chain_id {
            return Err(bad(format!(
                "chain {:?} is not {:?}",
                header.chain_id, self.genesis.chain_id
            )));
        }
        if header.height != head.header.height + 1 {
            return Err(bad(format!("the head is at {}", head.header.height)));
        }
        if header.previous_hash != head.header.hash() {
            return Err(bad("previousHash is not the head's hash".into()));
        }
        if header.time < head.header.time {
            return Err(bad("time goes backwards".into()));
        }
        block.certificate.verify(header, &self.validators)?;
        let verified: Vec<VerifiedTransaction> = verify_all(block.transactions.clone())
            .into_iter()
            .collect::<Result<_, _>>()?;
        let hashes: Vec<Hash> = verified.iter().map(VerifiedTransaction::hash).collect();
        if header.tx_count as usize != hashes.len() || tx_root(&hashes) != header.tx_root {
            return Err(bad(
                "txRoot or txCount does not match the transactions".into()
            ));
        }
        let wtx = self.db.begin_write()?;
        let (outcomes, _, writes) = {
            let state = wtx.open_table(STATE)?;
            let index = wtx.open_table(TXS)?;
            self.execute(
                machine,
                verified,
                header.height,
                header.time,
                &state,
                &index,
            )?
        };
        for outcome in outcomes {
            if let TxOutcome::Rejected { hash, reason } = outcome {
                return Err(LedgerError::BadTransaction {
                    height: header.height,
                    hash,
                    reason: reason.to_string(),
                });
            }
        }
        let rebuilt = self.write_state(
            &wtx,
            &head.header,
            header.height,
            header.time,
            &hashes,
            &writes,
        )?;
        if rebuilt.state_root != header.state_root {
            return Err(bad(format!(
                "state root {} does not match the re-executed {}",
                header.state_root, rebuilt.state_root
            )));
        }
        let certified = CertifiedHeader {
            header: header.clone(),
            certificate: block.certificate.clone(),
        };
        self.write_block(&wtx, &block, &hashes, &certified)?;
        wtx.commit()?;
        *self.head.write().unwrap_or_else(|p| p.into_inner()) = certified;
        self.notify(header.height, &writes);
        Ok(())
    }

    /// Registers `listener` to hear of every block committed from now on, after its commit is
    /// durable and the head has moved (so a reader it triggers sees the new state).
    pub fn on_commit(&self, listener: CommitListener) {
        self.listeners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(listener);
    }

    fn notify(&self, height: u64, writes: &HashMap<String, String>) {
        let listeners = self.listeners.read().unwrap_or_else(|p| p.into_inner());
        if listeners.is_empty() {
            return;
        }
        let mut keys: Vec<String> = writes.keys().cloned().collect();
        keys.sort();
        let block = CommittedBlock { height, keys };
        for listener in listeners.iter() {
            listener(&block);
        }
    }

    #[allow(clippy::type_complexity)]
    fn execute<M: StateMachine, S, I>(
        &self,
        machine: &M,
        txs: Vec<VerifiedTransaction>,
        height: u64,
        time: u64,
        state: &S,
        index: &I,
    ) -> Result<
        (
            Vec<TxOutcome<M::Rejection>>,
            Vec<VerifiedTransaction>,
            HashMap<String, String>,
        ),
        LedgerError,
    >
    where
        S: ReadableTable<&'static str, &'static str>,
        I: ReadableTable<&'static [u8], (u64, u32)>,
    {
        let ctx = ExecContext {
            height,
            time,
            genesis: &self.genesis,
        };
        let mut writes: HashMap<String, String> = HashMap::new();
        let mut outcomes = Vec::with_capacity(txs.len());
        let mut included = Vec::new();
        let mut in_block: HashSet<Hash> = HashSet::new();
        for (position, vtx) in txs.into_iter().enumerate() {
            let hash = vtx.hash();
            if position >= MAX_BLOCK_TXS {
                outcomes.push(TxOutcome::Rejected {
                    hash,
                    reason: TxRejection::BlockFull,
                });
                continue;
            }
            let body = &vtx.tx().body;
            let reject = |reason| TxOutcome::Rejected { hash, reason };
            if body.chain_id != self.genesis.chain_id {
                outcomes.push(reject(TxRejection::WrongChain {
                    expected: self.genesis.chain_id.clone(),
                    got: body.chain_id.clone(),
                }));
                continue;
            }
            if body.valid_until < height {
                outcomes.push(reject(TxRejection::Expired {
                    valid_until: body.valid_until,
                    height,
                }));
                continue;
            }
            if body.valid_until > height + MAX_VALIDITY_BLOCKS {
                outcomes.push(reject(TxRejection::ValidityTooLong {
                    valid_until: body.valid_until,
                    height,
                }));
                continue;
            }
            if in_block.contains(&hash) {
                outcomes.push(reject(TxRejection::Duplicate(height)));
                continue;
            }
            if let Some(found) = index.get(hash.0.as_slice())? {
                outcomes.push(reject(TxRejection::Duplicate(found.value().0)));
                continue;
            }
            let view = Overlay {
                table: state,
                writes: &writes,
            };
            match machine.execute(&vtx, &ctx, &view)? {
                Ok(tx_writes) => {
                    writes.extend(tx_writes);
                    in_block.insert(hash);
                    outcomes.push(TxOutcome::Included {
                        height,
                        index: included.len() as u32,
                        hash,
                    });
                    included.push(vtx);
                }
                Err(rejection) => outcomes.push(reject(TxRejection::Operation(rejection))),
            }
        }
        Ok((outcomes, included, writes))
    }

    /// Writes state, history and tree nodes; returns the new header (proposer: the first
    /// validator's key unless this node signs as another).
    fn write_state(
        &self,
        wtx: &redb::WriteTransaction,
        previous: &BlockHeader,
        height: u64,
        time: u64,
        hashes: &[Hash],
        writes: &HashMap<String, String>,
    ) -> Result<BlockHeader, LedgerError> {
        let mut state = wtx.open_table(STATE)?;
        let mut history = wtx.open_table(HISTORY)?;
        let mut updates: Vec<(Hash, Hash)> = Vec::with_capacity(writes.len());
        for (key, value) in writes {
            state.insert(key.as_str(), value.as_str())?;
            history.insert(history_key(key, height).as_str(), value.as_str())?;
            updates.push((key_hash(key), Hash::of(&[value.as_bytes()])));
        }
        updates.sort_unstable();
        let mut nodes = wtx.open_table(NODES)?;
        let state_root = smt::update(&mut TableNodes(&mut nodes), previous.state_root, &updates)
            .map_err(tree_err)?;
        Ok(BlockHeader {
            chain_id: self.genesis.chain_id.clone(),
            height,
            previous_hash: previous.hash(),
            time,
            tx_root: tx_root(hashes),
            tx_count: hashes.len() as u32,
            state_root,
            proposer: self.genesis.validators[0].clone(),
        })
    }

    fn write_block(
        &self,
        wtx: &redb::WriteTransaction,
        block: &Block,
        hashes: &[Hash],
        certified: &CertifiedHeader,
    ) -> Result<(), LedgerError> {
        let height = block.header.height;
        wtx.open_table(BLOCKS)?
            .insert(height, json_bytes(block).as_slice())?;
        let mut index = wtx.open_table(TXS)?;
        for (i, hash) in hashes.iter().enumerate() {
            index.insert(hash.0.as_slice(), (height, i as u32))?;
        }
        wtx.open_table(META)?
            .insert("head", json_string(certified).as_str())?;
        Ok(())
    }

    /// Iterates all stored history as of a height: the value a key had before `height`.
    pub(crate) fn value_before(
        &self,
        key: &str,
        height: u64,
    ) -> Result<Option<String>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(HISTORY)?;
        let start = format!("{key}\u{0}");
        let end = history_key(key, height);
        let found = table
            .range(start.as_str()..end.as_str())?
            .next_back()
            .transpose()?;
        Ok(found.map(|(_, v)| v.value().to_string()))
    }

    /// The value a key was given at exactly `height`, if that block wrote it.
    pub fn value_written_at(&self, key: &str, height: u64) -> Result<Option<String>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(HISTORY)?;
        Ok(table
            .get(history_key(key, height).as_str())?
            .map(|g| g.value().to_string()))
    }

    /// Every current state entry, in key order.
    pub(crate) fn for_each_state(
        &self,
        mut f: impl FnMut(&str, &str) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(STATE)?;
        for entry in table.iter()? {
            let (k, v) = entry?;
            f(k.value(), v.value())?;
        }
        Ok(())
    }
}

fn json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn json_string<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn parse_json<T: for<'de> Deserialize<'de>>(text: &str) -> Result<T, LedgerError> {
    serde_json::from_str(text).map_err(|e| LedgerError::Corrupt(e.to_string()))
}
