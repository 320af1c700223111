//! The typed flat model every binding maps: kinds, statuses and phases are
//! enums (named by the one `name()` of each in the protocol core), JSON
//! payloads stay [`Value`]s until a binding converts them once, and images
//! stay shared [`Bytes`].

use std::time::Duration;

use bytes::Bytes;
use comfywire_client::proto::{Outcome, ServerMessage};
use comfywire_client::{
    ConnectionState, ConnectionStatus, Event, EventKind, ExecutionRecord, FileRef, NodePhase,
    Phase, QueueSnapshot,
};
use serde_json::{Map, Value, json};

/// The kind of a delivered event: one of the client's kinds, or a report
/// that a callback failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostEventKind {
    /// An event of the client.
    Client(EventKind),
    /// A callback raised, returned an error or panicked.
    CallbackError,
}

impl HostEventKind {
    /// The stable snake_case name every binding shows.
    pub fn name(self) -> &'static str {
        match self {
            HostEventKind::Client(kind) => kind.name(),
            HostEventKind::CallbackError => CALLBACK_ERROR,
        }
    }

    /// The kind of a name, `None` when no kind has it.
    pub fn from_name(name: &str) -> Option<HostEventKind> {
        if name == CALLBACK_ERROR {
            return Some(HostEventKind::CallbackError);
        }
        EventKind::from_name(name).map(HostEventKind::Client)
    }
}

/// The kind name of events a failing callback produces.
pub const CALLBACK_ERROR: &str = "callback_error";

/// One event, flattened. Which fields are set depends on `kind` (see the
/// field docs); the rest are empty.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record), uniffi(name = "Event"))]
pub struct HostEvent {
    /// What happened.
    pub kind: HostEventKind,
    /// The prompt, when the event has one.
    pub prompt_id: Option<String>,
    /// The node (node events, progress, previews, outputs, progress text,
    /// a blocked node).
    pub node: Option<String>,
    /// The node to show it on.
    pub display_node: Option<String>,
    /// Step (progress), queue size (status), queue number (queued), 1.0 for
    /// a recovered output, the frame's length in bytes (bad frame).
    pub value: f64,
    /// Total steps (progress).
    pub max: f64,
    /// Whole-prompt progress in `[0, 1]` (progress, finished).
    pub overall: f64,
    /// Seconds until the node should finish at its pace so far (progress;
    /// `None` before its first step and after its last).
    pub eta_s: Option<f64>,
    /// Progress text, the server's session id (status), the connection
    /// state name, the terminal status name (finished), the message type
    /// (message), an error text (blocked, bad frame, http failed,
    /// callback error).
    pub text: Option<String>,
    /// The JSON payload: an output dict, feature flags, cached node ids, an
    /// unknown message's data, `{"failed_kind", "subscription"}` of a
    /// callback error.
    pub data: Option<Value>,
    /// The outcome of a finished prompt.
    pub outcome: Option<Box<HostOutcome>>,
    /// The connection status of a connection change.
    pub status: Option<HostStatus>,
    /// Preview image bytes.
    pub image: Option<Bytes>,
    /// Preview MIME type.
    pub mime: Option<String>,
}

impl HostEvent {
    /// An event of `kind` with every field empty.
    pub fn empty(kind: HostEventKind) -> HostEvent {
        HostEvent {
            kind,
            prompt_id: None,
            node: None,
            display_node: None,
            value: 0.0,
            max: 0.0,
            overall: 0.0,
            eta_s: None,
            text: None,
            data: None,
            outcome: None,
            status: None,
            image: None,
            mime: None,
        }
    }

