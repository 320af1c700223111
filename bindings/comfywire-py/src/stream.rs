//! `Client.events()`: the host's pull stream ([`EventStream`]: every event,
//! with the reports of failing callbacks merged in), taken a batch at a
//! time and made into Python objects a batch at a time: a fast producer
//! costs one GIL release per batch, and the common `next` pops an object
//! already made.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use comfywire_host::{Delivered, EventStream as HostStream, HostClient, HostError};
use parking_lot::Mutex;
use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::convert::Answer;
use crate::events::Converter;
use crate::wait::block;

/// Most events moved from the Rust queue in one go.
const BATCH: usize = 512;

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
    fn extend(&mut self, py: Python<'_>, batch: Vec<Delivered>) -> PyResult<()> {
        let mut failed = Ok(());
        self.events.reserve(batch.len());
        for taken in batch {
            let event = match &taken {
                Delivered::Client(e) => self.converter.event(py, e),
                Delivered::Report(e) => self.converter.host_event(py, e),
            };
            match event {
                Ok(e) => self.events.push_back(e),
                Err(err) => failed = failed.and(Err(err)),
            }
        }
        failed
    }
}

/// An iterator (async with `next_batch_async`) over a client's events.
#[pyclass(module = "comfywire._native", frozen)]
pub(crate) struct EventStream {
    source: HostStream,
    ready: Arc<Mutex<Ready>>,
}

impl EventStream {
    /// Every event of `host` from now on (and its callback failures).
    pub(crate) fn new(host: &HostClient) -> Result<EventStream, HostError> {
        Ok(EventStream::of(host.stream()?))
    }

    /// A stream over a host stream made elsewhere (a job's).
    pub(crate) fn of(source: HostStream) -> EventStream {
        EventStream {
            source,
            ready: Arc::default(),
        }
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
        if let Some(e) = self.ready.lock().events.pop_front() {
            return Ok(Some(e));
        }
        // What is queued is taken without releasing the GIL or entering the
        // runtime: the path of every batch when Python reads slower.
        let mut batch = self.source.try_batch(BATCH);
        if batch.is_empty() {
            let limit =
                timeout.map(|t| Duration::try_from_secs_f64(t.max(0.0)).unwrap_or(Duration::MAX));
            let waiting = self.source.clone().next_batch(limit, BATCH);
            match block(py, async move { Ok(waiting.await) })? {
                Some(taken) => batch = taken,
                None => return Ok(None),
            }
        }
        // Behind what another thread made meanwhile: order is kept.
        let mut ready = self.ready.lock();
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
        let waiting: Vec<Py<PyAny>> = self.ready.lock().events.drain(..).collect();
        let (source, ready) = (self.source.clone(), self.ready.clone());
        pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let mut batch = Vec::new();
            if waiting.is_empty() {
                batch = source.next_batch(None, BATCH).await.unwrap_or_default();
            }
            Python::attach(|py| {
                if waiting.is_empty() && batch.is_empty() {
                    return Err(PyStopAsyncIteration::new_err(()));
                }
                // Whatever another caller made meanwhile comes first.
                let mut ready = ready.lock();
                ready.extend(py, batch)?;
                let out = waiting.into_iter().chain(ready.events.drain(..));
                Ok(PyList::new(py, out)?.unbind())
            })
        })
    }

    /// Stops the stream (a wait in progress ends) and releases its queue.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let closed = self.source.close();
        block(py, async move {
            closed.await;
            Ok(())
        })
    }
}

/// A host stream answered to Python (`Jobs.job_events`) is an
/// [`EventStream`].
impl Answer for HostStream {
    fn into_object(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(Py::new(py, EventStream::of(self))?.into_any())
    }
}
