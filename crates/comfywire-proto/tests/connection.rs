//! The connection state machine on fake time: backoff schedule and reset,
//! retry-now, polling after repeated failures and back, heartbeat verdicts,
//! an idle server left alone, the deaf-socket watchdog, pause and resume.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::time::{Duration, Instant};

use comfywire_proto::{
    Command, ConnectionError, ConnectionState, Event, Frame, HistoryEntry, HttpReply, HttpRequest,
    Outcome, QueueSnapshot, Session, SessionConfig, TimerReason,
};
use serde_json::json;

fn session() -> (Session, Instant) {
    let s = Session::new(SessionConfig {
        client_id: Some("me".into()),
        ..SessionConfig::default()
    });
    (s, common::base())
}

fn commands(s: &mut Session) -> Vec<Command> {
    std::iter::from_fn(|| s.poll_command()).collect()
}

fn events(s: &mut Session) -> Vec<Event> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// Runs timers until one with `reason` fires; returns its instant.
fn run_until(s: &mut Session, reason: TimerReason) -> Instant {
    loop {
        let t = s.poll_timeout().unwrap();
        s.handle_timeout(t.at);
        if t.reason == reason {
            return t.at;
        }
        commands(s);
    }
}

fn refused() -> ConnectionError {
    ConnectionError::ConnectFailed {
        message: "refused".into(),
    }
}

/// Jumps straight to each deadline, failing every connect; returns the
/// delays between attempts.
fn failing_schedule(s: &mut Session, mut now: Instant, attempts: usize) -> (Vec<u64>, Instant) {
    let mut delays = Vec::new();
    s.connect(now);
    for _ in 0..attempts {
        assert!(
            commands(s)
                .iter()
                .any(|c| matches!(c, Command::Connect { .. }))
        );
        s.handle_connect_failed(refused(), now);
        let at = s.state().next_attempt_at().unwrap();
        delays.push(at.duration_since(now).as_secs());
        now = at;
        s.handle_timeout(now);
    }
    (delays, now)
}

#[test]
fn backoff_doubles_to_the_cap() {
    let (mut s, now) = session();
    let (delays, _) = failing_schedule(&mut s, now, 7);
    assert_eq!(delays, vec![1, 2, 4, 8, 16, 30, 30]);
}

#[test]
fn a_stable_connection_resets_the_backoff_and_a_flapping_one_does_not() {
    let (mut s, now) = session();
    let (_, mut now) = failing_schedule(&mut s, now, 3);
    commands(&mut s);
    s.handle_connected(now);
    // Dropped before it was stable: the schedule goes on (4 failures → 8 s).
    now += Duration::from_secs(2);
    s.handle_disconnected(
        ConnectionError::Lost {
            code: None,
            message: "reset".into(),
        },
        now,
    );
    assert_eq!(
        s.state().next_attempt_at().unwrap() - now,
        Duration::from_secs(8)
    );
    now = s.state().next_attempt_at().unwrap();
    s.handle_timeout(now);
    s.handle_connected(now);
    // Stays up past `stable_after`: the next drop starts again at 1 s.
    now += Duration::from_secs(11);
    s.handle_timeout(now);
    s.handle_disconnected(
        ConnectionError::Lost {
            code: Some(1006),
            message: "gone".into(),
        },
        now,
    );
    assert_eq!(
        s.state().next_attempt_at().unwrap() - now,
        Duration::from_secs(1)
    );
    assert!(matches!(
        s.last_error(),
        Some(ConnectionError::Lost {
            code: Some(1006),
            ..
        })
    ));
}

#[test]
fn retry_now_skips_the_wait() {
    let (mut s, now) = session();
    let (_, now) = failing_schedule(&mut s, now, 2);
    s.handle_connect_failed(refused(), now);
    commands(&mut s);
    assert!(matches!(
        s.state(),
        ConnectionState::Reconnecting { attempt: 4, .. }
    ));
    s.retry_now(now);
    assert_eq!(
        commands(&mut s),
        vec![Command::Connect {
            client_id: Some("me".into())
        }]
    );
    assert!(matches!(
        s.state(),
        ConnectionState::Connecting { attempt: 4 }
    ));
}

