//! `comfywire._native.Client`: one `HostClient` with its Python callbacks
//! and event streams; its job API is `Client.jobs()` (`jobs.rs`). The
//! public `comfywire.Client` / `AsyncClient` classes wrap both.

use std::sync::Arc;

use comfywire_host::{ErrorCode, HostClient, HostError};
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
    // `None` only while being dropped (see `Drop`).
    host: Option<Arc<HostClient>>,
}

impl NativeClient {
    fn host(&self) -> &Arc<HostClient> {
        // Set from construction until drop; no method runs after drop.
        #[allow(clippy::unwrap_used)]
        self.host.as_ref().unwrap()
    }
}

#[pymethods]
impl NativeClient {
    /// Starts a client from settings JSON (the settings-file format, with
    /// the environment's `COMFYWIRE_*` overrides); it connects in the
    /// background.
    #[new]
    fn new(py: Python<'_>, settings_json: &str) -> PyResult<Self> {
        let host = py.detach(|| {
            let mut settings = HostClient::settings_from_json(settings_json)?;
            settings.apply_env();
            HostClient::with_context(&settings, Arc::new(PyDispatch))
        });
        let host = host.map_err(|e| to_pyerr(py, e))?;
        Ok(NativeClient {
            host: Some(Arc::new(host)),
        })
    }

    /// The client id.
    #[getter]
    fn client_id(&self) -> String {
        self.host().client_id()
    }

    /// The job API.
    fn jobs(&self) -> NativeJobs {
        NativeJobs(self.host().jobs().clone())
    }

    /// The connection state as a dict.
    fn status(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.host().status().to_json().into_object(py)
    }

    /// Counters as a dict.
    fn stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.host().stats().to_json().into_object(py)
    }

    /// Registers `registry[key]` (a callable in the Python client's
    /// registry) for these kinds (all when `None`), optionally for one
    /// prompt; answers the registration id for `unsubscribe`.
    fn subscribe(
        &self,
        py: Python<'_>,
        kinds: Option<Vec<String>>,
        prompt_id: Option<String>,
        registry: &Bound<'_, PyAny>,
        key: Py<PyAny>,
    ) -> PyResult<u64> {
        let callback = Arc::new(PyCallback::new(registry, key)?);
        let handle = self.host().subscribe(kinds.as_deref(), prompt_id, callback);
        Ok(handle.map_err(|e| to_pyerr(py, e))?.detach())
    }

    /// Unregisters by id; true if it was registered.
    fn unsubscribe(&self, id: u64) -> bool {
        self.host().unsubscribe(id)
    }

    /// A stream of every event from now on.
    fn events(&self, py: Python<'_>) -> PyResult<EventStream> {
        EventStream::new(self.host()).map_err(|e| to_pyerr(py, e))
    }

    /// Closes the client (the host lets go of every callback). Idempotent.
    #[pyo3(signature = (aio=false))]
    fn close(&self, py: Python<'_>, aio: bool) -> PyResult<Py<PyAny>> {
        let host = self.host().clone();
        call(py, aio, async move {
            // The host joins its dispatcher thread, which may be waiting
            // for the GIL inside a callback, and blocks on the runtime: so
            // it closes on a plain thread while this caller waits without
            // the GIL (or awaits).
            let (tx, rx) = tokio::sync::oneshot::channel();
            let closing = move || {
                host.close();
                let _ = tx.send(());
            };
            let thread = std::thread::Builder::new()
                .name("comfywire-close".into())
                .spawn(closing);
            thread.map_err(|e| {
                HostError::new(ErrorCode::Config, format!("cannot start a thread: {e}"))
            })?;
            rx.await
                .map_err(|_| HostError::new(ErrorCode::Panic, "closing the client panicked"))
        })
    }
}

impl Drop for NativeClient {
    fn drop(&mut self) {
        // Dropped by Python with the GIL held; the host's close joins the
        // dispatcher thread, which may be waiting for the GIL, so the last
        // reference is let go on another thread.
        if let Some(host) = self.host.take() {
            let _ = std::thread::Builder::new()
                .name("comfywire-close".into())
                .spawn(move || drop(host));
        }
    }
}
