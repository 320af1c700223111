//! [`Jobs`]: the whole job API, async, written once for every binding.
//! Each call takes `&self` and borrows nothing from the caller, so a
//! binding can move a clone into a task, an asyncio future or a uniffi
//! future; blocking front ends wrap a call in [`crate::block_on`].

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use comfywire_client::{Client, Deadlines, Filter, SubmitOptions, UploadOptions};
use serde_json::Value;

use crate::error::{ErrorCode, HostError, validation_detail};
use crate::model::{HostFile, HostOutcome, HostQueue, HostStatus, HostSubmission};
use crate::stream::EventStream;

/// Options of one submission, run or wait. Absent deadlines keep the
/// client's configured ones.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct JobOptions {
    /// Use this prompt id instead of a fresh UUID.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub prompt_id: Option<String>,
    /// `extra_data` for the server and nodes (a JSON object).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub extra_data: Option<Value>,
    /// Put the prompt at the front of the queue.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub front: bool,
    /// Run only these output nodes.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub partial_execution_targets: Option<Vec<String>>,
    /// `run`: longest time from submission to the end (a `Deadline`
    /// error). `wait`: longest time to wait (a `Timeout` error; the prompt
    /// goes on).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub timeout: Option<Duration>,
    /// Longest time without any event while the prompt runs.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub stall_timeout: Option<Duration>,
    /// Longest wait for the prompt to start.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub queue_timeout: Option<Duration>,
    /// `run`: leave the prompt on the server when the run is cancelled
    /// (its future dropped) or runs out of time. Without it (the default)
    /// such a run removes its own prompt, as [`Jobs::cancel`] does.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub detach: bool,
}

impl JobOptions {
    fn submit_options(&self) -> Result<SubmitOptions, HostError> {
        if let Some(extra) = &self.extra_data {
            if !extra.is_object() {
                return Err(HostError::new(
                    ErrorCode::InvalidArgument,
                    "extra_data must be a JSON object",
                ));
            }
        }
        Ok(SubmitOptions {
            prompt_id: self.prompt_id.clone(),
            extra_data: self.extra_data.clone(),
            front: self.front,
            partial_execution_targets: self.partial_execution_targets.clone(),
        })
    }

    /// The client's deadlines with these options' overrides; `total` only
    /// when `with_total` (a wait's timeout is not a deadline).
    fn deadlines(&self, base: Deadlines, with_total: bool) -> Deadlines {
        Deadlines {
            queue: self.queue_timeout.or(base.queue),
            stall: self.stall_timeout.or(base.stall),
            total: if with_total {
                self.timeout.or(base.total)
            } else {
                None
            },
        }
    }
}

/// Options of an upload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct UploadSpec {
    /// Subfolder (created if missing).
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub subfolder: Option<String>,
    /// `input` (default), `temp` or `output`.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub kind: Option<String>,
    /// Overwrite a file of the same name.
    #[cfg_attr(feature = "uniffi", uniffi(default))]
    pub overwrite: bool,
}

/// Maps a terminal outcome to `Ok` (succeeded) or the matching error, which
/// carries the outcome.
pub fn outcome_result(outcome: HostOutcome) -> Result<HostOutcome, HostError> {
    use comfywire_client::Phase;
    let code = match outcome.status {
        Phase::Succeeded => return Ok(outcome),
        Phase::Failed => ErrorCode::ExecutionFailed,
        Phase::Interrupted => ErrorCode::Interrupted,
        Phase::Lost => ErrorCode::Lost,
        _ => ErrorCode::Protocol,
    };
    let message = match (&outcome.error, &outcome.lost_reason) {
        (Some(e), _) => format!(
            "node {} ({}) raised {}: {}",
            e.node_id.as_deref().unwrap_or("?"),
            e.node_type.as_deref().unwrap_or("?"),
            e.exception_type,
            e.exception_message.trim_end()
        ),
        (None, Some(reason)) => format!("prompt {} was lost: {reason}", outcome.prompt_id),
        _ => format!(
            "prompt {} ended {}",
            outcome.prompt_id,
            outcome.status.name()
        ),
    };
    let detail = outcome
        .lost_reason
        .as_ref()
        .map(|reason| serde_json::json!({ "reason": reason }));
    Err(HostError {
        code,
        message,
        detail,
        outcome: Some(Box::new(outcome)),
    })
}

