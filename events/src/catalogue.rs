//! Every event type the system writes, each declared once with its typed
//! payload (the envelope's `data`), and whether it changes state.
//!
//! One table below (`catalogue!`) names every type, its payload struct and
//! its [`Effect`]; [`TYPES`] enumerates it. Pure serde types, no I/O.
//! Writers build a payload struct and turn it into a [`Draft`] with
//! [`EventPayload::draft`]; the projections and the other hooks of the
//! appending transaction read payloads back with [`EventPayload::from_data`].
//! The JSON each struct serialises to is the chain's format: a field's name,
//! and whether an absent value is `null` or left out, never change (the tests
//! beside this module pin every type's JSON). `docs/events.md` lists every
//! type and field; a test checks it against [`TYPES`].
//!
//! - [`auth`]: signing in and out, sessions, and the rate limits on authentication
//! - [`accounts`]: users and API tokens
//! - [`proxy`]: the rack proxy's `proxy.request` and `proxy.response`
//! - [`mfa`]: second factors, the lock after repeated failures, `security.alert`
//! - [`chain`]: the gateway's start, checkpoints, the archive, exports, and the appender's own record

pub mod accounts;
pub mod auth;
pub mod chain;
mod fields;
pub mod mfa;
pub mod proxy;
#[cfg(test)]
mod tests;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::envelope::{Actor, Draft};

pub use accounts::{ApiTokenCreated, ApiTokenRevoked, UserCreated, UserDisabled, UserRoleChanged};
pub use auth::{
    AnonymousEventsAggregated, LoginConfirmed, LoginFailed, LoginStarted, LoginSucceeded, Logout,
    RateLimitExceeded, SessionCreated, SessionRevoked,
};
pub use chain::{AppendInDoubt, ArchiveShipped, AuditExported, CheckpointCreated, GatewayStarted};
pub use mfa::{
    MfaBackupCodeUsed, MfaBackupCodesGenerated, MfaMethodEnrolled, MfaMethodRemoved,
    MfaMethodRenamed, MfaPreferredMethodSet, MfaTrustedDeviceRevoked, MfaTrustedDeviceTrusted,
    MfaVerificationFailed, MfaVerificationSucceeded, MfaWebauthnCounterRegressed, SecurityAlert,
    UserLocked, UserUnlocked,
};
pub use proxy::{Decision, ProxyRequest, ProxyResponse};

/// What appending an event of a type does besides recording it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    /// A record only: nothing is derived from it.
    Record,
    /// Folded into the projections (users, API tokens, sessions) in the
    /// appending transaction; `rebuild-projections` folds it again.
    Projection,
    /// The chain's own bookkeeping: the appending transaction stores a row
    /// for it (`checkpoints`, `archive_segments`), and it never closes an
    /// archive segment by itself.
    Bookkeeping,
}

impl Effect {
    /// True when appending the event writes more than the event: a projection or a bookkeeping row.
    pub fn changes_state(self) -> bool {
        self != Effect::Record
    }
}

/// A payload type: the `data` of events of one type.
pub trait EventPayload: Serialize + DeserializeOwned {
    /// The envelope's `type`.
    const TYPE: &'static str;
    const EFFECT: Effect;

    /// The names of the payload's top-level fields, in declaration order.
    fn fields() -> Vec<&'static str> {
        fields::of::<Self>()
    }

    /// A draft of this event. The payload structs serialise to JSON objects,
    /// so this cannot fail in practice; if it ever did, the draft's `data`
    /// would not be an object and the appender would refuse it (fail closed).
    fn draft(&self, actor: Actor) -> Draft {
        let data = serde_json::to_value(self).unwrap_or(Value::Null);
        Draft::new(Self::TYPE, actor, data)
    }

    /// Read a payload back from an event's `data`.
    fn from_data(data: &Value) -> Result<Self, serde_json::Error> {
        Self::deserialize(data)
    }
}

/// One entry of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct EventType {
    pub name: &'static str,
    pub effect: Effect,
    fields: fn() -> Vec<&'static str>,
}

