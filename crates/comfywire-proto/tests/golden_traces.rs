//! The recorded sessions of a real ComfyUI server are the golden vectors:
//! every frame parses to a typed message, and replaying a trace through
//! `Session` yields the outcome the server's own `/history` recorded.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use comfywire_proto::trace::{Trace, TraceEventKind};
use comfywire_proto::{
    Event, Frame, HistoryEntry, HistoryOutcome, Outcome, ReplayOptions, ServerMessage,
    SessionConfig, parse_frame, replay,
};
use serde_json::Value;

#[test]
fn every_received_frame_parses_to_a_known_type() {
    let mut frames = 0;
    for (name, trace) in common::load_traces() {
        for event in &trace.events {
            let frame = match &event.kind {
                TraceEventKind::Text {
                    received: true,
                    data,
                    ..
                } => Frame::text(data.clone()),
                TraceEventKind::Binary { data, .. } => Frame::Binary(data.clone()),
                _ => continue,
            };
            frames += 1;
            match parse_frame(&frame) {
                Ok(ServerMessage::Unknown(u)) => {
                    panic!(
                        "{name} at {} ms: core type fell to Unknown: {}",
                        event.t_ms, u.kind
                    )
                }
                Ok(_) => {}
                Err(e) => panic!("{name} at {} ms: {e}", event.t_ms),
            }
        }
    }
    assert!(frames > 1000, "only {frames} frames found");
}

fn expected_outcome(entry: &HistoryEntry) -> &'static str {
    match entry.outcome {
        HistoryOutcome::Success => "succeeded",
        HistoryOutcome::Error(_) => "failed",
        HistoryOutcome::Interrupted(_) => "interrupted",
        HistoryOutcome::UnknownError => "failed",
    }
}

#[test]
fn replay_matches_the_servers_history() {
    for (name, trace) in common::load_traces() {
        let result = replay(
            &trace,
            SessionConfig::default(),
            common::base(),
            ReplayOptions::default(),
        );
        // Only the recording client's own prompts are ours; another
        // client's (in a multi-client recording) is foreign, never checked
        // as ours.
        let finals: Vec<(String, Value)> = trace
            .final_history()
            .into_iter()
            .filter(|(id, _)| trace.meta.prompt_ids.contains(id))
            .collect();
        let session = &result.session;
        for (prompt_id, raw) in &finals {
            let entry = HistoryEntry::from_json(raw).unwrap();
            let record = session
                .history()
                .get(prompt_id)
                .unwrap_or_else(|| panic!("{name}: {prompt_id} never finished"));
            assert_eq!(
                record.phase.name(),
                expected_outcome(&entry),
                "{name}: {prompt_id}"
            );
            assert_eq!(
                record.outputs.to_map(),
                entry.outputs,
                "{name}: outputs of {prompt_id}"
            );
            assert_eq!(
                record.cached, entry.cached,
                "{name}: cached nodes of {prompt_id}"
            );
            if let (Some(Outcome::Failed(got)), HistoryOutcome::Error(want)) =
                (&record.outcome, &entry.outcome)
            {
                assert_eq!(got.as_ref(), want.as_ref(), "{name}: error payload");
            }
            let terminals = result
                .events_of(prompt_id)
                .filter(|e| e.is_terminal())
                .count();
            assert_eq!(terminals, 1, "{name}: {prompt_id} terminal events");
            let after_terminal = result
                .events_of(prompt_id)
                .skip_while(|e| !e.is_terminal())
                .skip(1)
                .count();
            assert_eq!(after_terminal, 0, "{name}: events after the terminal one");
        }
        // No phantom prompt: only prompts the server recorded are known.
        let ours = session.history().iter().filter(|r| r.ours).count();
        assert_eq!(ours, finals.len(), "{name}: ring size");
        for record in session.history().iter() {
            assert!(
                record.ours || !trace.meta.prompt_ids.contains(&record.prompt_id),
                "{name}: {} is ours but marked foreign",
                record.prompt_id
            );
        }
        assert_eq!(
            session.tracker().active_records().count(),
            0,
            "{name}: in flight"
        );
        for id in &result.rejected {
            assert!(session.execution(id).is_none(), "{name}: phantom {id}");
        }
        for id in &trace.meta.prompt_ids {
            let recorded = finals.iter().any(|(p, _)| p == id);
            assert_eq!(session.execution(id).is_some(), recorded, "{name}: {id}");
        }
    }
}

