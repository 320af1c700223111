//! The exported [`Client`]: construction, listeners, the pull queue and
//! lifecycle hints are synchronous (they never wait on the network); job,
//! queue and history calls are `async` and run on the host runtime.

use std::sync::Arc;
use std::time::Duration;

use comfywire_host::comfywire_client::{self, Deadlines, FileRef};
use comfywire_host::{CALLBACK_ERROR, ErrorCode, HostClient, HostError, HostOutcome};
use serde_json::Value;

use crate::error::ComfyError;
use crate::listener::{EventAdapter, EventListener, StateAdapter, StateListener, Subscription};
use crate::options::{ClientOptions, JobOptions};
use crate::record::{
    ClientStats, ConnectionStatus, Event, Outcome, OutputFile, QueueSnapshot, Submission,
};
use crate::task::spawn;

/// Parses JSON text given by the caller, naming the argument on failure.
pub(crate) fn parse_json(text: &str, what: &str) -> Result<Value, ComfyError> {
    serde_json::from_str(text).map_err(|e| {
        ComfyError::new(
            ErrorCode::InvalidArgument,
            format!("{what} is not valid JSON: {e}"),
        )
    })
}

fn outcome(record: &comfywire_client::ExecutionRecord) -> Outcome {
    HostOutcome::from_record(record).into()
}

/// A ComfyUI client: one WebSocket, reconnecting on its own, with events
/// delivered to listeners or pulled with [`Client::next_event`].
#[derive(Debug, uniffi::Object)]
pub struct Client {
    host: HostClient,
}

impl Client {
    /// The async client, cloned into tasks spawned on the host runtime.
    fn inner(&self) -> comfywire_client::Client {
        self.host.client().clone()
    }
}

#[uniffi::export]
impl Client {
    /// Starts a client from options; it connects in the background (see
    /// [`Client::wait_connected`] and [`Client::on_state_change`]).
    #[uniffi::constructor]
    pub fn new(options: ClientOptions) -> Result<Arc<Client>, ComfyError> {
        let host = HostClient::new(options.to_config()?)?;
        Ok(Arc::new(Client { host }))
    }

    /// Starts a client from settings JSON, the format of the settings file
    /// shared with the CLI (`{"url": "http://127.0.0.1:8188"}` is enough),
    /// with the `COMFYWIRE_*` environment overrides applied.
    #[uniffi::constructor]
    pub fn from_settings_json(json: String) -> Result<Arc<Client>, ComfyError> {
        let host = HostClient::from_settings_json(&json)?;
        Ok(Arc::new(Client { host }))
    }

    /// The client id (the socket's `clientId` and every prompt's `client_id`).
    pub fn client_id(&self) -> String {
        self.host.client_id()
    }

    /// The connection state now.
    pub fn status(&self) -> ConnectionStatus {
        self.host.status().into()
    }

    /// Counters.
    pub fn stats(&self) -> ClientStats {
        self.host.stats().into()
    }

    /// Registers `listener` for these event kinds (every kind when `kinds`
    /// is empty), optionally for one prompt only. Include
    /// `"callback_error"` to hear about listeners that threw.
    pub fn subscribe(
        &self,
        kinds: Vec<String>,
        prompt_id: Option<String>,
        listener: Arc<dyn EventListener>,
    ) -> Result<Arc<Subscription>, ComfyError> {
        let kinds = (!kinds.is_empty()).then_some(kinds);
        let handle = self
            .host
            .subscribe(kinds, prompt_id, Arc::new(EventAdapter(listener)))?;
        Ok(Subscription::new(handle))
    }

    /// Registers `listener` for connection state changes.
    pub fn on_state_change(
        &self,
        listener: Arc<dyn StateListener>,
    ) -> Result<Arc<Subscription>, ComfyError> {
        let handle = self.host.subscribe(
            Some(vec!["connection".to_owned()]),
            None,
            Arc::new(StateAdapter(listener)),
        )?;
        Ok(Subscription::new(handle))
    }

