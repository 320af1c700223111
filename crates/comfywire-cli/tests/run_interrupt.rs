//! Ctrl-C interrupts the submitted prompt, and only that one.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use comfywire_client::{Client, ClientConfig, Deadlines};

#[test]
fn ctrl_c_interrupts_the_prompt_and_exits_12() {
    let mock = common::Mock::start(0.1);
    let dir = common::temp_dir("run-interrupt");
    let long = mock.server.workflow("long_run").unwrap();
    let workflow = common::write_json(&dir, "wf.json", &long);
    let mut cmd = common::comfywire(&dir);
    cmd.arg("run").arg(&workflow).args(["--url", &mock.url()]);
    let mut child = cmd.spawn().unwrap();
    let mut err = common::Lines::of(child.stderr.take().unwrap());
    err.until("TestStepProgress", Duration::from_secs(20));
    common::sigint(&child);
    let code = common::wait(&mut child, Duration::from_secs(20));
    let lines = err.rest(Duration::from_secs(5));
    assert_eq!(code, 12, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.starts_with("error: interrupted")),
        "{lines:#?}"
    );
    assert_eq!(mock.server.stats().interrupts, 1);
}

#[test]
fn ctrl_c_leaves_another_clients_queued_prompt_alone() {
    let mock = common::Mock::start(0.1);
    let dir = common::temp_dir("run-interrupt-other");
    let long = mock.server.workflow("long_run").unwrap();
    let workflow = common::write_json(&dir, "wf.json", &long);
    let mut cmd = common::comfywire(&dir);
    cmd.arg("run").arg(&workflow).args(["--url", &mock.url()]);
    let mut child = cmd.spawn().unwrap();
    let mut err = common::Lines::of(child.stderr.take().unwrap());
    err.until("started", Duration::from_secs(20));

    // Bob's prompt waits behind ours.
    let bob = mock
        .rt
        .block_on(Client::connect(ClientConfig::new(mock.url())))
        .unwrap();
    let submitted = mock
        .rt
        .block_on(bob.submit(&mock.server.sample_workflow()))
        .unwrap();
    let queue = mock.rt.block_on(bob.queue()).unwrap();
    assert!(queue.is_pending(&submitted.prompt_id));

    common::sigint(&child);
    let code = common::wait(&mut child, Duration::from_secs(20));
    assert_eq!(code, 12, "{:#?}", err.rest(Duration::from_secs(1)));

    mock.server.set_speed(20.0);
    let deadlines = Deadlines {
        total: Some(Duration::from_secs(30)),
        ..Deadlines::default()
    };
    let result = mock
        .rt
        .block_on(bob.wait(&submitted.prompt_id, deadlines))
        .unwrap();
    assert_eq!(result.record.phase.name(), "succeeded");
    // The mock files the history entry just after the last frame.
    let mut entry = None;
    for _ in 0..50 {
        entry = mock
            .rt
            .block_on(bob.server_history(&submitted.prompt_id))
            .unwrap();
        if entry.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let entry = entry.unwrap();
    assert_eq!(entry["status"]["status_str"], "success");
    assert_eq!(mock.server.stats().interrupts, 1);
    mock.rt.block_on(bob.close());
}
