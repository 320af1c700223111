//! Python callbacks. The callables live in the Python client's registry
//! (`comfywire._client._Callbacks`, a dict by key) where the garbage
//! collector sees them; the host holds a [`PyCallback`]: a weak reference
//! to that registry and the key. The dispatcher thread keeps one Python
//! thread state for its life and takes the GIL once per batch
//! ([`PyDispatch`]).

use comfywire_host::event::Event;
use comfywire_host::{DispatchContext, EventCallback, HostEvent, LazyFlat};
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyWeakrefReference};

use crate::events::Converter;

/// Runs a client's dispatcher thread as Python wants it: without a thread
/// state of its own, CPython would make and destroy one (mapping and
/// unmapping a frame stack) per callback call.
pub(crate) struct PyDispatch;

impl DispatchContext for PyDispatch {
    fn run_thread(&self, run: &mut (dyn FnMut() + Send)) {
        // One thread state for the loop, which waits without the GIL.
        Python::attach(|py| py.detach(run));
    }

    fn run_batch(&self, run: &mut (dyn FnMut() + Send)) {
        Python::attach(|_| run());
    }
}

/// What the host's registry holds for one Python callback.
pub(crate) struct PyCallback {
    /// Weak: the host never keeps the callables alive.
    registry: Py<PyWeakrefReference>,
    key: Py<PyAny>,
    /// Only the dispatcher thread converts, so the lock is never contended.
    converter: Mutex<Converter>,
}

impl PyCallback {
    /// The host's entry for `registry[key]`.
    pub(crate) fn new(registry: &Bound<'_, PyAny>, key: Py<PyAny>) -> PyResult<PyCallback> {
        Ok(PyCallback {
            registry: PyWeakrefReference::new(registry)?.unbind(),
            key,
            converter: Mutex::default(),
        })
    }

    /// Converts and calls the callable, if it is still registered.
    fn deliver(
        &self,
        kind: &str,
        convert: impl FnOnce(Python<'_>, &mut Converter) -> PyResult<Py<PyAny>>,
    ) -> Result<(), String> {
        Python::attach(|py| {
            let Some(registry) = self.registry.bind(py).upgrade() else {
                return Ok(());
            };
            let found = registry
                .cast::<PyDict>()
                .ok()
                .map(|d| d.get_item(&self.key));
            let Some(Ok(Some(callable))) = found else {
                return Ok(());
            };
            let event = convert(py, &mut self.converter.lock());
            match event.and_then(|e| callable.call1((e,))) {
                Ok(_) => Ok(()),
                Err(err) => Err(report(&registry, kind, err)),
            }
        })
    }
}

impl EventCallback for PyCallback {
    fn on_event(&self, event: &HostEvent) -> Result<(), String> {
        self.deliver(event.kind.name(), |py, c| c.host_event(py, event))
    }

    fn on_client_event(&self, event: &Event, _flat: &LazyFlat<'_>) -> Result<(), String> {
        self.deliver(event.kind().name(), |py, c| c.event(py, event))
    }
}

/// Hands a callback's exception to the registry's `_failed` (it logs it
/// and answers its text for the host's report).
fn report(registry: &Bound<'_, PyAny>, kind: &str, err: PyErr) -> String {
    let py = registry.py();
    let text = registry.call_method1("_failed", (kind, err.clone_ref(py).into_value(py)));
    text.and_then(|t| t.extract()).unwrap_or_else(|_| {
        // Logging failed (interpreter shutting down): print the report.
        err.print(py);
        format!("{err}")
    })
}
