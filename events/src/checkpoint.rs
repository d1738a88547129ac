//! Checkpoints (docs/events.md §4): a C2SP tlog-checkpoint body
//! (<https://c2sp.org/tlog-checkpoint>) inside a signed note.
//!
//! ```text
//! rack-gateway/<chain>
//! <N>
//! <base64 of the 32-byte Merkle root of events 1..N>
//! head <hex hash of event N>
//! ```
//!
//! The `head` extension line ties the tree to the hash chain: a verifier that
//! re-walks the chain checks both the root and the last hash at N.
//! Parsing is strict (exactly these four lines, decimal without leading zeros,
//! canonical base64 of exactly 32 bytes, lowercase hex): a checkpoint has one
//! encoding, so two notes for the same tree head always have the same body.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;

use crate::envelope::is_lower_hex_64;
use crate::merkle::Hash;
use crate::note::{self, NoteError, Signer, Verifier};

/// Every origin is this prefix followed by the chain id.
pub const ORIGIN_PREFIX: &str = "rack-gateway/";

/// A tree head of the chain: size, Merkle root and the hash of event `size`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// Lowercase hex hash of event `size`.
    pub head: String,
}

#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum CheckpointError {
    #[error(transparent)]
    Note(#[from] NoteError),
    #[error("malformed checkpoint body, line {line}: {reason}")]
    MalformedBody { line: usize, reason: String },
}

fn malformed(line: usize, reason: impl Into<String>) -> CheckpointError {
    CheckpointError::MalformedBody {
        line,
        reason: reason.into(),
    }
}

impl Checkpoint {
    /// `rack-gateway/<chain>`.
    pub fn origin_for_chain(chain: &str) -> String {
        format!("{ORIGIN_PREFIX}{chain}")
    }

    /// A checkpoint of `chain` at `size`.
    pub fn for_chain(chain: &str, size: u64, root: Hash, head: &str) -> Self {
        Checkpoint {
            origin: Self::origin_for_chain(chain),
            size,
            root,
            head: head.to_owned(),
        }
    }

    /// The note text that is signed.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\nhead {}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root),
            self.head
        )
    }

    /// The root as it appears in the body.
    pub fn root_base64(&self) -> String {
        BASE64.encode(self.root)
    }

    /// Parse a body, strictly.
    pub fn parse_body(text: &str) -> Result<Self, CheckpointError> {
        let Some(content) = text.strip_suffix('\n') else {
            return Err(malformed(0, "body must end with a newline"));
        };
        let lines: Vec<&str> = content.split('\n').collect();
        let line = |n: usize| lines.get(n - 1).copied();

        let origin = line(1).unwrap_or_default();
        if origin.is_empty() {
            return Err(malformed(1, "origin is empty"));
        }
        if origin.chars().any(char::is_control) {
            return Err(malformed(1, "origin contains a control character"));
        }

        let size_text = line(2).ok_or_else(|| malformed(2, "tree size line is missing"))?;
        let size = parse_decimal(size_text).ok_or_else(|| {
            malformed(
                2,
                format!("tree size {size_text:?} is not a decimal number without leading zeros"),
            )
        })?;

        let root_text = line(3).ok_or_else(|| malformed(3, "root hash line is missing"))?;
        let root: Hash = BASE64
            .decode(root_text)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| {
                malformed(
                    3,
                    format!("root {root_text:?} is not the base64 of 32 bytes"),
                )
            })?;

        let head_line = line(4).ok_or_else(|| malformed(4, "head line is missing"))?;
        let head = head_line
            .strip_prefix("head ")
            .filter(|hex| is_lower_hex_64(hex))
            .ok_or_else(|| {
                malformed(
                    4,
                    format!("expected `head <64 lowercase hex>`, found {head_line:?}"),
                )
            })?;

        if lines.len() > 4 {
            return Err(malformed(5, "unexpected extra line"));
        }
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
            head: head.to_owned(),
        })
    }

    /// Sign the body; the whole signed note. Refuses a checkpoint whose body
    /// would not parse back to itself (empty origin, malformed head).
    pub fn sign(&self, signer: &Signer) -> Result<String, CheckpointError> {
        let body = self.body();
        if Self::parse_body(&body)? != *self {
            return Err(malformed(0, "checkpoint does not survive its own encoding"));
        }
        Ok(note::sign(&body, &[signer])?)
    }

    /// The chain id, if the origin is `rack-gateway/<chain>`.
    pub fn chain(&self) -> Option<&str> {
        self.origin
            .strip_prefix(ORIGIN_PREFIX)
            .filter(|chain| !chain.is_empty())
    }
}

