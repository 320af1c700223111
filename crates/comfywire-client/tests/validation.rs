//! A refused prompt is a typed validation error listing each node's errors,
//! and leaves no phantom prompt behind.
#![allow(clippy::unwrap_used)]

mod common;

use comfywire_client::Error;
use comfywire_mock::Fault;

#[tokio::test]
async fn a_400_becomes_a_typed_validation_error() {
    let server = common::mock(0.0).await;
    let client = common::client(&server).await;
    server.inject(Fault::ValidationErrorNextPrompt);
    let err = client.run(&server.sample_workflow()).await.unwrap_err();
    let Error::Validation(v) = &err else {
        panic!("{err:?}")
    };
    assert!(!v.kind.is_empty());
    assert_eq!(err.code(), 10);
    // The recorded validation_error trace's graphs give per-node errors.
    let workflow = server.workflow("validation_error").unwrap();
    let err = client.submit(&workflow).await.unwrap_err();
    assert!(matches!(err, Error::Validation(_)), "{err:?}");
    assert!(
        client.history().await.unwrap().is_empty(),
        "phantom prompt in the ring"
    );
    client.close().await;
}

#[tokio::test]
async fn a_partially_valid_prompt_runs_and_reports_the_skipped_branch() {
    let server = common::mock(0.0).await;
    let client = common::client(&server).await;
    let workflow = server.workflow("partial_validation").unwrap();
    let result = client.run(&workflow).await.unwrap();
    let partial = result
        .partial
        .as_ref()
        .expect("node errors of the invalid branch");
    assert!(!partial.node_errors.is_empty());
    assert!(!partial.node_errors[0].node_id.is_empty());
    client.close().await;
}
