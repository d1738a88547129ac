//! Archive-format sources: an S3 bucket/prefix (`--s3`) or an export
//! directory (`--dir`), both in the layout of docs/events.md §5
//! ([`events::archive`], the names the gateway writes).
//!
//! Opening a source lists it and checks that nothing is missing before a
//! single event is read: segments contiguous from seq 1 (or from the
//! `start.json` of a partial export), each ending at a checkpoint whose note
//! is present. Every object read from S3 must be under Object Lock in the
//! expected mode with a retain-until date at least the expected number of
//! days after it was written; each object's lock is reported. Events are then
//! read one segment at a time, one line at a time (constant memory).

use std::collections::BTreeMap;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use events::archive::{Layout, StartPoint};
use events::note::Verifier;
use events::verify::Failure;
use serde::Serialize;

use super::RunError;

/// Check number for archive objects (an addition to docs/events.md §7's five):
/// every object that should be there is, under Object Lock as configured.
pub const CHECK_ARCHIVE_OBJECTS: u8 = 6;

/// What Object Lock every archived object must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockPolicy {
    /// `COMPLIANCE` or `GOVERNANCE`.
    pub mode: String,
    /// retain-until must be at least this many days after the object was written.
    pub min_retention_days: u32,
}

/// How one object is locked, as reported.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ObjectLock {
    pub key: String,
    pub lock_mode: Option<String>,
    pub retain_until: Option<DateTime<Utc>>,
    pub last_modified: Option<DateTime<Utc>>,
}

/// One object (or file) as read.
pub struct Object {
    pub bytes: Vec<u8>,
    pub lock: ObjectLock,
}

/// Lines of one segment, one at a time.
#[async_trait]
pub trait LineReader: Send {
    /// The next line without its `\n`; `None` at the end.
    async fn next_line(&mut self) -> Result<Option<Vec<u8>>, RunError>;
}

/// The storage under an archive source: S3 or a directory.
#[async_trait]
pub trait Store: Send + Sync {
    /// How the source is named in reports (`s3://bucket/prefix`, a path).
    fn describe(&self) -> String;
    /// Full names (keys or paths) of the entries directly under `dir` (a `/`-terminated prefix), sorted.
    async fn list(&self, dir: &str) -> Result<Vec<String>, RunError>;
    /// Sub-directories directly under `dir` (chain discovery).
    async fn list_dirs(&self, dir: &str) -> Result<Vec<String>, RunError>;
    /// `None` when the object does not exist.
    async fn read(&self, name: &str) -> Result<Option<Object>, RunError>;
    async fn open_lines(&self, name: &str) -> Result<(Box<dyn LineReader>, ObjectLock), RunError>;
    /// Whether objects carry Object Lock (S3) or not (a directory).
    fn has_locks(&self) -> bool;
}

/// An archive source, listed and checked for completeness.
pub struct ArchiveSource {
    pub store: Box<dyn Store>,
    pub chain: String,
    /// Names under `<prefix>/<chain>/`.
    pub layout: Layout,
    /// (first, last, name), contiguous, in order.
    pub segments: Vec<(u64, u64, String)>,
    /// size → (name, note bytes).
    pub checkpoints: BTreeMap<u64, (String, Vec<u8>)>,
    /// name → verifier key text.
    pub keys: Vec<(String, String)>,
    pub start: Option<StartPoint>,
    /// Every object's lock, when the store has locks.
    pub locks: Vec<ObjectLock>,
    pub policy: Option<LockPolicy>,
}

/// An integrity failure found while opening, or a usage/I/O error.
pub enum OpenError {
    Integrity(Failure),
    Run(RunError),
}

impl From<RunError> for OpenError {
    fn from(error: RunError) -> Self {
        OpenError::Run(error)
    }
}

fn missing(object: String, expected: String, message: String) -> OpenError {
    OpenError::Integrity(Failure {
        check: CHECK_ARCHIVE_OBJECTS,
        seq: None,
        object: Some(object),
        expected,
        found: "no such object".into(),
        message,
    })
}

impl ArchiveSource {
    /// List `prefix` (a `/`-terminated root holding chain directories, or a
    /// chain directory itself) and check that nothing is missing.
    pub async fn open(
        store: Box<dyn Store>,
        prefix: &str,
        chain: Option<&str>,
        policy: Option<LockPolicy>,
    ) -> Result<ArchiveSource, OpenError> {
        let (chain, layout) = find_chain(store.as_ref(), prefix, chain).await?;
        let mut source = ArchiveSource {
            store,
            chain,
            layout,
            segments: Vec::new(),
            checkpoints: BTreeMap::new(),
            keys: Vec::new(),
            start: None,
            locks: Vec::new(),
            policy,
        };
        source.load().await?;
        Ok(source)
    }

