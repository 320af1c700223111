//! [`EventStream`]: a pull stream of every event of one client with the
//! reports of failing callbacks merged in, for bindings with an iterator
//! of their own (Python's `Client.events()`). Events are taken in batches
//! (one wait, then whatever is already queued), so a fast producer costs a
//! waiting reader one wake-up per batch, not one per event.
//!
//! A job's stream ([`EventStream`] made by `HostClient::job_stream`) is the
//! same stream narrowed to one prompt: subscribed first, then its first
//! read replays what the client's record of the prompt says already
//! happened (queued, started, cached nodes, outputs, the end), and live
//! events the replay already covered are not delivered twice; it ends
//! after the prompt's `Finished`. So it never misses the end, however late
//! it is made.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use comfywire_client::{Client, Event, ExecutionRecord, Phase, Subscription};
use tokio::sync::{Mutex, Notify, mpsc};

use crate::client::Delivered;
use crate::dispatch::{CallbackHandle, EventCallback};
use crate::error::{ErrorCode, HostError};
use crate::model::HostEvent;

/// Callback failure reports a stream buffers before the newest are dropped.
const REPORT_BACKLOG: usize = 256;

/// Forwards callback failure reports into a stream.
pub(crate) struct ReportForward(mpsc::Sender<HostEvent>);

impl ReportForward {
    /// The forwarder and the receiving end of its reports.
    pub(crate) fn new() -> (ReportForward, mpsc::Receiver<HostEvent>) {
        let (tx, rx) = mpsc::channel(REPORT_BACKLOG);
        (ReportForward(tx), rx)
    }
}

impl EventCallback for ReportForward {
    fn on_event(&self, event: &HostEvent) -> Result<(), String> {
        // Bounded: a stream nobody reads drops reports, never blocks.
        let _ = self.0.try_send(event.clone());
        Ok(())
    }
}

/// The narrowing of a job's stream: its prompt, what the replay covered,
/// and whether its end was delivered.
struct JobView {
    client: Client,
    prompt_id: String,
    /// `None` until the first read loaded the replay.
    replay: Option<VecDeque<Event>>,
    queued: bool,
    started: bool,
    cached: bool,
    outputs: HashSet<String>,
    finished: bool,
}

impl JobView {
    /// Reads the client's record of the prompt (attaching a prompt it does
    /// not track yet) into the events that already happened.
    async fn load(&mut self) {
        if self.replay.is_some() {
            return;
        }
        let mut record = self.client.execution(&self.prompt_id).await.ok().flatten();
        if record.is_none() && self.client.attach(&self.prompt_id).await.is_ok() {
            record = self.client.execution(&self.prompt_id).await.ok().flatten();
        }
        let mut replay = VecDeque::new();
        if let Some(record) = record {
            self.replay_of(record, &mut replay);
        }
        self.replay = Some(replay);
    }

    fn replay_of(&mut self, record: ExecutionRecord, replay: &mut VecDeque<Event>) {
        let prompt_id: Arc<str> = Arc::from(record.prompt_id.as_str());
        if record.phase >= Phase::Queued || record.number.is_some() {
            self.queued = true;
            replay.push_back(Event::PromptQueued {
                prompt_id: prompt_id.clone(),
                number: record.number,
            });
        }
        if record.started_at.is_some() || record.phase == Phase::Running {
            self.started = true;
            replay.push_back(Event::ExecutionStarted {
                prompt_id: prompt_id.clone(),
            });
        }
        if !record.cached.is_empty() {
            self.cached = true;
            replay.push_back(Event::NodesCached {
                prompt_id: prompt_id.clone(),
                nodes: record.cached.clone(),
            });
        }
        for (node, output) in &record.outputs {
            self.outputs.insert(node.to_owned());
            replay.push_back(Event::Output {
                prompt_id: prompt_id.clone(),
                node: Arc::from(node),
                display_node: None,
                output: output.clone(),
                recovered: false,
            });
        }
        if record.is_terminal() {
            replay.push_back(Event::Finished(Arc::new(record)));
        }
    }

