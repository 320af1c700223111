//! `comfywire batch` over three mocks, checked against their ledgers.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use serde_json::Value;

#[test]
fn a_batch_spreads_over_the_servers_downloads_and_fails_when_a_prompt_fails() {
    let mocks = [
        common::Mock::start(20.0),
        common::Mock::start(20.0),
        common::Mock::start(20.0),
    ];
    let dir = common::temp_dir("batch");
    let good = dir.join("good.json");
    std::fs::write(
        &good,
        mocks[0]
            .server
            .workflow("success_single")
            .unwrap()
            .to_string(),
    )
    .unwrap();
    let out = dir.join("out");
    let mut cmd = common::comfywire(&dir);
    cmd.args(["batch", "--repeat", "6", "--json", "--out"])
        .arg(&out)
        .arg(&good);
    for m in &mocks {
        cmd.args(["--url", &m.url()]);
    }
    let done = common::run(cmd, Duration::from_secs(60));
    assert_eq!(done.code, 0, "stderr: {}", done.stderr);
    let outcomes: Vec<Value> = done
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"] == "outcome")
        .collect();
    assert_eq!(outcomes.len(), 6, "{}", done.stdout);
    let mut per_server = [0usize; 3];
    for o in &outcomes {
        assert_eq!(o["status"], "succeeded", "{o}");
        let id = o["prompt_id"].as_str().unwrap();
        // The server the CLI names is the one whose ledger ran it, once.
        let ran: Vec<usize> = (0..3)
            .filter(|i| mocks[*i].server.ledger().runs(id) == 1)
            .collect();
        assert_eq!(ran.len(), 1, "{id} ran on {ran:?}");
        assert!(
            o["server"]
                .as_str()
                .unwrap()
                .contains(&mocks[ran[0]].server.addr().port().to_string())
        );
        per_server[ran[0]] += 1;
        for file in o["files"].as_array().unwrap() {
            assert!(
                std::path::Path::new(file.as_str().unwrap()).is_file(),
                "{file}"
            );
        }
    }
    assert!(per_server.iter().all(|n| *n > 0), "{per_server:?}");
    // Live events carry their server.
    assert!(
        done.stdout
            .lines()
            .any(|l| l.contains("\"server\"") && l.contains("\"progress\""))
    );

    // A workflow that fails on the server: exit 11, and the others still run.
    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        mocks[0]
            .server
            .workflow("execution_error")
            .unwrap()
            .to_string(),
    )
    .unwrap();
    let mut cmd = common::comfywire(&dir);
    cmd.args(["batch"]).arg(&good).arg(&bad);
    for m in &mocks {
        cmd.args(["--url", &m.url()]);
    }
    let done = common::run(cmd, Duration::from_secs(60));
    assert_eq!(
        done.code, 11,
        "stdout: {} stderr: {}",
        done.stdout, done.stderr
    );
    assert!(done.stdout.contains("1 of 2 succeeded"), "{}", done.stdout);
    assert!(
        done.stderr.contains("1 of 2 prompt(s) did not succeed"),
        "{}",
        done.stderr
    );
}
