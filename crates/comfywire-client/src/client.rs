//! [`Client`]: connect, subscribe, submit and run, and the HTTP job API.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use comfywire_proto::{
    ConnectionState, ConnectionStatus, EventKind, ExecutionRecord, HttpReply, QueueSnapshot,
    Session,
};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::{ClientConfig, Deadlines};
use crate::driver::{Confirmation, Control, Counters, Driver, Shared};
use crate::endpoints::{Endpoints, new_client_id, new_uuid};
use crate::error::{Error, ValidationError};
use crate::fanout::{Fanout, Filter, Subscription};
use crate::http::HttpApi;
use crate::job::{self, FileRef, RunResult};
use crate::journal::Journal;
use crate::tap::{self, FrameTap};

/// Options of one submission.
#[derive(Debug, Clone, Default)]
pub struct SubmitOptions {
    /// Use this prompt id (default: a fresh UUID, chosen before sending so
    /// no event can race the reply).
    pub prompt_id: Option<String>,
    /// `extra_data` for the server and nodes.
    pub extra_data: Option<Value>,
    /// Put it at the front of the queue.
    pub front: bool,
    /// Run only these output nodes.
    pub partial_execution_targets: Option<Vec<String>>,
}

/// The answer to a submission.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    /// The prompt id.
    pub prompt_id: String,
    /// Its queue number.
    pub number: Option<u64>,
    /// Outputs the server skipped because their branch failed validation
    /// (a 200 with `node_errors`); the rest runs.
    pub partial: Option<ValidationError>,
}

/// Options of an upload.
#[derive(Debug, Clone, Default)]
pub struct UploadOptions {
    /// Subfolder (created if missing).
    pub subfolder: Option<String>,
    /// `input` (default), `temp` or `output`.
    pub kind: Option<String>,
    /// Overwrite a file of the same name.
    pub overwrite: bool,
}

/// Counters of a client, for diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientStats {
    /// Frames received.
    pub frames: u64,
    /// Events produced.
    pub events: u64,
    /// Frames that did not parse.
    pub bad_frames: u64,
    /// Reconnects after the first connection.
    pub reconnects: u64,
    /// Progress updates coalesced by the throttle.
    pub coalesced_progress: u64,
    /// Previews coalesced by the rate limit.
    pub coalesced_previews: u64,
    /// Events coalesced in slow subscribers' queues.
    pub subscriber_coalesced: u64,
    /// Progress/preview events dropped from full subscriber queues.
    pub subscriber_dropped: u64,
    /// Time since the last frame, if any arrived.
    pub last_frame_age: Option<Duration>,
    /// Live subscriptions.
    pub subscribers: u64,
}

/// A ComfyUI client: one socket, one HTTP client, one driver task.
/// Cheap to clone; every clone drives the same connection.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Control>,
    http: HttpApi,
    config: ClientConfig,
    driver: Mutex<Option<JoinHandle<()>>>,
    /// The reading end of the raw-frame tap until someone takes it.
    tap: Mutex<Option<FrameTap>>,
    /// Prompts of the journal attached at start.
    resumed: Vec<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The base URL may carry `user:password@`; Debug never shows it.
        f.debug_struct("Client")
            .field(
                "url",
                &crate::endpoints::redact(self.inner.http.endpoints.base()),
            )
            .field("client_id", &self.client_id())
            .finish()
    }
}

impl Client {
    /// Starts a client: the driver connects in the background (see
    /// [`Client::wait_connected`]). Must be called inside a tokio runtime.
    pub async fn connect(config: ClientConfig) -> Result<Client, Error> {
        Client::start(config)
    }