    /// Flattens a client event.
    pub fn from_event(event: &Event) -> HostEvent {
        let mut out = HostEvent::empty(HostEventKind::Client(event.kind()));
        out.prompt_id = event.prompt_id().map(str::to_owned);
        match event {
            Event::Connection(status) => {
                out.text = Some(status.state.name().to_owned());
                out.status = Some(HostStatus::from_status(status));
            }
            Event::Status {
                queue_remaining,
                sid,
            } => {
                out.value = queue_remaining.unwrap_or(0) as f64;
                out.text = sid.clone();
            }
            Event::FeatureFlags(flags) => out.data = Some(Value::Object(flags.clone())),
            Event::PromptQueued { number, .. } => out.value = number.unwrap_or(0) as f64,
            Event::NodesCached { nodes, .. } => out.data = Some(json!(nodes)),
            Event::NodeStarted {
                node, display_node, ..
            } => {
                out.node = Some(node.to_string());
                out.display_node = display_node.as_deref().map(str::to_owned);
            }
            Event::Progress(p) => {
                out.node = Some(p.node.to_string());
                out.display_node = p.display_node.as_deref().map(str::to_owned);
                out.value = p.value;
                out.max = p.max;
                out.overall = p.overall;
                out.eta_s = p.eta.map(|d| d.as_secs_f64());
            }
            Event::Preview(p) => {
                out.node = p.node.as_deref().map(str::to_owned);
                out.image = Some(p.image.clone());
                out.mime = Some(p.mime.clone());
            }
            Event::ProgressText { node, text, .. } => {
                out.node = Some(node.to_string());
                out.text = Some(text.clone());
            }
            Event::Output {
                node,
                display_node,
                output,
                recovered,
                ..
            } => {
                out.node = Some(node.to_string());
                out.display_node = display_node.as_deref().map(str::to_owned);
                out.data = Some(output.to_value());
                out.value = if *recovered { 1.0 } else { 0.0 };
            }
            Event::NodeFinished { node, .. } => out.node = Some(node.to_string()),
            Event::Blocked(e) => {
                out.node = e.node_id.clone();
                out.text = Some(e.exception_message.clone());
            }
            Event::Finished(record) => {
                let outcome = HostOutcome::from_record(record);
                out.text = Some(outcome.status.name().to_owned());
                out.overall = outcome.progress;
                out.outcome = Some(Box::new(outcome));
            }
            Event::Message(m) => {
                out.text = Some(m.kind().to_owned());
                if let ServerMessage::Unknown(u) = m.as_ref() {
                    out.data = Some(u.data.clone());
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

    /// The report of a failed callback.
    pub fn callback_error(
        prompt_id: Option<String>,
        failed_kind: HostEventKind,
        subscription: u64,
        message: String,
    ) -> HostEvent {
        let mut out = HostEvent::empty(HostEventKind::CallbackError);
        out.prompt_id = prompt_id;
        out.text = Some(message);
        out.data = Some(json!({"failed_kind": failed_kind.name(), "subscription": subscription}));
        out
    }

    /// The event's one JSON payload, for front ends with a single JSON
    /// field: the outcome of a finished prompt, the status of a connection
    /// change, or else `data`.
    pub fn payload(&self) -> Option<Value> {
        match (&self.outcome, &self.status) {
            (Some(outcome), _) => Some(outcome.to_json()),
            (_, Some(status)) => Some(status.to_json()),
            _ => self.data.clone(),
        }
    }
}

/// A node's part in an outcome.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "uniffi",
    derive(uniffi::Record),
    uniffi(name = "NodeTiming")
)]
pub struct HostNode {
    /// Node id.
    pub id: String,
    /// Node to show it on.
    pub display_node: Option<String>,
    /// Where the node is.
    pub phase: NodePhase,
    /// Run time in milliseconds, when both ends are known.
    pub duration_ms: Option<f64>,
}

/// The server's error payload of a failed prompt.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "uniffi",
    derive(uniffi::Record),
    uniffi(name = "ExecutionError")
)]
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
#[cfg_attr(feature = "uniffi", derive(uniffi::Record), uniffi(name = "Outcome"))]
pub struct HostOutcome {
    /// The prompt.
    pub prompt_id: String,
    /// Where it is: submitted, queued, running, or one of the terminal
    /// phases (succeeded, failed, interrupted, lost).
    pub status: Phase,
    /// Its queue number, when known.
    pub number: Option<u64>,
    /// UI outputs by node id (a JSON object).
    pub outputs: Value,
    /// Nodes in start order with their timings.
    pub nodes: Vec<HostNode>,
    /// Nodes served from the cache.
    pub cached: Vec<String>,
    /// The error of a failed prompt.
    pub error: Option<HostExecutionError>,
    /// The node that was running when it was interrupted, when known.
    pub interrupted_at: Option<String>,
    /// Why a prompt was declared lost.
    pub lost_reason: Option<String>,
    /// Start to end, in milliseconds.
    pub duration_ms: Option<f64>,
    /// Whole-prompt progress in `[0, 1]` (1 once succeeded).
    pub progress: f64,
    /// True when the socket was down during the run and history filled it.
    pub had_gap: bool,
    /// Outputs not kept in `outputs` (past the record's byte budget): they
    /// were delivered as `output` events, and `output_files` /
    /// `download_outputs` read them from the server's `/history`.
    pub outputs_omitted: u32,
    /// The outputs the server skipped at submission because their branch
    /// was invalid (the `node_errors` object of a partially valid prompt,
    /// by node id); `None` when every output ran.
    pub skipped_outputs: Option<Value>,
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
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
        let (interrupted_at, lost_reason) = match &record.outcome {
            Some(Outcome::Interrupted(i)) => (i.node_id.clone(), None),
            Some(Outcome::Lost { reason }) => (None, Some(reason.clone())),
            _ => (None, None),
        };
        HostOutcome {
            prompt_id: record.prompt_id.clone(),
            status: record.phase,
            number: record.number,
            outputs: record.outputs.to_value(),
            nodes: record
                .nodes
                .iter()
                .map(|n| HostNode {
                    id: n.id.clone(),
                    display_node: n.display_node.clone(),
                    phase: n.phase,
                    duration_ms: n.duration().map(millis),
                })
                .collect(),
            cached: record.cached.clone(),
            error,
            interrupted_at,
            lost_reason,
            duration_ms: record.duration().map(millis),
            progress: if record.phase == Phase::Succeeded {
                1.0
            } else {
                record.progress()
            },
            had_gap: record.had_gap,
            outputs_omitted: record.outputs_omitted,
            skipped_outputs: record
                .node_errors
                .clone()
                .filter(|e| e.as_object().is_some_and(|m| !m.is_empty())),
        }
    }

    /// The exception message of a failed prompt or the reason of a lost
    /// one.
    pub fn error_message(&self) -> Option<&str> {
        match (&self.error, &self.lost_reason) {
            (Some(e), _) => Some(&e.exception_message),
            (None, reason) => reason.as_deref(),
        }
    }

    /// True once the prompt has ended, however.
    pub fn is_terminal(&self) -> bool {
        self.status.is_terminal()
    }

    /// The files among the outputs (`{"filename", "subfolder", "type"}`
    /// entries of any output list), in node order.
    pub fn files(&self) -> Vec<HostFile> {
        HostFile::in_outputs(&self.outputs)
    }

    /// The outcome as a JSON object (the C ABI's `comfywire_outcome_json`
    /// and logs).
    pub fn to_json(&self) -> Value {
        json!({
            "prompt_id": self.prompt_id,
            "status": self.status.name(),
            "number": self.number,
            "outputs": self.outputs,
            "nodes": self.nodes.iter().map(|n| json!({
                "id": n.id, "display_node": n.display_node, "phase": n.phase.name(),
                "duration_ms": n.duration_ms,
            })).collect::<Vec<_>>(),
            "cached": self.cached,
            "error": self.error.as_ref().map(|e| json!({
                "node_id": e.node_id, "node_type": e.node_type, "exception_type": e.exception_type,
                "exception_message": e.exception_message, "traceback": e.traceback,
            })),
            "interrupted_at": self.interrupted_at,
            "lost_reason": self.lost_reason,
            "duration_ms": self.duration_ms,
            "progress": self.progress,
            "had_gap": self.had_gap,
            "outputs_omitted": self.outputs_omitted,
            "skipped_outputs": self.skipped_outputs,
        })
    }
}

