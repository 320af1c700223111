//! What the pool can fail with, beside the client's own errors.

/// A pool error.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PoolError {
    /// The configuration is unusable (no servers, a bad weight).
    #[error("pool configuration: {0}")]
    Config(String),
    /// No server has every node class the workflow uses.
    #[error(
        "no server can run this workflow: missing node classes {missing:?} (closest: {server})"
    )]
    MissingNodeClasses {
        /// The classes the closest server lacks.
        missing: Vec<String>,
        /// That server's label.
        server: String,
    },
    /// No server is reachable right now.
    #[error("no server is reachable: {0}")]
    NoServer(String),
    /// The pool submission id is not known to this pool.
    #[error("unknown pool submission {0}")]
    Unknown(String),
    /// The wait's own time limit expired (the prompt goes on).
    #[error("no outcome for {0} within the wait's time limit")]
    Timeout(String),
    /// The pool is closed.
    #[error("the pool is closed")]
    Closed,
    /// A server's client refused the request.
    #[error("{server}: {error}")]
    Client {
        /// The server's label.
        server: String,
        /// Its client's error.
        error: comfywire_client::Error,
    },
}
