//! Maps that may hold secrets (`env`, `parameters`, `build-args`, the
//! `Environment` and `Volumes` headers) are recorded as their keys only.

use std::collections::{BTreeMap, BTreeSet};

use crate::routes::parse_urlencoded;

/// A key worth recording: looks like a variable name. Anything else (a line
/// pasted without its name, say) could be a secret, and is left out.
pub(super) fn plausible_key(key: &str) -> bool {
    let mut chars = key.chars();
    key.len() <= 256
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The environment as Convox reads it (`structs.Environment.Load`): one
/// `KEY=value` per line, key trimmed, lines without `=` ignored; later
/// duplicates win.
fn parse_env(env: &str) -> BTreeMap<&str, &str> {
    let mut vars = BTreeMap::new();
    for line in env.lines() {
        if let Some((key, value)) = line.split_once('=') {
            let key = key.trim();
            if plausible_key(key) {
                vars.insert(key, value);
            }
        }
    }
    vars
}

/// The keys of an env body (`K=V\n…`, the CLI's env form), in first-seen order.
pub fn env_keys(env: &str) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut keys = Vec::new();
    for line in env.lines() {
        if let Some((key, _)) = line.split_once('=') {
            let key = key.trim();
            if plausible_key(key) && seen.insert(key) {
                keys.push(key.to_owned());
            }
        }
    }
    keys
}

/// Which keys an env change adds, removes and changes: keys only, never values.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct EnvChange {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

pub fn env_change(old: &str, new: &str) -> EnvChange {
    let old = parse_env(old);
    let new = parse_env(new);
    let mut change = EnvChange::default();
    for (key, value) in &new {
        match old.get(key) {
            None => change.added.push((*key).to_owned()),
            Some(before) if before != value => change.changed.push((*key).to_owned()),
            Some(_) => {}
        }
    }
    for key in old.keys() {
        if !new.contains_key(key) {
            change.removed.push((*key).to_owned());
        }
    }
    change
}

pub(super) fn map_keys(encoded: &str) -> Vec<String> {
    let mut keys: Vec<String> = parse_urlencoded(encoded.as_bytes())
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| plausible_key(k))
        .collect();
    keys.dedup();
    keys
}

pub(super) fn list_keys(list: &str) -> Vec<String> {
    list.split(',')
        .filter_map(|item| item.split_once('=').map(|(k, _)| k.trim()))
        .filter(|k| plausible_key(k))
        .map(str::to_owned)
        .collect()
}
