//! The permissions a wrapped `convox` command needs, and so its MFA level
//! (the gateway's own table, `decision::mfa::level_of`). The CLI asks for a
//! step-up *before* running convox, so a long `deploy` is not refused halfway.
//!
//! The words of a command are matched against [`COMMANDS`], longest first; a
//! command not in it gets no prompt, and if the gateway then refuses it the
//! refusal says what to pass (`--mfa-code`). Permissions follow the rack routes
//! each command calls (docs/mfa.md has the level table).

use std::ffi::OsString;

use decision::mfa::{level_of, Level};

/// Command words → the permissions of the rack routes that command calls.
pub const COMMANDS: &[(&[&str], &[&str])] = &[
    (&["apps"], &["convox:app:list"]),
    (&["apps", "info"], &["convox:app:read"]),
    (&["apps", "create"], &["convox:app:create"]),
    (&["apps", "delete"], &["convox:app:delete"]),
    (&["apps", "cancel"], &["convox:app:update"]),
    (&["apps", "lock"], &["convox:app:update"]),
    (&["apps", "unlock"], &["convox:app:update"]),
    (&["apps", "params"], &["convox:app:read"]),
    (&["apps", "params", "set"], &["convox:app:update"]),
    (
        &["apps", "export"],
        &[
            "convox:app:read",
            "convox:build:read",
            "convox:release:read",
        ],
    ),
    (
        &["apps", "import"],
        &[
            "convox:app:create",
            "convox:object:create",
            "convox:build:create",
            "convox:release:create",
            "convox:release:promote",
        ],
    ),
    (&["build"], &["convox:object:create", "convox:build:create"]),
    (&["builds"], &["convox:build:list"]),
    (&["builds", "info"], &["convox:build:read"]),
    (&["builds", "logs"], &["convox:log:read"]),
    (&["builds", "export"], &["convox:build:read"]),
    (&["builds", "import"], &["convox:build:create"]),
    (
        &["deploy"],
        &[
            "convox:object:create",
            "convox:build:create",
            "convox:release:promote",
        ],
    ),
    (&["env"], &["convox:release:list", "convox:release:read"]),
    (
        &["env", "get"],
        &["convox:release:list", "convox:release:read"],
    ),
    (
        &["env", "set"],
        &["convox:env:set", "convox:release:create"],
    ),
    (
        &["env", "unset"],
        &["convox:env:set", "convox:release:create"],
    ),
    (
        &["env", "edit"],
        &["convox:env:set", "convox:release:create"],
    ),
    (&["exec"], &["convox:process:exec"]),
    (&["cp"], &["convox:process:exec"]),
    (
        &["run"],
        &[
            "convox:process:start",
            "convox:process:exec",
            "convox:process:terminate",
        ],
    ),
    (&["restart"], &["convox:app:restart"]),
    (&["services"], &["convox:app:read"]),
    (&["services", "restart"], &["convox:app:restart"]),
    (&["scale"], &["convox:app:read"]),
    (&["ps"], &["convox:process:list"]),
    (&["ps", "info"], &["convox:process:read"]),
    (&["ps", "stop"], &["convox:process:terminate"]),
    (&["releases"], &["convox:release:list"]),
    (&["releases", "info"], &["convox:release:read"]),
    (&["releases", "manifest"], &["convox:release:read"]),
    (&["releases", "promote"], &["convox:release:promote"]),
    (
        &["releases", "rollback"],
        &["convox:release:create", "convox:release:promote"],
    ),
    (&["logs"], &["convox:log:read"]),
    (&["cancel"], &["convox:app:update"]),
    (&["resources"], &["convox:resource:read"]),
    (&["resources", "info"], &["convox:resource:read"]),
    (&["resources", "url"], &["convox:resource:read"]),
    (&["resources", "console"], &["convox:resource:exec"]),
    (&["resources", "export"], &["convox:resource:export"]),
    (&["resources", "import"], &["convox:resource:import"]),
    (&["resources", "proxy"], &["convox:rack:proxy"]),
    (&["proxy"], &["convox:rack:proxy"]),
    (&["instances"], &["convox:instance:list"]),
    (&["instances", "terminate"], &["convox:instance:terminate"]),
    (&["instances", "keyroll"], &["convox:instance:keyroll"]),
    (&["instances", "ssh"], &["convox:instance:exec"]),
    (&["certs"], &["convox:cert:list"]),
    (&["certs", "generate"], &["convox:cert:generate"]),
    (&["certs", "import"], &["convox:cert:create"]),
    (&["certs", "delete"], &["convox:cert:delete"]),
    (&["certs", "renew"], &["convox:cert:update"]),
    (&["ssl"], &["convox:app:read"]),
    (&["ssl", "update"], &["convox:cert:update"]),
    (&["registries"], &["convox:registry:list"]),
    (&["registries", "add"], &["convox:registry:add"]),
    (&["registries", "remove"], &["convox:registry:remove"]),
    (&["rack"], &["convox:rack:read"]),
    (&["rack", "info"], &["convox:rack:read"]),
    (&["rack", "logs"], &["convox:log:read"]),
    (&["rack", "ps"], &["convox:rack:read"]),
    (&["rack", "releases"], &["convox:rack:read"]),
    (&["rack", "params"], &["convox:rack:read"]),
    (&["rack", "params", "set"], &["convox:rack:manage"]),
    (&["rack", "update"], &["convox:rack:update"]),
    (&["rack", "scale"], &["convox:rack:read"]),
];

