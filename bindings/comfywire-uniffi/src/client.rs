//! The exported [`Client`]: construction, listeners, the pull queue and
//! lifecycle hints are synchronous (they never wait on the network); every
//! job call is `async`, one call of the host's [`Jobs`] spawned on the host
//! runtime.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use comfywire_host::ffi::Json;
use comfywire_host::{
    CALLBACK_ERROR, HostClient, HostError, HostEvent, HostFile, HostOutcome, HostQueue, HostStats,
    HostStatus, HostSubmission, JobOptions, Jobs, UploadSpec, parse_json,
};

use crate::error::ComfyError;
use crate::listener::{EventAdapter, EventListener, StateAdapter, StateListener, Subscription};
use crate::options::ClientOptions;

/// A ComfyUI client: one WebSocket, reconnecting on its own, with events
/// delivered to listeners or pulled with [`Client::next_event`].
#[derive(Debug, uniffi::Object)]
pub struct Client {
    host: HostClient,
}

impl Client {
    /// Runs one job call with a clone of the job API on the host's runtime
    /// (`comfywire_host::spawn`), where the client's driver already lives:
    /// not on the foreign executor, and not on a second runtime (uniffi's
    /// `async_runtime = "tokio"` would start one). A foreign caller that
    /// cancels (a Swift `Task`, a Kotlin coroutine) aborts it.
    async fn call<T, F>(&self, call: impl FnOnce(Jobs) -> F) -> Result<T, ComfyError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, HostError>> + Send + 'static,
    {
        Ok(comfywire_host::spawn(call(self.host.jobs().clone())).await?)
    }

    fn subscription(
        &self,
        kinds: &[String],
        prompt_id: Option<String>,
        callback: Arc<dyn comfywire_host::EventCallback>,
    ) -> Result<Arc<Subscription>, ComfyError> {
        Ok(Subscription::new(self.host.subscribe(
            Some(kinds),
            prompt_id,
            callback,
        )?))
    }
}

#[uniffi::export]
impl Client {
    /// Starts a client from options; it connects in the background (see
    /// [`Client::wait_connected`] and [`Client::on_state_change`]).
    #[uniffi::constructor]
    pub fn new(options: ClientOptions) -> Result<Arc<Client>, ComfyError> {
        let host = HostClient::new(&options.settings())?;
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

    /// The journal's prompts that were unfinished when this client started
    /// (`journal_path`), in submission order; each is attached already, so
    /// `wait` on it gives its outcome. Empty without a journal.
    pub fn resumed(&self) -> Vec<String> {
        self.host.resumed()
    }

    /// The connection state now.
    pub fn status(&self) -> HostStatus {
        self.host.status()
    }

    /// Counters.
    pub fn stats(&self) -> HostStats {
        self.host.stats()
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
        self.subscription(&kinds, prompt_id, Arc::new(EventAdapter(listener)))
    }

    /// Registers `listener` for connection state changes.
    pub fn on_state_change(
        &self,
        listener: Arc<dyn StateListener>,
    ) -> Result<Arc<Subscription>, ComfyError> {
        let kinds = ["connection".to_owned()];
        self.subscription(&kinds, None, Arc::new(StateAdapter(listener)))
    }

    /// The next event, waiting up to `timeout_ms`; `None` when none came.
    /// For hosts with their own loop: events are queued from the first
    /// call on, and `callback_error` reports come first. Blocks the calling
    /// thread (call it from a background thread or `Dispatchers.IO`).
    pub fn next_event(&self, timeout_ms: u64) -> Result<Option<HostEvent>, ComfyError> {
        let event = self.host.next_event(Duration::from_millis(timeout_ms))?;
        Ok(event.map(|e| e.flat()))
    }

    /// App went to the background: disconnect and stop retrying.
    pub fn pause(&self) -> Result<(), ComfyError> {
        Ok(self.host.jobs().pause()?)
    }

    /// App came back: reconnect now.
    pub fn resume(&self) -> Result<(), ComfyError> {
        Ok(self.host.jobs().resume()?)
    }

    /// The network changed (Wi-Fi to cellular, VPN): check or reconnect now.
    pub fn network_changed(&self) -> Result<(), ComfyError> {
        Ok(self.host.jobs().network_changed()?)
    }

    /// Skips the current backoff wait.
    pub fn retry_now(&self) -> Result<(), ComfyError> {
        Ok(self.host.jobs().retry_now()?)
    }

    /// Closes the socket, stops the dispatcher and releases every listener
    /// (also a listener that holds this client: the way to end that
    /// cycle). Idempotent; also done when the object is released. Waits
    /// for a listener call in progress; called from a listener (or the
    /// last reference released in one), it returns at once and the close
    /// completes after that listener returns. Not named `close`: Kotlin
    /// objects already have `close()` (AutoCloseable), which releases the
    /// object and so ends in the same place.
    pub fn shutdown(&self) {
        self.host.close();
    }
}

#[uniffi::export]
impl Client {
    /// Waits until the socket is open, up to `timeout_ms`.
    pub async fn wait_connected(&self, timeout_ms: u64) -> Result<(), ComfyError> {
        let timeout = Duration::from_millis(timeout_ms);
        self.call(|jobs| async move { jobs.wait_connected(timeout).await })
            .await
    }

