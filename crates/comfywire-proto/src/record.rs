//! What the session knows about one prompt's execution: its phase, its
//! nodes, its outputs and, once terminal, its one outcome. The tracker
//! (`tracker.rs`) fills these records in; the history ring keeps the
//! finished ones, and [`crate::Event::Finished`] hands them out.

use std::sync::Arc;
use std::time::Duration;

use web_time::Instant;

use serde_json::Value;

use crate::message::{ExecutionError, ExecutionInterrupted};
use crate::output::{NodeOutput, Outputs};

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
    /// `id` once more, allocated once and shared by every event of the
    /// node (progress steps, start, finish, outputs) and the throttles'
    /// keys, which would otherwise each copy it.
    pub(crate) shared_id: Arc<str>,
    /// `display_node`, shared the same way (the same allocation as
    /// `shared_id` when the two are equal, as they are for most nodes).
    pub(crate) shared_display: Option<Arc<str>>,
}

impl NodeRecord {
    /// A node first seen now, running.
    fn new(id: &str, display: Option<&str>) -> Self {
        let shared_id: Arc<str> = Arc::from(id);
        let mut node = NodeRecord {
            id: id.to_owned(),
            display_node: None,
            phase: NodePhase::Running,
            value: 0.0,
            max: 0.0,
            started_at: None,
            finished_at: None,
            shared_id,
            shared_display: None,
        };
        node.set_display(display);
        node
    }

    /// Sets the display node, sharing the id's allocation when they are equal.
    pub(crate) fn set_display(&mut self, display: Option<&str>) {
        self.display_node = display.map(str::to_owned);
        self.shared_display = display.map(|d| {
            if *self.shared_id == *d {
                self.shared_id.clone()
            } else {
                Arc::from(d)
            }
        });
    }

    /// The shared display node when it is `display`, else a new one: an
    /// event that names a display node of its own keeps it, and only
    /// shares the record's allocation when they agree.
    pub(crate) fn display_as(&self, display: Option<&str>) -> Option<Arc<str>> {
        let display = display?;
        match &self.shared_display {
            Some(shared) if **shared == *display => Some(shared.clone()),
            _ if *self.shared_id == *display => Some(self.shared_id.clone()),
            _ => Some(Arc::from(display)),
        }
    }

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
    /// UI outputs by node id, in the order they came (at most
    /// [`ExecutionRecord::MAX_NODES`]).
    pub outputs: Outputs,
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
    /// Outputs not kept in `outputs` because they would have taken the
    /// record past [`crate::SessionConfig::max_record_output_bytes`]; they were still
    /// delivered as `Output` events, and the server's `/history` has them.
    pub outputs_omitted: u32,
    /// Nodes past [`ExecutionRecord::MAX_NODES`] not recorded in `nodes`.
    pub nodes_omitted: u32,
    /// `prompt_id` once more, allocated once and shared by every event of
    /// the prompt and the tracker's and throttles' keys, which would
    /// otherwise each copy it.
    pub(crate) shared_id: Arc<str>,
    /// The node that `executing` named last.
    pub(crate) current_node: Option<Arc<str>>,
    /// True once a `progress_state` arrived (then it, not `executing`,
    /// ends nodes).
    pub(crate) saw_progress_state: bool,
    /// A terminal message that arrived after a gap, held until history
    /// settles the prompt.
    pub(crate) pending_outcome: Option<Outcome>,
    /// Consecutive checks that found the prompt in neither the queue nor
    /// history.
    pub(crate) absent_checks: u8,
    /// Set while the fate of its `POST /prompt` is unknown (the answer was
    /// lost, cut or late, or the submit was cancelled): since when the
    /// session has been asking the server.
    pub(crate) confirm_since: Option<Instant>,
    /// True when tracked on request (attach) rather than submitted here:
    /// its frames may go to another client's socket, so it is polled.
    pub(crate) attached: bool,
    /// Consecutive failed HTTP checks (history or queue) for it.
    pub(crate) http_failures: u8,
    /// Estimated bytes of `outputs`.
    pub(crate) output_bytes: usize,
    /// A foreign prompt that ended while a submission of ours had no
    /// answer: it may be ours under an id the server chose, so its end is
    /// held (in `pending_outcome`) until its history names its client.
    pub(crate) held: bool,
}

