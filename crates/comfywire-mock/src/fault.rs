//! Misbehaviour a test can ask the mock for.

use crate::state::{Shared, text_message};
use bytes::{BufMut, BytesMut};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

/// A fault to inject, as sent to `POST /mock/fault`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum Fault {
    /// The next `count` WebSocket upgrades get HTTP 503 (HTTP routes keep working).
    RefuseConnects {
        /// How many upgrades to refuse.
        count: u32,
    },
    /// Every WebSocket upgrade is answered with HTTP `status` (default 403,
    /// as a proxy that blocks WebSockets answers) for `millis`, or for good
    /// when absent, while every HTTP route keeps working. Open sockets stay
    /// open: add [`Fault::DropSocketsNow`] for a disconnect.
    BlockWebSockets {
        /// The status of the refusal.
        #[serde(default = "forbidden")]
        status: u16,
        /// How long the block lasts; `None`: until [`Fault::AllowWebSockets`].
        #[serde(default)]
        millis: Option<u64>,
    },
    /// Ends [`Fault::BlockWebSockets`].
    AllowWebSockets,
    /// After `frames` more frames are sent to any socket, cut every socket
    /// without a close frame; playback goes on and frames for absent
    /// clients are dropped.
    DropSocketsAfterFrames {
        /// Frames to let through first.
        frames: u32,
    },
    /// Cut every socket now, without a close frame.
    DropSocketsNow,
    /// Pause playback this long; sockets stay open and answer pings.
    Stall {
        /// Length of the pause.
        millis: u64,
    },
    /// Every open socket stays open but never gets another frame.
    Deaf,
    /// Drop every socket, forget queue, history and the running prompt, and
    /// count prompt numbers from 0 again.
    Restart,
    /// One text frame that is not JSON, to every socket.
    Garbage,
    /// A 6-byte binary frame: type 4 with a cut header.
    TruncatedBinary,
    /// A message type the client does not know, to every socket.
    UnknownType,
    /// A binary frame of event type 99.
    UnknownBinary,
    /// One text frame whose bytes are not UTF-8, to every socket (its
    /// framing is intact).
    InvalidUtf8,
    /// One frame with a reserved header bit set though no extension was
    /// agreed, to every socket: RFC 6455 has the client fail the socket.
    ReservedBits,
    /// One valid JSON text frame of about this many bytes.
    Oversize {
        /// Approximate frame size.
        bytes: usize,
    },
    /// The next submitted prompt plays `execution_error` instead.
    FailNextPrompt,
    /// The next `POST /prompt` answers a recorded 400 validation error.
    ValidationErrorNextPrompt,
    /// The next prompt the server enqueues gets no complete answer: the
    /// prompt is queued and runs, but the HTTP connection closes at `at`
    /// (JSON: `{"fault": "cut_prompt_reply"}`, or with `"at": "headers"`).
    CutPromptReply {
        /// Where the answer is cut (default: in the body).
        #[serde(default)]
        at: CutAt,
    },
    /// The next prompt the server enqueues is queued (and may run) at once,
    /// but its answer is held `millis` (JSON also takes `ms`); longer than
    /// the client's request timeout, the client gives up before it.
    DelayPromptReply {
        /// How long the answer is held.
        #[serde(alias = "ms")]
        millis: u64,
    },
    /// From now on the server ignores the `prompt_id` a client asks for and
    /// enqueues every prompt under an id of its own, which its answer
    /// carries (older ComfyUI, or a gateway that rewrites ids).
    IgnoreClientPromptId,
    /// The next `execution_success`, `execution_error` or
    /// `execution_interrupted` frame sent to a socket goes out cut in half:
    /// not JSON. History, `status` and `executing {node: null}` are intact.
    CorruptTerminalFrame,
    /// `GET /history/{id}` answers HTTP 500 for one prompt (`prompt_id`),
    /// or for the next prompt enqueued when it is `None`/absent, from now
    /// on; `/history` without an id, `/queue` and every other prompt work.
    HistoryUnreadable {
        /// The prompt, or `None` for the next one enqueued.
        #[serde(default)]
        prompt_id: Option<String>,
    },
}

