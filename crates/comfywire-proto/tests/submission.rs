//! Every submission accounted for, on fake time: an unknown answer is
//! confirmed with the server (found, or forgotten after the window), a
//! server-chosen id is adopted, a prompt can be attached, a silent socket is
//! probed over HTTP, a frame that fails to parse defers the outcome to
//! history, and checks that keep failing end with a reason.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::time::{Duration, Instant};

use comfywire_proto::{
    Command, ConnectionError, Event, Frame, HistoryEntry, HttpReply, HttpRequest, Outcome, Phase,
    QueueSnapshot, Session, SessionConfig, TimerReason,
};
use serde_json::{Value, json};

fn connected() -> (Session, Instant) {
    let mut s = Session::new(SessionConfig {
        client_id: Some("me".into()),
        ..SessionConfig::default()
    });
    let now = common::base();
    s.connect(now);
    s.handle_connected(now);
    commands(&mut s);
    events(&mut s);
    (s, now)
}

fn commands(s: &mut Session) -> Vec<Command> {
    std::iter::from_fn(|| s.poll_command()).collect()
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn history(id: &str) -> Command {
    Command::Http(HttpRequest::History {
        prompt_id: id.into(),
    })
}

fn queue(running: &[&str], pending: &[&str]) -> HttpReply {
    let item = |id: &&str| json!([0, id, {}, {"client_id": "me"}, []]);
    HttpReply::Queue(
        QueueSnapshot::from_json(&json!({
            "queue_running": running.iter().map(item).collect::<Vec<_>>(),
            "queue_pending": pending.iter().map(item).collect::<Vec<_>>(),
        }))
        .unwrap(),
    )
}

fn entry(id: &str, status: &str) -> HttpReply {
    let message = if status == "success" {
        "execution_success"
    } else {
        "execution_error"
    };
    let data = json!({"prompt_id": id, "timestamp": 9, "node_id": "2", "node_type": "X",
        "exception_message": "boom", "exception_type": "RuntimeError", "traceback": []});
    HttpReply::History {
        prompt_id: id.into(),
        entry: Some(
            HistoryEntry::from_json(&json!({
                "prompt": [3, id, {}, {}, []],
                "outputs": {"4": {"images": [{"filename": "x.png", "subfolder": "", "type": "output"}]}},
                "status": {"status_str": status, "completed": status == "success",
                           "messages": [[message, data]]},
            }))
            .unwrap(),
        ),
    }
}

/// Submitted and accepted, as a normal `POST /prompt` leaves it.
fn accept(s: &mut Session, id: &str, now: Instant) {
    s.track_prompt(id, Some(2), now);
    s.handle_http(
        HttpReply::PromptAccepted {
            prompt_id: id.into(),
            number: Some(0),
            node_errors: json!({}),
        },
        now,
    );
}

fn text(value: Value) -> Frame {
    Frame::text(value.to_string())
}

fn terminals(events: &[Event]) -> Vec<&Event> {
    events.iter().filter(|e| e.is_terminal()).collect()
}

/// Answers every history request with "none" and every queue request
/// with `reply`, running timers, until `done`.
fn answer_until(
    s: &mut Session,
    mut now: Instant,
    reply: &HttpReply,
    done: impl Fn(&Session) -> bool,
) -> Instant {
    for _ in 0..100 {
        while let Some(c) = s.poll_command() {
            match c {
                Command::Http(HttpRequest::History { prompt_id }) => {
                    s.handle_http(
                        HttpReply::History {
                            prompt_id,
                            entry: None,
                        },
                        now,
                    );
                }
                Command::Http(HttpRequest::Queue) => s.handle_http(reply.clone(), now),
                _ => {}
            }
        }
        if done(s) {
            return now;
        }
        if let Some(t) = s.poll_timeout() {
            now = t.at.max(now);
            s.handle_timeout(now);
        }
    }
    panic!("never done");
}

#[test]
fn a_lost_answer_is_found_in_the_queue_and_tracked_to_its_end() {
    let (mut s, now) = connected();
    s.track_prompt("p", Some(2), now);
    s.prompt_uncertain("p", now);
    assert!(commands(&mut s).contains(&history("p")));
    s.handle_http(
        HttpReply::History {
            prompt_id: "p".into(),
            entry: None,
        },
        now,
    );
    assert!(commands(&mut s).contains(&Command::Http(HttpRequest::Queue)));
    s.handle_http(queue(&[], &["p"]), now);
    assert_eq!(s.execution("p").unwrap().phase, Phase::Queued);
    let ev = events(&mut s);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::PromptQueued { prompt_id, .. } if &**prompt_id == "p"))
    );
    // Its frames then end it once.
    s.handle_frame(
        text(json!({"type": "execution_start", "data": {"prompt_id": "p"}})),
        now,
    );
    s.handle_frame(
        text(json!({"type": "execution_success", "data": {"prompt_id": "p"}})),
        now,
    );
    s.handle_frame(
        text(json!({"type": "executing", "data": {"node": null, "prompt_id": "p"}})),
        now,
    );
    let ev = events(&mut s);
    assert_eq!(terminals(&ev).len(), 1);
}

