//! Flat, FFI-friendly records: strings, numbers, bytes and JSON text only,
//! so every binding maps them the same way.

use bytes::Bytes;
use comfywire_client::proto::Outcome;
use comfywire_client::{ConnectionState, ConnectionStatus, Event, ExecutionRecord};
use serde_json::{Value, json};

/// The kind name of events a failing callback produces.
pub const CALLBACK_ERROR: &str = "callback_error";

/// One event, flattened. Which fields are set depends on `kind`
/// (see the field docs); the rest are empty.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostEvent {
    /// `EventKind` name (`progress`, `finished`, ...) or `callback_error`.
    pub kind: String,
    /// The prompt, when the event has one.
    pub prompt_id: Option<String>,
    /// The node (node events, progress, previews, outputs, progress text).
    pub node: Option<String>,
    /// The node to show it on.
    pub display_node: Option<String>,
    /// Step (progress) or queue size (status).
    pub value: f64,
    /// Total steps (progress).
    pub max: f64,
    /// Whole-prompt progress in `[0, 1]` (progress).
    pub overall: f64,
    /// Text: progress text, the connection state name, a terminal status,
    /// an error message.
    pub text: Option<String>,
    /// JSON payload: an output dict, feature flags, cached nodes, a passed
    /// through message, a terminal outcome, a bad frame's error.
    pub json: Option<String>,
    /// Preview image bytes.
    pub image: Option<Bytes>,
    /// Preview MIME type.
    pub mime: Option<String>,
}

impl HostEvent {
    /// Flattens a client event.
    pub fn from_event(event: &Event) -> HostEvent {
        let mut out = HostEvent {
            kind: event.kind().name().to_owned(),
            prompt_id: event.prompt_id().map(str::to_owned),
            ..HostEvent::default()
        };
        match event {
            Event::Connection(status) => {
                out.text = Some(status.state.name().to_owned());
                out.json = Some(HostStatus::from_status(status).to_json().to_string());
            }
            Event::Status {
                queue_remaining,
                sid,
            } => {
                out.value = queue_remaining.unwrap_or(0) as f64;
                out.text = sid.clone();
            }
            Event::FeatureFlags(flags) => out.json = Some(Value::Object(flags.clone()).to_string()),
            Event::PromptQueued { number, .. } => out.value = number.unwrap_or(0) as f64,
            Event::ExecutionStarted { .. } => {}
            Event::NodesCached { nodes, .. } => out.json = Some(json!(nodes).to_string()),
            Event::NodeStarted {
                node, display_node, ..
            } => {
                out.node = Some(node.clone());
                out.display_node = display_node.clone();
            }
            Event::Progress(p) => {
                out.node = Some(p.node.clone());
                out.display_node = p.display_node.clone();
                out.value = p.value;
                out.max = p.max;
                out.overall = p.overall;
            }
            Event::Preview(p) => {
                out.node = p.node.clone();
                out.image = Some(p.image.clone());
                out.mime = Some(p.mime.clone());
            }
            Event::ProgressText { node, text, .. } => {
                out.node = Some(node.clone());
                out.text = Some(text.clone());
            }
            Event::Output {
                node,
                display_node,
                output,
                recovered,
                ..
            } => {
                out.node = Some(node.clone());
                out.display_node = display_node.clone();
                out.json = Some(output.to_string());
                out.value = if *recovered { 1.0 } else { 0.0 };
            }
            Event::NodeFinished { node, .. } => out.node = Some(node.clone()),
            Event::Blocked(e) => {
                out.node = e.node_id.clone();
                out.text = Some(e.exception_message.clone());
            }
            Event::Finished(record) => {
                let outcome = HostOutcome::from_record(record);
                out.text = Some(outcome.status.clone());
                out.overall = if outcome.status == "succeeded" {
                    1.0
                } else {
                    record.progress()
                };
                out.json = Some(outcome.to_json().to_string());
            }
            Event::Message(m) => {
                out.text = Some(m.kind().to_owned());
                if let comfywire_client::proto::ServerMessage::Unknown(u) = m.as_ref() {
                    out.json = Some(u.data.to_string());
                }
            }
            Event::BadFrame { error, raw } => {
                out.text = Some(error.to_string());
                out.value = raw.len() as f64;
            }
            Event::HttpFailed { error, .. } => out.text = Some(error.clone()),
            _ => {}
        }
        out
    }

    /// The event as a JSON object (used by the C ABI and for logging).
    pub fn to_json(&self) -> Value {
        let mut map = serde_json::Map::new();
        map.insert("kind".into(), json!(self.kind));
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                map.insert(k.into(), v);
            }
        };
        put("prompt_id", self.prompt_id.as_ref().map(|s| json!(s)));
        put("node", self.node.as_ref().map(|s| json!(s)));
        put("display_node", self.display_node.as_ref().map(|s| json!(s)));
        put("text", self.text.as_ref().map(|s| json!(s)));
        put(
            "data",
            self.json
                .as_ref()
                .and_then(|s| serde_json::from_str(s).ok()),
        );
        put("mime", self.mime.as_ref().map(|s| json!(s)));
        put("image_bytes", self.image.as_ref().map(|b| json!(b.len())));
        if self.kind == "progress" {
            map.insert("value".into(), json!(self.value));
            map.insert("max".into(), json!(self.max));
            map.insert("overall".into(), json!(self.overall));
        }
        Value::Object(map)
    }
}

