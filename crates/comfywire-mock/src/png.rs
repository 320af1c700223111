//! Small, valid PNG files made from a name, so `/view` has bytes to serve
//! for outputs that exist only in recordings.

/// An 8x8 RGB PNG whose colours depend only on `name`.
pub fn for_name(name: &str) -> Vec<u8> {
    const SIDE: u32 = 8;
    // FNV-1a: any stable hash will do, the colour only has to be repeatable.
    let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let [r, g, b, ..] = seed.to_be_bytes();
    let mut pixels = Vec::with_capacity((SIDE * SIDE * 3) as usize);
    for y in 0..SIDE {
        for x in 0..SIDE {
            let shade = ((x + y) * 8) as u8;
            pixels.extend_from_slice(&[r.wrapping_add(shade), g, b.wrapping_sub(shade)]);
        }
    }
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, SIDE, SIDE);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // Writing 192 bytes into a Vec cannot fail but for a bug in `png`.
    let written = encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(&pixels));
    if let Err(e) = written {
        tracing::error!(target: "comfywire_mock", error = %e, "PNG encoding failed");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_is_deterministic_and_decodes_to_its_pixels() {
        let a = for_name("a.png");
        assert_eq!(a, for_name("a.png"));
        assert_ne!(a, for_name("b.png"));
        let mut reader = png::Decoder::new(std::io::Cursor::new(&a))
            .read_info()
            .unwrap_or_else(|e| panic!("decode: {e}"));
        let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
        let info = reader
            .next_frame(&mut buf)
            .unwrap_or_else(|e| panic!("frame: {e}"));
        assert_eq!((info.width, info.height), (8, 8));
        assert_eq!(info.color_type, png::ColorType::Rgb);
    }
}
