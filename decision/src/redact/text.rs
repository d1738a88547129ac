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
/// blocks (the whole value), other PEM blocks, URLs' user-info and query
/// values, gateway tokens (`rgw_sess_…`, `rgw_token_…`), JWTs, AWS access
/// key ids, GitHub, Slack and Stripe tokens, and the credential after
/// `Basic`/`Bearer`.
pub fn redact_value(value: &str) -> String {
    if value.contains("PRIVATE KEY") {
        return REDACTED.to_owned();
    }
    let value = redact_pem_blocks(value);
    let value = redact_urls(&value);
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
    if TOKEN_PREFIXES
        .iter()
        .any(|prefix| run.starts_with(prefix) && run.len() >= prefix.len() + MIN_TOKEN_BODY)
    {
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

/// Token prefixes of well-known services, masked when at least
/// [`MIN_TOKEN_BODY`] characters follow: GitHub (classic and fine-grained),
/// Slack (bot, user, app, refresh, legacy), Stripe (secret, restricted, webhook).
const TOKEN_PREFIXES: &[&str] = &[
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xoxr-",
    "xoxs-",
    "xoxe-",
    "xapp-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "rk_test_",
    "whsec_",
];

/// Characters a token must carry after its prefix (so `sk_test_helper.rb` stays).
const MIN_TOKEN_BODY: usize = 16;

/// PEM blocks (`-----BEGIN X-----` … `-----END X-----`, or to the end).
fn redact_pem_blocks(value: &str) -> String {
    const BEGIN: &str = "-----BEGIN ";
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find(BEGIN) {
        out.push_str(&rest[..at]);
        out.push_str(REDACTED);
        let block = &rest[at..];
        rest = match block.find("-----END ") {
            Some(end) => {
                let after = &block[end + "-----END ".len()..];
                match after.find("-----") {
                    Some(close) => &after[close + 5..],
                    None => "",
                }
            }
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// A URL keeps no user-info and no query values:
/// `scheme://user:password@host/p?a=1&b` → `scheme://[REDACTED]@host/p?a=[REDACTED]&b`.
/// (The user name can itself be the credential, as in `https://token@host`.)
fn redact_urls(value: &str) -> String {
    let ends_url = |c: char| matches!(c, '"' | '\'' | '<' | '>' | '`') || c.is_whitespace();
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#') || ends_url(c))
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(userinfo_end) => {
                out.push_str(REDACTED);
                out.push_str(&authority[userinfo_end..]);
            }
            None => out.push_str(authority),
        }
        let tail = &tail[end..];
        let url_end = tail.find(ends_url).unwrap_or(tail.len());
        let (url, after) = tail.split_at(url_end);
        match url.split_once('?') {
            Some((path, query)) => {
                out.push_str(path);
                out.push('?');
                let (query, fragment) = match query.find('#') {
                    Some(hash) => query.split_at(hash),
                    None => (query, ""),
                };
                let pairs: Vec<String> = query
                    .split('&')
                    .map(|pair| match pair.split_once('=') {
                        Some((name, value)) if !value.is_empty() => format!("{name}={REDACTED}"),
                        _ => pair.to_owned(),
                    })
                    .collect();
                out.push_str(&pairs.join("&"));
                out.push_str(fragment);
            }
            None => out.push_str(url),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}
