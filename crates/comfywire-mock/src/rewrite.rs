//! Putting a new prompt id where a recording has its old one.

use crate::binary;
use bytes::Bytes;
use comfywire_proto::{BINARY_PREVIEW, BINARY_PREVIEW_WITH_METADATA};
use serde_json::Value;

/// `text` with every `old` id replaced by `new`, escaped for a JSON string.
pub fn text(text: &str, old: &str, new: &str) -> String {
    if old == new {
        return text.to_owned();
    }
    let quoted = crate::pyjson::quote(new);
    let inner = &quoted[1..quoted.len() - 1];
    text.replace(old, inner)
}

/// `value` with every string that holds `old` rewritten to hold `new`.
pub fn value(value: &Value, old: &str, new: &str) -> Value {
    match value {
        Value::String(s) if s.contains(old) => Value::String(s.replace(old, new)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| self::value(v, old, new)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.replace(old, new), self::value(v, old, new)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A preview frame in the framing the target socket negotiated, with the
/// prompt id rewritten; any other binary frame comes back unchanged.
pub fn preview(
    frame: &Bytes,
    wants_metadata: bool,
    node: Option<&str>,
    old: &str,
    new: &str,
) -> Bytes {
    let kind = binary::event_type(frame);
    if kind != Some(BINARY_PREVIEW) && kind != Some(BINARY_PREVIEW_WITH_METADATA) {
        return frame.clone();
    }
    let Some(preview) = binary::parse_preview(frame) else {
        return frame.clone();
    };
    if !wants_metadata {
        return if kind == Some(BINARY_PREVIEW) {
            frame.clone()
        } else {
            binary::legacy_preview(&preview.mime, &preview.image)
        };
    }
    let metadata = match preview.metadata {
        Some(map) => match self::value(&Value::Object(map), old, new) {
            Value::Object(map) => map,
            _ => binary::node_metadata(node.unwrap_or_default(), new, &preview.mime),
        },
        None => binary::node_metadata(node.unwrap_or_default(), new, &preview.mime),
    };
    binary::metadata_preview(&metadata, &preview.image)
}
