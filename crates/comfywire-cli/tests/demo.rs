//! `comfywire demo` plays a recorded session to the end on its own.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

#[test]
fn demo_runs_to_the_end_and_lists_outputs() {
    let dir = common::temp_dir("demo");
    let mut cmd = common::comfywire(&dir);
    cmd.args(["demo", "--speed", "10"]);
    let done = common::run(cmd, Duration::from_secs(60));
    assert_eq!(done.code, 0, "stderr: {}", done.stderr);
    assert!(done.stdout.contains("succeeded"), "{}", done.stdout);
    assert!(done.stdout.contains("file [output]"), "{}", done.stdout);
    assert!(done.stdout.contains("previews ->"), "{}", done.stdout);
    assert!(done.stderr.contains("TestStepProgress"), "{}", done.stderr);
}

#[test]
fn demo_with_an_unknown_scenario_is_a_usage_error() {
    let dir = common::temp_dir("demo-unknown");
    let mut cmd = common::comfywire(&dir);
    cmd.args(["demo", "--scenario", "no_such_thing"]);
    let done = common::run(cmd, Duration::from_secs(30));
    assert_eq!(done.code, 2);
    assert!(done.stderr.contains("long_run"), "{}", done.stderr);
}
