//! Interrupt stops this client's running prompt and never another's.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use comfywire_client::{Error, Event, EventKind, Outcome};

#[tokio::test]
async fn interrupting_the_running_prompt_ends_it_as_interrupted() {
    let server = common::mock(1.0).await;
    let client = common::client(&server).await;
    let mut started = client.on(&[EventKind::Progress]);
    let workflow = server.workflow("long_run").unwrap();
    let submission = client.submit(&workflow).await.unwrap();
    common::collect_until(&mut started, |e| matches!(e, Event::Progress(_))).await;
    assert!(client.interrupt(&submission.prompt_id).await.unwrap());
    let err = client
        .wait(&submission.prompt_id, Default::default())
        .await
        .unwrap_err();
    let Error::Interrupted(record) = err else {
        panic!("{err:?}")
    };
    assert!(matches!(record.outcome, Some(Outcome::Interrupted(_))));
    let history = common::server_history(&client, &submission.prompt_id).await;
    assert_eq!(history["status"]["status_str"], "error");
    client.close().await;
}

#[tokio::test]
async fn another_clients_prompt_is_never_interrupted() {
    let server = common::mock(5.0).await;
    let alice = common::client(&server).await;
    let bob = common::client(&server).await;
    let mut alice_progress = alice.on(&[EventKind::Progress]);
    let a = alice
        .submit(&server.workflow("long_run").unwrap())
        .await
        .unwrap();
    common::collect_until(&mut alice_progress, |e| matches!(e, Event::Progress(_))).await;
    // Bob's prompt waits behind Alice's; interrupting it does nothing while
    // Alice's runs, and never touches hers.
    let b = bob.submit(&server.sample_workflow()).await.unwrap();
    assert!(!bob.interrupt(&b.prompt_id).await.unwrap());
    assert!(!bob.interrupt(&a.prompt_id.replace('-', "")).await.unwrap());
    let ra = alice.wait(&a.prompt_id, Default::default()).await.unwrap();
    assert_eq!(ra.record.phase.name(), "succeeded");
    let rb = tokio::time::timeout(
        Duration::from_secs(20),
        bob.wait(&b.prompt_id, Default::default()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(rb.record.phase.name(), "succeeded");
    assert_eq!(server.stats().interrupts, 0);
    alice.close().await;
    bob.close().await;
}
