//! The execution tracker: one record per prompt, from submission to exactly
//! one terminal outcome, merging every "done" signal the server can send.
//!
//! A record's phase only moves forward. Once a prompt is terminal its record
//! moves to the history ring and every later signal for it is ignored.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use web_time::Instant;

use serde_json::{Map, Value};

use crate::emit::Emitter;
use crate::event::Event;
use crate::hash::FastMap;
use crate::history::HistoryRing;
use crate::http::{HistoryEntry, HistoryOutcome};
use crate::message::{ExecutionError, ExecutionInterrupted, NodeRunState, ServerMessage};

/// Where a prompt is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Reserved by this client; `POST /prompt` not answered yet.
    Submitted,
    /// Accepted, waiting in the queue.
    Queued,
    /// Running.
    Running,
    /// Terminal: finished without error.
    Succeeded,
    /// Terminal: a node raised.
    Failed,
    /// Terminal: interrupted.
    Interrupted,
    /// Terminal: the server no longer knows it.
    Lost,
}

impl Phase {
    /// True for the four terminal phases.
    pub fn is_terminal(self) -> bool {
        self >= Phase::Succeeded
    }

    /// A stable lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Submitted => "submitted",
            Phase::Queued => "queued",
            Phase::Running => "running",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
            Phase::Interrupted => "interrupted",
            Phase::Lost => "lost",
        }
    }
}

/// How a prompt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every node finished.
    Succeeded,
    /// A node raised; the server's error payload.
    Failed(Arc<ExecutionError>),
    /// Interrupted; the server's payload (node ids may be missing when the
    /// outcome was learnt from history without one).
    Interrupted(ExecutionInterrupted),
    /// The server no longer knows the prompt (restart, history cleared).
    Lost {
        /// Why the session concluded so.
        reason: String,
    },
}

impl Outcome {
    /// The terminal phase of this outcome.
    pub fn phase(&self) -> Phase {
        match self {
            Outcome::Succeeded => Phase::Succeeded,
            Outcome::Failed(_) => Phase::Failed,
            Outcome::Interrupted(_) => Phase::Interrupted,
            Outcome::Lost { .. } => Phase::Lost,
        }
    }
}

/// Where a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodePhase {
    /// Served from the cache.
    Cached,
    /// Running.
    Running,
    /// Finished.
    Done,
    /// Raised.
    Failed,
    /// Was running when the prompt was interrupted.
    Interrupted,
}

impl NodePhase {
    /// The phase's stable lowercase name, used by every binding.
    pub fn name(self) -> &'static str {
        match self {
            NodePhase::Cached => "cached",
            NodePhase::Running => "running",
            NodePhase::Done => "done",
            NodePhase::Failed => "failed",
            NodePhase::Interrupted => "interrupted",
        }
    }
}

/// One node of an execution.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRecord {
    /// Node id (possibly ephemeral).
    pub id: String,
    /// Node of the submitted prompt to show it on.
    pub display_node: Option<String>,
    /// Phase.
    pub phase: NodePhase,
    /// Last step.
    pub value: f64,
    /// Last maximum.
    pub max: f64,
    /// When it started (session clock).
    pub started_at: Option<Instant>,
    /// When it finished (session clock).
    pub finished_at: Option<Instant>,
}

impl NodeRecord {
    /// How long it ran, when both ends are known.
    pub fn duration(&self) -> Option<Duration> {
        Some(
            self.finished_at?
                .saturating_duration_since(self.started_at?),
        )
    }

    fn fraction(&self) -> f64 {
        match self.phase {
            NodePhase::Cached | NodePhase::Done => 1.0,
            _ if self.max > 0.0 => (self.value / self.max).clamp(0.0, 1.0),
            _ => 0.0,
        }
    }
}

