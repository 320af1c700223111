//! Several prompts run strictly one after another with the real status counts.
#![allow(clippy::unwrap_used)]
mod common;
use comfywire_mock::Fault;
use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn three_prompts_run_in_order_with_recorded_queue_counts() {
    let server = fast_server().await;
    let mut ws = connect(&server, Some("q")).await;
    let mut remaining =
        vec![next_json(&mut ws).await["data"]["status"]["exec_info"]["queue_remaining"].clone()];
    // Keep the first prompt frozen until all three are queued.
    server.inject(Fault::Stall { millis: 400 });
    let graph = server.workflow("queue_three").unwrap();
    let first = submit(&server, &graph, "q").await;
    for _ in 0..2 {
        remaining.push(
            next_json(&mut ws).await["data"]["status"]["exec_info"]["queue_remaining"].clone(),
        );
    }
    let second = submit(&server, &graph, "q").await;
    let third = submit(&server, &graph, "q").await;
    let mut order = Vec::new();
    let mut ended = 0;
    while ended < 3 {
        let v = next_json(&mut ws).await;
        match v["type"].as_str().unwrap() {
            "status" => remaining.push(v["data"]["status"]["exec_info"]["queue_remaining"].clone()),
            "execution_start" => order.push(v["data"]["prompt_id"].clone()),
            "executing" if v["data"]["node"].is_null() => ended += 1,
            _ => {}
        }
    }
    assert_eq!(order, vec![json!(first), json!(second), json!(third)]);
    let expected: Vec<Value> = [0, 1, 1, 2, 3, 2, 2, 1, 1, 0]
        .iter()
        .map(|n| json!(n))
        .collect();
    assert_eq!(remaining, expected);
    let (_, history) = get(&server, "/history").await;
    let keys: Vec<_> = history.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, vec![first.clone(), second.clone(), third.clone()]);
    let (_, last) = get(&server, "/history?max_items=1").await;
    assert!(last.get(&third).is_some() && last.as_object().unwrap().len() == 1);
    let (_, page) = get(&server, "/history?max_items=1&offset=1").await;
    assert!(page.get(&second).is_some());
    server.shutdown().await;
}

#[tokio::test]
async fn pending_prompts_can_be_deleted() {
    let server = fast_server().await;
    server.inject(Fault::Stall { millis: 300 });
    let graph = server.sample_workflow();
    let (_, a) = post(&server, "/prompt", json!({"prompt": graph})).await;
    let (_, b) = post(&server, "/prompt", json!({"prompt": graph})).await;
    let (_, c) = post(&server, "/prompt", json!({"prompt": graph})).await;
    let (status, _) = post(&server, "/queue", json!({"delete": [b["prompt_id"]]})).await;
    assert_eq!(status, 200);
    let (_, queue) = get(&server, "/queue").await;
    assert_eq!(queue["queue_running"][0][1], a["prompt_id"]);
    let pending: Vec<_> = queue["queue_pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i[1].clone())
        .collect();
    assert_eq!(pending, vec![c["prompt_id"].clone()]);
    post(&server, "/queue", json!({"clear": true})).await;
    let (_, queue) = get(&server, "/queue").await;
    assert_eq!(queue["queue_pending"], json!([]));
    server.shutdown().await;
}
