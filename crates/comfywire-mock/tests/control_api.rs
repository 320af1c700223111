//! The /mock/* control routes and the plain read routes over HTTP.
#![allow(clippy::unwrap_used)]
mod common;
use common::*;
use serde_json::json;

#[tokio::test]
async fn control_routes_steer_the_server() {
    let server = fast_server().await;
    let (status, _) = post(&server, "/mock/speed", json!({"speed": 0})).await;
    assert_eq!(status, 200);
    let mut ws = connect_ready(&server, "ctl").await;
    let (status, _) = post(&server, "/mock/fault", json!({"fault": "unknown_type"})).await;
    assert_eq!(status, 200);
    assert_eq!(next_json(&mut ws).await["type"], "crystools.monitor");
    let (status, _) = post(
        &server,
        "/mock/fault",
        json!({"fault": "refuse_connects", "count": 1}),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = post(&server, "/mock/fault", json!({"fault": "no_such_fault"})).await;
    assert_eq!(status, 400);
    let (_, hose) = post(
        &server,
        "/mock/firehose",
        json!({"client_id": "ctl", "frames": 20, "scenario": "success_single"}),
    )
    .await;
    assert_eq!(hose["frames_sent"], 20);
    for _ in 0..20 {
        next_frame(&mut ws).await.unwrap();
    }
    let (status, stats) = get(&server, "/mock/stats").await;
    assert_eq!(status, 200);
    assert_eq!(stats["connections_accepted"], 1);
    assert_eq!(stats["open_sockets"], 1);
    assert!(stats["frames_sent"].as_u64().unwrap() >= 22);
    let (status, _) = post(&server, "/mock/restart", json!({})).await;
    assert_eq!(status, 200);
    assert!(next_frame(&mut ws).await.is_none());
    server.shutdown().await;
}

#[tokio::test]
async fn read_routes_answer_like_0_3_64() {
    let server = fast_server().await;
    for prefix in ["", "/api"] {
        let (_, features) = get(&server, &format!("{prefix}/features")).await;
        assert_eq!(
            features,
            json!({"supports_preview_metadata": true, "max_upload_size": 104857600})
        );
        let (_, stats) = get(&server, &format!("{prefix}/system_stats")).await;
        assert_eq!(stats["system"]["comfyui_version"], "0.3.64");
        let (_, prompt) = get(&server, &format!("{prefix}/prompt")).await;
        assert_eq!(prompt, json!({"exec_info": {"queue_remaining": 0}}));
        let (_, unknown) = get(&server, &format!("{prefix}/history/nope")).await;
        assert_eq!(unknown, json!({}));
    }
    let (status, body) = get(&server, "/no/such/route").await;
    assert_eq!(status, 404);
    assert!(body.is_object());
    assert_eq!(server.scenarios().len(), 11);
    assert!(server.workflow("no_such").is_none());
    server.shutdown().await;
}
