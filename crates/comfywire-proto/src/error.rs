//! Typed errors of the parser. None of them is fatal to a connection: the
//! session reports the error with the raw frame and reads on.

/// Why a frame could not be turned into a [`crate::ServerMessage`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// A text frame whose bytes are not UTF-8.
    #[error("text frame is not valid UTF-8")]
    InvalidUtf8,
    /// A text frame that is not JSON at all.
    #[error("text frame is not valid JSON: {message}")]
    InvalidJson {
        /// The JSON parser's message (line and column included).
        message: String,
    },
    /// JSON that is not an object of the form `{"type": string, "data": ...}`.
    #[error("text frame is not a {{\"type\", \"data\"}} envelope: {message}")]
    NotAnEnvelope {
        /// What was wrong with the envelope.
        message: String,
    },
    /// A known message type whose `data` has a missing or mistyped field.
    #[error("`{kind}` message has a bad field: {message}")]
    InvalidField {
        /// The message type, e.g. `progress`.
        kind: String,
        /// Which field and why.
        message: String,
    },
    /// A binary frame shorter than its header says it must be.
    #[error("binary frame truncated: need {needed} bytes, got {got}")]
    TruncatedBinary {
        /// The event type, when at least 4 bytes were there.
        event_type: Option<u32>,
        /// Bytes the header requires.
        needed: usize,
        /// Bytes the frame has.
        got: usize,
    },
    /// A length field (metadata or node id) that runs past the frame's end.
    #[error("binary frame declares {declared} bytes of header data but only {available} follow")]
    LengthOutOfBounds {
        /// The declared length.
        declared: usize,
        /// Bytes left in the frame.
        available: usize,
    },
    /// Type-4 metadata that is not the expected JSON object.
    #[error("preview metadata is invalid: {message}")]
    InvalidMetadata {
        /// What was wrong.
        message: String,
    },
    /// A frame larger than the configured limit; the driver reports it.
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    FrameTooLarge {
        /// Size of the frame, when known.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
}
