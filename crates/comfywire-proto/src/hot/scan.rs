//! Byte-level readers for the hot messages exactly as the server formats
//! them (Python's `json.dumps`: `", "` and `": "` separators, keys in the
//! server's order). They borrow from the frame and never allocate; each
//! returns `None` for any other form (escapes, other key order, floats it
//! cannot convert exactly, extra keys, trailing text), which then takes
//! the serde path. So they change speed only, never what is accepted or
//! what it means; the tests check them against serde on recorded frames.

use super::refs::{NodeRef, PreviewMetaRef, ProgressRef, ProgressStateRef};

/// `progress` exactly as the server writes it (`json.dumps` of
/// `{"value", "max", "prompt_id", "node"}` with integer steps), read with
/// plain byte comparisons: a third of a sampler run's frames are these.
/// `None` for any other form (floats, escapes, other key order, nulls,
/// trailing text), which then takes the serde path, so this changes only
/// speed, never what is accepted.
pub(crate) fn progress(text: &str) -> Option<ProgressRef<'_>> {
    let (value, rest) = progress_value(text)?;
    let rest = rest.strip_prefix(", \"max\": ")?;
    let (max, rest) = step(rest)?;
    let rest = rest.strip_prefix(", \"prompt_id\": \"")?;
    let (prompt_id, rest) = plain_string(rest)?;
    let rest = rest.strip_prefix(", \"node\": \"")?;
    let (node, rest) = plain_string(rest)?;
    (rest == "}}").then_some(ProgressRef {
        value,
        max,
        prompt_id: Some(prompt_id),
        node: Some(node),
    })
}

/// The step of a `progress` frame and the text after it.
fn progress_value(text: &str) -> Option<(f64, &str)> {
    step(text.strip_prefix("{\"type\": \"progress\", \"data\": {\"value\": ")?)
}

/// The last `progress` frame read: its text after the step, and what that
/// text said. Consecutive steps of a node differ only in the step, so the
/// rest is compared in one go instead of being read again.
#[derive(Debug, Default)]
pub(crate) struct ProgressMemo {
    tail: String,
    /// Its `max`.
    pub(crate) max: f64,
    /// Its prompt.
    pub(crate) prompt_id: String,
    /// Its node.
    pub(crate) node: String,
}

impl ProgressMemo {
    /// Reads a `progress` frame in the server's form: its step, with its
    /// `max`, prompt and node left in the memo. A frame equal to the last
    /// one but for the step is not read again.
    pub(crate) fn read(&mut self, text: &str) -> Option<f64> {
        let (value, rest) = progress_value(text)?;
        if !self.tail.is_empty() && rest == self.tail {
            return Some(value);
        }
        let m = progress(text)?;
        self.remember(rest, &m);
        Some(value)
    }

    /// Remembers `tail` (the text after the step) and what it said.
    fn remember(&mut self, tail: &str, m: &ProgressRef<'_>) {
        let (Some(prompt_id), Some(node)) = (m.prompt_id, m.node) else {
            self.tail.clear();
            return;
        };
        self.tail.clear();
        self.tail.push_str(tail);
        self.max = m.max;
        self.prompt_id.clear();
        self.prompt_id.push_str(prompt_id);
        self.node.clear();
        self.node.push_str(node);
    }
}

/// Type-4 preview metadata exactly as the server writes it (`node_id`,
/// `prompt_id`, `display_node_id`, `parent_node_id`, `real_node_id`,
/// `image_type`, in that order, plain strings or a null parent), read with
/// byte comparisons; `None` for any other form, which serde then reads.
pub(crate) fn preview_meta(text: &str) -> Option<PreviewMetaRef<'_>> {
    let rest = text.strip_prefix("{\"node_id\": \"")?;
    let (node_id, rest) = plain_string(rest)?;
    let rest = rest.strip_prefix(", \"prompt_id\": \"")?;
    let (prompt_id, rest) = plain_string(rest)?;
    let rest = rest.strip_prefix(", \"display_node_id\": \"")?;
    let (display_node_id, rest) = plain_string(rest)?;
    let rest = rest.strip_prefix(", \"parent_node_id\": ")?;
    let rest = match rest.strip_prefix("null") {
        Some(rest) => rest,
        None => plain_string(rest.strip_prefix('"')?)?.1,
    };
    let rest = rest.strip_prefix(", \"real_node_id\": \"")?;
    let (_, rest) = plain_string(rest)?;
    let rest = rest.strip_prefix(", \"image_type\": \"")?;
    let (image_type, rest) = plain_string(rest)?;
    (rest == "}").then_some(PreviewMetaRef {
        node_id,
        prompt_id,
        display_node_id: Some(display_node_id),
        image_type: Some(image_type),
    })
}

