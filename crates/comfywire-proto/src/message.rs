//! Typed server → client messages (protocol reference §4 and §5), and the
//! one message a client sends ([`feature_flags_message`]).
//!
//! Every struct accepts extra fields and tolerates the odd shapes the real
//! server produces (`1` and `1.0`, `null` outputs, `[]` for `{}`).

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::frame::Frame;
use crate::output::NodeOutput;

/// One parsed server message.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ServerMessage {
    /// `status`: queue size, and the session id on the first frame.
    Status(Status),
    /// `feature_flags`: the server's reply to ours (an open map).
    FeatureFlags(Map<String, Value>),
    /// `execution_start`.
    ExecutionStart(ExecutionStart),
    /// `execution_cached`.
    ExecutionCached(ExecutionCached),
    /// `executing` (a node starts, `node: null` = prompt done, or the bare
    /// re-send after a reconnect).
    Executing(Executing),
    /// `progress`.
    Progress(Progress),
    /// `progress_state`: a snapshot of every started node.
    ProgressState(ProgressState),
    /// `executed`: a node's UI output.
    Executed(Executed),
    /// `execution_success`.
    ExecutionSuccess(ExecutionSuccess),
    /// `execution_error` (terminal unless `exception_type` is
    /// `ExecutionBlocked`).
    ExecutionError(ExecutionError),
    /// `execution_interrupted`.
    ExecutionInterrupted(ExecutionInterrupted),
    /// `logs`.
    Logs(Logs),
    /// `display_component`.
    DisplayComponent(DisplayComponent),
    /// Binary type 1: a preview without metadata.
    Preview(Preview),
    /// Binary type 3: per-node progress text.
    ProgressText(ProgressText),
    /// Binary type 4: a preview with metadata.
    PreviewWithMetadata(PreviewWithMetadata),
    /// Any other text type or binary type, kept whole.
    Unknown(Unknown),
}

impl ServerMessage {
    /// The wire name of the message (`"progress"`, `"binary:1"`, ...).
    pub fn kind(&self) -> &str {
        match self {
            ServerMessage::Status(_) => "status",
            ServerMessage::FeatureFlags(_) => "feature_flags",
            ServerMessage::ExecutionStart(_) => "execution_start",
            ServerMessage::ExecutionCached(_) => "execution_cached",
            ServerMessage::Executing(_) => "executing",
            ServerMessage::Progress(_) => "progress",
            ServerMessage::ProgressState(_) => "progress_state",
            ServerMessage::Executed(_) => "executed",
            ServerMessage::ExecutionSuccess(_) => "execution_success",
            ServerMessage::ExecutionError(_) => "execution_error",
            ServerMessage::ExecutionInterrupted(_) => "execution_interrupted",
            ServerMessage::Logs(_) => "logs",
            ServerMessage::DisplayComponent(_) => "display_component",
            ServerMessage::Preview(_) => "binary:1",
            ServerMessage::ProgressText(_) => "binary:3",
            ServerMessage::PreviewWithMetadata(_) => "binary:4",
            ServerMessage::Unknown(u) => &u.kind,
        }
    }

    /// The prompt the message names, if it names one.
    pub fn prompt_id(&self) -> Option<&str> {
        match self {
            ServerMessage::ExecutionStart(m) => Some(&m.prompt_id),
            ServerMessage::ExecutionCached(m) => Some(&m.prompt_id),
            ServerMessage::Executing(m) => m.prompt_id.as_deref(),
            ServerMessage::Progress(m) => m.prompt_id.as_deref(),
            ServerMessage::ProgressState(m) => Some(&m.prompt_id),
            ServerMessage::Executed(m) => Some(&m.prompt_id),
            ServerMessage::ExecutionSuccess(m) => Some(&m.prompt_id),
            ServerMessage::ExecutionError(m) => Some(&m.prompt_id),
            ServerMessage::ExecutionInterrupted(m) => Some(&m.prompt_id),
            ServerMessage::PreviewWithMetadata(m) => Some(&m.metadata.prompt_id),
            _ => None,
        }
    }
}

/// `status` data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Status {
    /// Pending plus running prompts; `None` when the server sent no count.
    pub queue_remaining: Option<u64>,
    /// The session id, present on the first frame of a socket.
    pub sid: Option<String>,
}

/// `execution_start` data.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ExecutionStart {
    /// The prompt.
    pub prompt_id: String,
    /// Server time in ms since the Unix epoch.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub timestamp: Option<u64>,
}

/// `execution_cached` data.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ExecutionCached {
    /// The prompt.
    pub prompt_id: String,
    /// Nodes whose outputs come from the cache.
    #[serde(default, deserialize_with = "string_list")]
    pub nodes: Vec<String>,
    /// Server time in ms since the Unix epoch.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub timestamp: Option<u64>,
}