    /// False for a live event the replay already delivered.
    fn fresh(&self, event: &Event) -> bool {
        match event {
            Event::PromptQueued { .. } => !self.queued,
            Event::ExecutionStarted { .. } => !self.started,
            Event::NodesCached { .. } => !self.cached,
            Event::Output { node, .. } => !self.outputs.contains(&**node),
            _ => !self.finished,
        }
    }

    /// Moves events into `batch` up to its `Finished`: the replay whole
    /// (`replayed`), live ones when [`JobView::fresh`].
    fn take(
        &mut self,
        events: impl IntoIterator<Item = Event>,
        replayed: bool,
        batch: &mut Vec<Delivered>,
    ) {
        for event in events {
            if self.finished || !(replayed || self.fresh(&event)) {
                continue;
            }
            self.finished = matches!(event, Event::Finished(_));
            batch.push(Delivered::Client(event));
        }
    }
}

struct Source {
    events: Subscription,
    reports: mpsc::Receiver<HostEvent>,
    /// Keeps the report forwarder registered for the stream's life (none
    /// for a job's stream).
    _forward: Option<CallbackHandle>,
    /// Reused between batches: events taken from the queue in one go.
    scratch: Vec<Event>,
    /// Set for a job's stream.
    job: Option<JobView>,
    /// Taken from the queues but beyond the last batch's `max`: the first
    /// of the next batch.
    held: VecDeque<Delivered>,
}

impl Source {
    /// Moves what is already queued into `batch`, up to `max` in all:
    /// reports first, then the events in one lock of their queue.
    fn drain_ready(&mut self, batch: &mut Vec<Delivered>, max: usize) {
        // What an earlier batch could not take comes first; while some of
        // it is left, newer events wait in their queues.
        let room = max.saturating_sub(batch.len()).min(self.held.len());
        batch.extend(self.held.drain(..room));
        if !self.held.is_empty() {
            return;
        }
        while let Ok(report) = self.reports.try_recv() {
            batch.push(Delivered::Report(Box::new(report)));
        }
        if let Some(job) = &mut self.job {
            if let Some(replay) = &mut job.replay {
                let replayed: Vec<Event> = replay.drain(..).collect();
                job.take(replayed, true, batch);
            }
        }
        let room = max.saturating_sub(batch.len());
        self.events.try_recv_many(&mut self.scratch, room);
        match &mut self.job {
            Some(job) => job.take(self.scratch.drain(..), false, batch),
            None => batch.extend(self.scratch.drain(..).map(Delivered::Client)),
        }
        // Reports and a replay come whole: the part past `max` waits here.
        if batch.len() > max {
            self.held.extend(batch.drain(max..));
        }
    }

    /// True once a job's stream delivered its `Finished`.
    fn ended(&self) -> bool {
        self.held.is_empty() && self.job.as_ref().is_some_and(|j| j.finished)
    }
}

/// A pull stream of a client's events and callback failure reports. Clones
/// read the same stream; it ends when the client closes or on
/// [`EventStream::close`].
#[derive(Clone)]
pub struct EventStream {
    /// `None` once closed. Tokio's mutex: a wait holds it across awaits.
    source: Arc<Mutex<Option<Source>>>,
    /// Ends a wait in progress when the stream is closed.
    closing: Arc<Notify>,
}

impl EventStream {
    pub(crate) fn new(
        events: Subscription,
        reports: mpsc::Receiver<HostEvent>,
        forward: CallbackHandle,
    ) -> EventStream {
        EventStream::of(Source {
            events,
            reports,
            _forward: Some(forward),
            scratch: Vec::new(),
            job: None,
            held: VecDeque::new(),
        })
    }

    /// A job's stream: `events` is subscribed to the prompt's events
    /// already; the first read replays the client's record of it.
    pub(crate) fn for_job(client: Client, prompt_id: String, events: Subscription) -> EventStream {
        let (_, reports) = mpsc::channel(1);
        EventStream::of(Source {
            events,
            reports,
            _forward: None,
            scratch: Vec::new(),
            job: Some(JobView {
                client,
                prompt_id,
                replay: None,
                queued: false,
                started: false,
                cached: false,
                outputs: HashSet::new(),
                finished: false,
            }),
            held: VecDeque::new(),
        })
    }

