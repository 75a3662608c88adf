//! Runs that must fail before they work, with exit code 2, no panic and one line naming the
//! file (row, column) or config key and the fix; and the I/O failures of the user's machine
//! (a full disk, a file-size limit, a missing permission), reported the same way.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// The one error line of a failed run, after any warnings and notes.
fn one_error(code: i32, want: i32, err: &str) -> String {
    assert_eq!(code, want, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "one error line: {err}");
    assert!(
        err.lines()
            .all(|l| l.starts_with("error:") || l.starts_with("warning:") || l.starts_with("note:")),
        "nothing but the error, warnings and notes: {err}"
    );
    errors[0].to_string()
}

/// Runs without `--quiet`, so that every fold model trained would say so on stderr.
fn run_loud(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn scan_budget_too_small_for_the_outputs_is_refused_before_any_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth_small(dir.path(), 9);
    let cfg = cv_config(dir.path(), &data, "");
    let (code, _, err) = run(&["run", cfg.to_str().unwrap(), "--set", "memory.scan=64KiB"]);
    let line = one_error(code, 2, &err);
    assert!(line.contains("oof_predictions.parquet"), "{line}");
    assert!(line.contains("--set memory.scan=32MiB"), "{line}");
    assert!(
        !dir.path().join("out/cache").exists(),
        "the binned cache was built: work began before the refusal"
    );
}

#[test]
fn ensemble_larger_than_the_genes_is_refused_naming_the_key_before_any_model() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth_small(dir.path(), 15);
    let cfg = cv_config(dir.path(), &data, "ensemble_size = 100");
    let (code, _, err) = run_loud(&["run", cfg.to_str().unwrap()]);
    assert!(!err.contains("fold 1/3"), "a fold model trained first: {err}");
    let line = one_error(code, 2, &err);
    assert!(line.contains("`cv.ensemble_size` = 100"), "{line}");
    assert!(line.contains("15 genes"), "{line}");
    assert!(line.contains("the largest size below 100"), "{line}");
    assert!(!dir.path().join("out/model_bundle.json").exists());
}

#[test]
fn ensemble_leaving_a_sub_model_without_a_class_is_refused_with_a_size_that_works() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth_small(dir.path(), 15);
    let cfg = cv_config(dir.path(), &data, "ensemble_size = 12");
    let (code, _, err) = run_loud(&["run", cfg.to_str().unwrap()]);
    assert!(!err.contains("fold 1/3"), "a fold model trained first: {err}");
    let line = one_error(code, 2, &err);
    assert!(line.contains("`cv.ensemble_size` = 12"), "{line}");
    let best: usize = line
        .split("lower `cv.ensemble_size` to ")
        .nth(1)
        .and_then(|s| s.split(',').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no size suggested: {line}"));
    assert!(best < 12, "{line}");
    // The size suggested works.
    let (code, _, err) = run(&[
        "run",
        cfg.to_str().unwrap(),
        "--set",
        &format!("cv.ensemble_size={best}"),
    ]);
    assert_eq!(code, 0, "{err}");
}

/// A command that runs as an unprivileged user when the tests run as root (whom
/// permissions do not stop), with `dir` opened up for it to read.
fn unprivileged(dir: &Path) -> Command {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(bin());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        for entry in walk(dir) {
            let mode = if entry.is_dir() { 0o755 } else { 0o644 };
            if std::fs::symlink_metadata(&entry).unwrap().permissions().mode() & 0o777 != 0o555 {
                std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(mode)).unwrap();
            }
        }
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(65534) != 0
                    || libc::setuid(65534) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    if dir.is_dir() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            out.extend(walk(&e.path()));
        }
    }
    out
}

#[test]
fn unwritable_out_dir_is_refused_before_any_model_naming_it() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = synth_small(dir.path(), 9);
    let cfg = cv_config(dir.path(), &data, "");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o555)).unwrap();
    let cmd = unprivileged(dir.path());
    let (code, _, err) = run_cmd(cmd, &["run", cfg.to_str().unwrap()]);
    let line = one_error(code, 2, &err);
    assert!(line.contains(&format!("error: {}:", out.display())), "{line}");
    assert!(line.contains("Permission denied"), "{line}");
    assert!(line.contains("run.out_dir"), "{line}");
    assert!(
        std::fs::read_dir(&out).unwrap().next().is_none(),
        "nothing written"
    );
}

#[test]
fn memory_total_too_small_suggests_raising_the_total_too() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth_small(dir.path(), 15);
    let cfg = cv_config(dir.path(), &data, "");
    let (code, _, err) = run(&["run", cfg.to_str().unwrap(), "--set", "memory.total=1MiB"]);
    let line = one_error(code, 2, &err);
    assert!(line.contains("`memory.total`"), "{line}");
    // The values suggested make a valid config.
    let sets: Vec<&str> = line
        .split("--set ")
        .skip(1)
        .map(|s| s.trim_end_matches(')').split_whitespace().next().unwrap())
        .collect();
    assert!(sets.iter().any(|s| s.starts_with("memory.total=")), "{line}");
    let mut args = vec![
        "check-config",
        cfg.to_str().unwrap(),
        "--set",
        "memory.total=1MiB",
    ];
    for s in &sets {
        args.extend(["--set", s]);
    }
    let (code, _, err) = run(&args);
    assert_eq!(code, 0, "the advice {sets:?} does not validate: {err}");
}

#[test]
fn oversized_size_is_refused_rather_than_saturated() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[memory]\ntotal = \"99999999999EiB\"\n").unwrap();
    let (code, _, err) = run(&["check-config", cfg.to_str().unwrap()]);
    let line = one_error(code, 2, &err);
    assert!(line.contains("c.toml:2:1: key `memory.total`"), "{line}");
    assert!(line.contains("more than 16 EiB"), "{line}");
}