/// Connection state, flattened.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "uniffi",
    derive(uniffi::Record),
    uniffi(name = "ConnectionStatus")
)]
pub struct HostStatus {
    /// `idle`, `connecting`, `connected`, `reconnecting`, `polling`,
    /// `paused` or `closed` (the protocol core's `ConnectionState::name`).
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

    /// True once the client is closed.
    pub fn is_closed(&self) -> bool {
        self.state == "closed"
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

/// The answer to a submission.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(
    feature = "uniffi",
    derive(uniffi::Record),
    uniffi(name = "Submission")
)]
pub struct HostSubmission {
    /// The prompt id.
    pub prompt_id: String,
    /// Its queue number.
    pub number: Option<u64>,
    /// Outputs the server skipped because their branch failed validation
    /// (the same JSON as a validation error's detail); the rest runs.
    pub skipped: Option<Value>,
}

/// One entry of the server's queue.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record), uniffi(name = "QueueItem"))]
pub struct HostQueueItem {
    /// The prompt.
    pub prompt_id: String,
    /// Its queue number (priority).
    pub number: f64,
    /// The client that submitted it, when the server says.
    pub client_id: Option<String>,
}

/// The server's queue.
#[derive(Debug, Clone, PartialEq, Default)]
#[cfg_attr(
    feature = "uniffi",
    derive(uniffi::Record),
    uniffi(name = "QueueSnapshot")
)]
pub struct HostQueue {
    /// Running prompts.
    pub running: Vec<HostQueueItem>,
    /// Pending prompts in run order.
    pub pending: Vec<HostQueueItem>,
}

