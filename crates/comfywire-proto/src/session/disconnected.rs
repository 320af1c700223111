//! Disconnected is not blind: while the socket is not open, prompts of
//! ours in flight are followed over HTTP on a clock of their own, not on
//! the reconnect backoff (whose steps grow to 30 s).
//!
//! One poll is one `GET /queue`. A prompt of ours gone from the queue has
//! ended (ComfyUI writes its history as it leaves the queue), so it is
//! settled from `/history/{id}` by the silence probe's rule
//! (`Session::probe_answered`): missed outputs first, then the one
//! terminal event; one in neither place ends as `Lost` by the usual two
//! checks. The interval starts at [`SessionConfig::disconnected_poll`]
//! and, while the queue stays the same, grows to a tenth of the time it
//! has been unchanged, up to [`SessionConfig::disconnected_poll_max`]: a
//! prompt that ran a few seconds unheard is settled within about a
//! second, a long one costs a few requests a minute. A change in the
//! queue, a new submission or a lost socket starts again from the floor.
//! Failed polls double the interval (up to the same cap) and count as
//! failed checks of the prompts they were for, so an unreachable server
//! ends them as [`crate::Outcome::Lost`] with a reason instead of
//! waiting for ever. In state [`ConnectionState::Polling`] with nothing
//! of ours in flight, the queue is still read every
//! [`SessionConfig::poll_interval`], for its watchers.
//!
//! [`SessionConfig::disconnected_poll`]: super::SessionConfig::disconnected_poll
//! [`SessionConfig::disconnected_poll_max`]: super::SessionConfig::disconnected_poll_max
//! [`SessionConfig::poll_interval`]: super::SessionConfig::poll_interval

use std::hash::{Hash, Hasher};
use std::time::Duration;

use web_time::Instant;

use crate::event::Event;
use crate::hash::FastHasher;
use crate::reconcile::{HttpRequest, QueueSnapshot};
use crate::record::Phase;
use crate::state::ConnectionState;

use super::{Command, Session};

/// The interval grows to this fraction of the time nothing changed.
const QUIET_DIVISOR: u32 = 10;

/// Failed polls in a row past which the interval stops doubling (it is at
/// the cap long before).
const MAX_FAILURE_DOUBLINGS: u32 = 16;

/// The clock and memory of the disconnected poll.
#[derive(Debug, Default)]
pub(super) struct OfflinePoll {
    /// When the next poll is due; `None` while nothing is to be polled.
    next_at: Option<Instant>,
    /// When the queue last changed as the polls saw it, or the poll began.
    changed_at: Option<Instant>,
    /// A digest of the last queue a poll read.
    seen: Option<u64>,
    /// Polls in a row whose request failed.
    failures: u32,
    /// A poll's `GET /queue` has not been answered yet.
    outstanding: bool,
}

impl OfflinePoll {
    /// When the next poll is due.
    pub(super) fn next_at(&self) -> Option<Instant> {
        self.next_at
    }

    /// True when a poll is due at `now`.
    pub(super) fn due(&self, now: Instant) -> bool {
        self.next_at.is_some_and(|at| at <= now)
    }

    /// Nothing more to poll.
    pub(super) fn stop(&mut self) {
        self.next_at = None;
        self.outstanding = false;
    }
}

/// The queue's contents, order included, as one number: equal digests
/// mean nothing moved.
fn digest(snapshot: &QueueSnapshot) -> u64 {
    let mut hasher = FastHasher::default();
    for item in &snapshot.running {
        item.prompt_id.hash(&mut hasher);
    }
    hasher.write_u8(0xff);
    for item in &snapshot.pending {
        item.prompt_id.hash(&mut hasher);
    }
    hasher.finish()
}

impl Session {
    /// Prompts of ours the disconnected poll follows (queued or running;
    /// attached ones are polled on their own clock), with the latest time
    /// one of them was submitted.
    fn offline_prompts(&self) -> (Vec<String>, Option<Instant>) {
        let mut newest: Option<Instant> = None;
        let ids = self
            .tracker
            .active_records()
            .filter(|r| r.ours && !r.attached && matches!(r.phase, Phase::Queued | Phase::Running))
            .inspect(|r| newest = newest.max(r.submitted_at))
            .map(|r| r.prompt_id.clone())
            .collect();
        (ids, newest)
    }

