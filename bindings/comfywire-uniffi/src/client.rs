//! The exported [`Client`]: construction, listeners, the pull queue and
//! lifecycle hints are synchronous (they never wait on the network); every
//! job call is `async`, one call of the host's [`Jobs`] spawned on the host
//! runtime.

use std::sync::Arc;
use std::time::Duration;

use comfywire_host::ffi::Json;
use comfywire_host::{
    CALLBACK_ERROR, Cancelled, ClientOptions, HostClient, HostEvent, HostFile, HostOutcome,
    HostQueue, HostStats, HostStatus, HostSubmission, JobOptions, Jobs, UploadSpec, parse_json,
};

use crate::error::ComfyError;
use crate::job_events::JobEvents;
use crate::listener::{EventAdapter, EventListener, StateAdapter, StateListener, Subscription};

/// A ComfyUI client: one WebSocket, reconnecting on its own, with events
/// delivered to listeners or pulled with [`Client::next_event`].
#[derive(Debug, uniffi::Object)]
pub struct Client {
    host: HostClient,
}

impl Client {
    /// The handle of [`crate::async_calls`].
    fn handle(&self) -> Jobs {
        self.host.jobs().clone()
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

    /// One prompt's own events from its submission to its `finished`
    /// event ([`JobEvents`]), subscribed now: its first `next_event`
    /// replays what already happened, so it misses nothing however late it
    /// is made (after the end too). A prompt this client does not track
    /// is attached.
    pub fn job_events(&self, prompt_id: String) -> Result<Arc<JobEvents>, ComfyError> {
        let stream = self.host.jobs().job_stream(&prompt_id)?;
        Ok(Arc::new(JobEvents::new(stream)))
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

crate::async_calls! { Client, jobs;
    /// Waits until the socket is open, up to `timeout_ms`.
    fn wait_connected(timeout_ms: u64) -> ()
        => jobs.wait_connected(Duration::from_millis(timeout_ms));
    /// Submits a workflow (API-format JSON) and returns once the server
    /// queued it.
    fn submit(workflow_json: String, options: JobOptions) -> HostSubmission
        => jobs.submit(parse_json(&workflow_json, "workflow")?, options);
    /// Submits and waits for the end with the options' deadlines (the
    /// client's where absent): the outcome of a prompt that succeeded, or
    /// `ExecutionFailed` / `Interrupted` / `Lost` (with the outcome),
    /// `Validation`, `Deadline`.
    fn run(workflow_json: String, options: JobOptions) -> HostOutcome
        => jobs.run(parse_json(&workflow_json, "workflow")?, options);
    /// Waits for a prompt of this client (attach) like [`Client::run`]: the
    /// stall and queue deadlines apply, and `options.timeout` bounds the
    /// wait (`Timeout`; the prompt goes on).
    fn wait(prompt_id: String, options: JobOptions) -> HostOutcome
        => jobs.wait(&prompt_id, &options);
    /// Tracks a prompt this client did not submit (another process,
    /// another client id, an earlier run) until its one terminal event,
    /// which then reaches listeners and `wait` like any other; a prompt of
    /// another client id is followed through the server's queue and
    /// history, and one the server does not know ends as `Lost`.
    fn attach(prompt_id: String) -> () => jobs.attach(&prompt_id);
    /// Waits like [`Client::wait`] but returns the terminal outcome however
    /// the prompt ended.
    fn outcome(prompt_id: String, options: JobOptions) -> HostOutcome
        => jobs.outcome(&prompt_id, &options);
    /// Interrupts the prompt only if it is the one running now (never
    /// another client's); true if an interrupt was sent.
    fn interrupt(prompt_id: String) -> bool => jobs.interrupt(&prompt_id);
    /// Removes a prompt from the server wherever it is: `Deleted` while
    /// it was pending, `Interrupted` while it ran (never another prompt),
    /// `NotActive` once it had ended or when the server does not know it.
    fn cancel(prompt_id: String) -> Cancelled => jobs.cancel(&prompt_id);
    /// The server's queue.
    fn queue() -> HostQueue => jobs.queue();
    /// Deletes pending prompts (running ones are untouched: see `interrupt`).
    fn delete(prompt_ids: Vec<String>) -> () => jobs.delete(&prompt_ids);
    /// Deletes every pending prompt.
    fn clear_queue() -> () => jobs.clear_queue();
    /// The record of a prompt this client has seen, in any phase.
    fn execution(prompt_id: String) -> Option<HostOutcome> => jobs.execution(&prompt_id);
    /// Finished executions kept in memory, oldest first.
    fn history() -> Vec<HostOutcome> => jobs.history();
    /// The server's history entry of a prompt.
    fn server_history(prompt_id: String) -> Option<Json> => jobs.server_history(&prompt_id);
    /// `GET /system_stats`.
    fn system_stats() -> Json => jobs.system_stats();
    /// Reads a file from `/view` (an output, an upload).
    fn view(file: HostFile) -> Vec<u8>
        => async move { Ok(jobs.view(&file).await?.to_vec()) };
    /// The files among a prompt's outputs.
    fn output_files(prompt_id: String) -> Vec<HostFile> => jobs.output_files(&prompt_id);
    /// Downloads every output file of a prompt into the folder `dir`
    /// (created if missing); returns the paths written.
    fn download_outputs(prompt_id: String, dir: String) -> Vec<String>
        => jobs.download_outputs(&prompt_id, dir.as_ref());
    /// Uploads a file to `/upload/image`; returns where the server stored
    /// it (use that name: the server may rename it).
    fn upload(filename: String, data: Vec<u8>, spec: UploadSpec) -> HostFile
        => jobs.upload(&filename, &data, spec);
}

/// The event kind of listener failure reports, for `subscribe`.
#[uniffi::export]
pub fn callback_error_kind() -> String {
    CALLBACK_ERROR.to_owned()
}
