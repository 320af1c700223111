//! Typed, frozen event classes (one per kind) and the [`Converter`] that
//! makes them from the client's events: Rust classes, as they are made on
//! the hot path (a firehose delivers hundreds of thousands a second). Text
//! fields hold Python strings made once per event (and shared between
//! events when they repeat). Each class is declared once, with the client
//! event it is made from and how each field is made; `prompt_id`, `node`
//! and `display_node` (the node to show it on) mean the same in all.

use std::sync::Arc;

use comfywire_host::event::{Event, ExecutionRecord, ServerMessage};
use comfywire_host::{HostEvent, HostEventKind, HostOutcome, HostStatus};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyList, PyString};
use pyo3::{IntoPyObjectExt, PyClass, PyClassInitializer};

use crate::convert::{Answer, to_py};

/// Longest field repr before it is shortened (outputs can be large).
const REPR_LIMIT: usize = 120;

/// One field in an event's repr: bytes by size, long containers cut.
fn field_repr(value: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return Ok(format!("<{} bytes>", bytes.as_bytes().len()));
    }
    let text = value.repr()?.to_string();
    Ok(match text.char_indices().nth(REPR_LIMIT) {
        Some((cut, _)) if !value.is_instance_of::<PyString>() => format!("{}...", &text[..cut]),
        _ => text,
    })
}

/// One event class: frozen, every field readable, `kind` and a repr.
macro_rules! event_class {
    ($(#[doc = $doc:literal])* $name:ident = $kind:literal {
        $( $field:ident : $ty:ty ),* $(,)?
    }) => {
        $(#[doc = $doc])*
        #[pyclass(frozen, module = "comfywire", get_all)]
        pub(crate) struct $name {
            $( pub(crate) $field: $ty, )*
        }

        #[pymethods]
        impl $name {
            /// The kind name, as given to `Client.on`.
            #[classattr]
            fn kind() -> &'static str {
                $kind
            }

            fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
                let parts: Vec<String> = vec![$(
                    format!("{}={}", stringify!($field),
                        field_repr(&(&self.$field).into_bound_py_any(py)?)?),
                )*];
                Ok(format!("{}({})", stringify!($name), parts.join(", ")))
            }
        }
    };
}