    /// The next event, waiting up to `timeout_ms`; `None` when none came.
    /// For hosts with their own loop: events are queued from the first
    /// call on, and `callback_error` reports come first. Blocks the calling
    /// thread (call it from a background thread or `Dispatchers.IO`).
    pub fn next_event(&self, timeout_ms: u64) -> Result<Option<Event>, ComfyError> {
        let event = self.host.next_event(Duration::from_millis(timeout_ms))?;
        Ok(event.as_ref().map(Event::from))
    }

    /// App went to the background: disconnect and stop retrying.
    pub fn pause(&self) -> Result<(), ComfyError> {
        Ok(self.host.pause()?)
    }

    /// App came back: reconnect now.
    pub fn resume(&self) -> Result<(), ComfyError> {
        Ok(self.host.resume()?)
    }

    /// The network changed (Wi-Fi to cellular, VPN): check or reconnect now.
    pub fn network_changed(&self) -> Result<(), ComfyError> {
        Ok(self.host.network_changed()?)
    }

    /// Skips the current backoff wait.
    pub fn retry_now(&self) -> Result<(), ComfyError> {
        Ok(self.host.retry_now()?)
    }

    /// Closes the socket, stops the dispatcher and releases every listener.
    /// Idempotent; also done when the object is released. Not named
    /// `close`: Kotlin objects already have `close()` (AutoCloseable),
    /// which releases the object and so ends in the same place.
    pub fn shutdown(&self) {
        self.host.close();
    }
}

#[uniffi::export]
impl Client {
    /// Waits until the socket is open, up to `timeout_ms`.
    pub async fn wait_connected(&self, timeout_ms: u64) -> Result<(), ComfyError> {
        let client = self.inner();
        spawn(async move {
            Ok(client
                .wait_connected(Duration::from_millis(timeout_ms))
                .await?)
        })
        .await
    }

    /// Submits a workflow (API-format JSON) and returns at once.
    pub async fn submit(
        &self,
        workflow_json: String,
        options: JobOptions,
    ) -> Result<Submission, ComfyError> {
        let workflow = parse_json(&workflow_json, "workflow")?;
        let submit = options.submit_options()?;
        let client = self.inner();
        spawn(async move {
            let s = client.submit_with(&workflow, submit).await?;
            Ok(Submission {
                prompt_id: s.prompt_id,
                number: s.number,
                partial_json: s.partial.and_then(|p| {
                    HostError::from(comfywire_client::Error::Validation(Box::new(p))).detail_json
                }),
            })
        })
        .await
    }

    /// Submits and waits for the end: the outcome of a prompt that
    /// succeeded, or `ExecutionFailed` / `Interrupted` / `Lost` (with the
    /// outcome) / `Validation` / `Deadline`.
    pub async fn run(
        &self,
        workflow_json: String,
        options: JobOptions,
    ) -> Result<Outcome, ComfyError> {
        let workflow = parse_json(&workflow_json, "workflow")?;
        let submit = options.submit_options()?;
        let client = self.inner();
        let mut deadlines = client.config().deadlines;
        if let Some(ms) = options.timeout_ms {
            deadlines.total = Some(Duration::from_millis(ms));
        }
        spawn(async move {
            let result = client.run_with(&workflow, submit, deadlines).await?;
            Ok(outcome(&result.record))
        })
        .await
    }

    /// Waits for a submitted prompt like [`Client::run`]; `Timeout` when
    /// `timeout_ms` passes first (the prompt goes on).
    pub async fn wait(
        &self,
        prompt_id: String,
        timeout_ms: Option<u64>,
    ) -> Result<Outcome, ComfyError> {
        let client = self.inner();
        spawn(async move {
            let waiting = client.wait_record(&prompt_id, Deadlines::default());
            let record = match timeout_ms {
                None => waiting.await?,
                Some(ms) => tokio::time::timeout(Duration::from_millis(ms), waiting)
                    .await
                    .map_err(|_| {
                        ComfyError::new(
                            ErrorCode::Timeout,
                            format!("prompt {prompt_id} did not finish within {ms} ms"),
                        )
                    })??,
            };
            Ok(comfywire_host::outcome_result(HostOutcome::from_record(&record))?.into())
        })
        .await
    }

