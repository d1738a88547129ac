//! Which rack a command talks to, at which gateway URL, with which credential
//! (README "The `rack-gateway` CLI": rack selection order and the API-token precedence).
//!
//! Selection: `--rack`, then `RACK_GATEWAY_RACK`, then `RACK_GATEWAY_URL` alone
//! (label "(from environment)", and then an API token is required), then
//! `current` in the config. Credential: `--api-token`, then
//! `RACK_GATEWAY_API_TOKEN`, then the stored session if it is still usable; an
//! unusable session is refused here, before anything is sent anywhere.

use std::fmt;

use anyhow::{anyhow, bail, Context as _};
use chrono::{DateTime, Utc};
use url::Url;

use crate::config::{Config, RackEntry, SessionState};
use crate::environment::Environment;

/// The label of a rack known only by `RACK_GATEWAY_URL`.
pub const FROM_ENVIRONMENT: &str = "(from environment)";

/// A gateway base URL: `scheme://host[:port][/prefix]`, never a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayUrl {
    url: Url,
    text: String,
}

impl GatewayUrl {
    /// Normalise what a user typed: `https://` is added when no scheme is given
    /// and trailing slashes are removed. User info, queries and fragments are
    /// refused: the first would put a secret in the config, the others would be
    /// silently dropped from every request.
    pub fn parse(input: &str) -> anyhow::Result<GatewayUrl> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            bail!("the gateway URL is empty");
        }
        let with_scheme = if trimmed.contains("://") {
            trimmed.to_owned()
        } else {
            format!("https://{trimmed}")
        };
        let url =
            Url::parse(&with_scheme).with_context(|| format!("invalid gateway URL {trimmed:?}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            bail!("invalid gateway URL {trimmed:?}: the scheme must be http or https");
        }
        if url.host_str().is_none_or(str::is_empty) {
            bail!("invalid gateway URL {trimmed:?}: no host");
        }
        if !url.username().is_empty() || url.password().is_some() {
            bail!("invalid gateway URL {trimmed:?}: it must not contain a user name or password");
        }
        if url.query().is_some() || url.fragment().is_some() {
            bail!("invalid gateway URL {trimmed:?}: it must not contain a query or fragment");
        }
        let text = url.as_str().trim_end_matches('/').to_owned();
        Ok(GatewayUrl { url, text })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn scheme(&self) -> &str {
        self.url.scheme()
    }

    /// Host as it goes in a URL (IPv6 in brackets).
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    /// The port when it is not the scheme's default.
    pub fn port(&self) -> Option<u16> {
        self.url.port()
    }

    /// The path the gateway is mounted under: `""` or `/prefix` (no trailing slash).
    pub fn path_prefix(&self) -> &str {
        self.url.path().trim_end_matches('/')
    }

    /// `base + path`, where `path` starts with `/`.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.text)
    }
}

impl fmt::Display for GatewayUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The rack a command is about.
#[derive(Debug, Clone)]
pub struct Selection {
    /// `None` when the rack is known only by `RACK_GATEWAY_URL`.
    pub rack: Option<String>,
    pub url: GatewayUrl,
    /// The stored entry, when the rack is configured.
    pub entry: Option<RackEntry>,
}

impl Selection {
    pub fn label(&self) -> &str {
        self.rack.as_deref().unwrap_or(FROM_ENVIRONMENT)
    }

    /// The hint printed when a session is unusable.
    pub fn login_command(&self) -> String {
        format!(
            "rack-gateway login {} {}",
            self.rack.as_deref().unwrap_or("<rack>"),
            self.url
        )
    }
}

pub const NO_RACK_SELECTED: &str =
    "no rack selected. Run: rack-gateway login <rack> <gateway-url> or use --rack flag";

/// Apply the selection order.
pub fn select(
    flag_rack: Option<&str>,
    env: &Environment,
    config: &Config,
) -> anyhow::Result<Selection> {
    let env_url = env
        .url
        .as_deref()
        .map(|u| GatewayUrl::parse(u).context("RACK_GATEWAY_URL"))
        .transpose()?;
    let named = flag_rack
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .or(env.rack.as_deref());
    if let Some(rack) = named {
        return select_named(rack, env_url, config);
    }
    if let Some(url) = env_url {
        return Ok(Selection {
            rack: None,
            url,
            entry: None,
        });
    }
    match config.current.as_deref().filter(|c| !c.is_empty()) {
        Some(current) => select_named(current, None, config),
        None => bail!(NO_RACK_SELECTED),
    }
}

fn select_named(
    rack: &str,
    env_url: Option<GatewayUrl>,
    config: &Config,
) -> anyhow::Result<Selection> {
    let entry = config.gateways.get(rack).cloned();
    let url = match (env_url, &entry) {
        (Some(url), _) => url,
        (None, Some(entry)) => GatewayUrl::parse(&entry.url)
            .with_context(|| format!("the stored URL of rack {rack}"))?,
        (None, None) => {
            bail!("rack {rack} is not configured. Run: rack-gateway login {rack} <gateway-url>")
        }
    };
    Ok(Selection {
        rack: Some(rack.to_owned()),
        url,
        entry,
    })
}

