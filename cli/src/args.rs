//! The command line (clap derive): global flags, our own commands, and every
//! other command captured verbatim for convox.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

/// Access a Convox rack through its rack-gateway: sign in with your company
/// account, then use convox commands as usual (`rack-gateway apps`,
/// `rack-gateway ps -a myapp`, ...). Commands not listed below are run by the
/// convox CLI against the gateway.
#[derive(Debug, Parser)]
#[command(
    name = "rack-gateway",
    version,
    arg_required_else_help = true,
    after_help = "Environment: RACK_GATEWAY_RACK, RACK_GATEWAY_URL, RACK_GATEWAY_API_TOKEN \
                  (no MFA prompts with an API token), GATEWAY_CLI_CONFIG_DIR, CONVOX_BIN"
)]
pub struct Cli {
    #[command(flatten)]
    pub globals: Globals,

    #[command(subcommand)]
    pub command: Command,
}

/// Flags on every command; never passed on to convox.
#[derive(Debug, Clone, Default, Args)]
pub struct Globals {
    /// Use this rack for one command (else RACK_GATEWAY_RACK, RACK_GATEWAY_URL, the current rack)
    #[arg(short = 'r', long, global = true, value_name = "RACK")]
    pub rack: Option<String>,

    /// Config directory [default: GATEWAY_CLI_CONFIG_DIR or ~/.config/rack-gateway]
    #[arg(long, global = true, value_name = "DIR")]
    pub config: Option<PathBuf>,

    /// API token to use instead of the stored session (wins over RACK_GATEWAY_API_TOKEN)
    #[arg(long, global = true, value_name = "TOKEN")]
    pub api_token: Option<String>,

    /// A TOTP, YubiKey OTP or backup code for this command's MFA (sent inline, never stored)
    #[arg(long, global = true, value_name = "CODE")]
    pub mfa_code: Option<String>,

    /// Which enrolled MFA method to use: totp (a code: TOTP, YubiKey or backup) or webauthn (the browser)
    #[arg(long, global = true, value_enum, value_name = "METHOD")]
    pub mfa_method: Option<MfaMethodFlag>,

    /// Print URLs (sign-in, WebAuthn page) instead of opening a browser
    #[arg(long, global = true)]
    pub no_open: bool,
}

/// `--mfa-method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MfaMethodFlag {
    Totp,
    Webauthn,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign in through the browser: `login` (current rack), `login RACK`, or `login RACK URL` (a new rack)
    Login(LoginArgs),
    /// Revoke this rack's session on the gateway and forget it here (the rack's URL is kept)
    Logout,
    /// Check the credential with the gateway and show who you are (`--mfa`: also run an MFA step-up)
    TestAuth {
        /// Also verify MFA now (opens the step-up window of this session)
        #[arg(long)]
        mfa: bool,
    },
    /// Show the current rack, its gateway URL and login status; `rack <subcommand>` runs `convox rack …`
    Rack {
        /// `info`, `logs`, `params`, `ps`, ... passed to `convox rack`
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "CONVOX_RACK_ARGS"
        )]
        args: Vec<OsString>,
    },
    /// List the configured racks (the current one is marked with *)
    Racks,
    /// Make another configured rack the current one
    Switch {
        /// A rack name from `rack-gateway racks`
        rack: String,
    },
    /// Show the gateway's health and server information
    Gateway,
    /// Show the CLI and gateway versions
    Version,
    /// Open the gateway's web UI in the browser
    Web,
    /// Print a shell completion script: `source <(rack-gateway completion bash)`
    Completion {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Manage API tokens (admin)
    #[command(subcommand)]
    ApiToken(ApiTokenCommand),
    /// Your MFA methods: list, enrol TOTP, backup codes, verify now
    #[command(subcommand)]
    Mfa(MfaCommand),
    /// Any other command is run by the convox CLI through the gateway
    #[command(external_subcommand)]
    Convox(Vec<OsString>),
}

