//! Sockets dropped mid-run: the run reconnects and still succeeds.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use comfywire_mock::Fault;

#[test]
fn dropped_socket_mid_run_still_succeeds() {
    let mock = common::Mock::start(5.0);
    mock.server
        .inject(Fault::DropSocketsAfterFrames { frames: 40 });
    let dir = common::temp_dir("run-reconnect");
    let workflow = common::write_json(&dir, "wf.json", &mock.server.workflow("long_run").unwrap());
    let out = dir.join("out");
    let mut cmd = common::comfywire(&dir);
    cmd.arg("run")
        .arg(&workflow)
        .args(["--url", &mock.url(), "--out"])
        .arg(&out);
    let done = common::run(cmd, Duration::from_secs(60));
    assert_eq!(done.code, 0, "stderr: {}", done.stderr);
    assert!(done.stdout.contains("succeeded"), "{}", done.stdout);
    assert!(
        done.stderr.contains("connection lost") || done.stderr.contains("reconnecting"),
        "{}",
        done.stderr
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
}