#[test]
fn float_group_column_is_refused_naming_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth_small(dir.path(), 9);
    let cfg = cv_config(dir.path(), &data, "");
    let (code, _, err) = run(&["run", cfg.to_str().unwrap(), "--set", "dataset.group=donor_score"]);
    let line = one_error(code, 2, &err);
    assert!(line.contains("column `donor_score`"), "{line}");
    assert!(line.contains("batch_00001.parquet"), "{line}");
    assert!(line.contains("`dataset.group`"), "{line}");
}

#[test]
fn empty_out_dir_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth_small(dir.path(), 9);
    let cfg = cv_config(dir.path(), &data, "");
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let mut cmd = Command::new(bin());
    cmd.current_dir(&cwd);
    let (code, _, err) = run_cmd(cmd, &["run", cfg.to_str().unwrap(), "--set", "run.out_dir=\"\""]);
    let line = one_error(code, 2, &err);
    assert!(line.contains("key `run.out_dir`"), "{line}");
    assert!(
        std::fs::read_dir(&cwd).unwrap().next().is_none(),
        "something was written to the current directory"
    );
}

/// A cross-validation's bundle, for the predict tests.
fn bundle(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let data = synth_small(dir, 9);
    let cfg = cv_config(dir, &data, "");
    let (code, _, err) = run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    (data, dir.join("out/model_bundle.json"))
}

#[test]
fn predict_out_onto_a_dataset_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (data, model) = bundle(dir.path());
    let victim = data.join("master/batch_00002.parquet");
    let before = std::fs::read(&victim).unwrap();
    // Named another way than the dataset lists it.
    let out = data.join("master/../master/batch_00002.parquet");
    let (code, _, err) = run(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let line = one_error(code, 2, &err);
    assert!(line.contains("batch_00002.parquet"), "{line}");
    assert!(line.contains("--out"), "{line}");
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        before,
        "the dataset was overwritten"
    );
}

#[test]
fn predict_out_inside_the_dataset_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (data, model) = bundle(dir.path());
    let out = data.join("scores.parquet");
    let (code, _, err) = run(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let line = one_error(code, 2, &err);
    assert!(line.contains("inside the dataset directory"), "{line}");
    assert!(!out.exists(), "scores written into the dataset");
}

#[test]
fn file_size_limit_on_predict_out_is_reported_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (data, model) = bundle(dir.path());
    let out = dir.path().join("scores.parquet");
    let (code, _, err) = run_cmd(
        with_file_size_limit(2048),
        &[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--dataset",
            data.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let line = one_error(code, 2, &err);
    assert!(line.contains(&format!("error: {}:", out.display())), "{line}");
    assert!(line.contains("File too large"), "{line}");
    assert!(!out.exists());
    assert!(hidden_in(dir.path()).is_empty(), "a temporary file was left");
}

#[test]
fn missing_cache_file_is_rebuilt_or_named_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let data = synth_small(dir.path(), 9);
    let cfg = cv_config(dir.path(), &data, "");
    assert_eq!(run(&["run", cfg.to_str().unwrap()]).0, 0);
    let cache = std::fs::read_dir(dir.path().join("out/cache"))
        .unwrap()
        .flatten()
        .find(|e| e.file_type().unwrap().is_dir() && !e.file_name().to_string_lossy().starts_with('.'))
        .unwrap()
        .path();
    std::fs::remove_file(cache.join("labels.bin")).unwrap();
    let (code, _, err) = run(&["run", cfg.to_str().unwrap(), "--overwrite"]);
    assert!(!err.contains("panicked"), "{err}");
    if code == 0 {
        assert!(cache.join("labels.bin").exists(), "rebuilt: {err}");
    } else {
        let line = one_error(code, 2, &err);
        assert!(line.contains("labels.bin"), "{line}");
        assert!(line.contains("delete the cache directory"), "{line}");
    }
}

#[test]
fn all_nan_base_score_column_warns_and_skips_the_comparison() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut gene, mut label, mut x, mut ne, mut d, mut a) = (vec![], vec![], vec![], vec![], vec![], vec![]);
    for g in 0..12 {
        for r in 0..30 {
            gene.push(Some(format!("G{g:02}")));
            let l = match (g + r) % 5 {
                0 => Some("donor"),
                1 => Some("acceptor"),
                _ => None,
            };
            label.push(l);
            x.push(Some(
                ((g * 31 + r * 7) % 13) as f64 + if l.is_some() { 5.0 } else { 0.0 },
            ));
            ne.push(Some(0.5));
            d.push(Some(f64::NAN));
            a.push(Some(0.2));
        }
    }
    let gene: Vec<Option<&str>> = gene.iter().map(|g| g.as_deref()).collect();
    write_parquet(
        &data.join("a.parquet"),
        vec![
            ("gene_id", strings(&gene)),
            ("splice_type", strings(&label)),
            ("x", floats(&x)),
            ("neither_score", floats(&ne)),
            ("donor_score", floats(&d)),
            ("acceptor_score", floats(&a)),
        ],
    );
    let cfg = cv_config(dir.path(), &data, "");
    let (code, _, err) = run(&["run", cfg.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(warnings[0].contains("`donor_score`"), "{err}");
    assert!(warnings[0].contains("skipped"), "{err}");
    let agg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/metrics_aggregate.json")).unwrap())
            .unwrap();
    assert!(
        agg["pooled"].get("base_vs_meta").is_none(),
        "compared against NaN scores"
    );
    assert!(agg["pooled"].get("base").is_none());
    let html = std::fs::read_to_string(dir.path().join("out/report.html")).unwrap();
    assert!(
        html.contains("skipped: the base-model score column `donor_score`"),
        "the report does not say why"
    );
}
