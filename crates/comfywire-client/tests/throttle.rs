//! Progress over a real socket is throttled per node: at most one event per
//! 16 ms, and the final value of every node arrives.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use comfywire_client::Event;

#[tokio::test]
async fn long_run_progress_is_throttled_over_the_socket() {
    let server = common::mock(1.0).await;
    let client = common::client(&server).await;
    // Read while it runs: an unread queue would coalesce progress further
    // (latest wins), which is the subscriber's business, not the throttle's.
    let mut events = client.events();
    let reader = tokio::spawn(async move {
        let mut seen: Vec<(Instant, Event)> = Vec::new();
        loop {
            match events.recv_timeout(Duration::from_secs(20)).await {
                Ok(Some(e)) => {
                    let end = matches!(e, Event::Finished(_));
                    seen.push((Instant::now(), e));
                    if end {
                        return seen;
                    }
                }
                other => panic!("{other:?}"),
            }
        }
    });
    let result = client
        .run(&server.workflow("long_run").unwrap())
        .await
        .unwrap();
    let seen = reader.await.unwrap();
    let mut last: HashMap<String, (f64, f64)> = HashMap::new();
    let mut count = 0;
    for (_, e) in &seen {
        if let Event::Progress(p) = e {
            count += 1;
            last.insert(p.node.to_string(), (p.value, p.max));
        }
    }
    // 200 steps in ~1 s: throttled to roughly one per 16 ms.
    assert!(count < 120, "{count} progress events for 200 steps");
    assert!(count > 20, "{count} progress events");
    for (node, (value, max)) in last {
        assert_eq!(value, max, "final value of node {node} missing");
    }
    assert!(client.stats().coalesced_progress > 50);
    assert_eq!(result.record.phase.name(), "succeeded");
    client.close().await;
}
