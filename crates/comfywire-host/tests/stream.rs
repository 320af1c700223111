//! A client's pull stream carries its events and the reports of failing
//! callbacks, in batches, and ends on close.
#![allow(clippy::unwrap_used)]

mod common;

use common::mock;
use std::sync::Arc;
use std::time::Duration;

use comfywire_host::{
    Delivered, ErrorCode, EventCallback, HostClient, HostEvent, JobOptions, Settings, block_on,
};

/// Refuses every `finished` event.
struct Refusing;

impl EventCallback for Refusing {
    fn on_event(&self, _event: &HostEvent) -> Result<(), String> {
        Err("refused".into())
    }
}

#[test]
fn a_stream_carries_events_and_callback_reports_and_ends_on_close() {
    let (rt, server) = mock(0.0);
    let settings = Settings {
        url: Some(server.url()),
        ..Settings::default()
    };
    let host = HostClient::new(&settings).unwrap();
    block_on(host.jobs().wait_connected(Duration::from_secs(5))).unwrap();
    let stream = host.stream().unwrap();
    assert!(stream.try_batch(10).is_empty(), "nothing yet");
    let _refusing = host
        .subscribe(Some(&["finished".into()]), None, Arc::new(Refusing))
        .unwrap();
    let outcome = block_on(
        host.jobs()
            .run(server.sample_workflow(), JobOptions::default()),
    );
    let prompt_id = outcome.unwrap().prompt_id;
    let mut kinds = Vec::new();
    let mut reported = false;
    while !(reported && kinds.contains(&"finished")) {
        let batch = rt
            .block_on(stream.clone().next_batch(Some(Duration::from_secs(5)), 3))
            .expect("an event within 5 s");
        assert!(
            !batch.is_empty() && batch.len() <= 3,
            "{} events",
            batch.len()
        );
        for delivered in batch {
            match delivered {
                Delivered::Client(e) if e.prompt_id() == Some(&prompt_id) => {
                    kinds.push(e.kind().name());
                }
                Delivered::Report(r) => {
                    assert_eq!(r.prompt_id.as_deref(), Some(&*prompt_id));
                    reported = true;
                }
                Delivered::Client(_) => {}
            }
        }
    }
    let started = kinds.iter().position(|k| *k == "execution_started");
    assert!(started < kinds.iter().position(|k| *k == "finished"));
    // A wait in progress ends when the stream closes (with what the
    // server said before the close, e.g. its late `status`, or nothing);
    // the stream stays ended. What has come is read first, so the wait
    // is nearly always one that only the close ends.
    while rt
        .block_on(
            stream
                .clone()
                .next_batch(Some(Duration::from_millis(200)), 10),
        )
        .is_some_and(|b| !b.is_empty())
    {}
    let waiting = rt.spawn(stream.clone().next_batch(None, 10));
    rt.block_on(stream.close());
    let ended = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), waiting).await })
        .expect("the wait ended with the close")
        .unwrap();
    assert!(ended.is_some_and(|b| b.len() <= 10));
    assert_eq!(
        rt.block_on(stream.clone().next_batch(None, 10))
            .map(|b| b.len()),
        Some(0)
    );
    host.close();
    assert_eq!(host.stream().err().map(|e| e.code), Some(ErrorCode::Closed));
}
