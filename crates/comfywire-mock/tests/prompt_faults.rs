//! Faults around a submission: a cut or late `POST /prompt` answer after
//! the prompt was enqueued, a server that picks its own ids, a corrupted
//! terminal frame and one prompt's unreadable `/history/{id}`. The oracle
//! is raw TCP, reqwest and tungstenite, never comfywire-client.
#![allow(clippy::unwrap_used)]
mod common;
use comfywire_mock::{CutAt, Fault, MockServer, ReplyFate, RunEnd};
use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

/// Sends one `POST /prompt` over a fresh connection and returns every
/// byte the server wrote before closing it.
async fn raw_post_prompt(server: &MockServer, body: &Value) -> Vec<u8> {
    let mut stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let body = body.to_string();
    let request = format!(
        "POST /prompt HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        server.addr(),
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let read = tokio::time::timeout(WAIT, stream.read_to_end(&mut received)).await;
    // A reset instead of a FIN is a cut too.
    let _ = read.expect("the server closes the connection");
    received
}

/// Waits for the history entry of `id` (read past faults).
async fn history_of(server: &MockServer, id: &str) -> Value {
    for _ in 0..500 {
        if let Some(entry) = server.history_entry(id) {
            return entry;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no history for {id}");
}

fn body(server: &MockServer, id: &str) -> Value {
    json!({"prompt": server.sample_workflow(), "prompt_id": id, "client_id": "c"})
}

#[tokio::test]
async fn a_cut_body_leaves_the_prompt_enqueued_and_running() {
    let server = fast_server().await;
    server.inject(Fault::CutPromptReply { at: CutAt::Body });
    let bytes = raw_post_prompt(&server, &body(&server, "cut-body")).await;
    let text = String::from_utf8_lossy(&bytes);
    let (head, partial) = text.split_once("\r\n\r\n").expect("headers were sent");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .expect("content-length")
        .parse()
        .unwrap();
    assert!(partial.len() < length, "{partial:?} is the whole body");
    assert!(serde_json::from_str::<Value>(partial).is_err());
    history_of(&server, "cut-body").await;
    let entry = server.ledger().about("cut-body").next().unwrap().clone();
    assert!(entry.enqueued);
    assert_eq!(entry.reply, ReplyFate::Cut);
    assert_eq!((entry.runs, entry.end), (1, Some(RunEnd::Succeeded)));
    assert_eq!(server.stats().prompt_replies_cut, 1);
    // One shot: the next answer is whole.
    let (status, answer) = post(&server, "/prompt", body(&server, "after")).await;
    assert_eq!((status, answer["prompt_id"].clone()), (200, json!("after")));
    server.shutdown().await;
}

#[tokio::test]
async fn a_cut_before_the_headers_answers_nothing_at_all() {
    let server = fast_server().await;
    let (status, _) = post(
        &server,
        "/mock/fault",
        json!({"fault": "cut_prompt_reply", "at": "headers"}),
    )
    .await;
    assert_eq!(status, 200);
    let bytes = raw_post_prompt(&server, &body(&server, "cut-head")).await;
    assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
    history_of(&server, "cut-head").await;
    let ledger = server.ledger();
    let entry = ledger.about("cut-head").next().unwrap();
    assert!(entry.enqueued);
    assert_eq!(entry.reply, ReplyFate::Cut);
    server.shutdown().await;
}

#[tokio::test]
async fn a_delayed_answer_outlives_the_clients_timeout_while_the_prompt_runs() {
    let server = fast_server().await;
    let (status, _) = post(
        &server,
        "/mock/fault",
        json!({"fault": "delay_prompt_reply", "ms": 1500}),
    )
    .await;
    assert_eq!(status, 200);
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let sent = impatient
        .post(format!("{}/prompt", server.url()))
        .json(&body(&server, "late"))
        .send()
        .await;
    assert!(sent.unwrap_err().is_timeout());
    // It ran to the end before its answer would have come.
    history_of(&server, "late").await;
    let entry = server.ledger().about("late").next().unwrap().clone();
    assert!(entry.enqueued);
    assert_eq!(
        (entry.reply, entry.reply_delay_ms),
        (ReplyFate::Delayed, 1500)
    );
    assert_eq!(entry.end, Some(RunEnd::Succeeded));
    // A patient client gets the answer after the delay.
    server.inject(Fault::DelayPromptReply { millis: 200 });
    let started = std::time::Instant::now();
    let (status, answer) = post(&server, "/prompt", body(&server, "patient")).await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        (status, answer["prompt_id"].clone()),
        (200, json!("patient"))
    );
    assert_eq!(server.stats().prompt_replies_delayed, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn a_server_that_ignores_the_clients_id_answers_and_plays_its_own() {
    let server = fast_server().await;
    let (status, _) = post(
        &server,
        "/mock/fault",
        json!({"fault": "ignore_client_prompt_id"}),
    )
    .await;
    assert_eq!(status, 200);
    let mut ws = connect_ready(&server, "c").await;
    let (status, answer) = post(&server, "/prompt", body(&server, "mine")).await;
    assert_eq!(status, 200);
    let theirs = answer["prompt_id"].as_str().unwrap().to_owned();
    assert_ne!(theirs, "mine");
    assert_eq!(theirs.len(), 36, "a canonical uuid: {theirs}");
    let frames = read_until_end(&mut ws, &theirs).await;
    assert!(frames.iter().all(|f| match f {
        Message::Text(t) => !t.contains("mine"),
        _ => true,
    }));
    assert!(server.history_entry("mine").is_none());
    history_of(&server, &theirs).await;
    let ledger = server.ledger();
    let entry = ledger.about("mine").next().unwrap();
    assert_eq!(entry.prompt_id.as_deref(), Some(theirs.as_str()));
    assert!(entry.adopted());
    assert_eq!(ledger.runs("mine"), 1);
    // It stays that way: the server is like that.
    let (_, again) = post(&server, "/prompt", body(&server, "mine-2")).await;
    assert_ne!(again["prompt_id"], "mine-2");
    assert_eq!(server.stats().prompt_ids_replaced, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn the_next_terminal_frame_goes_out_as_broken_json_and_only_that_one() {
    let server = fast_server().await;
    let mut ws = connect_ready(&server, "c").await;
    server.inject(Fault::CorruptTerminalFrame);
    let first = submit(&server, &server.sample_workflow(), "c").await;
    let mut texts = Vec::new();
    loop {
        let Message::Text(text) = next_frame(&mut ws).await.expect("open") else {
            continue;
        };
        let parsed = serde_json::from_str::<Value>(&text).ok();
        let end = parsed.as_ref().is_some_and(|v| {
            v["type"] == "executing"
                && v["data"]["node"].is_null()
                && v["data"]["prompt_id"] == first
        });
        texts.push((text.to_string(), parsed));
        if end {
            break;
        }
    }
    let broken: Vec<&String> = texts
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(t, _)| t)
        .collect();
    assert_eq!(broken.len(), 1, "{broken:?}");
    assert!(broken[0].contains("execution_success"), "{}", broken[0]);
    assert!(
        !texts
            .iter()
            .any(|(_, v)| v.as_ref().is_some_and(|v| v["type"] == "execution_success"))
    );
    // The server's truth is intact.
    let entry = history_of(&server, &first).await;
    assert_eq!(entry["status"]["status_str"], "success");
    assert_eq!(server.stats().terminal_frames_corrupted, 1);
    let second = submit(&server, &server.sample_workflow(), "c").await;
    let types = text_types(&read_until_end(&mut ws, &second).await);
    assert!(types.contains(&"execution_success".to_owned()));
    server.shutdown().await;
}

#[tokio::test]
async fn one_prompts_history_answers_500_while_everything_else_works() {
    let server = fast_server().await;
    server.inject(Fault::HistoryUnreadable { prompt_id: None });
    let (status, _) = post(
        &server,
        "/mock/fault",
        json!({"fault": "history_unreadable", "prompt_id": "named"}),
    )
    .await;
    assert_eq!(status, 200);
    let (_, first) = post(&server, "/prompt", body(&server, "next-one")).await;
    assert_eq!(first["prompt_id"], "next-one");
    let (_, other) = post(&server, "/prompt", body(&server, "readable")).await;
    assert_eq!(other["prompt_id"], "readable");
    let (_, named) = post(&server, "/prompt", body(&server, "named")).await;
    assert_eq!(named["prompt_id"], "named");
    for id in ["next-one", "readable", "named"] {
        history_of(&server, id).await;
    }
    for prefix in ["", "/api"] {
        for id in ["next-one", "named"] {
            let (status, _) = get(&server, &format!("{prefix}/history/{id}")).await;
            assert_eq!(status, 500, "{prefix}/history/{id}");
        }
        let (status, readable) = get(&server, &format!("{prefix}/history/readable")).await;
        assert_eq!(status, 200);
        assert!(readable.get("readable").is_some());
    }
    let (status, all) = get(&server, "/history").await;
    assert_eq!(status, 200);
    for id in ["next-one", "readable", "named"] {
        assert!(all.get(id).is_some(), "{id} missing from /history");
    }
    let (_, queue) = get(&server, "/queue").await;
    assert_eq!(queue, json!({"queue_running": [], "queue_pending": []}));
    assert_eq!(server.stats().history_unreadable_answers, 4);
    server.shutdown().await;
}
