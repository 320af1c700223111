//! The server's frames, decoded from the front of a read buffer.

/// A message the server sent, borrowing the bytes it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Received<'a> {
    /// A text message. Its UTF-8 is not checked here: the session checks
    /// it once, and an invalid one becomes a typed bad-frame event rather
    /// than a lost connection.
    Text(&'a [u8]),
    /// A binary message.
    Binary(&'a [u8]),
    /// A ping: the client owes the server a pong with the same payload.
    Ping(&'a [u8]),
    /// A pong, the answer to the client's ping.
    Pong(&'a [u8]),
    /// The server's close frame: its code and reason, if it gave them.
    /// Nothing after it is read.
    Close(Option<(u16, &'a str)>),
}

/// What [`Decoder::decode`] found at the front of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// The frame there is not all in the buffer yet: it is `needed` bytes
    /// long in all (a lower bound while its header is incomplete).
    Incomplete {
        /// Bytes the frame needs from the front of the buffer.
        needed: usize,
    },
    /// One whole frame: drop `consumed` bytes from the buffer's front once
    /// done with `message`, the message it completed (none for a fragment
    /// that does not end its message).
    Frame {
        /// The frame's length, header included.
        consumed: usize,
        /// The message the frame completed.
        message: Option<Received<'a>>,
    },
}

/// A frame that breaks RFC 6455 or the size limit: the connection must be
/// failed, since what follows it can no longer be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A frame or message longer than the limit; the first error the
    /// header shows, before any of the payload is read.
    #[error("a message of {size} bytes is over the {limit}-byte limit")]
    TooLarge {
        /// The frame's length or the message's so far, in bytes.
        size: u64,
        /// The limit the decoder was made with.
        limit: usize,
    },
    /// A server must not mask its frames.
    #[error("the server sent a masked frame")]
    Masked,
    /// An extension's bits, though none was negotiated.
    #[error("a frame has reserved bits set")]
    ReservedBits,
    /// An opcode RFC 6455 does not define.
    #[error("a frame has the unknown opcode {0:#x}")]
    UnknownOpcode(u8),
    /// A close, ping or pong split across frames.
    #[error("a control frame is fragmented")]
    FragmentedControl,
    /// A close, ping or pong of more than 125 bytes.
    #[error("a control frame of {0} bytes (at most 125)")]
    ControlTooLong(usize),
    /// A continuation frame with no fragmented message to continue.
    #[error("a continuation frame continues nothing")]
    UnexpectedContinuation,
    /// A new text or binary frame before the fragmented one ended.
    #[error("a new message began inside a fragmented one")]
    ExpectedContinuation,
    /// A close frame with a one-byte payload or a reason that is not UTF-8.
    #[error("a malformed close frame")]
    BadClose,
}

impl FrameError {
    /// The close code a client sends for the frame it refuses: 1009
    /// ("message too big") for the size limit, else 1002 ("protocol error").
    pub fn close_code(&self) -> u16 {
        match self {
            FrameError::TooLarge { .. } => 1009,
            _ => 1002,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
}

/// Decodes the server's frames one at a time; it keeps only a fragmented
/// message's parts between calls, bounded by the limit.
#[derive(Debug)]
pub struct Decoder {
    limit: usize,
    fragments: Vec<u8>,
    fragmented: Option<Kind>,
    /// The last call handed out a message held in `fragments`.
    handed_out: bool,
}

/// Fragment storage above this is given back once its message is handed
/// out, so one large message does not pin its memory.
const KEPT_FRAGMENT_BYTES: usize = 64 << 10;

impl Decoder {
    /// A decoder refusing any frame or message over `limit` bytes.
    pub fn new(limit: usize) -> Decoder {
        Decoder {
            limit,
            fragments: Vec::new(),
            fragmented: None,
            handed_out: false,
        }
    }

    /// The size limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Decodes the frame at the front of `buf`.
    ///
    /// A frame's header is checked against the limit as soon as it is in
    /// the buffer, so a caller that grows its buffer to `needed` never
    /// grows it past the limit plus a header.
    pub fn decode<'a>(&'a mut self, buf: &'a [u8]) -> Result<Decoded<'a>, FrameError> {
        if std::mem::take(&mut self.handed_out) {
            self.fragments.clear();
            self.fragments.shrink_to(KEPT_FRAGMENT_BYTES);
        }
        let [b0, b1, ..] = *buf else {
            return Ok(Decoded::Incomplete { needed: 2 });
        };
        let masked = b1 & 0x80 != 0;
        let (length_bytes, mut head) = match b1 & 0x7F {
            126 => (2, 4),
            127 => (8, 10),
            _ => (0, 2),
        };
        if masked {
            head += 4;
        }
        if buf.len() < head {
            return Ok(Decoded::Incomplete { needed: head });
        }
        let opcode = b0 & 0x0F;
        if !matches!(opcode, 0x0..=0x2 | 0x8..=0xA) {
            return Err(FrameError::UnknownOpcode(opcode));
        }
        let len: u64 = match length_bytes {
            2 => u64::from(u16::from_be_bytes([buf[2], buf[3]])),
            8 => buf[2..10].iter().fold(0, |n, b| n << 8 | u64::from(*b)),
            _ => u64::from(b1 & 0x7F),
        };
        if len > self.limit as u64 {
            return Err(FrameError::TooLarge {
                size: len,
                limit: self.limit,
            });
        }
        // Within the limit, so within usize.
        let len = len as usize;
        let consumed = head + len;
        if buf.len() < consumed {
            return Ok(Decoded::Incomplete { needed: consumed });
        }
        // The rest is checked once the whole frame is here, as a
        // stream reader would: a frame still arriving is not yet wrong.
        if b0 & 0x70 != 0 {
            return Err(FrameError::ReservedBits);
        }
        if masked {
            return Err(FrameError::Masked);
        }
        let fin = b0 & 0x80 != 0;
        let payload = &buf[head..consumed];
        let message = match opcode {
            0x8..=0xA => {
                if !fin {
                    return Err(FrameError::FragmentedControl);
                }
                if len > 125 {
                    return Err(FrameError::ControlTooLong(len));
                }
                Some(match opcode {
                    0x8 => Received::Close(close_frame(payload)?),
                    0x9 => Received::Ping(payload),
                    _ => Received::Pong(payload),
                })
            }
            0x0 => {
                let Some(kind) = self.fragmented else {
                    return Err(FrameError::UnexpectedContinuation);
                };
                let size = self.fragments.len() + len;
                if size > self.limit {
                    return Err(FrameError::TooLarge {
                        size: size as u64,
                        limit: self.limit,
                    });
                }
                self.fragments.extend_from_slice(payload);
                if fin {
                    self.fragmented = None;
                    self.handed_out = true;
                    Some(data(kind, &self.fragments))
                } else {
                    None
                }
            }
            _ => {
                if self.fragmented.is_some() {
                    return Err(FrameError::ExpectedContinuation);
                }
                let kind = if opcode == 0x1 {
                    Kind::Text
                } else {
                    Kind::Binary
                };
                if fin {
                    Some(data(kind, payload))
                } else {
                    self.fragmented = Some(kind);
                    self.fragments.extend_from_slice(payload);
                    None
                }
            }
        };
        Ok(Decoded::Frame { consumed, message })
    }
}

fn data(kind: Kind, payload: &[u8]) -> Received<'_> {
    match kind {
        Kind::Text => Received::Text(payload),
        Kind::Binary => Received::Binary(payload),
    }
}

fn close_frame(payload: &[u8]) -> Result<Option<(u16, &str)>, FrameError> {
    match payload {
        [] => Ok(None),
        [_] => Err(FrameError::BadClose),
        [hi, lo, reason @ ..] => {
            let reason = std::str::from_utf8(reason).map_err(|_| FrameError::BadClose)?;
            Ok(Some((u16::from_be_bytes([*hi, *lo]), reason)))
        }
    }
}
