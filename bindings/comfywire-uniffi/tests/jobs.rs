//! The job calls this crate maps beside the listeners, without a foreign
//! runtime: `cancel` deletes a queued prompt, interrupts the running one
//! and leaves an ended one alone, as the mock's ledger says; `job_events`
//! reads one prompt's events one at a time from its queueing to its
//! `finished` (with the outputs the server's history holds), then
//! `Closed`, the same when made after the end; its `shutdown` ends a read
//! waiting on another thread, and the client's ends the stream too. The
//! rules are the host's (its `tests/cancel.rs` and `tests/stream.rs`);
//! this checks the mapping.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use comfywire_mock::{MockServer, RunEnd};
use comfywire_uniffi::{Cancelled, Client, ComfyError, HostEvent, JobEvents, JobOptions};
use common::{block_on, eventually, mock, options};

fn connected(server: &MockServer) -> Arc<Client> {
    let client = Client::new(options(server)).unwrap();
    // Connected first: the client does not settle a prompt that ends
    // before its first connection.
    block_on(client.wait_connected(10_000)).unwrap();
    client
}

fn submit(client: &Client, workflow: &str) -> String {
    block_on(client.submit(workflow.to_owned(), JobOptions::default()))
        .unwrap()
        .prompt_id
}

#[test]
fn cancel_deletes_a_queued_prompt_interrupts_the_running_one_and_leaves_an_ended_one() {
    let (_rt, server) = mock();
    server.set_speed(0.5); // long_run: about 4 s, time to act while it runs
    let client = connected(&server);
    let workflow = server.workflow("long_run").unwrap().to_string();
    let (running, queued) = (submit(&client, &workflow), submit(&client, &workflow));
    assert!(eventually(Duration::from_secs(10), || server
        .ledger()
        .runs(&running)
        == 1));
    let cancel = |id: &str| block_on(client.cancel(id.to_owned())).unwrap();
    assert_eq!(cancel(&queued), Cancelled::Deleted);
    assert_eq!(server.ledger().end(&queued), Some(RunEnd::Deleted));
    assert_eq!(server.ledger().runs(&queued), 0);
    assert_eq!(cancel(&running), Cancelled::Interrupted);
    assert!(eventually(Duration::from_secs(10), || server
        .ledger()
        .end(&running)
        == Some(RunEnd::Interrupted)));
    assert_eq!(cancel(&running), Cancelled::NotActive);
    assert_eq!(cancel("no-such-prompt"), Cancelled::NotActive);
    client.shutdown();
}

/// Reads `events` one at a time up to its `finished`, then checks that the
/// stream has ended for good.
fn read_to_the_end(events: &JobEvents) -> Vec<HostEvent> {
    let mut read = Vec::new();
    while read
        .last()
        .is_none_or(|e: &HostEvent| e.kind.name() != "finished")
    {
        let event = events.next_event(10_000).unwrap();
        read.push(event.expect("an event of a prompt that ends in milliseconds"));
    }
    for _ in 0..2 {
        assert!(matches!(
            events.next_event(1_000),
            Err(ComfyError::Closed { .. })
        ));
    }
    read
}

#[test]
fn job_events_run_from_queued_to_finished_then_closed_also_when_made_after_the_end() {
    let (_rt, server) = mock();
    let client = connected(&server);
    let id = submit(&client, &server.sample_workflow().to_string());
    let live = read_to_the_end(&client.job_events(id.clone()).unwrap());
    let late = read_to_the_end(&client.job_events(id.clone()).unwrap());
    let history = server.history_entry(&id).expect("the server's history");
    let with_outputs: BTreeSet<String> = history["outputs"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert!(!with_outputs.is_empty());
    for events in [live, late] {
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.name()).collect();
        assert!(events.iter().all(|e| e.prompt_id.as_deref() == Some(&*id)));
        assert_eq!(kinds.first(), Some(&"prompt_queued"), "{kinds:?}");
        assert_eq!(kinds.iter().filter(|k| **k == "finished").count(), 1);
        let outputs: BTreeSet<String> = events
            .iter()
            .filter(|e| e.kind.name() == "output")
            .filter_map(|e| e.node.clone())
            .collect();
        assert_eq!(outputs, with_outputs);
    }
    client.shutdown();
}

#[test]
fn shutdown_ends_a_read_waiting_on_another_thread_and_so_does_the_clients() {
    let (_rt, server) = mock();
    server.set_speed(0.25); // long_run: about 8 s, it is still running at the end
    let client = connected(&server);
    let id = submit(&client, &server.workflow("long_run").unwrap().to_string());
    let events = client.job_events(id.clone()).unwrap();
    let first = events.next_event(10_000).unwrap().unwrap();
    assert_eq!(first.kind.name(), "prompt_queued");
    let reader = {
        let events = events.clone();
        std::thread::spawn(move || {
            loop {
                match events.next_event(30_000) {
                    Ok(Some(_)) => continue,
                    Ok(None) => return None,
                    Err(error) => return Some(error),
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    events.shutdown();
    // Not ended by the shutdown, the read would run out of its 30 s.
    let error = reader
        .join()
        .unwrap()
        .expect("the read was ended, not timed out");
    assert!(matches!(error, ComfyError::Closed { .. }), "{error:?}");
    // The prompt goes on: the stream ended, not the prompt.
    assert_eq!(server.ledger().end(&id), None);
    assert!(matches!(
        events.next_event(0),
        Err(ComfyError::Closed { .. })
    ));
    events.shutdown();

    // The client's shutdown ends a stream of a prompt still running too:
    // what was queued already may come first, then `Closed`.
    let other = client.job_events(id.clone()).unwrap();
    let first = other.next_event(10_000).unwrap().unwrap();
    assert_eq!(first.kind.name(), "prompt_queued");
    client.shutdown();
    for read in 0.. {
        match other.next_event(5_000) {
            Ok(Some(_)) if read < 1_000 => {}
            Ok(event) => panic!("not closed by the client's shutdown: {event:?}"),
            Err(error) => {
                assert!(matches!(error, ComfyError::Closed { .. }), "{error:?}");
                break;
            }
        }
    }
    assert_eq!(server.ledger().end(&id), None, "the prompt goes on");
}
