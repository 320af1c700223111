//! The synthetic firehose: a stream of prompts of a shape you choose
//! ([`Mix`]), encoded once as WebSocket frames exactly as they go on the
//! wire and written to the socket's TCP stream with `write_all`, so the
//! server costs next to nothing per frame and never limits the reader.
//!
//! The recorded firehose (`firehose.rs`) sends every frame through
//! tungstenite's sink, which frames and copies it as it goes: fast enough
//! for tests, but a reader faster than that sink measures the sink. Here
//! one prompt's frames are framed once into one buffer; per prompt only
//! the prompt id is written over the ids in that buffer (every id has the
//! same length) before the buffer goes out in one `write_all`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;

use crate::pyjson::quote;
use crate::state::{Outgoing, Shared};

/// When the server sends a `progress_state` snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Snapshots {
    /// One when each node starts.
    #[default]
    PerNode,
    /// One before every `progress` step too, as ComfyUI 0.3.64 sends them.
    PerStep,
}

/// The shape of a synthetic firehose stream (`POST /mock/firehose` with a
/// `"mix"` object; every field has a default).
///
/// Each prompt is: `execution_start`, `execution_cached`, then per node a
/// `progress_state` snapshot (node running), `executing`, `steps` times
/// (a snapshot when [`Snapshots::PerStep`]) a `progress`, with a preview
/// after every `preview_every`-th `progress` of the stream, and `executed`
/// with `output_images` images; then `executing` with no node,
/// `execution_success` and `status`. Text is in Python's `json.dumps`
/// form, key order as the server writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Mix {
    /// Of every `own + foreign` prompts, the first `own` take their ids
    /// from [`Mix::own_ids`] in order (prompts the reading client
    /// submitted); the rest get fresh ids, as another client's would.
    pub own: u32,
    /// See [`Mix::own`].
    pub foreign: u32,
    /// Ids for the reader's own prompts, each used once; when they run out
    /// the remaining prompts are foreign. Only 36-character ids (uuids, as
    /// clients choose them) can be written over the encoded frames; an id
    /// of another length is skipped.
    pub own_ids: Vec<String>,
    /// Nodes per prompt.
    pub nodes: u32,
    /// `progress` steps per node.
    pub steps: u32,
    /// When `progress_state` snapshots are sent.
    pub snapshots: Snapshots,
    /// Encoded size of each preview image, in bytes.
    pub preview_bytes: usize,
    /// A preview after every this many `progress` frames (0: none).
    pub preview_every: u32,
    /// Images listed in each node's `executed` output.
    pub output_images: u32,
}

impl Default for Mix {
    fn default() -> Mix {
        Mix {
            own: 1,
            foreign: 0,
            own_ids: Vec::new(),
            nodes: 10,
            steps: 20,
            snapshots: Snapshots::PerNode,
            preview_bytes: 30_000,
            preview_every: 50,
            output_images: 1,
        }
    }
}

/// The id every template is written with; real ids of the same length
/// are copied over it.
const PLACEHOLDER: &str = "00000000-0000-4000-8000-000000000000";

/// One prompt's frames, framed, with where each frame ends and where the
/// prompt id sits in them.
struct Encoded {
    bytes: Vec<u8>,
    frame_ends: Vec<usize>,
    id_at: Vec<usize>,
}

impl Encoded {
    /// Points the frames at `id` (same length as the placeholder).
    fn set_id(&mut self, id: &[u8]) {
        for &at in &self.id_at {
            self.bytes[at..at + id.len()].copy_from_slice(id);
        }
    }
}

/// Builds one prompt's frames.
struct Builder<'a> {
    mix: &'a Mix,
    metadata: bool,
    out: Encoded,
    /// `progress` frames so far, across prompts, for the preview rate.
    progress_seen: u64,
    image: Vec<u8>,
}

