//! Hostile-server mode: what a broken or malicious server could send, to
//! show that a client stays bounded in memory and CPU.
//!
//! Two halves, both off until asked for:
//! * WebSocket floods ([`Flood`], [`crate::MockServer::flood`]): a million
//!   distinct prompt ids, an endless stream of unknown message types, bad
//!   frames, previews of an exact size. Frames are made one at a time as
//!   the socket takes them, so the mock itself holds almost nothing.
//! * HTTP answers ([`HostileHttp`], [`crate::MockServer::set_hostile_http`]):
//!   `/history`, `/queue`, `/view` and `/system_stats` bodies of any size,
//!   endless ones, streamed as fast as the client reads or at a set rate,
//!   with or without a `Content-Length`. The JSON ones are valid JSON
//!   prefixes (and valid JSON when they end), with all the bulk in one
//!   submitted graph, as a real server's big answers have it.
//!
//! Everything else keeps working as usual: prompts still run and replay.

use std::convert::Infallible;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::SinkExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::ws::BATCH;

/// A WebSocket flood, sent to one client's socket as fast as it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Flood {
    /// `count` distinct prompt ids that nobody submitted, each named by an
    /// `execution_start`, a `progress` and a type-4 preview (and never
    /// finished): foreign records, throttle keys and lifecycle events for
    /// ids the client has never seen.
    DistinctPrompts {
        /// How many ids.
        count: u64,
    },
    /// `count` messages of a type no client knows, like a custom node's
    /// system monitor (`crystools.monitor`) sends once a second forever.
    UnknownTypes {
        /// How many messages.
        count: u64,
    },
    /// `count` frames that do not parse, in turn: not JSON, a known type
    /// with a wrong field, a binary frame cut inside its type.
    BadFrames {
        /// How many frames.
        count: u64,
    },
    /// `count` type-1 previews (JPEG) of exactly `frame_bytes` bytes
    /// each, header included: at a client's limit, or one byte over it.
    Previews {
        /// How many frames.
        count: u64,
        /// Size of each whole frame.
        frame_bytes: usize,
    },
}

impl Flood {
    /// Frames the flood sends.
    pub fn frames(&self) -> u64 {
        match self {
            Flood::DistinctPrompts { count } => count.saturating_mul(3),
            Flood::UnknownTypes { count }
            | Flood::BadFrames { count }
            | Flood::Previews { count, .. } => *count,
        }
    }

    /// The frames, made one at a time.
    pub(crate) fn messages(self) -> Box<dyn Iterator<Item = Message> + Send> {
        match self {
            Flood::DistinctPrompts { count } => Box::new((0..count).flat_map(distinct_prompt)),
            Flood::UnknownTypes { count } => Box::new((0..count).map(unknown_type)),
            Flood::BadFrames { count } => Box::new((0..count).map(bad_frame)),
            Flood::Previews { count, frame_bytes } => {
                let frame = preview_of(frame_bytes);
                Box::new((0..count).map(move |_| Message::Binary(frame.clone())))
            }
        }
    }
}

/// The `i`-th made-up prompt id, shaped like a uuid4.
fn prompt_id(i: u64) -> String {
    format!(
        "{:08x}-dead-4bad-8bad-{:012x}",
        (i >> 48) as u32,
        i & 0xffff_ffff_ffff
    )
}

fn distinct_prompt(i: u64) -> [Message; 3] {
    let id = prompt_id(i);
    let start = format!(
        r#"{{"type": "execution_start", "data": {{"prompt_id": "{id}", "timestamp": {i}}}}}"#
    );
    let progress = format!(
        r#"{{"type": "progress", "data": {{"value": 1, "max": 4, "prompt_id": "{id}", "node": "3"}}}}"#
    );
    let metadata = format!(
        r#"{{"node_id": "3", "prompt_id": "{id}", "display_node_id": "3", "parent_node_id": null, "real_node_id": "3", "image_type": "image/jpeg"}}"#
    );
    // Not a decodable JPEG: nothing in a client decodes previews.
    let image = b"\xff\xd8\xff\xe0 preview \xff\xd9";
    let mut frame = BytesMut::with_capacity(8 + metadata.len() + image.len());
    frame.put_u32(comfywire_proto::BINARY_PREVIEW_WITH_METADATA);
    frame.put_u32(metadata.len() as u32);
    frame.put_slice(metadata.as_bytes());
    frame.put_slice(image);
    [
        Message::text(start),
        Message::text(progress),
        Message::Binary(frame.freeze()),
    ]
}

fn unknown_type(i: u64) -> Message {
    Message::text(format!(
        r#"{{"type": "crystools.monitor", "data": {{"cpu_utilization": {}.5, "ram_total": 68719476736, "ram_used": 12884901888, "ram_used_percent": 18.75, "hdd_total": -1, "gpus": [{{"gpu_utilization": 97, "vram_used_percent": 63.2, "gpu_temperature": 71, "tick": {i}}}]}}}}"#,
        i % 100
    ))
}

