//! [`Session`]: the one type a driver talks to.

mod config;
mod disconnected;
mod submission;

pub use config::SessionConfig;

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use web_time::Instant;

use bytes::Bytes;

use crate::event::Event;
use crate::frame::Frame;
use crate::history::HistoryRing;
use crate::hot::{HotReader, HotText};
use crate::message::ServerMessage;
use crate::message::feature_flags_message;
use crate::outbox::{Outbox, OutboxStats};
use crate::output::NodeOutput;
use crate::parse::parse_frame;
use crate::reconcile::{HttpReply, HttpRequest, QueueSnapshot};
use crate::record::{ExecutionRecord, Phase};
use crate::rng::Rng;
use crate::state::{ConnectionError, ConnectionState, ConnectionStatus};
use crate::tracker::{Followup, NodeState, Tracker};

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Open the WebSocket (`/ws?clientId=…`, no query when `None`); answer
    /// with `handle_connected` or `handle_connect_failed`.
    Connect {
        /// The client id to put in the URL.
        client_id: Option<String>,
    },
    /// Send a text frame on the open socket.
    SendText(String),
    /// Send a WebSocket ping with this payload.
    Ping(Bytes),
    /// Close the socket (sending a close frame when possible). The session
    /// already considers it gone: do not report its end.
    Close {
        /// Close code.
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// Make an HTTP request; answer with `handle_http`.
    Http(HttpRequest),
}

/// Why [`Session::poll_timeout`] wants to be woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerReason {
    /// The next connect attempt.
    Reconnect,
    /// Time to ping.
    Heartbeat,
    /// A ping went unanswered for too long.
    HeartbeatTimeout,
    /// The connection has been up long enough to reset the backoff.
    BackoffReset,
    /// Polling over HTTP while the socket is down.
    Poll,
    /// A running prompt and a silent socket.
    Watchdog,
    /// A prompt of ours and a few seconds without a frame: ask the queue.
    Probe,
    /// Attached prompts are checked over HTTP.
    AttachPoll,
    /// A prompt found nowhere is checked again.
    Reconcile,
    /// Held progress or previews become due.
    Flush,
}

impl TimerReason {
    /// A stable snake_case name (for drivers in other languages and logs).
    pub fn name(self) -> &'static str {
        match self {
            TimerReason::Reconnect => "reconnect",
            TimerReason::Heartbeat => "heartbeat",
            TimerReason::HeartbeatTimeout => "heartbeat_timeout",
            TimerReason::BackoffReset => "backoff_reset",
            TimerReason::Poll => "poll",
            TimerReason::Watchdog => "watchdog",
            TimerReason::Probe => "probe",
            TimerReason::AttachPoll => "attach_poll",
            TimerReason::Reconcile => "reconcile",
            TimerReason::Flush => "flush",
        }
    }
}

/// A deadline and its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout {
    /// When.
    pub at: Instant,
    /// Why.
    pub reason: TimerReason,
}

/// Counters for diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Frames handed to `handle_frame`.
    pub frames: u64,
    /// Frames that failed to parse.
    pub bad_frames: u64,
    /// Successful connects after the first.
    pub reconnects: u64,
    /// Consecutive failed connects right now.
    pub consecutive_failures: u32,
    /// `progress_state` snapshots that only repeated a step and were not
    /// parsed.
    pub skipped_snapshots: u64,
    /// Throttle counters.
    pub emitted: OutboxStats,
}

/// The sans-IO ComfyUI session: connection state machine, heartbeat,
/// reconnect backoff, polling fallback, execution tracker, throttles and
/// reconciliation. See the crate docs for the run loop.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    client_id: Option<String>,
    state: ConnectionState,
    last_error: Option<ConnectionError>,
    rng: Rng,
    commands: VecDeque<Command>,
    outbox: Outbox,
    tracker: Tracker,
    stats: SessionStats,
    ever_connected: bool,
    connected_at: Option<Instant>,
    stable_at: Option<Instant>,
    next_ping_at: Option<Instant>,
    ping_sent_at: Option<Instant>,
    ping_counter: u64,
    last_frame_at: Option<Instant>,
    offline: disconnected::OfflinePoll,
    recheck_at: Option<Instant>,
    recheck: BTreeSet<String>,
    history_requested: BTreeSet<String>,
    awaiting_queue: BTreeSet<String>,
    queue_requested: bool,
    deaf_suspect: bool,
    last_check_at: Option<Instant>,
    last_probe_at: Option<Instant>,
    probing: bool,
    attach_poll_at: Option<Instant>,
    hot: HotReader,
}

