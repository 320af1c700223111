//! [`HostClient`]: one client as every binding holds it — the job API
//! ([`Jobs`]), callbacks run on the client's dispatcher thread, and the
//! pull queue for hosts with their own loop.

use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use comfywire_client::json::{NodeNames, event_json};
use comfywire_client::{Client, ClientConfig, End, Event, Filter, Settings, Subscription};
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::dispatch::{
    Backlog, CallbackHandle, DispatchContext, Dispatcher, EventCallback, Interest, PlainContext,
    Registrations, ended,
};
use crate::error::{ErrorCode, HostError};
use crate::forward::forward_events;
use crate::jobs::Jobs;
use crate::model::{CALLBACK_ERROR, HostEvent, HostEventKind, HostStats, HostStatus};
use crate::runtime::{block_on, on_runtime_thread, runtime};
use crate::stream::{EventStream, ReportForward};

/// Callback failures kept for the pull queue before the newest are dropped.
const ERROR_BACKLOG: usize = 256;

/// What the pull queue hands out: an event of the client, or the report of
/// a callback that failed.
#[derive(Debug, Clone)]
pub enum Delivered {
    /// An event of the client.
    Client(Event),
    /// A callback failed. Boxed: reports are rare, and a client event is
    /// less than half a flat record's size, so every queued event would
    /// otherwise pay for the larger variant.
    Report(Box<HostEvent>),
}

impl Delivered {
    /// Its kind.
    pub fn kind(&self) -> HostEventKind {
        match self {
            Delivered::Client(e) => HostEventKind::Client(e.kind()),
            Delivered::Report(r) => r.kind,
        }
    }

    /// The flat record.
    pub fn flat(&self) -> HostEvent {
        match self {
            Delivered::Client(e) => HostEvent::from_event(e),
            Delivered::Report(r) => (**r).clone(),
        }
    }

    /// The JSON object every front end prints for it (the CLI's `--json`
    /// schema: `{"event": kind, "prompt_id": ..., ...}`).
    pub fn to_json(&self) -> Value {
        match self {
            Delivered::Client(e) => event_json(e, &NodeNames::default(), None),
            Delivered::Report(r) => {
                let mut object = json!({
                    "event": r.kind.name(),
                    "prompt_id": r.prompt_id,
                    "error": r.text,
                });
                if let (Some(Value::Object(detail)), Some(out)) = (&r.data, object.as_object_mut())
                {
                    out.extend(detail.clone());
                }
                object
            }
        }
    }
}

/// One client as every binding sees it. Closing is idempotent and also
/// done on drop; see [`HostClient::close`] for closing from a callback.
pub struct HostClient {
    jobs: Jobs,
    registrations: Arc<Registrations>,
    dispatcher: Mutex<Dispatcher>,
    pull: Mutex<Option<Subscription>>,
    errors: Mutex<mpsc::Receiver<HostEvent>>,
    forward: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Set by the first close: ends once the client itself is closed.
    closing: Mutex<Option<tokio::sync::watch::Receiver<()>>>,
}

impl std::fmt::Debug for HostClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostClient")
            .field("client", self.jobs.client())
            .finish()
    }
}

impl HostClient {
    /// Starts a client from settings (the settings file's format; `url` is
    /// enough). It connects in the background.
    pub fn new(settings: &Settings) -> Result<HostClient, HostError> {
        HostClient::with_context(settings, Arc::new(PlainContext))
    }

    /// Starts a client whose dispatcher thread runs inside `context`.
    pub fn with_context(
        settings: &Settings,
        context: Arc<dyn DispatchContext>,
    ) -> Result<HostClient, HostError> {
        HostClient::from_config(settings.to_config()?, context)
    }

    /// Starts a client from a full client configuration (for settings the
    /// settings file does not carry).
    pub fn from_config(
        config: ClientConfig,
        context: Arc<dyn DispatchContext>,
    ) -> Result<HostClient, HostError> {
        let rt = runtime()?;
        let client = {
            let _guard = rt.enter();
            Client::start(config)?
        };
        let registrations = Registrations::new();
        let (errors_tx, errors_rx) = mpsc::sync_channel(ERROR_BACKLOG);
        let dispatcher =
            Dispatcher::start(registrations.clone(), errors_tx, context).map_err(|e| {
                HostError::new(
                    ErrorCode::Config,
                    format!("cannot start the dispatcher thread: {e}"),
                )
            })?;
        // Subscribed with the union of the registrations' filters: nothing
        // until the first callback, so no queue holds events for nobody.
        let events = client.subscribe(Filter::none());
        registrations.forward_to(events.filter_handle());
        let backlog: Arc<Backlog> = dispatcher.backlog.clone();
        let forward = rt.spawn(forward_events(
            events,
            registrations.clone(),
            dispatcher.tx.clone(),
            backlog,
        ));
        Ok(HostClient {
            jobs: Jobs::new(client),
            registrations,
            dispatcher: Mutex::new(dispatcher),
            pull: Mutex::new(None),
            errors: Mutex::new(errors_rx),
            forward: Mutex::new(Some(forward)),
            closing: Mutex::new(None),
        })
    }

