//! Disconnected is not blind: while the socket is down, prompts of ours
//! are followed over HTTP on an interval of their own (not the reconnect
//! backoff), settled from history within about one interval of their end,
//! with their outputs and exactly one terminal event; the interval backs
//! off while the queue stays the same and is bounded; a refused upgrade
//! polls at once; failing polls end in an outcome, never in a hang.
//!
//! A small simulated server answers each HTTP command at the instant it is
//! issued, and the session's timers are run by jumping to each deadline.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::time::{Duration, Instant};

use comfywire_proto::{
    Command, ConnectionError, ConnectionState, Event, Frame, HistoryEntry, HttpReply, HttpRequest,
    Outcome, QueueSnapshot, Session, SessionConfig, TimerReason,
};
use serde_json::json;

/// A server with one prompt of ours that runs until `finish_at`; after
/// that it is in history, with one output. `reachable: false` fails every
/// request.
struct Server {
    finish_at: Instant,
    reachable: bool,
    queue_reads: Vec<Instant>,
}

impl Server {
    fn answer(&mut self, request: HttpRequest, now: Instant) -> HttpReply {
        if !self.reachable {
            return HttpReply::Failed {
                request,
                error: "connection refused".into(),
            };
        }
        let done = now >= self.finish_at;
        match request {
            HttpRequest::Queue => {
                self.queue_reads.push(now);
                let running = if done {
                    json!([])
                } else {
                    json!([[0, "p", {}, {"client_id": "me"}, []]])
                };
                HttpReply::Queue(
                    QueueSnapshot::from_json(
                        &json!({"queue_running": running, "queue_pending": []}),
                    )
                    .unwrap(),
                )
            }
            HttpRequest::History { prompt_id } => HttpReply::History {
                entry: done.then(|| {
                    HistoryEntry::from_json(&json!({
                        "prompt": [0, "p", {}, {}, []],
                        "outputs": {"9": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}},
                        "status": {"status_str": "success", "completed": true, "messages": []}
                    }))
                    .unwrap()
                }),
                prompt_id,
            },
        }
    }
}

struct Run {
    s: Session,
    now: Instant,
    server: Server,
    events: Vec<Event>,
    /// Connect attempts made, and when.
    connects: Vec<Instant>,
}

impl Run {
    /// A session with prompt `p` of ours running on an open socket.
    fn running(finish_after: Duration) -> Run {
        let now = common::base();
        let mut s = Session::new(SessionConfig {
            client_id: Some("me".into()),
            ..SessionConfig::default()
        });
        s.connect(now);
        s.handle_connected(now);
        s.track_prompt("p", Some(3), now);
        s.handle_http(
            HttpReply::PromptAccepted {
                prompt_id: "p".into(),
                number: Some(0),
                node_errors: json!({}),
            },
            now,
        );
        s.handle_frame(
            Frame::text(
                r#"{"type": "execution_start", "data": {"prompt_id": "p", "timestamp": 1}}"#,
            ),
            now,
        );
        let mut run = Run {
            s,
            now,
            server: Server {
                finish_at: now + finish_after,
                reachable: true,
                queue_reads: Vec::new(),
            },
            events: Vec::new(),
            connects: Vec::new(),
        };
        run.drain();
        run
    }

    /// Performs every command: HTTP answered by the server at once, every
    /// connect attempt refused with `error`.
    fn drain_with(&mut self, error: &ConnectionError) {
        while let Some(command) = self.s.poll_command() {
            match command {
                Command::Http(request) => {
                    let reply = self.server.answer(request, self.now);
                    self.s.handle_http(reply, self.now);
                }
                Command::Connect { .. } => {
                    self.connects.push(self.now);
                    self.s.handle_connect_failed(error.clone(), self.now);
                }
                _ => {}
            }
        }
        self.events
            .extend(std::iter::from_fn(|| self.s.poll_event()));
    }

    fn drain(&mut self) {
        self.drain_with(&ConnectionError::ConnectFailed {
            message: "refused".into(),
        });
    }

    /// Runs timers (connects keep failing) until `until`.
    fn run_until(&mut self, until: Instant) {
        while let Some(t) = self.s.poll_timeout() {
            if t.at > until {
                break;
            }
            self.now = self.now.max(t.at);
            self.s.handle_timeout(self.now);
            self.drain();
        }
        self.now = until;
    }