/// Everything known about one prompt's execution.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionRecord {
    /// The prompt.
    pub prompt_id: String,
    /// True when this client submitted it.
    pub ours: bool,
    /// Queue number, when known.
    pub number: Option<u64>,
    /// Phase.
    pub phase: Phase,
    /// The outcome, once terminal.
    pub outcome: Option<Outcome>,
    /// Nodes in the order they appeared.
    pub nodes: Vec<NodeRecord>,
    /// Nodes served from the cache.
    pub cached: Vec<String>,
    /// UI outputs by node id.
    pub outputs: Map<String, Value>,
    /// Nodes in the submitted graph, when this client submitted it.
    pub expected_nodes: Option<usize>,
    /// `node_errors` of a partially valid prompt.
    pub node_errors: Option<Value>,
    /// When this client submitted it.
    pub submitted_at: Option<Instant>,
    /// When it started running.
    pub started_at: Option<Instant>,
    /// When it became terminal.
    pub finished_at: Option<Instant>,
    /// Server timestamp (ms since the epoch) of `execution_start`.
    pub server_started_ms: Option<u64>,
    /// Server timestamp (ms since the epoch) of the terminal message.
    pub server_finished_ms: Option<u64>,
    /// True when the socket was down at some point while it was in flight.
    pub had_gap: bool,
    current_node: Option<String>,
    saw_progress_state: bool,
    pending_outcome: Option<Outcome>,
    pub(crate) absent_checks: u8,
}

impl ExecutionRecord {
    fn new(prompt_id: &str, ours: bool) -> Self {
        ExecutionRecord {
            prompt_id: prompt_id.to_owned(),
            ours,
            number: None,
            phase: Phase::Queued,
            outcome: None,
            nodes: Vec::new(),
            cached: Vec::new(),
            outputs: Map::new(),
            expected_nodes: None,
            node_errors: None,
            submitted_at: None,
            started_at: None,
            finished_at: None,
            server_started_ms: None,
            server_finished_ms: None,
            had_gap: false,
            current_node: None,
            saw_progress_state: false,
            pending_outcome: None,
            absent_checks: 0,
        }
    }

    /// The node record, if the node appeared.
    pub fn node(&self, id: &str) -> Option<&NodeRecord> {
        self.nodes.iter().find(|n| n.id == id)
    }

    fn node_mut(&mut self, id: &str, display: Option<&str>) -> &mut NodeRecord {
        let index = match self.nodes.iter().position(|n| n.id == id) {
            Some(i) => i,
            None => {
                self.nodes.push(NodeRecord {
                    id: id.to_owned(),
                    display_node: display.map(str::to_owned),
                    phase: NodePhase::Running,
                    value: 0.0,
                    max: 0.0,
                    started_at: None,
                    finished_at: None,
                });
                self.nodes.len() - 1
            }
        };
        &mut self.nodes[index]
    }

    /// Whole-prompt progress in `[0, 1]`: finished and cached nodes plus
    /// the running nodes' step fractions, over the node count.
    pub fn progress(&self) -> f64 {
        if self.phase == Phase::Succeeded {
            return 1.0;
        }
        let done: f64 = self.nodes.iter().map(NodeRecord::fraction).sum();
        let total = self.expected_nodes.unwrap_or(0).max(self.nodes.len());
        if total == 0 {
            0.0
        } else {
            (done / total as f64).clamp(0.0, 1.0)
        }
    }

    /// Wall time from start to end, when both are known.
    pub fn duration(&self) -> Option<Duration> {
        Some(
            self.finished_at?
                .saturating_duration_since(self.started_at?),
        )
    }

    /// True once terminal.
    pub fn is_terminal(&self) -> bool {
        self.phase.is_terminal()
    }
}

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
    active: FastMap<String, ExecutionRecord>,
    arrival: VecDeque<String>,
    history: HistoryRing,
    current: Option<String>,
    max_foreign: usize,
}

impl Tracker {
    pub(crate) fn new(history_capacity: usize, max_foreign: usize) -> Self {
        Tracker {
            active: FastMap::default(),
            arrival: VecDeque::new(),
            history: HistoryRing::new(history_capacity),
            current: None,
            max_foreign: max_foreign.max(1),
        }
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
        emit: &mut Emitter,
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
        emit.state(
            prompt_id,
            Event::PromptQueued {
                prompt_id: prompt_id.to_owned(),
                number,
            },
            now,
        );
    }

    pub(crate) fn rejected(&mut self, prompt_id: &str) {
        if self.active.remove(prompt_id).is_some() {
            self.arrival.retain(|p| p != prompt_id);
        }
    }