/// The last type-4 metadata header read and what it said.
#[derive(Debug, Default)]
pub(crate) struct PreviewHeaderMemo {
    header: Vec<u8>,
    /// The prompt.
    pub(crate) prompt_id: String,
    /// The node to show it on (the display node, else the reporting one).
    pub(crate) node: String,
    /// The image's MIME type.
    pub(crate) mime: std::borrow::Cow<'static, str>,
}

impl PreviewHeaderMemo {
    /// True when `header` is byte for byte the one last remembered.
    pub(crate) fn matches(&self, header: &[u8]) -> bool {
        !self.header.is_empty() && self.header == header
    }

    /// Remembers `header` and what `meta` read from it.
    pub(crate) fn remember(&mut self, header: &[u8], meta: &PreviewMetaRef<'_>) {
        self.header.clear();
        self.header.extend_from_slice(header);
        self.prompt_id.clear();
        self.prompt_id.push_str(meta.prompt_id);
        self.node.clear();
        self.node
            .push_str(meta.display_node_id.unwrap_or(meta.node_id));
        self.mime = crate::message::preview_mime(meta.image_type);
    }
}

/// A [`number`] without a fraction: the server writes steps as integers,
/// and a step with a fraction is left to serde.
fn step(text: &str) -> Option<(f64, &str)> {
    let (value, rest) = number(text)?;
    let read = text.get(..text.len() - rest.len())?;
    (!read.contains('.')).then_some((value, rest))
}

/// The body of a JSON string up to its closing quote, when it has no
/// escapes or control characters (so it can be borrowed as is); the text
/// after the closing quote.
fn plain_string(text: &str) -> Option<(&str, &str)> {
    // Ids are a few dozen bytes: a plain loop beats a SIMD search's setup.
    let end = text
        .bytes()
        .position(|b| b == b'"' || b == b'\\' || b < 0x20)?;
    if text.as_bytes().get(end) != Some(&b'"') {
        return None;
    }
    Some((text.get(..end)?, text.get(end + 1..)?))
}

/// `progress_state` in the server's formatting: each node entry is
/// `"id": {"value": N, "max": N, "state": "S", "node_id": "…",
/// "prompt_id": "…", "display_node_id": "…", "parent_node_id": null or
/// "…", "real_node_id": "…"}`.
pub(crate) fn progress_state(text: &str) -> Option<ProgressStateRef<'_>> {
    let rest = text.strip_prefix("{\"type\": \"progress_state\", \"data\": {\"prompt_id\": \"")?;
    let (prompt_id, rest) = plain_string(rest)?;
    let mut rest = rest.strip_prefix(", \"nodes\": {")?;
    let mut nodes = Vec::new();
    if let Some(end) = rest.strip_prefix('}') {
        rest = end;
    } else {
        loop {
            let (id, after) = plain_string(rest.strip_prefix('"')?)?;
            let (node, after) = node_entry(after.strip_prefix(": {\"value\": ")?)?;
            nodes.push((id, node));
            if let Some(more) = after.strip_prefix(", ") {
                rest = more;
            } else {
                rest = after.strip_prefix('}')?;
                break;
            }
        }
    }
    (rest == "}}").then_some(ProgressStateRef { prompt_id, nodes })
}

/// One node entry after its `{"value": `, up to and including its `}`.
fn node_entry(text: &str) -> Option<(NodeRef<'_>, &str)> {
    let (value, rest) = number(text)?;
    let (max, rest) = number(rest.strip_prefix(", \"max\": ")?)?;
    let (state, rest) = plain_string(rest.strip_prefix(", \"state\": \"")?)?;
    let (_, rest) = plain_string(rest.strip_prefix(", \"node_id\": \"")?)?;
    let (_, rest) = plain_string(rest.strip_prefix(", \"prompt_id\": \"")?)?;
    let (display_node_id, rest) = plain_string(rest.strip_prefix(", \"display_node_id\": \"")?)?;
    let rest = null_or_string(rest.strip_prefix(", \"parent_node_id\": ")?)?;
    let (_, rest) = plain_string(rest.strip_prefix(", \"real_node_id\": \"")?)?;
    let rest = rest.strip_prefix('}')?;
    let node = NodeRef {
        value,
        max,
        state,
        display_node_id: Some(display_node_id),
    };
    Some((node, rest))
}

