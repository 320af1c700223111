//! close(): close frame sent, tasks joined, subscriptions ended.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

#[tokio::test]
async fn close_ends_everything_and_leaks_nothing() {
    let server = common::mock(0.0).await;
    let client = common::client(&server).await;
    let mut events = client.events();
    let clone = client.clone();
    assert_eq!(server.stats().open_sockets, 1);
    client.close().await;
    // The subscription ends rather than hanging.
    while tokio::time::timeout(Duration::from_secs(5), events.recv())
        .await
        .unwrap()
        .is_some()
    {}
    assert!(matches!(
        clone.submit(&server.sample_workflow()).await,
        Err(comfywire_client::Error::Closed)
    ));
    clone.close().await;
    for _ in 0..50 {
        if server.stats().open_sockets == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.stats().open_sockets, 0);
    server.shutdown().await;
}
