//! Passing commands through to the real `convox` CLI (README "The `rack-gateway` CLI").
//!
//! Every command the CLI does not own runs `convox <args…>` verbatim with
//! `RACK_URL=<scheme>://convox:<token>@<host>[:port]<prefix>/api/v1/rack-proxy`,
//! the terminal inherited (exec, run and logs are interactive) and the exit code
//! passed back. Only our global flags are taken out of the arguments: they choose
//! the rack and the credential and mean nothing to convox.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

use clap::ValueEnum as _;

use crate::args::MfaMethodFlag;
use crate::environment::Environment;
use crate::racks::GatewayUrl;

pub const NOT_FOUND: &str = "the convox CLI was not found; install it or set CONVOX_BIN";
pub const RACK_PROXY_PATH: &str = "/api/v1/rack-proxy";

/// The convox CLI to run: `CONVOX_BIN`, then `convox` on `PATH`.
pub fn find_convox(env: &Environment) -> anyhow::Result<PathBuf> {
    if let Some(path) = &env.convox_bin {
        if is_executable(path) {
            return Ok(path.clone());
        }
        bail!(
            "the convox CLI was not found at {} (CONVOX_BIN); install it or set CONVOX_BIN",
            path.display()
        );
    }
    env.path
        .as_deref()
        .into_iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("convox"))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| anyhow::anyhow!(NOT_FOUND))
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// `RACK_URL` for convox. The token goes in the URL's password unescaped, and
/// convox builds its Basic header from the URL's escaped user info (Go's
/// `url.UserPassword` escaping), so a token with characters outside `A-Z a-z 0-9 - . _ ~` would reach
/// the gateway altered: such a token is refused here rather than sent wrong.
pub fn rack_url(gateway: &GatewayUrl, token: &str) -> anyhow::Result<String> {
    if token.is_empty()
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    {
        bail!(
            "the credential contains characters that cannot be passed to convox in RACK_URL \
             (only letters, digits and - . _ ~ are allowed)"
        );
    }
    let port = gateway.port().map(|p| format!(":{p}")).unwrap_or_default();
    Ok(format!(
        "{}://convox:{token}@{}{port}{}{RACK_PROXY_PATH}",
        gateway.scheme(),
        gateway.host(),
        gateway.path_prefix()
    ))
}

/// Our global flags found among passthrough arguments.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExtractedFlags {
    pub rack: Option<String>,
    pub config: Option<PathBuf>,
    pub api_token: Option<String>,
    pub mfa_code: Option<String>,
    pub mfa_method: Option<MfaMethodFlag>,
    pub no_open: bool,
}

/// `RACK_URL`'s password with an MFA code: `<token>.totp.<code>` (the gateway
/// reads the suffix as proof on each request; the dot needs no escaping).
pub fn token_with_code(token: &str, code: &str) -> String {
    format!("{token}.totp.{code}")
}

/// Take `--rack/-r`, `--config`, `--api-token`, `--mfa-code`, `--mfa-method`
/// (as `--flag value` or `--flag=value`) and `--no-open` out of the arguments
/// of a passthrough command; everything else, in order, is for convox. After
/// `--` nothing is touched.
pub fn extract_global_flags(
    args: Vec<OsString>,
) -> anyhow::Result<(ExtractedFlags, Vec<OsString>)> {
    let mut flags = ExtractedFlags::default();
    let mut rest = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        let Some(text) = arg.to_str() else {
            rest.push(arg);
            continue;
        };
        if text == "--" {
            rest.push(arg);
            rest.extend(iter.by_ref());
            break;
        }
        let (name, inline) = match text.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value.to_owned())),
            _ => (text, None),
        };
        let slot = match name {
            "--rack" | "-r" => Flag::Rack,
            "--config" => Flag::Config,
            "--api-token" => Flag::ApiToken,
            "--mfa-code" => Flag::MfaCode,
            "--mfa-method" => Flag::MfaMethod,
            "--no-open" if inline.is_none() => {
                flags.no_open = true;
                continue;
            }
            _ => {
                rest.push(arg);
                continue;
            }
        };
        let value = match inline {
            Some(value) => value,
            None => iter
                .next()
                .and_then(|v| v.into_string().ok())
                .with_context(|| format!("{name} needs a value"))?,
        };
        match slot {
            Flag::Rack => flags.rack = Some(value),
            Flag::Config => flags.config = Some(PathBuf::from(value)),
            Flag::ApiToken => flags.api_token = Some(value),
            Flag::MfaCode => flags.mfa_code = Some(value),
            Flag::MfaMethod => {
                flags.mfa_method =
                    Some(MfaMethodFlag::from_str(&value, false).map_err(|_| {
                        anyhow::anyhow!("--mfa-method {value:?}: use totp or webauthn")
                    })?)
            }
        }
    }
    Ok((flags, rest))
}

