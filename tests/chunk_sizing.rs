//! Batch sizing under proptest: a planned batch always fits, and refusals are right.

use proptest::prelude::*;
use spliceboost::io::{plan_batch_rows, MIN_BATCH_ROWS};

proptest! {
    #[test]
    fn planned_batch_fits_its_budget(
        available in 0u64..(1 << 34),
        fixed in 0u64..(1 << 28),
        row in 1u64..100_000,
        max_rows in 1usize..200_000,
    ) {
        match plan_batch_rows(available, fixed, row, max_rows) {
            Some(rows) => {
                prop_assert!(fixed + rows as u64 * row <= available);
                prop_assert!(rows <= max_rows);
                prop_assert!(rows >= MIN_BATCH_ROWS.min(max_rows));
                // Not needlessly small: one more row would not fit, or the cap was reached.
                prop_assert!(rows == max_rows || fixed + (rows as u64 + 1) * row > available);
            }
            None => {
                let min_rows = MIN_BATCH_ROWS.min(max_rows) as u64;
                prop_assert!(fixed + min_rows * row > available);
            }
        }
    }
}