/// Flags that turn a read into a write.
const WRITE_FLAGS: &[(&[&str], &[&str], &[&str])] = &[
    // `scale web --count 3` changes the service; `scale` alone lists.
    (
        &["scale"],
        &["--count", "--cpu", "--memory", "--gpu"],
        &["convox:app:update"],
    ),
    (
        &["rack", "scale"],
        &["--count", "--type"],
        &["convox:rack:manage"],
    ),
    // `env set --promote` also promotes the new release.
    (
        &["env", "set"],
        &["--promote", "-p"],
        &["convox:release:promote"],
    ),
    (
        &["env", "unset"],
        &["--promote", "-p"],
        &["convox:release:promote"],
    ),
    (
        &["env", "edit"],
        &["--promote", "-p"],
        &["convox:release:promote"],
    ),
];

/// Flags of convox commands that take a value, so the value is not read as a word.
const VALUE_FLAGS: &[&str] = &[
    "-a",
    "--app",
    "--release",
    "-f",
    "--file",
    "-d",
    "--description",
];

/// What a wrapped command needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandMfa {
    /// The matched command words, e.g. `env set`.
    pub command: String,
    pub permissions: Vec<&'static str>,
    /// The highest level among the permissions (`Always` when one has no level: fail closed).
    pub level: Level,
    /// The permission that sets the level (named in prompts).
    pub strictest: &'static str,
}

