//! Typed, frozen event classes (one per kind) and the [`Converter`] that
//! makes them from the client's events. They are Rust classes rather than
//! Python dataclasses because they are made on the hot path: a firehose
//! delivers hundreds of thousands a second. Their text fields hold Python
//! strings, made once per event (and shared between events when they
//! repeat), so reading a field twice does not build two strings.

use comfywire_host::comfywire_client::Event;
use comfywire_host::comfywire_client::proto::ServerMessage;
use comfywire_host::{CALLBACK_ERROR, HostEvent, HostOutcome, HostStatus};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyFloat, PyList, PyString};
use pyo3::{PyClass, PyClassInitializer};
use serde_json::Value;

use crate::convert::{text_to_py, to_py};

/// Longest field repr before it is shortened (outputs can be large).
const REPR_LIMIT: usize = 120;

trait ReprField {
    fn repr_field(&self, py: Python<'_>) -> PyResult<String>;
}

impl ReprField for Py<PyString> {
    fn repr_field(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.bind(py).repr()?.to_string())
    }
}

impl ReprField for Option<Py<PyString>> {
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
        state: Py<PyString>,
        /// The next (or current) connect attempt.
        attempt: i64,
        /// Milliseconds until the next attempt, when one is scheduled.
        next_retry_ms: Option<i64>,
        /// What ended the last connection or attempt.
        last_error: Option<Py<PyString>>,
    }
    /// The server's queue status.
    Status = "status" {
        /// Prompts left in the queue.
        queue_remaining: i64,
        /// The session id the server gave this socket.
        sid: Option<Py<PyString>>,
    }
    /// The server's feature flags.
    FeatureFlags = "feature_flags" {
        /// The flags as a dict.
        flags: Py<PyAny>,
    }
    /// A prompt was queued.
    PromptQueued = "prompt_queued" {
        /// The prompt.
        prompt_id: Py<PyString>,
        /// Its queue number.
        number: i64,
    }
    /// A prompt started executing.
    ExecutionStarted = "execution_started" {
        /// The prompt.
        prompt_id: Py<PyString>,
    }
    /// Nodes were served from the cache.
    NodesCached = "nodes_cached" {
        /// The prompt.
        prompt_id: Py<PyString>,
        /// Node ids.
        nodes: Py<PyAny>,
    }
    /// A node started.
    NodeStarted = "node_started" {
        /// The prompt.
        prompt_id: Py<PyString>,
        /// The node.
        node: Py<PyString>,
        /// The node to show it on.
        display_node: Option<Py<PyString>>,
    }
    /// Step progress of a node (throttled unless `progress_interval_ms=0`).
    Progress = "progress" {
        /// The prompt.
        prompt_id: Py<PyString>,
        /// The node.
        node: Py<PyString>,
        /// The node to show it on.
        display_node: Option<Py<PyString>>,
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
        prompt_id: Option<Py<PyString>>,
        /// The node, when the server said.
        node: Option<Py<PyString>>,
        /// Encoded image bytes.
        image: Py<PyBytes>,
        /// Its MIME type.
        mime: Py<PyString>,
    }
    /// A node's progress text.
    ProgressText = "progress_text" {
        /// The prompt.
        prompt_id: Option<Py<PyString>>,
        /// The node.
        node: Py<PyString>,
        /// The text.
        text: Py<PyString>,
    }
    /// A node's UI output.
    Output = "output" {
        /// The prompt.
        prompt_id: Py<PyString>,
        /// The node.
        node: Py<PyString>,
        /// The node to show it on.
        display_node: Option<Py<PyString>>,
        /// The output dict (`images`, `text`, ...).
        output: Py<PyAny>,
        /// True when it was missed on the socket and recovered from history.
        recovered: bool,
    }
    /// A node finished.
    NodeFinished = "node_finished" {
        /// The prompt.
        prompt_id: Py<PyString>,
        /// The node.
        node: Py<PyString>,
    }
    /// A node is waiting on something (e.g. a missing model).
    Blocked = "blocked" {
        /// The prompt.
        prompt_id: Option<Py<PyString>>,
        /// The node.
        node: Option<Py<PyString>>,
        /// Why.
        message: Py<PyString>,
    }
    /// The one terminal event of a prompt.
    Finished = "finished" {
        /// The prompt.
        prompt_id: Py<PyString>,
        /// `succeeded`, `failed`, `interrupted` or `lost`.
        status: Py<PyString>,
        /// The full outcome (`comfywire.Outcome`), built on first read.
        outcome: LazyOutcome,
    }
    /// A server message comfywire passes through (unknown or custom types).
    Message = "message" {
        /// The message type.
        name: Py<PyString>,
        /// Its data, for unknown types.
        data: Py<PyAny>,
    }
    /// A frame that did not parse.
    BadFrame = "bad_frame" {
        /// The parse error.
        error: Py<PyString>,
        /// The frame's size in bytes.
        size: i64,
    }
    /// A reconciliation request failed (it is retried).
    HttpFailed = "http_failed" {
        /// The prompt it was for.
        prompt_id: Option<Py<PyString>>,
        /// The error.
        error: Py<PyString>,
    }
    /// A callback raised; the client went on.
    CallbackError = "callback_error" {
        /// The prompt of the event that was being delivered.
        prompt_id: Option<Py<PyString>>,
        /// The kind of the event that was being delivered.
        failed_kind: Py<PyString>,
        /// The exception, as text.
        error: Py<PyString>,
    }
}

