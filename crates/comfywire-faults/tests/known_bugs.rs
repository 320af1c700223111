//! Library bugs the fault schedules found, kept as regression tests.

use std::time::{Duration, Instant};

use comfywire_faults::sansio::session_config;
use comfywire_proto::{Command, HttpReply, HttpRequest, Phase, QueueItem, QueueSnapshot, Session};

/// Found by the sans-IO interleavings (seed 2875064746, trace
/// `partial_validation`) and the socket schedules (`Fault::Deaf` before
/// `execution_start`): the deaf-socket watchdog arms only while one of our
/// prompts is `Running` (session.rs `watchdog_at`), so a socket that goes
/// deaf while our prompt is still `Queued` is never replaced, and the
/// prompt — which runs and finishes on the server — never ends.
#[test]
fn a_socket_deaf_before_execution_start_still_ends_the_prompt() {
    let mut now = Instant::now();
    let mut session = Session::new(session_config(Some("c1".into()), 1));
    session.connect(now);
    while session.poll_command().is_some() {}
    session.handle_connected(now);
    session.track_prompt("p1", Some(1), now);
    session.handle_http(
        HttpReply::PromptAccepted {
            prompt_id: "p1".into(),
            number: Some(0),
            node_errors: serde_json::json!({}),
        },
        now,
    );
    // The socket goes deaf now: every frame of p1 is lost, pings are
    // still answered. Ten simulated seconds pass, in 10 ms steps.
    let mut asked_history = false;
    for _ in 0..1000 {
        now += Duration::from_millis(10);
        if session.poll_timeout().is_some_and(|t| t.at <= now) {
            session.handle_timeout(now);
        }
        while let Some(command) = session.poll_command() {
            match command {
                Command::Ping(_) => session.handle_pong(now),
                Command::Http(request) => {
                    asked_history = true;
                    // The server is running p1 and has no history for it yet.
                    let reply = match request {
                        HttpRequest::History { prompt_id } => HttpReply::History {
                            prompt_id,
                            entry: None,
                        },
                        HttpRequest::Queue => HttpReply::Queue(QueueSnapshot {
                            running: vec![QueueItem {
                                number: 0.0,
                                prompt_id: "p1".into(),
                                client_id: Some("c1".into()),
                            }],
                            pending: Vec::new(),
                        }),
                    };
                    session.handle_http(reply, now);
                }
                Command::Connect { .. } => session.handle_connected(now),
                _ => {}
            }
        }
        while session.poll_event().is_some() {}
    }
    assert!(
        asked_history,
        "ten seconds of silence with a queued prompt and the session never checked /history or /queue"
    );
    assert_ne!(
        session.execution("p1").map(|r| r.phase),
        Some(Phase::Queued)
    );
}