    /// Interrupts the prompt only if it is the one running now (never
    /// another client's); true if an interrupt was sent.
    pub async fn interrupt(&self, prompt_id: String) -> Result<bool, ComfyError> {
        let client = self.inner();
        spawn(async move { Ok(client.interrupt(&prompt_id).await?) }).await
    }

    /// The server's queue.
    pub async fn queue(&self) -> Result<QueueSnapshot, ComfyError> {
        let client = self.inner();
        spawn(async move {
            let q = client.queue().await?;
            Ok(QueueSnapshot {
                running: q.running.into_iter().map(|i| i.prompt_id).collect(),
                pending: q.pending.into_iter().map(|i| i.prompt_id).collect(),
            })
        })
        .await
    }

    /// Deletes pending prompts (running ones are untouched: see `interrupt`).
    pub async fn delete(&self, prompt_ids: Vec<String>) -> Result<(), ComfyError> {
        let client = self.inner();
        spawn(async move { Ok(client.delete(&prompt_ids).await?) }).await
    }

    /// Deletes every pending prompt.
    pub async fn clear_queue(&self) -> Result<(), ComfyError> {
        let client = self.inner();
        spawn(async move { Ok(client.clear_queue().await?) }).await
    }

    /// The record of a prompt this client has seen, in any phase.
    pub async fn execution(&self, prompt_id: String) -> Result<Option<Outcome>, ComfyError> {
        let client = self.inner();
        spawn(async move { Ok(client.execution(&prompt_id).await?.map(|r| outcome(&r))) }).await
    }

    /// Finished executions kept in memory, oldest first.
    pub async fn history(&self) -> Result<Vec<Outcome>, ComfyError> {
        let client = self.inner();
        spawn(async move { Ok(client.history().await?.iter().map(|r| outcome(r)).collect()) }).await
    }

    /// The server's history entry of a prompt, as JSON text.
    pub async fn server_history(&self, prompt_id: String) -> Result<Option<String>, ComfyError> {
        let client = self.inner();
        spawn(async move {
            Ok(client
                .server_history(&prompt_id)
                .await?
                .map(|v| v.to_string()))
        })
        .await
    }

    /// `GET /system_stats`, as JSON text.
    pub async fn system_stats(&self) -> Result<String, ComfyError> {
        let client = self.inner();
        spawn(async move { Ok(client.system_stats().await?.to_string()) }).await
    }

    /// The files among a prompt's outputs.
    pub async fn output_files(&self, prompt_id: String) -> Result<Vec<OutputFile>, ComfyError> {
        let client = self.inner();
        spawn(async move {
            let record = client.execution(&prompt_id).await?.ok_or_else(|| {
                ComfyError::new(
                    ErrorCode::InvalidArgument,
                    format!("unknown prompt {prompt_id}"),
                )
            })?;
            Ok(comfywire_client::files(&record)
                .into_iter()
                .map(|f| OutputFile {
                    filename: f.filename,
                    subfolder: f.subfolder,
                    kind: f.kind,
                })
                .collect())
        })
        .await
    }

    /// Downloads a file from `/view`.
    pub async fn view(&self, file: OutputFile) -> Result<Vec<u8>, ComfyError> {
        let client = self.inner();
        let file = FileRef {
            filename: file.filename,
            subfolder: file.subfolder,
            kind: file.kind,
        };
        spawn(async move { Ok(client.view(&file).await?.to_vec()) }).await
    }
}

/// The event kind of listener failure reports, for `subscribe`.
#[uniffi::export]
pub fn callback_error_kind() -> String {
    CALLBACK_ERROR.to_owned()
}
