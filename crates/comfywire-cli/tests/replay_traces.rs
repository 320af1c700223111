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
        for (id, status) in recorded_history(&text) {
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
}