/// The permissions and level of `convox <args>`; `None` for a command the table does not know.
pub fn for_command(args: &[OsString]) -> Option<CommandMfa> {
    let mut words: Vec<&str> = Vec::new();
    let mut flags: Vec<&str> = Vec::new();
    let mut iter = args.iter().filter_map(|a| a.to_str());
    while let Some(arg) = iter.next() {
        if arg == "--" {
            break;
        }
        if arg.starts_with('-') {
            let name = arg.split_once('=').map_or(arg, |(n, _)| n);
            flags.push(name);
            if !arg.contains('=') && VALUE_FLAGS.contains(&arg) {
                iter.next();
            }
            continue;
        }
        words.push(arg);
    }
    let (matched, permissions) = COMMANDS
        .iter()
        .filter(|(pattern, _)| words.len() >= pattern.len() && words[..pattern.len()] == **pattern)
        .max_by_key(|(pattern, _)| pattern.len())?;
    let mut permissions: Vec<&'static str> = permissions.to_vec();
    for (pattern, triggers, extra) in WRITE_FLAGS {
        if pattern == matched && flags.iter().any(|f| triggers.contains(f)) {
            permissions.retain(|p| !p.ends_with(":read"));
            permissions.extend_from_slice(extra);
        }
    }
    // The first of the strictest names the prompt (`max_by_key` keeps the last, hence `rev`).
    let (strictest, level) = permissions
        .iter()
        .rev()
        .map(|p| (*p, level_of(p).unwrap_or(Level::Always)))
        .max_by_key(|(_, level)| *level)?;
    Some(CommandMfa {
        command: matched.join(" "),
        permissions,
        level,
        strictest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(args: &[&str]) -> Option<CommandMfa> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        for_command(&args)
    }

    fn level(args: &[&str]) -> Level {
        of(args).unwrap().level
    }

    #[test]
    fn every_permission_in_the_table_has_a_level_at_the_gateway() {
        for (words, permissions) in COMMANDS {
            for permission in *permissions {
                assert!(level_of(permission).is_ok(), "{words:?}: {permission}");
            }
        }
        for (words, _, permissions) in WRITE_FLAGS {
            assert!(COMMANDS.iter().any(|(w, _)| w == words), "{words:?}");
            for permission in *permissions {
                assert!(level_of(permission).is_ok(), "{words:?}: {permission}");
            }
        }
    }

    #[test]
    fn reads_need_nothing() {
        for args in [
            &["apps"][..],
            &["ps", "-a", "myapp"],
            &["env", "-a", "myapp"],
            &["env", "get", "A"],
            &["logs", "--since", "5m"],
            &["releases"],
            &["rack"],
            &["rack", "params"],
            &["scale"],
        ] {
            assert_eq!(level(args), Level::None, "{args:?}");
        }
    }

    #[test]
    fn writes_need_a_step_up() {
        for args in [
            &["env", "set", "A=1", "-a", "myapp"][..],
            &["env", "unset", "A"],
            &["deploy", "-a", "myapp"],
            &["run", "web", "sh"],
            &["exec", "p-1", "sh"],
            &["restart"],
            &["releases", "promote", "R1"],
            &["scale", "web", "--count", "3"],
            &["scale", "web", "--count=3"],
        ] {
            assert_eq!(level(args), Level::StepUp, "{args:?}");
        }
        assert_eq!(
            of(&["env", "set", "A=1"]).unwrap().strictest,
            "convox:env:set"
        );
        assert_eq!(of(&["env", "set", "A=1"]).unwrap().command, "env set");
    }

    #[test]
    fn destructive_and_rack_level_commands_need_proof_every_time() {
        for args in [
            &["apps", "delete", "myapp"][..],
            &["rack", "update"],
            &["rack", "params", "set", "A=1"],
            &["rack", "scale", "--count", "5"],
            &["instances", "terminate", "i-1"],
            &["registries", "add", "r", "u", "p"],
            &["proxy", "5432"],
        ] {
            assert_eq!(level(args), Level::Always, "{args:?}");
        }
        assert_eq!(
            of(&["apps", "delete", "x"]).unwrap().strictest,
            "convox:app:delete"
        );
    }

    #[test]
    fn flag_values_are_not_taken_for_subcommands() {
        // The app is called "set": still a read of `env`.
        assert_eq!(level(&["env", "-a", "set"]), Level::None);
        assert_eq!(level(&["env", "--app", "delete"]), Level::None);
        // After `--` nothing is a word.
        assert_eq!(
            level(&["run", "web", "--", "apps", "delete"]),
            Level::StepUp
        );
    }

    #[test]
    fn env_set_with_promote_also_needs_the_promotion() {
        let mfa = of(&["env", "set", "A=1", "--promote"]).unwrap();
        assert!(mfa.permissions.contains(&"convox:release:promote"));
    }

    #[test]
    fn unknown_commands_are_none() {
        assert_eq!(of(&["frobnicate"]), None);
        assert_eq!(of(&[]), None);
        assert_eq!(of(&["--help"]), None);
    }
}
