//! The server's ledger records every `POST /prompt`, every start and every
//! way a prompt leaves, restarts included, in Rust and as `GET /mock/ledger`.
#![allow(clippy::unwrap_used)]
mod common;
use comfywire_mock::{Fault, LedgerEntry, ReplyFate, RunEnd};
use common::*;
use serde_json::{Value, json};
use std::time::Duration;

/// Waits until the ledger entry asked for as `id` has ended.
async fn ended(server: &comfywire_mock::MockServer, id: &str) -> LedgerEntry {
    for _ in 0..500 {
        if let Some(entry) = server.ledger().about(id).find(|e| e.end.is_some()) {
            return entry.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{id} never ended: {:?}", server.ledger());
}

async fn post_prompt(server: &comfywire_mock::MockServer, id: &str, client: &str) -> u16 {
    let body = json!({"prompt": server.sample_workflow(), "prompt_id": id, "client_id": client});
    post(server, "/prompt", body).await.0
}

#[tokio::test]
async fn every_post_is_recorded_with_its_id_client_runs_and_end() {
    let server = fast_server().await;
    assert_eq!(post_prompt(&server, "ok-1", "alice").await, 200);
    let done = ended(&server, "ok-1").await;
    assert_eq!(done.prompt_id.as_deref(), Some("ok-1"));
    assert_eq!(done.requested_prompt_id.as_deref(), Some("ok-1"));
    assert_eq!(done.client_id.as_deref(), Some("alice"));
    assert!(done.enqueued && !done.adopted());
    assert_eq!((done.runs, done.end), (1, Some(RunEnd::Succeeded)));
    assert_eq!(done.reply, ReplyFate::Sent);

    server.inject(Fault::ValidationErrorNextPrompt);
    assert_eq!(post_prompt(&server, "refused", "alice").await, 400);
    let (status, _) = post(&server, "/prompt", json!({"client_id": "bob"})).await;
    assert_eq!(status, 400);

    server.inject(Fault::FailNextPrompt);
    assert_eq!(post_prompt(&server, "fails", "alice").await, 200);
    assert_eq!(ended(&server, "fails").await.end, Some(RunEnd::Failed));

    let ledger = server.ledger();
    let refused = ledger.about("refused").next().unwrap();
    assert!(!refused.enqueued);
    assert_eq!((refused.status, refused.prompt_id.clone()), (400, None));
    assert_eq!((refused.runs, refused.end), (0, None));
    assert!(!ledger.enqueued("refused"));
    let bob: Vec<&LedgerEntry> = ledger.for_client("bob").collect();
    assert_eq!(bob.len(), 1);
    assert!(!bob[0].enqueued);
    let seqs: Vec<u64> = ledger.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [0, 1, 2, 3]);
    assert_eq!(ledger.evicted, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn deleted_interrupted_and_restarted_prompts_end_as_such() {
    let server = fast_server().await;
    server.set_speed(1.0);
    let mut ws = connect_ready(&server, "c").await;
    assert_eq!(post_prompt(&server, "running", "c").await, 200);
    assert_eq!(post_prompt(&server, "pending", "c").await, 200);
    assert_eq!(post_prompt(&server, "doomed", "c").await, 200);
    loop {
        if next_json(&mut ws).await["type"] == "progress" {
            break;
        }
    }
    post(&server, "/queue", json!({"delete": ["pending"]})).await;
    post(&server, "/interrupt", json!({"prompt_id": "running"})).await;
    assert_eq!(ended(&server, "pending").await.end, Some(RunEnd::Deleted));
    assert_eq!(
        ended(&server, "running").await.end,
        Some(RunEnd::Interrupted)
    );
    server.set_speed(0.1);
    // "doomed" starts once "running" is gone; a restart forgets it.
    for _ in 0..500 {
        if server.ledger().runs("doomed") == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.restart();
    let doomed = ended(&server, "doomed").await;
    assert_eq!((doomed.runs, doomed.end), (1, Some(RunEnd::Restarted)));
    // The ledger outlives the restart; queue and history do not.
    assert_eq!(server.ledger().entries.len(), 3);
    assert_eq!(server.history_entry("running"), None);
    server.shutdown().await;
}

#[tokio::test]
async fn the_same_id_posted_twice_runs_twice_and_the_ledger_says_so() {
    let server = fast_server().await;
    assert_eq!(post_prompt(&server, "twice", "c").await, 200);
    ended(&server, "twice").await;
    assert_eq!(post_prompt(&server, "twice", "c").await, 200);
    for _ in 0..500 {
        if server.ledger().about("twice").all(|e| e.end.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ledger = server.ledger();
    assert_eq!(ledger.about("twice").count(), 2);
    assert_eq!(ledger.runs("twice"), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn get_mock_ledger_serves_the_same_record_as_json_filtered_by_client() {
    let server = fast_server().await;
    assert_eq!(post_prompt(&server, "a-1", "alice").await, 200);
    assert_eq!(post_prompt(&server, "b-1", "bob").await, 200);
    ended(&server, "a-1").await;
    ended(&server, "b-1").await;
    let (status, all) = get(&server, "/mock/ledger").await;
    assert_eq!(status, 200);
    assert_eq!(all["capacity"], 10_000);
    assert_eq!(all["evicted"], 0);
    assert_eq!(all["entries"].as_array().unwrap().len(), 2);
    let (_, alice) = get(&server, "/mock/ledger?client_id=alice").await;
    let entries = alice["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    // The end time is the server's clock: checked for its kind here, for
    // its value in the test below.
    assert!(entries[0]["ended_at_ms"].is_u64());
    let mut entry = entries[0].clone();
    entry.as_object_mut().unwrap().remove("ended_at_ms");
    assert_eq!(
        entry,
        json!({
            "seq": 0, "requested_prompt_id": "a-1", "prompt_id": "a-1", "client_id": "alice",
            "enqueued": true, "number": 0, "status": 200, "reply": "sent", "reply_delay_ms": 0,
            "runs": 1, "end": "succeeded"
        })
    );
    let typed: comfywire_mock::Ledger = serde_json::from_value(all).unwrap();
    assert_eq!(typed, server.ledger());
    server.shutdown().await;
}

#[tokio::test]
async fn the_ledger_keeps_the_last_entries_and_counts_the_evicted() {
    let server = fast_server().await;
    server.set_ledger_capacity(2);
    for i in 0..5 {
        post_prompt(&server, &format!("p{i}"), "c").await;
    }
    let ledger = server.ledger();
    assert_eq!((ledger.capacity, ledger.evicted), (2, 3));
    let ids: Vec<Value> = ledger
        .entries
        .iter()
        .map(|e| json!(e.prompt_id.clone()))
        .collect();
    assert_eq!(ids, [json!("p3"), json!("p4")]);
    ended(&server, "p4").await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_end_is_stamped_with_the_wall_clock_when_history_is_written() {
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    let server = fast_server().await;
    let before = now_ms();
    assert_eq!(post_prompt(&server, "stamped", "alice").await, 200);
    let done = ended(&server, "stamped").await;
    let at = done.ended_at_ms.unwrap();
    assert!(at >= before && at <= now_ms(), "{before} <= {at}");
    assert!(server.history_entry("stamped").is_some());
    // Also in the JSON of `GET /mock/ledger`.
    let (_, ledger) = get(&server, "/mock/ledger").await;
    let entry = ledger["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["prompt_id"] == "stamped")
        .unwrap();
    assert_eq!(entry["ended_at_ms"], json!(at));
    server.shutdown().await;
}
