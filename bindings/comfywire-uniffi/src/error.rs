//! [`ComfyError`], the one error of every call (a variant per host code),
//! and [`ListenerError`], what a foreign listener may throw.

use comfywire_host::{ErrorCode, HostError};

use crate::record::Outcome;

/// Every failure of the API. The variant is the host's stable code (the
/// same in Python, C, Swift and Kotlin); each carries a one-line `reason`,
/// details as JSON where there are some, and the prompt's outcome for
/// failed, interrupted and lost prompts.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum ComfyError {
    /// Code 1: an argument is invalid (bad JSON, unknown event kind, empty id).
    #[error("{reason}")]
    InvalidArgument {
        /// What was wrong, for people.
        reason: String,
        /// Details as JSON, if any.
        detail_json: Option<String>,
        /// Not set for this code.
        outcome: Option<Outcome>,
    },
    /// Code 2: the configuration is unusable (bad URL, bad settings).
    #[error("{reason}")]
    Config {
        /// What was wrong.
        reason: String,
        /// Details as JSON, if any.
        detail_json: Option<String>,
        /// Not set for this code.
        outcome: Option<Outcome>,
    },
    /// Code 3: a request got no answer (network); retrying may help.
    #[error("{reason}")]
    Request {
        /// What failed.
        reason: String,
        /// Details as JSON, if any.
        detail_json: Option<String>,
        /// Not set for this code.
        outcome: Option<Outcome>,
    },
    /// Code 4: the server answered an unexpected HTTP status
    /// (`detail_json` has `status` and `body`).
    #[error("{reason}")]
    Http {
        /// What failed.
        reason: String,
        /// `{"status", "body"}`.
        detail_json: Option<String>,
        /// Not set for this code.
        outcome: Option<Outcome>,
    },
    /// Code 5: the server answered something unexpected.
    #[error("{reason}")]
    Protocol {
        /// What was unexpected.
        reason: String,
        /// Details as JSON, if any.
        detail_json: Option<String>,
        /// Not set for this code.
        outcome: Option<Outcome>,
    },
    /// Code 10: the server refused the prompt (`detail_json` has the node errors).
    #[error("{reason}")]
    Validation {
        /// The server's summary.
        reason: String,
        /// `{"type", "message", "details", "node_errors"}`.
        detail_json: Option<String>,
        /// Not set for this code.
        outcome: Option<Outcome>,
    },
    /// Code 11: a node raised; `outcome.error` says which and why.
    #[error("{reason}")]
    ExecutionFailed {
        /// Node, class and exception, for people.
        reason: String,
        /// Details as JSON, if any.
        detail_json: Option<String>,
        /// The failed prompt's record.
        outcome: Option<Outcome>,
    },
    /// Code 12: the prompt was interrupted.
    #[error("{reason}")]
    Interrupted {
        /// For people.
        reason: String,
        /// Details as JSON, if any.
        detail_json: Option<String>,
        /// The interrupted prompt's record.
        outcome: Option<Outcome>,
    },
    /// Code 13: the server no longer knows the prompt (`detail_json` has the reason).
    #[error("{reason}")]
    Lost {
        /// For people.
        reason: String,
        /// `{"reason"}`.
        detail_json: Option<String>,
        /// The lost prompt's record, when known.
        outcome: Option<Outcome>,
    },
    /// Code 14: a queue, stall or total deadline of a run expired
    /// (`detail_json` has `deadline` and `after_s`); the prompt may go on.
    #[error("{reason}")]
    Deadline {
        /// For people.
        reason: String,
        /// `{"deadline", "after_s"}`.
        detail_json: Option<String>,
        /// Not set for this code.
        outcome: Option<Outcome>,
    },
    /// Code 15: a call's own timeout expired; the prompt goes on.
    #[error("{reason}")]
    Timeout {
        /// For people.
        reason: String,
        /// Details as JSON, if any.
        detail_json: Option<String>,
        /// Not set for this code.
        outcome: Option<Outcome>,
    },
    /// Code 20: the client is closed; make a new one.
    #[error("{reason}")]
    Closed {
        /// For people.
        reason: String,
        /// Details as JSON, if any.
        detail_json: Option<String>,
        /// Not set for this code.
        outcome: Option<Outcome>,
    },
    /// Code 21: a local file error.
    #[error("{reason}")]
    Io {
        /// For people.
        reason: String,
        /// Details as JSON, if any.
        detail_json: Option<String>,
        /// Not set for this code.
        outcome: Option<Outcome>,
    },
    /// Code 30: a panic was caught at the boundary (a bug in comfywire).
    #[error("{reason}")]
    Panic {
        /// The panic message.
        reason: String,
        /// Details as JSON, if any.
        detail_json: Option<String>,
        /// Not set for this code.
        outcome: Option<Outcome>,
    },
}

