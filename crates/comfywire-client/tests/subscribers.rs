//! Many subscribers at once; a slow one never stalls the others or the
//! socket, and still gets every lifecycle and terminal event.
#![allow(clippy::unwrap_used)]

mod common;

use comfywire_client::{Client, Event, EventKind, Filter};

#[tokio::test]
async fn a_slow_subscriber_is_coalesced_and_never_loses_lifecycle_events() {
    let server = common::mock(0.0).await;
    let mut config = common::config(&server.url());
    config.subscriber_capacity = 8;
    // Unthrottled, so the subscriber queues themselves must coalesce.
    config.session.progress_interval = std::time::Duration::ZERO;
    config.session.preview_interval = std::time::Duration::ZERO;
    let client = Client::connect(config).await.unwrap();
    client
        .wait_connected(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    // Fast subscribers read as events come, on their own tasks.
    let fast: Vec<_> = (0..4)
        .map(|_| {
            let mut sub = client.events();
            tokio::spawn(async move {
                let mut done = 0;
                common::collect_until(&mut sub, |e| {
                    done += usize::from(matches!(e, Event::Finished(_)));
                    done == 3
                })
                .await
            })
        })
        .collect();
    let mut slow = client.events();
    let mut finished_only = client.on(&[EventKind::Finished]);
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(
            client
                .submit(&server.workflow("long_run").unwrap())
                .await
                .unwrap(),
        );
    }
    let mut fast_seen = Vec::new();
    for task in fast {
        let seen = task.await.unwrap();
        common::assert_exactly_one_terminal(&seen);
        fast_seen.push(seen);
    }
    // The slow subscriber starts reading only now.
    let mut slow_seen = Vec::new();
    while let Some(e) = slow.try_recv() {
        slow_seen.push(e);
    }
    let kinds = |v: &[Event], k: EventKind| v.iter().filter(|e| e.kind() == k).count();
    for k in [
        EventKind::Finished,
        EventKind::ExecutionStarted,
        EventKind::Output,
        EventKind::NodeStarted,
        EventKind::NodeFinished,
    ] {
        assert_eq!(kinds(&slow_seen, k), kinds(&fast_seen[0], k), "{k:?}");
    }
    assert!(
        slow_seen.len() < fast_seen[0].len(),
        "nothing was coalesced: slow {} fast {} progress {} previews {}",
        slow_seen.len(),
        fast_seen[0].len(),
        kinds(&fast_seen[0], EventKind::Progress),
        kinds(&fast_seen[0], EventKind::Preview)
    );
    common::assert_exactly_one_terminal(&slow_seen);
    let stats = client.stats();
    assert!(stats.subscriber_coalesced + stats.subscriber_dropped > 0);
    for _ in 0..3 {
        assert!(matches!(
            finished_only.recv().await,
            Some(Event::Finished(_))
        ));
    }
    assert!(finished_only.try_recv().is_none());
    // The fast subscribers ended with their tasks.
    assert_eq!(client.stats().subscribers, 2);
    let prompt_filtered = client.subscribe(Filter::all().prompt(runs[0].prompt_id.clone()));
    assert_eq!(client.stats().subscribers, 3);
    drop(prompt_filtered);
    assert_eq!(
        client.stats().subscribers,
        2,
        "dropping a subscription unsubscribes"
    );
    client.close().await;
}
