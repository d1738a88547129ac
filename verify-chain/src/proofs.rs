//! Proofs an auditor can carry away and check without any data source:
//!
//! - `verify-chain prove --seq N (--database-url URL | --dir PATH) [--size M]`:
//!   an RFC 9162 inclusion proof of event N in the tree of a signed
//!   checkpoint (the newest, or the one of size M);
//! - `verify-chain consistency OLD.note NEW.note (--database-url URL | --dir PATH)`:
//!   an RFC 9162 consistency proof that NEW's log extends OLD's;
//! - `verify-chain verify-proof FILE [--key VKEY]`: checks either, from the
//!   file alone: the checkpoint signatures, the event's own hash, and the
//!   audit path or consistency path up to the signed roots.
//!
//! Proofs are computed in one pass over the leaves with O(log n) memory per
//! proof node. From a partial export the leaves before its start are not
//! there, but the Merkle frontier of `start.json` (vouched for by the start
//! checkpoint's signature) stands in for them: every node an inclusion
//! proof of a later event needs, and every node of a consistency proof from
//! the start checkpoint, is either one of its subtrees or starts at one.

use std::ops::Range;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use events::checkpoint::{open_checkpoint, Checkpoint};
use events::envelope::hash_hex;
use events::merkle::{
    consistency_proof_ranges, inclusion_proof_ranges, leaf_hash, verify_consistency,
    verify_inclusion, CompactRange, Hash,
};
use events::note::Verifier;
use events::Event;
use serde::{Deserialize, Serialize};

use super::archive::{ArchiveSource, OpenError};
use super::database::DatabaseSource;
use super::{parse_keys, RunError, EXIT_ERROR, EXIT_INTEGRITY, EXIT_VERIFIED};

pub const INCLUSION: &str = "rack-gateway-inclusion-proof";
pub const CONSISTENCY: &str = "rack-gateway-consistency-proof";

/// An inclusion proof as printed by `prove`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InclusionProof {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    pub chain: String,
    pub seq: u64,
    pub leaf_index: u64,
    pub tree_size: u64,
    /// The event as archived: its canonical envelope with `hash`, one line.
    pub event: String,
    /// hex SHA-256(0x00 || canonical bytes).
    pub leaf_hash: String,
    /// hex sibling hashes, deepest first (RFC 9162 §2.1.3).
    pub audit_path: Vec<String>,
    /// base64 root, as in the checkpoint.
    pub root: String,
    /// The signed checkpoint note of `tree_size`, verbatim.
    pub checkpoint: String,
    /// Keys the source published; only as trustworthy as the source.
    pub published_keys: Vec<String>,
}

/// A consistency proof as printed by `consistency`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConsistencyProof {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u32,
    pub chain: String,
    pub old_size: u64,
    pub new_size: u64,
    pub old_root: String,
    pub new_root: String,
    /// hex hashes (RFC 9162 §2.1.4).
    pub proof: Vec<String>,
    pub old_checkpoint: String,
    pub new_checkpoint: String,
    pub published_keys: Vec<String>,
}

/// Where leaves come from.
pub enum LeafSource {
    Database(DatabaseSource),
    Dir(Box<ArchiveSource>),
}

impl LeafSource {
    pub async fn open(
        database_url: Option<&str>,
        dir: Option<&Path>,
        chain: Option<String>,
    ) -> Result<LeafSource, RunError> {
        match (database_url, dir) {
            (Some(url), None) => Ok(LeafSource::Database(
                DatabaseSource::connect(url, chain).await?,
            )),
            (None, Some(dir)) => {
                let (store, prefix) = crate::dir::open_dir(dir, chain.as_deref()).await?;
                match ArchiveSource::open(Box::new(store), &prefix, chain.as_deref(), None).await {
                    Ok(source) => Ok(LeafSource::Dir(Box::new(source))),
                    Err(OpenError::Run(e)) => Err(e),
                    Err(OpenError::Integrity(failure)) => Err(RunError::new(format!(
                        "{} is incomplete: {failure}",
                        dir.display()
                    ))),
                }
            }
            _ => Err(RunError::new(
                "give exactly one source: --database-url URL or --dir PATH",
            )),
        }
    }

