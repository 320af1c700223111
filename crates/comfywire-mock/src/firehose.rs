//! The firehose: a recorded prompt's frames sent to one socket as fast as
//! it takes them, a fresh prompt id per cycle, for throughput tests.
//! [`start`] asks the socket's task to do it (from
//! [`crate::MockServer::firehose`] and `POST /mock/firehose`); that task
//! calls [`pour`], which writes the frames.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::SinkExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::rewrite;
use crate::scenario::{FrameBody, RecordedPrompt};
use crate::state::{Outgoing, Shared};
use crate::ws::BATCH;

/// Sends `frames` frames from `scenario`'s first prompt to `client_id`'s socket.
pub(crate) fn start(
    shared: &Arc<Shared>,
    client_id: &str,
    frames: u64,
    scenario: &str,
) -> JoinHandle<u64> {
    let prompt = shared
        .library
        .get(scenario)
        .or_else(|| shared.library.get("long_run"))
        .and_then(|s| s.prompts.first())
        .cloned()
        .map(Arc::new);
    let (shared, client_id) = (shared.clone(), client_id.to_owned());
    tokio::spawn(async move {
        let Some(prompt) = prompt else { return 0 };
        let Some(tx) = shared.socket_of(&client_id).await else {
            return 0;
        };
        let (done, finished) = oneshot::channel();
        if tx
            .send(Outgoing::Firehose {
                prompt,
                frames,
                done,
            })
            .is_err()
        {
            return 0;
        }
        finished.await.unwrap_or(0)
    })
}

/// One frame of a firehose cycle with the places that hold the prompt id.
struct Template {
    bytes: Bytes,
    id_at: Vec<usize>,
    text: bool,
}

impl Template {
    fn new(bytes: Bytes, text: bool, id: &[u8]) -> Template {
        let id_at = if id.is_empty() {
            Vec::new()
        } else {
            bytes
                .windows(id.len())
                .enumerate()
                .filter(|(_, w)| *w == id)
                .map(|(at, _)| at)
                .collect()
        };
        Template { bytes, id_at, text }
    }

    /// The frame with `id` written over the recorded id (same length).
    fn render(&self, id: &[u8]) -> Option<Message> {
        let bytes = if self.id_at.is_empty() {
            self.bytes.clone()
        } else {
            let mut out = BytesMut::from(&self.bytes[..]);
            for at in &self.id_at {
                out[*at..*at + id.len()].copy_from_slice(id);
            }
            out.freeze()
        };
        if self.text {
            Utf8Bytes::try_from(bytes).ok().map(Message::Text)
        } else {
            Some(Message::Binary(bytes))
        }
    }
}

/// The frames of `prompt` encoded once for a socket with these flags.
fn templates(prompt: &RecordedPrompt, wants_metadata: bool) -> Vec<Template> {
    let old = prompt.prompt_id.as_str();
    let mut node: Option<String> = None;
    let mut out = Vec::with_capacity(prompt.frames.len());
    for frame in &prompt.frames {
        match &frame.body {
            FrameBody::Text {
                text,
                kind,
                node: n,
                ..
            } => {
                if kind == "executing" && n.is_some() {
                    node.clone_from(n);
                }
                out.push(Template::new(
                    Bytes::from(text.clone()),
                    true,
                    old.as_bytes(),
                ));
            }
            FrameBody::Binary(data) => {
                let data = rewrite::preview(data, wants_metadata, node.as_deref(), old, old);
                out.push(Template::new(data, false, old.as_bytes()));
            }
        }
    }
    out
}

/// Sends `count` frames as fast as the socket takes them, cycling through
/// `prompt` with a fresh prompt id per cycle.
pub(crate) async fn pour<S>(
    ws: &mut WebSocketStream<S>,
    prompt: &RecordedPrompt,
    count: u64,
    wants_metadata: bool,
) -> u64
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let templates = templates(prompt, wants_metadata);
    if templates.is_empty() {
        return 0;
    }
    let old_len = prompt.prompt_id.len();
    let mut sent = 0u64;
    'cycles: while sent < count {
        let mut id = crate::ids::new_prompt_id();
        // Fixed-length rewriting needs an id as long as the recorded one.
        id.truncate(old_len);
        while id.len() < old_len {
            id.push('0');
        }
        for template in &templates {
            if sent >= count {
                break 'cycles;
            }
            let Some(message) = template.render(id.as_bytes()) else {
                continue;
            };
            if ws.feed(message).await.is_err() {
                return sent;
            }
            sent += 1;
            if sent % BATCH as u64 == 0 && ws.flush().await.is_err() {
                return sent;
            }
        }
    }
    if ws.flush().await.is_err() {
        return sent;
    }
    sent
}