    fn of(source: Source) -> EventStream {
        EventStream {
            source: Arc::new(Mutex::new(Some(source))),
            closing: Arc::default(),
        }
    }

    /// What is queued now, up to `max`, without waiting (nothing while
    /// another reader waits, or once closed).
    pub fn try_batch(&self, max: usize) -> Vec<Delivered> {
        let mut batch = Vec::new();
        if let Ok(mut source) = self.source.try_lock() {
            // A job's stream is read here once its replay is loaded (by a
            // wait) and until its end (which a wait reports).
            if let Some(source) = source
                .as_mut()
                .filter(|s| !s.ended() && s.job.as_ref().is_none_or(|j| j.replay.is_some()))
            {
                source.drain_ready(&mut batch, max);
            }
        }
        batch
    }

    /// Waits up to `limit` (forever when `None`) for an event, then takes
    /// what is queued, up to `max`: `None` when the time ran out, an empty
    /// batch once the stream or the client closed, for good.
    pub async fn next_batch(self, limit: Option<Duration>, max: usize) -> Option<Vec<Delivered>> {
        let mut guard = self.source.lock().await;
        let Some(source) = guard.as_mut() else {
            return Some(Vec::new());
        };
        if source.ended() {
            guard.take();
            return Some(Vec::new());
        }
        let mut batch = Vec::new();
        if !source.held.is_empty() {
            source.drain_ready(&mut batch, max);
            return Some(batch);
        }
        if let Some(job) = &mut source.job {
            if job.replay.is_none() {
                tokio::select! {
                    () = job.load() => {}
                    () = self.closing.notified() => {
                        guard.take();
                        return Some(batch);
                    }
                }
                source.drain_ready(&mut batch, max);
                if !batch.is_empty() {
                    return Some(batch);
                }
            }
        }
        let wait = async {
            loop {
                let first = tokio::select! {
                    e = source.events.recv() => e.map(Delivered::Client),
                    Some(r) = source.reports.recv() => Some(Delivered::Report(Box::new(r))),
                    () = self.closing.notified() => None,
                };
                let Some(first) = first else {
                    return false;
                };
                match (&mut source.job, first) {
                    (Some(job), Delivered::Client(event)) => job.take([event], false, &mut batch),
                    (_, first) => batch.push(first),
                }
                if !batch.is_empty() {
                    source.drain_ready(&mut batch, max);
                    return true;
                }
            }
        };
        let open = match limit {
            Some(limit) => tokio::time::timeout(limit, wait).await.ok()?,
            None => wait.await,
        };
        if !open {
            guard.take();
        }
        Some(batch)
    }

    /// The next event, waiting up to `timeout` (blocking; the one-at-a-time
    /// pull of C and uniffi): `None` when the time ran out, `Closed` once
    /// the stream ended (a job's after its `Finished`, any stream when its
    /// client closed or on [`EventStream::close`]), for good.
    pub fn next_event(&self, timeout: Duration) -> Result<Option<Delivered>, HostError> {
        let ended = || HostError::new(ErrorCode::Closed, "the event stream has ended");
        if let Some(first) = self.try_batch(1).pop() {
            return Ok(Some(first));
        }
        let waiting = self.clone().next_batch(Some(timeout), 1);
        match crate::block_on(async { Ok(waiting.await) })? {
            None => Ok(None),
            Some(batch) => batch.into_iter().next().map(Some).ok_or_else(ended),
        }
    }

    /// Closes the stream: a wait in progress ends (as does the next one,
    /// if none is waiting now) and the queue is released once the returned
    /// future ran.
    pub fn close(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        self.closing.notify_one();
        let source = self.source.clone();
        async move {
            source.lock().await.take();
        }
    }
}
