//! Exit codes and the one error type every command returns.
//!
//! The codes reuse [`comfywire_client::Error::code`] where a client error is
//! the cause, so scripts see the same numbers the bindings report.

use comfywire_client::Error;

/// Success.
pub const OK: u8 = 0;
/// Anything else that went wrong (a replay disagreeing with its recorded
/// history, an interrupt of a prompt that is not running).
pub const FAILURE: u8 = 1;
/// Bad command line, settings file or workflow file.
pub const USAGE: u8 = 2;
/// The server could not be reached.
pub const CONNECTION: u8 = 3;
/// The prompt was refused (validation error); nothing was queued.
pub const VALIDATION: u8 = 10;
/// A node raised while the prompt ran.
pub const EXECUTION: u8 = 11;
/// The prompt was interrupted (Ctrl-C, or by someone else).
pub const INTERRUPTED: u8 = 12;
/// The server no longer knows the prompt (restart, history cleared).
pub const LOST: u8 = 13;
/// A `--queue-timeout`, `--stall-timeout` or `--timeout` expired.
pub const DEADLINE: u8 = 14;

/// The exit codes as `--help` lists them (a test keeps them equal to the
/// constants above and to the client's error codes).
pub const HELP: &str = "\
Exit codes:
   0  success
   1  other failure (a replay that disagrees, nothing to interrupt or delete)
   2  bad command line, settings file or workflow file
   3  the server could not be reached
   4  the server answered an unexpected HTTP status
   5  the server answered something unexpected
   6  an answer larger than its limit (see `max_*_mib` in `comfywire config`)
  10  the prompt was refused (validation error); nothing was queued
  11  a node raised while the prompt ran
  12  the prompt was interrupted
  13  the server no longer knows the prompt (restart, history cleared)
  14  a --queue-timeout, --stall-timeout or --timeout expired
  20  the client was closed
  21  a local file error

The server is http://127.0.0.1:8188 unless --url, COMFYWIRE_URL or the
settings file (`comfywire config path`) says otherwise, in that order.";

/// Why a command failed: the exit code, a message for people, and a short
/// stable word for `--json` results.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Process exit code.
    pub code: u8,
    /// One line (validation errors add one line per node error).
    pub message: String,
    /// `rejected`, `failed`, `interrupted`, `lost`, `timeout` or `error`.
    pub outcome: &'static str,
}

impl Failure {
    /// A failure with a code and message.
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        let outcome = match code {
            VALIDATION => "rejected",
            EXECUTION => "failed",
            INTERRUPTED => "interrupted",
            LOST => "lost",
            DEADLINE => "timeout",
            _ => "error",
        };
        Failure {
            code,
            message: message.into(),
            outcome,
        }
    }

    /// A usage or configuration error.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(USAGE, message)
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        let code = u8::try_from(error.code()).unwrap_or(FAILURE);
        let message = match &error {
            Error::Validation(v) => format!("validation error: {}", v.summary()),
            Error::ExecutionFailed(_) => {
                format!("execution error: {}", strip(&error, "execution failed: "))
            }
            Error::Interrupted(_) => format!("interrupted: {error}"),
            Error::Lost { .. } => format!("lost: {error}"),
            Error::Deadline { prompt_id, .. } => format!(
                "timeout: {error} (the prompt stays on the server; `comfywire queue interrupt {prompt_id}` stops it)"
            ),
            Error::Request(_) | Error::Connect(_) => format!("connection error: {error}"),
            other => other.to_string(),
        };
        Failure::new(code, message)
    }
}

impl From<std::io::Error> for Failure {
    fn from(error: std::io::Error) -> Failure {
        Failure::from(Error::from(error))
    }
}

fn strip(error: &Error, prefix: &str) -> String {
    let text = error.to_string();
    text.strip_prefix(prefix).map(str::to_owned).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line of `HELP` for a code, e.g. `"  10  the prompt was..."`.
    fn listed(code: u32) -> bool {
        HELP.lines()
            .any(|l| l.trim_start().starts_with(&format!("{code}  ")))
    }

    #[test]
    fn help_lists_every_exit_code() {
        for code in [
            OK,
            FAILURE,
            USAGE,
            CONNECTION,
            VALIDATION,
            EXECUTION,
            INTERRUPTED,
            LOST,
            DEADLINE,
        ] {
            assert!(listed(u32::from(code)), "{code} missing from --help");
        }
        let errors = [
            Error::Config(String::new()),
            Error::Request(String::new()),
            Error::Http {
                status: 500,
                body: String::new(),
            },
            Error::Protocol(String::new()),
            Error::TooLarge {
                what: String::new(),
                limit: 1,
                setting: "max_json_mib",
            },
            Error::Closed,
            Error::Io(String::new()),
        ];
        for error in errors {
            assert!(listed(error.code()), "{} missing from --help", error.code());
        }
    }
}
