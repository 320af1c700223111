//! Each deadline of a wait is its own error; the prompt itself is untouched.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use comfywire_client::{DeadlineKind, Deadlines, Error, EventKind, SubmitOptions};
use comfywire_mock::Fault;

#[tokio::test]
async fn stall_queue_and_total_deadlines_are_distinct_errors() {
    let server = common::mock(2.0).await;
    let client = common::client(&server).await;
    let long = server.workflow("long_run").unwrap();

    // Total: the whole run takes longer than 200 ms.
    let err = client
        .run_with(
            &long,
            SubmitOptions::default(),
            Deadlines {
                total: Some(Duration::from_millis(200)),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Deadline {
                kind: DeadlineKind::Total,
                ..
            }
        ),
        "{err:?}"
    );

    // Queue: behind the still-running long prompt, this one cannot start in 100 ms.
    let err = client
        .run_with(
            &server.sample_workflow(),
            SubmitOptions::default(),
            Deadlines {
                queue: Some(Duration::from_millis(100)),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Deadline {
                kind: DeadlineKind::Queue,
                ..
            }
        ),
        "{err:?}"
    );
    client.clear_queue().await.unwrap();

    // Stall: playback pauses for 3 s while the stall deadline is 300 ms.
    let mut progress = client.on(&[EventKind::Progress]);
    let stalled = client.submit(&long).await.unwrap();
    common::collect_until(&mut progress, |e| e.prompt_id() == Some(&stalled.prompt_id)).await;
    server.inject(Fault::Stall { millis: 3000 });
    let err = client
        .wait(
            &stalled.prompt_id,
            Deadlines {
                stall: Some(Duration::from_millis(300)),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Deadline {
                kind: DeadlineKind::Stall,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), 14);
    client.close().await;
}
