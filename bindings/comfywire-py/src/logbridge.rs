//! Rust `tracing` records (the client's redacted debug log) into Python
//! `logging` (logger `comfywire`). Formatted where they happen (the `fmt`
//! layer), they reach one logging thread through a bounded queue: no
//! worker waits for the GIL, and a flood drops the newest records.

use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};

use pyo3::prelude::*;
use tracing::{Level, Metadata};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

/// Records waiting for the logging thread before new ones are dropped.
const BACKLOG: usize = 4096;

static ENABLED: AtomicBool = AtomicBool::new(false);
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

/// Where the `fmt` layer writes: one [`Line`] per record.
struct ToPython(SyncSender<(Level, Vec<u8>)>);

/// One formatted record, sent to the logging thread when dropped.
struct Line(Level, Vec<u8>, SyncSender<(Level, Vec<u8>)>);

impl io::Write for Line {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.1.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        let _ = self.2.try_send((self.0, std::mem::take(&mut self.1)));
    }
}

impl<'a> MakeWriter<'a> for ToPython {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(Level::INFO, Vec::new(), self.0.clone())
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line {
        Line(*meta.level(), Vec::new(), self.0.clone())
    }
}

fn python_level(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        _ => "debug",
    }
}

fn install() -> Result<(), String> {
    let (tx, rx) = sync_channel::<(Level, Vec<u8>)>(BACKLOG);
    std::thread::Builder::new()
        .name("comfywire-log".into())
        .spawn(move || {
            while let Ok((level, line)) = rx.recv() {
                if !ENABLED.load(Ordering::Relaxed) {
                    continue;
                }
                let line = String::from_utf8_lossy(&line);
                Python::attach(|py| {
                    let logged = py
                        .import("logging")
                        .and_then(|l| l.call_method1("getLogger", ("comfywire",)))
                        .and_then(|l| l.call_method1(python_level(level), ("%s", line.trim_end())));
                    // A broken handler must not kill the bridge.
                    if let Err(e) = logged {
                        e.print(py);
                    }
                });
            }
        })
        .map_err(|e| e.to_string())?;
    // Asked on every record, so `disable_debug_logging` takes effect at once.
    let wanted = filter_fn(|m| {
        ENABLED.load(Ordering::Relaxed)
            && m.target().starts_with("comfywire")
            && *m.level() <= Level::DEBUG
    });
    let format = tracing_subscriber::fmt::layer()
        .without_time()
        .with_level(false)
        .with_ansi(false)
        .with_writer(ToPython(tx));
    tracing_subscriber::registry()
        .with(format.with_filter(wanted))
        .try_init()
        .map_err(|e| format!("another tracing subscriber is already installed: {e}"))
}

/// Sends comfywire's debug log (frames, connects, HTTP; secrets redacted)
/// to the Python logger `comfywire` at matching levels.
#[pyfunction]
pub(crate) fn enable_debug_logging() -> PyResult<()> {
    INSTALLED
        .get_or_init(install)
        .clone()
        .map_err(pyo3::exceptions::PyRuntimeError::new_err)?;
    ENABLED.store(true, Ordering::Relaxed);
    Ok(())
}

/// Stops sending the debug log to Python.
#[pyfunction]
pub(crate) fn disable_debug_logging() {
    ENABLED.store(false, Ordering::Relaxed);
}
