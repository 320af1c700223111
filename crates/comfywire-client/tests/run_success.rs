//! Submit and run to success against the mock: outputs, timings, files.
#![allow(clippy::unwrap_used)]

mod common;

use comfywire_client::{Event, EventKind, Phase};

#[tokio::test]
async fn runs_a_recorded_workflow_to_success_with_outputs() {
    let server = common::mock(20.0).await;
    let client = common::client(&server).await;
    let mut events = client.events();
    let result = client.run(&server.sample_workflow()).await.unwrap();
    assert_eq!(result.record.phase, Phase::Succeeded);
    // The server's own history agrees on the outputs.
    let history = common::server_history(&client, result.prompt_id()).await;
    assert_eq!(&history["outputs"], &result.outputs().to_value());
    let files = result.files();
    assert_eq!(files.len(), 1);
    let png = client.view(&files[0]).await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    // Per-node timings for the nodes that ran (EmptyImage, the 8-step node,
    // ImageInvert, SaveImage).
    assert_eq!(result.timings().len(), 4, "{:?}", result.timings());
    let seen = common::collect_until(&mut events, |e| matches!(e, Event::Finished(_))).await;
    common::assert_exactly_one_terminal(&seen);
    for kind in [
        EventKind::PromptQueued,
        EventKind::ExecutionStarted,
        EventKind::NodeStarted,
        EventKind::Progress,
        EventKind::Preview,
        EventKind::Output,
        EventKind::Finished,
    ] {
        assert!(seen.iter().any(|e| e.kind() == kind), "no {kind:?} event");
    }
    let dir = std::env::temp_dir().join(format!("comfywire-test-{}", result.prompt_id()));
    let written = client.download_outputs(&result.record, &dir).await.unwrap();
    assert_eq!(written.len(), 1);
    assert!(std::fs::read(&written[0]).unwrap().starts_with(b"\x89PNG"));
    let _ = std::fs::remove_dir_all(&dir);
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_client_id_is_the_servers_sid_and_status_arrives() {
    let server = common::mock(0.0).await;
    let client = comfywire_client::Client::connect(common::config(&server.url()))
        .await
        .unwrap();
    let mut events = client.on(&[EventKind::Status]);
    client
        .wait_connected(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let status = common::collect_until(&mut events, |e| {
        matches!(e, Event::Status { sid: Some(_), .. })
    })
    .await;
    let Some(Event::Status { sid: Some(sid), .. }) = status.last() else {
        panic!()
    };
    assert_eq!(sid, &client.client_id());
    client.close().await;
}
