//! Bad input the mock cannot produce, or that deserves its own proof:
//! `/history` answering 500, 404, garbage or nothing during
//! reconciliation, and an `executed` output larger than the frame limit.
//! Each row of docs/bad-input.md names its test.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use comfywire_client::proto::ParseError;
use comfywire_client::{Client, Deadlines, Error, Event, EventKind, Outcome, Phase};
use comfywire_faults::invariants::{check_stream, same_outputs};
use comfywire_faults::run::{RunOptions, client_config};
use comfywire_faults::stub_http::{StubReply, StubServer};
use comfywire_mock::{MockConfig, MockServer, TraceSource};
use serde_json::json;

const ID: &str = "p-1";

fn entry() -> serde_json::Value {
    json!({ID: {
        "prompt": [0, ID, {}, {}, ["9"]],
        "outputs": {"9": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}},
        "status": {"status_str": "success", "completed": true, "messages": []}
    }})
}

/// A server with no WebSocket (so the client polls over HTTP) whose first
/// `bad` answers to `/history/p-1` are `bad_reply`, then the real entry.
async fn stub(bad: u32, bad_reply: StubReply) -> StubServer {
    let seen = Arc::new(AtomicU32::new(0));
    StubServer::start(Arc::new(move |method: &str, path: &str| {
        if path.starts_with("/ws") {
            return StubReply::raw(404, "{}");
        }
        if method == "POST" && path.ends_with("/prompt") {
            return StubReply::json(
                200,
                json!({"prompt_id": ID, "number": 0, "node_errors": {}}),
            );
        }
        if path.ends_with("/queue") {
            // The prompt has run: like ComfyUI, the queue no longer lists
            // what history holds, so the polling client asks history.
            return StubReply::json(200, json!({"queue_running": [], "queue_pending": []}));
        }
        if path.ends_with(&format!("/history/{ID}")) {
            return if seen.fetch_add(1, Ordering::SeqCst) < bad {
                bad_reply.clone()
            } else {
                StubReply::json(200, entry())
            };
        }
        StubReply::raw(404, "{}")
    }))
    .await
    .expect("stub server")
}

async fn run_against(
    server: &StubServer,
    total: Duration,
) -> (
    Result<Arc<comfywire_client::ExecutionRecord>, Error>,
    Vec<Event>,
) {
    let mut config = client_config(&server.url(), &RunOptions::default());
    config.request_timeout = Duration::from_millis(400);
    config.session.polling_after_failures = 2;
    let client = Client::connect(config).await.expect("client");
    let mut events = client.events();
    // The stub answers every submission with its own id, which the client
    // adopts (no explicit id: that would make the client ask the stub's
    // history first, spending one of its bad answers).
    let submission = client
        .submit(&json!({"9": {"class_type": "SaveImage", "inputs": {}}}))
        .await
        .expect("submit");
    assert_eq!(submission.prompt_id, ID, "the server's id is adopted");
    let result = client
        .wait_record(
            &submission.prompt_id,
            Deadlines {
                total: Some(total),
                ..Deadlines::default()
            },
        )
        .await;
    client.close().await;
    let mut seen = Vec::new();
    while let Ok(Some(e)) = events.recv_timeout(Duration::from_secs(2)).await {
        seen.push(e);
    }
    (result, seen)
}

async fn recovers_after(bad_reply: StubReply) {
    let server = stub(3, bad_reply).await;
    let (result, events) = run_against(&server, Duration::from_secs(20)).await;
    let record = result.expect("the prompt ends");
    assert_eq!(record.phase, Phase::Succeeded);
    assert!(same_outputs(
        &record.outputs,
        entry()[ID]["outputs"].as_object().expect("outputs")
    ));
    let failures = events
        .iter()
        .filter(|e| e.kind() == EventKind::HttpFailed)
        .count();
    assert!(failures >= 3, "each bad answer is reported, got {failures}");
    assert!(check_stream(&events, &[ID.to_owned()]).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_500_during_reconciliation_is_retried_until_it_answers() {
    recovers_after(StubReply::raw(500, "Internal Server Error")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_404_during_reconciliation_is_retried_until_it_answers() {
    recovers_after(StubReply::raw(404, "Not Found")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_timeout_during_reconciliation_is_retried_until_it_answers() {
    recovers_after(StubReply::json(200, entry()).after(Duration::from_millis(1500))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_garbage_body_during_reconciliation_is_retried_until_it_answers() {
    recovers_after(StubReply::raw(200, "<html>proxy error</html>")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_failing_forever_ends_as_lost_with_the_error_after_bounded_checks() {
    let server = stub(u32::MAX, StubReply::raw(500, "down")).await;
    // Far longer than the bounded checks take (10 at the test's 100 ms poll).
    let (result, events) = run_against(&server, Duration::from_secs(20)).await;
    let record = result.expect("an outcome, not the caller's deadline");
    assert!(
        matches!(&record.outcome, Some(Outcome::Lost { reason }) if reason.contains("HTTP 500")),
        "{:?}",
        record.outcome
    );
    let failures = events
        .iter()
        .filter(|e| e.kind() == EventKind::HttpFailed)
        .count();
    assert!(
        (10..40).contains(&failures),
        "{failures} failed checks: bounded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executed_output_over_the_frame_limit_is_recovered_from_history() {
    let server = MockServer::start_with(MockConfig {
        port: 0,
        traces: TraceSource::Embedded,
        speed: 20.0,
        default_scenario: "success_single".into(),
    })
    .await
    .expect("mock");
    let mut config = client_config(&server.url(), &RunOptions::default());
    // big_output's `executed` frame is about 2 MB.
    config.max_message_size = 512 * 1024;
    let client = Client::connect(config).await.expect("client");
    client
        .wait_connected(Duration::from_secs(5))
        .await
        .expect("connected");
    let mut events = client.events();
    let submission = client
        .submit(&server.workflow("big_output").expect("scenario"))
        .await
        .expect("submit");
    let record = client
        .wait_record(
            &submission.prompt_id,
            Deadlines {
                total: Some(Duration::from_secs(20)),
                ..Deadlines::default()
            },
        )
        .await
        .expect("ends");
    assert_eq!(record.phase, Phase::Succeeded);
    assert!(record.had_gap, "the oversize frame costs the socket");
    let history = client
        .server_history(&submission.prompt_id)
        .await
        .expect("history")
        .expect("entry");
    assert!(same_outputs(
        &record.outputs,
        history["outputs"].as_object().expect("outputs")
    ));
    let mut seen = Vec::new();
    while let Ok(Some(e)) = events.recv_timeout(Duration::from_millis(300)).await {
        seen.push(e);
    }
    assert!(seen.iter().any(|e| matches!(
        e,
        Event::BadFrame {
            error: ParseError::FrameTooLarge { .. },
            ..
        }
    )));
    assert!(seen.iter().any(|e| matches!(
        e,
        Event::Output {
            recovered: true,
            ..
        }
    )));
    assert!(check_stream(&seen, std::slice::from_ref(&submission.prompt_id)).is_empty());
    client.close().await;
    server.shutdown().await;
}
