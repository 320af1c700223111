//! Rate limiting of high-frequency updates (progress, previews) per
//! (prompt, node): at most one per interval, the latest value wins, and a
//! final value or a flush lets the pending one through at once.
//!
//! The session flushes a prompt's pending updates before any state change
//! of that prompt, so order is kept and nothing terminal is ever delayed.
//!
//! The throttle is bounded by itself: it holds at most
//! [`Throttle::capacity`] keys, and a new key beyond that evicts the key
//! touched least recently (its pending value, if any, is dropped and
//! counted in [`Throttle::evicted_pending`]). A server that names a
//! million prompt ids therefore costs a bounded table, and every per-frame
//! call ([`Throttle::offer`], [`Throttle::next_deadline`]) costs the same
//! however many ids it has named: a hash lookup, a list relink, and a
//! look at the earliest entry of an ordered set of pending keys.
//! [`Throttle::release`] drops a prompt's keys at once when its record
//! goes away without a flush (an evicted record of another client).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use web_time::Instant;

use crate::hash::FastMap;

/// No slot (the end of the recency list).
const NIL: u32 = u32::MAX;

/// A new slot's prompt, node and label.
type Key = (Arc<str>, Arc<str>, Option<Arc<str>>);

#[derive(Debug, Clone)]
struct Slot<V> {
    prompt_id: Arc<str>,
    node_id: Arc<str>,
    label: Option<Arc<str>>,
    last_emit: Option<Instant>,
    pending: Option<(u64, V)>,
    /// When the pending value becomes due: `last_emit + interval`, kept
    /// in [`Throttle::due`] under this key while a value is pending;
    /// `None` when that sum does not fit an `Instant` (never due by time).
    due: Option<Instant>,
    /// Neighbours in the recency list: `prev` is more recent.
    prev: u32,
    next: u32,
}

/// A value taken out of the throttle with the key it was held under.
/// The key's strings are the slot's own, shared: taking a value copies
/// no string.
#[derive(Debug, Clone, PartialEq)]
pub struct Taken<V> {
    /// The prompt.
    pub prompt_id: Arc<str>,
    /// The node.
    pub node_id: Arc<str>,
    /// The label given when the key was first seen (e.g. a display node).
    pub label: Option<Arc<str>>,
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

/// A per-(prompt, node) coalescer of values of type `V`, holding at most
/// [`Throttle::capacity`] keys.
#[derive(Debug, Clone)]
pub struct Throttle<V> {
    interval: Duration,
    capacity: usize,
    /// Slot storage; freed slots are listed in `free` and reused.
    slots: Vec<Option<Slot<V>>>,
    free: Vec<u32>,
    /// prompt → node → slot; the keys share the slot's strings.
    index: FastMap<Arc<str>, FastMap<Arc<str>, u32>>,
    /// The node map of the last prompt to lose its last key, emptied and
    /// kept: a prompt's nodes start and end one after another, and each
    /// would otherwise free the map and allocate a new one.
    spare: FastMap<Arc<str>, u32>,
    /// Most and least recently touched slots.
    head: u32,
    tail: u32,
    live: usize,
    /// Pending slots by due time.
    due: BTreeSet<(Instant, u32)>,
    sequence: u64,
    evicted: u64,
    evicted_pending: u64,
}

impl<V: Clone> Throttle<V> {
    /// Keys held by [`Throttle::new`]: far more than the nodes one server
    /// runs at once (finished nodes and prompts release theirs).
    pub const DEFAULT_CAPACITY: usize = 1024;

    /// A throttle letting one value per key through per `interval`,
    /// holding at most [`Throttle::DEFAULT_CAPACITY`] keys.
    pub fn new(interval: Duration) -> Self {
        Self::with_capacity(interval, Self::DEFAULT_CAPACITY)
    }

