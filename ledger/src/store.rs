//! The ledger on disk: one redb database, one write transaction per block.
//!
//! A block, its state writes, the changed tree nodes, the transaction index and the new head are
//! written in a single redb transaction committed with immediate durability (fsync): after a
//! crash the ledger is at the last committed block, never between two. Opening reads the head
//! and serves at once; nothing is replayed.
//!
//! What a block costs is mostly the pages its commit rewrites (redb copies every page it
//! changes, and keys like DIDs and hashes are random), so the layout keeps writes few: each state
//! write is one entry in the records table (a key's current value is its newest version, not a
//! second copy), the tree is stored by position in chunks of four levels, overwritten in place
//! with nothing to remove (see `chunk.rs`), and a block stores its transactions' canonical JSON
//! as they were verified. Execution runs on all cores with the outcome of running in order
//! ([`Ledger::propose`]), and the new tree is computed on one core while the records are
//! written on another.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Instant;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use sparkid_bid::PrivateKey;
use thiserror::Error;
use tracing::{debug, info};

use crate::answers::{AnswerDeriver, REBUILD_CHUNK};
use crate::block::{
    block_tx_bytes, tx_root, Block, BlockHeader, CertifiedHeader, CommitCertificate, Genesis,
    ValidatorSet, GENESIS_KEY, MAX_BLOCK_BYTES, MAX_BLOCK_TX_BYTES,
};
use crate::checked::CheckedBlock;
use crate::chunk::{ChunkSource, Chunks};
use crate::error::LedgerError;
use crate::hash::Hash;
use crate::machine::{ExecContext, StateMachine, StateView};
use crate::smt::{self, key_hash, Position, StateProof};
use crate::tx::{verify_all, Transaction, VerifiedTransaction, MAX_VALIDITY_BLOCKS};
use crate::validators::{
    self, merkle_path, ChangeError, Handoff, HandoffError, Schedule, ScheduledSet, ValidatorChange,
    VALIDATORS_KEY,
};

const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
/// Height → the block's JSON.
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");
/// Every version of every state key: `key NUL height` (20 digits) → value. A key's versions are
/// adjacent and in height order, so its current value is the last of its range.
const RECORDS: TableDefinition<&str, &str> = TableDefinition::new("records");
/// Tree nodes in chunks (see `chunk.rs`), by the [`Position`] of the chunk's root.
const TREE: TableDefinition<&[u8; 34], &[u8]> = TableDefinition::new("tree");
/// Transaction hash → (height, index), for replay protection.
const TXS: TableDefinition<&[u8; 32], (u64, u32)> = TableDefinition::new("txs");
/// Block hash → height, so that a block can be found by its hash (the chain browser's
/// `/explorer/block/<hash>`). Written in each block's commit.
const BLOCK_HASHES: TableDefinition<&[u8; 32], u64> = TableDefinition::new("block_hashes");
/// How many distinct state keys exist in each key class (the key up to its first `/`: `did`,
/// `ns`, `bind` ...), kept in each block's commit so that counting costs one read, not a scan.
const KEY_COUNTS: TableDefinition<&str, u64> = TableDefinition::new("key_counts");
/// The `meta` entry that says the block-hash index and the key counts are complete; a ledger
/// written before they existed is indexed once when it is opened.
const INDEXES_META: &str = "indexes";
/// Answer records by subject ([`crate::answers`]), written with the state they derive from.
const ANSWERS: TableDefinition<&str, &[u8]> = TableDefinition::new("answers");
/// Metadata: the version of the deriver that built the answers table (absent while it is
/// being built, or never built).
const ANSWERS_VERSION_META: &str = "answers_version";
/// Metadata: the height through which the answers were kept (a commit without a deriver
/// leaves it behind the head).
const ANSWERS_HEIGHT_META: &str = "answers_height";

/// The layout this build reads and writes, kept in `meta.format`.
const FORMAT: &str = "2";

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
    #[error(
        "the block is full ({MAX_BLOCK_TXS} transactions or {MAX_BLOCK_TX_BYTES} bytes); \
         submit again"
    )]
    BlockFull,
    /// Already included (a replay).
    #[error("the transaction was already included at height {0}: a signed operation runs once")]
    Duplicate(u64),
    /// A validator-set change the ledger refused (`chain/validators`).
    #[error("validator-set change refused: {0}")]
    Validators(ChangeError),
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
///
/// When the validator set changed at or below the anchor's height, `handoffs` carries each
/// change (oldest first) so that the genesis keys alone verify the anchor; a proof without
/// changes has no `handoffs` member, exactly as before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The validator-set changes from genesis to the anchor's height, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handoffs: Vec<Handoff>,
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
    /// A validator-set hand-off does not hold.
    #[error("{0}")]
    Handoff(#[from] HandoffError),
}

impl RecordProof {
    /// The validator sets the hand-offs lead to from `genesis`, each hand-off checked with
    /// the set before it.
    pub fn schedule(&self, genesis: &ValidatorSet) -> Result<Schedule, HandoffError> {
        let mut schedule = Schedule::new(genesis.clone());
        for handoff in &self.handoffs {
            schedule.extend(&self.anchor.header.chain_id, handoff)?;
        }
        Ok(schedule)
    }

    /// Checks the proof with nothing but the genesis validators' keys (and the hand-offs it
    /// carries).
    pub fn verify(&self, validators: &ValidatorSet) -> Result<(), RecordProofError> {
        let schedule = self.schedule(validators)?;
        self.anchor
            .certificate
            .verify(&self.anchor.header, schedule.at(self.anchor.header.height))?;
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
    /// The sets by height, pending changes included; kept with each committed change.
    schedule: RwLock<Schedule>,
    /// One per change in `schedule`, in the same order.
    handoffs: RwLock<Vec<(u64, Handoff)>>,
    head: RwLock<CertifiedHeader>,
    writer: Mutex<()>,
    listeners: RwLock<Vec<CommitListener>>,
    /// The answer deriver, once installed: every commit then keeps the answers table.
    answers: OnceLock<Arc<dyn AnswerDeriver>>,
    /// Whether the answers table matches the state, so that reads may be served from it.
    answers_ready: AtomicBool,
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

/// The first layout: the current state and every version in two tables, binary tree nodes by
/// hash, the index keyed by variable-length bytes.
mod format_1 {
    use redb::TableDefinition;

    pub const STATE: TableDefinition<&str, &str> = TableDefinition::new("state");
    pub const HISTORY: TableDefinition<&str, &str> = TableDefinition::new("history");
    pub const NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("nodes");
    pub const TXS: TableDefinition<&[u8], (u64, u32)> = TableDefinition::new("txs");
}

/// Rewrites a format-1 ledger in the current layout, in one transaction: the versions move to
/// the records table, the tree is rebuilt from the current state (and must reach the head's
/// state root), the index is re-keyed. Blocks and meta stay as they are.
fn migrate_from_format_1(db: &Database, head: &CertifiedHeader) -> Result<(), LedgerError> {
    info!(
        height = head.header.height,
        "migrating the ledger to format {FORMAT}"
    );
    let wtx = db.begin_write()?;
    {
        let history = wtx.open_table(format_1::HISTORY)?;
        let mut records = wtx.open_table(RECORDS)?;
        for entry in history.iter()? {
            let (k, v) = entry?;
            records.insert(k.value(), v.value())?;
        }
        let mut updates: Vec<(Hash, Hash)> = Vec::new();
        for entry in wtx.open_table(format_1::STATE)?.iter()? {
            let (k, v) = entry?;
            updates.push((key_hash(k.value()), Hash::of(&[v.value().as_bytes()])));
        }
        updates.sort_unstable();
        // In slices, so that the changed chunks held in memory stay few.
        let mut root = Hash::ZERO;
        for slice in updates.chunks(16 * 1024) {
            root = update_tree(&wtx, root, slice)?;
        }
        if root != head.header.state_root {
            return Err(LedgerError::Corrupt(format!(
                "the stored state hashes to {root}, the head's state root is {}",
                head.header.state_root
            )));
        }
        let mut index: Vec<([u8; 32], (u64, u32))> = Vec::new();
        for entry in wtx.open_table(format_1::TXS)?.iter()? {
            let (k, v) = entry?;
            let hash = k
                .value()
                .try_into()
                .map_err(|_| LedgerError::Corrupt("a transaction hash is 32 bytes".into()))?;
            index.push((hash, v.value()));
        }
        wtx.delete_table(format_1::TXS)?;
        let mut txs = wtx.open_table(TXS)?;
        for (hash, at) in &index {
            txs.insert(hash, *at)?;
        }
    }
    wtx.delete_table(format_1::STATE)?;
    wtx.delete_table(format_1::HISTORY)?;
    wtx.delete_table(format_1::NODES)?;
    wtx.open_table(META)?.insert("format", FORMAT)?;
    wtx.commit()?;
    Ok(())
}

/// Chunks of tree nodes read from the tree table.
struct TableChunks<'a, T>(&'a T);

impl<T: ReadableTable<&'static [u8; 34], &'static [u8]>> ChunkSource for TableChunks<'_, T> {
    type Error = redb::StorageError;
    fn with_chunk<R>(
        &mut self,
        id: &Position,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>, Self::Error> {
        Ok(self.0.get(&id.encode())?.map(|g| f(g.value())))
    }
}

/// Applies `updates` to the stored tree whose root is `root`; returns the new root. The changed
/// chunks are written once the update is done, in position order, so that consecutive inserts
/// land on the same pages.
fn update_tree(
    wtx: &redb::WriteTransaction,
    root: Hash,
    updates: &[(Hash, Hash)],
) -> Result<Hash, LedgerError> {
    let mut table = wtx.open_table(TREE)?;
    let mut chunks = Chunks::new(TableChunks(&table));
    let new_root = smt::update(&mut chunks, root, updates).map_err(tree_err)?;
    for (id, bytes) in chunks.into_written() {
        table.insert(&id.encode(), bytes.as_slice())?;
    }
    Ok(new_root)
}

fn tree_err<E: std::fmt::Display>(e: smt::TreeError<E>) -> LedgerError {
    LedgerError::Tree(e.to_string())
}

/// The records key of `key`'s version written at `height`.
fn history_key(key: &str, height: u64) -> String {
    format!("{key}\u{0}{height:020}")
}

/// The class a state key is counted in: the key up to its first `/` (all of it without one).
pub fn key_class(key: &str) -> &str {
    key.split_once('/').map_or(key, |(class, _)| class)
}

/// Indexes a ledger written before the block-hash index and the key counts existed, in one
/// transaction (a crash leaves it to be done again at the next open); nothing to do once
/// `meta.indexes` is set.
fn build_indexes(db: &Database) -> Result<(), LedgerError> {
    {
        let rtx = db.begin_read()?;
        if rtx.open_table(META)?.get(INDEXES_META)?.is_some() {
            return Ok(());
        }
    }
    info!("indexing block hashes and counting state keys (once)");
    /// Only the header of a stored block is read.
    #[derive(Deserialize)]
    struct HeaderOnly {
        header: BlockHeader,
    }
    let wtx = db.begin_write()?;
    {
        let blocks = wtx.open_table(BLOCKS)?;
        let mut hashes = wtx.open_table(BLOCK_HASHES)?;
        for entry in blocks.iter()? {
            let (height, bytes) = entry?;
            let block: HeaderOnly = serde_json::from_slice(bytes.value())
                .map_err(|e| LedgerError::Corrupt(format!("block {}: {e}", height.value())))?;
            hashes.insert(&block.header.hash().0, height.value())?;
        }
        let records = wtx.open_table(RECORDS)?;
        let mut counted: HashMap<String, u64> = HashMap::new();
        let mut last: Option<String> = None;
        for entry in records.iter()? {
            let (k, _) = entry?;
            let key = k
                .value()
                .split_once('\u{0}')
                .map_or(k.value(), |(key, _)| key);
            if last.as_deref() != Some(key) {
                *counted.entry(key_class(key).to_string()).or_default() += 1;
                last = Some(key.to_string());
            }
        }
        let mut counts = wtx.open_table(KEY_COUNTS)?;
        for (class, n) in &counted {
            counts.insert(class.as_str(), *n)?;
        }
        wtx.open_table(META)?.insert(INDEXES_META, "1")?;
    }
    wtx.commit()?;
    Ok(())
}

/// The newest version of `key` in the records table: the last entry of its range.
fn current<T: ReadableTable<&'static str, &'static str>>(
    table: &T,
    key: &str,
) -> Result<Option<String>, LedgerError> {
    let start = format!("{key}\u{0}");
    let end = format!("{key}\u{1}");
    let found = table
        .range(start.as_str()..end.as_str())?
        .next_back()
        .transpose()?;
    Ok(found.map(|(_, v)| v.value().to_string()))
}

/// Below this many transactions a block executes on one thread: threads cost more than they save.
const PARALLEL_MIN_TXS: usize = 64;

/// A transaction executed ahead, against the state before its block.
struct Speculation<R> {
    result: Result<crate::machine::Writes, R>,
    /// Every key it read, present or not.
    reads: Vec<String>,
}

/// The committed state, recording the keys read.
struct Recording<'a, T> {
    table: &'a T,
    reads: RefCell<Vec<String>>,
}