    async fn load(&mut self) -> Result<(), OpenError> {
        let layout = self.layout.clone();
        let root = layout.root();
        // Keys.
        for name in self.store.list(&layout.keys_prefix()).await? {
            if !layout.is_key_key(&name) {
                continue;
            }
            let object = self.read_required(&name).await?;
            let text = String::from_utf8_lossy(&object.bytes).trim().to_owned();
            self.keys.push((name, text));
        }
        // start.json (partial exports).
        let start_name = layout.start_key();
        if let Some(object) = self.store.read(&start_name).await? {
            let start = StartPoint::parse(&object.bytes).map_err(|e| {
                OpenError::Integrity(Failure {
                    check: events::verify::CHECK_CHECKPOINT,
                    seq: None,
                    object: Some(start_name.clone()),
                    expected: "start.json: chain, size, head, frontier, checkpoint".into(),
                    found: e.to_string(),
                    message: "the partial export's start point is malformed".into(),
                })
            })?;
            self.start = Some(start);
        }
        // Checkpoints.
        for name in self.store.list(&layout.checkpoints_prefix()).await? {
            let Some(size) = layout.parse_checkpoint_key(&name) else {
                return Err(OpenError::Integrity(Failure {
                    check: CHECK_ARCHIVE_OBJECTS,
                    seq: None,
                    object: Some(name.clone()),
                    expected: "checkpoints/<20 digits>.note".into(),
                    found: name,
                    message: "an object that is not a checkpoint among the checkpoints".into(),
                }));
            };
            let object = self.read_required(&name).await?;
            self.checkpoints.insert(size, (name, object.bytes));
        }
        // Segments: contiguous from the start.
        let first_expected = self.start.as_ref().map_or(1, |s| s.size + 1);
        for name in self.store.list(&layout.segments_prefix()).await? {
            let Some((first, last)) = layout.parse_segment_key(&name) else {
                return Err(OpenError::Integrity(Failure {
                    check: CHECK_ARCHIVE_OBJECTS,
                    seq: None,
                    object: Some(name.clone()),
                    expected: "segments/<20 digits>-<20 digits>.jsonl".into(),
                    found: name,
                    message: "an object that is not a segment among the segments".into(),
                }));
            };
            let expected = self
                .segments
                .last()
                .map_or(first_expected, |&(_, l, _)| l + 1);
            if first != expected {
                let (object, message) = if first > expected {
                    (
                        format!("{root}segments/{expected:020}-*.jsonl"),
                        format!("segment missing: no segment starts at seq {expected} (the next one starts at {first})"),
                    )
                } else {
                    (
                        name.clone(),
                        format!("segments overlap: {name} starts at {first}, the previous one ends at {}", expected - 1),
                    )
                };
                return Err(OpenError::Integrity(Failure {
                    check: CHECK_ARCHIVE_OBJECTS,
                    seq: Some(expected),
                    object: Some(object),
                    expected: format!("a segment starting at seq {expected}"),
                    found: format!("{name} (starting at {first})"),
                    message,
                }));
            }
            if !self.checkpoints.contains_key(&last) {
                let note = layout.checkpoint_key(last);
                return Err(missing(
                    note.clone(),
                    format!("the checkpoint {note} closing {name}"),
                    format!("checkpoint missing: every segment ends at a signed checkpoint, and {note} is not there"),
                ));
            }
            self.segments.push((first, last, name));
        }
        if let Some(start) = &self.start {
            if !self.checkpoints.contains_key(&start.size) {
                let note = format!("{root}{}", start.checkpoint);
                return Err(missing(
                    note,
                    format!("the checkpoint of size {} the export starts after", start.size),
                    "checkpoint missing: a partial export needs the signed checkpoint it resumes from".into(),
                ));
            }
        }
        Ok(())
    }

    /// Read an object that must exist, and check its lock.
    async fn read_required(&mut self, name: &str) -> Result<Object, OpenError> {
        let object = self.store.read(name).await?.ok_or_else(|| {
            missing(
                name.to_owned(),
                "the object listed a moment ago".into(),
                "object missing".into(),
            )
        })?;
        self.check_lock(&object.lock)?;
        Ok(object)
    }

    /// Record and check one object's lock (a no-op for directories).
    pub fn check_lock(&mut self, lock: &ObjectLock) -> Result<(), OpenError> {
        if !self.store.has_locks() {
            return Ok(());
        }
        self.locks.push(lock.clone());
        match &self.policy {
            Some(policy) => check_lock(policy, lock).map_err(OpenError::Integrity),
            None => Ok(()),
        }
    }

    /// Published verifier keys (`keys/*.vkey`) that parse.
    pub fn published_keys(&self) -> Vec<Verifier> {
        self.keys
            .iter()
            .filter_map(|(_, text)| Verifier::from_vkey(text).ok())
            .collect()
    }

    /// Seq of the first event (1, or after a partial export's start).
    pub fn first_seq(&self) -> u64 {
        self.start.as_ref().map_or(1, |s| s.size + 1)
    }

    /// Seq of the last event in the segments (the start size if none).
    pub fn last_seq(&self) -> u64 {
        self.segments
            .last()
            .map_or(self.first_seq() - 1, |&(_, last, _)| last)
    }

