//! Flat records, one per host record: strings, numbers, bytes and JSON text
//! only, so Swift and Kotlin see the same fields as Python and C.

use comfywire_host::{
    HostEvent, HostExecutionError, HostFile, HostNode, HostOutcome, HostQueue, HostStats,
    HostStatus, HostSubmission,
};

/// One event. Which fields are set depends on `kind`; the rest are empty
/// (`None`, or `0.0` for the numbers).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Event {
    /// `connection`, `status`, `execution_started`, `progress`, `preview`,
    /// `output`, `finished`, ... or `callback_error` (a listener failed).
    pub kind: String,
    /// The prompt, when the event has one.
    pub prompt_id: Option<String>,
    /// The node (node events, progress, previews, outputs, progress text).
    pub node: Option<String>,
    /// The node to show it on.
    pub display_node: Option<String>,
    /// Step (progress), queue size (status), queue number (queued),
    /// 1.0 for a recovered output.
    pub value: f64,
    /// Total steps (progress).
    pub max: f64,
    /// Whole-prompt progress in `[0, 1]` (progress, finished).
    pub overall: f64,
    /// Progress text, the connection state, a terminal status (`finished`),
    /// or an error message (`callback_error`).
    pub text: Option<String>,
    /// JSON payload: an output dict, a terminal outcome, feature flags,
    /// cached nodes, `{"failed_kind", "subscription"}` for `callback_error`.
    pub json: Option<String>,
    /// Preview image bytes.
    pub image: Option<Vec<u8>>,
    /// Preview MIME type.
    pub mime: Option<String>,
}

impl From<&HostEvent> for Event {
    fn from(e: &HostEvent) -> Event {
        Event {
            kind: e.kind.clone(),
            prompt_id: e.prompt_id.clone(),
            node: e.node.clone(),
            display_node: e.display_node.clone(),
            value: e.value,
            max: e.max,
            overall: e.overall,
            text: e.text.clone(),
            json: e.json.clone(),
            image: e.image.as_ref().map(|b| b.to_vec()),
            mime: e.mime.clone(),
        }
    }
}

/// A node's part in an outcome.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct NodeTiming {
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
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ExecutionError {
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

/// How a prompt ended (or where it is).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Outcome {
    /// The prompt.
    pub prompt_id: String,
    /// `submitted`, `queued`, `running`, `succeeded`, `failed`,
    /// `interrupted` or `lost`.
    pub status: String,
    /// UI outputs by node id, as JSON object text.
    pub outputs_json: String,
    /// Nodes in start order with their timings.
    pub nodes: Vec<NodeTiming>,
    /// Nodes served from the cache.
    pub cached: Vec<String>,
    /// The error of a failed prompt.
    pub error: Option<ExecutionError>,
    /// Why a prompt was declared lost.
    pub lost_reason: Option<String>,
    /// Start to end, in milliseconds.
    pub duration_ms: Option<f64>,
    /// True when the socket was down during the run and history filled it.
    pub had_gap: bool,
}

impl From<HostNode> for NodeTiming {
    fn from(n: HostNode) -> NodeTiming {
        NodeTiming {
            id: n.id,
            display_node: n.display_node,
            phase: n.phase,
            duration_ms: n.duration_ms,
        }
    }
}

impl From<HostExecutionError> for ExecutionError {
    fn from(e: HostExecutionError) -> ExecutionError {
        ExecutionError {
            node_id: e.node_id,
            node_type: e.node_type,
            exception_type: e.exception_type,
            exception_message: e.exception_message,
            traceback: e.traceback,
        }
    }
}

impl From<HostOutcome> for Outcome {
    fn from(o: HostOutcome) -> Outcome {
        Outcome {
            prompt_id: o.prompt_id,
            status: o.status,
            outputs_json: o.outputs_json,
            nodes: o.nodes.into_iter().map(NodeTiming::from).collect(),
            cached: o.cached,
            error: o.error.map(ExecutionError::from),
            lost_reason: o.lost_reason,
            duration_ms: o.duration_ms,
            had_gap: o.had_gap,
        }
    }
}

