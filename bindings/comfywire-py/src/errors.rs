//! `HostError` to Python exceptions. The exception classes are defined in
//! Python (`comfywire/_errors.py`) so they can carry typed attributes; this
//! module only hands the code, message, details and outcome to its
//! factory, as Python objects.

use comfywire_host::HostError;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::convert::{outcome_to_py, to_py};

static FACTORY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The matching `comfywire` exception for a host error.
pub(crate) fn to_pyerr(py: Python<'_>, error: HostError) -> PyErr {
    let made = (|| {
        let factory = FACTORY.get_or_try_init(py, || {
            py.import("comfywire._errors")?
                .getattr("_from_native")
                .map(Bound::unbind)
        })?;
        let detail = error.detail.as_ref().map(|d| to_py(py, d)).transpose()?;
        let outcome = error
            .outcome
            .as_deref()
            .map(|o| outcome_to_py(py, o))
            .transpose()?;
        let args = (
            error.code.as_u32(),
            error.code.name(),
            error.message.as_str(),
            detail,
            outcome,
        );
        factory.call1(py, args)
    })();
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
