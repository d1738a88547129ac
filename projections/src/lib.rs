//! State folded from the audit chain. A projection is a pure fold
//! `(state, event) → changes`: [`fold`] reads only the event, and the state it
//! depends on is the rows the changes are applied to ([`change`] checks them).
//! Changes are applied **in the transaction that appends the event** (via
//! [`Projector`], the appender's hook), so state and log never disagree.
//!
//! The events folded are those `events::catalogue` marks [`Effect::Projection`];
//! their payload types are declared there.
//!
//! - [`users`]: `user.created`, `user.role_changed`, `user.disabled`
//! - [`api_tokens`]: `api_token.created` (SHA-256 of the secret only), `api_token.revoked`
//! - [`sessions`]: `session.created`, `session.revoked`
//! - [`mfa`]: `mfa.*`, `user.locked`, `user.unlocked` (methods, backup codes, trusted
//!   devices, the lock, the sessions' MFA state)
//! - [`change`]: the row changes and the one executor that writes them
//! - [`rebuild`]: refold everything from seq 1, or rebuild into a scratch schema and compare

pub mod api_tokens;
pub mod change;
pub mod mfa;
pub mod rebuild;
pub mod sessions;
pub mod users;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use events::catalogue::{self, Effect, EventPayload};
use events::store::{HookError, HookRejection, TxHook};
use events::Event;
use sqlx::PgConnection;

pub use change::{At, Change, Rejection};

/// Every table a projection owns, with its primary key: what rebuild clears and compares.
pub const TABLES: &[(&str, &str)] = &[
    ("users", "id"),
    ("api_tokens", "id"),
    ("sessions", "id"),
    ("mfa_methods", "id"),
    ("mfa_backup_codes", "id"),
    ("mfa_trusted_devices", "id"),
];

/// An event whose payload does not match its type: a bug in the writer, or a tampered row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event_type}: {message}")]
pub struct FoldError {
    pub event_type: String,
    pub message: String,
}

impl FoldError {
    pub fn new(event_type: &str, message: impl Into<String>) -> Self {
        FoldError {
            event_type: event_type.to_owned(),
            message: message.into(),
        }
    }
}

/// Does this event type change any projection? (The catalogue says.)
pub fn affects(event_type: &str) -> bool {
    catalogue::effect_of(event_type) == Effect::Projection
}

/// The pure fold: the row changes one event causes (empty for events that change no state).
pub fn fold(event: &Event) -> Result<Vec<Change>, FoldError> {
    let ts: DateTime<Utc> = events::envelope::parse_ts(&event.ts)
        .map_err(|e| FoldError::new(&event.event_type, e.to_string()))?;
    let at = At {
        seq: event.seq as i64,
        ts,
    };
    // Who did it, as recorded: the actor's email, else its id.
    let actor = event.actor.email.clone().or_else(|| event.actor.id.clone());
    let data = &event.data;
    let t = event.event_type.as_str();
    if let Some(changes) = users::fold(t, data, at)? {
        return Ok(changes);
    }
    if let Some(changes) = api_tokens::fold(t, data, actor.clone(), at)? {
        return Ok(changes);
    }
    if let Some(changes) = sessions::fold(t, data, actor.clone(), at)? {
        return Ok(changes);
    }
    if let Some(changes) = mfa::fold(t, data, actor, at)? {
        return Ok(changes);
    }
    Ok(Vec::new())
}

/// Fold one event and apply its changes to `schema`.
pub async fn apply_event(
    conn: &mut PgConnection,
    schema: &str,
    event: &Event,
) -> Result<(), change::ApplyError> {
    let changes = fold(event).map_err(|e| Rejection(e.to_string()))?;
    for change in &changes {
        change.apply(conn, schema).await?;
    }
    Ok(())
}

/// The appender hook that keeps the live tables (schema `public`) in step with the chain.
pub struct Projector;

#[async_trait]
impl TxHook for Projector {
    fn affects(&self, event_type: &str) -> bool {
        affects(event_type)
    }

    async fn apply(&self, conn: &mut PgConnection, event: &Event) -> Result<(), HookError> {
        match apply_event(conn, "public", event).await {
            Ok(()) => Ok(()),
            Err(change::ApplyError::Rejected(r)) => Err(HookRejection(r.0).into()),
            Err(change::ApplyError::Database(e)) => Err(HookError::Database(e)),
        }
    }
}

/// An event's payload, read as its catalogue type.
pub(crate) fn payload<P: EventPayload>(data: &serde_json::Value) -> Result<P, FoldError> {
    P::from_data(data).map_err(|e| FoldError::new(P::TYPE, e.to_string()))
}

pub(crate) fn optional_time(
    event_type: &str,
    field: &str,
    value: Option<&str>,
) -> Result<Option<DateTime<Utc>>, FoldError> {
    value
        .map(|text| {
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| FoldError::new(event_type, format!("{field} {text:?}: {e}")))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::{Actor, Draft, GENESIS_PREV};

    /// A projection type with an empty payload is read (and refused as
    /// malformed); any other type folds to nothing without being read.
    #[test]
    fn folds_exactly_the_types_the_catalogue_marks_as_projections() {
        for t in catalogue::TYPES {
            let draft = Draft::new(t.name, Actor::anonymous(), serde_json::json!({}));
            let event =
                Event::seal(draft, "c", 1, GENESIS_PREV, uuid::Uuid::nil(), Utc::now()).unwrap();
            let folded = fold(&event);
            assert_eq!(affects(t.name), t.effect == Effect::Projection);
            if affects(t.name) {
                assert!(folded.is_err(), "{} was not read by any fold", t.name);
            } else {
                assert_eq!(folded, Ok(Vec::new()), "{}", t.name);
            }
        }
    }
}
