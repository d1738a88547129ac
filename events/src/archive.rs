//! The archive format (docs/events.md §5): where each object of a chain lives, in
//! the S3 bucket and in export bundles alike, and `start.json`, the point a
//! partial export resumes from. Pure: the gateway's shipper and exporter
//! write these names and bytes, `verify-chain` parses them.
//!
//! ```text
//! <prefix>/<chain>/segments/<first seq, 20 digits>-<last seq, 20 digits>.jsonl
//! <prefix>/<chain>/checkpoints/<N, 20 digits>.note
//! <prefix>/<chain>/keys/<key name>.vkey
//! <prefix>/<chain>/start.json            (partial exports only)
//! ```
//!
//! Twenty zero-padded digits make lexicographic order (how S3 lists keys)
//! numeric order.

use serde::{Deserialize, Serialize};

use crate::merkle::Hash;

/// Where one chain's objects live: `<prefix>/<chain>/` (just `<chain>/` for an empty prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: String,
}

impl Layout {
    pub fn new(prefix: &str, chain: &str) -> Layout {
        let prefix = prefix.trim_matches('/');
        let root = if prefix.is_empty() {
            format!("{chain}/")
        } else {
            format!("{prefix}/{chain}/")
        };
        Layout { root }
    }

    /// The layout of a chain directory found by listing: `root` is taken as
    /// is (`/`-terminated, or empty for a store rooted at the chain directory).
    pub fn at_root(root: &str) -> Layout {
        Layout {
            root: root.to_owned(),
        }
    }

    /// `<prefix>/<chain>/`, with the trailing slash.
    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn segments_prefix(&self) -> String {
        format!("{}segments/", self.root)
    }

    pub fn checkpoints_prefix(&self) -> String {
        format!("{}checkpoints/", self.root)
    }

    pub fn keys_prefix(&self) -> String {
        format!("{}keys/", self.root)
    }

    pub fn segment_key(&self, first: u64, last: u64) -> String {
        format!("{}segments/{first:020}-{last:020}.jsonl", self.root)
    }

    pub fn checkpoint_key(&self, size: u64) -> String {
        format!("{}{}", self.root, checkpoint_name(size))
    }

    pub fn key_key(&self, key_name: &str) -> String {
        format!("{}keys/{key_name}.vkey", self.root)
    }

    /// `start.json` of a partial export.
    pub fn start_key(&self) -> String {
        format!("{}start.json", self.root)
    }

    /// Whether `key` names a verifier key under this layout.
    pub fn is_key_key(&self, key: &str) -> bool {
        key.starts_with(&self.keys_prefix()) && key.ends_with(".vkey")
    }

    /// `(first, last)` of a segment key under this layout; `None` for any other key.
    pub fn parse_segment_key(&self, key: &str) -> Option<(u64, u64)> {
        let name = key
            .strip_prefix(&self.segments_prefix())?
            .strip_suffix(".jsonl")?;
        let (first, last) = name.split_once('-')?;
        let first = parse_padded(first)?;
        let last = parse_padded(last)?;
        (first >= 1 && last >= first).then_some((first, last))
    }

    /// `N` of a checkpoint key under this layout.
    pub fn parse_checkpoint_key(&self, key: &str) -> Option<u64> {
        let name = key
            .strip_prefix(&self.checkpoints_prefix())?
            .strip_suffix(".note")?;
        parse_padded(name).filter(|&n| n >= 1)
    }
}

/// A checkpoint's name relative to the chain directory.
fn checkpoint_name(size: u64) -> String {
    format!("checkpoints/{size:020}.note")
}

/// Exactly 20 ASCII digits.
fn parse_padded(text: &str) -> Option<u64> {
    (text.len() == 20 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// `start.json` of a partial export: the signed checkpoint it resumes after,
/// and what a verifier needs to go on from there without the earlier events.
/// It is trusted only because that checkpoint — signed — has exactly this
/// root (recomputed from the frontier) and head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartPoint {
    pub chain: String,
    /// Tree size the bundle resumes after.
    pub size: u64,
    /// Lowercase hex hash of event `size`.
    pub head: String,
    /// Lowercase hex roots of the perfect subtrees of the tree of `size`, largest first.
    pub frontier: Vec<String>,
    /// The signed checkpoint of exactly `size`, relative to the chain directory.
    pub checkpoint: String,
}

impl StartPoint {
    /// The start after the first `size` events, whose last hash is `head` and
    /// Merkle frontier `frontier`.
    pub fn new(chain: &str, size: u64, head: &str, frontier: &[Hash]) -> StartPoint {
        StartPoint {
            chain: chain.to_owned(),
            size,
            head: head.to_owned(),
            frontier: frontier.iter().map(hex::encode).collect(),
            checkpoint: checkpoint_name(size),
        }
    }

    /// The file's bytes: pretty JSON and a final newline.
    pub fn to_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut json = serde_json::to_vec_pretty(self)?;
        json.push(b'\n');
        Ok(json)
    }

    pub fn parse(bytes: &[u8]) -> Result<StartPoint, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    pub fn frontier_hashes(&self) -> Result<Vec<Hash>, String> {
        self.frontier
            .iter()
            .map(|h| {
                hex::decode(h)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| format!("frontier hash {h:?} is not 64 hex characters"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
