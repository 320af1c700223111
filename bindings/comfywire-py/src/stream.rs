//! `Client.events()`: a pull stream over a client subscription, merged with
//! the `callback_error` reports of failing callbacks. Events are taken in
//! batches (one wait, then whatever is already queued) and made into
//! Python objects a batch at a time: a fast producer costs one GIL release
//! per batch, and the common `next` pops an object already made.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use comfywire_host::event::Event;
use comfywire_host::{
    CALLBACK_ERROR, CallbackHandle, EventCallback, HostClient, HostError, HostEvent, Subscription,
};
use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::PyList;
use tokio::sync::{Notify, mpsc};

use crate::events::Converter;
use crate::wait::block;

/// Most events moved from the Rust queue in one go.
const BATCH: usize = 512;
/// Callback failure reports a stream buffers.
const ERROR_BACKLOG: usize = 256;

/// Forwards callback failure reports into a stream.
struct ErrorForward(mpsc::Sender<HostEvent>);

impl EventCallback for ErrorForward {
    fn on_event(&self, event: &HostEvent) -> Result<(), String> {
        let _ = self.0.try_send(event.clone());
        Ok(())
    }
}

/// A client event or a failure report, not yet a Python object.
enum Taken {
    Client(Event),
    Report(HostEvent),
}

struct Source {
    events: Subscription,
    errors: mpsc::Receiver<HostEvent>,
    _errors_handle: CallbackHandle,
    /// Reused between batches: events taken from the queue in one go.
    scratch: Vec<Event>,
}

impl Source {
    /// Moves what is already queued (up to [`BATCH`] events) into `batch`.
    fn drain_ready(&mut self, batch: &mut Vec<Taken>) {
        while let Ok(e) = self.errors.try_recv() {
            batch.push(Taken::Report(e));
        }
        // One lock of the queue for the whole burst.
        self.events
            .try_recv_many(&mut self.scratch, BATCH.saturating_sub(batch.len()));
        batch.extend(self.scratch.drain(..).map(Taken::Client));
    }
}

/// The source of a stream (`None` once closed), behind tokio's mutex as
/// waits hold it across an await, and what ends a wait when it closes.
#[derive(Clone)]
struct Shared(Arc<tokio::sync::Mutex<Option<Source>>>, Arc<Notify>);

impl Shared {
    /// Waits up to `limit` (else `None`) for an event, then takes what is
    /// queued; an empty batch: the client or the stream closed, for good.
    async fn next_batch(self, limit: Option<Duration>) -> Option<Vec<Taken>> {
        let mut guard = self.0.lock().await;
        let Some(src) = guard.as_mut() else {
            return Some(Vec::new());
        };
        let mut batch = Vec::new();
        let first = async {
            tokio::select! {
                e = src.events.recv() => e.map(Taken::Client),
                Some(e) = src.errors.recv() => Some(Taken::Report(e)),
                () = self.1.notified() => None,
            }
        };
        let first = match limit {
            Some(limit) => tokio::time::timeout(limit, first).await.ok()?,
            None => first.await,
        };
        match first {
            Some(taken) => {
                batch.push(taken);
                src.drain_ready(&mut batch);
            }
            None => drop(guard.take()),
        }
        Some(batch)
    }
}

/// Events already made into Python objects, in order, and the converter
/// that made them. Only locked with the GIL held, never across a wait.
#[derive(Default)]
struct Ready {
    events: VecDeque<Py<PyAny>>,
    converter: Converter,
}

impl Ready {
    /// Converts `batch` behind what is waiting; an event that fails to
    /// convert (a broken interpreter) is skipped, its error returned once
    /// the rest is queued.
    fn extend(&mut self, py: Python<'_>, batch: Vec<Taken>) -> PyResult<()> {
        let mut failed = Ok(());
        self.events.reserve(batch.len());
        for taken in batch {
            let event = match &taken {
                Taken::Client(e) => self.converter.event(py, e),
                Taken::Report(e) => self.converter.host_event(py, e),
            };
            match event {
                Ok(e) => self.events.push_back(e),
                Err(err) => failed = failed.and(Err(err)),
            }
        }
        failed
    }
}

