//! Bounded time for a connection's request head (slowloris): a client that
//! sends half a head, or nothing, is disconnected after
//! `HEADER_READ_TIMEOUT_SECONDS`; complete requests, kept-alive connections
//! and websocket upgrades (which outlive the head deadline) still work.

use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Rack, Role, TestApp};

/// Read until the server closes; `None` when it has not closed within `within`.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, within: Duration) -> Option<String> {
    let mut answer = Vec::new();
    match tokio::time::timeout(within, stream.read_to_end(&mut answer)).await {
        Ok(_) => Some(String::from_utf8_lossy(&answer).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_head_is_disconnected_and_upgrades_still_work() {
    let rack = Rack::start().await;
    let app = TestApp::build()
        .rack(&rack.url())
        .env("HEADER_READ_TIMEOUT_SECONDS", "1")
        .spawn()
        .await;
    let host = app.address.trim_start_matches("http://").to_owned();

    // Half a head, then silence; and a connection that sends nothing at all.
    let mut half = tokio::net::TcpStream::connect(&host).await.unwrap();
    half.write_all(format!("GET /api/v1/info HTTP/1.1\r\nHost: {host}\r\nX-Slow: ").as_bytes())
        .await
        .unwrap();
    let mut silent = tokio::net::TcpStream::connect(&host).await.unwrap();
    // Far beyond the 1 s deadline: without one, neither would ever be closed.
    let bound = Duration::from_secs(20);
    let answer = read_until_closed(&mut half, bound)
        .await
        .expect("the half-sent head was not disconnected");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert!(
        read_until_closed(&mut silent, bound).await.is_some(),
        "a connection that sent nothing was not disconnected"
    );

    // A complete request still gets its answer, and a kept-alive connection
    // serves a second request sent promptly.
    let mut kept = tokio::net::TcpStream::connect(&host).await.unwrap();
    let mut answers = String::new();
    for close in ["", "Connection: close\r\n"] {
        kept.write_all(format!("GET /health HTTP/1.1\r\nHost: {host}\r\n{close}\r\n").as_bytes())
            .await
            .unwrap();
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(bound, kept.read(&mut chunk))
            .await
            .expect("answered")
            .unwrap();
        answers.push_str(&String::from_utf8_lossy(&chunk[..n]));
    }
    assert_eq!(answers.matches("HTTP/1.1 200").count(), 2, "{answers}");

    // A followed log stream is a websocket: it lives on well past the head
    // deadline (one line a second from the mock rack).
    let deployer = app.token(Role::Deployer).await;
    let request = app
        .proxy(&deployer)
        .websocket_request("/apps/myapp/logs", &[]);
    let (mut socket, response) =
        tokio::time::timeout(bound, tokio_tungstenite::connect_async(request))
            .await
            .expect("upgraded in time")
            .expect("upgrade");
    assert_eq!(response.status(), 101);
    let mut lines = 0;
    let read = async {
        while let Some(message) = socket.next().await {
            match message {
                Ok(Message::Text(_)) | Ok(Message::Binary(_)) => {
                    lines += 1;
                    if lines == 3 {
                        return true;
                    }
                }
                Ok(Message::Close(_)) | Err(_) => return false,
                Ok(_) => {}
            }
        }
        false
    };
    assert!(
        tokio::time::timeout(bound, read).await.unwrap_or(false),
        "the followed log stream ended after {lines} lines"
    );
}
