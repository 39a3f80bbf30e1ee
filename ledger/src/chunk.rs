//! The state tree's nodes as stored: in chunks of four levels.
//!
//! Storing each binary node as its own record costs a 34-byte key and a B-tree entry for every
//! 65 bytes of hashes, and a block of random updates rewrites thousands of them, scattered over
//! the table's pages. A chunk is the subtree of [`LEVELS`] levels below a position whose depth is
//! a multiple of [`LEVELS`]: the leaves in it (in full), the hashes of the chunks below it, and,
//! for the nodes in between, only their shape. Their hashes are recomputed (at most 15) when the
//! chunk is read, and checked against what the parent expects like any node read
//! ([`crate::smt`]). On a tree of 30,000 keys, a block of 1,000 updates then writes a fifth as
//! many records as with a record per node, and the table has a third as many pages.
//!
//! A node at a depth that is a multiple of [`LEVELS`] (other than the root) sits on the bottom
//! level of its parent's chunk: a leaf is stored there in full, an internal node as its hash,
//! with its children in its own chunk.

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use crate::hash::Hash;
use crate::smt::{leaf_hash, Node, NodeRead, NodeStore, Position};

/// Levels per chunk.
pub(crate) const LEVELS: usize = 4;
/// Heap-ordered slots: 1 is the chunk's root, slot i has children 2i and 2i + 1.
const SLOTS: usize = 1 << (LEVELS + 1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Empty,
    Leaf {
        key: Hash,
        value: Hash,
    },
    /// Above the bottom level: an internal node and its children's hashes.
    Internal {
        left: Hash,
        right: Hash,
    },
    /// On the bottom level: an internal node whose children are in the chunk below; its hash.
    Below(Hash),
}

#[derive(Debug, Clone)]
struct Chunk {
    slots: [Slot; SLOTS],
    dirty: bool,
}

const EMPTY: u8 = 0;
const LEAF: u8 = 1;
const INTERNAL: u8 = 2;
const BELOW: u8 = 3;

impl Chunk {
    /// Boxed: a chunk is two kilobytes, moved around only as a pointer.
    fn empty() -> Box<Chunk> {
        Box::new(Chunk {
            slots: [Slot::Empty; SLOTS],
            dirty: false,
        })
    }

    /// Pre-order: a tag per slot, then a leaf's key and value hashes, or a `Below` hash; an
    /// internal node's children follow it.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        self.encode_at(1, &mut out);
        // Only the shape of internal nodes is stored: what it hashes to must be what they name.
        debug_assert!(Chunk::decode(&out).is_some_and(|c| c.slots == self.slots));
        out
    }

    fn encode_at(&self, index: usize, out: &mut Vec<u8>) {
        match self.slots[index] {
            Slot::Empty => out.push(EMPTY),
            Slot::Leaf { key, value } => {
                out.push(LEAF);
                out.extend_from_slice(&key.0);
                out.extend_from_slice(&value.0);
            }
            Slot::Internal { .. } => {
                out.push(INTERNAL);
                self.encode_at(2 * index, out);
                self.encode_at(2 * index + 1, out);
            }
            Slot::Below(hash) => {
                out.push(BELOW);
                out.extend_from_slice(&hash.0);
            }
        }
    }

    fn decode(bytes: &[u8]) -> Option<Box<Chunk>> {
        let mut chunk = Chunk::empty();
        let mut at = 0;
        chunk.decode_at(bytes, &mut at, 1, 0)?;
        (at == bytes.len()).then_some(chunk)
    }

    /// Reads the slot at `index` and below; returns its hash.
    fn decode_at(
        &mut self,
        bytes: &[u8],
        at: &mut usize,
        index: usize,
        level: usize,
    ) -> Option<Hash> {
        let tag = *bytes.get(*at)?;
        *at += 1;
        match tag {
            EMPTY => Some(Hash::ZERO),
            LEAF => {
                let key = read_hash(bytes, at)?;
                let value = read_hash(bytes, at)?;
                self.slots[index] = Slot::Leaf { key, value };
                Some(leaf_hash(&key, &value))
            }
            INTERNAL if level < LEVELS => {
                let left = self.decode_at(bytes, at, 2 * index, level + 1)?;
                let right = self.decode_at(bytes, at, 2 * index + 1, level + 1)?;
                self.slots[index] = Slot::Internal { left, right };
                Some(Node::Internal { left, right }.hash())
            }
            BELOW if level == LEVELS => {
                let h = read_hash(bytes, at)?;
                self.slots[index] = Slot::Below(h);
                Some(h)
            }
            _ => None,
        }
    }
}

fn read_hash(bytes: &[u8], at: &mut usize) -> Option<Hash> {
    let h = Hash(bytes.get(*at..*at + 32)?.try_into().ok()?);
    *at += 32;
    Some(h)
}

