//! The ring of the last N finished executions, queryable by prompt id and
//! in order. Memory is bounded by its capacity and by a byte budget however
//! long a session runs: the oldest entries go first when either is
//! exceeded, and the newest entry always stays (a waiter must find it).
//!
//! The budget counts an estimate of each record's heap (its strings, node
//! list, outputs and error), made once when the record is pushed. It bounds
//! the ring, not one record: how many nodes and outputs a record gathers
//! while it runs is the tracker's to bound.

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::Value;

use crate::record::{ExecutionRecord, Outcome};

/// A bounded, ordered store of finished executions.
#[derive(Debug, Clone)]
pub struct HistoryRing {
    capacity: usize,
    max_bytes: usize,
    bytes: usize,
    entries: VecDeque<(Arc<ExecutionRecord>, usize)>,
    // Sequence number of each id; index = sequence - first_sequence.
    index: crate::hash::FastMap<String, u64>,
    first_sequence: u64,
}

impl HistoryRing {
    /// The byte budget of [`HistoryRing::new`]: 64 MiB, room for the
    /// default 100 entries at 650 KiB each, or a few large outputs.
    pub const DEFAULT_MAX_BYTES: usize = 64 << 20;

    /// A ring keeping at most `capacity` entries (at least 1) within
    /// [`HistoryRing::DEFAULT_MAX_BYTES`].
    pub fn new(capacity: usize) -> Self {
        Self::with_max_bytes(capacity, Self::DEFAULT_MAX_BYTES)
    }

    /// A ring keeping at most `capacity` entries (at least 1) whose
    /// estimated sizes add up to at most `max_bytes`, except that the
    /// newest entry always stays.
    pub fn with_max_bytes(capacity: usize, max_bytes: usize) -> Self {
        HistoryRing {
            capacity: capacity.max(1),
            max_bytes,
            bytes: 0,
            entries: VecDeque::new(),
            index: Default::default(),
            first_sequence: 0,
        }
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The byte budget.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The estimated bytes held (see [`HistoryRing::approx_bytes`]).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// An estimate of the heap a record holds: its strings, nodes,
    /// outputs, node errors and error payload. Linear in the record's
    /// size; made once per record.
    pub fn approx_bytes(record: &ExecutionRecord) -> usize {
        let mut n = std::mem::size_of::<ExecutionRecord>() + record.prompt_id.len();
        for node in &record.nodes {
            n += std::mem::size_of_val(node)
                + node.id.len()
                + node.display_node.as_ref().map_or(0, String::len);
        }
        n += record
            .cached
            .iter()
            .map(|c| std::mem::size_of::<String>() + c.len())
            .sum::<usize>();
        for (key, value) in &record.outputs {
            n += MAP_ENTRY + key.len() + value.len();
        }
        n += record.node_errors.as_ref().map_or(0, approx_json_bytes);
        if let Some(Outcome::Failed(e)) = &record.outcome {
            let strings = e.node_id.iter().chain(e.node_type.iter());
            let lists = e
                .executed
                .iter()
                .chain(e.traceback.iter())
                .chain(e.current_outputs.iter());
            n += std::mem::size_of_val(e.as_ref())
                + e.exception_message.len()
                + e.exception_type.len()
                + approx_json_bytes(&e.current_inputs)
                + strings
                    .chain(lists)
                    .map(|s| std::mem::size_of::<String>() + s.len())
                    .sum::<usize>();
        }
        n
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a finished execution, evicting the oldest when full. A record
    /// for an id already held replaces nothing: the first one stays.
    pub fn push(&mut self, record: Arc<ExecutionRecord>) -> bool {
        if self.index.contains_key(&record.prompt_id) {
            return false;
        }
        let size = Self::approx_bytes(&record);
        while !self.entries.is_empty()
            && (self.entries.len() >= self.capacity
                || self.bytes.saturating_add(size) > self.max_bytes)
        {
            self.pop_oldest();
        }
        let sequence = self.first_sequence + self.entries.len() as u64;
        self.index.insert(record.prompt_id.clone(), sequence);
        self.bytes = self.bytes.saturating_add(size);
        self.entries.push_back((record, size));
        true
    }

    fn pop_oldest(&mut self) {
        if let Some((old, size)) = self.entries.pop_front() {
            self.index.remove(&old.prompt_id);
            self.bytes -= size;
            self.first_sequence += 1;
        }
    }

    /// The execution of a prompt, if still held.
    pub fn get(&self, prompt_id: &str) -> Option<&Arc<ExecutionRecord>> {
        let sequence = *self.index.get(prompt_id)?;
        let position = sequence.checked_sub(self.first_sequence)?;
        self.entries
            .get(usize::try_from(position).ok()?)
            .map(|(record, _)| record)
    }

    /// True when the prompt is held.
    pub fn contains(&self, prompt_id: &str) -> bool {
        self.index.contains_key(prompt_id)
    }

    /// Oldest first.
    pub fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = &Arc<ExecutionRecord>> + ExactSizeIterator {
        self.entries.iter().map(|(record, _)| record)
    }

    /// The newest entry.
    pub fn latest(&self) -> Option<&Arc<ExecutionRecord>> {
        self.entries.back().map(|(record, _)| record)
    }
}

/// Per map entry besides key and value: the index map's hash slot and
/// bucket.
const MAP_ENTRY: usize = 3 * std::mem::size_of::<usize>();

/// An estimate of the heap behind a JSON value (depth is bounded by the
/// parser's recursion limit): the measure of the history ring's budget,
/// and of the client's subscriber queues.
pub fn approx_json_bytes(value: &Value) -> usize {
    std::mem::size_of::<Value>()
        + match value {
            Value::String(s) => s.len(),
            Value::Array(items) => items.iter().map(approx_json_bytes).sum(),
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| MAP_ENTRY + k.len() + approx_json_bytes(v))
                .sum(),
            _ => 0,
        }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods, clippy::unwrap_used)] // a test needs some instant
