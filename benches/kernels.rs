//! Criterion benchmarks of the inner loops: histogram building from a binned page, binning
//! values, and the quantile sketch. `cargo bench --bench kernels`.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use spliceboost::binning::cache::{self, PageCache, PAGE_ROWS};
use spliceboost::binning::{sketch_dataset, FeatureBins, QuantileSketch};
use spliceboost::boost::hist::{page_features, Histogram, Packed};
use spliceboost::io::Dataset;
use spliceboost::memory::{MemoryConsumer, MemoryPool};
use spliceboost::run::config::DatasetConfig;
use spliceboost::synth::{write_dataset, SynthOptions};

/// One full page (16,384 rows × 128 features) of a synthetic dataset, binned.
fn page_cache(dir: &std::path::Path) -> PageCache {
    let pool = Arc::new(MemoryPool::new(4 << 30));
    let mut res = MemoryConsumer::new("bench").register(&pool);
    let data = dir.join("d");
    let opts = SynthOptions {
        genes: PAGE_ROWS.div_ceil(250),
        ..SynthOptions::default()
    };
    write_dataset(&data, &opts, &mut res).unwrap();
    let ds = Dataset::open(&DatasetConfig {
        path: data,
        ..Default::default()
    })
    .unwrap();
    let cuts = sketch_dataset(&ds, 256, 2048, &mut res).unwrap();
    let fp = cache::fingerprint(&ds, 256, 2048);
    let m = cache::build(&ds, &cuts, &dir.join("c"), &fp, &mut res).unwrap();
    PageCache::open(&dir.join("c"), m).unwrap()
}

fn histogram(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let pc = page_cache(dir.path());
    let pf = page_features(&pc.layout, &pc.manifest.cuts);
    let nf = pc.manifest.cuts.features.len();
    let slots = *pf.offsets.last().unwrap();
    let mut buf = pc.page_slot();
    let page = pc.page(0, &mut buf).unwrap();
    let mut h = Histogram::zeros(slots);
    let mut g = c.benchmark_group("histogram");
    g.throughput(Throughput::Elements((page.rows * nf) as u64));
    let rows: Vec<u32> = (0..page.rows as u32).collect();
    let gh = vec![Packed::new(-3, 5); page.rows];
    let cols = pf.all_columns();
    g.bench_function("add_rows/one page, all features", |b| {
        b.iter(|| {
            h.clear();
            h.add_rows(&page, &pf, &cols, &rows, &gh);
            black_box(&h);
        })
    });
    let parent = h.clone();
    g.throughput(Throughput::Elements(slots as u64));
    g.bench_function("subtract/one node", |b| {
        b.iter(|| {
            let mut child = h.clone();
            child.subtract_from(&parent);
            black_box(child);
        })
    });
    g.finish();
}

fn binning(c: &mut Criterion) {
    let values: Vec<f32> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 8) as f32)
        .collect();
    let mut sorted = values.clone();
    sorted.sort_by(f32::total_cmp);
    let fb = FeatureBins {
        name: "x".into(),
        cuts: (1..256).map(|i| sorted[i * sorted.len() / 256]).collect(),
        has_missing: false,
        sparse: false,
        zero_bin: 0,
        present: 0,
        zeros: 0,
    };
    let mut g = c.benchmark_group("binning");
    g.throughput(Throughput::Elements(values.len() as u64));
    g.bench_function("bin/1M values, 256 bins", |b| {
        b.iter(|| black_box(values.iter().map(|&v| fb.bin(v) as u32).sum::<u32>()))
    });
    g.bench_function("sketch/insert 1M values, k=4096", |b| {
        b.iter(|| {
            let mut s = QuantileSketch::new(4096);
            for &v in &values {
                s.insert(v);
            }
            black_box(s.rank_error_bound())
        })
    });
    g.finish();
}

criterion_group!(benches, histogram, binning);
criterion_main!(benches);
