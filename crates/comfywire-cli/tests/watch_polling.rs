//! `comfywire watch` through a server that refuses WebSockets: it says
//! so once, goes on by polling, and shows another client's prompt queued
//! and finished (from `/queue` and `/history`), with its outputs.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use comfywire_client::{Client, ClientConfig};
use comfywire_mock::Fault;
use serde_json::Value;

#[test]
fn watch_shows_queue_changes_and_finished_prompts_by_polling() {
    // Half speed: the prompt runs about 4 s, so the watcher's polls (every
    // 1 to 2 s) see it in the queue. One that comes and goes between two
    // polls is not seen: polling reads the queue, not every event.
    let mock = common::Mock::start(0.5);
    mock.server.inject(Fault::BlockWebSockets {
        status: 403,
        millis: None,
    });
    let dir = common::temp_dir("watch-polling");
    let mut cmd = common::comfywire(&dir);
    cmd.args(["watch", "--json", "--url", &mock.url()]);
    let mut child = cmd.spawn().unwrap();
    let mut out = common::Lines::of(child.stdout.take().unwrap());
    out.until("\"polling\"", Duration::from_secs(20));
    // Another client submits over HTTP (its socket is refused too).
    let submitter = mock
        .rt
        .block_on(Client::connect(ClientConfig::new(mock.url())))
        .unwrap();
    let submitted = mock
        .rt
        .block_on(submitter.submit(&mock.server.workflow("long_run").unwrap()))
        .unwrap();
    let finished = out.until("\"finished\"", Duration::from_secs(30));
    common::sigint(&child);
    let code = common::wait(&mut child, Duration::from_secs(10));
    mock.rt.block_on(submitter.close());
    assert_eq!(code, 0);
    let finished: Value = serde_json::from_str(&finished).unwrap();
    assert_eq!(finished["prompt_id"], submitted.prompt_id.as_str());
    assert_eq!(finished["outcome"], "succeeded");
    let history = mock.server.history_entry(&submitted.prompt_id).unwrap();
    assert_eq!(finished["outputs"], history["outputs"]);
    let events: Vec<Value> = out
        .rest(Duration::from_secs(1))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let of_it = |kind: &str| {
        events
            .iter()
            .any(|e| e["event"] == kind && e["prompt_id"] == submitted.prompt_id.as_str())
    };
    assert!(of_it("prompt_queued"), "{events:#?}");
    // Queue changes: the count went up and back down to 0.
    let counts: Vec<u64> = events
        .iter()
        .filter(|e| e["event"] == "status")
        .filter_map(|e| e["queue_remaining"].as_u64())
        .collect();
    assert!(
        counts.contains(&1) && counts.last() == Some(&0),
        "{counts:?}"
    );
    let polling = events
        .iter()
        .filter(|e| e["event"] == "connection" && e["state"] == "polling")
        .count();
    assert!(polling >= 1);
}

#[test]
fn watch_says_once_that_websockets_are_blocked() {
    let mock = common::Mock::start(2.0);
    mock.server.inject(Fault::BlockWebSockets {
        status: 403,
        millis: None,
    });
    let dir = common::temp_dir("watch-polling-text");
    let mut cmd = common::comfywire(&dir);
    // Retries every 50 ms: many refused upgrades while it watches.
    common::write_json(
        &dir,
        "config.json",
        &serde_json::json!({"backoff_initial_s": 0.05, "backoff_max_s": 0.05}),
    );
    cmd.args(["watch", "--url", &mock.url()]);
    let mut child = cmd.spawn().unwrap();
    let mut out = common::Lines::of(child.stdout.take().unwrap());
    out.until(
        "WebSockets blocked (HTTP 403 Forbidden): polling",
        Duration::from_secs(20),
    );
    common::eventually(Duration::from_secs(20), "ten refused upgrades", || {
        mock.server.stats().connects_refused >= 10
    });
    common::sigint(&child);
    let code = common::wait(&mut child, Duration::from_secs(10));
    assert_eq!(code, 0);
    let lines = out.rest(Duration::from_secs(1));
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.contains("WebSockets blocked"))
            .count(),
        1,
        "{lines:#?}"
    );
    // The socket's retries are quiet once polling is said.
    let after: Vec<&String> = lines
        .iter()
        .skip_while(|l| !l.contains("WebSockets blocked"))
        .collect();
    assert!(
        !after.iter().any(|l| l.contains("connecting")),
        "{lines:#?}"
    );
}
