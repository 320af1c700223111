//! The execution tracker: one record per prompt, from submission to exactly
//! one terminal outcome, merging every "done" signal the server can send.
//!
//! A record's phase only moves forward. Once a prompt is terminal its record
//! moves to the history ring and every later signal for it is ignored.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::Arc;
use web_time::Instant;

use serde_json::Value;

use crate::event::Event;
use crate::hash::FastMap;
use crate::history::HistoryRing;

mod messages;
use crate::message::ExecutionError;
use crate::outbox::Outbox;
use crate::output::NodeOutput;
use crate::reconcile::{HistoryEntry, HistoryOutcome};
use crate::record::{ExecutionRecord, NodePhase, Outcome, Phase};

/// The part of a node's state word the tracker acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeState {
    Running,
    Finished,
    Other,
}

impl NodeState {
    pub(crate) fn from_word(word: &str) -> NodeState {
        match word {
            "running" => NodeState::Running,
            "finished" => NodeState::Finished,
            _ => NodeState::Other,
        }
    }
}

/// What the session must do after a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Followup {
    None,
    /// The prompt signalled its end after a gap: fetch its history.
    Reconcile(String),
}

/// The per-prompt bookkeeping of a session.
#[derive(Debug)]
pub struct Tracker {
    // The keys, the arrival order and `current` share each record's
    // `shared_id` rather than copying the prompt id.
    active: FastMap<Arc<str>, ExecutionRecord>,
    arrival: VecDeque<Arc<str>>,
    history: HistoryRing,
    current: Option<Arc<str>>,
    max_foreign: usize,
    // The id a caller submitted under → the id the server chose, for
    // servers that ignore the client's prompt id. Oldest first, bounded.
    aliases: VecDeque<(String, String)>,
    // Foreign records evicted since the outbox was last at hand.
    evicted: Vec<Arc<str>>,
    // Prompts held since the last release (see `hold`), so a release looks
    // at those, not at every record: a batch of n submissions would
    // otherwise cost n^2. The records' own `held` flags stay the truth.
    held: Vec<Arc<str>>,
    // Outputs one record keeps inline, estimated bytes.
    max_output_bytes: usize,
}

/// Aliases of server-chosen prompt ids kept.
const MAX_ALIASES: usize = 1024;

/// When a node at `value` of `max` steps, `elapsed` after it started,
/// should finish at its pace so far; `None` before its first step, after
/// its last, or for nonsense values.
pub(crate) fn eta(
    elapsed: std::time::Duration,
    value: f64,
    max: f64,
) -> Option<std::time::Duration> {
    if !(value > 0.0 && max > value && max.is_finite()) {
        return None;
    }
    std::time::Duration::try_from_secs_f64(elapsed.as_secs_f64() * (max - value) / value).ok()
}

impl Tracker {
    pub(crate) fn new(
        history_capacity: usize,
        max_foreign: usize,
        max_output_bytes: usize,
    ) -> Self {
        Tracker {
            active: FastMap::default(),
            arrival: VecDeque::new(),
            history: HistoryRing::new(history_capacity),
            current: None,
            max_foreign: max_foreign.max(1),
            aliases: VecDeque::new(),
            evicted: Vec::new(),
            held: Vec::new(),
            max_output_bytes,
        }
    }

    /// The id the server knows a prompt by: `prompt_id` itself, or the id
    /// the server chose when it ignored ours.
    pub fn resolve<'a>(&'a self, prompt_id: &'a str) -> &'a str {
        self.aliases
            .iter()
            .rev()
            .find(|(asked, _)| asked == prompt_id)
            .map_or(prompt_id, |(_, chosen)| chosen.as_str())
    }

    /// True when the prompt is known here, in flight or finished.
    pub(crate) fn knows(&self, prompt_id: &str) -> bool {
        let id = self.resolve(prompt_id);
        self.active.contains_key(id) || self.history.contains(id)
    }

    /// True when no prompt of ours (submitted or attached) goes by this id:
    /// unknown, or only observed as another client's.
    pub(crate) fn unclaimed(&self, prompt_id: &str) -> bool {
        let id = self.resolve(prompt_id);
        match self.active.get(id) {
            Some(record) => !record.ours && !record.attached,
            None => !self.history.contains(id),
        }
    }

