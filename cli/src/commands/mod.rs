//! One function per command, and the [`Context`] they share: the global flags,
//! the environment, and the config store they point at.

mod api_tokens;
mod mfa;
mod passthrough;
mod racks;
mod server;
mod session;

use std::ffi::OsString;

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use clap::CommandFactory as _;

use crate::api::{ApiError, GatewayClient};
use crate::args::{Cli, Command, Globals};
use crate::config::{Config, ConfigStore};
use crate::convox::extract_global_flags;
use crate::environment::Environment;
use crate::mfa::prompt::Terminal;
use crate::mfa::{Mfa, Verified};
use crate::racks::{self as selection, Credential, Selection, SessionExpired};

/// What every command needs to know about its invocation.
pub struct Context {
    pub globals: Globals,
    pub env: Environment,
    pub store: ConfigStore,
}

impl Context {
    pub fn new(globals: Globals, env: Environment) -> anyhow::Result<Context> {
        let store = ConfigStore::locate(
            globals.config.as_deref(),
            env.config_dir.as_deref(),
            env.home.as_deref(),
        )?;
        Ok(Context {
            globals,
            env,
            store,
        })
    }

    pub fn config(&self) -> anyhow::Result<Config> {
        self.store.load()
    }

    pub fn select(&self, config: &Config) -> anyhow::Result<Selection> {
        selection::select(self.globals.rack.as_deref(), &self.env, config)
    }

    pub fn credential(&self, selection: &Selection) -> anyhow::Result<Credential> {
        selection::credential(
            selection,
            self.globals.api_token.as_deref(),
            &self.env,
            Utc::now(),
        )
    }

    /// The selected rack, its credential, and a client that sends it.
    pub fn authenticated(&self) -> anyhow::Result<(Selection, Credential, GatewayClient)> {
        let config = self.config()?;
        let selection = self.select(&config)?;
        let credential = self.credential(&selection)?;
        let client = GatewayClient::new(&selection.url, Some(&credential.secret))?;
        Ok((selection, credential, client))
    }

    /// The MFA conversation for this command: its flags, the rack's preference.
    pub fn mfa<'a>(
        &self,
        selection: &Selection,
        client: &'a GatewayClient,
        terminal: &'a mut dyn Terminal,
    ) -> anyhow::Result<Mfa<'a>> {
        let config = self.config()?;
        let mut mfa = Mfa::new(client, terminal);
        mfa.flag_code = self.globals.mfa_code.clone();
        mfa.flag_method = self.globals.mfa_method;
        mfa.preference = config.mfa_preference_for(selection.rack.as_deref())?;
        mfa.no_open = self.globals.no_open;
        Ok(mfa)
    }

    /// What to send with an action needing `permission`: `Some(code)` as MFA
    /// proof, or `None`. API tokens are never asked.
    pub async fn mfa_before(
        &self,
        selection: &Selection,
        credential: &Credential,
        client: &GatewayClient,
        level: decision::mfa::Level,
        what: &str,
    ) -> anyhow::Result<Option<String>> {
        if credential.is_api_token() {
            return Ok(None);
        }
        let mut terminal = crate::mfa::prompt::Tty::detect();
        let mut mfa = self.mfa(selection, client, &mut terminal)?;
        let code = mfa
            .before(level, what)
            .await
            .map_err(|e| match e.downcast::<ApiError>() {
                Ok(api) => refused(api, selection, credential),
                Err(other) => other,
            })?;
        if let Some(verified) = mfa.verified_session.take() {
            self.record_verified(selection, &verified)?;
        }
        Ok(code)
    }

    /// One call of the CLI's own that needs `permission`. It is sent as is
    /// (with `--mfa-code` as `X-MFA-TOTP` when given), so RBAC answers first and
    /// nobody types a code to learn they may not; if the gateway refuses it for
    /// MFA (`mfa_step_up_required`, `mfa_required`), the code is asked for as
    /// the permission's level says and the call is made once more with it.
    pub async fn with_mfa<T, F, Fut>(
        &self,
        selection: &Selection,
        credential: &Credential,
        client: &GatewayClient,
        permission: &str,
        call: F,
    ) -> anyhow::Result<T>
    where
        F: Fn(GatewayClient) -> Fut,
        Fut: std::future::Future<Output = Result<T, ApiError>>,
    {
        let flag_code = match (&self.globals.mfa_code, credential.is_api_token()) {
            (Some(code), false) => Some(
                crate::mfa::prompt::normalise_code(code)
                    .map_err(|e| anyhow::anyhow!("--mfa-code: {e}"))?,
            ),
            _ => None,
        };
        let first = match &flag_code {
            Some(code) => client.with_mfa_code(code),
            None => client.clone(),
        };
        match call(first).await {
            Err(error)
                if flag_code.is_none() && !credential.is_api_token() && refused_for_mfa(&error) =>
            {
                // A permission without a level is refused by the gateway; ask as for the strictest.
                let level =
                    decision::mfa::level_of(permission).unwrap_or(decision::mfa::Level::Always);
                let retry = match self
                    .mfa_before(selection, credential, client, level, permission)
                    .await?
                {
                    Some(code) => client.with_mfa_code(&code),
                    None => client.clone(),
                };
                call(retry)
                    .await
                    .map_err(|e| refused(e, selection, credential))
            }
            other => other.map_err(|e| refused(e, selection, credential)),
        }
    }

    /// The stored session was verified at sign-in: say so in `config.json`.
    pub fn record_verified(
        &self,
        selection: &Selection,
        verified: &Verified,
    ) -> anyhow::Result<()> {
        let Some(rack) = selection.rack.as_deref() else {
            return Ok(());
        };
        let mut config = self.store.load()?;
        if let Some(entry) = config.gateways.get_mut(rack) {
            entry.mfa_verified = Some(true);
            if verified.method.is_some() {
                entry.mfa_method = verified.method.clone();
            }
            self.store.save(&config)?;
        }
        Ok(())
    }
}

