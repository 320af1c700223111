//! Rust `tracing` records (the client's redacted debug traffic log) into
//! Python `logging`, on the `comfywire` logger. Records are formatted where
//! they happen and handed to one logging thread through a bounded queue:
//! the runtime's workers never wait for the GIL, and a flood of records
//! drops the newest instead of slowing the socket.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use pyo3::prelude::*;
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// Records waiting for the logging thread before new ones are dropped.
const BACKLOG: usize = 4096;

static ENABLED: AtomicBool = AtomicBool::new(false);
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

struct Record {
    level: Level,
    target: String,
    message: String,
}

struct Bridge {
    tx: mpsc::SyncSender<Record>,
}

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.rest, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.rest, " {}={value}", field.name());
        }
    }
}

fn wanted(metadata: &tracing::Metadata<'_>) -> bool {
    metadata.target().starts_with("comfywire") && *metadata.level() <= Level::DEBUG
}

impl<S: Subscriber> Layer<S> for Bridge {
    fn register_callsite(&self, metadata: &'static tracing::Metadata<'static>) -> Interest {
        // "Sometimes", not "always": `enabled` is asked on every event, so
        // `disable_debug_logging` takes effect without re-registration.
        if wanted(metadata) {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        ENABLED.load(Ordering::Relaxed) && wanted(metadata)
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let _ = self.tx.try_send(Record {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            message: fields.message + &fields.rest,
        });
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
    let (tx, rx) = mpsc::sync_channel::<Record>(BACKLOG);
    std::thread::Builder::new()
        .name("comfywire-log".into())
        .spawn(move || {
            while let Ok(record) = rx.recv() {
                if !ENABLED.load(Ordering::Relaxed) {
                    continue;
                }
                Python::attach(|py| {
                    let logged = py
                        .import("logging")
                        .and_then(|l| l.call_method1("getLogger", ("comfywire",)))
                        .and_then(|logger| {
                            logger.call_method1(
                                python_level(record.level),
                                ("%s: %s", record.target.as_str(), record.message.as_str()),
                            )
                        });
                    // A broken handler must not kill the bridge.
                    if let Err(e) = logged {
                        e.print(py);
                    }
                });
            }
        })
        .map_err(|e| e.to_string())?;
    tracing_subscriber::registry()
        .with(Bridge { tx })
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
