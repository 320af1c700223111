//! `comfywire record`: a live client's socket written in the trace format
//! (the one the golden traces, the mock and `replay` read).
//!
//! The socket is a [`comfywire_client::Client`]'s own, read through its
//! frame tap, so the URL, auth, TLS and size limits come from the same
//! settings and flags as every other command, and reconnects follow the
//! client's backoff. The trace never holds credentials: the meta's URL and
//! each `ws_open` path are written without a user, password or token.

use std::path::Path;
use std::task::Poll;
use std::time::{Duration, Instant};

use comfywire_client::{Client, ClosedBy, TapEvent, TapEventKind, without_credentials};
use comfywire_proto::Frame;
use comfywire_proto::trace::{HttpExchange, Trace, TraceEvent, TraceEventKind, TraceMeta};
use serde_json::{Map, Value, json};

use crate::args::RecordArgs;
use crate::connect_config;
use crate::exit::{self, Failure};

/// Tap events that may wait for the recorder. It reads them as they come,
/// so this only absorbs bursts; a fuller queue drops frames, counted in
/// the meta as `frames_dropped`.
const TAP_CAPACITY: usize = 1 << 16;

/// `comfywire record`.
pub async fn command(args: RecordArgs) -> Result<(), Failure> {
    let mut config = connect_config::client_config(&args.server)?;
    if let Some(id) = &args.client_id {
        config.client_id = Some(id.clone());
    }
    config.frame_tap_capacity = TAP_CAPACITY;
    let stop_at = args
        .duration
        .map(|s| {
            Duration::try_from_secs_f64(s)
                .map_err(|_| Failure::usage(format!("--duration {s}: not a number of seconds")))
        })
        .transpose()?
        .map(|d| tokio::time::Instant::now() + d);
    let url = without_credentials(&config.url);
    let client = connect_config::connect(config).await?;
    let Some(mut tap) = client.frame_tap() else {
        client.close().await;
        return Err(Failure::new(exit::FAILURE, "the client has no frame tap"));
    };
    let client_id = client.client_id();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    // One poll installs the handler, so from the "recording" line on a
    // Ctrl-C ends the recording instead of the process.
    let interrupted =
        std::future::poll_fn(|cx| Poll::Ready(ctrl_c.as_mut().poll(cx).is_ready())).await;
    eprintln!(
        "recording {url} as client {client_id} into {} (Ctrl-C to stop)",
        args.out.display()
    );
    let mut recorder = Recorder::default();
    let sleep_until = async move {
        match stop_at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep_until);
    if !interrupted {
        loop {
            tokio::select! {
                _ = &mut ctrl_c => break,
                () = &mut sleep_until => break,
                event = tap.recv() => match event {
                    Some(event) => recorder.take(event),
                    None => break,
                },
            }
        }
    }
    // What is already tapped names the prompts whose history to fetch;
    // the socket stays open meanwhile, and what it still brings is kept.
    while let Some(event) = tap.try_recv() {
        recorder.take(event);
    }
    recorder.fetch_history(&client).await;
    // From here the socket closes because we close it.
    recorder.closing = true;
    client.close().await;
    // The tap ends with the client: the last event is the socket's close.
    while let Some(event) = tap.recv().await {
        recorder.take(event);
    }
    let dropped = tap.dropped();
    if dropped > 0 {
        eprintln!("warning: {dropped} frame(s) were dropped (the recorder fell behind)");
    }
    let (events, sockets, prompts) = (
        recorder.events.len(),
        recorder.sockets,
        recorder.prompt_ids.len(),
    );
    let trace = recorder.finish(&args.out, &url, &client_id, dropped);
    std::fs::write(&args.out, trace.to_jsonl())
        .map_err(|e| Failure::new(exit::FAILURE, format!("{}: {e}", args.out.display())))?;
    eprintln!(
        "wrote {} ({events} events, {sockets} socket(s), {prompts} prompt(s))",
        args.out.display()
    );
    Ok(())
}

/// `ws://host:port/prefix/ws?clientId=…` → `/prefix/ws?clientId=…`, the
/// trace's `ws_open` path.
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    match rest.find('/') {
        Some(i) => rest[i..].to_owned(),
        None => "/".to_owned(),
    }
}

/// Whether a text frame is the `feature_flags` message.
fn is_feature_flags(text: &str) -> bool {
    serde_json::from_str::<Value>(text)
        .is_ok_and(|v| v.get("type").and_then(Value::as_str) == Some("feature_flags"))
}

#[derive(Default)]
struct Recorder {
    /// The first tap event (the first socket opening): trace time zero.
    started: Option<Instant>,
    events: Vec<TraceEvent>,
    prompt_ids: Vec<String>,
    sockets: u32,
    feature_flags_sent: bool,
    /// Set once the recording ends: a socket closing then is not news.
    closing: bool,
}