impl<T: ReadableTable<&'static str, &'static str>> StateView for Recording<'_, T> {
    fn get(&self, key: &str) -> Result<Option<String>, LedgerError> {
        self.reads.borrow_mut().push(key.to_string());
        current(self.table, key)
    }
}

/// The state as a table holds it (in a write transaction: with what it wrote so far).
struct Committed<'a, T>(&'a T);

impl<T: ReadableTable<&'static str, &'static str>> StateView for Committed<'_, T> {
    fn get(&self, key: &str) -> Result<Option<String>, LedgerError> {
        current(self.0, key)
    }
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
        current(self.table, key)
    }
}

/// How a ledger's database is opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerOptions {
    /// The database's page cache (what it keeps of the file in memory, for reads and for the
    /// writes of a commit), in bytes; none: redb's default, [`DEFAULT_CACHE_SIZE`]. It is most
    /// of the ledger's resident memory once the state is larger than it.
    pub cache_size: Option<usize>,
}

/// redb's own page cache size, used when [`LedgerOptions::cache_size`] is none.
pub const DEFAULT_CACHE_SIZE: usize = 1024 * 1024 * 1024;

impl Ledger {
    /// Creates a ledger in `dir` from a genesis, certified by `signers` (a quorum of its
    /// validators).
    pub fn create(
        dir: &Path,
        genesis: Genesis,
        signers: &[&PrivateKey],
    ) -> Result<Ledger, LedgerError> {
        Self::create_with(dir, genesis, |header| {
            CommitCertificate::sign(header, signers)
        })
    }

    /// Creates a ledger in `dir` from a genesis and the certificate of its block 0 as a peer
    /// holds it (a follower has no validator key to sign one): the certificate must commit the
    /// block 0 this genesis makes, with a quorum of its validators. On any failure no ledger is
    /// left behind.
    pub fn create_certified(
        dir: &Path,
        genesis: Genesis,
        certificate: CommitCertificate,
    ) -> Result<Ledger, LedgerError> {
        Self::create_with(dir, genesis, |_| certificate)
    }

    /// The genesis block's header (height 0), computed in memory: what each validator signs,
    /// on its own machine, to certify a genesis that names several validators
    /// (`sparkid ledger genesis-vote`), before any of them holds a ledger.
    pub fn genesis_header(genesis: &Genesis) -> Result<BlockHeader, LedgerError> {
        /// A tree with no chunk stored yet.
        struct Empty;
        impl ChunkSource for Empty {
            type Error = std::convert::Infallible;
            fn with_chunk<R>(
                &mut self,
                _: &Position,
                _: impl FnOnce(&[u8]) -> R,
            ) -> Result<Option<R>, Self::Error> {
                Ok(None)
            }
        }
        genesis
            .validator_set()
            .map_err(|e| LedgerError::InvalidGenesis(e.to_string()))?;
        let genesis_json = genesis.canonical();
        let root = smt::update(
            &mut Chunks::new(Empty),
            Hash::ZERO,
            &[(key_hash(GENESIS_KEY), Hash::of(&[genesis_json.as_bytes()]))],
        )
        .map_err(tree_err)?;
        // The same header `create` builds (a test below holds them equal).
        Ok(header_zero(genesis, &genesis_json, root))
    }