    /// A throttle holding at most `capacity` keys (at least 1).
    pub fn with_capacity(interval: Duration, capacity: usize) -> Self {
        let capacity = capacity.clamp(1, NIL as usize - 1);
        Throttle {
            interval,
            capacity,
            slots: Vec::new(),
            free: Vec::new(),
            index: FastMap::default(),
            spare: FastMap::default(),
            head: NIL,
            tail: NIL,
            live: 0,
            due: BTreeSet::new(),
            sequence: 0,
            evicted: 0,
            evicted_pending: 0,
        }
    }

    /// The interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The most keys held at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Keys evicted (least recently touched first) to make room for new
    /// ones since the throttle was made.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Pending values dropped with an evicted key.
    pub fn evicted_pending(&self) -> u64 {
        self.evicted_pending
    }

    fn get(&self, id: u32) -> &Slot<V> {
        match self.slots.get(id as usize) {
            Some(Some(slot)) => slot,
            _ => unreachable!("slot ids in the index and lists are live"),
        }
    }

    fn get_mut(&mut self, id: u32) -> &mut Slot<V> {
        match self.slots.get_mut(id as usize) {
            Some(Some(slot)) => slot,
            _ => unreachable!("slot ids in the index and lists are live"),
        }
    }

    fn unlink(&mut self, id: u32) {
        let (prev, next) = {
            let s = self.get(id);
            (s.prev, s.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.get_mut(p).next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.get_mut(n).prev = prev,
        }
    }

    fn push_front(&mut self, id: u32) {
        let head = self.head;
        {
            let s = self.get_mut(id);
            s.prev = NIL;
            s.next = head;
        }
        match head {
            NIL => self.tail = id,
            h => self.get_mut(h).prev = id,
        }
        self.head = id;
    }

    /// Marks a slot as the most recently touched.
    fn touch(&mut self, id: u32) {
        if self.head != id {
            self.unlink(id);
            self.push_front(id);
        }
    }

    fn lookup(&self, prompt_id: &str, node_id: &str) -> Option<u32> {
        // The key of the last offer is by far the most common one.
        if self.head != NIL {
            let s = self.get(self.head);
            if *s.node_id == *node_id && *s.prompt_id == *prompt_id {
                return Some(self.head);
            }
        }
        self.index.get(prompt_id)?.get(node_id).copied()
    }

    /// Frees a slot: out of the index, the recency list and the due set.
    fn remove(&mut self, id: u32) -> Slot<V> {
        self.unlink(id);
        let slot = match self.slots.get_mut(id as usize).and_then(Option::take) {
            Some(slot) => slot,
            None => unreachable!("slot ids in the index and lists are live"),
        };
        if slot.pending.is_some() {
            if let Some(at) = slot.due {
                self.due.remove(&(at, id));
            }
        }
        if let Some(nodes) = self.index.get_mut(&*slot.prompt_id) {
            nodes.remove(&*slot.node_id);
            if nodes.is_empty() {
                if let Some(empty) = self.index.remove(&*slot.prompt_id) {
                    self.spare = empty;
                }
            }
        }
        self.free.push(id);
        self.live -= 1;
        slot
    }

    fn insert(&mut self, (prompt_id, node_id, label): Key) -> u32 {
        if self.live >= self.capacity && self.tail != NIL {
            let old = self.remove(self.tail);
            self.evicted += 1;
            self.evicted_pending += u64::from(old.pending.is_some());
        }
        let slot = Slot {
            prompt_id: prompt_id.clone(),
            node_id: node_id.clone(),
            label,
            last_emit: None,
            pending: None,
            due: None,
            prev: NIL,
            next: NIL,
        };
        let id = match self.free.pop() {
            Some(id) => {
                self.slots[id as usize] = Some(slot);
                id
            }
            None => {
                self.slots.push(Some(slot));
                (self.slots.len() - 1) as u32
            }
        };
        let spare = &mut self.spare;
        self.index
            .entry(prompt_id)
            .or_insert_with(|| std::mem::take(spare))
            .insert(node_id, id);
        self.live += 1;
        self.push_front(id);
        id
    }

    /// Offers a value; hands it back when it may go out now, or keeps it as
    /// the pending value of its key. `urgent` values (a node's final value)
    /// always go out at once and replace anything pending. A new key's
    /// strings are copied; [`Throttle::offer_shared`] shares them instead.
    pub fn offer(
        &mut self,
        prompt_id: &str,
        node_id: &str,
        label: Option<&str>,
        value: V,
        urgent: bool,
        now: Instant,
    ) -> Offer<V> {
        let key = || {
            (
                Arc::from(prompt_id),
                Arc::from(node_id),
                label.map(Arc::from),
            )
        };
        self.offer_keyed(prompt_id, node_id, key, value, urgent, now)
    }

    /// [`Throttle::offer`] with the key's strings already shared (a
    /// record's ids): a new key holds them without copying, and a value
    /// taken later hands them out the same way.
    pub fn offer_shared(
        &mut self,
        prompt_id: &Arc<str>,
        node_id: &Arc<str>,
        label: Option<&Arc<str>>,
        value: V,
        urgent: bool,
        now: Instant,
    ) -> Offer<V> {
        let key = || (prompt_id.clone(), node_id.clone(), label.cloned());
        self.offer_keyed(prompt_id, node_id, key, value, urgent, now)
    }

    /// The one body of both offers: `key` makes the key's strings, only
    /// when the key is new.
    fn offer_keyed(
        &mut self,
        prompt_id: &str,
        node_id: &str,
        key: impl FnOnce() -> Key,
        value: V,
        urgent: bool,
        now: Instant,
    ) -> Offer<V> {
        let interval = self.interval;
        self.sequence += 1;
        let sequence = self.sequence;
        let id = match self.lookup(prompt_id, node_id) {
            Some(id) => {
                self.touch(id);
                id
            }
            None => self.insert(key()),
        };
        let slot = self.get_mut(id);
        let open = slot
            .last_emit
            .is_none_or(|at| now.saturating_duration_since(at) >= interval);
        if urgent || open {
            let was_due = slot.pending.take().and(slot.due);
            slot.last_emit = Some(now);
            slot.due = now.checked_add(interval);
            if let Some(at) = was_due {
                self.due.remove(&(at, id));
            }
            Offer::Now(value)
        } else {
            // Keep the first arrival's sequence so flushes keep key order.
            let first = slot.pending.is_none();
            let seq = slot.pending.as_ref().map_or(sequence, |(s, _)| *s);
            let replaced = slot.pending.replace((seq, value)).map(|(_, v)| v);
            if first {
                if let Some(at) = slot.due {
                    self.due.insert((at, id));
                }
            }
            Offer::Held { replaced }
        }
    }

    /// The earliest instant at which a pending value becomes due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.due.first().map(|(at, _)| *at)
    }

