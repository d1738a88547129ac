//! Auditor export bundles: the archive layout (`docs/events.md` §5) written from the
//! database to a directory or a `.tar.gz`, with a README for auditors, a
//! `SHA256SUMS`, and for a partial export a `start.json`.
//!
//! A bundle always ends at a signed checkpoint (the newest at or below
//! `--to-seq`), so everything in it is vouched for by a signature. Segments
//! end at every checkpoint, exactly as the shipper cuts them, so a bundle's
//! segment files are byte-identical to the archive's objects of the same name.
//!
//! **Partial exports** (`--from-seq N`, N > 1) start right after the newest
//! checkpoint P at or below N−1 (so they may begin a little before N) and
//! carry `start.json`: P, the hash of event P and the Merkle frontier at P
//! (one subtree root per set bit of P). `verify-chain --dir` resumes from that
//! frontier, and only accepts it because `checkpoints/P.note` — signed —
//! has exactly that root and head. Quarter by quarter: export the next
//! quarter with `--from-seq <last quarter's end + 1>` and its start
//! checkpoint is last quarter's end checkpoint, which
//! `verify-chain consistency` then proves the new one extends.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use events::archive::{Layout, StartPoint};
use events::catalogue::AuditExported;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio::io::AsyncWriteExt;

use super::segments::{checkpoints_between, ChainCursor, SegmentError};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Segment(#[from] SegmentError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("write: {0}")]
    Io(#[from] std::io::Error),
}

/// What to export; both ends inclusive, by seq.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExportRange {
    pub from_seq: Option<u64>,
    pub to_seq: Option<u64>,
}

/// The bundle's extent, decided before anything is written.
#[derive(Debug, Clone, Serialize)]
pub struct ExportPlan {
    pub chain: String,
    /// What was asked for.
    pub requested_from: u64,
    pub requested_to: Option<u64>,
    /// The checkpoint the bundle resumes after (0: it starts at seq 1).
    pub start_size: u64,
    /// Last event in the bundle: the newest checkpoint at or below `requested_to`.
    pub last_seq: u64,
    /// Checkpoint sizes in (start_size, last_seq], each the end of a segment.
    pub checkpoint_sizes: Vec<u64>,
}

impl ExportPlan {
    pub fn first_seq(&self) -> u64 {
        self.start_size + 1
    }

    /// The `audit.exported` record of this bundle, made `via` the CLI or the API, in `format`.
    pub fn exported(&self, via: &str, format: &str) -> AuditExported {
        AuditExported {
            via: via.to_owned(),
            format: format.to_owned(),
            requested_from: self.requested_from,
            requested_to: self.requested_to,
            first_seq: self.first_seq(),
            last_seq: self.last_seq,
            start_checkpoint: self.start_size,
        }
    }

    pub fn events(&self) -> u64 {
        self.last_seq - self.start_size
    }
}

/// What a finished bundle holds.
#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    #[serde(flatten)]
    pub plan: ExportPlan,
    pub segments: u64,
    pub checkpoints: u64,
    pub bytes: u64,
}

pub async fn plan(
    pool: &PgPool,
    chain: &str,
    range: ExportRange,
) -> Result<ExportPlan, ExportError> {
    let from = range.from_seq.unwrap_or(1);
    if from == 0 {
        return Err(ExportError::Invalid("--from-seq starts at 1".into()));
    }
    if let Some(to) = range.to_seq {
        if to < from {
            return Err(ExportError::Invalid(format!(
                "--to-seq {to} is below --from-seq {from}"
            )));
        }
    }
    let sizes: Vec<u64> = checkpoints_between(pool, chain, 0, range.to_seq)
        .await?
        .into_iter()
        .map(|(size, _)| size)
        .collect();
    let Some(&last) = sizes.last() else {
        return Err(ExportError::Invalid(match range.to_seq {
            Some(to) => format!(
                "no signed checkpoint at or below seq {to}: nothing verifiable to export yet"
            ),
            None => "no signed checkpoint yet: nothing verifiable to export".into(),
        }));
    };
    if last < from {
        return Err(ExportError::Invalid(format!(
            "the newest signed checkpoint{} is at seq {last}, below --from-seq {from}",
            range
                .to_seq
                .map(|to| format!(" at or below {to}"))
                .unwrap_or_default()
        )));
    }
    let start = sizes
        .iter()
        .copied()
        .filter(|&s| s < from)
        .max()
        .unwrap_or(0);
    Ok(ExportPlan {
        chain: chain.to_owned(),
        requested_from: from,
        requested_to: range.to_seq,
        start_size: start,
        last_seq: last,
        checkpoint_sizes: sizes.into_iter().filter(|&s| s > start).collect(),
    })
}