fn forbidden() -> u16 {
    403
}

/// Where [`Fault::CutPromptReply`] cuts the answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CutAt {
    /// After the status line, the headers (with the full `content-length`)
    /// and half of the body.
    #[default]
    Body,
    /// Before anything is written: the connection just closes.
    Headers,
}

/// Carries out `fault` on the running server.
pub(crate) fn apply(shared: &Shared, fault: Fault) {
    match fault {
        Fault::Restart => return shared.restart(),
        Fault::Stall { millis } => {
            shared.lock().stall_until = Some(Instant::now() + Duration::from_millis(millis));
            return shared.wake.notify_waiters();
        }
        _ => {}
    }
    let mut inner = shared.lock();
    match fault {
        Fault::RefuseConnects { count } => inner.refuse_connects = count,
        Fault::BlockWebSockets { status, millis } => {
            let until = millis.map(|ms| Instant::now() + Duration::from_millis(ms));
            inner.block_websockets = Some((status, until));
        }
        Fault::AllowWebSockets => inner.block_websockets = None,
        Fault::DropSocketsAfterFrames { frames } => {
            if frames == 0 {
                inner.drop_all_sockets();
            } else {
                inner.drop_after_frames = Some(frames);
            }
        }
        Fault::DropSocketsNow => inner.drop_all_sockets(),
        Fault::Deaf => {
            for socket in inner.sockets.values_mut() {
                socket.deaf = true;
            }
            inner.registry.clear();
        }
        Fault::Garbage => inner.broadcast(text_message(
            "this is not JSON {\"type\": \"status\"".to_owned(),
        )),
        Fault::TruncatedBinary => {
            inner.broadcast(Message::Binary(vec![0, 0, 0, 4, 0, 0].into()));
        }
        Fault::UnknownType => {
            let value = serde_json::json!({
                "type": "crystools.monitor",
                "data": {"cpu_utilization": 12.5, "ram_used_percent": 41.2, "gpus": []}
            });
            inner.broadcast(text_message(crate::pyjson::to_string(&value)));
        }
        Fault::UnknownBinary => {
            let mut frame = BytesMut::new();
            frame.put_u32(99);
            frame.put_slice(b"unknown binary payload");
            inner.broadcast(Message::Binary(frame.freeze()));
        }
        Fault::InvalidUtf8 => inner.broadcast(Message::Frame(Frame::message(
            b"{\"type\": \"st\xC3\x28tus\", \"data\": {}}".to_vec(),
            OpCode::Data(Data::Text),
            true,
        ))),
        Fault::ReservedBits => {
            let mut frame = Frame::message(b"{}".to_vec(), OpCode::Data(Data::Text), true);
            frame.header_mut().rsv1 = true;
            inner.broadcast(Message::Frame(frame));
        }
        Fault::Oversize { bytes } => {
            let prefix = "{\"type\": \"mock.oversize\", \"data\": \"";
            let filler = bytes.saturating_sub(prefix.len() + 2);
            let mut text = String::with_capacity(bytes);
            text.push_str(prefix);
            text.extend(std::iter::repeat_n('x', filler));
            text.push_str("\"}");
            inner.broadcast(text_message(text));
        }
        Fault::FailNextPrompt => inner.fail_next_prompt = true,
        Fault::ValidationErrorNextPrompt => inner.validation_error_next_prompt = true,
        Fault::CutPromptReply { at } => inner.cut_next_prompt_reply = Some(at),
        Fault::DelayPromptReply { millis } => inner.delay_next_prompt_reply = Some(millis),
        Fault::IgnoreClientPromptId => inner.ignore_client_prompt_id = true,
        Fault::CorruptTerminalFrame => inner.corrupt_next_terminal = true,
        Fault::HistoryUnreadable {
            prompt_id: Some(id),
        } => {
            inner.history_unreadable.insert(id);
        }
        Fault::HistoryUnreadable { prompt_id: None } => inner.history_unreadable_next += 1,
        Fault::Restart | Fault::Stall { .. } => {}
    }
}
