//! A mergeable, bounded-memory quantile sketch with a deterministic error bound.
//!
//! Values enter level 0. When a level holds `2k` values it is sorted and every other value
//! (alternating the offset, so that errors do not pile up on one side) moves to the level
//! above with twice the weight. Each such compaction at level `h` moves any rank estimate by
//! at most `2^h`, so the sketch knows its own worst-case rank error exactly
//! ([`QuantileSketch::rank_error_bound`]). Memory is under `2k` values a level and
//! `log2(n / k)` levels.
//!
//! A level holds values as their [`order_bits`]: integers that sort in the order of
//! [`f32::total_cmp`], so that compaction sorts plain `u32`s, where comparing floats took a
//! third of the sketch stage.

use crate::eval::curves::{from_order_bits, order_bits};

/// Per-sketch state: one buffer per level.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantileSketch {
    k: usize,
    /// Each level's values, as [`order_bits`].
    levels: Vec<Vec<u32>>,
    count: u64,
    error: u64,
    flip: bool,
}

impl QuantileSketch {
    /// A sketch that compacts a level when it reaches `2k` values.
    pub fn new(k: usize) -> Self {
        let k = k.max(8);
        Self {
            k,
            levels: vec![Vec::with_capacity(2 * k)],
            count: 0,
            error: 0,
            flip: false,
        }
    }

    /// Heap bytes a sketch of parameter `k` holds at most for `n` values: level 0 holds
    /// `2k` values, each level above `3k` (it can receive `k` values while just under `2k`),
    /// and compaction works in place, so nothing else is allocated.
    pub fn max_bytes(k: usize, n: u64) -> u64 {
        let levels = Self::max_levels(k, n);
        let k = k.max(8) as u64;
        // The level buffers, then the list of them (a `Vec` header each, doubling from 4).
        (2 * k + (levels - 1) * 3 * k) * 4 + levels.next_power_of_two().max(4) * 24 + 64
    }

    /// Heap bytes of [`Self::weighted`]'s result for a sketch of `k` over `n` values.
    pub fn weighted_bytes(k: usize, n: u64) -> u64 {
        Self::max_levels(k, n) * 2 * k.max(8) as u64 * 16
    }

    fn max_levels(k: usize, n: u64) -> u64 {
        (64 - (n / k.max(8) as u64).max(1).leading_zeros()) as u64 + 1
    }

    /// Adds a value (callers leave NaN out: it is a missing value, not a quantile).
    pub fn insert(&mut self, v: f32) {
        debug_assert!(!v.is_nan());
        self.count += 1;
        self.levels[0].push(order_bits(v));
        if self.levels[0].len() >= 2 * self.k {
            self.compact(0);
        }
    }

    /// Sorts level `h` in place and moves every other value up, leaving an odd one behind:
    /// no buffer is allocated beyond each level's own, made once at its full size.
    fn compact(&mut self, h: usize) {
        if self.levels.len() == h + 1 {
            self.levels.push(Vec::with_capacity(3 * self.k));
        }
        let (below, above) = self.levels.split_at_mut(h + 1);
        let (lvl, up) = (&mut below[h], &mut above[0]);
        lvl.sort_unstable();
        let offset = usize::from(self.flip);
        self.flip = !self.flip;
        // An odd leftover stays behind at full weight; the rest halves.
        let pairs = lvl.len() - lvl.len() % 2;
        up.extend(lvl[..pairs].iter().skip(offset).step_by(2));
        lvl.drain(..pairs);
        self.error += 1 << h;
        if self.levels[h + 1].len() >= 2 * self.k {
            self.compact(h + 1);
        }
    }

    /// Folds `other` in; the result answers for both inputs, with both error bounds added.
    pub fn merge(&mut self, other: &QuantileSketch) {
        self.count += other.count;
        self.error += other.error;
        for (h, lvl) in other.levels.iter().enumerate() {
            if self.levels.len() <= h {
                self.levels.push(Vec::new());
            }
            self.levels[h].extend_from_slice(lvl);
        }
        for h in 0..self.levels.len() {
            if self.levels[h].len() >= 2 * self.k {
                self.compact(h);
            }
        }
    }

    /// Values inserted.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The largest amount by which [`Self::rank`] can be off.
    pub fn rank_error_bound(&self) -> u64 {
        self.error
    }

    /// Estimated number of inserted values below `x`.
    pub fn rank(&self, x: f32) -> u64 {
        let x = order_bits(x);
        self.levels
            .iter()
            .enumerate()
            .map(|(h, l)| l.iter().filter(|&&v| v < x).count() as u64 * (1 << h))
            .sum()
    }

    /// The retained values with their weights, in ascending order.
    pub fn weighted(&self) -> Vec<(f32, u64)> {
        let mut all: Vec<(u32, u64)> = self
            .levels
            .iter()
            .enumerate()
            .flat_map(|(h, l)| l.iter().map(move |&v| (v, 1u64 << h)))
            .collect();
        all.sort_unstable_by_key(|&(v, _)| v);
        all.into_iter().map(|(v, w)| (from_order_bits(v), w)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_input_is_exact() {
        let mut s = QuantileSketch::new(64);
        for v in [5.0, 1.0, 3.0] {
            s.insert(v);
        }
        assert_eq!(s.rank_error_bound(), 0);
        assert_eq!(s.rank(3.0), 1);
        assert_eq!(s.rank(6.0), 3);
    }

    #[test]
    fn memory_stays_bounded() {
        let mut s = QuantileSketch::new(32);
        for i in 0..100_000 {
            s.insert((i * 7919 % 100_003) as f32);
        }
        let held: usize = s.levels.iter().map(Vec::len).sum();
        assert!(held <= 2 * 32 * s.levels.len());
        assert!(s.levels.len() <= 14);
    }
}