/// The verifier keys a bundle carries: `current` (this process's signer),
/// and every key the gateway published in its `gateway.started` events (so
/// checkpoints signed before a key rotation still verify), as (name, vkey).
pub async fn bundle_keys(
    pool: &PgPool,
    chain: &str,
    current: &[(String, String)],
) -> Result<Vec<(String, String)>, ExportError> {
    let published: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT body->'data'->>'checkpoint_vkey' FROM events \
         WHERE chain = $1 AND type = 'gateway.started' AND body->'data' ? 'checkpoint_vkey'",
    )
    .bind(chain)
    .fetch_all(pool)
    .await?;
    let mut keys: Vec<(String, String)> = current.to_vec();
    for vkey in published {
        let Ok(verifier) = events::note::Verifier::from_vkey(&vkey) else {
            continue;
        };
        if !keys.iter().any(|(_, known)| *known == vkey) {
            keys.push((verifier.name().to_owned(), vkey));
        }
    }
    // One file per key name; a name used by two keys gets the key id appended.
    let mut named: Vec<(String, String)> = Vec::new();
    for (name, vkey) in keys {
        let name = if named.iter().any(|(n, _)| *n == name) {
            let id = vkey.split('+').nth(1).unwrap_or("other");
            format!("{name}+{id}")
        } else {
            name
        };
        named.push((name, vkey));
    }
    Ok(named)
}

/// Where bundle files go: a directory, or a `.tar.gz` stream.
#[async_trait]
pub trait BundleSink: Send {
    /// `path` relative to the bundle root, `/`-separated.
    async fn add(&mut self, path: &str, bytes: &[u8]) -> std::io::Result<()>;
}

/// The bundle's files, in order, into `sink`. Memory: one segment at a time.
pub async fn write_bundle(
    pool: &PgPool,
    plan: &ExportPlan,
    prefix: &str,
    verifier_keys: &[(String, String)],
    sink: &mut dyn BundleSink,
) -> Result<ExportSummary, ExportError> {
    let layout = Layout::new(prefix, &plan.chain);
    let mut tally = Tally::default();
    let mut add = |path: String, body: Vec<u8>| tally.file(path, body);
    let notes: std::collections::BTreeMap<u64, String> = checkpoints_between(
        pool,
        &plan.chain,
        plan.start_size.saturating_sub(1),
        Some(plan.last_seq),
    )
    .await?
    .into_iter()
    .collect();
    let note_of = |size: u64| {
        notes.get(&size).cloned().ok_or_else(|| {
            ExportError::Segment(SegmentError::Inconsistent(format!(
                "checkpoint {size} disappeared from the database"
            )))
        })
    };

    for (name, vkey) in verifier_keys {
        let (path, body) = add(layout.key_key(name), format!("{vkey}\n").into_bytes());
        sink.add(&path, &body).await?;
    }

    let mut cursor = ChainCursor::new(&plan.chain);
    let mut checkpoints = 0u64;
    if plan.start_size > 0 {
        cursor.advance_to(pool, plan.start_size).await?;
        let note = note_of(plan.start_size)?;
        cursor.check_note(&note)?;
        let start = StartPoint::new(
            &plan.chain,
            plan.start_size,
            cursor.head_hash(),
            cursor.frontier(),
        );
        let json = start
            .to_json()
            .map_err(|e| ExportError::Invalid(format!("encode start.json: {e}")))?;
        let (path, body) = add(layout.start_key(), json);
        sink.add(&path, &body).await?;
        let (path, body) = add(layout.checkpoint_key(plan.start_size), note.into_bytes());
        sink.add(&path, &body).await?;
        checkpoints += 1;
    }

    let mut segments = 0u64;
    for &size in &plan.checkpoint_sizes {
        let segment = cursor.read_segment(pool, size).await?;
        let note = note_of(size)?;
        cursor.check_note(&note)?;
        let (path, body) = add(
            layout.segment_key(segment.first, segment.last),
            segment.body,
        );
        sink.add(&path, &body).await?;
        let (path, body) = add(layout.checkpoint_key(size), note.into_bytes());
        sink.add(&path, &body).await?;
        segments += 1;
        checkpoints += 1;
    }

    let mut summary = ExportSummary {
        plan: plan.clone(),
        segments,
        checkpoints,
        bytes: 0,
    };
    let readme = readme(&summary, prefix, verifier_keys);
    let (path, body) = add("README.md".to_owned(), readme.into_bytes());
    sink.add(&path, &body).await?;
    sink.add("SHA256SUMS", tally.sums.as_bytes()).await?;
    summary.bytes = tally.bytes + tally.sums.len() as u64;
    Ok(summary)
}

