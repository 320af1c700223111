//! The recorded-session format (JSON Lines) that the golden traces, the mock
//! server and `comfywire record` share.
//!
//! Line 1 is `{"meta": {...}}`; every later line is one event sorted by
//! `t_ms` (milliseconds on a monotonic clock since the first socket opened).
//! Reading and writing are pure: callers hand in or take out strings.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A whole recorded session.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The first line of the file.
    pub meta: TraceMeta,
    /// Every later line, in file order.
    pub events: Vec<TraceEvent>,
}

/// The `meta` object of a trace's first line.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TraceMeta {
    /// Scenario name (the file name without extension).
    #[serde(default)]
    pub scenario: String,
    /// The client id of the primary recording client.
    #[serde(default)]
    pub client_id: Option<String>,
    /// What the scenario does.
    #[serde(default)]
    pub notes: String,
    /// Whether the client sent `feature_flags` on each socket.
    #[serde(default)]
    pub feature_flags_sent: bool,
    /// Prompt ids in submission order.
    #[serde(default)]
    pub prompt_ids: Vec<String>,
    /// Every other key, kept as recorded.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One event line.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceEvent {
    /// Milliseconds since the first socket opened.
    pub t_ms: f64,
    /// `"primary"` or `"other"` in multi-client scenarios.
    pub client: Option<String>,
    /// What happened.
    pub kind: TraceEventKind,
}

/// What a trace event records.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceEventKind {
    /// A text frame; `received` is false for frames the client sent.
    Text {
        /// Socket ordinal (1-based).
        conn: u32,
        /// True for server → client.
        received: bool,
        /// The exact frame text.
        data: String,
    },
    /// A binary frame received from the server.
    Binary {
        /// Socket ordinal (1-based).
        conn: u32,
        /// The whole frame payload.
        data: Bytes,
    },
    /// One HTTP request and its response.
    Http(HttpExchange),
    /// A socket finished opening.
    WsOpen {
        /// Socket ordinal (1-based).
        conn: u32,
        /// Path as requested, with query.
        path: String,
        /// The `clientId` in the URL, if any.
        client_id: Option<String>,
    },
    /// A socket closed.
    WsClose {
        /// Socket ordinal (1-based).
        conn: u32,
        /// `client`, `server` or `error`.
        by: String,
        /// The close code, if any.
        code: Option<u16>,
    },
    /// An out-of-band action of the recorder.
    Marker {
        /// What was done.
        what: String,
        /// The whole line, for details.
        details: Value,
    },
}

/// A recorded HTTP call.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpExchange {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path with query.
    pub path: String,
    /// JSON request body, if any.
    pub request: Option<Value>,
    /// HTTP status code.
    pub status: u16,
    /// JSON response body, if it was JSON.
    pub response: Option<Value>,
    /// Non-JSON response body text.
    pub response_text: Option<String>,
    /// When the response body arrived.
    pub t_done_ms: f64,
}

/// Why a trace could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// The file has no first line.
    #[error("trace is empty")]
    Empty,
    /// A line is not valid JSON or misses a required field.
    #[error("trace line {line}: {message}")]
    BadLine {
        /// 1-based line number.
        line: usize,
        /// What was wrong.
        message: String,
    },
}

#[derive(Deserialize)]
struct RawMetaLine {
    meta: TraceMeta,
}

#[derive(Deserialize, Serialize)]
struct RawEvent {
    t_ms: f64,
    dir: String,
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    conn: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    len: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    b64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    request: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    t_done_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    what: Option<String>,
}

