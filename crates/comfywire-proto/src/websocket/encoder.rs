//! The client's frames: always final, always masked (a server must refuse
//! unmasked client frames).

/// The frame types a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    /// A UTF-8 text message.
    Text,
    /// A binary message.
    Binary,
    /// The close handshake; the payload is [`close_payload`]'s.
    Close,
    /// A ping; the server answers with a pong carrying the same payload.
    Ping,
    /// The answer to a server's ping.
    Pong,
}

impl Opcode {
    fn bits(self) -> u8 {
        match self {
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }
}

/// The longest close reason a close frame carries: a control frame's
/// payload is at most 125 bytes, two of which are the code.
pub const CLOSE_REASON_BYTES: usize = 123;

/// Whether a close frame may carry `code`: the defined codes but those
/// kept for reporting (1005 no code, 1006 abnormal, 1015 TLS), and the
/// ranges given to libraries and applications (3000-4999).
pub fn sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1013 | 3000..=4999)
}

/// A close frame's payload: the code, then `reason` cut to
/// [`CLOSE_REASON_BYTES`] at a character boundary.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(CLOSE_REASON_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    payload
}

/// Appends one final frame of `opcode` carrying `payload`, masked with
/// `mask`, to `out`. The mask must be fresh and unpredictable for every
/// frame (RFC 6455 §5.3): the caller draws it from the OS.
pub fn encode(opcode: Opcode, payload: &[u8], mask: [u8; 4], out: &mut Vec<u8>) {
    out.reserve(payload.len() + 14);
    out.push(0x80 | opcode.bits());
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(0x80 | 126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unmask(frame: &[u8], head: usize) -> Vec<u8> {
        let mask = &frame[head - 4..head];
        frame[head..]
            .iter()
            .zip(mask.iter().cycle())
            .map(|(b, m)| b ^ m)
            .collect()
    }

    #[test]
    fn each_length_form_is_used_at_its_bounds_and_the_payload_unmasks() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        for (len, head) in [(0, 6), (125, 6), (126, 8), (65_535, 8), (65_536, 14)] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
            let mut out = Vec::new();
            encode(Opcode::Binary, &payload, mask, &mut out);
            assert_eq!(out.len(), head + len, "length {len}");
            assert_eq!(out[0], 0x82);
            assert_eq!(out[1] & 0x80, 0x80, "every client frame is masked");
            assert_eq!(unmask(&out, head), payload, "length {len}");
        }
    }

    #[test]
    fn a_close_reason_is_cut_at_a_character_boundary_within_125_bytes() {
        let reason = "é".repeat(100);
        let payload = close_payload(1000, &reason);
        assert!(payload.len() <= 125);
        assert_eq!(&payload[..2], &1000u16.to_be_bytes());
        assert!(std::str::from_utf8(&payload[2..]).is_ok());
        assert_eq!(payload.len(), 2 + 122);
    }
}