/// `executing` data.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Executing {
    /// The node about to run; `None` means the prompt has finished.
    #[serde(default)]
    pub node: Option<String>,
    /// The node of the submitted prompt to show this on.
    #[serde(default)]
    pub display_node: Option<String>,
    /// Absent in the bare re-send the server makes after a reconnect.
    #[serde(default)]
    pub prompt_id: Option<String>,
}

/// `progress` data.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Progress {
    /// Current step.
    #[serde(deserialize_with = "number")]
    pub value: f64,
    /// Total steps.
    #[serde(deserialize_with = "number")]
    pub max: f64,
    /// The prompt, null only in odd cases.
    #[serde(default)]
    pub prompt_id: Option<String>,
    /// The reporting node, null only in odd cases.
    #[serde(default)]
    pub node: Option<String>,
}

/// The state word of a `progress_state` node entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeRunState {
    /// `pending`.
    Pending,
    /// `running`.
    Running,
    /// `finished`.
    Finished,
    /// `error`.
    Error,
    /// Anything else, kept.
    Other(String),
}

impl<'de> Deserialize<'de> for NodeRunState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let word = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Ok(match word.as_ref() {
            "pending" => NodeRunState::Pending,
            "running" => NodeRunState::Running,
            "finished" => NodeRunState::Finished,
            "error" => NodeRunState::Error,
            other => NodeRunState::Other(other.to_owned()),
        })
    }
}

/// One node's entry in `progress_state`.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeProgress {
    /// The node id (the map key; possibly ephemeral).
    pub node_id: String,
    /// Current value.
    pub value: f64,
    /// Maximum.
    pub max: f64,
    /// Its state.
    pub state: NodeRunState,
    /// The node to show it on.
    pub display_node_id: Option<String>,
    /// The expanding parent, if any.
    pub parent_node_id: Option<String>,
    /// The submitted node it came from.
    pub real_node_id: Option<String>,
}

#[derive(Deserialize)]
struct RawNodeProgress {
    #[serde(deserialize_with = "number")]
    value: f64,
    #[serde(deserialize_with = "number")]
    max: f64,
    state: NodeRunState,
    #[serde(default)]
    display_node_id: Option<String>,
    #[serde(default)]
    parent_node_id: Option<String>,
    #[serde(default)]
    real_node_id: Option<String>,
}

/// `progress_state` data.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressState {
    /// The prompt.
    pub prompt_id: String,
    /// Every started node, in the server's order.
    pub nodes: Vec<NodeProgress>,
}

impl<'de> Deserialize<'de> for ProgressState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            prompt_id: String,
            #[serde(deserialize_with = "node_map")]
            nodes: Vec<NodeProgress>,
        }
        let raw = Raw::deserialize(d)?;
        Ok(ProgressState {
            prompt_id: raw.prompt_id,
            nodes: raw.nodes,
        })
    }
}

fn node_map<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<NodeProgress>, D::Error> {
    struct Visit;
    impl<'de> serde::de::Visitor<'de> for Visit {
        type Value = Vec<NodeProgress>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of node id to node state")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(4));
            while let Some((key, raw)) = map.next_entry::<String, RawNodeProgress>()? {
                out.push(NodeProgress {
                    node_id: key,
                    value: raw.value,
                    max: raw.max,
                    state: raw.state,
                    display_node_id: raw.display_node_id,
                    parent_node_id: raw.parent_node_id,
                    real_node_id: raw.real_node_id,
                });
            }
            Ok(out)
        }
    }
    d.deserialize_map(Visit)
}

/// `executed` data.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Executed {
    /// The node (possibly ephemeral).
    pub node: String,
    /// The node to show it on.
    #[serde(default)]
    pub display_node: Option<String>,
    /// The prompt.
    pub prompt_id: String,
    /// The node's UI output (`None` for a cached output node without one).
    #[serde(default, deserialize_with = "crate::output::raw_output")]
    pub output: Option<NodeOutput>,
}

/// `execution_success` data.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ExecutionSuccess {
    /// The prompt.
    pub prompt_id: String,
    /// Server time in ms since the Unix epoch.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub timestamp: Option<u64>,
}

/// `execution_error` data, every field of protocol reference §4.10.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ExecutionError {
    /// The prompt.
    pub prompt_id: String,
    /// The failing (real) node.
    #[serde(default)]
    pub node_id: Option<String>,
    /// Its `class_type`.
    #[serde(default)]
    pub node_type: Option<String>,
    /// Nodes that finished in this run, in no particular order.
    #[serde(default, deserialize_with = "string_list")]
    pub executed: Vec<String>,
    /// `str(exception)` plus a tip; usually ends with a newline.
    #[serde(default)]
    pub exception_message: String,
    /// Fully qualified exception class.
    #[serde(default)]
    pub exception_type: String,
    /// Formatted stack frames.
    #[serde(default, deserialize_with = "string_list")]
    pub traceback: Vec<String>,
    /// Inputs of the failing node (`{}` or `[]` in special forms).
    #[serde(default)]
    pub current_inputs: Value,
    /// Every node id of the prompt (see protocol reference: ignore it).
    #[serde(default, deserialize_with = "string_list")]
    pub current_outputs: Vec<String>,
    /// Server time; absent on the `ExecutionBlocked` form.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub timestamp: Option<u64>,
}