    /// Takes a slot's pending value (it goes out now).
    fn take(&mut self, id: u32, now: Instant, out: &mut Vec<(u64, Taken<V>)>) {
        let interval = self.interval;
        let slot = self.get_mut(id);
        let Some((seq, value)) = slot.pending.take() else {
            return;
        };
        let was_due = slot.due;
        slot.last_emit = Some(now);
        slot.due = now.checked_add(interval);
        let taken = Taken {
            prompt_id: slot.prompt_id.clone(),
            node_id: slot.node_id.clone(),
            label: slot.label.clone(),
            value,
        };
        if let Some(at) = was_due {
            self.due.remove(&(at, id));
        }
        out.push((seq, taken));
    }

    fn ordered(mut out: Vec<(u64, Taken<V>)>) -> Vec<Taken<V>> {
        out.sort_by_key(|(seq, _)| *seq);
        out.into_iter().map(|(_, t)| t).collect()
    }

    /// Takes the pending values that are due at `now`, oldest first.
    pub fn take_due(&mut self, now: Instant) -> Vec<Taken<V>> {
        let mut out = Vec::new();
        while let Some(&(at, id)) = self.due.first() {
            if at > now {
                break;
            }
            // Out of the set first, so the loop ends whatever `take` finds.
            self.due.pop_first();
            self.take(id, now, &mut out);
        }
        Self::ordered(out)
    }