impl EventType {
    const fn of<P: EventPayload>() -> EventType {
        EventType {
            name: P::TYPE,
            effect: P::EFFECT,
            fields: P::fields,
        }
    }

    /// The payload's top-level fields.
    pub fn fields(&self) -> Vec<&'static str> {
        (self.fields)()
    }
}

/// Declares each payload's type and effect, and lists them all in [`TYPES`].
macro_rules! catalogue {
    ($($payload:ty => $name:literal, $effect:ident $(, fields: $fields:path)?;)*) => {
        $(
            impl EventPayload for $payload {
                const TYPE: &'static str = $name;
                const EFFECT: Effect = Effect::$effect;
                $(
                    fn fields() -> Vec<&'static str> {
                        $fields()
                    }
                )?
            }
        )*

        /// Every event type, in the order `docs/events.md` lists them.
        pub static TYPES: &[EventType] = &[$(EventType::of::<$payload>()),*];
    };
}

catalogue! {
    GatewayStarted => "gateway.started", Record;
    LoginStarted => "auth.login.started", Record;
    LoginSucceeded => "auth.login.succeeded", Record;
    LoginFailed => "auth.login.failed", Record;
    Logout => "auth.logout", Record;
    SessionCreated => "session.created", Projection;
    SessionRevoked => "session.revoked", Projection;
    RateLimitExceeded => "rate_limit.exceeded", Record, fields: RateLimitExceeded::fields_of_every_scope;
    AnonymousEventsAggregated => "auth.anonymous_events.aggregated", Record;
    UserCreated => "user.created", Projection;
    UserRoleChanged => "user.role_changed", Projection;
    UserDisabled => "user.disabled", Projection;
    ApiTokenCreated => "api_token.created", Projection;
    ApiTokenRevoked => "api_token.revoked", Projection;
    ProxyRequest => "proxy.request", Record;
    ProxyResponse => "proxy.response", Record;
    CheckpointCreated => "checkpoint.created", Bookkeeping;
    ArchiveShipped => "archive.shipped", Bookkeeping;
    AuditExported => "audit.exported", Record;
    AppendInDoubt => "audit.append_in_doubt", Record;
    MfaMethodEnrolled => "mfa.method.enrolled", Projection;
    MfaMethodRenamed => "mfa.method.renamed", Projection;
    MfaMethodRemoved => "mfa.method.removed", Projection;
    MfaPreferredMethodSet => "mfa.preferred_method.set", Projection;
    MfaVerificationSucceeded => "mfa.verification.succeeded", Projection;
    MfaVerificationFailed => "mfa.verification.failed", Record;
    MfaBackupCodesGenerated => "mfa.backup_codes.generated", Projection;
    MfaBackupCodeUsed => "mfa.backup_code.used", Projection;
    MfaTrustedDeviceTrusted => "mfa.trusted_device.trusted", Projection;
    MfaTrustedDeviceRevoked => "mfa.trusted_device.revoked", Projection;
    MfaWebauthnCounterRegressed => "mfa.webauthn.counter_regressed", Projection;
    UserLocked => "user.locked", Projection;
    UserUnlocked => "user.unlocked", Projection;
    SecurityAlert => "security.alert", Record;
    LoginConfirmed => "auth.login.confirmed", Record;
}

/// The catalogue's entry for `event_type`; `None` for a type it does not know.
pub fn lookup(event_type: &str) -> Option<&'static EventType> {
    TYPES.iter().find(|t| t.name == event_type)
}

/// What appending an event of this type does; a type the catalogue does not know is a record only.
pub fn effect_of(event_type: &str) -> Effect {
    lookup(event_type).map_or(Effect::Record, |t| t.effect)
}

/// The types whose events are bookkeeping (see [`Effect::Bookkeeping`]).
pub fn bookkeeping_types() -> Vec<&'static str> {
    TYPES
        .iter()
        .filter(|t| t.effect == Effect::Bookkeeping)
        .map(|t| t.name)
        .collect()
}
