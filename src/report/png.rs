//! PNG copies of the sweep's charts, for the places that show an image but not an SVG (slides,
//! issue trackers, chat).
//!
//! The encoder is the few lines PNG needs on top of zlib, written here on flate2 (already a
//! dependency, for genomes) rather than taken from the `png` crate, whose default flate2
//! features would rebuild Parquet and DataFusion with a second deflate backend. Text is drawn
//! with an embedded cut of DejaVu Sans (`font/`), since the machines that run sweeps have no
//! font libraries.

use std::io::Write as _;

use flate2::write::ZlibEncoder;
use flate2::{Compression, Crc};

/// The font the charts name, and the one glyph source behind it: registered once, before the
/// first chart measures or draws text (an unregistered family would fail either).
pub(crate) fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The file is part of the binary; a failure here is a build defect, caught by tests.
        plotters::style::register_font(
            super::html::FONT,
            plotters::style::FontStyle::Normal,
            include_bytes!("font/DejaVuSans-ascii.ttf"),
        )
        .unwrap_or_else(|_| panic!("the embedded chart font does not parse"));
    });
}

/// An 8-bit RGB image (`rgb` holds `width * height` pixels, row by row) as a PNG file.
pub fn encode_rgb(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
    let stride = width as usize * 3;
    assert_eq!(
        rgb.len(),
        stride * height as usize,
        "pixels do not fill the image"
    );
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend(width.to_be_bytes());
    ihdr.extend(height.to_be_bytes());
    // Bit depth 8, colour type 2 (RGB), deflate, adaptive filtering, no interlace.
    ihdr.extend([8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
    for row in rgb.chunks_exact(stride) {
        // Filter type 0 on every row: charts are mostly flat colour, which deflate takes well.
        z.write_all(&[0])
            .and_then(|_| z.write_all(row))
            .expect("writing to memory");
    }
    chunk(&mut out, b"IDAT", &z.finish().expect("writing to memory"));
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    out.extend(kind);
    out.extend(data);
    let mut crc = Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend(crc.sum().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    /// CRC-32 of PNG (ISO 3309), bit by bit as the specification's annex writes it: the oracle
    /// for flate2's table-driven one.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = 0xffff_ffffu32;
        for &b in bytes {
            c ^= b as u32;
            for _ in 0..8 {
                c = if c & 1 == 1 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        c ^ 0xffff_ffff
    }

    #[test]
    fn a_png_reads_back_to_its_pixels_with_every_chunk_checksum_right() {
        let (w, h) = (3u32, 2u32);
        let rgb: Vec<u8> = (0..(w * h * 3) as u8).map(|i| i.wrapping_mul(37)).collect();
        let png = encode_rgb(w, h, &rgb);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let mut at = 8;
        let mut kinds = vec![];
        let mut idat = vec![];
        while at < png.len() {
            let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
            let body = &png[at + 4..at + 8 + len];
            let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
            assert_eq!(crc, crc32(body));
            let kind = std::str::from_utf8(&body[..4]).unwrap().to_string();
            if kind == "IHDR" {
                assert_eq!(&body[4..], &[0, 0, 0, 3, 0, 0, 0, 2, 8, 2, 0, 0, 0]);
            }
            if kind == "IDAT" {
                idat.extend_from_slice(&body[4..]);
            }
            kinds.push(kind);
            at += 12 + len;
        }
        assert_eq!(kinds, ["IHDR", "IDAT", "IEND"]);
        let mut raw = vec![];
        flate2::read::ZlibDecoder::new(&idat[..])
            .read_to_end(&mut raw)
            .unwrap();
        let expected: Vec<u8> = rgb
            .chunks(9)
            .flat_map(|row| std::iter::once(0).chain(row.iter().copied()))
            .collect();
        assert_eq!(raw, expected);
    }
}