    fn chain(&self) -> &str {
        match self {
            LeafSource::Database(db) => db.chain(),
            LeafSource::Dir(dir) => &dir.chain,
        }
    }

    async fn published_keys(&self) -> Result<Vec<Verifier>, RunError> {
        match self {
            LeafSource::Database(db) => db.published_keys().await,
            LeafSource::Dir(dir) => Ok(dir.published_keys()),
        }
    }

    /// Every checkpoint note of the source: (size, note).
    async fn notes(&self) -> Result<Vec<(u64, String)>, RunError> {
        match self {
            LeafSource::Database(db) => Ok(events::store::checkpoints(db.pool(), db.chain())
                .await
                .map_err(|e| RunError::new(format!("database: {e}")))?
                .into_iter()
                .map(|c| (c.size.max(0) as u64, c.note))
                .collect()),
            LeafSource::Dir(dir) => Ok(dir
                .checkpoints
                .iter()
                .map(|(size, (_, note))| (*size, String::from_utf8_lossy(note).into_owned()))
                .collect()),
        }
    }

    /// The tree before the first leaf this source streams: (size, frontier).
    fn prefix(&self) -> Result<(u64, Vec<Hash>), RunError> {
        match self {
            LeafSource::Dir(dir) => match &dir.start {
                Some(start) => Ok((start.size, start.frontier_hashes().map_err(RunError::new)?)),
                None => Ok((0, Vec::new())),
            },
            LeafSource::Database(_) => Ok((0, Vec::new())),
        }
    }

    /// Stream leaves `prefix+1 ..= up_to` into `hasher`; returns the line of event `want`, if asked.
    async fn stream(
        &self,
        hasher: &mut PrefixedHasher,
        up_to: u64,
        want: Option<u64>,
    ) -> Result<Option<String>, RunError> {
        let mut wanted = None;
        let mut next = hasher.prefix_size + 1;
        match self {
            LeafSource::Database(db) => {
                use futures::StreamExt;
                let mut rows = events::store::stream_rows(
                    db.pool(),
                    db.chain(),
                    next as i64,
                    Some(up_to as i64),
                );
                while let Some(row) = rows.next().await {
                    let row = row.map_err(|e| RunError::new(format!("database: {e}")))?;
                    if row.seq as u64 != next {
                        return Err(RunError::new(format!(
                            "the database has a gap: expected seq {next}, found {}",
                            row.seq
                        )));
                    }
                    if want == Some(next) {
                        let event = Event::from_canonical(&row.canonical, &row.hash)
                            .map_err(|e| RunError::new(format!("event {next}: {e}")))?;
                        wanted = Some(String::from_utf8_lossy(&event.to_line()).into_owned());
                    }
                    hasher.push(leaf_hash(&row.canonical));
                    next += 1;
                }
            }
            LeafSource::Dir(dir) => {
                let mut lines = dir.events();
                while next <= up_to {
                    let line = match lines.next().await {
                        Ok(Some((_, line))) => line,
                        Ok(None) => break,
                        Err(OpenError::Run(e)) => return Err(e),
                        Err(OpenError::Integrity(f)) => return Err(RunError::new(f.to_string())),
                    };
                    let event = Event::from_line(&line)
                        .map_err(|e| RunError::new(format!("event {next}: {e}")))?;
                    if event.seq != next {
                        return Err(RunError::new(format!(
                            "the export has a gap: expected seq {next}, found {}",
                            event.seq
                        )));
                    }
                    if want == Some(next) {
                        wanted = Some(String::from_utf8_lossy(&line).into_owned());
                    }
                    hasher.push(leaf_hash(&event.canonical_bytes()));
                    next += 1;
                }
            }
        }
        if next <= up_to {
            return Err(RunError::new(format!(
                "the source ends at seq {}, before {up_to}",
                next - 1
            )));
        }
        Ok(wanted)
    }
}