/// Parses JSON text a caller gave, naming the argument on failure.
pub fn parse_json(text: &str, what: &str) -> Result<Value, HostError> {
    serde_json::from_str(text).map_err(|e| {
        HostError::new(
            ErrorCode::InvalidArgument,
            format!("{what} is not valid JSON: {e}"),
        )
    })
}

/// The job API of one client. Cheap to clone; every clone drives the same
/// client.
#[derive(Debug, Clone)]
pub struct Jobs {
    client: Client,
    /// Set by the first close, before the client's own close has run (which
    /// may finish later, in the background): calls fail from that moment,
    /// and runs in progress end (see [`Jobs::run`]).
    closed: Arc<tokio::sync::watch::Sender<bool>>,
    /// How many runs own their prompt now (not detached, not ended): a
    /// close waits for each to end or be dropped, so the removal it starts
    /// is never missed.
    owning_runs: Arc<tokio::sync::watch::Sender<usize>>,
    /// True until the first submission (see `first_connect`).
    first_submit: Arc<AtomicBool>,
    /// Removals of the prompts of dropped runs, still in progress (a close
    /// waits for them).
    removals: Arc<parking_lot::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

/// What [`Jobs::cancel`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum Cancelled {
    /// It was pending: deleted from the queue.
    Deleted,
    /// It was running: interrupted.
    Interrupted,
    /// It had ended, or the server did not know it: nothing to do.
    NotActive,
}

impl Cancelled {
    /// `deleted`, `interrupted` or `not_active`.
    pub fn name(self) -> &'static str {
        match self {
            Cancelled::Deleted => "deleted",
            Cancelled::Interrupted => "interrupted",
            Cancelled::NotActive => "not_active",
        }
    }
}

/// [`Jobs::cancel`]'s rule on `client`, open or closing (the removal of a
/// dropped run may run while its client closes: HTTP still works).
async fn cancel_on(client: &Client, prompt_id: &str) -> Result<Cancelled, HostError> {
    for _ in 0..2 {
        let queue = client.queue().await?;
        if queue.is_running(prompt_id) {
            return Ok(if client.interrupt(prompt_id).await? {
                Cancelled::Interrupted
            } else {
                Cancelled::NotActive
            });
        }
        if !queue.is_pending(prompt_id) {
            return Ok(Cancelled::NotActive);
        }
        client.delete(&[prompt_id.to_owned()]).await?;
        if !client.queue().await?.is_running(prompt_id) {
            return Ok(Cancelled::Deleted);
        }
    }
    Ok(Cancelled::NotActive)
}

/// The prompt of a [`Jobs::run`] in progress: removed from the server in
/// the background if the run is dropped before it ends (unless detached).
struct RunOwner {
    /// `None` when detached or once the run ended.
    jobs: Option<Jobs>,
    prompt_id: String,
}

impl RunOwner {
    /// Counted among the owning runs (unless detached) until released.
    fn new(jobs: &Jobs, prompt_id: String, detach: bool) -> RunOwner {
        if !detach {
            jobs.owning_runs.send_modify(|n| *n += 1);
        }
        RunOwner {
            jobs: (!detach).then(|| jobs.clone()),
            prompt_id,
        }
    }

    /// The run ended: its prompt is no longer removed on drop. Answers the
    /// jobs when the run owned it.
    fn release(&mut self) -> Option<Jobs> {
        let jobs = self.jobs.take()?;
        jobs.owning_runs.send_modify(|n| *n -= 1);
        Some(jobs)
    }
}