enum Flag {
    Rack,
    Config,
    ApiToken,
    MfaCode,
    MfaMethod,
}

/// Run convox with the terminal inherited and return the exit code it ended
/// with (128 + signal when a signal ended it, as shells report it). Ctrl-C goes
/// to convox (same process group); this process waits for it instead of dying first.
pub async fn run(bin: &Path, args: &[OsString], rack_url: &str) -> anyhow::Result<i32> {
    let mut command = tokio::process::Command::new(bin);
    command.args(args).env("RACK_URL", rack_url);
    // Registered before the child starts, so an early Ctrl-C cannot kill us first.
    let mut interrupts = Interrupts::listen();
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot run {}", display_program(bin)))?;
    let status = loop {
        tokio::select! {
            status = child.wait() => {
                break status.with_context(|| format!("waiting for {}", display_program(bin)))?;
            }
            () = interrupts.next() => {}
        }
    };
    Ok(exit_code(status))
}

/// SIGINT while convox runs: the terminal sends it to convox too, which decides
/// what it means (an exec session forwards it); we only keep running.
struct Interrupts {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Interrupts {
    fn listen() -> Interrupts {
        Interrupts {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok(),
        }
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            if signal.recv().await.is_some() {
                return;
            }
        }
        std::future::pending::<()>().await
    }
}

