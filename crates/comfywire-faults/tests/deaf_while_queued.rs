//! A bug the fault schedules found, kept as a regression test: a socket
//! that goes deaf while our prompt is still queued (seed 2875064746 of the
//! sans-IO interleavings, trace `partial_validation`; `Fault::Deaf` before
//! `execution_start` in the socket schedules). The prompt runs and
//! finishes on the server unheard; the session must find out over HTTP and
//! deliver exactly one terminal event, not merely leave `Queued`.

use std::time::{Duration, Instant};

use comfywire_faults::sansio::session_config;
use comfywire_proto::{
    Command, Event, HistoryEntry, HistoryOutcome, HttpReply, HttpRequest, Phase, QueueItem,
    QueueSnapshot, Session,
};
use serde_json::{Map, json};

#[test]
fn a_socket_deaf_before_execution_start_still_ends_the_prompt() {
    let start = Instant::now();
    let mut now = start;
    let mut session = Session::new(session_config(Some("c1".into()), 1));
    session.connect(now);
    while session.poll_command().is_some() {}
    session.handle_connected(now);
    session.track_prompt("p1", Some(1), now);
    session.handle_http(
        HttpReply::PromptAccepted {
            prompt_id: "p1".into(),
            number: Some(0),
            node_errors: json!({}),
        },
        now,
    );
    // The socket goes deaf now: every frame of p1 is lost, pings are still
    // answered. The server runs p1 for 2 s, then has its history. Ten
    // simulated seconds pass, in 10 ms steps.
    let finishes = start + Duration::from_secs(2);
    let mut outputs = Map::new();
    outputs.insert("9".into(), json!({"images": [{"filename": "a.png"}]}));
    let mut asked_history = false;
    let mut finished = Vec::new();
    for _ in 0..1000 {
        now += Duration::from_millis(10);
        if session.poll_timeout().is_some_and(|t| t.at <= now) {
            session.handle_timeout(now);
        }
        while let Some(command) = session.poll_command() {
            match command {
                Command::Ping(_) => session.handle_pong(now),
                Command::Http(request) => {
                    let done = now >= finishes;
                    let reply = match request {
                        HttpRequest::History { prompt_id } => {
                            asked_history = true;
                            let entry = (done && prompt_id == "p1").then(|| HistoryEntry {
                                number: Some(0),
                                outputs: outputs.clone(),
                                cached: Vec::new(),
                                outcome: HistoryOutcome::Success,
                                status_str: Some("success".into()),
                                client_id: None,
                            });
                            HttpReply::History { prompt_id, entry }
                        }
                        HttpRequest::Queue => HttpReply::Queue(QueueSnapshot {
                            running: (!done)
                                .then(|| QueueItem {
                                    number: 0.0,
                                    prompt_id: "p1".into(),
                                    client_id: Some("c1".into()),
                                })
                                .into_iter()
                                .collect(),
                            pending: Vec::new(),
                        }),
                    };
                    session.handle_http(reply, now);
                }
                Command::Connect { .. } => session.handle_connected(now),
                _ => {}
            }
        }
        while let Some(event) = session.poll_event() {
            if let Event::Finished(record) = event {
                finished.push(record);
            }
        }
    }
    assert!(
        asked_history,
        "ten seconds of silence with a queued prompt and the session never checked /history"
    );
    assert_eq!(
        finished.len(),
        1,
        "exactly one terminal event: {finished:?}"
    );
    let record = &finished[0];
    assert_eq!(record.prompt_id, "p1");
    assert_eq!(record.phase, Phase::Succeeded);
    assert_eq!(record.outputs.to_map(), outputs);
    assert_eq!(
        session.execution("p1").map(|r| r.phase),
        Some(Phase::Succeeded)
    );
}
