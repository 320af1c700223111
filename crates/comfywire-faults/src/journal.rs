//! The one place the schedules touch the client's journal, for the
//! `KilledAndResumed` kind: a client killed mid-run and started again from
//! its journal must still end every prompt its predecessor had the server
//! enqueue.
//!
//! The client has no journal API yet. Once `ClientConfig::journal(path)`
//! and `Client::resumed(config)` exist, enabling the kind takes these
//! lines: set [`AVAILABLE`] to `true`, and replace the bodies of
//! [`with_journal`] and [`resume`] with the calls in their comments.
//! Until then a `KilledAndResumed` schedule still kills the process,
//! restarts a client with the same client id and no journal, and reports
//! one violation saying the journal is missing, plus whatever prompt the
//! restarted client cannot account for.

use std::path::Path;

use comfywire_client::{Client, ClientConfig};

/// Whether the client under test keeps a journal.
pub const AVAILABLE: bool = false;

/// `config` with its journal at `path`.
pub fn with_journal(config: ClientConfig, _path: &Path) -> ClientConfig {
    // config.journal(_path)
    config
}

/// A client started again from the journal in `config` after its process
/// was killed; `Err` says why it could not be.
pub async fn resume(config: ClientConfig) -> Result<Client, String> {
    // Client::resumed(config).await.map_err(|e| e.to_string())
    let _ = config;
    Err(
        "the client has no journal yet (ClientConfig::journal, Client::resumed): \
         wire them in comfywire-faults/src/journal.rs"
            .into(),
    )
}
