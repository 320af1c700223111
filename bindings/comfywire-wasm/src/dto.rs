//! The shapes JavaScript sees: commands, events, records and status as
//! plain objects (camelCase fields, a snake_case `type` tag, times in
//! `performance.now()` milliseconds). `js/src/types.ts` declares the same
//! shapes for TypeScript.

use comfywire_proto::{
    Command, ConnectionError, ConnectionState, ConnectionStatus, Event, ExecutionError,
    ExecutionInterrupted, ExecutionRecord, HttpRequest, NodeRecord, Outcome, ParseError,
};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::clock::Clock;

/// A request the session asks the driver to make.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum RequestDto {
    /// `GET /history/{promptId}`.
    History {
        /// The prompt.
        prompt_id: String,
    },
    /// `GET /queue`.
    Queue,
}

impl From<&HttpRequest> for RequestDto {
    fn from(request: &HttpRequest) -> Self {
        match request {
            HttpRequest::History { prompt_id } => RequestDto::History {
                prompt_id: prompt_id.clone(),
            },
            HttpRequest::Queue => RequestDto::Queue,
        }
    }
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum CommandDto {
    /// Open `/ws?clientId=…`.
    Connect {
        /// The client id for the URL, when there is one.
        client_id: Option<String>,
    },
    /// Send this text frame.
    Send {
        /// The text.
        text: String,
    },
    /// Check liveness (a browser cannot send a WebSocket ping).
    Ping,
    /// Close the socket; the session already considers it gone.
    Close {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// Make this HTTP request and hand back the answer.
    Http {
        /// The request.
        request: RequestDto,
    },
}

impl From<Command> for CommandDto {
    fn from(command: Command) -> Self {
        match command {
            Command::Connect { client_id } => CommandDto::Connect { client_id },
            Command::SendText(text) => CommandDto::Send { text },
            Command::Ping(_) => CommandDto::Ping,
            Command::Close { code, reason } => CommandDto::Close { code, reason },
            Command::Http(request) => CommandDto::Http {
                request: RequestDto::from(&request),
            },
        }
    }
}

/// Why the last connection or attempt ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionErrorDto {
    /// `connect_failed`, `lost`, `heartbeat_timeout` or `deaf`.
    pub kind: &'static str,
    /// Human-readable description.
    pub message: String,
    /// The close code, for `lost` when the peer sent one.
    pub code: Option<u16>,
}

impl From<&ConnectionError> for ConnectionErrorDto {
    fn from(error: &ConnectionError) -> Self {
        let (kind, code) = match error {
            ConnectionError::ConnectFailed { .. } => ("connect_failed", None),
            ConnectionError::Lost { code, .. } => ("lost", *code),
            ConnectionError::HeartbeatTimeout { .. } => ("heartbeat_timeout", None),
            ConnectionError::Deaf { .. } => ("deaf", None),
            _ => ("other", None),
        };
        ConnectionErrorDto {
            kind,
            message: error.to_string(),
            code,
        }
    }
}

/// Connection state plus the last error.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDto {
    /// `idle`, `connecting`, `connected`, `reconnecting`, `polling`,
    /// `paused` or `closed`.
    pub state: &'static str,
    /// The attempt under way or scheduled next.
    pub attempt: Option<u32>,
    /// When the next attempt is made (ms, `performance.now()` clock).
    pub next_attempt_at: Option<f64>,
    /// The error that ended the last connection or attempt.
    pub last_error: Option<ConnectionErrorDto>,
}

impl StatusDto {
    /// Converts a status.
    pub(crate) fn new(status: &ConnectionStatus, clock: &Clock) -> Self {
        let attempt = match &status.state {
            ConnectionState::Connecting { attempt }
            | ConnectionState::Reconnecting { attempt, .. }
            | ConnectionState::Polling { attempt, .. } => Some(*attempt),
            _ => None,
        };
        StatusDto {
            state: status.state.name(),
            attempt,
            next_attempt_at: status.state.next_attempt_at().map(|at| clock.millis(at)),
            last_error: status.last_error.as_ref().map(ConnectionErrorDto::from),
        }
    }
}

