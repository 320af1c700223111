//! The worker: plays queued prompts one at a time from their recordings.

use crate::binary;
use crate::ids::now_ms;
use crate::ledger::RunEnd;
use crate::pyjson;
use crate::rewrite;
use crate::scenario::{FrameBody, RecordedPrompt};
use crate::state::{Inner, Job, Running, Shared, text_message};
use comfywire_proto::BINARY_PROGRESS_TEXT;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

/// Runs until shutdown, taking one queued prompt after another.
pub(crate) async fn worker(shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let notified = shared.work.notified();
        let next = {
            let mut inner = shared.lock();
            match inner.queue.pop_front() {
                Some(job) => {
                    inner.ledger.started(job.seq);
                    inner.running_outputs.clear();
                    inner.running = Some(Running {
                        job: job.clone(),
                        current_node: None,
                        interrupt: false,
                    });
                    inner.broadcast_status();
                    Some((job, inner.epoch))
                }
                None => None,
            }
        };
        match next {
            Some((job, epoch)) => {
                if !play(&shared, job, epoch, &mut shutdown).await {
                    return;
                }
            }
            None => {
                tokio::select! {
                    _ = notified => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    }
}

/// What a run has produced so far, for the history entry.
#[derive(Default)]
struct RunLog {
    outputs: Map<String, Value>,
    meta: Map<String, Value>,
    messages: Vec<Value>,
    executed: Vec<String>,
}

enum Step {
    Next,
    Interrupted,
    Abandoned,
}

/// Plays one prompt; false when the server is shutting down.
async fn play(shared: &Shared, job: Job, epoch: u64, shutdown: &mut watch::Receiver<bool>) -> bool {
    let recorded = shared
        .library
        .get(&job.scenario)
        .and_then(|s| s.prompts.get(job.prompt_index));
    let Some(recorded) = recorded else {
        // Nothing recorded to play: finish at once so the queue moves on.
        let mut inner = shared.lock();
        if inner.epoch == epoch {
            finish(&mut inner, &job, None, RunLog::default(), None);
        }
        return true;
    };
    let mut log = RunLog::default();
    let mut previous = 0.0;
    let last = recorded.frames.len().saturating_sub(1);
    for (index, frame) in recorded.frames.iter().enumerate() {
        let delay = frame.offset_ms - previous;
        previous = frame.offset_ms;
        if !pause(shared, delay, epoch, shutdown).await {
            return false;
        }
        let mut inner = shared.lock();
        // Start and cached go out first so an interrupted history has them.
        let step = match &inner.running {
            _ if inner.epoch != epoch => Step::Abandoned,
            Some(running) if running.interrupt && index >= 2 => Step::Interrupted,
            _ => Step::Next,
        };
        match step {
            Step::Abandoned => return true,
            Step::Interrupted => {
                interrupt(&mut inner, &job, &mut log);
                return true;
            }
            Step::Next => {}
        }
        if index == last {
            finish(&mut inner, &job, Some(recorded), log, None);
            return true;
        }
        send(&mut inner, &job, recorded, &frame.body, &mut log);
    }
    let mut inner = shared.lock();
    if inner.epoch == epoch {
        finish(&mut inner, &job, Some(recorded), log, None);
    }
    true
}

/// Sleeps the frame's scaled delay and any stall; false on shutdown.
async fn pause(
    shared: &Shared,
    delay_ms: f64,
    epoch: u64,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    let speed = shared.lock().speed;
    let deadline = (speed > 0.0 && delay_ms > 0.0)
        .then(|| Instant::now() + Duration::from_secs_f64(delay_ms / speed / 1000.0));
    loop {
        let woken = shared.wake.notified();
        let (stall, cut_short) = {
            let inner = shared.lock();
            let cut = inner.epoch != epoch || inner.running.as_ref().is_some_and(|r| r.interrupt);
            (inner.stall_until, cut)
        };
        let now = Instant::now();
        let stall = stall.filter(|s| *s > now);
        let until = match (deadline.filter(|_| !cut_short), stall) {
            (Some(a), Some(b)) => a.max(b),
            (a, b) => match a.or(b) {
                Some(t) => t,
                None => return true,
            },
        };
        if until <= now {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => {}
            _ = woken => {}
            _ = shutdown.changed() => return false,
        }
    }
}

/// Sends one recorded frame to where the real server would have sent it.
fn send(
    inner: &mut Inner,
    job: &Job,
    recorded: &RecordedPrompt,
    body: &FrameBody,
    log: &mut RunLog,
) {
    let old = recorded.prompt_id.as_str();
    let new = job.prompt_id.as_str();
    let target = inner.target(job.client_id.as_deref());
    match body {
        FrameBody::Text {
            text,
            kind,
            node,
            output,
            data,
        } => {
            if kind == "executing" {
                if let Some(node) = node {
                    if let Some(running) = inner.running.as_mut() {
                        if let Some(done) = running.current_node.replace(node.clone()) {
                            log.executed.push(done);
                        }
                    }
                }
            }
            if let (Some(node), Some(output)) = (node, output) {
                let output = rewrite::value(output, old, new);
                inner.running_outputs.push(output.clone());
                log.outputs.insert(node.clone(), output);
                log.meta.insert(
                    node.clone(),
                    json!({"node_id": node, "display_node": node, "parent_node": null, "real_node_id": node}),
                );
            }
            if kind.starts_with("execution_") {
                if kind == "execution_cached" {
                    if let Some(nodes) = data.get("nodes").and_then(Value::as_array) {
                        log.executed
                            .extend(nodes.iter().filter_map(Value::as_str).map(str::to_owned));
                    }
                }
                log.messages
                    .push(json!([kind, rewrite::value(data, old, new)]));
            }
            if let Some((socket, _)) = target {
                let text = rewrite::text(text, old, new);
                let text = corrupt_if_terminal(inner, kind, text);
                inner.send_to_socket(socket, text_message(text));
            }
        }
        FrameBody::Binary(frame) => {
            if binary::event_type(frame) == Some(BINARY_PROGRESS_TEXT) {
                inner.broadcast(Message::Binary(frame.clone()));
                return;
            }
            let Some((socket, wants_metadata)) = target else {
                return;
            };
            let node = inner.running.as_ref().and_then(|r| r.current_node.clone());
            let frame = rewrite::preview(frame, wants_metadata, node.as_deref(), old, new);
            inner.send_to_socket(socket, Message::Binary(frame));
        }
    }
}

/// The frame cut in half (not JSON) when it is a terminal frame and
/// [`crate::Fault::CorruptTerminalFrame`] is armed; else unchanged.
fn corrupt_if_terminal(inner: &mut Inner, kind: &str, text: String) -> String {
    let terminal = matches!(
        kind,
        "execution_success" | "execution_error" | "execution_interrupted"
    );
    if !terminal || !std::mem::take(&mut inner.corrupt_next_terminal) {
        return text;
    }
    inner.stats.terminal_frames_corrupted += 1;
    let mut cut = text.len() / 2;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text[..cut].to_owned()
}

/// How a history entry says its run ended: the last `execution_*`
/// message, else `status_str`.
fn end_of(entry: &Map<String, Value>) -> RunEnd {
    let status = entry.get("status");
    let last = status
        .and_then(|s| s.get("messages"))
        .and_then(Value::as_array)
        .and_then(|messages| {
            messages
                .iter()
                .rev()
                .filter_map(|m| m.get(0).and_then(Value::as_str))
                .find(|kind| {
                    matches!(
                        *kind,
                        "execution_success" | "execution_error" | "execution_interrupted"
                    )
                })
        });
    match last {
        Some("execution_success") => RunEnd::Succeeded,
        Some("execution_error") => RunEnd::Failed,
        Some(_) => RunEnd::Interrupted,
        None if status
            .and_then(|s| s.get("status_str"))
            .and_then(Value::as_str)
            == Some("success") =>
        {
            RunEnd::Succeeded
        }
        None => RunEnd::Failed,
    }
}

/// Stops the run the way the real server does after `POST /interrupt`.
fn interrupt(inner: &mut Inner, job: &Job, log: &mut RunLog) {
    let node = inner
        .running
        .as_ref()
        .and_then(|r| r.current_node.clone())
        .or_else(|| job.graph.as_object().and_then(|g| g.keys().next().cloned()))
        .unwrap_or_default();
    let node_type = job
        .graph
        .get(&node)
        .and_then(|n| n.get("class_type"))
        .cloned()
        .unwrap_or(Value::Null);
    let data = json!({
        "prompt_id": job.prompt_id,
        "node_id": node,
        "node_type": node_type,
        "executed": log.executed,
        "timestamp": now_ms(),
    });
    if let Some((socket, _)) = inner.target(job.client_id.as_deref()) {
        let frame = json!({"type": "execution_interrupted", "data": data});
        let text = corrupt_if_terminal(inner, "execution_interrupted", pyjson::to_string(&frame));
        inner.send_to_socket(socket, text_message(text));
    }
    log.messages.push(json!(["execution_interrupted", data]));
    inner.stats.interrupts += 1;
    let status = json!({"status_str": "error", "completed": false, "messages": log.messages});
    finish(inner, job, None, std::mem::take(log), Some(status));
}

/// Writes the history entry, then sends `status` and `executing {node: null}`.
fn finish(
    inner: &mut Inner,
    job: &Job,
    recorded: Option<&RecordedPrompt>,
    log: RunLog,
    status: Option<Value>,
) {
    let recorded_entry = recorded.filter(|_| status.is_none()).and_then(|r| {
        r.history
            .as_ref()
            .map(|h| rewrite::value(h, &r.prompt_id, &job.prompt_id))
    });
    let mut entry = match recorded_entry {
        Some(Value::Object(map)) => map,
        _ => {
            let ok = log
                .messages
                .last()
                .and_then(|m| m.get(0))
                .and_then(Value::as_str)
                == Some("execution_success");
            let status = status.unwrap_or_else(|| {
                json!({
                    "status_str": if ok { "success" } else { "error" },
                    "completed": ok,
                    "messages": log.messages,
                })
            });
            let mut map = Map::new();
            map.insert("prompt".into(), Value::Null);
            map.insert("outputs".into(), Value::Object(log.outputs));
            map.insert("status".into(), status);
            map.insert("meta".into(), Value::Object(log.meta));
            map
        }
    };
    entry.insert("prompt".into(), job.queue_item());
    inner.ledger.ended(job.seq, end_of(&entry));
    inner
        .history
        .insert(job.prompt_id.clone(), Value::Object(entry));
    inner.running = None;
    inner.stats.prompts_finished += 1;
    inner.broadcast_status();
    if let Some((socket, _)) = inner.target(job.client_id.as_deref()) {
        let end = json!({"type": "executing", "data": {"node": null, "prompt_id": job.prompt_id}});
        inner.send_to_socket(socket, text_message(pyjson::to_string(&end)));
    }
}
