//! `comfywire._native.Client`: one `HostClient`, its Python callbacks, and
//! every operation in two forms — blocking (GIL released, Ctrl-C checked)
//! or, with `aio=True`, an asyncio awaitable on the shared runtime. The
//! public `comfywire.Client` / `AsyncClient` classes wrap it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use comfywire_host::comfywire_client::{Client, Deadlines, FileRef, SubmitOptions, UploadOptions};
use comfywire_host::{ErrorCode, HostClient, HostError, HostOutcome, outcome_result};
use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use pyo3::{PyTraverseError, PyVisit};
use serde_json::Value;

use crate::callbacks::{PyCallback, PyDispatch, Store};
use crate::convert::{to_py, workflow_from_py};
use crate::errors::{host, to_pyerr};
use crate::stream::EventStream;
use crate::wait::{block_until, call};

fn secs(value: Option<f64>, what: &str) -> Result<Option<Duration>, HostError> {
    value
        .map(|v| {
            Duration::try_from_secs_f64(v).map_err(|_| {
                host(
                    ErrorCode::InvalidArgument,
                    format!("{what}: {v} is not a duration in seconds"),
                )
            })
        })
        .transpose()
}

fn outcome_json(outcome: &HostOutcome) -> String {
    outcome.to_json().to_string()
}

fn none(py: Python<'_>, _: ()) -> PyResult<Py<PyAny>> {
    Ok(py.None())
}