impl Builder<'_> {
    fn frame(&mut self, opcode: u8, payload: &[u8], id_in_payload: &[usize]) {
        let out = &mut self.out.bytes;
        out.push(0x80 | opcode);
        match payload.len() {
            n if n < 126 => out.push(n as u8),
            n if n <= usize::from(u16::MAX) => {
                out.push(126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        let start = out.len();
        out.extend_from_slice(payload);
        self.out.frame_ends.push(out.len());
        self.out
            .id_at
            .extend(id_in_payload.iter().map(|at| start + at));
    }

    fn text(&mut self, text: &str) {
        let at = find_all(text.as_bytes(), PLACEHOLDER.as_bytes());
        self.frame(0x1, text.as_bytes(), &at);
    }

    fn preview(&mut self, node: &str) {
        let mut payload = Vec::with_capacity(self.image.len() + 256);
        let mut header_at = Vec::new();
        if self.metadata {
            let header = format!(
                "{{\"node_id\": {n}, \"prompt_id\": \"{PLACEHOLDER}\", \"display_node_id\": {n}, \"parent_node_id\": null, \"real_node_id\": {n}, \"image_type\": \"image/jpeg\"}}",
                n = quote(node)
            );
            payload.extend_from_slice(&comfywire_proto::BINARY_PREVIEW_WITH_METADATA.to_be_bytes());
            payload.extend_from_slice(&(header.len() as u32).to_be_bytes());
            header_at = find_all(header.as_bytes(), PLACEHOLDER.as_bytes())
                .into_iter()
                .map(|at| at + 8)
                .collect();
            payload.extend_from_slice(header.as_bytes());
        } else {
            payload.extend_from_slice(&comfywire_proto::BINARY_PREVIEW.to_be_bytes());
            // 1: JPEG.
            payload.extend_from_slice(&1u32.to_be_bytes());
        }
        payload.extend_from_slice(&self.image);
        self.frame(0x2, &payload, &header_at);
    }

    fn snapshot(&mut self, running: u32, step: u32) {
        let mut nodes = String::new();
        for n in 1..=running {
            let (value, max, state) = if n < running {
                (1.0, 1.0, "finished")
            } else {
                (f64::from(step), f64::from(self.mix.steps), "running")
            };
            if n > 1 {
                nodes.push_str(", ");
            }
            nodes.push_str(&format!(
                "\"{n}\": {{\"value\": {value:?}, \"max\": {max:?}, \"state\": \"{state}\", \"node_id\": \"{n}\", \"prompt_id\": \"{PLACEHOLDER}\", \"display_node_id\": \"{n}\", \"parent_node_id\": null, \"real_node_id\": \"{n}\"}}"
            ));
        }
        self.text(&format!(
            "{{\"type\": \"progress_state\", \"data\": {{\"prompt_id\": \"{PLACEHOLDER}\", \"nodes\": {{{nodes}}}}}}}"
        ));
    }

    fn prompt(&mut self) {
        let p = PLACEHOLDER;
        self.text(&format!(
            "{{\"type\": \"execution_start\", \"data\": {{\"prompt_id\": \"{p}\", \"timestamp\": 1795677586873}}}}"
        ));
        self.text(&format!(
            "{{\"type\": \"execution_cached\", \"data\": {{\"nodes\": [], \"prompt_id\": \"{p}\", \"timestamp\": 1795677586874}}}}"
        ));
        for n in 1..=self.mix.nodes {
            let node = n.to_string();
            self.snapshot(n, 0);
            self.text(&format!(
                "{{\"type\": \"executing\", \"data\": {{\"node\": \"{n}\", \"display_node\": \"{n}\", \"prompt_id\": \"{p}\"}}}}"
            ));
            for step in 1..=self.mix.steps {
                if self.mix.snapshots == Snapshots::PerStep {
                    self.snapshot(n, step);
                }
                self.text(&format!(
                    "{{\"type\": \"progress\", \"data\": {{\"value\": {step}, \"max\": {}, \"prompt_id\": \"{p}\", \"node\": \"{n}\"}}}}",
                    self.mix.steps
                ));
                self.progress_seen += 1;
                let every = u64::from(self.mix.preview_every);
                if every > 0 && self.progress_seen % every == 0 {
                    self.preview(&node);
                }
            }
            let images: Vec<String> = (1..=self.mix.output_images)
                .map(|i| {
                    format!(
                        "{{\"filename\": \"firehose_{n}_{i:05}_.png\", \"subfolder\": \"\", \"type\": \"output\"}}"
                    )
                })
                .collect();
            self.text(&format!(
                "{{\"type\": \"executed\", \"data\": {{\"node\": \"{n}\", \"display_node\": \"{n}\", \"output\": {{\"images\": [{}]}}, \"prompt_id\": \"{p}\"}}}}",
                images.join(", ")
            ));
        }
        self.text(&format!(
            "{{\"type\": \"executing\", \"data\": {{\"node\": null, \"prompt_id\": \"{p}\"}}}}"
        ));
        self.text(&format!(
            "{{\"type\": \"execution_success\", \"data\": {{\"prompt_id\": \"{p}\", \"timestamp\": 1795677587930}}}}"
        ));
        self.text("{\"type\": \"status\", \"data\": {\"status\": {\"exec_info\": {\"queue_remaining\": 0}}}}");
    }
}

fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(at, _)| at)
        .collect()
}