impl From<HostError> for ComfyError {
    fn from(error: HostError) -> ComfyError {
        let reason = error.message;
        let detail_json = error.detail_json;
        let outcome = error.outcome.map(|o| Outcome::from(*o));
        // Spelled out per code (no wildcard) so a new host code is a compile
        // error here, not a silently wrong variant.
        match error.code {
            ErrorCode::InvalidArgument => ComfyError::InvalidArgument {
                reason,
                detail_json,
                outcome,
            },
            ErrorCode::Config => ComfyError::Config {
                reason,
                detail_json,
                outcome,
            },
            ErrorCode::Request => ComfyError::Request {
                reason,
                detail_json,
                outcome,
            },
            ErrorCode::Http => ComfyError::Http {
                reason,
                detail_json,
                outcome,
            },
            ErrorCode::Protocol => ComfyError::Protocol {
                reason,
                detail_json,
                outcome,
            },
            ErrorCode::Validation => ComfyError::Validation {
                reason,
                detail_json,
                outcome,
            },
            ErrorCode::ExecutionFailed => ComfyError::ExecutionFailed {
                reason,
                detail_json,
                outcome,
            },
            ErrorCode::Interrupted => ComfyError::Interrupted {
                reason,
                detail_json,
                outcome,
            },
            ErrorCode::Lost => ComfyError::Lost {
                reason,
                detail_json,
                outcome,
            },
            ErrorCode::Deadline => ComfyError::Deadline {
                reason,
                detail_json,
                outcome,
            },
            ErrorCode::Timeout => ComfyError::Timeout {
                reason,
                detail_json,
                outcome,
            },
            ErrorCode::Closed => ComfyError::Closed {
                reason,
                detail_json,
                outcome,
            },
            ErrorCode::Io => ComfyError::Io {
                reason,
                detail_json,
                outcome,
            },
            ErrorCode::Panic => ComfyError::Panic {
                reason,
                detail_json,
                outcome,
            },
        }
    }
}

impl From<comfywire_host::comfywire_client::Error> for ComfyError {
    fn from(error: comfywire_host::comfywire_client::Error) -> ComfyError {
        HostError::from(error).into()
    }
}

impl ComfyError {
    /// An error of `code` without details.
    pub(crate) fn new(code: ErrorCode, reason: impl Into<String>) -> ComfyError {
        HostError::new(code, reason).into()
    }
}

/// What a foreign [`crate::EventListener`] or [`crate::StateListener`] may
/// throw. It never stops the client: the failure is logged and reported as
/// a `callback_error` event, like a panicking callback in the other bindings.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum ListenerError {
    /// The listener refused or failed to handle the event.
    #[error("{reason}")]
    Failed {
        /// Why, for the `callback_error` report.
        reason: String,
    },
}

/// Any other exception thrown by foreign listener code (a Kotlin
/// `RuntimeException`, a Swift error of another type) arrives as this;
/// turning it into a [`ListenerError`] lets it be contained and reported
/// like a declared failure instead of panicking the dispatcher.
impl From<uniffi::UnexpectedUniFFICallbackError> for ListenerError {
    fn from(error: uniffi::UnexpectedUniFFICallbackError) -> ListenerError {
        ListenerError::Failed {
            reason: format!("listener threw: {}", error.reason),
        }
    }
}
