//! One function per command, and the [`Context`] they share: the global flags,
//! the environment, and the config store they point at.

mod api_tokens;
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
        Command::TestAuth => session::test_auth(&Context::new(globals, env)?).await,
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
