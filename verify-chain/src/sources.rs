//! Several sources at once: the database, S3 archives and export
//! directories, verified in lockstep.
//!
//! Each source gets its own [`ChainVerifier`] (checks 1, 2, 3 and 5 on its
//! own events and checkpoints), and all of them advance one seq at a time,
//! so memory stays constant however long the chain. Between them (check 4,
//! against the primary source: the database if given, else the first):
//! - every event another source holds is byte-identical (canonical bytes and
//!   hash) in the primary;
//! - the primary does not end before another source's events or newest
//!   checkpoint (truncation);
//! - the primary's Merkle root and head at every other source's checkpoint
//!   size are that checkpoint's;
//!
//! and check 5 across sources: two checkpoints of one size agree.

use std::collections::{BTreeMap, VecDeque};

use events::checkpoint::open_checkpoint_bytes;
use events::note::Verifier;
use events::store::StoredRow;
use events::verify::{ChainVerifier, Failure, Summary, CHECK_CONSISTENCY, CHECK_SOURCES};
use events::Event;
use sqlx::PgPool;

use super::archive::{ArchiveEvents, ArchiveSource, ObjectLock, OpenError};
use super::database::DatabaseSource;
use super::{progress, Outcome, RunError};

/// Rows per database page: bounded memory, few round trips.
const PAGE: i64 = 4096;

/// One source as the lockstep run sees it.
pub enum Source {
    Database(DatabaseSource),
    Archive(Box<ArchiveSource>),
}

impl Source {
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
    /// Object or "database".
    label: String,
}

struct Run<'a> {
    label: String,
    verifier: ChainVerifier,
    events: Events<'a>,
    /// Seq of the first event it holds.
    first: u64,
    /// Seq of its last event, once its stream ended.
    ended_at: Option<u64>,
    /// Other sources to compare with: keep each event's bytes (else only verify).
    compare: bool,
}

impl Run<'_> {
    /// Pull and verify the event at `seq` (the next one); `None` once the stream ended.
    async fn pull(&mut self, seq: u64) -> Result<Option<Item>, Stop> {
        match &mut self.events {
            Events::Database(rows) => {
                let Some(row) = rows.next().await.map_err(Stop::Run)? else {
                    self.ended_at = Some(seq - 1);
                    return Ok(None);
                };
                self.verifier
                    .push_stored(row.seq, &row.canonical, &row.hash)
                    .map_err(Stop::Failed)?;
                Ok(Some(Item {
                    canonical: row.canonical,
                    hash: row.hash,
                    label: "database".into(),
                }))
            }
            Events::Archive(lines) => {
                let next = lines.next().await.map_err(|e| match e {
                    OpenError::Integrity(failure) => Stop::Failed(failure),
                    OpenError::Run(error) => Stop::Run(error),
                })?;
                let Some((label, line)) = next else {
                    self.ended_at = Some(seq - 1);
                    return Ok(None);
                };
                self.verifier
                    .push_line(&label, &line)
                    .map_err(Stop::Failed)?;
                if !self.compare {
                    return Ok(Some(Item {
                        canonical: Vec::new(),
                        hash: String::new(),
                        label,
                    }));
                }
                // push_line accepted it, so it parses.
                let event = Event::from_line(&line).map_err(|e| {
                    Stop::Run(RunError::new(format!("{label}: internal error: {e}")))
                })?;
                Ok(Some(Item {
                    canonical: event.canonical_bytes(),
                    hash: event.hash,
                    label,
                }))
            }
        }
    }
}

enum Stop {
    Failed(Failure),
    Run(RunError),
}

fn failed(failure: Failure, events: u64) -> Result<Outcome, RunError> {
    Ok(Outcome::Failed {
        failure,
        events_checked: events,
    })
}

