//! The policy's settings. The gateway reads them from its environment (its
//! `settings` module); the defaults here are the safe ones.

/// What the rack proxy refuses even when RBAC allows it (read by
/// [`decide`](super::decide)), and the variables that set it:
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `ALLOW_DESTRUCTIVE_ACTIONS` (alias `RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS`) | `false` | allow every DELETE (app delete, object delete, ...); stopping a process is always allowed |
/// | `ALLOW_RACK_UPDATE` | `false` | let admins `PUT /system` (rack update, rack params set, rack scale) |
/// | `RUN_BLOCKED_SERVICES` | `web,worker` | comma list of services `convox run` may not start processes in; empty = none |
/// | `ADMIN_ONLY_COMMANDS` | `rails console,rails dbconsole,rails runner,rake db:migrate,rake db:seed,rake db:drop,rake db:schema:load` | comma list of commands only admins may run or exec; empty = none |
/// | `SHELL_COMMANDS_ALLOWED` | none | JSON array of exact run/exec commands that use shell syntax and that non-admins may still run (see [`uses_shell_syntax`](super::uses_shell_syntax)) |
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySettings {
    pub allow_destructive_actions: bool,
    /// When true, admins may `PUT /system` (MFA on it is a later issue).
    pub rack_update_for_admin: bool,
    pub run_blocked_services: Vec<String>,
    pub admin_only_commands: Vec<String>,
    /// Commands with shell syntax an admin listed, matched exactly (after
    /// trimming): only these escape "shell syntax is admin-only".
    pub shell_commands_allowed: Vec<String>,
}

pub const DEFAULT_RUN_BLOCKED_SERVICES: &[&str] = &["web", "worker"];
pub const DEFAULT_ADMIN_ONLY_COMMANDS: &[&str] = &[
    "rails console",
    "rails dbconsole",
    "rails runner",
    "rake db:migrate",
    "rake db:seed",
    "rake db:drop",
    "rake db:schema:load",
];

impl Default for PolicySettings {
    fn default() -> PolicySettings {
        PolicySettings {
            allow_destructive_actions: false,
            rack_update_for_admin: false,
            run_blocked_services: DEFAULT_RUN_BLOCKED_SERVICES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            admin_only_commands: DEFAULT_ADMIN_ONLY_COMMANDS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            shell_commands_allowed: Vec::new(),
        }
    }
}