    /// True while the socket is down and something is to be polled.
    fn offline_wanted(&self) -> bool {
        match self.state {
            ConnectionState::Polling { .. } => true,
            ConnectionState::Connecting { .. } => {
                self.polling_mode() || !self.offline_prompts().0.is_empty()
            }
            ConnectionState::Reconnecting { .. } => !self.offline_prompts().0.is_empty(),
            _ => false,
        }
    }

    /// True in state polling, and while the socket is tried again from it
    /// (each retry passes through `Connecting`; the polls go on).
    fn polling_mode(&self) -> bool {
        match self.state {
            ConnectionState::Polling { .. } => true,
            ConnectionState::Connecting { .. } => {
                self.stats.consecutive_failures >= self.config.polling_after_failures
                    || self
                        .last_error
                        .as_ref()
                        .is_some_and(crate::ConnectionError::websockets_blocked)
            }
            _ => false,
        }
    }

    /// Other clients' prompts followed in polling mode.
    fn others_followed(&self) -> bool {
        self.polling_mode()
            && self
                .tracker
                .active_records()
                .any(|r| !r.ours && matches!(r.phase, Phase::Queued | Phase::Running))
    }

    /// Starts the poll `delay` from now, unless it runs already or there
    /// is nothing to poll.
    pub(super) fn offline_arm(&mut self, now: Instant, delay: Duration) {
        if !self.offline_wanted() {
            return;
        }
        if let Some(at) = self.offline.next_at {
            // A prompt submitted since the last change is a change: its
            // start is worth hearing of soon, whatever the interval was.
            let newest = self.offline_prompts().1;
            if newest > self.offline.changed_at {
                self.offline.changed_at = newest;
                self.offline.next_at = Some(at.min(now + self.config.disconnected_poll));
            }
            return;
        }
        self.offline.next_at = Some(now + delay);
        self.offline.changed_at = Some(now);
        self.offline.seen = None;
        self.offline.failures = 0;
    }

    /// The socket is open again, or the session paused or closed: no more
    /// polls, and the answer of one still out is no silence probe's (a
    /// prompt it finds gone is settled by the reconnect's reconciliation;
    /// taken as a probe's, it would call the new socket deaf).
    pub(super) fn offline_stop(&mut self) {
        if self.offline.outstanding {
            self.probing = false;
        }
        self.offline.stop();
    }

    /// The interval after a poll at `now`.
    fn offline_interval(&self, now: Instant) -> Duration {
        let floor = self.config.disconnected_poll;
        let cap = self.config.disconnected_poll_max.max(floor);
        let (ours, newest) = self.offline_prompts();
        let base = if ours.is_empty() && !self.others_followed() {
            self.config.poll_interval
        } else {
            let since = self.offline.changed_at.max(newest).unwrap_or(now);
            (now.saturating_duration_since(since) / QUIET_DIVISOR).clamp(floor, cap)
        };
        let doublings = self.offline.failures.min(MAX_FAILURE_DOUBLINGS);
        base.saturating_mul(1 << doublings).min(cap.max(base))
    }

    /// A poll is due: ask the queue, unless a request for it is out
    /// already (its answer serves), and schedule the next.
    pub(super) fn offline_poll(&mut self, now: Instant) {
        if !self.offline_wanted() {
            self.offline.stop();
            return;
        }
        // The answer settles every prompt of ours gone from the queue.
        self.probing = true;
        self.offline.outstanding = true;
        if !self.queue_requested {
            self.queue_requested = true;
            self.commands.push_back(Command::Http(HttpRequest::Queue));
        }
        self.offline.next_at = Some(now + self.offline_interval(now));
    }

