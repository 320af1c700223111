//! [`ComfyError`], the one error of every call (a variant per host
//! [`ErrorCode`]), and [`ListenerError`], what a foreign listener may throw.

use comfywire_host::ffi::Json;
use comfywire_host::{ErrorCode, HostError, HostOutcome};

/// Declares [`ComfyError`] with one variant per host code (the host's one
/// list, `with_error_codes`), each with the host error's fields, and maps a
/// [`HostError`] onto it. The match names every code, so a new host code
/// is a new variant here, never a silently wrong one.
macro_rules! comfy_error {
    ($($(#[doc = $doc:literal])* $code:ident = $number:literal, $name:literal;)*) => {
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

comfywire_host::with_error_codes!(comfy_error);

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
