//! A socket cut mid-run: the client reconnects, reconciles over /history and
//! delivers the missed outputs and the terminal event exactly once.
#![allow(clippy::unwrap_used)]

mod common;

use comfywire_client::{Event, Phase};
use comfywire_mock::Fault;

#[tokio::test]
async fn a_drop_mid_run_still_ends_in_success_with_all_outputs() {
    let server = common::mock(5.0).await;
    let client = common::client(&server).await;
    let mut events = client.events();
    // 30 frames in: past the first steps, before the outputs.
    server.inject(Fault::DropSocketsAfterFrames { frames: 30 });
    let result = client
        .run(&server.workflow("long_run").unwrap())
        .await
        .unwrap();
    assert_eq!(result.record.phase, Phase::Succeeded);
    assert!(result.record.had_gap);
    let history = common::server_history(&client, result.prompt_id()).await;
    assert_eq!(&history["outputs"], &result.outputs().to_value());
    let seen = common::collect_until(&mut events, |e| matches!(e, Event::Finished(_))).await;
    common::assert_exactly_one_terminal(&seen);
    let outputs = seen
        .iter()
        .filter(|e| matches!(e, Event::Output { .. }))
        .count();
    assert_eq!(
        outputs,
        result.outputs().len(),
        "each output delivered once"
    );
    assert!(client.stats().reconnects >= 1);
    client.close().await;
}

#[tokio::test]
async fn a_server_restart_turns_the_prompt_into_lost_instead_of_a_hang() {
    let server = common::mock(2.0).await;
    let client = common::client(&server).await;
    let mut events = client.on(&[comfywire_client::EventKind::Progress]);
    let prompt = client
        .submit(&server.workflow("long_run").unwrap())
        .await
        .unwrap();
    common::collect_until(&mut events, |e| matches!(e, Event::Progress(_))).await;
    server.restart();
    let err = client
        .wait(&prompt.prompt_id, Default::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, comfywire_client::Error::Lost { reason, .. } if reason.contains("restart")),
        "{err:?}"
    );
    assert_eq!(err.code(), 13);
    client.close().await;
}

#[tokio::test]
async fn a_deaf_socket_is_replaced_and_the_prompt_finishes() {
    let server = common::mock(5.0).await;
    let mut config = common::config(&server.url());
    config.session.deaf_timeout = Some(std::time::Duration::from_millis(500));
    let client = comfywire_client::Client::connect(config).await.unwrap();
    client
        .wait_connected(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let mut events = client.events();
    let prompt = client
        .submit(&server.workflow("long_run").unwrap())
        .await
        .unwrap();
    common::collect_until(&mut events, |e| matches!(e, Event::Progress(_))).await;
    server.inject(Fault::Deaf);
    let result = client
        .wait(&prompt.prompt_id, Default::default())
        .await
        .unwrap();
    assert_eq!(result.record.phase, Phase::Succeeded);
    let seen = common::collect_until(&mut events, |e| matches!(e, Event::Finished(_))).await;
    assert!(seen.iter().any(|e| matches!(e, Event::Connection(s) if matches!(s.last_error, Some(comfywire_client::ConnectionError::Deaf { .. })))));
    common::assert_exactly_one_terminal(&seen);
    client.close().await;
}

/// With the default timers (no short watchdog), a socket the server went
/// deaf on mid-run costs seconds, not the 30 s watchdog: the outcome
/// arrives at most 5 s after the server wrote it (its own history is the
/// clock), and live events flow again on the new socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deaf_socket_costs_seconds_and_live_events_resume() {
    let server = std::sync::Arc::new(common::mock(1.0).await);
    let config = comfywire_client::ClientConfig::new(server.url());
    let client = comfywire_client::Client::connect(config).await.unwrap();
    client
        .wait_connected(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    let mut events = client.events();
    let prompt = client
        .submit(&server.workflow("success_single").unwrap())
        .await
        .unwrap();
    common::collect_until(&mut events, |e| matches!(e, Event::Progress(_))).await;
    server.inject(Fault::Deaf);
    // The server's own clock: when its history entry appears.
    let watched = server.clone();
    let id = prompt.prompt_id.clone();
    let written = tokio::spawn(async move {
        loop {
            if watched.history_entry(&id).is_some() {
                return std::time::Instant::now();
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    });
    let result = client
        .wait(&prompt.prompt_id, Default::default())
        .await
        .unwrap();
    let heard = std::time::Instant::now();
    assert_eq!(result.record.phase, Phase::Succeeded);
    let written = written.await.unwrap();
    let late = heard.saturating_duration_since(written);
    assert!(
        late <= std::time::Duration::from_secs(5),
        "outcome {late:?} after the server's"
    );
    // Live again: a new prompt's progress arrives on the new socket.
    let next = client
        .submit(&server.workflow("success_single").unwrap())
        .await
        .unwrap();
    let seen = common::collect_until(
        &mut events,
        |e| matches!(e, Event::Finished(r) if r.prompt_id == next.prompt_id),
    )
    .await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, Event::Progress(p) if *p.prompt_id == *next.prompt_id)),
        "no live progress after the deaf socket was replaced"
    );
    client.close().await;
}
