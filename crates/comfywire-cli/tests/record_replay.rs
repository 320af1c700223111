//! `comfywire record` writes a trace that `comfywire replay` reads back to
//! the same outcome.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use comfywire_client::{Client, ClientConfig};
use serde_json::Value;

#[test]
fn recorded_session_replays_to_success() {
    let mock = common::Mock::start(5.0);
    let dir = common::temp_dir("record");
    let trace = dir.join("session.jsonl");
    // The recorder's socket is the latest one of this client id, so it
    // gets the prompt's frames.
    let submitter = mock
        .rt
        .block_on(Client::connect(ClientConfig {
            client_id: Some("recorded".into()),
            ..ClientConfig::new(mock.url())
        }))
        .unwrap();
    mock.rt
        .block_on(submitter.wait_connected(Duration::from_secs(10)))
        .unwrap();
    let mut cmd = common::comfywire(&dir);
    cmd.args(["record", "--url", &mock.url(), "--client-id", "recorded"])
        .arg(&trace);
    let mut child = cmd.spawn().unwrap();
    let mut err = common::Lines::of(child.stderr.take().unwrap());
    err.until("recording", Duration::from_secs(10));
    // The recorder's socket must be open on the server before the prompt
    // is submitted, or its frames go to the submitter's socket.
    common::eventually(Duration::from_secs(10), "the recorder's socket", || {
        mock.server.stats().connections_accepted >= 2
    });
    let submitted = mock
        .rt
        .block_on(submitter.submit(&mock.server.sample_workflow()))
        .unwrap();
    // The submitter's own socket gets no frames (the recorder's socket
    // took its client id), so watch the server's history instead; the
    // prompt's last frames are on their way once its entry is there.
    common::eventually(Duration::from_secs(20), "the prompt's end", || {
        mock.rt
            .block_on(submitter.server_history(&submitted.prompt_id))
            .unwrap()
            .is_some()
    });
    common::sigint(&child);
    let code = common::wait(&mut child, Duration::from_secs(20));
    assert_eq!(code, 0, "{:#?}", err.rest(Duration::from_secs(1)));
    let entry = mock
        .rt
        .block_on(submitter.server_history(&submitted.prompt_id))
        .unwrap()
        .unwrap();
    assert_eq!(entry["status"]["status_str"], "success");

    let text = std::fs::read_to_string(&trace).unwrap();
    let meta: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(meta["meta"]["client_id"], "recorded");
    assert_eq!(meta["meta"]["prompt_ids"][0], submitted.prompt_id.as_str());
    assert!(text.contains("\"kind\":\"binary\"") || text.contains("\"kind\": \"binary\""));

    let mut cmd = common::comfywire(&dir);
    cmd.arg("replay").arg(&trace).arg("--json");
    let done = common::run(cmd, Duration::from_secs(20));
    assert_eq!(done.code, 0, "{}", done.stderr);
    let outcome: Value = done
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["event"] == "outcome")
        .unwrap();
    assert_eq!(outcome["prompt_id"], submitted.prompt_id.as_str());
    assert_eq!(outcome["outcome"], "succeeded");
    assert_eq!(outcome["matches"], true);
    mock.rt.block_on(submitter.close());
}