    /// Like [`Client::connect`], for callers already inside a runtime
    /// context but not in async code.
    pub fn start(mut config: ClientConfig) -> Result<Client, Error> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Config("comfywire-client needs a tokio runtime".into()))?;
        config.validate()?;
        let endpoints = Endpoints::new(&config.url, config.query_token.clone())?;
        let http = HttpApi::new(&config, endpoints)?;
        crate::http::headers(&config)?;
        let explicit = config
            .client_id
            .clone()
            .or_else(|| config.session.client_id.clone());
        let (journal, client_id, resumed) = match &config.journal {
            Some(path) => {
                let (journal, client_id, resumed) = Journal::open(path, explicit, new_client_id)?;
                (Some(journal), client_id, resumed)
            }
            None => (None, explicit.unwrap_or_else(new_client_id), Vec::new()),
        };
        config.client_id = Some(client_id.clone());
        config.session.client_id = Some(client_id.clone());
        let session = Session::new(config.session.clone());
        let (state, _) = watch::channel(session.status());
        let shared = Arc::new(Shared {
            fanout: Arc::new(Fanout::new(config.subscriber_max_bytes)),
            state,
            counters: Counters::default(),
            client_id: Mutex::new(Some(client_id)),
            journal,
        });
        let (tx, rx) = mpsc::unbounded_channel();
        let (tap_tx, tap_rx) = match config.frame_tap_capacity {
            0 => (None, None),
            capacity => {
                let (tx, rx) = tap::channel(capacity);
                (Some(tx), Some(rx))
            }
        };
        let driver = Driver::new(
            session,
            shared.clone(),
            rx,
            tx.downgrade(),
            http.clone(),
            config.clone(),
            tap_tx,
        );
        // A panic in the driver ends every subscription and wait with an
        // error instead of leaving them waiting for a task that is gone.
        let handle = runtime.spawn(crate::driver::guarded(shared.clone(), driver.run()));
        for prompt_id in &resumed {
            let (ack, _) = oneshot::channel();
            let _ = tx.send(Control::Attach {
                prompt_id: prompt_id.clone(),
                ack,
            });
        }
        Ok(Client {
            inner: Arc::new(Inner {
                shared,
                tx,
                http,
                config,
                driver: Mutex::new(Some(handle)),
                tap: Mutex::new(tap_rx),
                resumed,
            }),
        })
    }

    fn control(&self, control: Control) -> Result<(), Error> {
        self.inner.tx.send(control).map_err(|_| Error::Closed)
    }

    /// The client id (the socket's `clientId` and every prompt's `client_id`).
    pub fn client_id(&self) -> String {
        self.inner
            .shared
            .client_id
            .lock()
            .clone()
            .unwrap_or_default()
    }

    /// The prompts of the journal ([`ClientConfig::journal`]) that were
    /// unfinished when this client started, in submission order: each is
    /// attached, so [`Client::wait`] on it gives its one terminal outcome
    /// (subscribers hear it too, unless it ended before they subscribed;
    /// the wait finds it in the history either way). Empty without a
    /// journal.
    pub fn resumed(&self) -> Vec<String> {
        self.inner.resumed.clone()
    }

    /// Writes `prompt_id` to the journal, if there is one, and syncs it,
    /// off the runtime's workers.
    async fn journal_submit(&self, prompt_id: &str) -> Result<(), Error> {
        if self.inner.shared.journal.is_none() {
            return Ok(());
        }
        let shared = self.inner.shared.clone();
        let id = prompt_id.to_owned();
        tokio::task::spawn_blocking(move || match &shared.journal {
            Some(journal) => journal.submit(&id),
            None => Ok(()),
        })
        .await
        .map_err(|_| Error::Closed)?
    }

    /// Marks `prompt_id` done in the journal, if there is one: the server
    /// certainly does not have it.
    fn journal_done(&self, prompt_id: &str) {
        if let Some(journal) = &self.inner.shared.journal {
            journal.done(prompt_id);
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        self.inner.http.endpoints.base()
    }

    /// The connection state and last error now.
    pub fn status(&self) -> ConnectionStatus {
        self.inner.shared.state.borrow().clone()
    }

    /// A watch of the connection state (changes are never missed: the
    /// latest value is always there).
    pub fn watch_status(&self) -> watch::Receiver<ConnectionStatus> {
        self.inner.shared.state.subscribe()
    }

    /// Waits until the socket is open, up to `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) -> Result<(), Error> {
        let mut rx = self.watch_status();
        let result = tokio::time::timeout(
            timeout,
            rx.wait_for(|s| s.state == ConnectionState::Connected),
        )
        .await;
        match result {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(Error::Request(match &self.status().last_error {
                Some(e) => format!("not connected after {timeout:?}: {e}"),
                None => format!("not connected after {timeout:?}"),
            })),
        }
    }

    /// Every event from now on.
    pub fn events(&self) -> Subscription {
        self.subscribe(Filter::all())
    }

    /// Events matching `filter`; unsubscribes when dropped.
    pub fn subscribe(&self, filter: Filter) -> Subscription {
        self.inner
            .shared
            .fanout
            .subscribe(filter, self.inner.config.subscriber_capacity)
    }

    /// Events of these kinds.
    pub fn on(&self, kinds: &[EventKind]) -> Subscription {
        self.subscribe(Filter::kinds(kinds))
    }

    /// The raw-frame tap, handed out once: every frame the driver reads or
    /// sends, byte for byte, with socket openings and closings, from the
    /// first connection on (it exists from [`Client::start`]). `None`
    /// unless [`ClientConfig::frame_tap_capacity`] is set, and on every
    /// later call. Until taken, and whenever it is not read, its queue
    /// holds at most that capacity and counts what it drops; dropping the
    /// [`FrameTap`] stops the copying.
    pub fn frame_tap(&self) -> Option<FrameTap> {
        self.inner.tap.lock().take()
    }

    /// Counters.
    pub fn stats(&self) -> ClientStats {
        let c = &self.inner.shared.counters;
        let fanout = &self.inner.shared.fanout;
        ClientStats {
            frames: c.frames.load(Ordering::Relaxed),
            events: c.events.load(Ordering::Relaxed),
            bad_frames: c.bad_frames.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
            coalesced_progress: c.coalesced_progress.load(Ordering::Relaxed),
            coalesced_previews: c.coalesced_previews.load(Ordering::Relaxed),
            subscriber_coalesced: fanout.stats.coalesced.load(Ordering::Relaxed),
            subscriber_dropped: fanout.stats.dropped.load(Ordering::Relaxed),
            last_frame_age: c.last_frame.lock().map(|at| at.elapsed()),
            subscribers: fanout.len() as u64,
        }
    }

    /// Skips the backoff wait and reconnects now.
    pub fn retry_now(&self) -> Result<(), Error> {
        self.control(Control::RetryNow)
    }

    /// Closes the socket and stops reconnecting (app in background).
    pub fn pause(&self) -> Result<(), Error> {
        self.control(Control::Pause)
    }

    /// Reconnects at once after [`Client::pause`].
    pub fn resume(&self) -> Result<(), Error> {
        self.control(Control::Resume)
    }

    /// The network changed: check the socket now, or reconnect now.
    pub fn network_changed(&self) -> Result<(), Error> {
        self.control(Control::NetworkChanged)
    }

    /// Closes the socket (with a close frame), stops every task and ends
    /// every subscription. Idempotent.
    pub async fn close(&self) {
        let (done, wait) = oneshot::channel();
        if self.control(Control::Close { done }).is_ok() {
            let _ = wait.await;
        }
        let handle = self.inner.driver.lock().take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
        if let Some(journal) = &self.inner.shared.journal {
            journal.close();
        }
    }

    /// The record of a prompt this client has seen (in flight or finished).
    pub async fn execution(&self, prompt_id: &str) -> Result<Option<ExecutionRecord>, Error> {
        let (reply, rx) = oneshot::channel();
        self.control(Control::Query {
            prompt_id: prompt_id.to_owned(),
            reply,
        })?;
        rx.await.map_err(|_| Error::Closed)
    }

    /// The ring of the last finished executions, oldest first.
    pub async fn history(&self) -> Result<Vec<Arc<ExecutionRecord>>, Error> {
        let (reply, rx) = oneshot::channel();
        self.control(Control::History { reply })?;
        rx.await.map_err(|_| Error::Closed)
    }

    // ---- jobs ----

    /// Submits an API-format workflow.
    pub async fn submit(&self, workflow: &Value) -> Result<Submission, Error> {
        self.submit_with(workflow, SubmitOptions::default()).await
    }

    /// Submits with options. The prompt id is registered with the tracker
    /// before the request leaves, so no event can be missed.
    ///
    /// Exactly once, always answered: `Ok` when the server has the prompt —
    /// also when its answer was lost, cut or late, which makes the client
    /// ask the server (its queue and `/history/{id}`) for a few seconds —
    /// and an error only when the server certainly does not have it. A
    /// submission under an explicit `prompt_id` the server already has is
    /// answered without sending it again, so a retry never runs a workflow
    /// twice. A server that assigns its own id is followed: the answer
    /// carries that id, and waits on either id resolve. Dropping this
    /// future at any point leaves nothing behind, or a tracked prompt that
    /// reaches its one terminal event.
    pub async fn submit_with(
        &self,
        workflow: &Value,
        options: SubmitOptions,
    ) -> Result<Submission, Error> {
        let graph = workflow.as_object().ok_or_else(|| {
            Error::Config("a workflow is a JSON object of nodes (API format)".into())
        })?;
        let prompt_id = match &options.prompt_id {
            Some(id) => {
                if let Some(known) = self.already_submitted(id).await? {
                    return Ok(known);
                }
                id.clone()
            }
            None => new_uuid(),
        };
        // In the journal before anything can reach the server.
        self.journal_submit(&prompt_id).await?;
        // From here until the answer is read, dropping the future hands the
        // prompt to the session to confirm.
        let mut pending = Unanswered {
            client: self,
            prompt_id: Some(prompt_id.clone()),
        };
        let (ack, acked) = oneshot::channel();
        self.control(Control::Track {
            prompt_id: prompt_id.clone(),
            nodes: Some(graph.len()),
            ack,
        })?;
        acked.await.map_err(|_| Error::Closed)?;
        let mut body = json!({
            "prompt": workflow,
            "client_id": self.client_id(),
            "prompt_id": prompt_id,
        });
        if let Some(extra) = options.extra_data {
            body["extra_data"] = extra;
        }
        if options.front {
            body["front"] = Value::Bool(true);
        }
        if let Some(targets) = options.partial_execution_targets {
            body["partial_execution_targets"] = json!(targets);
        }
        let posted = classify(self.inner.http.post_json("prompt", &body).await);
        pending.prompt_id = None;
        match posted {
            Posted::Accepted(reply) => {
                let number = reply
                    .get("number")
                    .and_then(Value::as_f64)
                    .map(|n| n as u64);
                let node_errors = reply.get("node_errors").cloned().unwrap_or(Value::Null);
                let partial = node_errors
                    .as_object()
                    .is_some_and(|m| !m.is_empty())
                    .then(|| ValidationError::from_body(&reply));
                let chosen = reply
                    .get("prompt_id")
                    .and_then(Value::as_str)
                    .unwrap_or(&prompt_id)
                    .to_owned();
                if chosen != prompt_id {
                    self.journal_submit(&chosen).await?;
                    self.journal_done(&prompt_id);
                    self.control(Control::Adopt {
                        requested: prompt_id.clone(),
                        chosen: chosen.clone(),
                    })?;
                }
                self.control(Control::Http(Box::new(HttpReply::PromptAccepted {
                    prompt_id: chosen.clone(),
                    number,
                    node_errors,
                })))?;
                Ok(Submission {
                    prompt_id: chosen,
                    number,
                    partial,
                })
            }
            Posted::Refused(error) => {
                let _ = self.control(Control::Http(Box::new(HttpReply::PromptRejected {
                    prompt_id: prompt_id.clone(),
                })));
                self.journal_done(&prompt_id);
                Err(error)
            }
            Posted::Unknown(error) => {
                tracing::debug!(target: "comfywire::submit", %prompt_id, %error, "answer unknown; asking the server");
                self.control(Control::Uncertain {
                    prompt_id: prompt_id.clone(),
                })?;
                match self.confirm(&prompt_id).await? {
                    Confirmation::Accepted { prompt_id, number } => Ok(Submission {
                        prompt_id,
                        number,
                        partial: None,
                    }),
                    Confirmation::Absent => {
                        self.journal_done(&prompt_id);
                        Err(error)
                    }
                }
            }
        }
    }

    /// The submission of `prompt_id` if this client or the server already
    /// has it (then it is tracked to its end), so it is not sent twice.
    async fn already_submitted(&self, prompt_id: &str) -> Result<Option<Submission>, Error> {
        let known = |r: ExecutionRecord| Submission {
            prompt_id: r.prompt_id,
            number: r.number,
            partial: None,
        };
        if let Some(record) = self.execution(prompt_id).await? {
            return Ok(Some(known(record)));
        }
        // A server that cannot be asked right now is no reason to refuse
        // the submission: the POST itself will say.
        let in_history = matches!(self.server_history(prompt_id).await, Ok(Some(_)));
        let queued = in_history
            || self
                .queue()
                .await
                .is_ok_and(|q| q.is_running(prompt_id) || q.is_pending(prompt_id));
        if !queued {
            return Ok(None);
        }
        self.attach(prompt_id).await?;
        Ok(self.execution(prompt_id).await?.map(known))
    }

    /// Waits until the session knows whether the server has a prompt whose
    /// submission was uncertain.
    async fn confirm(&self, prompt_id: &str) -> Result<Confirmation, Error> {
        let (reply, answer) = oneshot::channel();
        self.control(Control::Confirm {
            prompt_id: prompt_id.to_owned(),
            reply,
        })?;
        answer.await.map_err(|_| Error::Closed)
    }

    /// Tracks a prompt this client did not submit (another process, an
    /// earlier run of this app) until its one terminal event, which then
    /// reaches subscribers and [`Client::wait`] like any other. A prompt
    /// submitted under another client id sends its frames elsewhere: it is
    /// followed through `/queue` and `/history/{id}`. One the server does
    /// not know ends as `Lost`. Attaching a prompt already tracked does
    /// nothing. With a journal, an attached prompt is in it like a
    /// submitted one (attached again after a restart until it ends).
    pub async fn attach(&self, prompt_id: &str) -> Result<(), Error> {
        if prompt_id.is_empty() {
            return Err(Error::Config("an empty prompt id".into()));
        }
        if self.inner.shared.journal.is_some() {
            if self
                .execution(prompt_id)
                .await?
                .is_some_and(|r| r.is_terminal())
            {
                return Ok(());
            }
            self.journal_submit(prompt_id).await?;
        }
        let (ack, acked) = oneshot::channel();
        self.control(Control::Attach {
            prompt_id: prompt_id.to_owned(),
            ack,
        })?;
        acked.await.map_err(|_| Error::Closed)
    }

    /// Waits for the one terminal outcome of a prompt and returns its
    /// record whatever the outcome; `Err` only for deadlines or a closed
    /// client.
    pub async fn wait_record(
        &self,
        prompt_id: &str,
        deadlines: Deadlines,
    ) -> Result<Arc<ExecutionRecord>, Error> {
        job::wait_record(self, prompt_id, deadlines, Instant::now()).await
    }

    /// Waits for a prompt: `Ok` when it succeeded, the matching error
    /// otherwise.
    pub async fn wait(&self, prompt_id: &str, deadlines: Deadlines) -> Result<RunResult, Error> {
        let record = self.wait_record(prompt_id, deadlines).await?;
        job::into_result(record, None)
    }

    /// Submits and waits with the configured deadlines.
    pub async fn run(&self, workflow: &Value) -> Result<RunResult, Error> {
        self.run_with(
            workflow,
            SubmitOptions::default(),
            self.inner.config.deadlines,
        )
        .await
    }

    /// Submits and waits.
    pub async fn run_with(
        &self,
        workflow: &Value,
        options: SubmitOptions,
        deadlines: Deadlines,
    ) -> Result<RunResult, Error> {
        let started = Instant::now();
        let submission = self.submit_with(workflow, options).await?;
        let record = job::wait_record(self, &submission.prompt_id, deadlines, started).await?;
        job::into_result(record, submission.partial)
    }

    // ---- queue and history over HTTP ----

    /// `GET /queue`, pending sorted in run order.
    pub async fn queue(&self) -> Result<QueueSnapshot, Error> {
        let body = self.inner.http.get_json("queue").await?;
        QueueSnapshot::from_json(&body).map_err(Error::Protocol)
    }

    /// Deletes pending prompts (running ones are untouched: see
    /// [`Client::interrupt`]).
    pub async fn delete(&self, prompt_ids: &[String]) -> Result<(), Error> {
        self.inner
            .http
            .post_json("queue", &json!({ "delete": prompt_ids }))
            .await?
            .ok()?;
        Ok(())
    }

    /// Deletes every pending prompt.
    pub async fn clear_queue(&self) -> Result<(), Error> {
        self.inner
            .http
            .post_json("queue", &json!({ "clear": true }))
            .await?
            .ok()?;
        Ok(())
    }

    /// Interrupts `prompt_id` only if it is the one running now; returns
    /// whether an interrupt was sent. Another client's prompt is never hit.
    pub async fn interrupt(&self, prompt_id: &str) -> Result<bool, Error> {
        if !self.queue().await?.is_running(prompt_id) {
            return Ok(false);
        }
        self.inner
            .http
            .post_json("interrupt", &json!({ "prompt_id": prompt_id }))
            .await?
            .ok()?;
        Ok(true)
    }

    /// `GET /history/{id}`: the server's entry, `None` when it has none.
    pub async fn server_history(&self, prompt_id: &str) -> Result<Option<Value>, Error> {
        let body = self
            .inner
            .http
            .get_json(&format!("history/{prompt_id}"))
            .await?;
        Ok(body.get(prompt_id).cloned())
    }

    /// `GET /history?max_items=N`: the server's last N entries.
    pub async fn server_history_list(&self, max_items: usize) -> Result<Value, Error> {
        self.inner
            .http
            .get_json(&format!("history?max_items={max_items}"))
            .await
    }

    /// The node classes the server has (`GET /object_info`, read for its
    /// keys only; bounded by `max_history_mib`, as a server with many
    /// custom nodes answers tens of MB).
    pub async fn node_classes(&self) -> Result<std::collections::BTreeSet<String>, Error> {
        let answer = self.inner.http.get("object_info").await?.ok()?;
        crate::lean::object_keys(&answer.body).map_err(Error::Protocol)
    }

    /// `GET /system_stats`.
    pub async fn system_stats(&self) -> Result<Value, Error> {
        self.inner.http.get_json("system_stats").await
    }

    /// Downloads an output, input or temp file from `/view`.
    pub async fn view(&self, file: &FileRef) -> Result<Bytes, Error> {
        let path = view_path(file);
        Ok(self.inner.http.get(&path).await?.ok()?.body)
    }

    /// Streams an output, input or temp file from `/view` into the file
    /// `dest` without holding it in memory; returns the bytes written.
    /// The file appears complete or not at all (it is written as
    /// `dest.part` and renamed). Bounded by [`crate::BodyLimits::download`];
    /// each chunk must arrive within the request timeout.
    pub async fn download(&self, file: &FileRef, dest: &Path) -> Result<u64, Error> {
        let path = view_path(file);
        self.inner.http.download(&path, dest).await
    }

    /// Downloads every file output of a run into `dir`; returns the paths.
    pub async fn download_outputs(
        &self,
        record: &ExecutionRecord,
        dir: &Path,
    ) -> Result<Vec<PathBuf>, Error> {
        tokio::fs::create_dir_all(dir).await?;
        let mut written = Vec::new();
        for file in job::files(record) {
            let bytes = self.view(&file).await?;
            let name = Path::new(&file.filename)
                .file_name()
                .map(|n| n.to_os_string())
                .ok_or_else(|| {
                    Error::Protocol(format!("bad output file name {:?}", file.filename))
                })?;
            let path = dir.join(name);
            tokio::fs::write(&path, &bytes).await?;
            written.push(path);
        }
        Ok(written)
    }

    /// Uploads a file to `/upload/image`; returns the name the server
    /// stored it under (use that one).
    pub async fn upload_image(
        &self,
        filename: &str,
        data: &[u8],
        options: UploadOptions,
    ) -> Result<FileRef, Error> {
        let kind = options.kind.unwrap_or_else(|| "input".into());
        let subfolder = options.subfolder.unwrap_or_default();
        let content_type = mime_guess::from_path(filename).first_or_octet_stream();
        let image = reqwest::multipart::Part::bytes(data.to_vec())
            .file_name(filename.replace(['"', '\r', '\n'], "_"))
            .mime_str(content_type.essence_str())
            .map_err(|e| Error::Config(format!("upload of {filename}: {e}")))?;
        let mut form = reqwest::multipart::Form::new()
            .part("image", image)
            .text("type", kind.clone())
            .text("subfolder", subfolder.clone());
        if options.overwrite {
            form = form.text("overwrite", "true");
        }
        let body = self
            .inner
            .http
            .post_multipart("upload/image", form)
            .await?
            .ok()?
            .json()?;
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        Ok(FileRef {
            filename: text("name")
                .ok_or_else(|| Error::Protocol(format!("upload answer without `name`: {body}")))?,
            subfolder: text("subfolder").unwrap_or(subfolder),
            kind: text("type").unwrap_or(kind),
        })
    }
}