/// The connection state.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ConnectionStatus {
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

impl From<HostStatus> for ConnectionStatus {
    fn from(s: HostStatus) -> ConnectionStatus {
        ConnectionStatus {
            state: s.state,
            attempt: s.attempt,
            next_retry_ms: s.next_retry_ms,
            last_error: s.last_error,
        }
    }
}

impl ConnectionStatus {
    /// Reads the status a `connection` event carries as JSON (the host's
    /// `HostStatus::to_json`), so a state listener sees the state of that
    /// event rather than whatever it is by the time the listener runs.
    pub(crate) fn from_event(event: &HostEvent) -> Option<ConnectionStatus> {
        let v: serde_json::Value = serde_json::from_str(event.json.as_deref()?).ok()?;
        Some(ConnectionStatus {
            state: v.get("state")?.as_str()?.to_owned(),
            attempt: v
                .get("attempt")
                .and_then(serde_json::Value::as_u64)
                .and_then(|a| u32::try_from(a).ok())
                .unwrap_or(0),
            next_retry_ms: v.get("next_retry_ms").and_then(serde_json::Value::as_u64),
            last_error: v
                .get("last_error")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
        })
    }
}

/// The answer to a submission.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Submission {
    /// The prompt id.
    pub prompt_id: String,
    /// Its queue number.
    pub number: Option<u64>,
    /// Node errors of skipped outputs (a partially valid prompt), as JSON.
    pub partial_json: Option<String>,
}

impl From<HostSubmission> for Submission {
    fn from(s: HostSubmission) -> Submission {
        Submission {
            prompt_id: s.prompt_id,
            number: s.number,
            partial_json: s.partial_json,
        }
    }
}

/// The server's queue, by prompt id.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct QueueSnapshot {
    /// Running prompts.
    pub running: Vec<String>,
    /// Pending prompts in run order.
    pub pending: Vec<String>,
}

impl From<HostQueue> for QueueSnapshot {
    fn from(q: HostQueue) -> QueueSnapshot {
        QueueSnapshot {
            running: q.running,
            pending: q.pending,
        }
    }
}

/// A file on the server (an output image, an upload).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OutputFile {
    /// File name.
    pub filename: String,
    /// Subfolder.
    pub subfolder: String,
    /// `output`, `input` or `temp`.
    pub kind: String,
}

impl From<HostFile> for OutputFile {
    fn from(f: HostFile) -> OutputFile {
        OutputFile {
            filename: f.filename,
            subfolder: f.subfolder,
            kind: f.kind,
        }
    }
}

impl From<OutputFile> for HostFile {
    fn from(f: OutputFile) -> HostFile {
        HostFile {
            filename: f.filename,
            subfolder: f.subfolder,
            kind: f.kind,
        }
    }
}

/// Counters of a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct ClientStats {
    /// Frames received.
    pub frames: u64,
    /// Events produced.
    pub events: u64,
    /// Frames that did not parse.
    pub bad_frames: u64,
    /// Reconnects.
    pub reconnects: u64,
    /// Progress and previews coalesced.
    pub coalesced: u64,
    /// Progress and previews dropped from full queues.
    pub dropped: u64,
    /// Listener calls that failed.
    pub callback_failures: u64,
    /// Registered listeners.
    pub callbacks: u64,
}

impl From<HostStats> for ClientStats {
    fn from(s: HostStats) -> ClientStats {
        ClientStats {
            frames: s.frames,
            events: s.events,
            bad_frames: s.bad_frames,
            reconnects: s.reconnects,
            coalesced: s.coalesced,
            dropped: s.dropped,
            callback_failures: s.callback_failures,
            callbacks: s.callbacks,
        }
    }
}