impl ExecutionRecord {
    /// The default of [`crate::SessionConfig::max_record_output_bytes`]
    /// (16 MiB): a server that sends endless or huge `executed` outputs
    /// cannot grow one record (or the ring of finished ones) without bound.
    pub const MAX_OUTPUT_BYTES: usize = 16 << 20;

    /// The most nodes a record keeps (4096, far above real workflows).
    pub const MAX_NODES: usize = 4096;

    /// True while the server may be asked about it: queued or running,
    /// or submitted with the answer to its `POST /prompt` unknown.
    pub(crate) fn checkable(&self) -> bool {
        matches!(self.phase, Phase::Queued | Phase::Running)
            || (self.phase == Phase::Submitted && self.confirm_since.is_some())
    }

    /// The server's queue says it runs: a record still queued (its
    /// `execution_start` unheard) moves to running.
    pub(crate) fn seen_running(&mut self, now: Instant) {
        if self.phase < Phase::Running {
            self.phase = Phase::Running;
            self.started_at.get_or_insert(now);
        }
    }

    pub(crate) fn new(prompt_id: &Arc<str>, ours: bool) -> Self {
        ExecutionRecord {
            prompt_id: prompt_id.to_string(),
            shared_id: prompt_id.clone(),
            ours,
            number: None,
            phase: Phase::Queued,
            outcome: None,
            nodes: Vec::new(),
            cached: Vec::new(),
            outputs: Outputs::default(),
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
            confirm_since: None,
            attached: false,
            http_failures: 0,
            held: false,
            output_bytes: 0,
            outputs_omitted: 0,
            nodes_omitted: 0,
        }
    }

    /// The node record, if the node appeared.
    pub fn node(&self, id: &str) -> Option<&NodeRecord> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// A node id shared with the record: the node's own (or display) id
    /// when the record has a node by that name, else a new copy. Searched
    /// from the newest node, the one a preview or output is usually of.
    pub(crate) fn shared_node(&self, id: &str) -> Arc<str> {
        for n in self.nodes.iter().rev() {
            if *n.shared_id == *id {
                return n.shared_id.clone();
            }
            if let Some(display) = n.shared_display.as_ref().filter(|d| ***d == *id) {
                return display.clone();
            }
        }
        Arc::from(id)
    }

    /// The node record, created running when the node is new.
    /// The node's record, made on first sight; `None` for a node past
    /// [`ExecutionRecord::MAX_NODES`] (counted in `nodes_omitted`).
    pub(crate) fn node_mut(&mut self, id: &str, display: Option<&str>) -> Option<&mut NodeRecord> {
        let index = match self.nodes.iter().position(|n| n.id == id) {
            Some(i) => i,
            None if self.nodes.len() >= Self::MAX_NODES => {
                self.nodes_omitted = self.nodes_omitted.saturating_add(1);
                return None;
            }
            None => {
                self.nodes.push(NodeRecord::new(id, display));
                self.nodes.len() - 1
            }
        };
        Some(&mut self.nodes[index])
    }

    /// Keeps a node's output inline while the record's outputs stay within
    /// `limit` bytes of text and [`ExecutionRecord::MAX_NODES`] nodes; past
    /// either the output is not kept (counted in `outputs_omitted`: the
    /// server's `/history` has it). `false` when it was not kept.
    pub(crate) fn keep_output(
        &mut self,
        node: &Arc<str>,
        output: &NodeOutput,
        limit: usize,
    ) -> bool {
        let size = node.len() + output.len();
        let replaced = self.outputs.get(node).map(|old| node.len() + old.len());
        let total = self
            .output_bytes
            .saturating_sub(replaced.unwrap_or(0))
            .saturating_add(size);
        if total > limit || replaced.is_none() && self.outputs.len() >= Self::MAX_NODES {
            self.outputs_omitted = self.outputs_omitted.saturating_add(1);
            return false;
        }
        self.output_bytes = total;
        self.outputs.insert(node.clone(), output.clone());
        true
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