/// Verify every source, and check 4 between them.
pub async fn verify(
    sources: Vec<Source>,
    trusted: Vec<Verifier>,
    show_progress: bool,
) -> Result<Outcome, RunError> {
    let Some(first) = sources.first() else {
        return Err(RunError::new("no source"));
    };
    let chain = match first {
        Source::Database(db) => db.chain().to_owned(),
        Source::Archive(archive) => archive.chain.clone(),
    };
    for source in &sources {
        let other = match source {
            Source::Database(db) => db.chain(),
            Source::Archive(archive) => archive.chain.as_str(),
        };
        if other != chain {
            return Err(RunError::new(format!(
                "{} holds chain {other}, {} holds chain {chain}: pass --chain",
                source.label(),
                first.label()
            )));
        }
    }
    let keys_trusted = !trusted.is_empty();
    let keys = if keys_trusted {
        trusted
    } else {
        let mut keys: Vec<Verifier> = Vec::new();
        for source in &sources {
            for key in source.published_keys().await? {
                if !keys.iter().any(|k| k.to_vkey() == key.to_vkey()) {
                    keys.push(key);
                }
            }
        }
        keys
    };

    // Each source's verifier, with its own checkpoints (checks 3 and 5 within it).
    let mut runs = Vec::new();
    // size → (root, head, label, source index): every checkpoint of every source.
    let mut signed: BTreeMap<u64, Vec<(events::merkle::Hash, String, String, usize)>> =
        BTreeMap::new();
    let mut total = 0u64;
    for (index, source) in sources.iter().enumerate() {
        let mut verifier = ChainVerifier::new(Some(chain.clone()), keys.clone());
        let events = match source {
            Source::Database(db) => {
                if let Err(failure) = db.add_checkpoints(&mut verifier).await? {
                    return failed(failure, 0);
                }
                for checkpoint in events::store::checkpoints(db.pool(), &chain)
                    .await
                    .map_err(|e| RunError::new(format!("database: {e}")))?
                {
                    if let Ok(opened) = open_checkpoint_bytes(checkpoint.note.as_bytes(), &keys) {
                        let c = opened.checkpoint;
                        signed.entry(c.size).or_default().push((
                            c.root,
                            c.head,
                            format!("database checkpoint {}", c.size),
                            index,
                        ));
                    }
                }
                if let Ok(Some((head, _))) = events::store::head(db.pool(), &chain).await {
                    total = total.max(head.max(0) as u64);
                }
                Events::Database(DbEvents {
                    pool: db.pool().clone(),
                    chain: chain.clone(),
                    after: 0,
                    page: VecDeque::new(),
                    exhausted: false,
                })
            }
            Source::Archive(archive) => {
                for (name, note) in archive.checkpoints.values() {
                    if let Err(failure) = verifier.add_checkpoint_bytes(name, note) {
                        return failed(failure, 0);
                    }
                    if let Ok(opened) = open_checkpoint_bytes(note, &keys) {
                        let c = opened.checkpoint;
                        signed.entry(c.size).or_default().push((
                            c.root,
                            c.head,
                            name.clone(),
                            index,
                        ));
                    }
                }
                if let Some(start) = &archive.start {
                    let frontier = match start.frontier_hashes() {
                        Ok(frontier) => frontier,
                        Err(message) => {
                            return failed(
                                Failure {
                                    check: events::verify::CHECK_CHECKPOINT,
                                    seq: Some(start.size),
                                    object: Some(archive.layout.start_key()),
                                    expected: "a frontier of 32-byte hex hashes".into(),
                                    found: message,
                                    message: "the partial export's start point is malformed".into(),
                                },
                                0,
                            )
                        }
                    };
                    verifier = match verifier.resume_after(start.size, start.head.clone(), frontier)
                    {
                        Ok(verifier) => verifier,
                        Err(failure) => return failed(failure, 0),
                    };
                }
                total = total.max(archive.last_seq());
                Events::Archive(archive.events())
            }
        };
        runs.push(Run {
            label: source.label(),
            verifier,
            events,
            first: source.first_seq(),
            ended_at: None,
            compare: sources.len() > 1,
        });
    }

    // Check 5 across sources.
    for (size, notes) in &signed {
        if let Some((root, head, label, _)) = notes.first() {
            if let Some((_, _, other, _)) = notes.iter().find(|(r, h, _, _)| r != root || h != head)
            {
                return failed(
                    Failure {
                        check: CHECK_CONSISTENCY,
                        seq: Some(*size),
                        object: Some(other.clone()),
                        expected: format!("the tree head of {label}"),
                        found: "a different root or head".into(),
                        message: format!("two signed checkpoints of size {size} disagree"),
                    },
                    0,
                );
            }
        }
    }
    // Other sources' checkpoints the primary must match (check 4).
    let primary = 0;
    let foreign: BTreeMap<u64, (events::merkle::Hash, String, String)> = signed
        .iter()
        .filter_map(|(size, notes)| {
            notes
                .iter()
                .find(|(_, _, _, index)| *index != primary)
                .map(|(root, head, label, _)| (*size, (*root, head.clone(), label.clone())))
        })
        .collect();

    let bar = progress(Some(total), show_progress);
    let mut seq = runs.iter().map(|r| r.first).min().unwrap_or(1) - 1;
    loop {
        seq += 1;
        let mut items: Vec<Option<Item>> = Vec::with_capacity(runs.len());
        let mut any = false;
        for run in runs.iter_mut() {
            let item = if run.first <= seq && run.ended_at.is_none() {
                match run.pull(seq).await {
                    Ok(item) => item,
                    Err(Stop::Failed(failure)) => {
                        bar.finish_and_clear();
                        return failed(failure, run.verifier.events());
                    }
                    Err(Stop::Run(error)) => {
                        bar.finish_and_clear();
                        return Err(error);
                    }
                }
            } else {
                None
            };
            any |= item.is_some();
            items.push(item);
        }
        if !any {
            // Sources that start later (partial exports) are still to come.
            match runs.iter().filter(|r| r.first > seq).map(|r| r.first).min() {
                Some(first) => {
                    seq = first - 1;
                    continue;
                }
                None => break,
            }
        }
        let checked = runs[primary].verifier.events();
        match &items[primary] {
            Some(reference) => {
                for item in items.iter().skip(1).flatten() {
                    if item.canonical != reference.canonical || item.hash != reference.hash {
                        bar.finish_and_clear();
                        return failed(
                            Failure {
                                check: CHECK_SOURCES,
                                seq: Some(seq),
                                object: Some(item.label.clone()),
                                expected: format!(
                                    "event {seq} as in {} (hash {})",
                                    runs[primary].label, reference.hash
                                ),
                                found: if item.hash != reference.hash {
                                    format!("hash {}", item.hash)
                                } else {
                                    "the same hash over different bytes".into()
                                },
                                message: format!(
                                    "event {seq} differs between {} and {}",
                                    runs[primary].label, item.label
                                ),
                            },
                            checked,
                        );
                    }
                }
                if let Some((root, head, label)) = foreign.get(&seq) {
                    let tree = runs[primary].verifier.tree();
                    if tree.root() != *root || runs[primary].verifier.head_hash() != head {
                        bar.finish_and_clear();
                        return failed(
                            Failure {
                                check: CHECK_SOURCES,
                                seq: Some(seq),
                                object: Some(label.clone()),
                                expected: format!("the root and head signed in {label}"),
                                found: format!(
                                    "{}'s root and head at size {seq}",
                                    runs[primary].label
                                ),
                                message: format!(
                                    "{} at size {seq} is not the tree the archive's checkpoint signs",
                                    runs[primary].label
                                ),
                            },
                            checked,
                        );
                    }
                }
            }
            None if runs[primary].ended_at.is_some() => {
                if let Some(item) = items.iter().flatten().next() {
                    bar.finish_and_clear();
                    return failed(
                        Failure {
                            check: CHECK_SOURCES,
                            seq: Some(seq),
                            object: Some(item.label.clone()),
                            expected: format!("event {seq} in {}", runs[primary].label),
                            found: format!("{} ends at seq {}", runs[primary].label, seq - 1),
                            message: format!(
                                "truncated: {} holds event {seq}, but {} ends at seq {}",
                                item.label,
                                runs[primary].label,
                                seq - 1
                            ),
                        },
                        checked,
                    );
                }
            }
            None => {}
        }
        if seq.is_multiple_of(4096) {
            bar.set_position(seq);
        }
    }
    bar.finish_and_clear();

    // The primary must reach every other source's newest checkpoint.
    let primary_end = runs[primary].ended_at.unwrap_or(0);
    if let Some((&size, (_, _, label))) = foreign.range(primary_end + 1..).next_back() {
        return failed(
            Failure {
                check: CHECK_SOURCES,
                seq: Some(primary_end + 1),
                object: Some(label.clone()),
                expected: format!("at least {size} events in {}", runs[primary].label),
                found: format!("{primary_end} events"),
                message: format!(
                    "truncated: {label} signs {size} events but {} ends at seq {primary_end}",
                    runs[primary].label
                ),
            },
            runs[primary].verifier.events(),
        );
    }

    let mut summaries: Vec<(String, Summary)> = Vec::new();
    let mut objects: Vec<ObjectLock> = Vec::new();
    for (run, source) in runs.iter_mut().zip(sources.iter()) {
        if let (Events::Archive(lines), Source::Archive(archive)) = (&mut run.events, source) {
            objects.extend(archive.locks.iter().cloned());
            objects.append(&mut lines.locks);
        }
    }
    let mut described = Vec::new();
    for (run, source) in runs.into_iter().zip(sources.iter()) {
        let events = run.verifier.events();
        match run.verifier.finish() {
            Ok(summary) => {
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
                summaries.push((run.label, summary));
            }
            Err(failure) => return failed(failure, events),
        }
    }
    let (_, summary) = summaries.swap_remove(primary);
    Ok(Outcome::Verified {
        summary,
        keys_trusted,
        sources: described,
        objects,
    })
}