#[test]
fn a_lost_answer_of_a_prompt_already_run_settles_from_history() {
    let (mut s, now) = connected();
    s.track_prompt("p", Some(2), now);
    s.prompt_uncertain("p", now);
    commands(&mut s);
    s.handle_http(entry("p", "success"), now);
    let record = s.execution("p").unwrap();
    assert_eq!(record.outcome, Some(Outcome::Succeeded));
    assert_eq!(record.number, Some(3));
    assert_eq!(terminals(&events(&mut s)).len(), 1);
}

#[test]
fn a_prompt_the_server_never_got_is_forgotten_after_the_window_without_an_event() {
    let (mut s, start) = connected();
    s.track_prompt("p", Some(2), start);
    s.prompt_uncertain("p", start);
    let end = answer_until(&mut s, start, &queue(&[], &[]), |s| {
        s.execution("p").is_none()
    });
    assert!(end - start >= SessionConfig::default().confirm_window);
    assert!(end - start <= SessionConfig::default().confirm_window + Duration::from_secs(2));
    assert!(
        terminals(&events(&mut s)).is_empty(),
        "nothing happened to it"
    );
}

#[test]
fn a_server_chosen_id_is_adopted_and_the_asked_one_resolves_to_it() {
    let (mut s, now) = connected();
    s.track_prompt("mine", Some(2), now);
    // Its frames race the answer, under the server's id.
    s.handle_frame(
        text(json!({"type": "execution_start", "data": {"prompt_id": "theirs"}})),
        now,
    );
    s.adopt_prompt_id("mine", "theirs", now);
    s.handle_http(
        HttpReply::PromptAccepted {
            prompt_id: "theirs".into(),
            number: Some(1),
            node_errors: json!({}),
        },
        now,
    );
    let record = s.execution("mine").unwrap();
    assert_eq!(record.prompt_id, "theirs");
    assert!(record.ours, "the raced record became ours");
    assert_eq!(record.expected_nodes, Some(2));
    s.handle_frame(
        text(json!({"type": "execution_success", "data": {"prompt_id": "theirs"}})),
        now,
    );
    s.handle_frame(
        text(json!({"type": "executing", "data": {"node": null, "prompt_id": "theirs"}})),
        now,
    );
    let ev = events(&mut s);
    let ends = terminals(&ev);
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].prompt_id(), Some("theirs"));
    assert!(s.execution("mine").unwrap().is_terminal());
}

#[test]
fn an_attached_prompt_is_settled_from_history_or_lost_when_unknown() {
    let (mut s, now) = connected();
    s.attach_prompt("done-elsewhere", now);
    assert!(commands(&mut s).contains(&history("done-elsewhere")));
    s.handle_http(entry("done-elsewhere", "error"), now);
    let record = s.execution("done-elsewhere").unwrap();
    assert!(matches!(record.outcome, Some(Outcome::Failed(_))));
    assert!(events(&mut s).iter().any(|e| matches!(
        e,
        Event::Output {
            recovered: true,
            ..
        }
    )));
    // Unknown to the server: lost, not waited on forever.
    s.attach_prompt("nobody", now);
    answer_until(&mut s, now, &queue(&[], &[]), |s| {
        s.execution("nobody").is_some_and(|r| r.is_terminal())
    });
    assert!(matches!(
        s.execution("nobody").unwrap().outcome,
        Some(Outcome::Lost { .. })
    ));
}