impl Drop for RunOwner {
    fn drop(&mut self) {
        let Some(jobs) = self.jobs.take() else {
            return;
        };
        if let Ok(rt) = crate::runtime() {
            let prompt_id = std::mem::take(&mut self.prompt_id);
            let client = jobs.client.clone();
            let task = rt.spawn(async move {
                if let Err(e) = cancel_on(&client, &prompt_id).await {
                    tracing::warn!(target: "comfywire::run", %prompt_id, error = %e.message, "could not remove the prompt of a cancelled run");
                }
            });
            let mut removals = jobs.removals.lock();
            removals.retain(|t| !t.is_finished());
            removals.push(task);
        }
        // Only now: a close waiting for the count finds the removal above.
        jobs.owning_runs.send_modify(|n| *n -= 1);
    }
}

impl Jobs {
    pub(crate) fn new(client: Client) -> Jobs {
        Jobs {
            client,
            closed: Arc::new(tokio::sync::watch::Sender::new(false)),
            owning_runs: Arc::new(tokio::sync::watch::Sender::new(0)),
            first_submit: Arc::new(AtomicBool::new(true)),
            removals: Arc::default(),
        }
    }

    /// Marks every clone closed; true the first time.
    pub(crate) fn mark_closed(&self) -> bool {
        !self.closed.send_replace(true)
    }

    /// True once closing began.
    pub(crate) fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Ends when closing begins.
    async fn closing(&self) {
        let mut closed = self.closed.subscribe();
        let _ = closed.wait_for(|closed| *closed).await;
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// `Closed` once the client is closed: every call after `close` fails
    /// the same way, whether or not it would need the socket.
    fn open(&self) -> Result<&Client, HostError> {
        if self.is_closed()
            || matches!(
                self.client.status().state,
                comfywire_client::ConnectionState::Closed
            )
        {
            return Err(HostError::new(ErrorCode::Closed, "client is closed"));
        }
        Ok(&self.client)
    }

    /// The client id (the socket's `clientId` and every prompt's
    /// `client_id`).
    pub fn client_id(&self) -> String {
        self.client.client_id()
    }

    /// The connection state now: `closed` from the moment closing began.
    pub fn status(&self) -> HostStatus {
        let mut status = self.client.status();
        if self.is_closed() {
            status.state = comfywire_client::ConnectionState::Closed;
        }
        HostStatus::from_status(&status)
    }

    /// Waits until the socket is open, up to `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), HostError> {
        Ok(self.open()?.wait_connected(timeout).await?)
    }

    /// Submits an API-format workflow and returns once the server queued
    /// it.
    pub async fn submit(
        &self,
        workflow: Value,
        options: JobOptions,
    ) -> Result<HostSubmission, HostError> {
        let client = self.open()?;
        self.first_connect().await;
        let s = client
            .submit_with(&workflow, options.submit_options()?)
            .await?;
        Ok(HostSubmission {
            prompt_id: s.prompt_id,
            number: s.number,
            skipped: s.partial.as_ref().map(validation_detail),
        })
    }