#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// Rack name (an alias you choose); default: the current rack
    pub rack: Option<String>,
    /// Gateway URL, for a new rack (`https://` is assumed when no scheme is given)
    pub url: Option<String>,
    /// Also write AUTH_URL= and STATE= lines to this file (mode 0600), for automation
    #[arg(long, value_name = "PATH")]
    pub auth_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ApiTokenCommand {
    /// List API tokens
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Show one API token
    Get {
        id: String,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Create an API token; its secret is shown once
    Create {
        /// A unique name
        #[arg(long)]
        name: String,
        /// The token's role
        #[arg(long, value_parser = ["viewer", "ops", "deployer", "cicd", "admin", "auditor"])]
        role: String,
        /// Owner of the token (default: you)
        #[arg(long, value_name = "EMAIL")]
        user: Option<String>,
        /// Expiry, RFC 3339 (default: never)
        #[arg(long, value_name = "RFC3339")]
        expires_at: Option<String>,
        /// `token` prints only the secret
        #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },
    /// Revoke an API token
    Delete { id: String },
}

#[derive(Debug, Subcommand)]
pub enum MfaCommand {
    /// Show your MFA methods, the preferred one, backup codes left and the step-up window
    List,
    /// Enrol a method
    #[command(subcommand)]
    Enroll(EnrollCommand),
    /// Backup codes: how many are left; `regenerate` replaces them and prints the new set once
    BackupCodes {
        #[command(subcommand)]
        command: Option<BackupCodesCommand>,
    },
    /// Verify now (a code, or WebAuthn in the browser): completes a sign-in that is
    /// waiting for MFA, and opens the step-up window
    Verify,
}

#[derive(Debug, Subcommand)]
pub enum EnrollCommand {
    /// An authenticator app: shows the secret, the otpauth URL and a QR code, then
    /// asks for the first code (without a terminal: `--confirm METHOD_ID --mfa-code CODE`)
    Totp {
        /// A name for this method (default: the gateway's)
        #[arg(long)]
        label: Option<String>,
        /// Confirm an enrolment started earlier, by the method id it printed
        #[arg(long, value_name = "METHOD_ID")]
        confirm: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum BackupCodesCommand {
    /// Replace all backup codes (needs a step-up); the new codes are printed once
    Regenerate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
    Token,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("rack-gateway").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn unknown_commands_are_captured_verbatim_for_convox() {
        let cli = parse(&[
            "-r",
            "prod",
            "run",
            "command",
            "rails console",
            "-a",
            "myapp",
        ]);
        assert_eq!(cli.globals.rack.as_deref(), Some("prod"));
        match cli.command {
            Command::Convox(args) => assert_eq!(
                args,
                ["run", "command", "rails console", "-a", "myapp"]
                    .map(OsString::from)
                    .to_vec()
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rack_takes_convox_rack_arguments() {
        match parse(&["rack"]).command {
            Command::Rack { args } => assert!(args.is_empty()),
            other => panic!("{other:?}"),
        }
        let cli = parse(&["rack", "-r", "prod"]);
        assert_eq!(cli.globals.rack.as_deref(), Some("prod"));
        match parse(&["rack", "params", "set", "A=1", "--wait"]).command {
            Command::Rack { args } => assert_eq!(
                args,
                ["params", "set", "A=1", "--wait"]
                    .map(OsString::from)
                    .to_vec()
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn login_takes_zero_one_or_two_arguments() {
        for (args, rack, url) in [
            (vec!["login"], None, None),
            (vec!["login", "prod"], Some("prod"), None),
            (
                vec!["login", "prod", "gw.example.com", "--no-open"],
                Some("prod"),
                Some("gw.example.com"),
            ),
        ] {
            match parse(&args).command {
                Command::Login(login) => {
                    assert_eq!(login.rack.as_deref(), rack);
                    assert_eq!(login.url.as_deref(), url);
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn mfa_flags_are_global() {
        let cli = parse(&[
            "test-auth",
            "--mfa",
            "--mfa-code",
            "123456",
            "--mfa-method",
            "totp",
        ]);
        assert!(matches!(cli.command, Command::TestAuth { mfa: true }));
        assert_eq!(cli.globals.mfa_code.as_deref(), Some("123456"));
        assert_eq!(cli.globals.mfa_method, Some(MfaMethodFlag::Totp));
        let cli = parse(&["--mfa-method", "webauthn", "--no-open", "login", "prod"]);
        assert_eq!(cli.globals.mfa_method, Some(MfaMethodFlag::Webauthn));
        assert!(cli.globals.no_open);
        assert!(matches!(
            parse(&["test-auth"]).command,
            Command::TestAuth { mfa: false }
        ));
        assert!(Cli::try_parse_from(["rack-gateway", "--mfa-method", "sms", "test-auth"]).is_err());
    }

    #[test]
    fn mfa_subcommands() {
        assert!(matches!(
            parse(&["mfa", "list"]).command,
            Command::Mfa(MfaCommand::List)
        ));
        assert!(matches!(
            parse(&["mfa", "verify"]).command,
            Command::Mfa(MfaCommand::Verify)
        ));
        match parse(&["mfa", "enroll", "totp", "--label", "phone"]).command {
            Command::Mfa(MfaCommand::Enroll(EnrollCommand::Totp { label, confirm })) => {
                assert_eq!(label.as_deref(), Some("phone"));
                assert_eq!(confirm, None);
            }
            other => panic!("{other:?}"),
        }
        match parse(&[
            "mfa",
            "enroll",
            "totp",
            "--confirm",
            "m-1",
            "--mfa-code",
            "654321",
        ]) {
            Cli {
                globals,
                command: Command::Mfa(MfaCommand::Enroll(EnrollCommand::Totp { confirm, .. })),
            } => {
                assert_eq!(confirm.as_deref(), Some("m-1"));
                assert_eq!(globals.mfa_code.as_deref(), Some("654321"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(&["mfa", "backup-codes", "regenerate"]).command,
            Command::Mfa(MfaCommand::BackupCodes {
                command: Some(BackupCodesCommand::Regenerate)
            })
        ));
        assert!(matches!(
            parse(&["mfa", "backup-codes"]).command,
            Command::Mfa(MfaCommand::BackupCodes { command: None })
        ));
        // Only TOTP can be enrolled from a terminal.
        assert!(Cli::try_parse_from(["rack-gateway", "mfa", "enroll", "webauthn"]).is_err());
    }

    #[test]
    fn api_token_create_flags() {
        match parse(&[
            "api-token",
            "create",
            "--name",
            "ci",
            "--role",
            "cicd",
            "--output",
            "token",
            "--expires-at",
            "2030-01-01T00:00:00Z",
            "--user",
            "ci@example.com",
        ])
        .command
        {
            Command::ApiToken(ApiTokenCommand::Create {
                name,
                role,
                output,
                user,
                expires_at,
            }) => {
                assert_eq!(
                    (name.as_str(), role.as_str(), output),
                    ("ci", "cicd", OutputFormat::Token)
                );
                assert_eq!(user.as_deref(), Some("ci@example.com"));
                assert_eq!(expires_at.as_deref(), Some("2030-01-01T00:00:00Z"));
            }
            other => panic!("{other:?}"),
        }
        assert!(Cli::try_parse_from([
            "rack-gateway",
            "api-token",
            "create",
            "--name",
            "x",
            "--role",
            "root"
        ])
        .is_err());
    }
}