/// A gateway error as the user should read it: a refused session becomes the
/// "session expired or invalid" hint, a refused API token says which token.
pub fn refused(error: ApiError, selection: &Selection, credential: &Credential) -> anyhow::Error {
    if !error.is_unauthorized() {
        return error.into();
    }
    if credential.is_api_token() {
        let reason = match &error {
            ApiError::Status {
                reason: Some(reason),
                ..
            } => format!(" ({reason})"),
            _ => String::new(),
        };
        return anyhow!(
            "{} was refused by the gateway: {error}{reason}",
            credential.describe()
        );
    }
    SessionExpired::for_selection(selection).into()
}

/// The gateway refused a call until MFA is shown (403 with one of the MFA reasons).
pub fn refused_for_mfa(error: &ApiError) -> bool {
    error.status() == Some(reqwest::StatusCode::FORBIDDEN)
        && matches!(
            error.reason(),
            Some("mfa_step_up_required" | "mfa_required")
        )
}

/// Run the parsed command; the result is the process exit code.
pub async fn run(cli: Cli, env: Environment) -> anyhow::Result<i32> {
    let Cli { globals, command } = cli;
    match command {
        Command::Completion { shell } => {
            let mut command = Cli::command();
            // Into memory first: clap_complete panics on a write error, e.g. `| head`.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "rack-gateway", &mut script);
            crate::write_stdout(&script, false);
            Ok(0)
        }
        Command::Convox(args) => passthrough_with_flags(globals, env, args).await,
        Command::Rack { args } if !args.is_empty() => {
            let args = std::iter::once(OsString::from("rack"))
                .chain(args)
                .collect();
            passthrough_with_flags(globals, env, args).await
        }
        Command::Login(args) => session::login(&Context::new(globals, env)?, args).await,
        Command::Logout => session::logout(&Context::new(globals, env)?).await,
        Command::TestAuth { mfa } => session::test_auth(&Context::new(globals, env)?, mfa).await,
        Command::Mfa(command) => mfa::run(&Context::new(globals, env)?, command).await,
        Command::Rack { .. } => racks::show_current(&Context::new(globals, env)?),
        Command::Racks => racks::list(&Context::new(globals, env)?),
        Command::Switch { rack } => racks::switch(&Context::new(globals, env)?, &rack),
        Command::Gateway => server::gateway(&Context::new(globals, env)?).await,
        Command::Version => server::version(&Context::new(globals, env)?).await,
        Command::Web => server::web(&Context::new(globals, env)?),
        Command::ApiToken(command) => api_tokens::run(&Context::new(globals, env)?, command).await,
    }
}

/// Global flags written after a passthrough command (`rack-gateway apps --api-token X`)
/// are ours too; they override the same flags given before it.
async fn passthrough_with_flags(
    mut globals: Globals,
    env: Environment,
    args: Vec<OsString>,
) -> anyhow::Result<i32> {
    let (flags, rest) = extract_global_flags(args)?;
    if flags.rack.is_some() {
        globals.rack = flags.rack;
    }
    if flags.config.is_some() {
        globals.config = flags.config;
    }
    if flags.api_token.is_some() {
        globals.api_token = flags.api_token;
    }
    if flags.mfa_code.is_some() {
        globals.mfa_code = flags.mfa_code;
    }
    if let Some(method) = flags.mfa_method {
        globals.mfa_method = Some(method);
    }
    globals.no_open |= flags.no_open;
    let ctx = Context::new(globals, env)?;
    passthrough::run(&ctx, rest).await
}

/// `2024-02-15 10:30:00 UTC`, as the original CLI prints it; text that is not RFC 3339 is shown as is.
pub fn human_time(rfc3339: &str) -> String {
    DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&Utc)
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(
            human_time("2024-02-15T10:30:00Z"),
            "2024-02-15 10:30:00 UTC"
        );
        assert_eq!(
            human_time("2024-02-15T12:30:00+02:00"),
            "2024-02-15 10:30:00 UTC"
        );
        assert_eq!(human_time("soon"), "soon");
    }
}