impl Trace {
    /// Reads a whole trace from its JSON Lines text.
    pub fn parse(text: &str) -> Result<Trace, TraceError> {
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty());
        let (_, first) = lines.next().ok_or(TraceError::Empty)?;
        let meta: RawMetaLine = serde_json::from_str(first).map_err(|e| TraceError::BadLine {
            line: 1,
            message: e.to_string(),
        })?;
        let mut events = Vec::new();
        for (index, line) in lines {
            events.push(
                TraceEvent::parse_line(line).map_err(|message| TraceError::BadLine {
                    line: index + 1,
                    message,
                })?,
            );
        }
        Ok(Trace {
            meta: meta.meta,
            events,
        })
    }

    /// Writes the trace back as JSON Lines.
    pub fn to_jsonl(&self) -> String {
        let mut out = self.meta.to_json_line();
        out.push('\n');
        for event in &self.events {
            out.push_str(&event.to_json_line());
            out.push('\n');
        }
        out
    }

    /// The last successful `GET /history/{id}` answer recorded for each prompt
    /// id, in the order the prompts were first answered.
    pub fn final_history(&self) -> Vec<(String, Value)> {
        let mut found: Vec<(String, Value)> = Vec::new();
        for event in &self.events {
            let TraceEventKind::Http(http) = &event.kind else {
                continue;
            };
            if http.method != "GET" || !http.path.contains("/history/") || http.status != 200 {
                continue;
            }
            let Some(Value::Object(map)) = &http.response else {
                continue;
            };
            for (id, entry) in map {
                match found.iter_mut().find(|(known, _)| known == id) {
                    Some(slot) => slot.1 = entry.clone(),
                    None => found.push((id.clone(), entry.clone())),
                }
            }
        }
        found
    }
}

impl TraceMeta {
    /// The first line of a trace file.
    pub fn to_json_line(&self) -> String {
        serde_json::json!({ "meta": self }).to_string()
    }
}

impl TraceEvent {
    /// Reads one event line.
    pub fn parse_line(line: &str) -> Result<TraceEvent, String> {
        let raw: RawEvent = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let conn = raw.conn.unwrap_or(0);
        let missing = |field: &str| format!("{} event without `{field}`", raw.kind);
        let kind = match raw.kind.as_str() {
            "text" => TraceEventKind::Text {
                conn,
                received: raw.dir == "recv",
                data: raw.data.clone().ok_or_else(|| missing("data"))?,
            },
            "binary" => {
                let b64 = raw.b64.as_deref().ok_or_else(|| missing("b64"))?;
                let data = BASE64
                    .decode(b64)
                    .map_err(|e| format!("binary event with bad base64: {e}"))?;
                if let Some(len) = raw.len {
                    if len != data.len() {
                        return Err(format!(
                            "binary event says len {len} but carries {} bytes",
                            data.len()
                        ));
                    }
                }
                TraceEventKind::Binary {
                    conn,
                    data: Bytes::from(data),
                }
            }
            "http" => TraceEventKind::Http(HttpExchange {
                method: raw.method.clone().ok_or_else(|| missing("method"))?,
                path: raw.path.clone().ok_or_else(|| missing("path"))?,
                request: raw.request.clone().filter(|v| !v.is_null()),
                status: raw.status.ok_or_else(|| missing("status"))?,
                response: raw.response.clone().filter(|v| !v.is_null()),
                response_text: raw.response_text.clone(),
                t_done_ms: raw.t_done_ms.unwrap_or(raw.t_ms),
            }),
            "ws_open" => TraceEventKind::WsOpen {
                conn,
                path: raw.path.clone().unwrap_or_default(),
                client_id: raw.client_id.clone(),
            },
            "ws_close" => TraceEventKind::WsClose {
                conn,
                by: raw.by.clone().unwrap_or_default(),
                code: raw.code,
            },
            "marker" => TraceEventKind::Marker {
                what: raw.what.clone().unwrap_or_default(),
                details: serde_json::from_str(line).map_err(|e| e.to_string())?,
            },
            other => return Err(format!("unknown event kind `{other}`")),
        };
        Ok(TraceEvent {
            t_ms: raw.t_ms,
            client: raw.client,
            kind,
        })
    }