    /// The server answered our submission under another id: the record
    /// moves to that id (merging what its frames already told a foreign
    /// record), and the submitted id stays an alias of it.
    pub(crate) fn adopt(&mut self, requested: &str, chosen: &str) {
        if requested == chosen {
            return;
        }
        let Some(mut ours) = self.active.remove(requested) else {
            return;
        };
        self.arrival.retain(|p| **p != *requested);
        let chosen_id: Arc<str> = Arc::from(chosen);
        ours.prompt_id = chosen.to_owned();
        ours.shared_id = chosen_id.clone();
        match self.active.get_mut(chosen) {
            // Its frames raced the answer: keep what they told, as ours.
            Some(seen) => {
                seen.ours = true;
                seen.expected_nodes = ours.expected_nodes.or(seen.expected_nodes);
                seen.submitted_at = ours.submitted_at.or(seen.submitted_at);
                seen.had_gap |= ours.had_gap;
            }
            None => {
                self.arrival.push_back(chosen_id.clone());
                self.active.insert(chosen_id.clone(), ours);
            }
        }
        if self.current.as_deref() == Some(requested) {
            self.current = Some(chosen_id);
        }
        self.aliases
            .push_back((requested.to_owned(), chosen.to_owned()));
        if self.aliases.len() > MAX_ALIASES {
            self.aliases.pop_front();
        }
    }

    /// Tracks a prompt this client did not submit (or no longer remembers
    /// submitting) until its end: everything before now was missed, so it
    /// is settled from the server's history.
    pub(crate) fn attach(&mut self, prompt_id: &str, now: Instant) -> bool {
        if self.knows(prompt_id) {
            let id = self.resolve(prompt_id).to_owned();
            if let Some(record) = self.active.get_mut(id.as_str()) {
                record.ours = true;
            }
            return false;
        }
        let record = self.get_or_create(prompt_id, true);
        record.attached = true;
        record.had_gap = true;
        record.submitted_at.get_or_insert(now);
        true
    }

    /// Finished executions.
    pub fn history(&self) -> &HistoryRing {
        &self.history
    }

    /// An in-flight record.
    pub fn active(&self, prompt_id: &str) -> Option<&ExecutionRecord> {
        self.active.get(prompt_id)
    }

    /// Every in-flight record (unordered).
    pub fn active_records(&self) -> impl Iterator<Item = &ExecutionRecord> {
        self.active.values()
    }

    /// The prompt that started last and has not finished.
    pub fn current(&self) -> Option<&str> {
        self.current.as_deref()
    }

    /// In-flight prompt ids of this client in the given phases.
    pub(crate) fn ours_in(&self, phases: &[Phase]) -> Vec<String> {
        let mut ids: Vec<&ExecutionRecord> = self
            .active
            .values()
            .filter(|r| r.ours && phases.contains(&r.phase))
            .collect();
        ids.sort_by_key(|r| (r.number, r.submitted_at));
        ids.into_iter().map(|r| r.prompt_id.clone()).collect()
    }

    pub(crate) fn record_mut(&mut self, prompt_id: &str) -> Option<&mut ExecutionRecord> {
        self.active.get_mut(prompt_id)
    }

    pub(crate) fn track(&mut self, prompt_id: &str, expected_nodes: Option<usize>, now: Instant) {
        if self.history.contains(prompt_id) {
            return;
        }
        let existed = self.active.contains_key(prompt_id);
        let record = self.get_or_create(prompt_id, true);
        record.ours = true;
        if !existed {
            record.phase = Phase::Submitted;
        }
        record.expected_nodes = expected_nodes.or(record.expected_nodes);
        record.submitted_at = Some(now);
    }

    pub(crate) fn accepted(
        &mut self,
        prompt_id: &str,
        number: Option<u64>,
        node_errors: Value,
        outbox: &mut Outbox,
        now: Instant,
    ) {
        let Some(record) = self.active.get_mut(prompt_id) else {
            return;
        };
        record.number = number.or(record.number);
        let has_errors = node_errors.as_object().is_some_and(|m| !m.is_empty());
        if has_errors {
            record.node_errors = Some(node_errors);
        }
        if record.phase == Phase::Submitted {
            record.phase = Phase::Queued;
        }
        record.confirm_since = None;
        outbox.state(
            prompt_id,
            Event::PromptQueued {
                prompt_id: record.shared_id.clone(),
                number,
            },
            now,
        );
    }

