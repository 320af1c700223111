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

/// The synthetic firehose: exactly the frames asked for, in the shape the
/// mix describes, own ids first, type-1 previews for a socket that did not
/// ask for metadata, and text the client's own parser takes.
#[tokio::test]
async fn mix_sends_exactly_n_frames_in_its_shape() {
    use comfywire_mock::{Mix, Snapshots};
    use tokio_tungstenite::tungstenite::Message;
    let server = fast_server().await;
    let mut ws = connect_ready(&server, "mix").await;
    let own = "11111111-2222-4333-8444-555555555555".to_owned();
    let mix = Mix {
        own: 1,
        foreign: 1,
        own_ids: vec![own.clone()],
        nodes: 2,
        steps: 5,
        snapshots: Snapshots::PerStep,
        preview_bytes: 1000,
        preview_every: 4,
        output_images: 2,
    };
    // 2 + 2 x (2 + 5 x 2 + 1) + 3 = 31 text frames a prompt, and a
    // preview after every 4th of the stream's `progress` frames (10 a
    // prompt): 33 + 34 + 33 = 100 frames make exactly three prompts.
    let task = server.firehose_mix("mix", 100, mix);
    let (mut texts, mut previews) = (0, 0);
    let mut ids = Vec::new();
    for _ in 0..100 {
        match next_frame(&mut ws).await.unwrap() {
            Message::Text(text) => {
                texts += 1;
                let parsed = comfywire_proto::parse_text(text.as_str()).unwrap();
                let v: serde_json::Value = serde_json::from_str(&text).unwrap();
                if v["type"] == "execution_start" {
                    ids.push(v["data"]["prompt_id"].as_str().unwrap().to_owned());
                }
                if v["type"] == "executed" {
                    assert_eq!(v["data"]["output"]["images"].as_array().unwrap().len(), 2);
                }
                drop(parsed);
            }
            Message::Binary(data) => {
                previews += 1;
                assert_eq!(&data[..4], &1u32.to_be_bytes());
                assert_eq!(data.len(), 8 + 1000);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(task.await.unwrap(), 100);
    assert_eq!(texts + previews, 100);
    assert_eq!(previews, 7);
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[0], own);
    assert_ne!(ids[1], own);
    assert_ne!(ids[1], ids[2]);
    let extra =
        tokio::time::timeout(std::time::Duration::from_millis(200), next_frame(&mut ws)).await;
    assert!(extra.is_err());
    server.shutdown().await;
}
