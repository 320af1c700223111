//! The raw-frame tap: every frame in the order the driver read it, on the
//! socket it came on, between that socket's openings and closings; bounded
//! with a drop count when nobody reads it.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use comfywire_client::proto::Frame;
use comfywire_client::{Client, ClosedBy, FrameTap, Phase, TapEvent, TapEventKind};
use comfywire_mock::Fault;
use serde_json::Value;

/// Every event until the tap ends (the client is closed).
async fn drain(tap: &mut FrameTap) -> Vec<TapEvent> {
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), tap.recv()).await {
            Ok(Some(event)) => out.push(event),
            Ok(None) => return out,
            Err(_) => panic!("the tap did not end; got {out:#?}"),
        }
    }
}

async fn next(tap: &mut FrameTap) -> TapEvent {
    tokio::time::timeout(Duration::from_secs(10), tap.recv())
        .await
        .unwrap()
        .unwrap()
}

fn text(frame: &Frame) -> Value {
    match frame {
        Frame::Text(bytes) => serde_json::from_slice(bytes).unwrap(),
        Frame::Binary(_) => Value::Null,
    }
}

#[tokio::test]
async fn frames_arrive_in_order_on_their_socket() {
    let server = common::mock(0.0).await;
    let mut config = common::config(&server.url());
    config.frame_tap_capacity = 4096;
    config.query_token = Some("tap-secret".into());
    let client = Client::connect(config).await.unwrap();
    let mut tap = client.frame_tap().unwrap();
    assert!(client.frame_tap().is_none(), "handed out once");
    let result = client.run(&server.sample_workflow()).await.unwrap();
    assert_eq!(result.record.phase, Phase::Succeeded);
    client.close().await;
    let frames = client.stats().frames;
    let events = drain(&mut tap).await;
    assert_eq!(tap.dropped(), 0);

    let id = client.client_id();
    match &events[0].kind {
        TapEventKind::Opened { url, client_id } => {
            assert!(url.ends_with(&format!("/ws?clientId={id}")), "{url}");
            assert!(!url.contains("tap-secret"), "no query token in {url}");
            assert_eq!(client_id.as_deref(), Some(id.as_str()));
        }
        other => panic!("first event {other:?}"),
    }
    assert_eq!(
        events.last().unwrap().kind,
        TapEventKind::Closed {
            by: ClosedBy::Client,
            code: Some(1000)
        }
    );
    assert!(events.iter().all(|e| e.conn == 1));
    assert!(events.windows(2).all(|w| w[0].at <= w[1].at));

    let sent: Vec<Value> = events
        .iter()
        .filter_map(|e| match &e.kind {
            TapEventKind::Sent(frame) => Some(text(frame)),
            _ => None,
        })
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["type"], "feature_flags");

    let received: Vec<&Frame> = events
        .iter()
        .filter_map(|e| match &e.kind {
            TapEventKind::Received(frame) => Some(frame),
            _ => None,
        })
        .collect();
    assert_eq!(received.len() as u64, frames, "every frame the driver read");
    assert!(received.iter().any(|f| matches!(f, Frame::Binary(_))));
    let types: Vec<String> = received
        .iter()
        .map(|f| text(f)["type"].as_str().unwrap_or("binary").to_owned())
        .collect();
    assert_eq!(types[0], "status");
    let at = |kind: &str| types.iter().position(|t| t == kind).unwrap();
    assert!(at("execution_start") < at("progress"));
    assert!(at("progress") < at("executed"));
    assert!(at("executed") < at("execution_success"));
    // The steps of the node, as the server sent them: 1, 2, ... max.
    let steps: Vec<f64> = received
        .iter()
        .map(|f| text(f))
        .filter(|v| v["type"] == "progress")
        .map(|v| v["data"]["value"].as_f64().unwrap())
        .collect();
    assert!(steps.len() > 1);
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
}

#[tokio::test]
async fn a_tap_nobody_reads_keeps_its_capacity_and_counts_the_rest() {
    let server = common::mock(0.0).await;
    let mut config = common::config(&server.url());
    config.frame_tap_capacity = 5;
    let client = Client::connect(config).await.unwrap();
    let result = client.run(&server.sample_workflow()).await.unwrap();
    assert_eq!(result.record.phase, Phase::Succeeded);
    client.close().await;
    let frames = client.stats().frames;
    let mut tap = client.frame_tap().unwrap();
    assert_eq!(tap.pending(), 5);
    // Opened, Sent and every frame, then Closed: all past the first five
    // were dropped and counted.
    assert_eq!(tap.dropped(), frames + 3 - 5);
    let events = drain(&mut tap).await;
    assert_eq!(events.len(), 5);
    assert!(matches!(events[0].kind, TapEventKind::Opened { .. }));
    assert!(matches!(events[1].kind, TapEventKind::Sent(_)));
    assert!(
        events[2..]
            .iter()
            .all(|e| matches!(e.kind, TapEventKind::Received(_)))
    );
    assert_eq!(
        text(match &events[2].kind {
            TapEventKind::Received(f) => f,
            _ => unreachable!(),
        })["type"],
        "status"
    );
}

#[tokio::test]
async fn a_reconnect_opens_socket_two() {
    let server = common::mock(0.0).await;
    let mut config = common::config(&server.url());
    config.frame_tap_capacity = 64;
    let client = Client::connect(config).await.unwrap();
    let mut tap = client.frame_tap().unwrap();
    let mut events = Vec::new();
    // Up to the greeting of socket 1, then cut it.
    loop {
        let event = next(&mut tap).await;
        let greeted =
            matches!(&event.kind, TapEventKind::Received(f) if text(f)["type"] == "status");
        events.push(event);
        if greeted {
            break;
        }
    }
    server.inject(Fault::DropSocketsNow);
    loop {
        let event = next(&mut tap).await;
        let opened = matches!(event.kind, TapEventKind::Opened { .. });
        events.push(event);
        if opened {
            break;
        }
    }
    let closed = events
        .iter()
        .position(|e| matches!(e.kind, TapEventKind::Closed { .. }))
        .unwrap();
    assert_eq!(
        events[closed].kind,
        TapEventKind::Closed {
            by: ClosedBy::Error,
            code: None
        }
    );
    assert!(events[..=closed].iter().all(|e| e.conn == 1));
    assert_eq!(events.last().unwrap().conn, 2);
    assert_eq!(closed + 2, events.len(), "nothing between close and reopen");
    client.close().await;
}

#[tokio::test]
async fn no_tap_unless_configured() {
    let server = common::mock(0.0).await;
    let client = common::client(&server).await;
    assert!(client.frame_tap().is_none());
    client.close().await;
}