    /// The events, segment after segment.
    pub fn events(&self) -> ArchiveEvents<'_> {
        ArchiveEvents {
            source: self,
            segment: 0,
            reader: None,
            label: Arc::from(""),
            locks: Vec::new(),
        }
    }
}

/// A lock that does not meet the policy is an integrity failure naming the object.
pub fn check_lock(policy: &LockPolicy, lock: &ObjectLock) -> Result<(), Failure> {
    let fail = |expected: String, found: String, message: &str| Failure {
        check: CHECK_ARCHIVE_OBJECTS,
        seq: None,
        object: Some(lock.key.clone()),
        expected,
        found,
        message: message.to_owned(),
    };
    let Some(mode) = &lock.lock_mode else {
        return Err(fail(
            format!("Object Lock mode {}", policy.mode),
            "no Object Lock retention".into(),
            "object not locked: it could be deleted or replaced",
        ));
    };
    if !mode.eq_ignore_ascii_case(&policy.mode) {
        return Err(fail(
            format!("Object Lock mode {}", policy.mode),
            format!("mode {mode}"),
            "object locked in another mode than required",
        ));
    }
    let Some(until) = lock.retain_until else {
        return Err(fail(
            "a retain-until date".into(),
            "none".into(),
            "object not locked: no retain-until date",
        ));
    };
    // The gateway computes retain-until from its own clock just before the
    // PUT; allow an hour of skew against the store's Last-Modified.
    let written = lock.last_modified.unwrap_or_else(Utc::now);
    let required = written + chrono::Duration::days(i64::from(policy.min_retention_days))
        - chrono::Duration::hours(1);
    if until < required {
        return Err(fail(
            format!(
                "retain-until at least {} days after it was written ({})",
                policy.min_retention_days,
                required.format("%Y-%m-%d")
            ),
            format!("retain-until {}", until.to_rfc3339()),
            "object retention shorter than required",
        ));
    }
    Ok(())
}

/// Streams the events of an [`ArchiveSource`].
pub struct ArchiveEvents<'a> {
    source: &'a ArchiveSource,
    segment: usize,
    reader: Option<Box<dyn LineReader>>,
    label: Arc<str>,
    /// Locks of the segments opened so far.
    pub locks: Vec<ObjectLock>,
}

impl ArchiveEvents<'_> {
    /// The next line and the object it came from; `None` after the last segment.
    pub async fn next(&mut self) -> Result<Option<(Arc<str>, Vec<u8>)>, OpenError> {
        loop {
            if let Some(reader) = self.reader.as_mut() {
                if let Some(line) = reader.next_line().await? {
                    return Ok(Some((self.label.clone(), line)));
                }
                self.reader = None;
            }
            let Some((_, _, name)) = self.source.segments.get(self.segment) else {
                return Ok(None);
            };
            self.segment += 1;
            let (reader, lock) = self.source.store.open_lines(name).await?;
            if self.source.store.has_locks() {
                if let Some(policy) = &self.source.policy {
                    check_lock(policy, &lock).map_err(OpenError::Integrity)?;
                }
                self.locks.push(lock);
            }
            self.reader = Some(reader);
            self.label = Arc::from(name.as_str());
        }
    }
}

/// Which chain under `prefix`: the one named, or the only one there. A
/// `prefix` that is itself a chain directory (holds `segments/` or
/// `checkpoints/`) is taken as is.
async fn find_chain(
    store: &dyn Store,
    prefix: &str,
    wanted: Option<&str>,
) -> Result<(String, Layout), RunError> {
    let prefix = if prefix.is_empty() || prefix.ends_with('/') {
        prefix.to_owned()
    } else {
        format!("{prefix}/")
    };
    let dirs = store.list_dirs(&prefix).await?;
    let is_chain_dir = dirs.iter().any(|d| {
        d.ends_with("/segments/")
            || d.ends_with("/checkpoints/")
            || d == "segments/"
            || d == "checkpoints/"
    });
    if is_chain_dir {
        let chain = prefix
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        if let Some(wanted) = wanted {
            if wanted != chain {
                return Err(RunError::new(format!(
                    "{} holds chain {chain}, not {wanted}",
                    store.describe()
                )));
            }
        }
        return Ok((chain, Layout::at_root(&prefix)));
    }
    let chains: Vec<String> = dirs
        .iter()
        .map(|d| {
            d.trim_end_matches('/')
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .filter(|c| !c.is_empty())
        .collect();
    let chain = match wanted {
        Some(wanted) => wanted.to_owned(),
        None => match chains.as_slice() {
            [one] => one.clone(),
            [] => {
                return Err(RunError::new(format!(
                    "{}: no chain found (expected <prefix>/<chain>/segments/ ...)",
                    store.describe()
                )))
            }
            many => {
                return Err(RunError::new(format!(
                    "{}: several chains ({}); pass --chain",
                    store.describe(),
                    many.join(", ")
                )))
            }
        },
    };
    Ok((chain.clone(), Layout::at_root(&format!("{prefix}{chain}/"))))
}

/// Longest line accepted; an event envelope is far smaller.
pub const MAX_LINE: usize = 16 << 20;
