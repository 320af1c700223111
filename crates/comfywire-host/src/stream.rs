//! [`EventStream`]: a pull stream of every event of one client with the
//! reports of failing callbacks merged in, for bindings with an iterator
//! of their own (Python's `Client.events()`). Events are taken in batches
//! (one wait, then whatever is already queued), so a fast producer costs a
//! waiting reader one wake-up per batch, not one per event.

use std::sync::Arc;
use std::time::Duration;

use comfywire_client::{Event, Subscription};
use tokio::sync::{Mutex, Notify, mpsc};

use crate::client::Delivered;
use crate::dispatch::{CallbackHandle, EventCallback};
use crate::model::HostEvent;

/// Callback failure reports a stream buffers before the newest are dropped.
const REPORT_BACKLOG: usize = 256;

/// Forwards callback failure reports into a stream.
pub(crate) struct ReportForward(mpsc::Sender<HostEvent>);

impl ReportForward {
    /// The forwarder and the receiving end of its reports.
    pub(crate) fn new() -> (ReportForward, mpsc::Receiver<HostEvent>) {
        let (tx, rx) = mpsc::channel(REPORT_BACKLOG);
        (ReportForward(tx), rx)
    }
}

impl EventCallback for ReportForward {
    fn on_event(&self, event: &HostEvent) -> Result<(), String> {
        // Bounded: a stream nobody reads drops reports, never blocks.
        let _ = self.0.try_send(event.clone());
        Ok(())
    }
}

struct Source {
    events: Subscription,
    reports: mpsc::Receiver<HostEvent>,
    /// Keeps the report forwarder registered for the stream's life.
    _forward: CallbackHandle,
    /// Reused between batches: events taken from the queue in one go.
    scratch: Vec<Event>,
}

impl Source {
    /// Moves what is already queued into `batch`, up to `max` in all:
    /// reports first, then the events in one lock of their queue.
    fn drain_ready(&mut self, batch: &mut Vec<Delivered>, max: usize) {
        while let Ok(report) = self.reports.try_recv() {
            batch.push(Delivered::Report(report));
        }
        let room = max.saturating_sub(batch.len());
        self.events.try_recv_many(&mut self.scratch, room);
        batch.extend(self.scratch.drain(..).map(Delivered::Client));
    }
}

/// A pull stream of a client's events and callback failure reports. Clones
/// read the same stream; it ends when the client closes or on
/// [`EventStream::close`].
#[derive(Clone)]
pub struct EventStream {
    /// `None` once closed. Tokio's mutex: a wait holds it across awaits.
    source: Arc<Mutex<Option<Source>>>,
    /// Ends a wait in progress when the stream is closed.
    closing: Arc<Notify>,
}

impl EventStream {
    pub(crate) fn new(
        events: Subscription,
        reports: mpsc::Receiver<HostEvent>,
        forward: CallbackHandle,
    ) -> EventStream {
        let source = Source {
            events,
            reports,
            _forward: forward,
            scratch: Vec::new(),
        };
        EventStream {
            source: Arc::new(Mutex::new(Some(source))),
            closing: Arc::default(),
        }
    }

    /// What is queued now, up to `max`, without waiting (nothing while
    /// another reader waits, or once closed).
    pub fn try_batch(&self, max: usize) -> Vec<Delivered> {
        let mut batch = Vec::new();
        if let Ok(mut source) = self.source.try_lock() {
            if let Some(source) = source.as_mut() {
                source.drain_ready(&mut batch, max);
            }
        }
        batch
    }

    /// Waits up to `limit` (forever when `None`) for an event, then takes
    /// what is queued, up to `max`: `None` when the time ran out, an empty
    /// batch once the stream or the client closed, for good.
    pub async fn next_batch(self, limit: Option<Duration>, max: usize) -> Option<Vec<Delivered>> {
        let mut guard = self.source.lock().await;
        let Some(source) = guard.as_mut() else {
            return Some(Vec::new());
        };
        let first = async {
            tokio::select! {
                e = source.events.recv() => e.map(Delivered::Client),
                Some(r) = source.reports.recv() => Some(Delivered::Report(r)),
                () = self.closing.notified() => None,
            }
        };
        let first = match limit {
            Some(limit) => tokio::time::timeout(limit, first).await.ok()?,
            None => first.await,
        };
        let mut batch = Vec::new();
        match first {
            Some(first) => {
                batch.push(first);
                source.drain_ready(&mut batch, max);
            }
            None => drop(guard.take()),
        }
        Some(batch)
    }

    /// Closes the stream: a wait in progress ends (as does the next one,
    /// if none is waiting now) and the queue is released once the returned
    /// future ran.
    pub fn close(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.closing.notify_one();
        let source = self.source.clone();
        async move {
            source.lock().await.take();
        }
    }
}
