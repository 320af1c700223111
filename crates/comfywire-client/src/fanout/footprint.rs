//! What a queued event costs in memory, estimated: the measure of a
//! subscriber queue's byte limit.

use comfywire_proto::{Event, approx_json_bytes as json_bytes};

fn frame_bytes(frame: &comfywire_proto::Frame) -> usize {
    match frame {
        comfywire_proto::Frame::Text(b) | comfywire_proto::Frame::Binary(b) => b.len(),
    }
}

/// An estimate of the memory a queued event keeps alive (shared buffers
/// count in full: a queue that holds them keeps them).
pub(super) fn approx_bytes(event: &Event) -> usize {
    use comfywire_proto::ServerMessage;
    // Shared ids count in full too: a queue may hold the last reference.
    let text = |s: Option<&str>| s.map_or(0, str::len);
    std::mem::size_of::<Event>()
        + match event {
            Event::Progress(p) => {
                p.prompt_id.len() + p.node.len() + text(p.display_node.as_deref())
            }
            Event::Preview(p) => {
                text(p.prompt_id.as_deref()) + text(p.node.as_deref()) + p.image.len()
            }
            Event::ProgressText {
                prompt_id,
                node,
                text: t,
            } => text(prompt_id.as_deref()) + node.len() + t.len(),
            Event::Output {
                prompt_id,
                node,
                display_node,
                output,
                ..
            } => prompt_id.len() + node.len() + text(display_node.as_deref()) + output.len(),
            Event::Finished(record) => comfywire_proto::HistoryRing::approx_bytes(record),
            Event::NodesCached { prompt_id, nodes } => {
                prompt_id.len() + nodes.iter().map(|n| 24 + n.len()).sum::<usize>()
            }
            Event::FeatureFlags(map) => map.iter().map(|(k, v)| k.len() + json_bytes(v)).sum(),
            Event::Status { sid, .. } => text(sid.as_deref()),
            Event::BadFrame { raw, .. } => frame_bytes(raw),
            Event::HttpFailed { error, .. } => error.len(),
            Event::Message(message) => match message.as_ref() {
                ServerMessage::Unknown(u) => {
                    u.kind.len() + json_bytes(&u.data) + frame_bytes(&u.raw)
                }
                ServerMessage::Logs(logs) => logs
                    .entries
                    .iter()
                    .map(|e| 48 + e.t.len() + e.m.len())
                    .sum(),
                ServerMessage::DisplayComponent(d) => {
                    d.node_id.len() + d.component.len() + json_bytes(&d.props)
                }
                _ => 256,
            },
            Event::Blocked(e) => e.exception_message.len() + json_bytes(&e.current_inputs) + 256,
            _ => 64,
        }
}
