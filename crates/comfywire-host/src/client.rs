//! [`HostClient`]: the blocking facade every binding wraps, plus callbacks
//! and the pull queue.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use comfywire_client::{
    Client, ClientConfig, Deadlines, EventKind, FileRef, Settings, Subscription, UploadOptions,
};
use serde_json::Value;

use crate::dispatch::{
    Backlog, CallbackHandle, Delivery, DispatchContext, Dispatcher, EventCallback, Job,
    PlainContext, Registry,
};
use crate::error::{ErrorCode, HostError};
use crate::record::{CALLBACK_ERROR, HostEvent, HostOutcome, HostStatus};
use crate::runtime::{on_runtime_thread, runtime};

/// Callback failures kept for the pull queue before the oldest are dropped.
const ERROR_BACKLOG: usize = 256;
/// Most events forwarded to the dispatcher in one job.
const FORWARD_BATCH: usize = 256;
/// Shortest time between two hand-offs to the dispatcher while events
/// trickle in: during a firehose each hand-off wakes the dispatcher thread
/// (and, for Python, takes the GIL), and thousands of small batches a
/// second cost more than the callbacks. A full batch goes at once.
const HAND_OFF_EVERY: Duration = Duration::from_millis(1);

/// The answer to a submission.
#[derive(Debug, Clone, PartialEq)]
pub struct HostSubmission {
    /// The prompt id.
    pub prompt_id: String,
    /// Its queue number.
    pub number: Option<u64>,
    /// Node errors of skipped outputs (a partially valid prompt), as JSON.
    pub partial_json: Option<String>,
}

/// The server's queue, by prompt id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostQueue {
    /// Running prompts.
    pub running: Vec<String>,
    /// Pending prompts in run order.
    pub pending: Vec<String>,
}

/// A file on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFile {
    /// File name.
    pub filename: String,
    /// Subfolder.
    pub subfolder: String,
    /// `output`, `input` or `temp`.
    pub kind: String,
}

/// Counters of a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostStats {
    /// Frames received.
    pub frames: u64,
    /// Events produced.
    pub events: u64,
    /// Frames that did not parse.
    pub bad_frames: u64,
    /// Reconnects.
    pub reconnects: u64,
    /// Progress and previews coalesced (throttles and queues).
    pub coalesced: u64,
    /// Progress and previews dropped from full queues.
    pub dropped: u64,
    /// Callbacks that failed or panicked.
    pub callback_failures: u64,
    /// Registered callbacks.
    pub callbacks: u64,
}

/// One client as every binding sees it.
pub struct HostClient {
    client: Client,
    registry: Arc<Registry>,
    dispatcher: Mutex<Dispatcher>,
    pull: Mutex<Option<Subscription>>,
    errors: Mutex<mpsc::Receiver<HostEvent>>,
    forward: Mutex<Option<tokio::task::JoinHandle<()>>>,
    // Kept apart from `dispatcher`, whose lock `close` holds while the
    // dispatcher thread finishes (for Python, taking the GIL): a
    // subscribing thread holding the GIL must not wait for that lock.
    jobs: mpsc::Sender<Job>,
    backlog: Arc<Backlog>,
    closed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for HostClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostClient")
            .field("client", &self.client)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn parse_json(text: &str, what: &str) -> Result<Value, HostError> {
    serde_json::from_str(text).map_err(|e| {
        HostError::new(
            ErrorCode::InvalidArgument,
            format!("{what} is not valid JSON: {e}"),
        )
    })
}

/// Maps a terminal outcome to `Ok` (succeeded) or the matching error.
pub fn outcome_result(outcome: HostOutcome) -> Result<HostOutcome, HostError> {
    let code = match outcome.status.as_str() {
        "succeeded" => return Ok(outcome),
        "failed" => ErrorCode::ExecutionFailed,
        "interrupted" => ErrorCode::Interrupted,
        "lost" => ErrorCode::Lost,
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
        _ => format!("prompt {} ended {}", outcome.prompt_id, outcome.status),
    };
    Err(HostError {
        code,
        message,
        detail_json: None,
        outcome: Some(Box::new(outcome)),
    })
}

impl HostClient {
    /// Starts a client (it connects in the background).
    pub fn new(config: ClientConfig) -> Result<HostClient, HostError> {
        HostClient::with_context(config, Arc::new(PlainContext))
    }

