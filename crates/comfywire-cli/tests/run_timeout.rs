//! Deadlines exit 14 and name the deadline that expired.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use comfywire_mock::Fault;

#[test]
fn total_timeout_exits_14() {
    let mock = common::Mock::start(0.1);
    let dir = common::temp_dir("run-timeout");
    let workflow = common::write_json(&dir, "wf.json", &mock.server.workflow("long_run").unwrap());
    let mut cmd = common::comfywire(&dir);
    cmd.arg("run")
        .arg(&workflow)
        .args(["--url", &mock.url(), "--timeout", "0.5"]);
    let done = common::run(cmd, Duration::from_secs(30));
    assert_eq!(done.code, 14, "stderr: {}", done.stderr);
    assert!(
        done.stderr.contains("error: timeout: total deadline"),
        "{}",
        done.stderr
    );
}

#[test]
fn stall_timeout_exits_14() {
    let mock = common::Mock::start(0.2);
    let dir = common::temp_dir("run-stall");
    let workflow = common::write_json(&dir, "wf.json", &mock.server.workflow("long_run").unwrap());
    let mut cmd = common::comfywire(&dir);
    cmd.arg("run")
        .arg(&workflow)
        .args(["--url", &mock.url(), "--stall-timeout", "0.5"]);
    let mut child = cmd.spawn().unwrap();
    let mut err = common::Lines::of(child.stderr.take().unwrap());
    err.until("TestStepProgress", Duration::from_secs(20));
    mock.server.inject(Fault::Stall { millis: 5_000 });
    let code = common::wait(&mut child, Duration::from_secs(30));
    let lines = err.rest(Duration::from_secs(5));
    assert_eq!(code, 14, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("error: timeout: stall deadline")),
        "{lines:#?}"
    );
}