/// Roots of leaf ranges from one pass over the leaves after a known prefix
/// (size P, frontier): a range ending at or before P must be one of the
/// frontier's subtrees; a range straddling P must start at a subtree
/// boundary, so the subtrees it covers are its own compact range.
pub struct PrefixedHasher {
    prefix_size: u64,
    ranges: Vec<Range<u64>>,
    partial: Vec<Option<CompactRange>>,
    resolved: Vec<Option<Hash>>,
    pushed: u64,
}

impl PrefixedHasher {
    pub fn new(
        prefix_size: u64,
        frontier: &[Hash],
        ranges: Vec<Range<u64>>,
    ) -> Result<PrefixedHasher, String> {
        // The frontier's subtrees: one per set bit of the size, largest first.
        let mut subtrees: Vec<(Range<u64>, Hash)> = Vec::new();
        let mut start = 0u64;
        let mut hashes = frontier.iter();
        for bit in (0..64).rev() {
            if prefix_size & (1u64 << bit) != 0 {
                let hash = hashes
                    .next()
                    .ok_or_else(|| format!("frontier too short for size {prefix_size}"))?;
                subtrees.push((start..start + (1u64 << bit), *hash));
                start += 1u64 << bit;
            }
        }
        let mut partial = Vec::new();
        let mut resolved = Vec::new();
        for range in &ranges {
            if range.end <= prefix_size {
                let hash = subtrees
                    .iter()
                    .find(|(r, _)| r == range)
                    .map(|(_, h)| *h)
                    .ok_or_else(|| {
                        format!(
                            "this proof needs leaves {}..{}, before the first event ({}) the source holds",
                            range.start,
                            range.end,
                            prefix_size + 1
                        )
                    })?;
                resolved.push(Some(hash));
                partial.push(None);
            } else if range.start < prefix_size {
                let covered: Vec<&(Range<u64>, Hash)> = subtrees
                    .iter()
                    .filter(|(r, _)| r.start >= range.start && r.end <= prefix_size)
                    .collect();
                let tiled = covered.first().map(|(r, _)| r.start) == Some(range.start)
                    && covered.iter().map(|(r, _)| r.end - r.start).sum::<u64>()
                        == prefix_size - range.start;
                if !tiled {
                    return Err(format!(
                        "this proof needs leaves {}..{}, which start before the first event ({}) the source holds",
                        range.start,
                        prefix_size,
                        prefix_size + 1
                    ));
                }
                let tree = CompactRange::from_frontier(
                    prefix_size - range.start,
                    covered.iter().map(|(_, h)| *h).collect(),
                )
                .map_err(|e| e.to_string())?;
                partial.push(Some(tree));
                resolved.push(None);
            } else {
                partial.push(Some(CompactRange::new()));
                resolved.push(None);
            }
        }
        Ok(PrefixedHasher {
            prefix_size,
            ranges,
            partial,
            resolved,
            pushed: prefix_size,
        })
    }

    /// The leaf at index `pushed` (the next one after the prefix).
    pub fn push(&mut self, leaf: Hash) {
        let index = self.pushed;
        self.pushed += 1;
        for (range, partial) in self.ranges.iter().zip(self.partial.iter_mut()) {
            if let Some(tree) = partial {
                if range.contains(&index) {
                    tree.push(leaf);
                }
            }
        }
    }

    pub fn finish(self) -> Result<Vec<Hash>, String> {
        self.ranges
            .iter()
            .zip(self.partial)
            .zip(self.resolved)
            .map(|((range, partial), resolved)| match (resolved, partial) {
                (Some(hash), _) => Ok(hash),
                (None, Some(tree)) if tree.size() == range.end - range.start => Ok(tree.root()),
                _ => Err(format!(
                    "leaves {}..{} were not all streamed",
                    range.start, range.end
                )),
            })
            .collect()
    }
}

fn hex_hashes(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(hex::encode).collect()
}

fn parse_hash(text: &str, what: &str) -> Result<Hash, String> {
    hex::decode(text)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| format!("{what} {text:?} is not 64 hex characters"))
}

