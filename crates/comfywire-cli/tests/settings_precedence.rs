//! Where the CLI's settings come from: `--url` beats `COMFYWIRE_*`, which
//! beats the settings file; credentials stay with the server they were
//! given for.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

/// A listener that hands over the head of the first request it gets, then
/// closes the connection.
fn first_request() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
    });
    (url, rx)
}

const NOBODY: &str = "http://127.0.0.1:9";

#[test]
fn environment_beats_the_file_and_the_flag_beats_both() {
    let mock = common::Mock::start(0.0);
    let dir = common::temp_dir("precedence");
    common::write_json(&dir, "config.json", &json!({ "url": NOBODY }));
    let queue = |env_url: &str, flag: Option<&str>| {
        let mut cmd = common::comfywire(&dir);
        cmd.env("COMFYWIRE_URL", env_url)
            .args(["queue", "list", "--json"]);
        if let Some(url) = flag {
            cmd.args(["--url", url]);
        }
        common::run(cmd, Duration::from_secs(30))
    };
    let by_env = queue(&mock.url(), None);
    assert_eq!(by_env.code, 0, "{}", by_env.stderr);
    let listed: Value = serde_json::from_str(by_env.stdout.trim()).unwrap();
    assert!(listed.get("pending").is_some(), "{listed}");
    let by_flag = queue(NOBODY, Some(&mock.url()));
    assert_eq!(by_flag.code, 0, "{}", by_flag.stderr);
    let flag_wins = queue(&mock.url(), Some(NOBODY));
    assert_eq!(flag_wins.code, 3, "{}", flag_wins.stderr);
}

#[test]
fn the_environments_token_is_not_sent_to_the_flags_server() {
    let dir = common::temp_dir("precedence-token");
    let (env_url, env_server) = first_request();
    let (flag_url, flag_server) = first_request();
    let send = |flag: Option<&str>| {
        let mut cmd = common::comfywire(&dir);
        cmd.env("COMFYWIRE_URL", &env_url)
            .env("COMFYWIRE_TOKEN", "env-secret")
            .args(["queue", "list"]);
        if let Some(url) = flag {
            cmd.args(["--url", url]);
        }
        common::run(cmd, Duration::from_secs(30))
    };
    let wait = Duration::from_secs(10);
    let to_flag = send(Some(&flag_url));
    let head = flag_server.recv_timeout(wait).unwrap();
    assert!(head.starts_with("GET /"), "{head}");
    assert!(!head.contains("env-secret"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("authorization"),
        "{head}"
    );
    // Whatever the failure message says, it names no credential.
    assert!(!to_flag.stderr.contains("env-secret"), "{}", to_flag.stderr);
    // Without the flag the environment's server gets its own token.
    send(None);
    let head = env_server.recv_timeout(wait).unwrap();
    assert!(head.contains("Bearer env-secret"), "{head}");
}

#[test]
fn no_credential_in_a_connection_error() {
    let dir = common::temp_dir("precedence-error");
    let workflow = common::write_json(
        &dir,
        "wf.json",
        &json!({"1": {"class_type": "EmptyImage", "inputs": {}}}),
    );
    let mut cmd = common::comfywire(&dir);
    cmd.arg("run")
        .arg(&workflow)
        .args(["--url", "http://alice:pw-secret@127.0.0.1:9"]);
    let done = common::run(cmd, Duration::from_secs(30));
    assert_eq!(done.code, 3, "{}", done.stderr);
    assert!(done.stderr.contains("127.0.0.1:9"), "{}", done.stderr);
    assert!(!done.stderr.contains("pw-secret"), "{}", done.stderr);

    // An HTTP failure, with the traffic log on: no password, no token.
    let mut cmd = common::comfywire(&dir);
    cmd.args(["-v", "queue", "list", "--url"])
        .arg("http://alice:pw-secret@127.0.0.1:9/?token=tok-secret");
    let done = common::run(cmd, Duration::from_secs(30));
    assert_ne!(done.code, 0);
    assert!(done.stderr.contains("127.0.0.1:9"), "{}", done.stderr);
    for secret in ["pw-secret", "tok-secret"] {
        assert!(!done.stderr.contains(secret), "{}", done.stderr);
    }
}
