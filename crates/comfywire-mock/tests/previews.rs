//! feature_flags negotiation decides between type 4 and type 1 previews.
#![allow(clippy::unwrap_used)]
mod common;
use common::*;
use tokio_tungstenite::tungstenite::Message;

fn binaries(frames: &[Message]) -> Vec<&[u8]> {
    frames
        .iter()
        .filter_map(|m| match m {
            Message::Binary(b) => Some(&b[..]),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn flags_get_a_reply_and_type_4_previews() {
    let server = fast_server().await;
    let mut ws = connect(&server, Some("rich")).await;
    send_flags(&mut ws).await;
    assert_eq!(next_json(&mut ws).await["type"], "status");
    let reply = next_json(&mut ws).await;
    assert_eq!(
        reply,
        serde_json::json!({"type": "feature_flags", "data": {"supports_preview_metadata": true, "max_upload_size": 104857600}})
    );
    // success_single was recorded with type 1 frames; this socket asked for type 4.
    let id = submit(&server, &server.sample_workflow(), "rich").await;
    let frames = read_until_end(&mut ws, &id).await;
    let previews = binaries(&frames);
    assert_eq!(previews.len(), 8);
    for frame in previews {
        assert_eq!(&frame[..4], &[0, 0, 0, 4]);
        let len = u32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]) as usize;
        let meta: serde_json::Value = serde_json::from_slice(&frame[8..8 + len]).unwrap();
        assert_eq!(meta["prompt_id"], serde_json::Value::from(id.clone()));
        assert_eq!(meta["node_id"], "2");
        assert_eq!(meta["image_type"], "image/jpeg");
        assert_eq!(&frame[8 + len..8 + len + 2], &[0xff, 0xd8]);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn without_flags_type_4_recordings_arrive_as_type_1() {
    let server = fast_server().await;
    let mut ws = connect_ready(&server, "plain").await;
    let graph = server.workflow("preview_metadata").unwrap();
    let id = submit(&server, &graph, "plain").await;
    let frames = read_until_end(&mut ws, &id).await;
    let previews: Vec<_> = binaries(&frames)
        .into_iter()
        .filter(|b| b[3] != 3)
        .collect();
    assert_eq!(previews.len(), 6);
    for frame in previews {
        assert_eq!(&frame[..8], &[0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(&frame[8..12], b"\x89PNG");
    }
    // Progress text frames are broadcast unchanged.
    assert_eq!(binaries(&frames).iter().filter(|b| b[3] == 3).count(), 6);
    server.shutdown().await;
}

#[tokio::test]
async fn late_feature_flags_are_ignored() {
    let server = fast_server().await;
    let mut ws = connect(&server, Some("late")).await;
    ws_send_text(&mut ws, r#"{"type":"hello","data":{}}"#).await;
    send_flags(&mut ws).await;
    assert_eq!(next_json(&mut ws).await["type"], "status");
    let id = submit(&server, &server.sample_workflow(), "late").await;
    let frames = read_until_end(&mut ws, &id).await;
    assert!(!text_types(&frames).contains(&"feature_flags".to_owned()));
    assert!(binaries(&frames).iter().all(|b| b[3] == 1));
    server.shutdown().await;
}

async fn ws_send_text(ws: &mut Ws, text: &str) {
    use futures_util::SinkExt;
    ws.send(Message::text(text)).await.unwrap();
}