#[test]
fn polls_over_http_after_five_failures_and_leaves_when_a_socket_opens() {
    let (mut s, mut now) = session();
    s.track_prompt("p", Some(3), now);
    s.handle_http(
        HttpReply::PromptAccepted {
            prompt_id: "p".into(),
            number: Some(0),
            node_errors: json!({}),
        },
        now,
    );
    let running = QueueSnapshot::from_json(
        &json!({"queue_running": [[0, "p", {}, {}, []]], "queue_pending": []}),
    )
    .unwrap();
    // Every queue read is answered: the prompt runs all along.
    let answer = |s: &mut Session, now: Instant| {
        for c in commands(s) {
            if c == Command::Http(HttpRequest::Queue) {
                s.handle_http(HttpReply::Queue(running.clone()), now);
            }
        }
    };
    s.connect(now);
    for _ in 0..4 {
        answer(&mut s, now);
        s.handle_connect_failed(refused(), now);
        assert!(matches!(s.state(), ConnectionState::Reconnecting { .. }));
        now = s.state().next_attempt_at().unwrap();
        s.handle_timeout(now);
    }
    answer(&mut s, now);
    s.handle_connect_failed(refused(), now);
    assert!(matches!(
        s.state(),
        ConnectionState::Polling { attempt: 6, .. }
    ));
    // The prompt has been followed over HTTP since the first failure (see
    // tests/disconnected.rs); polling goes on, one queue read per poll.
    let t = s.poll_timeout().unwrap();
    assert_eq!(t.reason, TimerReason::Poll);
    now = t.at;
    s.handle_timeout(now);
    assert_eq!(commands(&mut s), vec![Command::Http(HttpRequest::Queue)]);
    s.handle_http(HttpReply::Queue(running.clone()), now);
    assert_eq!(s.execution("p").unwrap().phase.name(), "running");
    // The socket is still retried on the backoff schedule (30 s cap).
    now = s.state().next_attempt_at().unwrap();
    s.handle_timeout(now);
    assert!(
        commands(&mut s)
            .iter()
            .any(|c| matches!(c, Command::Connect { .. }))
    );
    s.handle_connected(now);
    assert_eq!(s.state(), &ConnectionState::Connected);
    assert!(
        s.poll_timeout()
            .is_none_or(|t| t.reason != TimerReason::Poll)
    );
    // History answers while polling settle the prompt exactly once.
    s.handle_http(HttpReply::History {
        prompt_id: "p".into(),
        entry: Some(HistoryEntry::from_json(&json!({"prompt": [0, "p", {}, {}, []], "outputs": {"9": {"images": []}}, "status": {"status_str": "success", "completed": true, "messages": []}})).unwrap()),
    }, now);
    let finished: Vec<_> = events(&mut s)
        .into_iter()
        .filter(Event::is_terminal)
        .collect();
    assert_eq!(finished.len(), 1);
}

#[test]
fn heartbeat_pings_and_declares_a_silent_socket_dead() {
    let (mut s, mut now) = session();
    s.connect(now);
    s.handle_connected(now);
    commands(&mut s);
    let start = now;
    now = run_until(&mut s, TimerReason::Heartbeat);
    assert_eq!(now - start, Duration::from_secs(30));
    assert!(matches!(commands(&mut s).as_slice(), [Command::Ping(_)]));
    // Answered: the connection lives and the next ping is 30 s later.
    s.handle_pong(now + Duration::from_millis(5));
    let t = s.poll_timeout().unwrap();
    assert_eq!(
        (t.reason, t.at - now),
        (TimerReason::Heartbeat, Duration::from_secs(30))
    );
    now = t.at;
    s.handle_timeout(now);
    commands(&mut s);
    let t = s.poll_timeout().unwrap();
    assert_eq!(
        (t.reason, t.at - now),
        (TimerReason::HeartbeatTimeout, Duration::from_secs(10))
    );
    now = t.at;
    s.handle_timeout(now);
    let cmds = commands(&mut s);
    assert!(matches!(cmds.first(), Some(Command::Close { .. })));
    assert!(matches!(s.state(), ConnectionState::Reconnecting { .. }));
    assert!(matches!(
        s.last_error(),
        Some(ConnectionError::HeartbeatTimeout { .. })
    ));
}

