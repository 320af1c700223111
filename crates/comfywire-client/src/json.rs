//! The one JSON encoder of events and records: the CLI's `--json` lines
//! (schema in the CLI's README) and the C ABI's `comfywire_event_to_json`
//! both come from here, so every front end prints the same objects.

use std::collections::HashMap;
use std::time::Instant;

use comfywire_proto::{ConnectionState, ConnectionStatus, Event, ExecutionRecord, Outcome};
use serde_json::{Map, Value, json};

/// Node id → `class_type` of the submitted workflow, to name nodes.
#[derive(Debug, Clone, Default)]
pub struct NodeNames(HashMap<String, String>);

impl NodeNames {
    /// Reads the `class_type` of every node of an API-format workflow.
    pub fn from_workflow(workflow: &Value) -> NodeNames {
        let mut names = HashMap::new();
        for (id, node) in workflow.as_object().into_iter().flatten() {
            if let Some(class) = node.get("class_type").and_then(Value::as_str) {
                names.insert(id.clone(), class.to_owned());
            }
        }
        NodeNames(names)
    }

    /// The class of a node, if known.
    pub fn class(&self, node: &str) -> Option<&str> {
        self.0.get(node).map(String::as_str)
    }

    /// `2 (TestStepProgress)`, or just `2`.
    pub fn label(&self, node: &str) -> String {
        match self.class(node) {
            Some(class) => format!("{node} ({class})"),
            None => node.to_owned(),
        }
    }

    /// How many nodes are known.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no node is known.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Milliseconds with microsecond precision, as every JSON duration is.
pub fn millis(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// The JSON of a connection status.
pub fn connection_json(status: &ConnectionStatus) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("state".into(), json!(status.state.name()));
    let attempt = match &status.state {
        ConnectionState::Connecting { attempt }
        | ConnectionState::Reconnecting { attempt, .. }
        | ConnectionState::Polling { attempt, .. } => Some(*attempt),
        _ => None,
    };
    m.insert("attempt".into(), json!(attempt));
    let retry_in = status
        .state
        .next_attempt_at()
        .map(|at| millis(at.saturating_duration_since(Instant::now())));
    m.insert("retry_in_ms".into(), json!(retry_in));
    m.insert(
        "error".into(),
        json!(status.last_error.as_ref().map(ToString::to_string)),
    );
    m
}

/// The JSON of a finished prompt's record.
pub fn record_json(record: &ExecutionRecord, names: &NodeNames) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("outcome".into(), json!(record.phase.name()));
    m.insert("number".into(), json!(record.number));
    m.insert("duration_ms".into(), json!(record.duration().map(millis)));
    let nodes: Vec<Value> = record
        .nodes
        .iter()
        .map(|n| {
            let shown = n.display_node.as_deref().unwrap_or(&n.id);
            json!({
                "id": n.id,
                "display_node": n.display_node,
                "class_type": names.class(shown),
                "phase": n.phase.name(),
                "duration_ms": n.duration().map(millis),
            })
        })
        .collect();
    m.insert("nodes".into(), Value::Array(nodes));
    m.insert("cached".into(), json!(record.cached));
    // The outputs' trees are built once, for both fields.
    let outputs = record.outputs.to_value();
    let files: Vec<Value> =
        crate::job::output_files(outputs.as_object().into_iter().flat_map(|o| o.values()))
            .into_iter()
            .map(|f| json!({"filename": f.filename, "subfolder": f.subfolder, "type": f.kind}))
            .collect();
    m.insert("outputs".into(), outputs);
    m.insert("files".into(), Value::Array(files));
    let (error, interrupted_at, reason) = match &record.outcome {
        Some(Outcome::Failed(e)) => (
            json!({
                "node_id": e.node_id,
                "node_type": e.node_type,
                "exception_type": e.exception_type,
                "exception_message": e.exception_message.trim_end(),
            }),
            Value::Null,
            Value::Null,
        ),
        Some(Outcome::Interrupted(i)) => (Value::Null, json!(i.node_id), Value::Null),
        Some(Outcome::Lost { reason }) => (Value::Null, Value::Null, json!(reason)),
        _ => (Value::Null, Value::Null, Value::Null),
    };
    m.insert("error".into(), error);
    m.insert("interrupted_at".into(), interrupted_at);
    m.insert("reason".into(), reason);
    m.insert("had_gap".into(), json!(record.had_gap));
    m
}

/// The JSON line of an event: `{"event": kind, "prompt_id": id or null, ...}`.
/// `preview_file` is where a preview was saved, if it was.
pub fn event_json(event: &Event, names: &NodeNames, preview_file: Option<&str>) -> Value {
    let mut m = Map::new();
    m.insert("event".into(), json!(event.kind().name()));
    m.insert("prompt_id".into(), json!(event.prompt_id()));
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    match event {
        Event::Connection(status) => {
            for (k, v) in connection_json(status) {
                put(&k, v);
            }
        }
        Event::Status {
            queue_remaining,
            sid,
        } => {
            put("queue_remaining", json!(queue_remaining));
            put("sid", json!(sid));
        }
        Event::FeatureFlags(flags) => put("flags", Value::Object(flags.clone())),
        Event::PromptQueued { number, .. } => put("number", json!(number)),
        Event::ExecutionStarted { .. } => {}
        Event::NodesCached { nodes, .. } => put("nodes", json!(nodes)),
        Event::NodeStarted {
            node, display_node, ..
        } => {
            put("node", json!(&**node));
            put("display_node", json!(display_node.as_deref()));
            put(
                "class_type",
                json!(names.class(display_node.as_deref().unwrap_or(node))),
            );
        }
        Event::Progress(p) => {
            put("node", json!(&*p.node));
            put("display_node", json!(p.display_node.as_deref()));
            put("value", json!(p.value));
            put("max", json!(p.max));
            put("overall", json!(p.overall));
            put("eta_s", json!(p.eta.map(|d| d.as_secs_f64())));
        }
        Event::Preview(p) => {
            put("node", json!(p.node.as_deref()));
            put("mime", json!(p.mime));
            put("bytes", json!(p.image.len()));
            put("file", json!(preview_file));
        }
        Event::ProgressText { node, text, .. } => {
            put("node", json!(&**node));
            put("text", json!(text));
        }
        Event::Output {
            node,
            display_node,
            output,
            recovered,
            ..
        } => {
            put("node", json!(&**node));
            put("display_node", json!(display_node.as_deref()));
            put("output", output.to_value());
            put("recovered", json!(recovered));
        }
        Event::NodeFinished { node, .. } => put("node", json!(&**node)),
        Event::Blocked(e) => {
            put("node_id", json!(e.node_id));
            put("node_type", json!(e.node_type));
            put("exception_type", json!(e.exception_type));
            put("exception_message", json!(e.exception_message.trim_end()));
        }
        Event::Finished(record) => {
            for (k, v) in record_json(record, names) {
                put(&k, v);
            }
        }
        Event::Message(message) => put("type", json!(message.kind())),
        Event::BadFrame { error, .. } => put("error", json!(error.to_string())),
        Event::HttpFailed { request, error } => {
            put("request", json!(format!("{request:?}")));
            put("error", json!(error));
        }
        _ => {}
    }
    Value::Object(m)
}