fn bad_frame(i: u64) -> Message {
    match i % 3 {
        0 => Message::text(format!("{{\"type\": \"status\", \"data\": {{{i}")),
        1 => Message::text(format!(
            r#"{{"type": "progress", "data": {{"value": "step {i}", "max": 4, "prompt_id": "p", "node": "3"}}}}"#
        )),
        _ => Message::Binary(Bytes::from_static(&[0, 0, 0])),
    }
}

/// A type-1 JPEG preview frame of exactly `frame_bytes` bytes (at least
/// its 8-byte header).
fn preview_of(frame_bytes: usize) -> Bytes {
    let mut frame = BytesMut::with_capacity(frame_bytes.max(8));
    frame.put_u32(comfywire_proto::BINARY_PREVIEW);
    frame.put_u32(1);
    frame.resize(frame_bytes.max(8), 0xAB);
    frame.freeze()
}

/// Sends `frames` as fast as the socket takes them; returns how many
/// went out.
pub(crate) async fn pour<S>(
    ws: &mut WebSocketStream<S>,
    frames: Box<dyn Iterator<Item = Message> + Send>,
) -> u64
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut sent = 0u64;
    for message in frames {
        if ws.feed(message).await.is_err() {
            return sent;
        }
        sent += 1;
        if sent % BATCH as u64 == 0 && ws.flush().await.is_err() {
            return sent;
        }
    }
    let _ = ws.flush().await;
    sent
}

/// One hostile HTTP body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostileBody {
    /// Total size; `u64::MAX` never ends.
    pub bytes: u64,
    /// Pace; `None` sends as fast as the client reads.
    pub bytes_per_sec: Option<u64>,
    /// Send a `Content-Length` (the true one); without it the body is
    /// chunked and its size only shows while reading.
    pub declare_length: bool,
}

impl HostileBody {
    /// `bytes` as fast as the client reads, chunked (no length).
    pub fn fast(bytes: u64) -> HostileBody {
        HostileBody {
            bytes,
            bytes_per_sec: None,
            declare_length: false,
        }
    }

    /// `bytes` at `bytes_per_sec`, chunked.
    pub fn slow(bytes: u64, bytes_per_sec: u64) -> HostileBody {
        HostileBody {
            bytes,
            bytes_per_sec: Some(bytes_per_sec),
            declare_length: false,
        }
    }

    /// A body that never ends, as fast as the client reads.
    pub fn endless() -> HostileBody {
        HostileBody::fast(u64::MAX)
    }

    /// The same with its `Content-Length` sent.
    pub fn declared(mut self) -> HostileBody {
        self.declare_length = self.bytes != u64::MAX;
        self
    }
}

/// Which answers are hostile; `None` answers as usual.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostileHttp {
    /// `GET /history` and `GET /history/{id}`.
    pub history: Option<HostileBody>,
    /// `GET /queue`.
    pub queue: Option<HostileBody>,
    /// `GET /view`.
    pub view: Option<HostileBody>,
    /// `GET /system_stats`.
    pub system_stats: Option<HostileBody>,
}

/// A streamed answer.
pub(crate) type Streamed = Response<BoxBody<Bytes, Infallible>>;

/// The hostile answer to `req`, when the mode covers it.
pub(crate) fn route<B>(hostile: &HostileHttp, req: &Request<B>) -> Option<Streamed> {
    if req.method() != Method::GET {
        return None;
    }
    let full = req.uri().path();
    let path = full
        .strip_prefix("/api")
        .filter(|p| p.starts_with('/'))
        .unwrap_or(full);
    if path == "/history" || path.starts_with("/history/") {
        let id = path.strip_prefix("/history/").unwrap_or("0");
        let head = format!(
            r#"{{"{id}": {{"prompt": [0, "{id}", {{"1": {{"class_type": "Note", "inputs": {{"text": ""#
        );
        let tail = r#""}}}, {}, []], "outputs": {}, "status": {"status_str": "success", "completed": true, "messages": []}, "meta": {}}}"#;
        return Some(json_answer(hostile.history?, head, tail));
    }
    match path {
        "/queue" => {
            let head = r#"{"queue_running": [], "queue_pending": [[0, "q", {"1": {"class_type": "Note", "inputs": {"text": ""#;
            Some(json_answer(
                hostile.queue?,
                head.to_owned(),
                r#""}}}, {}, []]]}"#,
            ))
        }
        "/system_stats" => {
            let head = r#"{"system": {"os": "posix", "note": ""#;
            Some(json_answer(
                hostile.system_stats?,
                head.to_owned(),
                r#""}, "devices": []}"#,
            ))
        }
        "/view" => Some(streamed(
            hostile.view?,
            Bytes::new(),
            Bytes::new(),
            "image/png",
        )),
        _ => None,
    }
}

