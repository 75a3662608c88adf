//! A run that fails or is killed leaves the previous results byte for byte; what killed runs
//! leave behind is cleaned up by the next run, which says so. See docs/reliability.md.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::*;

/// A first run's results in `dir/out`, and the config that made them.
fn first_run(dir: &Path) -> (PathBuf, BTreeMap<String, Vec<u8>>) {
    let data = synth_small(dir, 15);
    let cfg = cv_config(dir, &data, "");
    let (code, _, err) = run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let before = files_of(&dir.join("out"));
    assert!(before.contains_key("model_bundle.json"), "{:?}", before.keys());
    (cfg, before)
}

/// Kills a second run (`--overwrite`, other parameters, so that every output would differ)
/// at `point` and checks that the first run's results are untouched; then that the next run
/// removes what the killed one left, says so, and succeeds.
fn killed_at_leaves_previous_results(point: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, before) = first_run(dir.path());
    let out = dir.path().join("out");
    let args = [
        "run",
        cfg.to_str().unwrap(),
        "--overwrite",
        "--set",
        "train.n_estimators=5",
    ];
    let mut running = match start_paused(&args, point) {
        Ok(r) => r,
        Err((code, err)) => {
            // Today's code has no pause points: the run went to its end.
            assert_eq!(
                files_of(&out),
                before,
                "the run (exit {code}) replaced the results: {err}"
            );
            panic!("the run never paused at `{point}` (exit {code}): {err}");
        }
    };
    let pid = running.0.id();
    running.0.kill().unwrap();
    running.0.wait().unwrap();
    assert_eq!(
        files_of(&out),
        before,
        "killed at `{point}`: the previous results changed"
    );
    let staging = format!(".staging-{pid}");
    assert!(hidden_in(&out).contains(&staging), "{:?}", hidden_in(&out));

    let (code, _, err) = run(&["run", cfg.to_str().unwrap(), "--overwrite"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let note = err
        .lines()
        .find(|l| l.starts_with("note: removed") && l.contains(&staging))
        .unwrap_or_else(|| panic!("the leftover staging directory is not reported: {err}"));
    assert!(note.contains("interrupted run"), "{note}");
    assert!(hidden_in(&out).is_empty(), "{:?}", hidden_in(&out));
    let after = files_of(&out);
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    assert!(
        after["oof_predictions.parquet"] == before["oof_predictions.parquet"],
        "the same config gives the same predictions"
    );
}

#[test]
fn kill_during_fold_training_leaves_previous_results_byte_identical() {
    killed_at_leaves_previous_results("fold");
}

#[test]
fn kill_just_after_oof_predictions_are_written_leaves_previous_results_byte_identical() {
    killed_at_leaves_previous_results("oof");
}

#[test]
fn kill_during_the_refit_leaves_previous_results_byte_identical() {
    killed_at_leaves_previous_results("refit");
}

#[test]
fn full_disk_during_an_overwrite_exits_2_naming_the_file_and_keeps_previous_results() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, before) = first_run(dir.path());
    let out = dir.path().join("out");
    // The binned cache is reused; of the outputs, the predictions fit and the bundle does not.
    assert!(before["oof_predictions.parquet"].len() < 20_000);
    assert!(before["model_bundle.json"].len() > 20_000);
    let (code, _, err) = run_cmd(
        with_file_size_limit(20_000),
        &[
            "run",
            cfg.to_str().unwrap(),
            "--overwrite",
            "--set",
            "train.n_estimators=7",
        ],
    );
    assert!(
        files_of(&out) == before,
        "the previous results changed (exit {code}): {err}"
    );
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let line = err.trim();
    assert!(line.starts_with(&format!("error: {}", out.display())), "{line}");
    assert!(
        line.contains("model_bundle.json: cannot write: File too large"),
        "{line}"
    );
    assert!(line.contains("ulimit -f"), "{line}");
    assert!(hidden_in(&out).is_empty(), "left behind: {:?}", hidden_in(&out));
}

