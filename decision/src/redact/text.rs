//! Secrets recognised by their shape, in commands and in any text.

use super::{is_secret_name, REDACTED};

/// A run/exec command fit for the record: URL passwords, `NAME=value` and
/// `--name value` / `--name=value` where the name looks secret, and known
/// token shapes are redacted. (Short flags like `-p secret` cannot be told
/// apart from harmless ones and are kept.)
pub fn redact_command(command: &str) -> String {
    let cleaned = redact_value(command);
    let mut out: Vec<String> = Vec::new();
    let mut redact_next = false;
    for token in cleaned.split(' ') {
        if redact_next && !token.is_empty() {
            out.push(REDACTED.to_owned());
            redact_next = false;
            continue;
        }
        if let Some((name, _)) = token.split_once('=') {
            if is_secret_name(name.trim_start_matches('-')) {
                out.push(format!("{name}={REDACTED}"));
                continue;
            }
        } else if token.starts_with("--") && is_secret_name(token.trim_start_matches('-')) {
            redact_next = true;
        }
        out.push(token.to_owned());
    }
    out.join(" ")
}

fn is_base64url(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Remove secrets recognisable by their shape from any text: private-key
/// blocks (the whole value), URL user-info passwords, gateway tokens
/// (`rgw_sess_…`, `rgw_token_…`), JWTs, AWS access key ids, and the credential
/// after `Basic`/`Bearer`.
pub fn redact_value(value: &str) -> String {
    if value.contains("PRIVATE KEY") {
        return REDACTED.to_owned();
    }
    let value = redact_userinfo(value);
    // Runs of token characters (base64url and '.'), judged one by one.
    let mut out = String::with_capacity(value.len());
    let mut run = String::new();
    let mut previous_run = String::new();
    let flush = |run: &mut String, previous: &mut String, out: &mut String| {
        if run.is_empty() {
            return;
        }
        let after_scheme =
            previous.eq_ignore_ascii_case("basic") || previous.eq_ignore_ascii_case("bearer");
        out.push_str(&judge_run(run, after_scheme));
        *previous = std::mem::take(run);
    };
    for c in value.chars() {
        if is_base64url(c) || c == '.' {
            run.push(c);
        } else if (c == '+' || c == '/' || c == '=')
            && (previous_run.eq_ignore_ascii_case("basic")
                || previous_run.eq_ignore_ascii_case("bearer"))
            && !run.is_empty()
        {
            // Standard base64 after Basic/Bearer: keep it in the run.
            run.push(c);
        } else {
            flush(&mut run, &mut previous_run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut previous_run, &mut out);
    out
}

fn judge_run(run: &str, after_scheme: bool) -> String {
    if after_scheme {
        return REDACTED.to_owned();
    }
    for prefix in ["rgw_sess_", "rgw_token_"] {
        if let Some(at) = run.find(prefix) {
            return format!("{}{REDACTED}", &run[..at]);
        }
    }
    if run.starts_with("eyJ") && run.matches('.').count() >= 2 {
        return REDACTED.to_owned();
    }
    let aws = run.len() == 20
        && (run.starts_with("AKIA") || run.starts_with("ASIA"))
        && run
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if aws {
        return REDACTED.to_owned();
    }
    run.to_owned()
}

/// `scheme://user:password@host` → `scheme://user:[REDACTED]@host`;
/// `scheme://token@host` → `scheme://[REDACTED]@host`.
fn redact_userinfo(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| {
                matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>') || c.is_whitespace()
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(userinfo_end) => {
                let userinfo = &authority[..userinfo_end];
                match userinfo.split_once(':') {
                    Some((user, _)) => out.push_str(&format!("{user}:{REDACTED}")),
                    None => out.push_str(REDACTED),
                }
                out.push_str(&authority[userinfo_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}
