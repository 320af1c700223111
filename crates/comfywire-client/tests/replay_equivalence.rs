//! Replaying every trace through the driver (the mock plays it over a real
//! socket) gives the same per-prompt outcome as replaying it into `Session`.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

mod common;

use std::time::Instant;

use comfywire_client::proto::trace::Trace;
use comfywire_client::proto::{ReplayOptions, SessionConfig, replay};

#[tokio::test]
async fn driver_and_core_agree_on_every_trace() {
    let server = common::mock(0.0).await;
    let client = common::client(&server).await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/traces");
    let mut checked = 0;
    for name in server.scenarios() {
        let text = std::fs::read_to_string(dir.join(format!("{name}.jsonl"))).unwrap();
        let trace = Trace::parse(&text).unwrap();
        let direct = replay(
            &trace,
            SessionConfig::default(),
            Instant::now(),
            ReplayOptions::default(),
        );
        let Some(workflow) = server.workflow(&name) else {
            continue;
        };
        let Some(first) = trace.meta.prompt_ids.first() else {
            continue;
        };
        let Some(expected) = direct.session.execution(first) else {
            continue;
        };
        let result = client
            .wait_record(
                &client.submit(&workflow).await.unwrap().prompt_id,
                Default::default(),
            )
            .await
            .unwrap();
        assert_eq!(result.phase, expected.phase, "{name}");
        assert_eq!(
            result.outputs.keys().collect::<Vec<_>>(),
            expected.outputs.keys().collect::<Vec<_>>(),
            "{name}"
        );
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} traces checked");
    client.close().await;
}
