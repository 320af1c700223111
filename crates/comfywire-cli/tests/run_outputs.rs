//! `comfywire run --out` keeps each output's subfolder (two outputs of the
//! same name in different subfolders both land) and never replaces a file
//! that is already there.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use comfywire_mock::{MockConfig, MockServer, TraceSource};
use serde_json::Value;

/// `success_single` with its one output replaced by two files called
/// `same.png`, in the subfolders `a` and `b/c`.
fn twin_trace(dir: &Path) {
    let original = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/traces/success_single.jsonl"
    );
    let text = std::fs::read_to_string(original).unwrap();
    let one =
        r#"{"filename": "success_single_00001_.png", "subfolder": "trace", "type": "output"}"#;
    let two = r#"{"filename": "same.png", "subfolder": "a", "type": "output"}, {"filename": "same.png", "subfolder": "b/c", "type": "output"}"#;
    let escaped = |s: &str| s.replace('"', "\\\"");
    let twin = text.replace(&escaped(one), &escaped(two)).replace(one, two);
    assert_eq!(
        twin.matches("same.png").count(),
        4,
        "the trace changed shape"
    );
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("twin_outputs.jsonl"), twin).unwrap();
}

#[test]
fn outputs_keep_their_subfolders_and_existing_files_stay() {
    let dir = common::temp_dir("run-outputs");
    let traces = dir.join("traces");
    twin_trace(&traces);
    let config = MockConfig {
        port: 0,
        traces: TraceSource::Dir(traces),
        speed: 0.0,
        default_scenario: "twin_outputs".into(),
    };
    let (rt, server) = MockServer::start_on_own_runtime(config, 1).unwrap();
    let workflow = common::write_json(&dir, "wf.json", &server.workflow("twin_outputs").unwrap());
    let out = dir.join("out");
    let run = || {
        let mut cmd = common::comfywire(&dir);
        cmd.arg("run")
            .arg(&workflow)
            .args(["--url", &server.url(), "--json", "--out"])
            .arg(&out);
        let done = common::run(cmd, Duration::from_secs(30));
        assert_eq!(done.code, 0, "stderr: {}", done.stderr);
        let result: Value = serde_json::from_str(done.stdout.lines().last().unwrap()).unwrap();
        let files: Vec<String> = result["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_owned())
            .collect();
        files
    };

    let first = run();
    let (a, bc) = (out.join("a/same.png"), out.join("b/c/same.png"));
    assert_eq!(first, [a.display().to_string(), bc.display().to_string()]);
    assert!(std::fs::metadata(&a).unwrap().len() > 0);
    assert!(std::fs::metadata(&bc).unwrap().len() > 0);

    // A second run into the same folder numbers its files and leaves the
    // first run's alone.
    std::fs::write(&a, "keep me").unwrap();
    let second = run();
    assert_eq!(
        second,
        [
            out.join("a/same-2.png").display().to_string(),
            out.join("b/c/same-2.png").display().to_string()
        ]
    );
    assert_eq!(std::fs::read_to_string(&a).unwrap(), "keep me");
    assert_eq!(
        std::fs::read(&bc).unwrap(),
        std::fs::read(out.join("b/c/same-2.png")).unwrap()
    );
    rt.block_on(server.shutdown());
}
