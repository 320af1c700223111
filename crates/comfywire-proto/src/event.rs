//! What the session reports to its user: semantic events, already tracked,
//! throttled and attributed to prompts and nodes.
//!
//! Prompt and node ids are `Arc<str>` shared with the tracker's records:
//! a sampler run emits a progress event per step and a driver hands each
//! event to every subscriber, so an id costs a reference count there, not
//! a fresh string per event and per subscriber.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::error::ParseError;
use crate::frame::Frame;
use crate::message::{ExecutionError, ServerMessage};
use crate::output::NodeOutput;
use crate::reconcile::HttpRequest;
use crate::record::ExecutionRecord;
use crate::state::ConnectionStatus;

/// A throttled progress update for one node.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressUpdate {
    /// The prompt.
    pub prompt_id: Arc<str>,
    /// The node reporting (possibly ephemeral).
    pub node: Arc<str>,
    /// The node of the submitted prompt to show it on.
    pub display_node: Option<Arc<str>>,
    /// Current step.
    pub value: f64,
    /// Total steps.
    pub max: f64,
    /// Whole-prompt progress in `[0, 1]`: finished nodes plus the running
    /// nodes' step fractions, over the prompt's node count when known.
    pub overall: f64,
    /// When the node should finish at its pace so far (time since it
    /// started over the steps done, times the steps left); `None` before
    /// its first step or after its last.
    pub eta: Option<std::time::Duration>,
}

/// A preview image, attributed as well as the protocol allows.
#[derive(Debug, Clone, PartialEq)]
pub struct PreviewImage {
    /// The prompt (always known for type-4 frames; inferred for type 1).
    pub prompt_id: Option<Arc<str>>,
    /// The node (always known for type-4 frames; inferred for type 1).
    pub node: Option<Arc<str>>,
    /// MIME type of `image`.
    pub mime: String,
    /// Encoded image bytes, in a buffer of their own rather than a slice of
    /// the frame: a frame is usually a slice of the socket's read buffer,
    /// and a preview held by a throttle or a slow subscriber would
    /// otherwise keep that whole buffer alive and make the WebSocket
    /// library allocate and copy a new one.
    pub image: Bytes,
}

/// One event out of [`crate::Session::poll_event`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The connection state or its last error changed.
    Connection(ConnectionStatus),
    /// The server's queue size (from `status`, or from `/queue` while polling).
    Status {
        /// Pending plus running prompts.
        queue_remaining: Option<u64>,
        /// The session id, on the first frame of a socket.
        sid: Option<String>,
    },
    /// The server's feature flags.
    FeatureFlags(Map<String, Value>),
    /// A prompt of ours was accepted into the queue.
    PromptQueued {
        /// The prompt.
        prompt_id: Arc<str>,
        /// Its queue number.
        number: Option<u64>,
    },
    /// A prompt started running.
    ExecutionStarted {
        /// The prompt.
        prompt_id: Arc<str>,
    },
    /// Nodes served from the cache.
    NodesCached {
        /// The prompt.
        prompt_id: Arc<str>,
        /// The cached nodes.
        nodes: Vec<String>,
    },
    /// A node started.
    NodeStarted {
        /// The prompt.
        prompt_id: Arc<str>,
        /// The node (possibly ephemeral).
        node: Arc<str>,
        /// The node to show it on.
        display_node: Option<Arc<str>>,
    },
    /// Step progress (throttled; may be coalesced).
    Progress(ProgressUpdate),
    /// A preview image (rate limited; may be coalesced).
    Preview(PreviewImage),
    /// Per-node progress text.
    ProgressText {
        /// The prompt, when it could be inferred.
        prompt_id: Option<Arc<str>>,
        /// The node.
        node: Arc<str>,
        /// The text.
        text: String,
    },
    /// A node's UI output.
    Output {
        /// The prompt.
        prompt_id: Arc<str>,
        /// The node (possibly ephemeral).
        node: Arc<str>,
        /// The node to show it on.
        display_node: Option<Arc<str>>,
        /// The UI output dict, as the server's JSON text.
        output: NodeOutput,
        /// True when it was recovered from `/history` after a gap.
        recovered: bool,
    },
    /// A node finished.
    NodeFinished {
        /// The prompt.
        prompt_id: Arc<str>,
        /// The node.
        node: Arc<str>,
    },
    /// A non-terminal `ExecutionBlocked` error.
    Blocked(Arc<ExecutionError>),
    /// The one terminal event of a prompt, with its whole record.
    Finished(Arc<ExecutionRecord>),
    /// A message with no tracker meaning (`logs`, `display_component`,
    /// custom types), passed through.
    Message(Arc<ServerMessage>),
    /// A frame that could not be parsed; the connection goes on.
    BadFrame {
        /// Why.
        error: ParseError,
        /// The frame as received.
        raw: Frame,
    },
    /// A reconciliation request failed; it will be retried.
    HttpFailed {
        /// The request.
        request: HttpRequest,
        /// What went wrong.
        error: String,
    },
}

