//! `comfywire run` and `watch` over several servers (`--url` more than
//! once, or the settings' `servers`), checked against the mocks' ledgers.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use comfywire_client::{Client, ClientConfig};
use serde_json::{Value, json};

/// The JSON lines of `stdout`.
fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Which of `mocks` ran `prompt_id` (by their own ledgers).
fn ran_on(mocks: &[common::Mock], prompt_id: &str) -> Vec<usize> {
    (0..mocks.len())
        .filter(|i| mocks[*i].server.ledger().runs(prompt_id) == 1)
        .collect()
}

#[test]
fn run_with_several_urls_runs_once_on_one_server_and_refuses_single_server_flags() {
    let mocks = [common::Mock::start(20.0), common::Mock::start(20.0)];
    let dir = common::temp_dir("pool-run");
    let workflow = common::write_json(
        &dir,
        "w.json",
        &mocks[0].server.workflow("success_single").unwrap(),
    );
    let out = dir.join("out");
    let mut cmd = common::comfywire(&dir);
    cmd.args(["run", "--json", "--out"])
        .arg(&out)
        .arg(&workflow);
    for m in &mocks {
        cmd.args(["--url", &m.url()]);
    }
    let done = common::run(cmd, Duration::from_secs(60));
    assert_eq!(done.code, 0, "stderr: {}", done.stderr);
    let lines = json_lines(&done.stdout);
    let outcomes: Vec<&Value> = lines.iter().filter(|v| v["event"] == "outcome").collect();
    assert_eq!(outcomes.len(), 1, "{}", done.stdout);
    let id = outcomes[0]["prompt_id"].as_str().unwrap();
    let ran = ran_on(&mocks, id);
    assert_eq!(ran.len(), 1, "{id} ran on {ran:?}");
    let port = mocks[ran[0]].server.addr().port().to_string();
    assert!(outcomes[0]["server"].as_str().unwrap().contains(&port));
    assert!(!outcomes[0]["files"].as_array().unwrap().is_empty());

    // A deadline or journal of one server's client is refused, not ignored.
    for flag in [["--stall-timeout", "5"], ["--queue-timeout", "5"]] {
        let mut cmd = common::comfywire(&dir);
        cmd.arg("run").args(flag).arg(&workflow);
        for m in &mocks {
            cmd.args(["--url", &m.url()]);
        }
        let done = common::run(cmd, Duration::from_secs(30));
        assert_eq!(done.code, 2, "{flag:?}: {}", done.stderr);
        assert!(done.stderr.contains(flag[0]), "{}", done.stderr);
    }
    let total: usize = mocks.iter().map(|m| m.server.ledger().entries.len()).sum();
    assert_eq!(total, 1, "a refused run submitted nothing");
}

#[test]
fn run_uses_the_settings_servers_when_no_url_is_given() {
    let mocks = [common::Mock::start(20.0), common::Mock::start(20.0)];
    let dir = common::temp_dir("pool-settings");
    let labels = ["left", "right"];
    let servers: Vec<Value> = mocks
        .iter()
        .zip(labels)
        .map(|(m, label)| json!({"url": m.url(), "label": label}))
        .collect();
    common::write_json(&dir, "config.json", &json!({ "servers": servers }));
    let workflow = common::write_json(
        &dir,
        "w.json",
        &mocks[0].server.workflow("success_single").unwrap(),
    );
    let mut cmd = common::comfywire(&dir);
    cmd.args(["run", "--json"]).arg(&workflow);
    let done = common::run(cmd, Duration::from_secs(60));
    assert_eq!(done.code, 0, "stderr: {}", done.stderr);
    let lines = json_lines(&done.stdout);
    let outcome = lines.iter().find(|v| v["event"] == "outcome").unwrap();
    let ran = ran_on(&mocks, outcome["prompt_id"].as_str().unwrap());
    assert_eq!(ran.len(), 1);
    assert_eq!(outcome["server"], labels[ran[0]]);
}

#[test]
fn watch_with_several_urls_names_the_server_of_each_event() {
    let mocks = [common::Mock::start(5.0), common::Mock::start(5.0)];
    let dir = common::temp_dir("pool-watch");
    // A server sends a prompt's frames to the socket of the prompt's
    // client id: the watcher shares the submitter's id.
    let submitter = mocks[1]
        .rt
        .block_on(Client::connect(ClientConfig {
            client_id: Some("watched".into()),
            ..ClientConfig::new(mocks[1].url())
        }))
        .unwrap();
    mocks[1]
        .rt
        .block_on(submitter.wait_connected(Duration::from_secs(10)))
        .unwrap();
    let mut cmd = common::comfywire(&dir);
    cmd.env("COMFYWIRE_CLIENT_ID", "watched")
        .args(["watch", "--json"]);
    for m in &mocks {
        cmd.args(["--url", &m.url()]);
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = common::Lines::of(child.stdout.take().unwrap());
    let port = |i: usize| mocks[i].server.addr().port().to_string();
    // Both servers connected, each line naming its own.
    let mut connected = [false, false];
    while connected != [true, true] {
        let line: Value =
            serde_json::from_str(&out.until("\"connected\"", Duration::from_secs(20))).unwrap();
        let server = line["server"].as_str().unwrap();
        for (i, seen) in connected.iter_mut().enumerate() {
            *seen |= server.contains(&port(i));
        }
    }
    let submitted = mocks[1]
        .rt
        .block_on(submitter.submit(&mocks[1].server.sample_workflow()))
        .unwrap();
    // Someone else's prompt: its own end is shown, as on one server.
    out.until("\"finished\"", Duration::from_secs(30));
    common::sigint(&child);
    assert_eq!(common::wait(&mut child, Duration::from_secs(10)), 0);
    let events: Vec<Value> = out
        .rest(Duration::from_secs(2))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events.iter().all(|e| e["server"].is_string()), "{events:?}");
    let of_prompt: Vec<&Value> = events
        .iter()
        .filter(|e| e["prompt_id"] == submitted.prompt_id.as_str())
        .collect();
    assert!(of_prompt.iter().any(|e| e["event"] == "progress"));
    assert!(
        of_prompt
            .iter()
            .all(|e| e["server"].as_str().unwrap().contains(&port(1)))
    );
    let finished: Vec<&&Value> = of_prompt
        .iter()
        .filter(|e| e["event"] == "finished")
        .collect();
    assert_eq!(finished.len(), 1, "{of_prompt:?}");
    assert_eq!(mocks[1].server.ledger().runs(&submitted.prompt_id), 1);
    mocks[1].rt.block_on(submitter.close());
}
