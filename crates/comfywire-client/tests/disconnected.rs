//! Disconnected is not blind: a prompt the server finishes while the
//! socket is down is settled over HTTP within about a second of its end
//! (measured against the mock's ledger, the server's own record of when it
//! ended), not when the reconnect backoff next succeeds; and with
//! WebSockets refused for good, `run` works by polling.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use comfywire_client::{
    Client, ClientConfig, ConnectionState, Deadlines, Event, Phase, SubmitOptions,
};
use comfywire_mock::{Fault, MockServer};

/// The promise: settled within 2 s of the server's end.
const PROMISE: Duration = Duration::from_secs(2);

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// When the server says `prompt_id` ended (ms since the epoch).
fn server_end_ms(server: &MockServer, prompt_id: &str) -> u64 {
    let ledger = server.ledger();
    let entry = ledger
        .about(prompt_id)
        .find(|e| e.end.is_some())
        .unwrap_or_else(|| panic!("{prompt_id} has not ended on the server: {ledger:?}"));
    entry.ended_at_ms.unwrap()
}

#[tokio::test]
async fn a_prompt_finished_during_a_ten_second_disconnect_is_settled_within_two_seconds() {
    let server = common::mock(1.0).await;
    // Default timers: the reconnect backoff is 1, 2, 4, 8 s, so the socket
    // is back only about 15 s after the drop.
    let client = Client::connect(ClientConfig::new(server.url()))
        .await
        .unwrap();
    client.wait_connected(Duration::from_secs(5)).await.unwrap();
    let mut events = client.events();
    let prompt = client
        .submit(&server.workflow("long_run").unwrap())
        .await
        .unwrap();
    common::collect_until(&mut events, |e| matches!(e, Event::Progress(_))).await;
    // The run pauses 4 s, so it ends about 5 s into a 10 s disconnect
    // (upgrades answered 503 meanwhile: an ordinary failed connect).
    server.inject(Fault::Stall { millis: 4_000 });
    server.inject(Fault::BlockWebSockets {
        status: 503,
        millis: Some(10_000),
    });
    let dropped_ms = wall_ms();
    server.inject(Fault::DropSocketsNow);

    let seen = common::collect_until(
        &mut events,
        |e| matches!(e, Event::Finished(r) if r.prompt_id == prompt.prompt_id),
    )
    .await;
    let settled_ms = wall_ms();
    let status = client.status();
    let ended_ms = server_end_ms(&server, &prompt.prompt_id);
    let late = Duration::from_millis(settled_ms.saturating_sub(ended_ms));
    eprintln!(
        "ended {} ms into the disconnect, settled {} ms after the server's end",
        ended_ms - dropped_ms,
        late.as_millis()
    );
    assert!(
        ended_ms < dropped_ms + 10_000,
        "the prompt ended during the disconnect"
    );
    assert_ne!(
        status.state,
        ConnectionState::Connected,
        "settled while the socket was still down"
    );
    assert!(late <= PROMISE, "settled {late:?} after the server's end");

    common::assert_exactly_one_terminal(&seen);
    let Some(Event::Finished(record)) = seen.last() else {
        unreachable!()
    };
    assert_eq!(record.phase, Phase::Succeeded);
    assert!(record.had_gap);
    let history = common::server_history(&client, &prompt.prompt_id).await;
    assert_eq!(history["outputs"], record.outputs.to_value());
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn with_websockets_blocked_for_good_run_succeeds_by_polling() {
    let server = common::mock(1.0).await;
    server.inject(Fault::BlockWebSockets {
        status: 403,
        millis: None,
    });
    let client = Client::connect(ClientConfig::new(server.url()))
        .await
        .unwrap();
    // One refused upgrade is enough to know: polling at once.
    let mut status = client.watch_status();
    let polling = tokio::time::timeout(
        Duration::from_secs(5),
        status.wait_for(|s| matches!(s.state, ConnectionState::Polling { .. })),
    )
    .await
    .unwrap()
    .unwrap()
    .clone();
    assert!(polling.last_error.unwrap().websockets_blocked());

    let mut events = client.events();
    // A stall deadline shorter than the run: without a socket no event
    // shows progress, and silence while polling is no stall.
    let deadlines = Deadlines {
        stall: Some(Duration::from_millis(500)),
        total: Some(Duration::from_secs(30)),
        queue: None,
    };
    let result = client
        .run_with(
            &server.workflow("success_single").unwrap(),
            SubmitOptions::default(),
            deadlines,
        )
        .await
        .unwrap();
    let settled_ms = wall_ms();
    let late = Duration::from_millis(
        settled_ms.saturating_sub(server_end_ms(&server, result.prompt_id())),
    );
    eprintln!(
        "polling only: settled {} ms after the server's end",
        late.as_millis()
    );
    assert!(late <= PROMISE, "settled {late:?} after the server's end");
    assert_eq!(result.record.phase, Phase::Succeeded);
    let history = common::server_history(&client, result.prompt_id()).await;
    assert_eq!(history["outputs"], result.outputs().to_value());
    assert!(!result.outputs().is_empty());
    let seen = common::collect_until(&mut events, |e| matches!(e, Event::Finished(_))).await;
    common::assert_exactly_one_terminal(&seen);
    // The queue told us it ran, although no socket did.
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::ExecutionStarted { .. })),
        "{:?}",
        seen.iter().map(Event::kind).collect::<Vec<_>>()
    );
    assert!(matches!(
        client.status().state,
        ConnectionState::Polling { .. }
    ));
    assert_eq!(client.stats().reconnects, 0);
    assert!(server.stats().connects_refused >= 1);
    client.close().await;
    server.shutdown().await;
}