    /// A queue answer while the socket is down: watchers hear of a change
    /// (the socket's `status` messages are missing), and a change brings
    /// the next poll in to the floor interval.
    pub(super) fn offline_answered(&mut self, snapshot: &QueueSnapshot, now: Instant) {
        let polled = std::mem::take(&mut self.offline.outstanding);
        if polled {
            self.offline.failures = 0;
        }
        for id in self.offline_prompts().0 {
            let Some(record) = self.tracker.record_mut(&id) else {
                continue;
            };
            // A check of it succeeded when the queue lists it; one gone
            // from the queue is checked by its history, whose failures
            // keep counting.
            let listed = snapshot.is_running(&id) || snapshot.is_pending(&id);
            if polled && listed {
                record.http_failures = 0;
            }
            // Its `execution_start` went to no socket: the queue says it
            // runs, and waits and front ends hear so (a queue deadline
            // must not expire on a prompt that runs unheard).
            if snapshot.is_running(&id) && record.phase < Phase::Running {
                record.seen_running(now);
                self.outbox.state(
                    &id,
                    Event::ExecutionStarted {
                        prompt_id: record.shared_id.clone(),
                    },
                    now,
                );
            }
        }
        if self.polling_mode() {
            self.follow_others(snapshot, now);
        }
        let digest = digest(snapshot);
        if self.offline.seen == Some(digest) {
            return;
        }
        if self.offline.seen.is_some() {
            self.offline.changed_at = Some(now);
            let soon = now + self.config.disconnected_poll;
            self.offline.next_at = self.offline.next_at.map(|at| at.min(soon));
        }
        self.offline.seen = Some(digest);
        self.outbox.push(Event::Status {
            queue_remaining: Some(snapshot.len() as u64),
            sid: None,
        });
    }

    /// In polling state the queue stands in for the socket for other
    /// clients' prompts too, so a watcher sees them queued, started and
    /// finished: each new one is tracked (as the socket's frames would
    /// have), one seen running has started, and one gone from the queue
    /// is settled from its history like ours. Prompts of this client id
    /// that no record claims are left alone: one may be an uncertain
    /// submission of ours, which its confirmation adopts.
    fn follow_others(&mut self, snapshot: &QueueSnapshot, now: Instant) {
        let me = self.client_id.clone();
        for item in snapshot.running.iter().chain(&snapshot.pending) {
            let mine = me.is_some() && item.client_id == me;
            if mine || self.tracker.knows(&item.prompt_id) {
                continue;
            }
            let number = (item.number >= 0.0).then_some(item.number as u64);
            let record = self.tracker.get_or_create(&item.prompt_id, false);
            // Its frames went to no socket of ours.
            record.had_gap = true;
            record.number = number;
            let prompt_id = record.shared_id.clone();
            self.outbox.state(
                &item.prompt_id,
                Event::PromptQueued { prompt_id, number },
                now,
            );
        }
        let mut gone = Vec::new();
        let others: Vec<String> = self
            .tracker
            .active_records()
            .filter(|r| !r.ours && matches!(r.phase, Phase::Queued | Phase::Running))
            .map(|r| r.prompt_id.clone())
            .collect();
        for id in others {
            let running = snapshot.is_running(&id);
            let Some(record) = self.tracker.record_mut(&id) else {
                continue;
            };
            if running && record.phase < Phase::Running {
                record.seen_running(now);
                let started = Event::ExecutionStarted {
                    prompt_id: record.shared_id.clone(),
                };
                self.outbox.state(&id, started, now);
            } else if !running && !snapshot.is_pending(&id) {
                record.had_gap = true;
                gone.push(id);
            }
        }
        self.request_history(gone);
    }

    /// A poll's `GET /queue` failed: one failed check of each prompt it was
    /// for (those waiting on the queue for another reason are counted by
    /// that reason), and a longer wait before the next.
    pub(super) fn offline_failed(&mut self, error: &str, now: Instant) {
        if !std::mem::take(&mut self.offline.outstanding) {
            return;
        }
        self.offline.failures = self.offline.failures.saturating_add(1);
        let later = now + self.offline_interval(now);
        self.offline.next_at = self.offline.next_at.map(|at| at.max(later));
        for id in self.offline_prompts().0 {
            if !self.awaiting_queue.contains(&id) {
                self.check_failed(&id, error, now);
            }
        }
    }
}
