//! The total parser: any frame in, a [`ServerMessage`] or a [`ParseError`]
//! out. It never panics and never indexes input without a bounds check.

use std::borrow::Cow;

use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::error::ParseError;
use crate::frame::{BINARY_PREVIEW, BINARY_PREVIEW_WITH_METADATA, BINARY_PROGRESS_TEXT, Frame};
use crate::message::{
    ImageFormat, Preview, PreviewMetadata, PreviewWithMetadata, ProgressText, ServerMessage,
    Status, Unknown,
};

/// Parses one frame.
pub fn parse_frame(frame: &Frame) -> Result<ServerMessage, ParseError> {
    match frame {
        Frame::Text(bytes) => parse_text_bytes(bytes, frame),
        Frame::Binary(bytes) => parse_binary(bytes, frame),
    }
}

/// Parses the text of a text frame.
pub fn parse_text(text: &str) -> Result<ServerMessage, ParseError> {
    parse_text_inner(text, || Frame::text(text))
}

/// Parses a text frame whose UTF-8 the caller has already checked.
pub(crate) fn parse_text_frame(text: &str, frame: &Frame) -> Result<ServerMessage, ParseError> {
    parse_text_inner(text, || frame.clone())
}

fn parse_text_bytes(bytes: &Bytes, frame: &Frame) -> Result<ServerMessage, ParseError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ParseError::InvalidUtf8)?;
    parse_text_inner(text, || frame.clone())
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

/// The server writes every envelope as `{"type": "T", "data": D}` in that
/// order; slicing `T` and `D` out directly saves a full pass over `D`.
/// Anything else (other order, escapes, extra keys) returns `None` or fails
/// and takes the general path, so this only affects speed.
pub(crate) fn split_envelope(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix("{\"type\": \"")?;
    let end = rest.find('"')?;
    let (kind, rest) = rest.split_at(end);
    if kind.contains('\\') {
        return None;
    }
    let data = rest.strip_prefix("\", \"data\": ")?;
    let data = data.trim_end().strip_suffix('}')?;
    Some((kind, data))
}

/// The image format of a type-1 preview's format code.
pub(crate) fn image_format(code: u32) -> ImageFormat {
    match code {
        1 => ImageFormat::Jpeg,
        2 => ImageFormat::Png,
        other => ImageFormat::Other(other),
    }
}

fn parse_text_inner(text: &str, raw: impl FnOnce() -> Frame) -> Result<ServerMessage, ParseError> {
    if let Some((kind, data)) = split_envelope(text) {
        // A failure here may only mean the slice was not the whole `data`;
        // the general path below gives the precise error.
        if let Ok(message) = dispatch(kind, Some(data), || Frame::text(text)) {
            return Ok(message);
        }
    }
    match serde_json::from_str::<Envelope<'_>>(text) {
        Ok(envelope) => dispatch(&envelope.kind, envelope.data.map(RawValue::get), raw),
        Err(first) => {
            // Python's json writes NaN/Infinity for such floats in UI output;
            // mapping them to null keeps the rest of the message.
            if let Some(cleaned) = replace_non_finite(text) {
                if let Ok(envelope) = serde_json::from_str::<Envelope<'_>>(&cleaned) {
                    return dispatch(&envelope.kind, envelope.data.map(RawValue::get), raw);
                }
            }
            Err(classify(text, first))
        }
    }
}

fn classify(text: &str, error: serde_json::Error) -> ParseError {
    if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
        ParseError::NotAnEnvelope {
            message: error.to_string(),
        }
    } else {
        ParseError::InvalidJson {
            message: error.to_string(),
        }
    }
}

fn data_of<T: DeserializeOwned>(kind: &str, data: Option<&str>) -> Result<T, ParseError> {
    let text = data.unwrap_or("null");
    serde_json::from_str(text).map_err(|e| ParseError::InvalidField {
        kind: kind.to_owned(),
        message: e.to_string(),
    })
}

fn dispatch(
    kind: &str,
    data: Option<&str>,
    raw: impl FnOnce() -> Frame,
) -> Result<ServerMessage, ParseError> {
    Ok(match kind {
        "progress_state" => ServerMessage::ProgressState(data_of(kind, data)?),
        "progress" => ServerMessage::Progress(data_of(kind, data)?),
        "executing" => ServerMessage::Executing(data_of(kind, data)?),
        "status" => ServerMessage::Status(parse_status(data)?),
        "executed" => ServerMessage::Executed(data_of(kind, data)?),
        "execution_start" => ServerMessage::ExecutionStart(data_of(kind, data)?),
        "execution_cached" => ServerMessage::ExecutionCached(data_of(kind, data)?),
        "execution_success" => ServerMessage::ExecutionSuccess(data_of(kind, data)?),
        "execution_error" => ServerMessage::ExecutionError(data_of(kind, data)?),
        "execution_interrupted" => ServerMessage::ExecutionInterrupted(data_of(kind, data)?),
        "feature_flags" => ServerMessage::FeatureFlags(data_of(kind, data)?),
        "logs" => ServerMessage::Logs(data_of(kind, data)?),
        "display_component" => ServerMessage::DisplayComponent(data_of(kind, data)?),
        other => ServerMessage::Unknown(Unknown {
            kind: other.to_owned(),
            data: match data {
                Some(d) => {
                    serde_json::from_str::<Value>(d).map_err(|e| ParseError::InvalidField {
                        kind: other.to_owned(),
                        message: e.to_string(),
                    })?
                }
                None => Value::Null,
            },
            raw: raw(),
        }),
    })
}