fn display_program(bin: &Path) -> String {
    bin.file_name()
        .map(OsStr::to_string_lossy)
        .map(|n| n.into_owned())
        .unwrap_or_else(|| bin.display().to_string())
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    if let Some(code) = status.code() {
        return code;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            return 128 + signal;
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn rack_url_keeps_scheme_host_port_and_prefix() {
        let cases = [
            (
                "https://gw.example.com",
                "https://convox:tok@gw.example.com/api/v1/rack-proxy",
            ),
            (
                "http://127.0.0.1:8447",
                "http://convox:tok@127.0.0.1:8447/api/v1/rack-proxy",
            ),
            (
                "gw.example.com:8443/",
                "https://convox:tok@gw.example.com:8443/api/v1/rack-proxy",
            ),
            (
                "https://gw.example.com/racks/prod/",
                "https://convox:tok@gw.example.com/racks/prod/api/v1/rack-proxy",
            ),
            (
                "http://[::1]:9000/p",
                "http://convox:tok@[::1]:9000/p/api/v1/rack-proxy",
            ),
            (
                "https://gw.example.com:443",
                "https://convox:tok@gw.example.com/api/v1/rack-proxy",
            ),
        ];
        for (gateway, expected) in cases {
            let url = GatewayUrl::parse(gateway).unwrap();
            assert_eq!(rack_url(&url, "tok").unwrap(), expected, "{gateway}");
        }
    }

    #[test]
    fn rack_url_carries_our_tokens_unchanged() {
        let url = GatewayUrl::parse("https://gw").unwrap();
        let token = "rgw_sess_Ab-_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";
        let built = rack_url(&url, token).unwrap();
        let parsed = url::Url::parse(&built).unwrap();
        assert_eq!(parsed.username(), "convox");
        assert_eq!(parsed.password(), Some(token));
        assert!(!built.ends_with('/'));
    }

    #[test]
    fn rack_url_refuses_tokens_that_convox_would_alter() {
        let url = GatewayUrl::parse("https://gw").unwrap();
        for token in ["", "a b", "a@b", "a:b", "a/b", "a%b"] {
            assert!(rack_url(&url, token).is_err(), "{token:?}");
        }
    }

    #[test]
    fn global_flags_are_taken_out_and_the_rest_kept_in_order() {
        let (flags, rest) = extract_global_flags(os(&[
            "ps",
            "-a",
            "myapp",
            "--rack",
            "prod",
            "--api-token=rgw_token_x",
            "--config",
            "/c",
        ]))
        .unwrap();
        assert_eq!(rest, os(&["ps", "-a", "myapp"]));
        assert_eq!(
            flags,
            ExtractedFlags {
                rack: Some("prod".into()),
                config: Some(PathBuf::from("/c")),
                api_token: Some("rgw_token_x".into()),
                ..ExtractedFlags::default()
            }
        );
        let (flags, rest) = extract_global_flags(os(&["apps", "-r", "staging"])).unwrap();
        assert_eq!(rest, os(&["apps"]));
        assert_eq!(flags.rack.as_deref(), Some("staging"));
        let (flags, rest) = extract_global_flags(os(&["apps", "--rack=eu"])).unwrap();
        assert_eq!((rest, flags.rack.as_deref()), (os(&["apps"]), Some("eu")));
    }

    #[test]
    fn arguments_after_double_dash_and_other_flags_pass_verbatim() {
        let args = os(&["run", "web", "--", "sh", "-c", "echo --rack x", "-r", "y"]);
        let (flags, rest) = extract_global_flags(args.clone()).unwrap();
        assert_eq!(flags, ExtractedFlags::default());
        assert_eq!(rest, args);
        let args = os(&["env", "set", "A=1", "--app=myapp", "--replace", "B=--rack"]);
        let (flags, rest) = extract_global_flags(args.clone()).unwrap();
        assert_eq!((flags, rest), (ExtractedFlags::default(), args));
    }

    #[test]
    fn mfa_flags_are_taken_out_too() {
        let (flags, rest) = extract_global_flags(os(&[
            "env",
            "set",
            "A=1",
            "--mfa-code",
            "123456",
            "--mfa-method=webauthn",
            "--no-open",
            "-a",
            "myapp",
        ]))
        .unwrap();
        assert_eq!(rest, os(&["env", "set", "A=1", "-a", "myapp"]));
        assert_eq!(flags.mfa_code.as_deref(), Some("123456"));
        assert_eq!(flags.mfa_method, Some(MfaMethodFlag::Webauthn));
        assert!(flags.no_open);
        let error = extract_global_flags(os(&["apps", "--mfa-method", "sms"])).unwrap_err();
        assert!(
            error.to_string().contains("use totp or webauthn"),
            "{error}"
        );
        let error = extract_global_flags(os(&["apps", "--mfa-code"])).unwrap_err();
        assert_eq!(error.to_string(), "--mfa-code needs a value");
    }

    #[test]
    fn the_code_rides_in_rack_url_as_a_password_suffix() {
        let url = GatewayUrl::parse("https://gw").unwrap();
        let built = rack_url(&url, &token_with_code("rgw_sess_abc", "123456")).unwrap();
        assert_eq!(
            built,
            "https://convox:rgw_sess_abc.totp.123456@gw/api/v1/rack-proxy"
        );
        assert_eq!(
            url::Url::parse(&built).unwrap().password(),
            Some("rgw_sess_abc.totp.123456")
        );
    }

    #[test]
    fn a_global_flag_without_value_is_an_error() {
        let error = extract_global_flags(os(&["apps", "--api-token"])).unwrap_err();
        assert_eq!(error.to_string(), "--api-token needs a value");
    }

    #[cfg(unix)]
    #[test]
    fn convox_is_found_from_convox_bin_then_path() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("convox");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();

        let env = Environment {
            path: Some(
                std::env::join_paths(["/nonexistent", dir.path().to_str().unwrap()]).unwrap(),
            ),
            ..Environment::default()
        };
        assert_eq!(find_convox(&env).unwrap(), bin);
        let env = Environment {
            convox_bin: Some(bin.clone()),
            path: None,
            ..Environment::default()
        };
        assert_eq!(find_convox(&env).unwrap(), bin);

        let error = find_convox(&Environment::default()).unwrap_err();
        assert_eq!(error.to_string(), NOT_FOUND);
        let env = Environment {
            convox_bin: Some(dir.path().join("missing")),
            ..Environment::default()
        };
        assert!(find_convox(&env)
            .unwrap_err()
            .to_string()
            .contains("not found at"));
        // Not executable is not found.
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o644)).unwrap();
        let env = Environment {
            path: Some(dir.path().as_os_str().to_owned()),
            ..Environment::default()
        };
        assert!(find_convox(&env).is_err());
    }
}
