//! Binary WebSocket frames: reading and rebuilding the preview framings.
//! The event types are `comfywire-proto`'s; the reader is the mock's own,
//! so tests can hold the client's parser against it.

use bytes::{BufMut, Bytes, BytesMut};
use comfywire_proto::{BINARY_PREVIEW, BINARY_PREVIEW_WITH_METADATA};
use serde_json::{Map, Value};

/// The event type in the first four bytes, if there are four.
pub fn event_type(frame: &[u8]) -> Option<u32> {
    let head: [u8; 4] = frame.get(..4)?.try_into().ok()?;
    Some(u32::from_be_bytes(head))
}

fn u32_at(frame: &[u8], at: usize) -> Option<u32> {
    let raw: [u8; 4] = frame.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(raw))
}

/// A preview frame taken apart, whatever framing it came in.
#[derive(Debug, Clone)]
pub struct Preview {
    /// MIME type of the image.
    pub mime: String,
    /// Metadata object of a type 4 frame (`None` for type 1).
    pub metadata: Option<Map<String, Value>>,
    /// The encoded image.
    pub image: Bytes,
}

/// Splits a type 1 or type 4 frame.
pub fn parse_preview(frame: &Bytes) -> Option<Preview> {
    match event_type(frame)? {
        BINARY_PREVIEW => {
            let format = u32_at(frame, 4)?;
            let mime = if format == 2 {
                "image/png"
            } else {
                "image/jpeg"
            };
            Some(Preview {
                mime: mime.to_owned(),
                metadata: None,
                image: frame.slice(8..),
            })
        }
        BINARY_PREVIEW_WITH_METADATA => {
            let len = usize::try_from(u32_at(frame, 4)?).ok()?;
            let end = 8usize.checked_add(len)?;
            let raw = frame.get(8..end)?;
            let Value::Object(metadata) = serde_json::from_slice(raw).ok()? else {
                return None;
            };
            let mime = metadata
                .get("image_type")
                .and_then(Value::as_str)
                .unwrap_or("image/jpeg")
                .to_owned();
            Some(Preview {
                mime,
                metadata: Some(metadata),
                image: frame.slice(end..),
            })
        }
        _ => None,
    }
}

/// A type 1 frame for `image`.
pub fn legacy_preview(mime: &str, image: &[u8]) -> Bytes {
    let format: u32 = if mime == "image/png" { 2 } else { 1 };
    let mut out = BytesMut::with_capacity(8 + image.len());
    out.put_u32(BINARY_PREVIEW);
    out.put_u32(format);
    out.put_slice(image);
    out.freeze()
}

/// A type 4 frame whose header is `metadata` written like Python would.
pub fn metadata_preview(metadata: &Map<String, Value>, image: &[u8]) -> Bytes {
    let header = crate::pyjson::to_string(&Value::Object(metadata.clone()));
    let mut out = BytesMut::with_capacity(8 + header.len() + image.len());
    out.put_u32(BINARY_PREVIEW_WITH_METADATA);
    // Headers are a few hundred bytes; a header past u32 cannot come from a trace.
    out.put_u32(u32::try_from(header.len()).unwrap_or(u32::MAX));
    out.put_slice(header.as_bytes());
    out.put_slice(image);
    out.freeze()
}

/// The metadata the real server attaches to a preview of `node`.
pub fn node_metadata(node: &str, prompt_id: &str, mime: &str) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("node_id".into(), node.into());
    map.insert("prompt_id".into(), prompt_id.into());
    map.insert("display_node_id".into(), node.into());
    map.insert("parent_node_id".into(), Value::Null);
    map.insert("real_node_id".into(), node.into());
    map.insert("image_type".into(), mime.into());
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_between_framings() {
        let legacy = legacy_preview("image/png", b"PNGDATA");
        let preview = parse_preview(&legacy).expect("type 1 parses");
        assert_eq!(preview.mime, "image/png");
        let meta = node_metadata("7", "p", &preview.mime);
        let rich = metadata_preview(&meta, &preview.image);
        let back = parse_preview(&rich).expect("type 4 parses");
        assert_eq!(back.metadata.as_ref(), Some(&meta));
        assert_eq!(&back.image[..], b"PNGDATA");
        assert_eq!(legacy_preview(&back.mime, &back.image), legacy);
    }
}
