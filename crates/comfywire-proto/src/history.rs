//! The ring of the last N finished executions, queryable by prompt id and
//! in order. Memory is bounded by its capacity however long a session runs.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::record::ExecutionRecord;

/// A bounded, ordered store of finished executions.
#[derive(Debug, Clone)]
pub struct HistoryRing {
    capacity: usize,
    entries: VecDeque<Arc<ExecutionRecord>>,
    // Sequence number of each id; index = sequence - first_sequence.
    index: crate::hash::FastMap<String, u64>,
    first_sequence: u64,
}

impl HistoryRing {
    /// A ring keeping at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        HistoryRing {
            capacity: capacity.max(1),
            entries: VecDeque::new(),
            index: Default::default(),
            first_sequence: 0,
        }
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
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
        if self.entries.len() == self.capacity {
            if let Some(old) = self.entries.pop_front() {
                self.index.remove(&old.prompt_id);
            }
            self.first_sequence += 1;
        }
        let sequence = self.first_sequence + self.entries.len() as u64;
        self.index.insert(record.prompt_id.clone(), sequence);
        self.entries.push_back(record);
        true
    }

    /// The execution of a prompt, if still held.
    pub fn get(&self, prompt_id: &str) -> Option<&Arc<ExecutionRecord>> {
        let sequence = *self.index.get(prompt_id)?;
        let position = sequence.checked_sub(self.first_sequence)?;
        self.entries.get(usize::try_from(position).ok()?)
    }

    /// True when the prompt is held.
    pub fn contains(&self, prompt_id: &str) -> bool {
        self.index.contains_key(prompt_id)
    }

    /// Oldest first.
    pub fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = &Arc<ExecutionRecord>> + ExactSizeIterator {
        self.entries.iter()
    }

    /// The newest entry.
    pub fn latest(&self) -> Option<&Arc<ExecutionRecord>> {
        self.entries.back()
    }
}
