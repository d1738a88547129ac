//! C2SP signed notes (<https://c2sp.org/signed-note>) with Ed25519 keys,
//! byte-compatible with Go's `golang.org/x/mod/sumdb/note`.
//!
//! A note is UTF-8 text ending in `\n`, a blank line, then one or more lines
//! `— <key name> <base64(4-byte key id || 64-byte Ed25519 signature)>`. The
//! signature covers the text including its final newline. Keys travel as
//! strings: verifier keys `<name>+<8 hex key id>+<base64(0x01 || public key)>`
//! and signer keys `PRIVATE+KEY+<name>+<8 hex key id>+<base64(0x01 || seed)>`.
//! The key id is the first 4 bytes (big-endian) of
//! SHA-256(name || `\n` || 0x01 || public key).
//!
//! [`open`] applies Go's rules (well-formed text, valid names, at most 100
//! signatures, a bad signature by a known key is an error, no signature by a
//! known key is an error) and is stricter where Go is lenient, because an
//! auditor's verifier should refuse anything an honest signer never writes:
//! - base64 must be canonical (Go ignores stray newline characters and
//!   non-zero trailing bits);
//! - a second, *different* signature line by a known key is verified and
//!   then refused as a duplicate (Go silently skips it unverified); identical
//!   repeated lines are skipped, as in Go;
//! - signatures are checked with `verify_strict` (no small-order keys or
//!   non-canonical signatures), and a verifier key must be a valid point;
//! - the same verifier listed twice is not ambiguous (Go says it is); two
//!   *different* trusted keys sharing a name and key id are.

use std::collections::HashSet;
use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// Algorithm byte of Ed25519 keys, the only one defined.
pub const ALG_ED25519: u8 = 1;

/// Go's limit: a note with more signature lines than this is malformed, so a
/// hostile note cannot make the verifier spend forever.
pub const MAX_SIGNATURES: usize = 100;