fn parse_root(text: &str, what: &str) -> Result<Hash, String> {
    BASE64
        .decode(text)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| format!("{what} {text:?} is not the base64 of 32 bytes"))
}

/// Keys from `--key`, or else the source's published ones (and say so).
async fn keys_for(source: &LeafSource, keys: &[String]) -> Result<(Vec<Verifier>, bool), RunError> {
    let trusted = parse_keys(keys)?;
    if !trusted.is_empty() {
        return Ok((trusted, true));
    }
    let published = source.published_keys().await?;
    if published.is_empty() {
        return Err(RunError::new(
            "no verifier key: pass --key (the source publishes none)",
        ));
    }
    eprintln!("note: using the keys the source publishes; they are NOT independently trusted (pass --key)");
    Ok((published, false))
}

/// `prove`: print an inclusion proof (JSON, stdout) after checking it.
pub async fn prove(
    seq: u64,
    size: Option<u64>,
    database_url: Option<&str>,
    dir: Option<&Path>,
    chain: Option<String>,
    keys: &[String],
) -> Result<i32, RunError> {
    let source = LeafSource::open(database_url, dir, chain).await?;
    let (keys, _) = keys_for(&source, keys).await?;
    let notes = source.notes().await?;
    let (tree_size, note) = match size {
        Some(size) => notes
            .iter()
            .find(|(s, _)| *s == size)
            .cloned()
            .ok_or_else(|| RunError::new(format!("the source has no checkpoint of size {size}")))?,
        None => notes
            .last()
            .cloned()
            .ok_or_else(|| RunError::new("the source has no checkpoint yet"))?,
    };
    if seq == 0 || seq > tree_size {
        return Err(RunError::new(format!(
            "--seq {seq} is not within the checkpoint's 1..{tree_size}"
        )));
    }
    let (prefix_size, frontier) = source.prefix()?;
    if seq <= prefix_size {
        return Err(RunError::new(format!(
            "event {seq} is before this export's first event ({})",
            prefix_size + 1
        )));
    }
    let ranges =
        inclusion_proof_ranges(seq - 1, tree_size).map_err(|e| RunError::new(e.to_string()))?;
    let mut hasher = PrefixedHasher::new(prefix_size, &frontier, ranges).map_err(RunError::new)?;
    let line = source
        .stream(&mut hasher, tree_size, Some(seq))
        .await?
        .ok_or_else(|| RunError::new(format!("event {seq} was not found")))?;
    let path = hasher.finish().map_err(RunError::new)?;
    let event = Event::from_line(line.as_bytes())
        .map_err(|e| RunError::new(format!("event {seq}: {e}")))?;
    let checkpoint = Checkpoint::parse_body(&note_body(&note))
        .map_err(|e| RunError::new(format!("checkpoint {tree_size}: {e}")))?;
    let proof = InclusionProof {
        kind: INCLUSION.into(),
        version: 1,
        chain: source.chain().to_owned(),
        seq,
        leaf_index: seq - 1,
        tree_size,
        event: line,
        leaf_hash: hex::encode(leaf_hash(&event.canonical_bytes())),
        audit_path: hex_hashes(&path),
        root: BASE64.encode(checkpoint.root),
        checkpoint: note,
        published_keys: source
            .published_keys()
            .await?
            .iter()
            .map(Verifier::to_vkey)
            .collect(),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&proof).map_err(|e| RunError::new(e.to_string()))?
    );
    Ok(match check_inclusion(&proof, &keys) {
        Ok(()) => {
            eprintln!(
                "verified: event {seq} is leaf {} of the signed tree of size {tree_size}",
                seq - 1
            );
            EXIT_VERIFIED
        }
        Err(reason) => {
            eprintln!("REJECTED: {reason}");
            EXIT_INTEGRITY
        }
    })
}

