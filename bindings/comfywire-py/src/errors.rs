//! `HostError` to Python exceptions, whose classes are defined in Python
//! (`comfywire/_errors.py`, `_from_native`) to carry typed attributes.

use comfywire_host::HostError;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

use crate::convert::Answer;

static FACTORY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// The matching `comfywire` exception for a host error.
pub(crate) fn to_pyerr(py: Python<'_>, error: HostError) -> PyErr {
    let made = FACTORY
        .import(py, "comfywire._errors", "_from_native")
        .and_then(|factory| {
            let detail = error.detail.clone().into_object(py)?;
            let outcome = error.outcome.clone().map(|o| *o).into_object(py)?;
            let (code, message) = (error.code, error.message.as_str());
            factory.call1((code.as_u32(), code.name(), message, detail, outcome))
        });
    match made {
        Ok(exc) => PyErr::from_value(exc),
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
