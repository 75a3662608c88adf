//! A scan of a dataset several times larger than its budget never holds more than the
//! budget: measured by the counting allocator. Alone in its file, so that no other test's
//! allocations share the process's counters.

use spliceboost::inspect::inspect;
use spliceboost::io::Dataset;
use spliceboost::memory::{MemoryConsumer, MemoryPool};
use spliceboost::run::config::Config;
use spliceboost::run::RunContext;
use spliceboost::synth::{write_dataset, SynthOptions};

#[test]
fn scan_of_larger_dataset_stays_within_budget() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let opts = SynthOptions {
        genes: 112,
        rows_per_gene: 250,
        genes_per_file: 8,
        ..SynthOptions::default()
    };
    let pool = std::sync::Arc::new(MemoryPool::new(1 << 30));
    let mut res = MemoryConsumer::new("synth").register(&pool);
    write_dataset(&data, &opts, &mut res).unwrap();
    drop(res);

    let budget = 8u64 << 20;
    let mut cfg = Config::from_overrides(&[format!("memory.scan={budget}")]).unwrap();
    cfg.dataset.path = data;
    let ds = Dataset::open(&cfg.dataset).unwrap();
    let decoded: u64 = ds.rows() * ds.schema.fields().len() as u64 * 8;
    assert!(
        decoded > 3 * budget,
        "the dataset ({decoded} bytes decoded) must dwarf the budget"
    );

    let ctx = RunContext::new(cfg, "test");
    let report = ctx.stage("scan", |res| inspect(&ds, res)).unwrap();
    assert_eq!(report.rows, 28_000);
    let stage = &ctx.summary().stages[0];
    let heap = stage.peak_heap_bytes.expect("counting allocator active");
    assert!(heap <= budget, "peak heap {heap} above the {budget}-byte budget");
    assert!(stage.peak_reserved_bytes <= budget);
    assert!(heap > budget / 8, "the scan used its budget ({heap} bytes)");
}
