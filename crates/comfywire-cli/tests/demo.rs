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

/// Runs a fast demo with `tmp` as the temp folder; returns its folder.
fn demo_folder(dir: &std::path::Path, tmp: &std::path::Path) -> std::path::PathBuf {
    let mut cmd = common::comfywire(dir);
    cmd.env("TMPDIR", tmp)
        .args(["demo", "--speed", "0", "--scenario", "success_single"]);
    let done = common::run(cmd, Duration::from_secs(60));
    assert_eq!(done.code, 0, "stderr: {}", done.stderr);
    let line = done
        .stdout
        .lines()
        .find(|l| l.contains("previews ->"))
        .unwrap_or_else(|| panic!("{}", done.stdout));
    let previews = std::path::Path::new(line.rsplit("-> ").next().unwrap().trim());
    previews.parent().unwrap().to_path_buf()
}

#[test]
fn demo_folders_do_not_pile_up_and_others_are_left_alone() {
    let dir = common::temp_dir("demo-pile");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    // Look-alikes that are not a demo's folder stay.
    let other = tmp.join("comfywire-demo-notes");
    std::fs::create_dir_all(&other).unwrap();
    let file = tmp.join(format!("comfywire-demo-{}", "a".repeat(32)));
    std::fs::write(&file, b"a file, not a folder").unwrap();
    let first = demo_folder(&dir, &tmp);
    assert!(first.starts_with(&tmp), "{}", first.display());
    let second = demo_folder(&dir, &tmp);
    assert_ne!(first, second);
    assert!(!first.exists(), "the first demo's folder is still there");
    assert!(second.join("outputs").is_dir(), "{}", second.display());
    assert!(other.is_dir() && file.is_file());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn demo_folder_is_private_and_not_named_after_the_pid() {
    let dir = common::temp_dir("demo-folder");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let folder = demo_folder(&dir, &tmp);
    let folder = folder.as_path();
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
    let _ = std::fs::remove_dir_all(&dir);
}