#[test]
fn an_idle_server_that_answers_pings_is_never_dropped() {
    let (mut s, mut now) = session();
    s.connect(now);
    s.handle_connected(now);
    commands(&mut s);
    // Ten minutes of silence from the server, every ping answered.
    let end = now + Duration::from_secs(600);
    while now < end {
        let t = s.poll_timeout().unwrap();
        now = t.at;
        s.handle_timeout(now);
        for c in commands(&mut s) {
            assert!(matches!(c, Command::Ping(_)), "unexpected {c:?}");
            s.handle_pong(now + Duration::from_millis(1));
        }
    }
    assert_eq!(s.state(), &ConnectionState::Connected);
}

#[test]
fn the_watchdog_reconciles_and_replaces_a_deaf_socket() {
    let (mut s, mut now) = session();
    s.connect(now);
    s.handle_connected(now);
    s.track_prompt("p", Some(2), now);
    s.handle_http(
        HttpReply::PromptAccepted {
            prompt_id: "p".into(),
            number: Some(0),
            node_errors: json!({}),
        },
        now,
    );
    s.handle_frame(
        Frame::text(r#"{"type": "execution_start", "data": {"prompt_id": "p", "timestamp": 1}}"#),
        now,
    );
    commands(&mut s);
    // Pongs keep coming (the deaf socket still answers pings), frames do not.
    let start = now;
    let mut cmds = Vec::new();
    while !matches!(s.last_error(), Some(ConnectionError::Deaf { .. })) {
        let t = s.poll_timeout().unwrap();
        now = t.at;
        s.handle_timeout(now);
        cmds = commands(&mut s);
        for c in &cmds {
            if matches!(c, Command::Ping(_)) {
                s.handle_pong(now);
            }
        }
    }
    assert_eq!(now - start, Duration::from_secs(30));
    assert!(cmds.contains(&Command::Http(HttpRequest::History {
        prompt_id: "p".into()
    })));
    assert!(cmds.iter().any(|c| matches!(c, Command::Close { .. })));
    assert!(cmds.iter().any(|c| matches!(c, Command::Connect { .. })));
    assert!(matches!(s.last_error(), Some(ConnectionError::Deaf { .. })));
    // The new socket opens; history says the prompt finished meanwhile.
    s.handle_connected(now);
    s.handle_http(HttpReply::History {
        prompt_id: "p".into(),
        entry: Some(HistoryEntry::from_json(&json!({"outputs": {"4": {"images": [{"filename": "x.png"}]}}, "status": {"status_str": "success", "completed": true, "messages": [["execution_success", {"prompt_id": "p", "timestamp": 9}]]}})).unwrap()),
    }, now);
    let ev = events(&mut s);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Output { recovered: true, node, .. } if &**node == "4"))
    );
    assert_eq!(ev.iter().filter(|e| e.is_terminal()).count(), 1);
}

