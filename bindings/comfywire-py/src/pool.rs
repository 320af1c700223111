//! `comfywire._native.Pool`: the host's `HostPool`, call for call; each
//! call blocks (`wait::block`) or, with `aio=True`, answers an awaitable.
//! Outcomes and figures come as dicts (their host JSON), which
//! `comfywire._pool` makes into typed objects; a server's event comes as
//! the client's typed event class; no pool rule lives here.

use std::path::PathBuf;

use comfywire_host::{HostPool, HostPoolEvent};
use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use serde_json::json;

use crate::convert::{Answer, Json, Seconds};
use crate::errors::to_pyerr;
use crate::events::Converter;
use crate::wait::call;

/// The native pool behind `comfywire.Pool` and `comfywire.AsyncPool`.
#[pyclass(module = "comfywire._native", name = "Pool", frozen)]
pub(crate) struct NativePool(HostPool);

#[pymethods]
impl NativePool {
    /// Starts a pool from the caller's arguments (settings-file JSON with
    /// `servers`), the `COMFYWIRE_*` environment and a settings file, in
    /// that order of precedence; its clients connect in the background.
    #[new]
    #[pyo3(signature = (settings_json, config_file=None))]
    fn new(py: Python<'_>, settings_json: &str, config_file: Option<PathBuf>) -> PyResult<Self> {
        let pool =
            py.detach(|| HostPool::from_settings_json(settings_json, config_file.as_deref()));
        Ok(NativePool(pool.map_err(|e| to_pyerr(py, e))?))
    }

    /// The servers' labels, in configuration order.
    fn labels(&self) -> Vec<String> {
        self.0.labels()
    }

    /// Waits up to `timeout` seconds until `count` servers take work;
    /// answers how many do.
    #[pyo3(signature = (count, timeout, aio = false))]
    fn wait_healthy(
        &self,
        py: Python<'_>,
        count: usize,
        timeout: Seconds,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let pool = self.0.clone();
        call(py, aio, async move {
            Ok(json!(pool.wait_healthy(count, timeout.0).await?))
        })
    }

    /// Submits a workflow; answers the submission's id.
    #[pyo3(signature = (workflow, aio = false))]
    fn submit(&self, py: Python<'_>, workflow: Json, aio: bool) -> PyResult<Py<PyAny>> {
        let pool = self.0.clone();
        call(py, aio, async move { pool.submit(workflow.0).await })
    }

    /// Waits up to `timeout` seconds (`None`: no limit) for a submission's
    /// one outcome, whatever it is, as a dict.
    #[pyo3(signature = (prompt_id, timeout = None, aio = false))]
    fn outcome(
        &self,
        py: Python<'_>,
        prompt_id: String,
        timeout: Option<Seconds>,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let pool = self.0.clone();
        call(py, aio, async move {
            let outcome = pool.outcome(&prompt_id, Seconds::of(timeout)).await?;
            Ok(outcome.to_json())
        })
    }

    /// Submits and waits up to `timeout` seconds for the one outcome, as a
    /// dict.
    #[pyo3(signature = (workflow, timeout = None, aio = false))]
    fn run(
        &self,
        py: Python<'_>,
        workflow: Json,
        timeout: Option<Seconds>,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let pool = self.0.clone();
        call(py, aio, async move {
            let outcome = pool.run(workflow.0, Seconds::of(timeout)).await?;
            Ok(outcome.to_json())
        })
    }

    /// Interrupts a submission where it runs; answers whether it did.
    #[pyo3(signature = (prompt_id, aio = false))]
    fn interrupt(&self, py: Python<'_>, prompt_id: String, aio: bool) -> PyResult<Py<PyAny>> {
        let pool = self.0.clone();
        call(py, aio, async move { pool.interrupt(&prompt_id).await })
    }

    /// Figures per server, a list of dicts.
    fn stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.0.stats_json().into_object(py)
    }

    /// The next event, waiting up to `timeout` seconds; `None` when none
    /// came. Queued from the first call on. A tuple `(kind, server,
    /// payload)`: a server's event has kind `server` and the client's typed
    /// event as payload; `moved` and `finished` have their host JSON.
    #[pyo3(signature = (timeout, aio = false))]
    fn next_event(&self, py: Python<'_>, timeout: Seconds, aio: bool) -> PyResult<Py<PyAny>> {
        let pool = self.0.clone();
        call(py, aio, async move {
            Ok(PulledEvent(pool.next_event_async(timeout.0).await?))
        })
    }

    /// Pull-queue events skipped because they were not pulled fast enough.
    fn skipped_events(&self) -> u64 {
        self.0.skipped_events()
    }

    /// Closes every client. Idempotent.
    #[pyo3(signature = (aio = false))]
    fn close(&self, py: Python<'_>, aio: bool) -> PyResult<Py<PyAny>> {
        let pool = self.0.clone();
        call(py, aio, async move {
            pool.close().await;
            Ok(())
        })
    }
}

/// [`NativePool::next_event`]'s answer.
struct PulledEvent(Option<HostPoolEvent>);

impl Answer for PulledEvent {
    fn into_object(self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let Some(event) = self.0 else {
            return Ok(py.None());
        };
        let server = event.server().to_owned();
        match &event {
            HostPoolEvent::Server { event: inner, .. } => {
                let typed = Converter::default().event(py, inner)?;
                ("server", server, typed).into_py_any(py)
            }
            _ => (event.kind(), server, event.to_json().into_object(py)?).into_py_any(py),
        }
    }
}
