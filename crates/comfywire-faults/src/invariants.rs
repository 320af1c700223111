//! The invariants every schedule must keep, checked over the event stream
//! a subscriber saw and over the final records.

use std::collections::HashMap;

use comfywire_proto::{Event, ExecutionRecord, Outcome, Outputs};
use serde_json::{Map, Value};

/// Checks one subscriber's whole stream: at most one `Finished` per prompt,
/// nothing for a prompt after its `Finished`, and a `Finished` for every
/// prompt in `ours`. Returns one line per violation.
pub fn check_stream(events: &[Event], ours: &[String]) -> Vec<String> {
    let mut violations = Vec::new();
    let mut finished: HashMap<&str, usize> = HashMap::new();
    for (i, event) in events.iter().enumerate() {
        if let Event::Finished(record) = event {
            if finished.insert(&record.prompt_id, i).is_some() {
                violations.push(format!("duplicate terminal event for {}", record.prompt_id));
            }
        }
    }
    for (i, event) in events.iter().enumerate() {
        let Some(prompt_id) = event.prompt_id() else {
            continue;
        };
        if let Some(&end) = finished.get(prompt_id) {
            if i > end {
                violations.push(format!(
                    "{} event for {prompt_id} after its terminal event",
                    event.kind().name()
                ));
            }
        }
    }
    for prompt_id in ours {
        if !finished.contains_key(prompt_id.as_str()) {
            violations.push(format!("no terminal event for {prompt_id}"));
        }
    }
    violations
}

/// Number of `Finished` events for `prompt_id` in `events`.
pub fn terminal_count(events: &[Event], prompt_id: &str) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Finished(r) if r.prompt_id == prompt_id))
        .count()
}

/// Compares a terminal record with the server's history entry (`None`
/// when the server has none, e.g. after a restart): an outcome, a reason
/// for a loss, and a success's outputs equal to the server's. Whether the
/// outcome itself is right is the ledger's to say ([`crate::accounting`]).
pub fn check_against_server(record: &ExecutionRecord, server: Option<&Value>) -> Vec<String> {
    let mut violations = Vec::new();
    let id = &record.prompt_id;
    match (&record.outcome, server) {
        (None, _) => violations.push(format!("{id} is terminal without an outcome")),
        (Some(Outcome::Lost { reason }), _) => {
            if reason.trim().is_empty() {
                violations.push(format!("{id} lost without a reason"));
            }
        }
        (Some(Outcome::Succeeded), Some(entry)) => {
            let outputs = entry
                .get("outputs")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            if !same_outputs(&record.outputs, &outputs) {
                violations.push(format!(
                    "{id} succeeded with outputs {:?} but the server's history has {:?}",
                    record.outputs.keys().collect::<Vec<_>>(),
                    outputs.keys().collect::<Vec<_>>()
                ));
            }
        }
        (Some(_), _) => {}
    }
    violations
}

/// Output maps equal, ignoring null outputs (the tracker never stores them).
pub fn same_outputs(ours: &Outputs, server: &Map<String, Value>) -> bool {
    let server: Map<String, Value> = server
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    ours.to_map() == server
}

/// The kind of terminal outcome, for tallies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutcomeKind {
    /// Succeeded.
    Succeeded,
    /// Failed.
    Failed,
    /// Interrupted.
    Interrupted,
    /// Lost (with a reason).
    Lost,
    /// `POST /prompt` itself failed or was refused: no terminal expected.
    NotSubmitted,
}

impl OutcomeKind {
    /// A stable lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            OutcomeKind::Succeeded => "succeeded",
            OutcomeKind::Failed => "failed",
            OutcomeKind::Interrupted => "interrupted",
            OutcomeKind::Lost => "lost",
            OutcomeKind::NotSubmitted => "not submitted",
        }
    }

    /// The kind of a record's outcome.
    pub fn of(record: &ExecutionRecord) -> OutcomeKind {
        match &record.outcome {
            Some(Outcome::Succeeded) => OutcomeKind::Succeeded,
            Some(Outcome::Failed(_)) => OutcomeKind::Failed,
            Some(Outcome::Interrupted(_)) => OutcomeKind::Interrupted,
            Some(Outcome::Lost { .. }) | None => OutcomeKind::Lost,
        }
    }
}
