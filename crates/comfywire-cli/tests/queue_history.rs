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

    assert_eq!(cli(&["queue", "delete", &pending.prompt_id]).code, 0);
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
    let one = cli(&["history", &running.prompt_id]);
    assert_eq!(one.code, 0, "{}", one.stderr);
    assert!(one.stdout.contains("error"), "{}", one.stdout);
    assert_eq!(cli(&["history", "no-such-prompt"]).code, 1);
    mock.rt.block_on(client.close());
}
