//! The firehose sends exactly the requested number of frames.
#![allow(clippy::unwrap_used)]
mod common;
use common::*;

#[tokio::test]
async fn firehose_sends_exactly_n_frames() {
    let server = fast_server().await;
    let mut ws = connect_ready(&server, "hose").await;
    let task = server.firehose("hose", 1500, "long_run");
    let mut received = 0u64;
    let mut ids = std::collections::HashSet::new();
    while received < 1500 {
        let frame = next_frame(&mut ws).await.unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(text) = &frame {
            let v: serde_json::Value = serde_json::from_str(text).unwrap();
            if let Some(id) = v["data"]["prompt_id"].as_str() {
                ids.insert(id.to_owned());
            }
        }
        received += 1;
    }
    assert_eq!(task.await.unwrap(), 1500);
    // long_run has ~600 frames a cycle, so three cycles and three ids.
    assert_eq!(ids.len(), 3);
    let extra =
        tokio::time::timeout(std::time::Duration::from_millis(200), next_frame(&mut ws)).await;
    assert!(extra.is_err());
    assert_eq!(server.firehose("nobody", 10, "long_run").await.unwrap(), 0);
    server.shutdown().await;
}
