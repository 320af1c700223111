//! The tracker's handlers of parsed messages: [`Tracker::on_message`]
//! sends each kind it acts on to a handler of its own, here, apart from
//! the hot path (progress, snapshots, previews) and the follow-ups over
//! HTTP, which stay in the parent module.

use std::borrow::Cow;
use std::sync::Arc;

use web_time::Instant;

use super::{Followup, NodeState, Tracker};
use crate::event::Event;
use crate::message::{
    ExecutionCached, ExecutionError, ExecutionInterrupted, ExecutionStart, NodeRunState,
    PreviewWithMetadata, ProgressState, ProgressText, ServerMessage, preview_mime,
};
use crate::outbox::Outbox;
use crate::output::NodeOutput;
use crate::record::{ExecutionRecord, NodePhase, Outcome};

impl Tracker {
    /// One parsed message: each kind the tracker acts on goes to its own
    /// handler; `status`, `feature_flags` and kinds with no tracker meaning
    /// pass through as events.
    pub(crate) fn on_message(
        &mut self,
        message: ServerMessage,
        outbox: &mut Outbox,
        now: Instant,
    ) -> Followup {
        match message {
            ServerMessage::Status(status) => outbox.push(Event::Status {
                queue_remaining: status.queue_remaining,
                sid: status.sid,
            }),
            ServerMessage::FeatureFlags(flags) => outbox.push(Event::FeatureFlags(flags)),
            ServerMessage::ExecutionStart(m) => self.on_execution_start(m, outbox, now),
            ServerMessage::ExecutionCached(m) => self.on_execution_cached(m, outbox, now),
            ServerMessage::Executing(m) => {
                return self.on_executing(
                    m.prompt_id.as_deref(),
                    m.node.as_deref(),
                    m.display_node.as_deref(),
                    outbox,
                    now,
                );
            }
            ServerMessage::Progress(m) => self.on_progress(
                m.prompt_id.as_deref(),
                m.node.as_deref(),
                m.value,
                m.max,
                outbox,
                now,
            ),
            ServerMessage::ProgressState(m) => self.on_owned_progress_state(&m, outbox, now),
            ServerMessage::Executed(m) => self.on_executed(
                &m.prompt_id,
                &m.node,
                m.display_node.as_deref(),
                m.output,
                outbox,
                now,
            ),
            ServerMessage::ExecutionSuccess(m) => {
                return self.terminal(&m.prompt_id, Outcome::Succeeded, m.timestamp, outbox, now);
            }
            ServerMessage::ExecutionError(m) => return self.on_execution_error(m, outbox, now),
            ServerMessage::ExecutionInterrupted(m) => {
                return self.on_execution_interrupted(m, outbox, now);
            }
            ServerMessage::Preview(p) => self.on_preview(
                None,
                None,
                Cow::Borrowed(p.format.mime()),
                &p.image,
                outbox,
                now,
            ),
            ServerMessage::PreviewWithMetadata(p) => self.on_preview_with_metadata(&p, outbox, now),
            ServerMessage::ProgressText(t) => self.on_progress_text(t, outbox),
            other => outbox.push(Event::Message(Arc::new(other))),
        }
        Followup::None
    }

    /// `execution_start`: the prompt runs.
    fn on_execution_start(&mut self, m: ExecutionStart, outbox: &mut Outbox, now: Instant) {
        let Some(record) = self.live(&m.prompt_id, outbox) else {
            return;
        };
        record.server_started_ms = m.timestamp.or(record.server_started_ms);
        Self::start_running(record, outbox, now);
        self.current = Some(record.shared_id.clone());
    }

    /// `execution_cached`: these nodes will not run.
    fn on_execution_cached(&mut self, m: ExecutionCached, outbox: &mut Outbox, now: Instant) {
        let Some(record) = self.live(&m.prompt_id, outbox) else {
            return;
        };
        Self::start_running(record, outbox, now);
        for node in &m.nodes {
            if let Some(n) = record.node_mut(node, Some(node)) {
                n.phase = NodePhase::Cached;
            }
        }
        record.cached = m
            .nodes
            .iter()
            .take(ExecutionRecord::MAX_NODES)
            .cloned()
            .collect();
        let prompt_id = record.shared_id.clone();
        outbox.state(
            &m.prompt_id,
            Event::NodesCached {
                prompt_id: prompt_id.clone(),
                nodes: m.nodes,
            },
            now,
        );
        self.current = Some(prompt_id);
    }

    /// `executing`, owned or borrowed: a node starts, or (`node: null`)
    /// the prompt is over.
    pub(crate) fn on_executing(
        &mut self,
        prompt_id: Option<&str>,
        node: Option<&str>,
        display_node: Option<&str>,
        outbox: &mut Outbox,
        now: Instant,
    ) -> Followup {
        let current = self.current.clone();
        let Some(prompt_id) = prompt_id.or(current.as_deref()) else {
            return Followup::None;
        };
        let Some(record) = self.live(prompt_id, outbox) else {
            return Followup::None;
        };
        let Some(node) = node else {
            return self.ended(prompt_id, outbox, now);
        };
        Self::start_running(record, outbox, now);
        if !record.saw_progress_state {
            // Servers without progress_state end a node only by starting
            // the next one.
            if let Some(previous) = record.current_node.clone() {
                if *previous != *node {
                    Self::finish_node(record, &previous, outbox, now);
                }
            }
        }
        Self::start_node(record, node, display_node, outbox, now);
        record.current_node = Some(record.shared_node(node));
        self.current = Some(record.shared_id.clone());
        Followup::None
    }

