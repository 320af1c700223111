//! Delivery of events to many subscribers, each with its own bounded
//! queue, so a slow subscriber never stalls the socket read and a
//! subscriber that never reads never grows without bound.
//!
//! Per subscriber, by kind:
//! * progress, previews and progress text: every value while the queue is
//!   under its capacity and byte limit, then latest wins per stream;
//! * connection-wide state (connection, status, feature flags): a few
//!   held, then the newest held one is replaced (latest wins);
//! * connection-wide noise (unknown and pass-through messages, bad frames,
//!   failed reconciliation requests): 64 held, then new ones are dropped
//!   and counted ([`Subscription::dropped`]);
//! * per-prompt lifecycle and terminal events: never dropped. A
//!   subscriber that lets more than its byte limit of them wait stops
//!   receiving and ends with [`End::Overflow`] after the events it holds.
//!
//! Every event costs the driver O(1) per subscriber.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use comfywire_proto::{Event, EventKind};
use parking_lot::Mutex;
use tokio::sync::Notify;

pub use filter::Filter;
use filter::{KINDS, slot};
use footprint::approx_bytes;

mod filter;
mod footprint;

/// What a subscriber queue does with an event it has no room for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// Progress, previews, progress text: every value while the queue is
    /// under its capacity, then latest wins per (prompt, node) stream.
    Lossy,
    /// Connection-wide state (connection, status, feature flags): up to
    /// this many held, then the newest held one is replaced (latest wins).
    Latest(u32),
    /// Connection-wide noise (unknown and pass-through messages, bad
    /// frames, failed reconciliation requests): up to this many held, then
    /// new ones are dropped and counted.
    Bounded(u32),
    /// Per-prompt lifecycle and terminal events: never dropped; past the
    /// byte limit the subscription ends with [`End::Overflow`].
    Kept,
}

fn policy(kind: EventKind) -> Policy {
    match kind {
        EventKind::Progress | EventKind::Preview | EventKind::ProgressText => Policy::Lossy,
        EventKind::Connection => Policy::Latest(16),
        EventKind::Status | EventKind::FeatureFlags => Policy::Latest(4),
        EventKind::Message | EventKind::BadFrame | EventKind::HttpFailed => Policy::Bounded(64),
        _ => Policy::Kept,
    }
}

/// How a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum End {
    /// The client was closed (or its driver stopped).
    Closed,
    /// The subscriber did not read: the events that are never dropped
    /// (per-prompt lifecycle and terminal events) it held passed
    /// [`crate::ClientConfig::subscriber_max_bytes`]. Delivery to it
    /// stopped at that point; the events held before it are still read
    /// in order, then the stream ends. Subscribe again (and look the
    /// prompts up with `Client::execution`) to go on.
    Overflow {
        /// Estimated bytes of lifecycle events it held, with the one that
        /// did not fit.
        held: usize,
        /// The limit.
        limit: usize,
    },
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Closed => f.write_str("the client is closed"),
            End::Overflow { held, limit } => write!(
                f,
                "the subscriber fell behind: {held} bytes of lifecycle events waiting, over the limit of {limit}"
            ),
        }
    }
}

/// A queued event with the bytes it was counted for.
#[derive(Debug)]
struct Held {
    event: Event,
    bytes: usize,
}

#[derive(Debug, Default)]
struct Queue {
    events: VecDeque<Held>,
    /// The absolute position of `events[0]`: positions stay valid while
    /// events are taken from the front.
    head: u64,
    closed: bool,
    end: Option<End>,
    // Under the queue's lock, which delivery takes anyway, so that a
    // subscription can change what it wants while it lives.
    filter: Filter,
    /// Events held per kind, and the position of the newest one.
    held: [u32; KINDS],
    newest: [u64; KINDS],
    /// Estimated bytes held of events that may be dropped, and of those
    /// that may not.
    droppable_bytes: usize,
    kept_bytes: usize,
    dropped: [u64; KINDS],
    coalesced: [u64; KINDS],
}

impl Queue {
    fn push_back(&mut self, event: Event, bytes: usize, policy: Policy) {
        let held = Held { event, bytes };
        let k = slot(held.event.kind());
        if policy == Policy::Kept {
            self.kept_bytes += held.bytes;
        } else {
            self.droppable_bytes += held.bytes;
        }
        self.held[k] += 1;
        self.newest[k] = self.head + self.events.len() as u64;
        self.events.push_back(held);
    }