/// A node's part in an outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct HostNode {
    /// Node id.
    pub id: String,
    /// Node to show it on.
    pub display_node: Option<String>,
    /// `cached`, `running`, `done`, `failed` or `interrupted`.
    pub phase: String,
    /// Run time in milliseconds, when both ends are known.
    pub duration_ms: Option<f64>,
}

/// The server's error payload of a failed prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct HostExecutionError {
    /// Failing node.
    pub node_id: Option<String>,
    /// Its class.
    pub node_type: Option<String>,
    /// Exception class.
    pub exception_type: String,
    /// Exception message.
    pub exception_message: String,
    /// Traceback lines.
    pub traceback: Vec<String>,
}

/// How a prompt ended (or where it is), flattened.
#[derive(Debug, Clone, PartialEq)]
pub struct HostOutcome {
    /// The prompt.
    pub prompt_id: String,
    /// `submitted`, `queued`, `running`, `succeeded`, `failed`,
    /// `interrupted` or `lost`.
    pub status: String,
    /// UI outputs by node id, as a JSON object text.
    pub outputs_json: String,
    /// Nodes in start order with their timings.
    pub nodes: Vec<HostNode>,
    /// Nodes served from the cache.
    pub cached: Vec<String>,
    /// The error of a failed prompt.
    pub error: Option<HostExecutionError>,
    /// Why a prompt was declared lost.
    pub lost_reason: Option<String>,
    /// Start to end, in milliseconds.
    pub duration_ms: Option<f64>,
    /// True when the socket was down during the run and history filled it.
    pub had_gap: bool,
}

impl HostOutcome {
    /// Flattens an execution record.
    pub fn from_record(record: &ExecutionRecord) -> HostOutcome {
        let error = match &record.outcome {
            Some(Outcome::Failed(e)) => Some(HostExecutionError {
                node_id: e.node_id.clone(),
                node_type: e.node_type.clone(),
                exception_type: e.exception_type.clone(),
                exception_message: e.exception_message.clone(),
                traceback: e.traceback.clone(),
            }),
            _ => None,
        };
        let lost_reason = match &record.outcome {
            Some(Outcome::Lost { reason }) => Some(reason.clone()),
            _ => None,
        };
        HostOutcome {
            prompt_id: record.prompt_id.clone(),
            status: record.phase.name().to_owned(),
            outputs_json: Value::Object(record.outputs.clone()).to_string(),
            nodes: record
                .nodes
                .iter()
                .map(|n| HostNode {
                    id: n.id.clone(),
                    display_node: n.display_node.clone(),
                    phase: format!("{:?}", n.phase).to_lowercase(),
                    duration_ms: n.duration().map(|d| d.as_secs_f64() * 1000.0),
                })
                .collect(),
            cached: record.cached.clone(),
            error,
            lost_reason,
            duration_ms: record.duration().map(|d| d.as_secs_f64() * 1000.0),
            had_gap: record.had_gap,
        }
    }

    /// The outcome as a JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "prompt_id": self.prompt_id,
            "status": self.status,
            "outputs": serde_json::from_str::<Value>(&self.outputs_json).unwrap_or(Value::Null),
            "nodes": self.nodes.iter().map(|n| json!({
                "id": n.id, "display_node": n.display_node, "phase": n.phase, "duration_ms": n.duration_ms,
            })).collect::<Vec<_>>(),
            "cached": self.cached,
            "error": self.error.as_ref().map(|e| json!({
                "node_id": e.node_id, "node_type": e.node_type, "exception_type": e.exception_type,
                "exception_message": e.exception_message, "traceback": e.traceback,
            })),
            "lost_reason": self.lost_reason,
            "duration_ms": self.duration_ms,
            "had_gap": self.had_gap,
        })
    }
}

/// Connection state, flattened.
#[derive(Debug, Clone, PartialEq)]
pub struct HostStatus {
    /// `idle`, `connecting`, `connected`, `reconnecting`, `polling`,
    /// `paused` or `closed`.
    pub state: String,
    /// The next (or current) connect attempt number.
    pub attempt: u32,
    /// Milliseconds until the next attempt, when one is scheduled.
    pub next_retry_ms: Option<u64>,
    /// The error that ended the last connection or attempt.
    pub last_error: Option<String>,
}

impl HostStatus {
    /// Flattens a connection status.
    pub fn from_status(status: &ConnectionStatus) -> HostStatus {
        let attempt = match &status.state {
            ConnectionState::Connecting { attempt }
            | ConnectionState::Reconnecting { attempt, .. }
            | ConnectionState::Polling { attempt, .. } => *attempt,
            _ => 0,
        };
        HostStatus {
            state: status.state.name().to_owned(),
            attempt,
            next_retry_ms: status.state.next_attempt_at().map(|at| {
                at.saturating_duration_since(std::time::Instant::now())
                    .as_millis() as u64
            }),
            last_error: status.last_error.as_ref().map(ToString::to_string),
        }
    }

    /// The status as a JSON object.
    pub fn to_json(&self) -> Value {
        json!({
            "state": self.state,
            "attempt": self.attempt,
            "next_retry_ms": self.next_retry_ms,
            "last_error": self.last_error,
        })
    }
}
