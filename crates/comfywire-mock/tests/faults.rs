//! Injected faults reach the sockets the way the enum describes.
#![allow(clippy::unwrap_used)]
mod common;
use comfywire_mock::Fault;
use common::*;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// True when the socket ends without a close frame.
async fn ends_abruptly(ws: &mut Ws) -> bool {
    use futures_util::StreamExt;
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("ends in time")
        {
            Some(Ok(Message::Close(_))) => return false,
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return true,
        }
    }
}

#[tokio::test]
async fn restart_forgets_history_and_drops_sockets() {
    let server = fast_server().await;
    let mut ws = connect_ready(&server, "r").await;
    let id = submit(&server, &server.sample_workflow(), "r").await;
    read_until_end(&mut ws, &id).await;
    server.restart();
    assert!(ends_abruptly(&mut ws).await);
    let (_, history) = get(&server, "/history").await;
    assert_eq!(history, serde_json::json!({}));
    let (_, answer) = post(
        &server,
        "/prompt",
        serde_json::json!({"prompt": server.sample_workflow()}),
    )
    .await;
    assert_eq!(answer["number"], 0);
    server.shutdown().await;
}

#[tokio::test]
async fn refused_connects_get_503_then_work() {
    let server = fast_server().await;
    server.inject(Fault::RefuseConnects { count: 2 });
    for _ in 0..2 {
        let url = format!("ws://{}/ws?clientId=x", server.addr());
        let err = tokio_tungstenite::connect_async(url).await.unwrap_err();
        match err {
            tokio_tungstenite::tungstenite::Error::Http(response) => {
                assert_eq!(response.status().as_u16(), 503)
            }
            other => panic!("expected HTTP 503, got {other}"),
        }
    }
    let (status, _) = get(&server, "/system_stats").await;
    assert_eq!(status, 200);
    connect_ready(&server, "x").await;
    assert_eq!(server.stats().connects_refused, 2);
    server.shutdown().await;
}

#[tokio::test]
async fn deaf_socket_gets_nothing_but_new_sockets_work() {
    let server = fast_server().await;
    let mut deaf = connect_ready(&server, "d").await;
    server.inject(Fault::Deaf);
    let mut fresh = connect_ready(&server, "d").await;
    let id = submit(&server, &server.sample_workflow(), "d").await;
    read_until_end(&mut fresh, &id).await;
    let silent = tokio::time::timeout(Duration::from_millis(300), next_frame(&mut deaf)).await;
    assert!(silent.is_err(), "deaf socket received a frame");
    // Still open: it answers a ping.
    use futures_util::SinkExt;
    deaf.send(Message::Ping(vec![1u8].into())).await.unwrap();
    use futures_util::StreamExt;
    let pong = tokio::time::timeout(WAIT, deaf.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(matches!(pong, Message::Pong(_)));
    server.shutdown().await;
}

#[tokio::test]
async fn sockets_drop_after_n_frames() {
    let server = fast_server().await;
    let mut ws = connect_ready(&server, "n").await;
    server.inject(Fault::DropSocketsAfterFrames { frames: 5 });
    let id = submit(&server, &server.sample_workflow(), "n").await;
    let mut received = 0;
    while next_frame(&mut ws).await.is_some() {
        received += 1;
    }
    assert_eq!(received, 5);
    // Playback went on server-side and still wrote history.
    let mut done = false;
    for _ in 0..50 {
        let (_, history) = get(&server, &format!("/history/{id}")).await;
        if history.get(&id).is_some() {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(done);
    server.shutdown().await;
}

#[tokio::test]
async fn drop_now_cuts_without_close_frame() {
    let server = fast_server().await;
    let mut ws = connect_ready(&server, "cut").await;
    server.inject(Fault::DropSocketsNow);
    assert!(ends_abruptly(&mut ws).await);
    assert_eq!(server.stats().open_sockets, 0);
    server.shutdown().await;
}

#[tokio::test]
async fn odd_frames_are_delivered() {
    let server = fast_server().await;
    let mut ws = connect_ready(&server, "odd").await;
    server.inject(Fault::Garbage);
    server.inject(Fault::TruncatedBinary);
    server.inject(Fault::UnknownType);
    server.inject(Fault::UnknownBinary);
    server.inject(Fault::Oversize { bytes: 2_000_000 });
    let Some(Message::Text(garbage)) = next_frame(&mut ws).await else {
        panic!("text")
    };
    assert!(serde_json::from_str::<serde_json::Value>(&garbage).is_err());
    let Some(Message::Binary(cut)) = next_frame(&mut ws).await else {
        panic!("binary")
    };
    assert_eq!(&cut[..], &[0, 0, 0, 4, 0, 0]);
    assert_eq!(next_json(&mut ws).await["type"], "crystools.monitor");
    let Some(Message::Binary(unknown)) = next_frame(&mut ws).await else {
        panic!("binary")
    };
    assert_eq!(&unknown[..4], &[0, 0, 0, 99]);
    let Some(Message::Text(big)) = next_frame(&mut ws).await else {
        panic!("text")
    };
    assert!(big.len().abs_diff(2_000_000) < 100);
    let value: serde_json::Value = serde_json::from_str(&big).unwrap();
    assert_eq!(value["type"], "mock.oversize");
    server.shutdown().await;
}

#[tokio::test]
async fn stall_pauses_playback() {
    let server = fast_server().await;
    let mut ws = connect_ready(&server, "s").await;
    server.inject(Fault::Stall { millis: 300 });
    let started = std::time::Instant::now();
    let id = submit(&server, &server.sample_workflow(), "s").await;
    read_until_end(&mut ws, &id).await;
    assert!(started.elapsed() >= Duration::from_millis(250));
    server.shutdown().await;
}

/// The status a WebSocket upgrade of `server` gets (101 when it opens).
async fn upgrade_status(server: &comfywire_mock::MockServer) -> u16 {
    let url = format!("ws://{}/ws?clientId=b", server.addr());
    match tokio_tungstenite::connect_async(url).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP answer, got {other}"),
    }
}

#[tokio::test]
async fn blocked_websockets_get_403_while_http_works_until_allowed() {
    let server = fast_server().await;
    server.inject(Fault::BlockWebSockets {
        status: 403,
        millis: None,
    });
    for _ in 0..3 {
        assert_eq!(upgrade_status(&server).await, 403);
    }
    let id = submit(&server, &server.sample_workflow(), "b").await;
    let (status, _) = get(&server, "/queue").await;
    assert_eq!(status, 200);
    // The prompt runs and its history is served while sockets are refused.
    let mut entry = None;
    for _ in 0..500 {
        entry = server.history_entry(&id);
        if entry.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(entry.is_some());
    assert_eq!(server.stats().connects_refused, 3);
    server.inject(Fault::AllowWebSockets);
    assert_eq!(upgrade_status(&server).await, 101);
    server.shutdown().await;
}

#[tokio::test]
async fn a_timed_block_ends_by_itself() {
    let server = fast_server().await;
    // JSON form, as `POST /mock/fault` takes it; the status defaults to 403.
    let fault: Fault =
        serde_json::from_value(serde_json::json!({"fault": "block_web_sockets", "millis": 300}))
            .unwrap();
    server.inject(fault);
    assert_eq!(upgrade_status(&server).await, 403);
    let mut status = 403;
    for _ in 0..100 {
        status = upgrade_status(&server).await;
        if status == 101 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 101);
    server.shutdown().await;
}