/// Bytes written so far, and `SHA256SUMS` (`sha256sum -c` format).
#[derive(Default)]
struct Tally {
    sums: String,
    bytes: u64,
}

impl Tally {
    fn file(&mut self, path: String, body: Vec<u8>) -> (String, Vec<u8>) {
        self.bytes += body.len() as u64;
        self.sums
            .push_str(&format!("{}  {path}\n", hex::encode(Sha256::digest(&body))));
        (path, body)
    }
}

/// Writes files under a directory (which must not exist yet, or be empty).
pub struct DirSink {
    root: PathBuf,
}

impl DirSink {
    pub fn create(root: &Path) -> Result<DirSink, ExportError> {
        if root.exists() {
            let empty = std::fs::read_dir(root)?.next().is_none();
            if !empty {
                return Err(ExportError::Invalid(format!(
                    "{} exists and is not empty; choose a new directory",
                    root.display()
                )));
            }
        }
        std::fs::create_dir_all(root)?;
        Ok(DirSink {
            root: root.to_path_buf(),
        })
    }
}

#[async_trait]
impl BundleSink for DirSink {
    async fn add(&mut self, path: &str, bytes: &[u8]) -> std::io::Result<()> {
        let target = self.root.join(path);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::write(&target, bytes).await
    }
}

/// Where compressed tar bytes go, chunk by chunk.
#[async_trait]
pub trait ChunkOut: Send {
    async fn write_chunk(&mut self, chunk: Vec<u8>) -> std::io::Result<()>;
}

#[async_trait]
impl ChunkOut for tokio::fs::File {
    async fn write_chunk(&mut self, chunk: Vec<u8>) -> std::io::Result<()> {
        self.write_all(&chunk).await
    }
}

#[async_trait]
impl ChunkOut for tokio::sync::mpsc::Sender<Result<bytes::Bytes, std::io::Error>> {
    async fn write_chunk(&mut self, chunk: Vec<u8>) -> std::io::Result<()> {
        self.send(Ok(bytes::Bytes::from(chunk)))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "download cancelled"))
    }
}

#[derive(Clone, Default)]
struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .map(|mut b| std::mem::take(&mut *b))
            .unwrap_or_default()
    }
}

impl Write for SharedBuf {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("buffer poisoned"))?
            .extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A `.tar.gz` with every file under one top directory, streamed to `out`.
pub struct TarGzSink<O: ChunkOut> {
    builder: Option<tar::Builder<GzEncoder<SharedBuf>>>,
    buffer: SharedBuf,
    out: O,
    top: String,
    mtime: u64,
}

