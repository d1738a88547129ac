//! A Yubico validation server (protocol 2.0) for dev and tests.
//!
//! It knows its clients' API secrets and its keys' AES secrets, and answers
//! `GET /wsapi/2.0/verify?id=&otp=&nonce=&h=` as YubiCloud does: it refuses a
//! request not signed by the client's secret (`BAD_SIGNATURE`), an unknown
//! client (`NO_SUCH_CLIENT`), an OTP that does not decrypt under its key
//! (`BAD_OTP`), and one whose counters are not above the last accepted
//! (`REPLAYED_OTP`); every answer is signed and echoes the OTP and nonce.
//! [`MockYubico::mint`] types an OTP for a key, for tests; `--test-controls`
//! lets a test ask for a badly signed answer (`mock_bad_signature=1`).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use tools::mock_yubico::{MockYubico, TestKey};
//! let server = MockYubico::bind("127.0.0.1:0".parse()?, "87", "c2VjcmV0", vec![TestKey::dev(0)]).await?;
//! let otp = server.mint(&TestKey::dev(0).public_id)?;
//! let handle = server.spawn(); // stops on `handle.shutdown().await` or when dropped
//! # handle.shutdown().await?; Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use yubico_otp::{Answer, Otp, Status, Token};

/// One YubiKey the server knows: its public id and secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestKey {
    /// 12 modhex characters, typed first in every OTP.
    pub public_id: String,
    pub aes_key: [u8; 16],
    pub private_id: [u8; 6],
}

impl TestKey {
    /// A deterministic dev key `n` (public id `ccccccccccc` + a modhex digit).
    pub fn dev(n: u8) -> TestKey {
        let digit = b"cbdefghijklnrtuv"[(n & 0xf) as usize] as char;
        TestKey {
            public_id: format!("ccccccccccc{digit}"),
            aes_key: [n.wrapping_add(0x40); 16],
            private_id: [n, 1, 2, 3, 4, 5],
        }
    }

