//! A pool over several mocks, checked against each mock's own ledger of
//! what it enqueued and ran.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use comfywire_client::proto::Phase;
use comfywire_mock::{MockConfig, MockServer, TraceSource};
use comfywire_pool::{Pool, PoolConfig, PoolError, PoolEvent, ServerSpec};
use serde_json::Value;

async fn mock(speed: f64) -> MockServer {
    MockServer::start_with(MockConfig {
        port: 0,
        traces: TraceSource::Embedded,
        speed,
        default_scenario: "success_single".into(),
    })
    .await
    .unwrap()
}

async fn pool_over(mocks: &[&MockServer], weights: &[f64], grace: Duration) -> Pool {
    let servers = mocks
        .iter()
        .zip(weights)
        .enumerate()
        .map(|(i, (m, w))| ServerSpec::new(m.url()).label(format!("gpu{i}")).weight(*w))
        .collect();
    let mut config = PoolConfig::new(servers);
    config.grace = grace;
    config.check_interval = Duration::from_millis(100);
    let pool = Pool::start(config).unwrap();
    let healthy = pool
        .wait_healthy(mocks.len(), Duration::from_secs(10))
        .await;
    assert_eq!(healthy, mocks.len());
    pool
}

/// Submits `n` copies of `workflow`, all at once; their ids.
async fn submit_all(pool: &Pool, workflow: &Value, n: usize) -> Vec<String> {
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (pool, workflow) = (pool.clone(), workflow.clone());
            tokio::spawn(async move { pool.submit(&workflow).await })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().unwrap());
    }
    ids
}

/// How many of `ids` each mock enqueued, and the ids run more than once
/// across all of them.
fn ledgers(mocks: &[&MockServer], ids: &[String]) -> (Vec<usize>, Vec<String>) {
    let ledgers: Vec<_> = mocks.iter().map(|m| m.ledger()).collect();
    let counts = ledgers
        .iter()
        .map(|l| ids.iter().filter(|id| l.enqueued(id)).count())
        .collect();
    let twice = ids
        .iter()
        .filter(|id| ledgers.iter().map(|l| l.runs(id)).sum::<u32>() > 1)
        .cloned()
        .collect();
    (counts, twice)
}