    fn terminal(&self) -> Vec<&Event> {
        self.events.iter().filter(|e| e.is_terminal()).collect()
    }

    fn drop_socket(&mut self) {
        self.s.handle_disconnected(
            ConnectionError::Lost {
                code: Some(1006),
                message: "gone".into(),
            },
            self.now,
        );
        self.drain();
    }
}

#[test]
fn a_prompt_finished_while_the_socket_is_down_settles_within_one_interval() {
    // The socket drops 2 s into the run and stays down (every reconnect
    // refused; the backoff is 1, 2, 4, 8 s by then); the server finishes
    // the prompt 7.3 s after the drop.
    let mut run = Run::running(Duration::from_millis(9_300));
    run.now += Duration::from_secs(2);
    run.drop_socket();
    let deadline = run.now + Duration::from_secs(10);
    let finish = run.server.finish_at;
    run.run_until(deadline);

    let terminal = run.terminal();
    assert_eq!(terminal.len(), 1, "{terminal:?}");
    let record = run.s.execution("p").unwrap();
    assert_eq!(record.outcome, Some(Outcome::Succeeded));
    assert!(record.outputs.contains_key("9"), "outputs recovered");
    assert!(run.events.iter().any(|e| matches!(
        e,
        Event::Output {
            recovered: true,
            ..
        }
    )));
    let settled = record.finished_at.unwrap();
    let late = settled.saturating_duration_since(finish);
    assert!(
        late <= SessionConfig::default().disconnected_poll,
        "settled {late:?} after the server finished"
    );
    // Nothing waited for the socket: it is still down.
    assert!(matches!(
        run.s.state(),
        ConnectionState::Reconnecting { .. } | ConnectionState::Polling { .. }
    ));
    // The poll ran on its own clock, not the backoff's: more queue reads
    // than connect attempts.
    assert!(
        run.server.queue_reads.len() > run.connects.len(),
        "{} reads, {} connects",
        run.server.queue_reads.len(),
        run.connects.len()
    );
    // Settled: nothing of ours is in flight, so the poll stops (unless the
    // session is in polling state, where the queue is read for watchers at
    // the watchers' interval).
    let reads = run.server.queue_reads.len();
    let later = run.now + Duration::from_secs(30);
    run.run_until(later);
    let more = run.server.queue_reads.len() - reads;
    assert!(
        more as u64 <= 30 / SessionConfig::default().poll_interval.as_secs() + 1,
        "{more} reads in 30 s with nothing in flight"
    );
}

#[test]
fn the_interval_backs_off_while_the_queue_stays_the_same_and_is_bounded() {
    let config = SessionConfig::default();
    // A long prompt: 10 minutes, the socket down from the start.
    let mut run = Run::running(Duration::from_secs(600));
    run.drop_socket();
    let start = run.now;
    run.run_until(start + Duration::from_secs(300));
    let reads = &run.server.queue_reads;
    let gaps: Vec<Duration> = reads.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|g| *g >= config.disconnected_poll));
    assert!(gaps.iter().all(|g| *g <= config.disconnected_poll_max));
    assert!(gaps.windows(2).all(|w| w[1] >= w[0]), "{gaps:?}");
    assert_eq!(*gaps.last().unwrap(), config.disconnected_poll_max);
    // In the first ten seconds the floor holds (a short prompt is settled
    // within a second of its end)...
    let early = reads
        .iter()
        .filter(|at| **at <= start + Duration::from_secs(10))
        .count();
    assert!(early >= 10, "{early} reads in the first 10 s");
    // ... and five minutes cost far fewer requests than one a second.
    assert!(reads.len() < 120, "{} reads in 300 s", reads.len());

    // A change in the queue brings the interval back to the floor.
    let mut run = Run::running(Duration::from_secs(600));
    run.drop_socket();
    run.run_until(run.now + Duration::from_secs(120));
    run.server.finish_at = run.now; // ends now: the queue changes
    let before = run.server.queue_reads.len();
    let next = run.s.poll_timeout().unwrap();
    assert_eq!(next.reason, TimerReason::Poll);
    let until = next.at + Duration::from_millis(1);
    run.run_until(until);
    assert_eq!(run.terminal().len(), 1);
    assert!(run.server.queue_reads.len() > before);
}