    /// Takes every pending value of one prompt, oldest first.
    pub fn take_prompt(&mut self, prompt_id: &str, now: Instant) -> Vec<Taken<V>> {
        let ids: Vec<u32> = match self.index.get(prompt_id) {
            Some(nodes) => nodes
                .values()
                .copied()
                .filter(|id| self.get(*id).pending.is_some())
                .collect(),
            None => return Vec::new(),
        };
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            self.take(id, now, &mut out);
        }
        Self::ordered(out)
    }

    /// Takes the pending value of one node, if any.
    pub fn take_node(&mut self, prompt_id: &str, node_id: &str, now: Instant) -> Vec<Taken<V>> {
        let mut out = Vec::new();
        if let Some(id) = self.lookup(prompt_id, node_id) {
            self.take(id, now, &mut out);
        }
        Self::ordered(out)
    }

    /// Drops every key of a prompt with its pending values; returns how
    /// many pending values went with them. For a prompt whose record is
    /// gone without a flush (an evicted record of another client): the
    /// tracker calls it so that such keys do not wait for the eviction
    /// of [`Throttle::capacity`].
    pub fn release(&mut self, prompt_id: &str) -> usize {
        let ids: Vec<u32> = match self.index.get(prompt_id) {
            Some(nodes) => nodes.values().copied().collect(),
            None => return 0,
        };
        ids.into_iter()
            .map(|id| usize::from(self.remove(id).pending.is_some()))
            .sum()
    }

    /// Drops every slot of a prompt (after it has been flushed).
    pub fn forget_prompt(&mut self, prompt_id: &str) {
        self.release(prompt_id);
    }

    /// Drops one node's slot (after it has been flushed).
    pub fn forget_node(&mut self, prompt_id: &str, node_id: &str) {
        if let Some(id) = self.lookup(prompt_id, node_id) {
            self.remove(id);
        }
    }

    /// Number of keys held (at most [`Throttle::capacity`]).
    pub fn len(&self) -> usize {
        self.live
    }

