//! The WebSocket decoder against tungstenite on random streams: valid
//! messages of every length form, fragments with control frames between,
//! every protocol fault, the size limit, UTF-8 cut across fragments, and
//! streams cut short — offered in random pieces, as reads deliver them.
#![allow(clippy::unwrap_used)]

mod oracle {
    pub mod websocket;
}

use comfywire_proto::Rng;
use comfywire_proto::websocket::{Decoded, Decoder, Received};
use oracle::websocket::{Step, decoder_reads, tungstenite_reads};

/// A server frame: `flags` holds FIN and the reserved bits as on the wire.
fn frame(out: &mut Vec<u8>, flags: u8, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) {
    out.push(flags | opcode);
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(m | n as u8),
        n if n <= 0xFFFF => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().zip(key.iter().cycle()).map(|(b, k)| b ^ k));
        }
        None => out.extend_from_slice(payload),
    }
}

const FIN: u8 = 0x80;

fn pick(rng: &mut Rng, n: u64) -> u64 {
    rng.next_u64() % n
}

fn text(rng: &mut Rng, len: usize) -> Vec<u8> {
    // Multi-byte characters, so fragments split them.
    let alphabet = ["a", "{", "\"", "é", "€", "𝄞", "z"];
    let mut s = String::new();
    while s.len() < len {
        s.push_str(alphabet[pick(rng, alphabet.len() as u64) as usize]);
    }
    s.into_bytes()
}

fn length(rng: &mut Rng) -> usize {
    match pick(rng, 10) {
        0 => [125, 126, 127, 65_535, 65_536][pick(rng, 5) as usize],
        1..=3 => pick(rng, 2000) as usize,
        _ => pick(rng, 120) as usize,
    }
}

/// A random stream of server frames, mostly well formed.
fn stream(rng: &mut Rng, faults: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + pick(rng, 12) {
        let len = length(rng);
        match pick(rng, if faults { 14 } else { 7 }) {
            0 | 1 => frame(&mut out, FIN, 0x1, &text(rng, len), None),
            2 => {
                let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
                frame(&mut out, FIN, 0x2, &data, None);
            }
            3 => frame(&mut out, FIN, 0x9, &text(rng, len.min(125)), None),
            4 => frame(&mut out, FIN, 0xA, &text(rng, len.min(125)), None),
            5 => {
                // A fragmented message, control frames between its parts.
                let (opcode, body) = if pick(rng, 2) == 0 {
                    (0x1, text(rng, len))
                } else {
                    (0x2, (0..len).map(|i| i as u8).collect())
                };
                let parts = 1 + pick(rng, 4) as usize;
                let mut at = 0;
                for i in 0..parts {
                    let end = if i + 1 == parts {
                        body.len()
                    } else {
                        (at + pick(rng, body.len() as u64 + 1) as usize).min(body.len())
                    };
                    let op = if i == 0 { opcode } else { 0x0 };
                    let fin = if i + 1 == parts { FIN } else { 0 };
                    frame(&mut out, fin, op, &body[at..end], None);
                    at = end;
                    if pick(rng, 3) == 0 {
                        frame(&mut out, FIN, 0x9, b"between", None);
                    }
                }
            }
            6 => {
                let code = [1000u16, 1001, 1011, 4000, 1005, 999, 5000][pick(rng, 7) as usize];
                let mut payload = code.to_be_bytes().to_vec();
                payload.extend_from_slice(&text(rng, len.min(100)));
                frame(&mut out, FIN, 0x8, &payload, None);
            }
            7 => frame(&mut out, FIN | 0x40, 0x1, b"{}", None),
            8 => frame(&mut out, FIN, 0x1, b"{}", Some([1, 2, 3, 4])),
            9 => frame(
                &mut out,
                FIN,
                [0x3, 0x7, 0xB, 0xF][pick(rng, 4) as usize],
                b"x",
                None,
            ),
            10 => frame(
                &mut out,
                pick(rng, 2) as u8 * FIN,
                0x9,
                &vec![b'p'; 100 + len],
                None,
            ),
            11 => frame(&mut out, FIN * pick(rng, 2) as u8, 0x0, b"stray", None),
            12 => frame(&mut out, FIN, 0x1, &[0xC3, 0x28], None),
            _ => frame(
                &mut out,
                FIN,
                0x8,
                [[0x03].as_slice(), &[0x03, 0xE8, 0xFF]][pick(rng, 2) as usize],
                None,
            ),
        }
    }
    if pick(rng, 5) == 0 {
        out.truncate(pick(rng, out.len() as u64 + 1) as usize);
    }
    out
}