#[test]
fn a_refused_upgrade_polls_at_once_and_an_overloaded_gateway_does_not() {
    for (status, polling) in [(403u16, true), (404, true), (503, false)] {
        let now = common::base();
        let mut s = Session::new(SessionConfig {
            client_id: Some("me".into()),
            ..SessionConfig::default()
        });
        s.connect(now);
        let _ = std::iter::from_fn(|| s.poll_command()).count();
        s.handle_connect_failed(
            ConnectionError::UpgradeRefused {
                status,
                message: String::new(),
            },
            now,
        );
        assert_eq!(
            matches!(s.state(), ConnectionState::Polling { .. }),
            polling,
            "HTTP {status}: {:?}",
            s.state()
        );
        if polling {
            // The queue is read at once, for watchers, with nothing in flight.
            let t = s.poll_timeout().unwrap();
            assert_eq!((t.reason, t.at), (TimerReason::Poll, now));
            s.handle_timeout(now);
            assert!(
                std::iter::from_fn(|| s.poll_command())
                    .any(|c| c == Command::Http(HttpRequest::Queue))
            );
            // The socket is still tried again on the backoff schedule.
            assert!(s.state().next_attempt_at().is_some());
        }
        assert_eq!(
            s.last_error().unwrap().websockets_blocked(),
            polling,
            "{status}"
        );
    }
}

#[test]
fn nothing_is_polled_without_prompts_of_ours_until_polling_and_never_once_connected() {
    let now = common::base();
    let mut s = Session::new(SessionConfig {
        client_id: Some("me".into()),
        ..SessionConfig::default()
    });
    s.connect(now);
    let _ = std::iter::from_fn(|| s.poll_command()).count();
    s.handle_connect_failed(
        ConnectionError::ConnectFailed {
            message: "refused".into(),
        },
        now,
    );
    assert_eq!(s.poll_timeout().unwrap().reason, TimerReason::Reconnect);

    // Prompt of ours running, socket drops, comes back: polling stops.
    let mut run = Run::running(Duration::from_secs(60));
    run.drop_socket();
    // The first look comes at once: it may have ended just before the drop.
    let t = run.s.poll_timeout().unwrap();
    assert_eq!((t.reason, t.at), (TimerReason::Poll, run.now));
    run.s.handle_connected(run.now);
    run.drain();
    assert!(
        run.s
            .poll_timeout()
            .is_none_or(|t| t.reason != TimerReason::Poll)
    );
}

#[test]
fn failing_polls_back_off_and_end_the_prompt_with_a_reason() {
    let mut run = Run::running(Duration::from_secs(3600));
    run.server.reachable = false;
    run.drop_socket();
    let start = run.now;
    run.run_until(start + Duration::from_secs(300));
    let terminal = run.terminal();
    assert_eq!(terminal.len(), 1);
    let record = run.s.execution("p").unwrap();
    assert!(
        matches!(&record.outcome, Some(Outcome::Lost { reason }) if reason.contains("failed checks")),
        "{:?}",
        record.outcome
    );
    // Not in the first few seconds of an outage: failures double the
    // interval, so ten failed checks take longer than ten seconds.
    let ended = record.finished_at.unwrap() - start;
    assert!(ended > Duration::from_secs(20), "lost after {ended:?}");
    assert!(ended < Duration::from_secs(120), "lost after {ended:?}");
}