    /// The server certainly does not have the prompt: forget it.
    pub(crate) fn rejected(&mut self, prompt_id: &str) {
        if self.active.remove(prompt_id).is_some() {
            self.arrival.retain(|p| **p != *prompt_id);
        }
    }

    /// Marks every in-flight prompt as having missed part of its stream,
    /// including submitted ones whose answer has not come yet (the server
    /// may have queued and run them while the socket was down).
    pub(crate) fn mark_gap(&mut self) {
        for record in self.active.values_mut() {
            if matches!(
                record.phase,
                Phase::Submitted | Phase::Queued | Phase::Running
            ) {
                record.had_gap = true;
            }
        }
    }

    pub(crate) fn get_or_create(&mut self, prompt_id: &str, ours: bool) -> &mut ExecutionRecord {
        if !self.active.contains_key(prompt_id) {
            // The one copy of the id: the record, its key and its place
            // in the arrival order share it.
            let id: Arc<str> = Arc::from(prompt_id);
            self.arrival.push_back(id.clone());
            let record = ExecutionRecord::new(&id, ours);
            self.active.insert(id, record);
            // Only a foreign record can take the foreign ones past their
            // bound (a record turning ours only lowers their count).
            if !ours {
                self.bound_foreign();
            }
        }
        self.active
            .get_mut(prompt_id)
            .unwrap_or_else(|| unreachable!("inserted above"))
    }

    /// Keeps the records of other clients' prompts bounded: a prompt we only
    /// observe may never show us its end.
    fn bound_foreign(&mut self) {
        let foreign = self.active.values().filter(|r| !r.ours).count();
        if foreign <= self.max_foreign {
            return;
        }
        let victim = self
            .arrival
            .iter()
            .find(|id| self.active.get(*id).is_some_and(|r| !r.ours))
            .cloned();
        if let Some(id) = victim {
            self.active.remove(&id);
            self.arrival.retain(|p| p != &id);
            if self.current.as_ref() == Some(&id) {
                self.current = None;
            }
            // Its throttle slots are released by the next `live`, which
            // holds the outbox.
            self.evicted.push(id);
        }
    }

    /// The record a message for `prompt_id` should update, or `None` when
    /// the prompt is already terminal.
    fn live(&mut self, prompt_id: &str, outbox: &mut Outbox) -> Option<&mut ExecutionRecord> {
        // An active record is never in the ring (finishing moves it there),
        // so the common case costs one lookup.
        if self.active.contains_key(prompt_id) {
            return self.active.get_mut(prompt_id);
        }
        if self.history.contains(prompt_id) {
            return None;
        }
        self.get_or_create(prompt_id, false);
        for id in self.evicted.drain(..) {
            outbox.forget_prompt(&id);
        }
        self.active.get_mut(prompt_id)
    }

    fn start_running(record: &mut ExecutionRecord, outbox: &mut Outbox, now: Instant) {
        record.confirm_since = None;
        if record.phase < Phase::Running {
            record.phase = Phase::Running;
            record.started_at.get_or_insert(now);
            outbox.state(
                &record.prompt_id,
                Event::ExecutionStarted {
                    prompt_id: record.shared_id.clone(),
                },
                now,
            );
        }
    }

    fn finish_node(record: &mut ExecutionRecord, node: &str, outbox: &mut Outbox, now: Instant) {
        let Some(n) = record.nodes.iter_mut().find(|n| n.id == node) else {
            return;
        };
        if n.phase != NodePhase::Running {
            return;
        }
        n.phase = NodePhase::Done;
        if n.max > 0.0 {
            n.value = n.max;
        }
        n.finished_at = Some(now);
        let node_id = n.shared_id.clone();
        outbox.node_state(
            &record.prompt_id,
            node,
            Event::NodeFinished {
                prompt_id: record.shared_id.clone(),
                node: node_id,
            },
            now,
        );
        outbox.forget_node(&record.prompt_id, node);
    }

