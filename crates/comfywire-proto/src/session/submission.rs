//! Every submission accounted for: a `POST /prompt` whose answer is
//! unknown is confirmed with the server (found: tracked to its end; absent
//! on every check for a while: it never got there), an id the server chose
//! is adopted, a prompt this client did not submit can be attached, a
//! silent socket is probed cheaply over HTTP, a frame that fails to parse
//! makes history decide the outcome, and checks that keep failing end in an
//! outcome with a reason instead of going on forever.

use web_time::Instant;

use crate::frame::Frame;
use crate::reconcile::{HttpRequest, QueueSnapshot};
use crate::record::{Outcome, Phase};

use super::{Command, Session};

impl Session {
    /// The answer to the `POST /prompt` of a tracked prompt is unknown (the
    /// request timed out, the connection broke, a gateway answered 5xx, the
    /// body was cut) or will never be read (the submit was cancelled). The
    /// session asks the server: found in its queue or history, the prompt
    /// is tracked to its one terminal event; absent on every check for
    /// [`super::SessionConfig::confirm_window`], it is forgotten (it never
    /// got there). Either way it is settled within that window plus one
    /// check.
    pub fn prompt_uncertain(&mut self, prompt_id: &str, now: Instant) {
        let id = self.tracker.resolve(prompt_id).to_owned();
        let Some(record) = self.tracker.record_mut(&id) else {
            return;
        };
        if record.phase != Phase::Submitted {
            return; // already confirmed by its frames
        }
        record.confirm_since.get_or_insert(now);
        record.absent_checks = 0;
        self.history_requested.remove(&id);
        self.request_history(vec![id]);
    }

    /// The server answered a submission under `chosen` instead of the id
    /// this client sent (an older server, a gateway): the record moves to
    /// `chosen`, and `requested` resolves to it from now on.
    pub fn adopt_prompt_id(&mut self, requested: &str, chosen: &str, now: Instant) {
        self.tracker.adopt(requested, chosen);
        self.release_held(now);
    }

    /// Ends the foreign prompts whose end was held and is now decided
    /// (see `Tracker::hold`); one that turned out ours after missing frames
    /// is settled from history instead.
    pub(super) fn release_held(&mut self, now: Instant) {
        let settle = self.tracker.release_held(&mut self.outbox, now);
        if !settle.is_empty() {
            self.request_history(settle);
        }
    }

    /// Tracks a prompt this client did not submit (another process, an
    /// earlier run of this one) until its one terminal event: its history
    /// is read now, and while it is queued or running it is checked every
    /// [`super::SessionConfig::poll_interval`], because its frames may go to
    /// another client's socket. A prompt the server does not know ends as
    /// `Lost`. Nothing happens for a prompt already tracked.
    pub fn attach_prompt(&mut self, prompt_id: &str, now: Instant) {
        if self.tracker.attach(prompt_id, now) {
            self.request_history(vec![prompt_id.to_owned()]);
            self.attach_poll_at = Some(now + self.config.poll_interval);
        }
    }

    /// The queue answered for a prompt whose submission is being
    /// confirmed: `true` when the answer settled it one way or the other.
    pub(super) fn confirm_in_queue(
        &mut self,
        prompt_id: &str,
        snapshot: &QueueSnapshot,
        now: Instant,
    ) -> bool {
        let Some(record) = self.tracker.record_mut(prompt_id) else {
            return true;
        };
        let Some(since) = record.confirm_since else {
            return false;
        };
        if snapshot.is_running(prompt_id) || snapshot.is_pending(prompt_id) {
            self.found_in_queue(prompt_id, snapshot, now);
            return true;
        }
        // Not there under our id: a server (or gateway) that assigns its own
        // ids may have queued it under one we never heard, the answer that
        // named it being lost. With one uncertain submission, a queued
        // prompt of our client id that nobody tracks is it.
        if let Some(chosen) = self.unclaimed_in_queue(snapshot) {
            self.tracker.adopt(prompt_id, &chosen);
            self.found_in_queue(&chosen, snapshot, now);
            return true;
        }
        let Some(record) = self.tracker.record_mut(prompt_id) else {
            return true;
        };
        record.absent_checks = record.absent_checks.saturating_add(1);
        let waited = now.saturating_duration_since(since);
        if record.absent_checks >= 2 && waited >= self.config.confirm_window {
            // Neither queued nor in history on every check, long after the
            // request ended: the server never enqueued it.
            self.recheck.remove(prompt_id);
            self.tracker.rejected(prompt_id);
        } else {
            self.recheck.insert(prompt_id.to_owned());
            self.recheck_at = Some(now + self.config.lost_recheck);
        }
        true
    }

    /// An uncertain submission found in the server's queue: accepted, with
    /// the queue's number, and running if the queue says so.
    fn found_in_queue(&mut self, prompt_id: &str, snapshot: &QueueSnapshot, now: Instant) {
        let number = snapshot
            .running
            .iter()
            .chain(&snapshot.pending)
            .find(|i| i.prompt_id == prompt_id)
            .map(|i| i.number as u64);
        self.tracker.accepted(
            prompt_id,
            number,
            serde_json::Value::Null,
            &mut self.outbox,
            now,
        );
        if snapshot.is_running(prompt_id) {
            if let Some(record) = self.tracker.record_mut(prompt_id) {
                record.seen_running(now);
            }
        }
    }