    /// Marks every in-flight prompt as having missed part of its stream.
    pub(crate) fn mark_gap(&mut self) {
        for record in self.active.values_mut() {
            if matches!(record.phase, Phase::Queued | Phase::Running) {
                record.had_gap = true;
            }
        }
    }

    fn get_or_create(&mut self, prompt_id: &str, ours: bool) -> &mut ExecutionRecord {
        if !self.active.contains_key(prompt_id) {
            self.arrival.push_back(prompt_id.to_owned());
            self.active
                .insert(prompt_id.to_owned(), ExecutionRecord::new(prompt_id, ours));
            self.bound_foreign();
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
            if self.current.as_deref() == Some(id.as_str()) {
                self.current = None;
            }
        }
    }

    /// The record a message for `prompt_id` should update, or `None` when
    /// the prompt is already terminal.
    fn live(&mut self, prompt_id: &str) -> Option<&mut ExecutionRecord> {
        // An active record is never in the ring (finishing moves it there),
        // so the common case costs one lookup.
        if self.active.contains_key(prompt_id) {
            return self.active.get_mut(prompt_id);
        }
        if self.history.contains(prompt_id) {
            return None;
        }
        Some(self.get_or_create(prompt_id, false))
    }

    fn start_running(record: &mut ExecutionRecord, emit: &mut Emitter, now: Instant) {
        if record.phase < Phase::Running {
            record.phase = Phase::Running;
            record.started_at.get_or_insert(now);
            emit.state(
                &record.prompt_id,
                Event::ExecutionStarted {
                    prompt_id: record.prompt_id.clone(),
                },
                now,
            );
        }
    }

    fn finish_node(record: &mut ExecutionRecord, node: &str, emit: &mut Emitter, now: Instant) {
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
        emit.node_state(
            &record.prompt_id,
            node,
            Event::NodeFinished {
                prompt_id: record.prompt_id.clone(),
                node: node.to_owned(),
            },
            now,
        );
        emit.forget_node(&record.prompt_id, node);
    }