#[test]
fn the_decoder_reads_what_tungstenite_reads_from_random_streams_in_random_pieces() {
    let mut rng = Rng::new(0x5EED_F4A3);
    let (mut messages, mut errors, mut ends, mut closes) = (0, 0, 0, 0);
    for case in 0..3000 {
        let faults = case % 2 == 1;
        let bytes = stream(&mut rng, faults);
        // A small limit in some cases, so the size check is met.
        let limit = if case % 5 == 0 { 300 } else { 1 << 20 };
        let reference = tungstenite_reads(&bytes, limit);
        let max_piece = [1, 7, 64, 4096, usize::MAX][case % 5];
        let mut pieces = Rng::new(case as u64);
        let ours = decoder_reads(&bytes, limit, || {
            (pieces.next_u64() as usize % max_piece.min(1 << 20)) + 1
        });
        assert_eq!(
            ours,
            reference,
            "case {case}, limit {limit}, {} bytes {:x?}",
            bytes.len(),
            &bytes[..bytes.len().min(40)]
        );
        messages += reference.len() - 1;
        match reference.last() {
            Some(Step::Error) => errors += 1,
            Some(Step::End) => ends += 1,
            Some(Step::Close(_)) => closes += 1,
            _ => {}
        }
    }
    // The streams met every ending, and many messages.
    assert!(
        messages > 5000 && errors > 300 && ends > 300 && closes > 300,
        "messages {messages}, errors {errors}, ends {ends}, closes {closes}"
    );
}

#[test]
fn a_whole_frame_is_handed_out_as_a_slice_of_the_buffer_itself() {
    let mut bytes = Vec::new();
    frame(&mut bytes, FIN, 0x1, br#"{"type": "progress"}"#, None);
    let mut decoder = Decoder::new(1024);
    let Ok(Decoded::Frame {
        consumed,
        message: Some(Received::Text(t)),
    }) = decoder.decode(&bytes)
    else {
        panic!("no text");
    };
    assert_eq!(consumed, bytes.len());
    // No copy: the text is the buffer's own bytes.
    assert_eq!(t.as_ptr(), bytes[2..].as_ptr());
}

#[test]
fn an_oversized_frame_is_refused_from_its_header_alone() {
    let mut decoder = Decoder::new(1000);
    // Only the header of a 1 GiB frame has arrived.
    let mut header = vec![FIN | 0x2, 127];
    header.extend_from_slice(&(1u64 << 30).to_be_bytes());
    let error = decoder.decode(&header).unwrap_err();
    assert_eq!(
        error,
        comfywire_proto::websocket::FrameError::TooLarge {
            size: 1 << 30,
            limit: 1000
        }
    );
}

#[test]
fn fragments_over_the_limit_together_are_refused_though_each_fits() {
    let mut bytes = Vec::new();
    frame(&mut bytes, 0, 0x2, &[7; 600], None);
    frame(&mut bytes, FIN, 0x0, &[7; 600], None);
    let mut decoder = Decoder::new(1000);
    let Ok(Decoded::Frame {
        consumed,
        message: None,
    }) = decoder.decode(&bytes)
    else {
        panic!("the first fragment fits");
    };
    let error = decoder.decode(&bytes[consumed..]).unwrap_err();
    assert_eq!(
        error,
        comfywire_proto::websocket::FrameError::TooLarge {
            size: 1200,
            limit: 1000
        }
    );
}

#[test]
fn an_incomplete_frame_says_how_long_it_is_once_its_header_is_in() {
    let mut bytes = Vec::new();
    frame(&mut bytes, FIN, 0x2, &[1; 70_000], None);
    let mut decoder = Decoder::new(1 << 20);
    assert_eq!(
        decoder.decode(&bytes[..1]),
        Ok(Decoded::Incomplete { needed: 2 })
    );
    assert_eq!(
        decoder.decode(&bytes[..5]),
        Ok(Decoded::Incomplete { needed: 10 })
    );
    assert_eq!(
        decoder.decode(&bytes[..100]),
        Ok(Decoded::Incomplete { needed: 70_010 })
    );
}

#[test]
fn the_close_codes_a_client_may_send_are_the_ones_tungstenite_allows() {
    use tungstenite::protocol::frame::coding::CloseCode;
    for code in 0..=u16::MAX {
        assert_eq!(
            comfywire_proto::websocket::sendable_close_code(code),
            CloseCode::from(code).is_allowed(),
            "code {code}"
        );
    }
}