    fn create_with(
        dir: &Path,
        genesis: Genesis,
        certify: impl FnOnce(&BlockHeader) -> CommitCertificate,
    ) -> Result<Ledger, LedgerError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(DB_FILE);
        if path.exists() {
            return Err(LedgerError::AlreadyExists(path.display().to_string()));
        }
        let created = Self::create_in(dir, &path, genesis, certify);
        if created.is_err() {
            // A half-made file would read as an existing, corrupt ledger on the next start.
            let _ = std::fs::remove_file(&path);
        }
        created
    }

    fn create_in(
        dir: &Path,
        path: &Path,
        genesis: Genesis,
        certify: impl FnOnce(&BlockHeader) -> CommitCertificate,
    ) -> Result<Ledger, LedgerError> {
        let validators = genesis
            .validator_set()
            .map_err(|e| LedgerError::InvalidGenesis(e.to_string()))?;
        if genesis.chain_id.is_empty() {
            return Err(LedgerError::InvalidGenesis("chainId is empty".into()));
        }
        let db = Database::create(path)?;
        let genesis_json = genesis.canonical();
        let wtx = db.begin_write()?;
        let certified;
        {
            let root = update_tree(
                &wtx,
                Hash::ZERO,
                &[(key_hash(GENESIS_KEY), Hash::of(&[genesis_json.as_bytes()]))],
            )?;
            let header = header_zero(&genesis, &genesis_json, root);
            let certificate = certify(&header);
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
            wtx.open_table(RECORDS)?
                .insert(history_key(GENESIS_KEY, 0).as_str(), genesis_json.as_str())?;
            wtx.open_table(BLOCKS)?
                .insert(0, json_bytes(&block).as_slice())?;
            wtx.open_table(TXS)?;
            wtx.open_table(BLOCK_HASHES)?
                .insert(&certified.header.hash().0, 0)?;
            wtx.open_table(KEY_COUNTS)?
                .insert(key_class(GENESIS_KEY), 1)?;
            let mut meta = wtx.open_table(META)?;
            meta.insert("format", FORMAT)?;
            meta.insert("genesis", genesis_json.as_str())?;
            meta.insert("head", json_string(&certified).as_str())?;
            meta.insert(INDEXES_META, "1")?;
        }
        wtx.commit()?;
        info!(chain = %genesis.chain_id, dir = %dir.display(), "created ledger");
        Ok(Ledger {
            db,
            dir: dir.to_path_buf(),
            genesis,
            schedule: RwLock::new(Schedule::new(validators.clone())),
            handoffs: RwLock::new(Vec::new()),
            validators,
            head: RwLock::new(certified),
            writer: Mutex::new(()),
            listeners: RwLock::new(Vec::new()),
            answers: OnceLock::new(),
            answers_ready: AtomicBool::new(false),
        })
    }

    /// Opens the ledger in `dir`.
    pub fn open(dir: &Path) -> Result<Ledger, LedgerError> {
        Self::open_with_options(dir, &LedgerOptions::default())
    }

    /// Creates a ledger as [`Ledger::create`] does, then serves it opened with `options`.
    pub fn create_with_options(
        dir: &Path,
        genesis: Genesis,
        signers: &[&PrivateKey],
        options: &LedgerOptions,
    ) -> Result<Ledger, LedgerError> {
        if *options == LedgerOptions::default() {
            return Self::create(dir, genesis, signers);
        }
        // The options are the database's, which is opened once by creation; creating is rare,
        // so it is closed (dropped) and opened again with them rather than threading them
        // through every way a ledger is created.
        drop(Self::create(dir, genesis, signers)?);
        Self::open_with_options(dir, options)
    }

    /// Opens the ledger in `dir` with `options` (the database's page cache size).
    pub fn open_with_options(dir: &Path, options: &LedgerOptions) -> Result<Ledger, LedgerError> {
        let path = dir.join(DB_FILE);
        if !path.exists() {
            return Err(LedgerError::NotFound(path.display().to_string()));
        }
        let mut builder = redb::Builder::new();
        if let Some(bytes) = options.cache_size {
            builder.set_cache_size(bytes);
        }
        let db = builder.open(&path)?;
        let (genesis, head, format) = {
            let rtx = db.begin_read()?;
            let meta = rtx.open_table(META)?;
            let read = |k: &str| -> Result<String, LedgerError> {
                Ok(meta
                    .get(k)?
                    .ok_or_else(|| LedgerError::Corrupt(format!("meta.{k} missing")))?
                    .value()
                    .to_string())
            };
            let format = meta.get("format")?.map(|g| g.value().to_string());
            let genesis: Genesis = parse_json(&read("genesis")?)?;
            let head: CertifiedHeader = parse_json(&read("head")?)?;
            (genesis, head, format)
        };
        match format.as_deref() {
            Some(FORMAT) => {}
            None => migrate_from_format_1(&db, &head)?,
            Some(other) => {
                return Err(LedgerError::Corrupt(format!(
                    "{} is ledger format {other}; this build reads format {FORMAT}",
                    path.display()
                )))
            }
        }
        build_indexes(&db)?;
        let validators = genesis
            .validator_set()
            .map_err(|e| LedgerError::InvalidGenesis(e.to_string()))?;
        info!(chain = %genesis.chain_id, height = head.header.height, "opened ledger");
        let ledger = Ledger {
            db,
            dir: dir.to_path_buf(),
            genesis,
            schedule: RwLock::new(Schedule::new(validators.clone())),
            handoffs: RwLock::new(Vec::new()),
            validators,
            head: RwLock::new(head),
            writer: Mutex::new(()),
            listeners: RwLock::new(Vec::new()),
            answers: OnceLock::new(),
            answers_ready: AtomicBool::new(false),
        };
        for (height, _) in ledger.history(VALIDATORS_KEY)? {
            let block = ledger
                .block(height)?
                .ok_or_else(|| LedgerError::Corrupt(format!("block {height} is missing")))?;
            let certified = CertifiedHeader {
                header: block.header,
                certificate: block.certificate,
            };
            let verified = verify_all(block.transactions)
                .into_iter()
                .collect::<Result<Vec<_>, _>>()?;
            ledger.note_change(&certified, &verified)?;
        }
        Ok(ledger)
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

    /// The genesis validators. The set that certifies a height is [`Ledger::validators_at`]'s:
    /// it differs from this one after a validator-set change.
    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    /// The validator set that certifies block `height` (changes committed so far included,
    /// pending ones too: a change is committed at least [`validators::MIN_LEAD`] blocks before
    /// it takes over).
    pub fn validators_at(&self, height: u64) -> ValidatorSet {
        self.schedule
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .at(height)
            .clone()
    }

    /// Every set by its first height: the genesis set from 0, then each committed change.
    pub fn schedule(&self) -> Schedule {
        self.schedule
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many validator-set changes are committed (pending ones included).
    pub fn set_changes(&self) -> usize {
        self.schedule
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .sets()
            .len()
            - 1
    }

    /// The hand-offs of every change in force at `height`, oldest first: what a proof anchored
    /// there carries.
    pub fn handoffs_until(&self, height: u64) -> Vec<Handoff> {
        self.handoffs
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(from, _)| *from <= height)
            .map(|(_, h)| h.clone())
            .collect()
    }

    /// Records the change a just-committed block holds: its set joins the schedule and its
    /// hand-off is kept for proofs.
    fn note_change(
        &self,
        certified: &CertifiedHeader,
        transactions: &[VerifiedTransaction],
    ) -> Result<(), LedgerError> {
        let height = certified.header.height;
        let corrupt = |what: String| LedgerError::Corrupt(format!("block {height}: {what}"));
        let stored: ScheduledSet = parse_json(
            &self
                .value_written_at(VALIDATORS_KEY, height)?
                .ok_or_else(|| corrupt(format!("{VALIDATORS_KEY} was not written")))?,
        )?;
        let index = transactions
            .iter()
            .rposition(|t| {
                ValidatorChange::parse(&t.tx().body.operation)
                    .is_ok_and(|c| c.scheduled() == stored)
            })
            .ok_or_else(|| corrupt("no change transaction writes the stored set".into()))?;
        let set = ValidatorSet::from_encoded(&stored.validators)
            .map_err(|e| corrupt(format!("the new set: {e}")))?;
        let hashes: Vec<Hash> = transactions.iter().map(VerifiedTransaction::hash).collect();
        let handoff = Handoff {
            block: certified.clone(),
            transaction: transactions[index].tx().clone(),
            index: index as u32,
            path: merkle_path(&hashes, index),
        };
        info!(
            height,
            from = stored.from,
            validators = stored.validators.len(),
            "validator-set change committed"
        );
        self.schedule
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(stored.from, set);
        self.handoffs
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push((stored.from, handoff));
        Ok(())
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
        current(&rtx.open_table(RECORDS)?, key)
    }

    /// The current values of several state keys, read in one snapshot (one read transaction,
    /// the table opened once): a resolution reads a DID's record and its reverse index together.
    pub fn get_many(&self, keys: &[&str]) -> Result<Vec<Option<String>>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(RECORDS)?;
        keys.iter().map(|key| current(&table, key)).collect()
    }

    /// Every value a key has had, oldest first, with the height that wrote it.
    pub fn history(&self, key: &str) -> Result<Vec<(u64, String)>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(RECORDS)?;
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

    /// Up to `limit` versions of a key, newest first, written below height `before` (a cursor:
    /// the lowest height of the previous page; none for the newest), with their heights.
    pub fn history_page(
        &self,
        key: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, String)>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(RECORDS)?;
        let start = format!("{key}\u{0}");
        let end = match before {
            Some(height) => history_key(key, height),
            None => format!("{key}\u{1}"),
        };
        let mut out = Vec::new();
        for entry in table.range(start.as_str()..end.as_str())?.rev().take(limit) {
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
        let value = current(&rtx.open_table(RECORDS)?, key)?;
        let tree = rtx.open_table(TREE)?;
        let mut chunks = Chunks::new(TableChunks(&tree));
        let proof = smt::prove(&mut chunks, anchor.header.state_root, key).map_err(tree_err)?;
        let handoffs = self.handoffs_until(anchor.header.height);
        Ok(RecordProof {
            key: key.to_string(),
            value,
            proof,
            anchor,
            handoffs,
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

    /// The stored JSON of consecutive blocks from `from` (each a [`Block`]), read from one
    /// snapshot: at most `limit` blocks and, after the first, at most `max_bytes` in all,
    /// counting one separator per block. The first is always included: it is at most
    /// [`MAX_BLOCK_BYTES`], which every page cap is above. Empty
    /// when `from` is past the head. Peers are sent these bytes as they are (they verify every
    /// block anyway), so serving a block decodes and encodes nothing.
    pub fn block_range_json(
        &self,
        from: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Vec<u8>>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(BLOCKS)?;
        let mut out: Vec<Vec<u8>> = Vec::new();
        let mut bytes = 0usize;
        for entry in table.range(from..)? {
            if out.len() >= limit {
                break;
            }
            let (_, value) = entry?;
            let value = value.value();
            // Each block and its separator in the page: the page stops before `max_bytes`.
            if !out.is_empty() && bytes + value.len() + 1 > max_bytes {
                break;
            }
            bytes += value.len() + 1;
            out.push(value.to_vec());
        }
        Ok(out)
    }

    /// Where a transaction was included: height and index.
    pub fn find_transaction(&self, hash: &Hash) -> Result<Option<(u64, u32)>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(TXS)?;
        Ok(table.get(&hash.0)?.map(|g| g.value()))
    }

    /// The height of the block whose header hashes to `hash`.
    pub fn find_block(&self, hash: &Hash) -> Result<Option<u64>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(BLOCK_HASHES)?;
        Ok(table.get(&hash.0)?.map(|g| g.value()))
    }

    /// How many distinct state keys of class `class` exist (see [`key_class`]): `did` for
    /// DIDs, `ns` for namespaces, `bind` for bindings (unbound ones too: a key once written
    /// stays). One read.
    pub fn key_count(&self, class: &str) -> Result<u64, LedgerError> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(KEY_COUNTS)?;
        Ok(table.get(class)?.map_or(0, |g| g.value()))
    }

    /// Up to `limit` state keys starting with `prefix`, in key order, each with its current
    /// value, beginning after the key `after` (a cursor: the last key of the previous page).
    /// Each key costs one seek, however many versions it has.
    pub fn keys_with_prefix(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, String)>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(RECORDS)?;
        let mut out: Vec<(String, String)> = Vec::new();
        // The first version of the next key sorts after `key NUL …`, at `key \u{1}`.
        let mut from = match after {
            Some(key) if key.starts_with(prefix) => format!("{key}\u{1}"),
            Some(key) if key < prefix => prefix.to_string(),
            Some(_) => return Ok(out),
            None => prefix.to_string(),
        };
        while out.len() < limit {
            let Some(entry) = table.range(from.as_str()..)?.next().transpose()? else {
                break;
            };
            let key = entry.0.value();
            let Some((key, _)) = key.split_once('\u{0}') else {
                return Err(LedgerError::Corrupt(format!("record key {key:?}")));
            };
            if !key.starts_with(prefix) {
                break;
            }
            let key = key.to_string();
            let value = current(&table, &key)?.unwrap_or_default();
            from = format!("{key}\u{1}");
            out.push((key, value));
        }
        Ok(out)
    }

    /// Executes `txs` in order on top of the head, and commits the block of those that the
    /// ledger and the state machine accept, with the certificate `certify` returns. Nothing is
    /// written when no transaction is accepted. The header names the first validator as its
    /// proposer (see [`Ledger::propose_as`]).
    pub fn propose<M: StateMachine>(
        &self,
        machine: &M,
        txs: Vec<VerifiedTransaction>,
        now: u64,
        certify: impl FnOnce(&BlockHeader) -> Result<CommitCertificate, LedgerError>,
    ) -> Result<Proposal<M::Rejection>, LedgerError> {
        let proposer = self.genesis.validators[0].clone();
        self.propose_as(machine, txs, now, &proposer, |header, _| certify(header))
    }

    /// [`Ledger::propose`] with the header naming `proposer` (an encoded validator key), and a
    /// `certify` that also sees the block's transactions, in order: a validator set votes on
    /// the whole block (`spec/consensus.md`). `certify` runs inside the block's write
    /// transaction, holding the writer lock; when it fails nothing is written.
    pub fn propose_as<M: StateMachine>(
        &self,
        machine: &M,
        txs: Vec<VerifiedTransaction>,
        now: u64,
        proposer: &str,
        certify: impl FnOnce(
            &BlockHeader,
            &[VerifiedTransaction],
        ) -> Result<CommitCertificate, LedgerError>,
    ) -> Result<Proposal<M::Rejection>, LedgerError> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let started = Instant::now();
        let head = self.head();
        let height = head.header.height + 1;
        let time = now.max(head.header.time);
        let wtx = self.db.begin_write()?;
        let (outcomes, included, writes) = {
            let state = wtx.open_table(RECORDS)?;
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
        let executed = Instant::now();
        let hashes: Vec<Hash> = included.iter().map(VerifiedTransaction::hash).collect();
        let (mut header, keys) =
            self.write_state(&wtx, &head.header, height, time, &hashes, writes)?;
        header.proposer = proposer.to_string();
        let certificate = certify(&header, &included)?;
        certificate.verify(&header, &self.validators_at(height))?;
        let certified = CertifiedHeader {
            header,
            certificate,
        };
        let written = Instant::now();
        self.commit_block(wtx, &included, certified.clone(), keys)?;
        debug!(
            height,
            txs = hashes.len(),
            execute = ?(executed - started),
            write = ?(written - executed),
            commit = ?written.elapsed(),
            "proposed block"
        );
        Ok(Proposal {
            block: Some(certified),
            outcomes,
        })
    }

    /// Builds the block a validator proposes on top of the head, without committing it: `txs`
    /// are executed in order in a write transaction that is then aborted, and the header of
    /// those accepted (possibly none: an empty block) comes back with the included
    /// transactions and one outcome per transaction. What a consensus engine's proposer needs
    /// (`spec/consensus.md`): the block is committed later, with its certificate, through
    /// [`Ledger::apply_block`].
    #[allow(clippy::type_complexity)]
    pub fn build_block<M: StateMachine>(
        &self,
        machine: &M,
        txs: Vec<VerifiedTransaction>,
        now: u64,
        proposer: &str,
    ) -> Result<
        (
            BlockHeader,
            Vec<VerifiedTransaction>,
            Vec<TxOutcome<M::Rejection>>,
        ),
        LedgerError,
    > {
        let (built, outcomes) = self.build_block_kept(machine, txs, now, proposer)?;
        Ok((built.header, built.included, outcomes))
    }

    /// [`Ledger::build_block`], keeping what the execution computed (the writes, the changed
    /// tree chunks), so that the block, once decided, is committed with
    /// [`Ledger::apply_checked`] without executing it again. Nothing is written: the
    /// transactions run in a read transaction of the committed state.
    #[allow(clippy::type_complexity)]
    pub fn build_block_kept<M: StateMachine>(
        &self,
        machine: &M,
        txs: Vec<VerifiedTransaction>,
        now: u64,
        proposer: &str,
    ) -> Result<(CheckedBlock, Vec<TxOutcome<M::Rejection>>), LedgerError> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let head = self.head();
        let height = head.header.height + 1;
        let time = now.max(head.header.time);
        let (outcomes, included, writes) = self.execute_committed(machine, txs, height, time)?;
        let hashes: Vec<Hash> = included.iter().map(VerifiedTransaction::hash).collect();
        let (mut header, writes, chunks) =
            self.prepare_state(&head.header, height, time, &hashes, writes)?;
        header.proposer = proposer.to_string();
        Ok((
            CheckedBlock {
                id: header.hash(),
                header,
                included,
                hashes,
                writes,
                chunks,
            },
            outcomes,
        ))
    }

    /// The outcome each of `txs` would have, in order, in a block built on the head now,
    /// without building the block (no tree is computed, nothing is written): how a validator
    /// screens the transactions its pool still holds after a block.
    pub fn outcomes_on_head<M: StateMachine>(
        &self,
        machine: &M,
        txs: Vec<VerifiedTransaction>,
        now: u64,
    ) -> Result<Vec<TxOutcome<M::Rejection>>, LedgerError> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let head = self.head();
        let height = head.header.height + 1;
        let time = now.max(head.header.time);
        let (outcomes, _, _) = self.execute_committed(machine, txs, height, time)?;
        Ok(outcomes)
    }

    /// Applies a block received from a peer: it must extend the head, carry a quorum
    /// certificate, and re-execute to exactly its state root, with every transaction accepted.
    pub fn apply_block<M: StateMachine>(
        &self,
        machine: &M,
        block: Block,
    ) -> Result<(), LedgerError> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        block
            .certificate
            .verify(&block.header, &self.validators_at(block.header.height))?;
        let (wtx, included, keys) = self.replay(machine, &block.header, &block.transactions)?;
        let header = &block.header;
        let certified = CertifiedHeader {
            header: header.clone(),
            certificate: block.certificate.clone(),
        };
        self.commit_block(wtx, &included, certified, keys)
    }

    /// Checks a proposed block without committing it: everything [`Ledger::apply_block`]
    /// checks but the certificate (a proposal has none yet), plus that its proposer is a
    /// validator. The block is executed in a write transaction that is then aborted: what a
    /// validator does before it votes (`spec/consensus.md`).
    pub fn check_block<M: StateMachine>(
        &self,
        machine: &M,
        header: &BlockHeader,
        transactions: &[Transaction],
    ) -> Result<(), LedgerError> {
        self.check_proposer(header)?;
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let (wtx, _, _) = self.replay(machine, header, transactions)?;
        wtx.abort()?;
        Ok(())
    }

    /// [`Ledger::check_block`] for transactions whose signatures the caller verified already
    /// (a validator verifies each when it enters its pool): everything else is checked.
    pub fn check_block_verified<M: StateMachine>(
        &self,
        machine: &M,
        header: &BlockHeader,
        transactions: Vec<VerifiedTransaction>,
    ) -> Result<(), LedgerError> {
        self.check_block_kept(machine, header, transactions)
            .map(drop)
    }

    /// [`Ledger::check_block_verified`], keeping what the execution computed (the writes, the
    /// changed tree chunks), so that the block, once decided, is committed with
    /// [`Ledger::apply_checked`] without executing it again. Nothing is written: the
    /// transactions run in a read transaction of the committed state.
    pub fn check_block_kept<M: StateMachine>(
        &self,
        machine: &M,
        header: &BlockHeader,
        transactions: Vec<VerifiedTransaction>,
    ) -> Result<CheckedBlock, LedgerError> {
        self.check_proposer(header)?;
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        self.check_extends(header, transactions.len())?;
        let head = self.head();
        let hashes = self.check_tx_root(header, &transactions)?;
        let (outcomes, included, writes) =
            self.execute_committed(machine, transactions, header.height, header.time)?;
        check_all_accepted(header.height, outcomes)?;
        let (rebuilt, writes, chunks) =
            self.prepare_state(&head.header, header.height, header.time, &hashes, writes)?;
        check_state_root(header, &rebuilt)?;
        Ok(CheckedBlock {
            id: header.hash(),
            header: header.clone(),
            included,
            hashes,
            writes,
            chunks,
        })
    }

    /// Commits a block built or checked here ([`Ledger::build_block_kept`],
    /// [`Ledger::check_block_kept`]) with its certificate: its writes as they were computed,
    /// without executing it again. They were computed on the block's parent, so the block must
    /// still extend the head (else `BadBlock`, and nothing is written); the certificate is
    /// checked as [`Ledger::apply_block`] checks it.
    pub fn apply_checked(
        &self,
        checked: CheckedBlock,
        certificate: CommitCertificate,
    ) -> Result<(), LedgerError> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let CheckedBlock {
            header,
            id: _,
            included,
            hashes,
            writes,
            chunks,
        } = checked;
        certificate.verify(&header, &self.validators_at(header.height))?;
        self.check_extends(&header, included.len())?;
        let height = header.height;
        let wtx = self.db.begin_write()?;
        self.write_prepared(&wtx, height, &writes, &hashes, &chunks)?;
        let keys: Vec<String> = writes.into_iter().map(|(k, _)| k).collect();
        let certified = CertifiedHeader {
            header,
            certificate,
        };
        self.commit_block(wtx, &included, certified, keys)
    }

    /// [`Ledger::apply_block`] for transactions whose signatures the caller verified already:
    /// the certificate, the chain and the re-execution are checked as there.
    pub fn apply_block_verified<M: StateMachine>(
        &self,
        machine: &M,
        header: BlockHeader,
        transactions: Vec<VerifiedTransaction>,
        certificate: CommitCertificate,
    ) -> Result<(), LedgerError> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        certificate.verify(&header, &self.validators_at(header.height))?;
        self.check_extends(&header, transactions.len())?;
        let (wtx, included, keys) = self.replay_verified(machine, &header, transactions)?;
        let certified = CertifiedHeader {
            header,
            certificate,
        };
        self.commit_block(wtx, &included, certified, keys)
    }

    /// That the block's proposer is a validator of the set of its height.
    fn check_proposer(&self, header: &BlockHeader) -> Result<(), LedgerError> {
        let proposer_is_validator = sparkid_bid::PublicKey::from_encoded(&header.proposer)
            .map(|k| self.validators_at(header.height).keys().contains(&k))
            .unwrap_or(false);
        if !proposer_is_validator {
            return Err(LedgerError::BadBlock {
                height: header.height,
                reason: format!("proposer {:?} is not a validator", header.proposer),
            });
        }
        Ok(())
    }

    /// Re-executes a block on the head inside a new write transaction, and checks that it
    /// extends the head, that its transactions verify, match `txRoot`, are all accepted, and
    /// lead to exactly its state root. Returns the open transaction (with the state written,
    /// the block not yet), the verified transactions and the written keys. The caller holds
    /// the writer lock.
    #[allow(clippy::type_complexity)]
    fn replay<M: StateMachine>(
        &self,
        machine: &M,
        header: &BlockHeader,
        transactions: &[Transaction],
    ) -> Result<
        (
            redb::WriteTransaction,
            Vec<VerifiedTransaction>,
            Vec<String>,
        ),
        LedgerError,
    > {
        self.check_extends(header, transactions.len())?;
        let verified: Vec<VerifiedTransaction> = verify_all(transactions.to_vec())
            .into_iter()
            .collect::<Result<_, _>>()?;
        self.replay_verified(machine, header, verified)
    }

    /// That `header` extends the head, with at most a block's worth of transactions: checked
    /// before any signature, so a block over the limits costs nothing.
    fn check_extends(&self, header: &BlockHeader, count: usize) -> Result<(), LedgerError> {
        let head = self.head();
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
        if head.header.height.checked_add(1) != Some(header.height) {
            return Err(bad(format!("the head is at {}", head.header.height)));
        }
        if header.previous_hash != head.header.hash() {
            return Err(bad("previousHash is not the head's hash".into()));
        }
        if header.time < head.header.time {
            return Err(bad("time goes backwards".into()));
        }
        // Size first, before any signature is checked: a block over the limits costs nothing.
        if count > MAX_BLOCK_TXS {
            return Err(bad(format!(
                "{count} transactions, over the limit of {MAX_BLOCK_TXS} per block"
            )));
        }
        Ok(())
    }

    /// [`Ledger::replay`] past the signatures: `verified` are the block's transactions,
    /// verified, in order. The caller holds the writer lock and checked
    /// [`Ledger::check_extends`].
    #[allow(clippy::type_complexity)]
    fn replay_verified<M: StateMachine>(
        &self,
        machine: &M,
        header: &BlockHeader,
        verified: Vec<VerifiedTransaction>,
    ) -> Result<
        (
            redb::WriteTransaction,
            Vec<VerifiedTransaction>,
            Vec<String>,
        ),
        LedgerError,
    > {
        let head = self.head();
        let bad = |reason: String| LedgerError::BadBlock {
            height: header.height,
            reason,
        };
        let hashes = self.check_tx_root(header, &verified)?;
        let wtx = self.db.begin_write()?;
        let (outcomes, included, writes) = {
            let state = wtx.open_table(RECORDS)?;
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
        let (rebuilt, keys) = self.write_state(
            &wtx,
            &head.header,
            header.height,
            header.time,
            &hashes,
            writes,
        )?;
        if rebuilt.state_root != header.state_root {
            return Err(bad(format!(
                "state root {} does not match the re-executed {}",
                header.state_root, rebuilt.state_root
            )));
        }
        Ok((wtx, included, keys))
    }

    /// Registers `listener` to hear of every block committed from now on, after its commit is
    /// durable (a read it triggers sees the new state) and before the head moves to it: whoever
    /// sees the new head (a `/healthz`, a proof anchor, a follower's read-your-writes wait) can
    /// rely on every listener, such as the cache's invalidation, having run. Were the head to
    /// move first, a reader could see height `h` and still be served, from a cache, a value
    /// that block `h` replaced.
    pub fn on_commit(&self, listener: CommitListener) {
        self.listeners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(listener);
    }

    /// `keys`: the block's written keys, sorted.
    fn notify(&self, height: u64, keys: Vec<String>) {
        let listeners = self.listeners.read().unwrap_or_else(|p| p.into_inner());
        if listeners.is_empty() {
            return;
        }
        let block = CommittedBlock { height, keys };
        for listener in listeners.iter() {
            listener(&block);
        }
    }

    /// Runs the ledger's checks and the state machine over `txs`, in order, with the outcome of
    /// executing them one after another.
    ///
    /// The state machine runs on all cores first, each transaction against the state before
    /// the block, recording what it reads; then, in order, a transaction whose reads no earlier
    /// transaction of the block wrote keeps that result (executed in order, it would read the
    /// same values, and execution depends on nothing else), and any other runs again on this
    /// block's writes. The outcomes are exactly those of the sequential run.
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
        I: ReadableTable<&'static [u8; 32], (u64, u32)>,
    {
        let ctx = ExecContext {
            height,
            time,
            genesis: &self.genesis,
        };
        // The ledger's own checks need no state of this block.
        let mut early: Vec<Option<TxRejection<M::Rejection>>> = Vec::with_capacity(txs.len());
        for (position, vtx) in txs.iter().enumerate() {
            let body = &vtx.tx().body;
            let rejection = if position >= MAX_BLOCK_TXS {
                Some(TxRejection::BlockFull)
            } else if body.chain_id != self.genesis.chain_id {
                Some(TxRejection::WrongChain {
                    expected: self.genesis.chain_id.clone(),
                    got: body.chain_id.clone(),
                })
            } else if body.valid_until < height {
                Some(TxRejection::Expired {
                    valid_until: body.valid_until,
                    height,
                })
            } else if body.valid_until > height + MAX_VALIDITY_BLOCKS {
                Some(TxRejection::ValidityTooLong {
                    valid_until: body.valid_until,
                    height,
                })
            } else {
                // An indexed transaction was never included in this block (its copies here are
                // refused as duplicates too), so this may come before the in-block check.
                index
                    .get(&vtx.hash().0)?
                    .map(|found| TxRejection::Duplicate(found.value().0))
            };
            early.push(rejection);
        }
        let mut speculated = self.speculate(machine, &txs, &early, &ctx);
        let mut writes: HashMap<String, String> = HashMap::new();
        let mut outcomes = Vec::with_capacity(txs.len());
        let mut included = Vec::new();
        let mut in_block: HashSet<Hash> = HashSet::new();
        // The block's transaction bytes so far: a block never goes over MAX_BLOCK_TX_BYTES.
        let mut block_bytes = 0usize;
        for ((vtx, rejection), speculation) in txs.into_iter().zip(early).zip(&mut speculated) {
            let hash = vtx.hash();
            let reject = |reason| TxOutcome::Rejected { hash, reason };
            if let Some(reason) = rejection {
                outcomes.push(reject(reason));
                continue;
            }
            if in_block.contains(&hash) {
                outcomes.push(reject(TxRejection::Duplicate(height)));
                continue;
            }
            let tx_bytes = block_tx_bytes(vtx.canonical().len());
            if block_bytes + tx_bytes > MAX_BLOCK_TX_BYTES {
                outcomes.push(reject(TxRejection::BlockFull));
                continue;
            }
            let result = if validators::is_change(&vtx.tx().body.operation) {
                // The ledger's own operation: no state machine sees it.
                let view = Overlay {
                    table: state,
                    writes: &writes,
                };
                validators::execute(&vtx, &ctx, &view)?.map_err(TxRejection::Validators)
            } else {
                match speculation.take() {
                    Some(s) if !s.reads.iter().any(|k| writes.contains_key(k)) => s.result,
                    _ => {
                        let view = Overlay {
                            table: state,
                            writes: &writes,
                        };
                        machine.execute(&vtx, &ctx, &view)?
                    }
                }
                .map_err(TxRejection::Operation)
            };
            match result {
                Ok(tx_writes) => {
                    writes.extend(tx_writes);
                    in_block.insert(hash);
                    block_bytes += tx_bytes;
                    outcomes.push(TxOutcome::Included {
                        height,
                        index: included.len() as u32,
                        hash,
                    });
                    included.push(vtx);
                }
                Err(rejection) => outcomes.push(reject(rejection)),
            }
        }
        Ok((outcomes, included, writes))
    }

    /// Executes the transactions that passed the ledger's checks on all cores, each against the
    /// committed state (the state before the block: the caller holds the writer lock), and
    /// records what each read. `None` where nothing was speculated: too few transactions to be
    /// worth threads, a rejected transaction, or a storage error (the in-order run meets it).
    fn speculate<M: StateMachine>(
        &self,
        machine: &M,
        txs: &[VerifiedTransaction],
        early: &[Option<TxRejection<M::Rejection>>],
        ctx: &ExecContext<'_>,
    ) -> Vec<Option<Speculation<M::Rejection>>> {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let candidates: Vec<usize> = (0..txs.len())
            .filter(|&i| early[i].is_none() && !validators::is_change(&txs[i].tx().body.operation))
            .collect();
        let mut out: Vec<Option<Speculation<M::Rejection>>> = Vec::new();
        out.resize_with(txs.len(), || None);
        if threads == 1 || candidates.len() < PARALLEL_MIN_TXS {
            return out;
        }
        // One transaction at a time to whichever thread is free: on a shared machine a thread
        // that waits for a core leaves its share to the others.
        let next = AtomicUsize::new(0);
        let run = || -> Vec<(usize, Speculation<M::Rejection>)> {
            let Ok(rtx) = self.db.begin_read() else {
                return Vec::new();
            };
            let Ok(table) = rtx.open_table(RECORDS) else {
                return Vec::new();
            };
            let mut done = Vec::new();
            while let Some(&i) = candidates.get(next.fetch_add(1, Ordering::Relaxed)) {
                let view = Recording {
                    table: &table,
                    reads: RefCell::new(Vec::new()),
                };
                if let Ok(result) = machine.execute(&txs[i], ctx, &view) {
                    let reads = view.reads.into_inner();
                    done.push((i, Speculation { result, reads }));
                }
            }
            done
        };
        let results = std::thread::scope(|s| {
            let helpers: Vec<_> = (1..threads).map(|_| s.spawn(run)).collect();
            let mut all = run();
            for helper in helpers {
                all.extend(
                    helper
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                );
            }
            all
        });
        for (i, speculation) in results {
            out[i] = Some(speculation);
        }
        out
    }

    /// Writes the state records, the transaction index and the tree; returns the new header
    /// (proposer: the first validator's key unless this node signs as another) and the written
    /// keys, sorted.
    fn write_state(
        &self,
        wtx: &redb::WriteTransaction,
        previous: &BlockHeader,
        height: u64,
        time: u64,
        hashes: &[Hash],
        writes: HashMap<String, String>,
    ) -> Result<(BlockHeader, Vec<String>), LedgerError> {
        // In key order, so that consecutive inserts share pages.
        let mut writes: Vec<(String, String)> = writes.into_iter().collect();
        writes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut updates: Vec<(Hash, Hash)> = Vec::with_capacity(writes.len());
        for (key, value) in &writes {
            if key.contains('\u{0}') {
                // NUL separates a key from its height in the records table.
                return Err(LedgerError::Corrupt(format!(
                    "the state machine wrote key {key:?}, which contains NUL"
                )));
            }
            updates.push((key_hash(key), Hash::of(&[value.as_bytes()])));
        }
        updates.sort_unstable();
        let (state_root, chunks) = if updates.len() < PARALLEL_MIN_TXS {
            self.write_records(wtx, height, &writes, hashes)?;
            self.compute_tree(previous.state_root, &updates)?
        } else {
            // The new tree is computed on another core while this one writes the records and
            // the index: it reads the committed tree, which is the tree before this block
            // (this transaction writes the tree only below, and the caller holds the writer
            // lock).
            std::thread::scope(|s| {
                let tree = s.spawn(|| self.compute_tree(previous.state_root, &updates));
                let written = self.write_records(wtx, height, &writes, hashes);
                let tree = tree
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                written.and(tree)
            })?
        };
        let mut tree = wtx.open_table(TREE)?;
        for (id, bytes) in chunks {
            tree.insert(&id.encode(), bytes.as_slice())?;
        }
        let header = BlockHeader {
            chain_id: self.genesis.chain_id.clone(),
            height,
            previous_hash: previous.hash(),
            time,
            tx_root: tx_root(hashes),
            tx_count: hashes.len() as u32,
            state_root,
            proposer: self.genesis.validators[0].clone(),
        };
        Ok((header, writes.into_iter().map(|(k, _)| k).collect()))
    }

    /// Writes the block's state records and indexes its transactions.
    fn write_records(
        &self,
        wtx: &redb::WriteTransaction,
        height: u64,
        writes: &[(String, String)],
        hashes: &[Hash],
    ) -> Result<(), LedgerError> {
        let mut records = wtx.open_table(RECORDS)?;
        // A key without a version yet is new to its class; `writes` is in key order, so the
        // classes come in runs.
        let mut new_keys: Vec<(&str, u64)> = Vec::new();
        for (key, value) in writes {
            if current(&records, key)?.is_none() {
                let class = key_class(key);
                match new_keys.last_mut() {
                    Some((c, n)) if *c == class => *n += 1,
                    _ => new_keys.push((class, 1)),
                }
            }
            records.insert(history_key(key, height).as_str(), value.as_str())?;
        }
        if !new_keys.is_empty() {
            let mut counts = wtx.open_table(KEY_COUNTS)?;
            for (class, n) in new_keys {
                let had = counts.get(class)?.map_or(0, |g| g.value());
                counts.insert(class, had + n)?;
            }
        }
        let mut index = wtx.open_table(TXS)?;
        for (i, hash) in hashes.iter().enumerate() {
            index.insert(&hash.0, (height, i as u32))?;
        }
        self.write_answers(wtx, &records, height, writes)
    }

    /// Re-derives, in the block's transaction, the answers of the subjects whose state keys
    /// the block wrote (`records` already holds the block's writes), and records that the
    /// answers are kept through `height`. Every commit path writes state through
    /// [`Ledger::write_records`], which calls this: blocks proposed here, applied from peers,
    /// and caught up. Nothing without an installed deriver.
    fn write_answers<T: ReadableTable<&'static str, &'static str>>(
        &self,
        wtx: &redb::WriteTransaction,
        records: &T,
        height: u64,
        writes: &[(String, String)],
    ) -> Result<(), LedgerError> {
        let Some(deriver) = self.answers.get() else {
            return Ok(());
        };
        let mut subjects: Vec<String> = writes
            .iter()
            .filter_map(|(key, _)| deriver.subject(key))
            .collect();
        subjects.sort_unstable();
        subjects.dedup();
        if !subjects.is_empty() {
            let state = Committed(records);
            let mut answers = wtx.open_table(ANSWERS)?;
            for subject in &subjects {
                match deriver.derive(subject, &state)? {
                    Some(answer) => {
                        answers.insert(subject.as_str(), answer.as_slice())?;
                    }
                    None => {
                        answers.remove(subject.as_str())?;
                    }
                }
            }
        }
        wtx.open_table(META)?
            .insert(ANSWERS_HEIGHT_META, height.to_string().as_str())?;
        Ok(())
    }

    /// Installs the answer deriver: from now on every commit keeps the answers table (see
    /// [`crate::answers`]). True when the stored table is current (built by this deriver's
    /// version and kept through the head) and is served at once; false when it must first be
    /// rebuilt by [`Ledger::rebuild_answers`] (it is emptied here, and not served until then).
    /// A second install is a no-op that reports readiness.
    pub fn install_answers(&self, deriver: Arc<dyn AnswerDeriver>) -> Result<bool, LedgerError> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let version = deriver.version();
        if self.answers.set(deriver).is_err() {
            return Ok(self.answers_ready());
        }
        let (stored, kept) = {
            let rtx = self.db.begin_read()?;
            let meta = rtx.open_table(META)?;
            let stored = meta
                .get(ANSWERS_VERSION_META)?
                .map(|g| g.value().to_string());
            let kept = meta
                .get(ANSWERS_HEIGHT_META)?
                .and_then(|g| g.value().parse::<u64>().ok());
            (stored, kept)
        };
        if stored.as_deref() == Some(version.as_str()) && kept == Some(self.height()) {
            self.answers_ready.store(true, Ordering::Release);
            return Ok(true);
        }
        info!(
            version,
            stored = stored.as_deref().unwrap_or("none"),
            kept_through = ?kept,
            head = self.height(),
            "the answers table is not current: it is rebuilt from the state"
        );
        let wtx = self.db.begin_write()?;
        wtx.open_table(META)?.remove(ANSWERS_VERSION_META)?;
        wtx.delete_table(ANSWERS)?;
        wtx.open_table(ANSWERS)?;
        wtx.commit()?;
        Ok(false)
    }

    /// Rebuilds the answers table from the state when [`Ledger::install_answers`] found it not
    /// current: every subject of every state key, in chunks of [`REBUILD_CHUNK`] subjects,
    /// each its own write transaction under the writer lock, so that commits go on in between
    /// (each keeps the answers of its own keys, the deriver being installed). Served once the
    /// last chunk is committed. Returns the number of subjects derived.
    pub fn rebuild_answers(&self) -> Result<u64, LedgerError> {
        self.rebuild_answers_in_chunks(REBUILD_CHUNK)
    }

    fn rebuild_answers_in_chunks(&self, chunk: usize) -> Result<u64, LedgerError> {
        let Some(deriver) = self.answers.get().cloned() else {
            return Ok(0);
        };
        let started = Instant::now();
        let mut derived = 0u64;
        // The last state key visited: the next chunk starts past all its versions.
        let mut after: Option<String> = None;
        while !self.answers_ready() {
            let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let wtx = self.db.begin_write()?;
            let mut done = true;
            {
                let records = wtx.open_table(RECORDS)?;
                let mut answers = wtx.open_table(ANSWERS)?;
                let state = Committed(&records);
                let start = after.as_ref().map(|k| format!("{k}\u{1}"));
                let range = match &start {
                    Some(start) => records.range(start.as_str()..)?,
                    None => records.range::<&str>(..)?,
                };
                let mut in_chunk = 0;
                let mut last_subject: Option<String> = None;
                for entry in range {
                    let (key, _) = entry?;
                    let key = key.value();
                    let key = key.split_once('\u{0}').map_or(key, |(k, _)| k);
                    if after.as_deref() == Some(key) {
                        continue;
                    }
                    if in_chunk >= chunk {
                        done = false;
                        break;
                    }
                    after = Some(key.to_string());
                    let Some(subject) = deriver.subject(key) else {
                        continue;
                    };
                    if last_subject.as_deref() == Some(subject.as_str()) {
                        continue;
                    }
                    match deriver.derive(&subject, &state)? {
                        Some(answer) => {
                            answers.insert(subject.as_str(), answer.as_slice())?;
                        }
                        None => {
                            answers.remove(subject.as_str())?;
                        }
                    }
                    last_subject = Some(subject);
                    in_chunk += 1;
                    derived += 1;
                }
            }
            if done {
                let mut meta = wtx.open_table(META)?;
                meta.insert(ANSWERS_VERSION_META, deriver.version().as_str())?;
                meta.insert(ANSWERS_HEIGHT_META, self.height().to_string().as_str())?;
            }
            wtx.commit()?;
            if done {
                self.answers_ready.store(true, Ordering::Release);
            } else {
                debug!(derived, "answers table: a chunk rebuilt");
            }
        }
        info!(
            derived,
            ms = started.elapsed().as_millis() as u64,
            "answers table rebuilt"
        );
        Ok(derived)
    }

    /// Whether answers are served: a deriver is installed and the table is current.
    pub fn answers_ready(&self) -> bool {
        self.answers_ready.load(Ordering::Acquire)
    }

    /// The stored answer of `subject`, when answers are served ([`Ledger::answers_ready`]);
    /// none when they are not, or the subject has none. One lookup in one read transaction.
    pub fn answer(&self, subject: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        if !self.answers_ready() {
            return Ok(None);
        }
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(ANSWERS)?;
        let answer = table.get(subject)?.map(|g| g.value().to_vec());
        Ok(answer)
    }

    /// [`Ledger::execute`] on the committed state, in a read transaction (the caller holds the
    /// writer lock, so the committed state is the head's).
    #[allow(clippy::type_complexity)]
    fn execute_committed<M: StateMachine>(
        &self,
        machine: &M,
        txs: Vec<VerifiedTransaction>,
        height: u64,
        time: u64,
    ) -> Result<
        (
            Vec<TxOutcome<M::Rejection>>,
            Vec<VerifiedTransaction>,
            HashMap<String, String>,
        ),
        LedgerError,
    > {
        let rtx = self.db.begin_read()?;
        let state = rtx.open_table(RECORDS)?;
        let index = rtx.open_table(TXS)?;
        self.execute(machine, txs, height, time, &state, &index)
    }

    /// That a block's transactions fit its byte limit and match its `txRoot` and `txCount`;
    /// their hashes, in order.
    fn check_tx_root(
        &self,
        header: &BlockHeader,
        verified: &[VerifiedTransaction],
    ) -> Result<Vec<Hash>, LedgerError> {
        let bad = |reason: String| LedgerError::BadBlock {
            height: header.height,
            reason,
        };
        let tx_bytes: usize = verified
            .iter()
            .map(|t| block_tx_bytes(t.canonical().len()))
            .sum();
        if tx_bytes > MAX_BLOCK_TX_BYTES {
            return Err(bad(format!(
                "its transactions take {tx_bytes} bytes, over the limit of \
                 {MAX_BLOCK_TX_BYTES} per block"
            )));
        }
        let hashes: Vec<Hash> = verified.iter().map(VerifiedTransaction::hash).collect();
        if header.tx_count as usize != hashes.len() || tx_root(&hashes) != header.tx_root {
            return Err(bad(
                "txRoot or txCount does not match the transactions".into()
            ));
        }
        Ok(hashes)
    }

    /// The state `writes` lead to from `previous`, computed on the committed tree without
    /// writing anything: the header (proposer: the first validator's key), the writes in key
    /// order and the changed tree chunks, for [`Ledger::write_prepared`].
    #[allow(clippy::type_complexity)]
    fn prepare_state(
        &self,
        previous: &BlockHeader,
        height: u64,
        time: u64,
        hashes: &[Hash],
        writes: HashMap<String, String>,
    ) -> Result<(BlockHeader, Vec<(String, String)>, Vec<(Position, Vec<u8>)>), LedgerError> {
        let mut writes: Vec<(String, String)> = writes.into_iter().collect();
        writes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut updates: Vec<(Hash, Hash)> = Vec::with_capacity(writes.len());
        for (key, value) in &writes {
            if key.contains('\u{0}') {
                // NUL separates a key from its height in the records table.
                return Err(LedgerError::Corrupt(format!(
                    "the state machine wrote key {key:?}, which contains NUL"
                )));
            }
            updates.push((key_hash(key), Hash::of(&[value.as_bytes()])));
        }
        updates.sort_unstable();
        let (state_root, chunks) = self.compute_tree(previous.state_root, &updates)?;
        let header = BlockHeader {
            chain_id: self.genesis.chain_id.clone(),
            height,
            previous_hash: previous.hash(),
            time,
            tx_root: tx_root(hashes),
            tx_count: hashes.len() as u32,
            state_root,
            proposer: self.genesis.validators[0].clone(),
        };
        Ok((header, writes, chunks))
    }

    /// Writes what [`Ledger::prepare_state`] computed: the state records, the transaction index
    /// and the changed tree chunks.
    fn write_prepared(
        &self,
        wtx: &redb::WriteTransaction,
        height: u64,
        writes: &[(String, String)],
        hashes: &[Hash],
        chunks: &[(Position, Vec<u8>)],
    ) -> Result<(), LedgerError> {
        self.write_records(wtx, height, writes, hashes)?;
        let mut tree = wtx.open_table(TREE)?;
        for (id, bytes) in chunks {
            tree.insert(&id.encode(), bytes.as_slice())?;
        }
        Ok(())
    }

    /// The committed tree with `updates` applied: its root and the changed chunks, encoded.
    #[allow(clippy::type_complexity)]
    fn compute_tree(
        &self,
        root: Hash,
        updates: &[(Hash, Hash)],
    ) -> Result<(Hash, Vec<(Position, Vec<u8>)>), LedgerError> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(TREE)?;
        let mut chunks = Chunks::new(TableChunks(&table));
        let new_root = smt::update(&mut chunks, root, updates).map_err(tree_err)?;
        Ok((new_root, chunks.into_written()))
    }

    /// The end of every commit path, under the writer lock: writes `certified` and its
    /// `included` transactions into `wtx` (which holds the block's state), commits it, records a
    /// validator-set change, tells the listeners of the changed `keys` and then moves the head.
    fn commit_block(
        &self,
        wtx: redb::WriteTransaction,
        included: &[VerifiedTransaction],
        certified: CertifiedHeader,
        keys: Vec<String>,
    ) -> Result<(), LedgerError> {
        let height = certified.header.height;
        self.write_block(&wtx, included, &certified)?;
        wtx.commit()?;
        if keys.iter().any(|k| k == VALIDATORS_KEY) {
            self.note_change(&certified, included)?;
        }
        // Listeners (cache invalidation) run before the head moves: see `on_commit`.
        self.notify(height, keys);
        *self.head.write().unwrap_or_else(|p| p.into_inner()) = certified;
        Ok(())
    }

    /// Writes the block (its transactions as the canonical JSON they were verified in) and the
    /// new head.
    fn write_block(
        &self,
        wtx: &redb::WriteTransaction,
        transactions: &[VerifiedTransaction],
        certified: &CertifiedHeader,
    ) -> Result<(), LedgerError> {
        let json = block_json(certified, transactions)?;
        // The last guard of the invariant that every stored block can be sent to a peer.
        if json.len() > MAX_BLOCK_BYTES {
            return Err(LedgerError::BadBlock {
                height: certified.header.height,
                reason: format!(
                    "the block is {} bytes, over the limit of {MAX_BLOCK_BYTES}",
                    json.len()
                ),
            });
        }
        wtx.open_table(BLOCKS)?
            .insert(certified.header.height, json.as_slice())?;
        wtx.open_table(BLOCK_HASHES)?
            .insert(&certified.header.hash().0, certified.header.height)?;
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
        let table = rtx.open_table(RECORDS)?;
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
        let table = rtx.open_table(RECORDS)?;
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
        let table = rtx.open_table(RECORDS)?;
        // A key's versions are adjacent, oldest first: hand on the last of each run.
        let mut last: Option<(String, String)> = None;
        for entry in table.iter()? {
            let (k, v) = entry?;
            let (key, _) = k
                .value()
                .split_once('\u{0}')
                .ok_or_else(|| LedgerError::Corrupt(format!("record key {:?}", k.value())))?;
            if let Some((previous, value)) = &last {
                if previous != key {
                    f(previous, value)?;
                }
            }
            last = Some((key.to_string(), v.value().to_string()));
        }
        if let Some((key, value)) = &last {
            f(key, value)?;
        }
        Ok(())
    }
}