fn parse_status(data: Option<&str>) -> Result<Status, ParseError> {
    #[derive(Deserialize)]
    struct ExecInfo {
        #[serde(default)]
        queue_remaining: Option<f64>,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(default)]
        exec_info: Option<ExecInfo>,
    }
    #[derive(Deserialize)]
    struct Raw {
        #[serde(default)]
        status: Option<Inner>,
        #[serde(default)]
        sid: Option<String>,
    }
    let raw: Option<Raw> = data_of("status", data)?;
    let Some(raw) = raw else {
        return Ok(Status::default());
    };
    let queue_remaining = raw
        .status
        .and_then(|s| s.exec_info)
        .and_then(|e| e.queue_remaining)
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v as u64);
    Ok(Status {
        queue_remaining,
        sid: raw.sid,
    })
}

/// The big-endian `u32` at `at`, when the bytes are there.
pub(crate) fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let end = at.checked_add(4)?;
    let slice = bytes.get(at..end)?;
    let array: [u8; 4] = slice.try_into().ok()?;
    Some(u32::from_be_bytes(array))
}

fn parse_binary(bytes: &Bytes, frame: &Frame) -> Result<ServerMessage, ParseError> {
    let Some(event_type) = read_u32(bytes, 0) else {
        return Err(ParseError::TruncatedBinary {
            event_type: None,
            needed: 4,
            got: bytes.len(),
        });
    };
    let header = |needed: usize| -> Result<u32, ParseError> {
        read_u32(bytes, 4).ok_or(ParseError::TruncatedBinary {
            event_type: Some(event_type),
            needed,
            got: bytes.len(),
        })
    };
    match event_type {
        BINARY_PREVIEW => {
            let format = image_format(header(8)?);
            Ok(ServerMessage::Preview(Preview {
                format,
                image: bytes.slice(8..),
            }))
        }
        BINARY_PROGRESS_TEXT => {
            let (node, rest) = length_prefixed(bytes, header(8)?)?;
            let node_id = std::str::from_utf8(node)
                .map_err(|_| ParseError::InvalidUtf8)?
                .to_owned();
            let text = std::str::from_utf8(rest)
                .map_err(|_| ParseError::InvalidUtf8)?
                .to_owned();
            Ok(ServerMessage::ProgressText(ProgressText { node_id, text }))
        }
        BINARY_PREVIEW_WITH_METADATA => {
            let declared = header(8)?;
            let (meta, _) = length_prefixed(bytes, declared)?;
            let metadata: PreviewMetadata =
                serde_json::from_slice(meta).map_err(|e| ParseError::InvalidMetadata {
                    message: e.to_string(),
                })?;
            let start = 8 + meta.len();
            Ok(ServerMessage::PreviewWithMetadata(PreviewWithMetadata {
                metadata,
                image: bytes.slice(start..),
            }))
        }
        other => Ok(ServerMessage::Unknown(Unknown {
            kind: format!("binary:{other}"),
            data: Value::Null,
            raw: frame.clone(),
        })),
    }
}

/// Splits `bytes[8..]` into a `declared`-byte head and the rest.
pub(crate) fn length_prefixed(bytes: &[u8], declared: u32) -> Result<(&[u8], &[u8]), ParseError> {
    let body = bytes.get(8..).unwrap_or_default();
    let declared = declared as usize;
    if declared > body.len() {
        return Err(ParseError::LengthOutOfBounds {
            declared,
            available: body.len(),
        });
    }
    Ok(body.split_at(declared))
}