impl From<QueueSnapshot> for HostQueue {
    fn from(q: QueueSnapshot) -> HostQueue {
        let items = |list: Vec<comfywire_client::QueueItem>| {
            list.into_iter()
                .map(|i| HostQueueItem {
                    prompt_id: i.prompt_id,
                    number: i.number,
                    client_id: i.client_id,
                })
                .collect()
        };
        HostQueue {
            running: items(q.running),
            pending: items(q.pending),
        }
    }
}

impl HostQueue {
    /// The running prompts' ids.
    pub fn running_ids(&self) -> Vec<String> {
        self.running.iter().map(|i| i.prompt_id.clone()).collect()
    }

    /// The pending prompts' ids, in run order.
    pub fn pending_ids(&self) -> Vec<String> {
        self.pending.iter().map(|i| i.prompt_id.clone()).collect()
    }

    /// The queue as JSON: `{"running": [ids], "pending": [ids], "items":
    /// {"running": [...], "pending": [...]}}`, each item `{"prompt_id",
    /// "number", "client_id"}`.
    pub fn to_json(&self) -> Value {
        let items = |list: &[HostQueueItem]| -> Vec<Value> {
            list.iter()
                .map(|i| json!({"prompt_id": i.prompt_id, "number": i.number, "client_id": i.client_id}))
                .collect()
        };
        json!({
            "running": self.running_ids(),
            "pending": self.pending_ids(),
            "items": {"running": items(&self.running), "pending": items(&self.pending)},
        })
    }
}

/// A file on the server (an output, an upload, a temp preview).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "uniffi",
    derive(uniffi::Record),
    uniffi(name = "ServerFile")
)]
pub struct HostFile {
    /// File name.
    pub filename: String,
    /// Subfolder (`""` for none).
    pub subfolder: String,
    /// `output`, `input` or `temp`.
    pub kind: String,
}

impl HostFile {
    /// A file as a caller names it: no subfolder is `""`, no type is
    /// `output` (the server's own defaults for `/view`).
    pub fn named(filename: &str, subfolder: Option<&str>, kind: Option<&str>) -> HostFile {
        HostFile {
            filename: filename.to_owned(),
            subfolder: subfolder.unwrap_or("").to_owned(),
            kind: kind.unwrap_or("output").to_owned(),
        }
    }

    /// The file as JSON, `{"filename", "subfolder", "type"}` (the server's
    /// own form).
    pub fn to_json(&self) -> Value {
        json!({"filename": self.filename, "subfolder": self.subfolder, "type": self.kind})
    }

    /// The files among outputs by node id (`{"filename", "subfolder",
    /// "type"}` entries of any output list), each once, in node order: the
    /// rule of [`HostOutcome::files`] for outputs a binding already holds.
    pub fn in_outputs(outputs: &Value) -> Vec<HostFile> {
        match outputs.as_object() {
            Some(map) => comfywire_client::output_files(map.values())
                .into_iter()
                .map(HostFile::from)
                .collect(),
            None => Vec::new(),
        }
    }
}

impl From<FileRef> for HostFile {
    fn from(f: FileRef) -> HostFile {
        HostFile {
            filename: f.filename,
            subfolder: f.subfolder,
            kind: f.kind,
        }
    }
}

impl From<&HostFile> for FileRef {
    fn from(f: &HostFile) -> FileRef {
        FileRef {
            filename: f.filename.clone(),
            subfolder: f.subfolder.clone(),
            kind: f.kind.clone(),
        }
    }
}

