//! Several sources at once: the database, S3 archives and export
//! directories, verified in lockstep.
//!
//! Each source gets its own [`ChainVerifier`] (checks 1, 2, 3 and 5 on its
//! own events and checkpoints), and all of them advance one seq at a time,
//! so memory stays constant however long the chain. [`verify`] reads as the
//! checks, each a function of its own:
//!
//! - every source holds one chain (`one_chain`), verified with the keys
//!   given or else the keys the sources published (`verifier_keys`);
//! - each source's checkpoints go to its verifier, and a partial export
//!   resumes from its `start.json` only as its signed checkpoint vouches
//!   (check 3, `open_run`, `resume_from_start`);
//! - check 5 across sources: two checkpoints of one size agree
//!   (`same_size_checkpoints_agree`);
//! - checks 1–3 within each source as the events stream (`Run::pull`), and
//!   check 4 against the primary source (the database if given, else the
//!   first), at every seq (`lockstep`): every event another source holds is
//!   byte-identical in the primary (`event_matches_primary`), the
//!   primary's Merkle root and head at every other source's checkpoint size
//!   are that checkpoint's (`primary_tree_matches`), and the primary does
//!   not end before another source's events (`primary_not_truncated`) or
//!   newest checkpoint (`primary_reaches_every_checkpoint`);
//! - each verifier's own end checks (a checkpoint past its events) and the
//!   summary (`finish`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use events::checkpoint::open_checkpoint_bytes;
use events::merkle::Hash;
use events::note::Verifier;
use events::store::StoredRow;
use events::verify::{
    ChainVerifier, Failure, Summary, CHECK_CHECKPOINT, CHECK_CONSISTENCY, CHECK_SOURCES,
};
use indicatif::ProgressBar;
use sqlx::PgPool;

use super::archive::{ArchiveEvents, ArchiveSource, ObjectLock, OpenError};
use super::database::DatabaseSource;
use super::pipeline::{Halt, Pipeline, Raw, ReadBatch};
use super::{progress, Outcome, RunError};

/// Rows per database page: bounded memory, few round trips.
const PAGE: i64 = 4096;

/// One source as the lockstep run sees it.
pub enum Source {
    Database(DatabaseSource),
    Archive(Box<ArchiveSource>),
}

impl Source {
    fn chain(&self) -> &str {
        match self {
            Source::Database(db) => db.chain(),
            Source::Archive(archive) => &archive.chain,
        }
    }

    pub fn label(&self) -> String {
        match self {
            Source::Database(_) => "database".into(),
            Source::Archive(archive) => archive.store.describe(),
        }
    }

    fn first_seq(&self) -> u64 {
        match self {
            Source::Database(_) => 1,
            Source::Archive(archive) => archive.first_seq(),
        }
    }

    async fn published_keys(&self) -> Result<Vec<Verifier>, RunError> {
        match self {
            Source::Database(db) => db.published_keys().await,
            Source::Archive(archive) => Ok(archive.published_keys()),
        }
    }
}

/// The database's events, page by page (owned, so any number can run at once).
struct DbEvents {
    pool: PgPool,
    chain: String,
    after: i64,
    page: VecDeque<StoredRow>,
    exhausted: bool,
}

impl DbEvents {
    async fn next(&mut self) -> Result<Option<StoredRow>, RunError> {
        if self.page.is_empty() && !self.exhausted {
            let rows: Vec<(i64, Vec<u8>, String)> = tokio::time::timeout(
                std::time::Duration::from_secs(120),
                sqlx::query_as(
                    "SELECT seq, canonical, hash FROM events WHERE chain = $1 AND seq > $2 \
                     ORDER BY seq LIMIT $3",
                )
                .bind(&self.chain)
                .bind(self.after)
                .bind(PAGE)
                .fetch_all(&self.pool),
            )
            .await
            .map_err(|_| RunError::new("database stopped answering mid-stream"))?
            .map_err(|e| RunError::new(format!("database: {e}")))?;
            self.exhausted = (rows.len() as i64) < PAGE;
            if let Some((seq, _, _)) = rows.last() {
                self.after = *seq;
            }
            self.page
                .extend(rows.into_iter().map(|(seq, canonical, hash)| StoredRow {
                    seq,
                    canonical,
                    hash,
                }));
        }
        Ok(self.page.pop_front())
    }
}

enum Events<'a> {
    Database(DbEvents),
    Archive(ArchiveEvents<'a>),
}