    fn start_node(
        record: &mut ExecutionRecord,
        node: &str,
        display: Option<&str>,
        emit: &mut Emitter,
        now: Instant,
    ) {
        let known = record.nodes.iter().any(|n| n.id == node);
        let n = record.node_mut(node, display);
        if known && n.phase != NodePhase::Running {
            // Re-staged (lazy inputs) or a late duplicate of a done node.
            if n.phase == NodePhase::Done {
                return;
            }
        }
        if n.display_node.is_none() {
            n.display_node = display.map(str::to_owned);
        }
        if known && n.started_at.is_some() {
            return;
        }
        n.phase = NodePhase::Running;
        n.started_at = Some(now);
        let display_node = n.display_node.clone();
        emit.state(
            &record.prompt_id,
            Event::NodeStarted {
                prompt_id: record.prompt_id.clone(),
                node: node.to_owned(),
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
        emit: &mut Emitter,
        now: Instant,
    ) {
        let n = record.node_mut(node, None);
        if n.phase != NodePhase::Running {
            return;
        }
        if n.started_at.is_some() && n.value == value && n.max == max {
            // `progress_state` and `progress` report every step twice.
            return;
        }
        n.value = value;
        n.max = max;
        n.started_at.get_or_insert(now);
        let overall = record.progress();
        let display = record.node(node).and_then(|n| n.display_node.as_deref());
        emit.progress(&record.prompt_id, node, display, value, max, overall, now);
    }

    /// A preview; a type-1 frame (no ids) is attributed to the running
    /// prompt's current node.
    pub(crate) fn on_preview(
        &mut self,
        prompt_id: Option<&str>,
        node: Option<&str>,
        mime: std::borrow::Cow<'static, str>,
        image: &[u8],
        emit: &mut Emitter,
        now: Instant,
    ) {
        match prompt_id {
            Some(p) => {
                // The running prompt (nearly every preview's) is never in
                // the ring: finishing clears `current`; skip the lookup.
                if self.current.as_deref() != Some(p) && self.history.contains(p) {
                    return;
                }
                emit.preview(Some(p), node, mime, image, now);
            }
            None => {
                let current = self.current.as_deref();
                let node = current
                    .and_then(|p| self.active.get(p))
                    .and_then(|r| r.current_node.as_deref());
                emit.preview(current, node, mime, image, now);
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
        emit: &mut Emitter,
        now: Instant,
    ) {
        // The ids are almost always in the message; the fallbacks (a
        // missing prompt id or node) are the only place that copies.
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
            Self::progress_in(record, node, value, max, emit, now);
            return;
        }
        if let Some(record) = self.live(prompt_id) {
            Self::progress_in(record, node, value, max, emit, now);
        }
    }

    fn progress_in(
        record: &mut ExecutionRecord,
        node: Option<&str>,
        value: f64,
        max: f64,
        emit: &mut Emitter,
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
        Self::start_running(record, emit, now);
        if record.node(node).is_none() {
            Self::start_node(record, node, None, emit, now);
        }
        Self::progress_of(record, node, value, max, emit, now);
    }

    /// `progress_state`, owned or borrowed: `(node id, value, max, state,
    /// display node)` per entry.
    pub(crate) fn on_progress_state<'a>(
        &mut self,
        prompt_id: &str,
        nodes: impl Iterator<Item = (&'a str, f64, f64, NodeState, Option<&'a str>)>,
        emit: &mut Emitter,
        now: Instant,
    ) {
        let Some(record) = self.live(prompt_id) else {
            return;
        };
        record.saw_progress_state = true;
        Self::start_running(record, emit, now);
        for (node_id, value, max, state, display) in nodes {
            let phase = record.node(node_id).map(|n| n.phase);
            match state {
                NodeState::Running => {
                    if phase.is_none() {
                        Self::start_node(record, node_id, display, emit, now);
                    }
                    let started_fresh = value == 0.0 && max == 1.0;
                    if !started_fresh {
                        Self::progress_of(record, node_id, value, max, emit, now);
                    }
                }
                NodeState::Finished => {
                    if phase.is_none() {
                        Self::start_node(record, node_id, display, emit, now);
                    }
                    if let Some(n) = record.nodes.iter_mut().find(|n| n.id == node_id) {
                        if n.phase == NodePhase::Running {
                            n.value = value;
                            n.max = max;
                        }
                    }
                    Self::finish_node(record, node_id, emit, now);
                }
                NodeState::Other => {}
            }
        }
        if self.current.as_deref() != Some(prompt_id) {
            self.current = Some(prompt_id.to_owned());
        }
    }

    pub(crate) fn on_message(
        &mut self,
        message: ServerMessage,
        emit: &mut Emitter,
        now: Instant,
    ) -> Followup {
        match message {
            ServerMessage::Status(status) => emit.push(Event::Status {
                queue_remaining: status.queue_remaining,
                sid: status.sid,
            }),
            ServerMessage::FeatureFlags(flags) => emit.push(Event::FeatureFlags(flags)),
            ServerMessage::ExecutionStart(m) => {
                let Some(record) = self.live(&m.prompt_id) else {
                    return Followup::None;
                };
                record.server_started_ms = m.timestamp.or(record.server_started_ms);
                Self::start_running(record, emit, now);
                self.current = Some(m.prompt_id);
            }
            ServerMessage::ExecutionCached(m) => {
                let Some(record) = self.live(&m.prompt_id) else {
                    return Followup::None;
                };
                Self::start_running(record, emit, now);
                for node in &m.nodes {
                    let n = record.node_mut(node, Some(node));
                    n.phase = NodePhase::Cached;
                }
                record.cached = m.nodes.clone();
                emit.state(
                    &m.prompt_id,
                    Event::NodesCached {
                        prompt_id: m.prompt_id.clone(),
                        nodes: m.nodes,
                    },
                    now,
                );
                self.current = Some(m.prompt_id);
            }
            ServerMessage::Executing(m) => {
                let Some(prompt_id) = m.prompt_id.or_else(|| self.current.clone()) else {
                    return Followup::None;
                };
                let Some(record) = self.live(&prompt_id) else {
                    return Followup::None;
                };
                match m.node {
                    Some(node) => {
                        Self::start_running(record, emit, now);
                        if !record.saw_progress_state {
                            // Servers without progress_state end a node only
                            // by starting the next one.
                            if let Some(previous) = record.current_node.clone() {
                                if previous != node {
                                    Self::finish_node(record, &previous, emit, now);
                                }
                            }
                        }
                        Self::start_node(record, &node, m.display_node.as_deref(), emit, now);
                        record.current_node = Some(node);
                        self.current = Some(prompt_id);
                    }
                    None => return self.ended(&prompt_id, emit, now),
                }
            }
            ServerMessage::Progress(m) => {
                self.on_progress(
                    m.prompt_id.as_deref(),
                    m.node.as_deref(),
                    m.value,
                    m.max,
                    emit,
                    now,
                );
            }
            ServerMessage::ProgressState(m) => {
                let nodes = m.nodes.iter().map(|e| {
                    let state = match e.state {
                        NodeRunState::Running => NodeState::Running,
                        NodeRunState::Finished => NodeState::Finished,
                        _ => NodeState::Other,
                    };
                    (
                        e.node_id.as_str(),
                        e.value,
                        e.max,
                        state,
                        e.display_node_id.as_deref(),
                    )
                });
                self.on_progress_state(&m.prompt_id, nodes, emit, now);
            }
            ServerMessage::Executed(m) => {
                let Some(record) = self.live(&m.prompt_id) else {
                    return Followup::None;
                };
                Self::start_running(record, emit, now);
                if record.node(&m.node).is_none() {
                    let n = record.node_mut(&m.node, m.display_node.as_deref());
                    n.started_at = Some(now);
                }
                if let Some(output) = m.output.filter(|o| !o.is_null()) {
                    record.outputs.insert(m.node.clone(), output.clone());
                    emit.state(
                        &m.prompt_id,
                        Event::Output {
                            prompt_id: m.prompt_id.clone(),
                            node: m.node,
                            display_node: m.display_node,
                            output,
                            recovered: false,
                        },
                        now,
                    );
                }
            }
            ServerMessage::ExecutionSuccess(m) => {
                return self.terminal(&m.prompt_id, Outcome::Succeeded, m.timestamp, emit, now);
            }
            ServerMessage::ExecutionError(m) => {
                if m.is_blocked() {
                    let prompt_id = m.prompt_id.clone();
                    emit.state(&prompt_id, Event::Blocked(Arc::new(m)), now);
                    return Followup::None;
                }
                if let Some(record) = self.active.get_mut(&m.prompt_id) {
                    if let Some(node) = m.node_id.as_deref() {
                        let n = record.node_mut(node, Some(node));
                        n.phase = NodePhase::Failed;
                        n.finished_at = Some(now);
                    }
                }
                let prompt_id = m.prompt_id.clone();
                let timestamp = m.timestamp;
                return self.terminal(
                    &prompt_id,
                    Outcome::Failed(Arc::new(m)),
                    timestamp,
                    emit,
                    now,
                );
            }
            ServerMessage::ExecutionInterrupted(m) => {
                if let Some(record) = self.active.get_mut(&m.prompt_id) {
                    for n in record
                        .nodes
                        .iter_mut()
                        .filter(|n| n.phase == NodePhase::Running)
                    {
                        n.phase = NodePhase::Interrupted;
                        n.finished_at = Some(now);
                    }
                }
                let prompt_id = m.prompt_id.clone();
                let timestamp = m.timestamp;
                return self.terminal(&prompt_id, Outcome::Interrupted(m), timestamp, emit, now);
            }
            ServerMessage::Preview(p) => {
                self.on_preview(
                    None,
                    None,
                    std::borrow::Cow::Borrowed(p.format.mime()),
                    &p.image,
                    emit,
                    now,
                );
            }
            ServerMessage::PreviewWithMetadata(p) => {
                let node = p
                    .metadata
                    .display_node_id
                    .as_deref()
                    .unwrap_or(&p.metadata.node_id);
                let mime = crate::message::preview_mime(p.metadata.image_type.as_deref());
                self.on_preview(
                    Some(&p.metadata.prompt_id),
                    Some(node),
                    mime,
                    &p.image,
                    emit,
                    now,
                );
            }
            ServerMessage::ProgressText(t) => {
                // Type 3 is broadcast without a prompt id: attribute it only
                // when the running prompt has that node.
                let prompt_id = self.current.clone().filter(|p| {
                    self.active
                        .get(p)
                        .is_some_and(|r| r.node(&t.node_id).is_some())
                });
                emit.push(Event::ProgressText {
                    prompt_id,
                    node: t.node_id,
                    text: t.text,
                });
            }
            other => emit.push(Event::Message(Arc::new(other))),
        }
        Followup::None
    }

    /// `executing {node: null}`: the prompt is over and its history is
    /// written. Without a gap it is the end; after a gap, history decides.
    fn ended(&mut self, prompt_id: &str, emit: &mut Emitter, now: Instant) -> Followup {
        let Some(record) = self.active.get_mut(prompt_id) else {
            return Followup::None;
        };
        if record.had_gap {
            return Followup::Reconcile(prompt_id.to_owned());
        }
        let outcome = record.pending_outcome.take().unwrap_or(Outcome::Succeeded);
        self.finish(prompt_id, outcome, None, emit, now);
        Followup::None
    }

    fn terminal(
        &mut self,
        prompt_id: &str,
        outcome: Outcome,
        timestamp: Option<u64>,
        emit: &mut Emitter,
        now: Instant,
    ) -> Followup {
        let Some(record) = self.live(prompt_id) else {
            return Followup::None;
        };
        if record.had_gap {
            // Outputs may have been missed: settle once history is written.
            record.server_finished_ms = timestamp.or(record.server_finished_ms);
            record.pending_outcome = Some(outcome);
            return Followup::None;
        }
        self.finish(prompt_id, outcome, timestamp, emit, now);
        Followup::None
    }

    /// Makes a prompt terminal: flushes its held progress, emits the one
    /// `Finished` event, and moves the record to the ring.
    pub(crate) fn finish(
        &mut self,
        prompt_id: &str,
        outcome: Outcome,
        timestamp: Option<u64>,
        emit: &mut Emitter,
        now: Instant,
    ) {
        if self.history.contains(prompt_id) {
            return;
        }
        let Some(mut record) = self.active.remove(prompt_id) else {
            return;
        };
        self.arrival.retain(|p| p != prompt_id);
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
        emit.flush_prompt(prompt_id, now);
        emit.forget_prompt(prompt_id);
        let record = Arc::new(record);
        self.history.push(record.clone());
        emit.push(Event::Finished(record));
    }

    /// Settles a prompt from its `/history` entry: missed outputs first,
    /// then the one terminal event. Returns true when it became terminal.
    pub(crate) fn settle_from_history(
        &mut self,
        prompt_id: &str,
        entry: HistoryEntry,
        emit: &mut Emitter,
        now: Instant,
    ) -> bool {
        let Some(record) = self.active.get_mut(prompt_id) else {
            return false;
        };
        record.number = entry.number.or(record.number);
        if record.cached.is_empty() && !entry.cached.is_empty() {
            record.cached = entry.cached.clone();
            for node in &entry.cached {
                let n = record.node_mut(node, Some(node));
                if n.phase == NodePhase::Running {
                    n.phase = NodePhase::Cached;
                }
            }
        }
        for (node, output) in entry.outputs {
            if output.is_null() || record.outputs.get(&node) == Some(&output) {
                continue;
            }
            record.outputs.insert(node.clone(), output.clone());
            emit.state(
                prompt_id,
                Event::Output {
                    prompt_id: prompt_id.to_owned(),
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
        self.finish(prompt_id, outcome, None, emit, now);
        true
    }

    /// A prompt the server no longer knows: its WS outcome if one arrived
    /// before a gap settled it, else `Lost`.
    pub(crate) fn lose(
        &mut self,
        prompt_id: &str,
        reason: String,
        emit: &mut Emitter,
        now: Instant,
    ) {
        let pending = self
            .active
            .get_mut(prompt_id)
            .and_then(|r| r.pending_outcome.take());
        let outcome = pending.unwrap_or(Outcome::Lost { reason });
        self.finish(prompt_id, outcome, None, emit, now);
    }
}