/// The client's event classes: each with the pattern of the client event
/// it is made from (`let` binds a value its fields share) and each field
/// with the expression that makes it from `$c` (the converter), `$py` and
/// `$event`. Makes [`Converter::event`] and [`register`].
macro_rules! client_events {
    ($c:ident, $py:ident, $event:ident; $(
        $(#[doc = $doc:literal])* $name:ident = $kind:literal,
        $pat:pat => $(let $bind:ident = $value:expr;)? {
            $( $field:ident : $ty:ty = $make:expr ),* $(,)?
        }
    )*) => {
        $( event_class!($(#[doc = $doc])* $name = $kind { $( $field: $ty ),* }); )*

        impl Converter {
            /// The typed Python event for a client event.
            pub(crate) fn event(&mut self, $py: Python<'_>, $event: &Event) -> PyResult<Py<PyAny>> {
                let $c = self;
                match $event {
                    $( $pat => {
                        $(let $bind = $value;)?
                        new($py, $name { $( $field: $make ),* })
                    } )*
                    // A kind newer than this module passes as a message.
                    _ => $c.host_event($py, &HostEvent::from_event($event)),
                }
            }
        }

        /// Adds every event class to the module.
        pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
            $( m.add_class::<$name>()?; )*
            m.add_class::<CallbackError>()
        }
    };
}

client_events! { c, py, event;
    /// The connection state changed: `state` is `idle`, `connecting`,
    /// `connected`, `reconnecting`, `polling`, `paused` or `closed`;
    /// `next_retry_ms` counts down to the next `attempt`, when one is
    /// scheduled; `last_error` ended the last connection or attempt.
    ConnectionChanged = "connection",
    Event::Connection(status) => let s = HostStatus::from_status(status); {
        state: Py<PyString> = c.str(py, &s.state),
        attempt: i64 = i64::from(s.attempt),
        next_retry_ms: Option<i64> = s.next_retry_ms.map(|ms| ms as i64),
        last_error: Option<Py<PyString>> = s.last_error.as_deref().map(|e| plain(py, e)),
    }
    /// The server's queue status: prompts left in the queue, and the
    /// session id the server gave this socket.
    Status = "status",
    Event::Status { queue_remaining, sid } => {
        queue_remaining: i64 = queue_remaining.unwrap_or(0) as i64,
        sid: Option<Py<PyString>> = c.opt(py, sid.as_deref()),
    }
    /// The server's feature flags, as a dict.
    FeatureFlags = "feature_flags",
    Event::FeatureFlags(flags) => {
        flags: Py<PyAny> = to_py(py, &serde_json::Value::Object(flags.clone()))?.unbind(),
    }
    /// A prompt was queued, with its queue number.
    PromptQueued = "prompt_queued",
    Event::PromptQueued { prompt_id, number } => {
        prompt_id: Py<PyString> = c.str(py, prompt_id),
        number: i64 = number.unwrap_or(0) as i64,
    }
    /// A prompt started executing.
    ExecutionStarted = "execution_started",
    Event::ExecutionStarted { prompt_id } => {
        prompt_id: Py<PyString> = c.str(py, prompt_id),
    }
    /// Nodes (a list of ids) were served from the cache.
    NodesCached = "nodes_cached",
    Event::NodesCached { prompt_id, nodes } => {
        prompt_id: Py<PyString> = c.str(py, prompt_id),
        nodes: Py<PyAny> = PyList::new(py, nodes)?.into_any().unbind(),
    }
    /// A node started.
    NodeStarted = "node_started",
    Event::NodeStarted { prompt_id, node, display_node } => {
        prompt_id: Py<PyString> = c.str(py, prompt_id),
        node: Py<PyString> = c.str(py, node),
        display_node: Option<Py<PyString>> = c.opt(py, display_node.as_deref()),
    }
    /// Step progress of a node (throttled unless `progress_interval_ms=0`):
    /// step `value` of `max`; `overall` progress of the prompt in [0, 1];
    /// `eta` seconds until the node should finish at its pace so far
    /// (`None` before its first step and after its last).
    Progress = "progress",
    Event::Progress(p) => {
        prompt_id: Py<PyString> = c.str(py, &p.prompt_id),
        node: Py<PyString> = c.str(py, &p.node),
        display_node: Option<Py<PyString>> = c.opt(py, p.display_node.as_deref()),
        value: f64 = p.value,
        max: f64 = p.max,
        overall: f64 = p.overall,
        eta: Option<f64> = p.eta.map(|d| d.as_secs_f64()),
    }
    /// A preview: encoded `image` bytes of type `mime` (prompt and node
    /// when the server said).
    Preview = "preview",
    Event::Preview(p) => {
        prompt_id: Option<Py<PyString>> = c.opt(py, p.prompt_id.as_deref()),
        node: Option<Py<PyString>> = c.opt(py, p.node.as_deref()),
        image: Py<PyBytes> = PyBytes::new(py, &p.image).unbind(),
        mime: Py<PyString> = c.str(py, &p.mime),
    }
    /// A node's progress text.
    ProgressText = "progress_text",
    Event::ProgressText { prompt_id, node, text } => {
        prompt_id: Option<Py<PyString>> = c.opt(py, prompt_id.as_deref()),
        node: Py<PyString> = c.str(py, node),
        text: Py<PyString> = plain(py, text),
    }
    /// A node's UI output dict (`images`, `text`, ...); `recovered` when
    /// it was missed on the socket and recovered from history.
    Output = "output",
    Event::Output { prompt_id, node, display_node, output, recovered } => {
        prompt_id: Py<PyString> = c.str(py, prompt_id),
        node: Py<PyString> = c.str(py, node),
        display_node: Option<Py<PyString>> = c.opt(py, display_node.as_deref()),
        output: Py<PyAny> = to_py(py, &output.to_value())?.unbind(),
        recovered: bool = *recovered,
    }
    /// A node finished.
    NodeFinished = "node_finished",
    Event::NodeFinished { prompt_id, node } => {
        prompt_id: Py<PyString> = c.str(py, prompt_id),
        node: Py<PyString> = c.str(py, node),
    }
    /// A node is waiting on something (e.g. a missing model): `message`
    /// says what.
    Blocked = "blocked",
    Event::Blocked(e) => {
        prompt_id: Option<Py<PyString>> = c.opt(py, event.prompt_id()),
        node: Option<Py<PyString>> = c.opt(py, e.node_id.as_deref()),
        message: Py<PyString> = plain(py, &e.exception_message),
    }
    /// The one terminal event of a prompt: `status` is `succeeded`,
    /// `failed`, `interrupted` or `lost`; `outcome` (a `comfywire.Outcome`)
    /// is built on first read.
    Finished = "finished",
    Event::Finished(record) => {
        prompt_id: Py<PyString> = c.str(py, &record.prompt_id),
        status: Py<PyString> = c.str(py, record.phase.name()),
        outcome: LazyOutcome = LazyOutcome { record: record.clone(), made: PyOnceLock::new() },
    }
    /// A server message comfywire passes through (unknown or custom
    /// types): its type `name`, and its `data` for unknown types.
    Message = "message",
    Event::Message(m) => {
        name: Py<PyString> = c.str(py, m.kind()),
        data: Py<PyAny> = match m.as_ref() {
            ServerMessage::Unknown(u) => to_py(py, &u.data)?.unbind(),
            _ => py.None(),
        },
    }
    /// A frame that did not parse: the parse `error` and the frame's
    /// `size` in bytes.
    BadFrame = "bad_frame",
    Event::BadFrame { error, raw } => {
        error: Py<PyString> = plain(py, &error.to_string()),
        size: i64 = raw.len() as i64,
    }
    /// A reconciliation request for a prompt failed (it is retried).
    HttpFailed = "http_failed",
    Event::HttpFailed { error, .. } => {
        prompt_id: Option<Py<PyString>> = c.opt(py, event.prompt_id()),
        error: Py<PyString> = plain(py, error),
    }
}

event_class! {
    /// A callback raised (`error`, as text) while handed an event of
    /// `failed_kind` (of `prompt_id`); the client went on.
    CallbackError = "callback_error" {
        prompt_id: Option<Py<PyString>>,
        failed_kind: Py<PyString>,
        error: Py<PyString>,
    }
}

/// A `comfywire.Outcome` built when first read: it costs more than the
/// rest of the event, and most readers look only at `status`.
pub(crate) struct LazyOutcome {
    record: Arc<ExecutionRecord>,
    made: PyOnceLock<Py<PyAny>>,
}

static OUTCOME_FROM_DICT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

impl<'py> IntoPyObject<'py> for &LazyOutcome {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let made = self.made.get_or_try_init(py, || {
            let make = OUTCOME_FROM_DICT.import(py, "comfywire._types", "_outcome_from_dict")?;
            let outcome = HostOutcome::from_record(&self.record).into_object(py)?;
            make.call1((outcome,)).map(Bound::unbind)
        })?;
        Ok(made.bind(py).clone())
    }
}

/// Strings cached per converter: a firehose repeats one prompt id, a few
/// node ids and one MIME type, and a handful of slots catch them all.
const CACHE_SLOTS: usize = 8;
/// Longer strings (progress text, error messages) rarely repeat: not cached.
const CACHE_MAX_LEN: usize = 64;

/// Turns events into the typed Python classes, one per stream or callback:
/// it keeps the last few short strings, so consecutive events share one
/// `prompt_id` and `node` string instead of each making its own.
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

    /// The typed Python event for a flat host record: a callback failure
    /// report, or a kind newer than this module (as a `Message`).
    pub(crate) fn host_event(&mut self, py: Python<'_>, e: &HostEvent) -> PyResult<Py<PyAny>> {
        if e.kind == HostEventKind::CallbackError {
            let failed = e.data.as_ref().and_then(|d| d["failed_kind"].as_str());
            let prompt_id = self.opt(py, e.prompt_id.as_deref());
            let failed_kind = self.str(py, failed.unwrap_or_default());
            let error = plain(py, e.text.as_deref().unwrap_or_default());
            return new(
                py,
                CallbackError {
                    prompt_id,
                    failed_kind,
                    error,
                },
            );
        }
        let (name, data) = (self.str(py, e.kind.name()), e.data.clone().into_object(py)?);
        new(py, Message { name, data })
    }
}
