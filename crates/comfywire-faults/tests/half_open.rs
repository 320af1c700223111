//! The deaf socket of a network change, reproduced at the TCP level: the
//! client's connection through the fault proxy turns half-open mid-run (it
//! stays open, the server's frames never arrive) while new connections
//! work. With the default timers the outcome still arrives within 5 s of
//! the server writing it (its own history is the clock), and live events
//! flow again on a new socket.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use comfywire_client::{Client, ClientConfig, Event, Phase};
use comfywire_faults::proxy::FaultProxy;
use comfywire_mock::{MockConfig, MockServer, TraceSource};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_socket_costs_seconds_and_live_events_resume() {
    let server = Arc::new(
        MockServer::start_with(MockConfig {
            port: 0,
            traces: TraceSource::Embedded,
            speed: 1.0,
            default_scenario: "success_single".into(),
        })
        .await
        .unwrap(),
    );
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let client = Client::connect(ClientConfig::new(proxy.url()))
        .await
        .unwrap();
    client.wait_connected(Duration::from_secs(5)).await.unwrap();
    let mut events = client.events();
    let workflow = server.workflow("success_single").unwrap();
    let prompt = client.submit(&workflow).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(Event::Progress(_))) => break,
            Ok(Some(_)) => {}
            other => panic!("no progress before the fault: {other:?}"),
        }
    }
    proxy.half_open();
    let watched = server.clone();
    let id = prompt.prompt_id.clone();
    let written = tokio::spawn(async move {
        loop {
            if watched.history_entry(&id).is_some() {
                return Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let result = client
        .wait(&prompt.prompt_id, Default::default())
        .await
        .unwrap();
    let heard = Instant::now();
    assert_eq!(result.record.phase, Phase::Succeeded);
    let late = heard.saturating_duration_since(written.await.unwrap());
    assert!(
        late <= Duration::from_secs(5),
        "outcome {late:?} after the server's"
    );
    let next = client.submit(&workflow).await.unwrap();
    let mut live = false;
    loop {
        match tokio::time::timeout_at(deadline + Duration::from_secs(20), events.recv()).await {
            Ok(Some(Event::Progress(p))) if *p.prompt_id == *next.prompt_id => live = true,
            Ok(Some(Event::Finished(r))) if r.prompt_id == next.prompt_id => break,
            Ok(Some(_)) => {}
            other => panic!("the next prompt never ended: {other:?}"),
        }
    }
    assert!(
        live,
        "no live progress after the half-open socket was replaced"
    );
    client.close().await;
}