impl<O: ChunkOut> TarGzSink<O> {
    pub fn new(out: O, top: &str, mtime: DateTime<Utc>) -> TarGzSink<O> {
        let buffer = SharedBuf::default();
        let encoder = GzEncoder::new(buffer.clone(), Compression::default());
        TarGzSink {
            builder: Some(tar::Builder::new(encoder)),
            buffer,
            out,
            top: top.trim_matches('/').to_owned(),
            mtime: mtime.timestamp().max(0) as u64,
        }
    }

    /// Close the archive and the gzip stream; returns the output.
    pub async fn finish(mut self) -> std::io::Result<O> {
        if let Some(builder) = self.builder.take() {
            let encoder = builder.into_inner()?;
            encoder.finish()?;
        }
        let rest = self.buffer.take();
        if !rest.is_empty() {
            self.out.write_chunk(rest).await?;
        }
        Ok(self.out)
    }
}

#[async_trait]
impl<O: ChunkOut> BundleSink for TarGzSink<O> {
    async fn add(&mut self, path: &str, bytes: &[u8]) -> std::io::Result<()> {
        let builder = self
            .builder
            .as_mut()
            .ok_or_else(|| std::io::Error::other("bundle already finished"))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(self.mtime);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, format!("{}/{path}", self.top), bytes)?;
        let chunk = self.buffer.take();
        if !chunk.is_empty() {
            self.out.write_chunk(chunk).await?;
        }
        Ok(())
    }
}