fn any<T>(py: Python<'_>, v: T) -> PyResult<Py<PyAny>>
where
    T: for<'py> IntoPyObject<'py>,
{
    v.into_bound_py_any(py).map(Bound::unbind)
}

fn json_text(py: Python<'_>, text: String) -> PyResult<Py<PyAny>> {
    crate::convert::text_to_py(py, Some(&text)).map(Bound::unbind)
}

/// Waits for a prompt's record, whatever its outcome.
async fn wait_record(client: Client, prompt_id: String) -> Result<HostOutcome, HostError> {
    let record = client.wait_record(&prompt_id, Deadlines::default()).await?;
    Ok(HostOutcome::from_record(&record))
}

/// The native client behind `comfywire.Client` and `comfywire.AsyncClient`.
#[pyclass(module = "comfywire._native", name = "Client", frozen, weakref)]
pub(crate) struct NativeClient {
    // `None` only while being dropped (see `Drop`).
    host: Option<Arc<HostClient>>,
    store: Arc<Store>,
}

impl NativeClient {
    fn host(&self) -> &Arc<HostClient> {
        // Set from construction until drop; no method runs after drop.
        #[allow(clippy::unwrap_used)]
        self.host.as_ref().unwrap()
    }

    fn client(&self) -> Client {
        self.host().client().clone()
    }
}

#[pymethods]
impl NativeClient {
    /// Starts a client from settings JSON (the settings-file format); it
    /// connects in the background.
    #[new]
    fn new(py: Python<'_>, settings_json: &str) -> PyResult<Self> {
        let host = py
            .detach(|| {
                let config = HostClient::settings_config(settings_json)?;
                HostClient::with_context(config, Arc::new(PyDispatch))
            })
            .map_err(|e| to_pyerr(py, e))?;
        Ok(NativeClient {
            host: Some(Arc::new(host)),
            store: Arc::new(Store::default()),
        })
    }

    fn __traverse__(&self, visit: PyVisit<'_>) -> Result<(), PyTraverseError> {
        self.store.traverse(&visit)
    }

    fn __clear__(&self) {
        self.store.clear();
    }

    /// The client id.
    #[getter]
    fn client_id(&self) -> String {
        self.host().client_id()
    }

    /// The connection state as a dict.
    fn status(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        to_py(py, &self.host().status().to_json()).map(Bound::unbind)
    }

    /// Counters as a dict.
    fn stats(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let s = self.host().stats();
        let d = PyDict::new(py);
        d.set_item("frames", s.frames)?;
        d.set_item("events", s.events)?;
        d.set_item("bad_frames", s.bad_frames)?;
        d.set_item("reconnects", s.reconnects)?;
        d.set_item("coalesced", s.coalesced)?;
        d.set_item("dropped", s.dropped)?;
        d.set_item("callback_failures", s.callback_failures)?;
        d.set_item("callbacks", self.store.len())?;
        Ok(d.into_any().unbind())
    }

    /// Waits until connected.
    #[pyo3(signature = (timeout, aio=false))]
    fn wait_connected(&self, py: Python<'_>, timeout: f64, aio: bool) -> PyResult<Py<PyAny>> {
        let client = self.client();
        let timeout = secs(Some(timeout), "timeout").map_err(|e| to_pyerr(py, e))?;
        let timeout = timeout.unwrap_or_default();
        call(
            py,
            aio,
            async move { Ok(client.wait_connected(timeout).await?) },
            none,
        )
    }

    /// Registers `callback` for these kinds (all when `None`), optionally
    /// for one prompt; returns the key for `unsubscribe`.
    #[pyo3(signature = (kinds, prompt_id, callback))]
    fn subscribe(
        &self,
        py: Python<'_>,
        kinds: Option<Vec<String>>,
        prompt_id: Option<String>,
        callback: Py<PyAny>,
    ) -> PyResult<u64> {
        if !callback.bind(py).is_callable() {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "callback must be callable",
            ));
        }
        let key = self.store.new_key();
        let handle = self
            .host()
            .subscribe(
                kinds,
                prompt_id,
                Arc::new(PyCallback::new(key, &self.store)),
            )
            .map_err(|e| to_pyerr(py, e))?;
        self.store.insert(key, callback, handle);
        Ok(key)
    }

    /// Unregisters and releases a callback; true if it was registered.
    fn unsubscribe(&self, key: u64) -> bool {
        self.store.remove(key)
    }

    /// A stream of every event from now on.
    fn events(&self, py: Python<'_>) -> PyResult<EventStream> {
        EventStream::new(self.host()).map_err(|e| to_pyerr(py, e))
    }

    /// Submits a workflow; answers `(prompt_id, number, partial_json)`.
    #[pyo3(signature = (workflow, aio=false))]
    fn submit(
        &self,
        py: Python<'_>,
        workflow: &Bound<'_, PyAny>,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let workflow = workflow_from_py(workflow)?;
        let client = self.client();
        call(
            py,
            aio,
            async move {
                let s = client.submit(&workflow).await?;
                let partial = s.partial.map(|p| {
                    HostError::from(comfywire_host::comfywire_client::Error::Validation(
                        Box::new(p),
                    ))
                    .detail_json
                    .unwrap_or_default()
                });
                Ok((s.prompt_id, s.number, partial))
            },
            any,
        )
    }

    /// Submits and waits; answers the outcome JSON of a success, raises
    /// the matching error otherwise.
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
        let workflow = workflow_from_py(workflow)?;
        let client = self.client();
        let mut deadlines = client.config().deadlines;
        let given = (|| -> Result<(), HostError> {
            if let Some(t) = secs(timeout, "timeout")? {
                deadlines.total = Some(t);
            }
            if let Some(t) = secs(stall_timeout, "stall_timeout")? {
                deadlines.stall = Some(t);
            }
            if let Some(t) = secs(queue_timeout, "queue_timeout")? {
                deadlines.queue = Some(t);
            }
            Ok(())
        })();
        given.map_err(|e| to_pyerr(py, e))?;
        call(
            py,
            aio,
            async move {
                let result = client
                    .run_with(&workflow, SubmitOptions::default(), deadlines)
                    .await?;
                Ok(outcome_json(&HostOutcome::from_record(&result.record)))
            },
            any,
        )
    }

    /// Waits for a prompt's success up to `timeout` seconds; answers the
    /// outcome JSON or raises (`WaitTimeout` when the time ran out; the
    /// prompt goes on).
    #[pyo3(signature = (prompt_id, timeout=None, aio=false))]
    fn wait(
        &self,
        py: Python<'_>,
        prompt_id: String,
        timeout: Option<f64>,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let limit = secs(timeout, "timeout").map_err(|e| to_pyerr(py, e))?;
        let client = self.client();
        let expired = move |pid: &str| {
            host(
                ErrorCode::Timeout,
                format!(
                    "prompt {pid} did not finish within {:?}",
                    limit.unwrap_or_default()
                ),
            )
        };
        if aio {
            let pid = prompt_id.clone();
            return call(
                py,
                true,
                async move {
                    let waiting = wait_record(client, prompt_id.clone());
                    let outcome = match limit {
                        Some(l) => tokio::time::timeout(l, waiting)
                            .await
                            .map_err(|_| expired(&pid))??,
                        None => waiting.await?,
                    };
                    outcome_result(outcome).map(|o| outcome_json(&o))
                },
                any,
            );
        }
        let deadline = limit.map(|l| Instant::now() + l);
        let outcome = block_until(py, wait_record(client, prompt_id.clone()), deadline)?
            .ok_or_else(|| to_pyerr(py, expired(&prompt_id)))?;
        let outcome = outcome_result(outcome).map_err(|e| to_pyerr(py, e))?;
        any(py, outcome_json(&outcome))
    }

    /// The record of a prompt this client has seen: `(outcome_json,
    /// progress)` or `None`.
    #[pyo3(signature = (prompt_id, aio=false))]
    fn execution(&self, py: Python<'_>, prompt_id: String, aio: bool) -> PyResult<Py<PyAny>> {
        let client = self.client();
        call(
            py,
            aio,
            async move {
                Ok(client
                    .execution(&prompt_id)
                    .await?
                    .map(|r| (outcome_json(&HostOutcome::from_record(&r)), r.progress())))
            },
            any,
        )
    }

    /// Finished executions kept in memory, oldest first, as outcome JSON.
    #[pyo3(signature = (aio=false))]
    fn history(&self, py: Python<'_>, aio: bool) -> PyResult<Py<PyAny>> {
        let client = self.client();
        call(
            py,
            aio,
            async move {
                Ok(client
                    .history()
                    .await?
                    .iter()
                    .map(|r| outcome_json(&HostOutcome::from_record(r)))
                    .collect::<Vec<_>>())
            },
            any,
        )
    }

    /// Interrupts the prompt if it is this client's running one.
    #[pyo3(signature = (prompt_id, aio=false))]
    fn interrupt(&self, py: Python<'_>, prompt_id: String, aio: bool) -> PyResult<Py<PyAny>> {
        let client = self.client();
        call(
            py,
            aio,
            async move { Ok(client.interrupt(&prompt_id).await?) },
            any,
        )
    }

    /// The server's queue: `(running_ids, pending_ids)`.
    #[pyo3(signature = (aio=false))]
    fn queue(&self, py: Python<'_>, aio: bool) -> PyResult<Py<PyAny>> {
        let client = self.client();
        call(
            py,
            aio,
            async move {
                let q = client.queue().await?;
                Ok((
                    q.running
                        .into_iter()
                        .map(|i| i.prompt_id)
                        .collect::<Vec<_>>(),
                    q.pending
                        .into_iter()
                        .map(|i| i.prompt_id)
                        .collect::<Vec<_>>(),
                ))
            },
            any,
        )
    }

    /// Deletes pending prompts.
    #[pyo3(signature = (prompt_ids, aio=false))]
    fn delete(&self, py: Python<'_>, prompt_ids: Vec<String>, aio: bool) -> PyResult<Py<PyAny>> {
        let client = self.client();
        call(
            py,
            aio,
            async move { Ok(client.delete(&prompt_ids).await?) },
            none,
        )
    }

    /// Deletes every pending prompt.
    #[pyo3(signature = (aio=false))]
    fn clear_queue(&self, py: Python<'_>, aio: bool) -> PyResult<Py<PyAny>> {
        let client = self.client();
        call(
            py,
            aio,
            async move { Ok(client.clear_queue().await?) },
            none,
        )
    }

    /// The server's history entry of a prompt (a dict) or `None`.
    #[pyo3(signature = (prompt_id, aio=false))]
    fn server_history(&self, py: Python<'_>, prompt_id: String, aio: bool) -> PyResult<Py<PyAny>> {
        let client = self.client();
        call(
            py,
            aio,
            async move {
                Ok(client
                    .server_history(&prompt_id)
                    .await?
                    .unwrap_or(Value::Null))
            },
            |py, v| to_py(py, &v).map(Bound::unbind),
        )
    }

    /// `GET /system_stats` as a dict.
    #[pyo3(signature = (aio=false))]
    fn system_stats(&self, py: Python<'_>, aio: bool) -> PyResult<Py<PyAny>> {
        let client = self.client();
        call(
            py,
            aio,
            async move { Ok(client.system_stats().await?.to_string()) },
            json_text,
        )
    }

    /// Downloads a file from `/view`.
    #[pyo3(signature = (filename, subfolder, kind, aio=false))]
    fn view(
        &self,
        py: Python<'_>,
        filename: String,
        subfolder: String,
        kind: String,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let client = self.client();
        let file = FileRef {
            filename,
            subfolder,
            kind,
        };
        call(
            py,
            aio,
            async move { Ok(client.view(&file).await?) },
            |py, bytes| Ok(PyBytes::new(py, &bytes).into_any().unbind()),
        )
    }

    /// Downloads every output file of a finished prompt into `dir`;
    /// answers the paths.
    #[pyo3(signature = (prompt_id, dir, aio=false))]
    fn download_outputs(
        &self,
        py: Python<'_>,
        prompt_id: String,
        dir: String,
        aio: bool,
    ) -> PyResult<Py<PyAny>> {
        let client = self.client();
        call(
            py,
            aio,
            async move {
                let record = client.execution(&prompt_id).await?.ok_or_else(|| {
                    host(
                        ErrorCode::InvalidArgument,
                        format!("unknown prompt {prompt_id}"),
                    )
                })?;
                let paths = client
                    .download_outputs(&record, std::path::Path::new(&dir))
                    .await?;
                Ok(paths
                    .into_iter()
                    .map(|p| p.to_string_lossy().into_owned())
                    .collect::<Vec<_>>())
            },
            any,
        )
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
        let client = self.client();
        call(
            py,
            aio,
            async move {
                let f = client
                    .upload_image(
                        &filename,
                        &data,
                        UploadOptions {
                            subfolder,
                            kind,
                            overwrite,
                        },
                    )
                    .await?;
                Ok((f.filename, f.subfolder, f.kind))
            },
            any,
        )
    }

    /// Skips the backoff wait.
    fn retry_now(&self, py: Python<'_>) -> PyResult<()> {
        self.host().retry_now().map_err(|e| to_pyerr(py, e))
    }

    /// Disconnects and stops retrying (app in the background).
    fn pause(&self, py: Python<'_>) -> PyResult<()> {
        self.host().pause().map_err(|e| to_pyerr(py, e))
    }

    /// Reconnects now (app back).
    fn resume(&self, py: Python<'_>) -> PyResult<()> {
        self.host().resume().map_err(|e| to_pyerr(py, e))
    }

    /// The network changed: check or reconnect now.
    fn network_changed(&self, py: Python<'_>) -> PyResult<()> {
        self.host().network_changed().map_err(|e| to_pyerr(py, e))
    }

    /// Closes the client and releases every callback. Idempotent.
    #[pyo3(signature = (aio=false))]
    fn close(&self, py: Python<'_>, aio: bool) -> PyResult<Py<PyAny>> {
        let host = self.host().clone();
        let closing = async move {
            // The host joins its dispatcher thread, which may be waiting
            // for the GIL inside a callback, and blocks on the runtime: so
            // it closes on a plain thread while this caller waits without
            // the GIL (or awaits).
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::Builder::new()
                .name("comfywire-close".into())
                .spawn(move || {
                    host.close();
                    let _ = tx.send(());
                })
                .map_err(|e| {
                    HostError::new(ErrorCode::Config, format!("cannot start a thread: {e}"))
                })?;
            rx.await.map_err(|_| host_panic())
        };
        // Callables are released with the GIL held, once the host no longer
        // calls them.
        let store = self.store.clone();
        call(py, aio, closing, move |py, ()| {
            store.clear();
            Ok(py.None())
        })
    }
}

fn host_panic() -> HostError {
    host(ErrorCode::Panic, "closing the client panicked")
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
