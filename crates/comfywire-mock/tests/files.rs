//! /view serves outputs in history and uploads; /upload/image stores files.
#![allow(clippy::unwrap_used)]
mod common;
use common::*;

async fn view(server: &comfywire_mock::MockServer, query: &str) -> (u16, Vec<u8>) {
    let response = http()
        .get(format!("{}/view?{query}", server.url()))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn view_serves_history_outputs_only() {
    let server = fast_server().await;
    let query = "filename=success_single_00001_.png&subfolder=trace&type=output";
    assert_eq!(view(&server, query).await.0, 404);
    let mut ws = connect_ready(&server, "v").await;
    let id = submit(&server, &server.sample_workflow(), "v").await;
    read_until_end(&mut ws, &id).await;
    let (status, png) = view(&server, query).await;
    assert_eq!(status, 200);
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert_eq!(view(&server, query).await.1, png);
    assert_eq!(view(&server, "filename=../etc/passwd").await.0, 400);
    assert_eq!(view(&server, "filename=%2Fetc%2Fpasswd").await.0, 400);
    server.shutdown().await;
}

#[tokio::test]
async fn uploads_are_answered_and_servable() {
    let server = fast_server().await;
    let body = b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"image\"; filename=\"cat.png\"\r\nContent-Type: image/png\r\n\r\nnot really a png\r\n--BOUNDARY\r\nContent-Disposition: form-data; name=\"subfolder\"\r\n\r\npets\r\n--BOUNDARY--\r\n";
    let send = |payload: Vec<u8>| {
        http()
            .post(format!("{}/api/upload/image", server.url()))
            .header("content-type", "multipart/form-data; boundary=BOUNDARY")
            .body(payload)
            .send()
    };
    let answer: serde_json::Value = send(body.to_vec()).await.unwrap().json().await.unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"name": "cat.png", "subfolder": "pets", "type": "input"})
    );
    let (status, bytes) = view(&server, "filename=cat.png&subfolder=pets&type=input").await;
    assert_eq!(status, 200);
    assert_eq!(bytes, b"not really a png");
    // Different content under the same name is renamed.
    let other = String::from_utf8_lossy(body)
        .replace("not really", "another")
        .into_bytes();
    let answer: serde_json::Value = send(other).await.unwrap().json().await.unwrap();
    assert_eq!(answer["name"], "cat (1).png");
    server.shutdown().await;
}
