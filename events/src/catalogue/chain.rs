//! The chain's own records: a gateway starting, checkpoints, segments in the
//! archive, exports, and the appender settling commits whose outcome was in doubt.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `gateway.started`: the first thing a gateway process records; if it
/// cannot be committed the gateway does not serve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayStarted {
    pub version: String,
    /// This process (also each event's `source.instance`).
    pub instance: String,
    /// hex SHA-256 of the canonical bytes of `settings`.
    pub settings_fingerprint: String,
    /// Every setting by its variable name, secrets shown only as set or not.
    pub settings: BTreeMap<String, Value>,
    /// The name of the key that signs this gateway's checkpoints.
    pub checkpoint_key: String,
    /// Its verifier key (`<name>+<hex key id>+<base64 key>`), so a database
    /// alone names the keys its checkpoints claim.
    pub checkpoint_vkey: String,
}

/// `checkpoint.created`: a signed tree head; its row in `checkpoints` is
/// written in the appending transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointCreated {
    /// The tree size: events 1..=size.
    pub size: u64,
    /// base64 of the root, as in the note.
    pub root: String,
    /// hex hash of event `size`.
    pub head: String,
    /// The signing key's name.
    pub key: String,
    /// The signed note, verbatim.
    pub note: String,
}

/// `archive.shipped`: one segment in the bucket; its row in
/// `archive_segments` is written in the appending transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveShipped {
    pub bucket: String,
    /// The segment's object key.
    pub key: String,
    pub first: u64,
    pub last: u64,
    /// Lowercase hex SHA-256 of the segment object.
    pub sha256: String,
    pub bytes: u64,
    /// The checkpoint uploaded after it (always `last`).
    pub checkpoint_size: u64,
    pub checkpoint_key: String,
    /// As the bucket reports or as requested: `COMPLIANCE` or `GOVERNANCE`.
    pub lock_mode: Option<String>,
    /// RFC 3339.
    pub retain_until: Option<String>,
    /// True when the segment was found already in the bucket (uploaded before
    /// a crash or by another replica) rather than uploaded now.
    pub recovered: bool,
}

/// `audit.exported`: an export bundle was made; recorded before it is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditExported {
    /// `cli` (`rack-gateway-server export`) or `api` (the download).
    pub via: String,
    /// `directory` or `tar.gz`.
    pub format: String,
    pub requested_from: u64,
    /// `null`: up to the newest checkpoint.
    pub requested_to: Option<u64>,
    pub first_seq: u64,
    pub last_seq: u64,
    /// The size of the signed checkpoint the bundle starts after (0: from seq 1).
    pub start_checkpoint: u64,
}

/// `audit.append_in_doubt`: events that committed although their callers
/// were told the append failed (a COMMIT that timed out). Those actions
/// were refused, and the chain says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendInDoubt {
    pub committed_but_refused: Vec<CommittedButRefused>,
    pub note: String,
}

impl AppendInDoubt {
    pub const NOTE: &'static str = "these events committed although the append timed out for their callers; the actions they describe were refused";

    pub fn new(committed_but_refused: Vec<CommittedButRefused>) -> AppendInDoubt {
        AppendInDoubt {
            committed_but_refused,
            note: AppendInDoubt::NOTE.to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedButRefused {
    pub seq: u64,
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
}
