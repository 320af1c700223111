//! [`ComfyError`], the one error of every call (a variant per host
//! [`ErrorCode`]), and [`ListenerError`], what a foreign listener may throw.

use comfywire_host::ffi::Json;
use comfywire_host::{ErrorCode, HostError, HostOutcome};

/// Declares [`ComfyError`] with one variant per host code, each with the
/// host error's fields, and maps a [`HostError`] onto it. The match names
/// every code, so a new host code is a compile error here, not a silently
/// wrong variant.
macro_rules! comfy_error {
    ($($(#[doc = $doc:literal])* $code:ident,)*) => {
        /// Every failure of the API. The variant is the host's stable code
        /// (the same in Python, C, Swift and Kotlin); each carries a one-line
        /// `reason`, the host's details as JSON text where there are some, and
        /// the prompt's outcome for failed, interrupted and lost prompts.
        #[derive(Debug, thiserror::Error, uniffi::Error)]
        pub enum ComfyError {
            $(
                $(#[doc = $doc])*
                #[error("{reason}")]
                $code {
                    /// One line for people.
                    reason: String,
                    /// Structured details (JSON text), if any.
                    detail: Option<Json>,
                    /// The prompt's outcome (failed, interrupted, lost).
                    outcome: Option<Box<HostOutcome>>,
                },
            )*
        }

        impl From<HostError> for ComfyError {
            fn from(error: HostError) -> ComfyError {
                let HostError { code, message: reason, detail, outcome } = error;
                match code {
                    $(ErrorCode::$code => ComfyError::$code { reason, detail, outcome },)*
                }
            }
        }
    };
}

comfy_error! {
    /// Code 1: an argument is invalid (bad JSON, unknown event kind, unknown
    /// prompt, empty file name).
    InvalidArgument,
    /// Code 2: the configuration is unusable (bad URL, bad settings).
    Config,
    /// Code 3: a request got no answer (network); retrying may help.
    Request,
    /// Code 4: the server answered an unexpected HTTP status (`detail` has
    /// `status` and `body`).
    Http,
    /// Code 5: the server answered something unexpected.
    Protocol,
    /// Code 10: the server refused the prompt (`detail` has `type`,
    /// `message`, `details` and `node_errors`).
    Validation,
    /// Code 11: a node raised; `outcome.error` says which and why.
    ExecutionFailed,
    /// Code 12: the prompt was interrupted; `outcome` is its record.
    Interrupted,
    /// Code 13: the server no longer knows the prompt (`detail` has
    /// `reason`).
    Lost,
    /// Code 14: a queue, stall or total deadline expired (`detail` has
    /// `deadline`: `queue`, `stall` or `total`, and `after_s`); the prompt
    /// may go on.
    Deadline,
    /// Code 15: a wait's own timeout expired; the prompt goes on.
    Timeout,
    /// Code 20: the client is closed; make a new one.
    Closed,
    /// Code 21: a local file error (downloads).
    Io,
    /// Code 30: a panic was caught at the boundary (a bug in comfywire).
    Panic,
}

impl ComfyError {
    /// An error of `code` without details.
    pub(crate) fn new(code: ErrorCode, reason: &str) -> ComfyError {
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
