//! Reconciliation messages: the HTTP requests the session asks the driver
//! to make, and the typed answers it accepts back (protocol reference §7,
//! §10). The session builds no HTTP itself: the driver does.

use serde_json::{Map, Value};

use crate::message::{ExecutionError, ExecutionInterrupted};

/// A request the session needs answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpRequest {
    /// `GET /history/{prompt_id}`.
    History {
        /// The prompt.
        prompt_id: String,
    },
    /// `GET /queue`.
    Queue,
}

/// An answer handed back to [`crate::Session::handle_http`].
#[derive(Debug, Clone, PartialEq)]
pub enum HttpReply {
    /// `POST /prompt` answered 200.
    PromptAccepted {
        /// The prompt.
        prompt_id: String,
        /// Its queue number.
        number: Option<u64>,
        /// Non-empty when some outputs were skipped (partial validation).
        node_errors: Value,
    },
    /// `POST /prompt` was refused (validation error): nothing was queued.
    PromptRejected {
        /// The prompt id that had been reserved.
        prompt_id: String,
    },
    /// `GET /history/{prompt_id}` answered; `None` for `{}`.
    History {
        /// The prompt.
        prompt_id: String,
        /// The entry, when the server has one.
        entry: Option<HistoryEntry>,
    },
    /// `GET /queue` answered.
    Queue(QueueSnapshot),
    /// A request failed (network, 5xx, bad body).
    Failed {
        /// The request.
        request: HttpRequest,
        /// What went wrong.
        error: String,
    },
}

/// How a history entry says the prompt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum HistoryOutcome {
    /// `execution_success`, or `completed: true`.
    Success,
    /// `execution_error`.
    Error(Box<ExecutionError>),
    /// `execution_interrupted`.
    Interrupted(ExecutionInterrupted),
    /// `status_str: "error"` without a message saying why.
    UnknownError,
}

/// One `/history` entry, reduced to what reconciliation needs.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// The queue number (`prompt[0]`).
    pub number: Option<u64>,
    /// Outputs by node id, in the server's order.
    pub outputs: Map<String, Value>,
    /// Nodes named by `execution_cached`.
    pub cached: Vec<String>,
    /// How it ended.
    pub outcome: HistoryOutcome,
    /// `status.status_str`.
    pub status_str: Option<String>,
    /// The `client_id` it was submitted with (`prompt[3].client_id`):
    /// whose prompt it is, when its frames reached a socket they were not
    /// addressed to by id.
    pub client_id: Option<String>,
}

impl HistoryEntry {
    /// Reads an entry from its JSON (the value under the prompt id).
    pub fn from_json(entry: &Value) -> Result<HistoryEntry, String> {
        let object = entry.as_object().ok_or("history entry is not an object")?;
        let number = object
            .get("prompt")
            .and_then(|p| p.get(0))
            .and_then(Value::as_f64)
            .filter(|n| *n >= 0.0)
            .map(|n| n as u64);
        let client_id = object
            .get("prompt")
            .and_then(|p| p.get(3))
            .and_then(|extra| extra.get("client_id"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let outputs = match object.get("outputs") {
            Some(Value::Object(map)) => map.clone(),
            Some(Value::Null) | None => Map::new(),
            Some(_) => return Err("history `outputs` is not an object".into()),
        };
        let status = object.get("status");
        let status_str = status
            .and_then(|s| s.get("status_str"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let completed = status
            .and_then(|s| s.get("completed"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let messages = status
            .and_then(|s| s.get("messages"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut cached = Vec::new();
        let mut outcome = None;
        for message in messages {
            let Some(name) = message.get(0).and_then(Value::as_str) else {
                continue;
            };
            let data = message.get(1).cloned().unwrap_or(Value::Null);
            match name {
                "execution_cached" => {
                    cached = data
                        .get("nodes")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|v| v.as_str().map(str::to_owned))
                                .collect()
                        })
                        .unwrap_or_default();
                }
                "execution_success" => outcome = Some(HistoryOutcome::Success),
                "execution_error" => {
                    let error: ExecutionError = serde_json::from_value(data)
                        .map_err(|e| format!("history execution_error: {e}"))?;
                    if !error.is_blocked() {
                        outcome = Some(HistoryOutcome::Error(Box::new(error)));
                    }
                }
                "execution_interrupted" => {
                    let data: ExecutionInterrupted = serde_json::from_value(data)
                        .map_err(|e| format!("history execution_interrupted: {e}"))?;
                    outcome = Some(HistoryOutcome::Interrupted(data));
                }
                _ => {}
            }
        }
        let outcome = match outcome {
            Some(o) => o,
            None if completed || status_str.as_deref() == Some("success") => {
                HistoryOutcome::Success
            }
            None => HistoryOutcome::UnknownError,
        };
        Ok(HistoryEntry {
            number,
            outputs,
            cached,
            outcome,
            status_str,
            client_id,
        })
    }

    /// Reads the answer of `GET /history/{prompt_id}`: `Ok(None)` for `{}`.
    pub fn from_response(prompt_id: &str, body: &Value) -> Result<Option<HistoryEntry>, String> {
        match body.get(prompt_id) {
            Some(entry) => HistoryEntry::from_json(entry).map(Some),
            None if body.is_object() => Ok(None),
            None => Err("history answer is not an object".into()),
        }
    }
}

/// One queue item.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueItem {
    /// Queue number (priority).
    pub number: f64,
    /// The prompt.
    pub prompt_id: String,
    /// `extra_data.client_id`, when present.
    pub client_id: Option<String>,
}

/// `GET /queue`, with pending items sorted by number then id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueSnapshot {
    /// Running prompts.
    pub running: Vec<QueueItem>,
    /// Pending prompts, in the order they will run.
    pub pending: Vec<QueueItem>,
}

impl QueueSnapshot {
    /// Reads the answer of `GET /queue`.
    pub fn from_json(body: &Value) -> Result<QueueSnapshot, String> {
        let list = |key: &str| -> Result<Vec<QueueItem>, String> {
            let Some(items) = body.get(key) else {
                return Ok(Vec::new());
            };
            let items = items
                .as_array()
                .ok_or_else(|| format!("`{key}` is not a list"))?;
            Ok(items
                .iter()
                .filter_map(|item| {
                    Some(QueueItem {
                        number: item.get(0).and_then(Value::as_f64).unwrap_or(0.0),
                        prompt_id: item.get(1)?.as_str()?.to_owned(),
                        client_id: item
                            .get(3)
                            .and_then(|e| e.get("client_id"))
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                    })
                })
                .collect())
        };
        if !body.is_object() {
            return Err("queue answer is not an object".into());
        }
        let running = list("queue_running")?;
        let mut pending = list("queue_pending")?;
        pending.sort_by(|a, b| {
            a.number
                .total_cmp(&b.number)
                .then_with(|| a.prompt_id.cmp(&b.prompt_id))
        });
        Ok(QueueSnapshot { running, pending })
    }

    /// True when the prompt is running.
    pub fn is_running(&self, prompt_id: &str) -> bool {
        self.running.iter().any(|i| i.prompt_id == prompt_id)
    }

    /// True when the prompt is pending.
    pub fn is_pending(&self, prompt_id: &str) -> bool {
        self.pending.iter().any(|i| i.prompt_id == prompt_id)
    }

    /// Running plus pending.
    pub fn len(&self) -> usize {
        self.running.len() + self.pending.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
