//! The forward pass of one network over one chunk, in "valid" mode: each layer computes only
//! the positions that the chunk's outputs need, so the context of a chunk is computed once
//! and never padded.
//!
//! A chunk of `c` outputs reads `c + reach.0 + reach.1` input positions. Three buffers of that
//! many rows (the residual stream `x`, its normalised copy `a` and the first convolution's
//! output `t`) are indexed by input position throughout, so a layer writes its rows in place
//! of its input's range narrowed by its reach; the skip sum holds the `c` output rows only.

use rayon::prelude::*;

use super::keras::Network;
use super::kernel::{conv, ConvWeights, Init, WIDTH};

/// Output rows one parallel task convolves (a multiple of the kernel's six-row tile).
const BLOCK_ROWS: usize = 192;
/// Rows one parallel task normalises.
const MAP_ROWS: usize = 4096;

/// A chunk's buffers, sized for chunks of up to `chunk` outputs of networks reaching
/// `reach` positions each side.
#[derive(Debug)]
pub struct Buffers {
    pub(super) chunk: usize,
    pub(super) reach: (usize, usize),
    x: Vec<f32>,
    a: Vec<f32>,
    t: Vec<f32>,
    skip: Vec<f32>,
}

impl Buffers {
    pub fn new(chunk: usize, reach: (usize, usize)) -> Self {
        let rows = chunk + reach.0 + reach.1;
        Self {
            chunk,
            reach,
            x: vec![0.0; rows * WIDTH],
            a: vec![0.0; rows * WIDTH],
            t: vec![0.0; rows * WIDTH],
            skip: vec![0.0; chunk * WIDTH],
        }
    }

    /// Bytes [`Buffers::new`] allocates.
    pub fn bytes(chunk: usize, reach: (usize, usize)) -> u64 {
        let rows = (chunk + reach.0 + reach.1) as u64;
        4 * WIDTH as u64 * (3 * rows + chunk as u64)
    }
}

/// Base codes of ASCII: A, C, G, T (either case) as 0..3, anything else 4 (N).
pub(super) const CODES: [u8; 256] = {
    let mut t = [4u8; 256];
    t[b'A' as usize] = 0;
    t[b'a' as usize] = 0;
    t[b'C' as usize] = 1;
    t[b'c' as usize] = 1;
    t[b'G' as usize] = 2;
    t[b'g' as usize] = 2;
    t[b'T' as usize] = 3;
    t[b't' as usize] = 3;
    t
};

/// Runs `net` on `seq` (the chunk's outputs plus `buf.reach` on each side) and adds
/// `weight` × its softmax to `out` (one row per output).
pub(super) fn forward(net: &Network, seq: &[u8], buf: &mut Buffers, out: &mut [[f32; 3]], weight: f32) {
    let c = out.len();
    let (rl, rr) = buf.reach;
    let n = c + rl + rr;
    assert!(
        c <= buf.chunk,
        "chunk of {c} outputs in buffers for {}",
        buf.chunk
    );
    assert_eq!(seq.len(), n, "a chunk of {c} outputs reads {n} positions");
    let Buffers { x, a, t, skip, .. } = buf;
    let (x, a, t, skip) = (
        &mut x[..n * WIDTH],
        &mut a[..n * WIDTH],
        &mut t[..n * WIDTH],
        &mut skip[..c * WIDTH],
    );

    // The stem: a 1x1 convolution of one-hot bases is a row of its kernel plus the bias.
    let stem = &net.stem;
    x.par_chunks_mut(MAP_ROWS * WIDTH)
        .enumerate()
        .for_each(|(i, rows)| {
            for (row, &base) in rows.chunks_exact_mut(WIDTH).zip(&seq[i * MAP_ROWS..]) {
                row.copy_from_slice(&stem.b);
                let code = CODES[base as usize] as usize;
                if code < 4 {
                    let w = &stem.w[code * WIDTH..][..WIDTH];
                    row.iter_mut().zip(w).for_each(|(r, w)| *r += w);
                }
            }
        });

    skip.fill(0.0);
    let mut taps = net.taps.iter().peekable();
    let mut add_taps = |node: usize, x: &[f32], skip: &mut [f32]| {
        while let Some((_, tap)) = taps.next_if(|(at, _)| *at == node) {
            // The outputs sit at input rows rl..rl + c of the stream.
            conv_par(x, rl, tap, skip, Init::BiasPlusOut, false);
        }
    };
    add_taps(0, x, skip);

    let (mut lo, mut hi) = (0, n);
    for (u, unit) in net.units.iter().enumerate() {
        // a = relu(x * scale + shift) on the stream's whole range.
        a[lo * WIDTH..hi * WIDTH]
            .par_chunks_mut(MAP_ROWS * WIDTH)
            .zip(x[lo * WIDTH..hi * WIDTH].par_chunks(MAP_ROWS * WIDTH))
            .for_each(|(a, x)| {
                for (ar, xr) in a.chunks_exact_mut(WIDTH).zip(x.chunks_exact(WIDTH)) {
                    for ch in 0..WIDTH {
                        ar[ch] = (xr[ch] * unit.scale[ch] + unit.shift[ch]).max(0.0);
                    }
                }
            });
        // t = relu(conv1'(a)), then x += conv2(t), each on a range narrowed by its reach.
        let (l1, r1) = unit.conv1.reach();
        conv_par(
            a,
            lo,
            &unit.conv1,
            &mut t[(lo + l1) * WIDTH..(hi - r1) * WIDTH],
            Init::Bias,
            true,
        );
        let (l2, r2) = unit.conv2.reach();
        let (lo2, hi2) = (lo + l1 + l2, hi - r1 - r2);
        conv_par(
            t,
            lo + l1,
            &unit.conv2,
            &mut x[lo2 * WIDTH..hi2 * WIDTH],
            Init::BiasPlusOut,
            false,
        );
        (lo, hi) = (lo2, hi2);
        add_taps(u + 1, x, skip);
    }
    debug_assert!(lo <= rl && hi >= rl + c);

    // The head: a 1x1 convolution to three logits and a softmax.
    let head = &net.head;
    out.par_chunks_mut(MAP_ROWS)
        .zip(skip.par_chunks(MAP_ROWS * WIDTH))
        .for_each(|(out, s)| {
            for (o, row) in out.iter_mut().zip(s.chunks_exact(WIDTH)) {
                let mut z = [head.b[0], head.b[1], head.b[2]];
                for (ch, &v) in row.iter().enumerate() {
                    let w = &head.w[ch * 3..ch * 3 + 3];
                    z[0] += v * w[0];
                    z[1] += v * w[1];
                    z[2] += v * w[2];
                }
                let m = z[0].max(z[1]).max(z[2]);
                let e = z.map(|v| (v - m).exp());
                let sum = e[0] + e[1] + e[2];
                for k in 0..3 {
                    o[k] += weight * (e[k] / sum);
                }
            }
        });
}

/// [`conv`] over `out`'s rows in parallel blocks; output row 0's taps start at input row
/// `first`.
fn conv_par(inp: &[f32], first: usize, cw: &ConvWeights, out: &mut [f32], init: Init, relu: bool) {
    out.par_chunks_mut(BLOCK_ROWS * cw.cout)
        .enumerate()
        .for_each(|(i, block)| conv(inp, first + i * BLOCK_ROWS, cw, block, init, relu));
}
