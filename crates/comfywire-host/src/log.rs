//! The client's debug log for bindings whose language has a logger of its
//! own (Python's `logging`): the `tracing` records of comfywire's targets
//! (connects, frames, HTTP; secrets already redacted), each formatted
//! where it happens and handed through a bounded queue to one thread of
//! its own, which calls the binding's sink. No runtime worker ever waits
//! for the sink (e.g. for Python's GIL), and a flood drops the newest
//! records instead of growing the queue.

use std::io;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};

pub use tracing::Level;
use tracing::Metadata;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::prelude::*;

use crate::error::{ErrorCode, HostError};

/// Where a binding's log records go: the record's level and its text.
pub type LogSink = Box<dyn Fn(Level, &str) + Send>;

/// Records waiting for the sink's thread before new ones are dropped.
const BACKLOG: usize = 4096;

static ENABLED: AtomicBool = AtomicBool::new(false);
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

/// Where the `fmt` layer writes: one [`Line`] per record.
struct ToSink(SyncSender<(Level, Vec<u8>)>);

/// One formatted record, sent to the sink's thread when dropped.
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

impl<'a> MakeWriter<'a> for ToSink {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(Level::INFO, Vec::new(), self.0.clone())
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line {
        Line(*meta.level(), Vec::new(), self.0.clone())
    }
}

fn install(sink: LogSink) -> Result<(), String> {
    let (tx, rx) = sync_channel::<(Level, Vec<u8>)>(BACKLOG);
    std::thread::Builder::new()
        .name("comfywire-log".into())
        .spawn(move || {
            while let Ok((level, line)) = rx.recv() {
                if ENABLED.load(Ordering::Relaxed) {
                    sink(level, String::from_utf8_lossy(&line).trim_end());
                }
            }
        })
        .map_err(|e| e.to_string())?;
    // Asked on every record, so that disabling takes effect at once.
    let wanted = filter_fn(|m| {
        ENABLED.load(Ordering::Relaxed)
            && m.target().starts_with("comfywire")
            && *m.level() <= Level::DEBUG
    });
    let format = tracing_subscriber::fmt::layer()
        .without_time()
        .with_level(false)
        .with_ansi(false)
        .with_writer(ToSink(tx));
    tracing_subscriber::registry()
        .with(format.with_filter(wanted))
        .try_init()
        .map_err(|e| format!("another tracing subscriber is already installed: {e}"))
}

/// Sends comfywire's debug log to a sink from now on. The first call
/// installs the process's `tracing` subscriber with the sink `make` gives
/// (it is kept for the process's life; later calls only enable again); it
/// fails when another subscriber is installed already.
pub fn enable_debug_log(make: impl FnOnce() -> LogSink) -> Result<(), HostError> {
    INSTALLED
        .get_or_init(|| install(make()))
        .clone()
        .map_err(|e| HostError::new(ErrorCode::Config, e))?;
    ENABLED.store(true, Ordering::Relaxed);
    Ok(())
}

/// Stops sending the debug log (records already queued are dropped).
pub fn disable_debug_log() {
    ENABLED.store(false, Ordering::Relaxed);
}