    /// Parse `PUBLICID:AESKEYHEX:PRIVATEIDHEX` (the `--key` flag).
    pub fn parse(text: &str) -> Result<TestKey, String> {
        let mut parts = text.split(':');
        let (Some(public_id), Some(aes), Some(private), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!(
                "{text:?}: expected PUBLICID:AESKEYHEX:PRIVATEIDHEX"
            ));
        };
        let aes_key: [u8; 16] = hex::decode(aes)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("{text:?}: the AES key is 32 hex characters"))?;
        let private_id: [u8; 6] = hex::decode(private)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("{text:?}: the private id is 12 hex characters"))?;
        if yubico_otp::otp::modhex_decode(public_id).is_none_or(|b| b.len() != 6) {
            return Err(format!("{text:?}: the public id is 12 modhex characters"));
        }
        Ok(TestKey {
            public_id: public_id.to_owned(),
            aes_key,
            private_id,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MockYubicoError {
    #[error("bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("serve: {0}")]
    Serve(std::io::Error),
    #[error("server task: {0}")]
    Join(#[from] tokio::task::JoinError),
    #[error("no such key {0}")]
    NoSuchKey(String),
    #[error("{0}")]
    Otp(#[from] yubico_otp::OtpError),
}

struct Shared {
    client_id: String,
    secret: String,
    test_controls: bool,
    keys: HashMap<String, TestKey>,
    /// Per public id: the last counters accepted, and the next the minter types.
    state: Mutex<HashMap<String, KeyState>>,
}

#[derive(Default, Clone, Copy)]
struct KeyState {
    accepted: Option<(u16, u8)>,
    minted: u32,
}

/// A bound, not yet serving, validation server.
pub struct MockYubico {
    listener: TcpListener,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
}

impl MockYubico {
    /// Bind `addr` (port 0 picks a free port) for one client id and its base64 secret.
    pub async fn bind(
        addr: SocketAddr,
        client_id: &str,
        secret_b64: &str,
        keys: Vec<TestKey>,
    ) -> Result<MockYubico, MockYubicoError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| MockYubicoError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| MockYubicoError::Bind { addr, source })?;
        Ok(MockYubico {
            listener,
            local_addr,
            shared: Arc::new(Shared {
                client_id: client_id.to_owned(),
                secret: secret_b64.to_owned(),
                test_controls: false,
                keys: keys.into_iter().map(|k| (k.public_id.clone(), k)).collect(),
                state: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Honour `mock_bad_signature=1` on a request (tests of the client's checks).
    pub fn with_test_controls(mut self) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.test_controls = true;
        }
        self
    }

    /// The API URL (`YUBICO_API_URL`) to reach it from this machine.
    pub fn url(&self) -> String {
        format!("http://{}/wsapi/2.0/verify", self.local_addr)
    }

    /// A fresh, valid OTP of a known key (its counters increase each time).
    pub fn mint(&self, public_id: &str) -> Result<String, MockYubicoError> {
        mint(&self.shared, public_id)
    }

    /// Serve until `shutdown` completes.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), MockYubicoError> {
        axum::serve(self.listener, router(self.shared))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(MockYubicoError::Serve)
    }

    /// Serve on a background task; stops on [`MockYubicoHandle::shutdown`] or when dropped.
    pub fn spawn(self) -> MockYubicoHandle {
        let (tx, rx) = oneshot::channel::<()>();
        let url = self.url();
        let shared = self.shared.clone();
        let task = tokio::spawn(self.run(async move {
            let _ = rx.await;
        }));
        MockYubicoHandle {
            url,
            shared,
            stop: Some(tx),
            task: Some(task),
        }
    }
}

/// A validation server serving on a background task.
pub struct MockYubicoHandle {
    url: String,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), MockYubicoError>>>,
}

impl MockYubicoHandle {
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// A fresh, valid OTP of a known key.
    pub fn mint(&self, public_id: &str) -> Result<String, MockYubicoError> {
        mint(&self.shared, public_id)
    }

    pub async fn shutdown(mut self) -> Result<(), MockYubicoError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }
}

impl Drop for MockYubicoHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn mint(shared: &Shared, public_id: &str) -> Result<String, MockYubicoError> {
    let key = shared
        .keys
        .get(public_id)
        .ok_or_else(|| MockYubicoError::NoSuchKey(public_id.to_owned()))?;
    let n = {
        let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        let entry = state.entry(public_id.to_owned()).or_default();
        entry.minted += 1;
        entry.minted
    };
    // Counters as a key that is plugged in once and pressed n times.
    let token = Token {
        private_id: key.private_id,
        use_counter: 1,
        timestamp: n.wrapping_mul(8) & 0x00ff_ffff,
        session_counter: u8::try_from(n.min(255)).unwrap_or(u8::MAX),
        random: (n as u16).wrapping_mul(40503),
    };
    Ok(Otp::mint(&key.public_id, &key.aes_key, &token)?)
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/wsapi/2.0/verify", get(verify))
        .with_state(shared)
}

async fn verify(
    State(shared): State<Arc<Shared>>,
    Query(params): Query<BTreeMap<String, String>>,
) -> String {
    let otp = params.get("otp").cloned().unwrap_or_default();
    let nonce = params.get("nonce").cloned().unwrap_or_default();
    let status = judge(&shared, &params, &otp);
    let timestamp = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%SZ0%3f")
        .to_string();
    let answer = Answer::signed(&shared.secret, &otp, &nonce, status, &timestamp);
    match answer {
        Ok(mut answer) => {
            if shared.test_controls
                && params.get("mock_bad_signature").map(String::as_str) == Some("1")
            {
                if let Some((_, h)) = answer.pairs.iter_mut().find(|(k, _)| k == "h") {
                    *h = "AAAAAAAAAAAAAAAAAAAAAAAAAAA=".into();
                }
            }
            answer.body()
        }
        Err(_) => "status=BACKEND_ERROR\r\n".into(),
    }
}

fn judge(shared: &Shared, params: &BTreeMap<String, String>, otp: &str) -> Status {
    let (Some(id), Some(_), Some(_)) = (params.get("id"), params.get("nonce"), params.get("otp"))
    else {
        return Status::MissingParameter;
    };
    if *id != shared.client_id {
        return Status::NoSuchClient;
    }
    // Only the protocol's own parameters are signed (test controls are not).
    let signed: Vec<(&str, &str)> = params
        .iter()
        .filter(|(k, _)| !k.starts_with("mock_"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if !yubico_otp::protocol::signature_holds(&shared.secret, &signed) {
        return Status::BadSignature;
    }
    let Ok(parsed) = Otp::parse(otp) else {
        return Status::BadOtp;
    };
    let Some(key) = shared.keys.get(&parsed.public_id) else {
        return Status::BadOtp;
    };
    let Ok(token) = parsed.decrypt(&key.aes_key, &key.private_id) else {
        return Status::BadOtp;
    };
    let mut state = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    let entry = state.entry(key.public_id.clone()).or_default();
    if entry.accepted.is_some_and(|last| token.counter() <= last) {
        return Status::ReplayedOtp;
    }
    entry.accepted = Some(token.counter());
    Status::Ok
}
