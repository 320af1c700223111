//! The WebSocket decoder beside a second implementation: what tungstenite,
//! as a client, reads from the same bytes. Shared by the decoder's test and
//! its fuzz target (`fuzz/fuzz_targets/ws_frames.rs` includes this file).

use comfywire_proto::websocket::{Decoded, Decoder, Received};
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::{Role, WebSocket, WebSocketConfig};
use tungstenite::{Error, Message};

/// One step of a read: a message, the input's end, or a failed connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping.
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// A close frame, with the code a client reports (a code no endpoint
    /// may send reads as 1002, as tungstenite reports it).
    Close(Option<(u16, String)>),
    /// The input ended (in or between frames) without an error.
    End,
    /// The connection fails here (a text that is not UTF-8 counts: the
    /// decoder leaves UTF-8 to its caller, and this harness checks it where
    /// tungstenite does, on each fragment as it comes).
    Error,
}

/// A socket that reads `input` and discards what is written (pongs).
struct Input<'a>(&'a [u8]);

impl std::io::Read for Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::io::Read::read(&mut self.0, buf)
    }
}

impl std::io::Write for Input<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What tungstenite reads from `bytes`, as a client with `limit` on both
/// frames and messages.
pub fn tungstenite_reads(bytes: &[u8], limit: usize) -> Vec<Step> {
    let config = WebSocketConfig::default()
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit));
    let mut ws = WebSocket::from_raw_socket(Input(bytes), Role::Client, Some(config));
    let mut steps = Vec::new();
    loop {
        let step = match ws.read() {
            Ok(Message::Text(t)) => Step::Text(t.as_str().to_owned()),
            Ok(Message::Binary(b)) => Step::Binary(b.to_vec()),
            Ok(Message::Ping(p)) => Step::Ping(p.to_vec()),
            Ok(Message::Pong(p)) => Step::Pong(p.to_vec()),
            Ok(Message::Close(c)) => {
                Step::Close(c.map(|c| (u16::from(c.code), c.reason.to_string())))
            }
            Ok(Message::Frame(_)) => continue,
            Err(Error::Protocol(
                tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
            )) => Step::End,
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => Step::End,
            Err(_) => Step::Error,
        };
        let stop = matches!(step, Step::Close(_) | Step::End | Step::Error);
        steps.push(step);
        if stop {
            return steps;
        }
    }
}

/// What the decoder reads from `bytes` given to it in pieces of the sizes
/// `chunks` yields (1 or more), as the driver would meet them in its buffer.
pub fn decoder_reads(bytes: &[u8], limit: usize, mut chunks: impl FnMut() -> usize) -> Vec<Step> {
    let mut decoder = Decoder::new(limit);
    let mut buf: Vec<u8> = Vec::new();
    let mut offered = 0;
    let mut steps = Vec::new();
    // The bytes of a fragmented text so far.
    let mut open_text: Option<Vec<u8>> = None;
    loop {
        let (consumed, step) = match decoder.decode(&buf) {
            Err(_) => (0, Some(Step::Error)),
            Ok(Decoded::Incomplete { .. }) if offered == bytes.len() => (0, Some(Step::End)),
            Ok(Decoded::Incomplete { .. }) => {
                let n = chunks().max(1).min(bytes.len() - offered);
                buf.extend_from_slice(&bytes[offered..offered + n]);
                offered += n;
                continue;
            }
            Ok(Decoded::Frame { consumed, message }) => {
                let step = match message {
                    None => {
                        // A fragment: remember a text's bytes for the end.
                        let frame = &buf[..consumed];
                        let mut cursor = std::io::Cursor::new(frame);
                        let Ok(Some((header, _))) = FrameHeader::parse(&mut cursor) else {
                            unreachable!("the decoder took a frame tungstenite cannot read");
                        };
                        let head = cursor.position() as usize;
                        if header.opcode == OpCode::Data(Data::Text) {
                            open_text = Some(Vec::new());
                        }
                        match open_text.as_mut() {
                            Some(t) => {
                                t.extend_from_slice(&frame[head..]);
                                // Bad bytes, not just a character cut short.
                                let bad =
                                    std::str::from_utf8(t).is_err_and(|e| e.error_len().is_some());
                                bad.then_some(Step::Error)
                            }
                            None => None,
                        }
                    }
                    Some(Received::Text(t)) => {
                        open_text = None;
                        Some(match std::str::from_utf8(t) {
                            Ok(t) => Step::Text(t.to_owned()),
                            Err(_) => Step::Error,
                        })
                    }
                    Some(Received::Binary(b)) => Some(Step::Binary(b.to_vec())),
                    Some(Received::Ping(p)) => Some(Step::Ping(p.to_vec())),
                    Some(Received::Pong(p)) => Some(Step::Pong(p.to_vec())),
                    Some(Received::Close(c)) => Some(Step::Close(c.map(|(code, reason)| {
                        if CloseCode::from(code).is_allowed() {
                            (code, reason.to_owned())
                        } else {
                            (1002, "Protocol violation".to_owned())
                        }
                    }))),
                };
                (consumed, step)
            }
        };
        buf.drain(..consumed);
        if let Some(step) = step {
            let stop = matches!(step, Step::Close(_) | Step::End | Step::Error);
            steps.push(step);
            if stop {
                return steps;
            }
        }
    }
}
