//! Recorded sessions cut into what the mock replays: one segment of frames
//! per accepted prompt, plus every recorded `POST /prompt` answer.

use bytes::Bytes;
use comfywire_proto::trace::{Trace, TraceError, TraceEventKind};
use serde_json::Value;
use std::path::Path;

/// The traces compiled into the binary, so it runs with nothing else around.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "big_output",
        include_str!("../../../tests/data/traces/big_output.jsonl"),
    ),
    (
        "cached_rerun",
        include_str!("../../../tests/data/traces/cached_rerun.jsonl"),
    ),
    (
        "execution_error",
        include_str!("../../../tests/data/traces/execution_error.jsonl"),
    ),
    (
        "long_run",
        include_str!("../../../tests/data/traces/long_run.jsonl"),
    ),
    (
        "partial_validation",
        include_str!("../../../tests/data/traces/partial_validation.jsonl"),
    ),
    (
        "preview_metadata",
        include_str!("../../../tests/data/traces/preview_metadata.jsonl"),
    ),
    (
        "queue_three",
        include_str!("../../../tests/data/traces/queue_three.jsonl"),
    ),
    (
        "reconnect_midrun",
        include_str!("../../../tests/data/traces/reconnect_midrun.jsonl"),
    ),
    (
        "server_assigned_sid",
        include_str!("../../../tests/data/traces/server_assigned_sid.jsonl"),
    ),
    (
        "success_single",
        include_str!("../../../tests/data/traces/success_single.jsonl"),
    ),
    (
        "validation_error",
        include_str!("../../../tests/data/traces/validation_error.jsonl"),
    ),
];

/// Why the traces could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A trace file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file or folder.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A trace file is malformed.
    #[error("trace {name}: {source}")]
    Trace {
        /// Scenario name.
        name: String,
        /// What was wrong.
        source: TraceError,
    },
}

impl From<LoadError> for std::io::Error {
    fn from(err: LoadError) -> Self {
        match err {
            LoadError::Io { source, .. } => source,
            other => std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}

/// One recorded server → client frame of a prompt's segment.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Milliseconds since the segment's `execution_start`.
    pub offset_ms: f64,
    /// The payload.
    pub body: FrameBody,
}

/// The payload of a recorded frame.
#[derive(Debug, Clone)]
pub enum FrameBody {
    /// A text frame, with what the worker needs to know about it.
    Text {
        /// The exact recorded text.
        text: String,
        /// The `type` field.
        kind: String,
        /// `data.node` of `executing`/`executed` frames.
        node: Option<String>,
        /// `data.output` of `executed` frames.
        output: Option<Value>,
        /// `data` of the frame, kept for history messages.
        data: Value,
    },
    /// A binary frame.
    Binary(Bytes),
}

/// Everything recorded about one accepted prompt.
#[derive(Debug, Clone)]
pub struct RecordedPrompt {
    /// The prompt id the real server used.
    pub prompt_id: String,
    /// From `execution_start` through `executing {node: null}` inclusive.
    pub frames: Vec<Frame>,
    /// The last recorded `/history/{id}` entry, if the trace asked for it.
    pub history: Option<Value>,
}

impl RecordedPrompt {
    /// `outputs_to_execute` of the recorded history entry.
    pub fn outputs_to_execute(&self) -> Value {
        self.history
            .as_ref()
            .and_then(|h| h.get("prompt"))
            .and_then(|p| p.get(4))
            .cloned()
            .unwrap_or_else(|| Value::Array(Vec::new()))
    }
}

/// One recorded `POST /prompt` that carried a graph.
#[derive(Debug, Clone)]
pub struct RecordedPost {
    /// The `prompt` of the request.
    pub graph: Value,
    /// HTTP status of the answer.
    pub status: u16,
    /// The answer body.
    pub response: Value,
    /// Index into [`Scenario::prompts`] when the answer was 200.
    pub prompt_index: Option<usize>,
}

/// A loaded trace.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// File name without extension.
    pub name: String,
    /// Accepted prompts in submission order.
    pub prompts: Vec<RecordedPrompt>,
    /// Every `POST /prompt` with a `prompt` body.
    pub posts: Vec<RecordedPost>,
    /// The 400 answer to a body without `prompt`, if recorded.
    pub no_prompt: Option<Value>,
}

impl Scenario {
    /// Cuts a parsed trace into prompts.
    pub fn from_trace(name: &str, trace: &Trace) -> Scenario {
        let history = trace.final_history();
        let mut posts = Vec::new();
        let mut prompts = Vec::new();
        let mut no_prompt = None;
        for event in &trace.events {
            let TraceEventKind::Http(http) = &event.kind else {
                continue;
            };
            if http.method != "POST" || !is_prompt_path(&http.path) {
                continue;
            }
            let response = http.response.clone().unwrap_or(Value::Null);
            let Some(graph) = http.request.as_ref().and_then(|r| r.get("prompt")) else {
                if http.status == 400 {
                    no_prompt = Some(response);
                }
                continue;
            };
            let mut prompt_index = None;
            if http.status == 200 {
                if let Some(id) = response.get("prompt_id").and_then(Value::as_str) {
                    prompt_index = Some(prompts.len());
                    prompts.push(RecordedPrompt {
                        prompt_id: id.to_owned(),
                        frames: segment(trace, id),
                        history: history
                            .iter()
                            .find(|(known, _)| known == id)
                            .map(|(_, entry)| entry.clone()),
                    });
                }
            }
            posts.push(RecordedPost {
                graph: graph.clone(),
                status: http.status,
                response,
                prompt_index,
            });
        }
        Scenario {
            name: name.to_owned(),
            prompts,
            posts,
            no_prompt,
        }
    }

