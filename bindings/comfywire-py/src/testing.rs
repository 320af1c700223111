//! `comfywire.testing.MockServer`: the Rust mock ComfyUI in-process, on a
//! runtime of its own so a firehose never competes with the client's
//! workers for the same threads.

use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use comfywire_host::{ErrorCode, HostError};
use comfywire_mock::{Fault, MockConfig, MockServer, TraceSource};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::Value;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

use crate::convert::{to_py, workflow_from_py};
use crate::wait::block;

static MOCK_RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

fn mock_runtime() -> PyResult<&'static Runtime> {
    MOCK_RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("comfywire-mock")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the mock runtime: {e}")))
}

/// A running mock server (`None` once stopped).
#[pyclass(module = "comfywire._native", name = "MockServer", frozen)]
pub(crate) struct NativeMockServer {
    server: Mutex<Option<MockServer>>,
    url: String,
}

impl NativeMockServer {
    fn server(&self) -> PyResult<MutexGuard<'_, Option<MockServer>>> {
        let guard = self.server.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            return Err(PyRuntimeError::new_err("the mock server is stopped"));
        }
        Ok(guard)
    }
}

fn with<T>(
    guard: &MutexGuard<'_, Option<MockServer>>,
    f: impl FnOnce(&MockServer) -> T,
) -> PyResult<T> {
    guard
        .as_ref()
        .map(f)
        .ok_or_else(|| PyRuntimeError::new_err("the mock server is stopped"))
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
        let rt = mock_runtime()?;
        let config = MockConfig {
            port: 0,
            traces: traces_dir.map_or(TraceSource::Embedded, |d| TraceSource::Dir(d.into())),
            speed,
            default_scenario: default_scenario.to_owned(),
        };
        let server = py
            .detach(|| rt.block_on(MockServer::start_with(config)))
            .map_err(|e| PyRuntimeError::new_err(format!("cannot start the mock: {e}")))?;
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
        with(&self.server()?, MockServer::scenarios)
    }

    /// The workflow that replays `name`, or `None`.
    fn workflow(&self, py: Python<'_>, name: &str) -> PyResult<Py<PyAny>> {
        let wf = with(&self.server()?, |s| s.workflow(name))?;
        to_py(py, &wf.unwrap_or(Value::Null)).map(Bound::unbind)
    }

    /// Injects a fault by name with its parameters, as `POST /mock/fault`
    /// takes them.
    #[pyo3(signature = (fault, params=None))]
    fn inject(&self, fault: &str, params: Option<&Bound<'_, PyDict>>) -> PyResult<()> {
        let mut object = match params {
            Some(p) => workflow_from_py(p.as_any())?,
            None => Value::Object(serde_json::Map::new()),
        };
        if let Some(map) = object.as_object_mut() {
            map.insert("fault".into(), Value::String(fault.to_owned()));
        }
        let fault: Fault = serde_json::from_value(object)
            .map_err(|e| PyValueError::new_err(format!("bad fault: {e}")))?;
        with(&self.server()?, |s| s.inject(fault))
    }

    /// Restarts: drops sockets and forgets queue and history.
    fn restart(&self) -> PyResult<()> {
        with(&self.server()?, MockServer::restart)
    }

    /// Playback speed: 1.0 recorded, 0 without delays.
    fn set_speed(&self, speed: f64) -> PyResult<()> {
        with(&self.server()?, |s| s.set_speed(speed))
    }

    /// The mock's counters as a dict.
    fn stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let stats = with(&self.server()?, MockServer::stats)?;
        let value = serde_json::to_value(stats).unwrap_or(Value::Null);
        to_py(py, &value).map(Bound::unbind)
    }

    /// Starts sending `frames` frames of `scenario` to `client_id`'s socket
    /// as fast as it takes them.
    #[pyo3(signature = (client_id, frames, scenario="success_single"))]
    fn firehose(&self, client_id: &str, frames: u64, scenario: &str) -> PyResult<Firehose> {
        let rt = mock_runtime()?;
        let _ctx = rt.enter();
        let task = with(&self.server()?, |s| s.firehose(client_id, frames, scenario))?;
        Ok(Firehose {
            task: Mutex::new(Some(task)),
            sent: Mutex::new(None),
        })
    }

    /// Stops the server. Idempotent.
    fn shutdown(&self, py: Python<'_>) -> PyResult<()> {
        let server = self
            .server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(server) = server {
            let rt = mock_runtime()?;
            py.detach(|| rt.block_on(server.shutdown()));
        }
        Ok(())
    }
}

/// A running firehose.
#[pyclass(module = "comfywire._native", frozen)]
pub(crate) struct Firehose {
    task: Mutex<Option<JoinHandle<u64>>>,
    sent: Mutex<Option<u64>>,
}

#[pymethods]
impl Firehose {
    /// Waits for the end; answers the frames sent (0 if the client had no
    /// socket).
    fn wait(&self, py: Python<'_>) -> PyResult<u64> {
        if let Some(n) = *self.sent.lock().unwrap_or_else(PoisonError::into_inner) {
            return Ok(n);
        }
        let Some(task) = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return Err(PyRuntimeError::new_err(
                "another thread is waiting for this firehose",
            ));
        };
        // Awaited from the client runtime through `block`, so Ctrl-C works;
        // the firehose itself goes on running on the mock runtime.
        let n = block(py, async move {
            task.await
                .map_err(|e| HostError::new(ErrorCode::Panic, format!("firehose failed: {e}")))
        })?;
        *self.sent.lock().unwrap_or_else(PoisonError::into_inner) = Some(n);
        Ok(n)
    }
}
