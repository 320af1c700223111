//! `comfywire._native.Client`: one `HostClient` with its callbacks and
//! event streams; its job API is `Client.jobs()` (`jobs.rs`).

use std::path::PathBuf;
use std::sync::Arc;

use comfywire_host::{HostClient, HostError};
use pyo3::prelude::*;

use crate::callbacks::{PyCallback, PyDispatch};
use crate::convert::Answer;
use crate::errors::to_pyerr;
use crate::jobs::NativeJobs;
use crate::stream::EventStream;
use crate::wait::call;

/// The native client behind `comfywire.Client` and `comfywire.AsyncClient`.
#[pyclass(module = "comfywire._native", name = "Client", frozen, weakref)]
pub(crate) struct NativeClient {
    host: Arc<HostClient>,
}

#[pymethods]
impl NativeClient {
    /// Starts a client from the caller's arguments (settings-file JSON),
    /// the `COMFYWIRE_*` environment and a settings file, in that order of
    /// precedence; it connects in the background.
    #[new]
    #[pyo3(signature = (settings_json, config_file=None))]
    fn new(py: Python<'_>, settings_json: &str, config_file: Option<PathBuf>) -> PyResult<Self> {
        let host = py.detach(|| {
            let settings = HostClient::layered_settings(settings_json, config_file.as_deref())?;
            HostClient::with_context(&settings, Arc::new(PyDispatch))
        });
        let host = Arc::new(host.map_err(|e| to_pyerr(py, e))?);
        Ok(NativeClient { host })
    }

    /// The client id.
    #[getter]
    fn client_id(&self) -> String {
        self.host.client_id()
    }

    /// The prompt ids re-attached from the journal at start (unfinished
    /// when the last process with this journal stopped).
    fn resumed(&self) -> Vec<String> {
        self.host.resumed()
    }

    /// The job API.
    fn jobs(&self) -> NativeJobs {
        NativeJobs(self.host.jobs().clone())
    }

    /// The connection state as a dict.
    fn status(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.host.status().to_json().into_object(py)
    }

    /// Counters as a dict.
    fn stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.host.stats().to_json().into_object(py)
    }

    /// Registers `registry[key]` for these kinds (all when `None`),
    /// optionally of one prompt; answers the id for `unsubscribe`.
    fn subscribe(
        &self,
        py: Python<'_>,
        kinds: Option<Vec<String>>,
        prompt_id: Option<String>,
        registry: &Bound<'_, PyAny>,
        key: Py<PyAny>,
    ) -> PyResult<u64> {
        let callback = Arc::new(PyCallback::new(registry, key)?);
        let handle = self.host.subscribe(kinds.as_deref(), prompt_id, callback);
        Ok(handle.map_err(|e| to_pyerr(py, e))?.detach())
    }

    /// Unregisters by id; true if it was registered. Waits (without the
    /// GIL, which the call may need to end) for a call of it running on the
    /// dispatcher thread, unless called from there.
    fn unsubscribe(&self, py: Python<'_>, id: u64) -> bool {
        py.detach(|| self.host.unsubscribe(id))
    }

    /// A stream of every event from now on.
    fn events(&self, py: Python<'_>) -> PyResult<EventStream> {
        EventStream::new(&self.host).map_err(|e| to_pyerr(py, e))
    }

    /// Closes the client (the host lets go of every callback). Idempotent.
    /// Waits for the end of the close without the GIL (a callback may need
    /// it to finish) or awaits it; from a callback it returns at once and
    /// the close completes after the callback (the host's rule).
    #[pyo3(signature = (aio=false))]
    fn close(&self, py: Python<'_>, aio: bool) -> PyResult<Py<PyAny>> {
        let closed = self.host.close_async();
        call(py, aio, async move {
            closed.await;
            Ok::<_, HostError>(())
        })
    }
}

impl Drop for NativeClient {
    fn drop(&mut self) {
        // Dropped with the GIL held, which a callback running now may need
        // to end: the close (the host's rule: at once on the dispatcher
        // thread, else when done) waits without it. Nothing reaches this
        // object meanwhile, so releasing the GIL here is safe.
        Python::attach(|py| py.detach(|| self.host.close()));
    }
}
