//! Polling is a first-class state of the command line: `run` and `wait`
//! complete through a server that refuses WebSockets (saying so once),
//! a prompt that ends while the socket is down is reported within 2 s of
//! the server's own end (the mock's ledger), and what polling cannot cure
//! (an authentication failure) ends the command at once.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use comfywire_client::{Client, ClientConfig};
use comfywire_mock::Fault;
use serde_json::Value;

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn blocked(mock: &common::Mock) {
    mock.server.inject(Fault::BlockWebSockets {
        status: 403,
        millis: None,
    });
}

#[test]
fn run_through_a_websocket_refusing_server_polls_and_prints_its_outputs() {
    let mock = common::Mock::start(2.0);
    blocked(&mock);
    let dir = common::temp_dir("run-polling");
    let workflow = common::write_json(&dir, "wf.json", &mock.server.sample_workflow());
    let out = dir.join("out");
    let mut cmd = common::comfywire(&dir);
    cmd.arg("run")
        .arg(&workflow)
        .args(["--url", &mock.url(), "--out"])
        .arg(&out);
    let done = common::run(cmd, Duration::from_secs(60));
    assert_eq!(done.code, 0, "stderr: {}", done.stderr);
    assert!(done.stdout.contains("succeeded"), "{}", done.stdout);
    assert!(done.stdout.contains("output of"), "{}", done.stdout);
    assert_eq!(
        done.stderr.matches("WebSockets blocked").count(),
        1,
        "said once: {}",
        done.stderr
    );
    assert!(done.stderr.contains("HTTP 403"), "{}", done.stderr);
    // The files the server's history names were downloaded.
    let id = mock.server.ledger().entries[0].prompt_id.clone().unwrap();
    let history = mock.server.history_entry(&id).unwrap();
    let files = comfywire_client::output_files(history["outputs"].as_object().unwrap().values());
    assert!(!files.is_empty());
    for file in files {
        let path = out.join(&file.subfolder).join(&file.filename);
        assert!(path.is_file(), "{} missing", path.display());
    }
    assert!(mock.server.stats().connects_refused >= 1);
    assert_eq!(mock.server.stats().connections_accepted, 0);
}

#[test]
fn a_prompt_finished_during_a_ten_second_disconnect_is_reported_within_two_seconds() {
    let mock = common::Mock::start(1.0);
    let dir = common::temp_dir("run-disconnected");
    let workflow = common::write_json(&dir, "wf.json", &mock.server.workflow("long_run").unwrap());
    let mut cmd = common::comfywire(&dir);
    cmd.arg("run")
        .arg(&workflow)
        .args(["--json", "--url", &mock.url()]);
    let mut child = cmd.spawn().unwrap();
    let mut out = common::Lines::of(child.stdout.take().unwrap());
    let mut err = child.stderr.take().unwrap();
    out.until("\"progress\"", Duration::from_secs(30));
    // The run pauses 4 s, so it ends about 5 s into a 10 s disconnect; the
    // reconnect backoff (1, 2, 4, 8 s) brings the socket back only at 15 s.
    mock.server.inject(Fault::Stall { millis: 4_000 });
    mock.server.inject(Fault::BlockWebSockets {
        status: 503,
        millis: Some(10_000),
    });
    let dropped_ms = wall_ms();
    mock.server.inject(Fault::DropSocketsNow);
    let finished = out.until("\"finished\"", Duration::from_secs(30));
    let reported_ms = wall_ms();
    let code = common::wait(&mut child, Duration::from_secs(30));
    let mut stderr = String::new();
    err.read_to_string(&mut stderr).unwrap();
    assert_eq!(code, 0, "{stderr}");

    let finished: Value = serde_json::from_str(&finished).unwrap();
    let id = finished["prompt_id"].as_str().unwrap();
    let entry = mock
        .server
        .ledger()
        .about(id)
        .find(|e| e.end.is_some())
        .cloned()
        .unwrap();
    let ended_ms = entry.ended_at_ms.unwrap();
    let late = reported_ms.saturating_sub(ended_ms);
    eprintln!(
        "ended {} ms into the disconnect; the CLI reported it {late} ms after the server's end",
        ended_ms - dropped_ms
    );
    assert!(
        ended_ms < dropped_ms + 10_000,
        "ended during the disconnect"
    );
    assert!(late <= 2_000, "reported {late} ms after the server's end");
    // It was reported while the socket was still down: the last connection
    // event before `finished` is not `connected`.
    let before: Vec<Value> = out
        .seen
        .iter()
        .take_while(|l| !l.contains("\"finished\""))
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &Value| e["event"] == "connection")
        .collect();
    assert_ne!(before.last().unwrap()["state"], "connected", "{before:?}");
    let rest = out.rest(Duration::from_secs(5));
    let result: Value = serde_json::from_str(rest.last().unwrap()).unwrap();
    assert_eq!(result["event"], "result");
    assert_eq!(result["outcome"], "succeeded");
}

#[test]
fn wait_follows_a_prompt_by_polling() {
    let mock = common::Mock::start(2.0);
    blocked(&mock);
    let dir = common::temp_dir("wait-polling");
    // Submitted over HTTP by a client whose own socket is refused too.
    let submitter = mock
        .rt
        .block_on(Client::connect(ClientConfig::new(mock.url())))
        .unwrap();
    let submitted = mock
        .rt
        .block_on(submitter.submit(&mock.server.sample_workflow()))
        .unwrap();
    let mut cmd = common::comfywire(&dir);
    cmd.args(["wait", &submitted.prompt_id, "--url", &mock.url()]);
    let done = common::run(cmd, Duration::from_secs(60));
    mock.rt.block_on(submitter.close());
    assert_eq!(done.code, 0, "stderr: {}", done.stderr);
    assert!(done.stdout.contains("succeeded"), "{}", done.stdout);
    assert_eq!(done.stderr.matches("WebSockets blocked").count(), 1);
}

/// A server that answers every request, upgrades included, with 401.
fn unauthorized_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream.write_all(
                b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 12\r\nconnection: close\r\n\r\nunauthorized",
            );
        }
    });
    url
}

#[test]
fn an_authentication_failure_ends_run_at_once() {
    let url = unauthorized_server();
    let dir = common::temp_dir("run-unauthorized");
    let workflow = common::write_json(
        &dir,
        "wf.json",
        &serde_json::json!({"1": {"class_type": "X", "inputs": {}}}),
    );
    let mut cmd = common::comfywire(&dir);
    cmd.arg("run").arg(&workflow).args(["--url", &url]);
    let started = Instant::now();
    let done = common::run(cmd, Duration::from_secs(30));
    assert_eq!(done.code, 4, "stderr: {}", done.stderr);
    assert!(
        done.stderr.contains("authentication failed") && done.stderr.contains("401"),
        "{}",
        done.stderr
    );
    assert!(!done.stderr.contains("polling"), "{}", done.stderr);
    assert!(started.elapsed() < Duration::from_secs(15));
}
