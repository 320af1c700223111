//! Rate limiting of high-frequency updates (progress, previews) per
//! (prompt, node): at most one per interval, the latest value wins, and a
//! final value or a flush lets the pending one through at once.
//!
//! The session flushes a prompt's pending updates before any state change
//! of that prompt, so order is kept and nothing terminal is ever delayed.

use std::time::Duration;

use web_time::Instant;

#[derive(Debug, Clone)]
struct Slot<V> {
    prompt_id: String,
    node_id: String,
    label: Option<String>,
    last_emit: Option<Instant>,
    pending: Option<(u64, V)>,
}

/// A value taken out of the throttle with the key it was held under.
#[derive(Debug, Clone, PartialEq)]
pub struct Taken<V> {
    /// The prompt.
    pub prompt_id: String,
    /// The node.
    pub node_id: String,
    /// The label given when the key was first seen (e.g. a display node).
    pub label: Option<String>,
    /// The value.
    pub value: V,
}

/// What [`Throttle::offer`] did with a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Offer<V> {
    /// It may go out now.
    Now(V),
    /// It is held as the key's pending value.
    Held {
        /// The older pending value it displaced (now coalesced away),
        /// handed back so that its buffers can be reused.
        replaced: Option<V>,
    },
}

/// A per-(prompt, node) coalescer of values of type `V`.
#[derive(Debug, Clone)]
pub struct Throttle<V> {
    interval: Duration,
    slots: Vec<Slot<V>>,
    sequence: u64,
}

impl<V: Clone> Throttle<V> {
    /// A throttle letting one value per key through per `interval`.
    pub fn new(interval: Duration) -> Self {
        Throttle {
            interval,
            slots: Vec::new(),
            sequence: 0,
        }
    }

    /// The interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    fn slot(&mut self, prompt_id: &str, node_id: &str, label: Option<&str>) -> &mut Slot<V> {
        let index = match self
            .slots
            .iter()
            .position(|s| s.node_id == node_id && s.prompt_id == prompt_id)
        {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    prompt_id: prompt_id.to_owned(),
                    node_id: node_id.to_owned(),
                    label: label.map(str::to_owned),
                    last_emit: None,
                    pending: None,
                });
                self.slots.len() - 1
            }
        };
        &mut self.slots[index]
    }

    /// Offers a value; hands it back when it may go out now, or keeps it as
    /// the pending value of its key. `urgent` values (a node's final value)
    /// always go out at once and replace anything pending.
    pub fn offer(
        &mut self,
        prompt_id: &str,
        node_id: &str,
        label: Option<&str>,
        value: V,
        urgent: bool,
        now: Instant,
    ) -> Offer<V> {
        let interval = self.interval;
        self.sequence += 1;
        let sequence = self.sequence;
        let slot = self.slot(prompt_id, node_id, label);
        let open = slot
            .last_emit
            .is_none_or(|at| now.saturating_duration_since(at) >= interval);
        if urgent || open {
            slot.pending = None;
            slot.last_emit = Some(now);
            Offer::Now(value)
        } else {
            // Keep the first arrival's sequence so flushes keep key order.
            let seq = slot.pending.as_ref().map_or(sequence, |(s, _)| *s);
            let replaced = slot.pending.replace((seq, value)).map(|(_, v)| v);
            Offer::Held { replaced }
        }
    }

    /// The earliest instant at which a pending value becomes due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .filter(|s| s.pending.is_some())
            .filter_map(|s| s.last_emit.map(|at| at + self.interval))
            .min()
    }

    /// Takes the pending values that are due at `now`, oldest first.
    pub fn take_due(&mut self, now: Instant) -> Vec<Taken<V>> {
        let interval = self.interval;
        self.take_where(now, |s| {
            s.last_emit
                .is_none_or(|at| now.saturating_duration_since(at) >= interval)
        })
    }

    /// Takes every pending value of one prompt, oldest first.
    pub fn take_prompt(&mut self, prompt_id: &str, now: Instant) -> Vec<Taken<V>> {
        self.take_where(now, |s| s.prompt_id == prompt_id)
    }

    /// Takes the pending value of one node, if any.
    pub fn take_node(&mut self, prompt_id: &str, node_id: &str, now: Instant) -> Vec<Taken<V>> {
        self.take_where(now, |s| s.prompt_id == prompt_id && s.node_id == node_id)
    }

    fn take_where(&mut self, now: Instant, pick: impl Fn(&Slot<V>) -> bool) -> Vec<Taken<V>> {
        let mut out: Vec<(u64, Taken<V>)> = Vec::new();
        for slot in self.slots.iter_mut() {
            if slot.pending.is_some() && pick(slot) {
                if let Some((seq, value)) = slot.pending.take() {
                    slot.last_emit = Some(now);
                    out.push((
                        seq,
                        Taken {
                            prompt_id: slot.prompt_id.clone(),
                            node_id: slot.node_id.clone(),
                            label: slot.label.clone(),
                            value,
                        },
                    ));
                }
            }
        }
        out.sort_by_key(|(seq, _)| *seq);
        out.into_iter().map(|(_, t)| t).collect()
    }

    /// Drops every slot of a prompt (after it has been flushed).
    pub fn forget_prompt(&mut self, prompt_id: &str) {
        self.slots.retain(|s| s.prompt_id != prompt_id);
    }

    /// Drops one node's slot (after it has been flushed).
    pub fn forget_node(&mut self, prompt_id: &str, node_id: &str) {
        self.slots
            .retain(|s| !(s.prompt_id == prompt_id && s.node_id == node_id));
    }

    /// Number of keys held (bounded by the nodes in flight).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}