    /// Submits and waits for the end with the options' deadlines (the
    /// client's where absent): the outcome of a prompt that succeeded, or
    /// the error of one that failed, was interrupted or lost (with its
    /// outcome), was refused, or ran out of time.
    ///
    /// A run owns its prompt: when it runs out of time (a `Deadline`
    /// error), or when its future is dropped before the end (a cancelled
    /// task, Ctrl-C in a blocking front end), it removes the prompt from
    /// the server as [`Jobs::cancel`] does (the deadline case before the
    /// error is returned; the dropped case in the background), unless
    /// `options.detach`. A close while the run waits ends it with a
    /// `Closed` error and, likewise, removes its prompt unless detached:
    /// whether a task is cancelled just before its client closes or just
    /// after, its prompt goes.
    pub async fn run(
        &self,
        workflow: Value,
        mut options: JobOptions,
    ) -> Result<HostOutcome, HostError> {
        let deadlines = options.deadlines(self.client.config().deadlines, true);
        let client = self.open()?;
        self.first_connect().await;
        // The id is chosen here, so a run dropped while its POST is in
        // flight still knows what to remove.
        let prompt_id = options
            .prompt_id
            .get_or_insert_with(comfywire_client::new_uuid)
            .clone();
        let submit = options.submit_options()?;
        let mut owner = RunOwner::new(self, prompt_id, options.detach);
        let result = tokio::select! {
            result = client.run_with(&workflow, submit, deadlines) => result,
            // `owner` is dropped with the prompt still owned: removed.
            () = self.closing() => {
                return Err(HostError::new(ErrorCode::Closed, "client closed while the run waited"));
            }
        };
        let jobs = owner.release();
        match result {
            Ok(result) => Ok(HostOutcome::from_record(&result.record)),
            Err(error) => {
                if let (comfywire_client::Error::Deadline { .. }, Some(jobs)) = (&error, jobs) {
                    if let Err(e) = jobs.cancel(&owner.prompt_id).await {
                        tracing::warn!(target: "comfywire::run", prompt_id = %owner.prompt_id, error = %e.message, "could not remove a prompt that ran out of time");
                    }
                }
                Err(error.into())
            }
        }
    }

    /// Removes a prompt from the server, whatever its place: deletes it
    /// while it is pending, interrupts it while it runs (never another
    /// prompt), and does nothing once it has ended or when the server does
    /// not know it. Reads the server's queue to decide, and again after a
    /// delete, in case the prompt started in between.
    pub async fn cancel(&self, prompt_id: &str) -> Result<Cancelled, HostError> {
        cancel_on(self.open()?, prompt_id).await
    }

    /// Waits (up to `limit`) for the removals that dropped runs started in
    /// the background, so a close right after a cancelled run does not
    /// leave its prompt behind.
    /// Runs in progress end at the close (see [`Jobs::run`]); a run whose
    /// task is being cancelled elsewhere (an asyncio task, a uniffi future)
    /// may be dropped a moment later: both are waited for first.
    pub(crate) async fn settle_removals(&self, limit: Duration) {
        let until = Instant::now() + limit;
        let mut owning = self.owning_runs.subscribe();
        let _ = tokio::time::timeout(limit, owning.wait_for(|n| *n == 0)).await;
        let pending: Vec<_> = std::mem::take(&mut *self.removals.lock());
        let all = async {
            for task in pending {
                let _ = task.await;
            }
        };
        let left = until.saturating_duration_since(Instant::now());
        let _ = tokio::time::timeout(left, all).await;
    }

    /// Before the first submission, waits (up to the connect timeout) for
    /// the socket's first connection, so a first prompt is followed live
    /// rather than reconciled after a gap; goes on without it when it does
    /// not come.
    async fn first_connect(&self) {
        if self.first_submit.swap(false, Ordering::AcqRel) {
            let limit = self.client.config().connect_timeout;
            let _ = self.client.wait_connected(limit).await;
        }
    }

    /// Waits for the one terminal outcome of a prompt, whatever it is.
    /// The stall and queue deadlines apply; `options.timeout` bounds the
    /// wait (`Timeout`; the prompt goes on).
    pub async fn outcome(
        &self,
        prompt_id: &str,
        options: &JobOptions,
    ) -> Result<HostOutcome, HostError> {
        let deadlines = options.deadlines(self.client.config().deadlines, false);
        let waiting = self.open()?.wait_record(prompt_id, deadlines);
        let record = match options.timeout {
            None => waiting.await?,
            Some(limit) => tokio::time::timeout(limit, waiting).await.map_err(|_| {
                HostError::new(
                    ErrorCode::Timeout,
                    format!("prompt {prompt_id} did not finish within {limit:?}"),
                )
            })??,
        };
        Ok(HostOutcome::from_record(&record))
    }

