//! `comfywire._native.Client`: one `HostClient`, its Python callbacks, and
//! every call of the host's job API in two forms — blocking (GIL released,
//! Ctrl-C checked) or, with `aio=True`, an asyncio awaitable on the shared
//! runtime. Only types are mapped here (seconds to `Duration`; answers to
//! Python objects in `convert`); the public `comfywire.Client` /
//! `AsyncClient` classes wrap it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use comfywire_host::{ErrorCode, HostClient, HostError, HostFile, JobOptions, Jobs, UploadSpec};
use pyo3::prelude::*;

use crate::callbacks::{PyCallback, PyDispatch};
use crate::convert::{Answer, workflow_from_py};
use crate::errors::to_pyerr;
use crate::stream::EventStream;
use crate::wait::call;

/// Seconds from Python as a `Duration` (negative or NaN is refused).
fn secs(value: Option<f64>, what: &str) -> Result<Option<Duration>, HostError> {
    let duration = |v: f64| {
        Duration::try_from_secs_f64(v).map_err(|_| {
            let message = format!("{what}: {v} is not a duration in seconds");
            HostError::new(ErrorCode::InvalidArgument, message)
        })
    };
    value.map(duration).transpose()
}

/// Job options with these deadlines in seconds (`None`: the client's).
fn deadlines(
    timeout: Option<f64>,
    stall: Option<f64>,
    queue: Option<f64>,
) -> Result<JobOptions, HostError> {
    Ok(JobOptions {
        timeout: secs(timeout, "timeout")?,
        stall_timeout: secs(stall, "stall_timeout")?,
        queue_timeout: secs(queue, "queue_timeout")?,
        ..JobOptions::default()
    })
}

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

    /// The job API, to move into a call's future.
    fn jobs(&self) -> Jobs {
        self.host().jobs().clone()
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

    /// The connection state as a dict.
    fn status(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.host().status().to_json().into_object(py)
    }

    /// Counters as a dict.
    fn stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.host().stats().to_json().into_object(py)
    }

    /// Waits until connected.
    #[pyo3(signature = (timeout, aio=false))]
    fn wait_connected(&self, py: Python<'_>, timeout: f64, aio: bool) -> PyResult<Py<PyAny>> {
        let timeout = secs(Some(timeout), "timeout").map_err(|e| to_pyerr(py, e))?;
        let jobs = self.jobs();
        call(py, aio, async move {
            jobs.wait_connected(timeout.unwrap_or_default()).await
        })
    }

    /// Registers `registry[key]` (a callable in the Python client's
    /// registry) for these kinds (all when `None`), optionally for one
    /// prompt; answers the registration id for `unsubscribe`.
    #[pyo3(signature = (kinds, prompt_id, registry, key))]
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

    /// Submits a workflow; answers `(prompt_id, number, skipped)`.
    #[pyo3(signature = (workflow, aio=false))]
    fn submit(
        &self,
        py: Python<'_>,
        workflow: &Bound<'_, PyAny>,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let (workflow, jobs) = (workflow_from_py(workflow)?, self.jobs());
        call(py, aio, async move {
            jobs.submit(workflow, JobOptions::default()).await
        })
    }

    /// Submits and waits with these deadlines in seconds (the client's
    /// where `None`); answers the outcome dict of a success, raises the
    /// matching error otherwise.
    #[pyo3(signature = (workflow, timeout=None, stall_timeout=None, queue_timeout=None, aio=false))]
    fn run(
        &self,
        py: Python<'_>,
        workflow: &Bound<'_, PyAny>,
        timeout: Option<f64>,
        stall_timeout: Option<f64>,
        queue_timeout: Option<f64>,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let options =
            deadlines(timeout, stall_timeout, queue_timeout).map_err(|e| to_pyerr(py, e))?;
        let (workflow, jobs) = (workflow_from_py(workflow)?, self.jobs());
        call(py, aio, async move { jobs.run(workflow, options).await })
    }

    /// Waits for a prompt's success up to `timeout` seconds; answers the
    /// outcome dict or raises (`WaitTimeout` when the time ran out; the
    /// prompt goes on).
    #[pyo3(signature = (prompt_id, timeout=None, aio=false))]
    fn wait(
        &self,
        py: Python<'_>,
        prompt_id: String,
        timeout: Option<f64>,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let options = deadlines(timeout, None, None).map_err(|e| to_pyerr(py, e))?;
        let jobs = self.jobs();
        call(
            py,
            aio,
            async move { jobs.wait(&prompt_id, &options).await },
        )
    }

    /// The record of a prompt this client has seen (an outcome dict, in
    /// any phase, with its `progress`) or `None`.
    #[pyo3(signature = (prompt_id, aio=false))]
    fn execution(&self, py: Python<'_>, prompt_id: String, aio: bool) -> PyResult<Py<PyAny>> {
        let jobs = self.jobs();
        call(py, aio, async move { jobs.execution(&prompt_id).await })
    }

    /// Finished executions kept in memory, oldest first, as outcome dicts.
    #[pyo3(signature = (aio=false))]
    fn history(&self, py: Python<'_>, aio: bool) -> PyResult<Py<PyAny>> {
        let jobs = self.jobs();
        call(py, aio, async move { jobs.history().await })
    }

    /// Interrupts the prompt if it is this client's running one.
    #[pyo3(signature = (prompt_id, aio=false))]
    fn interrupt(&self, py: Python<'_>, prompt_id: String, aio: bool) -> PyResult<Py<PyAny>> {
        let jobs = self.jobs();
        call(py, aio, async move { jobs.interrupt(&prompt_id).await })
    }

    /// The server's queue: `(running_ids, pending_ids)`.
    #[pyo3(signature = (aio=false))]
    fn queue(&self, py: Python<'_>, aio: bool) -> PyResult<Py<PyAny>> {
        let jobs = self.jobs();
        call(py, aio, async move { jobs.queue().await })
    }

    /// Deletes pending prompts.
    #[pyo3(signature = (prompt_ids, aio=false))]
    fn delete(&self, py: Python<'_>, prompt_ids: Vec<String>, aio: bool) -> PyResult<Py<PyAny>> {
        let jobs = self.jobs();
        call(py, aio, async move { jobs.delete(&prompt_ids).await })
    }

    /// Deletes every pending prompt.
    #[pyo3(signature = (aio=false))]
    fn clear_queue(&self, py: Python<'_>, aio: bool) -> PyResult<Py<PyAny>> {
        let jobs = self.jobs();
        call(py, aio, async move { jobs.clear_queue().await })
    }

    /// The server's history entry of a prompt (a dict) or `None`.
    #[pyo3(signature = (prompt_id, aio=false))]
    fn server_history(&self, py: Python<'_>, prompt_id: String, aio: bool) -> PyResult<Py<PyAny>> {
        let jobs = self.jobs();
        call(
            py,
            aio,
            async move { jobs.server_history(&prompt_id).await },
        )
    }

    /// `GET /system_stats` as a dict.
    #[pyo3(signature = (aio=false))]
    fn system_stats(&self, py: Python<'_>, aio: bool) -> PyResult<Py<PyAny>> {
        let jobs = self.jobs();
        call(py, aio, async move { jobs.system_stats().await })
    }

    /// The bytes of a file `(filename, subfolder, type)` from `/view`.
    #[pyo3(signature = (file, aio=false))]
    fn view(
        &self,
        py: Python<'_>,
        file: (String, String, String),
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let (filename, subfolder, kind) = file;
        let (file, jobs) = (
            HostFile {
                filename,
                subfolder,
                kind,
            },
            self.jobs(),
        );
        call(py, aio, async move { jobs.view(&file).await })
    }

    /// Downloads every output file of a prompt into `dir`; answers the
    /// paths.
    #[pyo3(signature = (prompt_id, dir, aio=false))]
    fn download_outputs(
        &self,
        py: Python<'_>,
        prompt_id: String,
        dir: PathBuf,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let jobs = self.jobs();
        call(py, aio, async move {
            jobs.download_outputs(&prompt_id, &dir).await
        })
    }

    /// Uploads a file; answers `(filename, subfolder, type)` as stored.
    #[pyo3(signature = (filename, data, subfolder=None, kind=None, overwrite=false, aio=false))]
    #[allow(clippy::too_many_arguments)]
    fn upload_image(
        &self,
        py: Python<'_>,
        filename: String,
        data: Vec<u8>,
        subfolder: Option<String>,
        kind: Option<String>,
        overwrite: bool,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let (spec, jobs) = (
            UploadSpec {
                subfolder,
                kind,
                overwrite,
            },
            self.jobs(),
        );
        call(
            py,
            aio,
            async move { jobs.upload(&filename, &data, spec).await },
        )
    }

    /// Skips the backoff wait.
    fn retry_now(&self, py: Python<'_>) -> PyResult<()> {
        self.host().jobs().retry_now().map_err(|e| to_pyerr(py, e))
    }

    /// Disconnects and stops retrying (app in the background).
    fn pause(&self, py: Python<'_>) -> PyResult<()> {
        self.host().jobs().pause().map_err(|e| to_pyerr(py, e))
    }

    /// Reconnects now (app back).
    fn resume(&self, py: Python<'_>) -> PyResult<()> {
        self.host().jobs().resume().map_err(|e| to_pyerr(py, e))
    }

    /// The network changed: check or reconnect now.
    fn network_changed(&self, py: Python<'_>) -> PyResult<()> {
        let hint = self.host().jobs().network_changed();
        hint.map_err(|e| to_pyerr(py, e))
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