#[test]
fn the_websocket_alone_settles_prompts_without_a_gap() {
    for (name, trace) in common::load_traces() {
        let result = replay(
            &trace,
            SessionConfig::default(),
            common::base(),
            ReplayOptions {
                feed_history: false,
                feed_queue: false,
            },
        );
        for (prompt_id, raw) in trace.final_history() {
            if !trace.meta.prompt_ids.contains(&prompt_id) {
                continue; // another client's prompt
            }
            let entry = HistoryEntry::from_json(&raw).unwrap();
            let Some(record) = result.session.execution(&prompt_id) else {
                panic!("{name}: {prompt_id} unknown");
            };
            if record.had_gap {
                // Reconnect gaps are settled from /history, never guessed.
                assert!(
                    !record.is_terminal(),
                    "{name}: settled a gapped prompt blind"
                );
                continue;
            }
            assert_eq!(record.phase.name(), expected_outcome(&entry), "{name}");
            assert_eq!(record.outputs.to_map(), entry.outputs, "{name}: outputs");
        }
    }
}

#[test]
fn progress_reaches_every_steps_final_value_in_order() {
    for (name, trace) in common::load_traces() {
        let result = replay(
            &trace,
            SessionConfig::default(),
            common::base(),
            ReplayOptions::default(),
        );
        for (prompt_id, _) in trace.final_history() {
            if !trace.meta.prompt_ids.contains(&prompt_id) {
                continue; // another client's prompt
            }
            let mut last: std::collections::HashMap<String, f64> = Default::default();
            for event in result.events_of(&prompt_id) {
                if let Event::Progress(p) = event {
                    let prev = last.insert(p.node.to_string(), p.value).unwrap_or(-1.0);
                    assert!(p.value >= prev, "{name}: progress went back on {}", p.node);
                    assert!((0.0..=1.0).contains(&p.overall));
                }
            }
            // Every node's last step as the server sent it was delivered
            // (the throttle always delivers the final value), whether the
            // node ran to its max or stopped early (interrupted, failed).
            for (node, sent) in last_sent_progress(&trace, &prompt_id) {
                assert_eq!(last.get(&node), Some(&sent), "{name}: final step of {node}");
            }
        }
    }
}

/// The last `progress` value the server sent the recording client for each
/// node of a prompt, read from the trace's own frames.
fn last_sent_progress(trace: &Trace, prompt_id: &str) -> Vec<(String, f64)> {
    let mut last: Vec<(String, f64)> = Vec::new();
    for event in &trace.events {
        if event.client.as_deref().is_some_and(|c| c != "primary") {
            continue;
        }
        let TraceEventKind::Text {
            received: true,
            data,
            ..
        } = &event.kind
        else {
            continue;
        };
        let Ok(frame) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        if frame["type"] != "progress" || frame["data"]["prompt_id"] != prompt_id {
            continue;
        }
        let (Some(node), Some(value)) = (
            frame["data"]["node"].as_str(),
            frame["data"]["value"].as_f64(),
        ) else {
            continue;
        };
        match last.iter_mut().find(|(n, _)| n == node) {
            Some(slot) => slot.1 = value,
            None => last.push((node.to_owned(), value)),
        }
    }
    last
}

#[test]
fn long_run_progress_is_throttled() {
    let (_, trace) = common::load_traces()
        .into_iter()
        .find(|(n, _)| n == "long_run")
        .expect("long_run trace");
    let result = replay(
        &trace,
        SessionConfig::default(),
        common::base(),
        ReplayOptions::default(),
    );
    let progress: Vec<f64> = result
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Progress(_)))
        .map(|(t, _)| *t)
        .collect();
    // 200 steps at ~5 ms would be 200 events unthrottled (408 frames).
    eprintln!(
        "long_run: {} progress events, stats {:?}",
        progress.len(),
        result.session.stats()
    );
    assert!(progress.len() < 120, "{} progress events", progress.len());
    assert!(progress.len() > 40, "{} progress events", progress.len());
    let previews = result
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Preview(_)))
        .count();
    assert!(previews < 60 && previews > 5, "{previews} previews");
    let stats = result.session.stats();
    assert!(stats.emitted.coalesced_progress > 50);
    assert_eq!(stats.bad_frames, 0);
    assert_eq!(result.session.held_updates(), 0, "throttle keys leaked");
}