    fn start_node(
        record: &mut ExecutionRecord,
        node: &str,
        display: Option<&str>,
        outbox: &mut Outbox,
        now: Instant,
    ) {
        let known = record.nodes.iter().any(|n| n.id == node);
        let Some(n) = record.node_mut(node, display) else {
            return;
        };
        if known && n.phase != NodePhase::Running {
            // Re-staged (lazy inputs) or a late duplicate of a done node.
            if n.phase == NodePhase::Done {
                return;
            }
        }
        if n.display_node.is_none() {
            n.set_display(display);
        }
        if known && n.started_at.is_some() {
            return;
        }
        n.phase = NodePhase::Running;
        n.started_at = Some(now);
        let node_id = n.shared_id.clone();
        let display_node = n.shared_display.clone();
        outbox.state(
            &record.prompt_id,
            Event::NodeStarted {
                prompt_id: record.shared_id.clone(),
                node: node_id,
                display_node,
            },
            now,
        );
    }

    fn progress_of(
        record: &mut ExecutionRecord,
        node: &str,
        value: f64,
        max: f64,
        outbox: &mut Outbox,
        now: Instant,
    ) {
        let Some(index) = record.nodes.iter().position(|n| n.id == node) else {
            // Past the node bound (`node_mut` counts it as omitted).
            let _ = record.node_mut(node, None);
            return;
        };
        Self::progress_at(record, index, value, max, outbox, now);
    }

    /// A step of the node at `index` of the record: the lookups are done
    /// once by the caller, as a step arrives several times per frame pair.
    fn progress_at(
        record: &mut ExecutionRecord,
        index: usize,
        value: f64,
        max: f64,
        outbox: &mut Outbox,
        now: Instant,
    ) {
        let Some(n) = record.nodes.get_mut(index) else {
            return;
        };
        if n.phase != NodePhase::Running {
            return;
        }
        if n.started_at.is_some() && n.value == value && n.max == max {
            // `progress_state` and `progress` report every step twice.
            return;
        }
        n.value = value;
        n.max = max;
        let started = *n.started_at.get_or_insert(now);
        let eta = eta(now.saturating_duration_since(started), value, max);
        let overall = record.progress();
        let n = &record.nodes[index];
        outbox.progress(
            &record.shared_id,
            &n.shared_id,
            n.shared_display.as_ref(),
            value,
            max,
            overall,
            eta,
            now,
        );
    }

    /// A preview; a type-1 frame (no ids) is attributed to the running
    /// prompt's current node.
    pub(crate) fn on_preview(
        &mut self,
        prompt_id: Option<&str>,
        node: Option<&str>,
        mime: Cow<'static, str>,
        image: &[u8],
        outbox: &mut Outbox,
        now: Instant,
    ) {
        match prompt_id {
            Some(p) => {
                // The running prompt (nearly every preview's) is never in
                // the ring: finishing clears `current`; skip the lookup.
                if self.current.as_deref() != Some(p) && self.history.contains(p) {
                    return;
                }
                // The record's ids when it has them (it nearly always
                // does), so a held preview's key copies no string.
                let record = self.active.get(p);
                let prompt = record.map_or_else(|| Arc::from(p), |r| r.shared_id.clone());
                let node = node.map(|n| match record {
                    Some(r) => r.shared_node(n),
                    None => Arc::from(n),
                });
                outbox.preview(Some(&prompt), node.as_ref(), mime, image, now);
            }
            None => {
                let current = self.current.as_ref();
                let node = current
                    .and_then(|p| self.active.get(&**p))
                    .and_then(|r| Some(r.shared_node(r.current_node.as_deref()?)));
                outbox.preview(current, node.as_ref(), mime, image, now);
            }
        }
    }

    /// `progress`, owned or borrowed.
    pub(crate) fn on_progress(
        &mut self,
        prompt_id: Option<&str>,
        node: Option<&str>,
        value: f64,
        max: f64,
        outbox: &mut Outbox,
        now: Instant,
    ) {
        // The ids are almost always in the message; the fallbacks (a
        // missing prompt id or node) are the only place that clones.
        let current;
        let prompt_id = match prompt_id {
            Some(p) => p,
            None => {
                current = self.current.clone();
                match current.as_deref() {
                    Some(p) => p,
                    None => return,
                }
            }
        };
        // One lookup for the common case (the record is active); the
        // borrow checker only allows that when the work happens in place.
        if let Some(record) = self.active.get_mut(prompt_id) {
            Self::progress_in(record, node, value, max, outbox, now);
            return;
        }
        if let Some(record) = self.live(prompt_id, outbox) {
            Self::progress_in(record, node, value, max, outbox, now);
        }
    }

