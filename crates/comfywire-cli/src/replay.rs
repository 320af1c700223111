//! `comfywire replay`: a trace fed through the protocol core exactly as
//! the golden tests do, printing the typed events and each prompt's
//! outcome next to the outcome the server recorded in `/history`.

use std::time::Instant;

use comfywire_proto::trace::{Trace, TraceEventKind};
use comfywire_proto::{Event, ReplayOptions, SessionConfig, replay};
use serde_json::{Value, json};

use crate::args::ReplayArgs;
use crate::exit::{self, Failure};
use crate::output::{self, NodeNames};

/// `comfywire replay`.
pub fn command(args: ReplayArgs) -> Result<(), Failure> {
    let text = std::fs::read_to_string(&args.trace)
        .map_err(|e| Failure::usage(format!("{}: {e}", args.trace.display())))?;
    let trace = Trace::parse(&text)
        .map_err(|e| Failure::usage(format!("{}: {e}", args.trace.display())))?;
    let names = names_of(&trace);
    let result = replay(
        &trace,
        SessionConfig::default(),
        Instant::now(),
        ReplayOptions::default(),
    );
    if !args.json {
        crate::outln!(
            "trace {} ({} events): {}",
            trace.meta.scenario,
            trace.events.len(),
            trace.meta.notes.lines().next().unwrap_or_default()
        );
    }
    let mut prompts: Vec<String> = trace.meta.prompt_ids.clone();
    // The recording's end closes its socket: the connection events after
    // the last other event are that, not a reconnect worth showing.
    let shown = result
        .events
        .iter()
        .rposition(|(_, e)| !matches!(e, Event::Connection(_)))
        .map_or(0, |last| last + 1);
    if !args.json {
        crate::outln!("{:>10}  event", "time (ms)");
    }
    for (t_ms, event) in &result.events[..shown] {
        if let Some(id) = event.prompt_id() {
            if !prompts.iter().any(|p| p == id) && !result.rejected.iter().any(|r| r == id) {
                prompts.push(id.to_owned());
            }
        }
        if args.json {
            let mut line = output::event_json(event, &names, None);
            if let Some(m) = line.as_object_mut() {
                m.insert("t_ms".into(), json!((t_ms * 1000.0).round() / 1000.0));
            }
            output::emit(&line);
        } else if let Some(line) = output::event_line(event, &names) {
            crate::outln!("{t_ms:>10.1}  {line}");
        }
    }
    let history = trace.final_history();
    let mut mismatches = 0;
    for id in &prompts {
        let record = result.session.execution(id);
        let outcome = record.map(|r| r.phase.name()).unwrap_or("unknown");
        // Only prompts the recording client POSTed are ours; another
        // client's prompt its socket happened to see is reported as such,
        // never held against the replay.
        if !trace.meta.prompt_ids.contains(id) && record.is_some_and(|r| !r.ours) {
            if args.json {
                output::emit(&json!({
                    "event": "outcome", "prompt_id": id, "outcome": outcome,
                    "foreign": true, "history": Value::Null, "matches": Value::Null,
                }));
            } else {
                crate::outln!("prompt {id}: another client's prompt (foreign), seen as {outcome}");
            }
            continue;
        }
        let recorded = history
            .iter()
            .find(|(h, _)| h == id)
            .and_then(|(_, entry)| entry.pointer("/status/status_str").and_then(Value::as_str));
        let matches = recorded.map(|status| agrees(outcome, status));
        if matches == Some(false) {
            mismatches += 1;
        }
        if args.json {
            output::emit(&json!({
                "event": "outcome",
                "prompt_id": id,
                "outcome": outcome,
                "history": recorded,
                "matches": matches,
            }));
        } else {
            let detail = record
                .map(|r| output::outcome_text(r, &names))
                .unwrap_or_else(|| "never seen".into());
            let check = match (recorded, matches) {
                (Some(status), Some(true)) => format!("  (history: {status}, agrees)"),
                (Some(status), _) => format!("  (history: {status}, DISAGREES)"),
                (None, _) => "  (no history recorded)".into(),
            };
            crate::outln!("prompt {id}: {detail}{check}");
        }
    }
    for id in &result.rejected {
        if args.json {
            output::emit(&json!({
                "event": "outcome",
                "prompt_id": id,
                "outcome": "rejected",
                "history": Value::Null,
                "matches": Value::Null,
            }));
        } else {
            crate::outln!("prompt {id}: rejected by the server (validation error)");
        }
    }
    if mismatches > 0 {
        return Err(Failure::new(
            exit::FAILURE,
            format!(
                "{mismatches} prompt(s) replayed to a different outcome than the recorded history"
            ),
        ));
    }
    Ok(())
}

/// `success` ↔ succeeded; `error` ↔ failed or interrupted (the server
/// records both as errors).
fn agrees(outcome: &str, status_str: &str) -> bool {
    match status_str {
        "success" => outcome == "succeeded",
        "error" => outcome == "failed" || outcome == "interrupted",
        _ => true,
    }
}

/// Class names from every recorded `POST /prompt`.
fn names_of(trace: &Trace) -> NodeNames {
    let mut graph = serde_json::Map::new();
    for event in &trace.events {
        if let TraceEventKind::Http(http) = &event.kind {
            if let Some(prompt) = http
                .request
                .as_ref()
                .and_then(|r| r.get("prompt"))
                .and_then(Value::as_object)
            {
                for (id, node) in prompt {
                    graph.entry(id.clone()).or_insert_with(|| node.clone());
                }
            }
        }
    }
    NodeNames::from_workflow(&Value::Object(graph))
}