/// `null` or a plain string; the text after it.
fn null_or_string(text: &str) -> Option<&str> {
    match text.strip_prefix("null") {
        Some(rest) => Some(rest),
        None => Some(plain_string(text.strip_prefix('"')?)?.1),
    }
}

/// A non-negative JSON number that converts to `f64` exactly the way
/// serde does: at most 15 significant digits and at most 15 after the
/// point, no exponent. Both the digits and the power of ten are then exact
/// in an `f64`, so the division is correctly rounded, as serde's result is.
fn number(text: &str) -> Option<(f64, &str)> {
    let bytes = text.as_bytes();
    let whole = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if whole == 0 || (whole > 1 && bytes.first() == Some(&b'0')) {
        return None;
    }
    let mut end = whole;
    let mut fraction = 0;
    if bytes.get(whole) == Some(&b'.') {
        fraction = bytes
            .get(whole + 1..)?
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if fraction == 0 {
            return None;
        }
        end = whole + 1 + fraction;
    }
    if whole + fraction > 15 || matches!(bytes.get(end), Some(b'e' | b'E')) {
        return None;
    }
    let digits = bytes
        .get(..end)?
        .iter()
        .filter(|b| b.is_ascii_digit())
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    #[allow(clippy::cast_precision_loss)] // at most 15 digits: exact
    let value = match fraction {
        0 => digits as f64,
        _ => digits as f64 / 10f64.powi(i32::try_from(fraction).ok()?),
    };
    Some((value, text.get(end..)?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::message::{NodeRunState, PreviewMetadata, ServerMessage};
    use crate::parse::parse_text;
    use serde_json::Value;

    fn scanned(text: &str) -> Option<(f64, f64, Option<&str>, Option<&str>)> {
        progress(text).map(|p| (p.value, p.max, p.prompt_id, p.node))
    }

    #[test]
    fn every_recorded_progress_frame_takes_the_byte_scan_and_agrees_with_serde() {
        let trace = include_str!("../../../../tests/data/traces/long_run.jsonl");
        let mut seen = 0;
        for line in trace.lines() {
            let record: Value = serde_json::from_str(line).unwrap();
            let Some(text) = record.get("data").and_then(Value::as_str) else {
                continue;
            };
            let Ok(ServerMessage::Progress(p)) = parse_text(text) else {
                continue;
            };
            seen += 1;
            assert_eq!(
                scanned(text),
                Some((p.value, p.max, p.prompt_id.as_deref(), p.node.as_deref())),
                "{text}"
            );
        }
        assert_eq!(seen, 200);
    }

    #[test]
    fn the_byte_scan_leaves_every_other_form_to_serde() {
        let ok = r#"{"type": "progress", "data": {"value": 12, "max": 200, "prompt_id": "p-1", "node": "7"}}"#;
        assert_eq!(scanned(ok), Some((12.0, 200.0, Some("p-1"), Some("7"))));
        for other in [
            // floats, exponents, leading zeros, signs, huge numbers
            r#"{"type": "progress", "data": {"value": 1.5, "max": 2, "prompt_id": "p", "node": "7"}}"#,
            r#"{"type": "progress", "data": {"value": 1e3, "max": 2, "prompt_id": "p", "node": "7"}}"#,
            r#"{"type": "progress", "data": {"value": 01, "max": 2, "prompt_id": "p", "node": "7"}}"#,
            r#"{"type": "progress", "data": {"value": -1, "max": 2, "prompt_id": "p", "node": "7"}}"#,
            r#"{"type": "progress", "data": {"value": 1234567890123456, "max": 2, "prompt_id": "p", "node": "7"}}"#,
            // escapes and control characters in strings
            r#"{"type": "progress", "data": {"value": 1, "max": 2, "prompt_id": "p\"q", "node": "7"}}"#,
            r#"{"type": "progress", "data": {"value": 1, "max": 2, "prompt_id": "p", "node": "\u0037"}}"#,
            "{\"type\": \"progress\", \"data\": {\"value\": 1, \"max\": 2, \"prompt_id\": \"p\u{1}\", \"node\": \"7\"}}",
            // nulls, other key order, extra keys, trailing text, truncation
            r#"{"type": "progress", "data": {"value": 1, "max": 2, "prompt_id": null, "node": "7"}}"#,
            r#"{"type": "progress", "data": {"max": 2, "value": 1, "prompt_id": "p", "node": "7"}}"#,
            r#"{"type": "progress", "data": {"value": 1, "max": 2, "prompt_id": "p", "node": "7", "x": 1}}"#,
            r#"{"type": "progress", "data": {"value": 1, "max": 2, "prompt_id": "p", "node": "7"}} "#,
            r#"{"type": "progress", "data": {"value": 1, "max": 2, "prompt_id": "p", "node": "7"}"#,
            r#"{"type": "progress", "data": {"value": 1, "max": 2, "prompt_id": "p", "node": "#,
            r#"{"type": "progress", "data": {"value": "#,
        ] {
            assert_eq!(scanned(other), None, "{other:?}");
        }
    }

    #[test]
    fn preview_metadata_scan_agrees_with_serde_or_leaves_it_to_serde() {
        let canonical = r#"{"node_id": "2", "prompt_id": "87901d88-ca22", "display_node_id": "3", "parent_node_id": null, "real_node_id": "2", "image_type": "image/png"}"#;
        let with_parent = r#"{"node_id": "2", "prompt_id": "p", "display_node_id": "3", "parent_node_id": "9", "real_node_id": "2", "image_type": "image/jpeg"}"#;
        for text in [canonical, with_parent] {
            let fast = preview_meta(text).expect(text);
            let slow: PreviewMetadata = serde_json::from_str(text).unwrap();
            assert_eq!(fast.node_id, slow.node_id);
            assert_eq!(fast.prompt_id, slow.prompt_id);
            assert_eq!(fast.display_node_id, slow.display_node_id.as_deref());
            assert_eq!(fast.image_type, slow.image_type.as_deref());
        }
        for other in [
            r#"{"prompt_id": "p", "node_id": "2", "display_node_id": "3", "parent_node_id": null, "real_node_id": "2", "image_type": "image/png"}"#,
            r#"{"node_id": "2", "prompt_id": "p", "display_node_id": null, "parent_node_id": null, "real_node_id": "2", "image_type": "image/png"}"#,
            r#"{"node_id": "2\u0033", "prompt_id": "p", "display_node_id": "3", "parent_node_id": null, "real_node_id": "2", "image_type": "image/png"}"#,
            r#"{"node_id": "2", "prompt_id": "p", "display_node_id": "3", "parent_node_id": null, "real_node_id": "2", "image_type": "image/png", "x": 1}"#,
            r#"{"node_id": "2", "prompt_id": "p", "display_node_id": "3", "parent_node_id": null, "real_node_id": "2"}"#,
            r#"{"node_id": "2", "prompt_id": "p""#,
        ] {
            assert!(preview_meta(other).is_none(), "{other}");
        }
    }

    /// (id, value, max, state, display node) per entry.
    type Entry = (String, f64, f64, String, Option<String>);

    fn nodes_of(text: &str) -> Option<Vec<Entry>> {
        progress_state(text).map(|m| {
            m.nodes
                .into_iter()
                .map(|(id, n)| {
                    (
                        id.to_owned(),
                        n.value,
                        n.max,
                        n.state.to_owned(),
                        n.display_node_id.map(str::to_owned),
                    )
                })
                .collect()
        })
    }

    #[test]
    fn every_recorded_snapshot_takes_the_byte_scan_and_agrees_with_serde() {
        let mut seen = 0;
        for name in [
            "long_run",
            "success_single",
            "execution_error",
            "cached_rerun",
        ] {
            let path = format!(
                "{}/../../tests/data/traces/{name}.jsonl",
                env!("CARGO_MANIFEST_DIR")
            );
            let trace = std::fs::read_to_string(path).unwrap();
            for line in trace.lines() {
                let record: Value = serde_json::from_str(line).unwrap();
                let Some(text) = record.get("data").and_then(Value::as_str) else {
                    continue;
                };
                let Ok(ServerMessage::ProgressState(m)) = crate::parse::parse_text(text) else {
                    continue;
                };
                seen += 1;
                let expected: Vec<_> = m
                    .nodes
                    .iter()
                    .map(|n| {
                        (
                            n.node_id.clone(),
                            n.value,
                            n.max,
                            n.state.clone(),
                            n.display_node_id.clone(),
                        )
                    })
                    .collect();
                let ours: Vec<_> = nodes_of(text)
                    .unwrap_or_else(|| panic!("not scanned: {text}"))
                    .into_iter()
                    .map(|(id, value, max, state, display)| {
                        let state: NodeRunState =
                            serde_json::from_value(Value::String(state)).unwrap();
                        (id, value, max, state, display)
                    })
                    .collect();
                assert_eq!(ours, expected, "{text}");
                assert_eq!(progress_state(text).unwrap().prompt_id, m.prompt_id);
            }
        }
        assert!(seen > 200, "{seen}");
    }

    #[test]
    fn snapshot_forms_the_scan_leaves_to_serde() {
        let entry = |value: &str, parent: &str| {
            format!(
                r#"{{"type": "progress_state", "data": {{"prompt_id": "p", "nodes": {{"2": {{"value": {value}, "max": 200, "state": "running", "node_id": "2", "prompt_id": "p", "display_node_id": "2", "parent_node_id": {parent}, "real_node_id": "2"}}}}}}}}"#
            )
        };
        assert_eq!(
            nodes_of(&entry("96", "null")),
            Some(vec![(
                "2".into(),
                96.0,
                200.0,
                "running".into(),
                Some("2".into())
            )])
        );
        assert_eq!(nodes_of(&entry("0.25", "\"9\"")).unwrap()[0].1, 0.25);
        assert_eq!(
            nodes_of(r#"{"type": "progress_state", "data": {"prompt_id": "p", "nodes": {}}}"#),
            Some(vec![])
        );
        for value in [
            "-1",
            "1e3",
            "01",
            "1.",
            ".5",
            "NaN",
            "1234567890123456",
            "0.1234567890123456",
        ] {
            assert_eq!(nodes_of(&entry(value, "null")), None, "{value}");
        }
        assert_eq!(nodes_of(&entry("1", "7")), None);
        assert_eq!(nodes_of(&format!("{} ", entry("1", "null"))), None);
        assert_eq!(
            nodes_of(&entry("1", "null").replace("\"running\"", "\"run\\u006eing\"")),
            None
        );
    }

    #[test]
    fn decimal_numbers_match_serde_exactly() {
        for text in [
            "0.1",
            "0.3",
            "1.0",
            "96.5",
            "199.99",
            "0.000001",
            "123456789.012345",
            "3",
        ] {
            let ours = number(text).unwrap().0;
            let serde: f64 = serde_json::from_str(text).unwrap();
            assert_eq!(ours.to_bits(), serde.to_bits(), "{text}");
        }
    }

    #[test]
    fn a_preview_header_is_read_again_only_when_its_bytes_change() {
        let header = br#"{"node_id": "2", "prompt_id": "p", "display_node_id": "5", "parent_node_id": null, "real_node_id": "2", "image_type": "image/png"}"#;
        let mut memo = PreviewHeaderMemo::default();
        assert!(!memo.matches(b""));
        assert!(!memo.matches(header));
        let meta = preview_meta(std::str::from_utf8(header).unwrap()).unwrap();
        memo.remember(header, &meta);
        assert!(memo.matches(header));
        assert_eq!((memo.prompt_id.as_str(), memo.node.as_str()), ("p", "5"));
        assert_eq!(memo.mime, "image/png");
        let other = header
            .to_vec()
            .iter()
            .map(|b| if *b == b'5' { b'6' } else { *b })
            .collect::<Vec<u8>>();
        assert!(!memo.matches(&other));
    }

    #[test]
    fn a_progress_frame_repeating_the_last_but_for_the_step_is_read_from_memory() {
        let frame = |value: &str, node: &str| {
            format!(
                r#"{{"type": "progress", "data": {{"value": {value}, "max": 200, "prompt_id": "p", "node": "{node}"}}}}"#
            )
        };
        let mut memo = ProgressMemo::default();
        assert_eq!(memo.read(&frame("9", "2")), Some(9.0));
        assert_eq!(
            (memo.max, memo.prompt_id.as_str(), memo.node.as_str()),
            (200.0, "p", "2")
        );
        assert_eq!(
            memo.tail,
            r#", "max": 200, "prompt_id": "p", "node": "2"}}"#
        );
        assert_eq!(memo.read(&frame("10", "2")), Some(10.0));
        // Another node is read in full and becomes the one remembered.
        assert_eq!(memo.read(&frame("10", "3")), Some(10.0));
        assert_eq!(memo.node, "3");
        assert_eq!(memo.read(&frame("1.5", "3")), None);
        assert_eq!(memo.read(&format!("{} ", frame("10", "3"))), None);
        assert_eq!(memo.node, "3");
    }
}
