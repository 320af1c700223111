//! WebSocket framing as a client reads and writes it (RFC 6455, no
//! extensions), sans-IO: [`Decoder`] turns the server's bytes into
//! messages that borrow them, [`encode`] writes the client's masked frames.
//!
//! The driver reads ComfyUI's stream through this rather than through a
//! WebSocket library's message type: a `progress` frame is handed to the
//! session as a slice of the read buffer, with no copy, no allocation and
//! no per-frame task-waker traffic (ARCHITECTURE.md, the client's read path).

mod decoder;
mod encoder;

pub use decoder::{Decoded, Decoder, FrameError, Received};
pub use encoder::{CLOSE_REASON_BYTES, Opcode, close_payload, encode, sendable_close_code};
