//! `comfywire queue` and `comfywire history` against the mock.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use comfywire_client::{Client, ClientConfig};
use serde_json::Value;

#[test]
fn list_delete_interrupt_and_history() {
    let mock = common::Mock::start(0.1);
    let dir = common::temp_dir("queue");
    let client = mock
        .rt
        .block_on(Client::connect(ClientConfig::new(mock.url())))
        .unwrap();
    let running = mock
        .rt
        .block_on(client.submit(&mock.server.workflow("long_run").unwrap()))
        .unwrap();
    let pending = mock
        .rt
        .block_on(client.submit(&mock.server.sample_workflow()))
        .unwrap();
    let cli = |args: &[&str]| {
        let mut cmd = common::comfywire(&dir);
        cmd.args(args).args(["--url", &mock.url()]);
        common::run(cmd, Duration::from_secs(20))
    };
    let listed = cli(&["queue", "list", "--json"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let queue: Value = serde_json::from_str(listed.stdout.trim()).unwrap();
    assert_eq!(queue["pending"][0]["prompt_id"], pending.prompt_id.as_str());
    // Queue numbers are printed as the server wrote them: integers.
    let server_queue = mock.rt.block_on(client.queue()).unwrap();
    assert_eq!(
        queue["pending"][0]["number"].as_i64(),
        Some(server_queue.pending[0].number as i64),
        "{queue}"
    );
    let table = cli(&["queue"]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    let header = table.stdout.lines().next().unwrap_or_default();
    assert!(
        header.contains("state") && header.contains("prompt"),
        "{}",
        table.stdout
    );
    assert!(
        table
            .stdout
            .lines()
            .any(|l| l.contains("pending") && l.contains(&pending.prompt_id)),
        "{}",
        table.stdout
    );

    // Ids that are not pending are not reported as deleted, and nothing
    // changes on the server.
    let missing = cli(&["queue", "delete", "no-such-prompt"]);
    assert_eq!(missing.code, 1, "{}", missing.stdout);
    assert!(
        missing.stdout.contains("deleted nothing"),
        "{}",
        missing.stdout
    );
    assert!(
        missing.stderr.contains("not in the queue: no-such-prompt"),
        "{}",
        missing.stderr
    );
    let not_pending = cli(&["queue", "delete", &running.prompt_id, "--json"]);
    assert_eq!(not_pending.code, 1, "{}", not_pending.stdout);
    let answer: Value = serde_json::from_str(not_pending.stdout.trim()).unwrap();
    assert_eq!(answer["running"][0], running.prompt_id.as_str(), "{answer}");
    assert_eq!(answer["deleted"].as_array().map(Vec::len), Some(0));
    let server_queue = mock.rt.block_on(client.queue()).unwrap();
    assert!(server_queue.is_pending(&pending.prompt_id));
    assert!(server_queue.is_running(&running.prompt_id));

    let deleted = cli(&["queue", "delete", &pending.prompt_id]);
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    assert!(deleted.stdout.contains("deleted 1"), "{}", deleted.stdout);
    assert!(
        !mock
            .rt
            .block_on(client.queue())
            .unwrap()
            .is_pending(&pending.prompt_id)
    );
    // A pending prompt is not interrupted: exit 1.
    assert_eq!(cli(&["queue", "interrupt", &pending.prompt_id]).code, 1);
    // `queue interrupt` only hits the prompt the server runs now, so wait
    // until it has started (the server's queue says so and its first
    // frames are out: the client has seen the start).
    common::eventually(Duration::from_secs(10), "the long run's start", || {
        let queue = mock.rt.block_on(client.queue()).unwrap();
        let record = mock.rt.block_on(client.execution(&running.prompt_id));
        queue.is_running(&running.prompt_id)
            && record.unwrap().is_some_and(|r| r.started_at.is_some())
    });
    let stopped = cli(&["queue", "interrupt", &running.prompt_id]);
    assert_eq!(stopped.code, 0, "{}", stopped.stderr);
    // The server stops the run on its own schedule after the request.
    common::eventually(Duration::from_secs(10), "the interrupt", || {
        mock.server.stats().interrupts == 1
    });

    let human = cli(&["queue"]);
    assert!(
        !human.stdout.contains(&pending.prompt_id),
        "{}",
        human.stdout
    );

    // The interrupted prompt reaches the history.
    common::eventually(Duration::from_secs(10), "the history entry", || {
        let history = cli(&["history", "--json"]);
        let list: Value = serde_json::from_str(history.stdout.trim()).unwrap();
        list.get(&running.prompt_id).is_some()
    });
    let listed = cli(&["history"]);
    assert!(
        listed
            .stdout
            .lines()
            .next()
            .unwrap_or_default()
            .contains("status"),
        "{}",
        listed.stdout
    );
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.contains(&running.prompt_id)),
        "{}",
        listed.stdout
    );
    let one = cli(&["history", &running.prompt_id]);
    assert_eq!(one.code, 0, "{}", one.stderr);
    assert!(one.stdout.contains("error"), "{}", one.stdout);
    assert_eq!(cli(&["history", "no-such-prompt"]).code, 1);
    mock.rt.block_on(client.close());
}
