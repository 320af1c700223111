//! A run owns its prompt: `Jobs::cancel` deletes a pending prompt and
//! interrupts a running one, and a run that is dropped or runs out of time
//! removes its prompt unless detached. Checked against the mock's own
//! ledger (how each prompt left the server), never the client's view.
#![allow(clippy::unwrap_used)]

mod common;

use common::{client, mock, until};
use std::time::Duration;

use comfywire_host::{Cancelled, ErrorCode, HostClient, JobOptions, Settings, block_on};
use comfywire_mock::{MockServer, RunEnd};

#[test]
fn cancel_deletes_a_pending_prompt_and_interrupts_a_running_one() {
    let (_rt, server) = mock(1.0);
    let host = client(&server);
    let jobs = host.jobs();
    let workflow = server.workflow("long_run").unwrap();
    let submit = || {
        block_on(jobs.submit(workflow.clone(), JobOptions::default()))
            .unwrap()
            .prompt_id
    };
    let (running, pending) = (submit(), submit());
    until("the first to run", || server.ledger().runs(&running) == 1);
    assert_eq!(block_on(jobs.cancel(&pending)).unwrap(), Cancelled::Deleted);
    assert_eq!(server.ledger().end(&pending), Some(RunEnd::Deleted));
    assert_eq!(server.ledger().runs(&pending), 0);
    assert_eq!(
        block_on(jobs.cancel(&running)).unwrap(),
        Cancelled::Interrupted
    );
    until("the interrupt", || {
        server.ledger().end(&running) == Some(RunEnd::Interrupted)
    });
    // Ended, or unknown to the server: nothing to do.
    assert_eq!(
        block_on(jobs.cancel(&running)).unwrap(),
        Cancelled::NotActive
    );
    assert_eq!(
        block_on(jobs.cancel("no-such-prompt")).unwrap(),
        Cancelled::NotActive
    );
    host.close();
    assert_eq!(
        block_on(jobs.cancel(&running)).unwrap_err().code,
        ErrorCode::Closed
    );
}

#[test]
fn a_run_out_of_time_removes_its_prompt_unless_detached() {
    let (_rt, server) = mock(1.0);
    let host = client(&server);
    let jobs = host.jobs();
    let workflow = server.workflow("long_run").unwrap();
    let timed = |detach: bool| JobOptions {
        prompt_id: Some(own_prompt_id()),
        timeout: Some(Duration::from_millis(300)),
        detach,
        ..JobOptions::default()
    };
    let owned = timed(false);
    let id = owned.prompt_id.clone().unwrap();
    let err = block_on(jobs.run(workflow.clone(), owned)).unwrap_err();
    assert_eq!(err.code, ErrorCode::Deadline);
    // The delete or interrupt was sent before the error was returned; the
    // server ends an interrupted prompt at its next step.
    until("the timed-out prompt to leave the server", || {
        matches!(
            server.ledger().end(&id),
            Some(RunEnd::Interrupted | RunEnd::Deleted)
        )
    });
    until("its queue to let go of it", || !server.queue_holds(&id));

    let detached = timed(true);
    let id = detached.prompt_id.clone().unwrap();
    let err = block_on(jobs.run(workflow, detached)).unwrap_err();
    assert_eq!(err.code, ErrorCode::Deadline);
    assert!(server.queue_holds(&id), "a detached run leaves its prompt");
    assert_eq!(server.ledger().end(&id), None);
    block_on(jobs.cancel(&id)).unwrap();
    host.close();
}

#[test]
fn a_dropped_run_removes_its_prompt_in_the_background() {
    let (_rt, server) = mock(1.0);
    let host = client(&server);
    let (id, run) = start_owned_run(&host, &server);
    drop(run); // aborts the task: the run's future is dropped
    until("the dropped run's prompt to be interrupted", || {
        server.ledger().end(&id) == Some(RunEnd::Interrupted)
    });
    host.close();
}

#[test]
fn a_run_cancelled_just_before_its_client_closes_still_removes_its_prompt() {
    let (_rt, server) = mock(0.5); // long_run: about 4 s, time to act while it runs
    let host = client(&server);
    let (id, run) = start_owned_run(&host, &server);
    // The abort drops the run's future later, on a worker: the close must
    // not miss the removal that drop starts.
    drop(run);
    host.close();
    until("the prompt to be interrupted", || {
        server.ledger().end(&id) == Some(RunEnd::Interrupted)
    });
}

#[test]
fn a_close_ends_a_waiting_run_and_removes_its_prompt_unless_detached() {
    let (_rt, server) = mock(0.5); // long_run: about 4 s, time to act while it runs
    let host = client(&server);
    let workflow = server.workflow("long_run").unwrap();
    let start = |detach: bool| {
        let jobs = host.jobs().clone();
        let workflow = workflow.clone();
        let id = own_prompt_id();
        let options = JobOptions {
            prompt_id: Some(id.clone()),
            detach,
            ..JobOptions::default()
        };
        let run = std::thread::spawn(move || block_on(jobs.run(workflow, options)));
        (id, run)
    };
    // The owned prompt runs first, the detached one waits behind it.
    let (owned, owned_run) = start(false);
    until("the owned prompt to run", || {
        server.ledger().runs(&owned) == 1
    });
    let (detached, detached_run) = start(true);
    until("the detached prompt to be queued", || {
        server.ledger().enqueued(&detached)
    });
    host.close();
    for run in [owned_run, detached_run] {
        assert_eq!(run.join().unwrap().unwrap_err().code, ErrorCode::Closed);
    }
    until("the owned prompt to be interrupted", || {
        server.ledger().end(&owned) == Some(RunEnd::Interrupted)
    });
    until("the detached prompt to run to its end", || {
        server.ledger().end(&detached) == Some(RunEnd::Succeeded)
    });
}