    /// True when no key is held.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used)] // a test needs some instant
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_million_prompt_ids_hold_at_most_capacity_keys() {
        let t0 = Instant::now();
        let mut t: Throttle<u32> = Throttle::with_capacity(ms(16), 64);
        for i in 0..1_000_000u32 {
            let now = t0 + Duration::from_micros(u64::from(i));
            let prompt = format!("p{i}");
            // Two offers per key: the second is held, so eviction drops
            // pending values too.
            assert_eq!(t.offer(&prompt, "1", None, i, false, now), Offer::Now(i));
            assert!(matches!(
                t.offer(&prompt, "1", None, i, false, now),
                Offer::Held { replaced: None }
            ));
            assert!(t.len() <= 64);
            assert!(t.due.len() <= 64);
            assert!(t.index.len() <= 64);
        }
        assert_eq!(t.len(), 64);
        assert_eq!(t.slots.len(), 64, "slots are reused, not appended");
        assert_eq!(t.evicted(), 1_000_000 - 64);
        assert_eq!(t.evicted_pending(), 1_000_000 - 64);
        // The newest keys survived, with their pending values.
        let due = t.take_due(t0 + Duration::from_secs(10));
        assert_eq!(due.len(), 64);
        assert_eq!(due.last().unwrap().value, 999_999);
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn recently_touched_keys_survive_eviction() {
        let t0 = Instant::now();
        let mut t: Throttle<u32> = Throttle::with_capacity(ms(16), 2);
        t.offer("a", "1", None, 1, false, t0);
        t.offer("b", "1", None, 2, false, t0);
        // Touch `a`, then a third key evicts `b`, the least recent.
        t.offer("a", "1", None, 3, false, t0 + ms(1));
        t.offer("c", "1", None, 4, false, t0 + ms(2));
        assert_eq!(t.len(), 2);
        let due: Vec<_> = t
            .take_prompt("a", t0 + ms(3))
            .into_iter()
            .map(|x| x.value)
            .collect();
        assert_eq!(due, [3]);
        assert!(t.take_prompt("b", t0 + ms(3)).is_empty());
        // `b` starts afresh: its first value goes out at once.
        assert_eq!(t.offer("b", "1", None, 5, false, t0 + ms(4)), Offer::Now(5));
    }

    #[test]
    fn release_drops_a_prompts_keys_and_their_deadlines() {
        let t0 = Instant::now();
        let mut t: Throttle<u32> = Throttle::new(ms(16));
        for node in ["1", "2", "3"] {
            t.offer("gone", node, None, 0, false, t0);
            t.offer("gone", node, None, 1, false, t0 + ms(1));
        }
        t.offer("kept", "1", None, 0, false, t0);
        assert_eq!(t.len(), 4);
        assert_eq!(t.next_deadline(), Some(t0 + ms(16)));
        assert_eq!(t.release("gone"), 3);
        assert_eq!(t.release("gone"), 0);
        assert_eq!(t.len(), 1);
        assert_eq!(t.next_deadline(), None);
        assert!(t.take_due(t0 + ms(100)).is_empty());
    }

    #[test]
    fn a_prompt_whose_nodes_come_and_go_one_by_one_reuses_one_node_map() {
        let t0 = Instant::now();
        let mut t: Throttle<u32> = Throttle::new(ms(16));
        for (i, node) in ["1", "2", "3"].into_iter().enumerate() {
            let at = t0 + ms(100 * i as u64);
            assert_eq!(t.offer("p", node, None, 1, false, at), Offer::Now(1));
            assert!(matches!(
                t.offer("p", node, None, 2, false, at + ms(1)),
                Offer::Held { .. }
            ));
            let taken: Vec<u32> = t
                .take_node("p", node, at + ms(2))
                .into_iter()
                .map(|x| x.value)
                .collect();
            assert_eq!(taken, [2]);
            t.forget_node("p", node);
            assert!(t.is_empty());
            // The emptied map is kept, not freed, for the next node.
            assert!(t.spare.capacity() > 0);
        }
        // Another prompt's first node takes the kept map, empty.
        assert_eq!(t.offer("q", "9", None, 1, false, t0), Offer::Now(1));
        assert_eq!(t.spare.capacity(), 0);
        assert_eq!(t.index.get("q").map(|m| m.len()), Some(1));
        assert!(t.take_node("p", "3", t0 + ms(500)).is_empty());
    }

    #[test]
    fn an_interval_past_the_end_of_time_never_panics() {
        let t0 = Instant::now();
        let mut t: Throttle<u32> = Throttle::new(Duration::MAX);
        assert_eq!(t.offer("p", "1", None, 1, false, t0), Offer::Now(1));
        assert!(matches!(
            t.offer("p", "1", None, 2, false, t0 + ms(1)),
            Offer::Held { .. }
        ));
        // Never due by time; a flush still lets it out.
        assert_eq!(t.next_deadline(), None);
        assert!(t.take_due(t0 + Duration::from_secs(1 << 30)).is_empty());
        let flushed: Vec<_> = t
            .take_prompt("p", t0 + ms(2))
            .into_iter()
            .map(|x| x.value)
            .collect();
        assert_eq!(flushed, [2]);
    }

    #[test]
    fn flushes_keep_first_arrival_order_across_keys() {
        let t0 = Instant::now();
        let mut t: Throttle<&str> = Throttle::new(ms(16));
        for node in ["1", "2", "3"] {
            t.offer("p", node, None, "open", false, t0);
        }
        t.offer("p", "3", None, "3a", false, t0 + ms(1));
        t.offer("p", "1", None, "1a", false, t0 + ms(2));
        t.offer("p", "2", None, "2a", false, t0 + ms(3));
        t.offer("p", "3", None, "3b", false, t0 + ms(4));
        let order: Vec<_> = t
            .take_prompt("p", t0 + ms(5))
            .into_iter()
            .map(|x| x.value)
            .collect();
        assert_eq!(order, ["3b", "1a", "2a"]);
    }
}
