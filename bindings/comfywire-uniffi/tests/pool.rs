//! The Rust side of the `Pool` binding over three mocks, without a foreign
//! runtime: built from `PoolServer`s and `PoolOptions`, a batch ends once
//! per prompt on the server the mocks' own ledgers name, the pull queue's
//! records carry their server, figures agree, a node class no server has
//! is `Validation` naming it, and a shut-down pool refuses calls with
//! `Closed`. The pool's rules are the host's (`comfywire-host`'s
//! `tests/pool.rs`); this checks the mapping.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use comfywire_mock::{MockConfig, MockServer, TraceSource};
use comfywire_uniffi::{ComfyError, Pool, PoolOptions, PoolServer};

fn mock(rt: &tokio::runtime::Runtime) -> MockServer {
    rt.block_on(MockServer::start_with(MockConfig {
        port: 0,
        traces: TraceSource::Embedded,
        speed: 20.0,
        default_scenario: "success_single".into(),
    }))
    .unwrap()
}

/// A plain executor, unrelated to the host runtime, like a foreign one.
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

#[test]
fn a_batch_over_three_servers_ends_once_each_where_the_ledgers_say() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let mocks = [mock(&rt), mock(&rt), mock(&rt)];
    let servers = mocks
        .iter()
        .enumerate()
        .map(|(i, m)| PoolServer {
            url: m.url(),
            label: Some(format!("gpu{i}")),
            weight: None,
            token: None,
        })
        .collect();
    let options = PoolOptions {
        grace_ms: Some(10_000),
        ..PoolOptions::default()
    };
    let pool = Pool::new(servers, options).unwrap();
    assert_eq!(pool.labels(), ["gpu0", "gpu1", "gpu2"]);
    assert_eq!(block_on(pool.wait_healthy(3, 10_000)).unwrap(), 3);
    // The first pull starts the queue; what a server said since it came up
    // (a late `status`) may be there already: taken until none is left.
    let mut early = 0;
    while pool.next_event(0).unwrap().is_some() && early < 100 {
        early += 1;
    }
    assert!(early < 100, "the pull queue never emptied");

    let workflow = mocks[0].sample_workflow().to_string();
    let ids: Vec<String> = (0..12)
        .map(|_| block_on(pool.submit(workflow.clone())).unwrap())
        .collect();
    let mut by_server: HashMap<String, usize> = HashMap::new();
    for id in &ids {
        let outcome = block_on(pool.wait(id.clone(), Some(Duration::from_secs(60)))).unwrap();
        assert_eq!(outcome.status.name(), "succeeded");
        assert_eq!(outcome.servers, std::slice::from_ref(&outcome.server));
        assert!(outcome.moves.is_empty());
        assert_eq!(outcome.outcome.as_ref().unwrap().prompt_id, *id);
        *by_server.entry(outcome.server).or_default() += 1;
    }
    let ledgers: Vec<_> = mocks.iter().map(MockServer::ledger).collect();
    for id in &ids {
        assert_eq!(ledgers.iter().filter(|l| l.enqueued(id)).count(), 1);
        assert_eq!(ledgers.iter().map(|l| l.runs(id)).sum::<u32>(), 1);
    }
    for (i, ledger) in ledgers.iter().enumerate() {
        let here = ids.iter().filter(|id| ledger.enqueued(id)).count();
        assert!(here > 0, "gpu{i} got nothing");
        assert_eq!(by_server.get(&format!("gpu{i}")).copied(), Some(here));
    }

    let mut finished = HashMap::new();
    let mut tagged = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while finished.len() < ids.len() && Instant::now() < deadline {
        let Some(event) = pool.next_event(5_000).unwrap() else {
            break;
        };
        assert!(event.server.starts_with("gpu"), "{event:?}");
        match (&event.outcome, event.kind.as_str()) {
            // The pool's one `finished` of a submission.
            (Some(outcome), kind) => {
                assert_eq!(kind, "finished");
                assert_eq!(outcome.server, event.server);
                *finished.entry(outcome.prompt_id.clone()).or_insert(0) += 1;
            }
            (None, "moved") => panic!("nothing moved: {event:?}"),
            (None, kind) => {
                assert_eq!(event.event.as_ref().unwrap().kind.name(), kind);
                tagged += 1;
            }
        }
    }
    assert_eq!(finished.len(), ids.len());
    assert!(finished.values().all(|n| *n == 1));
    assert!(tagged > 0);
    let stats = pool.stats();
    assert_eq!(stats.iter().map(|s| s.done).sum::<u64>(), 12);
    assert!(stats.iter().all(|s| s.healthy && s.in_flight == 0));

    // A class no server has: refused, naming it, before any submission.
    let missing = r#"{"1": {"class_type": "NoSuchNodeAnywhere", "inputs": {}}}"#;
    match block_on(pool.submit(missing.into())) {
        Err(ComfyError::Validation { detail, .. }) => {
            let detail = detail.unwrap();
            assert_eq!(detail["missing"][0], "NoSuchNodeAnywhere", "{detail}");
        }
        other => panic!("{other:?}"),
    }

    pool.shutdown();
    pool.shutdown();
    assert!(matches!(
        block_on(pool.submit(workflow)),
        Err(ComfyError::Closed { .. })
    ));
    assert!(matches!(pool.next_event(0), Err(ComfyError::Closed { .. })));
}

#[test]
fn bad_configurations_are_config_errors() {
    assert!(matches!(
        Pool::new(Vec::new(), PoolOptions::default()),
        Err(ComfyError::Config { .. })
    ));
    let twice = |label: &str| PoolServer {
        url: "http://127.0.0.1:9".into(),
        label: Some(label.into()),
        weight: None,
        token: None,
    };
    assert!(matches!(
        Pool::new(vec![twice("a"), twice("a")], PoolOptions::default()),
        Err(ComfyError::Config { .. })
    ));
    let heavy = PoolServer {
        weight: Some(0.0),
        ..twice("b")
    };
    assert!(matches!(
        Pool::new(vec![heavy], PoolOptions::default()),
        Err(ComfyError::Config { .. })
    ));
    assert!(matches!(
        Pool::from_settings_json(r#"{"url": "http://127.0.0.1:9"}"#.into()),
        Err(ComfyError::Config { .. })
    ));
    let settings =
        r#"{"servers": [{"url": "http://127.0.0.1:9", "label": "x"}], "pool_grace_s": 1}"#;
    let pool = Pool::from_settings_json(settings.into()).unwrap();
    assert_eq!(pool.labels(), ["x"]);
    drop(pool);
}
