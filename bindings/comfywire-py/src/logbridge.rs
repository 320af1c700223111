//! Rust `tracing` records (the client's redacted debug log) into Python
//! `logging` (logger `comfywire`), through the host's log thread
//! (`comfywire_host::log`), so no runtime worker waits for the GIL.

use comfywire_host::log::{Level, disable_debug_log, enable_debug_log};
use pyo3::prelude::*;

fn python_level(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        _ => "debug",
    }
}

/// One record to the `comfywire` logger, on the host's log thread.
fn to_logging(level: Level, line: &str) {
    Python::attach(|py| {
        let logged = py
            .import("logging")
            .and_then(|l| l.call_method1("getLogger", ("comfywire",)))
            .and_then(|l| l.call_method1(python_level(level), ("%s", line)));
        // A broken handler must not kill the bridge.
        if let Err(e) = logged {
            e.print(py);
        }
    });
}

/// Sends comfywire's debug log (frames, connects, HTTP; secrets redacted)
/// to the Python logger `comfywire` at matching levels.
#[pyfunction]
pub(crate) fn enable_debug_logging() -> PyResult<()> {
    enable_debug_log(|| Box::new(to_logging))
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.message))
}

/// Stops sending the debug log to Python.
#[pyfunction]
pub(crate) fn disable_debug_logging() {
    disable_debug_log();
}