#[test]
fn a_job_stream_made_after_the_end_replays_it_and_ends() {
    let (_rt, server) = mock(0.0);
    let host = client(&server);
    let jobs = host.jobs();
    let workflow = server.sample_workflow();
    let done = block_on(jobs.run(workflow, JobOptions::default())).unwrap();
    let stream = jobs.job_stream(&done.prompt_id).unwrap();
    let mut kinds = Vec::new();
    for _ in 0..100 {
        let batch = block_on(async {
            Ok(stream
                .clone()
                .next_batch(Some(Duration::from_secs(5)), 64)
                .await)
        })
        .unwrap()
        .expect("the replay comes without waiting for the server");
        if batch.is_empty() {
            break;
        }
        kinds.extend(batch.iter().map(|d| d.kind().name()));
    }
    assert_eq!(kinds.first(), Some(&"prompt_queued"));
    assert_eq!(kinds.last(), Some(&"finished"));
    assert_eq!(kinds.iter().filter(|k| **k == "finished").count(), 1);
    assert!(kinds.contains(&"output"), "{kinds:?}");
    host.close();
}

#[test]
fn a_job_stream_read_one_event_at_a_time_is_the_batch_read_then_closed() {
    let (_rt, server) = mock(0.0);
    let host = client(&server);
    let jobs = host.jobs();
    let done = block_on(jobs.run(server.sample_workflow(), JobOptions::default())).unwrap();
    let kinds_of = |stream: &comfywire_host::EventStream, one_at_a_time: bool| {
        let mut kinds = Vec::new();
        loop {
            let taken = if one_at_a_time {
                match stream.next_event(Duration::from_secs(5)) {
                    Ok(event) => vec![event.expect("the replay comes without waiting")],
                    Err(e) => {
                        assert_eq!(e.code, comfywire_host::ErrorCode::Closed, "{e:?}");
                        break;
                    }
                }
            } else {
                let wait = stream.clone().next_batch(Some(Duration::from_secs(5)), 2);
                let batch = block_on(async { Ok(wait.await) }).unwrap().unwrap();
                if batch.is_empty() {
                    break;
                }
                assert!(batch.len() <= 2, "a batch holds at most its max");
                batch
            };
            kinds.extend(taken.iter().map(|d| d.kind().name()));
            assert!(kinds.len() < 1000, "the stream did not end");
        }
        kinds
    };
    let one = kinds_of(&jobs.job_stream(&done.prompt_id).unwrap(), true);
    let batched = kinds_of(&jobs.job_stream(&done.prompt_id).unwrap(), false);
    assert_eq!(one, batched);
    assert_eq!(one.first(), Some(&"prompt_queued"));
    assert_eq!(one.last(), Some(&"finished"));
    // The server's record: one output event per node it says gave output.
    let history = block_on(jobs.server_history(&done.prompt_id))
        .unwrap()
        .unwrap();
    let outputs = history["outputs"].as_object().map_or(0, |o| o.len());
    assert_eq!(one.iter().filter(|k| **k == "output").count(), outputs);
    host.close();
}

#[test]
fn the_first_run_waits_for_the_socket_and_has_no_gap() {
    let (_rt, server) = mock(0.0);
    // Not waited for: the first submission waits for the first connect.
    let host = HostClient::new(&Settings {
        url: Some(server.url()),
        ..Settings::default()
    })
    .unwrap();
    let outcome = block_on(
        host.jobs()
            .run(server.sample_workflow(), JobOptions::default()),
    )
    .unwrap();
    assert!(!outcome.had_gap, "{outcome:?}");
    host.close();
}

#[test]
fn a_partially_valid_run_reports_its_skipped_outputs() {
    let (_rt, server) = mock(0.0);
    let host = client(&server);
    let workflow = server.workflow("partial_validation").unwrap();
    let outcome = block_on(host.jobs().run(workflow, JobOptions::default())).unwrap();
    let skipped = outcome.skipped_outputs.clone().expect("skipped outputs");
    assert!(
        skipped.as_object().is_some_and(|m| !m.is_empty()),
        "{skipped}"
    );
    assert!(outcome.to_json()["skipped_outputs"].is_object());
    host.close();
}

/// A `long_run` spawned on the host runtime under a prompt id of the
/// test's own, once the server has started it: its id and its task
/// (dropping the task drops the run's future).
fn start_owned_run(
    host: &HostClient,
    server: &MockServer,
) -> (String, comfywire_host::Spawned<comfywire_host::HostOutcome>) {
    let jobs = host.jobs().clone();
    let workflow = server.workflow("long_run").unwrap();
    let id = own_prompt_id();
    let options = JobOptions {
        prompt_id: Some(id.clone()),
        ..JobOptions::default()
    };
    let run = comfywire_host::spawn(async move { jobs.run(workflow, options).await });
    until("the run's prompt to start", || {
        server.ledger().runs(&id) == 1
    });
    (id, run)
}

/// A prompt id of the test's own, so it is known before the run returns.
fn own_prompt_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "cancel-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}
