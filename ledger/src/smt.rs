//! The authenticated state: a sparse Merkle tree over 256-bit key hashes, with shortcut leaves.
//!
//! A leaf sits at the shallowest depth where it is alone in its subtree, so a tree of n keys is
//! about log2(n) deep. Hashes:
//! - empty subtree: 32 zero bytes;
//! - leaf: `SHA-256(0x00 ‖ key hash ‖ value hash)`;
//! - internal node: `SHA-256(0x01 ‖ left ‖ right)`.
//!
//! A proof is the leaf found on the key's path (the key's own, another key's, or none) and the
//! sibling hashes from the root down. [`StateProof::verify`] needs nothing but the root.
//!
//! Nodes are read and written by their [`Position`] in the tree, not by their hash: a node that
//! changes overwrites its old version in place (nothing to remove), and positions sort in
//! depth-first order, so a key's path ends in a subtree stored contiguously (the ledger groups
//! them further, four levels to a record). Keys are only ever set, never deleted, so a subtree
//! never shrinks and no stale node can hide below a leaf or an empty child. Every read is checked
//! against the hash its parent (or the root) expects, so a stale or foreign node is an error,
//! never a wrong answer.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::hash::Hash;

/// Where a node sits: its depth and the key bits that lead to it (the bits from `depth` on are
/// zero). The derived order is depth-first pre-order: a node, then its left subtree, then its
/// right subtree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    prefix: [u8; 32],
    depth: u16,
}

impl Position {
    /// The root.
    pub const ROOT: Position = Position {
        prefix: [0; 32],
        depth: 0,
    };

    /// The depth (0 for the root).
    pub fn depth(&self) -> usize {
        self.depth as usize
    }

    /// The child on side `bit` (false: left, bit 0; true: right, bit 1).
    pub fn child(&self, bit: bool) -> Position {
        let mut prefix = self.prefix;
        let d = self.depth as usize;
        if bit {
            prefix[d / 8] |= 0x80 >> (d % 8);
        }
        Position {
            prefix,
            depth: self.depth + 1,
        }
    }

    /// The ancestor at `depth` (at most this position's depth).
    pub fn ancestor(&self, depth: usize) -> Position {
        debug_assert!(depth <= self.depth());
        let mut prefix = [0u8; 32];
        let full = depth / 8;
        prefix[..full].copy_from_slice(&self.prefix[..full]);
        if !depth.is_multiple_of(8) {
            prefix[full] = self.prefix[full] & (0xFF << (8 - depth % 8));
        }
        Position {
            prefix,
            depth: depth as u16,
        }
    }

    /// Bit `i` of the path to this position (`i` below its depth).
    pub fn bit(&self, i: usize) -> bool {
        (self.prefix[i / 8] >> (7 - (i % 8))) & 1 == 1
    }

    /// 34 bytes, sorting as the positions do: the prefix, then the depth (big-endian).
    pub fn encode(&self) -> [u8; 34] {
        let mut out = [0u8; 34];
        out[..32].copy_from_slice(&self.prefix);
        out[32..].copy_from_slice(&self.depth.to_be_bytes());
        out
    }
}

/// Reads tree nodes.
pub trait NodeRead {
    /// The error of the backing store.
    type Error;
    /// Reads the node stored at a position.
    fn get_node(&mut self, at: &Position) -> Result<Option<Node>, Self::Error>;
}

/// Where tree nodes live: the redb table of the ledger, or memory for re-verification.
pub trait NodeStore: NodeRead {
    /// Writes the node at a position, replacing the one there.
    fn put_node(&mut self, at: Position, node: &Node) -> Result<(), Self::Error>;
}

/// A stored tree node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// A key and the hash of its value.
    Leaf {
        /// SHA-256 of the state key.
        key: Hash,
        /// SHA-256 of the value.
        value: Hash,
    },
    /// Two children (either may be the empty hash).
    Internal {
        /// Bit 0.
        left: Hash,
        /// Bit 1.
        right: Hash,
    },
}

impl Node {
    /// The node's hash.
    pub fn hash(&self) -> Hash {
        match self {
            Node::Leaf { key, value } => leaf_hash(key, value),
            Node::Internal { left, right } => Hash::of(&[&[1], &left.0, &right.0]),
        }
    }