/// Where encoded chunks are read from.
pub(crate) trait ChunkSource {
    /// The storage error.
    type Error;
    /// Calls `f` with the bytes of the chunk whose root is `id`, if there is one.
    fn with_chunk<T>(
        &mut self,
        id: &Position,
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, Self::Error>;
}

/// Why a chunk could not be read.
#[derive(Debug)]
pub(crate) enum ChunkError<E> {
    /// The storage failed.
    Store(E),
    /// A stored chunk does not decode.
    Corrupt(Position),
}

impl<E: fmt::Display> fmt::Display for ChunkError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkError::Store(e) => write!(f, "{e}"),
            ChunkError::Corrupt(at) => write!(
                f,
                "the chunk at depth {} does not decode ({})",
                at.depth(),
                hex::encode(at.encode())
            ),
        }
    }
}

/// Tree nodes over chunks read from a [`ChunkSource`]; what is written stays here until
/// [`Chunks::into_written`].
pub(crate) struct Chunks<S> {
    source: S,
    /// Chunks read or written so far; `None`: there is none at that root.
    loaded: HashMap<Position, Option<Box<Chunk>>, BuildHasherDefault<PositionHasher>>,
}

/// Hashes positions by mixing their words: their prefixes are hash bits already, so the
/// default hasher's resistance to chosen keys buys nothing here but time.
#[derive(Default)]
struct PositionHasher(u64);

impl Hasher for PositionHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for word in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..word.len()].copy_from_slice(word);
            self.write_u64(u64::from_le_bytes(w));
        }
    }
    fn write_u64(&mut self, word: u64) {
        // FxHash's step.
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn write_u16(&mut self, n: u16) {
        self.write_u64(n as u64);
    }
}

/// The chunk that holds `at` above its bottom level: the root of its group of levels.
fn chunk_root(at: &Position) -> Position {
    at.ancestor(at.depth() - at.depth() % LEVELS)
}

/// The slot of `at` in the chunk rooted at depth `root_depth`.
fn slot_index(at: &Position, root_depth: usize) -> usize {
    (root_depth..at.depth()).fold(1, |i, bit| 2 * i + at.bit(bit) as usize)
}

impl<S: ChunkSource> Chunks<S> {
    /// Nodes over `source`.
    pub(crate) fn new(source: S) -> Chunks<S> {
        Chunks {
            source,
            loaded: HashMap::default(),
        }
    }

    fn chunk(&mut self, id: &Position) -> Result<Option<&mut Chunk>, ChunkError<S::Error>> {
        if !self.loaded.contains_key(id) {
            let read = self
                .source
                .with_chunk(id, Chunk::decode)
                .map_err(ChunkError::Store)?;
            let chunk = match read {
                None => None,
                Some(Some(chunk)) => Some(chunk),
                Some(None) => return Err(ChunkError::Corrupt(*id)),
            };
            self.loaded.insert(*id, chunk);
        }
        Ok(self.loaded.get_mut(id).and_then(|c| c.as_deref_mut()))
    }

    fn chunk_or_new(&mut self, id: &Position) -> Result<&mut Chunk, ChunkError<S::Error>> {
        if self.chunk(id)?.is_none() {
            self.loaded.insert(*id, Some(Chunk::empty()));
        }
        self.chunk(id)?.ok_or(ChunkError::Corrupt(*id))
    }

    /// The chunks written, in position order, encoded.
    pub(crate) fn into_written(self) -> Vec<(Position, Vec<u8>)> {
        let mut out: Vec<(Position, Vec<u8>)> = self
            .loaded
            .into_iter()
            .filter_map(|(id, chunk)| chunk.filter(|c| c.dirty).map(|c| (id, c.encode())))
            .collect();
        out.sort_unstable_by_key(|(id, _)| *id);
        out
    }
}

impl<S: ChunkSource> NodeRead for Chunks<S> {
    type Error = ChunkError<S::Error>;

    fn get_node(&mut self, at: &Position) -> Result<Option<Node>, Self::Error> {
        let depth = at.depth();
        if depth > 0 && depth.is_multiple_of(LEVELS) {
            // On the bottom level of the parent's chunk: a leaf is there in full.
            let parent = at.ancestor(depth - LEVELS);
            let slot = match self.chunk(&parent)? {
                None => return Ok(None),
                Some(chunk) => chunk.slots[slot_index(at, parent.depth())],
            };
            match slot {
                Slot::Empty => return Ok(None),
                Slot::Leaf { key, value } => return Ok(Some(Node::Leaf { key, value })),
                Slot::Below(_) => {}
                Slot::Internal { .. } => return Err(ChunkError::Corrupt(parent)),
            }
        }
        let root = chunk_root(at);
        let slot = match self.chunk(&root)? {
            None => return Ok(None),
            Some(chunk) => chunk.slots[slot_index(at, root.depth())],
        };
        match slot {
            Slot::Empty => Ok(None),
            Slot::Leaf { key, value } => Ok(Some(Node::Leaf { key, value })),
            Slot::Internal { left, right } => Ok(Some(Node::Internal { left, right })),
            Slot::Below(_) => Err(ChunkError::Corrupt(root)),
        }
    }
}