    /// The graph other crates should submit to get this scenario.
    pub fn workflow(&self) -> Option<&Value> {
        self.posts
            .iter()
            .find(|p| p.status == 200)
            .or_else(|| self.posts.iter().find(|p| p.status == 400))
            .map(|p| &p.graph)
    }
}

fn is_prompt_path(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or(path);
    path == "/prompt" || path == "/api/prompt"
}

fn prompt_of(data: &Value) -> Option<&str> {
    data.get("prompt_id").and_then(Value::as_str)
}

/// The received frames from `execution_start` of `id` through its
/// `executing {node: null}`, without `status`, connect-time frames and
/// `feature_flags` replies.
fn segment(trace: &Trace, id: &str) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut start: Option<f64> = None;
    for event in &trace.events {
        match &event.kind {
            TraceEventKind::Text {
                received: true,
                data: text,
                ..
            } => {
                let Ok(parsed) = serde_json::from_str::<Value>(text) else {
                    continue;
                };
                let kind = parsed
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let data = parsed.get("data").cloned().unwrap_or(Value::Null);
                if start.is_none() {
                    if kind == "execution_start" && prompt_of(&data) == Some(id) {
                        start = Some(event.t_ms);
                    } else {
                        continue;
                    }
                }
                if kind == "status" || kind == "feature_flags" {
                    continue;
                }
                // A bare `executing` (no prompt id) is the reconnect greeting.
                if kind == "executing" && prompt_of(&data).is_none() {
                    continue;
                }
                let node = data.get("node").and_then(Value::as_str).map(str::to_owned);
                let is_end = kind == "executing" && data.get("node").is_some_and(Value::is_null);
                frames.push(Frame {
                    offset_ms: event.t_ms - start.unwrap_or(event.t_ms),
                    body: FrameBody::Text {
                        text: text.clone(),
                        output: (kind == "executed")
                            .then(|| data.get("output").cloned())
                            .flatten(),
                        kind,
                        node,
                        data,
                    },
                });
                if is_end {
                    break;
                }
            }
            TraceEventKind::Binary { data, .. } => {
                if let Some(t0) = start {
                    frames.push(Frame {
                        offset_ms: event.t_ms - t0,
                        body: FrameBody::Binary(data.clone()),
                    });
                }
            }
            _ => {}
        }
    }
    frames
}

/// Every loaded scenario.
#[derive(Debug, Clone, Default)]
pub struct Library {
    /// Sorted by name.
    pub scenarios: Vec<Scenario>,
}

impl Library {
    /// The traces compiled into the crate.
    pub fn embedded() -> Result<Library, LoadError> {
        let mut scenarios = Vec::new();
        for (name, text) in EMBEDDED {
            scenarios.push(parse(name, text)?);
        }
        Ok(Library { scenarios })
    }

    /// Every `*.jsonl` file in `dir`.
    pub fn from_dir(dir: &Path) -> Result<Library, LoadError> {
        let io_err = |path: &Path, source| LoadError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut scenarios = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
            let path = entry.map_err(|e| io_err(dir, e))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
                continue;
            }
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_owned();
            let text = std::fs::read_to_string(&path).map_err(|e| io_err(&path, e))?;
            scenarios.push(parse(&name, &text)?);
        }
        scenarios.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Library { scenarios })
    }

    /// The scenario called `name`.
    pub fn get(&self, name: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.name == name)
    }

    /// Every node class the recorded graphs use.
    pub fn node_classes(&self) -> std::collections::BTreeSet<String> {
        self.scenarios
            .iter()
            .flat_map(|s| &s.posts)
            .filter_map(|post| post.graph.as_object())
            .flat_map(|graph| graph.values())
            .filter_map(|node| node.get("class_type")?.as_str().map(str::to_owned))
            .collect()
    }

    /// The first recorded 200-or-400 POST whose graph equals `graph`.
    pub fn find_post(&self, graph: &Value) -> Option<(&Scenario, &RecordedPost)> {
        self.scenarios.iter().find_map(|scenario| {
            scenario
                .posts
                .iter()
                .find(|post| &post.graph == graph)
                .map(|post| (scenario, post))
        })
    }
}

fn parse(name: &str, text: &str) -> Result<Scenario, LoadError> {
    let trace = Trace::parse(text).map_err(|source| LoadError::Trace {
        name: name.to_owned(),
        source,
    })?;
    Ok(Scenario::from_trace(name, &trace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_single_segment_spans_start_to_end() {
        let library = Library::embedded().expect("embedded traces parse");
        assert_eq!(library.scenarios.len(), 11);
        let scenario = library.get("success_single").expect("present");
        let prompt = &scenario.prompts[0];
        let kinds: Vec<&str> = prompt
            .frames
            .iter()
            .filter_map(|f| match &f.body {
                FrameBody::Text { kind, .. } => Some(kind.as_str()),
                FrameBody::Binary(_) => None,
            })
            .collect();
        assert_eq!(kinds.first(), Some(&"execution_start"));
        assert_eq!(kinds.last(), Some(&"executing"));
        assert!(!kinds.contains(&"status"));
        assert_eq!(
            prompt
                .frames
                .iter()
                .filter(|f| matches!(f.body, FrameBody::Binary(_)))
                .count(),
            8
        );
        assert!(prompt.history.is_some());
    }

    #[test]
    fn queue_three_has_three_segments() {
        let library = Library::embedded().expect("embedded traces parse");
        let scenario = library.get("queue_three").expect("present");
        assert_eq!(scenario.prompts.len(), 3);
        for prompt in &scenario.prompts {
            let first = prompt.frames.first().expect("non-empty");
            assert_eq!(first.offset_ms, 0.0);
        }
    }
}