    /// Starts a client whose dispatcher thread runs inside `context`.
    pub fn with_context(
        config: ClientConfig,
        context: Arc<dyn DispatchContext>,
    ) -> Result<HostClient, HostError> {
        let rt = runtime()?;
        let client = {
            let _guard = rt.enter();
            Client::start(config)?
        };
        let registry = Registry::new();
        let (errors_tx, errors_rx) = mpsc::sync_channel(ERROR_BACKLOG);
        let dispatcher = Dispatcher::start(registry.clone(), errors_tx, context).map_err(|e| {
            HostError::new(
                ErrorCode::Config,
                format!("cannot start the dispatcher thread: {e}"),
            )
        })?;
        Ok(HostClient {
            client,
            registry,
            jobs: dispatcher.tx.clone(),
            backlog: dispatcher.backlog.clone(),
            dispatcher: Mutex::new(dispatcher),
            pull: Mutex::new(None),
            errors: Mutex::new(errors_rx),
            forward: Mutex::new(None),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Starts forwarding the client's events to the dispatcher, once, when
    /// the first callback for them registers: until then no subscription
    /// queue holds a copy of every event for nobody (a pull stream's
    /// `callback_error` registration alone does not need one).
    fn ensure_forward(&self) -> Result<(), HostError> {
        let mut forward = lock(&self.forward);
        // Checked under the lock `close` takes after setting the flag: a
        // task started here is always the one `close` joins.
        if forward.is_some() || self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        let events = self.client.events();
        let (registry, jobs) = (self.registry.clone(), self.jobs.clone());
        let backlog = self.backlog.clone();
        *forward = Some(runtime()?.spawn(forward_events(events, registry, jobs, backlog)));
        Ok(())
    }

    /// Starts a client from settings JSON (the format of the settings
    /// file; `{"url": "http://127.0.0.1:8188"}` is enough).
    pub fn from_settings_json(json: &str) -> Result<HostClient, HostError> {
        HostClient::new(HostClient::settings_config(json)?)
    }

    /// The client configuration of settings JSON (the format of the
    /// settings file), with the environment's overrides applied.
    pub fn settings_config(json: &str) -> Result<ClientConfig, HostError> {
        let value = parse_json(json, "settings")?;
        if !value.is_object() {
            return Err(HostError::new(
                ErrorCode::InvalidArgument,
                "settings must be a JSON object",
            ));
        }
        let mut settings: Settings = serde_json::from_value(value)
            .map_err(|e| HostError::new(ErrorCode::InvalidArgument, format!("settings: {e}")))?;
        settings.apply_env();
        Ok(settings.to_config()?)
    }

    /// The underlying async client (for bindings with async methods).
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn block<T>(
        &self,
        future: impl std::future::Future<Output = Result<T, HostError>>,
    ) -> Result<T, HostError> {
        if on_runtime_thread() {
            return Err(HostError::new(
                ErrorCode::InvalidArgument,
                "a blocking comfywire call was made from an async context; use the async API there",
            ));
        }
        runtime()?.block_on(future)
    }

    /// The client id.
    pub fn client_id(&self) -> String {
        self.client.client_id()
    }

    /// Blocks until connected, up to `timeout`.
    pub fn wait_connected(&self, timeout: Duration) -> Result<(), HostError> {
        self.block(async { Ok(self.client.wait_connected(timeout).await?) })
    }

    /// The connection state now.
    pub fn status(&self) -> HostStatus {
        HostStatus::from_status(&self.client.status())
    }

    /// Registers a callback for these event kinds (all when `None`),
    /// optionally for one prompt. Unregisters when the handle is dropped.
    pub fn subscribe(
        &self,
        kinds: Option<Vec<String>>,
        prompt_id: Option<String>,
        callback: Arc<dyn EventCallback>,
    ) -> Result<CallbackHandle, HostError> {
        if let Some(kinds) = &kinds {
            for kind in kinds {
                if kind != CALLBACK_ERROR && EventKind::from_name(kind).is_none() {
                    return Err(HostError::new(
                        ErrorCode::InvalidArgument,
                        format!("unknown event kind `{kind}`"),
                    ));
                }
            }
        }
        let wants_client_events = kinds
            .as_ref()
            .is_none_or(|k| k.iter().any(|k| k != CALLBACK_ERROR));
        if wants_client_events {
            self.ensure_forward()?;
        }
        Ok(self.registry.add(kinds, prompt_id, callback))
    }

    /// Unregisters by id; true if it was registered.
    pub fn unsubscribe(&self, id: u64) -> bool {
        self.registry.remove(id)
    }

    /// The next event for hosts with their own loop, waiting up to
    /// `timeout`. Events are queued from the first call on (bounded:
    /// progress and previews coalesce when not pulled fast enough).
    pub fn next_event(&self, timeout: Duration) -> Result<Option<HostEvent>, HostError> {
        if let Ok(e) = lock(&self.errors).try_recv() {
            return Ok(Some(e));
        }
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(HostError::new(ErrorCode::Closed, "client is closed"));
        }
        let mut pull = lock(&self.pull);
        let subscription = pull.get_or_insert_with(|| self.client.events());
        let event = self.block(async {
            match subscription.recv_timeout(timeout).await {
                Ok(Some(event)) => Ok(Some(event)),
                Ok(None) => Err(HostError::new(ErrorCode::Closed, "client is closed")),
                Err(()) => Ok(None),
            }
        })?;
        Ok(event.map(|e| HostEvent::from_event(&e)))
    }

    /// Submits a workflow (API-format JSON text).
    pub fn submit(&self, workflow_json: &str) -> Result<HostSubmission, HostError> {
        let workflow = parse_json(workflow_json, "workflow")?;
        self.block(async {
            let s = self.client.submit(&workflow).await?;
            Ok(HostSubmission {
                prompt_id: s.prompt_id,
                number: s.number,
                partial_json: s.partial.map(|p| {
                    HostError::from(comfywire_client::Error::Validation(Box::new(p)))
                        .detail_json
                        .unwrap_or_default()
                }),
            })
        })
    }

    /// Waits up to `timeout` for a prompt's terminal outcome, whatever it
    /// is; `None` when the time ran out (the prompt goes on). Callers that
    /// must stay interruptible (Ctrl-C) wait in short slices.
    pub fn wait_outcome(
        &self,
        prompt_id: &str,
        timeout: Duration,
    ) -> Result<Option<HostOutcome>, HostError> {
        self.block(async {
            match tokio::time::timeout(
                timeout,
                self.client.wait_record(prompt_id, Deadlines::default()),
            )
            .await
            {
                Ok(Ok(record)) => Ok(Some(HostOutcome::from_record(&record))),
                Ok(Err(e)) => Err(e.into()),
                Err(_) => Ok(None),
            }
        })
    }

    /// Waits for success: `Ok` with the outcome, or the error of a failed,
    /// interrupted or lost prompt, or `Timeout`.
    pub fn wait(&self, prompt_id: &str, timeout: Duration) -> Result<HostOutcome, HostError> {
        match self.wait_outcome(prompt_id, timeout)? {
            Some(outcome) => outcome_result(outcome),
            None => Err(HostError::new(
                ErrorCode::Timeout,
                format!("prompt {prompt_id} did not finish within {timeout:?}"),
            )),
        }
    }

    /// Submits and waits, with the client's configured deadlines (a
    /// `timeout` here is the total deadline).
    pub fn run(
        &self,
        workflow_json: &str,
        timeout: Option<Duration>,
    ) -> Result<HostOutcome, HostError> {
        let workflow = parse_json(workflow_json, "workflow")?;
        let mut deadlines = self.client.config().deadlines;
        if timeout.is_some() {
            deadlines.total = timeout;
        }
        self.block(async {
            let result = self
                .client
                .run_with(
                    &workflow,
                    comfywire_client::SubmitOptions::default(),
                    deadlines,
                )
                .await?;
            Ok(HostOutcome::from_record(&result.record))
        })
    }

    /// The record of a prompt this client has seen, in any phase.
    pub fn execution(&self, prompt_id: &str) -> Result<Option<HostOutcome>, HostError> {
        self.block(async {
            Ok(self
                .client
                .execution(prompt_id)
                .await?
                .map(|r| HostOutcome::from_record(&r)))
        })
    }

    /// Finished executions kept in memory, oldest first.
    pub fn history(&self) -> Result<Vec<HostOutcome>, HostError> {
        self.block(async {
            Ok(self
                .client
                .history()
                .await?
                .iter()
                .map(|r| HostOutcome::from_record(r))
                .collect())
        })
    }

    /// Interrupts the prompt only if it is the one running; returns whether
    /// an interrupt was sent.
    pub fn interrupt(&self, prompt_id: &str) -> Result<bool, HostError> {
        self.block(async { Ok(self.client.interrupt(prompt_id).await?) })
    }

    /// The server's queue.
    pub fn queue(&self) -> Result<HostQueue, HostError> {
        self.block(async {
            let q = self.client.queue().await?;
            Ok(HostQueue {
                running: q.running.into_iter().map(|i| i.prompt_id).collect(),
                pending: q.pending.into_iter().map(|i| i.prompt_id).collect(),
            })
        })
    }

    /// Deletes pending prompts.
    pub fn delete(&self, prompt_ids: &[String]) -> Result<(), HostError> {
        self.block(async { Ok(self.client.delete(prompt_ids).await?) })
    }

    /// Deletes every pending prompt.
    pub fn clear_queue(&self) -> Result<(), HostError> {
        self.block(async { Ok(self.client.clear_queue().await?) })
    }

    /// The server's history entry of a prompt, as JSON text.
    pub fn server_history(&self, prompt_id: &str) -> Result<Option<String>, HostError> {
        self.block(async {
            Ok(self
                .client
                .server_history(prompt_id)
                .await?
                .map(|v| v.to_string()))
        })
    }

    /// `GET /system_stats` as JSON text.
    pub fn system_stats(&self) -> Result<String, HostError> {
        self.block(async { Ok(self.client.system_stats().await?.to_string()) })
    }

    /// Downloads a file from `/view`.
    pub fn view(&self, file: &HostFile) -> Result<Vec<u8>, HostError> {
        let file = FileRef {
            filename: file.filename.clone(),
            subfolder: file.subfolder.clone(),
            kind: file.kind.clone(),
        };
        self.block(async { Ok(self.client.view(&file).await?.to_vec()) })
    }

    /// The files among a finished prompt's outputs.
    pub fn output_files(&self, prompt_id: &str) -> Result<Vec<HostFile>, HostError> {
        self.block(async {
            let record = self.client.execution(prompt_id).await?.ok_or_else(|| {
                HostError::new(
                    ErrorCode::InvalidArgument,
                    format!("unknown prompt {prompt_id}"),
                )
            })?;
            Ok(comfywire_client::files(&record)
                .into_iter()
                .map(|f| HostFile {
                    filename: f.filename,
                    subfolder: f.subfolder,
                    kind: f.kind,
                })
                .collect())
        })
    }

    /// Downloads every output file of a prompt into `dir`; returns paths.
    pub fn download_outputs(&self, prompt_id: &str, dir: &str) -> Result<Vec<String>, HostError> {
        self.block(async {
            let record = self.client.execution(prompt_id).await?.ok_or_else(|| {
                HostError::new(
                    ErrorCode::InvalidArgument,
                    format!("unknown prompt {prompt_id}"),
                )
            })?;
            let paths = self
                .client
                .download_outputs(&record, std::path::Path::new(dir))
                .await?;
            Ok(paths
                .into_iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect())
        })
    }

    /// Uploads a file; returns where the server stored it.
    pub fn upload_image(
        &self,
        filename: &str,
        data: &[u8],
        subfolder: Option<String>,
        kind: Option<String>,
        overwrite: bool,
    ) -> Result<HostFile, HostError> {
        self.block(async {
            let f = self
                .client
                .upload_image(
                    filename,
                    data,
                    UploadOptions {
                        subfolder,
                        kind,
                        overwrite,
                    },
                )
                .await?;
            Ok(HostFile {
                filename: f.filename,
                subfolder: f.subfolder,
                kind: f.kind,
            })
        })
    }

    /// Skips the backoff wait.
    pub fn retry_now(&self) -> Result<(), HostError> {
        Ok(self.client.retry_now()?)
    }

    /// App to the background: disconnect and stop retrying.
    pub fn pause(&self) -> Result<(), HostError> {
        Ok(self.client.pause()?)
    }

    /// App back: reconnect now.
    pub fn resume(&self) -> Result<(), HostError> {
        Ok(self.client.resume()?)
    }

    /// The network changed: check or reconnect now.
    pub fn network_changed(&self) -> Result<(), HostError> {
        Ok(self.client.network_changed()?)
    }

    /// Counters.
    pub fn stats(&self) -> HostStats {
        let s = self.client.stats();
        HostStats {
            frames: s.frames,
            events: s.events,
            bad_frames: s.bad_frames,
            reconnects: s.reconnects,
            coalesced: s.coalesced_progress + s.coalesced_previews + s.subscriber_coalesced,
            dropped: s.subscriber_dropped,
            callback_failures: self
                .registry
                .failures
                .load(std::sync::atomic::Ordering::Relaxed),
            callbacks: self.registry.len() as u64,
        }
    }

    /// Closes the client: socket closed, tasks joined, callbacks released
    /// (each binding's free function runs once), dispatcher stopped.
    /// Idempotent; also done on drop.
    pub fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        if let Ok(rt) = runtime() {
            let client = self.client.clone();
            let forward = lock(&self.forward).take();
            let work = async move {
                client.close().await;
                if let Some(f) = forward {
                    let _ = f.await;
                }
            };
            if on_runtime_thread() {
                rt.spawn(work);
            } else {
                rt.block_on(work);
            }
        }
        lock(&self.dispatcher).stop();
        self.registry.clear();
        lock(&self.pull).take();
    }
}

/// Hands the client's events to the dispatcher, each with the
/// registrations it matches, one job per batch already queued.
async fn forward_events(
    mut events: Subscription,
    registry: Arc<Registry>,
    tx: mpsc::Sender<Job>,
    backlog: Arc<Backlog>,
) {
    let mut taken = Vec::with_capacity(FORWARD_BATCH);
    let mut last_hand_off: Option<tokio::time::Instant> = None;
    loop {
        // Not taking more while the dispatcher is behind leaves the events
        // in the subscription's bounded queue, which coalesces progress.
        backlog.reserve().await;
        let Some(first) = events.recv().await else {
            backlog.release();
            break;
        };
        taken.push(first);
        events.try_recv_many(&mut taken, FORWARD_BATCH - 1);
        if let Some(due) = last_hand_off.map(|at| at + HAND_OFF_EVERY) {
            if taken.len() < FORWARD_BATCH && tokio::time::Instant::now() < due {
                tokio::time::sleep_until(due).await;
                let room = FORWARD_BATCH - taken.len();
                events.try_recv_many(&mut taken, room);
            }
        }
        last_hand_off = Some(tokio::time::Instant::now());
        let mut batch = Vec::new();
        for event in taken.drain(..) {
            let ids = registry.matching_kind(event.kind().name(), event.prompt_id());
            if !ids.is_empty() {
                batch.push(Delivery { ids, event });
            }
        }
        if batch.is_empty() {
            backlog.release();
        } else if tx.send(Job::Calls(batch)).is_err() {
            backlog.release();
            break;
        }
    }
}

impl Drop for HostClient {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn outcome_result_maps_each_status() {
        let base = HostOutcome {
            prompt_id: "p".into(),
            status: "succeeded".into(),
            outputs_json: "{}".into(),
            nodes: vec![],
            cached: vec![],
            error: None,
            lost_reason: None,
            duration_ms: None,
            had_gap: false,
        };
        assert!(outcome_result(base.clone()).is_ok());
        for (status, code) in [
            ("failed", ErrorCode::ExecutionFailed),
            ("interrupted", ErrorCode::Interrupted),
            ("lost", ErrorCode::Lost),
        ] {
            let err = outcome_result(HostOutcome {
                status: status.into(),
                ..base.clone()
            })
            .unwrap_err();
            assert_eq!(err.code, code);
            assert!(err.outcome.is_some());
        }
    }
}