#[test]
fn the_borrowed_fast_path_and_the_owned_parser_give_the_same_events() {
    use comfywire_proto::{Session, SessionConfig};
    for (name, trace) in common::load_traces() {
        let base = common::base();
        let mut fast = Session::new(SessionConfig {
            client_id: Some("c".into()),
            ..SessionConfig::default()
        });
        let mut owned = Session::new(SessionConfig {
            client_id: Some("c".into()),
            ..SessionConfig::default()
        });
        // Fed the way the driver feeds it: text already checked as UTF-8.
        let mut checked = Session::new(SessionConfig {
            client_id: Some("c".into()),
            ..SessionConfig::default()
        });
        for s in [&mut fast, &mut owned, &mut checked] {
            s.connect(base);
            s.handle_connected(base);
        }
        for event in &trace.events {
            let now = base + std::time::Duration::from_secs_f64(event.t_ms / 1000.0);
            let frame = match &event.kind {
                TraceEventKind::Text {
                    received: true,
                    data,
                    ..
                } => Frame::text(data.clone()),
                TraceEventKind::Binary { data, .. } => Frame::Binary(data.clone()),
                _ => continue,
            };
            owned.handle_message(parse_frame(&frame).unwrap(), now);
            match &event.kind {
                TraceEventKind::Text { data, .. } => checked.handle_text(data.clone(), now),
                _ => checked.handle_frame(frame.clone(), now),
            }
            fast.handle_frame(frame, now);
        }
        let a: Vec<Event> = std::iter::from_fn(|| fast.poll_event()).collect();
        let b: Vec<Event> = std::iter::from_fn(|| owned.poll_event()).collect();
        let c: Vec<Event> = std::iter::from_fn(|| checked.poll_event()).collect();
        assert!(a == c, "{name}: handle_text and handle_frame differ");
        assert_eq!(fast.stats(), checked.stats(), "{name}");
        // Skipped snapshots only move a step's progress after the preview
        // that sits between the snapshot and `progress`; everything that is
        // not progress or a preview is identical and in the same order.
        let exact = |v: &[Event]| -> Vec<Event> {
            v.iter().filter(|e| !e.kind().is_lossy()).cloned().collect()
        };
        assert!(exact(&a) == exact(&b), "{name}: lifecycle events differ");
        let last = |v: &[Event]| {
            let mut m = std::collections::BTreeMap::new();
            for e in v {
                if let Event::Progress(p) = e {
                    m.insert(p.node.clone(), (p.value, p.max));
                }
            }
            m
        };
        assert_eq!(last(&a), last(&b), "{name}: final progress");
        assert!(!a.is_empty(), "{name}");
    }
}

#[test]
fn previews_taken_from_frames_never_keep_the_frame_alive() {
    use comfywire_proto::{Session, SessionConfig};
    let mut checked = 0;
    for (name, trace) in common::load_traces() {
        let base = common::base();
        let mut session = Session::new(SessionConfig {
            client_id: Some("c".into()),
            preview_interval: std::time::Duration::ZERO,
            ..SessionConfig::default()
        });
        session.connect(base);
        session.handle_connected(base);
        for event in &trace.events {
            let now = base + std::time::Duration::from_secs_f64(event.t_ms / 1000.0);
            let data = match &event.kind {
                TraceEventKind::Text {
                    received: true,
                    data,
                    ..
                } => {
                    session.handle_text(data.clone(), now);
                    continue;
                }
                TraceEventKind::Binary { data, .. } => data.clone(),
                _ => continue,
            };
            let frame = data.as_ptr() as usize..data.as_ptr() as usize + data.len();
            session.handle_frame(Frame::Binary(data.clone()), now);
            for e in std::iter::from_fn(|| session.poll_event()) {
                if let Event::Preview(p) = e {
                    checked += 1;
                    assert!(!p.image.is_empty(), "{name}");
                    assert!(
                        !frame.contains(&(p.image.as_ptr() as usize)),
                        "{name}: the preview is a slice of the frame"
                    );
                    assert!(data.ends_with(&p.image), "{name}: image bytes differ");
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} previews");
}

/// Every recorded step's estimate is the node's pace so far times the
/// steps left, by the trace's own clock: checked against the progress
/// frames' arrival times, not the session's arithmetic.
#[test]
fn progress_estimates_follow_the_recorded_pace() {
    let mut checked = 0;
    for (name, trace) in common::load_traces() {
        let result = replay(
            &trace,
            SessionConfig {
                progress_interval: std::time::Duration::ZERO,
                ..SessionConfig::default()
            },
            common::base(),
            ReplayOptions::default(),
        );
        // When each node started, by the trace's clock.
        let mut started: std::collections::HashMap<String, f64> = Default::default();
        for (t_ms, event) in &result.events {
            match event {
                Event::NodeStarted { node, .. } => {
                    started.insert(node.to_string(), *t_ms);
                }
                Event::Progress(p) => {
                    let Some(eta) = p.eta else {
                        assert!(
                            p.value <= 0.0 || p.value >= p.max,
                            "{name}: no estimate at {p:?}"
                        );
                        continue;
                    };
                    assert!(p.value > 0.0 && p.value < p.max, "{name}: {p:?}");
                    let Some(t0) = started.get(&*p.node) else {
                        continue;
                    };
                    let pace = (t_ms - t0) / p.value;
                    let expected = pace * (p.max - p.value) / 1000.0;
                    let got = eta.as_secs_f64();
                    assert!(
                        (got - expected).abs() <= 0.05 + 0.2 * expected,
                        "{name} at {t_ms} ms: estimate {got:.3}s, pace says {expected:.3}s ({p:?})"
                    );
                    checked += 1;
                }
                _ => {}
            }
        }
    }
    assert!(checked > 100, "only {checked} estimates checked");
}
