//! `comfywire wait ID` follows a prompt another client submitted, and
//! `comfywire resume` finishes what a `run` killed with SIGKILL left in
//! its journal (by default next to the settings file), checked against the
//! mock's own history and counters.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use comfywire_client::{Client, ClientConfig};
use serde_json::Value;

fn result_line(stdout: &str) -> Value {
    let last = stdout.lines().last().unwrap_or_default();
    let value: Value = serde_json::from_str(last).unwrap();
    assert_eq!(value["event"], "result", "{stdout}");
    value
}

fn history_status(mock: &common::Mock, prompt_id: &str) -> Value {
    let url = mock.url();
    let id = prompt_id.to_owned();
    mock.rt.block_on(async move {
        let client = Client::connect(ClientConfig::new(url)).await.unwrap();
        let entry = client.server_history(&id).await.unwrap();
        client.close().await;
        entry
            .map(|e| e["status"]["status_str"].clone())
            .unwrap_or(Value::Null)
    })
}

#[test]
fn wait_follows_a_prompt_another_client_submitted() {
    let mock = common::Mock::start(1.0);
    let dir = common::temp_dir("wait");
    let url = mock.url();
    let workflow = mock.server.sample_workflow();
    let prompt_id = mock.rt.block_on(async move {
        let other = Client::connect(ClientConfig::new(url)).await.unwrap();
        let id = other.submit(&workflow).await.unwrap().prompt_id;
        other.close().await;
        id
    });
    let mut cmd = common::comfywire(&dir);
    cmd.args(["wait", &prompt_id, "--url", &mock.url(), "--json"]);
    let done = common::run(cmd, Duration::from_secs(60));
    assert_eq!(done.code, 0, "stderr: {}", done.stderr);
    let result = result_line(&done.stdout);
    assert_eq!(result["prompt_id"], prompt_id.as_str());
    assert_eq!(result["outcome"], "succeeded");
    assert_eq!(history_status(&mock, &prompt_id), "success");
    // `wait` keeps no journal.
    assert!(!dir.join("journal.jsonl").exists());
    // An id the server never had is lost (exit 13).
    let mut cmd = common::comfywire(&dir);
    cmd.args(["wait", "no-such-prompt", "--url", &mock.url()]);
    let done = common::run(cmd, Duration::from_secs(60));
    assert_eq!(
        done.code, 13,
        "stdout: {} stderr: {}",
        done.stdout, done.stderr
    );
}

#[test]
fn resume_finishes_what_a_killed_run_left() {
    let mock = common::Mock::start(1.0);
    let dir = common::temp_dir("resume");
    let workflow = common::write_json(&dir, "wf.json", &mock.server.sample_workflow());
    let journal = dir.join("journal.jsonl");
    let mut cmd = common::comfywire(&dir);
    cmd.arg("run")
        .arg(&workflow)
        .args(["--url", &mock.url(), "--json"]);
    let mut child = cmd.spawn().unwrap();
    let _out = common::Lines::of(child.stdout.take().unwrap());
    let _err = common::Lines::of(child.stderr.take().unwrap());
    // The default journal gets the prompt before the POST leaves; kill
    // once the server has it too.
    let mut prompt_id = String::new();
    common::eventually(Duration::from_secs(20), "a submitted prompt", || {
        let text = std::fs::read_to_string(&journal).unwrap_or_default();
        let Some(id) = text.lines().find_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            v["submit"].as_str().map(str::to_owned)
        }) else {
            return false;
        };
        prompt_id = id;
        mock.server.stats().prompts_submitted == 1
    });
    child.kill().unwrap();
    child.wait().unwrap();

    let mut cmd = common::comfywire(&dir);
    cmd.args(["resume", "--url", &mock.url(), "--json"]);
    let done = common::run(cmd, Duration::from_secs(60));
    assert_eq!(done.code, 0, "stderr: {}", done.stderr);
    let result = result_line(&done.stdout);
    assert_eq!(result["prompt_id"], prompt_id.as_str());
    assert_eq!(result["outcome"], "succeeded");
    assert_eq!(
        done.stdout.matches("\"result\"").count(),
        1,
        "{}",
        done.stdout
    );
    assert_eq!(history_status(&mock, &prompt_id), "success");
    assert_eq!(mock.server.stats().prompts_submitted, 1, "never sent again");

    // Nothing is left.
    let mut cmd = common::comfywire(&dir);
    cmd.args(["resume", "--url", &mock.url()]);
    let done = common::run(cmd, Duration::from_secs(30));
    assert_eq!(done.code, 0, "stderr: {}", done.stderr);
    assert!(done.stderr.contains("nothing to resume"), "{}", done.stderr);

    // A corrupt journal is a usage error (exit 2) naming the line.
    std::fs::write(&journal, "{\"submit\":\n").unwrap();
    let mut cmd = common::comfywire(&dir);
    cmd.args(["resume", "--url", &mock.url()]);
    let done = common::run(cmd, Duration::from_secs(30));
    assert_eq!(done.code, 2, "stderr: {}", done.stderr);
    assert!(done.stderr.contains("line 1"), "{}", done.stderr);
}
