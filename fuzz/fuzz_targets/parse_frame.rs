//! `parse_frame` on arbitrary text and binary payloads: never panics, and
//! a frame that parses keeps its prompt id stable across a second parse.
#![no_main]

use bytes::Bytes;
use comfywire_proto::{Frame, parse_frame};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the frame kind so one corpus covers both.
    let Some((&kind, payload)) = data.split_first() else {
        return;
    };
    let frame = if kind & 1 == 0 {
        Frame::Text(Bytes::copy_from_slice(payload))
    } else {
        Frame::Binary(Bytes::copy_from_slice(payload))
    };
    let first = parse_frame(&frame);
    let second = parse_frame(&frame);
    assert_eq!(first, second, "parsing is not deterministic");
});
