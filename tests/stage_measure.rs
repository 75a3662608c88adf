//! Stage measurement reads the process-wide allocator counters, so it has a test binary of its
//! own: no other test allocates while it measures.

use spliceboost::memory::{self, MemoryConfig, Stages};

#[test]
fn an_outer_stage_reports_its_own_heap_and_the_run_reports_all() {
    if !memory::is_counting() {
        return;
    }
    const MIB: u64 = 1 << 20;
    let stages = Stages::new(MemoryConfig::default(), "test");
    stages
        .stage("cv", |_| {
            // Live through the inner stage: the outer stage's own memory.
            let held = vec![1u8; 4 << 20];
            std::hint::black_box(&held);
            stages.stage("train", |_| {
                let v = vec![1u8; 8 << 20];
                std::hint::black_box(&v);
                Ok(())
            })
        })
        .unwrap();
    let s = stages.summary();
    let heap = |name: &str| {
        s.stages
            .iter()
            .find(|r| r.name == name)
            .and_then(|r| r.peak_heap_bytes)
            .unwrap()
    };
    assert!(
        (8 * MIB..9 * MIB).contains(&heap("train")),
        "train {}",
        heap("train")
    );
    assert!(
        (4 * MIB..5 * MIB).contains(&heap("cv")),
        "cv {}: the inner stage's heap leaked in",
        heap("cv")
    );
    assert!(
        s.peak_heap_bytes.unwrap() >= 12 * MIB,
        "run {}",
        s.peak_heap_bytes.unwrap()
    );
}