/// `consistency`: print a consistency proof between two notes after checking it.
pub async fn consistency(
    old: &Path,
    new: &Path,
    database_url: Option<&str>,
    dir: Option<&Path>,
    chain: Option<String>,
    keys: &[String],
) -> Result<i32, RunError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|e| RunError::new(format!("{}: {e}", path.display())))
    };
    let (old_note, new_note) = (read(old)?, read(new)?);
    let source = LeafSource::open(database_url, dir, chain).await?;
    let (keys, _) = keys_for(&source, keys).await?;
    let open = |note: &str, path: &Path| {
        open_checkpoint(note, &keys)
            .map(|s| s.checkpoint)
            .map_err(|e| (path.display().to_string(), e))
    };
    let (old_cp, new_cp) = match (open(&old_note, old), open(&new_note, new)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err((path, e)), _) | (_, Err((path, e))) => {
            eprintln!("REJECTED: {path}: {e}");
            return Ok(EXIT_INTEGRITY);
        }
    };
    if old_cp.size > new_cp.size {
        return Err(RunError::new(format!(
            "OLD has size {} and NEW {}: give the older checkpoint first",
            old_cp.size, new_cp.size
        )));
    }
    let ranges = consistency_proof_ranges(old_cp.size, new_cp.size)
        .map_err(|e| RunError::new(e.to_string()))?;
    let (prefix_size, frontier) = source.prefix()?;
    let mut hasher = PrefixedHasher::new(prefix_size, &frontier, ranges).map_err(RunError::new)?;
    if new_cp.size > prefix_size {
        source.stream(&mut hasher, new_cp.size, None).await?;
    }
    let hashes = hasher.finish().map_err(RunError::new)?;
    let proof = ConsistencyProof {
        kind: CONSISTENCY.into(),
        version: 1,
        chain: source.chain().to_owned(),
        old_size: old_cp.size,
        new_size: new_cp.size,
        old_root: BASE64.encode(old_cp.root),
        new_root: BASE64.encode(new_cp.root),
        proof: hex_hashes(&hashes),
        old_checkpoint: old_note,
        new_checkpoint: new_note,
        published_keys: source
            .published_keys()
            .await?
            .iter()
            .map(Verifier::to_vkey)
            .collect(),
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&proof).map_err(|e| RunError::new(e.to_string()))?
    );
    Ok(match check_consistency(&proof, &keys) {
        Ok(()) => {
            eprintln!(
                "verified: the signed tree of size {} extends the signed tree of size {}",
                proof.new_size, proof.old_size
            );
            EXIT_VERIFIED
        }
        Err(reason) => {
            eprintln!("REJECTED: {reason}");
            EXIT_INTEGRITY
        }
    })
}

/// `verify-proof FILE`: check a proof file alone.
pub fn verify_proof(file: &PathBuf, keys: &[String], as_json: bool) -> i32 {
    let outcome = (|| -> Result<Result<String, String>, RunError> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| RunError::new(format!("{}: {e}", file.display())))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| RunError::new(format!("{}: not JSON: {e}", file.display())))?;
        let mut trusted = parse_keys(keys)?;
        let keys_trusted = !trusted.is_empty();
        if !keys_trusted {
            trusted = value["published_keys"]
                .as_array()
                .map(|keys| {
                    keys.iter()
                        .filter_map(|k| k.as_str())
                        .filter_map(|k| Verifier::from_vkey(k).ok())
                        .collect()
                })
                .unwrap_or_default();
            if trusted.is_empty() {
                return Err(RunError::new("no verifier key: pass --key"));
            }
        }
        let caveat = if keys_trusted {
            ""
        } else {
            " (with the keys inside the proof file, NOT independently trusted: pass --key)"
        };
        match value["type"].as_str() {
            Some(INCLUSION) => {
                let proof: InclusionProof = match serde_json::from_value(value) {
                    Ok(proof) => proof,
                    Err(e) => return Ok(Err(format!("malformed inclusion proof: {e}"))),
                };
                Ok(check_inclusion(&proof, &trusted).map(|()| {
                    format!(
                        "event {} is leaf {} of the signed tree of size {}{caveat}",
                        proof.seq, proof.leaf_index, proof.tree_size
                    )
                }))
            }
            Some(CONSISTENCY) => {
                let proof: ConsistencyProof = match serde_json::from_value(value) {
                    Ok(proof) => proof,
                    Err(e) => return Ok(Err(format!("malformed consistency proof: {e}"))),
                };
                Ok(check_consistency(&proof, &trusted).map(|()| {
                    format!(
                        "the signed tree of size {} extends the signed tree of size {}{caveat}",
                        proof.new_size, proof.old_size
                    )
                }))
            }
            other => Ok(Err(format!(
                "not a proof: type {other:?} (expected {INCLUSION} or {CONSISTENCY})"
            ))),
        }
    })();
    match outcome {
        Ok(Ok(message)) => {
            if as_json {
                println!("{}", serde_json::json!({"ok": true, "message": message}));
            } else {
                println!("verified: {message}");
            }
            EXIT_VERIFIED
        }
        Ok(Err(reason)) => {
            if as_json {
                println!("{}", serde_json::json!({"ok": false, "message": reason}));
            } else {
                println!("REJECTED: {reason}");
            }
            EXIT_INTEGRITY
        }
        Err(error) => {
            if as_json {
                println!("{}", serde_json::json!({"ok": false, "error": error.0}));
            } else {
                eprintln!("Error: {error}");
            }
            EXIT_ERROR
        }
    }
}