    /// Accounts for an event leaving from the front.
    fn taken(&mut self, held: &Held) {
        let kind = held.event.kind();
        self.held[slot(kind)] -= 1;
        if policy(kind) == Policy::Kept {
            self.kept_bytes -= held.bytes;
        } else {
            self.droppable_bytes -= held.bytes;
        }
        self.head += 1;
    }

    fn pop_front(&mut self) -> Option<Event> {
        let held = self.events.pop_front()?;
        self.taken(&held);
        Some(held.event)
    }

    /// Replaces a held event in place (same kind, so the same policy).
    fn replace(&mut self, index: usize, event: Event, bytes: usize) {
        if let Some(slot) = self.events.get_mut(index) {
            self.droppable_bytes = self.droppable_bytes - slot.bytes + bytes;
            slot.bytes = bytes;
            slot.event = event;
        }
    }
}

/// An event on its way to one subscriber: borrowed from the batch (copied
/// only if the subscriber keeps it) or, for the batch's last subscriber,
/// the event itself.
enum Given<'a> {
    Shared(&'a Event),
    Owned(Event),
}

impl Given<'_> {
    fn event(&self) -> &Event {
        match self {
            Given::Shared(event) => event,
            Given::Owned(event) => event,
        }
    }

    fn into_event(self) -> Event {
        match self {
            Given::Shared(event) => event.clone(),
            Given::Owned(event) => event,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Subscriber {
    capacity: usize,
    max_bytes: usize,
    queue: Mutex<Queue>,
    notify: Notify,
}

/// Counters of what subscriber queues coalesced or dropped.
#[derive(Debug, Default)]
pub(crate) struct FanoutStats {
    pub(crate) coalesced: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) overflowed: AtomicU64,
}

#[derive(Debug, Default)]
struct Registry {
    subscribers: Vec<Arc<Subscriber>>,
    /// Set by [`Fanout::close_all`]: later subscriptions start ended.
    closed: bool,
}

#[derive(Debug)]
pub(crate) struct Fanout {
    registry: Mutex<Registry>,
    /// Byte limit of each subscriber's droppable and kept events.
    max_bytes: usize,
    pub(crate) stats: FanoutStats,
}

impl Default for Fanout {
    fn default() -> Fanout {
        Fanout::new(DEFAULT_MAX_BYTES)
    }
}

/// [`crate::ClientConfig::subscriber_max_bytes`] by default.
pub(crate) const DEFAULT_MAX_BYTES: usize = 64 << 20;

fn same_stream(a: &Event, b: &Event) -> bool {
    match (a, b) {
        (Event::Progress(x), Event::Progress(y)) => x.prompt_id == y.prompt_id && x.node == y.node,
        (Event::Preview(x), Event::Preview(y)) => x.prompt_id == y.prompt_id && x.node == y.node,
        (
            Event::ProgressText {
                node: n1,
                prompt_id: p1,
                ..
            },
            Event::ProgressText {
                node: n2,
                prompt_id: p2,
                ..
            },
        ) => n1 == n2 && p1 == p2,
        _ => false,
    }
}

/// What delivery did to one subscriber.
enum Delivered {
    Nothing,
    Added,
    /// It overflowed: wake it and stop delivering to it.
    Ended,
}

impl Fanout {
    /// A fan-out whose subscribers each hold at most `max_bytes` of
    /// droppable events and `max_bytes` of lifecycle events.
    pub(crate) fn new(max_bytes: usize) -> Fanout {
        Fanout {
            registry: Mutex::new(Registry::default()),
            max_bytes: max_bytes.max(1),
            stats: FanoutStats::default(),
        }
    }

    pub(crate) fn subscribe(self: &Arc<Self>, filter: Filter, capacity: usize) -> Subscription {
        let mut registry = self.registry.lock();
        let closed = registry.closed;
        let subscriber = Arc::new(Subscriber {
            capacity: capacity.max(1),
            max_bytes: self.max_bytes,
            queue: Mutex::new(Queue {
                filter,
                closed,
                end: closed.then_some(End::Closed),
                ..Queue::default()
            }),
            notify: Notify::new(),
        });
        if !closed {
            registry.subscribers.push(subscriber.clone());
        }
        Subscription {
            subscriber,
            fanout: Arc::downgrade(self),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.registry.lock().subscribers.len()
    }

    /// Delivers a batch in order to every interested subscriber. Each
    /// event costs each subscriber O(1): a filter check, at most 64 looks
    /// back for a coalescible value, counters.
    pub(crate) fn deliver(&self, batch: Vec<Event>) -> bool {
        if batch.is_empty() {
            return false;
        }
        let mut registry = self.registry.lock();
        if registry.subscribers.is_empty() {
            return false;
        }
        let mut woke = false;
        let sizes: Vec<usize> = batch.iter().map(approx_bytes).collect();
        // The last subscriber takes the batch's events themselves; only
        // the others get copies. With one subscriber (the usual case)
        // nothing is copied: an event's strings and outputs are not
        // allocated again on their way to it.
        let last = registry.subscribers.len();
        let mut owned = Some(batch);
        let mut seen = 0;
        registry.subscribers.retain(|subscriber| {
            seen += 1;
            let mut guard = subscriber.queue.lock();
            let queue = &mut *guard;
            let mut added = false;
            let mut ended = false;
            let mut offer = |given: Given<'_>, bytes: usize| {
                if !queue.filter.wants(given.event()) {
                    return true;
                }
                match self.push(queue, subscriber, given, bytes) {
                    Delivered::Nothing => {}
                    Delivered::Added => added = true,
                    Delivered::Ended => {
                        ended = true;
                        return false;
                    }
                }
                true
            };
            match owned.as_ref() {
                Some(_) if seen == last => {
                    let batch = owned.take().unwrap_or_default();
                    for (event, bytes) in batch.into_iter().zip(&sizes) {
                        if !offer(Given::Owned(event), *bytes) {
                            break;
                        }
                    }
                }
                Some(batch) => {
                    for (event, bytes) in batch.iter().zip(&sizes) {
                        if !offer(Given::Shared(event), *bytes) {
                            break;
                        }
                    }
                }
                None => {}
            }
            drop(guard);
            if added || ended {
                subscriber.notify.notify_one();
                woke = true;
            }
            !ended
        });
        woke
    }

    fn push(
        &self,
        queue: &mut Queue,
        subscriber: &Subscriber,
        given: Given<'_>,
        bytes: usize,
    ) -> Delivered {
        let event = given.event();
        let kind = event.kind();
        let k = slot(kind);
        let policy = policy(kind);
        let room = subscriber.max_bytes.saturating_sub(queue.droppable_bytes) >= bytes;
        match policy {
            Policy::Lossy => {
                if queue.events.len() < subscriber.capacity && room {
                    // A subscriber that keeps up gets every value.
                    queue.push_back(given.into_event(), bytes, policy);
                    return Delivered::Added;
                }
                // Under pressure, latest wins: replace an undelivered
                // value of the same stream, but never move it past a state
                // change of its prompt.
                let mut same = None;
                for (i, held) in queue.events.iter().enumerate().rev().take(64) {
                    if same_stream(&held.event, event) {
                        same = Some((i, held.bytes));
                        break;
                    }
                    if !held.event.kind().is_lossy() && held.event.prompt_id() == event.prompt_id()
                    {
                        break;
                    }
                }
                if let Some((i, old)) = same {
                    if queue.droppable_bytes - old + bytes <= subscriber.max_bytes {
                        queue.replace(i, given.into_event(), bytes);
                        queue.coalesced[k] += 1;
                        self.stats.coalesced.fetch_add(1, Ordering::Relaxed);
                        return Delivered::Added;
                    }
                }
                queue.dropped[k] += 1;
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                Delivered::Nothing
            }
            Policy::Latest(bound) => {
                if (queue.held[k] < bound && room) || queue.held[k] == 0 {
                    queue.push_back(given.into_event(), bytes, policy);
                } else {
                    let index = (queue.newest[k] - queue.head) as usize;
                    queue.replace(index, given.into_event(), bytes);
                    queue.coalesced[k] += 1;
                    self.stats.coalesced.fetch_add(1, Ordering::Relaxed);
                }
                Delivered::Added
            }
            Policy::Bounded(bound) => {
                if queue.held[k] < bound && room {
                    queue.push_back(given.into_event(), bytes, policy);
                    Delivered::Added
                } else {
                    queue.dropped[k] += 1;
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                    Delivered::Nothing
                }
            }
            Policy::Kept => {
                let held = queue.kept_bytes.saturating_add(bytes);
                if held > subscriber.max_bytes && queue.kept_bytes > 0 {
                    // Lifecycle events are never dropped one by one: the
                    // subscription ends, and says why, instead of growing.
                    queue.closed = true;
                    queue.end = Some(End::Overflow {
                        held,
                        limit: subscriber.max_bytes,
                    });
                    self.stats.overflowed.fetch_add(1, Ordering::Relaxed);
                    return Delivered::Ended;
                }
                queue.push_back(given.into_event(), bytes, policy);
                Delivered::Added
            }
        }
    }

    /// Wakes every subscriber with end-of-stream; later subscriptions start
    /// ended.
    pub(crate) fn close_all(&self) {
        let mut registry = self.registry.lock();
        registry.closed = true;
        for subscriber in registry.subscribers.drain(..) {
            {
                let mut queue = subscriber.queue.lock();
                queue.closed = true;
                queue.end.get_or_insert(End::Closed);
            }
            subscriber.notify.notify_one();
        }
    }

    fn remove(&self, subscriber: &Arc<Subscriber>) {
        self.registry
            .lock()
            .subscribers
            .retain(|s| !Arc::ptr_eq(s, subscriber));
    }
}

/// A stream of events; unsubscribes when dropped.
#[derive(Debug)]
pub struct Subscription {
    subscriber: Arc<Subscriber>,
    fanout: Weak<Fanout>,
}

impl Subscription {
    /// The next event; `None` once the stream has ended and the queue is
    /// drained ([`Subscription::end`] says why: the client closed, or this
    /// subscriber fell too far behind).
    pub async fn recv(&mut self) -> Option<Event> {
        self.next_event().await.ok()
    }

    /// The next event, or why the stream ended once it has and the queue
    /// is drained.
    pub async fn next_event(&mut self) -> Result<Event, End> {
        loop {
            let notified = self.subscriber.notify.notified();
            {
                let mut queue = self.subscriber.queue.lock();
                if let Some(e) = queue.pop_front() {
                    return Ok(e);
                }
                if queue.closed {
                    return Err(queue.end.unwrap_or(End::Closed));
                }
            }
            notified.await;
        }
    }

    /// The next event within `timeout`; `Ok(None)` at end of stream,
    /// `Err(())` when the time ran out.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Event>, ()> {
        tokio::time::timeout(timeout, self.recv())
            .await
            .map_err(|_| ())
    }

    /// An event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.subscriber.queue.lock().pop_front()
    }

    /// Moves up to `max` waiting events to the end of `out` under one lock
    /// (a consumer draining a burst takes the queue once, not per event);
    /// returns how many.
    pub fn try_recv_many(&mut self, out: &mut Vec<Event>, max: usize) -> usize {
        let mut queue = self.subscriber.queue.lock();
        let n = max.min(queue.events.len());
        out.reserve(n);
        for _ in 0..n {
            if let Some(e) = queue.pop_front() {
                out.push(e);
            }
        }
        n
    }

    /// Why the stream ended, once it has (events may still be waiting).
    pub fn end(&self) -> Option<End> {
        let queue = self.subscriber.queue.lock();
        if queue.closed {
            Some(queue.end.unwrap_or(End::Closed))
        } else {
            None
        }
    }

    /// Events of `kind` this subscription dropped because it held too many
    /// (coalescible ones past its capacity, connection-wide noise past its
    /// bound).
    pub fn dropped(&self, kind: EventKind) -> u64 {
        self.subscriber.queue.lock().dropped[slot(kind)]
    }

    /// Events of `kind` that replaced an older one still waiting (latest
    /// wins).
    pub fn coalesced(&self, kind: EventKind) -> u64 {
        self.subscriber.queue.lock().coalesced[slot(kind)]
    }

    /// Estimated bytes of the events waiting.
    pub fn pending_bytes(&self) -> usize {
        let queue = self.subscriber.queue.lock();
        queue.droppable_bytes + queue.kept_bytes
    }

    /// Changes which events this subscription receives from now on
    /// (events already queued stay).
    pub fn set_filter(&self, filter: Filter) {
        self.subscriber.queue.lock().filter = filter;
    }

    /// A handle that changes this subscription's filter from elsewhere
    /// while its owner waits in [`Subscription::recv`].
    pub fn filter_handle(&self) -> FilterHandle {
        FilterHandle(Arc::downgrade(&self.subscriber))
    }

    /// Events waiting.
    pub fn pending(&self) -> usize {
        self.subscriber.queue.lock().events.len()
    }

    /// Stops the subscription now (dropping it does the same).
    pub fn cancel(self) {}

    /// The subscription as a `futures` stream.
    pub fn into_stream(self) -> impl futures_util::Stream<Item = Event> + Send + 'static {
        futures_util::stream::unfold(self, |mut s| async move { s.recv().await.map(|e| (e, s)) })
    }
}

