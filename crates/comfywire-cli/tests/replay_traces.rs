//! `comfywire replay` of every golden trace agrees with its recorded
//! history, prompt by prompt.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

/// `COMFYWIRE_TRACES`, else `<repo>/../shared/traces`, else
/// `<repo>/tests/data/traces`.
fn traces_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("COMFYWIRE_TRACES") {
        return Some(PathBuf::from(dir));
    }
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    [
        repo.join("../shared/traces"),
        repo.join("tests/data/traces"),
    ]
    .into_iter()
    .find(|d| d.is_dir())
}

/// `status_str` of the last `GET /history/{id}` answer per prompt.
fn recorded_history(text: &str) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = Vec::new();
    for line in text.lines().skip(1) {
        let event: Value = serde_json::from_str(line).unwrap();
        if event["kind"] != "http" || event["method"] != "GET" || event["status"] != 200 {
            continue;
        }
        if !event["path"].as_str().unwrap().contains("/history/") {
            continue;
        }
        for (id, entry) in event["response"].as_object().into_iter().flatten() {
            let status = entry["status"]["status_str"].as_str().unwrap().to_owned();
            found.retain(|(known, _)| known != id);
            found.push((id.clone(), status));
        }
    }
    found
}

#[test]
fn every_trace_replays_to_its_recorded_outcomes() {
    let Some(dir) = traces_dir() else {
        eprintln!("no traces folder; skipping");
        return;
    };
    let work = common::temp_dir("replay");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("jsonl") {
            continue;
        }
        let mut cmd = common::comfywire(&work);
        cmd.arg("replay").arg(&path).arg("--json");
        let done = common::run(cmd, Duration::from_secs(60));
        assert_eq!(done.code, 0, "{}: {}", path.display(), done.stderr);
        let outcomes: Vec<Value> = done
            .stdout
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v["event"] == "outcome")
            .collect();
        let text = std::fs::read_to_string(&path).unwrap();
        let meta: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        let ours = |id: &str| {
            meta["meta"]["prompt_ids"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p == id)
        };
        for (id, status) in recorded_history(&text) {
            if !ours(&id) {
                // Another client's prompt: reported as foreign, not checked.
                let line = outcomes.iter().find(|o| o["prompt_id"] == id.as_str());
                assert!(
                    line.is_none_or(|o| o["foreign"] == true),
                    "{}: {id}",
                    path.display()
                );
                continue;
            }
            let line = outcomes
                .iter()
                .find(|o| o["prompt_id"] == id.as_str())
                .unwrap_or_else(|| panic!("{}: no outcome for {id}", path.display()));
            let expected = if status == "success" {
                "succeeded"
            } else {
                "failed"
            };
            assert_eq!(line["outcome"], expected, "{}: {id}", path.display());
            assert_eq!(line["matches"], true);
            checked += 1;
        }
        if path.file_stem().unwrap() == "validation_error" {
            assert!(outcomes.iter().all(|o| o["outcome"] == "rejected"));
            assert_eq!(outcomes.len(), 10, "{outcomes:#?}");
        }
    }
    assert!(checked >= 10, "only {checked} prompts checked");
}

#[test]
fn replay_prints_events_for_people() {
    let Some(dir) = traces_dir() else {
        return;
    };
    let work = common::temp_dir("replay-human");
    let mut cmd = common::comfywire(&work);
    cmd.arg("replay").arg(dir.join("execution_error.jsonl"));
    let done = common::run(cmd, Duration::from_secs(30));
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert!(done.stdout.contains("TestRaiseError"), "{}", done.stdout);
    assert!(done.stdout.contains("agrees"), "{}", done.stdout);
    // The time column says its unit, and the recording's own end is not
    // shown as a reconnect.
    assert!(done.stdout.contains("time (ms)"), "{}", done.stdout);
    assert!(!done.stdout.contains("reconnecting"), "{}", done.stdout);
}

#[test]
fn help_names_the_default_server_and_every_exit_code() {
    let work = common::temp_dir("help");
    let mut cmd = common::comfywire(&work);
    cmd.arg("--help");
    let done = common::run(cmd, Duration::from_secs(30));
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert!(
        done.stdout.contains("http://127.0.0.1:8188"),
        "{}",
        done.stdout
    );
    assert!(done.stdout.contains("Exit codes:"), "{}", done.stdout);
    for code in ["  0  ", "  3  ", " 10  ", " 14  "] {
        assert!(done.stdout.contains(code), "{code}: {}", done.stdout);
    }
}

#[test]
fn another_clients_prompt_is_reported_as_foreign_never_as_a_disagreement() {
    let Some(dir) = traces_dir() else {
        return;
    };
    // success_single as if another client had POSTed the prompt without a
    // client id (so the server broadcast its frames to every socket): the
    // POST is the other client's, and the recording client owns nothing.
    let text = std::fs::read_to_string(dir.join("success_single.jsonl")).unwrap();
    let mut lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let theirs = lines[0]["meta"]["prompt_ids"][0]
        .as_str()
        .unwrap()
        .to_owned();
    lines[0]["meta"]["prompt_ids"] = Value::Array(Vec::new());
    for event in lines.iter_mut().skip(1) {
        if event["kind"] == "http" && event["method"] == "POST" {
            event["client"] = Value::from("other");
        }
    }
    let work = common::temp_dir("replay-foreign");
    let trace = work.join("two_clients.jsonl");
    let body: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(&trace, body.join("\n") + "\n").unwrap();
    let mut cmd = common::comfywire(&work);
    cmd.arg("replay").arg(&trace).arg("--json");
    let done = common::run(cmd, Duration::from_secs(30));
    assert_eq!(done.code, 0, "{}", done.stderr);
    let line = done
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["event"] == "outcome" && v["prompt_id"] == theirs.as_str())
        .unwrap_or_else(|| panic!("no outcome line: {}", done.stdout));
    assert_eq!(line["foreign"], true, "{line}");
    assert_eq!(line["outcome"], "succeeded");
    let mut human = common::comfywire(&work);
    human.arg("replay").arg(&trace);
    let done = common::run(human, Duration::from_secs(30));
    assert!(done.stdout.contains("foreign"), "{}", done.stdout);
    assert!(!done.stdout.contains("DISAGREES"), "{}", done.stdout);
}

#[test]
fn a_reader_that_is_gone_ends_the_output_quietly() {
    let trace =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/traces/long_run.jsonl");
    let dir = common::temp_dir("replay-pipe");
    for json in [false, true] {
        let mut cmd = common::comfywire(&dir);
        cmd.arg("replay").args(json.then_some("--json")).arg(&trace);
        let mut child = cmd.spawn().unwrap();
        let stderr = common::drain(child.stderr.take().unwrap());
        // The reader is gone before the first line (as `| head -0`, or
        // `| head -1` a little later, leaves it): every write fails.
        drop(child.stdout.take());
        let code = common::wait(&mut child, Duration::from_secs(30));
        let stderr = stderr.join().unwrap();
        assert_eq!(code, 0, "json {json}, stderr: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