    /// 65 bytes: tag, then two hashes.
    pub fn encode(&self) -> [u8; 65] {
        let mut out = [0u8; 65];
        let (tag, a, b) = match self {
            Node::Leaf { key, value } => (0, key, value),
            Node::Internal { left, right } => (1, left, right),
        };
        out[0] = tag;
        out[1..33].copy_from_slice(&a.0);
        out[33..].copy_from_slice(&b.0);
        out
    }

    /// Reads [`Node::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Option<Node> {
        if bytes.len() != 65 {
            return None;
        }
        let a = Hash(bytes[1..33].try_into().ok()?);
        let b = Hash(bytes[33..].try_into().ok()?);
        match bytes[0] {
            0 => Some(Node::Leaf { key: a, value: b }),
            1 => Some(Node::Internal { left: a, right: b }),
            _ => None,
        }
    }
}

/// The hash of a leaf.
pub fn leaf_hash(key: &Hash, value: &Hash) -> Hash {
    Hash::of(&[&[0], &key.0, &value.0])
}

/// The key hash of a state key.
pub fn key_hash(key: &str) -> Hash {
    Hash::of(&[key.as_bytes()])
}

/// Why the tree could not be read or written.
#[derive(Debug, Error)]
pub enum TreeError<E> {
    /// The store failed.
    #[error("node store: {0}")]
    Store(E),
    /// A node that the root reaches is missing: the store is corrupt.
    #[error("tree node {0} is missing")]
    MissingNode(Hash),
    /// The node stored where the tree expects `expected` has another hash: the store is corrupt,
    /// or was read at another version than the root.
    #[error("the tree node at depth {depth} is {found}, the tree expects {expected}")]
    WrongNode {
        /// The node's depth.
        depth: usize,
        /// What the parent (or the root) names.
        expected: Hash,
        /// What is stored.
        found: Hash,
    },
}

/// Reads the node at `at` and checks that it is the one whose hash is `expected`.
fn read<S: NodeRead>(
    store: &mut S,
    at: &Position,
    expected: Hash,
) -> Result<Node, TreeError<S::Error>> {
    let node = store
        .get_node(at)
        .map_err(TreeError::Store)?
        .ok_or(TreeError::MissingNode(expected))?;
    let found = node.hash();
    if found != expected {
        return Err(TreeError::WrongNode {
            depth: at.depth(),
            expected,
            found,
        });
    }
    Ok(node)
}

/// Applies `updates` (key hash, value hash), sorted by key hash without duplicates, to the tree
/// whose root is `root` (the tree the store holds), and returns the new root.
pub fn update<S: NodeStore>(
    store: &mut S,
    root: Hash,
    updates: &[(Hash, Hash)],
) -> Result<Hash, TreeError<S::Error>> {
    debug_assert!(updates.windows(2).all(|w| w[0].0 < w[1].0));
    update_at(store, Position::ROOT, root, updates)
}

fn update_at<S: NodeStore>(
    store: &mut S,
    at: Position,
    node_hash: Hash,
    updates: &[(Hash, Hash)],
) -> Result<Hash, TreeError<S::Error>> {
    if updates.is_empty() {
        return Ok(node_hash);
    }
    if node_hash == Hash::ZERO {
        return build(store, at, updates);
    }
    match read(store, &at, node_hash)? {
        Node::Leaf { key, value } => {
            // The existing leaf joins the updates unless one of them replaces it.
            match updates.binary_search_by(|(k, _)| k.cmp(&key)) {
                Ok(_) => build(store, at, updates),
                Err(pos) => {
                    let mut merged = Vec::with_capacity(updates.len() + 1);
                    merged.extend_from_slice(&updates[..pos]);
                    merged.push((key, value));
                    merged.extend_from_slice(&updates[pos..]);
                    build(store, at, &merged)
                }
            }
        }
        Node::Internal { left, right } => {
            let split = updates.partition_point(|(k, _)| !k.bit(at.depth()));
            let new_left = update_at(store, at.child(false), left, &updates[..split])?;
            let new_right = update_at(store, at.child(true), right, &updates[split..])?;
            put(
                store,
                at,
                Node::Internal {
                    left: new_left,
                    right: new_right,
                },
            )
        }
    }
}