impl Session {
    /// A session that has not started; call [`Session::connect`].
    pub fn new(config: SessionConfig) -> Session {
        Session {
            client_id: config.client_id.clone(),
            state: ConnectionState::Idle,
            last_error: None,
            rng: Rng::new(config.seed),
            commands: VecDeque::new(),
            outbox: Outbox::new(config.progress_interval, config.preview_interval),
            tracker: Tracker::new(
                config.history_capacity,
                config.max_foreign_prompts,
                config.max_record_output_bytes,
            ),
            stats: SessionStats::default(),
            ever_connected: false,
            connected_at: None,
            stable_at: None,
            next_ping_at: None,
            ping_sent_at: None,
            ping_counter: 0,
            last_frame_at: None,
            offline: disconnected::OfflinePoll::default(),
            recheck_at: None,
            recheck: BTreeSet::new(),
            history_requested: BTreeSet::new(),
            awaiting_queue: BTreeSet::new(),
            queue_requested: false,
            deaf_suspect: false,
            last_check_at: None,
            last_probe_at: None,
            probing: false,
            attach_poll_at: None,
            hot: HotReader::default(),
            config,
        }
    }

    // ---- getters ----

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The client id in use (given, or adopted from the server's sid).
    pub fn client_id(&self) -> Option<&str> {
        self.client_id.as_deref()
    }

    /// The connection state.
    pub fn state(&self) -> &ConnectionState {
        &self.state
    }

    /// State plus last error.
    pub fn status(&self) -> ConnectionStatus {
        ConnectionStatus {
            state: self.state.clone(),
            last_error: self.last_error.clone(),
        }
    }

    /// The error that ended the last connection or attempt.
    pub fn last_error(&self) -> Option<&ConnectionError> {
        self.last_error.as_ref()
    }

    /// The execution tracker (in-flight records).
    pub fn tracker(&self) -> &Tracker {
        &self.tracker
    }

    /// The ring of finished executions.
    pub fn history(&self) -> &HistoryRing {
        self.tracker.history()
    }

    /// The record of a prompt, in flight or finished.
    pub fn execution(&self, prompt_id: &str) -> Option<&ExecutionRecord> {
        let id = self.tracker.resolve(prompt_id);
        self.tracker
            .active(id)
            .or_else(|| self.tracker.history().get(id).map(|r| r.as_ref()))
    }

    /// Counters.
    pub fn stats(&self) -> SessionStats {
        let mut stats = self.stats;
        stats.emitted = self.outbox.stats;
        stats
    }

    /// When the last frame arrived.
    pub fn last_frame_at(&self) -> Option<Instant> {
        self.last_frame_at
    }

    /// Progress and preview keys currently held by the throttles.
    pub fn held_updates(&self) -> usize {
        self.outbox.held()
    }

    // ---- mutators ----

    /// Starts connecting (from idle, paused or closed).
    pub fn connect(&mut self, now: Instant) {
        let _ = now;
        if matches!(
            self.state,
            ConnectionState::Connected | ConnectionState::Connecting { .. }
        ) {
            return;
        }
        self.start_attempt();
    }

    /// Skips the backoff wait and tries now.
    pub fn retry_now(&mut self, now: Instant) {
        if matches!(
            self.state,
            ConnectionState::Reconnecting { .. } | ConnectionState::Polling { .. }
        ) {
            self.state = match &self.state {
                ConnectionState::Reconnecting { attempt, .. } => ConnectionState::Reconnecting {
                    attempt: *attempt,
                    next_attempt_at: now,
                },
                ConnectionState::Polling { attempt, .. } => ConnectionState::Polling {
                    attempt: *attempt,
                    next_attempt_at: now,
                },
                other => other.clone(),
            };
            self.start_attempt();
        }
    }

    /// The app goes to the background: close the socket and stop retrying.
    pub fn pause(&mut self, now: Instant) {
        let _ = now;
        if matches!(
            self.state,
            ConnectionState::Closed | ConnectionState::Paused
        ) {
            return;
        }
        if matches!(
            self.state,
            ConnectionState::Connected | ConnectionState::Connecting { .. }
        ) {
            self.commands.push_back(Command::Close {
                code: 1000,
                reason: "paused".into(),
            });
            self.tracker.mark_gap();
        }
        self.clear_connection_timers();
        self.offline_stop();
        self.set_state(ConnectionState::Paused);
    }

    /// The app is back: reconnect at once.
    pub fn resume(&mut self, now: Instant) {
        let _ = now;
        if self.state == ConnectionState::Paused {
            self.stats.consecutive_failures = 0;
            self.start_attempt();
        }
    }

    /// The network changed: check a live socket at once, or retry now.
    pub fn network_changed(&mut self, now: Instant) {
        match self.state {
            ConnectionState::Connected => {
                if self.ping_sent_at.is_none() {
                    self.send_ping(now);
                }
            }
            _ => self.retry_now(now),
        }
    }

    /// Closes for good.
    pub fn close(&mut self, now: Instant) {
        let _ = now;
        if self.state == ConnectionState::Closed {
            return;
        }
        if matches!(
            self.state,
            ConnectionState::Connected | ConnectionState::Connecting { .. }
        ) {
            self.commands.push_back(Command::Close {
                code: 1000,
                reason: "client closing".into(),
            });
        }
        self.clear_connection_timers();
        self.offline_stop();
        self.recheck_at = None;
        self.set_state(ConnectionState::Closed);
    }

    /// Reserves a prompt id this client is about to submit, before the
    /// `POST /prompt`, so no event can race the reply. `graph_nodes` is the
    /// node count of the submitted graph (for whole-prompt progress).
    pub fn track_prompt(&mut self, prompt_id: &str, graph_nodes: Option<usize>, now: Instant) {
        self.tracker.track(prompt_id, graph_nodes, now);
    }

    /// Asks the session to reconcile every in-flight prompt of ours now.
    pub fn reconcile(&mut self, now: Instant) {
        let _ = now;
        let ids = self
            .tracker
            .ours_in(&[Phase::Submitted, Phase::Queued, Phase::Running]);
        self.request_history(ids);
    }

    // ---- inputs ----

    /// The socket opened.
    pub fn handle_connected(&mut self, now: Instant) {
        if self.state == ConnectionState::Closed || self.state == ConnectionState::Paused {
            return;
        }
        if self.ever_connected {
            self.stats.reconnects += 1;
        }
        self.ever_connected = true;
        self.connected_at = Some(now);
        self.stable_at = Some(now + self.config.stable_after);
        self.next_ping_at = Some(now + self.config.ping_interval);
        self.ping_sent_at = None;
        self.last_frame_at = Some(now);
        self.offline_stop();
        self.deaf_suspect = false;
        self.commands
            .push_back(Command::SendText(feature_flags_message(
                &self.config.feature_flags,
            )));
        self.set_state(ConnectionState::Connected);
        // After a reconnect, and also on a first connect that follows a
        // submission (the prompt may have run while no socket was open).
        self.reconcile(now);
    }

    /// A connect attempt failed.
    pub fn handle_connect_failed(&mut self, error: ConnectionError, now: Instant) {
        if !matches!(self.state, ConnectionState::Connecting { .. }) {
            return;
        }
        self.last_error = Some(error);
        self.schedule_retry(now);
    }

    /// The open socket closed or failed.
    pub fn handle_disconnected(&mut self, error: ConnectionError, now: Instant) {
        if self.state != ConnectionState::Connected {
            return;
        }
        self.last_error = Some(error);
        self.drop_connection(now);
    }

    /// A pong arrived.
    pub fn handle_pong(&mut self, now: Instant) {
        // A pong proves the socket is alive, not that it still gets our
        // frames (the deaf-socket bug answers pings), so the watchdog's
        // clock is not touched.
        let _ = now;
        self.ping_sent_at = None;
    }

    /// A frame arrived. Bad frames become [`Event::BadFrame`].
    pub fn handle_frame(&mut self, frame: Frame, now: Instant) {
        if let Frame::Binary(bytes) = frame {
            return self.handle_binary(bytes, now);
        }
        self.note_frame(now);
        // UTF-8 is checked once here, for both the fast and the full path.
        let parsed = match std::str::from_utf8(frame.payload()) {
            Ok(text) => {
                if self.handle_hot_text(text, now) {
                    return;
                }
                crate::parse::parse_text_frame(text, &frame)
            }
            Err(_) => Err(crate::ParseError::InvalidUtf8),
        };
        self.handle_parsed(parsed, frame, now);
    }

    /// A binary frame: the same as [`Session::handle_frame`] with
    /// [`Frame::Binary`], for a caller that lends the bytes. A preview is
    /// read in place (its image copied once, into the session's own
    /// buffer); `data` is turned into the frame's bytes only when the frame
    /// is kept (an unknown type, a bad frame).
    pub fn handle_binary<T: AsRef<[u8]> + Into<Bytes>>(&mut self, data: T, now: Instant) {
        self.note_frame(now);
        if self.handle_hot_preview(data.as_ref(), now) {
            return;
        }
        let frame = Frame::Binary(data.into());
        let parsed = parse_frame(&frame);
        self.handle_parsed(parsed, frame, now);
    }

    /// A text frame whose UTF-8 the caller has already checked (as a
    /// WebSocket reader must): the same as [`Session::handle_frame`] with
    /// [`Frame::Text`], minus a second pass over the bytes on the hot path.
    /// `text` is turned into the frame's bytes only when the frame is kept
    /// (an unknown type, a bad frame).
    pub fn handle_text<T: AsRef<str> + Into<Bytes>>(&mut self, text: T, now: Instant) {
        self.note_frame(now);
        if self.handle_hot_text(text.as_ref(), now) {
            return;
        }
        let frame = Frame::Text(text.into());
        let parsed = parse_frame(&frame);
        self.handle_parsed(parsed, frame, now);
    }

    fn note_frame(&mut self, now: Instant) {
        self.stats.frames += 1;
        self.last_frame_at = Some(now);
        self.ping_sent_at = None;
        self.deaf_suspect = false;
    }

    fn handle_parsed(
        &mut self,
        parsed: Result<ServerMessage, crate::ParseError>,
        frame: Frame,
        now: Instant,
    ) {
        match parsed {
            Ok(message) => self.handle_message(message, now),
            Err(error) => {
                self.stats.bad_frames += 1;
                self.bad_frame_gap(&frame);
                self.outbox.push(Event::BadFrame { error, raw: frame });
            }
        }
    }

    /// The allocation-free path for type-1 and type-4 previews; false for
    /// any other binary frame.
    fn handle_hot_preview(&mut self, bytes: &[u8], now: Instant) -> bool {
        let Some(p) = self.hot.read_binary(bytes) else {
            return false;
        };
        self.tracker
            .on_preview(p.prompt_id, p.node, p.mime, p.image, &mut self.outbox, now);
        true
    }

    /// The allocation-free path for `progress_state` and `progress`, which
    /// are most of the traffic; false when the text is anything else.
    fn handle_hot_text(&mut self, text: &str, now: Instant) -> bool {
        let Some(hot) = self.hot.read_text(text) else {
            return false;
        };
        match hot {
            HotText::Progress(m) => {
                self.tracker.on_progress(
                    m.prompt_id,
                    m.node,
                    m.value,
                    m.max,
                    &mut self.outbox,
                    now,
                );
            }
            HotText::ProgressState(m) => {
                let nodes = m.nodes.iter().map(|(id, n)| {
                    (
                        *id,
                        n.value,
                        n.max,
                        NodeState::from_word(n.state),
                        n.display_node_id,
                    )
                });
                self.tracker
                    .on_progress_state(m.prompt_id, nodes, &mut self.outbox, now);
            }
            HotText::RepeatedSnapshot => self.stats.skipped_snapshots += 1,
            HotText::Executing(m) => {
                let followup = self.tracker.on_executing(
                    m.prompt_id,
                    m.node,
                    m.display_node,
                    &mut self.outbox,
                    now,
                );
                self.follow_up(followup);
            }
            HotText::Executed(m) => self.tracker.on_executed(
                m.prompt_id,
                m.node,
                m.display_node,
                m.output.map(NodeOutput::from_raw),
                &mut self.outbox,
                now,
            ),
        }
        true
    }

    /// A message parsed elsewhere (e.g. from a trace) arrived.
    pub fn handle_message(&mut self, message: ServerMessage, now: Instant) {
        if let ServerMessage::Status(status) = &message {
            if self.client_id.is_none() {
                if let Some(sid) = &status.sid {
                    self.client_id = Some(sid.clone());
                }
            }
        }
        let followup = self.tracker.on_message(message, &mut self.outbox, now);
        self.follow_up(followup);
    }

    fn follow_up(&mut self, followup: Followup) {
        if let Followup::Reconcile(prompt_id) = followup {
            self.history_requested.remove(&prompt_id);
            self.request_history(vec![prompt_id]);
        }
    }

    /// A frame larger than the driver's limit was refused.
    pub fn handle_oversize(&mut self, size: usize, limit: usize, now: Instant) {
        let _ = now;
        self.stats.bad_frames += 1;
        self.outbox.push(Event::BadFrame {
            error: crate::ParseError::FrameTooLarge { size, limit },
            raw: Frame::Binary(Bytes::new()),
        });
    }

    /// An HTTP answer (to a command, or to the user's own `POST /prompt`).
    pub fn handle_http(&mut self, reply: HttpReply, now: Instant) {
        self.handle_reply(reply, now);
        self.release_held(now);
    }

    fn handle_reply(&mut self, reply: HttpReply, now: Instant) {
        match reply {
            HttpReply::PromptAccepted {
                prompt_id,
                number,
                node_errors,
            } => {
                self.tracker
                    .accepted(&prompt_id, number, node_errors, &mut self.outbox, now);
                let connected = self.state == ConnectionState::Connected;
                if let Some(record) = self.tracker.record_mut(&prompt_id) {
                    // Its frames may already be lost: settle it from history.
                    record.had_gap |= !connected;
                    // The socket dropped between enqueue and this answer:
                    // the prompt may have run unheard, so ask at once.
                    if record.had_gap && connected {
                        self.request_history(vec![prompt_id]);
                    }
                }
            }
            HttpReply::PromptRejected { prompt_id } => self.tracker.rejected(&prompt_id),
            HttpReply::History { prompt_id, entry } => {
                self.history_requested.remove(&prompt_id);
                if let Some(record) = self.tracker.record_mut(&prompt_id) {
                    record.http_failures = 0;
                }
                match entry {
                    Some(entry) => {
                        let mine = entry.client_id.is_some() && entry.client_id == self.client_id;
                        if !self.tracker.claim_held(&prompt_id, mine) {
                            // Ours, but which submission is not yet clear:
                            // held until the answers say.
                            return;
                        }
                        let settled = self.tracker.settle_from_history(
                            &prompt_id,
                            entry,
                            &mut self.outbox,
                            now,
                        );
                        self.recheck.remove(&prompt_id);
                        if settled && self.deaf_suspect {
                            self.deaf_reconnect(now);
                        }
                    }
                    None => {
                        let in_flight = self
                            .tracker
                            .active(&prompt_id)
                            .is_some_and(|r| r.checkable());
                        if in_flight {
                            self.awaiting_queue.insert(prompt_id);
                            if !self.queue_requested {
                                self.queue_requested = true;
                                self.commands.push_back(Command::Http(HttpRequest::Queue));
                            }
                        }
                    }
                }
            }
            HttpReply::Queue(snapshot) => self.handle_queue(snapshot, now),
            HttpReply::Failed { request, error } => {
                match &request {
                    HttpRequest::History { prompt_id } => {
                        self.history_requested.remove(prompt_id);
                        if !self.check_failed(prompt_id, &error, now) {
                            self.recheck.insert(prompt_id.clone());
                        }
                    }
                    HttpRequest::Queue => {
                        self.queue_requested = false;
                        self.probing = false;
                        self.offline_failed(&error, now);
                        for prompt_id in std::mem::take(&mut self.awaiting_queue) {
                            if !self.check_failed(&prompt_id, &error, now) {
                                self.recheck.insert(prompt_id);
                            }
                        }
                    }
                }
                if !self.recheck.is_empty() && self.recheck_at.is_none() {
                    self.recheck_at = Some(now + self.config.poll_interval);
                }
                self.outbox.push(Event::HttpFailed { request, error });
            }
        }
        // A prompt accepted or confirmed while the socket is down is
        // followed over HTTP from now on.
        self.offline_arm(now, self.config.disconnected_poll);
    }

    fn handle_queue(&mut self, snapshot: QueueSnapshot, now: Instant) {
        self.queue_requested = false;
        if self.state != ConnectionState::Connected {
            self.offline_answered(&snapshot, now);
        }
        self.probe_answered(&snapshot);
        let waiting = std::mem::take(&mut self.awaiting_queue);
        for prompt_id in waiting {
            if let Some(record) = self.tracker.record_mut(&prompt_id) {
                record.http_failures = 0;
            }
            if self.confirm_in_queue(&prompt_id, &snapshot, now) {
                continue;
            }
            let running = snapshot.is_running(&prompt_id);
            let pending = snapshot.is_pending(&prompt_id);
            let Some(record) = self.tracker.record_mut(&prompt_id) else {
                continue;
            };
            if running || pending {
                record.absent_checks = 0;
                if running {
                    record.seen_running(now);
                }
                continue;
            }
            record.absent_checks = record.absent_checks.saturating_add(1);
            if record.absent_checks >= 2 {
                self.recheck.remove(&prompt_id);
                self.tracker.lose(
                    &prompt_id,
                    "the server has it in neither its queue nor its history \
                     (it restarted, or the prompt was deleted)"
                        .into(),
                    &mut self.outbox,
                    now,
                );
            } else {
                self.recheck.insert(prompt_id);
                self.recheck_at = Some(now + self.config.lost_recheck);
            }
        }
    }

    /// Wakes the session at (or after) the deadline from `poll_timeout`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.outbox.next_deadline().is_some_and(|at| at <= now) {
            self.outbox.flush_due(now);
        }
        if let Some(at) = self.state.next_attempt_at() {
            if at <= now {
                self.start_attempt();
            }
        }
        if self.state == ConnectionState::Connected {
            if self.stable_at.is_some_and(|at| at <= now) {
                self.stable_at = None;
                self.stats.consecutive_failures = 0;
            }
            if let Some(sent) = self.ping_sent_at {
                if now.saturating_duration_since(sent) >= self.config.pong_timeout {
                    self.last_error = Some(ConnectionError::HeartbeatTimeout {
                        waited: now.saturating_duration_since(sent),
                    });
                    self.replace_socket(now);
                    return;
                }
            }
            if self.ping_sent_at.is_none() && self.next_ping_at.is_some_and(|at| at <= now) {
                self.send_ping(now);
            }
            if let Some(at) = self.watchdog_at() {
                if at <= now {
                    self.watchdog_fired(now);
                }
            }
            if self.probe_at().is_some_and(|at| at <= now) {
                self.probe(now);
            }
        }
        if self.attach_poll_at.is_some_and(|at| at <= now) {
            self.poll_attached(now);
        }
        if self.offline.due(now) {
            self.offline_poll(now);
        }
        if self.recheck_at.is_some_and(|at| at <= now) {
            self.recheck_at = None;
            let ids: Vec<String> = std::mem::take(&mut self.recheck).into_iter().collect();
            self.request_history(ids);
        }
    }

    // ---- outputs ----

    /// The next event, in order.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.outbox.queue.pop_front()
    }

    /// The next command for the driver.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.commands.pop_front()
    }

    /// The earliest deadline at which `handle_timeout` must be called.
    pub fn poll_timeout(&self) -> Option<Timeout> {
        let mut best: Option<Timeout> = None;
        let mut offer = |at: Option<Instant>, reason: TimerReason| {
            if let Some(at) = at {
                if best.is_none_or(|b| at < b.at) {
                    best = Some(Timeout { at, reason });
                }
            }
        };
        offer(self.outbox.next_deadline(), TimerReason::Flush);
        offer(self.state.next_attempt_at(), TimerReason::Reconnect);
        if self.state == ConnectionState::Connected {
            offer(self.stable_at, TimerReason::BackoffReset);
            match self.ping_sent_at {
                Some(sent) => offer(
                    Some(sent + self.config.pong_timeout),
                    TimerReason::HeartbeatTimeout,
                ),
                None => offer(self.next_ping_at, TimerReason::Heartbeat),
            }
            offer(self.watchdog_at(), TimerReason::Watchdog);
            offer(self.probe_at(), TimerReason::Probe);
        }
        offer(self.attach_poll_at, TimerReason::AttachPoll);
        offer(self.offline.next_at(), TimerReason::Poll);
        offer(self.recheck_at, TimerReason::Reconcile);
        best
    }

    // ---- internals ----

    fn set_state(&mut self, state: ConnectionState) {
        if self.state != state {
            self.state = state;
            self.outbox.push(Event::Connection(self.status()));
        }
    }

    fn start_attempt(&mut self) {
        let attempt = self.stats.consecutive_failures + 1;
        self.commands.push_back(Command::Connect {
            client_id: self.client_id.clone(),
        });
        self.set_state(ConnectionState::Connecting { attempt });
    }

    fn schedule_retry(&mut self, now: Instant) {
        self.stats.consecutive_failures = self.stats.consecutive_failures.saturating_add(1);
        let failures = self.stats.consecutive_failures;
        let delay = self.config.backoff.delay(failures, &mut self.rng);
        let next_attempt_at = now + delay;
        let attempt = failures + 1;
        // A refused upgrade will be refused again: poll at once.
        let blocked = self
            .last_error
            .as_ref()
            .is_some_and(ConnectionError::websockets_blocked);
        if failures >= self.config.polling_after_failures || blocked {
            self.set_state(ConnectionState::Polling {
                attempt,
                next_attempt_at,
            });
        } else {
            self.set_state(ConnectionState::Reconnecting {
                attempt,
                next_attempt_at,
            });
        }
        // The first look over HTTP comes at once: a prompt may have ended
        // in the moments before the socket went.
        self.offline_arm(now, Duration::ZERO);
    }

    fn clear_connection_timers(&mut self) {
        self.connected_at = None;
        self.stable_at = None;
        self.next_ping_at = None;
        self.ping_sent_at = None;
    }

    fn drop_connection(&mut self, now: Instant) {
        self.clear_connection_timers();
        self.tracker.mark_gap();
        self.schedule_retry(now);
    }

    /// Closes a socket the session judged dead and reconnects.
    fn replace_socket(&mut self, now: Instant) {
        self.commands.push_back(Command::Close {
            code: 1001,
            reason: self
                .last_error
                .as_ref()
                .map_or_else(String::new, ToString::to_string),
        });
        self.drop_connection(now);
    }

    fn send_ping(&mut self, now: Instant) {
        self.ping_counter += 1;
        self.ping_sent_at = Some(now);
        self.next_ping_at = Some(now + self.config.ping_interval);
        self.commands.push_back(Command::Ping(Bytes::from(
            self.ping_counter.to_be_bytes().to_vec(),
        )));
    }

    /// Armed while a prompt of ours is queued or running: silence for
    /// `deaf_timeout` since the last frame (or the last check) is checked
    /// over HTTP, again every `deaf_timeout` while it lasts.
    fn watchdog_at(&self) -> Option<Instant> {
        let timeout = self.config.deaf_timeout?;
        let watched = self
            .tracker
            .active_records()
            .any(|r| r.ours && matches!(r.phase, Phase::Queued | Phase::Running));
        if !watched {
            return None;
        }
        let last_frame = self.last_frame_at?;
        let since = self.last_check_at.map_or(last_frame, |c| c.max(last_frame));
        Some(since + timeout)
    }

    fn watchdog_fired(&mut self, now: Instant) {
        self.last_check_at = Some(now);
        let running = self
            .tracker
            .active_records()
            .any(|r| r.ours && r.phase == Phase::Running);
        self.reconcile(now);
        if running {
            // A socket that misses our running prompt's frames is deaf:
            // replace it. Reconciliation fills what it missed.
            self.deaf_reconnect(now);
        } else {
            // Waiting in the queue is silent too; only if history shows the
            // prompt finished unheard is the socket deaf.
            self.deaf_suspect = true;
        }
    }

    fn deaf_reconnect(&mut self, now: Instant) {
        if self.state != ConnectionState::Connected {
            return;
        }
        let silent_for = self
            .last_frame_at
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        self.last_error = Some(ConnectionError::Deaf { silent_for });
        self.deaf_suspect = false;
        self.replace_socket(now);
        // A deliberate replacement is not a failure: try again at once.
        self.stats.consecutive_failures = 0;
        self.start_attempt();
    }

    fn request_history(&mut self, ids: Vec<String>) {
        for prompt_id in ids {
            let in_flight = self
                .tracker
                .active(&prompt_id)
                .is_some_and(|r| r.checkable());
            if !in_flight || !self.history_requested.insert(prompt_id.clone()) {
                continue;
            }
            self.commands
                .push_back(Command::Http(HttpRequest::History { prompt_id }));
        }
    }
}
