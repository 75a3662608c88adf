//! The dilated 1-D convolution every layer of the network runs, on activations laid out
//! position-major (`[position][channel]`, [`WIDTH`] channels a row).
//!
//! One call computes a block of output rows `r` in `0..rows`:
//!
//! ```text
//! out[r][o] = bias[o] (+ out[r][o] if residual) + Σ_t Σ_c inp[first + r + t·d][c] · w[t][c][o]
//! ```
//!
//! optionally followed by a ReLU: a "valid" convolution (no padding), the kernel stored as
//! Keras stores it (`[tap][in][out]`). Since a tap's input rows are a contiguous slice of the
//! input, no im2col copy is made. On x86-64 with AVX2 and FMA (detected at run time) tiles of
//! six positions × sixteen channels accumulate in registers (inline assembly, so that debug
//! builds and the tests run as fast as release builds; the last few rows of a block through
//! intrinsics), taps are taken four at a time so that their weights stay in L1, and the
//! block's partial sums wait in `out` between groups; elsewhere a portable loop does the same
//! sums. One layer of 60,000 positions (k = 41, d = 25) on one core: 60-75 GFLOP/s, against
//! 40 for matrixmultiply's sgemm per tap and 4 for candle's `conv1d` (im2col, 340 MB). Both give every output row the same sums in
//! the same order whatever the block's size or position, so a sequence scored in chunks of
//! any length gives the very same bits.

/// Channels of every hidden activation (the SpliceAI-10k network is 32 wide throughout).
pub const WIDTH: usize = 32;

/// A convolution's weights, batch norm folded in where one followed it.
#[derive(Debug, Clone)]
pub struct ConvWeights {
    /// Taps.
    pub k: usize,
    /// Dilation.
    pub d: usize,
    /// Input channels (a row of the input holds exactly this many).
    pub cin: usize,
    /// Output channels (a row of the output holds exactly this many).
    pub cout: usize,
    /// `[k][cin][cout]`.
    pub w: Vec<f32>,
    /// `[cout]`.
    pub b: Vec<f32>,
}

impl ConvWeights {
    /// Positions the receptive field reaches before (left) and after (right) its output, as
    /// Keras's "same" padding centres it: `(k-1)·d` split with the odd one on the right.
    pub fn reach(&self) -> (usize, usize) {
        let span = (self.k - 1) * self.d;
        (span / 2, span - span / 2)
    }

    /// Bytes of the weights.
    pub fn bytes(&self) -> u64 {
        4 * (self.w.len() + self.b.len()) as u64
    }
}

/// Whether `out` starts from the bias alone or from the bias plus what `out` holds (a
/// residual connection, or a sum the block adds to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    Bias,
    BiasPlusOut,
}

/// Computes `rows = out.len() / cout` output rows, their taps starting at input row `first`.
///
/// Panics if the input is too short for the rows asked for.
pub fn conv(inp: &[f32], first: usize, cw: &ConvWeights, out: &mut [f32], init: Init, relu: bool) {
    let rows = out.len() / cw.cout;
    if rows == 0 {
        return;
    }
    assert_eq!(out.len(), rows * cw.cout, "output is not whole rows");
    let last_row = first + rows - 1 + (cw.k - 1) * cw.d;
    assert!(
        (last_row + 1) * cw.cin <= inp.len(),
        "convolution input too short: needs row {last_row}, has {}",
        inp.len() / cw.cin
    );
    assert_eq!(cw.w.len(), cw.k * cw.cin * cw.cout);
    #[cfg(target_arch = "x86_64")]
    {
        if cw.cin == WIDTH && cw.cout == WIDTH && avx2() {
            // SAFETY: the CPU has AVX2 and FMA; the bounds were checked above.
            unsafe { avx2_fma::conv32(inp, first, cw, out, init, relu) };
            return;
        }
    }
    conv_portable(inp, first, cw, out, init, relu);
}

/// Whether the fast kernel runs on this CPU.
pub fn simd() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        avx2()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
fn avx2() -> bool {
    use std::sync::OnceLock;
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"))
}

