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
    })
}

pub(super) fn describe(s: &PolicySettings, view: &mut View) {
    view.show("ALLOW_DESTRUCTIVE_ACTIONS", s.allow_destructive_actions);
    view.show("ALLOW_RACK_UPDATE", s.rack_update_for_admin);
    view.show("RUN_BLOCKED_SERVICES", &s.run_blocked_services);
    view.show("ADMIN_ONLY_COMMANDS", &s.admin_only_commands);
}