#[test]
fn an_attached_prompt_running_for_another_client_is_polled_until_it_ends() {
    let (mut s, mut now) = connected();
    s.attach_prompt("elsewhere", now);
    let still_running = queue(&["elsewhere"], &[]);
    let mut polls = 0;
    for _ in 0..5 {
        answer_until(&mut s, now, &still_running, |_| true);
        loop {
            let t = s.poll_timeout().unwrap();
            assert_ne!(t.reason, TimerReason::Probe, "attached prompts are polled");
            now = t.at;
            s.handle_timeout(now);
            if t.reason == TimerReason::AttachPoll {
                break;
            }
        }
        if commands(&mut s).contains(&history("elsewhere")) {
            polls += 1;
            s.handle_http(
                HttpReply::History {
                    prompt_id: "elsewhere".into(),
                    entry: None,
                },
                now,
            );
        }
    }
    assert!(polls >= 4, "{polls} polls");
    assert_eq!(s.execution("elsewhere").unwrap().phase, Phase::Running);
    // No frame ever came: the poll finds its end.
    answer_until(&mut s, now, &still_running, |_| true);
    loop {
        let t = s.poll_timeout().unwrap();
        now = t.at;
        s.handle_timeout(now);
        if t.reason == TimerReason::AttachPoll {
            break;
        }
    }
    assert!(commands(&mut s).contains(&history("elsewhere")));
    s.handle_http(entry("elsewhere", "success"), now);
    assert_eq!(terminals(&events(&mut s)).len(), 1);
}

#[test]
fn a_silent_socket_is_probed_and_a_prompt_gone_from_the_queue_settles_in_seconds() {
    let (mut s, start) = connected();
    accept(&mut s, "p", start);
    s.handle_frame(
        text(json!({"type": "execution_start", "data": {"prompt_id": "p"}})),
        start,
    );
    commands(&mut s);
    events(&mut s);
    let t = s.poll_timeout().unwrap();
    assert_eq!(t.reason, TimerReason::Probe);
    assert_eq!(t.at - start, Duration::from_secs(3));
    s.handle_timeout(t.at);
    assert!(commands(&mut s).contains(&Command::Http(HttpRequest::Queue)));
    // Still running: a silent node costs a look at the queue, nothing more.
    s.handle_http(queue(&["p"], &[]), t.at);
    assert!(commands(&mut s).is_empty());
    let t = s.poll_timeout().unwrap();
    assert_eq!(t.reason, TimerReason::Probe);
    s.handle_timeout(t.at);
    commands(&mut s);
    // Gone from the queue: it ended unheard; history settles it and the
    // deaf socket is replaced.
    s.handle_http(queue(&[], &[]), t.at);
    assert!(commands(&mut s).contains(&history("p")));
    s.handle_http(entry("p", "success"), t.at);
    let cmds = commands(&mut s);
    assert!(cmds.iter().any(|c| matches!(c, Command::Close { .. })));
    assert!(cmds.iter().any(|c| matches!(c, Command::Connect { .. })));
    assert!(t.at - start <= Duration::from_secs(6));
    assert_eq!(terminals(&events(&mut s)).len(), 1);
    assert!(matches!(s.last_error(), Some(ConnectionError::Deaf { .. })));
}