    /// Starts a client from settings JSON (C's `comfywire_client_new_json`,
    /// uniffi's `from_settings_json`). The JSON is the caller's explicit
    /// argument: it beats the `COMFYWIRE_*` environment, which fills the
    /// fields it leaves out (no settings file is read here); see
    /// [`Settings::layered`], which also keeps the environment's
    /// credentials away from a server the JSON names instead.
    pub fn from_settings_json(json: &str) -> Result<HostClient, HostError> {
        HostClient::new(&HostClient::layered_settings(json, None)?)
    }

    /// The settings of a client whose caller gave `explicit_json` (its
    /// arguments, in the settings file's format) and optionally a settings
    /// file: explicit > `COMFYWIRE_*` environment > file > defaults, the
    /// one precedence rule of every front end (`Settings::layered`).
    /// Without `file`, the CLI's settings file is read when it exists
    /// (`Settings::default_path`: `$COMFYWIRE_CONFIG`, else
    /// `$XDG_CONFIG_HOME/comfywire/config.json`), so the libraries and the
    /// CLI share it.
    pub fn layered_settings(
        explicit_json: &str,
        file: Option<&std::path::Path>,
    ) -> Result<Settings, HostError> {
        let explicit = Settings::from_json(explicit_json)
            .map_err(|e| HostError::new(ErrorCode::InvalidArgument, e.to_string()))?;
        let file = match file {
            Some(path) => Some(Settings::load(path)?),
            None => {
                let path = Settings::default_path();
                if path.is_file() {
                    Some(Settings::load(&path)?)
                } else {
                    None
                }
            }
        };
        Ok(Settings::layered(&explicit, file))
    }

    /// The job API (cheap to clone into a task).
    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    /// The client id.
    pub fn client_id(&self) -> String {
        self.jobs.client_id()
    }

    /// The journal's prompts re-attached at start (see
    /// [`Jobs::resumed`]).
    pub fn resumed(&self) -> Vec<String> {
        self.jobs.resumed()
    }

    /// The connection state now (`closed` once closed).
    pub fn status(&self) -> HostStatus {
        self.jobs.status()
    }

    /// Registers a callback for these event kinds (every kind when `None`
    /// or empty; include `callback_error` to hear of failing callbacks),
    /// optionally for one prompt. Unregisters when the handle is dropped.
    pub fn subscribe(
        &self,
        kinds: Option<&[String]>,
        prompt_id: Option<String>,
        callback: Arc<dyn EventCallback>,
    ) -> Result<CallbackHandle, HostError> {
        self.check_open()?;
        let interest = Interest::parse(kinds, prompt_id)?;
        Ok(self.registrations.add(interest, callback))
    }

    /// Unregisters by id; true if it was registered. No call of the
    /// callback starts after this returns: from another thread it waits for
    /// a call in progress; from this client's dispatcher thread (a callback
    /// removing itself or another one) it returns at once.
    pub fn unsubscribe(&self, id: u64) -> bool {
        self.registrations.remove(id)
    }

    /// A stream of the client's events of these kinds from now on (a
    /// bounded queue: progress and previews coalesce when not read fast
    /// enough). For bindings with an iterator of their own.
    pub fn events(
        &self,
        kinds: Option<&[String]>,
        prompt_id: Option<String>,
    ) -> Result<Subscription, HostError> {
        self.check_open()?;
        let interest = Interest::parse(kinds, prompt_id)?;
        Ok(self.jobs.client().subscribe(interest.filter().clone()))
    }

    /// A pull stream of every event from now on, with the reports of
    /// failing callbacks merged in (for bindings with an iterator of their
    /// own; `next_event` is the one-at-a-time pull of C and uniffi).
    pub fn stream(&self) -> Result<EventStream, HostError> {
        let (forward, reports) = ReportForward::new();
        let reports_only = [CALLBACK_ERROR.to_owned()];
        let forward = self.subscribe(Some(&reports_only), None, Arc::new(forward))?;
        Ok(EventStream::new(self.events(None, None)?, reports, forward))
    }

    fn check_open(&self) -> Result<(), HostError> {
        if self.is_closed() {
            return Err(HostError::new(ErrorCode::Closed, "client is closed"));
        }
        Ok(())
    }

