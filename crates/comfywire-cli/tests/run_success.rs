//! `comfywire run` downloads the outputs of a successful prompt.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use serde_json::{Value, json};

#[test]
fn run_downloads_outputs_into_out() {
    let mock = common::Mock::start(0.0);
    let dir = common::temp_dir("run-success");
    let workflow = common::write_json(&dir, "wf.json", &mock.server.sample_workflow());
    let out = dir.join("out");
    let mut cmd = common::comfywire(&dir);
    cmd.arg("run")
        .arg(&workflow)
        .args(["--url", &mock.url(), "--out"])
        .arg(&out);
    let done = common::run(cmd, Duration::from_secs(30));
    assert_eq!(done.code, 0, "stderr: {}", done.stderr);
    // The recorded output is in the subfolder `trace`, and stays there.
    let folders: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert_eq!(folders.len(), 1);
    let folder = folders[0].as_ref().unwrap().path();
    assert_eq!(folder, out.join("trace"));
    let files: Vec<_> = std::fs::read_dir(&folder).unwrap().collect();
    assert_eq!(files.len(), 1);
    let path = files[0].as_ref().unwrap().path();
    assert_eq!(path.extension().unwrap(), "png");
    assert!(std::fs::metadata(&path).unwrap().len() > 0);
    assert!(done.stdout.contains("succeeded"), "{}", done.stdout);
    assert!(
        done.stdout.contains(&path.display().to_string()),
        "{}",
        done.stdout
    );
}

#[test]
fn run_accepts_the_prompt_wrapper_set_and_json() {
    let mock = common::Mock::start(0.0);
    let dir = common::temp_dir("run-json");
    let wrapped = json!({"prompt": mock.server.sample_workflow(), "client_id": "ignored"});
    let workflow = common::write_json(&dir, "wf.json", &wrapped);
    let mut cmd = common::comfywire(&dir);
    cmd.arg("run")
        .arg(&workflow)
        .args(["--url", &mock.url(), "--json"])
        .args(["--set", "2.seed=7", "--set", "4.filename_prefix=cli/test"]);
    let done = common::run(cmd, Duration::from_secs(30));
    assert_eq!(done.code, 0, "stderr: {}", done.stderr);
    let lines: Vec<Value> = done
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let result = lines.last().unwrap();
    assert_eq!(result["event"], "result");
    assert_eq!(result["outcome"], "succeeded");
    assert_eq!(result["exit_code"], 0);
    let finished = lines.iter().find(|l| l["event"] == "finished").unwrap();
    assert_eq!(finished["outcome"], "succeeded");
    assert_eq!(finished["prompt_id"], result["prompt_id"]);
    assert!(lines.iter().any(|l| l["event"] == "progress"));
    assert!(lines.iter().all(|l| l.get("prompt_id").is_some()));
}

#[test]
fn set_on_a_missing_node_is_a_usage_error() {
    let mock = common::Mock::start(0.0);
    let dir = common::temp_dir("run-set");
    let workflow = common::write_json(&dir, "wf.json", &mock.server.sample_workflow());
    let mut cmd = common::comfywire(&dir);
    cmd.arg("run")
        .arg(&workflow)
        .args(["--url", &mock.url(), "--set", "99.seed=1"]);
    let done = common::run(cmd, Duration::from_secs(30));
    assert_eq!(done.code, 2);
    assert!(done.stderr.contains("no node 99"), "{}", done.stderr);
}