#[test]
fn a_terminal_frame_that_fails_to_parse_leaves_the_outcome_to_history() {
    let (mut s, now) = connected();
    accept(&mut s, "p", now);
    s.handle_frame(
        text(json!({"type": "execution_start", "data": {"prompt_id": "p"}})),
        now,
    );
    // A cut `execution_error` that still names the prompt.
    s.handle_frame(
        Frame::text(r#"{"type": "execution_error", "data": {"prompt_id": "p", "exception_mes"#),
        now,
    );
    s.handle_frame(
        text(json!({"type": "executing", "data": {"node": null, "prompt_id": "p"}})),
        now,
    );
    assert!(
        !s.execution("p").unwrap().is_terminal(),
        "not guessed as a success"
    );
    assert!(commands(&mut s).contains(&history("p")));
    s.handle_http(entry("p", "error"), now);
    assert!(matches!(
        s.execution("p").unwrap().outcome,
        Some(Outcome::Failed(_))
    ));
    assert_eq!(terminals(&events(&mut s)).len(), 1);
}

#[test]
fn checks_that_keep_failing_end_lost_with_a_reason_even_after_a_heard_success() {
    let (mut s, mut now) = connected();
    for id in ["heard", "unheard"] {
        accept(&mut s, id, now);
    }
    // A gap: both must be settled from history, which is unreadable.
    s.handle_disconnected(
        ConnectionError::Lost {
            code: None,
            message: "drop".into(),
        },
        now,
    );
    s.handle_frame(
        text(json!({"type": "execution_success", "data": {"prompt_id": "heard"}})),
        now,
    );
    s.handle_connected(now);
    let mut rounds = 0;
    while ["heard", "unheard"]
        .iter()
        .any(|id| !s.execution(id).unwrap().is_terminal())
    {
        rounds += 1;
        assert!(rounds < 100, "retried for ever");
        for c in commands(&mut s) {
            if let Command::Http(request) = c {
                s.handle_http(
                    HttpReply::Failed {
                        request,
                        error: "HTTP 500".into(),
                    },
                    now,
                );
            }
        }
        if let Some(t) = s.poll_timeout() {
            now = t.at;
            s.handle_timeout(now);
        }
    }
    // Its success was heard, but after a gap its outputs may be partial:
    // an unverifiable success is lost, saying so, never a wrong answer.
    assert!(matches!(
        &s.execution("heard").unwrap().outcome,
        Some(Outcome::Lost { reason })
            if reason.contains("succeeded") && reason.contains("outputs") && reason.contains("HTTP 500")
    ));
    assert!(matches!(
        &s.execution("unheard").unwrap().outcome,
        Some(Outcome::Lost { reason }) if reason.contains("HTTP 500")
    ));
}

#[test]
fn a_drop_between_enqueue_and_the_answer_is_a_gap_settled_from_history() {
    let (mut s, now) = connected();
    s.track_prompt("p", Some(2), now);
    s.handle_disconnected(
        ConnectionError::Lost {
            code: None,
            message: "drop".into(),
        },
        now,
    );
    s.handle_connected(now);
    commands(&mut s);
    // The answer arrives after the reconnect: the prompt may have run
    // unheard, so history is asked at once.
    s.handle_http(
        HttpReply::PromptAccepted {
            prompt_id: "p".into(),
            number: Some(0),
            node_errors: json!({}),
        },
        now,
    );
    assert!(s.execution("p").unwrap().had_gap);
    assert!(commands(&mut s).contains(&history("p")));
    s.handle_http(entry("p", "success"), now);
    assert_eq!(terminals(&events(&mut s)).len(), 1);
}

#[test]
fn a_lost_answer_naming_a_server_chosen_id_is_found_by_our_client_id() {
    let (mut s, now) = connected();
    s.track_prompt("asked", Some(2), now);
    s.prompt_uncertain("asked", now);
    commands(&mut s);
    s.handle_http(
        HttpReply::History {
            prompt_id: "asked".into(),
            entry: None,
        },
        now,
    );
    commands(&mut s);
    // The server queued it as "given" (the answer that said so was lost);
    // its queue item carries our client id ("me").
    s.handle_http(queue(&["given"], &[]), now);
    let record = s.execution("asked").unwrap();
    assert_eq!(record.prompt_id, "given");
    assert_eq!(record.phase, Phase::Running);
    s.handle_frame(
        text(json!({"type": "execution_success", "data": {"prompt_id": "given"}})),
        now,
    );
    s.handle_frame(
        text(json!({"type": "executing", "data": {"node": null, "prompt_id": "given"}})),
        now,
    );
    assert_eq!(terminals(&events(&mut s)).len(), 1);
}

/// A successful history entry for `id`, submitted by `client`.
fn entry_of(id: &str, client: &str) -> HttpReply {
    HttpReply::History {
        prompt_id: id.into(),
        entry: Some(
            HistoryEntry::from_json(&json!({
                "prompt": [3, id, {}, {"client_id": client}, []],
                "outputs": {"4": {"images": [{"filename": "x.png", "subfolder": "", "type": "output"}]}},
                "status": {"status_str": "success", "completed": true,
                           "messages": [["execution_success", {"prompt_id": id}]]},
            }))
            .unwrap(),
        ),
    }
}

/// A whole run of `id` on the socket, output and end included.
fn run_frames(s: &mut Session, id: &str, now: Instant) {
    for frame in [
        json!({"type": "execution_start", "data": {"prompt_id": id}}),
        json!({"type": "executing", "data": {"node": "4", "prompt_id": id}}),
        json!({"type": "executed", "data": {"node": "4", "prompt_id": id,
               "output": {"images": [{"filename": "x.png", "subfolder": "", "type": "output"}]}}}),
        json!({"type": "execution_success", "data": {"prompt_id": id}}),
        json!({"type": "executing", "data": {"node": null, "prompt_id": id}}),
    ] {
        s.handle_frame(text(frame), now);
    }
}

#[test]
fn ours_run_under_a_server_chosen_id_before_any_answer_ends_once_as_ours() {
    let (mut s, now) = connected();
    s.track_prompt("asked", Some(1), now);
    commands(&mut s);
    // The server runs it as "given" while the answer naming it is held up.
    run_frames(&mut s, "given", now);
    let seen = events(&mut s);
    assert!(
        terminals(&seen).is_empty(),
        "ended before its client was known"
    );
    assert!(commands(&mut s).contains(&history("given")));
    s.handle_http(entry_of("given", "me"), now);
    let ends = events(&mut s);
    let [Event::Finished(record)] = terminals(&ends).as_slice() else {
        panic!("one terminal event expected: {ends:?}");
    };
    assert!(record.ours);
    assert_eq!(record.prompt_id, "given");
    assert!(record.outputs.contains_key("4"));
    assert_eq!(s.execution("asked").unwrap().prompt_id, "given");
    // The late answer, then a confirmation of it, add nothing.
    s.adopt_prompt_id("asked", "given", now);
    s.handle_http(
        HttpReply::PromptAccepted {
            prompt_id: "given".into(),
            number: Some(3),
            node_errors: json!({}),
        },
        now,
    );
    s.prompt_uncertain("asked", now);
    assert!(terminals(&events(&mut s)).is_empty());
}

#[test]
fn a_foreign_prompt_ending_while_our_answer_is_pending_ends_once_as_foreign() {
    let (mut s, now) = connected();
    s.track_prompt("asked", Some(1), now);
    run_frames(&mut s, "theirs", now);
    assert!(terminals(&events(&mut s)).is_empty());
    s.handle_http(entry_of("theirs", "someone-else"), now);
    let ends = events(&mut s);
    let [Event::Finished(record)] = terminals(&ends).as_slice() else {
        panic!("one terminal event expected: {ends:?}");
    };
    assert!(!record.ours);
    assert_eq!(record.prompt_id, "theirs");
    // Our own submission is untouched by it.
    let mine = s.execution("asked").unwrap();
    assert_eq!(
        (mine.prompt_id.as_str(), mine.phase),
        ("asked", Phase::Submitted)
    );
}

#[test]
fn a_held_end_is_released_as_foreign_when_our_answer_comes_and_history_is_silent() {
    let (mut s, now) = connected();
    s.track_prompt("asked", Some(1), now);
    run_frames(&mut s, "theirs", now);
    let asked = commands(&mut s);
    assert!(asked.contains(&history("theirs")));
    s.handle_http(
        HttpReply::Failed {
            request: HttpRequest::History {
                prompt_id: "theirs".into(),
            },
            error: "HTTP 500".into(),
        },
        now,
    );
    assert!(terminals(&events(&mut s)).is_empty());
    // Our answer names our own id: "theirs" was never ours.
    s.handle_http(
        HttpReply::PromptAccepted {
            prompt_id: "asked".into(),
            number: Some(1),
            node_errors: json!({}),
        },
        now,
    );
    let ends = events(&mut s);
    let [Event::Finished(record)] = terminals(&ends).as_slice() else {
        panic!("one terminal event expected: {ends:?}");
    };
    assert_eq!((record.prompt_id.as_str(), record.ours), ("theirs", false));
    assert_eq!(record.outcome, Some(Outcome::Succeeded));
}

#[test]
fn a_lost_answer_is_found_in_the_queue_even_after_its_frames_made_it_foreign() {
    let (mut s, now) = connected();
    s.track_prompt("asked", Some(1), now);
    // Its frames, under the id the server chose, arrive before anything
    // says it is ours.
    s.handle_frame(
        text(json!({"type": "execution_start", "data": {"prompt_id": "given"}})),
        now,
    );
    assert!(!s.execution("given").unwrap().ours);
    s.prompt_uncertain("asked", now);
    commands(&mut s);
    s.handle_http(
        HttpReply::History {
            prompt_id: "asked".into(),
            entry: None,
        },
        now,
    );
    s.handle_http(queue(&["given"], &[]), now);
    let record = s.execution("asked").unwrap();
    assert_eq!((record.prompt_id.as_str(), record.ours), ("given", true));
    run_frames(&mut s, "given", now);
    let ends = events(&mut s);
    let [Event::Finished(record)] = terminals(&ends).as_slice() else {
        panic!("one terminal event expected: {ends:?}");
    };
    assert!(record.ours && record.outputs.contains_key("4"));
}