/// The same sums in plain Rust, for any widths and any CPU.
pub fn conv_portable(inp: &[f32], first: usize, cw: &ConvWeights, out: &mut [f32], init: Init, relu: bool) {
    let (cin, cout) = (cw.cin, cw.cout);
    let mut acc = vec![0f32; cout];
    for (r, o) in out.chunks_exact_mut(cout).enumerate() {
        acc.copy_from_slice(&cw.b);
        if init == Init::BiasPlusOut {
            acc.iter_mut().zip(o.iter()).for_each(|(a, x)| *a += x);
        }
        for t in 0..cw.k {
            let row = &inp[(first + r + t * cw.d) * cin..][..cin];
            let wt = &cw.w[t * cin * cout..][..cin * cout];
            for (c, &x) in row.iter().enumerate() {
                let wc = &wt[c * cout..][..cout];
                acc.iter_mut().zip(wc).for_each(|(a, w)| *a += x * w);
            }
        }
        if relu {
            acc.iter_mut().for_each(|a| *a = a.max(0.0));
        }
        o.copy_from_slice(&acc);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2_fma {
    use super::{ConvWeights, Init, WIDTH};
    use std::arch::x86_64::*;

    /// Positions per register tile.
    const TILE: usize = 6;
    /// Taps whose weights (4 × 32 × 16 floats, 8 KiB) stay in L1 while a block runs.
    const TAP_GROUP: usize = 4;

    /// # Safety
    /// The CPU must have AVX2 and FMA, and the caller must have checked the bounds.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn conv32(
        inp: &[f32],
        first: usize,
        cw: &ConvWeights,
        out: &mut [f32],
        init: Init,
        relu: bool,
    ) {
        let rows = out.len() / WIDTH;
        let ip = inp.as_ptr().add(first * WIDTH);
        let op = out.as_mut_ptr();
        let mut t0 = 0;
        while t0 < cw.k {
            let t1 = (t0 + TAP_GROUP).min(cw.k);
            let g = Group {
                t0,
                t1,
                d: cw.d,
                start: if t0 > 0 {
                    Start::Out
                } else if init == Init::BiasPlusOut {
                    Start::BiasPlusOut
                } else {
                    Start::Bias
                },
                relu: relu && t1 == cw.k,
            };
            for half in 0..2 {
                let w = cw.w.as_ptr().add(half * 16);
                let b = cw.b.as_ptr().add(half * 16);
                let o = op.add(half * 16);
                let tiles = rows / TILE;
                if tiles > 0 {
                    let p = Params {
                        w: w.add(t0 * WIDTH * WIDTH),
                        b,
                        taps: t1 - t0,
                        tap_stride: cw.d * WIDTH * 4,
                        mode: match g.start {
                            Start::Bias => 1,
                            Start::BiasPlusOut => 3,
                            Start::Out => 2,
                        } | if g.relu { 4 } else { 0 },
                    };
                    tiles6(ip.add(t0 * cw.d * WIDTH), o, tiles, &p);
                }
                let i = tiles * TILE;
                let (ip, o) = (ip.add(i * WIDTH), o.add(i * WIDTH));
                match rows - i {
                    0 => {}
                    1 => tile::<1>(ip, w, b, o, &g),
                    2 => tile::<2>(ip, w, b, o, &g),
                    3 => tile::<3>(ip, w, b, o, &g),
                    4 => tile::<4>(ip, w, b, o, &g),
                    5 => tile::<5>(ip, w, b, o, &g),
                    _ => unreachable!(),
                }
            }
            t0 = t1;
        }
    }

    /// What [`tiles6`] reads besides its rows, addressed by offset from the assembly.
    #[repr(C)]
    struct Params {
        /// The first tap's weights, offset to the 16 channels' column (offset 0).
        w: *const f32,
        /// The bias, offset likewise (8).
        b: *const f32,
        /// Taps (16).
        taps: usize,
        /// Bytes from one tap's input rows to the next: `d` rows (24).
        tap_stride: usize,
        /// Bit 0: start from the bias; bit 1: add what `out` holds; bit 2: ReLU at the end (32).
        mode: usize,
    }

    /// `tiles` tiles of six rows × 16 channels, in assembly so that a debug build (which
    /// compiles the intrinsics above into function calls, 150 times slower) runs the network
    /// about as fast as a release build: the tests run it on real sequences.
    ///
    /// Registers: ymm0..11 hold the 6 × 16 sums (two per row), ymm12/13 a channel's 16
    /// weights, ymm14 an input value broadcast, ymm15 zero for the ReLU. Per channel `c`
    /// (unrolled by four): `sum[r] += x[r][c] · w[c]` for the six rows.
    ///
    /// # Safety
    /// AVX2 and FMA; `tiles >= 1`; `x`'s rows (stride 128 bytes) reach six rows past the last
    /// tile's start plus `(taps - 1)` tap strides; `out` holds `6 · tiles` rows.
    unsafe fn tiles6(x: *const f32, out: *mut f32, tiles: usize, p: &Params) {
        std::arch::asm!(
            "2:",
            "vxorps ymm0, ymm0, ymm0",
            "vxorps ymm1, ymm1, ymm1",
            "vxorps ymm2, ymm2, ymm2",
            "vxorps ymm3, ymm3, ymm3",
            "vxorps ymm4, ymm4, ymm4",
            "vxorps ymm5, ymm5, ymm5",
            "vxorps ymm6, ymm6, ymm6",
            "vxorps ymm7, ymm7, ymm7",
            "vxorps ymm8, ymm8, ymm8",
            "vxorps ymm9, ymm9, ymm9",
            "vxorps ymm10, ymm10, ymm10",
            "vxorps ymm11, ymm11, ymm11",
            "test qword ptr [{p} + 32], 1",
            "jz 3f",
            "mov {t}, [{p} + 8]",
            "vaddps ymm0, ymm0, [{t}]", "vaddps ymm1, ymm1, [{t} + 32]",
            "vaddps ymm2, ymm2, [{t}]", "vaddps ymm3, ymm3, [{t} + 32]",
            "vaddps ymm4, ymm4, [{t}]", "vaddps ymm5, ymm5, [{t} + 32]",
            "vaddps ymm6, ymm6, [{t}]", "vaddps ymm7, ymm7, [{t} + 32]",
            "vaddps ymm8, ymm8, [{t}]", "vaddps ymm9, ymm9, [{t} + 32]",
            "vaddps ymm10, ymm10, [{t}]", "vaddps ymm11, ymm11, [{t} + 32]",
            "3:",
            "test qword ptr [{p} + 32], 2",
            "jz 4f",
            "vaddps ymm0, ymm0, [{o} + 0]", "vaddps ymm1, ymm1, [{o} + 32]",
            "vaddps ymm2, ymm2, [{o} + 128]", "vaddps ymm3, ymm3, [{o} + 160]",
            "vaddps ymm4, ymm4, [{o} + 256]", "vaddps ymm5, ymm5, [{o} + 288]",
            "vaddps ymm6, ymm6, [{o} + 384]", "vaddps ymm7, ymm7, [{o} + 416]",
            "vaddps ymm8, ymm8, [{o} + 512]", "vaddps ymm9, ymm9, [{o} + 544]",
            "vaddps ymm10, ymm10, [{o} + 640]", "vaddps ymm11, ymm11, [{o} + 672]",
            "4:",
            "mov {w}, [{p}]",
            "mov {t}, [{p} + 16]",
            "mov {xt}, {x}",
            "5:",
            "mov {c}, 8",
            "mov {xp}, {xt}",
            "mov {wp}, {w}",
            "6:",
            "vmovups ymm12, [{wp} + 0]", "vmovups ymm13, [{wp} + 32]",
            "vbroadcastss ymm14, [{xp} + 0]", "vfmadd231ps ymm0, ymm14, ymm12", "vfmadd231ps ymm1, ymm14, ymm13",
            "vbroadcastss ymm14, [{xp} + 128]", "vfmadd231ps ymm2, ymm14, ymm12", "vfmadd231ps ymm3, ymm14, ymm13",
            "vbroadcastss ymm14, [{xp} + 256]", "vfmadd231ps ymm4, ymm14, ymm12", "vfmadd231ps ymm5, ymm14, ymm13",
            "vbroadcastss ymm14, [{xp} + 384]", "vfmadd231ps ymm6, ymm14, ymm12", "vfmadd231ps ymm7, ymm14, ymm13",
            "vbroadcastss ymm14, [{xp} + 512]", "vfmadd231ps ymm8, ymm14, ymm12", "vfmadd231ps ymm9, ymm14, ymm13",
            "vbroadcastss ymm14, [{xp} + 640]", "vfmadd231ps ymm10, ymm14, ymm12", "vfmadd231ps ymm11, ymm14, ymm13",
            "vmovups ymm12, [{wp} + 128]", "vmovups ymm13, [{wp} + 160]",
            "vbroadcastss ymm14, [{xp} + 4]", "vfmadd231ps ymm0, ymm14, ymm12", "vfmadd231ps ymm1, ymm14, ymm13",
            "vbroadcastss ymm14, [{xp} + 132]", "vfmadd231ps ymm2, ymm14, ymm12", "vfmadd231ps ymm3, ymm14, ymm13",
            "vbroadcastss ymm14, [{xp} + 260]", "vfmadd231ps ymm4, ymm14, ymm12", "vfmadd231ps ymm5, ymm14, ymm13",
            "vbroadcastss ymm14, [{xp} + 388]", "vfmadd231ps ymm6, ymm14, ymm12", "vfmadd231ps ymm7, ymm14, ymm13",
            "vbroadcastss ymm14, [{xp} + 516]", "vfmadd231ps ymm8, ymm14, ymm12", "vfmadd231ps ymm9, ymm14, ymm13",
            "vbroadcastss ymm14, [{xp} + 644]", "vfmadd231ps ymm10, ymm14, ymm12", "vfmadd231ps ymm11, ymm14, ymm13",
            "vmovups ymm12, [{wp} + 256]", "vmovups ymm13, [{wp} + 288]",
            "vbroadcastss ymm14, [{xp} + 8]", "vfmadd231ps ymm0, ymm14, ymm12", "vfmadd231ps ymm1, ymm14, ymm13",
            "vbroadcastss ymm14, [{xp} + 136]", "vfmadd231ps ymm2, ymm14, ymm12", "vfmadd231ps ymm3, ymm14, ymm13",
            "vbroadcastss ymm14, [{xp} + 264]", "vfmadd231ps ymm4, ymm14, ymm12", "vfmadd231ps ymm5, ymm14, ymm13",
            "vbroadcastss ymm14, [{xp} + 392]", "vfmadd231ps ymm6, ymm14, ymm12", "vfmadd231ps ymm7, ymm14, ymm13",
            "vbroadcastss ymm14, [{xp} + 520]", "vfmadd231ps ymm8, ymm14, ymm12", "vfmadd231ps ymm9, ymm14, ymm13",
            "vbroadcastss ymm14, [{xp} + 648]", "vfmadd231ps ymm10, ymm14, ymm12", "vfmadd231ps ymm11, ymm14, ymm13",
            "vmovups ymm12, [{wp} + 384]", "vmovups ymm13, [{wp} + 416]",
            "vbroadcastss ymm14, [{xp} + 12]", "vfmadd231ps ymm0, ymm14, ymm12", "vfmadd231ps ymm1, ymm14, ymm13",
            "vbroadcastss ymm14, [{xp} + 140]", "vfmadd231ps ymm2, ymm14, ymm12", "vfmadd231ps ymm3, ymm14, ymm13",
            "vbroadcastss ymm14, [{xp} + 268]", "vfmadd231ps ymm4, ymm14, ymm12", "vfmadd231ps ymm5, ymm14, ymm13",
            "vbroadcastss ymm14, [{xp} + 396]", "vfmadd231ps ymm6, ymm14, ymm12", "vfmadd231ps ymm7, ymm14, ymm13",
            "vbroadcastss ymm14, [{xp} + 524]", "vfmadd231ps ymm8, ymm14, ymm12", "vfmadd231ps ymm9, ymm14, ymm13",
            "vbroadcastss ymm14, [{xp} + 652]", "vfmadd231ps ymm10, ymm14, ymm12", "vfmadd231ps ymm11, ymm14, ymm13",
            "add {wp}, 512",
            "add {xp}, 16",
            "dec {c}",
            "jnz 6b",
            "add {xt}, [{p} + 24]",
            "add {w}, 4096",
            "dec {t}",
            "jnz 5b",
            "test qword ptr [{p} + 32], 4",
            "jz 7f",
            "vxorps ymm15, ymm15, ymm15",
            "vmaxps ymm0, ymm0, ymm15",
            "vmaxps ymm1, ymm1, ymm15",
            "vmaxps ymm2, ymm2, ymm15",
            "vmaxps ymm3, ymm3, ymm15",
            "vmaxps ymm4, ymm4, ymm15",
            "vmaxps ymm5, ymm5, ymm15",
            "vmaxps ymm6, ymm6, ymm15",
            "vmaxps ymm7, ymm7, ymm15",
            "vmaxps ymm8, ymm8, ymm15",
            "vmaxps ymm9, ymm9, ymm15",
            "vmaxps ymm10, ymm10, ymm15",
            "vmaxps ymm11, ymm11, ymm15",
            "7:",
            "vmovups [{o} + 0], ymm0", "vmovups [{o} + 32], ymm1",
            "vmovups [{o} + 128], ymm2", "vmovups [{o} + 160], ymm3",
            "vmovups [{o} + 256], ymm4", "vmovups [{o} + 288], ymm5",
            "vmovups [{o} + 384], ymm6", "vmovups [{o} + 416], ymm7",
            "vmovups [{o} + 512], ymm8", "vmovups [{o} + 544], ymm9",
            "vmovups [{o} + 640], ymm10", "vmovups [{o} + 672], ymm11",
            "add {x}, 768",
            "add {o}, 768",
            "dec {n}",
            "jnz 2b",
            x = inout(reg) x => _,
            o = inout(reg) out => _,
            n = inout(reg) tiles => _,
            p = in(reg) p,
            t = out(reg) _,
            w = out(reg) _,
            xt = out(reg) _,
            c = out(reg) _,
            xp = out(reg) _,
            wp = out(reg) _,
            out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _, out("ymm4") _, out("ymm5") _, out("ymm6") _, out("ymm7") _, out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _, out("ymm12") _, out("ymm13") _, out("ymm14") _, out("ymm15") _,
            options(nostack),
        );
    }

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Start {
        Bias,
        BiasPlusOut,
        Out,
    }

    struct Group {
        t0: usize,
        t1: usize,
        d: usize,
        start: Start,
        relu: bool,
    }

    /// `R` output rows × 16 channels: `inp` at the rows' first tap-0 input row, `w`, `b` and
    /// `out` already offset to the 16 channels' column.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn tile<const R: usize>(inp: *const f32, w: *const f32, b: *const f32, out: *mut f32, g: &Group) {
        let mut acc = [[_mm256_setzero_ps(); 2]; R];
        let (b0, b1) = (_mm256_loadu_ps(b), _mm256_loadu_ps(b.add(8)));
        for (r, a) in acc.iter_mut().enumerate() {
            let o = out.add(r * WIDTH);
            *a = match g.start {
                Start::Bias => [b0, b1],
                Start::BiasPlusOut => [
                    _mm256_add_ps(b0, _mm256_loadu_ps(o)),
                    _mm256_add_ps(b1, _mm256_loadu_ps(o.add(8))),
                ],
                Start::Out => [_mm256_loadu_ps(o), _mm256_loadu_ps(o.add(8))],
            };
        }
        for t in g.t0..g.t1 {
            let wt = w.add(t * WIDTH * WIDTH);
            let x = inp.add(t * g.d * WIDTH);
            for c in 0..WIDTH {
                let w0 = _mm256_loadu_ps(wt.add(c * WIDTH));
                let w1 = _mm256_loadu_ps(wt.add(c * WIDTH + 8));
                for (r, a) in acc.iter_mut().enumerate() {
                    let v = _mm256_broadcast_ss(&*x.add(r * WIDTH + c));
                    a[0] = _mm256_fmadd_ps(v, w0, a[0]);
                    a[1] = _mm256_fmadd_ps(v, w1, a[1]);
                }
            }
        }
        if g.relu {
            let z = _mm256_setzero_ps();
            for a in acc.iter_mut() {
                a[0] = _mm256_max_ps(a[0], z);
                a[1] = _mm256_max_ps(a[1], z);
            }
        }
        for (r, a) in acc.iter().enumerate() {
            let o = out.add(r * WIDTH);
            _mm256_storeu_ps(o, a[0]);
            _mm256_storeu_ps(o.add(8), a[1]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn random(n: usize, rng: &mut impl Rng) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    /// The definition, term by term in f64.
    fn naive(inp: &[f32], first: usize, cw: &ConvWeights, out: &mut [f32], init: Init, relu: bool) {
        for r in 0..out.len() / cw.cout {
            for o in 0..cw.cout {
                let mut s = cw.b[o] as f64;
                if init == Init::BiasPlusOut {
                    s += out[r * cw.cout + o] as f64;
                }
                for t in 0..cw.k {
                    for c in 0..cw.cin {
                        s += inp[(first + r + t * cw.d) * cw.cin + c] as f64
                            * cw.w[(t * cw.cin + c) * cw.cout + o] as f64;
                    }
                }
                out[r * cw.cout + o] = if relu { s.max(0.0) as f32 } else { s as f32 };
            }
        }
    }

    #[test]
    fn kernels_agree_with_the_definition() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for (k, d, rows, first) in [
            (11, 1, 37, 0),
            (41, 25, 13, 5),
            (21, 10, 6, 2),
            (1, 1, 5, 3),
            (5, 4, 1, 0),
        ] {
            let cw = ConvWeights {
                k,
                d,
                cin: WIDTH,
                cout: WIDTH,
                w: random(k * WIDTH * WIDTH, &mut rng),
                b: random(WIDTH, &mut rng),
            };
            let inp = random((first + rows + (k - 1) * d) * WIDTH, &mut rng);
            let start = random(rows * WIDTH, &mut rng);
            for init in [Init::Bias, Init::BiasPlusOut] {
                for relu in [false, true] {
                    let mut want = start.clone();
                    naive(&inp, first, &cw, &mut want, init, relu);
                    let mut fast = start.clone();
                    conv(&inp, first, &cw, &mut fast, init, relu);
                    let mut plain = start.clone();
                    conv_portable(&inp, first, &cw, &mut plain, init, relu);
                    for (name, got) in [("dispatched", &fast), ("portable", &plain)] {
                        let err = got
                            .iter()
                            .zip(&want)
                            .map(|(a, b)| (a - b).abs())
                            .fold(0f32, f32::max);
                        assert!(err < 1e-4, "{name} k={k} d={d} {init:?} relu={relu}: {err}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_row_is_the_same_bits_in_any_block() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        let cw = ConvWeights {
            k: 9,
            d: 3,
            cin: WIDTH,
            cout: WIDTH,
            w: random(9 * WIDTH * WIDTH, &mut rng),
            b: random(WIDTH, &mut rng),
        };
        let rows = 50;
        let inp = random((rows + 8 * 3) * WIDTH, &mut rng);
        let mut whole = vec![0f32; rows * WIDTH];
        conv(&inp, 0, &cw, &mut whole, Init::Bias, true);
        for split in [1, 7, 13] {
            let mut parts = vec![0f32; rows * WIDTH];
            for (i, block) in parts.chunks_mut(split * WIDTH).enumerate() {
                conv(&inp, i * split, &cw, block, Init::Bias, true);
            }
            assert_eq!(parts, whole, "blocks of {split}");
        }
    }
}
