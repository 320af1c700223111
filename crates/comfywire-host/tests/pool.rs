//! `HostPool` over three mocks, from settings JSON with `servers`: every
//! submission ends once, on the server the mocks' own ledgers name, and
//! the pull queue, the figures, the errors and close follow.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use comfywire_host::event::Phase;
use comfywire_host::{ErrorCode, HostPool, HostPoolEvent, block_on};
use comfywire_mock::MockServer;
use common::mock;
use serde_json::json;

/// A pool over `mocks` labelled `gpu0`, `gpu1`, ..., from settings JSON.
fn pool_over(mocks: &[&MockServer]) -> HostPool {
    let servers: Vec<_> = mocks
        .iter()
        .enumerate()
        .map(|(i, m)| json!({"url": m.url(), "label": format!("gpu{i}")}))
        .collect();
    let settings = json!({"servers": servers, "pool_grace_s": 10}).to_string();
    let pool = HostPool::from_settings_json(&settings, None).unwrap();
    let healthy = block_on(pool.wait_healthy(mocks.len(), Duration::from_secs(10))).unwrap();
    assert_eq!(healthy, mocks.len());
    pool
}

#[test]
fn a_batch_over_three_servers_ends_once_each_where_the_ledgers_say() {
    let (_a_rt, a) = mock(20.0);
    let (_b_rt, b) = mock(20.0);
    let (_c_rt, c) = mock(20.0);
    let mocks = [&a, &b, &c];
    let pool = pool_over(&mocks);
    assert_eq!(pool.labels(), ["gpu0", "gpu1", "gpu2"]);
    // The pull queue starts with the first pull: before any submission.
    // The first pull starts the queue; what a server said since it came up
    // (a late `status`) may be there already: taken until none is left.
    let mut early = 0;
    while pool.next_event(Duration::ZERO).unwrap().is_some() && early < 100 {
        early += 1;
    }
    assert!(early < 100, "the pull queue never emptied");

    let workflow = a.sample_workflow();
    let ids: Vec<String> = (0..30)
        .map(|_| block_on(pool.submit(workflow.clone())).unwrap())
        .collect();
    let mut by_server: HashMap<String, usize> = HashMap::new();
    for id in &ids {
        let outcome = block_on(pool.wait(id, Some(Duration::from_secs(60)))).unwrap();
        assert_eq!(outcome.status, Phase::Succeeded, "{outcome:?}");
        assert_eq!(outcome.servers, std::slice::from_ref(&outcome.server));
        assert!(outcome.moves.is_empty());
        let record = outcome.outcome.as_ref().unwrap();
        assert_eq!(record.prompt_id, *id);
        assert!(!record.files().is_empty());
        assert_eq!(outcome.to_json()["server"], outcome.server.as_str());
        *by_server.entry(outcome.server).or_default() += 1;
    }

    // Each mock's own ledger: every prompt enqueued and run once, on the
    // server its outcome names; every server got some.
    let ledgers: Vec<_> = mocks.iter().map(|m| m.ledger()).collect();
    for id in &ids {
        let on: Vec<usize> = (0..3).filter(|&i| ledgers[i].enqueued(id)).collect();
        assert_eq!(on.len(), 1, "{id} enqueued on {on:?}");
        let runs: u32 = ledgers.iter().map(|l| l.runs(id)).sum();
        assert_eq!(runs, 1, "{id} ran {runs} times");
    }
    for (i, ledger) in ledgers.iter().enumerate() {
        let here = ids.iter().filter(|id| ledger.enqueued(id)).count();
        assert!(here > 0, "gpu{i} got nothing");
        assert_eq!(by_server.get(&format!("gpu{i}")).copied(), Some(here));
    }

    // The pull queue: one `finished` per submission, tagged with the
    // server it ended on; server events tagged too.
    let mut finished: HashMap<String, (usize, String)> = HashMap::new();
    let mut tagged = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while finished.len() < ids.len() && Instant::now() < deadline {
        match pool.next_event(Duration::from_secs(5)).unwrap() {
            Some(event @ HostPoolEvent::Finished(_)) => {
                let record = event.to_record();
                let o = record.outcome.unwrap();
                assert_eq!(
                    (record.kind.as_str(), &record.server),
                    ("finished", &o.server)
                );
                let entry = finished.entry(o.prompt_id.clone()).or_default();
                entry.0 += 1;
                entry.1 = o.server.clone();
            }
            Some(event @ HostPoolEvent::Server { .. }) => {
                assert!(event.server().starts_with("gpu"));
                assert_eq!(event.to_json()["server"], event.server());
                assert_ne!(event.kind(), "finished");
                // The flat record: the server's event, tagged.
                let record = event.to_record();
                assert_eq!(record.server, event.server());
                assert_eq!(record.kind, event.kind());
                assert_eq!(
                    record.event.as_ref().map(|e| e.kind.name()),
                    Some(event.kind())
                );
                assert_eq!(record.prompt_id.as_deref(), event.prompt_id());
                assert!(record.moved.is_none() && record.outcome.is_none());
                tagged += 1;
            }
            Some(HostPoolEvent::Moved { .. }) => panic!("nothing moved"),
            None => break,
        }
    }
    assert_eq!(pool.skipped_events(), 0);
    assert_eq!(finished.len(), ids.len());
    assert!(finished.values().all(|(n, _)| *n == 1));
    for (i, ledger) in ledgers.iter().enumerate() {
        for (id, (_, server)) in &finished {
            assert_eq!(ledger.enqueued(id), *server == format!("gpu{i}"));
        }
    }
    assert!(tagged > 0);

    // The figures: nothing in flight, 30 done, all healthy.
    let stats = pool.stats();
    assert_eq!(stats.iter().map(|s| s.done).sum::<u64>(), 30);
    assert!(stats.iter().all(|s| s.healthy && s.in_flight == 0));
    assert_eq!(pool.stats_json().as_array().unwrap().len(), 3);

    block_on(async {
        pool.close().await;
        Ok(())
    })
    .unwrap();
    let closed = block_on(pool.submit(workflow)).unwrap_err();
    assert_eq!(closed.code, ErrorCode::Closed);
    assert_eq!(
        pool.next_event(Duration::ZERO).unwrap_err().code,
        ErrorCode::Closed
    );
}

