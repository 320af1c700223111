//! `HostError` to Python exceptions. The exception classes are defined in
//! Python (`comfywire/_errors.py`) so they can carry typed attributes; this
//! module only hands the code, message and JSON details to its factory.

use comfywire_host::{ErrorCode, HostError};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

static FACTORY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The matching `comfywire` exception for a host error.
pub(crate) fn to_pyerr(py: Python<'_>, error: HostError) -> PyErr {
    let factory = FACTORY.get_or_try_init(py, || {
        py.import("comfywire._errors")?
            .getattr("_from_native")
            .map(Bound::unbind)
    });
    let outcome = error.outcome.as_ref().map(|o| o.to_json().to_string());
    let made = factory.and_then(|f| {
        f.call1(
            py,
            (
                error.code.as_u32(),
                error.code.name(),
                error.message.as_str(),
                error.detail_json.as_deref(),
                outcome,
            ),
        )
    });
    match made {
        Ok(exc) => PyErr::from_value(exc.into_bound(py)),
        // The package is broken (or being torn down): still raise something.
        Err(_) => plain(&error),
    }
}

/// A `RuntimeError` carrying the error text, for module set-up where the
/// Python package may not be importable yet.
pub(crate) fn plain(error: &HostError) -> PyErr {
    PyRuntimeError::new_err(format!(
        "comfywire [{}]: {}",
        error.code.name(),
        error.message
    ))
}

/// A host error from a code and message (for failures found in this crate).
pub(crate) fn host(code: ErrorCode, message: impl Into<String>) -> HostError {
    HostError::new(code, message)
}