fn lock(ready: &Mutex<Ready>) -> MutexGuard<'_, Ready> {
    ready.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An iterator (async with `next_batch_async`) over a client's events.
#[pyclass(module = "comfywire._native", frozen)]
pub(crate) struct EventStream {
    source: Shared,
    ready: Arc<Mutex<Ready>>,
}

impl EventStream {
    /// Subscribes to every event of `host` (and to its callback failures).
    pub(crate) fn new(host: &HostClient) -> Result<EventStream, HostError> {
        let (tx, errors) = mpsc::channel(ERROR_BACKLOG);
        let reports = [CALLBACK_ERROR.to_owned()];
        let handle = host.subscribe(Some(&reports), None, Arc::new(ErrorForward(tx)))?;
        let (events, scratch) = (host.events(None, None)?, Vec::new());
        let source = Source {
            events,
            errors,
            _errors_handle: handle,
            scratch,
        };
        let source = Shared(
            Arc::new(tokio::sync::Mutex::new(Some(source))),
            Arc::default(),
        );
        Ok(EventStream {
            source,
            ready: Arc::default(),
        })
    }
}

#[pymethods]
impl EventStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.next(py, None)
    }

    /// The next event, waiting up to `timeout` seconds (forever when
    /// `None`); `None` when the time ran out. Raises `StopIteration` once
    /// the stream is closed.
    #[pyo3(signature = (timeout=None))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<PyAny>>> {
        if let Some(e) = lock(&self.ready).events.pop_front() {
            return Ok(Some(e));
        }
        // What is queued is taken without releasing the GIL or entering the
        // runtime: the path of every batch when Python reads slower.
        let mut batch = Vec::new();
        if let Ok(mut guard) = self.source.0.try_lock() {
            if let Some(src) = guard.as_mut() {
                src.drain_ready(&mut batch);
            }
        }
        if batch.is_empty() {
            let limit =
                timeout.map(|t| Duration::try_from_secs_f64(t.max(0.0)).unwrap_or(Duration::MAX));
            let waiting = self.source.clone().next_batch(limit);
            match block(py, async move { Ok(waiting.await) })? {
                Some(taken) => batch = taken,
                None => return Ok(None),
            }
        }
        // Behind what another thread made meanwhile: order is kept.
        let mut ready = lock(&self.ready);
        ready.extend(py, batch)?;
        ready
            .events
            .pop_front()
            .map(Some)
            .ok_or_else(|| PyStopIteration::new_err(()))
    }

    /// An awaitable of the next batch of events (a list, never empty);
    /// raises `StopAsyncIteration` once the stream is closed.
    fn next_batch_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let waiting: Vec<Py<PyAny>> = lock(&self.ready).events.drain(..).collect();
        let (source, ready) = (self.source.clone(), self.ready.clone());
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let mut batch = Vec::new();
            if waiting.is_empty() {
                batch = source.next_batch(None).await.unwrap_or_default();
            }
            Python::attach(|py| {
                if waiting.is_empty() && batch.is_empty() {
                    return Err(PyStopAsyncIteration::new_err(()));
                }
                // Whatever another caller made meanwhile comes first.
                let mut ready = lock(&ready);
                ready.extend(py, batch)?;
                let out = waiting.into_iter().chain(ready.events.drain(..));
                Ok(PyList::new(py, out)?.unbind())
            })
        })
    }

    /// Stops the stream (a wait in progress ends) and releases its queue.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        // A permit when nobody waits: the next wait ends at once.
        self.source.1.notify_one();
        let source = self.source.0.clone();
        block(py, async move {
            source.lock().await.take();
            Ok(())
        })
    }
}
