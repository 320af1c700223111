//! The client's error type: one variant per thing a caller can act on.

use std::sync::Arc;
use std::time::Duration;

use comfywire_proto::ExecutionRecord;
use serde_json::Value;

/// One error of one node in a validation failure.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeValidationError {
    /// The node id.
    pub node_id: String,
    /// Its `class_type`.
    pub class_type: Option<String>,
    /// `type` of the error (e.g. `value_smaller_than_min`).
    pub kind: String,
    /// Human message.
    pub message: String,
    /// Details (often `input: value`).
    pub details: String,
    /// Raw `extra_info`.
    pub extra_info: Value,
}

/// A refused (400) or partially refused (200 with `node_errors`) prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidationError {
    /// `error.type` (`prompt_outputs_failed_validation`, `invalid_prompt`, ...).
    pub kind: String,
    /// `error.message`.
    pub message: String,
    /// `error.details`.
    pub details: String,
    /// Every node's errors, flattened, in the server's order.
    pub node_errors: Vec<NodeValidationError>,
}

impl ValidationError {
    /// Reads the server's `{"error": ..., "node_errors": ...}` body.
    pub fn from_body(body: &Value) -> ValidationError {
        let error = body.get("error").cloned().unwrap_or(Value::Null);
        let text = |v: &Value, key: &str| {
            v.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let (kind, message, details) = match &error {
            // Some proxies and handlers send a bare string.
            Value::String(s) => ("error".to_owned(), s.clone(), String::new()),
            other => (
                text(other, "type"),
                text(other, "message"),
                text(other, "details"),
            ),
        };
        let mut node_errors = Vec::new();
        if let Some(map) = body.get("node_errors").and_then(Value::as_object) {
            for (node_id, entry) in map {
                let class_type = entry
                    .get("class_type")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                for e in entry
                    .get("errors")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    node_errors.push(NodeValidationError {
                        node_id: node_id.clone(),
                        class_type: class_type.clone(),
                        kind: text(e, "type"),
                        message: text(e, "message"),
                        details: text(e, "details"),
                        extra_info: e.get("extra_info").cloned().unwrap_or(Value::Null),
                    });
                }
            }
        }
        ValidationError {
            kind,
            message,
            details,
            node_errors,
        }
    }

    /// One line per node error, for people.
    pub fn summary(&self) -> String {
        let mut out = format!("{}: {}", self.kind, self.message);
        if !self.details.is_empty() {
            out.push_str(&format!(" ({})", self.details));
        }
        for e in &self.node_errors {
            out.push_str(&format!(
                "\n  node {} ({}): {}: {}",
                e.node_id,
                e.class_type.as_deref().unwrap_or("?"),
                e.message,
                e.details
            ));
        }
        out
    }
}

/// Which deadline of a wait expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineKind {
    /// The prompt did not start in time.
    Queue,
    /// Nothing happened to the running prompt for too long.
    Stall,
    /// The whole run took too long.
    Total,
}

impl DeadlineKind {
    /// A stable lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            DeadlineKind::Queue => "queue",
            DeadlineKind::Stall => "stall",
            DeadlineKind::Total => "total",
        }
    }
}

/// Everything that can go wrong, with stable codes for bindings.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is unusable (bad URL, bad header). Not retried.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The request never got an answer (refused, reset, timeout). The
    /// request may be retried.
    #[error("request failed: {0}")]
    Request(String),
    /// No connection could be made, so nothing was sent (refused, no
    /// route, a failed TLS handshake). The request may be retried.
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The server answered an unexpected status.
    #[error("HTTP {status}: {body}")]
    Http {
        /// Status code.
        status: u16,
        /// Body text (shortened).
        body: String,
    },
    /// The server answered something that is not the expected JSON.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// The server refused the prompt; nothing was queued.
    #[error("prompt refused: {}", .0.summary())]
    Validation(Box<ValidationError>),
    /// A node raised; the record holds the server's error payload.
    #[error("execution failed: {}", describe_failure(.0))]
    ExecutionFailed(Arc<ExecutionRecord>),
    /// The prompt was interrupted.
    #[error("prompt {} was interrupted", .0.prompt_id)]
    Interrupted(Arc<ExecutionRecord>),
    /// The server no longer knows the prompt (restart, history cleared).
    #[error("prompt {prompt_id} was lost: {reason}")]
    Lost {
        /// The prompt.
        prompt_id: String,
        /// Why the client concluded so.
        reason: String,
    },
    /// A deadline of `run`/`wait` expired; the prompt itself is untouched.
    #[error("{} deadline of {after:?} expired for prompt {prompt_id}", kind.name())]
    Deadline {
        /// Which deadline.
        kind: DeadlineKind,
        /// The prompt.
        prompt_id: String,
        /// The configured duration.
        after: Duration,
    },
    /// The client was closed.
    #[error("client is closed")]
    Closed,
    /// A local file could not be read or written.
    #[error("I/O error: {0}")]
    Io(String),
    /// An HTTP answer was larger than the limit of its endpoint (declared
    /// by its `Content-Length`, or counted while reading it); reading
    /// stopped there and nothing of it was used (a partial download is
    /// deleted). Not fatal to the client. Raise the named setting (see
    /// [`crate::BodyLimits`]) only for a server you trust.
    #[error("{what}: the answer is larger than the limit of {limit} bytes (setting `{setting}`)")]
    TooLarge {
        /// The request (method and URL without credentials).
        what: String,
        /// The limit, bytes.
        limit: u64,
        /// The settings-file key that sets it (`max_history_mib`, ...).
        setting: &'static str,
    },
}

fn describe_failure(record: &ExecutionRecord) -> String {
    match &record.outcome {
        Some(comfywire_proto::Outcome::Failed(e)) => format!(
            "node {} ({}) raised {}: {}",
            e.node_id.as_deref().unwrap_or("?"),
            e.node_type.as_deref().unwrap_or("?"),
            e.exception_type,
            e.exception_message.trim_end()
        ),
        _ => format!("prompt {}", record.prompt_id),
    }
}

impl Error {
    /// A stable numeric code shared by every binding.
    pub fn code(&self) -> u32 {
        match self {
            Error::Config(_) => 2,
            Error::Request(_) | Error::Connect(_) => 3,
            Error::Http { .. } => 4,
            Error::Protocol(_) => 5,
            Error::Validation(_) => 10,
            Error::ExecutionFailed(_) => 11,
            Error::Interrupted(_) => 12,
            Error::Lost { .. } => 13,
            Error::Deadline { .. } => 14,
            Error::Closed => 20,
            Error::Io(_) => 21,
            Error::TooLarge { .. } => 6,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e.to_string())
    }
}
