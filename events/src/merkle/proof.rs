//! Inclusion and consistency proofs: in-memory generation, and verification.
//!
//! Generation follows the recursive definitions of RFC 6962 §2.1.1 (PATH) and
//! §2.1.2 (SUBPROOF) literally. It is deliberately a different derivation from
//! the bit arithmetic of [`super::ranges`], so the property tests comparing the
//! two check one against the other.
//!
//! Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 step by step (the
//! bit-walking algorithms). The expected proof length is checked first, so a
//! wrong-length proof gets an error that says expected versus found.

use super::{consistency_proof_ranges, inclusion_proof_ranges};
use super::{node_hash, root, split_point, Hash, ProofError};

/// Inclusion proof for leaf `index` in the tree of all `leaves` (RFC 6962 §2.1.1).
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, ProofError> {
    let size = leaves.len() as u64;
    let position = usize::try_from(index)
        .ok()
        .filter(|&i| i < leaves.len())
        .ok_or(ProofError::IndexOutOfRange { index, size })?;
    let mut proof = Vec::new();
    path(position, leaves, &mut proof);
    Ok(proof)
}

/// PATH(m, D[n]): the deepest sibling first, the root's child last.
fn path(m: usize, leaves: &[Hash], proof: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split_point(leaves.len());
    if m < k {
        path(m, &leaves[..k], proof);
        proof.push(root(&leaves[k..]));
    } else {
        path(m - k, &leaves[k..], proof);
        proof.push(root(&leaves[..k]));
    }
}

/// Consistency proof from the tree of the first `old_size` leaves to the tree
/// of all `leaves` (RFC 6962 §2.1.2). Empty when the sizes are equal; an
/// error from the empty tree (see [`verify_consistency`]).
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Result<Vec<Hash>, ProofError> {
    let new_size = leaves.len() as u64;
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == 0 {
        return Err(ProofError::EmptyOldTree { new_size });
    }
    if old_size == new_size {
        return Ok(Vec::new());
    }
    // old_size < leaves.len(), so it fits in usize.
    let m = old_size as usize;
    let mut proof = Vec::new();
    subproof(m, leaves, true, &mut proof);
    Ok(proof)
}

/// SUBPROOF(m, D[n], b): `complete` is b, true while D[0:m] is still a
/// subtree the verifier knows the root of (so it is not sent).
fn subproof(m: usize, leaves: &[Hash], complete: bool, proof: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            proof.push(root(leaves));
        }
        return;
    }
    // Here 0 < m < n, so n ≥ 2.
    let k = split_point(n);
    if m <= k {
        subproof(m, &leaves[..k], complete, proof);
        proof.push(root(&leaves[k..]));
    } else {
        subproof(m - k, &leaves[k..], false, proof);
        proof.push(root(&leaves[..k]));
    }
}

/// Verify that `leaf` (a leaf hash) is at `index` in the tree of `size` with
/// `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    // Step 1, and the length every correct proof has.
    let expected = inclusion_proof_ranges(index, size)?.len();
    let wrong_length = ProofError::WrongProofLength {
        expected,
        found: proof.len(),
    };
    if proof.len() != expected {
        return Err(wrong_length);
    }
    // Steps 2–3.
    let mut fn_ = index;
    let mut sn = size - 1; // size > index ≥ 0, checked above
    let mut r = *leaf;
    // Step 4.
    for p in proof {
        if sn == 0 {
            return Err(wrong_length);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    if sn != 0 {
        return Err(wrong_length);
    }
    if r != *root {
        return Err(ProofError::RootMismatch {
            expected: *root,
            found: r,
        });
    }
    Ok(())
}

/// Verify that the tree of `new_size` with `new_root` extends the tree of
/// `old_size` with `old_root` (RFC 9162 §2.1.4.2).
///
/// Equal sizes need an empty proof and equal roots. A proof from the empty
/// tree (old_size 0, even to size 0) is rejected, as the reference
/// implementation's published vectors require (transparency-dev/merkle
/// `testdata/consistency/additional/`): the RFC defines none, and accepting
/// one would prove nothing.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder { old_size, new_size });
    }
    if old_size == 0 {
        return Err(ProofError::EmptyOldTree { new_size });
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength {
                expected: 0,
                found: proof.len(),
            });
        }
        if old_root != new_root {
            return Err(ProofError::RootMismatch {
                expected: *old_root,
                found: *new_root,
            });
        }
        return Ok(());
    }
    let expected = consistency_proof_ranges(old_size, new_size)?.len();
    let wrong_length = ProofError::WrongProofLength {
        expected,
        found: proof.len(),
    };
    // Step 1 (an empty proof fails) is covered: every 0 < old < new needs ≥ 1 hash.
    if proof.len() != expected {
        return Err(wrong_length);
    }
    // Step 2: when old_size is a power of two the old root is a node of the
    // new tree and is not sent; the verifier starts from it.
    let (first, rest) = if old_size.is_power_of_two() {
        (*old_root, proof)
    } else {
        match proof.split_first() {
            Some((first, rest)) => (*first, rest),
            None => return Err(wrong_length),
        }
    };
    // Steps 3–4.
    let mut fn_ = old_size - 1;
    let mut sn = new_size - 1;
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 5.
    let mut fr = first;
    let mut sr = first;
    // Step 6.
    for c in rest {
        if sn == 0 {
            return Err(wrong_length);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 7.
    if sn != 0 {
        return Err(wrong_length);
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch {
            expected: *old_root,
            found: fr,
        });
    }
    if sr != *new_root {
        return Err(ProofError::RootMismatch {
            expected: *new_root,
            found: sr,
        });
    }
    Ok(())
}
