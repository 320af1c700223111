//! Small, valid PNG files made from a name, so `/view` has bytes to serve
//! for outputs that exist only in recordings.

fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for part in parts {
        for byte in *part {
            crc ^= u32::from(*byte);
            for _ in 0..8 {
                let mask = (crc & 1).wrapping_neg();
                crc = (crc >> 1) ^ (0xedb8_8320 & mask);
            }
        }
    }
    !crc
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for byte in data {
        a = (a + u32::from(*byte)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(&[kind, data]).to_be_bytes());
}

/// An 8x8 RGB PNG whose colours depend only on `name`.
pub fn for_name(name: &str) -> Vec<u8> {
    const SIDE: u32 = 8;
    // FNV-1a: any stable hash will do, the colour only has to be repeatable.
    let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let [r, g, b, ..] = seed.to_be_bytes();
    let mut raw = Vec::new();
    for y in 0..SIDE {
        raw.push(0);
        for x in 0..SIDE {
            let shade = ((x + y) * 8) as u8;
            raw.extend_from_slice(&[r.wrapping_add(shade), g, b.wrapping_sub(shade)]);
        }
    }
    let mut zlib = vec![0x78, 0x01, 0x01];
    let len = raw.len() as u16;
    zlib.extend_from_slice(&len.to_le_bytes());
    zlib.extend_from_slice(&(!len).to_le_bytes());
    zlib.extend_from_slice(&raw);
    zlib.extend_from_slice(&adler32(&raw).to_be_bytes());
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&SIDE.to_be_bytes());
    ihdr.extend_from_slice(&SIDE.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &zlib);
    chunk(&mut out, b"IEND", &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_is_deterministic_and_well_formed() {
        let a = for_name("a.png");
        assert_eq!(a, for_name("a.png"));
        assert_ne!(a, for_name("b.png"));
        assert!(a.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert_eq!(crc32(&[b"123456789"]), 0xcbf4_3926);
        assert!(a.ends_with(&[0xae, 0x42, 0x60, 0x82]));
    }
}
