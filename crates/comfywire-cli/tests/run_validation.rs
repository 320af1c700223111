//! A refused prompt exits 10 and lists each node's errors.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use comfywire_mock::Fault;

#[test]
fn validation_error_exits_10_with_node_errors() {
    let mock = common::Mock::start(0.0);
    mock.server.inject(Fault::ValidationErrorNextPrompt);
    let dir = common::temp_dir("run-validation");
    let workflow = common::write_json(&dir, "wf.json", &mock.server.sample_workflow());
    let mut cmd = common::comfywire(&dir);
    cmd.arg("run").arg(&workflow).args(["--url", &mock.url()]);
    let done = common::run(cmd, Duration::from_secs(30));
    assert_eq!(done.code, 10, "stderr: {}", done.stderr);
    assert!(
        done.stderr.contains("error: validation error"),
        "{}",
        done.stderr
    );
    assert!(done.stderr.contains("  node "), "{}", done.stderr);
}

#[test]
fn a_partly_valid_workflow_runs_and_names_the_skipped_nodes() {
    let mock = common::Mock::start(0.0);
    let dir = common::temp_dir("run-partial");
    let workflow = mock.server.workflow("partial_validation").unwrap();
    let path = common::write_json(&dir, "wf.json", &workflow);
    let mut cmd = common::comfywire(&dir);
    cmd.arg("run").arg(&path).args(["--url", &mock.url()]);
    let done = common::run(cmd, Duration::from_secs(30));
    assert_eq!(done.code, 0, "stderr: {}", done.stderr);
    let warning = done
        .stderr
        .lines()
        .find(|l| l.contains("warning: outputs of"))
        .unwrap_or_else(|| panic!("no warning: {}", done.stderr));
    // The node the server named, with its class and message, not ": : ".
    assert!(
        warning.contains("node ") && warning.contains('('),
        "{warning}"
    );
    assert!(!warning.contains(": : "), "{warning}");
}
