//! The one helper every blocking call goes through ([`block`]), its
//! asyncio twin ([`call`] with `aio=True`), and the methods made of them
//! ([`aio_methods`]).

use std::future::Future;
use std::time::Duration;

use comfywire_host::{HostError, blocking_runtime};
use pyo3::prelude::*;

use crate::convert::Answer;
use crate::errors::to_pyerr;

/// How long one wait with the GIL released lasts before signals are checked.
const SLICE: Duration = Duration::from_millis(50);

/// Drives `future` on this thread, on the shared runtime, with the GIL
/// released (other Python threads run), in slices of [`SLICE`]: between
/// them a pending signal's exception (e.g. `KeyboardInterrupt`) is raised
/// and the future dropped. Driven in place, not spawned, so a wake-up
/// reaches the waiting thread directly.
pub(crate) fn block<T, F>(py: Python<'_>, future: F) -> PyResult<T>
where
    T: Send,
    F: Future<Output = Result<T, HostError>> + Send,
{
    let rt = blocking_runtime().map_err(|e| to_pyerr(py, e))?;
    let mut future = std::pin::pin!(future);
    loop {
        let slice = async { tokio::time::timeout(SLICE, future.as_mut()).await };
        match py.detach(|| rt.block_on(slice)) {
            Ok(answer) => return answer.map_err(|e| to_pyerr(py, e)),
            Err(_) => py.check_signals()?,
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
    if !aio {
        return block(py, future)?.into_object(py);
    }
    let awaitable = pyo3_async_runtimes::tokio::future_into_py(py, async move {
        let result = future.await;
        Python::attach(|py| result.map_err(|e| to_pyerr(py, e))?.into_object(py))
    })?;
    Ok(awaitable.unbind())
}

/// The `#[pymethods]` of a class wrapping a host handle (`self.0`): the
/// methods in braces as written, then one per row, `fn name(args) =>
/// |handle| future;`, which runs `future` with a clone of the handle and
/// also takes `aio` (default `False`): it blocks, or answers an awaitable.
macro_rules! aio_methods {
    ($object:ident { $($plain:tt)* } $(
        $(#[doc = $doc:literal])*
        fn $name:ident($($arg:ident: $ty:ty $(= $default:tt)?),*) => |$handle:ident| $call:expr;
    )*) => {
        #[pymethods]
        impl $object {
            $($plain)*
            $(
                $(#[doc = $doc])*
                #[pyo3(signature = ($($arg $(= $default)?,)* aio = false))]
                #[allow(clippy::too_many_arguments)]
                fn $name(&self, py: Python<'_>, $($arg: $ty,)* aio: bool) -> PyResult<Py<PyAny>> {
                    let $handle = self.0.clone();
                    $crate::wait::call(py, aio, async move { $call.await })
                }
            )*
        }
    };
}
pub(crate) use aio_methods;
