//! A node that raises ends the prompt as failed with the server's payload.
#![allow(clippy::unwrap_used)]

mod common;

use comfywire_client::{Error, Event, Outcome};
use comfywire_mock::Fault;

#[tokio::test]
async fn a_raising_node_fails_the_run_with_its_payload() {
    let server = common::mock(20.0).await;
    let client = common::client(&server).await;
    let mut events = client.events();
    server.inject(Fault::FailNextPrompt);
    let err = client.run(&server.sample_workflow()).await.unwrap_err();
    let Error::ExecutionFailed(record) = &err else {
        panic!("{err:?}")
    };
    let Some(Outcome::Failed(e)) = &record.outcome else {
        panic!()
    };
    assert_eq!(e.exception_type, "RuntimeError");
    assert!(e.node_id.is_some());
    assert!(!e.traceback.is_empty());
    // The independent branch's output arrived before the failure.
    assert!(!record.outputs.is_empty());
    assert!(err.to_string().contains("RuntimeError"));
    let seen = common::collect_until(&mut events, |e| matches!(e, Event::Finished(_))).await;
    common::assert_exactly_one_terminal(&seen);
    client.close().await;
}
