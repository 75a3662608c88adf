//! XXH64, the checksum of the binned cache's pages, labels and gene indices.
//!
//! The reference algorithm (Yann Collet's xxHash, 64-bit), streaming: four lanes of 8 bytes
//! per 32-byte stripe, so it runs at memory speed in a release build and costs the bin stage a
//! few percent. Written here rather than taken from a crate so that the cache format does not
//! depend on one; checked against the C implementation's published values below.

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

#[inline(always)]
fn round(acc: u64, input: u64) -> u64 {
    acc.wrapping_add(input.wrapping_mul(P2))
        .rotate_left(31)
        .wrapping_mul(P1)
}

#[inline(always)]
fn merge(acc: u64, v: u64) -> u64 {
    (acc ^ round(0, v)).wrapping_mul(P1).wrapping_add(P4)
}

#[inline(always)]
fn read_u64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

/// A streaming XXH64: [`Xxh64::update`] any number of times, then [`Xxh64::digest`].
#[derive(Debug, Clone)]
pub struct Xxh64 {
    seed: u64,
    lanes: [u64; 4],
    buf: [u8; 32],
    buf_len: usize,
    total: u64,
}

impl Default for Xxh64 {
    fn default() -> Self {
        Self::new(0)
    }
}

impl Xxh64 {
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            lanes: [
                seed.wrapping_add(P1).wrapping_add(P2),
                seed.wrapping_add(P2),
                seed,
                seed.wrapping_sub(P1),
            ],
            buf: [0; 32],
            buf_len: 0,
            total: 0,
        }
    }

    #[inline]
    fn stripe(lanes: &mut [u64; 4], s: &[u8]) {
        lanes[0] = round(lanes[0], read_u64(&s[0..]));
        lanes[1] = round(lanes[1], read_u64(&s[8..]));
        lanes[2] = round(lanes[2], read_u64(&s[16..]));
        lanes[3] = round(lanes[3], read_u64(&s[24..]));
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.buf_len + data.len() < 32 {
            self.buf[self.buf_len..self.buf_len + data.len()].copy_from_slice(data);
            self.buf_len += data.len();
            return;
        }
        if self.buf_len > 0 {
            let fill = 32 - self.buf_len;
            self.buf[self.buf_len..].copy_from_slice(&data[..fill]);
            let buf = self.buf;
            Self::stripe(&mut self.lanes, &buf);
            data = &data[fill..];
            self.buf_len = 0;
        }
        let mut chunks = data.chunks_exact(32);
        for s in &mut chunks {
            Self::stripe(&mut self.lanes, s);
        }
        let rest = chunks.remainder();
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buf_len = rest.len();
    }

    pub fn digest(&self) -> u64 {
        let [v1, v2, v3, v4] = self.lanes;
        let mut h = if self.total >= 32 {
            let h = v1
                .rotate_left(1)
                .wrapping_add(v2.rotate_left(7))
                .wrapping_add(v3.rotate_left(12))
                .wrapping_add(v4.rotate_left(18));
            merge(merge(merge(merge(h, v1), v2), v3), v4)
        } else {
            self.seed.wrapping_add(P5)
        };
        h = h.wrapping_add(self.total);
        let mut rest = &self.buf[..self.buf_len];
        while rest.len() >= 8 {
            h ^= round(0, read_u64(rest));
            h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
            rest = &rest[8..];
        }
        if rest.len() >= 4 {
            let k = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as u64;
            h ^= k.wrapping_mul(P1);
            h = h.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
            rest = &rest[4..];
        }
        for &b in rest {
            h ^= (b as u64).wrapping_mul(P5);
            h = h.rotate_left(11).wrapping_mul(P1);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(P2);
        h ^= h >> 29;
        h = h.wrapping_mul(P3);
        h ^ (h >> 32)
    }
}

/// XXH64 of `data` with seed 0.
pub fn xxh64(data: &[u8]) -> u64 {
    let mut h = Xxh64::new(0);
    h.update(data);
    h.digest()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_c_implementation() {
        // The reference values the `twox-hash` crate checks against xxHash's C code.
        assert_eq!(xxh64(b""), 0xef46_db37_51d8_e999);
        assert_eq!(xxh64(&[42]), 0x0a9e_dece_beb0_3ae4);
        assert_eq!(xxh64(b"Hello, world!\0"), 0x7b06_c531_ea43_e89f);
        let bytes: Vec<u8> = (0..100u8).collect();
        assert_eq!(xxh64(&bytes), 0x6ac1_e580_3216_6597);
        let mut h = Xxh64::new(0xae05_4331_1b70_2d91);
        h.update(&bytes);
        assert_eq!(h.digest(), 0x567e_355e_0682_e1f1);
        let mut h = Xxh64::new(u64::MAX - P5);
        h.update(b"x");
        assert_eq!(h.digest(), 0xf953_d52c_12a9_f5fb);
    }

    #[test]
    fn streaming_equals_one_shot_at_any_split() {
        let bytes: Vec<u8> = (0..1000u32).map(|i| (i * 37 % 251) as u8).collect();
        let whole = xxh64(&bytes);
        for split in [0, 1, 7, 31, 32, 33, 64, 65, 500, 999, 1000] {
            for second in [split, (split + 13).min(1000)] {
                let mut h = Xxh64::new(0);
                h.update(&bytes[..split]);
                h.update(&bytes[split..second]);
                h.update(&bytes[second..]);
                assert_eq!(h.digest(), whole, "split at {split}, {second}");
            }
        }
    }
}
