//! The hot path: the frames that make up nearly all of a sampler run
//! (`progress`, `progress_state` snapshots, type-1 and type-4 previews)
//! and the ones every node sends (`executing`, `executed`), read without
//! allocating.
//!
//! [`HotReader`] is the one entry point: the session hands it every frame
//! first ([`HotReader::read_text`], [`HotReader::read_binary`]) and parses
//! in full only what it declines. Inside, `scan` reads those messages with
//! byte comparisons in exactly the form the server writes them (Python's
//! `json.dumps`), `snapshot` recognises a snapshot that repeats the last
//! one, and `refs` holds the borrowed views both produce (serde fills them
//! when the byte readers decline a form). What the hot path accepts means
//! exactly what the full parser would make of it: it changes speed only,
//! and the tests check it against serde on every recorded frame.

mod refs;
mod scan;
mod snapshot;

use std::borrow::Cow;

use crate::frame::{BINARY_PREVIEW, BINARY_PREVIEW_WITH_METADATA};
use crate::message::ImageFormat;
use crate::parse::{image_format, length_prefixed, read_u32, split_envelope};

use refs::PreviewMetaRef;
pub(crate) use refs::{ExecutedRef, ExecutingRef, ProgressRef, ProgressStateRef};
use scan::{PreviewHeaderMemo, ProgressMemo};
use snapshot::SnapshotMemo;

/// A hot text frame, borrowed from the frame or from the reader's memo of
/// the last one like it.
#[derive(Debug)]
pub(crate) enum HotText<'a> {
    /// A `progress` step.
    Progress(ProgressRef<'a>),
    /// A `progress_state` snapshot to track.
    ProgressState(ProgressStateRef<'a>),
    /// A `progress_state` snapshot in which no node changed state: it only
    /// repeats the step that the `progress` frame after it reports too, so
    /// it was not parsed.
    RepeatedSnapshot,
    /// A node starts, or the prompt is over.
    Executing(ExecutingRef<'a>),
    /// A node's UI output.
    Executed(ExecutedRef<'a>),
}

/// A type-1 or type-4 preview, borrowed from the frame or from the reader's
/// memo of the last header.
#[derive(Debug)]
pub(crate) struct HotPreview<'a> {
    /// The prompt (type 4 only).
    pub(crate) prompt_id: Option<&'a str>,
    /// The node to show it on (type 4 only).
    pub(crate) node: Option<&'a str>,
    /// The image's MIME type.
    pub(crate) mime: Cow<'static, str>,
    /// The encoded image, a slice of the frame.
    pub(crate) image: &'a [u8],
}

/// What the hot path remembers between frames: the last `progress` frame,
/// the last snapshot and the last preview header, so that the next frame
/// like them is compared rather than read again.
#[derive(Debug, Default)]
pub(crate) struct HotReader {
    last_progress: ProgressMemo,
    snapshots: SnapshotMemo,
    preview_header: PreviewHeaderMemo,
}

impl HotReader {
    /// A `progress`, `progress_state`, `executing` or `executed` text
    /// frame; `None` for any other message and for anything the hot path
    /// cannot borrow.
    #[inline]
    pub(crate) fn read_text<'a>(&'a mut self, text: &'a str) -> Option<HotText<'a>> {
        if let Some(value) = self.last_progress.read(text) {
            let last = &self.last_progress;
            return Some(HotText::Progress(ProgressRef {
                value,
                max: last.max,
                prompt_id: Some(&last.prompt_id),
                node: Some(&last.node),
            }));
        }
        if self.snapshots.repeats(text) {
            return Some(HotText::RepeatedSnapshot);
        }
        let shape = snapshot::progress_state_shape(text);
        if let Some((prompt, shape)) = shape {
            // Same nodes in the same states as the last snapshot: it only
            // repeats the step that the `progress` right after it reports
            // too; skipping its parse halves the cost of a step.
            if self.snapshots.same_shape(prompt, shape) {
                self.snapshots.remember(text, prompt, shape);
                return Some(HotText::RepeatedSnapshot);
            }
        }
        let (kind, data) = split_envelope(text)?;
        match kind {
            "progress_state" => {
                let m = scan::progress_state(text).or_else(|| serde_json::from_str(data).ok())?;
                match shape {
                    Some((prompt, shape)) => self.snapshots.remember(text, prompt, shape),
                    None => self.snapshots.forget(),
                }
                Some(HotText::ProgressState(m))
            }
            "progress" => serde_json::from_str(data).ok().map(HotText::Progress),
            "executing" => serde_json::from_str(data).ok().map(HotText::Executing),
            "executed" => serde_json::from_str(data).ok().map(HotText::Executed),
            _ => None,
        }
    }

    /// A type-1 or type-4 preview; `None` for any other or malformed
    /// binary frame.
    #[inline]
    pub(crate) fn read_binary<'a>(&'a mut self, bytes: &'a [u8]) -> Option<HotPreview<'a>> {
        if let Some((format, image)) = legacy_preview(bytes) {
            return Some(HotPreview {
                prompt_id: None,
                node: None,
                mime: Cow::Borrowed(format.mime()),
                image,
            });
        }
        let (header, image) = split_preview_with_metadata(bytes)?;
        // A run's previews repeat one header (same node, same prompt):
        // equal bytes need no second reading.
        if !self.preview_header.matches(header) {
            let meta = preview_meta(header)?;
            self.preview_header.remember(header, &meta);
        }
        let last = &self.preview_header;
        Some(HotPreview {
            prompt_id: Some(&last.prompt_id),
            node: Some(&last.node),
            mime: last.mime.clone(),
            image,
        })
    }
}

/// A type-1 preview (no ids) straight to its format and image; `None`
/// for any other or truncated frame.
fn legacy_preview(bytes: &[u8]) -> Option<(ImageFormat, &[u8])> {
    if read_u32(bytes, 0)? != BINARY_PREVIEW {
        return None;
    }
    let format = image_format(read_u32(bytes, 4)?);
    Some((format, bytes.get(8..)?))
}

/// A type-4 preview split into its metadata header and image, both
/// borrowed from the frame; `None` for any other or malformed frame.
fn split_preview_with_metadata(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    if read_u32(bytes, 0)? != BINARY_PREVIEW_WITH_METADATA {
        return None;
    }
    let declared = read_u32(bytes, 4)?;
    length_prefixed(bytes, declared).ok()
}

/// A type-4 metadata header read without allocating.
fn preview_meta(header: &[u8]) -> Option<PreviewMetaRef<'_>> {
    match std::str::from_utf8(header)
        .ok()
        .and_then(scan::preview_meta)
    {
        Some(meta) => Some(meta),
        None => serde_json::from_slice(header).ok(),
    }
}
