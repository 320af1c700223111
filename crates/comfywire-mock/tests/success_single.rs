//! success_single replays in recorded order with rewritten ids and history.
#![allow(clippy::unwrap_used)]
mod common;
use comfywire_proto::trace::{Trace, TraceEventKind};
use common::*;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// Types of the recorded frames from the first `status` after the POST on.
fn recorded_types() -> Vec<String> {
    let text = include_str!("../../../tests/data/traces/success_single.jsonl");
    let trace = Trace::parse(text).unwrap();
    let mut out = Vec::new();
    let mut posted = false;
    for event in &trace.events {
        match &event.kind {
            TraceEventKind::Http(h) if h.method == "POST" => posted = true,
            TraceEventKind::Text {
                received: true,
                data,
                ..
            } if posted => {
                let v: Value = serde_json::from_str(data).unwrap();
                out.push(v["type"].as_str().unwrap().to_owned());
            }
            TraceEventKind::Binary { data, .. } if posted => {
                out.push(format!(
                    "bin{}",
                    u32::from_be_bytes([data[0], data[1], data[2], data[3]])
                ));
            }
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn replays_the_recorded_sequence_and_writes_history() {
    let server = fast_server().await;
    let mut ws = connect_ready(&server, "single").await;
    let graph = server.sample_workflow();
    let id = submit(&server, &graph, "single").await;
    let frames = read_until_end(&mut ws, &id).await;
    assert_eq!(text_types(&frames), recorded_types());
    // Every text frame carries the new id, never the recorded one.
    for frame in &frames {
        if let Message::Text(text) = frame {
            assert!(!text.contains("219ee31f-1e02-4af1-83f1-1485a9ee3d6a"));
            let v: Value = serde_json::from_str(text).unwrap();
            if let Some(pid) = v["data"].get("prompt_id") {
                assert_eq!(pid, &Value::from(id.clone()));
            }
            // Python's separators, as the real server writes them.
            assert!(text.starts_with("{\"type\": "));
        }
    }
    let (status, history) = get(&server, &format!("/history/{id}")).await;
    assert_eq!(status, 200);
    let entry = &history[&id];
    assert_eq!(entry["prompt"][0], 0);
    assert_eq!(entry["prompt"][1], Value::from(id.clone()));
    assert_eq!(entry["prompt"][2], graph);
    assert_eq!(entry["prompt"][3]["client_id"], "single");
    assert_eq!(entry["status"]["status_str"], "success");
    assert_eq!(
        entry["outputs"]["4"]["images"][0]["filename"],
        "success_single_00001_.png"
    );
    assert_eq!(
        entry["status"]["messages"][0][1]["prompt_id"],
        Value::from(id.clone())
    );
    let (_, queue) = get(&server, "/queue").await;
    assert_eq!(
        queue,
        serde_json::json!({"queue_running": [], "queue_pending": []})
    );
    assert_eq!(server.stats().prompts_finished, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn chosen_prompt_id_is_used() {
    let server = fast_server().await;
    let mut ws = connect_ready(&server, "chooser").await;
    let body = serde_json::json!({"prompt": server.sample_workflow(), "client_id": "chooser", "prompt_id": "my-own-id"});
    let (status, answer) = post(&server, "/prompt", body).await;
    assert_eq!(status, 200);
    assert_eq!(answer["prompt_id"], "my-own-id");
    let frames = read_until_end(&mut ws, "my-own-id").await;
    assert_eq!(text_types(&frames).last().unwrap(), "executing");
    server.shutdown().await;
}

#[tokio::test]
async fn history_is_empty_until_the_end() {
    let server = comfywire_mock::MockServer::start().await.unwrap();
    server.set_speed(20.0);
    let mut ws = connect_ready(&server, "early").await;
    let id = submit(&server, &server.sample_workflow(), "early").await;
    let (_, early) = get(&server, &format!("/history/{id}")).await;
    assert_eq!(early, serde_json::json!({}));
    let (_, queue) = get(&server, "/prompt").await;
    assert_eq!(queue["exec_info"]["queue_remaining"], 1);
    read_until_end(&mut ws, &id).await;
    let (_, done) = get(&server, &format!("/history/{id}")).await;
    assert!(done.get(&id).is_some());
    server.shutdown().await;
}
