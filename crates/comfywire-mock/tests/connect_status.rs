//! A socket gets `status` with its sid on connect.
#![allow(clippy::unwrap_used)]
mod common;
use common::*;

#[tokio::test]
async fn given_client_id_is_echoed_as_sid() {
    let server = fast_server().await;
    let mut ws = connect(&server, Some("my-client-1")).await;
    let status = next_json(&mut ws).await;
    assert_eq!(status["type"], "status");
    assert_eq!(status["data"]["sid"], "my-client-1");
    assert_eq!(status["data"]["status"]["exec_info"]["queue_remaining"], 0);
    server.shutdown().await;
}

#[tokio::test]
async fn missing_client_id_gets_a_32_hex_sid() {
    let server = fast_server().await;
    for url_id in [None, Some("")] {
        let mut ws = connect(&server, url_id).await;
        let status = next_json(&mut ws).await;
        let sid = status["data"]["sid"].as_str().unwrap();
        assert_eq!(sid.len(), 32);
        assert!(sid.chars().all(|c| c.is_ascii_hexdigit()));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn api_prefix_serves_the_socket_and_sid_works_as_client_id() {
    let server = fast_server().await;
    let url = format!("ws://{}/api/ws", server.addr());
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let status = next_json(&mut ws).await;
    let sid = status["data"]["sid"].as_str().unwrap().to_owned();
    let id = submit(&server, &server.sample_workflow(), &sid).await;
    let frames = read_until_end(&mut ws, &id).await;
    assert!(text_types(&frames).contains(&"execution_success".to_owned()));
    server.shutdown().await;
}

#[tokio::test]
async fn newer_socket_takes_over_the_client_id() {
    let server = fast_server().await;
    let mut old = connect_ready(&server, "twin").await;
    let mut new = connect_ready(&server, "twin").await;
    let id = submit(&server, &server.sample_workflow(), "twin").await;
    read_until_end(&mut new, &id).await;
    // The old socket saw only status broadcasts.
    let mut seen = Vec::new();
    while let Ok(Some(frame)) =
        tokio::time::timeout(std::time::Duration::from_millis(200), next_frame(&mut old)).await
    {
        seen.push(frame);
    }
    assert!(!seen.is_empty());
    assert!(text_types(&seen).iter().all(|t| t == "status"));
    server.shutdown().await;
}