#[test]
fn errors_name_what_is_wrong() {
    let (_rt, a) = mock(1.0);
    let pool = pool_over(&[&a]);
    // No server has a class the workflow uses: refused before any
    // submission, naming the class.
    let workflow = a.sample_workflow();
    let class = workflow
        .as_object()
        .unwrap()
        .values()
        .find_map(|n| n["class_type"].as_str().filter(|c| c.starts_with("Test")))
        .unwrap()
        .to_owned();
    a.hide_node_class(&class);
    let missing = block_on(pool.submit(workflow)).unwrap_err();
    assert_eq!(missing.code, ErrorCode::Validation, "{missing:?}");
    let detail = missing.detail.unwrap();
    assert_eq!(detail["missing"], json!([class]), "{detail}");
    assert_eq!(detail["server"], "gpu0");
    assert_eq!(a.ledger().entries.len(), 0);
    block_on(async {
        pool.close().await;
        Ok(())
    })
    .unwrap();
    let (_b_rt, b) = mock(1.0);
    let pool = pool_over(&[&b]);
    // An unknown id, and a wait's own time limit (the prompt goes on).
    let unknown = block_on(pool.wait("nope", None)).unwrap_err();
    assert_eq!(unknown.code, ErrorCode::InvalidArgument);
    let id = block_on(pool.submit(b.sample_workflow())).unwrap();
    let early = block_on(pool.wait(&id, Some(Duration::from_millis(1)))).unwrap_err();
    assert_eq!(early.code, ErrorCode::Timeout);
    let outcome = block_on(pool.outcome(&id, Some(Duration::from_secs(60)))).unwrap();
    assert!(outcome.succeeded());
    assert_eq!(b.ledger().runs(&id), 1);
    // Settings without servers are refused.
    let none = HostPool::from_settings_json(r#"{"url": "http://127.0.0.1:9"}"#, None).unwrap_err();
    assert_eq!(none.code, ErrorCode::Config);
    // The blocking close, from a plain thread and (in the background)
    // from a runtime thread; both idempotent.
    pool.close_blocking();
    assert!(pool.is_closed());
    pool.close_blocking();
    let late = block_on(pool.submit(b.sample_workflow())).unwrap_err();
    assert_eq!(late.code, ErrorCode::Closed);
    let (_c_rt, c) = mock(1.0);
    let other = pool_over(&[&c]);
    let inside = other.clone();
    let closed_inside = comfywire_host::runtime()
        .unwrap()
        .block_on(async move {
            tokio::spawn(async move {
                inside.close_blocking();
                inside.is_closed()
            })
            .await
        })
        .unwrap();
    assert!(closed_inside, "closed at once on a runtime thread");
    let refused = block_on(other.submit(c.sample_workflow())).unwrap_err();
    assert_eq!(refused.code, ErrorCode::Closed);
}