/// ASCII decimal, no sign, no leading zeros (except "0" itself), fits u64.
fn parse_decimal(text: &str) -> Option<u64> {
    let digits_only = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    let leading_zero = text.len() > 1 && text.starts_with('0');
    if !digits_only || leading_zero {
        return None;
    }
    text.parse().ok()
}

/// A checkpoint whose note verified with a trusted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    /// The signed note, verbatim.
    pub note: String,
    /// Names of the trusted keys that signed it.
    pub signed_by: Vec<String>,
}

/// Open a signed checkpoint note with the trusted keys and parse its body.
pub fn open_checkpoint(
    note: &str,
    verifiers: &[Verifier],
) -> Result<SignedCheckpoint, CheckpointError> {
    let opened = note::open(note, verifiers)?;
    let checkpoint = Checkpoint::parse_body(&opened.text)?;
    Ok(SignedCheckpoint {
        checkpoint,
        note: note.to_owned(),
        signed_by: opened.verified,
    })
}

/// [`open_checkpoint`] for raw bytes (a `.note` file or object).
pub fn open_checkpoint_bytes(
    note: &[u8],
    verifiers: &[Verifier],
) -> Result<SignedCheckpoint, CheckpointError> {
    let text = std::str::from_utf8(note)
        .map_err(|e| NoteError::Malformed(format!("not UTF-8 (at byte {})", e.valid_up_to())))?;
    open_checkpoint(text, verifiers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, root};

    /// Root of the RFC 6962 reference tree of 8 leaves (transparency-dev/merkle
    /// `testonly/constants.go`, RootHashes()[8]), and its base64 as published
    /// in `testdata/inclusion/1/happy-path.json` of the same repository.
    const ROOT8_HEX: &str = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328";
    const ROOT8_B64: &str = "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=";
    /// Go's sumdb/note doc key (golang/mod `sumdb/note/note.go`).
    const PETER_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";

    fn head() -> String {
        "ab".repeat(32)
    }

    fn sample() -> Checkpoint {
        let mut root8 = [0u8; 32];
        hex::decode_to_slice(ROOT8_HEX, &mut root8).unwrap();
        Checkpoint::for_chain("chain-1", 8, root8, &head())
    }

    #[test]
    fn body_is_the_documented_format() {
        let body = sample().body();
        assert_eq!(
            body,
            format!("rack-gateway/chain-1\n8\n{ROOT8_B64}\nhead {}\n", head())
        );
        assert_eq!(Checkpoint::parse_body(&body).unwrap(), sample());
        assert_eq!(sample().chain(), Some("chain-1"));
        assert_eq!(sample().root_base64(), ROOT8_B64);
    }

    #[test]
    fn parse_is_strict() {
        let good = sample().body();
        let h = head();
        let cases: Vec<(String, usize)> = vec![
            (good.trim_end().to_string(), 0),
            (good.replace("\n8\n", "\n08\n"), 2),
            (good.replace("\n8\n", "\n+8\n"), 2),
            (good.replace("\n8\n", "\n 8\n"), 2),
            (good.replace("\n8\n", "\n-8\n"), 2),
            (good.replace("\n8\n", "\n\n"), 2),
            (good.replace("\n8\n", "\n8.0\n"), 2),
            (good.replace("\n8\n", "\n18446744073709551616\n"), 2),
            (good.replace(ROOT8_B64, ROOT8_HEX), 3),
            (good.replace(ROOT8_B64, ROOT8_B64.trim_end_matches('=')), 3),
            (good.replace(ROOT8_B64, &ROOT8_B64.replace("g=", "h=")), 3),
            (good.replace(ROOT8_B64, &BASE64.encode([1u8; 31])), 3),
            (good.replace(ROOT8_B64, &BASE64.encode([1u8; 33])), 3),
            (good.replace(&h, &h.to_uppercase()), 4),
            (good.replace(&h, &h[..62]), 4),
            (good.replace("head ", "head  "), 4),
            (good.replace("head ", "Head "), 4),
            (good.replace(&format!("head {h}\n"), ""), 4),
            (format!("{good}extra\n"), 5),
            (format!("{good}\n"), 5),
            (good.replace("rack-gateway/chain-1", ""), 1),
            (good.replace("chain-1", "chain\u{7f}1"), 1),
            (good.replace('\n', "\r\n"), 1),
        ];
        for (text, line) in cases {
            match Checkpoint::parse_body(&text) {
                Err(CheckpointError::MalformedBody { line: found, .. }) => {
                    assert_eq!(found, line, "{text:?}")
                }
                other => panic!("{text:?} gave {other:?}"),
            }
        }
        // The smallest and largest sizes parse.
        for size in ["0", "18446744073709551615"] {
            let text = good.replace("\n8\n", &format!("\n{size}\n"));
            assert_eq!(
                Checkpoint::parse_body(&text).unwrap().size.to_string(),
                size
            );
        }
        // A C2SP checkpoint without our head line is not one of ours
        // (example from https://c2sp.org/tlog-checkpoint).
        assert!(Checkpoint::parse_body(
            "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        )
        .is_err());
    }

    #[test]
    fn sign_and_open_round_trip() {
        let signer = Signer::from_skey(PETER_SKEY).unwrap();
        let note = sample().sign(&signer).unwrap();
        assert!(note.starts_with(&sample().body()));
        let opened = open_checkpoint(&note, &[signer.verifier()]).unwrap();
        assert_eq!(
            opened,
            SignedCheckpoint {
                checkpoint: sample(),
                note: note.clone(),
                signed_by: vec!["PeterNeumann".into()],
            }
        );
        assert_eq!(
            open_checkpoint_bytes(note.as_bytes(), &[signer.verifier()]).unwrap(),
            opened
        );
        // Untrusted key.
        let (_, other) = note::generate_key("someone-else").unwrap();
        let other = Verifier::from_vkey(&other).unwrap();
        assert!(matches!(
            open_checkpoint(&note, &[other]),
            Err(CheckpointError::Note(NoteError::Unverified { .. }))
        ));
        // A body that changed after signing.
        let tampered = note.replacen("\n8\n", "\n9\n", 1);
        assert!(matches!(
            open_checkpoint(&tampered, &[signer.verifier()]),
            Err(CheckpointError::Note(NoteError::InvalidSignature { .. }))
        ));
    }

    #[test]
    fn signed_but_malformed_bodies_are_refused() {
        let signer = Signer::from_skey(PETER_SKEY).unwrap();
        let note = note::sign("rack-gateway/chain-1\n8\nnot-base64\nhead x\n", &[&signer]).unwrap();
        assert!(matches!(
            open_checkpoint(&note, &[signer.verifier()]),
            Err(CheckpointError::MalformedBody { line: 3, .. })
        ));
        let mut bad = sample();
        bad.head = "not hex".into();
        assert!(matches!(
            bad.sign(&signer),
            Err(CheckpointError::MalformedBody { line: 4, .. })
        ));
        let mut bad = sample();
        bad.origin = "two\nlines".into();
        assert!(bad.sign(&signer).is_err());
    }

    #[test]
    fn chain_comes_from_the_origin() {
        let mut checkpoint = sample();
        checkpoint.origin = "rack-gateway/".into();
        assert_eq!(checkpoint.chain(), None);
        checkpoint.origin = "example.com/log".into();
        assert_eq!(checkpoint.chain(), None);
        let leaves = [leaf_hash(b"a")];
        let checkpoint = Checkpoint::for_chain("0193-uuid", 1, root(&leaves), &head());
        assert_eq!(checkpoint.chain(), Some("0193-uuid"));
        assert_eq!(checkpoint.origin, "rack-gateway/0193-uuid");
    }
}