/// That a block's every transaction was accepted: a block holds none the rules refuse.
fn check_all_accepted<R: std::fmt::Display>(
    height: u64,
    outcomes: Vec<TxOutcome<R>>,
) -> Result<(), LedgerError> {
    for outcome in outcomes {
        if let TxOutcome::Rejected { hash, reason } = outcome {
            return Err(LedgerError::BadTransaction {
                height,
                hash,
                reason: reason.to_string(),
            });
        }
    }
    Ok(())
}

/// That re-executing a block led to the state root its header names.
fn check_state_root(header: &BlockHeader, rebuilt: &BlockHeader) -> Result<(), LedgerError> {
    if rebuilt.state_root != header.state_root {
        return Err(LedgerError::BadBlock {
            height: header.height,
            reason: format!(
                "state root {} does not match the re-executed {}",
                header.state_root, rebuilt.state_root
            ),
        });
    }
    Ok(())
}

/// The block's JSON, as [`Block`] reads it, with each transaction's canonical JSON as is.
fn block_json(
    certified: &CertifiedHeader,
    transactions: &[VerifiedTransaction],
) -> Result<Vec<u8>, LedgerError> {
    let size: usize = transactions.iter().map(|t| t.canonical().len() + 1).sum();
    let mut out = Vec::with_capacity(size + 2048);
    let serialize =
        |e: serde_json::Error| LedgerError::Corrupt(format!("serializing a block: {e}"));
    out.extend_from_slice(b"{\"header\":");
    serde_json::to_writer(&mut out, &certified.header).map_err(serialize)?;
    out.extend_from_slice(b",\"transactions\":[");
    for (i, tx) in transactions.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(tx.canonical().as_bytes());
    }
    out.extend_from_slice(b"],\"certificate\":");
    serde_json::to_writer(&mut out, &certified.certificate).map_err(serialize)?;
    out.push(b'}');
    Ok(out)
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