/// One event as compared between sources.
struct Item {
    canonical: Vec<u8>,
    hash: String,
    /// The object it came from; none for the database.
    object: Option<Arc<str>>,
}

impl Item {
    /// Object or "database".
    fn label(&self) -> &str {
        self.object.as_deref().unwrap_or("database")
    }
}

struct Run<'a> {
    label: String,
    verifier: ChainVerifier,
    events: Pipeline<Events<'a>>,
    /// Seq of the first event it holds.
    first: u64,
    /// Seq of its last event, once its stream ended.
    ended_at: Option<u64>,
    /// Other sources to compare with: keep each event's bytes (else only verify).
    compare: bool,
}

impl Run<'_> {
    /// Pull and verify the event at `seq` (the next one; checks 1–3 within
    /// the source); `None` once the stream ended.
    async fn pull(&mut self, seq: u64) -> Result<Option<Item>, Stop> {
        let mut prepared = match self.events.next().await {
            Ok(Some(prepared)) => prepared,
            Ok(None) => {
                self.ended_at = Some(seq - 1);
                return Ok(None);
            }
            Err(Halt::Integrity(failure)) => {
                return Err(Stop::failed(failure, self.verifier.events()))
            }
            Err(Halt::Run(error)) => return Err(Stop::Run(error)),
        };
        let item = match &mut prepared {
            Ok(event) => Item {
                canonical: if self.compare {
                    std::mem::take(&mut event.canonical)
                } else {
                    Vec::new()
                },
                hash: if self.compare {
                    event.hash.clone()
                } else {
                    String::new()
                },
                object: event.object.clone(),
            },
            Err(_) => Item {
                canonical: Vec::new(),
                hash: String::new(),
                object: None,
            },
        };
        if let Err(failure) = self.verifier.push_prepared(prepared) {
            return Err(Stop::failed(failure, self.verifier.events()));
        }
        Ok(Some(item))
    }
}

#[async_trait::async_trait]
impl ReadBatch for Events<'_> {
    async fn read_batch(&mut self, max: usize, into: &mut Vec<Raw>) -> Result<bool, Halt> {
        while into.len() < max {
            match self {
                Events::Database(rows) => match rows.next().await.map_err(Halt::Run)? {
                    Some(row) => into.push(Raw::Row(row)),
                    None => return Ok(false),
                },
                Events::Archive(lines) => match lines.next().await {
                    Ok(Some((object, line))) => into.push(Raw::Line { object, line }),
                    Ok(None) => return Ok(false),
                    Err(OpenError::Integrity(failure)) => return Err(Halt::Integrity(failure)),
                    Err(OpenError::Run(error)) => return Err(Halt::Run(error)),
                },
            }
        }
        Ok(true)
    }
}

/// Why a run stopped before its end.
enum Stop {
    /// An integrity failure, and how many events of its source were checked before it.
    Failed(Box<Failure>, u64),
    Run(RunError),
}

impl Stop {
    fn failed(failure: Failure, events_checked: u64) -> Stop {
        Stop::Failed(Box::new(failure), events_checked)
    }
}

impl From<RunError> for Stop {
    fn from(error: RunError) -> Self {
        Stop::Run(error)
    }
}

/// A failure found before any event was read.
fn before_events(failure: Failure) -> Stop {
    Stop::failed(failure, 0)
}

/// The source the others are held against (check 4): the database if given, else the first.
const PRIMARY: usize = 0;

/// One signed checkpoint as one source holds it.
#[derive(Debug, Clone)]
struct SignedHead {
    root: Hash,
    head: String,
    /// The note's object, or "database checkpoint N".
    label: String,
    /// Index of the source holding it.
    source: usize,
}

/// size → every signed checkpoint of that size, of every source.
type SignedHeads = BTreeMap<u64, Vec<SignedHead>>;

/// Verify every source, and check 4 between them.
pub async fn verify(
    sources: Vec<Source>,
    trusted: Vec<Verifier>,
    show_progress: bool,
) -> Result<Outcome, RunError> {
    match verify_sources(&sources, trusted, show_progress).await {
        Ok(outcome) => Ok(outcome),
        Err(Stop::Failed(failure, events_checked)) => Ok(Outcome::Failed {
            failure: *failure,
            events_checked,
        }),
        Err(Stop::Run(error)) => Err(error),
    }
}

