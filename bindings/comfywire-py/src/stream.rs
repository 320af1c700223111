//! `Client.events()`: a pull stream over a client subscription, merged with
//! the `callback_error` reports of failing callbacks. Events are taken from
//! the Rust queue in batches (one wait, then whatever is already queued) so
//! a fast producer costs one GIL release per batch, not per event.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use comfywire_host::comfywire_client::Subscription;
use comfywire_host::{
    CALLBACK_ERROR, CallbackHandle, EventCallback, HostClient, HostError, HostEvent, runtime,
};
use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::PyList;
use tokio::sync::mpsc;

use crate::errors::to_pyerr;
use crate::wait::in_slices;

/// Most events moved from the Rust queue in one go.
const BATCH: usize = 512;
/// Callback failure reports buffered for a stream before newer ones drop.
const ERROR_BACKLOG: usize = 256;

/// Forwards callback failure reports into a stream.
struct ErrorForward(mpsc::Sender<HostEvent>);

impl EventCallback for ErrorForward {
    fn on_event(&self, event: &HostEvent) -> Result<(), String> {
        let _ = self.0.try_send(event.clone());
        Ok(())
    }
}

struct Source {
    events: Subscription,
    errors: mpsc::Receiver<HostEvent>,
    _errors_handle: CallbackHandle,
}

impl Source {
    /// Waits for at least one event, then takes what is already queued;
    /// an empty batch means the client is closed.
    async fn next_batch(&mut self) -> Vec<HostEvent> {
        let mut batch = Vec::new();
        tokio::select! {
            e = self.events.recv() => match e {
                Some(e) => batch.push(HostEvent::from_event(&e)),
                None => return batch,
            },
            Some(e) = self.errors.recv() => batch.push(e),
        }
        self.drain_ready(&mut batch);
        batch
    }

    /// Moves what is already queued (up to [`BATCH`] events) into `batch`.
    fn drain_ready(&mut self, batch: &mut Vec<HostEvent>) {
        while let Ok(e) = self.errors.try_recv() {
            batch.push(e);
        }
        while batch.len() < BATCH {
            match self.events.try_recv() {
                Some(e) => batch.push(HostEvent::from_event(&e)),
                None => break,
            }
        }
    }
}

/// An iterator (and, through `next_batch_async`, an async iterator) over a
/// client's events from the moment it was made.
#[pyclass(module = "comfywire._native", frozen)]
pub(crate) struct EventStream {
    // tokio's mutex: the async path holds it across an await.
    source: Arc<tokio::sync::Mutex<Option<Source>>>,
    buffered: Mutex<VecDeque<HostEvent>>,
}

impl EventStream {
    /// Subscribes to every event of `host` (and to its callback failures).
    pub(crate) fn new(host: &HostClient) -> Result<EventStream, HostError> {
        let (tx, rx) = mpsc::channel(ERROR_BACKLOG);
        let handle = host.subscribe(
            Some(vec![CALLBACK_ERROR.to_owned()]),
            None,
            Arc::new(ErrorForward(tx)),
        )?;
        Ok(EventStream {
            source: Arc::new(tokio::sync::Mutex::new(Some(Source {
                events: host.client().events(),
                errors: rx,
                _errors_handle: handle,
            }))),
            buffered: Mutex::new(VecDeque::new()),
        })
    }

    fn pop(&self) -> Option<HostEvent> {
        self.buffered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }
}

#[pymethods]
impl EventStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        match self.next(py, None)? {
            Some(e) => Ok(e),
            None => Err(PyStopIteration::new_err(())),
        }
    }

    /// The next event, waiting up to `timeout` seconds (forever when
    /// `None`); `None` when the time ran out. Raises `StopIteration` once
    /// the stream is closed.
    #[pyo3(signature = (timeout=None))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<PyAny>>> {
        if let Some(e) = self.pop().or_else(|| self.take_ready()) {
            return crate::events::to_py(py, &e).map(Some);
        }
        let rt = runtime().map_err(|e| to_pyerr(py, e))?;
        let deadline =
            timeout.map(|t| std::time::Instant::now() + Duration::from_secs_f64(t.max(0.0)));
        let source = self.source.clone();
        let batch = in_slices(py, deadline, |slice| {
            rt.block_on(async {
                let mut guard = source.lock().await;
                let src = guard.as_mut()?;
                tokio::time::timeout(slice, src.next_batch()).await.ok()
            })
            .or_else(|| {
                // Closed streams answer at once instead of spinning.
                rt.block_on(async { source.lock().await.is_none() })
                    .then(Vec::new)
            })
        })?;
        let Some(batch) = batch else {
            return Ok(None);
        };
        let mut events = batch.into_iter();
        let Some(first) = events.next() else {
            self.close_now();
            return Err(PyStopIteration::new_err(()));
        };
        self.buffered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(events);
        crate::events::to_py(py, &first).map(Some)
    }

    /// An awaitable of the next batch of events (a list, never empty);
    /// raises `StopAsyncIteration` once the stream is closed.
    fn next_batch_async<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut ready: Vec<HostEvent> = self
            .buffered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        let source = self.source.clone();
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            if ready.is_empty() {
                let mut guard = source.lock().await;
                if let Some(src) = guard.as_mut() {
                    ready = src.next_batch().await;
                }
                if ready.is_empty() {
                    guard.take();
                }
            }
            Python::attach(|py| {
                if ready.is_empty() {
                    return Err(PyStopAsyncIteration::new_err(()));
                }
                let list = PyList::empty(py);
                for e in &ready {
                    list.append(crate::events::to_py(py, e)?)?;
                }
                Ok(list.unbind())
            })
        })
    }

    /// Stops the stream and releases its queue.
    fn close(&self, py: Python<'_>) {
        py.detach(|| self.close_now());
    }
}

impl EventStream {
    /// Takes what is already queued without releasing the GIL or entering
    /// the runtime: when events arrive faster than Python reads them, this
    /// is the path every `next` takes.
    fn take_ready(&self) -> Option<HostEvent> {
        let mut guard = self.source.try_lock().ok()?;
        let src = guard.as_mut()?;
        let mut batch = Vec::new();
        src.drain_ready(&mut batch);
        drop(guard);
        let mut events = batch.into_iter();
        let first = events.next()?;
        self.buffered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(events);
        Some(first)
    }

    fn close_now(&self) {
        if let Ok(rt) = runtime() {
            let source = self.source.clone();
            let work = async move {
                source.lock().await.take();
            };
            if comfywire_host::on_runtime_thread() {
                rt.spawn(work);
            } else {
                rt.block_on(work);
            }
        }
    }
}
