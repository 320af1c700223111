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

#[test]
fn demo_folder_is_private_and_not_named_after_the_pid() {
    let dir = common::temp_dir("demo-folder");
    let mut cmd = common::comfywire(&dir);
    cmd.args(["demo", "--speed", "0", "--scenario", "success_single"]);
    let done = common::run(cmd, Duration::from_secs(60));
    assert_eq!(done.code, 0, "stderr: {}", done.stderr);
    let line = done
        .stdout
        .lines()
        .find(|l| l.contains("previews ->"))
        .unwrap_or_else(|| panic!("{}", done.stdout));
    let previews = std::path::Path::new(line.rsplit("-> ").next().unwrap().trim());
    let folder = previews.parent().unwrap();
    let name = folder.file_name().unwrap().to_str().unwrap();
    let suffix = name.strip_prefix("comfywire-demo-").unwrap();
    // 128 random bits in hex, not a process id.
    assert_eq!(suffix.len(), 32, "{name}");
    assert!(suffix.chars().all(|c| c.is_ascii_hexdigit()), "{name}");
    assert!(!suffix.chars().all(|c| c.is_ascii_digit()), "{name}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(folder).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", folder.display());
    }
    let _ = std::fs::remove_dir_all(folder);
}
