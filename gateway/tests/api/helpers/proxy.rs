//! The rack proxy's world: a mock rack in-process ([`Rack`], recording every
//! request it receives), credentials per role, calls through the proxy as
//! the convox CLI makes them ([`TestApp::proxy`]: HTTP, raw HTTP/1.1 and
//! websockets), and readers for the proxy's events.

use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use futures::{SinkExt, StreamExt};
use gateway::accounts::api_tokens::{self, CreatedToken, NewToken};
use gateway::accounts::users::Requester;
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use tools::mock_rack::{MockRack, MockRackConfig, RecordedRequest, RunningMockRack};

use super::app::TestApp;
use super::http::{raw, RawResponse};
use super::Role;

/// The rack's own password in these tests (the gateway holds it; clients never see it).
pub const RACK_TOKEN: &str = "rack-secret-7c1d2e3f4a5b";

pub const PREFIX: &str = "/api/v1/rack-proxy";

/// A websocket upgrade's headers (the key is fixed; tests do not speak websocket over `raw`).
pub const UPGRADE: [(&str, &str); 4] = [
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
];

/// The mock rack, its password [`RACK_TOKEN`], recording to a `--record` file too.
pub struct Rack {
    pub rack: RunningMockRack,
    pub record_dir: tempfile::TempDir,
}

impl std::ops::Deref for Rack {
    type Target = RunningMockRack;
    fn deref(&self) -> &RunningMockRack {
        &self.rack
    }
}

impl Rack {
    pub async fn start() -> Rack {
        Rack::start_with(MockRackConfig::default()).await
    }

    pub async fn start_with(config: MockRackConfig) -> Rack {
        let record_dir = tempfile::tempdir().expect("tempdir");
        let config = MockRackConfig {
            password: RACK_TOKEN.to_owned(),
            record: Some(record_dir.path().join("rack.jsonl")),
            ..config
        };
        let rack = MockRack::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config)
            .await
            .expect("bind mock rack")
            .spawn();
        Rack { rack, record_dir }
    }

    /// Everything the rack received, from its record file.
    pub fn recorded_file(&self) -> Vec<RecordedRequest> {
        let text =
            std::fs::read_to_string(self.record_dir.path().join("rack.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("record line"))
            .collect()
    }

    /// Whether the rack received a request with this id (our `X-Request-Id`).
    pub fn saw(&self, request_id: &str) -> bool {
        self.recorded()
            .iter()
            .any(|r| r.request_id.as_deref() == Some(request_id))
    }

    /// A service `convox run` may start processes in (the seed app's `web` and
    /// `worker` are refused by the default policy).
    pub fn add_service(&self, name: &str) {
        self.update_state(|state| {
            let app = state
                .apps
                .get_mut(tools::mock_rack::SEED_APP)
                .expect("seed app");
            let mut service = app.services[0].clone();
            service.name = name.to_owned();
            app.services.push(service);
        });
    }
}

/// `Basic base64(convox:<secret>)`, as the CLI sends it.
pub fn basic(secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("convox:{secret}"))
    )
}

/// `X-Request-Id` of a gateway answer.
pub fn request_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("every proxy answer carries X-Request-Id")
        .to_owned()
}

/// Who in-process account changes are made by in these tests.
pub fn requester() -> Requester {
    Requester {
        actor: events::Actor::system("proxy-test"),
        source: events::Source::default(),
    }
}

/// Calls through the rack proxy; see [`TestApp::proxy`].
pub struct Proxy<'a> {
    app: &'a TestApp,
    authorization: Option<String>,
}

