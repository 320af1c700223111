//! Refused connects are retried on the backoff schedule; after enough
//! failures the client polls over HTTP and comes back when the socket does.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use comfywire_client::{Client, ConnectionState, Event};
use comfywire_mock::Fault;

#[tokio::test]
async fn refused_connects_follow_the_backoff_schedule() {
    let server = common::mock(0.0).await;
    server.inject(Fault::RefuseConnects { count: 3 });
    let client = Client::connect(common::config(&server.url()))
        .await
        .unwrap();
    let mut states = client.watch_status();
    let started = Instant::now();
    let mut delays = Vec::new();
    loop {
        states.changed().await.unwrap();
        let status = states.borrow().clone();
        match status.state {
            ConnectionState::Reconnecting {
                next_attempt_at,
                attempt,
            } => {
                delays.push((
                    attempt,
                    next_attempt_at.saturating_duration_since(Instant::now()),
                ));
                assert!(status.last_error.is_some());
            }
            ConnectionState::Connected => break,
            _ => {}
        }
    }
    // 50 ms, 100 ms, 200 ms after the three refusals.
    assert_eq!(
        delays.iter().map(|d| d.0).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(340), "{elapsed:?}");
    assert_eq!(server.stats().connects_refused, 3);
    client.close().await;
}

#[tokio::test]
async fn polling_fallback_follows_a_prompt_and_the_socket_comes_back() {
    let server = common::mock(10.0).await;
    let client = common::client(&server).await;
    let mut events = client.events();
    let prompt = client.submit(&server.sample_workflow()).await.unwrap();
    // Cut the socket and refuse the next 8 connects: 5 failures → polling.
    server.inject(Fault::RefuseConnects { count: 8 });
    server.inject(Fault::DropSocketsNow);
    let seen = common::collect_until(&mut events, |e| matches!(e, Event::Finished(_))).await;
    common::assert_exactly_one_terminal(&seen);
    assert!(seen.iter().any(|e| matches!(e, Event::Connection(s) if matches!(s.state, ConnectionState::Polling { .. }))), "never polled");
    let result = client
        .wait(&prompt.prompt_id, Default::default())
        .await
        .unwrap();
    assert_eq!(result.files().len(), 1, "outputs recovered over HTTP");
    client
        .wait_connected(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(client.stats().reconnects >= 1);
    client.close().await;
}
