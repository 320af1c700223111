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

/// The native pool behind `comfywire.Pool` and `comfywire.AsyncPool`.
#[pyclass(module = "comfywire._native", name = "Pool", frozen)]
pub(crate) struct NativePool(HostPool);

crate::wait::aio_methods! {
    NativePool {
        /// Starts a pool from the caller's arguments (settings-file JSON with
        /// `servers`), the `COMFYWIRE_*` environment and a settings file, in
        /// that order of precedence; its clients connect in the background.
        #[new]
        #[pyo3(signature = (settings_json, config_file=None))]
        fn new(
            py: Python<'_>,
            settings_json: &str,
            config_file: Option<PathBuf>,
        ) -> PyResult<Self> {
            let config = config_file.as_deref();
            let pool = py.detach(|| HostPool::from_settings_json(settings_json, config));
            Ok(NativePool(pool.map_err(|e| to_pyerr(py, e))?))
        }

        /// The servers' labels, in configuration order.
        fn labels(&self) -> Vec<String> {
            self.0.labels()
        }

        /// Figures per server, a list of dicts.
        fn stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
            self.0.stats_json().into_object(py)
        }

        /// Pull-queue events skipped because they were not pulled fast enough.
        fn skipped_events(&self) -> u64 {
            self.0.skipped_events()
        }
    }
    /// Waits up to `timeout` seconds until `count` servers take work;
    /// answers how many do.
    fn wait_healthy(count: usize, timeout: Seconds)
        => |pool| async move { Ok(json!(pool.wait_healthy(count, timeout.0).await?)) };
    /// Submits a workflow; answers the submission's id.
    fn submit(workflow: Json) => |pool| pool.submit(workflow.0);
    /// Waits up to `timeout` seconds (`None`: no limit) for a submission's
    /// one outcome, whatever it is, as a dict.
    fn outcome(prompt_id: String, timeout: Option<Seconds> = None) => |pool| async move {
        Ok(pool.outcome(&prompt_id, Seconds::of(timeout)).await?.to_json())
    };
    /// Submits and waits up to `timeout` seconds for the one outcome, as a
    /// dict.
    fn run(workflow: Json, timeout: Option<Seconds> = None) => |pool| async move {
        Ok(pool.run(workflow.0, Seconds::of(timeout)).await?.to_json())
    };
    /// Interrupts a submission where it runs; answers whether it did.
    fn interrupt(prompt_id: String) => |pool| pool.interrupt(&prompt_id);
    /// The next event, waiting up to `timeout` seconds; `None` when none
    /// came. Queued from the first call on. A tuple `(kind, server,
    /// payload)`: a server's event has kind `server` and the client's typed
    /// event as payload; `moved` and `finished` have their host JSON.
    fn next_event(timeout: Seconds) => |pool| async move {
        Ok(PulledEvent(pool.next_event_async(timeout.0).await?))
    };
    /// Closes every client. Idempotent.
    fn close() => |pool| async move {
        pool.close().await;
        Ok(())
    };
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
