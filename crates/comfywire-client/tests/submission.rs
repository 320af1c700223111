//! Every submission accounted for, against the mock, checked against the
//! server's own record (its `/history`, `/queue` and counters): a submit
//! cancelled at any point leaves nothing or one tracked prompt, a retry
//! under the same id never runs twice, and any prompt id can be attached
//! and waited on — also one another client submitted.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use comfywire_client::{Client, Deadlines, Error, Event, Filter, Outcome, SubmitOptions};
use comfywire_mock::MockServer;

fn with_id(id: &str) -> SubmitOptions {
    SubmitOptions {
        prompt_id: Some(id.into()),
        ..SubmitOptions::default()
    }
}

/// The server's truth about a prompt, from a client that tracks nothing.
async fn server_has(oracle: &Client, prompt_id: &str) -> bool {
    if oracle.server_history(prompt_id).await.unwrap().is_some() {
        return true;
    }
    let queue = oracle.queue().await.unwrap();
    queue.is_running(prompt_id) || queue.is_pending(prompt_id)
}

fn within(secs: u64) -> Deadlines {
    Deadlines {
        total: Some(Duration::from_secs(secs)),
        ..Deadlines::default()
    }
}

async fn started(server: &MockServer) -> (Client, Client) {
    (common::client(server).await, common::client(server).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submit_cancelled_at_any_point_leaves_nothing_or_one_tracked_prompt() {
    let server = common::mock(0.0).await;
    let (client, oracle) = started(&server).await;
    let workflow = server.sample_workflow();
    let cut_after_us = [0u64, 50, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000];
    let mut ids = Vec::new();
    for (i, us) in cut_after_us.iter().enumerate() {
        let id = format!("cancelled-{i}");
        let submit = client.submit_with(&workflow, with_id(&id));
        let _ = tokio::time::timeout(Duration::from_micros(*us), submit).await;
        ids.push(id);
    }
    let mut ran = 0;
    for id in &ids {
        // Settled either way within the confirm window plus a check.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let record = client.execution(id).await.unwrap();
            let on_server = server_has(&oracle, id).await;
            match record {
                Some(r) if r.is_terminal() => {
                    assert!(
                        on_server,
                        "{id}: an outcome for a prompt the server never had"
                    );
                    ran += 1;
                    break;
                }
                None if !on_server => {
                    // Forgotten: the server must still not have it a
                    // moment later (nothing in flight was dropped).
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    assert!(!server_has(&oracle, id).await, "{id} appeared later");
                    assert!(client.execution(id).await.unwrap().is_none());
                    break;
                }
                _ => {}
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{id} never settled: client {:?}, server has it: {on_server}",
                client.execution(id).await.unwrap().map(|r| r.phase)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // The server ran exactly the prompts the client reports.
    assert_eq!(server.stats().prompts_submitted, ran);
    assert!(ran >= 1, "the longest cut lets the POST through");
    client.close().await;
    oracle.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_under_the_same_id_never_runs_the_workflow_twice() {
    let server = common::mock(0.0).await;
    let (client, oracle) = started(&server).await;
    let workflow = server.sample_workflow();
    let first = client
        .submit_with(&workflow, with_id("once"))
        .await
        .unwrap();
    let again = client
        .submit_with(&workflow, with_id("once"))
        .await
        .unwrap();
    assert_eq!(first.prompt_id, again.prompt_id);
    let record = client.wait_record("once", within(20)).await.unwrap();
    assert_eq!(record.outcome, Some(Outcome::Succeeded));
    // A fresh client (a restarted app) retrying the same id: the server
    // has it already, so it is attached, not sent.
    let restarted = common::client(&server).await;
    let retry = restarted
        .submit_with(&workflow, with_id("once"))
        .await
        .unwrap();
    assert_eq!(retry.prompt_id, "once");
    let seen = restarted.wait_record("once", within(20)).await.unwrap();
    assert_eq!(seen.outcome, Some(Outcome::Succeeded));
    assert_eq!(server.stats().prompts_submitted, 1, "ran once");
    assert!(server_has(&oracle, "once").await);
    for c in [client, oracle, restarted] {
        c.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_prompt_id_can_be_attached_and_waited_on() {
    let server = common::mock(1.0).await;
    let (client, other) = started(&server).await;
    // Another client submits: its frames go to its own socket.
    let theirs = other.submit(&server.sample_workflow()).await.unwrap();
    let mut events = client.subscribe(Filter::all().prompt(&theirs.prompt_id));
    client.attach(&theirs.prompt_id).await.unwrap();
    let record = client
        .wait_record(&theirs.prompt_id, within(30))
        .await
        .unwrap();
    assert_eq!(record.outcome, Some(Outcome::Succeeded));
    // The outputs are the server's.
    let entry = common::server_history(&client, &theirs.prompt_id).await;
    assert_eq!(record.outputs.to_value(), entry["outputs"]);
    let seen = common::collect_until(&mut events, Event::is_terminal).await;
    common::assert_exactly_one_terminal(&seen);
    // `wait` on an id never seen attaches by itself.
    let done = other.submit(&server.sample_workflow()).await.unwrap();
    other
        .wait_record(&done.prompt_id, within(30))
        .await
        .unwrap();
    let late = common::client(&server).await;
    let record = late.wait_record(&done.prompt_id, within(30)).await.unwrap();
    assert_eq!(record.outcome, Some(Outcome::Succeeded));
    // An id the server never had ends as lost, with a reason.
    match late.wait("no-such-prompt", within(30)).await {
        Err(Error::Lost { reason, .. }) => assert!(reason.contains("neither"), "{reason}"),
        other => panic!("expected lost, got {other:?}"),
    }
    for c in [client, other, late] {
        c.close().await;
    }
}
