//! Python callbacks. The callables live in a [`Store`] that the owning
//! `NativeClient` shows to Python's garbage collector (`__traverse__` /
//! `__clear__`); the host's registry only holds a key into it. So a
//! callback that refers back to its client forms a cycle the collector can
//! see and break, and unsubscribing drops the callable at once.
//!
//! The dispatcher thread keeps one Python thread state for its whole life
//! and holds the GIL once per batch of events ([`PyDispatch`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use comfywire_host::comfywire_client::Event;
use comfywire_host::{CallbackHandle, DispatchContext, EventCallback, HostEvent, LazyFlat};
use pyo3::prelude::*;
use pyo3::{PyTraverseError, PyVisit};

use crate::events::Converter;

/// Runs a client's dispatcher thread as Python wants it. Without it every
/// callback call would take the GIL from a thread with no Python thread
/// state, and CPython would make one (mapping a fresh frame stack) and
/// destroy it again (unmapping it, flushing every core's TLB) per call.
pub(crate) struct PyDispatch;

impl DispatchContext for PyDispatch {
    fn run_thread(&self, run: &mut (dyn FnMut() + Send)) {
        // The thread state made here lives until the loop ends; the loop
        // itself waits without the GIL.
        Python::attach(|py| py.detach(run));
    }

    fn run_batch(&self, run: &mut (dyn FnMut() + Send)) {
        // The calls inside attach again, which only counts while the GIL
        // is held.
        Python::attach(|_| run());
    }
}

struct Entry {
    callable: Py<PyAny>,
    // Dropping the handle unregisters from the host.
    _handle: CallbackHandle,
}

/// The callables of one client, by key.
#[derive(Default)]
pub(crate) struct Store {
    entries: Mutex<HashMap<u64, Entry>>,
    next_key: AtomicU64,
}

impl Store {
    fn entries(&self) -> MutexGuard<'_, HashMap<u64, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A fresh key for [`Store::insert`].
    pub(crate) fn new_key(&self) -> u64 {
        self.next_key.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Keeps `callable` (registered in the host under `handle`) for `key`.
    pub(crate) fn insert(&self, key: u64, callable: Py<PyAny>, handle: CallbackHandle) {
        let old = self.entries().insert(
            key,
            Entry {
                callable,
                _handle: handle,
            },
        );
        drop(old);
    }

    /// Unregisters and releases one callback; true if it was registered.
    /// The entry is dropped after the lock is released: its decref may run
    /// a `__del__` that subscribes or unsubscribes again.
    pub(crate) fn remove(&self, key: u64) -> bool {
        let removed = self.entries().remove(&key);
        removed.is_some()
    }

    /// Unregisters and releases every callback.
    pub(crate) fn clear(&self) {
        let all = std::mem::take(&mut *self.entries());
        drop(all);
    }

    /// Registered callbacks.
    pub(crate) fn len(&self) -> usize {
        self.entries().len()
    }

    /// Shows the callables to the garbage collector. `try_lock`: a
    /// collection can start on any allocation, and must never wait.
    pub(crate) fn traverse(&self, visit: &PyVisit<'_>) -> Result<(), PyTraverseError> {
        if let Ok(entries) = self.entries.try_lock() {
            for entry in entries.values() {
                visit.call(&entry.callable)?;
            }
        }
        Ok(())
    }

    fn callable(&self, py: Python<'_>, key: u64) -> Option<Py<PyAny>> {
        self.entries().get(&key).map(|e| e.callable.clone_ref(py))
    }
}

/// What the host registry holds for one Python callback.
pub(crate) struct PyCallback {
    /// Key into the store.
    pub(crate) key: u64,
    /// Weak: the registry must not keep the client's callables alive.
    pub(crate) store: Weak<Store>,
    /// Only the dispatcher thread converts, so the lock is never contended.
    converter: Mutex<Converter>,
}

impl PyCallback {
    /// A registry entry for `key` in `store`.
    pub(crate) fn new(key: u64, store: &Arc<Store>) -> PyCallback {
        PyCallback {
            key,
            store: Arc::downgrade(store),
            converter: Mutex::default(),
        }
    }

    /// Converts with `convert` and calls the callable, if it is still
    /// registered; a raised exception is logged and returned as text.
    fn deliver(
        &self,
        kind: &str,
        convert: impl FnOnce(Python<'_>, &mut Converter) -> PyResult<Py<PyAny>>,
    ) -> Result<(), String> {
        let Some(store) = self.store.upgrade() else {
            return Ok(());
        };
        Python::attach(|py| {
            // Cloned out so the lock is not held while Python code runs.
            let Some(callable) = store.callable(py, self.key) else {
                return Ok(());
            };
            let event = {
                let mut converter = self
                    .converter
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                convert(py, &mut converter)
            };
            match event.and_then(|e| callable.call1(py, (e,))) {
                Ok(_) => Ok(()),
                Err(err) => {
                    log_failure(py, kind, &err);
                    Err(describe(py, &err))
                }
            }
        })
    }
}

impl EventCallback for PyCallback {
    fn on_event(&self, event: &HostEvent) -> Result<(), String> {
        self.deliver(&event.kind, |py, c| c.host_event(py, event))
    }

    fn on_client_event(&self, event: &Event, _flat: &LazyFlat<'_>) -> Result<(), String> {
        self.deliver(event.kind().name(), |py, c| c.event(py, event))
    }
}

fn describe(py: Python<'_>, err: &PyErr) -> String {
    let name = err
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    format!("{name}: {}", err.value(py))
}

/// Logs a failed callback with its traceback on the `comfywire` logger.
fn log_failure(py: Python<'_>, kind: &str, err: &PyErr) {
    let logged = (|| -> PyResult<()> {
        let logger = py
            .import("logging")?
            .call_method1("getLogger", ("comfywire",))?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("exc_info", err.clone_ref(py).into_value(py))?;
        logger.call_method(
            "error",
            (
                "a comfywire callback for %r events raised; the client goes on",
                kind,
            ),
            Some(&kwargs),
        )?;
        Ok(())
    })();
    if logged.is_err() {
        // Logging itself failed (interpreter shutting down): print instead
        // of losing the report.
        err.print(py);
    }
}
