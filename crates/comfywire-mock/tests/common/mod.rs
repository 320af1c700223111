//! Helpers shared by the integration tests: a WebSocket client and HTTP calls.
#![allow(dead_code, clippy::unwrap_used)]

use comfywire_mock::MockServer;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const WAIT: Duration = Duration::from_secs(10);

pub async fn connect(server: &MockServer, client_id: Option<&str>) -> Ws {
    let url = match client_id {
        Some(id) => format!("ws://{}/ws?clientId={id}", server.addr()),
        None => format!("ws://{}/ws", server.addr()),
    };
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("connect in time")
        .expect("connect");
    ws
}

/// Connects and reads the greeting `status`, returning the socket and its sid.
pub async fn connect_ready(server: &MockServer, client_id: &str) -> Ws {
    let mut ws = connect(server, Some(client_id)).await;
    let status = next_json(&mut ws).await;
    assert_eq!(status["type"], "status");
    ws
}

pub async fn send_flags(ws: &mut Ws) {
    ws.send(Message::text(
        r#"{"type":"feature_flags","data":{"supports_preview_metadata":true}}"#,
    ))
    .await
    .expect("send flags");
}

/// The next text or binary frame; `None` when the socket ends.
pub async fn next_frame(ws: &mut Ws) -> Option<Message> {
    loop {
        let message = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("frame in time");
        match message {
            Some(Ok(Message::Text(_) | Message::Binary(_))) => return message.and_then(Result::ok),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            _ => return None,
        }
    }
}

pub async fn next_json(ws: &mut Ws) -> Value {
    loop {
        match next_frame(ws).await.expect("socket open") {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON text frame"),
            _ => continue,
        }
    }
}

/// Every frame up to and including `executing {node: null, prompt_id}`.
pub async fn read_until_end(ws: &mut Ws, prompt_id: &str) -> Vec<Message> {
    let mut frames = Vec::new();
    loop {
        let frame = next_frame(ws).await.expect("socket open until the end");
        let done = match &frame {
            Message::Text(text) => {
                let value: Value = serde_json::from_str(text).expect("JSON");
                value["type"] == "executing"
                    && value["data"]["node"].is_null()
                    && value["data"]["prompt_id"] == prompt_id
            }
            _ => false,
        };
        frames.push(frame);
        if done {
            return frames;
        }
    }
}

pub fn text_types(frames: &[Message]) -> Vec<String> {
    frames
        .iter()
        .map(|m| match m {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(t).expect("JSON");
                v["type"].as_str().unwrap_or_default().to_owned()
            }
            Message::Binary(b) => format!("bin{}", u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
            _ => String::new(),
        })
        .collect()
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(WAIT)
        .build()
        .expect("client")
}

pub async fn post(server: &MockServer, path: &str, body: Value) -> (u16, Value) {
    let response = http()
        .post(format!("{}{path}", server.url()))
        .json(&body)
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub async fn get(server: &MockServer, path: &str) -> (u16, Value) {
    let response = http()
        .get(format!("{}{path}", server.url()))
        .send()
        .await
        .expect("GET");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Submits `graph` for `client_id`; returns the new prompt id.
pub async fn submit(server: &MockServer, graph: &Value, client_id: &str) -> String {
    let (status, body) = post(
        server,
        "/prompt",
        json!({"prompt": graph, "client_id": client_id}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["prompt_id"].as_str().expect("prompt_id").to_owned()
}

pub async fn fast_server() -> MockServer {
    let server = MockServer::start().await.expect("server starts");
    server.set_speed(0.0);
    server
}