fn note_body(note: &str) -> String {
    note.split_once("\n\n")
        .map(|(body, _)| format!("{body}\n"))
        .unwrap_or_default()
}

/// Everything an inclusion proof claims, checked from the file alone.
pub fn check_inclusion(proof: &InclusionProof, keys: &[Verifier]) -> Result<(), String> {
    if proof.kind != INCLUSION || proof.version != 1 {
        return Err(format!(
            "unknown proof type {} v{}",
            proof.kind, proof.version
        ));
    }
    let checkpoint = open_checkpoint(&proof.checkpoint, keys)
        .map_err(|e| format!("the checkpoint does not verify: {e}"))?
        .checkpoint;
    if checkpoint.chain() != Some(proof.chain.as_str()) {
        return Err(format!(
            "the checkpoint is for {}, the proof for chain {}",
            checkpoint.origin, proof.chain
        ));
    }
    if checkpoint.size != proof.tree_size {
        return Err(format!(
            "tree size {} is not the signed checkpoint's {}",
            proof.tree_size, checkpoint.size
        ));
    }
    let root = parse_root(&proof.root, "root")?;
    if root != checkpoint.root {
        return Err("the root is not the signed checkpoint's".into());
    }
    let event = Event::from_line(proof.event.as_bytes())
        .map_err(|e| format!("the event is not a canonical envelope: {e}"))?;
    let canonical = event.canonical_bytes();
    if hash_hex(&canonical) != event.hash {
        return Err(format!(
            "the event's hash {} is not SHA-256 of its canonical bytes",
            event.hash
        ));
    }
    if event.chain != proof.chain {
        return Err(format!("the event belongs to chain {}", event.chain));
    }
    if event.seq != proof.seq || proof.leaf_index != proof.seq.wrapping_sub(1) {
        return Err(format!(
            "event seq {}, proof seq {} and leaf index {} do not agree (leaf index = seq − 1)",
            event.seq, proof.seq, proof.leaf_index
        ));
    }
    let leaf = leaf_hash(&canonical);
    if parse_hash(&proof.leaf_hash, "leaf hash")? != leaf {
        return Err("the leaf hash is not SHA-256(0x00 || the event's canonical bytes)".into());
    }
    let path = proof
        .audit_path
        .iter()
        .map(|h| parse_hash(h, "audit path hash"))
        .collect::<Result<Vec<Hash>, String>>()?;
    verify_inclusion(
        &leaf,
        proof.leaf_index,
        proof.tree_size,
        &path,
        &checkpoint.root,
    )
    .map_err(|e| format!("the audit path does not lead to the signed root: {e}"))?;
    if proof.seq == proof.tree_size && checkpoint.head != event.hash {
        return Err("the event is the checkpoint's last, but its hash is not the head".into());
    }
    Ok(())
}