/// The README every bundle carries: what the files are and how to check them.
fn readme(summary: &ExportSummary, prefix: &str, keys: &[(String, String)]) -> String {
    let plan = &summary.plan;
    let layout = Layout::new(prefix, &plan.chain);
    let root = layout.root();
    let key_lines = if keys.is_empty() {
        "  (none was configured where this bundle was made: ask for the verifier key)\n".to_owned()
    } else {
        keys.iter()
            .map(|(name, vkey)| format!("  {name}: {vkey}\n"))
            .collect()
    };
    let partial = if plan.start_size > 0 {
        format!(
            "\nThis is a **partial export**: it holds events {first}..{last}. It resumes after\n\
             the signed checkpoint of size {start} (`{root}checkpoints/{start:020}.note`);\n\
             `{root}start.json` gives the hash of event {start} and the Merkle frontier at\n\
             that size (the roots of the perfect subtrees of the tree of {start} leaves,\n\
             largest first, hex). `verify-chain` resumes from them only because the signed\n\
             checkpoint has exactly that root (recomputed from the frontier) and head.\n\
             {asked}",
            first = plan.first_seq(),
            last = plan.last_seq,
            start = plan.start_size,
            asked = if plan.requested_from != plan.first_seq() {
                format!(
                    "It starts at seq {} rather than the {} asked for: a bundle starts right after\n\
                     a signed checkpoint.\n",
                    plan.first_seq(),
                    plan.requested_from
                )
            } else {
                String::new()
            },
        )
    } else {
        String::new()
    };
    format!(
        r#"# rack-gateway audit log export

Chain `{chain}`, events {first}..{last} ({events} events), {segments} segments,
{checkpoints} signed checkpoints. The newest checkpoint, `{root}checkpoints/{last:020}.note`,
is signed and covers every event in this bundle: nothing after it is included.
{partial}
## What the files are

- `{root}segments/<first>-<last>.jsonl`: events first..last (20-digit seq
  numbers), one JSON envelope per line in seq order, each with its `hash`.
  Segments are contiguous; each ends exactly at a signed checkpoint.
- `{root}checkpoints/<N>.note`: a signed checkpoint of the first N events:
  a C2SP signed note whose body is `rack-gateway/<chain>`, N, the base64
  RFC 6962 Merkle root of events 1..N, and `head <hash of event N>`, followed
  by a blank line and an Ed25519 signature line.
- `{root}keys/<name>.vkey`: the verifier key that signed the checkpoints, as
  published by the gateway. Obtain it independently too (from the operator,
  over a channel you trust) and compare: a key shipped inside the bundle
  proves only that the bundle is self-consistent.
- `SHA256SUMS`: `sha256sum -c SHA256SUMS` checks every file arrived intact.

Verifier keys:
{key_lines}
## Verify everything (no database, no network)

    verify-chain --dir . --key '<verifier key>'

It recomputes every event hash and link, the Merkle root at every checkpoint,
checks every signature and that the checkpoints agree, and exits 0 only if
all hold (1 names the first failure; 2 is a usage or I/O error). Also:

    verify-chain prove --seq N --dir . --key '<verifier key>' > proof.json
    verify-chain verify-proof proof.json --key '<verifier key>'
    verify-chain consistency OLD.note NEW.note --dir . --key '<verifier key>'

`prove` prints an RFC 9162 inclusion proof of event N against a signed
checkpoint, `verify-proof` checks such a file without any data source, and
`consistency` proves that NEW's log extends OLD's (for example, last
quarter's final checkpoint against this quarter's).

## Check one checkpoint by hand

Every step uses standard tools (python3 3.8+, openssl 3). The event hash is
SHA-256 of the RFC 8785 canonical JSON of the envelope without `hash`; for
these envelopes (ASCII keys, integers only) Python's sorted, compact JSON is
exactly that form.

1. Event hashes and links of a segment:

       python3 - {root}segments/<file>.jsonl <<'EOF'
       import hashlib, json, sys
       prev = None
       for line in open(sys.argv[1], encoding="utf-8"):
           e = json.loads(line); h = e.pop("hash")
           c = json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
           assert hashlib.sha256(c).hexdigest() == h, e["seq"]
           assert prev is None or e["prev"] == prev, e["seq"]
           prev = h
       print("ok, last hash", prev)
       EOF

2. The Merkle root of the first N events (RFC 6962: leaf = SHA-256(0x00 ||
   canonical), node = SHA-256(0x01 || left || right)); compare with line 3 of
   the note, and the last hash with its `head` line:

       python3 - {root}segments/*.jsonl <<'EOF'
       import base64, hashlib, json, sys
       def canon(e): return json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
       leaves = []
       for name in sorted(sys.argv[1:]):
           for line in open(name, encoding="utf-8"):
               e = json.loads(line); e.pop("hash"); leaves.append(hashlib.sha256(b"\0" + canon(e)).digest())
       def mth(l):
           if len(l) == 1: return l[0]
           k = 1 << ((len(l) - 1).bit_length() - 1)
           return hashlib.sha256(b"\1" + mth(l[:k]) + mth(l[k:])).digest()
       print(len(leaves), base64.b64encode(mth(leaves)).decode())
       EOF

   (For a partial export, start from `start.json` instead: that needs the
   frontier, which `verify-chain` handles.)

3. The Ed25519 signature. The signed message is the note's text up to and
   including the newline before the blank line; the signature line is
   `— <name> <base64>`, whose decoded bytes are a 4-byte key id and the
   64-byte signature. The verifier key is `<name>+<hex key id>+<base64 of
   0x01 || 32-byte public key>`.

       NOTE={root}checkpoints/{last:020}.note
       VKEY='<verifier key>'
       python3 - "$NOTE" "$VKEY" <<'EOF'
       import base64, sys
       note = open(sys.argv[1], "rb").read()
       body, sigs = note.split(b"\n\n", 1)
       open("body.txt", "wb").write(body + b"\n")
       sig = base64.b64decode(sigs.split(b"\n")[0].split(b" ")[2])
       open("sig.bin", "wb").write(sig[4:])
       pub = base64.b64decode(sys.argv[2].split("+", 2)[2])[1:]
       open("pub.der", "wb").write(bytes.fromhex("302a300506032b6570032100") + pub)
       EOF
       openssl pkeyutl -verify -pubin -inkey pub.der -keyform DER -rawin -in body.txt -sigfile sig.bin

   With Go: `note.Open(noteBytes, note.VerifierList(v))` where
   `v, _ := note.NewVerifier(vkey)` (package `golang.org/x/mod/sumdb/note`)
   verifies the same note.
"#,
        chain = plan.chain,
        first = plan.first_seq(),
        last = plan.last_seq,
        events = plan.events(),
        segments = summary.segments,
        checkpoints = summary.checkpoints,
    )
}