/// Where the secret a request carries came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    ApiTokenFlag,
    ApiTokenEnv,
    Session,
}

/// A bearer secret for the gateway. Never printed.
#[derive(Clone)]
pub struct Credential {
    pub secret: String,
    pub source: CredentialSource,
}

impl Credential {
    pub fn is_api_token(&self) -> bool {
        self.source != CredentialSource::Session
    }

    /// Where the secret came from, for messages.
    pub fn describe(&self) -> &'static str {
        match self.source {
            CredentialSource::ApiTokenFlag => "the API token from --api-token",
            CredentialSource::ApiTokenEnv => "the API token from RACK_GATEWAY_API_TOKEN",
            CredentialSource::Session => "the stored session",
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("secret", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

/// "session expired or invalid" plus the login command to run.
#[derive(Debug, Clone, thiserror::Error)]
#[error("session expired or invalid\nPlease run: {login_command}")]
pub struct SessionExpired {
    pub login_command: String,
}

impl SessionExpired {
    pub fn for_selection(selection: &Selection) -> SessionExpired {
        SessionExpired {
            login_command: selection.login_command(),
        }
    }
}

/// The secret to send: `--api-token`, then `RACK_GATEWAY_API_TOKEN`, then the
/// stored session, which must be present and not past `expires_at`.
pub fn credential(
    selection: &Selection,
    flag_token: Option<&str>,
    env: &Environment,
    now: DateTime<Utc>,
) -> anyhow::Result<Credential> {
    if let Some(token) = flag_token.map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(Credential {
            secret: token.to_owned(),
            source: CredentialSource::ApiTokenFlag,
        });
    }
    if let Some(token) = env.api_token.as_deref() {
        return Ok(Credential {
            secret: token.to_owned(),
            source: CredentialSource::ApiTokenEnv,
        });
    }
    let Some(entry) = &selection.entry else {
        if selection.rack.is_none() {
            return Err(anyhow!(
                "RACK_GATEWAY_URL is set without a rack name, so an API token is required: \
                 set RACK_GATEWAY_API_TOKEN or pass --api-token"
            ));
        }
        return Err(SessionExpired::for_selection(selection).into());
    };
    match (entry.session_state(now), entry.token()) {
        (SessionState::Usable { .. }, Some(token)) => Ok(Credential {
            secret: token.to_owned(),
            source: CredentialSource::Session,
        }),
        _ => Err(SessionExpired::for_selection(selection).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn config_with(racks: &[(&str, &str)], current: Option<&str>) -> Config {
        let mut config = Config {
            current: current.map(str::to_owned),
            ..Config::default()
        };
        for (name, url) in racks {
            config
                .gateways
                .insert((*name).to_owned(), RackEntry::new(*url));
        }
        config
    }

    #[test]
    fn url_normalisation_adds_https_and_drops_trailing_slashes() {
        let cases = [
            ("gateway.example.com", "https://gateway.example.com"),
            ("gateway.example.com/", "https://gateway.example.com"),
            ("http://localhost:8447/", "http://localhost:8447"),
            ("https://GW.Example.com:443", "https://gw.example.com"),
            (
                "https://gw.example.com/racks/prod//",
                "https://gw.example.com/racks/prod",
            ),
            ("  http://127.0.0.1:9000  ", "http://127.0.0.1:9000"),
            ("http://[::1]:8447", "http://[::1]:8447"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                GatewayUrl::parse(input).unwrap().as_str(),
                expected,
                "{input}"
            );
        }
        let url = GatewayUrl::parse("https://gw.example.com:8443/pfx/").unwrap();
        assert_eq!(url.port(), Some(8443));
        assert_eq!(url.path_prefix(), "/pfx");
        assert_eq!(
            url.endpoint("/api/v1/info"),
            "https://gw.example.com:8443/pfx/api/v1/info"
        );
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason() {
        for (input, reason) in [
            ("", "empty"),
            ("ftp://gw", "scheme"),
            ("https://user:pw@gw", "user name or password"),
            ("https://gw/?a=1", "query"),
            ("https://", "invalid gateway URL"),
        ] {
            let error = format!("{:#}", GatewayUrl::parse(input).unwrap_err());
            assert!(error.contains(reason), "{input}: {error}");
        }
    }

    #[test]
    fn flag_beats_env_rack_beats_env_url_beats_current() {
        let config = config_with(
            &[
                ("flag", "https://flag.example"),
                ("envrack", "https://envrack.example"),
                ("cur", "https://cur.example"),
            ],
            Some("cur"),
        );
        let env = Environment {
            rack: Some("envrack".into()),
            url: Some("https://envurl.example".into()),
            ..Environment::default()
        };
        // --rack wins; RACK_GATEWAY_URL still overrides the stored URL.
        let s = select(Some("flag"), &env, &config).unwrap();
        assert_eq!(s.rack.as_deref(), Some("flag"));
        assert_eq!(s.url.as_str(), "https://envurl.example");

        let env_no_url = Environment {
            url: None,
            ..env.clone()
        };
        let s = select(Some("flag"), &env_no_url, &config).unwrap();
        assert_eq!(
            (s.label(), s.url.as_str()),
            ("flag", "https://flag.example")
        );

        // Then RACK_GATEWAY_RACK.
        let s = select(None, &env_no_url, &config).unwrap();
        assert_eq!(
            (s.label(), s.url.as_str()),
            ("envrack", "https://envrack.example")
        );

        // Then RACK_GATEWAY_URL alone, labelled "(from environment)".
        let env_url_only = Environment {
            rack: None,
            ..env.clone()
        };
        let s = select(None, &env_url_only, &config).unwrap();
        assert_eq!(s.rack, None);
        assert_eq!(s.label(), FROM_ENVIRONMENT);
        assert_eq!(s.url.as_str(), "https://envurl.example");
        assert!(s.entry.is_none());

        // Then current.
        let s = select(None, &Environment::default(), &config).unwrap();
        assert_eq!((s.label(), s.url.as_str()), ("cur", "https://cur.example"));
    }

    #[test]
    fn nothing_selected_is_the_documented_error() {
        let error = select(None, &Environment::default(), &Config::default()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "no rack selected. Run: rack-gateway login <rack> <gateway-url> or use --rack flag"
        );
    }

    #[test]
    fn an_unknown_rack_is_refused_unless_the_environment_gives_its_url() {
        let config = config_with(&[("prod", "https://prod.example")], Some("prod"));
        let error = select(Some("staging"), &Environment::default(), &config).unwrap_err();
        assert!(error.to_string().contains("rack staging is not configured"));
        let env = Environment {
            url: Some("staging.example".into()),
            ..Environment::default()
        };
        let s = select(Some("staging"), &env, &config).unwrap();
        assert_eq!(s.url.as_str(), "https://staging.example");
        assert!(s.entry.is_none());
    }

    fn selection_with_session(token: Option<&str>, expires_at: Option<String>) -> Selection {
        let mut entry = RackEntry::new("https://gw.example");
        entry.token = token.map(str::to_owned);
        entry.expires_at = expires_at;
        Selection {
            rack: Some("prod".into()),
            url: GatewayUrl::parse("https://gw.example").unwrap(),
            entry: Some(entry),
        }
    }

    #[test]
    fn api_token_flag_beats_env_beats_session() {
        let now = Utc::now();
        let selection = selection_with_session(Some("rgw_sess_x"), None);
        let env = Environment {
            api_token: Some("rgw_token_env".into()),
            ..Environment::default()
        };
        let c = credential(&selection, Some("rgw_token_flag"), &env, now).unwrap();
        assert_eq!(
            (c.secret.as_str(), c.source),
            ("rgw_token_flag", CredentialSource::ApiTokenFlag)
        );
        let c = credential(&selection, None, &env, now).unwrap();
        assert_eq!(
            (c.secret.as_str(), c.source),
            ("rgw_token_env", CredentialSource::ApiTokenEnv)
        );
        let c = credential(&selection, None, &Environment::default(), now).unwrap();
        assert_eq!(
            (c.secret.as_str(), c.source),
            ("rgw_sess_x", CredentialSource::Session)
        );
    }

    #[test]
    fn an_expired_or_missing_session_is_refused_with_the_login_hint() {
        let now = Utc::now();
        let expected =
            "session expired or invalid\nPlease run: rack-gateway login prod https://gw.example";
        for selection in [
            selection_with_session(
                Some("rgw_sess_x"),
                Some((now - Duration::minutes(1)).to_rfc3339()),
            ),
            selection_with_session(Some(""), None),
            selection_with_session(None, None),
        ] {
            let error = credential(&selection, None, &Environment::default(), now).unwrap_err();
            assert!(error.is::<SessionExpired>());
            assert_eq!(error.to_string(), expected);
        }
        // An expired session does not matter when an API token is given.
        let selection = selection_with_session(
            Some("rgw_sess_x"),
            Some((now - Duration::minutes(1)).to_rfc3339()),
        );
        assert!(credential(
            &selection,
            Some("rgw_token_f"),
            &Environment::default(),
            now
        )
        .is_ok());
    }

    #[test]
    fn a_url_only_rack_needs_an_api_token() {
        let selection = Selection {
            rack: None,
            url: GatewayUrl::parse("https://gw.example").unwrap(),
            entry: None,
        };
        let error = credential(&selection, None, &Environment::default(), Utc::now()).unwrap_err();
        assert!(error.to_string().contains("an API token is required"));
        let env = Environment {
            api_token: Some("rgw_token_env".into()),
            ..Environment::default()
        };
        assert!(credential(&selection, None, &env, Utc::now()).is_ok());
    }

    #[test]
    fn credential_debug_hides_the_secret() {
        let c = Credential {
            secret: "rgw_token_secret".into(),
            source: CredentialSource::ApiTokenEnv,
        };
        assert!(!format!("{c:?}").contains("rgw_token_secret"));
    }
}