#[test]
fn failed_overwrite_leaves_previous_results_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, before) = first_run(dir.path());
    let out = dir.path().join("out");
    let (code, _, err) = run(&[
        "run",
        cfg.to_str().unwrap(),
        "--overwrite",
        "--set",
        "train.n_estimators=5",
        "--set",
        "cv.ensemble_size=100",
    ]);
    assert!(
        files_of(&out) == before,
        "the failed run changed the previous results (exit {code}): {err}"
    );
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("lower `cv.ensemble_size` to "), "{err}");
    assert!(hidden_in(&out).is_empty(), "left behind: {:?}", hidden_in(&out));
}

#[test]
fn publication_interrupted_by_a_kill_is_completed_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, before) = first_run(dir.path());
    let out = dir.path().join("out");
    let args = [
        "run",
        cfg.to_str().unwrap(),
        "--overwrite",
        "--set",
        "train.n_estimators=5",
    ];
    let mut running = start_paused(&args, "publish").expect("the run pauses while publishing");
    let pid = running.0.id();
    running.0.kill().unwrap();
    running.0.wait().unwrap();
    let staging = out.join(format!(".staging-{pid}"));
    assert!(staging.join(".publish.json").exists());
    // What the killed run would have published: its staged files over the previous ones.
    let mut expected = files_of(&out);
    expected.extend(files_of(&staging));
    assert_ne!(expected, before);

    // Even a run that then refuses to touch the results finishes the publication first.
    let (code, _, err) = run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.lines()
            .any(|l| l.starts_with("note: finished publishing") && l.contains(&format!(".staging-{pid}"))),
        "{err}"
    );
    assert!(err.contains("holds a previous cross-validation run"), "{err}");
    assert_eq!(
        files_of(&out),
        expected,
        "the results are not the killed run's, whole"
    );
    assert!(hidden_in(&out).is_empty(), "left behind: {:?}", hidden_in(&out));
    let bundle = String::from_utf8(expected["model_bundle.json"].clone()).unwrap();
    assert!(bundle.contains("n_estimators = 5"));
}

/// Sets the modification time of `path`.
fn set_mtime(path: &Path, t: SystemTime) {
    use std::os::unix::ffi::OsStrExt;
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    let ts = libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as _,
    };
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid C string and two valid timespecs.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), [ts, ts].as_ptr(), 0) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
}

/// The pid of a process that has ended.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

#[test]
fn leftovers_of_dead_runs_are_removed_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth_small(dir.path(), 15);
    // With [synth], the run also looks beside the dataset (which exists, so is kept).
    let cfg = cv_config(dir.path(), &data, "");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{text}\n[synth]\ngenes = 15\n")).unwrap();
    let out = dir.path().join("out");
    let cache = out.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let in_an_hour = SystemTime::now() + Duration::from_secs(3600);
    let dead = dead_pid();
    let live = std::process::id();

    let staging = out.join(format!(".staging-{dead}"));
    std::fs::create_dir(&staging).unwrap();
    std::fs::write(staging.join("oof_predictions.parquet"), b"half").unwrap();
    let dead_tmp = out.join(format!(".spliceboost-{dead}-aB3dE9.tmp"));
    let live_tmp = out.join(format!(".spliceboost-{live}-aB3dE9.tmp"));
    let old_tmp = out.join(".spliceboost-Zz9Yy8.tmp");
    let mine = out.join(".spliceboost-notes.tmp");
    for f in [&dead_tmp, &live_tmp, &old_tmp, &mine] {
        std::fs::write(f, b"x").unwrap();
    }
    set_mtime(&old_tmp, hour_ago);
    set_mtime(&mine, hour_ago);
    let old_cache = cache.join(".cache-Qw3rTy");
    let busy_cache = cache.join(".cache-Bz7Kq1");
    for d in [&old_cache, &busy_cache] {
        std::fs::create_dir(d).unwrap();
        std::fs::write(d.join("bins.bin"), b"pages").unwrap();
        set_mtime(&d.join("bins.bin"), hour_ago);
        set_mtime(d, hour_ago);
    }
    // Another run is still writing this one.
    set_mtime(&busy_cache.join("bins.bin"), in_an_hour);
    let old_synth = dir.path().join(".synth-Mn4Op5");
    std::fs::create_dir_all(old_synth.join("master")).unwrap();
    set_mtime(&old_synth.join("master"), hour_ago);
    set_mtime(&old_synth, hour_ago);

    let (code, _, err) = run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let notes: Vec<&str> = err.lines().filter(|l| l.starts_with("note: removed")).collect();
    for gone in [&staging, &dead_tmp, &old_tmp, &old_cache, &old_synth] {
        assert!(!gone.exists(), "{} was kept", gone.display());
        assert!(
            notes.iter().any(|n| n.contains(&format!("{} ", gone.display()))
                || n.contains(&format!("{},", gone.display()))),
            "removing {} is not reported: {err}",
            gone.display()
        );
    }
    assert_eq!(notes.len(), 5, "{err}");
    for kept in [&live_tmp, &mine, &busy_cache] {
        assert!(kept.exists(), "{} was removed", kept.display());
    }
    assert!(
        notes
            .iter()
            .any(|n| n.contains(&format!("process {dead} is gone"))),
        "{err}"
    );
}