mod tests {
    use super::*;
    use crate::NodeOutput;
    use serde_json::json;

    fn record(id: &str, text_bytes: usize) -> Arc<ExecutionRecord> {
        let mut r = ExecutionRecord::new(&Arc::from(id), true);
        r.outputs.insert(
            "9".into(),
            NodeOutput::from_value(&json!({"text": ["x".repeat(text_bytes)]})),
        );
        Arc::new(r)
    }

    #[test]
    fn the_ring_is_bounded_by_bytes_and_keeps_the_newest() {
        let mut ring = HistoryRing::with_max_bytes(100, 1 << 20);
        for i in 0..50 {
            assert!(ring.push(record(&format!("p{i}"), 100 << 10)));
            assert!(ring.bytes() <= 1 << 20);
            assert_eq!(
                ring.bytes(),
                ring.iter()
                    .map(|r| HistoryRing::approx_bytes(r))
                    .sum::<usize>()
            );
        }
        // About ten 100 KiB records fit in 1 MiB, the newest ones.
        assert!((8..=10).contains(&ring.len()), "{}", ring.len());
        assert_eq!(ring.latest().unwrap().prompt_id, "p49");
        assert!(ring.get("p49").is_some() && ring.get("p0").is_none());
        let first = ring.iter().next().unwrap().prompt_id.clone();
        assert!(ring.contains(&first));
        // One record over the whole budget still stays, alone.
        assert!(ring.push(record("huge", 2 << 20)));
        assert_eq!(ring.len(), 1);
        assert_eq!(ring.get("huge").unwrap().prompt_id, "huge");
        assert!(ring.get(&first).is_none());
        assert!(ring.push(record("after", 10)));
        assert_eq!(ring.len(), 1);
        assert_eq!(ring.latest().unwrap().prompt_id, "after");
    }

    #[test]
    fn the_estimate_grows_with_outputs() {
        let small = HistoryRing::approx_bytes(&record("p", 10));
        let large = HistoryRing::approx_bytes(&record("p", 1 << 20));
        assert_eq!(large - small, (1 << 20) - 10);
        assert!(small < 4096, "{small}");
    }
}