/// A `comfywire.Outcome` built when first read: callbacks and loops often
/// look only at `status`, and the outcome (every node, every output,
/// through JSON into the Python dataclass) costs more than the rest of the
/// event together.
pub(crate) struct LazyOutcome {
    record: std::sync::Arc<comfywire_host::comfywire_client::ExecutionRecord>,
    made: PyOnceLock<Py<PyAny>>,
}

impl LazyOutcome {
    fn get(&self, py: Python<'_>) -> PyResult<&Py<PyAny>> {
        self.made.get_or_try_init(py, || {
            let outcome = HostOutcome::from_record(&self.record);
            outcome_from_json(py, &outcome.to_json().to_string())
        })
    }
}

impl<'py> IntoPyObject<'py> for &LazyOutcome {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        Ok(self.get(py)?.bind(py).clone())
    }
}

impl ReprField for LazyOutcome {
    fn repr_field(&self, py: Python<'_>) -> PyResult<String> {
        self.get(py)?.repr_field(py)
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

/// Strings cached per converter: a firehose repeats one prompt id, a few
/// node ids and one MIME type, and a handful of slots catch them all.
const CACHE_SLOTS: usize = 8;
/// Longer strings (progress text, error messages) rarely repeat: not cached.
const CACHE_MAX_LEN: usize = 64;

/// Turns events into the typed Python classes. One per stream or callback:
/// it keeps the last few short strings as Python objects, so hundreds of
/// consecutive progress events share one `prompt_id` and `node` string
/// instead of each allocating and copying its own.
#[derive(Default)]
pub(crate) struct Converter {
    strings: Vec<(Box<str>, Py<PyString>)>,
    // The slot the next new string replaces once all are taken.
    evict: usize,
}

/// A new instance of an event class, as a plain object.
fn new<T>(py: Python<'_>, value: T) -> PyResult<Py<PyAny>>
where
    T: PyClass + Into<PyClassInitializer<T>>,
{
    Ok(Py::new(py, value)?.into_any())
}

fn plain(py: Python<'_>, s: &str) -> Py<PyString> {
    PyString::new(py, s).unbind()
}

impl Converter {
    /// `s` as a Python string, shared with earlier events when it repeats.
    fn str(&mut self, py: Python<'_>, s: &str) -> Py<PyString> {
        if s.len() > CACHE_MAX_LEN {
            return plain(py, s);
        }
        if let Some((_, cached)) = self.strings.iter().find(|(k, _)| **k == *s) {
            return cached.clone_ref(py);
        }
        let made = plain(py, s);
        let entry = (Box::from(s), made.clone_ref(py));
        if self.strings.len() < CACHE_SLOTS {
            self.strings.push(entry);
        } else {
            self.strings[self.evict] = entry;
            self.evict = (self.evict + 1) % CACHE_SLOTS;
        }
        made
    }

    fn opt(&mut self, py: Python<'_>, s: Option<&str>) -> Option<Py<PyString>> {
        s.map(|s| self.str(py, s))
    }

    /// The typed Python event for a client event.
    pub(crate) fn event(&mut self, py: Python<'_>, event: &Event) -> PyResult<Py<PyAny>> {
        // Every kind with a prompt carries it here (a `Blocked` error, a
        // `Finished` record): one source for all of them.
        let pid = event.prompt_id();
        match event {
            Event::Connection(status) => {
                let s = HostStatus::from_status(status);
                new(
                    py,
                    ConnectionChanged {
                        state: self.str(py, &s.state),
                        attempt: i64::from(s.attempt),
                        next_retry_ms: s.next_retry_ms.map(|ms| ms as i64),
                        last_error: s.last_error.as_deref().map(|e| plain(py, e)),
                    },
                )
            }
            Event::Status {
                queue_remaining,
                sid,
            } => new(
                py,
                Status {
                    queue_remaining: queue_remaining.unwrap_or(0) as i64,
                    sid: self.opt(py, sid.as_deref()),
                },
            ),
            Event::FeatureFlags(flags) => {
                let dict = PyDict::new(py);
                for (k, v) in flags {
                    dict.set_item(k, to_py(py, v)?)?;
                }
                new(
                    py,
                    FeatureFlags {
                        flags: dict.into_any().unbind(),
                    },
                )
            }
            Event::PromptQueued { prompt_id, number } => new(
                py,
                PromptQueued {
                    prompt_id: self.str(py, prompt_id),
                    number: number.unwrap_or(0) as i64,
                },
            ),
            Event::ExecutionStarted { prompt_id } => new(
                py,
                ExecutionStarted {
                    prompt_id: self.str(py, prompt_id),
                },
            ),
            Event::NodesCached { prompt_id, nodes } => new(
                py,
                NodesCached {
                    prompt_id: self.str(py, prompt_id),
                    nodes: PyList::new(py, nodes)?.into_any().unbind(),
                },
            ),
            Event::NodeStarted {
                prompt_id,
                node,
                display_node,
            } => new(
                py,
                NodeStarted {
                    prompt_id: self.str(py, prompt_id),
                    node: self.str(py, node),
                    display_node: self.opt(py, display_node.as_deref()),
                },
            ),
            Event::Progress(p) => new(
                py,
                Progress {
                    prompt_id: self.str(py, &p.prompt_id),
                    node: self.str(py, &p.node),
                    display_node: self.opt(py, p.display_node.as_deref()),
                    value: p.value,
                    max: p.max,
                    overall: p.overall,
                },
            ),
            Event::Preview(p) => new(
                py,
                Preview {
                    prompt_id: self.opt(py, p.prompt_id.as_deref()),
                    node: self.opt(py, p.node.as_deref()),
                    image: PyBytes::new(py, &p.image).unbind(),
                    mime: self.str(py, &p.mime),
                },
            ),
            Event::ProgressText {
                prompt_id,
                node,
                text,
            } => new(
                py,
                ProgressText {
                    prompt_id: self.opt(py, prompt_id.as_deref()),
                    node: self.str(py, node),
                    text: plain(py, text),
                },
            ),
            Event::Output {
                prompt_id,
                node,
                display_node,
                output,
                recovered,
            } => new(
                py,
                Output {
                    prompt_id: self.str(py, prompt_id),
                    node: self.str(py, node),
                    display_node: self.opt(py, display_node.as_deref()),
                    output: to_py(py, output)?.unbind(),
                    recovered: *recovered,
                },
            ),
            Event::NodeFinished { prompt_id, node } => new(
                py,
                NodeFinished {
                    prompt_id: self.str(py, prompt_id),
                    node: self.str(py, node),
                },
            ),
            Event::Blocked(e) => new(
                py,
                Blocked {
                    prompt_id: self.opt(py, pid),
                    node: self.opt(py, e.node_id.as_deref()),
                    message: plain(py, &e.exception_message),
                },
            ),
            Event::Finished(record) => new(
                py,
                Finished {
                    prompt_id: self.str(py, pid.unwrap_or_default()),
                    status: self.str(py, record.phase.name()),
                    outcome: LazyOutcome {
                        record: record.clone(),
                        made: PyOnceLock::new(),
                    },
                },
            ),
            Event::Message(m) => {
                let data = match m.as_ref() {
                    ServerMessage::Unknown(u) => to_py(py, &u.data)?.unbind(),
                    _ => py.None(),
                };
                new(
                    py,
                    Message {
                        name: self.str(py, m.kind()),
                        data,
                    },
                )
            }
            Event::BadFrame { error, raw } => new(
                py,
                BadFrame {
                    error: plain(py, &error.to_string()),
                    size: raw.len() as i64,
                },
            ),
            Event::HttpFailed { error, .. } => new(
                py,
                HttpFailed {
                    prompt_id: self.opt(py, pid),
                    error: plain(py, error),
                },
            ),
            // A kind newer than this module: its flat record passes
            // through as a message rather than failing the stream.
            _ => self.host_event(py, &HostEvent::from_event(event)),
        }
    }

    /// The typed Python event for a flat host record: a callback failure
    /// report, or a kind newer than this module (as a `Message`).
    pub(crate) fn host_event(&mut self, py: Python<'_>, e: &HostEvent) -> PyResult<Py<PyAny>> {
        if e.kind == CALLBACK_ERROR {
            let detail: Value = e
                .json
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or(Value::Null);
            return new(
                py,
                CallbackError {
                    prompt_id: self.opt(py, e.prompt_id.as_deref()),
                    failed_kind: self.str(py, detail["failed_kind"].as_str().unwrap_or_default()),
                    error: plain(py, e.text.as_deref().unwrap_or_default()),
                },
            );
        }
        new(
            py,
            Message {
                name: self.str(py, &e.kind),
                data: text_to_py(py, e.json.as_deref())?.unbind(),
            },
        )
    }
}