    /// `progress_state` parsed in full (the hot path reads it borrowed).
    fn on_owned_progress_state(&mut self, m: &ProgressState, outbox: &mut Outbox, now: Instant) {
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
        self.on_progress_state(&m.prompt_id, nodes, outbox, now);
    }

    /// `executed`, owned or borrowed: a node's UI output.
    pub(crate) fn on_executed(
        &mut self,
        prompt_id: &str,
        node: &str,
        display_node: Option<&str>,
        output: Option<NodeOutput>,
        outbox: &mut Outbox,
        now: Instant,
    ) {
        let limit = self.max_output_bytes;
        let Some(record) = self.live(prompt_id, outbox) else {
            return;
        };
        Self::start_running(record, outbox, now);
        if record.node(node).is_none() {
            if let Some(n) = record.node_mut(node, display_node) {
                n.started_at = Some(now);
            }
        }
        if let Some(output) = output.filter(|o| !o.is_null()) {
            // The event names the message's display node, sharing the
            // record's allocation when they agree.
            let (node, display_node) = match record.node(node) {
                Some(n) => (n.shared_id.clone(), n.display_as(display_node)),
                None => (Arc::from(node), display_node.map(Arc::from)),
            };
            record.keep_output(&node, &output, limit);
            outbox.state(
                prompt_id,
                Event::Output {
                    prompt_id: record.shared_id.clone(),
                    node,
                    display_node,
                    output,
                    recovered: false,
                },
                now,
            );
        }
    }

    /// `execution_error`: the prompt failed, unless the error only says it
    /// is blocked (not terminal).
    fn on_execution_error(
        &mut self,
        m: ExecutionError,
        outbox: &mut Outbox,
        now: Instant,
    ) -> Followup {
        if m.is_blocked() {
            let prompt_id = m.prompt_id.clone();
            outbox.state(&prompt_id, Event::Blocked(Arc::new(m)), now);
            return Followup::None;
        }
        if let Some(record) = self.active.get_mut(m.prompt_id.as_str()) {
            if let Some(n) = m
                .node_id
                .as_deref()
                .and_then(|id| record.node_mut(id, Some(id)))
            {
                n.phase = NodePhase::Failed;
                n.finished_at = Some(now);
            }
        }
        let prompt_id = m.prompt_id.clone();
        let timestamp = m.timestamp;
        self.terminal(
            &prompt_id,
            Outcome::Failed(Arc::new(m)),
            timestamp,
            outbox,
            now,
        )
    }

    /// `execution_interrupted`: the running nodes stop where they are.
    fn on_execution_interrupted(
        &mut self,
        m: ExecutionInterrupted,
        outbox: &mut Outbox,
        now: Instant,
    ) -> Followup {
        if let Some(record) = self.active.get_mut(m.prompt_id.as_str()) {
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
        self.terminal(&prompt_id, Outcome::Interrupted(m), timestamp, outbox, now)
    }

    /// A type-4 preview parsed in full (the hot path reads it borrowed).
    fn on_preview_with_metadata(
        &mut self,
        p: &PreviewWithMetadata,
        outbox: &mut Outbox,
        now: Instant,
    ) {
        let node = p
            .metadata
            .display_node_id
            .as_deref()
            .unwrap_or(&p.metadata.node_id);
        let mime = preview_mime(p.metadata.image_type.as_deref());
        self.on_preview(
            Some(&p.metadata.prompt_id),
            Some(node),
            mime,
            &p.image,
            outbox,
            now,
        );
    }

    /// Type-3 progress text, broadcast without a prompt id: attributed only
    /// when the running prompt has that node.
    fn on_progress_text(&mut self, t: ProgressText, outbox: &mut Outbox) {
        let attributed = self.current.as_ref().and_then(|p| {
            let node = self.active.get(&**p)?.node(&t.node_id)?;
            Some((p.clone(), node.shared_id.clone()))
        });
        let (prompt_id, node) = match attributed {
            Some((p, node)) => (Some(p), node),
            None => (None, Arc::from(t.node_id)),
        };
        outbox.push(Event::ProgressText {
            prompt_id,
            node,
            text: t.text,
        });
    }

    /// `executing {node: null}`: the prompt is over and its history is
    /// written. Without a gap it is the end; after a gap, history decides.
    fn ended(&mut self, prompt_id: &str, outbox: &mut Outbox, now: Instant) -> Followup {
        let Some(record) = self.active.get_mut(prompt_id) else {
            return Followup::None;
        };
        if record.had_gap || record.held {
            return Followup::Reconcile(prompt_id.to_owned());
        }
        let outcome = record.pending_outcome.take().unwrap_or(Outcome::Succeeded);
        if let Some(followup) = self.hold(prompt_id, &outcome, None) {
            return followup;
        }
        self.finish(prompt_id, outcome, None, outbox, now);
        Followup::None
    }

    fn terminal(
        &mut self,
        prompt_id: &str,
        outcome: Outcome,
        timestamp: Option<u64>,
        outbox: &mut Outbox,
        now: Instant,
    ) -> Followup {
        let Some(record) = self.live(prompt_id, outbox) else {
            return Followup::None;
        };
        if record.had_gap {
            // Outputs may have been missed: settle once history is written.
            record.server_finished_ms = timestamp.or(record.server_finished_ms);
            record.pending_outcome = Some(outcome);
            return Followup::None;
        }
        if let Some(followup) = self.hold(prompt_id, &outcome, timestamp) {
            return followup;
        }
        self.finish(prompt_id, outcome, timestamp, outbox, now);
        Followup::None
    }
}