#[test]
fn second_run_on_the_same_out_dir_is_refused_while_the_first_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, before) = first_run(dir.path());
    let out = dir.path().join("out");
    let args = ["run", cfg.to_str().unwrap(), "--overwrite"];
    let first = start_paused(&args, "fold").expect("the first run pauses");
    let (code, _, err) = run(&args);
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("another spliceboost run is writing to this output directory"),
        "{err}"
    );
    assert!(err.contains(&out.display().to_string()), "{err}");
    let pid = first.0.id();
    assert!(
        hidden_in(&out).contains(&format!(".staging-{pid}")),
        "the second run removed the first one's staging directory"
    );
    drop(first);
    assert_eq!(files_of(&out), before);
}

/// The checkpoint files in the binned cache under `out`.
fn checkpoints_under(out: &Path) -> Vec<PathBuf> {
    let mut found = vec![];
    for cache in std::fs::read_dir(out.join("cache")).unwrap().flatten() {
        for f in std::fs::read_dir(cache.path()).unwrap().flatten() {
            if f.file_name().to_string_lossy().starts_with("checkpoint-") {
                found.push(f.path());
            }
        }
    }
    found
}

/// model.json with the log's seconds zeroed: the only numbers that differ between two runs.
fn model_without_timings(path: &Path) -> String {
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    for it in m["log"].as_array_mut().unwrap() {
        it["seconds"] = serde_json::Value::from(0);
    }
    m.to_string()
}

#[test]
fn a_training_killed_between_trees_resumes_from_its_checkpoint_and_ends_with_the_same_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = synth_small(d, 15);
    let config = |name: &str| {
        let path = d.join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "[run]\nout_dir = {:?}\nprogress = false\n[dataset]\npath = {:?}\n[memory]\ntotal = \"1GiB\"\n\
                 [train]\nclass = \"acceptor\"\nn_estimators = 14\nmax_depth = 3\nsubsample = 0.8\n\
                 colsample_bytree = 0.8\nearly_stopping_rounds = 20\ncheckpoint_every = 4\n",
                d.join(name).display().to_string(),
                data.display().to_string()
            ),
        )
        .unwrap();
        path
    };
    let (a, b) = (config("a"), config("b"));
    let (code, _, err) = run(&["train", a.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        checkpoints_under(&d.join("a")),
        Vec::<PathBuf>::new(),
        "a finished training leaves none"
    );

    // Killed just after its first checkpoint (4 trees), while it grows the fifth.
    let running =
        start_paused(&["train", b.to_str().unwrap()], "checkpoint").expect("pauses at the checkpoint");
    drop(running);
    assert_eq!(checkpoints_under(&d.join("b")).len(), 1);
    let (code, _, err) = run(&["train", b.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("note: 4 trees taken from the checkpoint of an interrupted run"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(d.join("a/model.xgb.json")).unwrap(),
        std::fs::read(d.join("b/model.xgb.json")).unwrap()
    );
    assert_eq!(
        model_without_timings(&d.join("a/model.json")),
        model_without_timings(&d.join("b/model.json"))
    );
    assert_eq!(checkpoints_under(&d.join("b")), Vec::<PathBuf>::new());
}

/// Hidden entries (`.cache-…`, `.staging-…`) anywhere under `dir`.
fn hidden_under(dir: &Path) -> Vec<String> {
    let mut found = vec![];
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            found.push(name);
        } else if e.path().is_dir() {
            found.extend(hidden_under(&e.path()));
        }
    }
    found
}

