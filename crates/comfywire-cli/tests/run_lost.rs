//! A server restart mid-run makes the prompt lost: exit 13.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

#[test]
fn restart_mid_run_exits_13() {
    let mock = common::Mock::start(0.2);
    let dir = common::temp_dir("run-lost");
    let workflow = common::write_json(&dir, "wf.json", &mock.server.workflow("long_run").unwrap());
    let mut cmd = common::comfywire(&dir);
    cmd.arg("run").arg(&workflow).args(["--url", &mock.url()]);
    let mut child = cmd.spawn().unwrap();
    let mut err = common::Lines::of(child.stderr.take().unwrap());
    err.until("TestStepProgress", Duration::from_secs(20));
    mock.server.restart();
    let code = common::wait(&mut child, Duration::from_secs(30));
    let lines = err.rest(Duration::from_secs(5));
    assert_eq!(code, 13, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.starts_with("error: lost")),
        "{lines:#?}"
    );
}