async fn verify_sources(
    sources: &[Source],
    trusted: Vec<Verifier>,
    show_progress: bool,
) -> Result<Outcome, Stop> {
    let chain = one_chain(sources)?;
    let (keys, keys_trusted) = verifier_keys(sources, trusted).await?;
    let mut signed = SignedHeads::new();
    let mut runs = Vec::new();
    let mut total = 0u64;
    for (index, source) in sources.iter().enumerate() {
        let (run, last) =
            open_run(index, source, &chain, &keys, sources.len() > 1, &mut signed).await?;
        runs.push(run);
        total = total.max(last);
    }
    same_size_checkpoints_agree(&signed).map_err(before_events)?;
    let foreign = foreign_checkpoints(&signed);

    let bar = progress(Some(total), show_progress);
    let streamed = lockstep(&mut runs, &foreign, &bar).await;
    bar.finish_and_clear();
    streamed?;

    let primary = &runs[PRIMARY];
    primary_reaches_every_checkpoint(primary, &foreign)
        .map_err(|failure| Stop::failed(failure, primary.verifier.events()))?;
    finish(runs, sources, keys_trusted)
}

/// The chain every source holds: they must agree (else `--chain` picks).
fn one_chain(sources: &[Source]) -> Result<String, RunError> {
    let Some(first) = sources.first() else {
        return Err(RunError::new("no source"));
    };
    let chain = first.chain();
    for source in sources {
        let other = source.chain();
        if other != chain {
            return Err(RunError::new(format!(
                "{} holds chain {other}, {} holds chain {chain}: pass --chain",
                source.label(),
                first.label()
            )));
        }
    }
    Ok(chain.to_owned())
}

/// The keys given (trusted), or else every key the sources published (not
/// independently trusted); and whether they were given.
async fn verifier_keys(
    sources: &[Source],
    trusted: Vec<Verifier>,
) -> Result<(Vec<Verifier>, bool), RunError> {
    if !trusted.is_empty() {
        return Ok((trusted, true));
    }
    let mut keys: Vec<Verifier> = Vec::new();
    for source in sources {
        for key in source.published_keys().await? {
            if !keys.iter().any(|k| k.to_vkey() == key.to_vkey()) {
                keys.push(key);
            }
        }
    }
    Ok((keys, false))
}

/// A source's run: a verifier holding every checkpoint of the source (checks
/// 3 and 5 within it) and, for a partial export, resumed from its start; its
/// signed checkpoints are added to `signed`. Also the last seq it holds (for
/// the progress bar).
async fn open_run<'a>(
    index: usize,
    source: &'a Source,
    chain: &str,
    keys: &[Verifier],
    compare: bool,
    signed: &mut SignedHeads,
) -> Result<(Run<'a>, u64), Stop> {
    let mut verifier = ChainVerifier::new(Some(chain.to_owned()), keys.to_vec());
    let (events, last) = match source {
        Source::Database(db) => {
            db.add_checkpoints(&mut verifier)
                .await?
                .map_err(before_events)?;
            for checkpoint in events::store::checkpoints(db.pool(), chain)
                .await
                .map_err(|e| RunError::new(format!("database: {e}")))?
            {
                note_signed(signed, checkpoint.note.as_bytes(), keys, index, |size| {
                    format!("database checkpoint {size}")
                });
            }
            let last = match events::store::head(db.pool(), chain).await {
                Ok(Some((head, _))) => head.max(0) as u64,
                _ => 0,
            };
            let rows = DbEvents {
                pool: db.pool().clone(),
                chain: chain.to_owned(),
                after: 0,
                page: VecDeque::new(),
                exhausted: false,
            };
            (Events::Database(rows), last)
        }
        Source::Archive(archive) => {
            for (name, note) in archive.checkpoints.values() {
                verifier
                    .add_checkpoint_bytes(name, note)
                    .map_err(before_events)?;
                note_signed(signed, note, keys, index, |_| name.clone());
            }
            verifier = resume_from_start(verifier, archive).map_err(before_events)?;
            (Events::Archive(archive.events()), archive.last_seq())
        }
    };
    let run = Run {
        label: source.label(),
        verifier,
        events: Pipeline::new(events),
        first: source.first_seq(),
        ended_at: None,
        compare,
    };
    Ok((run, last))
}