/// Runs the small cross-validation (with `sets`) uninterrupted into `a`; then into `b`,
/// killed at `point` (`left` checks what the kill left in `b`) and run again. Checks that
/// `b`'s results are `a`'s byte for byte and returns the second run's stderr.
fn killed_at_then_rerun_gives_the_uninterrupted_results(
    point: &str,
    sets: &[&str],
    left: impl Fn(&Path),
) -> String {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let data = synth_small(d, 15);
    let cfg = cv_config(d, &data, "");
    let args = |out: &str| {
        let mut v = vec![
            "run".to_string(),
            cfg.to_str().unwrap().to_string(),
            "--set".into(),
            format!("run.out_dir={:?}", d.join(out).display().to_string()),
        ];
        for s in sets {
            v.extend(["--set".to_string(), s.to_string()]);
        }
        v
    };
    let a = args("a");
    let (code, _, err) = run(&a.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "{err}");

    let b = args("b");
    let b: Vec<&str> = b.iter().map(String::as_str).collect();
    kill_at(&b, point);
    left(&d.join("b"));
    let (code, _, err) = run(&b);
    assert_eq!(code, 0, "{err}");
    for f in [
        "oof_predictions.parquet",
        "metrics_aggregate.json",
        "feature_importance.tsv",
    ] {
        assert!(
            std::fs::read(d.join("a").join(f)).unwrap() == std::fs::read(d.join("b").join(f)).unwrap(),
            "{f} differs"
        );
    }
    assert_eq!(hidden_under(&d.join("b")), Vec::<String>::new());
    assert_eq!(checkpoints_under(&d.join("b")), Vec::<PathBuf>::new());
    err
}

#[test]
fn a_cross_validation_killed_after_a_fold_model_reuses_it_and_writes_the_same_results() {
    let err =
        killed_at_then_rerun_gives_the_uninterrupted_results("fold", &["train.checkpoint_every=3"], |_| {});
    assert!(
        err.lines().any(|l| l.starts_with("note: fold 1/3 neither: ")
            && l.ends_with("trees taken from the checkpoint of an interrupted run")),
        "{err}"
    );
}

#[test]
fn a_run_killed_after_the_sketch_starts_again_and_gives_the_same_results() {
    killed_at_then_rerun_gives_the_uninterrupted_results("sketch", &[], |b| {
        assert_eq!(
            hidden_under(b)
                .iter()
                .filter(|n| n.starts_with(".cache-"))
                .count(),
            0
        );
    });
}

#[test]
fn a_run_killed_while_binning_removes_the_half_built_cache_and_gives_the_same_results() {
    let err = killed_at_then_rerun_gives_the_uninterrupted_results("bin", &[], |b| {
        let half = hidden_under(b);
        assert!(half.iter().any(|n| n.starts_with(".cache-")), "{half:?}");
    });
    assert!(
        err.lines().any(|l| l.starts_with("note: removed")
            && l.contains(".cache-")
            && l.contains("interrupted run")),
        "{err}"
    );
}