/// Builds a fresh subtree holding exactly `entries` at `at`. Below `at` nothing is stored (it
/// was empty or a lone leaf), so only the new nodes are written.
fn build<S: NodeStore>(
    store: &mut S,
    at: Position,
    entries: &[(Hash, Hash)],
) -> Result<Hash, TreeError<S::Error>> {
    match entries {
        [] => Ok(Hash::ZERO),
        [(key, value)] => put(
            store,
            at,
            Node::Leaf {
                key: *key,
                value: *value,
            },
        ),
        _ => {
            let split = entries.partition_point(|(k, _)| !k.bit(at.depth()));
            let left = build(store, at.child(false), &entries[..split])?;
            let right = build(store, at.child(true), &entries[split..])?;
            put(store, at, Node::Internal { left, right })
        }
    }
}

fn put<S: NodeStore>(store: &mut S, at: Position, node: Node) -> Result<Hash, TreeError<S::Error>> {
    store.put_node(at, &node).map_err(TreeError::Store)?;
    Ok(node.hash())
}

/// A proof that a key has a value, or has none, under a root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateProof {
    /// The leaf on the key's path: the key's own (presence), another key's (absence), or none
    /// (absence, the path ends in an empty subtree).
    pub leaf: Option<ProofLeaf>,
    /// Sibling hashes from the root down to the leaf's depth.
    pub siblings: Vec<Hash>,
}

/// A leaf as a proof carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProofLeaf {
    /// SHA-256 of the leaf's state key.
    pub key_hash: Hash,
    /// SHA-256 of the leaf's value.
    pub value_hash: Hash,
}

/// Why a state proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProofError {
    /// More siblings than key bits.
    #[error("a proof has at most 256 siblings, this one has {0}")]
    TooDeep(usize),
    /// The value's hash is not the leaf's.
    #[error("the value does not hash to the proven leaf's value hash")]
    ValueMismatch,
    /// A value was claimed but the proof shows another key's leaf or an empty subtree.
    #[error("the proof shows that the key is absent, but a value was claimed")]
    ClaimedPresentButAbsent,
    /// Absence was claimed but the proof shows the key's own leaf.
    #[error("the proof shows that the key is present, but absence was claimed")]
    ClaimedAbsentButPresent,
    /// The other leaf of an absence proof is not on the key's path.
    #[error("the absence proof's leaf does not share the key's path")]
    LeafOffPath,
    /// The recomputed root differs.
    #[error("the recomputed state root {computed} is not the certified root {expected}")]
    RootMismatch {
        /// From the proof.
        computed: Hash,
        /// From the header.
        expected: Hash,
    },
}

impl StateProof {
    /// Checks that under `root`, `key` has `value` (Some) or no value (None).
    pub fn verify(&self, root: &Hash, key: &str, value: Option<&[u8]>) -> Result<(), ProofError> {
        let depth = self.siblings.len();
        if depth > 256 {
            return Err(ProofError::TooDeep(depth));
        }
        let key = key_hash(key);
        let start = match (&self.leaf, value) {
            (Some(leaf), Some(v)) => {
                if leaf.key_hash != key {
                    return Err(ProofError::ClaimedPresentButAbsent);
                }
                if leaf.value_hash != Hash::of(&[v]) {
                    return Err(ProofError::ValueMismatch);
                }
                leaf_hash(&leaf.key_hash, &leaf.value_hash)
            }
            (None, Some(_)) => return Err(ProofError::ClaimedPresentButAbsent),
            (Some(leaf), None) => {
                if leaf.key_hash == key {
                    return Err(ProofError::ClaimedAbsentButPresent);
                }
                if (0..depth).any(|i| leaf.key_hash.bit(i) != key.bit(i)) {
                    return Err(ProofError::LeafOffPath);
                }
                leaf_hash(&leaf.key_hash, &leaf.value_hash)
            }
            (None, None) => Hash::ZERO,
        };
        let mut acc = start;
        for (i, sibling) in self.siblings.iter().enumerate().rev() {
            acc = if key.bit(i) {
                Hash::of(&[&[1], &sibling.0, &acc.0])
            } else {
                Hash::of(&[&[1], &acc.0, &sibling.0])
            };
        }
        if acc != *root {
            return Err(ProofError::RootMismatch {
                computed: acc,
                expected: *root,
            });
        }
        Ok(())
    }
}