    /// Submits a workflow (API-format JSON) and returns once the server
    /// queued it.
    pub async fn submit(
        &self,
        workflow_json: String,
        options: JobOptions,
    ) -> Result<HostSubmission, ComfyError> {
        let workflow = parse_json(&workflow_json, "workflow")?;
        self.call(|jobs| async move { jobs.submit(workflow, options).await })
            .await
    }

    /// Submits and waits for the end with the options' deadlines (the
    /// client's where absent): the outcome of a prompt that succeeded, or
    /// `ExecutionFailed` / `Interrupted` / `Lost` (with the outcome),
    /// `Validation`, `Deadline`.
    pub async fn run(
        &self,
        workflow_json: String,
        options: JobOptions,
    ) -> Result<HostOutcome, ComfyError> {
        let workflow = parse_json(&workflow_json, "workflow")?;
        self.call(|jobs| async move { jobs.run(workflow, options).await })
            .await
    }

    /// Waits for a prompt of this client (attach) like [`Client::run`]: the
    /// stall and queue deadlines apply, and `options.timeout` bounds the
    /// wait (`Timeout`; the prompt goes on).
    pub async fn wait(
        &self,
        prompt_id: String,
        options: JobOptions,
    ) -> Result<HostOutcome, ComfyError> {
        self.call(|jobs| async move { jobs.wait(&prompt_id, &options).await })
            .await
    }

    /// Tracks a prompt this client did not submit (another process,
    /// another client id, an earlier run) until its one terminal event,
    /// which then reaches listeners and `wait` like any other; a prompt of
    /// another client id is followed through the server's queue and
    /// history, and one the server does not know ends as `Lost`.
    pub async fn attach(&self, prompt_id: String) -> Result<(), ComfyError> {
        self.call(|jobs| async move { jobs.attach(&prompt_id).await })
            .await
    }

    /// Waits like [`Client::wait`] but returns the terminal outcome however
    /// the prompt ended.
    pub async fn outcome(
        &self,
        prompt_id: String,
        options: JobOptions,
    ) -> Result<HostOutcome, ComfyError> {
        self.call(|jobs| async move { jobs.outcome(&prompt_id, &options).await })
            .await
    }

    /// Interrupts the prompt only if it is the one running now (never
    /// another client's); true if an interrupt was sent.
    pub async fn interrupt(&self, prompt_id: String) -> Result<bool, ComfyError> {
        self.call(|jobs| async move { jobs.interrupt(&prompt_id).await })
            .await
    }

    /// The server's queue.
    pub async fn queue(&self) -> Result<HostQueue, ComfyError> {
        self.call(|jobs| async move { jobs.queue().await }).await
    }

    /// Deletes pending prompts (running ones are untouched: see `interrupt`).
    pub async fn delete(&self, prompt_ids: Vec<String>) -> Result<(), ComfyError> {
        self.call(|jobs| async move { jobs.delete(&prompt_ids).await })
            .await
    }

    /// Deletes every pending prompt.
    pub async fn clear_queue(&self) -> Result<(), ComfyError> {
        self.call(|jobs| async move { jobs.clear_queue().await })
            .await
    }

    /// The record of a prompt this client has seen, in any phase.
    pub async fn execution(&self, prompt_id: String) -> Result<Option<HostOutcome>, ComfyError> {
        self.call(|jobs| async move { jobs.execution(&prompt_id).await })
            .await
    }

    /// Finished executions kept in memory, oldest first.
    pub async fn history(&self) -> Result<Vec<HostOutcome>, ComfyError> {
        self.call(|jobs| async move { jobs.history().await }).await
    }

    /// The server's history entry of a prompt.
    pub async fn server_history(&self, prompt_id: String) -> Result<Option<Json>, ComfyError> {
        self.call(|jobs| async move { jobs.server_history(&prompt_id).await })
            .await
    }

    /// `GET /system_stats`.
    pub async fn system_stats(&self) -> Result<Json, ComfyError> {
        self.call(|jobs| async move { jobs.system_stats().await })
            .await
    }

    /// Reads a file from `/view` (an output, an upload).
    pub async fn view(&self, file: HostFile) -> Result<Vec<u8>, ComfyError> {
        self.call(|jobs| async move { Ok(jobs.view(&file).await?.to_vec()) })
            .await
    }

    /// The files among a prompt's outputs.
    pub async fn output_files(&self, prompt_id: String) -> Result<Vec<HostFile>, ComfyError> {
        self.call(|jobs| async move { jobs.output_files(&prompt_id).await })
            .await
    }

    /// Downloads every output file of a prompt into the folder `dir`
    /// (created if missing); returns the paths written.
    pub async fn download_outputs(
        &self,
        prompt_id: String,
        dir: String,
    ) -> Result<Vec<String>, ComfyError> {
        self.call(|jobs| async move { jobs.download_outputs(&prompt_id, dir.as_ref()).await })
            .await
    }

    /// Uploads a file to `/upload/image`; returns where the server stored
    /// it (use that name: the server may rename it).
    pub async fn upload(
        &self,
        filename: String,
        data: Vec<u8>,
        spec: UploadSpec,
    ) -> Result<HostFile, ComfyError> {
        self.call(|jobs| async move { jobs.upload(&filename, &data, spec).await })
            .await
    }
}

/// The event kind of listener failure reports, for `subscribe`.
#[uniffi::export]
pub fn callback_error_kind() -> String {
    CALLBACK_ERROR.to_owned()
}
