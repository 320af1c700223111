//! One WebSocket session: greeting, feature flags, and writing what the
//! rest of the server queues for it.

use crate::firehose;
use crate::pyjson;
use crate::state::{Outgoing, Shared, SocketEntry, text_message};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// The server flags of 0.3.64, sent in the WS reply and by `GET /features`.
pub(crate) fn server_features() -> Value {
    json!({"supports_preview_metadata": true, "max_upload_size": 104857600})
}

/// Frames written before a flush, so bursts go out in few syscalls.
pub(crate) const BATCH: usize = 64;

/// Serves one upgraded socket until it closes, is dropped or the server stops.
pub(crate) async fn serve<S>(shared: Arc<Shared>, mut ws: WebSocketStream<S>, client_id: String)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = {
        let mut inner = shared.lock();
        let id = inner.next_socket;
        inner.next_socket += 1;
        inner.sockets.insert(
            id,
            SocketEntry {
                tx,
                client_id: client_id.clone(),
                preview_metadata: false,
                deaf: false,
            },
        );
        // A newer socket takes the clientId over; the older one stays open.
        inner.registry.insert(client_id.clone(), id);
        inner.stats.connections_accepted += 1;
        inner.stats.open_sockets += 1;
        let greeting = json!({
            "type": "status",
            "data": {"status": {"exec_info": {"queue_remaining": inner.queue_remaining()}}, "sid": client_id}
        });
        inner.send_to_socket(id, text_message(pyjson::to_string(&greeting)));
        let resume = inner.running.as_ref().and_then(|running| {
            (running.job.client_id.as_deref() == Some(client_id.as_str()))
                .then(|| running.current_node.clone())
                .flatten()
        });
        if let Some(node) = resume {
            let bare = json!({"type": "executing", "data": {"node": node}});
            inner.send_to_socket(id, text_message(pyjson::to_string(&bare)));
        }
        id
    };
    let mut shutdown = shared.shutdown.subscribe();
    let mut first_message = true;
    loop {
        tokio::select! {
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if std::mem::take(&mut first_message) {
                        negotiate(&shared, id, &text);
                    }
                }
                Some(Ok(Message::Binary(_))) => first_message = false,
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            outgoing = rx.recv() => {
                let Some(outgoing) = outgoing else { break };
                match write(&shared, id, &mut ws, &mut rx, outgoing).await {
                    Flow::Continue => {}
                    Flow::Close => break,
                    // Dropping the stream ends TCP without a close frame.
                    Flow::Abort => return,
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    shared.lock().remove_socket(id);
    let _ = ws.close(None).await;
}

/// Answers a first-message `feature_flags` and remembers the preview flag.
fn negotiate(shared: &Shared, id: u64, text: &str) {
    let Ok(message) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if message.get("type").and_then(Value::as_str) != Some("feature_flags") {
        return;
    }
    let wants = message
        .get("data")
        .and_then(|d| d.get("supports_preview_metadata"))
        == Some(&Value::Bool(true));
    let mut inner = shared.lock();
    let Some(socket) = inner.sockets.get_mut(&id) else {
        return;
    };
    socket.preview_metadata = wants;
    if socket.deaf {
        return;
    }
    let reply = json!({"type": "feature_flags", "data": server_features()});
    inner.send_to_socket(id, text_message(pyjson::to_string(&reply)));
}

enum Flow {
    Continue,
    Close,
    Abort,
}

/// Writes `first` and whatever else is already queued, then flushes.
async fn write<S>(
    shared: &Shared,
    id: u64,
    ws: &mut WebSocketStream<S>,
    rx: &mut mpsc::UnboundedReceiver<Outgoing>,
    first: Outgoing,
) -> Flow
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut next = Some(first);
    let mut written = 0;
    while let Some(outgoing) = next.take() {
        match outgoing {
            Outgoing::Frame(message) => {
                if ws.feed(message).await.is_err() {
                    return Flow::Close;
                }
                written += 1;
            }
            Outgoing::Drop => {
                // Frames queued before the cut count as sent, so they go out first.
                let _ = ws.flush().await;
                return Flow::Abort;
            }
            Outgoing::Firehose {
                prompt,
                frames,
                done,
            } => {
                if ws.flush().await.is_err() {
                    return Flow::Close;
                }
                let wants = shared
                    .lock()
                    .sockets
                    .get(&id)
                    .is_some_and(|s| s.preview_metadata);
                let sent = firehose::pour(ws, &prompt, frames, wants).await;
                shared.lock().stats.frames_sent += sent;
                let _ = done.send(sent);
                written = 0;
            }
            Outgoing::Mix { mix, frames, done } => {
                if ws.flush().await.is_err() {
                    return Flow::Close;
                }
                let wants = shared
                    .lock()
                    .sockets
                    .get(&id)
                    .is_some_and(|s| s.preview_metadata);
                let sent = crate::mix::pour(ws, &mix, frames, wants).await;
                shared.lock().stats.frames_sent += sent;
                let _ = done.send(sent);
                written = 0;
            }
            Outgoing::Pour { frames, done } => {
                if ws.flush().await.is_err() {
                    return Flow::Close;
                }
                let sent = crate::hostile::pour(ws, frames).await;
                shared.lock().stats.frames_sent += sent;
                let _ = done.send(sent);
                written = 0;
            }
        }
        if written < BATCH {
            next = rx.try_recv().ok();
        }
    }
    if ws.flush().await.is_err() {
        return Flow::Close;
    }
    Flow::Continue
}