/// The header of block 0: the genesis (`genesis_json`, its canonical JSON) is its only
/// "transaction" and the only record of the state whose root is `state_root`. Callers have
/// checked that the genesis names at least one validator (its validator set parses).
fn header_zero(genesis: &Genesis, genesis_json: &str, state_root: Hash) -> BlockHeader {
    BlockHeader {
        chain_id: genesis.chain_id.clone(),
        height: 0,
        previous_hash: Hash::ZERO,
        time: genesis.time,
        tx_root: Hash::of(&[genesis_json.as_bytes()]),
        tx_count: 0,
        state_root,
        proposer: genesis.validators[0].clone(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::block::CertificateError;
    use crate::machine::{StateMachine, Writes};
    use crate::tx::TxBody;
    use sparkid_bid::PrivateKey;

    /// `{"set": key, "value": v}` writes `kv/<key>`.
    pub(crate) struct Set;

    #[derive(Debug, Clone, Error)]
    #[error("refused")]
    pub(crate) struct Refused;

    impl StateMachine for Set {
        type Rejection = Refused;
        fn execute(
            &self,
            tx: &VerifiedTransaction,
            _: &ExecContext<'_>,
            _: &dyn StateView,
        ) -> Result<Result<Writes, Refused>, LedgerError> {
            let op = &tx.tx().body.operation;
            Ok(Ok(vec![(
                format!("kv/{}", op["set"].as_str().unwrap_or_default()),
                op["value"].to_string(),
            )]))
        }
    }

    /// The genesis of the test chain `t` with these validators.
    pub(crate) fn test_genesis(validators: &[&PrivateKey]) -> Genesis {
        Genesis {
            chain_id: "t".into(),
            time: 1,
            validators: validators
                .iter()
                .map(|k| k.public_key().to_encoded())
                .collect(),
            authority: None,
            other: Default::default(),
        }
    }

    pub(crate) fn set(key: &PrivateKey, k: &str, v: &str) -> VerifiedTransaction {
        TxBody {
            chain_id: "t".into(),
            signer: "s#key-1".into(),
            public_key: key.public_key().to_encoded(),
            nonce: TxBody::random_nonce(),
            valid_until: 50,
            operation: serde_json::json!({"set": k, "value": v}),
        }
        .sign(key)
        .verify()
        .unwrap()
    }

    /// Rewrites a ledger in the first layout, as the first builds left it.
    fn downgrade(path: &Path) {
        let db = Database::open(path).unwrap();
        let wtx = db.begin_write().unwrap();
        {
            let records = wtx.open_table(RECORDS).unwrap();
            let mut state = wtx.open_table(format_1::STATE).unwrap();
            let mut history = wtx.open_table(format_1::HISTORY).unwrap();
            for entry in records.iter().unwrap() {
                let (k, v) = entry.unwrap();
                history.insert(k.value(), v.value()).unwrap();
                let key = k.value().split_once('\u{0}').unwrap().0;
                state.insert(key, v.value()).unwrap();
            }
            let mut nodes = wtx.open_table(format_1::NODES).unwrap();
            nodes
                .insert([1u8; 32].as_slice(), [0u8; 65].as_slice())
                .unwrap();
            let index: Vec<([u8; 32], (u64, u32))> = wtx
                .open_table(TXS)
                .unwrap()
                .iter()
                .unwrap()
                .map(|e| {
                    let (k, v) = e.unwrap();
                    (*k.value(), v.value())
                })
                .collect();
            wtx.delete_table(TXS).unwrap();
            let mut txs = wtx.open_table(format_1::TXS).unwrap();
            for (k, v) in index {
                txs.insert(k.as_slice(), v).unwrap();
            }
            wtx.open_table(META).unwrap().remove("format").unwrap();
        }
        wtx.delete_table(RECORDS).unwrap();
        wtx.delete_table(TREE).unwrap();
        wtx.commit().unwrap();
    }

    /// A ledger in `dir` as the first builds left it: two blocks of `Set` transactions (`kv/a`
    /// written twice, the first time by `first`), then rewritten in the first layout.
    pub(crate) struct Format1Ledger {
        /// The single validator, which certifies every block.
        pub(crate) validator: PrivateKey,
        /// The signer of every transaction.
        pub(crate) user: PrivateKey,
        /// The first transaction, in block 1.
        pub(crate) first: Hash,
        /// The head before the downgrade.
        pub(crate) head: CertifiedHeader,
    }

    impl Format1Ledger {
        /// Builds it in `dir`.
        pub(crate) fn create(dir: &Path) -> Format1Ledger {
            let validator = PrivateKey::generate();
            let user = PrivateKey::generate();
            let genesis = test_genesis(&[&validator]);
            let ledger = Ledger::create(dir, genesis, &[&validator]).unwrap();
            let certify = |h: &BlockHeader| Ok(CommitCertificate::sign(h, &[&validator]));
            let first = set(&user, "a", "1");
            let first_hash = first.hash();
            let txs = vec![first, set(&user, "b", "2")];
            ledger.propose(&Set, txs, 2, certify).unwrap();
            let txs = (0..100).map(|i| set(&user, &format!("k{i}"), "x"));
            let txs = txs.chain([set(&user, "a", "3")]).collect();
            ledger.propose(&Set, txs, 3, certify).unwrap();
            let head = ledger.head();
            drop(ledger);
            downgrade(&dir.join(DB_FILE));
            Format1Ledger {
                validator,
                user,
                first: first_hash,
                head,
            }
        }

        /// Certifies a header as the single validator.
        pub(crate) fn certify(&self, h: &BlockHeader) -> Result<CommitCertificate, LedgerError> {
            Ok(CommitCertificate::sign(h, &[&self.validator]))
        }
    }

    #[test]
    fn a_format_1_ledger_is_migrated_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let old = Format1Ledger::create(dir.path());
        let ledger = Ledger::open(dir.path()).unwrap();
        assert_eq!(ledger.head(), old.head);
        assert_eq!(ledger.get("kv/a").unwrap().as_deref(), Some("\"3\""));
        assert_eq!(ledger.history("kv/a").unwrap().len(), 2);
        assert_eq!(ledger.find_transaction(&old.first).unwrap(), Some((1, 0)));
        for key in ["kv/a", "kv/k7", "kv/none"] {
            ledger
                .prove(key)
                .unwrap()
                .verify(ledger.validators())
                .unwrap();
        }
        // It keeps working in the new layout, and reopens without migrating again. (That the
        // migrated chain re-verifies from genesis is checked in `verify`'s tests.)
        let c = set(&old.user, "c", "4");
        let p = ledger
            .propose(&Set, vec![c], 4, |h| old.certify(h))
            .unwrap();
        assert!(p.block.is_some());
        drop(ledger);
        let ledger = Ledger::open(dir.path()).unwrap();
        ledger
            .prove("kv/c")
            .unwrap()
            .verify(ledger.validators())
            .unwrap();
    }

    /// Answers of `kv/<k>` keys: the value upper-cased; none once it is `gone`.
    struct Upper(&'static str);

    impl AnswerDeriver for Upper {
        fn version(&self) -> String {
            self.0.into()
        }
        fn subject(&self, key: &str) -> Option<String> {
            key.strip_prefix("kv/").map(String::from)
        }
        fn derive(
            &self,
            subject: &str,
            state: &dyn StateView,
        ) -> Result<Option<Vec<u8>>, LedgerError> {
            Ok(state
                .get(&format!("kv/{subject}"))?
                .filter(|v| v != "\"gone\"")
                .map(|v| v.to_uppercase().into_bytes()))
        }
    }

    fn answer(ledger: &Ledger, subject: &str) -> Option<String> {
        let stored = ledger.answer(subject).unwrap()?;
        Some(String::from_utf8(stored).unwrap())
    }

    #[test]
    fn answer_records_are_kept_at_commit_on_followers_and_across_reopening() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let validator = PrivateKey::generate();
        let user = PrivateKey::generate();
        let genesis = test_genesis(&[&validator]);
        let certify = |h: &BlockHeader| Ok(CommitCertificate::sign(h, &[&validator]));
        {
            let ledger = Ledger::create(a.path(), genesis.clone(), &[&validator]).unwrap();
            ledger
                .propose(&Set, vec![set(&user, "early", "e")], 2, certify)
                .unwrap();
            assert_eq!(answer(&ledger, "early"), None, "no deriver: none served");
            // Installed on a ledger that has state: built from it before it is served.
            assert!(!ledger.install_answers(Arc::new(Upper("1"))).unwrap());
            assert!(!ledger.answers_ready());
            assert_eq!(ledger.rebuild_answers().unwrap(), 1);
            assert_eq!(answer(&ledger, "early").as_deref(), Some("\"E\""));
            // Each commit re-derives the answers of the keys it wrote, in its transaction.
            ledger
                .propose(&Set, vec![set(&user, "k", "v1")], 3, certify)
                .unwrap();
            assert_eq!(answer(&ledger, "k").as_deref(), Some("\"V1\""));
            ledger
                .propose(&Set, vec![set(&user, "k", "v2")], 4, certify)
                .unwrap();
            assert_eq!(answer(&ledger, "k").as_deref(), Some("\"V2\""));
            ledger
                .propose(&Set, vec![set(&user, "early", "gone")], 5, certify)
                .unwrap();
            assert_eq!(answer(&ledger, "early"), None, "a derived none removes it");

            // A follower applying the same blocks keeps the same answers.
            let blocks: Vec<Block> = ledger
                .block_range_json(0, 10, 1 << 20)
                .unwrap()
                .iter()
                .map(|b| serde_json::from_slice(b).unwrap())
                .collect();
            let follower =
                Ledger::create_certified(b.path(), genesis, blocks[0].certificate.clone()).unwrap();
            assert!(!follower.install_answers(Arc::new(Upper("1"))).unwrap());
            follower.rebuild_answers().unwrap();
            for block in blocks.into_iter().skip(1) {
                follower.apply_block(&Set, block).unwrap();
            }
            assert_eq!(answer(&follower, "k").as_deref(), Some("\"V2\""));
            assert_eq!(answer(&follower, "early"), None);
        }
        {
            // Reopened by the same deriver: current, served at once.
            let ledger = Ledger::open(a.path()).unwrap();
            assert_eq!(answer(&ledger, "k"), None, "not served before the install");
            assert!(ledger.install_answers(Arc::new(Upper("1"))).unwrap());
            assert_eq!(answer(&ledger, "k").as_deref(), Some("\"V2\""));
        }
        {
            // A block committed by a build without the deriver...
            let ledger = Ledger::open(a.path()).unwrap();
            ledger
                .propose(&Set, vec![set(&user, "k", "v3")], 6, certify)
                .unwrap();
        }
        {
            // ... leaves the table behind the head: not served until rebuilt.
            let ledger = Ledger::open(a.path()).unwrap();
            assert!(!ledger.install_answers(Arc::new(Upper("1"))).unwrap());
            assert_eq!(answer(&ledger, "k"), None);
            ledger.rebuild_answers().unwrap();
            assert_eq!(answer(&ledger, "k").as_deref(), Some("\"V3\""));
        }
        // Another version (another rendering) rebuilds it too.
        let ledger = Ledger::open(a.path()).unwrap();
        assert!(!ledger.install_answers(Arc::new(Upper("2"))).unwrap());
    }

    #[test]
    fn a_rebuild_in_chunks_derives_every_subject_once_past_all_versions() {
        let dir = tempfile::tempdir().unwrap();
        let validator = PrivateKey::generate();
        let user = PrivateKey::generate();
        let ledger =
            Ledger::create(dir.path(), test_genesis(&[&validator]), &[&validator]).unwrap();
        let certify = |h: &BlockHeader| Ok(CommitCertificate::sign(h, &[&validator]));
        for round in 0..3 {
            let txs = (0..5)
                .map(|i| set(&user, &format!("k{i}"), &format!("r{round}")))
                .collect();
            ledger.propose(&Set, txs, 2 + round, certify).unwrap();
        }
        ledger.install_answers(Arc::new(Upper("1"))).unwrap();
        // Chunks of 2 over 5 keys of 3 versions each (and the genesis key, no subject).
        assert_eq!(ledger.rebuild_answers_in_chunks(2).unwrap(), 5);
        for i in 0..5 {
            assert_eq!(answer(&ledger, &format!("k{i}")).as_deref(), Some("\"R2\""));
        }
    }

    #[test]
    fn a_follower_ledger_is_created_from_a_peers_block_0_and_applies_its_blocks() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let validator = PrivateKey::generate();
        let user = PrivateKey::generate();
        let genesis = test_genesis(&[&validator]);
        let peer = Ledger::create(a.path(), genesis.clone(), &[&validator]).unwrap();
        let certify = |h: &BlockHeader| Ok(CommitCertificate::sign(h, &[&validator]));
        for i in 0..3 {
            let txs = vec![set(&user, &format!("k{i}"), "v")];
            peer.propose(&Set, txs, 2 + i, certify).unwrap();
        }
        let raw = peer.block_range_json(0, 10, 1 << 20).unwrap();
        assert_eq!(raw.len(), 4);
        assert_eq!(peer.block_range_json(1, 2, 1 << 20).unwrap().len(), 2);
        assert_eq!(
            peer.block_range_json(1, 10, 1).unwrap().len(),
            1,
            "always one"
        );
        assert!(peer.block_range_json(4, 10, 1 << 20).unwrap().is_empty());
        let blocks: Vec<Block> = raw
            .iter()
            .map(|b| serde_json::from_slice(b).unwrap())
            .collect();

        // A certificate that does not commit this genesis's block 0 leaves nothing behind.
        let mut other = genesis.clone();
        other.time = 2;
        assert!(Ledger::create_certified(b.path(), other, blocks[0].certificate.clone()).is_err());
        assert!(!Ledger::exists(b.path()));

        let follower =
            Ledger::create_certified(b.path(), genesis, blocks[0].certificate.clone()).unwrap();
        for block in blocks.into_iter().skip(1) {
            follower.apply_block(&Set, block).unwrap();
        }
        assert_eq!(follower.head(), peer.head());
        assert_eq!(follower.get("kv/k2").unwrap().as_deref(), Some("\"v\""));
    }

    #[test]
    fn a_block_stays_under_its_byte_limit() {
        let dir = tempfile::tempdir().unwrap();
        let validator = PrivateKey::generate();
        let user = PrivateKey::generate();
        let genesis = test_genesis(&[&validator]);
        let ledger = Ledger::create(dir.path(), genesis, &[&validator]).unwrap();
        let certify = |h: &BlockHeader| Ok(CommitCertificate::sign(h, &[&validator]));
        // 12 MiB of transactions, more than one block holds.
        let big = "x".repeat(60_000);
        let txs: Vec<VerifiedTransaction> = (0..210)
            .map(|i| set(&user, &format!("k{i}"), &big))
            .collect();
        let proposal = ledger.propose(&Set, txs, 2, certify).unwrap();
        let included = proposal
            .outcomes
            .iter()
            .filter(|o| matches!(o, TxOutcome::Included { .. }))
            .count();
        let full = proposal
            .outcomes
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    TxOutcome::Rejected {
                        reason: TxRejection::BlockFull,
                        ..
                    }
                )
            })
            .count();
        assert!(included > 100, "{included} included");
        assert_eq!(included + full, 210, "the rest is left for the next block");
        let stored = ledger.block_range_json(1, 1, usize::MAX).unwrap();
        assert!(
            stored[0].len() <= MAX_BLOCK_BYTES,
            "{} bytes",
            stored[0].len()
        );

        // A block whose transactions are over the limit is refused before anything is checked.
        let block = ledger.block(1).unwrap().unwrap();
        let other = tempfile::tempdir().unwrap();
        let follower = Ledger::create_certified(
            other.path(),
            ledger.genesis().clone(),
            ledger.block(0).unwrap().unwrap().certificate,
        )
        .unwrap();
        let mut over = block.clone();
        over.transactions
            .extend((0..30).map(|i| set(&user, &format!("more{i}"), &big).into_inner()));
        let e = follower.apply_block(&Set, over).unwrap_err();
        assert!(e.to_string().contains("over the limit"), "{e}");
        assert_eq!(follower.height(), 0);
        follower.apply_block(&Set, block).unwrap();
        assert_eq!(follower.height(), 1);
    }

    #[test]
    fn blocks_are_found_by_hash_and_keys_counted_and_listed_by_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let validator = PrivateKey::generate();
        let user = PrivateKey::generate();
        let genesis = test_genesis(&[&validator]);
        let ledger = Ledger::create(dir.path(), genesis, &[&validator]).unwrap();
        let certify = |h: &BlockHeader| Ok(CommitCertificate::sign(h, &[&validator]));
        let txs = vec![set(&user, "a", "1"), set(&user, "b", "2")];
        ledger.propose(&Set, txs, 2, certify).unwrap();
        // `kv/a` again: a new version, not a new key.
        let txs = vec![set(&user, "a", "3"), set(&user, "c", "4")];
        ledger.propose(&Set, txs, 3, certify).unwrap();
        let check = |ledger: &Ledger| {
            for height in 0..=2 {
                let hash = ledger.block(height).unwrap().unwrap().header.hash();
                assert_eq!(ledger.find_block(&hash).unwrap(), Some(height));
            }
            assert_eq!(ledger.find_block(&Hash([7; 32])).unwrap(), None);
            assert_eq!(ledger.key_count("kv").unwrap(), 3);
            assert_eq!(ledger.key_count("chain").unwrap(), 1);
            assert_eq!(ledger.key_count("did").unwrap(), 0);
            let first = ledger.keys_with_prefix("kv/", None, 2).unwrap();
            let keys: Vec<&str> = first.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(keys, ["kv/a", "kv/b"]);
            // The current value, not the first version.
            assert_eq!(first[0].1, "\"3\"");
            let rest = ledger.keys_with_prefix("kv/", Some("kv/b"), 2).unwrap();
            assert_eq!(rest, vec![("kv/c".to_string(), "\"4\"".to_string())]);
            assert!(ledger
                .keys_with_prefix("kv/", Some("kv/c"), 2)
                .unwrap()
                .is_empty());
            assert!(ledger.keys_with_prefix("zz/", None, 2).unwrap().is_empty());
            let newest = ledger.history_page("kv/a", None, 1).unwrap();
            assert_eq!(newest, vec![(2, "\"3\"".to_string())]);
            let older = ledger.history_page("kv/a", Some(2), 5).unwrap();
            assert_eq!(older, vec![(1, "\"1\"".to_string())]);
            assert!(ledger.history_page("kv/a", Some(1), 5).unwrap().is_empty());
        };
        check(&ledger);
        drop(ledger);

        // A ledger written before the indexes existed is indexed when opened.
        let db = Database::open(dir.path().join(DB_FILE)).unwrap();
        let wtx = db.begin_write().unwrap();
        wtx.delete_table(BLOCK_HASHES).unwrap();
        wtx.delete_table(KEY_COUNTS).unwrap();
        wtx.open_table(META).unwrap().remove(INDEXES_META).unwrap();
        wtx.commit().unwrap();
        drop(db);
        let ledger = Ledger::open(dir.path()).unwrap();
        check(&ledger);
    }

    #[test]
    fn validators_check_a_proposed_block_without_committing_it() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<PrivateKey> = (0..4).map(|_| PrivateKey::generate()).collect();
        let user = PrivateKey::generate();
        let genesis = test_genesis(&keys.iter().collect::<Vec<_>>());
        // What each validator signs alone is the header `create` builds.
        let header0 = Ledger::genesis_header(&genesis).unwrap();
        let signers: Vec<&PrivateKey> = keys[..3].iter().collect();
        let ledger = Ledger::create(dir.path(), genesis, &signers).unwrap();
        assert_eq!(ledger.head().header, header0);

        // A block built (and certified by a quorum) on one ledger, as its proposer names it.
        let other = tempfile::tempdir().unwrap();
        let proposer_ledger = Ledger::create_certified(
            other.path(),
            ledger.genesis().clone(),
            ledger.head().certificate,
        )
        .unwrap();
        let txs = vec![set(&user, "a", "1"), set(&user, "b", "2")];
        let proposer = keys[1].public_key().to_encoded();
        let mut seen = None;
        proposer_ledger
            .propose_as(&Set, txs, 2, &proposer, |header, included| {
                seen = Some((
                    header.clone(),
                    included.iter().map(|t| t.tx().clone()).collect::<Vec<_>>(),
                ));
                Ok(CommitCertificate::sign(header, &signers))
            })
            .unwrap();
        let (header, transactions) = seen.unwrap();
        assert_eq!(header.proposer, proposer);

        // Checked: nothing is committed.
        ledger.check_block(&Set, &header, &transactions).unwrap();
        assert_eq!(ledger.height(), 0);
        assert_eq!(ledger.get("kv/a").unwrap(), None);
        // A wrong state root, a transaction left out, a proposer outside the set: refused.
        let mut bad = header.clone();
        bad.state_root = Hash([9; 32]);
        let e = ledger.check_block(&Set, &bad, &transactions).unwrap_err();
        assert!(e.to_string().contains("state root"), "{e}");
        assert!(ledger
            .check_block(&Set, &header, &transactions[..1])
            .is_err());
        let mut stranger = header.clone();
        stranger.proposer = user.public_key().to_encoded();
        assert!(ledger.check_block(&Set, &stranger, &transactions).is_err());
        // The checked block then applies with its certificate.
        let block = proposer_ledger.block(1).unwrap().unwrap();
        ledger.apply_block(&Set, block).unwrap();
        assert_eq!(ledger.head(), proposer_ledger.head());
    }

    /// A validator verifies a transaction's signature once, when it pools it: a block of
    /// transactions verified already is checked and applied by every other rule.
    #[test]
    fn a_block_of_verified_transactions_is_checked_and_applied_by_every_other_rule() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<PrivateKey> = (0..4).map(|_| PrivateKey::generate()).collect();
        let user = PrivateKey::generate();
        let genesis = test_genesis(&keys.iter().collect::<Vec<_>>());
        let signers: Vec<&PrivateKey> = keys[..3].iter().collect();
        let ledger = Ledger::create(dir.path(), genesis, &signers).unwrap();
        let other = tempfile::tempdir().unwrap();
        let proposer_ledger = Ledger::create_certified(
            other.path(),
            ledger.genesis().clone(),
            ledger.head().certificate,
        )
        .unwrap();
        let txs = vec![set(&user, "a", "1"), set(&user, "b", "2")];
        let proposer = keys[2].public_key().to_encoded();
        let mut seen = None;
        proposer_ledger
            .propose_as(&Set, txs, 2, &proposer, |header, included| {
                seen = Some((header.clone(), included.to_vec()));
                Ok(CommitCertificate::sign(header, &signers))
            })
            .unwrap();
        let (header, verified) = seen.unwrap();

        ledger
            .check_block_verified(&Set, &header, verified.clone())
            .unwrap();
        assert_eq!(ledger.height(), 0);
        let mut bad = header.clone();
        bad.state_root = Hash([9; 32]);
        let e = ledger
            .check_block_verified(&Set, &bad, verified.clone())
            .unwrap_err();
        assert!(e.to_string().contains("state root"), "{e}");
        assert!(ledger
            .check_block_verified(&Set, &header, verified[..1].to_vec())
            .is_err());
        let mut stranger = header.clone();
        stranger.proposer = user.public_key().to_encoded();
        assert!(ledger
            .check_block_verified(&Set, &stranger, verified.clone())
            .is_err());
        // A certificate for another block, or of too few validators: refused, nothing written.
        let e = ledger
            .apply_block_verified(
                &Set,
                header.clone(),
                verified.clone(),
                CommitCertificate::sign(&bad, &signers),
            )
            .unwrap_err();
        assert_eq!(ledger.height(), 0, "{e}");
        assert!(ledger
            .apply_block_verified(
                &Set,
                header.clone(),
                verified.clone(),
                CommitCertificate::sign(&header, &signers[..2]),
            )
            .is_err());
        let block = proposer_ledger.block(1).unwrap().unwrap();
        ledger
            .apply_block_verified(&Set, header, verified, block.certificate.clone())
            .unwrap();
        assert_eq!(ledger.head(), proposer_ledger.head());
        assert_eq!(
            serde_json::to_value(ledger.block(1).unwrap().unwrap()).unwrap(),
            serde_json::to_value(block).unwrap()
        );
    }

    /// A checked block is committed as its check computed it, with no second execution, to
    /// exactly the ledger a re-executing validator has; once the head is not its parent any
    /// more, what was computed is refused and nothing is written.
    #[test]
    fn a_checked_block_is_committed_without_executing_it_again() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        /// [`Set`], counting its executions.
        struct Counted(AtomicUsize);
        impl StateMachine for Counted {
            type Rejection = Refused;
            fn execute(
                &self,
                tx: &VerifiedTransaction,
                ctx: &ExecContext<'_>,
                view: &dyn StateView,
            ) -> Result<Result<Writes, Refused>, LedgerError> {
                self.0.fetch_add(1, Ordering::SeqCst);
                Set.execute(tx, ctx, view)
            }
        }
        let keys: Vec<PrivateKey> = (0..4).map(|_| PrivateKey::generate()).collect();
        let user = PrivateKey::generate();
        let signers: Vec<&PrivateKey> = keys[..3].iter().collect();
        let genesis = test_genesis(&keys.iter().collect::<Vec<_>>());
        let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
        let proposer = Ledger::create(dirs[0].path(), genesis, &signers).unwrap();
        let certified = |dir: &Path| {
            Ledger::create_certified(dir, proposer.genesis().clone(), proposer.head().certificate)
                .unwrap()
        };
        let (voter, replayer) = (certified(dirs[1].path()), certified(dirs[2].path()));
        let txs = vec![set(&user, "a", "1"), set(&user, "b", "2")];
        let machine = Counted(AtomicUsize::new(0));
        let address = keys[1].public_key().to_encoded();

        let (built, outcomes) = proposer
            .build_block_kept(&machine, txs, 5, &address)
            .unwrap();
        assert!(outcomes
            .iter()
            .all(|o| matches!(o, TxOutcome::Included { .. })));
        let header = built.header().clone();
        assert_eq!((built.id(), built.height()), (header.hash(), 1));
        let checked = voter
            .check_block_kept(&machine, &header, built.transactions().to_vec())
            .unwrap();
        assert_eq!(checked.keys().collect::<Vec<_>>(), ["kv/a", "kv/b"]);
        let certificate = CommitCertificate::sign(&header, &signers);
        // A certificate of another block: refused, nothing written.
        let mut other = header.clone();
        other.time += 1;
        let e = voter
            .apply_checked(
                voter
                    .check_block_kept(&Set, &header, built.transactions().to_vec())
                    .unwrap(),
                CommitCertificate::sign(&other, &signers),
            )
            .unwrap_err();
        assert_eq!(voter.height(), 0, "{e}");

        let executed = machine.0.load(Ordering::SeqCst);
        let included = built.transactions().to_vec();
        proposer.apply_checked(built, certificate.clone()).unwrap();
        voter.apply_checked(checked, certificate.clone()).unwrap();
        assert_eq!(machine.0.load(Ordering::SeqCst), executed, "executed again");
        replayer
            .apply_block_verified(&Set, header.clone(), included, certificate.clone())
            .unwrap();
        for ledger in [&proposer, &voter] {
            assert_eq!(ledger.head(), replayer.head());
            assert_eq!(ledger.get("kv/b").unwrap(), replayer.get("kv/b").unwrap());
            assert_eq!(
                ledger.find_transaction(&header_tx(&replayer)).unwrap(),
                Some((1, 0))
            );
            assert_eq!(
                serde_json::to_value(ledger.block(1).unwrap().unwrap()).unwrap(),
                serde_json::to_value(replayer.block(1).unwrap().unwrap()).unwrap()
            );
            assert_eq!(
                ledger.prove("kv/a").unwrap(),
                replayer.prove("kv/a").unwrap()
            );
        }

        // Checked on the head before a block that came another way: refused at commit.
        let next = vec![set(&user, "c", "3")];
        let (stale, _) = voter
            .build_block_kept(&Set, next.clone(), 6, &address)
            .unwrap();
        let (moved, _) = replayer.build_block_kept(&Set, next, 7, &address).unwrap();
        let moved_certificate = CommitCertificate::sign(moved.header(), &signers);
        voter
            .apply_block_verified(
                &Set,
                moved.header().clone(),
                moved.transactions().to_vec(),
                moved_certificate,
            )
            .unwrap();
        let stale_certificate = CommitCertificate::sign(stale.header(), &signers);
        let e = voter.apply_checked(stale, stale_certificate).unwrap_err();
        assert!(e.to_string().contains("the head is at 2"), "{e}");
        assert_eq!(voter.height(), 2);
    }

    /// The hash of the first transaction of block 1.
    fn header_tx(ledger: &Ledger) -> Hash {
        ledger.block(1).unwrap().unwrap().transactions[0].hash()
    }

    /// A transaction carrying a validator-set change, signed by `signers` of chain `t`.
    fn change(from: u64, keys: &[&PrivateKey], signers: &[&PrivateKey]) -> VerifiedTransaction {
        let mut change = ValidatorChange::new(
            from,
            keys.iter().map(|k| k.public_key().to_encoded()).collect(),
        );
        for k in signers {
            change.sign("t", k);
        }
        let submitter = PrivateKey::generate();
        TxBody {
            chain_id: "t".into(),
            signer: "validators".into(),
            public_key: submitter.public_key().to_encoded(),
            nonce: TxBody::random_nonce(),
            valid_until: 50,
            operation: change.to_operation(),
        }
        .sign(&submitter)
        .verify()
        .unwrap()
    }

    #[test]
    fn a_validator_set_change_takes_over_at_its_height_and_proofs_carry_the_handoffs() {
        let dir = tempfile::tempdir().unwrap();
        let old: Vec<PrivateKey> = (0..4).map(|_| PrivateKey::generate()).collect();
        let fifth = PrivateKey::generate();
        let user = PrivateKey::generate();
        let old_refs: Vec<&PrivateKey> = old.iter().collect();
        let ledger = Ledger::create(dir.path(), test_genesis(&old_refs), &old_refs[..3]).unwrap();
        let genesis_set = ledger.validators().clone();
        let mut five_refs = old_refs.clone();
        five_refs.push(&fifth);
        fn certify(
            signers: Vec<&PrivateKey>,
        ) -> impl FnOnce(&BlockHeader) -> Result<CommitCertificate, LedgerError> + '_ {
            move |h: &BlockHeader| Ok(CommitCertificate::sign(h, &signers))
        }

        // Refused with their reasons: too few signers, an outsider, a past height.
        let refusals = [
            change(10, &five_refs, &old_refs[..2]),
            change(10, &five_refs, &[&old[0], &old[1], &fifth]),
            change(2, &five_refs, &old_refs[..3]),
        ];
        let p = ledger
            .propose(&Set, refusals.to_vec(), 2, certify(old_refs[..3].to_vec()))
            .unwrap();
        assert!(p.block.is_none());
        let reasons: Vec<String> = p
            .outcomes
            .iter()
            .map(|o| match o {
                TxOutcome::Rejected { reason, .. } => reason.to_string(),
                TxOutcome::Included { .. } => "included".into(),
            })
            .collect();
        assert!(reasons[0].contains("2 signatures of the current set, a quorum is 3"));
        assert!(reasons[1].contains("not a validator of the current set"));
        assert!(reasons[2].contains("take over at 3 at the earliest"));

        // Height 1 holds the change to five from height 3; a second change is then pending.
        let p = ledger
            .propose(
                &Set,
                vec![change(3, &five_refs, &old_refs[1..])],
                2,
                certify(old_refs[..3].to_vec()),
            )
            .unwrap();
        assert_eq!(p.block.unwrap().header.height, 1);
        assert_eq!(ledger.validators_at(2), genesis_set);
        assert_eq!(ledger.validators_at(3).keys().len(), 5);
        let p = ledger
            .propose(
                &Set,
                vec![change(9, &old_refs, &old_refs[..3]), set(&user, "a", "1")],
                2,
                certify(old_refs[..3].to_vec()),
            )
            .unwrap();
        assert!(matches!(
            &p.outcomes[0],
            TxOutcome::Rejected {
                reason: TxRejection::Validators(ChangeError::Pending(3)),
                ..
            }
        ));
        assert_eq!(ledger.height(), 2);
        // From height 3 the old quorum no longer commits: five need four votes.
        let refused = ledger.propose(
            &Set,
            vec![set(&user, "b", "2")],
            2,
            certify(old_refs[..3].to_vec()),
        );
        assert!(matches!(
            refused,
            Err(LedgerError::Certificate(CertificateError::NoQuorum {
                got: 3,
                needed: 4
            }))
        ));
        ledger
            .propose(
                &Set,
                vec![set(&user, "b", "2")],
                2,
                certify(vec![&old[1], &old[2], &old[3], &fifth]),
            )
            .unwrap();

        // A proof anchored at 3 carries the hand-off and verifies from the genesis keys.
        let proof = ledger.prove("kv/b").unwrap();
        assert_eq!(proof.handoffs.len(), 1);
        proof.verify(&genesis_set).unwrap();
        let text = serde_json::to_string(&proof).unwrap();
        let back: RecordProof = serde_json::from_str(&text).unwrap();
        back.verify(&genesis_set).unwrap();
        // Without the hand-off, or with a hand-off whose certificate was not the old set's,
        // it does not.
        let mut bare = proof.clone();
        bare.handoffs.clear();
        assert!(matches!(
            bare.verify(&genesis_set),
            Err(RecordProofError::Certificate(_))
        ));
        let mut forged = proof.clone();
        forged.handoffs[0].block.certificate =
            CommitCertificate::sign(&forged.handoffs[0].block.header, &[&fifth]);
        assert!(matches!(
            forged.verify(&genesis_set),
            Err(RecordProofError::Handoff(HandoffError::Certificate { .. }))
        ));
        let mut moved = proof.clone();
        moved.handoffs[0].index = 1;
        assert!(moved.verify(&genesis_set).is_err());

        // A reopened ledger knows the schedule (`sparkid ledger verify` across changes is
        // tests/validator_set.rs's).
        drop(ledger);
        let ledger = Ledger::open(dir.path()).unwrap();
        assert_eq!(ledger.validators_at(3).keys().len(), 5);
        assert_eq!(ledger.set_changes(), 1);
        ledger.prove("kv/b").unwrap().verify(&genesis_set).unwrap();
        // A follower applies the blocks across the change from a peer's copy.
        let follower_dir = tempfile::tempdir().unwrap();
        let follower = Ledger::create_certified(
            follower_dir.path(),
            ledger.genesis().clone(),
            ledger.block(0).unwrap().unwrap().certificate,
        )
        .unwrap();
        for h in 1..=3 {
            follower
                .apply_block(&Set, ledger.block(h).unwrap().unwrap())
                .unwrap();
        }
        assert_eq!(follower.validators_at(3).keys().len(), 5);
    }
}

