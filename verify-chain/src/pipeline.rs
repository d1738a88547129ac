//! Reading and checking at once: while one batch of events is checked on
//! every core (parse, canonical form, hash, Merkle leaf: check 1, which
//! needs no other event), the next batch is read; the verifier then takes
//! the results in order for what does depend on order. Memory stays
//! constant: at most three batches are held.

use std::collections::VecDeque;
use std::sync::Arc;

use async_trait::async_trait;
use events::store::StoredRow;
use events::verify::{prepare_in_parallel, prepare_line, prepare_stored, Prepared, Unprepared};
use events::Failure;

use crate::RunError;

/// Events per batch: large enough that handing a batch to the threads costs
/// nothing next to checking it, small enough to keep memory flat.
pub const BATCH: usize = 2048;

/// One event as read, before any check.
pub enum Raw {
    Row(StoredRow),
    Line { object: Arc<str>, line: Vec<u8> },
}

/// Why a source stopped giving events before its end.
#[derive(Debug)]
pub enum Halt {
    Integrity(Failure),
    Run(RunError),
}

/// A source of raw events, read a batch at a time.
#[async_trait]
pub trait ReadBatch: Send {
    /// Up to `max` events, appended to `into`; `Ok(false)` once the source ended.
    async fn read_batch(&mut self, max: usize, into: &mut Vec<Raw>) -> Result<bool, Halt>;
}

/// The next checked events of one source, in order.
pub struct Pipeline<S> {
    source: S,
    ready: VecDeque<Result<Prepared, Unprepared>>,
    inflight: Option<tokio::task::JoinHandle<Vec<Result<Prepared, Unprepared>>>>,
    /// The source ended (or halted: `halt` holds why, given after every event before it).
    ended: bool,
    halt: Option<Halt>,
}

impl<S: ReadBatch> Pipeline<S> {
    pub fn new(source: S) -> Self {
        Pipeline {
            source,
            ready: VecDeque::new(),
            inflight: None,
            ended: false,
            halt: None,
        }
    }

    /// The source, as read so far.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// The next event with check 1 done; `Ok(None)` at the end of the source.
    pub async fn next(&mut self) -> Result<Option<Result<Prepared, Unprepared>>, Halt> {
        if self.ready.is_empty() {
            self.refill().await?;
        }
        match self.ready.pop_front() {
            Some(prepared) => Ok(Some(prepared)),
            None => match self.halt.take() {
                Some(halt) => Err(halt),
                None => Ok(None),
            },
        }
    }

    async fn refill(&mut self) -> Result<(), Halt> {
        loop {
            // Read the next batch while the one in flight is checked.
            let mut raw = Vec::with_capacity(BATCH);
            if !self.ended {
                match self.source.read_batch(BATCH, &mut raw).await {
                    Ok(more) => self.ended = !more,
                    Err(halt) => {
                        self.ended = true;
                        self.halt = Some(halt);
                    }
                }
            }
            if let Some(inflight) = self.inflight.take() {
                let checked = inflight.await.map_err(|e| {
                    Halt::Run(RunError::new(format!(
                        "internal error: a check thread failed: {e}"
                    )))
                })?;
                self.ready.extend(checked);
            }
            if !raw.is_empty() {
                self.inflight = Some(tokio::task::spawn_blocking(move || {
                    prepare_in_parallel(raw, prepare)
                }));
            }
            if !self.ready.is_empty() || self.inflight.is_none() {
                return Ok(());
            }
        }
    }
}

fn prepare(raw: Raw) -> Result<Prepared, Unprepared> {
    match raw {
        Raw::Row(row) => prepare_stored(row.seq, row.canonical, &row.hash),
        Raw::Line { object, line } => prepare_line(&object, &line),
    }
}