    /// The next event for hosts with their own loop, waiting up to
    /// `timeout` (`None` when none came). Events are queued from the first
    /// call on (bounded: progress and previews coalesce when not pulled
    /// fast enough); callback failure reports come first.
    pub fn next_event(&self, timeout: Duration) -> Result<Option<Delivered>, HostError> {
        if let Ok(report) = self.errors.lock().try_recv() {
            return Ok(Some(Delivered::Report(Box::new(report))));
        }
        self.check_open()?;
        let mut pull = self.pull.lock();
        let subscription = match &mut *pull {
            Some(s) => s,
            None => pull.insert(self.jobs.client().events()),
        };
        let next = block_on(async {
            Ok(match subscription.recv_timeout(timeout).await {
                Ok(Some(event)) => Ok(Some(Delivered::Client(event))),
                Ok(None) => Err(subscription.end()),
                Err(()) => Ok(None),
            })
        })?;
        match next {
            Ok(next) => Ok(next),
            Err(Some(End::Overflow { held, limit })) => {
                // Unread past its bound: this stream stopped. The next pull
                // starts a fresh one, so the reader can go on.
                *pull = None;
                Err(HostError {
                    code: ErrorCode::Overflow,
                    message: format!(
                        "events were not read and their backlog passed {limit} bytes; delivery stopped (the next pull goes on from now)"
                    ),
                    detail: Some(serde_json::json!({"held": held, "limit": limit})),
                    outcome: None,
                })
            }
            Err(_) => Err(HostError::new(ErrorCode::Closed, "client is closed")),
        }
    }

    /// Counters.
    pub fn stats(&self) -> HostStats {
        let s = self.jobs.client().stats();
        HostStats {
            frames: s.frames,
            events: s.events,
            bad_frames: s.bad_frames,
            reconnects: s.reconnects,
            coalesced: s.coalesced_progress + s.coalesced_previews + s.subscriber_coalesced,
            dropped: s.subscriber_dropped,
            callback_failures: self.registrations.failures.load(Ordering::Relaxed),
            callbacks: self.registrations.len() as u64,
        }
    }

    /// True once closing began.
    pub fn is_closed(&self) -> bool {
        self.jobs.is_closed()
    }

    /// Closes the client: every call fails with `Closed` and no callback
    /// starts from now on; the callbacks are released (each binding's free
    /// function runs once; the one running now, after it returns); the
    /// socket is closed and the dispatcher thread stopped. Idempotent; also
    /// done on drop.
    ///
    /// On any thread but this client's dispatcher and the runtime's, it
    /// returns when all of that is done (a callback running now is waited
    /// for). Inside one of this client's callbacks (close, or the last
    /// reference dropped, from a callback) it returns at once, and the close
    /// completes after that callback returns: waiting there would wait for
    /// itself. On a runtime thread it returns at once too, as it must not
    /// block there. A later `close` from another thread waits for the
    /// whole close either way.
    pub fn close(&self) {
        let done = self.close_async();
        if self.registrations.on_dispatcher() || on_runtime_thread() {
            return;
        }
        if let Ok(rt) = runtime() {
            rt.block_on(done);
        }
        self.dispatcher.lock().join();
        // After the client's close, which ends a pull waiting with this lock.
        self.pull.lock().take();
    }

    /// Starts closing (see [`HostClient::close`]) and returns what ends
    /// when the close is complete, for front ends that await instead of
    /// blocking. Called on the dispatcher thread, what it returns is ready
    /// at once: the rest can only happen after the running callback
    /// returns.
    pub fn close_async(&self) -> impl Future<Output = ()> + Send + 'static {
        let (client_closed, callbacks) = self.begin_close();
        // Dropped here, outside every lock: a C free function, a foreign
        // release.
        drop(callbacks);
        let dispatcher_exited =
            (!self.registrations.on_dispatcher()).then(|| self.dispatcher.lock().exited());
        async move {
            if let Some(exited) = dispatcher_exited {
                ended(client_closed).await;
                ended(exited).await;
            }
        }
    }

    /// The first call stops everything that could start a callback and
    /// starts the client's close on the runtime; every call answers what
    /// ends when the client is closed. Also answers the callbacks taken
    /// out, for the caller to drop.
    fn begin_close(
        &self,
    ) -> (
        tokio::sync::watch::Receiver<()>,
        Vec<Arc<dyn EventCallback>>,
    ) {
        let mut closing = self.closing.lock();
        if let Some(closed) = &*closing {
            return (closed.clone(), Vec::new());
        }
        self.jobs.mark_closed();
        let callbacks = self.registrations.take_all();
        self.dispatcher.lock().request_stop();
        // The forwarder may be waiting for room in the dispatcher's backlog,
        // which only the dispatcher frees: it is stopped, not awaited.
        let forward = self.forward.lock().take();
        if let Some(forward) = &forward {
            forward.abort();
        }
        let (done, closed) = tokio::sync::watch::channel(());
        let client = self.jobs.client().clone();
        let jobs = self.jobs.clone();
        let work = async move {
            // A run dropped just before the close still removes its prompt.
            jobs.settle_removals(client.config().request_timeout).await;
            client.close().await;
            if let Some(forward) = forward {
                let _ = forward.await;
            }
            drop(done);
        };
        match runtime() {
            Ok(rt) => drop(rt.spawn(work)),
            // Unreachable in practice (the client was started on it); the
            // close then ends with nothing left to wait for.
            Err(_) => drop(work),
        }
        *closing = Some(closed.clone());
        (closed, callbacks)
    }
}

impl Drop for HostClient {
    fn drop(&mut self) {
        self.close();
    }
}
