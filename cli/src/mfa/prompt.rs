//! Asking the person at the terminal: a code, or yes/no. Without a terminal
//! nothing is asked, ever: the caller turns that into an error that names
//! `--mfa-code`, so a script or CI job fails at once instead of hanging.
//!
//! "A terminal" means stdin is one and `/dev/tty` opens: with stdin piped
//! (`… | rack-gateway run …`) the input belongs to the command, not to us.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

/// The person at the terminal, or nobody.
pub trait Terminal {
    /// Is someone there to answer?
    fn interactive(&self) -> bool;
    /// Show `prompt` and read one line (trimmed). `Ok(None)` at end of input.
    fn read_line(&mut self, prompt: &str) -> std::io::Result<Option<String>>;
    /// A line of information for the person (on the terminal, not stdout).
    fn say(&mut self, line: &str);
}

/// The real terminal: `/dev/tty` (stderr where there is none, for `say`).
pub struct Tty {
    interactive: bool,
}

impl Tty {
    pub fn detect() -> Tty {
        Tty {
            interactive: std::io::stdin().is_terminal() && open_tty().is_some(),
        }
    }
}

#[cfg(unix)]
fn open_tty() -> Option<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()
}

#[cfg(not(unix))]
fn open_tty() -> Option<std::fs::File> {
    None
}

impl Terminal for Tty {
    fn interactive(&self) -> bool {
        self.interactive
    }

    fn read_line(&mut self, prompt: &str) -> std::io::Result<Option<String>> {
        if !self.interactive {
            return Ok(None);
        }
        let Some(mut tty) = open_tty() else {
            return Ok(None);
        };
        tty.write_all(prompt.as_bytes())?;
        tty.flush()?;
        let mut line = String::new();
        let read = std::io::BufReader::new(tty).read_line(&mut line)?;
        if read == 0 {
            return Ok(None);
        }
        Ok(Some(line.trim().to_owned()))
    }

    fn say(&mut self, line: &str) {
        eprintln!("{line}");
    }
}

/// What a person typed as a code, made ready to send: spaces and dashes (as in
/// `1234 5678` or a grouped backup code) removed; only letters and digits are
/// accepted, since the code travels in a URL's password and a header.
pub fn normalise_code(input: &str) -> Result<String, &'static str> {
    let code: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    if code.is_empty() {
        return Err("the MFA code is empty");
    }
    if code.len() > 64 || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(
            "the MFA code must be letters and digits only (a TOTP, YubiKey or backup code)",
        );
    }
    Ok(code)
}

/// Ask yes/no; the default answer is yes. Without a terminal: no.
pub fn confirm(terminal: &mut dyn Terminal, question: &str) -> bool {
    if !terminal.interactive() {
        return false;
    }
    match terminal.read_line(&format!("{question} [Y/n] ")) {
        Ok(Some(answer)) => matches!(answer.to_ascii_lowercase().as_str(), "" | "y" | "yes"),
        _ => false,
    }
}

/// A scripted terminal for tests: answers in order, records what was said.
#[cfg(test)]
pub struct Scripted {
    pub interactive: bool,
    pub answers: std::collections::VecDeque<String>,
    pub prompts: Vec<String>,
    pub said: Vec<String>,
}

#[cfg(test)]
impl Scripted {
    pub fn new(answers: &[&str]) -> Scripted {
        Scripted {
            interactive: true,
            answers: answers.iter().map(|a| (*a).to_owned()).collect(),
            prompts: Vec::new(),
            said: Vec::new(),
        }
    }

    pub fn nobody() -> Scripted {
        Scripted {
            interactive: false,
            ..Scripted::new(&[])
        }
    }
}

#[cfg(test)]
impl Terminal for Scripted {
    fn interactive(&self) -> bool {
        self.interactive
    }

    fn read_line(&mut self, prompt: &str) -> std::io::Result<Option<String>> {
        assert!(self.interactive, "asked {prompt:?} with no terminal");
        self.prompts.push(prompt.to_owned());
        Ok(self.answers.pop_front())
    }

    fn say(&mut self, line: &str) {
        self.said.push(line.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_cleaned_and_checked() {
        assert_eq!(normalise_code(" 123 456 ").unwrap(), "123456");
        assert_eq!(normalise_code("ABCD-EF01-2345").unwrap(), "ABCDEF012345");
        assert_eq!(
            normalise_code("cccccckdvvulgjvtkjdhtlrbjjctggdihuevikehtlil")
                .unwrap()
                .len(),
            44
        );
        assert!(normalise_code("   ").is_err());
        assert!(normalise_code("12:34").is_err());
        assert!(normalise_code("abc@def").is_err());
        assert!(normalise_code(&"1".repeat(65)).is_err());
    }

    #[test]
    fn confirm_defaults_to_yes_and_is_no_without_a_terminal() {
        assert!(confirm(&mut Scripted::new(&[""]), "Enrol now?"));
        assert!(confirm(&mut Scripted::new(&["Y"]), "Enrol now?"));
        assert!(!confirm(&mut Scripted::new(&["n"]), "Enrol now?"));
        assert!(!confirm(&mut Scripted::new(&[]), "Enrol now?"));
        assert!(!confirm(&mut Scripted::nobody(), "Enrol now?"));
    }
}