/// Replaces bare `NaN`, `Infinity` and `-Infinity` tokens outside strings
/// with `null`; `None` when there were none.
fn replace_non_finite(text: &str) -> Option<String> {
    if !(text.contains("NaN") || text.contains("Infinity")) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut changed = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let token = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|t| rest.starts_with(t));
        if let Some(token) = token {
            out.push_str("null");
            rest = &rest[token.len()..];
            changed = true;
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    changed.then_some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn bin(parts: &[&[u8]]) -> Frame {
        Frame::binary(parts.concat())
    }

    #[test]
    fn accepts_int_and_float_numbers() {
        let a = parse_text(
            r#"{"type": "progress", "data": {"value": 1, "max": 2.0, "prompt_id": "p", "node": "3"}}"#,
        );
        assert!(matches!(a, Ok(ServerMessage::Progress(p)) if p.value == 1.0 && p.max == 2.0));
    }

    #[test]
    fn fast_and_general_paths_agree() {
        let canonical = parse_text(
            r#"{"type": "progress", "data": {"value": 3, "max": 8, "prompt_id": "p", "node": "2"}}"#,
        );
        for variant in [
            r#"{"data": {"value": 3, "max": 8, "prompt_id": "p", "node": "2"}, "type": "progress"}"#,
            r#"{"type": "progress", "data": {"value": 3, "max": 8, "prompt_id": "p", "node": "2"}, "extra": 1}"#,
            r#"{"type":"progress","data":{"value":3,"max":8,"prompt_id":"p","node":"2"}}"#,
            "{\"type\": \"progress\", \"data\": {\"value\": 3, \"max\": 8, \"prompt_id\": \"p\", \"node\": \"2\"}}\n",
        ] {
            assert_eq!(parse_text(variant), canonical, "{variant}");
        }
        assert!(matches!(canonical, Ok(ServerMessage::Progress(_))));
    }

    #[test]
    fn executing_forms() {
        let bare = parse_text(r#"{"type": "executing", "data": {"node": "2"}}"#);
        assert!(
            matches!(bare, Ok(ServerMessage::Executing(e)) if e.prompt_id.is_none() && e.node.as_deref() == Some("2"))
        );
        let done = parse_text(r#"{"type": "executing", "data": {"node": null, "prompt_id": "p"}}"#);
        assert!(matches!(done, Ok(ServerMessage::Executing(e)) if e.node.is_none()));
    }

    #[test]
    fn unknown_types_keep_the_frame() {
        let text = r#"{"type": "crystools.monitor", "data": {"cpu": 3}}"#;
        match parse_text(text) {
            Ok(ServerMessage::Unknown(u)) => {
                assert_eq!(u.kind, "crystools.monitor");
                assert_eq!(u.data["cpu"], 3);
                assert_eq!(u.raw, Frame::text(text));
            }
            other => panic!("{other:?}"),
        }
        let frame = bin(&[&99u32.to_be_bytes(), b"xyz"]);
        assert!(
            matches!(parse_frame(&frame), Ok(ServerMessage::Unknown(u)) if u.kind == "binary:99" && u.raw == frame)
        );
    }

    #[test]
    fn typed_errors() {
        assert!(matches!(
            parse_text("{not json"),
            Err(ParseError::InvalidJson { .. })
        ));
        assert!(matches!(
            parse_text("[1, 2]"),
            Err(ParseError::NotAnEnvelope { .. })
        ));
        assert!(matches!(
            parse_text(r#"{"type": "progress", "data": {"value": "x", "max": 1}}"#),
            Err(ParseError::InvalidField { kind, .. }) if kind == "progress"
        ));
        assert_eq!(
            parse_frame(&Frame::Text(Bytes::from_static(&[0xff, 0xfe]))),
            Err(ParseError::InvalidUtf8)
        );
        assert!(matches!(
            parse_frame(&bin(&[&[0, 0]])),
            Err(ParseError::TruncatedBinary {
                event_type: None,
                ..
            })
        ));
        assert!(matches!(
            parse_frame(&bin(&[&4u32.to_be_bytes(), &[0, 0]])),
            Err(ParseError::TruncatedBinary {
                event_type: Some(4),
                ..
            })
        ));
        assert_eq!(
            parse_frame(&bin(&[&4u32.to_be_bytes(), &100u32.to_be_bytes(), b"{}"])),
            Err(ParseError::LengthOutOfBounds {
                declared: 100,
                available: 2
            })
        );
        assert!(matches!(
            parse_frame(&bin(&[&4u32.to_be_bytes(), &2u32.to_be_bytes(), b"[]"])),
            Err(ParseError::InvalidMetadata { .. })
        ));
    }

    #[test]
    fn binary_slices_do_not_copy() {
        let frame = bin(&[&1u32.to_be_bytes(), &2u32.to_be_bytes(), b"PNGDATA"]);
        let Frame::Binary(payload) = &frame else {
            unreachable!()
        };
        match parse_frame(&frame) {
            Ok(ServerMessage::Preview(p)) => {
                assert_eq!(p.format, ImageFormat::Png);
                assert_eq!(p.image.as_ref(), b"PNGDATA");
                assert_eq!(p.image.as_ptr(), payload[8..].as_ptr());
            }
            other => panic!("{other:?}"),
        }
        let text = bin(&[&3u32.to_be_bytes(), &1u32.to_be_bytes(), b"2step 1/6"]);
        assert!(
            matches!(parse_frame(&text), Ok(ServerMessage::ProgressText(t)) if t.node_id == "2" && t.text == "step 1/6")
        );
    }

    #[test]
    fn nan_tokens_become_null_outside_strings() {
        let text = r#"{"type": "executed", "data": {"node": "1", "prompt_id": "p", "output": {"v": [NaN, -Infinity], "s": ["NaN"]}}}"#;
        match parse_text(text) {
            Ok(ServerMessage::Executed(e)) => {
                let out = e.output.unwrap().to_value();
                assert_eq!(out["v"], serde_json::json!([null, null]));
                assert_eq!(out["s"], serde_json::json!(["NaN"]));
            }
            other => panic!("{other:?}"),
        }
    }
}