/// Add `note` to `signed` if a key signed it (the verifier reports a note no key signed).
fn note_signed(
    signed: &mut SignedHeads,
    note: &[u8],
    keys: &[Verifier],
    source: usize,
    label: impl FnOnce(u64) -> String,
) {
    if let Ok(opened) = open_checkpoint_bytes(note, keys) {
        let checkpoint = opened.checkpoint;
        signed.entry(checkpoint.size).or_default().push(SignedHead {
            root: checkpoint.root,
            head: checkpoint.head,
            label: label(checkpoint.size),
            source,
        });
    }
}

/// Check 3 for a partial export: resume after its `start.json`, which the
/// verifier accepts only if the signed checkpoint of that size has exactly
/// that root and head.
fn resume_from_start(
    verifier: ChainVerifier,
    archive: &ArchiveSource,
) -> Result<ChainVerifier, Failure> {
    let Some(start) = &archive.start else {
        return Ok(verifier);
    };
    let frontier = start.frontier_hashes().map_err(|message| Failure {
        check: CHECK_CHECKPOINT,
        seq: Some(start.size),
        object: Some(archive.layout.start_key()),
        expected: "a frontier of 32-byte hex hashes".into(),
        found: message,
        message: "the partial export's start point is malformed".into(),
    })?;
    verifier.resume_after(start.size, start.head.clone(), frontier)
}

/// Check 5 across sources: two signed checkpoints of one size agree.
fn same_size_checkpoints_agree(signed: &SignedHeads) -> Result<(), Failure> {
    for (size, notes) in signed {
        let Some(first) = notes.first() else {
            continue;
        };
        if let Some(other) = notes
            .iter()
            .find(|n| n.root != first.root || n.head != first.head)
        {
            return Err(Failure {
                check: CHECK_CONSISTENCY,
                seq: Some(*size),
                object: Some(other.label.clone()),
                expected: format!("the tree head of {}", first.label),
                found: "a different root or head".into(),
                message: format!("two signed checkpoints of size {size} disagree"),
            });
        }
    }
    Ok(())
}

/// The checkpoints of the sources other than the primary, one per size:
/// what the primary must match (check 4).
fn foreign_checkpoints(signed: &SignedHeads) -> BTreeMap<u64, SignedHead> {
    signed
        .iter()
        .filter_map(|(size, notes)| {
            notes
                .iter()
                .find(|n| n.source != PRIMARY)
                .map(|n| (*size, n.clone()))
        })
        .collect()
}

