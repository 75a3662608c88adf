//! The quantile sketch's measured heap stays within what the sketch stage reserves for it.
//! Alone in its test binary, and without libtest's harness (`harness = false`): the allocator
//! counters are process-wide, and the harness's own thread allocated now and then while the
//! sketch was measured (68 bytes over, one run in five).

use spliceboost::binning::QuantileSketch;
use spliceboost::memory;

fn main() {
    sketch_heap_stays_within_its_priced_bytes();
    println!("test sketch_heap_stays_within_its_priced_bytes ... ok");
}

fn sketch_heap_stays_within_its_priced_bytes() {
    if !memory::is_counting() {
        return;
    }
    for (k, n) in [(64usize, 1_000_000u64), (2048, 300_000), (8, 50_000)] {
        let base = memory::heap_reset_peak();
        let mut s = QuantileSketch::new(k);
        // A scrambled sequence, so that every compaction sees fresh values.
        let mut x = 0x9E37_79B9u32;
        for _ in 0..n {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            s.insert(x as f32);
        }
        let streaming = (memory::heap_peak() - base) as u64;
        let w = s.weighted();
        let with_cuts = (memory::heap_peak() - base) as u64;
        drop((s, w));
        let priced = QuantileSketch::max_bytes(k, n);
        assert!(
            streaming <= priced,
            "k {k}, n {n}: {streaming} bytes held, {priced} priced"
        );
        let priced = priced + QuantileSketch::weighted_bytes(k, n);
        assert!(
            with_cuts <= priced,
            "k {k}, n {n}: {with_cuts} bytes with the sorted copy, {priced} priced"
        );
    }
}