/// Waits until `mock` runs one of `ids`.
async fn until_running(mock: &MockServer, ids: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ids.iter().any(|id| mock.ledger().runs(id) > 0) {
        assert!(Instant::now() < deadline, "the server never started one");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_prompts_over_three_equal_servers_end_once_each_and_spread_evenly() {
    let (a, b, c) = (mock(20.0).await, mock(20.0).await, mock(20.0).await);
    let mocks = [&a, &b, &c];
    let pool = pool_over(&mocks, &[1.0, 1.0, 1.0], Duration::from_secs(10)).await;
    // A reader that keeps up: it counts each submission's Finished.
    let mut events = pool.events();
    let reader = tokio::spawn(async move {
        let mut finished: HashMap<String, usize> = HashMap::new();
        let mut skipped = 0;
        while finished.values().sum::<usize>() < 60 {
            match tokio::time::timeout(Duration::from_secs(60), events.recv()).await {
                Ok(Ok(PoolEvent::Finished(o))) => {
                    *finished.entry(o.prompt_id.clone()).or_default() += 1
                }
                Ok(Ok(_)) => {}
                Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(n))) => skipped += n,
                Ok(Err(_)) | Err(_) => break,
            }
        }
        (finished, skipped)
    });
    let ids = submit_all(&pool, &a.sample_workflow(), 60).await;
    let mut by_server: HashMap<String, usize> = HashMap::new();
    for id in &ids {
        let outcome = pool.wait(id, Some(Duration::from_secs(60))).await.unwrap();
        assert_eq!(outcome.status, Phase::Succeeded, "{outcome:?}");
        assert!(outcome.moves.is_empty());
        *by_server.entry(outcome.server.clone()).or_default() += 1;
    }
    // The servers' own record: each prompt enqueued once, on the server
    // the pool names, and run once.
    let (counts, twice) = ledgers(&mocks, &ids);
    assert_eq!(counts.iter().sum::<usize>(), 60, "{counts:?}");
    assert!(twice.is_empty(), "{twice:?}");
    for (i, count) in counts.iter().enumerate() {
        assert_eq!(
            by_server.get(&format!("gpu{i}")).copied().unwrap_or(0),
            *count
        );
    }
    let (most, least) = (*counts.iter().max().unwrap(), *counts.iter().min().unwrap());
    assert!(
        least > 0 && most as f64 <= 1.5 * least as f64,
        "spread {counts:?}"
    );
    // One Finished per submission on the event stream, none twice.
    let (finished, skipped) = reader.await.unwrap();
    assert_eq!(skipped, 0, "the reader fell behind");
    assert_eq!(finished.len(), 60);
    assert!(finished.values().all(|n| *n == 1), "{finished:?}");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_follows_the_weights() {
    let (a, b) = (mock(20.0).await, mock(20.0).await);
    let mocks = [&a, &b];
    let pool = pool_over(&mocks, &[1.0, 3.0], Duration::from_secs(10)).await;
    let ids = submit_all(&pool, &a.sample_workflow(), 40).await;
    for id in &ids {
        let outcome = pool.wait(id, Some(Duration::from_secs(60))).await.unwrap();
        assert!(outcome.succeeded(), "{outcome:?}");
    }
    let (counts, twice) = ledgers(&mocks, &ids);
    assert!(twice.is_empty());
    assert_eq!(counts[0] + counts[1], 40);
    // 1:3 of 40 is 10:30.
    assert!((6..=14).contains(&counts[0]), "{counts:?}");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_missing_a_node_class_never_gets_that_workflow() {
    let (a, b, c) = (mock(20.0).await, mock(20.0).await, mock(20.0).await);
    let workflow = a.sample_workflow();
    let class = workflow
        .as_object()
        .unwrap()
        .values()
        .find_map(|n| n["class_type"].as_str().filter(|c| c.starts_with("Test")))
        .unwrap()
        .to_owned();
    a.hide_node_class(&class);
    b.hide_node_class(&class);
    let mocks = [&a, &b, &c];
    let pool = pool_over(&mocks, &[1.0, 1.0, 1.0], Duration::from_secs(10)).await;
    let ids = submit_all(&pool, &workflow, 9).await;
    for id in &ids {
        let outcome = pool.wait(id, Some(Duration::from_secs(60))).await.unwrap();
        assert_eq!(
            (outcome.server.as_str(), outcome.status),
            ("gpu2", Phase::Succeeded)
        );
    }
    let (counts, _) = ledgers(&mocks, &ids);
    assert_eq!(counts, vec![0, 0, 9]);
    // Once no server has it: a typed error naming the class, and nothing
    // enqueued anywhere. (The restart drops the sockets, so the pool reads
    // the node classes again.)
    c.hide_node_class(&class);
    c.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    let error = loop {
        match pool.submit(&workflow).await {
            Err(e @ PoolError::MissingNodeClasses { .. }) => break e,
            Err(_) | Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("{other:?}"),
        }
    };
    assert!(
        matches!(&error, PoolError::MissingNodeClasses { missing, .. } if missing == &vec![class.clone()]),
        "{error}"
    );
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_gives_its_queued_prompts_to_the_others_and_loses_its_running_one() {
    let (a, b, c) = (mock(2.0).await, mock(2.0).await, mock(2.0).await);
    let pool = pool_over(&[&a, &b, &c], &[1.0, 1.0, 1.0], Duration::from_secs(1)).await;
    let ids = submit_all(&pool, &a.sample_workflow(), 12).await;
    until_running(&a, &ids).await;
    let on_a: Vec<String> = {
        let ledger = a.ledger();
        ids.iter()
            .filter(|id| ledger.enqueued(id))
            .cloned()
            .collect()
    };
    assert!(on_a.len() >= 2, "gpu0 had {on_a:?}");
    a.shutdown().await;
    let mut lost = Vec::new();
    for id in &ids {
        let outcome = pool.wait(id, Some(Duration::from_secs(60))).await.unwrap();
        match outcome.status {
            Phase::Lost => {
                assert!(on_a.contains(id), "{outcome:?}");
                assert!(
                    outcome.lost_reason.as_deref().unwrap().contains("gpu0"),
                    "{outcome:?}"
                );
                lost.push(id.clone());
            }
            Phase::Succeeded if on_a.contains(id) => {
                // Queued on gpu0: moved, and run elsewhere.
                assert_eq!(outcome.moves.len(), 1, "{outcome:?}");
                assert_eq!(outcome.moves[0].from, "gpu0");
                assert_ne!(outcome.server, "gpu0");
            }
            Phase::Succeeded => assert!(outcome.moves.is_empty()),
            other => panic!("{id} ended {other:?}: {outcome:?}"),
        }
    }
    // Only the one gpu0 was running when it died is lost.
    assert_eq!(lost.len(), 1, "{lost:?}");
    // No prompt ran twice, by the surviving servers' own records (gpu0
    // ran at most the lost one: it ran one at a time and then died).
    let (_, twice) = ledgers(&[&b, &c], &ids);
    assert!(twice.is_empty(), "{twice:?}");
    for id in &ids {
        let elsewhere = b.ledger().runs(id) + c.ledger().runs(id);
        assert!(
            !(lost.contains(id) && elsewhere > 0),
            "{id} lost yet ran elsewhere"
        );
    }
    let stats = pool.stats();
    assert!(!stats[0].healthy);
    assert_eq!(stats[0].failed_over as usize, on_a.len() - 1, "{stats:?}");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_restarts_loses_our_queue_and_the_pool_moves_it() {
    let (a, b) = (mock(2.0).await, mock(2.0).await);
    let mocks = [&a, &b];
    let pool = pool_over(&mocks, &[1.0, 1.0], Duration::from_secs(10)).await;
    let ids = submit_all(&pool, &a.sample_workflow(), 8).await;
    until_running(&a, &ids).await;
    let before = a.ledger();
    a.restart();
    let mut moved = 0;
    for id in &ids {
        let outcome = pool.wait(id, Some(Duration::from_secs(60))).await.unwrap();
        if before.enqueued(id) && before.runs(id) == 0 {
            // Queued on gpu0 when it restarted and forgot it: run on gpu1.
            assert_eq!(outcome.status, Phase::Succeeded, "{outcome:?}");
            assert_eq!(outcome.server, "gpu1", "{outcome:?}");
            assert_eq!(outcome.moves.len(), 1);
            moved += 1;
        }
    }
    assert!(moved >= 1);
    let (_, twice) = ledgers(&mocks, &ids);
    assert!(twice.is_empty(), "{twice:?}");
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_comes_back_gives_up_the_prompts_that_moved() {
    // gpu0 is slow, so prompts wait in its queue, and sits behind a proxy
    // that can take it off the network; gpu1 is fast.
    let (a, b) = (mock(0.1).await, mock(20.0).await);
    let proxy = comfywire_faults::proxy::FaultProxy::start(a.addr())
        .await
        .unwrap();
    let mut config = PoolConfig::new(vec![
        ServerSpec::new(proxy.url()).label("gpu0"),
        ServerSpec::new(b.url()).label("gpu1"),
    ]);
    config.grace = Duration::from_secs(1);
    config.check_interval = Duration::from_millis(100);
    let pool = Pool::start(config).unwrap();
    assert_eq!(pool.wait_healthy(2, Duration::from_secs(10)).await, 2);
    let ids = submit_all(&pool, &a.sample_workflow(), 6).await;
    until_running(&a, &ids).await;
    let queued_on_a: Vec<String> = {
        let ledger = a.ledger();
        ids.iter()
            .filter(|id| ledger.enqueued(id) && ledger.runs(id) == 0)
            .cloned()
            .collect()
    };
    assert!(!queued_on_a.is_empty(), "nothing waited on gpu0");
    // gpu0 drops off the network (HTTP and socket) for a while; its
    // queue, behind the proxy, stays.
    proxy.outage(4_000);
    for id in &queued_on_a {
        let outcome = pool.wait(id, Some(Duration::from_secs(60))).await.unwrap();
        assert_eq!(
            (outcome.status, outcome.server.as_str()),
            (Phase::Succeeded, "gpu1")
        );
        assert_eq!(outcome.moves[0].from, "gpu0");
    }
    // Back, gpu0 no longer holds them: deleted by the pool before their
    // turn came, so none ran twice.
    let deadline = Instant::now() + Duration::from_secs(30);
    while queued_on_a.iter().any(|id| a.queue_holds(id)) {
        assert!(Instant::now() < deadline, "gpu0 still holds moved prompts");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in &queued_on_a {
        assert_eq!(a.ledger().runs(id), 0, "{id} ran on gpu0 too");
        assert_eq!(b.ledger().runs(id), 1);
    }
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_drops_while_http_answers_moves_nothing() {
    let (a, b) = (mock(0.5).await, mock(20.0).await);
    let mocks = [&a, &b];
    let pool = pool_over(&mocks, &[1.0, 1.0], Duration::from_secs(1)).await;
    let ids = submit_all(&pool, &a.sample_workflow(), 4).await;
    until_running(&a, &ids).await;
    // The socket stays away for several retries; HTTP keeps answering.
    a.inject(comfywire_mock::Fault::RefuseConnects { count: 3 });
    a.inject(comfywire_mock::Fault::DropSocketsNow);
    for id in &ids {
        let outcome = pool.wait(id, Some(Duration::from_secs(60))).await.unwrap();
        assert_eq!(outcome.status, Phase::Succeeded, "{outcome:?}");
        assert!(outcome.moves.is_empty(), "{outcome:?}");
    }
    let (_, twice) = ledgers(&mocks, &ids);
    assert!(twice.is_empty(), "{twice:?}");
    pool.close().await;
}
