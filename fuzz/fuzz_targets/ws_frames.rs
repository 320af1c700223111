//! The WebSocket decoder on arbitrary bytes, beside tungstenite reading the
//! same bytes as a client: both read the same messages and end the same way
//! (a clean end, a close, or a failed connection), whatever the pieces the
//! bytes arrive in. The first two bytes pick the size limit and the pieces.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/comfywire-proto/tests/oracle/websocket.rs"]
mod oracle;

fuzz_target!(|data: &[u8]| {
    let [limit, piece, bytes @ ..] = data else {
        return;
    };
    let limit = [16, 125, 126, 300, 65_536, 1 << 20][usize::from(*limit) % 6];
    let max_piece = [1, 2, 3, 7, 64, 4096, usize::MAX][usize::from(*piece) % 7];
    let reference = oracle::tungstenite_reads(bytes, limit);
    let mut turn = 0usize;
    let ours = oracle::decoder_reads(bytes, limit, || {
        turn = turn.wrapping_mul(31).wrapping_add(17);
        turn % max_piece.min(1 << 16) + 1
    });
    assert_eq!(ours, reference, "the decoder and tungstenite disagree");
});
