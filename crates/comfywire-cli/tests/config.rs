//! `comfywire config` reads and writes the shared settings file, and a
//! bad command line or unreachable server gets its exit code.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use serde_json::Value;

fn config(dir: &std::path::Path, args: &[&str]) -> common::Finished {
    let mut cmd = common::comfywire(dir);
    cmd.arg("config").args(args);
    common::run(cmd, Duration::from_secs(20))
}

#[test]
fn set_get_path_round_trip() {
    let dir = common::temp_dir("config");
    let path = config(&dir, &["path"]);
    assert_eq!(
        path.stdout.trim(),
        dir.join("config.json").display().to_string()
    );
    assert_eq!(
        config(&dir, &["set", "url", "http://10.0.0.2:8188"]).code,
        0
    );
    assert_eq!(config(&dir, &["set", "timeout_s", "5"]).code, 0);
    assert_eq!(
        config(&dir, &["get", "url"]).stdout.trim(),
        "http://10.0.0.2:8188"
    );
    let all: Value = serde_json::from_str(&config(&dir, &["get"]).stdout).unwrap();
    assert_eq!(all["timeout_s"], 5.0);
    let on_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(on_disk["url"], "http://10.0.0.2:8188");
    assert_eq!(config(&dir, &["unset", "timeout_s"]).code, 0);
    assert_eq!(config(&dir, &["get", "timeout_s"]).code, 1);
    assert_eq!(config(&dir, &["set", "no_such_key", "1"]).code, 2);
}

#[test]
fn unreachable_server_exits_3_and_bad_workflow_exits_2() {
    let dir = common::temp_dir("config-url");
    let workflow = common::write_json(
        &dir,
        "wf.json",
        &serde_json::json!({"1": {"class_type": "EmptyImage", "inputs": {}}}),
    );
    // The settings file's URL is used when no flag is given.
    assert_eq!(config(&dir, &["set", "url", "http://127.0.0.1:9"]).code, 0);
    let mut cmd = common::comfywire(&dir);
    cmd.arg("run").arg(&workflow);
    let done = common::run(cmd, Duration::from_secs(30));
    assert_eq!(done.code, 3, "{}", done.stderr);
    assert!(
        done.stderr.contains("cannot connect to http://127.0.0.1:9"),
        "{}",
        done.stderr
    );

    let bad = common::write_json(
        &dir,
        "bad.json",
        &serde_json::json!({"nodes": [], "links": []}),
    );
    let mut cmd = common::comfywire(&dir);
    cmd.arg("run").arg(&bad);
    let done = common::run(cmd, Duration::from_secs(30));
    assert_eq!(done.code, 2, "{}", done.stderr);
    assert!(done.stderr.contains("API Format"), "{}", done.stderr);
}

#[cfg(unix)]
#[test]
fn settings_file_is_written_private_and_an_exposed_one_warns() {
    use std::os::unix::fs::PermissionsExt;
    let dir = common::temp_dir("config-mode");
    let file = dir.join("config.json");
    let mode = || std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(config(&dir, &["set", "token", "tok-secret"]).code, 0);
    assert_eq!(mode(), 0o600);
    let quiet = config(&dir, &["get", "url"]);
    assert!(!quiet.stderr.contains("accessible"), "{}", quiet.stderr);

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let warned = config(&dir, &["get", "token"]);
    assert_eq!(warned.stdout.trim(), "tok-secret");
    assert!(
        warned.stderr.contains("accessible to others (mode 0644)"),
        "{}",
        warned.stderr
    );
    assert!(!warned.stderr.contains("tok-secret"), "{}", warned.stderr);
    // Saving again makes it private.
    assert_eq!(config(&dir, &["set", "timeout_s", "5"]).code, 0);
    assert_eq!(mode(), 0o600);
}

#[test]
fn a_bad_secret_is_not_echoed() {
    let dir = common::temp_dir("config-secret");
    let done = config(&dir, &["set", "basic_auth", "alice:pw-secret"]);
    assert_eq!(done.code, 2);
    assert!(!done.stderr.contains("pw-secret"), "{}", done.stderr);
    assert!(done.stderr.contains("value not shown"), "{}", done.stderr);
}
