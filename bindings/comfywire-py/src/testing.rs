//! `comfywire.testing.MockServer`: the Rust mock ComfyUI in-process, on
//! the host's one runtime.

use comfywire_host::{ErrorCode, HostError, runtime};
use comfywire_mock::{Fault, MockConfig, MockServer, TraceSource};
use parking_lot::Mutex;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::convert::{Answer, Json};
use crate::errors::to_pyerr;
use crate::wait::block;

/// A running mock server (`None` once stopped).
#[pyclass(module = "comfywire._native", name = "MockServer", frozen)]
pub(crate) struct NativeMockServer {
    server: Mutex<Option<MockServer>>,
    url: String,
}

impl NativeMockServer {
    /// Runs `f` on the server, unless it is stopped.
    fn with<T>(&self, f: impl FnOnce(&MockServer) -> T) -> PyResult<T> {
        let server = self.server.lock();
        let stopped = || PyRuntimeError::new_err("the mock server is stopped");
        Ok(f(server.as_ref().ok_or_else(stopped)?))
    }
}

#[pymethods]
impl NativeMockServer {
    /// Starts a mock on a free port of 127.0.0.1.
    #[new]
    #[pyo3(signature = (speed=1.0, default_scenario="success_single", traces_dir=None))]
    fn new(
        py: Python<'_>,
        speed: f64,
        default_scenario: &str,
        traces_dir: Option<String>,
    ) -> PyResult<Self> {
        let traces = traces_dir.map_or(TraceSource::Embedded, |d| TraceSource::Dir(d.into()));
        let config = MockConfig {
            port: 0,
            traces,
            speed,
            default_scenario: default_scenario.to_owned(),
        };
        let rt = runtime().map_err(|e| to_pyerr(py, e))?;
        let server = py.detach(|| rt.block_on(MockServer::start_with(config)));
        let server =
            server.map_err(|e| PyRuntimeError::new_err(format!("cannot start the mock: {e}")))?;
        Ok(NativeMockServer {
            url: server.url(),
            server: Mutex::new(Some(server)),
        })
    }

    /// `http://127.0.0.1:PORT`.
    #[getter]
    fn url(&self) -> String {
        self.url.clone()
    }

    /// Names of the loaded recordings.
    fn scenarios(&self) -> PyResult<Vec<String>> {
        self.with(MockServer::scenarios)
    }

    /// The workflow that replays `name`, or `None`.
    fn workflow(&self, py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
        self.with(|s| s.workflow(name))?.into_object(py)
    }

    /// Injects a fault with its parameters (as `POST /mock/fault`).
    #[pyo3(signature = (fault, params=None))]
    fn inject(&self, fault: &str, params: Option<Json>) -> PyResult<()> {
        let mut object = params.map_or_else(|| json!({}), |p| p.0);
        if let Some(map) = object.as_object_mut() {
            map.insert("fault".into(), json!(fault));
        }
        let fault = serde_json::from_value::<Fault>(object);
        let fault = fault.map_err(|e| PyValueError::new_err(format!("bad fault: {e}")))?;
        self.with(|s| s.inject(fault))
    }

    /// Restarts: drops sockets and forgets queue and history.
    fn restart(&self) -> PyResult<()> {
        self.with(MockServer::restart)
    }

    /// Playback speed: 1.0 recorded, 0 without delays.
    fn set_speed(&self, speed: f64) -> PyResult<()> {
        self.with(|s| s.set_speed(speed))
    }

    /// The mock's counters as a dict.
    fn stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let stats = serde_json::to_value(self.with(MockServer::stats)?);
        stats.unwrap_or_default().into_object(py)
    }

    /// The mock's own ledger of every `POST /prompt` it answered (as
    /// `GET /mock/ledger`): `{"capacity", "evicted", "entries": [...]}`,
    /// each entry with `prompt_id`, `client_id`, `enqueued`, `runs`, `end`:
    /// the oracle of tests, independent of any client.
    fn ledger(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let ledger = serde_json::to_value(self.with(MockServer::ledger)?);
        ledger.unwrap_or_default().into_object(py)
    }

    /// True while `prompt_id` is pending or running on the server (its own
    /// queue, read without HTTP).
    fn queue_holds(&self, prompt_id: &str) -> PyResult<bool> {
        self.with(|s| s.queue_holds(prompt_id))
    }

    /// Sends `frames` frames of `scenario` to `client_id` as fast as it reads.
    #[pyo3(signature = (client_id, frames, scenario="success_single"))]
    fn firehose(
        &self,
        py: Python<'_>,
        client_id: &str,
        frames: u64,
        scenario: &str,
    ) -> PyResult<Firehose> {
        let _entered = runtime().map_err(|e| to_pyerr(py, e))?.enter();
        let task = self.with(|s| s.firehose(client_id, frames, scenario))?;
        Ok(Firehose(tokio::sync::Mutex::new(Err(task))))
    }

    /// Stops the server. Idempotent.
    fn shutdown(&self, py: Python<'_>) -> PyResult<()> {
        let server = self.server.lock().take();
        if let Some(server) = server {
            block(py, async move {
                server.shutdown().await;
                Ok(())
            })?;
        }
        Ok(())
    }
}

/// A running firehose: its task until it ended, then the frames it sent.
#[pyclass(module = "comfywire._native", frozen)]
pub(crate) struct Firehose(tokio::sync::Mutex<Result<u64, JoinHandle<u64>>>);

#[pymethods]
impl Firehose {
    /// Waits for the end; answers the frames sent (0: no such socket).
    fn wait(&self, py: Python<'_>) -> PyResult<u64> {
        block(py, async {
            let mut state = self.0.lock().await;
            let sent = match &mut *state {
                Ok(sent) => *sent,
                Err(task) => task.await.map_err(|e| {
                    HostError::new(ErrorCode::Panic, format!("firehose failed: {e}"))
                })?,
            };
            *state = Ok(sent);
            Ok(sent)
        })
    }
}
