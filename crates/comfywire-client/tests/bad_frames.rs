//! Garbage, truncated, unknown, non-UTF-8 and oversize frames surface as
//! typed events; the connection survives (an oversize frame costs one
//! reconnect, as does a frame that breaks RFC 6455).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use comfywire_client::proto::ParseError;
use comfywire_client::{Client, Event, EventKind};
use comfywire_mock::Fault;

#[tokio::test]
async fn bad_frames_are_reported_and_the_client_goes_on() {
    let server = common::mock(0.0).await;
    let mut config = common::config(&server.url());
    config.max_message_size = 1 << 20;
    let client = Client::connect(config).await.unwrap();
    client.wait_connected(Duration::from_secs(5)).await.unwrap();
    let mut events = client.on(&[EventKind::BadFrame, EventKind::Message]);
    server.inject(Fault::Garbage);
    server.inject(Fault::TruncatedBinary);
    server.inject(Fault::UnknownType);
    server.inject(Fault::UnknownBinary);
    let seen = common::collect_until(&mut events, {
        let mut n = 0;
        move |_| {
            n += 1;
            n == 4
        }
    })
    .await;
    assert!(seen.iter().any(|e| matches!(
        e,
        Event::BadFrame {
            error: ParseError::InvalidJson { .. },
            ..
        }
    )));
    assert!(seen.iter().any(|e| matches!(
        e,
        Event::BadFrame {
            error: ParseError::TruncatedBinary { .. },
            ..
        }
    )));
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::Message(m) if m.kind() == "crystools.monitor"))
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::Message(m) if m.kind() == "binary:99"))
    );
    server.inject(Fault::Oversize { bytes: 2 << 20 });
    let seen = common::collect_until(&mut events, |e| matches!(e, Event::BadFrame { .. })).await;
    assert!(
        matches!(seen.last(), Some(Event::BadFrame { error: ParseError::FrameTooLarge { limit, .. }, .. }) if *limit == 1 << 20)
    );
    // A text that is not UTF-8 is a bad frame on a socket that goes on.
    client.wait_connected(Duration::from_secs(5)).await.unwrap();
    let opened = client.stats().reconnects;
    server.inject(Fault::InvalidUtf8);
    let seen = common::collect_until(&mut events, |e| matches!(e, Event::BadFrame { .. })).await;
    assert!(
        matches!(
            seen.last(),
            Some(Event::BadFrame {
                error: ParseError::InvalidUtf8,
                ..
            })
        ),
        "{seen:?}"
    );
    let result = client.run(&server.sample_workflow()).await.unwrap();
    assert_eq!(result.record.phase.name(), "succeeded");
    assert_eq!(
        client.stats().reconnects,
        opened,
        "the socket was not reopened"
    );
    // A frame that breaks the framing costs the socket, not the client.
    server.inject(Fault::ReservedBits);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while client.stats().reconnects == opened {
        assert!(std::time::Instant::now() < deadline, "the socket was kept");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Still usable afterwards.
    client.wait_connected(Duration::from_secs(5)).await.unwrap();
    let result = client.run(&server.sample_workflow()).await.unwrap();
    assert_eq!(result.record.phase.name(), "succeeded");
    assert!(client.stats().bad_frames >= 3);
    client.close().await;
}