/// Builds the proof for `key` under `root`, the root of the tree the store holds.
pub fn prove<S: NodeRead>(
    store: &mut S,
    root: Hash,
    key: &str,
) -> Result<StateProof, TreeError<S::Error>> {
    let key = key_hash(key);
    let mut siblings = Vec::new();
    let mut current = root;
    let mut at = Position::ROOT;
    loop {
        if current == Hash::ZERO {
            return Ok(StateProof {
                leaf: None,
                siblings,
            });
        }
        match read(store, &at, current)? {
            Node::Leaf { key: k, value } => {
                return Ok(StateProof {
                    leaf: Some(ProofLeaf {
                        key_hash: k,
                        value_hash: value,
                    }),
                    siblings,
                })
            }
            Node::Internal { left, right } => {
                let bit = key.bit(at.depth());
                if bit {
                    siblings.push(left);
                    current = right;
                } else {
                    siblings.push(right);
                    current = left;
                }
                at = at.child(bit);
            }
        }
    }
}

/// A tree kept in memory, for re-verifying a chain and for tests.
#[derive(Debug, Default)]
pub struct MemoryNodes(pub std::collections::HashMap<Position, Node>);

impl NodeRead for MemoryNodes {
    type Error = std::convert::Infallible;
    fn get_node(&mut self, at: &Position) -> Result<Option<Node>, Self::Error> {
        Ok(self.0.get(at).copied())
    }
}

