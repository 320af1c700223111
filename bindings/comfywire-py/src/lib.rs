//! # comfywire-py
//!
//! The private extension module `comfywire._native` of the `comfywire`
//! Python package: a thin pyo3 shell over `comfywire-host`, which holds the
//! whole job API, the runtime, the dispatcher thread and the error codes.
//! This crate maps types, releases the GIL around every wait (Ctrl-C raises
//! `KeyboardInterrupt`) and bridges `tracing` into Python `logging`; the
//! public Python API lives in `python/src/comfywire/`.

use pyo3::prelude::*;

mod callbacks;
mod client;
mod convert;
mod errors;
mod events;
mod jobs;
mod logbridge;
mod pool;
mod stream;
mod testing;
mod wait;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let runtime = comfywire_host::runtime().map_err(|e| errors::plain(&e))?;
    // asyncio awaitables run on the same runtime as the client; a second
    // call (module reloaded in a subinterpreter) keeps the first setting.
    let _ = pyo3_async_runtimes::tokio::init_with_runtime(runtime);
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<client::NativeClient>()?;
    m.add_class::<jobs::NativeJobs>()?;
    m.add_class::<stream::EventStream>()?;
    m.add_class::<testing::NativeMockServer>()?;
    m.add_class::<testing::Firehose>()?;
    m.add_class::<pool::NativePool>()?;
    events::register(m)?;
    m.add_function(wrap_pyfunction!(logbridge::enable_debug_logging, m)?)?;
    m.add_function(wrap_pyfunction!(logbridge::disable_debug_logging, m)?)?;
    m.add_function(wrap_pyfunction!(convert::output_files, m)?)?;
    Ok(())
}