/// The kind of an [`Event`], for subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum EventKind {
    /// [`Event::Connection`].
    Connection,
    /// [`Event::Status`].
    Status,
    /// [`Event::FeatureFlags`].
    FeatureFlags,
    /// [`Event::PromptQueued`].
    PromptQueued,
    /// [`Event::ExecutionStarted`].
    ExecutionStarted,
    /// [`Event::NodesCached`].
    NodesCached,
    /// [`Event::NodeStarted`].
    NodeStarted,
    /// [`Event::Progress`].
    Progress,
    /// [`Event::Preview`].
    Preview,
    /// [`Event::ProgressText`].
    ProgressText,
    /// [`Event::Output`].
    Output,
    /// [`Event::NodeFinished`].
    NodeFinished,
    /// [`Event::Blocked`].
    Blocked,
    /// [`Event::Finished`].
    Finished,
    /// [`Event::Message`].
    Message,
    /// [`Event::BadFrame`].
    BadFrame,
    /// [`Event::HttpFailed`].
    HttpFailed,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 17] = [
        EventKind::Connection,
        EventKind::Status,
        EventKind::FeatureFlags,
        EventKind::PromptQueued,
        EventKind::ExecutionStarted,
        EventKind::NodesCached,
        EventKind::NodeStarted,
        EventKind::Progress,
        EventKind::Preview,
        EventKind::ProgressText,
        EventKind::Output,
        EventKind::NodeFinished,
        EventKind::Blocked,
        EventKind::Finished,
        EventKind::Message,
        EventKind::BadFrame,
        EventKind::HttpFailed,
    ];

    /// The stable snake_case name (used by the CLI's JSON and the bindings).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Connection => "connection",
            EventKind::Status => "status",
            EventKind::FeatureFlags => "feature_flags",
            EventKind::PromptQueued => "prompt_queued",
            EventKind::ExecutionStarted => "execution_started",
            EventKind::NodesCached => "nodes_cached",
            EventKind::NodeStarted => "node_started",
            EventKind::Progress => "progress",
            EventKind::Preview => "preview",
            EventKind::ProgressText => "progress_text",
            EventKind::Output => "output",
            EventKind::NodeFinished => "node_finished",
            EventKind::Blocked => "blocked",
            EventKind::Finished => "finished",
            EventKind::Message => "message",
            EventKind::BadFrame => "bad_frame",
            EventKind::HttpFailed => "http_failed",
        }
    }

    /// The kind with that name.
    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// True for kinds that may be coalesced under load; every other kind is
    /// delivered exactly as emitted.
    pub fn is_lossy(self) -> bool {
        matches!(
            self,
            EventKind::Progress | EventKind::Preview | EventKind::ProgressText
        )
    }
}

impl Event {
    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Connection(_) => EventKind::Connection,
            Event::Status { .. } => EventKind::Status,
            Event::FeatureFlags(_) => EventKind::FeatureFlags,
            Event::PromptQueued { .. } => EventKind::PromptQueued,
            Event::ExecutionStarted { .. } => EventKind::ExecutionStarted,
            Event::NodesCached { .. } => EventKind::NodesCached,
            Event::NodeStarted { .. } => EventKind::NodeStarted,
            Event::Progress(_) => EventKind::Progress,
            Event::Preview(_) => EventKind::Preview,
            Event::ProgressText { .. } => EventKind::ProgressText,
            Event::Output { .. } => EventKind::Output,
            Event::NodeFinished { .. } => EventKind::NodeFinished,
            Event::Blocked(_) => EventKind::Blocked,
            Event::Finished(_) => EventKind::Finished,
            Event::Message(_) => EventKind::Message,
            Event::BadFrame { .. } => EventKind::BadFrame,
            Event::HttpFailed { .. } => EventKind::HttpFailed,
        }
    }

    /// The prompt the event belongs to, if any.
    pub fn prompt_id(&self) -> Option<&str> {
        match self {
            Event::PromptQueued { prompt_id, .. }
            | Event::ExecutionStarted { prompt_id }
            | Event::NodesCached { prompt_id, .. }
            | Event::NodeStarted { prompt_id, .. }
            | Event::Output { prompt_id, .. }
            | Event::NodeFinished { prompt_id, .. } => Some(prompt_id),
            Event::Progress(p) => Some(&p.prompt_id),
            Event::Preview(p) => p.prompt_id.as_deref(),
            Event::ProgressText { prompt_id, .. } => prompt_id.as_deref(),
            Event::Blocked(e) => Some(&e.prompt_id),
            Event::Finished(r) => Some(&r.prompt_id),
            Event::Message(m) => m.prompt_id(),
            _ => None,
        }
    }

    /// True for the terminal event of a prompt.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Event::Finished(_))
    }
}
