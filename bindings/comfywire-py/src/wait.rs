//! The one helper every blocking call goes through: the work runs on the
//! shared runtime while the calling thread waits with the GIL released, in
//! short slices, checking for signals in between, so other Python threads
//! keep running and Ctrl-C raises `KeyboardInterrupt` promptly.

use std::future::Future;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use comfywire_host::{ErrorCode, HostError, runtime};
use pyo3::prelude::*;

use crate::errors::{host, to_pyerr};

/// How long one wait with the GIL released lasts before signals are checked.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// Aborts the spawned work when the caller stops waiting for it (Ctrl-C, its
/// own timeout), so nothing keeps running for an answer nobody reads.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `op` in slices of at most [`SLICE`] with the GIL released until it
/// returns `Some` or `deadline` passes (`Ok(None)`); a pending signal
/// handler's exception (e.g. `KeyboardInterrupt`) is returned at once.
pub(crate) fn in_slices<R, F>(
    py: Python<'_>,
    deadline: Option<Instant>,
    mut op: F,
) -> PyResult<Option<R>>
where
    R: Send,
    F: FnMut(Duration) -> Option<R> + Send,
{
    loop {
        let slice = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
            None => SLICE,
        };
        if let Some(r) = py.detach(|| op(slice)) {
            return Ok(Some(r));
        }
        py.check_signals()?;
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
    }
}

/// Runs `future` on the shared runtime and waits for it as [`in_slices`]
/// does; `Ok(None)` when `deadline` passed first (the work is cancelled).
pub(crate) fn block_until<T, F>(
    py: Python<'_>,
    future: F,
    deadline: Option<Instant>,
) -> PyResult<Option<T>>
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
    let rx = std::sync::Mutex::new(rx);
    let answer = in_slices(py, deadline, |slice| {
        match rx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .recv_timeout(slice)
        {
            Ok(result) => Some(result),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            // The task ended without answering: it panicked (or the runtime is
            // shutting down).
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(Err(host(
                ErrorCode::Panic,
                "the comfywire task stopped without an answer",
            ))),
        }
    })?;
    match answer {
        Some(Ok(v)) => Ok(Some(v)),
        Some(Err(e)) => Err(to_pyerr(py, e)),
        None => Ok(None),
    }
}

/// [`block_until`] without a deadline.
pub(crate) fn block<T, F>(py: Python<'_>, future: F) -> PyResult<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T, HostError>> + Send + 'static,
{
    match block_until(py, future, None)? {
        Some(v) => Ok(v),
        None => Err(to_pyerr(py, host(ErrorCode::Timeout, "no answer"))),
    }
}

/// Either blocks (sync API) or returns an asyncio awaitable (async API) for
/// the same work; `convert` turns the answer into a Python object with the
/// GIL held.
pub(crate) fn call<T, F, C>(py: Python<'_>, aio: bool, future: F, convert: C) -> PyResult<Py<PyAny>>
where
    T: Send + 'static,
    F: Future<Output = Result<T, HostError>> + Send + 'static,
    C: for<'py> FnOnce(Python<'py>, T) -> PyResult<Py<PyAny>> + Send + 'static,
{
    if aio {
        let awaitable = pyo3_async_runtimes::tokio::future_into_py(py, async move {
            let result = future.await;
            Python::attach(|py| match result {
                Ok(v) => convert(py, v),
                Err(e) => Err(to_pyerr(py, e)),
            })
        })?;
        Ok(awaitable.unbind())
    } else {
        let v = block(py, future)?;
        convert(py, v)
    }
}
