//! `spliceboost sweep`: the job once per budget in child processes, a budget that cannot run
//! reported with its reason, and the table, JSON and charts written.

mod common;

use common::*;

#[test]
fn sweep_runs_each_budget_and_reports_the_one_that_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth_small(dir.path(), 30);
    let cfg = cv_config(dir.path(), &data, "");
    let (code, _, err) = run(&["sweep", cfg.to_str().unwrap(), "--budgets", "2GiB,4MiB,1GiB"]);
    assert_eq!(code, 0, "{err}");
    let sweep = dir.path().join("out/sweep");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sweep.join("sweep.json")).unwrap()).unwrap();
    let rows = report["rows"].as_array().unwrap();
    let budgets: Vec<u64> = rows.iter().map(|r| r["budget_bytes"].as_u64().unwrap()).collect();
    assert_eq!(budgets, [4 << 20, 1 << 30, 2 << 30], "smallest first");
    assert_eq!(rows[0]["status"], "refused");
    assert!(
        rows[0]["reason"].as_str().unwrap().contains("memory."),
        "{}",
        rows[0]["reason"]
    );
    for r in &rows[1..] {
        assert_eq!(r["status"], "ok");
        // The figures are the child run's own: its summary and its pooled metrics.
        let out = sweep.join(r["budget"].as_str().unwrap());
        let summary: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("run_summary.json")).unwrap()).unwrap();
        assert_eq!(r["summary"], summary);
        assert_eq!(summary["total_budget_bytes"], r["budget_bytes"]);
        let metrics: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("metrics_aggregate.json")).unwrap()).unwrap();
        assert_eq!(
            r["metrics"]["accuracy"],
            metrics["pooled"]["meta"]["metrics"]["accuracy"]
        );
    }
    assert_eq!(
        report["metrics_equal"], true,
        "the model does not depend on the budget"
    );
    let tsv = std::fs::read_to_string(sweep.join("sweep.tsv")).unwrap();
    let stages: Vec<&str> = tsv
        .lines()
        .skip(1)
        .filter(|l| l.starts_with("1.0GiB\t"))
        .map(|l| l.split('\t').nth(3).unwrap())
        .collect();
    for s in ["run", "sketch", "bin", "train", "cv", "eval"] {
        assert!(stages.contains(&s), "stage {s} missing from {stages:?}");
    }
    let html = std::fs::read_to_string(sweep.join("sweep.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 2, "time and memory charts");
    for name in ["sweep_time.png", "sweep_memory.png"] {
        let (w, h, rgb) = read_png(&sweep.join(name));
        assert_eq!((w, h), (640, 400), "{name}");
        let count = |c: [u8; 3]| rgb.chunks(3).filter(|p| *p == c).count();
        // The first line (the whole run's wall time, or the first stage's RSS) in its
        // colour, and text (axis labels, title, legend) in black.
        assert!(count([0, 114, 178]) > 100, "{name}: no line drawn");
        assert!(count([0, 0, 0]) > 200, "{name}: no text drawn");
    }
    // A second sweep does not replace the first unless told to.
    let (code, _, err) = run(&["sweep", cfg.to_str().unwrap(), "--budgets", "1GiB"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--overwrite"), "{err}");
}

#[test]
fn sweep_without_budgets_says_how_to_give_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth_small(dir.path(), 10);
    let cfg = cv_config(dir.path(), &data, "");
    let (code, _, err) = run(&["sweep", cfg.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("--budgets") && err.lines().count() == 1, "{err}");
}

/// Width, height and RGB pixels of a PNG written by the sweep (8-bit RGB, filter type 0 on
/// every row, as the writer documents), read with nothing but zlib.
fn read_png(path: &std::path::Path) -> (u32, u32, Vec<u8>) {
    use std::io::Read as _;
    let png = std::fs::read(path).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    let (mut at, mut size, mut idat) = (8, (0, 0), vec![]);
    while at < png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let kind = &png[at + 4..at + 8];
        let data = &png[at + 8..at + 8 + len];
        if kind == b"IHDR" {
            size = (
                u32::from_be_bytes(data[..4].try_into().unwrap()),
                u32::from_be_bytes(data[4..8].try_into().unwrap()),
            );
            assert_eq!(&data[8..10], &[8, 2], "8-bit RGB");
        } else if kind == b"IDAT" {
            idat.extend_from_slice(data);
        }
        at += 12 + len;
    }
    let mut raw = vec![];
    flate2::read::ZlibDecoder::new(&idat[..])
        .read_to_end(&mut raw)
        .unwrap();
    let stride = size.0 as usize * 3 + 1;
    assert_eq!(raw.len(), stride * size.1 as usize);
    let rgb = raw
        .chunks(stride)
        .flat_map(|row| {
            assert_eq!(row[0], 0, "filter type 0");
            row[1..].to_vec()
        })
        .collect();
    (size.0, size.1, rgb)
}
