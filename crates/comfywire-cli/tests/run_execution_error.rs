//! A node raising exits 11 naming the node and the exception.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use comfywire_mock::Fault;

#[test]
fn execution_error_exits_11_with_node_and_exception() {
    let mock = common::Mock::start(0.0);
    mock.server.inject(Fault::FailNextPrompt);
    let dir = common::temp_dir("run-exec-error");
    let workflow = common::write_json(&dir, "wf.json", &mock.server.sample_workflow());
    let mut cmd = common::comfywire(&dir);
    cmd.arg("run").arg(&workflow).args(["--url", &mock.url()]);
    let done = common::run(cmd, Duration::from_secs(30));
    assert_eq!(done.code, 11, "stderr: {}", done.stderr);
    let line = done
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap();
    assert!(line.contains("execution error: node"), "{line}");
    assert!(line.contains("raised"), "{line}");
    assert!(line.contains("deliberate test failure"), "{line}");
}
