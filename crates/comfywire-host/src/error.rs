//! The one public error of every binding, with stable numeric codes.

use comfywire_client::{Error, ValidationError};
use serde_json::{Value, json};

use crate::model::HostOutcome;

/// Calls the macro `$m` with the one list of error codes: for each, its
/// doc, its name, number and snake_case name (`Lost = 13, "lost";`). The
/// host's [`ErrorCode`] is made from it, and so is any binding's own error
/// type with a variant per code (uniffi's `ComfyError`), so no list of
/// codes is written twice. (C's header needs literal constants of its own;
/// a test there checks each against its host code.)
#[macro_export]
macro_rules! with_error_codes {
    ($m:ident) => {
        $m! {
            /// Code 1: an argument is invalid (bad JSON, an unknown event
            /// kind or prompt, an empty file name, a NULL pointer).
            InvalidArgument = 1, "invalid_argument";
            /// Code 2: the configuration is unusable (bad URL, bad
            /// settings, a journal in use or corrupt).
            Config = 2, "config";
            /// Code 3: a request got no answer (network); retrying may help.
            Request = 3, "request";
            /// Code 4: the server answered an unexpected HTTP status (the
            /// detail has `status` and `body`).
            Http = 4, "http";
            /// Code 5: the server answered something unexpected.
            Protocol = 5, "protocol";
            /// Code 6: an answer was larger than its limit (the detail has
            /// `limit` in bytes and `setting`, the settings key raising it).
            TooLarge = 6, "too_large";
            /// Code 7: a pull stream nobody read held more events than its
            /// bound and stopped (the detail has `held` and `limit` in
            /// bytes); the next pull starts afresh from now (look prompts
            /// up with `execution` to catch up).
            Overflow = 7, "overflow";
            /// Code 10: the server refused the prompt (the detail has
            /// `type`, `message`, `details` and `node_errors`).
            Validation = 10, "validation";
            /// Code 11: a node raised; the outcome's error says which and
            /// why.
            ExecutionFailed = 11, "execution_failed";
            /// Code 12: the prompt was interrupted; the outcome is its
            /// record.
            Interrupted = 12, "interrupted";
            /// Code 13: the server no longer knows the prompt (the detail
            /// has `reason`).
            Lost = 13, "lost";
            /// Code 14: a queue, stall or total deadline expired (the
            /// detail has `deadline`: `queue`, `stall` or `total`, and
            /// `after_s`); the prompt may go on.
            Deadline = 14, "deadline";
            /// Code 15: a wait's own timeout expired; the prompt goes on.
            Timeout = 15, "timeout";
            /// Code 20: the client is closed; make a new one.
            Closed = 20, "closed";
            /// Code 21: a local file error (downloads, the journal).
            Io = 21, "io";
            /// Code 30: a panic was caught at the boundary (a bug in
            /// comfywire).
            Panic = 30, "panic";
        }
    };
}

/// Declares [`ErrorCode`] from the list of [`with_error_codes`].
macro_rules! error_code {
    ($($(#[doc = $doc:literal])* $code:ident = $number:literal, $name:literal;)*) => {
        /// Stable error codes, identical in Python, C, Swift and Kotlin.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u32)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $code = $number,)*
        }

        impl ErrorCode {
            /// Every code, in numeric order.
            pub const ALL: [ErrorCode; [$($name),*].len()] = [$(ErrorCode::$code),*];

            /// A stable snake_case name.
            pub fn name(self) -> &'static str {
                match self {
                    $(ErrorCode::$code => $name,)*
                }
            }
        }
    };
}

with_error_codes!(error_code);

impl ErrorCode {
    /// The code of a number, `None` when no code has it.
    pub fn from_u32(code: u32) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_u32() == code)
    }

    /// The code as a number.
    pub fn as_u32(self) -> u32 {
        self as u32
    }
}

/// An error with its code, a message, and details where there are some.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct HostError {
    /// The stable code.
    pub code: ErrorCode,
    /// A one-line message for people.
    pub message: String,
    /// Structured details: validation node errors, the deadline kind, the
    /// HTTP status and body, a lost prompt's reason.
    pub detail: Option<Value>,
    /// The execution record, for failed, interrupted and lost prompts.
    pub outcome: Option<Box<HostOutcome>>,
}

impl HostError {
    /// An error without details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> HostError {
        HostError {
            code,
            message: message.into(),
            detail: None,
            outcome: None,
        }
    }
}

impl From<Error> for HostError {
    fn from(error: Error) -> HostError {
        let message = error.to_string();
        let (code, detail, outcome) = match &error {
            Error::Config(_) => (ErrorCode::Config, None, None),
            Error::Request(_) | Error::Connect(_) => (ErrorCode::Request, None, None),
            Error::Http { status, body } => (
                ErrorCode::Http,
                Some(json!({"status": status, "body": body})),
                None,
            ),
            Error::Protocol(_) => (ErrorCode::Protocol, None, None),
            Error::TooLarge { limit, setting, .. } => (
                ErrorCode::TooLarge,
                Some(json!({"limit": limit, "setting": setting})),
                None,
            ),
            Error::Validation(v) => (ErrorCode::Validation, Some(validation_detail(v)), None),
            Error::ExecutionFailed(r) => (
                ErrorCode::ExecutionFailed,
                None,
                Some(Box::new(HostOutcome::from_record(r))),
            ),
            Error::Interrupted(r) => (
                ErrorCode::Interrupted,
                None,
                Some(Box::new(HostOutcome::from_record(r))),
            ),
            Error::Lost { reason, .. } => (ErrorCode::Lost, Some(json!({"reason": reason})), None),
            Error::Deadline { kind, after, .. } => (
                ErrorCode::Deadline,
                Some(json!({"deadline": kind.name(), "after_s": after.as_secs_f64()})),
                None,
            ),
            Error::Closed => (ErrorCode::Closed, None, None),
            Error::Io(_) => (ErrorCode::Io, None, None),
            _ => (ErrorCode::Protocol, None, None),
        };
        HostError {
            code,
            message,
            detail,
            outcome,
        }
    }
}

/// The details of a refused (or partly refused) prompt: the server's error
/// and every node's errors, as every binding shows them.
pub fn validation_detail(v: &ValidationError) -> Value {
    json!({
        "type": v.kind,
        "message": v.message,
        "details": v.details,
        "node_errors": v.node_errors.iter().map(|e| json!({
            "node_id": e.node_id,
            "class_type": e.class_type,
            "type": e.kind,
            "message": e.message,
            "details": e.details,
            "extra_info": e.extra_info,
        })).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_their_numbers() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_u32(code.as_u32()), Some(code));
        }
        assert_eq!(ErrorCode::from_u32(0), None);
        assert_eq!(ErrorCode::from_u32(8), None);
    }
}
