//! The session's outbox of events: state changes go straight through after
//! their prompt's pending progress and previews; progress and previews pass
//! the throttles.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::event::{Event, PreviewImage, ProgressUpdate};
use crate::throttle::{Offer, Throttle};

/// Counters of what the throttles held back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmitStats {
    /// Progress updates replaced by a later one before going out.
    pub coalesced_progress: u64,
    /// Previews replaced by a later one before going out.
    pub coalesced_previews: u64,
}

#[derive(Debug)]
pub(crate) struct Emitter {
    pub(crate) queue: VecDeque<Event>,
    progress: Throttle<ProgressUpdate>,
    previews: Throttle<PreviewImage>,
    pub(crate) stats: EmitStats,
}

impl Emitter {
    pub(crate) fn new(progress_interval: Duration, preview_interval: Duration) -> Self {
        Emitter {
            queue: VecDeque::new(),
            progress: Throttle::new(progress_interval),
            previews: Throttle::new(preview_interval),
            stats: EmitStats::default(),
        }
    }

    /// An event that is not tied to a prompt.
    pub(crate) fn push(&mut self, event: Event) {
        self.queue.push_back(event);
    }

    /// A state change of a prompt: its held progress goes out first.
    pub(crate) fn state(&mut self, prompt_id: &str, event: Event, now: Instant) {
        self.flush_prompt(prompt_id, now);
        self.queue.push_back(event);
    }

    /// A state change of one node: only that node's held values go first,
    /// so other running nodes keep their rate limit.
    pub(crate) fn node_state(&mut self, prompt_id: &str, node: &str, event: Event, now: Instant) {
        for p in self.progress.take_node(prompt_id, node, now) {
            self.queue.push_back(Event::Progress(p));
        }
        for p in self.previews.take_node(prompt_id, node, now) {
            self.queue.push_back(Event::Preview(p));
        }
        self.queue.push_back(event);
    }

    pub(crate) fn progress(&mut self, update: ProgressUpdate, now: Instant) {
        let urgent = update.max > 0.0 && update.value >= update.max;
        let prompt = update.prompt_id.clone();
        let node = update.node.clone();
        match self.progress.offer(&prompt, &node, update, urgent, now) {
            Offer::Now(update) => self.queue.push_back(Event::Progress(update)),
            Offer::Held { replaced } => self.stats.coalesced_progress += u64::from(replaced),
        }
    }

    pub(crate) fn preview(&mut self, preview: PreviewImage, now: Instant) {
        let prompt = preview.prompt_id.clone().unwrap_or_default();
        let node = preview.node.clone().unwrap_or_default();
        match self.previews.offer(&prompt, &node, preview, false, now) {
            Offer::Now(p) => self.queue.push_back(Event::Preview(p)),
            Offer::Held { replaced } => self.stats.coalesced_previews += u64::from(replaced),
        }
    }

    pub(crate) fn flush_prompt(&mut self, prompt_id: &str, now: Instant) {
        for p in self.progress.take_prompt(prompt_id, now) {
            self.queue.push_back(Event::Progress(p));
        }
        for p in self.previews.take_prompt(prompt_id, now) {
            self.queue.push_back(Event::Preview(p));
        }
    }

    pub(crate) fn forget_prompt(&mut self, prompt_id: &str) {
        self.progress.forget_prompt(prompt_id);
        self.previews.forget_prompt(prompt_id);
    }

    pub(crate) fn forget_node(&mut self, prompt_id: &str, node: &str) {
        self.progress.forget_node(prompt_id, node);
        self.previews.forget_node(prompt_id, node);
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        match (self.progress.next_deadline(), self.previews.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn flush_due(&mut self, now: Instant) {
        for p in self.progress.take_due(now) {
            self.queue.push_back(Event::Progress(p));
        }
        for p in self.previews.take_due(now) {
            self.queue.push_back(Event::Preview(p));
        }
    }

    pub(crate) fn held(&self) -> usize {
        self.progress.len() + self.previews.len()
    }
}
