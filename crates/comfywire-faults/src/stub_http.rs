//! A tiny hand-written HTTP/1.1 server on `127.0.0.1:0` whose answers a
//! test scripts per request, for what the mock cannot do: `/history`
//! answering 500, 404, garbage or nothing at all during reconciliation.
//! One request per connection (`Connection: close`), which reqwest handles.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct StubReply {
    /// Status code.
    pub status: u16,
    /// Body (sent as `application/json`).
    pub body: String,
    /// Wait this long before answering (longer than the client's request
    /// timeout simulates a hung server).
    pub delay: Duration,
}

impl StubReply {
    /// A JSON answer.
    pub fn json(status: u16, body: serde_json::Value) -> StubReply {
        StubReply {
            status,
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    /// A raw answer.
    pub fn raw(status: u16, body: &str) -> StubReply {
        StubReply {
            status,
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }

    /// The same answer after `delay`.
    pub fn after(mut self, delay: Duration) -> StubReply {
        self.delay = delay;
        self
    }
}

/// Decides the answer from method and path (query included).
pub type Script = Arc<dyn Fn(&str, &str) -> StubReply + Send + Sync>;

/// A running stub server; stops when dropped.
pub struct StubServer {
    addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl StubServer {
    /// Starts serving `script`.
    pub async fn start(script: Script) -> std::io::Result<StubServer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(serve(stream, script.clone()));
            }
        });
        Ok(StubServer { addr, accept })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for StubServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn serve(mut stream: TcpStream, script: Script) {
    // Requests here are small; 64 KiB of head and body is plenty, and the
    // bound keeps a confused peer from growing the buffer.
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut words = head.split_whitespace();
    let method = words.next().unwrap_or("").to_owned();
    let path = words.next().unwrap_or("").to_owned();
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0)
        .min(64 * 1024);
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let reply = script(&method, &path);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let response = format!(
        "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
        reply.status,
        reply.body.len(),
        reply.body
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