    fn progress_in(
        record: &mut ExecutionRecord,
        node: Option<&str>,
        value: f64,
        max: f64,
        outbox: &mut Outbox,
        now: Instant,
    ) {
        let fallback;
        let node = match node {
            Some(n) => n,
            None => {
                fallback = record.current_node.clone();
                match fallback.as_deref() {
                    Some(n) => n,
                    None => return,
                }
            }
        };
        Self::start_running(record, outbox, now);
        // Nearly every step is of a node already known, and of the one
        // started last: one scan, from the newest node (ids are unique in
        // the list, so it finds what a scan from the front would).
        if let Some(index) = record.nodes.iter().rposition(|n| n.id == node) {
            Self::progress_at(record, index, value, max, outbox, now);
            return;
        }
        Self::start_node(record, node, None, outbox, now);
        Self::progress_of(record, node, value, max, outbox, now);
    }

    /// `progress_state`, owned or borrowed: `(node id, value, max, state,
    /// display node)` per entry.
    pub(crate) fn on_progress_state<'a>(
        &mut self,
        prompt_id: &str,
        nodes: impl Iterator<Item = (&'a str, f64, f64, NodeState, Option<&'a str>)>,
        outbox: &mut Outbox,
        now: Instant,
    ) {
        let Some(record) = self.live(prompt_id, outbox) else {
            return;
        };
        record.saw_progress_state = true;
        Self::start_running(record, outbox, now);
        // A snapshot lists the nodes in the order they started, the order
        // of the record's list: each is looked for where the last one was
        // found, then everywhere (a snapshot of K nodes costs K probes, not
        // K^2 / 2 string comparisons).
        let mut next = 0;
        for (node_id, value, max, state, display) in nodes {
            let index = match record.nodes.get(next) {
                Some(n) if n.id == node_id => Some(next),
                _ => record.nodes.iter().position(|n| n.id == node_id),
            };
            next = index.map_or(next, |i| i + 1);
            let phase = index.map(|i| record.nodes[i].phase);
            match state {
                NodeState::Running => {
                    if phase.is_none() {
                        Self::start_node(record, node_id, display, outbox, now);
                    }
                    let started_fresh = value == 0.0 && max == 1.0;
                    if !started_fresh {
                        Self::progress_of(record, node_id, value, max, outbox, now);
                    }
                }
                // Every snapshot lists the nodes already done again: a
                // node past running has nothing left to change.
                NodeState::Finished if phase.is_some_and(|p| p != NodePhase::Running) => {}
                NodeState::Finished => {
                    if phase.is_none() {
                        Self::start_node(record, node_id, display, outbox, now);
                    }
                    if let Some(n) = record.nodes.iter_mut().find(|n| n.id == node_id) {
                        if n.phase == NodePhase::Running {
                            n.value = value;
                            n.max = max;
                        }
                    }
                    Self::finish_node(record, node_id, outbox, now);
                }
                NodeState::Other => {}
            }
        }
        if self.current.as_deref() != Some(prompt_id) {
            self.current = Some(
                self.active
                    .get(prompt_id)
                    .map_or_else(|| Arc::from(prompt_id), |r| r.shared_id.clone()),
            );
        }
    }

    /// True while a submission of ours has no answer yet (in flight, or
    /// being confirmed).
    pub(crate) fn unanswered(&self) -> usize {
        self.active
            .values()
            .filter(|r| r.ours && r.phase == Phase::Submitted)
            .count()
    }

    /// Holds the end of a foreign prompt while a submission of ours is
    /// unanswered: a server that chooses its own ids may be running ours
    /// under one we have not heard yet, and ending it as foreign first
    /// would give it two terminal events once it is found to be ours. Its
    /// history, asked at once, names its client.
    fn hold(
        &mut self,
        prompt_id: &str,
        outcome: &Outcome,
        timestamp: Option<u64>,
    ) -> Option<Followup> {
        let foreign = self
            .active
            .get(prompt_id)
            .is_some_and(|r| !r.ours && !r.attached);
        if !foreign || self.unanswered() == 0 {
            return None;
        }
        // Bounded without a release: entries of records gone are pruned.
        if self.held.len() > 2 * self.active.len() + 16 {
            let active = &self.active;
            self.held
                .retain(|id| active.get(&**id).is_some_and(|r| r.held));
        }
        let record = self.active.get_mut(prompt_id)?;
        if !record.held {
            self.held.push(record.shared_id.clone());
        }
        record.held = true;
        record.pending_outcome = Some(outcome.clone());
        record.server_finished_ms = timestamp.or(record.server_finished_ms);
        Some(Followup::Reconcile(prompt_id.to_owned()))
    }

    /// Ends what was held and is decided: prompts found to be ours (by
    /// adoption) and, once no submission of ours is unanswered, every
    /// other. Returns held prompts of ours that missed frames, to be
    /// settled from history instead.
    pub(crate) fn release_held(&mut self, outbox: &mut Outbox, now: Instant) -> Vec<String> {
        if self.held.is_empty() {
            return Vec::new();
        }
        let unanswered = self.unanswered() > 0;
        let active = &self.active;
        // Drop what is no longer held (ended, claimed or evicted meanwhile).
        self.held
            .retain(|id| active.get(&**id).is_some_and(|r| r.held));
        let ready: Vec<(String, bool)> = self
            .held
            .iter()
            .filter_map(|id| active.get(&**id))
            .filter(|r| r.ours || !unanswered)
            .map(|r| (r.prompt_id.clone(), r.ours && r.had_gap))
            .collect();
        let mut settle = Vec::new();
        for (id, gap) in ready {
            if gap {
                settle.push(id);
                continue;
            }
            let outcome = self
                .active
                .get_mut(id.as_str())
                .and_then(|r| r.pending_outcome.take())
                .unwrap_or(Outcome::Succeeded);
            self.finish(&id, outcome, None, outbox, now);
        }
        settle
    }

    /// A held prompt's history named its client: ours (and exactly one
    /// submission unanswered, so it is that one) becomes ours; another
    /// client's (or none) ends as foreign with the history's outcome.
    /// `false` when it stays held (ours, but which submission is unclear).
    pub(crate) fn claim_held(&mut self, prompt_id: &str, ours: bool) -> bool {
        if !self.active.get(prompt_id).is_some_and(|r| r.held) {
            return true;
        }
        if !ours {
            if let Some(record) = self.active.get_mut(prompt_id) {
                record.held = false;
            }
            return true;
        }
        let unanswered: Vec<String> = self
            .active
            .values()
            .filter(|r| r.ours && r.phase == Phase::Submitted)
            .map(|r| r.prompt_id.clone())
            .collect();
        match unanswered.as_slice() {
            [requested] => {
                let requested = requested.clone();
                self.adopt(&requested, prompt_id);
                true
            }
            _ => false,
        }
    }

    /// Makes a prompt terminal: flushes its held progress, emits the one
    /// `Finished` event, and moves the record to the ring.
    pub(crate) fn finish(
        &mut self,
        prompt_id: &str,
        outcome: Outcome,
        timestamp: Option<u64>,
        outbox: &mut Outbox,
        now: Instant,
    ) {
        if self.history.contains(prompt_id) {
            return;
        }
        let Some(mut record) = self.active.remove(prompt_id) else {
            return;
        };
        // Prompts mostly end in the order they arrived: the oldest is the
        // one ending, and a scan of every queued prompt (thousands, for a
        // client that queued many) is only for the rest.
        if self.arrival.front().is_some_and(|p| **p == *prompt_id) {
            self.arrival.pop_front();
        } else {
            self.arrival.retain(|p| **p != *prompt_id);
        }
        if self.current.as_deref() == Some(prompt_id) {
            self.current = None;
        }
        if outcome == Outcome::Succeeded {
            for n in record
                .nodes
                .iter_mut()
                .filter(|n| n.phase == NodePhase::Running)
            {
                n.phase = NodePhase::Done;
                n.finished_at = Some(now);
            }
        }
        record.phase = outcome.phase();
        record.outcome = Some(outcome);
        record.finished_at = Some(now);
        record.server_finished_ms = timestamp.or(record.server_finished_ms);
        record.pending_outcome = None;
        outbox.flush_prompt(prompt_id, now);
        outbox.forget_prompt(prompt_id);
        let record = Arc::new(record);
        self.history.push(record.clone());
        outbox.push(Event::Finished(record));
    }

    /// Settles a prompt from its `/history` entry: missed outputs first,
    /// then the one terminal event. Returns true when it became terminal.
    pub(crate) fn settle_from_history(
        &mut self,
        prompt_id: &str,
        entry: HistoryEntry,
        outbox: &mut Outbox,
        now: Instant,
    ) -> bool {
        let limit = self.max_output_bytes;
        let Some(record) = self.active.get_mut(prompt_id) else {
            return false;
        };
        record.number = entry.number.or(record.number);
        if record.cached.is_empty() && !entry.cached.is_empty() {
            record.cached = entry.cached.clone();
            for node in &entry.cached {
                if let Some(n) = record.node_mut(node, Some(node)) {
                    if n.phase == NodePhase::Running {
                        n.phase = NodePhase::Cached;
                    }
                }
            }
        }
        for (node, output) in entry.outputs {
            if output.is_null() || record.outputs.get(&node).is_some_and(|o| *o == output) {
                continue;
            }
            let output = NodeOutput::from_value(&output);
            let node = record.shared_node(&node);
            record.keep_output(&node, &output, limit);
            outbox.state(
                prompt_id,
                Event::Output {
                    prompt_id: record.shared_id.clone(),
                    node: node.clone(),
                    display_node: Some(node),
                    output,
                    recovered: true,
                },
                now,
            );
        }
        let outcome = match entry.outcome {
            HistoryOutcome::Success => Outcome::Succeeded,
            HistoryOutcome::Error(e) => Outcome::Failed(Arc::new(*e)),
            HistoryOutcome::Interrupted(i) => Outcome::Interrupted(i),
            HistoryOutcome::UnknownError => match record.pending_outcome.take() {
                Some(o) => o,
                None => Outcome::Failed(Arc::new(ExecutionError {
                    prompt_id: prompt_id.to_owned(),
                    node_id: None,
                    node_type: None,
                    executed: Vec::new(),
                    exception_message: format!(
                        "history says `{}` without an error message",
                        entry.status_str.as_deref().unwrap_or("error")
                    ),
                    exception_type: "comfywire.UnknownError".to_owned(),
                    traceback: Vec::new(),
                    current_inputs: Value::Null,
                    current_outputs: Vec::new(),
                    timestamp: None,
                })),
            },
        };
        self.finish(prompt_id, outcome, None, outbox, now);
        true
    }

    /// A prompt the server no longer knows: its WS outcome if one arrived
    /// before a gap settled it, else `Lost`.
    pub(crate) fn lose(
        &mut self,
        prompt_id: &str,
        reason: String,
        outbox: &mut Outbox,
        now: Instant,
    ) {
        let pending = self
            .active
            .get_mut(prompt_id)
            .and_then(|r| r.pending_outcome.take());
        let outcome = pending.unwrap_or(Outcome::Lost { reason });
        self.finish(prompt_id, outcome, None, outbox, now);
    }
}

#[cfg(test)]
mod eta_tests {
    use super::eta;
    use std::time::Duration;

    #[test]
    fn eta_is_the_pace_so_far_times_the_steps_left() {
        // 4 of 20 steps in 2 s: 0.5 s a step, 16 left.
        assert_eq!(
            eta(Duration::from_secs(2), 4.0, 20.0),
            Some(Duration::from_secs(8))
        );
        assert_eq!(eta(Duration::from_secs(2), 0.0, 20.0), None);
        assert_eq!(eta(Duration::from_secs(2), 20.0, 20.0), None);
        assert_eq!(eta(Duration::from_secs(2), 3.0, f64::INFINITY), None);
        assert_eq!(eta(Duration::from_secs(2), f64::NAN, 20.0), None);
    }
}
