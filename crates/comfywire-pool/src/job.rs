//! Following one pool submission: where it goes (least work, node
//! classes), how it moves when its server is lost, and its one outcome.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use comfywire_client::proto::Phase;
use comfywire_client::{Error, ExecutionRecord, SubmitOptions};
use serde_json::Value;

use crate::PoolError;
use crate::pool::{Inner, Job, KEPT_OUTCOMES, Move, PoolEvent, PoolOutcome};
use crate::server::Server;

/// The node classes a workflow (API format) uses.
fn classes_of(workflow: &Value) -> BTreeSet<String> {
    workflow
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, node)| node.get("class_type")?.as_str().map(str::to_owned))
        .collect()
}

impl Inner {
    pub(crate) fn remember(&self, prompt_id: &str, job: Arc<Job>) {
        let mut jobs = self.jobs.lock();
        if jobs.len() >= KEPT_OUTCOMES {
            // Forget finished ones, oldest ids first does not matter: a
            // finished job's outcome was delivered to its waiters.
            jobs.retain(|_, j| j.outcome.borrow().is_none());
        }
        jobs.insert(prompt_id.to_owned(), job);
    }

    /// Submits `workflow` under `prompt_id` to the best server not in
    /// `exclude`, trying the next best when one refuses for a reason that
    /// is the server's (unreachable); returns its index.
    pub(crate) async fn dispatch(
        &self,
        workflow: &Value,
        prompt_id: &str,
        exclude: &[usize],
    ) -> Result<usize, PoolError> {
        let needed = classes_of(workflow);
        let mut candidates = Vec::new();
        let mut closest: Option<(usize, Vec<String>)> = None;
        for (i, server) in self.servers.iter().enumerate() {
            if exclude.contains(&i) || !server.healthy() {
                continue;
            }
            let Some(classes) = server.classes().await else {
                continue;
            };
            let missing: Vec<String> = needed.difference(&classes).cloned().collect();
            if missing.is_empty() {
                candidates.push(i);
            } else if closest
                .as_ref()
                .is_none_or(|(_, m)| missing.len() < m.len())
            {
                closest = Some((i, missing));
            }
        }
        if candidates.is_empty() {
            return Err(match closest {
                Some((i, missing)) => PoolError::MissingNodeClasses {
                    missing,
                    server: self.servers[i].label.clone(),
                },
                None => PoolError::NoServer(
                    "every server is unreachable (or cannot list its node classes)".into(),
                ),
            });
        }
        // Least work first; equal work in turn, so equal servers share.
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        let n = self.servers.len();
        candidates.sort_by(|&a, &b| {
            let (la, lb) = (self.servers[a].load(), self.servers[b].load());
            la.total_cmp(&lb)
                .then_with(|| ((a + n - turn % n) % n).cmp(&((b + n - turn % n) % n)))
        });
        let mut last = None;
        for i in candidates {
            let server = &self.servers[i];
            server.in_flight.fetch_add(1, Ordering::Relaxed);
            let options = SubmitOptions {
                prompt_id: Some(prompt_id.to_owned()),
                ..SubmitOptions::default()
            };
            match server.client.submit_with(workflow, options).await {
                Ok(_) => return Ok(i),
                Err(error) => {
                    server.in_flight.fetch_sub(1, Ordering::Relaxed);
                    // The workflow's own fault goes back to the caller; a
                    // server's (unreachable, broken) is tried elsewhere.
                    if matches!(error, Error::Validation(_) | Error::Config(_)) {
                        return Err(PoolError::Client {
                            server: server.label.clone(),
                            error,
                        });
                    }
                    tracing::warn!(target: "comfywire::pool", server = %server.label, %error, "submission failed; trying the next server");
                    last = Some(PoolError::Client {
                        server: server.label.clone(),
                        error,
                    });
                }
            }
        }
        Err(last.unwrap_or_else(|| PoolError::NoServer("no server took it".into())))
    }

    /// Follows one submission to its one outcome, moving it when its
    /// server is lost.
    pub(crate) async fn follow(self: Arc<Inner>, prompt_id: String, job: Arc<Job>) {
        loop {
            let index = job.server.load(Ordering::Acquire);
            let server = self.servers[index].clone();
            let why = match self.watch_on(&server, &prompt_id).await {
                Watched::Ended(record) => {
                    let never_started = record.started_at.is_none();
                    match &record.outcome {
                        Some(comfywire_client::Outcome::Lost { reason })
                            if never_started || self.config.resubmit_running =>
                        {
                            format!("{} no longer had it ({reason})", server.label)
                        }
                        _ => {
                            self.finish(&prompt_id, &job, &server, Some(record), None);
                            return;
                        }
                    }
                }
                Watched::ServerLost(started) => {
                    let reason =
                        format!("{} unreachable for {:?}", server.label, self.config.grace);
                    if started && !self.config.resubmit_running {
                        let lost = format!("{reason} while it was running there");
                        self.finish(&prompt_id, &job, &server, None, Some(lost));
                        return;
                    }
                    server.give_up(&prompt_id);
                    reason
                }
                Watched::Closed => return,
            };
            server.in_flight.fetch_sub(1, Ordering::Relaxed);
            server.failed_over.fetch_add(1, Ordering::Relaxed);
            match self.relocate(&prompt_id, &job, index, &why).await {
                Ok(()) => continue,
                Err(error) => {
                    let lost = format!("{why}, and no other server took it: {error}");
                    server.in_flight.fetch_add(1, Ordering::Relaxed);
                    self.finish(&prompt_id, &job, &server, None, Some(lost));
                    return;
                }
            }
        }
    }