impl Recorder {
    fn t_ms(&mut self, at: Instant) -> f64 {
        let started = *self.started.get_or_insert(at);
        at.saturating_duration_since(started).as_secs_f64() * 1000.0
    }

    fn push(&mut self, at: Instant, kind: TraceEventKind) {
        let t_ms = self.t_ms(at);
        self.events.push(TraceEvent {
            t_ms,
            client: None,
            kind,
        });
    }

    /// One tap event as a trace event.
    fn take(&mut self, event: TapEvent) {
        let conn = event.conn;
        let kind = match event.kind {
            TapEventKind::Opened { url, client_id } => {
                self.sockets += 1;
                TraceEventKind::WsOpen {
                    conn,
                    path: path_of(&url),
                    client_id,
                }
            }
            TapEventKind::Received(Frame::Text(bytes)) => {
                let data = String::from_utf8_lossy(&bytes).into_owned();
                self.note_prompt(&data);
                TraceEventKind::Text {
                    conn,
                    received: true,
                    data,
                }
            }
            TapEventKind::Received(Frame::Binary(data)) => TraceEventKind::Binary { conn, data },
            TapEventKind::Sent(Frame::Text(bytes)) => {
                let data = String::from_utf8_lossy(&bytes).into_owned();
                self.feature_flags_sent |= is_feature_flags(&data);
                TraceEventKind::Text {
                    conn,
                    received: false,
                    data,
                }
            }
            TapEventKind::Closed { by, code } => {
                match by {
                    _ if self.closing => {}
                    ClosedBy::Server => {
                        eprintln!("socket {conn} closed by the server; reconnecting")
                    }
                    ClosedBy::Error => eprintln!("socket {conn} failed; reconnecting"),
                    _ => {}
                }
                TraceEventKind::WsClose {
                    conn,
                    by: by.as_str().to_owned(),
                    code,
                }
            }
            // The trace format has no sent binary frames (the client sends
            // none), and nothing else a tap may add later.
            _ => return,
        };
        self.push(event.at, kind);
    }

    /// Prompts are learnt from `execution_start`, since this recorder did
    /// not submit them.
    fn note_prompt(&mut self, text: &str) {
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            return;
        };
        if value.get("type").and_then(Value::as_str) != Some("execution_start") {
            return;
        }
        if let Some(id) = value.pointer("/data/prompt_id").and_then(Value::as_str) {
            if !self.prompt_ids.iter().any(|p| p == id) {
                self.prompt_ids.push(id.to_owned());
            }
        }
    }

    /// Records each seen prompt's `/history` entry, so a replay can settle
    /// prompts whose end was not on the socket and compare outcomes.
    async fn fetch_history(&mut self, client: &Client) {
        for id in self.prompt_ids.clone() {
            let t_ms = self.t_ms(Instant::now());
            if let Ok(entry) = client.server_history(&id).await {
                let mut body = Map::new();
                if let Some(entry) = entry {
                    body.insert(id.clone(), entry);
                }
                let t_done_ms = self.t_ms(Instant::now());
                self.events.push(TraceEvent {
                    t_ms,
                    client: None,
                    kind: TraceEventKind::Http(HttpExchange {
                        method: "GET".into(),
                        path: format!("/history/{id}"),
                        request: None,
                        status: 200,
                        response: Some(Value::Object(body)),
                        response_text: None,
                        t_done_ms,
                    }),
                });
            }
        }
    }

    /// The trace, events sorted by time (the history requests ran while
    /// the socket was still open).
    fn finish(mut self, out: &Path, url: &str, client_id: &str, dropped: u64) -> Trace {
        self.events.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
        let scenario = out
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("recording")
            .to_owned();
        let mut extra = Map::new();
        extra.insert(
            "recorded_by".into(),
            json!(concat!("comfywire record ", env!("CARGO_PKG_VERSION"))),
        );
        extra.insert("server".into(), json!({ "url": url }));
        if dropped > 0 {
            extra.insert("frames_dropped".into(), json!(dropped));
        }
        Trace {
            meta: TraceMeta {
                scenario,
                client_id: Some(client_id.to_owned()),
                notes: "recorded live by `comfywire record`".into(),
                feature_flags_sent: self.feature_flags_sent,
                prompt_ids: self.prompt_ids,
                extra,
            },
            events: self.events,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_paths_keep_prefix_and_query() {
        assert_eq!(
            path_of("ws://127.0.0.1:8188/ws?clientId=abc"),
            "/ws?clientId=abc"
        );
        assert_eq!(
            path_of("wss://example.org/comfy/ws?clientId=c"),
            "/comfy/ws?clientId=c"
        );
        assert_eq!(path_of("ws://host"), "/");
    }
}
