//! Which listed admin-only command a run or exec command runs.
//!
//! Both the command and each listed command are cut into words the way a shell
//! would see them, roughly: lower-cased; quotes and backslashes dropped
//! (`"rails" con''sole` is `rails console`); whitespace and the shell's
//! operators (`; & | ( ) < > $ { }` and backtick) separate words; each word
//! reduced to its last path component (`bin/rails` is `rails`); and two Rails
//! spellings folded (`rails c` is `rails console`, `rails db` is
//! `rails dbconsole`, `rails r` is `rails runner`, `rails db:*` is `rake db:*`). A listed command matches when its words appear in the
//! command, whole and in order, with anything in between: so
//! `bundle exec rails console -e production`, `RAILS_ENV=production bin/rails c`,
//! `sh -c 'rails  console'` and `rake -f Rakefile db:migrate` all match, while
//! `rake db:migrate:status` and `rails consolex` do not. The matching errs on
//! the side of refusing (`echo rails console` is admin-only too).
//!
//! What the words cannot show — a command built by the shell (`$`, backticks,
//! `;`, `&&`, `||`, `|`, redirections, globs, quotes) — is admin-only unless
//! an admin listed that exact command ([`shell_syntax_allowed`]).
//!
//! This is a guard against the obvious, not a sandbox: whoever may exec may
//! start a shell and type anything into it. The record of every exec is the
//! real control.

use super::PolicySettings;

/// Characters through which the matcher cannot see what a shell will run:
/// expansions (`$`, backtick), command separators and pipes (`;`, `&`, `|`,
/// newlines), redirections (`<`, `>`), grouping (`( ) { }`), globs
/// (`* ? [`, as in `bin/rai?s console`), quotes and escapes (`r'ai'ls`).
const SHELL_SYNTAX: &[char] = &[
    '$', '`', ';', '&', '|', '\n', '\r', '<', '>', '(', ')', '{', '}', '*', '?', '[', ']', '\'',
    '"', '\\',
];

/// Does `command` use shell features the word matcher cannot see through?
/// Such a command is admin-only unless listed exactly in
/// [`PolicySettings::shell_commands_allowed`].
pub fn uses_shell_syntax(command: &str) -> bool {
    command.contains(SHELL_SYNTAX)
}

/// A non-admin may run this command's shell syntax: it has none, or an admin listed it exactly.
pub fn shell_syntax_allowed(settings: &PolicySettings, command: &str) -> bool {
    !uses_shell_syntax(command)
        || settings
            .shell_commands_allowed
            .iter()
            .any(|listed| listed.trim() == command.trim())
}

/// The listed admin-only command that `command` runs, if any (see this module's doc).
pub fn admin_only_match<'s>(settings: &'s PolicySettings, command: &str) -> Option<&'s str> {
    let words = command_words(command);
    settings
        .admin_only_commands
        .iter()
        .find(|listed| {
            let pattern = command_words(listed);
            !pattern.is_empty() && contains_in_order(&words, &pattern)
        })
        .map(|s| s.trim())
}

fn contains_in_order(words: &[String], pattern: &[String]) -> bool {
    let mut want = pattern.iter();
    let mut next = want.next();
    for word in words {
        match next {
            Some(p) if p == word => next = want.next(),
            Some(_) => {}
            None => break,
        }
    }
    next.is_none()
}

/// A command cut into normalised words (see this module's doc).
pub fn command_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    for c in command.chars() {
        match c {
            '\'' | '"' | '\\' => {}
            c if c.is_whitespace()
                || matches!(
                    c,
                    ';' | '&' | '|' | '(' | ')' | '<' | '>' | '`' | '$' | '{' | '}'
                ) =>
            {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.extend(c.to_lowercase()),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    let mut words: Vec<String> = words
        .into_iter()
        .filter_map(|w| w.rsplit('/').next().map(str::to_owned))
        .filter(|w| !w.is_empty())
        .collect();
    for i in 0..words.len() {
        if words[i] == "rails" {
            match words.get(i + 1).map(String::as_str) {
                Some("c") => words[i + 1] = "console".to_owned(),
                Some("db") => words[i + 1] = "dbconsole".to_owned(),
                Some("r") => words[i + 1] = "runner".to_owned(),
                Some(task) if task.starts_with("db:") => words[i] = "rake".to_owned(),
                _ => {}
            }
        }
    }
    words
}
