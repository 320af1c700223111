//! Recorded validation answers: 400 bodies and node_errors on 200.
#![allow(clippy::unwrap_used)]
mod common;
use comfywire_mock::Fault;
use common::*;
use serde_json::json;

#[tokio::test]
async fn recorded_invalid_graph_gets_its_400_and_nothing_is_queued() {
    let server = fast_server().await;
    let graph = server.workflow("validation_error").unwrap();
    let (status, body) = post(
        &server,
        "/prompt",
        json!({"prompt": graph, "client_id": "v"}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_prompt");
    assert_eq!(body["node_errors"], json!({}));
    let bad_width = json!({"1": {"class_type": "EmptyImage", "inputs": {"width": 0, "height": 16, "batch_size": 1, "color": 0}}, "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "trace/never"}}});
    let (status, body) = post(&server, "/api/prompt", json!({"prompt": bad_width})).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["node_errors"]["1"]["errors"][0]["type"],
        "value_smaller_than_min"
    );
    let (_, queue) = get(&server, "/prompt").await;
    assert_eq!(queue["exec_info"]["queue_remaining"], 0);
    assert_eq!(server.stats().prompts_submitted, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn body_without_prompt_is_no_prompt() {
    let server = fast_server().await;
    let (status, body) = post(&server, "/prompt", json!({"client_id": "x"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "no_prompt");
    server.shutdown().await;
}

#[tokio::test]
async fn partial_validation_answers_200_with_node_errors() {
    let server = fast_server().await;
    let mut ws = connect_ready(&server, "partial").await;
    let graph = server.workflow("partial_validation").unwrap();
    let (status, body) = post(
        &server,
        "/prompt",
        json!({"prompt": graph, "client_id": "partial"}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["node_errors"]["3"]["errors"][0]["type"],
        "value_smaller_than_min"
    );
    let id = body["prompt_id"].as_str().unwrap().to_owned();
    read_until_end(&mut ws, &id).await;
    let (_, history) = get(&server, &format!("/history/{id}")).await;
    assert_eq!(history[&id]["prompt"][4], json!(["2"]));
    server.shutdown().await;
}

#[tokio::test]
async fn validation_error_fault_rejects_the_next_prompt_only() {
    let server = fast_server().await;
    server.inject(Fault::ValidationErrorNextPrompt);
    let graph = server.sample_workflow();
    let (status, body) = post(&server, "/prompt", json!({"prompt": graph})).await;
    assert_eq!(status, 400);
    assert!(!body["node_errors"].as_object().unwrap().is_empty());
    let (status, _) = post(&server, "/prompt", json!({"prompt": graph})).await;
    assert_eq!(status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn fail_next_prompt_plays_execution_error() {
    let server = fast_server().await;
    let mut ws = connect_ready(&server, "failing").await;
    server.inject(Fault::FailNextPrompt);
    let id = submit(&server, &server.sample_workflow(), "failing").await;
    let frames = read_until_end(&mut ws, &id).await;
    let types = text_types(&frames);
    assert!(types.contains(&"execution_error".to_owned()));
    assert!(!types.contains(&"execution_success".to_owned()));
    let (_, history) = get(&server, &format!("/history/{id}")).await;
    assert_eq!(history[&id]["status"]["status_str"], "error");
    server.shutdown().await;
}