/// One node of an execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeDto {
    /// Node id (possibly ephemeral).
    pub id: String,
    /// The node of the submitted prompt to show it on.
    pub display_node: Option<String>,
    /// `cached`, `running`, `done`, `failed` or `interrupted`.
    pub phase: &'static str,
    /// Last step.
    pub value: f64,
    /// Last maximum.
    pub max: f64,
    /// Start (ms).
    pub started_at: Option<f64>,
    /// End (ms).
    pub finished_at: Option<f64>,
}

impl NodeDto {
    fn new(node: &NodeRecord, clock: &Clock) -> Self {
        NodeDto {
            id: node.id.clone(),
            display_node: node.display_node.clone(),
            phase: node.phase.name(),
            value: node.value,
            max: node.max,
            started_at: node.started_at.map(|t| clock.millis(t)),
            finished_at: node.finished_at.map(|t| clock.millis(t)),
        }
    }
}

/// How a prompt ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum OutcomeDto {
    /// Every node finished.
    Succeeded,
    /// A node raised.
    Failed {
        /// The server's `execution_error` payload.
        error: ExecutionError,
    },
    /// Interrupted.
    Interrupted {
        /// The server's `execution_interrupted` payload.
        info: ExecutionInterrupted,
    },
    /// The server no longer knows the prompt.
    Lost {
        /// Why the session concluded so.
        reason: String,
    },
}

impl From<&Outcome> for OutcomeDto {
    fn from(outcome: &Outcome) -> Self {
        match outcome {
            Outcome::Succeeded => OutcomeDto::Succeeded,
            Outcome::Failed(error) => OutcomeDto::Failed {
                error: (**error).clone(),
            },
            Outcome::Interrupted(info) => OutcomeDto::Interrupted { info: info.clone() },
            Outcome::Lost { reason } => OutcomeDto::Lost {
                reason: reason.clone(),
            },
        }
    }
}

/// Everything known about one prompt's execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordDto {
    /// The prompt.
    pub prompt_id: String,
    /// True when this client submitted it.
    pub ours: bool,
    /// Queue number.
    pub number: Option<u64>,
    /// `submitted`, `queued`, `running`, `succeeded`, `failed`,
    /// `interrupted` or `lost`.
    pub phase: &'static str,
    /// The outcome, once terminal.
    pub outcome: Option<OutcomeDto>,
    /// Nodes in the order they appeared.
    pub nodes: Vec<NodeDto>,
    /// Nodes served from the cache.
    pub cached: Vec<String>,
    /// UI outputs by node id.
    pub outputs: Map<String, Value>,
    /// Nodes of the submitted graph.
    pub expected_nodes: Option<usize>,
    /// Whole-prompt progress in `[0, 1]`.
    pub progress: f64,
    /// `node_errors` of a partially valid prompt.
    pub node_errors: Option<Value>,
    /// Submission (ms).
    pub submitted_at: Option<f64>,
    /// Start (ms).
    pub started_at: Option<f64>,
    /// End (ms).
    pub finished_at: Option<f64>,
    /// Server start time, ms since the Unix epoch.
    pub server_started_ms: Option<u64>,
    /// Server end time, ms since the Unix epoch.
    pub server_finished_ms: Option<u64>,
    /// True when the socket was down while it was in flight.
    pub had_gap: bool,
}

impl RecordDto {
    /// Converts a record.
    pub(crate) fn new(record: &ExecutionRecord, clock: &Clock) -> Self {
        RecordDto {
            prompt_id: record.prompt_id.clone(),
            ours: record.ours,
            number: record.number,
            phase: record.phase.name(),
            outcome: record.outcome.as_ref().map(OutcomeDto::from),
            nodes: record
                .nodes
                .iter()
                .map(|n| NodeDto::new(n, clock))
                .collect(),
            cached: record.cached.clone(),
            outputs: record.outputs.to_map(),
            expected_nodes: record.expected_nodes,
            progress: record.progress(),
            node_errors: record.node_errors.clone(),
            submitted_at: record.submitted_at.map(|t| clock.millis(t)),
            started_at: record.started_at.map(|t| clock.millis(t)),
            finished_at: record.finished_at.map(|t| clock.millis(t)),
            server_started_ms: record.server_started_ms,
            server_finished_ms: record.server_finished_ms,
            had_gap: record.had_gap,
        }
    }
}