fn json_answer(body: HostileBody, head: String, tail: &'static str) -> Streamed {
    streamed(
        body,
        Bytes::from(head),
        Bytes::from_static(tail.as_bytes()),
        "application/json; charset=utf-8",
    )
}

/// Filler chunks are slices of one buffer of this size.
const CHUNK: usize = 64 << 10;

/// `head`, filler (`x`) and `tail` adding up to `body.bytes` (the filler
/// never ends when that is `u64::MAX`).
fn streamed(body: HostileBody, head: Bytes, tail: Bytes, content_type: &str) -> Streamed {
    let fixed = (head.len() + tail.len()) as u64;
    let filler = body.bytes.saturating_sub(fixed);
    let endless = body.bytes == u64::MAX;
    let chunk = Bytes::from(vec![b'x'; CHUNK]);
    let pace = body.bytes_per_sec.filter(|r| *r > 0);
    struct State {
        head: Option<Bytes>,
        left: u64,
        tail: Option<Bytes>,
    }
    let state = State {
        head: Some(head),
        left: filler,
        tail: Some(tail),
    };
    let stream = futures_util::stream::unfold(state, move |mut s| {
        let chunk = chunk.clone();
        async move {
            let next = if let Some(head) = s.head.take().filter(|h| !h.is_empty()) {
                head
            } else if endless || s.left > 0 {
                let n = if endless {
                    CHUNK
                } else {
                    usize::try_from(s.left).unwrap_or(CHUNK).min(CHUNK)
                };
                if !endless {
                    s.left -= n as u64;
                }
                chunk.slice(..n)
            } else {
                s.tail.take().filter(|t| !t.is_empty())?
            };
            if let Some(rate) = pace {
                let secs = next.len() as f64 / rate as f64;
                tokio::time::sleep(Duration::from_secs_f64(secs.min(3600.0))).await;
            }
            Some((Ok::<_, Infallible>(Frame::data(next)), s))
        }
    });
    let mut response = Response::new(StreamBody::new(stream).boxed());
    *response.status_mut() = StatusCode::OK;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    if body.declare_length && !endless {
        response
            .headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(body.bytes.max(fixed)));
    }
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn collect(response: Streamed) -> Bytes {
        response.into_body().collect().await.unwrap().to_bytes()
    }

    fn get(path: &str) -> Request<()> {
        Request::get(path).body(()).unwrap()
    }

    #[tokio::test]
    async fn finite_bodies_have_their_size_and_are_json() {
        let hostile = HostileHttp {
            history: Some(HostileBody::fast(300_000).declared()),
            queue: Some(HostileBody::fast(200_000)),
            system_stats: Some(HostileBody::fast(10)),
            view: Some(HostileBody::fast(70_000)),
        };
        let answer = route(&hostile, &get("/api/history/abc")).unwrap();
        assert_eq!(answer.headers()[CONTENT_LENGTH], "300000");
        let body = collect(answer).await;
        assert_eq!(body.len(), 300_000);
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["abc"]["status"]["status_str"], "success");
        let body = collect(route(&hostile, &get("/queue")).unwrap()).await;
        assert_eq!(body.len(), 200_000);
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["queue_pending"][0][1], "q");
        // Shorter than its JSON frame: the frame alone, still JSON.
        let body = collect(route(&hostile, &get("/system_stats")).unwrap()).await;
        assert!(serde_json::from_slice::<serde_json::Value>(&body).is_ok());
        assert_eq!(
            collect(route(&hostile, &get("/view?filename=a")).unwrap())
                .await
                .len(),
            70_000
        );
        assert!(route(&hostile, &get("/prompt")).is_none());
        assert!(route(&HostileHttp::default(), &get("/queue")).is_none());
    }

    #[test]
    fn floods_make_frames_lazily_with_the_sizes_asked() {
        let frames: Vec<Message> = Flood::DistinctPrompts { count: 1000 }.messages().collect();
        assert_eq!(
            frames.len() as u64,
            Flood::DistinctPrompts { count: 1000 }.frames()
        );
        let mut ids = std::collections::HashSet::new();
        for frame in &frames {
            if let Message::Text(t) = frame {
                let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
                ids.insert(v["data"]["prompt_id"].as_str().unwrap().to_owned());
            }
        }
        assert_eq!(ids.len(), 1000);
        let mut previews = Flood::Previews {
            count: 2,
            frame_bytes: 1 << 20,
        }
        .messages();
        assert!(matches!(previews.next(), Some(Message::Binary(b)) if b.len() == 1 << 20));
        assert_eq!(Flood::BadFrames { count: 5 }.messages().count(), 5);
        assert_eq!(Flood::UnknownTypes { count: 5 }.messages().count(), 5);
    }
}
