//! RFC 6962 / RFC 9162 §2.1 Merkle trees over the chain (docs/events.md §4).
//!
//! Leaf `seq − 1` of the tree of size N is `leaf_hash(canonical(event seq))`.
//! This module holds the hashing primitives and [`CompactRange`], the
//! O(log n)-memory streaming root that lets `verify-chain` recompute the root
//! of a log of millions of events without holding them. Proofs live in
//! submodules:
//! - `proof`: in-memory proof generation (RFC 6962 §2.1.1/§2.1.2 recursion)
//!   and verification (RFC 9162 §2.1.3.2/§2.1.4.2 bit-walking algorithms);
//! - `ranges`: constant-memory proof generation over a leaf stream: which
//!   leaf ranges a proof needs, and [`RangeHasher`] to hash them as leaves go by.
//!
//! Every size and index here may come from untrusted input (a checkpoint, a
//! proof request), so nothing panics on any value: errors are [`ProofError`].

use sha2::{Digest, Sha256};

mod proof;
mod ranges;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vectors;

pub use proof::{consistency_proof, inclusion_proof, verify_consistency, verify_inclusion};
pub use ranges::{consistency_proof_ranges, inclusion_proof_ranges, RangeHasher};

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

/// Domain separation prefixes (RFC 6962 §2.1): a leaf can never be confused
/// with an interior node, which is what makes second-preimage attacks fail.
const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

/// Why a proof, a frontier or a range request was rejected.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum ProofError {
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    SizesOutOfOrder { old_size: u64, new_size: u64 },
    #[error("a consistency proof from the empty tree to size {new_size} is meaningless")]
    EmptyOldTree { new_size: u64 },
    #[error("proof has {found} hashes, expected {expected}")]
    WrongProofLength { expected: usize, found: usize },
    #[error(
        "recomputed root {} does not match expected root {}",
        hex::encode(found),
        hex::encode(expected)
    )]
    RootMismatch { expected: Hash, found: Hash },
    #[error(
        "recomputed old root {} does not match expected old root {}",
        hex::encode(found),
        hex::encode(expected)
    )]
    OldRootMismatch { expected: Hash, found: Hash },
    #[error("frontier for size {size} must have {expected} hashes, found {found}")]
    FrontierLength {
        size: u64,
        expected: usize,
        found: usize,
    },
    #[error("tree size {size} exceeds the largest supported size {max}")]
    SizeTooLarge { size: u64, max: u64 },
    #[error("leaf range {start}..{end} is empty or reversed")]
    EmptyRange { start: u64, end: u64 },
    #[error("leaf range {start}..{end} is incomplete: {pushed} leaves were pushed")]
    IncompleteRange { start: u64, end: u64, pushed: u64 },
}

/// SHA-256(0x00 || data): the hash of one leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(data);
    hasher.finalize().into()
}

/// SHA-256(0x01 || left || right): the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([NODE_PREFIX]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: SHA-256 of the empty string (RFC 6962 §2.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The Merkle Tree Hash of `leaves` (already leaf-hashed), computed with the
/// RFC 6962 §2.1 recursion: split at the largest power of two below n.
/// O(n) time and O(log n) stack; for in-memory trees and as the reference the
/// streaming [`CompactRange`] is tested against.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => empty_root(),
        [leaf] => *leaf,
        _ => {
            let k = split_point(leaves.len());
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The largest power of two strictly below `n` (n ≥ 2): where RFC 6962 splits.
/// (For n < 2, which callers never pass, it returns 1 rather than panic.)
pub(crate) fn split_point(n: usize) -> usize {
    let below = n.saturating_sub(1).max(1);
    1 << (usize::BITS - 1 - below.leading_zeros())
}

/// Largest tree size a [`CompactRange`] accepts from outside: the envelope's
/// seq cannot exceed 2^53 − 1 (envelope::MAX_SAFE_INTEGER), so neither can a
/// log, and staying far below 2^64 means `push` can never overflow the count.
pub const MAX_TREE_SIZE: u64 = crate::envelope::MAX_SAFE_INTEGER;

/// The roots of the perfect subtrees that make up a tree of some size, largest
/// (leftmost) first: exactly one per set bit of the size. Enough to compute the
/// root and to keep appending, in O(log n) memory.
#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct CompactRange {
    size: u64,
    frontier: Vec<Hash>,
}

impl CompactRange {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Resume from a frontier saved earlier (largest subtree first).
    pub fn from_frontier(size: u64, frontier: Vec<Hash>) -> Result<Self, ProofError> {
        if size > MAX_TREE_SIZE {
            return Err(ProofError::SizeTooLarge {
                size,
                max: MAX_TREE_SIZE,
            });
        }
        let expected = size.count_ones() as usize;
        if frontier.len() != expected {
            return Err(ProofError::FrontierLength {
                size,
                expected,
                found: frontier.len(),
            });
        }
        Ok(CompactRange { size, frontier })
    }

    /// Append the next leaf hash (its index is the current size).
    pub fn push(&mut self, leaf: Hash) {
        // Each trailing one bit of the size is a perfect subtree of the same
        // height as the one being carried: merge them, like binary addition.
        let mut carry = leaf;
        let mut bits = self.size;
        while bits & 1 == 1 {
            match self.frontier.pop() {
                Some(left) => carry = node_hash(&left, &carry),
                // Unreachable: the frontier has one hash per set bit (checked
                // in from_frontier, kept here). Stop rather than panic.
                None => break,
            }
            bits >>= 1;
        }
        self.frontier.push(carry);
        // Cannot overflow: sizes start at most at MAX_TREE_SIZE (2^53 − 1),
        // and 2^64 − 2^53 pushes will not happen.
        self.size += 1;
    }

    /// Number of leaves pushed (including the resumed prefix).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The Merkle Tree Hash of the leaves so far; [`empty_root`] for size 0.
    pub fn root(&self) -> Hash {
        // The root hashes the subtrees right to left: the smallest (rightmost)
        // subtree is the deepest in the RFC 6962 tree.
        let mut subtrees = self.frontier.iter().rev();
        match subtrees.next() {
            None => empty_root(),
            Some(last) => subtrees.fold(*last, |right, left| node_hash(left, &right)),
        }
    }

    /// The perfect-subtree roots, largest (leftmost) first.
    pub fn frontier(&self) -> &[Hash] {
        &self.frontier
    }
}