#[test]
fn while_polling_other_clients_prompts_are_seen_queued_started_and_finished() {
    let now = common::base();
    let mut s = Session::new(SessionConfig {
        client_id: Some("me".into()),
        ..SessionConfig::default()
    });
    s.connect(now);
    let _ = std::iter::from_fn(|| s.poll_command()).count();
    s.handle_connect_failed(
        ConnectionError::UpgradeRefused {
            status: 403,
            message: "Forbidden".into(),
        },
        now,
    );
    let queue = |running: &[(&str, &str)], pending: &[(&str, &str)]| {
        let item = |(id, client): &(&str, &str)| json!([1, id, {}, {"client_id": client}, []]);
        HttpReply::Queue(
            QueueSnapshot::from_json(&json!({
                "queue_running": running.iter().map(item).collect::<Vec<_>>(),
                "queue_pending": pending.iter().map(item).collect::<Vec<_>>(),
            }))
            .unwrap(),
        )
    };
    let refused = ConnectionError::UpgradeRefused {
        status: 403,
        message: "Forbidden".into(),
    };
    // Runs timers (the socket's retries refused again) until a poll asks
    // the queue; answers it with `reply`. Returns the poll's instant.
    let next_poll = |s: &mut Session, reply: HttpReply| -> Instant {
        loop {
            let timeout = s.poll_timeout().unwrap();
            s.handle_timeout(timeout.at);
            let commands: Vec<Command> = std::iter::from_fn(|| s.poll_command()).collect();
            if commands
                .iter()
                .any(|c| matches!(c, Command::Connect { .. }))
            {
                s.handle_connect_failed(refused.clone(), timeout.at);
            }
            if commands.contains(&Command::Http(HttpRequest::Queue)) {
                s.handle_http(reply, timeout.at);
                return timeout.at;
            }
        }
    };
    let poll = |s: &mut Session, reply: HttpReply| -> Vec<Event> {
        next_poll(s, reply);
        std::iter::from_fn(|| s.poll_event()).collect()
    };
    // Another client's prompt waits; one of our client id that no record
    // claims is left for a confirmation to adopt.
    let ev = poll(
        &mut s,
        queue(&[], &[("theirs", "other"), ("unclaimed", "me")]),
    );
    assert!(
        ev.iter().any(
            |e| matches!(e, Event::PromptQueued { prompt_id, .. } if &**prompt_id == "theirs")
        )
    );
    assert!(s.execution("unclaimed").is_none());
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::Status {
            queue_remaining: Some(2),
            ..
        }
    )));
    let ev = poll(&mut s, queue(&[("theirs", "other")], &[]));
    assert!(
        ev.iter().any(
            |e| matches!(e, Event::ExecutionStarted { prompt_id } if &**prompt_id == "theirs")
        )
    );
    // Gone from the queue: its history settles it, outputs first.
    let at = next_poll(&mut s, queue(&[], &[]));
    let asked: Vec<Command> = std::iter::from_fn(|| s.poll_command()).collect();
    assert_eq!(
        asked,
        vec![Command::Http(HttpRequest::History {
            prompt_id: "theirs".into()
        })]
    );
    s.handle_http(
        HttpReply::History {
            prompt_id: "theirs".into(),
            entry: Some(
                HistoryEntry::from_json(&json!({
                    "prompt": [1, "theirs", {}, {}, []],
                    "outputs": {"9": {"images": []}},
                    "status": {"status_str": "success", "completed": true, "messages": []}
                }))
                .unwrap(),
            ),
        },
        at,
    );
    let ev: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
    let finished: Vec<&Event> = ev.iter().filter(|e| e.is_terminal()).collect();
    assert_eq!(finished.len(), 1);
    let record = s.execution("theirs").unwrap();
    assert!(!record.ours);
    assert_eq!(record.outcome, Some(Outcome::Succeeded));
    assert!(record.outputs.contains_key("9"));
}

#[test]
fn a_poll_answered_after_the_socket_is_back_does_not_call_it_deaf() {
    let mut run = Run::running(Duration::from_secs(3));
    run.now += Duration::from_secs(1);
    run.drop_socket();
    // The poll's queue read goes out...
    let t = run.s.poll_timeout().unwrap();
    assert_eq!(t.reason, TimerReason::Poll);
    run.s.handle_timeout(t.at);
    let out: Vec<Command> = std::iter::from_fn(|| run.s.poll_command()).collect();
    assert!(out.contains(&Command::Http(HttpRequest::Queue)));
    // ... the socket opens before its answer, and the prompt ends.
    run.now += Duration::from_secs(3);
    run.s.handle_connected(run.now);
    let reconcile: Vec<Command> = std::iter::from_fn(|| run.s.poll_command()).collect();
    assert!(reconcile.contains(&Command::Http(HttpRequest::History {
        prompt_id: "p".into()
    })));
    let late = run.server.answer(HttpRequest::Queue, run.now);
    run.s.handle_http(late, run.now);
    let history = run.server.answer(
        HttpRequest::History {
            prompt_id: "p".into(),
        },
        run.now,
    );
    run.s.handle_http(history, run.now);
    let after: Vec<Command> = std::iter::from_fn(|| run.s.poll_command()).collect();
    assert!(
        !after.iter().any(|c| matches!(c, Command::Close { .. })),
        "the new socket was replaced: {after:?}"
    );
    assert_eq!(run.s.state(), &ConnectionState::Connected);
    run.events.extend(std::iter::from_fn(|| run.s.poll_event()));
    assert_eq!(run.terminal().len(), 1);
}