impl TestApp {
    /// Calls through the rack proxy as the convox CLI makes them: `Basic convox:<secret>`.
    pub fn proxy(&self, secret: &str) -> Proxy<'_> {
        self.proxy_with(Some(&basic(secret)))
    }

    /// Calls through the rack proxy with this `Authorization` header (or none), as written.
    pub fn proxy_with(&self, authorization: Option<&str>) -> Proxy<'_> {
        Proxy {
            app: self,
            authorization: authorization.map(str::to_owned),
        }
    }

    /// An API token with `role` and no owner, made in-process.
    pub async fn token(&self, role: Role) -> String {
        let name = format!(
            "t-{role}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        self.create_token(&name, role, None, None).await.secret
    }

    /// One token per role, in [`Role::ALL`] order.
    pub async fn tokens_for_every_role(&self) -> Vec<(Role, String)> {
        let mut all = Vec::new();
        for role in Role::ALL {
            all.push((role, self.token(role).await));
        }
        all
    }

    /// An API token made in-process (by [`requester`]), owned by `owner` and expiring when asked.
    pub async fn create_token(
        &self,
        name: &str,
        role: Role,
        owner: Option<&str>,
        expires_at: Option<&str>,
    ) -> CreatedToken {
        api_tokens::create(
            &self.state.pool,
            &self.state.appender,
            &requester(),
            NewToken {
                name,
                role: role.as_str(),
                user_email: owner,
                expires_at,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("create {role} token {name}: {e}"))
    }

    /// Every `proxy.request` / `proxy.response` / `rate_limit.exceeded` event: (seq, type, data).
    pub async fn proxy_events(&self) -> Vec<(i64, String, Value)> {
        let rows: Vec<(i64, String, Value)> = sqlx::query_as(
            "SELECT seq, type, body FROM events WHERE type IN ('proxy.request', 'proxy.response', 'rate_limit.exceeded') ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await
        .expect("read events");
        rows.into_iter()
            .map(|(seq, t, body)| (seq, t, body["data"].clone()))
            .collect()
    }

    /// The proxy events of one request id, in seq order.
    pub async fn proxy_events_for(&self, request_id: &str) -> Vec<(i64, String, Value)> {
        self.proxy_events()
            .await
            .into_iter()
            .filter(|(_, _, d)| d["request_id"] == request_id)
            .collect()
    }
}

impl Proxy<'_> {
    /// `path` below the proxy's prefix, with this credential, to finish and send.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self
            .app
            .client
            .request(method, self.app.url(&format!("{PREFIX}{path}")));
        match &self.authorization {
            Some(authorization) => request.header("Authorization", authorization),
            None => request,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.send(self.request(reqwest::Method::DELETE, path)).await
    }

    /// POST a form, as the CLI sends most changes.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.send(self.request(reqwest::Method::POST, path).form(form))
            .await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> reqwest::Response {
        request.send().await.expect("the gateway answers")
    }

    /// One HTTP/1.1 request exactly as written ([`raw`]) to `target` below the prefix, with this credential.
    pub async fn raw(
        &self,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> RawResponse {
        let mut all: Vec<(&str, &str)> = Vec::new();
        if let Some(authorization) = &self.authorization {
            all.push(("Authorization", authorization));
        }
        all.extend_from_slice(headers);
        raw(
            &self.app.address,
            method,
            &format!("{PREFIX}{target}"),
            &all,
            body,
        )
        .await
    }

    /// A websocket handshake request for `path`, with this credential and `headers`.
    pub fn websocket_request(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> tungstenite::handshake::client::Request {
        let url = format!(
            "ws://{}{PREFIX}{path}",
            self.app.address.trim_start_matches("http://")
        );
        let mut request = url.into_client_request().expect("request");
        if let Some(authorization) = &self.authorization {
            request
                .headers_mut()
                .insert("authorization", authorization.parse().unwrap());
        }
        for (name, value) in headers {
            request.headers_mut().insert(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        request
    }

    /// Open a websocket through the gateway and read it to its end; returns the text received.
    pub async fn websocket_text(&self, path: &str, headers: &[(&str, &str)]) -> String {
        let (mut socket, response) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_tungstenite::connect_async(self.websocket_request(path, headers)),
        )
        .await
        .expect("connect in time")
        .expect("upgrade");
        assert_eq!(response.status(), 101);
        let mut text = String::new();
        let read = async {
            while let Some(Ok(message)) = socket.next().await {
                match message {
                    Message::Text(t) => text.push_str(&t),
                    Message::Binary(b) if b.is_empty() => {
                        let _ = socket.close(None).await;
                    }
                    Message::Close(_) => break,
                    _ => {}
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), read)
            .await
            .expect("the stream ended in time");
        text
    }

    /// The status a websocket handshake for `path` gets (a session opened is closed at once).
    pub async fn websocket_status(&self, path: &str) -> u16 {
        match tokio_tungstenite::connect_async(self.websocket_request(path, &[])).await {
            Ok((mut socket, response)) => {
                let _ = socket.send(Message::Close(None)).await;
                response.status().as_u16()
            }
            Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
            Err(other) => panic!("{other}"),
        }
    }
}
