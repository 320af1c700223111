//! The forwarder: one task per client that takes the client's events in
//! batches (its subscription carries the union of the callbacks' filters)
//! and hands each batch, with the registrations every event matches, to
//! the dispatcher thread as one job.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use comfywire_client::Subscription;

use crate::dispatch::{Backlog, Delivery, Job, Registrations};

/// Most events forwarded to the dispatcher in one job.
const FORWARD_BATCH: usize = 256;
/// Shortest time between two hand-offs to the dispatcher while events
/// trickle in: during a firehose each hand-off wakes the dispatcher thread
/// (and, for Python, takes the GIL), and thousands of small batches a
/// second cost more than the callbacks. A full batch goes at once.
const HAND_OFF_EVERY: Duration = Duration::from_millis(1);

/// Runs until the client closes or the dispatcher stops.
pub(crate) async fn forward_events(
    mut events: Subscription,
    registrations: Arc<Registrations>,
    tx: mpsc::Sender<Job>,
    backlog: Arc<Backlog>,
) {
    let mut taken = Vec::with_capacity(FORWARD_BATCH);
    let mut last_hand_off: Option<tokio::time::Instant> = None;
    loop {
        // Not taking more while the dispatcher is behind leaves the events
        // in the subscription's bounded queue, which coalesces progress.
        backlog.reserve().await;
        let Some(first) = events.recv().await else {
            backlog.release();
            break;
        };
        taken.push(first);
        events.try_recv_many(&mut taken, FORWARD_BATCH - 1);
        if let Some(due) = last_hand_off.map(|at| at + HAND_OFF_EVERY) {
            if taken.len() < FORWARD_BATCH && tokio::time::Instant::now() < due {
                tokio::time::sleep_until(due).await;
                let room = FORWARD_BATCH - taken.len();
                events.try_recv_many(&mut taken, room);
            }
        }
        last_hand_off = Some(tokio::time::Instant::now());
        let mut batch = Vec::new();
        for event in taken.drain(..) {
            let ids = registrations.matching(&event);
            if !ids.is_empty() {
                batch.push(Delivery { ids, event });
            }
        }
        if batch.is_empty() {
            backlog.release();
        } else if tx.send(Job::Calls(batch)).is_err() {
            backlog.release();
            break;
        }
    }
}