/// A parse error of a bad frame.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParseErrorDto {
    /// Stable code (`invalid_utf8`, `invalid_json`, ...).
    pub code: &'static str,
    /// Description.
    pub message: String,
}

impl From<&ParseError> for ParseErrorDto {
    fn from(error: &ParseError) -> Self {
        let code = match error {
            ParseError::InvalidUtf8 => "invalid_utf8",
            ParseError::InvalidJson { .. } => "invalid_json",
            ParseError::NotAnEnvelope { .. } => "not_an_envelope",
            ParseError::InvalidField { .. } => "invalid_field",
            ParseError::TruncatedBinary { .. } => "truncated_binary",
            ParseError::LengthOutOfBounds { .. } => "length_out_of_bounds",
            ParseError::InvalidMetadata { .. } => "invalid_metadata",
            ParseError::FrameTooLarge { .. } => "frame_too_large",
            _ => "other",
        };
        ParseErrorDto {
            code,
            message: error.to_string(),
        }
    }
}

/// Bytes that serde-wasm-bindgen turns into a `Uint8Array`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageBytes(pub bytes::Bytes);

impl Serialize for ImageBytes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

/// One event, tagged with [`comfywire_proto::EventKind::name`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(
    tag = "type",
    rename_all = "snake_case",
    rename_all_fields = "camelCase"
)]
pub enum EventDto {
    /// The connection state or its last error changed.
    Connection {
        /// The new status.
        status: StatusDto,
    },
    /// The server's queue size.
    Status {
        /// Pending plus running.
        queue_remaining: Option<u64>,
        /// The session id, on a socket's first frame.
        sid: Option<String>,
    },
    /// The server's feature flags.
    FeatureFlags {
        /// The flags.
        flags: Map<String, Value>,
    },
    /// A prompt of ours was accepted.
    PromptQueued {
        /// The prompt.
        prompt_id: String,
        /// Its queue number.
        number: Option<u64>,
    },
    /// A prompt started.
    ExecutionStarted {
        /// The prompt.
        prompt_id: String,
    },
    /// Nodes served from the cache.
    NodesCached {
        /// The prompt.
        prompt_id: String,
        /// The nodes.
        nodes: Vec<String>,
    },
    /// A node started.
    NodeStarted {
        /// The prompt.
        prompt_id: String,
        /// The node.
        node: String,
        /// The node to show it on.
        display_node: Option<String>,
    },
    /// Throttled step progress.
    Progress {
        /// The prompt.
        prompt_id: String,
        /// The node.
        node: String,
        /// The node to show it on.
        display_node: Option<String>,
        /// Current step.
        value: f64,
        /// Total steps.
        max: f64,
        /// Whole-prompt progress in `[0, 1]`.
        overall: f64,
        /// Seconds until the node should finish at its pace so far.
        eta_s: Option<f64>,
    },
    /// A preview image.
    Preview {
        /// The prompt, when known.
        prompt_id: Option<String>,
        /// The node, when known.
        node: Option<String>,
        /// MIME type.
        mime: String,
        /// Encoded image.
        image: ImageBytes,
    },
    /// Per-node progress text.
    ProgressText {
        /// The prompt, when known.
        prompt_id: Option<String>,
        /// The node.
        node: String,
        /// The text.
        text: String,
    },
    /// A node's UI output.
    Output {
        /// The prompt.
        prompt_id: String,
        /// The node.
        node: String,
        /// The node to show it on.
        display_node: Option<String>,
        /// The UI output dict.
        output: Value,
        /// True when recovered from `/history` after a gap.
        recovered: bool,
    },
    /// A node finished.
    NodeFinished {
        /// The prompt.
        prompt_id: String,
        /// The node.
        node: String,
    },
    /// A non-terminal `ExecutionBlocked` error.
    Blocked {
        /// The prompt.
        prompt_id: String,
        /// The payload.
        error: ExecutionError,
    },
    /// The one terminal event of a prompt.
    Finished {
        /// The whole record.
        record: Box<RecordDto>,
    },
    /// A message with no tracker meaning, passed through.
    Message {
        /// The wire name (`logs`, `crystools.monitor`, `binary:99`, ...).
        name: String,
        /// The prompt it names, if any.
        prompt_id: Option<String>,
        /// The `data` of an unknown text message (`null` otherwise).
        data: Value,
    },
    /// A frame that could not be parsed; the connection goes on.
    BadFrame {
        /// Why.
        error: ParseErrorDto,
    },
    /// A reconciliation request failed; it will be retried.
    HttpFailed {
        /// The request.
        request: RequestDto,
        /// What went wrong.
        error: String,
    },
}