    /// The one queued or running prompt of this client id that no record
    /// of ours tracks (its frames may have made it a foreign record), when exactly one submission is uncertain (else `None`: two
    /// unknown answers cannot be told apart).
    fn unclaimed_in_queue(&self, snapshot: &QueueSnapshot) -> Option<String> {
        let me = self.client_id.as_deref()?;
        let uncertain = self
            .tracker
            .active_records()
            .filter(|r| r.phase == Phase::Submitted && r.confirm_since.is_some())
            .count();
        if uncertain != 1 {
            return None;
        }
        let mut unclaimed = snapshot
            .running
            .iter()
            .chain(&snapshot.pending)
            .filter(|i| i.client_id.as_deref() == Some(me) && self.tracker.unclaimed(&i.prompt_id));
        let first = unclaimed.next()?;
        unclaimed.next().is_none().then(|| first.prompt_id.clone())
    }

    /// A frame that failed to parse may have been the end of a prompt of
    /// ours: its outcome is then taken from history, never guessed from
    /// the `executing {node: null}` that follows. The prompts the frame
    /// names, or, when it names none of ours, every running one of ours.
    pub(super) fn bad_frame_gap(&mut self, raw: &Frame) {
        let text = match raw {
            Frame::Text(bytes) => bytes.as_ref(),
            // A binary frame carries no lifecycle message.
            Frame::Binary(_) => return,
        };
        let ours: Vec<String> = self
            .tracker
            .active_records()
            .filter(|r| r.ours && r.checkable())
            .map(|r| r.prompt_id.clone())
            .collect();
        let named: Vec<&String> = ours
            .iter()
            .filter(|id| memchr::memmem::find(text, id.as_bytes()).is_some())
            .collect();
        let marked: Vec<String> = if named.is_empty() {
            ours.iter()
                .filter(|id| {
                    self.tracker
                        .active(id)
                        .is_some_and(|r| r.phase == Phase::Running)
                })
                .cloned()
                .collect()
        } else {
            named.into_iter().cloned().collect()
        };
        for id in marked {
            if let Some(record) = self.tracker.record_mut(&id) {
                record.had_gap = true;
            }
        }
    }

    /// When a silent socket is next checked over HTTP: while a prompt of
    /// ours is queued or running and no frame has come for
    /// [`super::SessionConfig::silence_probe`].
    pub(super) fn probe_at(&self) -> Option<Instant> {
        let every = self.config.silence_probe?;
        // Attached prompts are polled on their own clock.
        let waiting = self
            .tracker
            .active_records()
            .any(|r| r.ours && !r.attached && matches!(r.phase, Phase::Queued | Phase::Running));
        if !waiting {
            return None;
        }
        let last = self.last_frame_at?;
        Some(self.last_probe_at.map_or(last, |p| p.max(last)) + every)
    }

    /// Asks the queue whether our prompts are still there: one that is not
    /// has ended unheard, so it is settled from history, and a socket that
    /// missed its end is replaced. A prompt that is merely silent (a long
    /// node, a model loading) is still in the queue and costs nothing more.
    pub(super) fn probe(&mut self, now: Instant) {
        self.last_probe_at = Some(now);
        self.probing = true;
        if !self.queue_requested {
            self.queue_requested = true;
            self.commands.push_back(Command::Http(HttpRequest::Queue));
        }
    }

    /// The answer to a silence probe.
    pub(super) fn probe_answered(&mut self, snapshot: &QueueSnapshot) {
        if !std::mem::take(&mut self.probing) {
            return;
        }
        let gone: Vec<String> = self
            .tracker
            .active_records()
            .filter(|r| r.ours && matches!(r.phase, Phase::Queued | Phase::Running))
            .filter(|r| !snapshot.is_running(&r.prompt_id) && !snapshot.is_pending(&r.prompt_id))
            .map(|r| r.prompt_id.clone())
            .collect();
        if gone.is_empty() {
            return;
        }
        for id in &gone {
            if let Some(record) = self.tracker.record_mut(id) {
                record.had_gap = true;
            }
        }
        self.deaf_suspect = true;
        self.request_history(gone);
    }

    /// Attached prompts in flight are checked again.
    pub(super) fn poll_attached(&mut self, now: Instant) {
        let ids: Vec<String> = self
            .tracker
            .active_records()
            .filter(|r| r.attached && r.checkable())
            .map(|r| r.prompt_id.clone())
            .collect();
        self.attach_poll_at = (!ids.is_empty()).then(|| now + self.config.poll_interval);
        self.request_history(ids);
    }

    /// A check of a prompt failed over HTTP. Checks are retried, but not
    /// for ever: after [`super::SessionConfig::max_check_failures`] in a
    /// row, the prompt ends with the outcome its socket already reported,
    /// if any (a success only when no frame was missed, so its outputs are
    /// whole), else as `Lost` with the error as the reason.
    pub(super) fn check_failed(&mut self, prompt_id: &str, error: &str, now: Instant) -> bool {
        let Some(record) = self.tracker.record_mut(prompt_id) else {
            return true;
        };
        record.http_failures = record.http_failures.saturating_add(1);
        if record.http_failures < self.config.max_check_failures {
            return false;
        }
        let checks = self.config.max_check_failures;
        // A success heard after a gap may have missed `executed` frames:
        // without history, its outputs cannot be vouched for, and a success
        // with outputs missing would be a wrong answer, not a lost one.
        let unverified = record.had_gap
            && record
                .pending_outcome
                .as_ref()
                .is_some_and(|o| *o == Outcome::Succeeded);
        let reason = if unverified {
            record.pending_outcome = None;
            format!(
                "it succeeded, but its outputs could not be read after frames were missed \
                 ({checks} failed checks of its history; last: {error})"
            )
        } else {
            format!(
                "the server could not be asked about it ({checks} failed checks; last: {error})"
            )
        };
        self.recheck.remove(prompt_id);
        self.awaiting_queue.remove(prompt_id);
        self.tracker.lose(prompt_id, reason, &mut self.outbox, now);
        true
    }
}
