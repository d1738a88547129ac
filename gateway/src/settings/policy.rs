//! What the rack proxy refuses even when RBAC allows it. The settings are the
//! `decision` crate's [`PolicySettings`] (where `policy::decide` and the
//! defaults live); here they are read from the environment and described.

use decision::policy::{PolicySettings, DEFAULT_ADMIN_ONLY_COMMANDS, DEFAULT_RUN_BLOCKED_SERVICES};

use super::{Reader, SettingsError, View};

pub(super) fn read(r: &Reader) -> Result<PolicySettings, SettingsError> {
    Ok(PolicySettings {
        allow_destructive_actions: r.bool(
            r.alias(
                "ALLOW_DESTRUCTIVE_ACTIONS",
                &["RGW_SETTING_ALLOW_DESTRUCTIVE_ACTIONS"],
            ),
            false,
        )?,
        rack_update_for_admin: r.bool("ALLOW_RACK_UPDATE", false)?,
        run_blocked_services: r.list_or("RUN_BLOCKED_SERVICES", DEFAULT_RUN_BLOCKED_SERVICES),
        admin_only_commands: r.list_or("ADMIN_ONLY_COMMANDS", DEFAULT_ADMIN_ONLY_COMMANDS),
        shell_commands_allowed: shell_commands_allowed(r)?,
    })
}

pub(super) fn describe(s: &PolicySettings, view: &mut View) {
    view.show("ALLOW_DESTRUCTIVE_ACTIONS", s.allow_destructive_actions);
    view.show("ALLOW_RACK_UPDATE", s.rack_update_for_admin);
    view.show("RUN_BLOCKED_SERVICES", &s.run_blocked_services);
    view.show("ADMIN_ONLY_COMMANDS", &s.admin_only_commands);
    view.show("SHELL_COMMANDS_ALLOWED", &s.shell_commands_allowed);
}

/// A JSON array of exact commands (commas and quotes are common in shell
/// commands, so not a comma list).
fn shell_commands_allowed(r: &Reader) -> Result<Vec<String>, SettingsError> {
    let Some(text) = r.get("SHELL_COMMANDS_ALLOWED") else {
        return Ok(Vec::new());
    };
    let list: Vec<String> = serde_json::from_str(&text).map_err(|e| {
        super::bad(
            "SHELL_COMMANDS_ALLOWED",
            format!("must be a JSON array of strings, e.g. [\"bin/migrate && bin/seed\"]: {e}"),
        )
    })?;
    if list.iter().any(|c| c.trim().is_empty()) {
        return Err(super::bad(
            "SHELL_COMMANDS_ALLOWED",
            "lists an empty command".to_owned(),
        ));
    }
    Ok(list)
}
