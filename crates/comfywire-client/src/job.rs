//! Waiting for a prompt's one terminal outcome under deadlines, and what a
//! finished run hands back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use comfywire_proto::{ConnectionState, Event, ExecutionRecord, Outcome, Outputs, Phase};
use serde_json::Value;

use crate::client::Client;
use crate::config::Deadlines;
use crate::error::{DeadlineKind, Error, ValidationError};
use crate::fanout::Filter;

/// A file the server can serve from `/view`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileRef {
    /// File name.
    pub filename: String,
    /// Subfolder ("" for none).
    pub subfolder: String,
    /// `output`, `temp` or `input`.
    pub kind: String,
}

/// The result of a successful run.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// The whole execution record (outputs, per-node timings, cached nodes).
    pub record: Arc<ExecutionRecord>,
    /// Outputs skipped at submission because their branch was invalid.
    pub partial: Option<ValidationError>,
}

impl RunResult {
    /// The prompt id.
    pub fn prompt_id(&self) -> &str {
        &self.record.prompt_id
    }

    /// UI outputs by node id.
    pub fn outputs(&self) -> &Outputs {
        &self.record.outputs
    }

    /// Every file among the outputs.
    pub fn files(&self) -> Vec<FileRef> {
        files(&self.record)
    }

    /// Node id and run time of every node that ran, in start order.
    pub fn timings(&self) -> Vec<(String, Duration)> {
        self.record
            .nodes
            .iter()
            .filter_map(|n| Some((n.id.clone(), n.duration()?)))
            .collect()
    }
}

/// Every `{filename, subfolder, type}` item in a record's outputs.
pub fn files(record: &ExecutionRecord) -> Vec<FileRef> {
    let outputs: Vec<Value> = record.outputs.iter().map(|(_, o)| o.to_value()).collect();
    output_files(&outputs)
}

/// Every `{filename, subfolder, type}` item in nodes' UI outputs (e.g. the
/// values of `/history`'s `outputs`), in order, each once.
pub fn output_files<'a>(outputs: impl IntoIterator<Item = &'a Value>) -> Vec<FileRef> {
    let mut out = Vec::new();
    for output in outputs {
        let Some(map) = output.as_object() else {
            continue;
        };
        for items in map.values() {
            for item in items.as_array().into_iter().flatten() {
                let Some(filename) = item.get("filename").and_then(Value::as_str) else {
                    continue;
                };
                let text =
                    |k: &str, d: &str| item.get(k).and_then(Value::as_str).unwrap_or(d).to_owned();
                let file = FileRef {
                    filename: filename.to_owned(),
                    subfolder: text("subfolder", ""),
                    kind: text("type", "output"),
                };
                if !out.contains(&file) {
                    out.push(file);
                }
            }
        }
    }
    out
}

pub(crate) fn into_result(
    record: Arc<ExecutionRecord>,
    partial: Option<ValidationError>,
) -> Result<RunResult, Error> {
    match &record.outcome {
        Some(Outcome::Succeeded) => Ok(RunResult { record, partial }),
        Some(Outcome::Failed(_)) => Err(Error::ExecutionFailed(record)),
        Some(Outcome::Interrupted(_)) => Err(Error::Interrupted(record)),
        Some(Outcome::Lost { reason }) => Err(Error::Lost {
            prompt_id: record.prompt_id.clone(),
            reason: reason.clone(),
        }),
        None => Err(Error::Protocol(format!(
            "prompt {} ended without an outcome",
            record.prompt_id
        ))),
    }
}

fn shows_running(event: &Event) -> bool {
    !matches!(
        event,
        Event::PromptQueued { .. } | Event::Connection(_) | Event::Status { .. }
    )
}

pub(crate) async fn wait_record(
    client: &Client,
    prompt_id: &str,
    deadlines: Deadlines,
    started: Instant,
) -> Result<Arc<ExecutionRecord>, Error> {
    // The id the server knows it by (it may have chosen its own); a prompt
    // this client does not track is attached, so any id can be waited on.
    let canonical = match client.execution(prompt_id).await? {
        Some(record) if record.is_terminal() => return Ok(Arc::new(record)),
        Some(record) => record.prompt_id,
        None => {
            client.attach(prompt_id).await?;
            prompt_id.to_owned()
        }
    };
    let prompt_id = canonical.as_str();
    // Subscribe first, then look: a terminal event is either in the ring
    // already or will reach this subscription.
    let mut events = client.subscribe(Filter::all().prompt(prompt_id));
    let mut running = match client.execution(prompt_id).await? {
        Some(record) if record.is_terminal() => return Ok(Arc::new(record)),
        Some(record) => record.phase >= Phase::Running,
        None => {
            return Err(Error::Protocol(format!(
                "prompt {prompt_id} is no longer tracked (the server never had it)"
            )));
        }
    };
    let mut last_activity = Instant::now();
    let mut status = client.watch_status();
    loop {
        let mut next: Option<(Instant, DeadlineKind, Duration)> = None;
        let mut consider = |at: Instant, kind: DeadlineKind, after: Duration| {
            if next.is_none_or(|(n, _, _)| at < n) {
                next = Some((at, kind, after));
            }
        };
        if let Some(total) = deadlines.total {
            consider(started + total, DeadlineKind::Total, total);
        }
        if !running {
            if let Some(queue) = deadlines.queue {
                consider(started + queue, DeadlineKind::Queue, queue);
            }
        } else if let Some(stall) = deadlines.stall {
            consider(last_activity + stall, DeadlineKind::Stall, stall);
        }
        let event = match next {
            Some((at, kind, after)) => {
                tokio::select! {
                    event = events.recv() => event,
                    // The socket opened or went: the stall clock starts
                    // again (see below).
                    Ok(()) = status.changed() => {
                        last_activity = Instant::now();
                        continue;
                    }
                    () = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {
                        // Without a socket a running prompt sends nothing
                        // this client can see (it is followed over HTTP),
                        // so silence is no stall.
                        let open = status.borrow().state == ConnectionState::Connected;
                        if kind == DeadlineKind::Stall && !open {
                            last_activity = Instant::now();
                            continue;
                        }
                        return Err(Error::Deadline {
                            kind,
                            prompt_id: prompt_id.to_owned(),
                            after,
                        });
                    }
                }
            }
            None => events.recv().await,
        };
        match event {
            None => return Err(Error::Closed),
            Some(Event::Finished(record)) => return Ok(record),
            Some(event) => {
                if event.prompt_id() == Some(prompt_id) {
                    last_activity = Instant::now();
                    running |= shows_running(&event);
                }
            }
        }
    }
}
