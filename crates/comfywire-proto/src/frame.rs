//! The one unit the core exchanges with a socket: a whole WebSocket message.

use bytes::Bytes;

/// A whole WebSocket message as the driver received it or must send it.
///
/// Text payloads are kept as bytes so a driver can hand over its buffer
/// without copying; the parser checks that they are UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A text message (expected to be UTF-8 JSON).
    Text(Bytes),
    /// A binary message (preview images, progress text, custom types).
    Binary(Bytes),
}

impl Frame {
    /// A text frame from a string.
    pub fn text(text: impl Into<String>) -> Frame {
        Frame::Text(Bytes::from(text.into()))
    }

    /// A binary frame from bytes.
    pub fn binary(data: impl Into<Bytes>) -> Frame {
        Frame::Binary(data.into())
    }

    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(b) | Frame::Binary(b) => b.len(),
        }
    }

    /// True when the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The payload bytes.
    pub fn payload(&self) -> &Bytes {
        match self {
            Frame::Text(b) | Frame::Binary(b) => b,
        }
    }

    /// True for text frames.
    pub fn is_text(&self) -> bool {
        matches!(self, Frame::Text(_))
    }
}

// The binary frame layout (protocol reference §5): a big-endian `u32`
// event type, then the event's own bytes.

/// Binary event type of a preview without metadata.
pub const BINARY_PREVIEW: u32 = 1;
/// Binary event type of per-node progress text.
pub const BINARY_PROGRESS_TEXT: u32 = 3;
/// Binary event type of a preview with metadata.
pub const BINARY_PREVIEW_WITH_METADATA: u32 = 4;
