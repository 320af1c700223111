//! The one helper every blocking call goes through: the work runs on the
//! shared runtime while the calling thread waits with the GIL released, in
//! short slices, checking for signals in between, so other Python threads
//! keep running and Ctrl-C raises `KeyboardInterrupt` promptly. With
//! `aio=True` the same work is an asyncio awaitable instead.

use std::future::Future;
use std::sync::{Mutex, PoisonError, mpsc};
use std::time::Duration;

use comfywire_host::{ErrorCode, HostError, runtime};
use pyo3::prelude::*;

use crate::convert::Answer;
use crate::errors::to_pyerr;

/// How long one wait with the GIL released lasts before signals are checked.
const SLICE: Duration = Duration::from_millis(50);

/// Aborts the spawned work when the caller stops waiting for it (Ctrl-C),
/// so nothing keeps running for an answer nobody reads.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `future` on the shared runtime while this thread waits with the
/// GIL released, in slices of [`SLICE`], checking for signals in between:
/// a pending signal handler's exception (e.g. `KeyboardInterrupt`) is
/// raised at once and the work is cancelled.
pub(crate) fn block<T, F>(py: Python<'_>, future: F) -> PyResult<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T, HostError>> + Send + 'static,
{
    let rt = runtime().map_err(|e| to_pyerr(py, e))?;
    let (tx, rx) = mpsc::sync_channel(1);
    let task = rt.spawn(async move {
        let _ = tx.send(future.await);
    });
    let _abort = AbortOnDrop(task.abort_handle());
    // `Mutex` only to make the receiver `Sync` for `detach`; uncontended.
    let rx = Mutex::new(rx);
    loop {
        let answer = py.detach(|| {
            rx.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .recv_timeout(SLICE)
        });
        match answer {
            Ok(result) => return result.map_err(|e| to_pyerr(py, e)),
            Err(mpsc::RecvTimeoutError::Timeout) => py.check_signals()?,
            // The task ended without answering: it panicked (or the runtime
            // is shutting down).
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let error = HostError::new(
                    ErrorCode::Panic,
                    "the comfywire task stopped without an answer",
                );
                return Err(to_pyerr(py, error));
            }
        }
    }
}

/// Either blocks (sync API) or returns an asyncio awaitable (async API) for
/// the same work; the answer becomes a Python object with the GIL held.
pub(crate) fn call<T, F>(py: Python<'_>, aio: bool, future: F) -> PyResult<Py<PyAny>>
where
    T: Answer,
    F: Future<Output = Result<T, HostError>> + Send + 'static,
{
    if aio {
        let awaitable = pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let result = future.await;
            Python::attach(|py| result.map_err(|e| to_pyerr(py, e))?.into_object(py))
        })?;
        Ok(awaitable.unbind())
    } else {
        block(py, future)?.into_object(py)
    }
}