    /// Waits like [`Jobs::outcome`], then maps the outcome as
    /// [`outcome_result`] does.
    pub async fn wait(
        &self,
        prompt_id: &str,
        options: &JobOptions,
    ) -> Result<HostOutcome, HostError> {
        outcome_result(self.outcome(prompt_id, options).await?)
    }

    /// Tracks a prompt this client did not submit (another process,
    /// another client id, an earlier run) until its one terminal event,
    /// which then reaches callbacks and [`Jobs::wait`] like any other. A
    /// prompt submitted under another client id is followed through the
    /// server's queue and history; one the server does not know ends as
    /// `Lost`. Attaching a prompt already tracked does nothing; with a
    /// journal it is recorded like a submission.
    pub async fn attach(&self, prompt_id: &str) -> Result<(), HostError> {
        if prompt_id.is_empty() {
            return Err(HostError::new(
                ErrorCode::InvalidArgument,
                "attach needs a prompt id",
            ));
        }
        Ok(self.open()?.attach(prompt_id).await?)
    }

    /// The journal's prompts that were unfinished when this client
    /// started, in submission order; each is attached already, so
    /// [`Jobs::wait`] on it gives its outcome. Empty without a journal
    /// (the settings key `journal`).
    pub fn resumed(&self) -> Vec<String> {
        self.client.resumed()
    }

    /// The record of a prompt this client has seen, in any phase.
    pub async fn execution(&self, prompt_id: &str) -> Result<Option<HostOutcome>, HostError> {
        Ok(self
            .open()?
            .execution(prompt_id)
            .await?
            .map(|r| HostOutcome::from_record(&r)))
    }

    /// A stream of one prompt's events that cannot miss any: subscribed
    /// now, its first read replays what the client's record says already
    /// happened (a prompt it does not track is attached), and it ends
    /// after the prompt's `Finished` (or when the client closes).
    pub fn job_stream(&self, prompt_id: &str) -> Result<EventStream, HostError> {
        let client = self.open()?;
        let events = client.subscribe(Filter::all().prompt(prompt_id));
        Ok(EventStream::for_job(
            client.clone(),
            prompt_id.to_owned(),
            events,
        ))
    }

    /// Finished executions kept in memory (the ring), oldest first.
    pub async fn history(&self) -> Result<Vec<HostOutcome>, HostError> {
        Ok(self
            .open()?
            .history()
            .await?
            .iter()
            .map(|r| HostOutcome::from_record(r))
            .collect())
    }

    /// Interrupts the prompt only if it is the one running now (never
    /// another client's); true if an interrupt was sent.
    pub async fn interrupt(&self, prompt_id: &str) -> Result<bool, HostError> {
        Ok(self.open()?.interrupt(prompt_id).await?)
    }

    /// The server's queue.
    pub async fn queue(&self) -> Result<HostQueue, HostError> {
        Ok(self.open()?.queue().await?.into())
    }

    /// Deletes pending prompts (running ones are untouched: see
    /// [`Jobs::interrupt`]); deleting no prompt asks the server nothing.
    pub async fn delete(&self, prompt_ids: &[String]) -> Result<(), HostError> {
        let client = self.open()?;
        if prompt_ids.is_empty() {
            return Ok(());
        }
        Ok(client.delete(prompt_ids).await?)
    }

    /// Deletes every pending prompt.
    pub async fn clear_queue(&self) -> Result<(), HostError> {
        Ok(self.open()?.clear_queue().await?)
    }

    /// The server's history entry of a prompt, `None` when it has none.
    pub async fn server_history(&self, prompt_id: &str) -> Result<Option<Value>, HostError> {
        Ok(self.open()?.server_history(prompt_id).await?)
    }