/// Test support, not part of the ledger's interface: rewrites a closed ledger's stored data
/// behind its back, so that tests can show [`crate::verify_chain`] (and `sparkid ledger verify`)
/// refusing each kind of damage. Nothing in a running node calls it.
#[doc(hidden)]
pub mod tamper {
    use std::path::Path;

    use redb::{Database, ReadableTable};
    use sparkid_bid::PrivateKey;

    use super::{json_bytes, BLOCKS, DB_FILE, TXS};
    use crate::block::{tx_root, Block, CommitCertificate};
    use crate::error::LedgerError;
    use crate::hash::Hash;

    /// Applies `edit` to the stored block at `height`, then certifies the edited header again
    /// with `validator` (a dev node's own key), so that the damage lies past the certificate
    /// check: a block that verifies as signed but lies about its content.
    pub fn edit_block(
        dir: &Path,
        height: u64,
        validator: &PrivateKey,
        edit: impl FnOnce(&mut Block),
    ) -> Result<(), LedgerError> {
        let db = Database::open(dir.join(DB_FILE))?;
        let wtx = db.begin_write()?;
        {
            let mut table = wtx.open_table(BLOCKS)?;
            let mut block: Block = {
                let bytes = table
                    .get(height)?
                    .ok_or_else(|| LedgerError::Corrupt(format!("block {height} is missing")))?;
                serde_json::from_slice(bytes.value())
                    .map_err(|e| LedgerError::Corrupt(e.to_string()))?
            };
            edit(&mut block);
            block.certificate = CommitCertificate::sign(&block.header, &[validator]);
            table.insert(height, json_bytes(&block).as_slice())?;
        }
        wtx.commit()?;
        Ok(())
    }

    /// Sets a block header's `txRoot` and `txCount` to what its transactions give (after an
    /// edit of the transactions), so that the damage lies past the transaction root check.
    pub fn reseal_tx_root(block: &mut Block) {
        let hashes: Vec<Hash> = block.transactions.iter().map(|t| t.hash()).collect();
        block.header.tx_root = tx_root(&hashes);
        block.header.tx_count = hashes.len() as u32;
    }

    /// Removes a transaction from the replay index (transaction hash → height).
    pub fn unindex_transaction(dir: &Path, hash: &Hash) -> Result<bool, LedgerError> {
        let db = Database::open(dir.join(DB_FILE))?;
        let wtx = db.begin_write()?;
        let removed = wtx.open_table(TXS)?.remove(&hash.0)?.is_some();
        wtx.commit()?;
        Ok(removed)
    }
}