#[test]
fn a_prompt_the_server_forgot_becomes_lost_after_two_checks() {
    let (mut s, mut now) = session();
    s.connect(now);
    s.handle_connected(now);
    s.track_prompt("p", None, now);
    s.handle_http(
        HttpReply::PromptAccepted {
            prompt_id: "p".into(),
            number: Some(0),
            node_errors: json!({}),
        },
        now,
    );
    s.handle_frame(
        Frame::text(r#"{"type": "execution_start", "data": {"prompt_id": "p", "timestamp": 1}}"#),
        now,
    );
    s.handle_disconnected(
        ConnectionError::Lost {
            code: Some(1006),
            message: "server died".into(),
        },
        now,
    );
    now += Duration::from_secs(1);
    s.handle_timeout(now);
    // The disconnected poll asked the queue at once; the prompt still ran.
    assert!(commands(&mut s).contains(&Command::Http(HttpRequest::Queue)));
    s.handle_http(
        HttpReply::Queue(
            QueueSnapshot::from_json(
                &json!({"queue_running": [[0, "p", {}, {}, []]], "queue_pending": []}),
            )
            .unwrap(),
        ),
        now,
    );
    s.handle_connected(now);
    let empty =
        QueueSnapshot::from_json(&json!({"queue_running": [], "queue_pending": []})).unwrap();
    for round in 0..2 {
        let cmds = commands(&mut s);
        assert!(
            cmds.contains(&Command::Http(HttpRequest::History {
                prompt_id: "p".into()
            })),
            "round {round}: {cmds:?}"
        );
        s.handle_http(
            HttpReply::History {
                prompt_id: "p".into(),
                entry: None,
            },
            now,
        );
        assert!(commands(&mut s).contains(&Command::Http(HttpRequest::Queue)));
        s.handle_http(HttpReply::Queue(empty.clone()), now);
        if round == 0 {
            assert!(s.execution("p").is_some_and(|r| !r.is_terminal()));
            let t = s.poll_timeout().unwrap();
            assert_eq!(t.reason, TimerReason::Reconcile);
            now = t.at;
            s.handle_timeout(now);
        }
    }
    let record = s.execution("p").unwrap();
    assert!(
        matches!(&record.outcome, Some(Outcome::Lost { reason }) if reason.contains("restarted"))
    );
    assert_eq!(events(&mut s).iter().filter(|e| e.is_terminal()).count(), 1);
}

#[test]
fn pause_closes_and_resume_reconnects_at_once() {
    let (mut s, now) = session();
    s.connect(now);
    s.handle_connected(now);
    commands(&mut s);
    s.pause(now);
    assert!(matches!(
        commands(&mut s).as_slice(),
        [Command::Close { .. }]
    ));
    assert_eq!(s.state(), &ConnectionState::Paused);
    assert!(s.poll_timeout().is_none());
    s.resume(now);
    assert!(matches!(
        commands(&mut s).as_slice(),
        [Command::Connect { .. }]
    ));
    s.handle_connected(now);
    s.close(now);
    assert!(matches!(
        commands(&mut s).as_slice(),
        [Command::SendText(_), Command::Close { .. }]
    ));
    assert_eq!(s.state(), &ConnectionState::Closed);
}

#[test]
fn the_server_assigned_sid_is_adopted_for_reconnects() {
    let mut s = Session::new(SessionConfig::default());
    let now = common::base();
    s.connect(now);
    assert_eq!(commands(&mut s), vec![Command::Connect { client_id: None }]);
    s.handle_connected(now);
    s.handle_frame(Frame::text(r#"{"type": "status", "data": {"status": {"exec_info": {"queue_remaining": 0}}, "sid": "abc123"}}"#), now);
    s.handle_disconnected(
        ConnectionError::Lost {
            code: None,
            message: "x".into(),
        },
        now,
    );
    s.retry_now(now);
    assert!(commands(&mut s).contains(&Command::Connect {
        client_id: Some("abc123".into())
    }));
}

#[test]
fn a_socket_deaf_while_our_prompt_is_queued_is_found_by_periodic_checks() {
    let (mut s, mut now) = session();
    s.connect(now);
    s.handle_connected(now);
    s.track_prompt("p", Some(2), now);
    s.handle_http(
        HttpReply::PromptAccepted {
            prompt_id: "p".into(),
            number: Some(0),
            node_errors: json!({}),
        },
        now,
    );
    commands(&mut s);
    let pending = QueueSnapshot::from_json(&json!({"queue_running": [[0, "other", {}, {}, []]], "queue_pending": [[1, "p", {}, {}, []]]})).unwrap();
    let gone =
        QueueSnapshot::from_json(&json!({"queue_running": [], "queue_pending": []})).unwrap();
    for round in 0..3 {
        // Silence (pings answered) until the next check.
        let start = now;
        let mut cmds = Vec::new();
        while !cmds.contains(&Command::Http(HttpRequest::History {
            prompt_id: "p".into(),
        })) {
            let t = s.poll_timeout().unwrap();
            now = t.at;
            s.handle_timeout(now);
            cmds = commands(&mut s);
            for c in &cmds {
                if matches!(c, Command::Ping(_)) {
                    s.handle_pong(now);
                }
                // The silence probe asks the queue every few seconds: while
                // the prompt waits there, nothing more happens.
                if matches!(c, Command::Http(HttpRequest::Queue)) {
                    let queue = if round < 2 { &pending } else { &gone };
                    s.handle_http(HttpReply::Queue(queue.clone()), now);
                    cmds.extend(commands(&mut s));
                    break;
                }
            }
        }
        if round < 2 {
            assert_eq!(now - start, Duration::from_secs(30), "round {round}");
        } else {
            // Gone from the queue: found by the next probe, in seconds.
            assert!(now - start <= Duration::from_secs(3), "{:?}", now - start);
        }
        assert!(
            !cmds.iter().any(|c| matches!(c, Command::Close { .. })),
            "a queued wait is not deafness"
        );
        if round < 2 {
            s.handle_http(
                HttpReply::History {
                    prompt_id: "p".into(),
                    entry: None,
                },
                now,
            );
            assert!(commands(&mut s).contains(&Command::Http(HttpRequest::Queue)));
            s.handle_http(HttpReply::Queue(pending.clone()), now);
            assert_eq!(s.state(), &ConnectionState::Connected);
        } else {
            // It ran and finished while the socket heard nothing: deaf.
            s.handle_http(HttpReply::History {
                prompt_id: "p".into(),
                entry: Some(HistoryEntry::from_json(&json!({"outputs": {}, "status": {"status_str": "success", "completed": true, "messages": []}})).unwrap()),
            }, now);
            let cmds = commands(&mut s);
            assert!(
                cmds.iter().any(|c| matches!(c, Command::Close { .. })),
                "{cmds:?}"
            );
            assert!(cmds.iter().any(|c| matches!(c, Command::Connect { .. })));
            assert!(matches!(s.last_error(), Some(ConnectionError::Deaf { .. })));
            assert_eq!(events(&mut s).iter().filter(|e| e.is_terminal()).count(), 1);
        }
    }
}

#[test]
fn a_prompt_submitted_before_the_first_connect_is_reconciled_when_it_opens() {
    let (mut s, now) = session();
    s.connect(now);
    commands(&mut s);
    // Submitted while the socket is still connecting: it may run unheard.
    s.track_prompt("early", Some(1), now);
    s.handle_http(
        HttpReply::PromptAccepted {
            prompt_id: "early".into(),
            number: Some(0),
            node_errors: json!({}),
        },
        now,
    );
    assert!(s.execution("early").unwrap().had_gap);
    s.handle_connected(now);
    assert!(
        commands(&mut s).contains(&Command::Http(HttpRequest::History {
            prompt_id: "early".into()
        }))
    );
    s.handle_http(HttpReply::History {
        prompt_id: "early".into(),
        entry: Some(HistoryEntry::from_json(&json!({"outputs": {"9": {"images": []}}, "status": {"status_str": "success", "completed": true, "messages": []}})).unwrap()),
    }, now);
    assert_eq!(s.execution("early").unwrap().phase.name(), "succeeded");
    assert_eq!(events(&mut s).iter().filter(|e| e.is_terminal()).count(), 1);
}