/// A JPEG-looking image of `len` bytes (SOI, APP0, then bytes that do not
/// compress, as an encoded image does not).
fn image(len: usize) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8, 0xFF, 0xE0];
    let mut x: u32 = 0x9E37_79B9;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.push(x as u8);
    }
    out.truncate(len);
    out
}

/// The encoded prompts of a cycle: previews land on different steps in
/// consecutive prompts when `preview_every` does not divide a prompt's
/// steps, so the cycle holds as many prompts as it takes to repeat.
fn cycle(mix: &Mix, metadata: bool) -> Vec<Encoded> {
    let per_prompt = u64::from(mix.nodes) * u64::from(mix.steps);
    let every = u64::from(mix.preview_every);
    let prompts = if every == 0 || per_prompt == 0 {
        1
    } else {
        // lcm(per_prompt, every) / per_prompt, capped: a long cycle only
        // costs memory.
        (every / gcd(per_prompt, every)).clamp(1, 64)
    };
    let mut builder = Builder {
        mix,
        metadata,
        out: Encoded {
            bytes: Vec::new(),
            frame_ends: Vec::new(),
            id_at: Vec::new(),
        },
        progress_seen: 0,
        image: image(mix.preview_bytes),
    };
    (0..prompts)
        .map(|_| {
            builder.prompt();
            std::mem::replace(
                &mut builder.out,
                Encoded {
                    bytes: Vec::new(),
                    frame_ends: Vec::new(),
                    id_at: Vec::new(),
                },
            )
        })
        .collect()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// Sends `count` frames of `mix` as fast as the socket takes them; answers
/// the number sent.
pub(crate) async fn pour<S>(
    ws: &mut WebSocketStream<S>,
    mix: &Mix,
    count: u64,
    wants_metadata: bool,
) -> u64
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut prompts = cycle(mix, wants_metadata);
    if prompts.iter().all(|p| p.frame_ends.is_empty()) {
        return 0;
    }
    // tungstenite has flushed what it had (the caller flushed the sink),
    // so the TCP stream is at a frame boundary: frames written straight to
    // it reach the client as if the sink had written them.
    let tcp = ws.get_mut();
    let mut own = mix.own_ids.iter();
    let period = u64::from(mix.own) + u64::from(mix.foreign);
    let mut sent = 0u64;
    for index in 0u64.. {
        if sent >= count {
            break;
        }
        let slot = if period == 0 { 0 } else { index % period };
        // Own ids come from the client and are 36-character uuids like the
        // placeholder; one of another length would change the frames'
        // lengths, so it is not used (see `Mix::own_ids`).
        let id = if slot < u64::from(mix.own) {
            own.next()
                .filter(|id| id.len() == PLACEHOLDER.len())
                .cloned()
        } else {
            None
        }
        .unwrap_or_else(crate::ids::new_prompt_id);
        let cycle_len = prompts.len();
        let prompt = &mut prompts[index as usize % cycle_len];
        prompt.set_id(id.as_bytes());
        let (bytes, frames) = (&prompt.bytes[..], prompt.frame_ends.len() as u64);
        let left = count - sent;
        let (bytes, frames) = if frames > left {
            let end = prompt.frame_ends[left as usize - 1];
            (&bytes[..end], left)
        } else {
            (bytes, frames)
        };
        if tcp.write_all(bytes).await.is_err() {
            return sent;
        }
        sent += frames;
    }
    let _ = tcp.flush().await;
    sent
}

/// Asks `client_id`'s socket task to pour `frames` frames of `mix`;
/// resolves to the number sent (0 if the client has no socket).
pub(crate) fn start(
    shared: &Arc<Shared>,
    client_id: &str,
    frames: u64,
    mix: Mix,
) -> JoinHandle<u64> {
    let (shared, client_id) = (shared.clone(), client_id.to_owned());
    tokio::spawn(async move {
        let Some(tx) = shared.socket_of(&client_id).await else {
            return 0;
        };
        let (done, finished) = oneshot::channel();
        let mix = Box::new(mix);
        if tx.send(Outgoing::Mix { mix, frames, done }).is_err() {
            return 0;
        }
        finished.await.unwrap_or(0)
    })
}
