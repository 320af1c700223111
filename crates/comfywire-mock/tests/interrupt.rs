//! POST /interrupt stops only the running prompt it names.
#![allow(clippy::unwrap_used)]
mod common;
use comfywire_mock::MockServer;
use common::*;
use serde_json::json;

#[tokio::test]
async fn interrupt_naming_the_running_prompt_stops_it() {
    let server = MockServer::start().await.unwrap();
    server.set_speed(1.0);
    let mut ws = connect_ready(&server, "stopper").await;
    let graph = server.sample_workflow();
    let id = submit(&server, &graph, "stopper").await;
    // Wait until node 2 runs, then name another prompt: nothing happens.
    loop {
        let v = next_json(&mut ws).await;
        if v["type"] == "progress" {
            break;
        }
    }
    let (status, _) = post(&server, "/interrupt", json!({"prompt_id": "not-running"})).await;
    assert_eq!(status, 200);
    let (_, queue) = get(&server, "/queue").await;
    assert_eq!(queue["queue_running"][0][1], json!(id));
    let (status, _) = post(&server, "/api/interrupt", json!({"prompt_id": id})).await;
    assert_eq!(status, 200);
    let frames = read_until_end(&mut ws, &id).await;
    let types = text_types(&frames);
    assert!(!types.contains(&"execution_success".to_owned()));
    let n = types.len();
    assert_eq!(
        &types[n - 3..],
        &["execution_interrupted", "status", "executing"]
    );
    let interrupted: serde_json::Value = match &frames[n - 3] {
        tokio_tungstenite::tungstenite::Message::Text(t) => serde_json::from_str(t).unwrap(),
        _ => unreachable!(),
    };
    assert_eq!(interrupted["data"]["node_id"], "2");
    assert_eq!(interrupted["data"]["node_type"], "TestStepProgress");
    assert_eq!(interrupted["data"]["executed"], json!(["1"]));
    let (_, history) = get(&server, &format!("/history/{id}")).await;
    let entry = &history[&id];
    assert_eq!(entry["status"]["status_str"], "error");
    assert_eq!(entry["status"]["completed"], false);
    let kinds: Vec<_> = entry["status"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m[0].clone())
        .collect();
    assert_eq!(
        kinds,
        vec![
            json!("execution_start"),
            json!("execution_cached"),
            json!("execution_interrupted")
        ]
    );
    assert_eq!(server.stats().interrupts, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn bare_interrupt_stops_whatever_runs() {
    let server = MockServer::start().await.unwrap();
    let mut ws = connect_ready(&server, "bare").await;
    let id = submit(&server, &server.sample_workflow(), "bare").await;
    loop {
        if next_json(&mut ws).await["type"] == "execution_cached" {
            break;
        }
    }
    let response = http()
        .post(format!("{}/interrupt", server.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let frames = read_until_end(&mut ws, &id).await;
    assert!(text_types(&frames).contains(&"execution_interrupted".to_owned()));
    server.shutdown().await;
}