/// The `/view` path and query of a file.
fn view_path(file: &FileRef) -> String {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("filename", &file.filename)
        .append_pair("subfolder", &file.subfolder)
        .append_pair("type", &file.kind)
        .finish();
    format!("view?{query}")
}

/// What the answer to a `POST /prompt` says about the prompt.
enum Posted {
    /// Queued; the server's JSON answer.
    Accepted(Value),
    /// Certainly not queued: refused, or never sent.
    Refused(Error),
    /// Unknown: the answer was lost, cut, late, or from a gateway.
    Unknown(Error),
}

fn classify(answer: Result<crate::http::Answer, Error>) -> Posted {
    let answer = match answer {
        Ok(answer) => answer,
        Err(e @ Error::Connect(_)) => return Posted::Refused(e),
        Err(e) => return Posted::Unknown(e),
    };
    match (answer.status, answer.json()) {
        (200, Ok(reply)) if reply.is_object() => Posted::Accepted(reply),
        // A 200 whose body was cut: the server did queue something.
        (200, _) => Posted::Unknown(Error::Protocol(format!(
            "the answer to POST /prompt was cut: {}",
            crate::http::shorten(&answer.body)
        ))),
        (400, Ok(body)) if body.get("error").is_some() => Posted::Refused(Error::Validation(
            Box::new(ValidationError::from_body(&body)),
        )),
        // A gateway's 5xx may come after the server queued the prompt.
        (status, _) if status >= 500 => Posted::Unknown(Error::Http {
            status,
            body: crate::http::shorten(&answer.body),
        }),
        (status, _) => Posted::Refused(Error::Http {
            status,
            body: crate::http::shorten(&answer.body),
        }),
    }
}

/// A submission whose answer has not been read yet: dropped before that
/// (a cancelled or timed-out submit), it asks the session to find out
/// whether the server has the prompt.
struct Unanswered<'a> {
    client: &'a Client,
    prompt_id: Option<String>,
}

impl Drop for Unanswered<'_> {
    fn drop(&mut self) {
        if let Some(prompt_id) = self.prompt_id.take() {
            let _ = self.client.control(Control::Uncertain { prompt_id });
        }
    }
}