impl<S: ChunkSource> NodeStore for Chunks<S> {
    fn put_node(&mut self, at: Position, node: &Node) -> Result<(), Self::Error> {
        let depth = at.depth();
        if depth > 0 && depth.is_multiple_of(LEVELS) {
            let parent = at.ancestor(depth - LEVELS);
            let index = slot_index(&at, parent.depth());
            let chunk = self.chunk_or_new(&parent)?;
            chunk.dirty = true;
            match *node {
                Node::Leaf { key, value } => {
                    chunk.slots[index] = Slot::Leaf { key, value };
                    return Ok(());
                }
                Node::Internal { .. } => chunk.slots[index] = Slot::Below(node.hash()),
            }
        }
        let root = chunk_root(&at);
        let index = slot_index(&at, root.depth());
        let chunk = self.chunk_or_new(&root)?;
        chunk.dirty = true;
        chunk.slots[index] = match *node {
            Node::Leaf { key, value } => Slot::Leaf { key, value },
            Node::Internal { left, right } => Slot::Internal { left, right },
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::smt::{key_hash, prove, update, MemoryNodes};

    /// Encoded chunks in memory.
    #[derive(Default)]
    struct Stored(BTreeMap<Position, Vec<u8>>);

    impl ChunkSource for &Stored {
        type Error = std::convert::Infallible;
        fn with_chunk<T>(
            &mut self,
            id: &Position,
            f: impl FnOnce(&[u8]) -> T,
        ) -> Result<Option<T>, Self::Error> {
            Ok(self.0.get(id).map(|b| f(b)))
        }
    }

    fn updates(keys: impl Iterator<Item = String>, version: &str) -> Vec<(Hash, Hash)> {
        let mut u: Vec<(Hash, Hash)> = keys
            .map(|k| (key_hash(&k), Hash::of(&[k.as_bytes(), version.as_bytes()])))
            .collect();
        u.sort();
        u
    }

    #[test]
    fn chunked_nodes_give_the_binary_tree_its_roots_and_proofs() {
        let mut binary = MemoryNodes::default();
        let mut stored = Stored::default();
        let mut root = Hash::ZERO;
        let batches: Vec<Vec<(Hash, Hash)>> = vec![
            updates(["only".to_string()].into_iter(), "1"),
            updates((0..3).map(|i| format!("k{i}")), "1"),
            updates((0..500).map(|i| format!("k{i}")), "2"),
            updates((250..900).step_by(3).map(|i| format!("k{i}")), "3"),
            updates((0..40).map(|i| format!("fresh{i}")), "1"),
        ];
        for batch in &batches {
            let expected = update(&mut binary, root, batch).unwrap();
            // A fresh reader each block: every chunk goes through its encoding.
            let mut chunks = Chunks::new(&stored);
            let got = update(&mut chunks, root, batch).unwrap();
            assert_eq!(got, expected);
            let written = chunks.into_written();
            assert!(written.windows(2).all(|w| w[0].0 < w[1].0));
            for (id, bytes) in written {
                assert_eq!(
                    Chunk::decode(&bytes).map(|c| c.encode()),
                    Some(bytes.clone())
                );
                stored.0.insert(id, bytes);
            }
            root = got;
            for key in [
                "only", "k0", "k2", "k260", "k499", "k700", "fresh3", "absent", "zz",
            ] {
                let mut chunks = Chunks::new(&stored);
                assert_eq!(
                    prove(&mut chunks, root, key).unwrap(),
                    prove(&mut binary, root, key).unwrap(),
                    "{key}"
                );
            }
        }
        // Fewer records than nodes.
        assert!(stored.0.len() * 3 < binary.0.len(), "{}", stored.0.len());
    }

    #[test]
    fn a_damaged_chunk_is_an_error_not_an_answer() {
        let mut stored = Stored::default();
        let batch = updates((0..200).map(|i| format!("k{i}")), "1");
        let mut chunks = Chunks::new(&stored);
        let root = update(&mut chunks, Hash::ZERO, &batch).unwrap();
        for (id, bytes) in chunks.into_written() {
            stored.0.insert(id, bytes);
        }
        let (id, bytes) = stored
            .0
            .iter()
            .find(|(id, _)| id.depth() == LEVELS)
            .map(|(id, b)| (*id, b.clone()))
            .unwrap();
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        stored.0.insert(id, flipped);
        let results: Vec<_> = (0..200)
            .map(|i| prove(&mut Chunks::new(&stored), root, &format!("k{i}")).is_err())
            .collect();
        assert!(results.iter().any(|e| *e));
        stored.0.insert(id, bytes[..bytes.len() - 1].to_vec());
        assert!((0..200).any(|i| matches!(
            prove(&mut Chunks::new(&stored), root, &format!("k{i}")),
            Err(crate::smt::TreeError::Store(ChunkError::Corrupt(_)))
        )));
    }
}
