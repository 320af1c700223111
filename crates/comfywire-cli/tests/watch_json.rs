//! `comfywire watch --json` prints one JSON object per line.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use comfywire_client::{Client, ClientConfig};
use serde_json::Value;

#[test]
fn watch_json_lines_parse() {
    let mock = common::Mock::start(5.0);
    let dir = common::temp_dir("watch");
    // The server sends a prompt's frames to the socket of the prompt's
    // client id, and the latest socket of an id wins: submit with an id
    // whose socket is the watcher's.
    let submitter = mock
        .rt
        .block_on(Client::connect(ClientConfig {
            client_id: Some("watched".into()),
            ..ClientConfig::new(mock.url())
        }))
        .unwrap();
    mock.rt
        .block_on(submitter.wait_connected(Duration::from_secs(10)))
        .unwrap();
    let mut cmd = common::comfywire(&dir);
    cmd.env("COMFYWIRE_CLIENT_ID", "watched")
        .args(["watch", "--json", "--url", &mock.url()]);
    let mut child = cmd.spawn().unwrap();
    let mut out = common::Lines::of(child.stdout.take().unwrap());
    out.until("\"status\"", Duration::from_secs(20));
    let submitted = mock
        .rt
        .block_on(submitter.submit(&mock.server.sample_workflow()))
        .unwrap();
    out.until("\"finished\"", Duration::from_secs(30));
    common::sigint(&child);
    let code = common::wait(&mut child, Duration::from_secs(10));
    assert_eq!(code, 0);
    let lines = out.rest(Duration::from_secs(2));
    let events: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events.iter().all(|e| e["event"].is_string()));
    assert!(events.iter().all(|e| e.get("prompt_id").is_some()));
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "connection" && e["state"] == "connected")
    );
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "progress" && e["prompt_id"] == submitted.prompt_id.as_str())
    );
    let finished = events.iter().find(|e| e["event"] == "finished").unwrap();
    assert_eq!(finished["prompt_id"], submitted.prompt_id.as_str());
    assert_eq!(finished["outcome"], "succeeded");
    mock.rt.block_on(submitter.close());
}
