//! `comfywire record`: a live socket written in the trace format (the
//! one the golden traces, the mock and `replay` read), over a raw
//! tokio-tungstenite connection because the client does not hand out
//! frames.

use std::path::Path;
use std::time::{Duration, Instant};

use comfywire_client::{ClientConfig, new_client_id};
use comfywire_proto::trace::{HttpExchange, Trace, TraceEvent, TraceEventKind, TraceMeta};
use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::args::RecordArgs;
use crate::connect_config;
use crate::exit::{self, Failure};

/// `comfywire record`.
pub async fn command(args: RecordArgs) -> Result<(), Failure> {
    let config = connect_config::client_config(&args.server)?;
    let client_id = args
        .client_id
        .clone()
        .or_else(|| config.client_id.clone())
        .unwrap_or_else(new_client_id);
    let ws_url = ws_url(&config.url, &client_id)?;
    let stop_at = args
        .duration
        .map(|s| {
            Duration::try_from_secs_f64(s)
                .map_err(|_| Failure::usage(format!("--duration {s}: not a number of seconds")))
        })
        .transpose()?
        .map(|d| tokio::time::Instant::now() + d);
    let mut recorder = Recorder::new();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let sleep_until = async move {
        match stop_at {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep_until);
    eprintln!(
        "recording {ws_url} into {} (Ctrl-C to stop)",
        args.out.display()
    );
    let mut conn = 0u32;
    'sockets: loop {
        let path = format!("/ws?clientId={client_id}");
        let socket = tokio::select! {
            _ = &mut ctrl_c => break 'sockets,
            _ = &mut sleep_until => break 'sockets,
            socket = tokio_tungstenite::connect_async(ws_url.as_str()) => socket,
        };
        let mut socket = match socket {
            Ok((socket, _)) => socket,
            Err(e) if conn == 0 => {
                return Err(Failure::new(
                    exit::CONNECTION,
                    format!("cannot connect to {ws_url}: {e}"),
                ));
            }
            Err(e) => {
                // Keep trying on the same clientId, the way a client would.
                eprintln!("reconnect failed: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        conn += 1;
        recorder.push(TraceEventKind::WsOpen {
            conn,
            path,
            client_id: Some(client_id.clone()),
        });
        loop {
            tokio::select! {
                _ = &mut ctrl_c => {
                    let _ = socket.close(None).await;
                    recorder.push(TraceEventKind::WsClose { conn, by: "client".into(), code: Some(1000) });
                    break 'sockets;
                }
                _ = &mut sleep_until => {
                    let _ = socket.close(None).await;
                    recorder.push(TraceEventKind::WsClose { conn, by: "client".into(), code: Some(1000) });
                    break 'sockets;
                }
                message = socket.next() => match message {
                    Some(Ok(Message::Text(text))) => {
                        recorder.note_prompt(text.as_str());
                        recorder.push(TraceEventKind::Text { conn, received: true, data: text.as_str().to_owned() });
                    }
                    Some(Ok(Message::Binary(data))) => recorder.push(TraceEventKind::Binary { conn, data }),
                    Some(Ok(Message::Close(frame))) => {
                        recorder.push(TraceEventKind::WsClose { conn, by: "server".into(), code: frame.map(|f| u16::from(f.code)) });
                        break;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        eprintln!("socket failed: {e}; reconnecting");
                        recorder.push(TraceEventKind::WsClose { conn, by: "error".into(), code: None });
                        break;
                    }
                    None => {
                        recorder.push(TraceEventKind::WsClose { conn, by: "error".into(), code: None });
                        break;
                    }
                }
            }
        }
    }
    recorder.fetch_history(&config).await;
    let frames = recorder.events.len();
    let prompts = recorder.prompt_ids.len();
    let trace = recorder.finish(&args.out, &config.url, &client_id);
    std::fs::write(&args.out, trace.to_jsonl())
        .map_err(|e| Failure::new(exit::FAILURE, format!("{}: {e}", args.out.display())))?;
    eprintln!(
        "wrote {} ({frames} events, {conn} socket(s), {prompts} prompt(s))",
        args.out.display()
    );
    Ok(())
}

/// `http://host:port/prefix` → `ws://host:port/prefix/ws?clientId=…`.
fn ws_url(base: &str, client_id: &str) -> Result<String, Failure> {
    let base = base.trim_end_matches('/');
    let rest = if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if base.starts_with("ws://") || base.starts_with("wss://") {
        base.to_owned()
    } else {
        return Err(Failure::usage(format!(
            "{base}: expected an http:// or https:// URL"
        )));
    };
    Ok(format!("{rest}/ws?clientId={client_id}"))
}

struct Recorder {
    started: Option<Instant>,
    events: Vec<TraceEvent>,
    prompt_ids: Vec<String>,
}

impl Recorder {
    fn new() -> Recorder {
        Recorder {
            started: None,
            events: Vec::new(),
            prompt_ids: Vec::new(),
        }
    }

    /// Times count from the first socket open, as in the golden traces.
    fn t_ms(&mut self) -> f64 {
        let started = *self.started.get_or_insert_with(Instant::now);
        started.elapsed().as_secs_f64() * 1000.0
    }

    fn push(&mut self, kind: TraceEventKind) {
        let t_ms = self.t_ms();
        self.events.push(TraceEvent {
            t_ms,
            client: None,
            kind,
        });
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
    async fn fetch_history(&mut self, config: &ClientConfig) {
        if self.prompt_ids.is_empty() {
            return;
        }
        let Ok(client) = connect_config::start(config.clone()).await else {
            return;
        };
        for id in self.prompt_ids.clone() {
            let t_ms = self.t_ms();
            if let Ok(entry) = client.server_history(&id).await {
                let mut body = Map::new();
                if let Some(entry) = entry {
                    body.insert(id.clone(), entry);
                }
                let t_done_ms = self.t_ms();
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
        client.close().await;
    }

    fn finish(self, out: &Path, url: &str, client_id: &str) -> Trace {
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
        Trace {
            meta: TraceMeta {
                scenario,
                client_id: Some(client_id.to_owned()),
                notes: "recorded live by `comfywire record`".into(),
                feature_flags_sent: false,
                prompt_ids: self.prompt_ids,
                extra,
            },
            events: self.events,
        }
    }
}