impl NodeStore for MemoryNodes {
    fn put_node(&mut self, at: Position, node: &Node) -> Result<(), Self::Error> {
        self.0.insert(at, *node);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(store: &mut MemoryNodes, root: Hash, kv: &[(&str, &str)]) -> Hash {
        let mut updates: Vec<(Hash, Hash)> = kv
            .iter()
            .map(|(k, v)| (key_hash(k), Hash::of(&[v.as_bytes()])))
            .collect();
        updates.sort();
        update(store, root, &updates).unwrap()
    }

    #[test]
    fn proofs_of_presence_and_absence_verify_and_lies_fail() {
        let mut store = MemoryNodes::default();
        let mut root = Hash::ZERO;
        assert!(prove(&mut store, root, "a")
            .unwrap()
            .verify(&root, "a", None)
            .is_ok());
        for batch in (0..200).collect::<Vec<_>>().chunks(37) {
            let kv: Vec<(String, String)> = batch
                .iter()
                .map(|i| (format!("k{i}"), format!("v{i}")))
                .collect();
            let refs: Vec<(&str, &str)> =
                kv.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            root = apply(&mut store, root, &refs);
        }
        for i in 0..200 {
            let key = format!("k{i}");
            let p = prove(&mut store, root, &key).unwrap();
            p.verify(&root, &key, Some(format!("v{i}").as_bytes()))
                .unwrap();
            assert_eq!(
                p.verify(&root, &key, Some(b"other")),
                Err(ProofError::ValueMismatch)
            );
            assert_eq!(
                p.verify(&root, &key, None),
                Err(ProofError::ClaimedAbsentButPresent)
            );
        }
        for i in 200..260 {
            let key = format!("k{i}");
            let p = prove(&mut store, root, &key).unwrap();
            p.verify(&root, &key, None).unwrap();
            assert!(p.verify(&root, &key, Some(b"v")).is_err());
        }
        // A proof for one root does not hold for another.
        let p = prove(&mut store, root, "k1").unwrap();
        let new_root = apply(&mut store, root, &[("k1", "changed")]);
        assert!(matches!(
            p.verify(&new_root, "k1", Some(b"v1")),
            Err(ProofError::RootMismatch { .. })
        ));
    }

    /// The root by definition: a lone entry is a leaf, more split on the next bit.
    fn definitional_root(entries: &[(Hash, Hash)], depth: usize) -> Hash {
        match entries {
            [] => Hash::ZERO,
            [(k, v)] => leaf_hash(k, v),
            _ => {
                let split = entries.partition_point(|(k, _)| !k.bit(depth));
                let l = definitional_root(&entries[..split], depth + 1);
                let r = definitional_root(&entries[split..], depth + 1);
                Node::Internal { left: l, right: r }.hash()
            }
        }
    }

    #[test]
    fn root_is_independent_of_batching_and_no_stale_nodes_remain() {
        let kv: Vec<(String, String)> = (0..300)
            .map(|i| (format!("k{i}"), format!("v{i}")))
            .collect();
        let refs: Vec<(&str, &str)> = kv.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let mut one = MemoryNodes::default();
        let r1 = apply(&mut one, Hash::ZERO, &refs);
        let mut many = MemoryNodes::default();
        let mut r2 = Hash::ZERO;
        for kv in refs.chunks(7) {
            r2 = apply(&mut many, r2, kv);
        }
        let mut entries: Vec<(Hash, Hash)> = refs
            .iter()
            .map(|(k, v)| (key_hash(k), Hash::of(&[v.as_bytes()])))
            .collect();
        entries.sort();
        assert_eq!(r1, definitional_root(&entries, 0));
        assert_eq!(r1, r2);
        // Exactly the nodes reachable from the newest root are stored.
        assert_eq!(many.0.len(), reachable(&many, Position::ROOT, r2));
        assert_eq!(one.0.len(), reachable(&one, Position::ROOT, r1));
        let r3 = apply(
            &mut many,
            r2,
            &[("k5", "new"), ("k7", "v7"), ("fresh", "x")],
        );
        assert_ne!(r3, r2);
        assert_eq!(many.0.len(), reachable(&many, Position::ROOT, r3));
    }

    #[test]
    fn a_stale_or_foreign_node_is_an_error() {
        let mut store = MemoryNodes::default();
        let root = apply(
            &mut store,
            Hash::ZERO,
            &[("a", "1"), ("b", "2"), ("c", "3")],
        );
        // The tree as it was before "a" changed: reading it under the old root must fail.
        let newer = apply(&mut store, root, &[("a", "changed")]);
        assert!(matches!(
            prove(&mut store, root, "a"),
            Err(TreeError::WrongNode { depth: 0, .. })
        ));
        prove(&mut store, newer, "a")
            .unwrap()
            .verify(&newer, "a", Some(b"changed"))
            .unwrap();
        let leaf = *store
            .0
            .iter()
            .find(|(_, n)| matches!(n, Node::Leaf { .. }))
            .unwrap()
            .0;
        store.0.insert(
            leaf,
            Node::Leaf {
                key: Hash([9; 32]),
                value: Hash([9; 32]),
            },
        );
        let all: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|k| prove(&mut store, newer, k))
            .collect();
        assert!(all
            .iter()
            .any(|p| matches!(p, Err(TreeError::WrongNode { .. }))));
    }

    #[test]
    fn positions_sort_depth_first() {
        let root = Position::ROOT;
        let l = root.child(false);
        let r = root.child(true);
        let ll = l.child(false);
        let lr = l.child(true);
        let mut all = vec![r, lr, ll, l, root];
        all.sort();
        assert_eq!(all, vec![root, l, ll, lr, r]);
        let mut encoded: Vec<[u8; 34]> = all.iter().map(Position::encode).collect();
        encoded.sort();
        assert_eq!(
            encoded,
            all.iter().map(Position::encode).collect::<Vec<_>>()
        );
        assert!(r.child(true).child(false).depth() == 3);
    }

    fn reachable(store: &MemoryNodes, at: Position, hash: Hash) -> usize {
        if hash == Hash::ZERO {
            return 0;
        }
        match store.0.get(&at) {
            None => 0,
            Some(Node::Leaf { .. }) => 1,
            Some(Node::Internal { left, right }) => {
                1 + reachable(store, at.child(false), *left)
                    + reachable(store, at.child(true), *right)
            }
        }
    }
}
