//! Typed, frozen event classes (one per kind) and the mapping from the
//! host's flat `HostEvent`. They are Rust classes rather than Python
//! dataclasses because they are made on the hot path: a firehose delivers
//! hundreds of thousands a second.

use comfywire_host::HostEvent;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyFloat, PyString};
use serde_json::Value;

use crate::convert::text_to_py;

/// Longest field repr before it is shortened (outputs can be large).
const REPR_LIMIT: usize = 120;

trait ReprField {
    fn repr_field(&self, py: Python<'_>) -> PyResult<String>;
}

impl ReprField for String {
    fn repr_field(&self, py: Python<'_>) -> PyResult<String> {
        Ok(PyString::new(py, self).repr()?.to_string())
    }
}

impl ReprField for Option<String> {
    fn repr_field(&self, py: Python<'_>) -> PyResult<String> {
        match self {
            Some(s) => s.repr_field(py),
            None => Ok("None".into()),
        }
    }
}

impl ReprField for f64 {
    fn repr_field(&self, py: Python<'_>) -> PyResult<String> {
        Ok(PyFloat::new(py, *self).repr()?.to_string())
    }
}

impl ReprField for i64 {
    fn repr_field(&self, _py: Python<'_>) -> PyResult<String> {
        Ok(self.to_string())
    }
}

impl ReprField for Option<i64> {
    fn repr_field(&self, _py: Python<'_>) -> PyResult<String> {
        Ok(self.map_or_else(|| "None".into(), |v| v.to_string()))
    }
}

impl ReprField for bool {
    fn repr_field(&self, _py: Python<'_>) -> PyResult<String> {
        Ok(if *self { "True" } else { "False" }.into())
    }
}

impl ReprField for Py<PyAny> {
    fn repr_field(&self, py: Python<'_>) -> PyResult<String> {
        let text = self.bind(py).repr()?.to_string();
        Ok(match text.char_indices().nth(REPR_LIMIT) {
            Some((cut, _)) => format!("{}...", &text[..cut]),
            None => text,
        })
    }
}

impl ReprField for Py<PyBytes> {
    fn repr_field(&self, py: Python<'_>) -> PyResult<String> {
        Ok(format!("<{} bytes>", self.bind(py).as_bytes().len()))
    }
}

macro_rules! event_classes {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident = $kind:literal {
            $( $(#[doc = $fdoc:literal])* $field:ident : $ty:ty ),* $(,)?
        }
    )*) => {
        $(
            $(#[doc = $doc])*
            #[pyclass(frozen, module = "comfywire", get_all)]
            pub(crate) struct $name {
                $( $(#[doc = $fdoc])* pub(crate) $field: $ty, )*
            }

            #[pymethods]
            impl $name {
                /// The kind name, as given to `Client.on`.
                #[classattr]
                fn kind() -> &'static str {
                    $kind
                }

                fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                    let parts: Vec<String> = vec![
                        $( format!("{}={}", stringify!($field), self.$field.repr_field(py)?), )*
                    ];
                    Ok(format!("{}({})", stringify!($name), parts.join(", ")))
                }
            }
        )*

        /// Adds every event class to the module.
        pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
            $( m.add_class::<$name>()?; )*
            Ok(())
        }
    };
}

event_classes! {
    /// The connection state changed.
    ConnectionChanged = "connection" {
        /// `idle`, `connecting`, `connected`, `reconnecting`, `polling`, `paused` or `closed`.
        state: String,
        /// The next (or current) connect attempt.
        attempt: i64,
        /// Milliseconds until the next attempt, when one is scheduled.
        next_retry_ms: Option<i64>,
        /// What ended the last connection or attempt.
        last_error: Option<String>,
    }
    /// The server's queue status.
    Status = "status" {
        /// Prompts left in the queue.
        queue_remaining: i64,
        /// The session id the server gave this socket.
        sid: Option<String>,
    }
    /// The server's feature flags.
    FeatureFlags = "feature_flags" {
        /// The flags as a dict.
        flags: Py<PyAny>,
    }
    /// A prompt was queued.
    PromptQueued = "prompt_queued" {
        /// The prompt.
        prompt_id: String,
        /// Its queue number.
        number: i64,
    }
    /// A prompt started executing.
    ExecutionStarted = "execution_started" {
        /// The prompt.
        prompt_id: String,
    }
    /// Nodes were served from the cache.
    NodesCached = "nodes_cached" {
        /// The prompt.
        prompt_id: String,
        /// Node ids.
        nodes: Py<PyAny>,
    }
    /// A node started.
    NodeStarted = "node_started" {
        /// The prompt.
        prompt_id: String,
        /// The node.
        node: String,
        /// The node to show it on.
        display_node: Option<String>,
    }
    /// Step progress of a node (throttled unless `progress_interval_ms=0`).
    Progress = "progress" {
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
        /// Whole-prompt progress in [0, 1].
        overall: f64,
    }
    /// A preview image.
    Preview = "preview" {
        /// The prompt, when the server said.
        prompt_id: Option<String>,
        /// The node, when the server said.
        node: Option<String>,
        /// Encoded image bytes.
        image: Py<PyBytes>,
        /// Its MIME type.
        mime: String,
    }
    /// A node's progress text.
    ProgressText = "progress_text" {
        /// The prompt.
        prompt_id: Option<String>,
        /// The node.
        node: String,
        /// The text.
        text: String,
    }
    /// A node's UI output.
    Output = "output" {
        /// The prompt.
        prompt_id: String,
        /// The node.
        node: String,
        /// The node to show it on.
        display_node: Option<String>,
        /// The output dict (`images`, `text`, ...).
        output: Py<PyAny>,
        /// True when it was missed on the socket and recovered from history.
        recovered: bool,
    }
    /// A node finished.
    NodeFinished = "node_finished" {
        /// The prompt.
        prompt_id: String,
        /// The node.
        node: String,
    }
    /// A node is waiting on something (e.g. a missing model).
    Blocked = "blocked" {
        /// The prompt.
        prompt_id: Option<String>,
        /// The node.
        node: Option<String>,
        /// Why.
        message: String,
    }
    /// The one terminal event of a prompt.
    Finished = "finished" {
        /// The prompt.
        prompt_id: String,
        /// `succeeded`, `failed`, `interrupted` or `lost`.
        status: String,
        /// The full outcome (`comfywire.Outcome`).
        outcome: Py<PyAny>,
    }
    /// A server message comfywire passes through (unknown or custom types).
    Message = "message" {
        /// The message type.
        name: String,
        /// Its data, for unknown types.
        data: Py<PyAny>,
    }
    /// A frame that did not parse.
    BadFrame = "bad_frame" {
        /// The parse error.
        error: String,
        /// The frame's size in bytes.
        size: i64,
    }
    /// A reconciliation request failed (it is retried).
    HttpFailed = "http_failed" {
        /// The prompt it was for.
        prompt_id: Option<String>,
        /// The error.
        error: String,
    }
    /// A callback raised; the client went on.
    CallbackError = "callback_error" {
        /// The prompt of the event that was being delivered.
        prompt_id: Option<String>,
        /// The kind of the event that was being delivered.
        failed_kind: String,
        /// The exception, as text.
        error: String,
    }
}

static OUTCOME_FROM_JSON: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A `comfywire.Outcome` made from the host's outcome JSON.
pub(crate) fn outcome_from_json(py: Python<'_>, json: &str) -> PyResult<Py<PyAny>> {
    let make = OUTCOME_FROM_JSON.get_or_try_init(py, || {
        py.import("comfywire._types")?
            .getattr("_outcome_from_json")
            .map(Bound::unbind)
    })?;
    make.call1(py, (json,))
}

fn text(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

/// The typed Python event for a host event.
pub(crate) fn to_py(py: Python<'_>, e: &HostEvent) -> PyResult<Py<PyAny>> {
    let pid = || text(&e.prompt_id);
    let node = || text(&e.node);
    let any = |obj: Py<PyAny>| obj;
    Ok(match e.kind.as_str() {
        "connection" => {
            let status: Value = e
                .json
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or(Value::Null);
            Py::new(
                py,
                ConnectionChanged {
                    state: text(&e.text),
                    attempt: status["attempt"].as_i64().unwrap_or(0),
                    next_retry_ms: status["next_retry_ms"].as_i64(),
                    last_error: status["last_error"].as_str().map(str::to_owned),
                },
            )?
            .into_any()
        }
        "status" => Py::new(
            py,
            Status {
                queue_remaining: e.value as i64,
                sid: e.text.clone(),
            },
        )?
        .into_any(),
        "feature_flags" => Py::new(
            py,
            FeatureFlags {
                flags: text_to_py(py, e.json.as_deref())?.unbind(),
            },
        )?
        .into_any(),
        "prompt_queued" => Py::new(
            py,
            PromptQueued {
                prompt_id: pid(),
                number: e.value as i64,
            },
        )?
        .into_any(),
        "execution_started" => Py::new(py, ExecutionStarted { prompt_id: pid() })?.into_any(),
        "nodes_cached" => Py::new(
            py,
            NodesCached {
                prompt_id: pid(),
                nodes: text_to_py(py, e.json.as_deref())?.unbind(),
            },
        )?
        .into_any(),
        "node_started" => Py::new(
            py,
            NodeStarted {
                prompt_id: pid(),
                node: node(),
                display_node: e.display_node.clone(),
            },
        )?
        .into_any(),
        "progress" => Py::new(
            py,
            Progress {
                prompt_id: pid(),
                node: node(),
                display_node: e.display_node.clone(),
                value: e.value,
                max: e.max,
                overall: e.overall,
            },
        )?
        .into_any(),
        "preview" => Py::new(
            py,
            Preview {
                prompt_id: e.prompt_id.clone(),
                node: e.node.clone(),
                image: PyBytes::new(py, e.image.as_deref().unwrap_or_default()).unbind(),
                mime: text(&e.mime),
            },
        )?
        .into_any(),
        "progress_text" => Py::new(
            py,
            ProgressText {
                prompt_id: e.prompt_id.clone(),
                node: node(),
                text: text(&e.text),
            },
        )?
        .into_any(),
        "output" => Py::new(
            py,
            Output {
                prompt_id: pid(),
                node: node(),
                display_node: e.display_node.clone(),
                output: text_to_py(py, e.json.as_deref())?.unbind(),
                recovered: e.value != 0.0,
            },
        )?
        .into_any(),
        "node_finished" => Py::new(
            py,
            NodeFinished {
                prompt_id: pid(),
                node: node(),
            },
        )?
        .into_any(),
        "blocked" => Py::new(
            py,
            Blocked {
                prompt_id: e.prompt_id.clone(),
                node: e.node.clone(),
                message: text(&e.text),
            },
        )?
        .into_any(),
        "finished" => Py::new(
            py,
            Finished {
                prompt_id: pid(),
                status: text(&e.text),
                outcome: outcome_from_json(py, e.json.as_deref().unwrap_or("{}"))?,
            },
        )?
        .into_any(),
        "message" => Py::new(
            py,
            Message {
                name: text(&e.text),
                data: text_to_py(py, e.json.as_deref())?.unbind(),
            },
        )?
        .into_any(),
        "bad_frame" => Py::new(
            py,
            BadFrame {
                error: text(&e.text),
                size: e.value as i64,
            },
        )?
        .into_any(),
        "http_failed" => Py::new(
            py,
            HttpFailed {
                prompt_id: e.prompt_id.clone(),
                error: text(&e.text),
            },
        )?
        .into_any(),
        "callback_error" => {
            let detail: Value = e
                .json
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or(Value::Null);
            Py::new(
                py,
                CallbackError {
                    prompt_id: e.prompt_id.clone(),
                    failed_kind: detail["failed_kind"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    error: text(&e.text),
                },
            )?
            .into_any()
        }
        // A kind newer than this module: pass it through as a message
        // rather than failing the stream.
        other => any(Py::new(
            py,
            Message {
                name: other.to_owned(),
                data: text_to_py(py, e.json.as_deref())?.unbind(),
            },
        )?
        .into_any()),
    })
}
