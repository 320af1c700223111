//! A server nobody talked to shuts down at once.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use comfywire_mock::MockServer;

#[tokio::test]
async fn shutdown_right_after_start_does_not_hang() {
    for _ in 0..20 {
        let server = MockServer::start().await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), server.shutdown())
            .await
            .unwrap();
    }
}