    /// `GET /system_stats`.
    pub async fn system_stats(&self) -> Result<Value, HostError> {
        Ok(self.open()?.system_stats().await?)
    }

    /// Reads a file from `/view` into memory (bounded by the client's
    /// `BodyLimits::view`; [`Jobs::download_outputs`] streams to disk).
    pub async fn view(&self, file: &HostFile) -> Result<Bytes, HostError> {
        Ok(self.open()?.view(&file.into()).await?)
    }

    async fn record_of(&self, prompt_id: &str) -> Result<HostOutcome, HostError> {
        self.execution(prompt_id).await?.ok_or_else(|| {
            HostError::new(
                ErrorCode::InvalidArgument,
                format!("prompt {prompt_id} is not known to this client"),
            )
        })
    }

    /// The files among a prompt's outputs (read from the server's
    /// `/history` when the record could not keep them all).
    pub async fn output_files(&self, prompt_id: &str) -> Result<Vec<HostFile>, HostError> {
        let outcome = self.record_of(prompt_id).await?;
        if outcome.outputs_omitted == 0 {
            return Ok(outcome.files());
        }
        let entry = self.server_history(&outcome.prompt_id).await?;
        match entry.as_ref().and_then(|e| e.get("outputs")) {
            Some(outputs) => Ok(HostFile::in_outputs(outputs)),
            None => Err(HostError::new(
                ErrorCode::Lost,
                format!(
                    "{} of the outputs of {} were too large to keep, and the server's history no longer has them",
                    outcome.outputs_omitted, outcome.prompt_id
                ),
            )),
        }
    }

    /// Downloads every output file of a prompt into `dir` (created if
    /// missing), each streamed to disk; returns the paths written.
    pub async fn download_outputs(
        &self,
        prompt_id: &str,
        dir: &Path,
    ) -> Result<Vec<String>, HostError> {
        let files = self.output_files(prompt_id).await?;
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| HostError::new(ErrorCode::Io, format!("{}: {e}", dir.display())))?;
        let mut written = Vec::with_capacity(files.len());
        for file in &files {
            let name = Path::new(&file.filename).file_name().ok_or_else(|| {
                HostError::new(
                    ErrorCode::Protocol,
                    format!("bad output file name {:?}", file.filename),
                )
            })?;
            let path = dir.join(name);
            // Streamed to disk, never held whole (bounded by the client's
            // `BodyLimits::download`).
            self.open()?.download(&file.into(), &path).await?;
            written.push(path.to_string_lossy().into_owned());
        }
        Ok(written)
    }

    /// Uploads a file to `/upload/image`; returns where the server stored
    /// it (use that name: the server may rename it).
    pub async fn upload(
        &self,
        filename: &str,
        data: &[u8],
        spec: UploadSpec,
    ) -> Result<HostFile, HostError> {
        if filename.is_empty() {
            return Err(HostError::new(
                ErrorCode::InvalidArgument,
                "an upload needs a file name",
            ));
        }
        let options = UploadOptions {
            subfolder: spec.subfolder,
            kind: spec.kind,
            overwrite: spec.overwrite,
        };
        Ok(self
            .open()?
            .upload_image(filename, data, options)
            .await?
            .into())
    }

    /// Skips the current backoff wait.
    pub fn retry_now(&self) -> Result<(), HostError> {
        Ok(self.open()?.retry_now()?)
    }

    /// App to the background: disconnect and stop retrying.
    pub fn pause(&self) -> Result<(), HostError> {
        Ok(self.open()?.pause()?)
    }

    /// App back: reconnect now.
    pub fn resume(&self) -> Result<(), HostError> {
        Ok(self.open()?.resume()?)
    }

    /// The network changed (Wi-Fi to cellular, VPN): check or reconnect
    /// now.
    pub fn network_changed(&self) -> Result<(), HostError> {
        Ok(self.open()?.network_changed()?)
    }
}