/// Every source one seq at a time: checks 1–3 within each as it is pulled,
/// check 4 between the primary and the others at each seq.
async fn lockstep(
    runs: &mut [Run<'_>],
    foreign: &BTreeMap<u64, SignedHead>,
    bar: &ProgressBar,
) -> Result<(), Stop> {
    let mut seq = runs.iter().map(|r| r.first).min().unwrap_or(1) - 1;
    loop {
        seq += 1;
        let items = pull_all(runs, seq).await?;
        if items.iter().all(Option::is_none) {
            // Sources that start later (partial exports) are still to come.
            match runs.iter().filter(|r| r.first > seq).map(|r| r.first).min() {
                Some(first) => {
                    seq = first - 1;
                    continue;
                }
                None => return Ok(()),
            }
        }
        let primary = &runs[PRIMARY];
        let at_seq = |failure| Stop::failed(failure, primary.verifier.events());
        match &items[PRIMARY] {
            Some(reference) => {
                event_matches_primary(seq, primary, reference, &items[PRIMARY + 1..])
                    .map_err(at_seq)?;
                if let Some(checkpoint) = foreign.get(&seq) {
                    primary_tree_matches(seq, primary, checkpoint).map_err(at_seq)?;
                }
            }
            None if primary.ended_at.is_some() => {
                primary_not_truncated(seq, primary, &items).map_err(at_seq)?
            }
            None => {}
        }
        if seq.is_multiple_of(4096) {
            bar.set_position(seq);
        }
    }
}

/// The event at `seq` of every source that holds it.
async fn pull_all(runs: &mut [Run<'_>], seq: u64) -> Result<Vec<Option<Item>>, Stop> {
    let mut items = Vec::with_capacity(runs.len());
    for run in runs.iter_mut() {
        let item = if run.first <= seq && run.ended_at.is_none() {
            run.pull(seq).await?
        } else {
            None
        };
        items.push(item);
    }
    Ok(items)
}

/// Check 4: every other source's event at `seq` is byte-identical to the primary's.
fn event_matches_primary(
    seq: u64,
    primary: &Run<'_>,
    reference: &Item,
    others: &[Option<Item>],
) -> Result<(), Failure> {
    for item in others.iter().flatten() {
        if item.canonical != reference.canonical || item.hash != reference.hash {
            return Err(Failure {
                check: CHECK_SOURCES,
                seq: Some(seq),
                object: Some(item.label().to_owned()),
                expected: format!(
                    "event {seq} as in {} (hash {})",
                    primary.label, reference.hash
                ),
                found: if item.hash != reference.hash {
                    format!("hash {}", item.hash)
                } else {
                    "the same hash over different bytes".into()
                },
                message: format!(
                    "event {seq} differs between {} and {}",
                    primary.label,
                    item.label()
                ),
            });
        }
    }
    Ok(())
}

/// Check 4: the primary's tree of `seq` events is the one another source's checkpoint signs.
fn primary_tree_matches(
    seq: u64,
    primary: &Run<'_>,
    checkpoint: &SignedHead,
) -> Result<(), Failure> {
    let tree = primary.verifier.tree();
    if tree.root() == checkpoint.root && primary.verifier.head_hash() == checkpoint.head {
        return Ok(());
    }
    let label = &checkpoint.label;
    Err(Failure {
        check: CHECK_SOURCES,
        seq: Some(seq),
        object: Some(label.clone()),
        expected: format!("the root and head signed in {label}"),
        found: format!("{}'s root and head at size {seq}", primary.label),
        message: format!(
            "{} at size {seq} is not the tree the archive's checkpoint signs",
            primary.label
        ),
    })
}

/// Check 4: the primary, which has ended, holds every event another source holds.
fn primary_not_truncated(
    seq: u64,
    primary: &Run<'_>,
    items: &[Option<Item>],
) -> Result<(), Failure> {
    let Some(item) = items.iter().flatten().next() else {
        return Ok(());
    };
    Err(Failure {
        check: CHECK_SOURCES,
        seq: Some(seq),
        object: Some(item.label().to_owned()),
        expected: format!("event {seq} in {}", primary.label),
        found: format!("{} ends at seq {}", primary.label, seq - 1),
        message: format!(
            "truncated: {} holds event {seq}, but {} ends at seq {}",
            item.label(),
            primary.label,
            seq - 1
        ),
    })
}

/// Check 4: the primary reaches every other source's newest checkpoint.
fn primary_reaches_every_checkpoint(
    primary: &Run<'_>,
    foreign: &BTreeMap<u64, SignedHead>,
) -> Result<(), Failure> {
    let end = primary.ended_at.unwrap_or(0);
    let Some((&size, checkpoint)) = foreign.range(end + 1..).next_back() else {
        return Ok(());
    };
    let label = &checkpoint.label;
    Err(Failure {
        check: CHECK_SOURCES,
        seq: Some(end + 1),
        object: Some(label.clone()),
        expected: format!("at least {size} events in {}", primary.label),
        found: format!("{end} events"),
        message: format!(
            "truncated: {label} signs {size} events but {} ends at seq {end}",
            primary.label
        ),
    })
}

/// Each verifier's end checks, and the primary's summary with every
/// source described and every archived object's lock.
fn finish(runs: Vec<Run<'_>>, sources: &[Source], keys_trusted: bool) -> Result<Outcome, Stop> {
    let mut objects: Vec<ObjectLock> = Vec::new();
    let mut summaries: Vec<Summary> = Vec::new();
    let mut described = Vec::new();
    for (run, source) in runs.into_iter().zip(sources) {
        let events = run.verifier.events();
        if let (Events::Archive(lines), Source::Archive(archive)) = (run.events.source(), source) {
            objects.extend(archive.locks.iter().cloned());
            objects.extend(lines.locks.iter().cloned());
        }
        let summary = run
            .verifier
            .finish()
            .map_err(|failure| Stop::failed(failure, events))?;
        described.push(match source {
            Source::Database(_) => format!(
                "database (events 1..{}, {} checkpoints)",
                summary.head_seq, summary.checkpoints
            ),
            Source::Archive(archive) => format!(
                "{} (events {}..{}, {} segments, {} checkpoints)",
                run.label,
                archive.first_seq(),
                summary.head_seq,
                archive.segments.len(),
                archive.checkpoints.len()
            ),
        });
        summaries.push(summary);
    }
    let summary = summaries.swap_remove(PRIMARY);
    Ok(Outcome::Verified {
        summary,
        keys_trusted,
        sources: described,
        objects,
    })
}
