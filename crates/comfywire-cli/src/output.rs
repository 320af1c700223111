//! The one-line human form of every event, and the writer of `--json`
//! lines (whose objects come from the client's one encoder,
//! `comfywire_client::json`).

use std::io::Write;
use std::time::Instant;

pub use comfywire_client::json::{NodeNames, event_json};
use comfywire_client::{ConnectionState, ConnectionStatus, Event, ExecutionRecord, Outcome};
use serde_json::Value;

/// Writes one JSON object as a line on stdout and flushes it, so a reader
/// sees each event as it happens.
pub fn emit(value: &Value) {
    line(format_args!("{value}"));
}

/// Writes one line on stdout (what `outln!` expands to). A reader that
/// has gone away (`| head -1`) ends the process quietly with exit 0:
/// nothing more can be shown, and that is what the user asked for.
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(i32::from(crate::exit::OK));
        }
    }
}

/// `println!` for results on stdout, quiet on a closed pipe.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}

/// A short prompt id for people (the first 8 characters).
pub fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// The one-line human form of an event (`None` for the ones not worth a
/// line, such as unchanged progress).
pub fn event_line(event: &Event, names: &NodeNames) -> Option<String> {
    let pid = event.prompt_id().map(short).unwrap_or("-");
    Some(match event {
        Event::Connection(status) => connection_line(status),
        Event::Status {
            queue_remaining,
            sid,
        } => match (queue_remaining, sid) {
            (Some(q), Some(sid)) => format!("status       queue {q} (session {sid})"),
            (Some(q), None) => format!("status       queue {q}"),
            (None, _) => "status".to_owned(),
        },
        Event::FeatureFlags(flags) => format!("features     {}", Value::Object(flags.clone())),
        Event::PromptQueued { number, .. } => match number {
            Some(n) => format!("queued       {pid} as #{n}"),
            None => format!("queued       {pid}"),
        },
        Event::ExecutionStarted { .. } => format!("started      {pid}"),
        Event::NodesCached { nodes, .. } if nodes.is_empty() => return None,
        Event::NodesCached { nodes, .. } => format!(
            "cached       {pid} {}",
            nodes
                .iter()
                .map(|n| names.label(n))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Event::NodeStarted {
            node, display_node, ..
        } => format!(
            "node         {pid} {}",
            names.label(display_node.as_deref().unwrap_or(node))
        ),
        Event::Progress(p) => format!(
            "progress     {pid} {} {}/{} ({:.0}% of prompt)",
            names.label(p.display_node.as_deref().unwrap_or(&p.node)),
            p.value,
            p.max,
            p.overall * 100.0
        ),
        Event::Preview(p) => format!(
            "preview      {pid} node {} {} ({} bytes)",
            p.node.as_deref().unwrap_or("?"),
            p.mime,
            p.image.len()
        ),
        Event::ProgressText { node, text, .. } => format!("text         {pid} node {node}: {text}"),
        Event::Output {
            node,
            display_node,
            output,
            recovered,
            ..
        } => format!(
            "output       {pid} {}: {}{}",
            names.label(display_node.as_deref().unwrap_or(node)),
            describe_output(&output.to_value()),
            if *recovered {
                " (recovered from history)"
            } else {
                ""
            }
        ),
        Event::NodeFinished { node, .. } => format!("node done    {pid} {}", names.label(node)),
        Event::Blocked(e) => format!(
            "blocked      {pid} node {}: {}",
            e.node_id.as_deref().unwrap_or("?"),
            e.exception_message.trim_end()
        ),
        Event::Finished(record) => format!("finished     {pid} {}", outcome_text(record, names)),
        Event::Message(m) => format!("message      {pid} {}", m.kind()),
        Event::BadFrame { error, .. } => format!("bad frame    {error}"),
        Event::HttpFailed { request, error } => format!("http failed  {request:?}: {error}"),
        _ => event.kind().name().to_owned(),
    })
}

/// `connected`, `reconnecting in 1.2s (attempt 3): connection lost: ...`.
pub fn connection_line(status: &ConnectionStatus) -> String {
    let error = status
        .last_error
        .as_ref()
        .map(|e| format!(": {e}"))
        .unwrap_or_default();
    match &status.state {
        ConnectionState::Reconnecting {
            attempt,
            next_attempt_at,
        }
        | ConnectionState::Polling {
            attempt,
            next_attempt_at,
        } => format!(
            "connection   {} (attempt {attempt} in {:.1}s){error}",
            status.state.name(),
            next_attempt_at
                .saturating_duration_since(Instant::now())
                .as_secs_f64()
        ),
        ConnectionState::Connecting { attempt } if *attempt > 1 => {
            format!("connection   connecting (attempt {attempt})")
        }
        other => format!("connection   {}", other.name()),
    }
}

/// `succeeded in 1.05s`, `failed: node 3 (TestRaiseError) raised ...`.
pub fn outcome_text(record: &ExecutionRecord, names: &NodeNames) -> String {
    let took = record
        .duration()
        .map(|d| format!(" in {:.2}s", d.as_secs_f64()))
        .unwrap_or_default();
    match &record.outcome {
        Some(Outcome::Succeeded) => format!("succeeded{took}"),
        Some(Outcome::Failed(e)) => format!("failed{took}: {}", failure_text(e, names)),
        Some(Outcome::Interrupted(i)) => match &i.node_id {
            Some(node) => format!("interrupted{took} at node {}", names.label(node)),
            None => format!("interrupted{took}"),
        },
        Some(Outcome::Lost { reason }) => format!("lost: {reason}"),
        None => record.phase.name().to_owned(),
    }
}

/// `2 images`, `text, rows, summary`.
pub fn describe_output(output: &Value) -> String {
    let Some(map) = output.as_object() else {
        return "output".to_owned();
    };
    let parts: Vec<String> = map
        .iter()
        .map(|(k, v)| match v.as_array() {
            Some(items) => format!("{k}: {}", items.len()),
            None => k.clone(),
        })
        .collect();
    if parts.is_empty() {
        "empty".to_owned()
    } else {
        parts.join(", ")
    }
}

/// `node 3 (TestRaiseError) raised RuntimeError: message`. The server's
/// `node_type` wins over the workflow's class: it names what really ran.
pub fn failure_text(e: &comfywire_proto::ExecutionError, names: &NodeNames) -> String {
    let node = e.node_id.as_deref().unwrap_or("?");
    let class = e.node_type.as_deref().or_else(|| names.class(node));
    let label = match class {
        Some(class) => format!("{node} ({class})"),
        None => node.to_owned(),
    };
    format!(
        "node {label} raised {}: {}",
        e.exception_type,
        e.exception_message.trim_end()
    )
}