    /// Waits for the prompt's end on `server`, checking the server's
    /// health every `check_interval`.
    async fn watch_on(&self, server: &Server, prompt_id: &str) -> Watched {
        let wait = server
            .client
            .wait_record(prompt_id, comfywire_client::Deadlines::default());
        tokio::pin!(wait);
        let mut tick = tokio::time::interval(self.config.check_interval);
        let mut asked: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                ended = &mut wait => return match ended {
                    Ok(record) => Watched::Ended(record),
                    Err(_) => Watched::Closed,
                },
                _ = tick.tick() => {
                    if self.closed.load(Ordering::Acquire) {
                        return Watched::Closed;
                    }
                    if !server.lost_for(self.config.grace) {
                        asked = None;
                        continue;
                    }
                    // The socket has been down past the grace period. A
                    // server whose HTTP still answers is not lost: its
                    // client follows the prompt over HTTP, and moving it
                    // would run it twice. Asked once per grace period.
                    if asked.is_some_and(|at| at.elapsed() < self.config.grace) {
                        continue;
                    }
                    asked = Some(tokio::time::Instant::now());
                    let reachable = tokio::time::timeout(self.config.grace, server.client.queue())
                        .await
                        .is_ok_and(|answer| answer.is_ok());
                    if reachable {
                        continue;
                    }
                    let started = match server.client.execution(prompt_id).await {
                        Ok(Some(r)) => r.started_at.is_some(),
                        _ => false,
                    };
                    return Watched::ServerLost(started);
                }
            }
        }
    }

    /// Moves a submission to another server, retrying while none is
    /// available, for at most the grace period.
    async fn relocate(
        &self,
        prompt_id: &str,
        job: &Job,
        from: usize,
        why: &str,
    ) -> Result<(), PoolError> {
        let deadline = tokio::time::Instant::now() + self.config.grace;
        loop {
            match self.dispatch(&job.workflow, prompt_id, &[from]).await {
                Ok(to) => {
                    let moved = Move {
                        from: self.servers[from].label.clone(),
                        to: self.servers[to].label.clone(),
                        reason: why.to_owned(),
                    };
                    tracing::info!(target: "comfywire::pool", prompt = %prompt_id, from = %moved.from, to = %moved.to, reason = %why, "moved");
                    job.server.store(to, Ordering::Release);
                    job.moves.lock().push(moved.clone());
                    job.servers.lock().push(moved.to.clone());
                    let _ = self.events.send(PoolEvent::Moved {
                        prompt_id: prompt_id.to_owned(),
                        moved,
                    });
                    return Ok(());
                }
                Err(error @ (PoolError::MissingNodeClasses { .. } | PoolError::Client { .. }))
                    if tokio::time::Instant::now() >= deadline =>
                {
                    return Err(error);
                }
                Err(PoolError::Client {
                    error: Error::Validation(v),
                    server,
                }) => {
                    return Err(PoolError::Client {
                        server,
                        error: Error::Validation(v),
                    });
                }
                Err(error) if tokio::time::Instant::now() >= deadline => return Err(error),
                Err(_) if self.closed.load(Ordering::Acquire) => return Err(PoolError::Closed),
                Err(_) => tokio::time::sleep(self.config.check_interval).await,
            }
        }
    }

    /// Delivers a submission's one outcome.
    fn finish(
        &self,
        prompt_id: &str,
        job: &Job,
        server: &Server,
        record: Option<Arc<ExecutionRecord>>,
        lost: Option<String>,
    ) {
        server.in_flight.fetch_sub(1, Ordering::Relaxed);
        server.done.fetch_add(1, Ordering::Relaxed);
        let status = record.as_ref().map_or(Phase::Lost, |r| r.phase);
        let lost_reason = lost.or_else(|| match record.as_ref().and_then(|r| r.outcome.as_ref()) {
            Some(comfywire_client::Outcome::Lost { reason }) => Some(reason.clone()),
            _ => None,
        });
        let outcome = Arc::new(PoolOutcome {
            prompt_id: prompt_id.to_owned(),
            status,
            server: server.label.clone(),
            record,
            lost_reason,
            servers: job.servers.lock().clone(),
            moves: job.moves.lock().clone(),
        });
        job.outcome.send_replace(Some(outcome.clone()));
        let _ = self.events.send(PoolEvent::Finished(outcome));
    }
}

/// How following a prompt on one server ended.
enum Watched {
    /// Its one terminal record there.
    Ended(Arc<ExecutionRecord>),
    /// The server has been unreachable past the grace period; whether the
    /// prompt had started there.
    ServerLost(bool),
    /// The pool or the client closed.
    Closed,
}