/// Em dash (U+2014) and a space: how every signature line starts.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum NoteError {
    #[error("malformed signer key: {0}")]
    MalformedSignerKey(&'static str),
    #[error("malformed verifier key: {0}")]
    MalformedVerifierKey(&'static str),
    #[error("unknown key algorithm {0} (only 1, Ed25519, is defined)")]
    UnknownAlgorithm(u8),
    #[error("key id {found:08x} does not match the key, which has id {expected:08x}")]
    KeyIdMismatch { expected: u32, found: u32 },
    #[error("invalid key name {0:?}: it must be non-empty, without spaces or `+`")]
    InvalidName(String),
    #[error("text to sign is not well formed: {0}")]
    MalformedText(String),
    #[error("nothing to sign with: no signers given")]
    NoSigners,
    #[error("malformed note: {0}")]
    Malformed(String),
    #[error("malformed note: signature line {line} has invalid base64")]
    BadBase64 { line: usize },
    #[error("malformed note: more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    #[error("invalid signature for key {name}+{key_id:08x}")]
    InvalidSignature { name: String, key_id: u32 },
    #[error("more than one signature by key {name}+{key_id:08x}")]
    DuplicateSignature { name: String, key_id: u32 },
    #[error("ambiguous key {name}+{key_id:08x}: several trusted keys have this name and id")]
    AmbiguousKey { name: String, key_id: u32 },
    #[error("note has no verifiable signatures (signed only by {})", list_keys(.signatures))]
    Unverified { signatures: Vec<(String, u32)> },
    #[error("no OS randomness for a new key: {0}")]
    Randomness(String),
}

fn list_keys(keys: &[(String, u32)]) -> String {
    if keys.is_empty() {
        return "nobody".into();
    }
    keys.iter()
        .map(|(name, id)| format!("{name}+{id:08x}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A key name is non-empty UTF-8 with no Unicode white space and no `+`
/// (Go's `isValidName`; Rust's `char::is_whitespace` and Go's
/// `unicode.IsSpace` are both the Unicode White_Space property).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// The 32-bit key id: SHA-256(name || "\n" || 0x01 || public key)[..4], big-endian.
pub fn key_id(name: &str, public_key: &VerifyingKey) -> u32 {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(b"\n")
        .chain_update([ALG_ED25519])
        .chain_update(public_key.as_bytes())
        .finalize();
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// A signing key with its name and id. `Debug` shows no secret.
pub struct Signer {
    name: String,
    key_id: u32,
    key: SigningKey,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Parse `PRIVATE+KEY+<name>+<8 hex id>+<base64(0x01 || 32-byte seed)>`.
    /// Errors never echo the key.
    pub fn from_skey(skey: &str) -> Result<Self, NoteError> {
        let malformed = NoteError::MalformedSignerKey;
        let rest = skey
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(malformed("must start with PRIVATE+KEY+"))?;
        let (name, id_hex, key64) =
            split_key(rest).ok_or(malformed("expected <name>+<8 hex digits>+<base64 key>"))?;
        if !is_valid_name(name) {
            return Err(NoteError::InvalidName(name.to_owned()));
        }
        let found_id = parse_key_id(id_hex).ok_or(malformed("key id is not 8 hex digits"))?;
        let key = BASE64
            .decode(key64)
            .map_err(|_| malformed("key is not valid base64"))?;
        let (&alg, seed) = key.split_first().ok_or(malformed("key is empty"))?;
        if alg != ALG_ED25519 {
            return Err(NoteError::UnknownAlgorithm(alg));
        }
        let seed: &[u8; 32] = seed
            .try_into()
            .map_err(|_| malformed("Ed25519 seed must be 32 bytes"))?;
        let signer = Signer::from_ed25519_seed(name, seed)?;
        // The id is a hash of the public key: it can only be checked after deriving it.
        if signer.key_id != found_id {
            return Err(NoteError::KeyIdMismatch {
                expected: signer.key_id,
                found: found_id,
            });
        }
        Ok(signer)
    }

    /// A signer for `name` from a raw 32-byte Ed25519 seed.
    pub fn from_ed25519_seed(name: &str, seed: &[u8; 32]) -> Result<Self, NoteError> {
        if !is_valid_name(name) {
            return Err(NoteError::InvalidName(name.to_owned()));
        }
        let key = SigningKey::from_bytes(seed);
        Ok(Signer {
            name: name.to_owned(),
            key_id: key_id(name, &key.verifying_key()),
            key,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// The matching public verifier.
    pub fn verifier(&self) -> Verifier {
        Verifier {
            name: self.name.clone(),
            key_id: self.key_id,
            key: self.key.verifying_key(),
        }
    }

    /// The signature line's base64 payload: key id || signature over `text`.
    fn signature_base64(&self, text: &str) -> String {
        let signature = self.key.sign(text.as_bytes());
        let mut payload = Vec::with_capacity(4 + 64);
        payload.extend_from_slice(&self.key_id.to_be_bytes());
        payload.extend_from_slice(&signature.to_bytes());
        BASE64.encode(payload)
    }
}

/// A public key that checks signatures, with its name and id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    key_id: u32,
    key: VerifyingKey,
}

impl Verifier {
    /// Parse `<name>+<8 hex id>+<base64(0x01 || 32-byte public key)>`; the id
    /// must be the key's.
    pub fn from_vkey(vkey: &str) -> Result<Self, NoteError> {
        let malformed = NoteError::MalformedVerifierKey;
        let (name, id_hex, key64) =
            split_key(vkey).ok_or(malformed("expected <name>+<8 hex digits>+<base64 key>"))?;
        if !is_valid_name(name) {
            return Err(NoteError::InvalidName(name.to_owned()));
        }
        let found_id = parse_key_id(id_hex).ok_or(malformed("key id is not 8 hex digits"))?;
        let key = BASE64
            .decode(key64)
            .map_err(|_| malformed("key is not valid base64"))?;
        // Go checks the id against the encoded key (algorithm byte included)
        // before looking at the algorithm; so do we, for the same errors.
        let digest = Sha256::new()
            .chain_update(name.as_bytes())
            .chain_update(b"\n")
            .chain_update(&key)
            .finalize();
        let expected_id = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        let (&alg, public) = key.split_first().ok_or(malformed("key is empty"))?;
        if expected_id != found_id {
            return Err(NoteError::KeyIdMismatch {
                expected: expected_id,
                found: found_id,
            });
        }
        if alg != ALG_ED25519 {
            return Err(NoteError::UnknownAlgorithm(alg));
        }
        let public: &[u8; 32] = public
            .try_into()
            .map_err(|_| malformed("Ed25519 public key must be 32 bytes"))?;
        let key = VerifyingKey::from_bytes(public)
            .map_err(|_| malformed("not a valid Ed25519 public key"))?;
        Ok(Verifier {
            name: name.to_owned(),
            key_id: found_id,
            key,
        })
    }

    /// The verifier key string, as published under `keys/<name>.vkey`.
    pub fn to_vkey(&self) -> String {
        let mut key = vec![ALG_ED25519];
        key.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.key_id, BASE64.encode(key))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    fn verifies(&self, text: &str, signature: &[u8]) -> bool {
        Signature::from_slice(signature)
            .is_ok_and(|sig| self.key.verify_strict(text.as_bytes(), &sig).is_ok())
    }
}

/// `<name>+<id>+<key>`: the name ends at the first `+` (names have none);
/// the key, whose base64 may contain `+`, is everything after the second.
fn split_key(s: &str) -> Option<(&str, &str, &str)> {
    let (name, rest) = s.split_once('+')?;
    let (id, key) = rest.split_once('+')?;
    Some((name, id, key))
}

/// Exactly 8 hex digits (`from_str_radix` alone would also take a sign).
fn parse_key_id(hex_id: &str) -> Option<u32> {
    if hex_id.len() != 8 || !hex_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(hex_id, 16).ok()
}

/// A new Ed25519 key from OS randomness: (signer key, verifier key) strings.
pub fn generate_key(name: &str) -> Result<(String, String), NoteError> {
    if !is_valid_name(name) {
        return Err(NoteError::InvalidName(name.to_owned()));
    }
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| NoteError::Randomness(e.to_string()))?;
    let signer = Signer::from_ed25519_seed(name, &seed)?;
    let mut private = vec![ALG_ED25519];
    private.extend_from_slice(&seed);
    let skey = format!(
        "PRIVATE+KEY+{}+{:08x}+{}",
        signer.name,
        signer.key_id,
        BASE64.encode(&private)
    );
    Ok((skey, signer.verifier().to_vkey()))
}

/// Refuse text that would not open again: Go's rules for a note's text.
fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::MalformedText("must end with a newline".into()));
    }
    if let Some((at, c)) = text.char_indices().find(|&(_, c)| is_forbidden_control(c)) {
        return Err(NoteError::MalformedText(format!(
            "control character U+{:04X} at byte {at}",
            u32::from(c)
        )));
    }
    Ok(())
}

/// ASCII control characters other than newline are not allowed anywhere in a note.
fn is_forbidden_control(c: char) -> bool {
    c < '\u{20}' && c != '\n'
}

/// Sign `text` with every signer; returns the whole note. Each key signs once.
pub fn sign(text: &str, signers: &[&Signer]) -> Result<String, NoteError> {
    check_text(text)?;
    if signers.is_empty() {
        return Err(NoteError::NoSigners);
    }
    let mut note = String::with_capacity(text.len() + 1 + signers.len() * 110);
    note.push_str(text);
    note.push('\n');
    let mut seen = HashSet::new();
    for signer in signers {
        if !seen.insert((signer.name.as_str(), signer.key_id)) {
            return Err(NoteError::DuplicateSignature {
                name: signer.name.clone(),
                key_id: signer.key_id,
            });
        }
        note.push_str(SIGNATURE_PREFIX);
        note.push_str(&signer.name);
        note.push(' ');
        note.push_str(&signer.signature_base64(text));
        note.push('\n');
    }
    Ok(note)
}

/// A note whose signatures were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedNote {
    /// The signed text, final newline included.
    pub text: String,
    /// Names of the trusted keys whose signatures verified, in note order.
    pub verified: Vec<String>,
    /// (name, key id) of signatures by keys not in the trusted list, unchecked.
    pub unverified: Vec<(String, u32)>,
}

/// Parse `note` and check its signatures against the trusted `verifiers`.
/// Succeeds only if at least one trusted key signed and none signed badly.
pub fn open(note: &str, verifiers: &[Verifier]) -> Result<OpenedNote, NoteError> {
    open_bytes(note.as_bytes(), verifiers)
}

/// [`open`] for raw bytes (a file, an object): invalid UTF-8 is a malformed note.
pub fn open_bytes(note: &[u8], verifiers: &[Verifier]) -> Result<OpenedNote, NoteError> {
    let note = std::str::from_utf8(note)
        .map_err(|e| NoteError::Malformed(format!("not UTF-8 (at byte {})", e.valid_up_to())))?;
    if let Some((at, c)) = note.char_indices().find(|&(_, c)| is_forbidden_control(c)) {
        return Err(NoteError::Malformed(format!(
            "control character U+{:04X} at byte {at}",
            u32::from(c)
        )));
    }
    // The signatures are what follows the last blank line.
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| NoteError::Malformed("no blank line before the signatures".into()))?;
    let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
    if signatures.is_empty() {
        return Err(NoteError::Malformed("no signature lines".into()));
    }
    if !signatures.ends_with('\n') {
        return Err(NoteError::Malformed(
            "the last signature line does not end with a newline".into(),
        ));
    }

    let mut opened = OpenedNote {
        text: text.to_owned(),
        verified: Vec::new(),
        unverified: Vec::new(),
    };
    let mut seen_lines: HashSet<&str> = HashSet::new();
    let mut seen_known: HashSet<(&str, u32)> = HashSet::new();
    for (number, line) in signatures.split_terminator('\n').enumerate() {
        let number = number + 1;
        let (name, payload) = parse_signature_line(line, number)?;
        if number > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures);
        }
        let (id_bytes, signature) = payload.split_at(4);
        let key_id = u32::from_be_bytes([id_bytes[0], id_bytes[1], id_bytes[2], id_bytes[3]]);
        let first_time = seen_lines.insert(line);

        let mut matching = verifiers
            .iter()
            .filter(|v| v.name == name && v.key_id == key_id);
        let Some(verifier) = matching.next() else {
            if first_time {
                opened.unverified.push((name.to_owned(), key_id));
            }
            continue;
        };
        if matching.any(|other| other != verifier) {
            return Err(NoteError::AmbiguousKey {
                name: name.to_owned(),
                key_id,
            });
        }
        if !first_time {
            continue; // the very same line again: nothing new (Go drops it too)
        }
        if !verifier.verifies(text, signature) {
            return Err(NoteError::InvalidSignature {
                name: name.to_owned(),
                key_id,
            });
        }
        if !seen_known.insert((name, key_id)) {
            return Err(NoteError::DuplicateSignature {
                name: name.to_owned(),
                key_id,
            });
        }
        opened.verified.push(name.to_owned());
    }

    if opened.verified.is_empty() {
        return Err(NoteError::Unverified {
            signatures: opened.unverified,
        });
    }
    Ok(opened)
}

/// `— <name> <base64>` → (name, decoded payload of at least 5 bytes).
fn parse_signature_line(line: &str, number: usize) -> Result<(&str, Vec<u8>), NoteError> {
    let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or_else(|| {
        NoteError::Malformed(format!(
            "signature line {number} does not start with an em dash (U+2014) and a space"
        ))
    })?;
    let (name, encoded) = rest
        .split_once(' ')
        .ok_or_else(|| NoteError::Malformed(format!("signature line {number} has no signature")))?;
    if !is_valid_name(name) {
        return Err(NoteError::Malformed(format!(
            "signature line {number} has an invalid key name {name:?}"
        )));
    }
    if encoded.is_empty() {
        return Err(NoteError::Malformed(format!(
            "signature line {number} has no signature"
        )));
    }
    let payload = BASE64
        .decode(encoded)
        .map_err(|_| NoteError::BadBase64 { line: number })?;
    // A key id and at least one signature byte.
    if payload.len() < 5 {
        return Err(NoteError::Malformed(format!(
            "signature line {number} is too short"
        )));
    }
    Ok((name, payload))
}

#[cfg(test)]
mod tests;