/// Counters of a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(
    feature = "uniffi",
    derive(uniffi::Record),
    uniffi(name = "ClientStats")
)]
pub struct HostStats {
    /// Frames received.
    pub frames: u64,
    /// Events produced.
    pub events: u64,
    /// Frames that did not parse.
    pub bad_frames: u64,
    /// Reconnects.
    pub reconnects: u64,
    /// Progress and previews coalesced (throttles and queues).
    pub coalesced: u64,
    /// Progress and previews dropped from full queues.
    pub dropped: u64,
    /// Callbacks that failed or panicked.
    pub callback_failures: u64,
    /// Registered callbacks.
    pub callbacks: u64,
}

impl HostStats {
    /// The counters as a JSON object.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in [
            ("frames", self.frames),
            ("events", self.events),
            ("bad_frames", self.bad_frames),
            ("reconnects", self.reconnects),
            ("coalesced", self.coalesced),
            ("dropped", self.dropped),
            ("callback_failures", self.callback_failures),
            ("callbacks", self.callbacks),
        ] {
            m.insert(k.into(), json!(v));
        }
        Value::Object(m)
    }
}

/// How Swift and Kotlin (uniffi, feature `uniffi`) carry the model's types
/// that are not records: JSON as its text, bytes as bytes, kinds and phases
/// as their stable names. Declared once here, for the records above and
/// for `comfywire-uniffi`.
#[cfg(feature = "uniffi")]
pub mod ffi {
    use bytes::Bytes;
    use comfywire_client::{NodePhase, Phase};
    use serde_json::Value;

    use super::HostEventKind;

    /// [`Value`] under the name foreign code sees.
    pub type Json = Value;
    /// [`HostEventKind`] under the name foreign code sees.
    pub type EventKind = HostEventKind;

    uniffi::custom_type!(
        /// JSON text (`String`). Text that is not JSON arrives as a JSON
        /// string, so the call that needs an object refuses it with
        /// `InvalidArgument` (a failed lift would be an internal error).
        Json, String, {
        remote,
        lower: |value| value.to_string(),
        try_lift: |text| Ok(serde_json::from_str(&text).unwrap_or(Value::String(text))),
    });

    uniffi::custom_type!(
        /// Bytes (`ByteArray` / `Data`).
        Bytes, Vec<u8>, {
        remote,
        lower: |bytes| bytes.to_vec(),
        try_lift: |vec| Ok(Bytes::from(vec)),
    });

    uniffi::custom_type!(
        /// An event kind's name: `progress`, `finished`, `callback_error`, ...
        EventKind, String, {
        lower: |kind| kind.name().to_owned(),
        try_lift: |name| HostEventKind::from_name(&name)
            .ok_or_else(|| uniffi::deps::anyhow::anyhow!("unknown event kind `{name}`")),
    });

    uniffi::custom_type!(
        /// A prompt's phase: `submitted`, `queued`, `running`, `succeeded`,
        /// `failed`, `interrupted` or `lost`.
        Phase, String, {
        remote,
        lower: |phase| phase.name().to_owned(),
        try_lift: |name| {
            use Phase::*;
            [Submitted, Queued, Running, Succeeded, Failed, Interrupted, Lost]
                .into_iter()
                .find(|p| p.name() == name)
                .ok_or_else(|| uniffi::deps::anyhow::anyhow!("unknown phase `{name}`"))
        },
    });

    uniffi::custom_type!(
        /// A node's phase: `cached`, `running`, `done`, `failed` or
        /// `interrupted`.
        NodePhase, String, {
        remote,
        lower: |phase| phase.name().to_owned(),
        try_lift: |name| {
            use NodePhase::*;
            [Cached, Running, Done, Failed, Interrupted]
                .into_iter()
                .find(|p| p.name() == name)
                .ok_or_else(|| uniffi::deps::anyhow::anyhow!("unknown node phase `{name}`"))
        },
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_helpers_follow_the_records() {
        let report = HostEvent::callback_error(None, HostEventKind::CallbackError, 7, "x".into());
        assert_eq!(report.payload(), report.data);
        let file = HostFile::named("a.png", None, None);
        assert_eq!(
            (file.subfolder.as_str(), file.kind.as_str()),
            ("", "output")
        );
    }
}