impl ExecutionError {
    /// True for the non-terminal `ExecutionBlocked` form.
    pub fn is_blocked(&self) -> bool {
        self.exception_type == "ExecutionBlocked"
    }
}

/// `execution_interrupted` data.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ExecutionInterrupted {
    /// The prompt.
    pub prompt_id: String,
    /// The node that was running.
    #[serde(default)]
    pub node_id: Option<String>,
    /// Its `class_type`.
    #[serde(default)]
    pub node_type: Option<String>,
    /// Nodes finished before the interrupt.
    #[serde(default, deserialize_with = "string_list")]
    pub executed: Vec<String>,
    /// Server time in ms since the Unix epoch.
    #[serde(default, deserialize_with = "lenient_u64")]
    pub timestamp: Option<u64>,
}

/// One `logs` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LogEntry {
    /// Local ISO-8601 time.
    #[serde(default)]
    pub t: String,
    /// Raw text chunk.
    #[serde(default)]
    pub m: String,
}

/// `logs` data.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Logs {
    /// Log chunks.
    #[serde(default)]
    pub entries: Vec<LogEntry>,
    /// Terminal size when it changed, else `None`.
    #[serde(default)]
    pub size: Option<Value>,
}

/// `display_component` data.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DisplayComponent {
    /// The node.
    #[serde(default)]
    pub node_id: String,
    /// Widget name.
    #[serde(default)]
    pub component: String,
    /// Opaque props.
    #[serde(default)]
    pub props: Value,
}

/// Image encoding of a type-1 preview.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// Format 1.
    Jpeg,
    /// Format 2.
    Png,
    /// Anything else (shown as JPEG by the official front end).
    Other(u32),
}

impl ImageFormat {
    /// The MIME type to show it with.
    pub fn mime(&self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg | ImageFormat::Other(_) => "image/jpeg",
        }
    }
}

/// The MIME type to show a type-4 preview with: its declared `image_type`,
/// JPEG when it declares none (as the official front end assumes). The
/// two common types are borrowed, so the hot path does not allocate.
pub(crate) fn preview_mime(image_type: Option<&str>) -> std::borrow::Cow<'static, str> {
    match image_type {
        Some("image/png") => std::borrow::Cow::Borrowed("image/png"),
        Some("image/jpeg") | None => std::borrow::Cow::Borrowed("image/jpeg"),
        Some(other) => std::borrow::Cow::Owned(other.to_owned()),
    }
}

/// Binary type 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// The declared format.
    pub format: ImageFormat,
    /// The encoded image, a slice of the frame (no copy).
    pub image: Bytes,
}

/// Binary type 3.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressText {
    /// The node the text belongs to.
    pub node_id: String,
    /// The text (replaces the node's previous text).
    pub text: String,
}

/// The metadata of a type-4 preview.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PreviewMetadata {
    /// Reporting node (possibly ephemeral).
    pub node_id: String,
    /// The prompt.
    pub prompt_id: String,
    /// Node to show it on.
    #[serde(default)]
    pub display_node_id: Option<String>,
    /// Expanding parent.
    #[serde(default)]
    pub parent_node_id: Option<String>,
    /// Submitted node it came from.
    #[serde(default)]
    pub real_node_id: Option<String>,
    /// MIME type of the image.
    #[serde(default)]
    pub image_type: Option<String>,
}

/// Binary type 4.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewWithMetadata {
    /// The metadata.
    pub metadata: PreviewMetadata,
    /// The encoded image, a slice of the frame (no copy).
    pub image: Bytes,
}

/// A message the parser does not know, kept whole so nothing is lost.
#[derive(Debug, Clone, PartialEq)]
pub struct Unknown {
    /// The text `type`, or `binary:N` for binary event type N.
    pub kind: String,
    /// The `data` of a text message (`Null` for binary).
    pub data: Value,
    /// The frame as received.
    pub raw: Frame,
}

/// The `feature_flags` message sent first on every socket.
pub fn feature_flags_message(flags: &Map<String, Value>) -> String {
    serde_json::json!({ "type": "feature_flags", "data": flags }).to_string()
}

pub(crate) fn number<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    f64::deserialize(d)
}

fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let n = Option::<f64>::deserialize(d)?;
    Ok(n.filter(|v| v.is_finite() && *v >= 0.0).map(|v| v as u64))
}

/// A list of strings where the server sometimes sends numbers or `null`.
fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let items = Option::<Vec<Value>>::deserialize(d)?.unwrap_or_default();
    Ok(items
        .into_iter()
        .map(|v| match v {
            Value::String(s) => s,
            other => other.to_string(),
        })
        .collect())
}