/// Everything a consistency proof claims, checked from the file alone.
pub fn check_consistency(proof: &ConsistencyProof, keys: &[Verifier]) -> Result<(), String> {
    if proof.kind != CONSISTENCY || proof.version != 1 {
        return Err(format!(
            "unknown proof type {} v{}",
            proof.kind, proof.version
        ));
    }
    let open = |note: &str, which: &str| {
        open_checkpoint(note, keys)
            .map(|s| s.checkpoint)
            .map_err(|e| format!("the {which} checkpoint does not verify: {e}"))
    };
    let old = open(&proof.old_checkpoint, "old")?;
    let new = open(&proof.new_checkpoint, "new")?;
    for (checkpoint, which) in [(&old, "old"), (&new, "new")] {
        if checkpoint.chain() != Some(proof.chain.as_str()) {
            return Err(format!(
                "the {which} checkpoint is for {}",
                checkpoint.origin
            ));
        }
    }
    if old.size != proof.old_size || new.size != proof.new_size {
        return Err(format!(
            "sizes {}→{} are not the signed checkpoints' {}→{}",
            proof.old_size, proof.new_size, old.size, new.size
        ));
    }
    if parse_root(&proof.old_root, "old root")? != old.root
        || parse_root(&proof.new_root, "new root")? != new.root
    {
        return Err("a root is not its signed checkpoint's".into());
    }
    let hashes = proof
        .proof
        .iter()
        .map(|h| parse_hash(h, "proof hash"))
        .collect::<Result<Vec<Hash>, String>>()?;
    verify_consistency(old.size, new.size, &old.root, &new.root, &hashes)
        .map_err(|e| format!("the new tree does not extend the old one: {e}"))?;
    if old.size == new.size && old.head != new.head {
        return Err("two checkpoints of one size with different heads".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::merkle::{consistency_proof, inclusion_proof, root};

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    fn frontier_of(leaves: &[Hash]) -> Vec<Hash> {
        let mut tree = CompactRange::new();
        for leaf in leaves {
            tree.push(*leaf);
        }
        tree.frontier().to_vec()
    }

    fn hashed(prefix: u64, all: &[Hash], ranges: Vec<Range<u64>>) -> Result<Vec<Hash>, String> {
        let mut hasher =
            PrefixedHasher::new(prefix, &frontier_of(&all[..prefix as usize]), ranges)?;
        for leaf in &all[prefix as usize..] {
            hasher.push(*leaf);
        }
        hasher.finish()
    }

    #[test]
    fn inclusion_after_any_prefix_matches_the_in_memory_proof() {
        for size in 1..40u64 {
            let all = leaves(size);
            for prefix in 0..size {
                for index in prefix..size {
                    let ranges = inclusion_proof_ranges(index, size).unwrap();
                    let got = hashed(prefix, &all, ranges).unwrap_or_else(|e| {
                        panic!("size {size} prefix {prefix} index {index}: {e}")
                    });
                    assert_eq!(got, inclusion_proof(&all, index).unwrap());
                    verify_inclusion(&all[index as usize], index, size, &got, &root(&all)).unwrap();
                }
            }
        }
    }

    #[test]
    fn consistency_from_the_prefix_checkpoint_matches_the_in_memory_proof() {
        for size in 2..40u64 {
            let all = leaves(size);
            for prefix in 1..size {
                let ranges = consistency_proof_ranges(prefix, size).unwrap();
                let got = hashed(prefix, &all, ranges).unwrap();
                assert_eq!(got, consistency_proof(&all, prefix).unwrap());
            }
        }
    }

    #[test]
    fn ranges_before_the_prefix_are_refused_not_guessed() {
        let all = leaves(16);
        // Leaf 3 of 16 needs leaf 2 alone: inside the prefix subtree [0, 8).
        let ranges = inclusion_proof_ranges(3, 16).unwrap();
        assert!(hashed(8, &all, ranges).is_err());
    }
}

#[cfg(test)]
mod proptests;