/// Changes a subscription's filter; does nothing once it has ended.
#[derive(Debug, Clone)]
pub struct FilterHandle(Weak<Subscriber>);

impl FilterHandle {
    /// What the subscription receives from now on.
    pub fn set(&self, filter: Filter) {
        if let Some(subscriber) = self.0.upgrade() {
            subscriber.queue.lock().filter = filter;
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(fanout) = self.fanout.upgrade() {
            fanout.remove(&self.subscriber);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use comfywire_proto::ProgressUpdate;

    fn step(node: &str, value: f64) -> Event {
        Event::Progress(ProgressUpdate {
            prompt_id: "p".into(),
            node: node.into(),
            display_node: None,
            value,
            max: 10.0,
            overall: 0.0,
            eta: None,
        })
    }

    fn values(events: &[Event]) -> Vec<f64> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Progress(p) => Some(p.value),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_subscriber_that_keeps_up_gets_every_value_and_a_full_one_the_latest() {
        let fanout = Arc::new(Fanout::default());
        let mut sub = fanout.subscribe(Filter::all(), 4);
        fanout.deliver((1..=3).map(|v| step("1", f64::from(v))).collect());
        let mut out = Vec::new();
        assert_eq!(sub.try_recv_many(&mut out, 10), 3);
        assert_eq!(values(&out), [1.0, 2.0, 3.0]);
        assert_eq!(fanout.stats.coalesced.load(Ordering::Relaxed), 0);

        // Seven values of one node into room for four: the first four
        // queue, the rest replace the newest, so the last value survives.
        fanout.deliver((1..=7).map(|v| step("2", f64::from(v))).collect());
        out.clear();
        assert_eq!(sub.try_recv_many(&mut out, 2), 2);
        assert_eq!(sub.try_recv_many(&mut out, 10), 2);
        assert_eq!(values(&out), [1.0, 2.0, 3.0, 7.0]);
        assert_eq!(fanout.stats.coalesced.load(Ordering::Relaxed), 3);
        assert!(sub.try_recv().is_none());
    }

    fn status(n: u64) -> Event {
        Event::Status {
            queue_remaining: Some(n),
            sid: None,
        }
    }

    fn unknown(n: u64) -> Event {
        let text = format!(r#"{{"type": "crystools.monitor", "data": {{"tick": {n}}}}}"#);
        Event::Message(Arc::new(comfywire_proto::ServerMessage::Unknown(
            comfywire_proto::Unknown {
                kind: "crystools.monitor".into(),
                data: serde_json::json!({ "tick": n }),
                raw: comfywire_proto::Frame::text(text),
            },
        )))
    }

    fn bad_frame() -> Event {
        Event::BadFrame {
            error: comfywire_proto::ParseError::InvalidUtf8,
            raw: comfywire_proto::Frame::Binary(bytes::Bytes::from_static(&[0xff, 0xfe])),
        }
    }

    fn http_failed() -> Event {
        Event::HttpFailed {
            request: comfywire_proto::HttpRequest::Queue,
            error: "HTTP 500".into(),
        }
    }

    fn node_started(prompt: u64, node: u64) -> Event {
        Event::NodeStarted {
            prompt_id: format!("p{prompt}").into(),
            node: node.to_string().into(),
            display_node: None,
        }
    }

    #[test]
    fn connection_wide_events_of_a_subscriber_that_never_reads_are_bounded() {
        let fanout = Arc::new(Fanout::default());
        let mut sub = fanout.subscribe(Filter::all(), 1024);
        // A monitor message a second for a day, a bad frame and a failed
        // poll every 2 s for a day, a status a minute: far more than any
        // bound, in batches like the driver's.
        for n in 0..86_400u64 {
            let mut batch = vec![unknown(n)];
            if n % 2 == 0 {
                batch.push(bad_frame());
                batch.push(http_failed());
            }
            if n % 60 == 0 {
                batch.push(status(n));
            }
            fanout.deliver(batch);
            assert!(sub.pending() <= 64 * 3 + 4);
        }
        assert_eq!(sub.pending(), 64 * 3 + 4);
        assert_eq!(sub.dropped(EventKind::Message), 86_400 - 64);
        assert_eq!(sub.dropped(EventKind::BadFrame), 43_200 - 64);
        assert_eq!(sub.dropped(EventKind::HttpFailed), 43_200 - 64);
        assert_eq!(sub.coalesced(EventKind::Status), 1_440 - 4);
        assert!(sub.pending_bytes() < 256 << 10, "{}", sub.pending_bytes());
        // Latest status wins: the newest one held is the last one sent.
        let mut out = Vec::new();
        sub.try_recv_many(&mut out, usize::MAX);
        let statuses: Vec<_> = out
            .iter()
            .filter_map(|e| match e {
                Event::Status {
                    queue_remaining, ..
                } => *queue_remaining,
                _ => None,
            })
            .collect();
        assert_eq!(statuses, [0, 60, 120, 86_340]);
        assert_eq!(sub.pending_bytes(), 0);
        // A subscriber that reads gets every one of them again.
        for n in 0..10 {
            fanout.deliver(vec![status(n), unknown(n), bad_frame()]);
            assert_eq!(sub.try_recv(), Some(status(n)));
            assert_eq!(sub.try_recv(), Some(unknown(n)));
            assert_eq!(sub.try_recv(), Some(bad_frame()));
        }
        assert_eq!(sub.coalesced(EventKind::Status), 1_440 - 4);
    }

    #[tokio::test]
    async fn lifecycle_events_are_kept_then_an_unread_subscriber_overflows_visibly() {
        let fanout = Arc::new(Fanout::new(64 << 10));
        let mut unread = fanout.subscribe(Filter::all(), 1024);
        let mut reader = fanout.subscribe(Filter::all(), 1024);
        let mut sent = Vec::new();
        let mut overflowed_after = None;
        for prompt in 0..10_000u64 {
            let batch: Vec<Event> = (0..4).map(|node| node_started(prompt, node)).collect();
            sent.extend(batch.iter().cloned());
            fanout.deliver(batch);
            // The reader keeps up and gets every one.
            for _ in 0..4 {
                assert!(reader.try_recv().is_some());
            }
            if overflowed_after.is_none() && unread.end().is_some() {
                overflowed_after = Some(sent.len());
            }
            assert!(unread.pending_bytes() <= 64 << 10);
        }
        let at = overflowed_after.expect("the unread subscriber overflowed");
        assert!(at < 4_000, "{at}");
        assert_eq!(
            fanout.len(),
            1,
            "the overflowed subscriber is out of the fan-out"
        );
        assert_eq!(fanout.stats.overflowed.load(Ordering::Relaxed), 1);
        // What it held comes out in order and unchanged, then the end, and
        // why.
        let mut got = Vec::new();
        let end = loop {
            match unread.next_event().await {
                Ok(e) => got.push(e),
                Err(end) => break end,
            }
        };
        assert!(!got.is_empty());
        assert_eq!(got[..], sent[..got.len()]);
        assert!(matches!(end, End::Overflow { limit, held } if limit == 64 << 10 && held > limit));
        assert_eq!(unread.recv().await, None);
        assert_eq!(unread.end(), Some(end));
        assert!(reader.end().is_none());
    }

    #[test]
    fn previews_are_bounded_by_bytes_as_well_as_by_count() {
        let fanout = Arc::new(Fanout::new(8 << 20));
        let sub = fanout.subscribe(Filter::all(), 1024);
        for n in 0..1000u64 {
            // Distinct streams: nothing to coalesce with.
            fanout.deliver(vec![Event::Preview(comfywire_proto::PreviewImage {
                prompt_id: Some(format!("p{n}").into()),
                node: Some("1".into()),
                mime: "image/jpeg".into(),
                image: bytes::Bytes::from(vec![0u8; 1 << 20]),
            })]);
        }
        assert!(sub.pending_bytes() <= 8 << 20);
        assert!(sub.pending() < 8);
        assert_eq!(sub.dropped(EventKind::Preview), 1000 - sub.pending() as u64);
    }

    #[tokio::test]
    async fn a_subscription_made_after_close_ends_at_once() {
        let fanout = Arc::new(Fanout::default());
        let mut before = fanout.subscribe(Filter::all(), 8);
        fanout.close_all();
        let mut after = fanout.subscribe(Filter::all(), 8);
        assert_eq!(before.next_event().await, Err(End::Closed));
        assert_eq!(after.next_event().await, Err(End::Closed));
        assert_eq!(fanout.len(), 0);
    }
}
