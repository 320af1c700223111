//! Delivery of events to many subscribers, each with its own bounded
//! queue, so a slow subscriber never stalls the socket read. Progress,
//! previews and progress text are coalesced (latest wins) under pressure;
//! every other event is always delivered.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use comfywire_proto::{Event, EventKind};
use parking_lot::Mutex;
use tokio::sync::Notify;

/// Which events a subscription receives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    kinds: Option<u32>,
    prompt_id: Option<String>,
}

impl Filter {
    /// Every event.
    pub fn all() -> Filter {
        Filter::default()
    }

    /// Only these kinds.
    pub fn kinds(kinds: &[EventKind]) -> Filter {
        Filter {
            kinds: Some(kinds.iter().fold(0, |mask, k| mask | bit(*k))),
            prompt_id: None,
        }
    }

    /// Only events of one prompt (plus connection changes, which concern
    /// every prompt).
    pub fn prompt(mut self, prompt_id: impl Into<String>) -> Filter {
        self.prompt_id = Some(prompt_id.into());
        self
    }

    /// Nothing at all (the start of a [`Filter::union`]).
    pub fn none() -> Filter {
        Filter {
            kinds: Some(0),
            prompt_id: None,
        }
    }

    /// What either filter lets through: the kinds of both, and one prompt
    /// only when both are limited to that same prompt.
    pub fn union(&self, other: &Filter) -> Filter {
        let kinds = match (self.kinds, other.kinds) {
            (Some(a), Some(b)) => Some(a | b),
            _ => None,
        };
        // A filter that lets nothing through does not widen the prompt.
        let prompt_id = match (self.kinds, other.kinds) {
            (Some(0), _) => other.prompt_id.clone(),
            (_, Some(0)) => self.prompt_id.clone(),
            _ if self.prompt_id == other.prompt_id => self.prompt_id.clone(),
            _ => None,
        };
        Filter { kinds, prompt_id }
    }

    /// True when `kind` may pass (whatever the prompt).
    pub fn wants_kind(&self, kind: EventKind) -> bool {
        self.kinds.is_none_or(|mask| mask & bit(kind) != 0)
    }

    /// True when this filter lets `event` through.
    pub fn wants(&self, event: &Event) -> bool {
        if let Some(mask) = self.kinds {
            if mask & bit(event.kind()) == 0 {
                return false;
            }
        }
        match &self.prompt_id {
            None => true,
            Some(p) => event.prompt_id() == Some(p) || event.kind() == EventKind::Connection,
        }
    }
}

fn bit(kind: EventKind) -> u32 {
    let index = EventKind::ALL.iter().position(|k| *k == kind).unwrap_or(31);
    1u32 << index
}

#[derive(Debug, Default)]
struct Queue {
    events: VecDeque<Event>,
    closed: bool,
    // Under the queue's lock, which delivery takes anyway, so that a
    // subscription can change what it wants while it lives.
    filter: Filter,
}

#[derive(Debug)]
pub(crate) struct Subscriber {
    capacity: usize,
    queue: Mutex<Queue>,
    notify: Notify,
}

/// Counters of what subscriber queues coalesced or dropped.
#[derive(Debug, Default)]
pub(crate) struct FanoutStats {
    pub(crate) coalesced: AtomicU64,
    pub(crate) dropped: AtomicU64,
}

#[derive(Debug, Default)]
pub(crate) struct Fanout {
    subscribers: Mutex<Vec<Arc<Subscriber>>>,
    pub(crate) stats: FanoutStats,
}

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

impl Fanout {
    pub(crate) fn subscribe(self: &Arc<Self>, filter: Filter, capacity: usize) -> Subscription {
        let subscriber = Arc::new(Subscriber {
            capacity: capacity.max(1),
            queue: Mutex::new(Queue {
                filter,
                ..Queue::default()
            }),
            notify: Notify::new(),
        });
        self.subscribers.lock().push(subscriber.clone());
        Subscription {
            subscriber,
            fanout: Arc::downgrade(self),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.subscribers.lock().len()
    }

    /// Delivers a batch in order to every interested subscriber.
    pub(crate) fn deliver(&self, batch: Vec<Event>) {
        if batch.is_empty() {
            return;
        }
        let subscribers = self.subscribers.lock();
        for subscriber in subscribers.iter() {
            let mut guard = subscriber.queue.lock();
            let queue = &mut *guard;
            let mut added = false;
            for event in batch.iter().filter(|e| queue.filter.wants(e)) {
                self.push(&mut queue.events, event, subscriber.capacity);
                added = true;
            }
            drop(guard);
            if added {
                subscriber.notify.notify_one();
            }
        }
    }

    fn push(&self, queue: &mut VecDeque<Event>, event: &Event, capacity: usize) {
        if event.kind().is_lossy() {
            if queue.len() < capacity {
                // A subscriber that keeps up gets every value.
                queue.push_back(event.clone());
                return;
            }
            // Under pressure, latest wins: replace an undelivered value of
            // the same stream, but never move it past a state change of
            // its prompt.
            for slot in queue.iter_mut().rev().take(64) {
                if same_stream(slot, event) {
                    *slot = event.clone();
                    self.stats.coalesced.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                if !slot.kind().is_lossy() && slot.prompt_id() == event.prompt_id() {
                    break;
                }
            }
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        } else if queue.len() >= capacity {
            // Lifecycle and terminal events are never dropped: make room
            // by dropping the oldest coalescible one, if any.
            if let Some(i) = queue.iter().position(|e| e.kind().is_lossy()) {
                queue.remove(i);
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        queue.push_back(event.clone());
    }

    /// Wakes every subscriber with end-of-stream.
    pub(crate) fn close_all(&self) {
        for subscriber in self.subscribers.lock().drain(..) {
            subscriber.queue.lock().closed = true;
            subscriber.notify.notify_one();
        }
    }

    fn remove(&self, subscriber: &Arc<Subscriber>) {
        self.subscribers
            .lock()
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
    /// The next event; `None` once the client is closed and the queue is
    /// drained.
    pub async fn recv(&mut self) -> Option<Event> {
        loop {
            let notified = self.subscriber.notify.notified();
            {
                let mut queue = self.subscriber.queue.lock();
                if let Some(e) = queue.events.pop_front() {
                    return Some(e);
                }
                if queue.closed {
                    return None;
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
        self.subscriber.queue.lock().events.pop_front()
    }

    /// Moves up to `max` waiting events to the end of `out` under one lock
    /// (a consumer draining a burst takes the queue once, not per event);
    /// returns how many.
    pub fn try_recv_many(&mut self, out: &mut Vec<Event>, max: usize) -> usize {
        let mut queue = self.subscriber.queue.lock();
        let n = max.min(queue.events.len());
        out.extend(queue.events.drain(..n));
        n
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
}
