//! The one public error of every binding, with stable numeric codes.

use comfywire_client::{Error, ValidationError};
use serde_json::{Value, json};

use crate::model::HostOutcome;

/// Stable error codes, identical in Python, C, Swift and Kotlin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorCode {
    /// An argument is invalid (bad JSON, empty id, null pointer).
    InvalidArgument = 1,
    /// The configuration is unusable.
    Config = 2,
    /// A request got no answer (network).
    Request = 3,
    /// The server answered an unexpected HTTP status.
    Http = 4,
    /// The server answered something unexpected.
    Protocol = 5,
    /// The prompt was refused (validation).
    Validation = 10,
    /// A node raised.
    ExecutionFailed = 11,
    /// The prompt was interrupted.
    Interrupted = 12,
    /// The server no longer knows the prompt.
    Lost = 13,
    /// A deadline of a run or wait expired.
    Deadline = 14,
    /// A blocking call's own timeout expired (the prompt goes on).
    Timeout = 15,
    /// The client is closed.
    Closed = 20,
    /// A local file error.
    Io = 21,
    /// A panic was caught at the boundary.
    Panic = 30,
}

impl ErrorCode {
    /// Every code, in numeric order.
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::InvalidArgument,
        ErrorCode::Config,
        ErrorCode::Request,
        ErrorCode::Http,
        ErrorCode::Protocol,
        ErrorCode::Validation,
        ErrorCode::ExecutionFailed,
        ErrorCode::Interrupted,
        ErrorCode::Lost,
        ErrorCode::Deadline,
        ErrorCode::Timeout,
        ErrorCode::Closed,
        ErrorCode::Io,
        ErrorCode::Panic,
    ];

    /// The code of a number, `None` when no code has it.
    pub fn from_u32(code: u32) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_u32() == code)
    }

    /// The code as a number.
    pub fn as_u32(self) -> u32 {
        self as u32
    }

    /// A stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::Config => "config",
            ErrorCode::Request => "request",
            ErrorCode::Http => "http",
            ErrorCode::Protocol => "protocol",
            ErrorCode::Validation => "validation",
            ErrorCode::ExecutionFailed => "execution_failed",
            ErrorCode::Interrupted => "interrupted",
            ErrorCode::Lost => "lost",
            ErrorCode::Deadline => "deadline",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Closed => "closed",
            ErrorCode::Io => "io",
            ErrorCode::Panic => "panic",
        }
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
        assert_eq!(ErrorCode::from_u32(6), None);
    }
}