    /// Writes the event as one JSON line.
    pub fn to_json_line(&self) -> String {
        let mut raw = RawEvent {
            t_ms: self.t_ms,
            dir: String::new(),
            kind: String::new(),
            client: self.client.clone(),
            conn: None,
            data: None,
            len: None,
            b64: None,
            method: None,
            path: None,
            request: None,
            status: None,
            response: None,
            response_text: None,
            t_done_ms: None,
            client_id: None,
            by: None,
            code: None,
            what: None,
        };
        match &self.kind {
            TraceEventKind::Text {
                conn,
                received,
                data,
            } => {
                raw.dir = if *received { "recv" } else { "send" }.into();
                raw.kind = "text".into();
                raw.conn = Some(*conn);
                raw.data = Some(data.clone());
            }
            TraceEventKind::Binary { conn, data } => {
                raw.dir = "recv".into();
                raw.kind = "binary".into();
                raw.conn = Some(*conn);
                raw.len = Some(data.len());
                raw.b64 = Some(BASE64.encode(data));
            }
            TraceEventKind::Http(http) => {
                raw.dir = "send".into();
                raw.kind = "http".into();
                raw.method = Some(http.method.clone());
                raw.path = Some(http.path.clone());
                raw.request = Some(http.request.clone().unwrap_or(Value::Null));
                raw.status = Some(http.status);
                raw.response = Some(http.response.clone().unwrap_or(Value::Null));
                raw.response_text = http.response_text.clone();
                raw.t_done_ms = Some(http.t_done_ms);
            }
            TraceEventKind::WsOpen {
                conn,
                path,
                client_id,
            } => {
                raw.dir = "local".into();
                raw.kind = "ws_open".into();
                raw.conn = Some(*conn);
                raw.path = Some(path.clone());
                raw.client_id = client_id.clone();
            }
            TraceEventKind::WsClose { conn, by, code } => {
                raw.dir = "local".into();
                raw.kind = "ws_close".into();
                raw.conn = Some(*conn);
                raw.by = Some(by.clone());
                raw.code = *code;
            }
            TraceEventKind::Marker { what, details } => {
                if let Value::Object(map) = details {
                    let mut map = map.clone();
                    map.insert("t_ms".into(), self.t_ms.into());
                    map.insert("dir".into(), "local".into());
                    map.insert("kind".into(), "marker".into());
                    map.insert("what".into(), what.clone().into());
                    return Value::Object(map).to_string();
                }
                raw.dir = "local".into();
                raw.kind = "marker".into();
                raw.what = Some(what.clone());
            }
        }
        serde_json::to_string(&raw).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_kind() {
        let text = concat!(
            r#"{"meta": {"scenario": "x", "client_id": "c", "prompt_ids": ["p"], "feature_flags_sent": true, "extra_key": 3}}"#,
            "\n",
            r#"{"t_ms": 0.1, "dir": "local", "kind": "ws_open", "conn": 1, "path": "/ws?clientId=c", "client_id": "c"}"#,
            "\n",
            r#"{"t_ms": 0.2, "dir": "recv", "kind": "text", "conn": 1, "data": "{\"type\": \"status\"}"}"#,
            "\n",
            r#"{"t_ms": 0.3, "dir": "recv", "kind": "binary", "conn": 1, "len": 3, "b64": "AQID"}"#,
            "\n",
            r#"{"t_ms": 0.4, "t_done_ms": 0.5, "dir": "send", "kind": "http", "method": "GET", "path": "/history/p", "request": null, "status": 200, "response": {"p": {"outputs": {}}}}"#,
            "\n",
            r#"{"t_ms": 0.6, "dir": "local", "kind": "ws_close", "conn": 1, "by": "client", "code": 1000}"#,
            "\n",
        );
        let trace = Trace::parse(text).expect("parses");
        assert_eq!(trace.meta.scenario, "x");
        assert_eq!(trace.meta.extra.get("extra_key"), Some(&Value::from(3)));
        assert_eq!(trace.events.len(), 5);
        assert!(matches!(
            &trace.events[2].kind,
            TraceEventKind::Binary { data, .. } if data.as_ref() == [1, 2, 3]
        ));
        assert_eq!(trace.final_history().len(), 1);
        let again = Trace::parse(&trace.to_jsonl()).expect("re-parses");
        assert_eq!(again, trace);
    }

    #[test]
    fn reports_the_bad_line() {
        let text = "{\"meta\": {}}\n{\"t_ms\": 1, \"dir\": \"recv\", \"kind\": \"binary\", \"b64\": \"!!\"}\n";
        match Trace::parse(text) {
            Err(TraceError::BadLine { line, .. }) => assert_eq!(line, 2),
            other => panic!("expected a bad line, got {other:?}"),
        }
        assert_eq!(Trace::parse(""), Err(TraceError::Empty));
    }
}
