//! Constant-memory proofs over a leaf stream.
//!
//! Every node of an RFC 6962 tree of size n is the Merkle Tree Hash of a
//! contiguous leaf range: node (level ℓ, index k) covers
//! `[k·2^ℓ, min((k+1)·2^ℓ, n))`. So a proof is a list of ranges, computable
//! from the sizes alone, and [`RangeHasher`] hashes those ranges while the
//! leaves stream past once, holding O(log n) hashes per range. This is how the
//! gateway and `verify-chain prove` answer for logs far larger than memory.
//!
//! The arithmetic is the bit decomposition used by transparency-dev/merkle
//! (`proof/proof.go`): the path from a node up to the root splits where it
//! meets the path of the last leaf; below that, siblings on either side
//! ("inner"); above it, only left siblings, one per set bit ("border").

use std::ops::Range;

use super::{CompactRange, Hash, ProofError};

/// The leaf ranges whose roots form the inclusion proof for leaf `index` in
/// the tree of `size`, in proof order (deepest first).
pub fn inclusion_proof_ranges(index: u64, size: u64) -> Result<Vec<Range<u64>>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    Ok(path_ranges(0, index, size))
}

/// The leaf ranges whose roots form the consistency proof from `old_size` to
/// `new_size`, in proof order. Empty when the sizes are equal; an error from
/// the empty tree.
pub fn consistency_proof_ranges(
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Range<u64>>, ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == 0 {
        return Err(ProofError::EmptyOldTree { new_size });
    }
    if old_size == new_size {
        return Ok(Vec::new());
    }
    // The largest perfect subtree ending at old_size: the proof is this node
    // followed by its inclusion path in the new tree. When old_size is a power
    // of two that node is the old root, which the verifier already has.
    let level = old_size.trailing_zeros();
    let index = (old_size - 1) >> level;
    let mut ranges = Vec::new();
    if index != 0 {
        ranges.push(node_range(level, index, old_size));
    }
    ranges.extend(path_ranges(level, index, new_size));
    Ok(ranges)
}

/// Ranges of the siblings on the path from node (`level`, `index`) to the
/// root of the tree of `size` leaves. Requires the node to start below `size`.
fn path_ranges(level: u32, index: u64, size: u64) -> Vec<Range<u64>> {
    let last = (size - 1) >> level;
    // Levels (above `level`) at which the paths to `index` and to the last
    // node still differ: there the sibling exists, on either side.
    let inner = u64::BITS - (index ^ last).leading_zeros();
    let mut ranges = Vec::new();
    for i in 0..inner {
        let sibling = (index >> i) ^ 1;
        ranges.push(node_range(level + i, sibling, size));
    }
    // Above the split the path runs along the right border: a node that is a
    // right child has a complete left sibling; a left child has no sibling
    // (RFC 6962 promotes it), so it contributes nothing.
    let mut border = index.checked_shr(inner).unwrap_or(0);
    let mut height = level + inner;
    let mut node = border;
    while border != 0 {
        if border & 1 == 1 {
            ranges.push(node_range(height, node ^ 1, size));
        }
        border >>= 1;
        node >>= 1;
        height += 1;
    }
    ranges
}

/// The leaves under node (`level`, `index`) of the tree of `size`.
fn node_range(level: u32, index: u64, size: u64) -> Range<u64> {
    // u128: (index + 1) << level can exceed u64 near the top of huge trees.
    let start = u128::from(index) << level;
    let end = (u128::from(index) + 1) << level;
    let clamp = |x: u128| u64::try_from(x).unwrap_or(u64::MAX).min(size);
    clamp(start)..clamp(end)
}

/// Hashes the roots of given leaf ranges from one in-order pass over the
/// leaves, in O(log n) memory per range. Ranges may come in any order and may
/// overlap; roots come back in the order the ranges were given.
#[derive(Debug, Clone)]
pub struct RangeHasher {
    ranges: Vec<Range<u64>>,
    partial: Vec<CompactRange>,
    pushed: u64,
    needed: u64,
}

impl RangeHasher {
    pub fn new(ranges: Vec<Range<u64>>) -> Self {
        let needed = ranges.iter().map(|r| r.end).max().unwrap_or(0);
        let partial = vec![CompactRange::new(); ranges.len()];
        RangeHasher {
            ranges,
            partial,
            pushed: 0,
            needed,
        }
    }

    /// The next leaf hash; its index is the number pushed before it.
    pub fn push(&mut self, leaf: Hash) {
        let index = self.pushed;
        self.pushed = self.pushed.saturating_add(1);
        if index >= self.needed {
            return;
        }
        for (range, partial) in self.ranges.iter().zip(self.partial.iter_mut()) {
            if range.contains(&index) {
                partial.push(leaf);
            }
        }
    }

    /// How many leaves must be pushed before [`finish`](Self::finish) can succeed.
    pub fn needed_leaves(&self) -> u64 {
        self.needed
    }

    /// The root of each range, in the order given.
    pub fn finish(self) -> Result<Vec<Hash>, ProofError> {
        self.ranges
            .iter()
            .zip(self.partial.iter())
            .map(|(range, partial)| {
                if range.start >= range.end {
                    return Err(ProofError::EmptyRange {
                        start: range.start,
                        end: range.end,
                    });
                }
                if partial.size() != range.end - range.start {
                    return Err(ProofError::IncompleteRange {
                        start: range.start,
                        end: range.end,
                        pushed: self.pushed,
                    });
                }
                Ok(partial.root())
            })
            .collect()
    }
}