/// An event's shared id as the DTO's own string: the DTO is serialized
/// into a JavaScript value, which copies it anyway.
fn owned(id: Option<std::sync::Arc<str>>) -> Option<String> {
    id.as_deref().map(str::to_owned)
}

impl EventDto {
    /// Converts an event; `None` for a kind this binding does not know yet.
    pub(crate) fn new(event: Event, clock: &Clock) -> Option<Self> {
        Some(match event {
            Event::Connection(status) => EventDto::Connection {
                status: StatusDto::new(&status, clock),
            },
            Event::Status {
                queue_remaining,
                sid,
            } => EventDto::Status {
                queue_remaining,
                sid,
            },
            Event::FeatureFlags(flags) => EventDto::FeatureFlags { flags },
            Event::PromptQueued { prompt_id, number } => EventDto::PromptQueued {
                prompt_id: prompt_id.to_string(),
                number,
            },
            Event::ExecutionStarted { prompt_id } => EventDto::ExecutionStarted {
                prompt_id: prompt_id.to_string(),
            },
            Event::NodesCached { prompt_id, nodes } => EventDto::NodesCached {
                prompt_id: prompt_id.to_string(),
                nodes,
            },
            Event::NodeStarted {
                prompt_id,
                node,
                display_node,
            } => EventDto::NodeStarted {
                prompt_id: prompt_id.to_string(),
                node: node.to_string(),
                display_node: owned(display_node),
            },
            Event::Progress(p) => EventDto::Progress {
                prompt_id: p.prompt_id.to_string(),
                node: p.node.to_string(),
                display_node: owned(p.display_node),
                value: p.value,
                max: p.max,
                overall: p.overall,
                eta_s: p.eta.map(|d| d.as_secs_f64()),
            },
            Event::Preview(p) => EventDto::Preview {
                prompt_id: owned(p.prompt_id),
                node: owned(p.node),
                mime: p.mime,
                image: ImageBytes(p.image),
            },
            Event::ProgressText {
                prompt_id,
                node,
                text,
            } => EventDto::ProgressText {
                prompt_id: owned(prompt_id),
                node: node.to_string(),
                text,
            },
            Event::Output {
                prompt_id,
                node,
                display_node,
                output,
                recovered,
            } => EventDto::Output {
                prompt_id: prompt_id.to_string(),
                node: node.to_string(),
                display_node: owned(display_node),
                output: output.to_value(),
                recovered,
            },
            Event::NodeFinished { prompt_id, node } => EventDto::NodeFinished {
                prompt_id: prompt_id.to_string(),
                node: node.to_string(),
            },
            Event::Blocked(error) => EventDto::Blocked {
                prompt_id: error.prompt_id.clone(),
                error: (*error).clone(),
            },
            Event::Finished(record) => EventDto::Finished {
                record: Box::new(RecordDto::new(&record, clock)),
            },
            Event::Message(message) => {
                let data = match &*message {
                    comfywire_proto::ServerMessage::Unknown(u) => u.data.clone(),
                    _ => Value::Null,
                };
                EventDto::Message {
                    name: message.kind().to_owned(),
                    prompt_id: message.prompt_id().map(str::to_owned),
                    data,
                }
            }
            Event::BadFrame { error, .. } => EventDto::BadFrame {
                error: ParseErrorDto::from(&error),
            },
            Event::HttpFailed { request, error } => EventDto::HttpFailed {
                request: RequestDto::from(&request),
                error,
            },
            _ => return None,
        })
    }
}
