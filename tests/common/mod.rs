//! Small datasets written on the spot for tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;

/// Writes one Parquet file from named columns.
pub fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|(_, a)| a).collect()).unwrap();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

pub fn strings(v: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}
pub fn floats(v: &[Option<f64>]) -> ArrayRef {
    Arc::new(Float64Array::from(v.to_vec()))
}
pub fn ints(v: &[i64]) -> ArrayRef {
    Arc::new(Int64Array::from(v.to_vec()))
}
pub fn ints32(v: &[i32]) -> ArrayRef {
    Arc::new(Int32Array::from(v.to_vec()))
}
pub fn bools(v: &[bool]) -> ArrayRef {
    Arc::new(BooleanArray::from(v.to_vec()))
}

/// A four-row MetaSpliceAI-style batch: labels, genes, metadata and features of every type,
/// with a null and a NaN.
pub fn tiny_batch(path: &Path) {
    write_parquet(path, tiny_columns());
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_spliceboost"))
}

/// Runs the binary; returns (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(bin()).args(args).arg("--quiet").output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// The error line with the temporary directory replaced, for snapshots.
pub fn redact(stderr: &str, dir: &Path) -> String {
    stderr.trim().replace(&dir.display().to_string(), "[dir]")
}

pub fn floats32(v: &[Option<f32>]) -> ArrayRef {
    Arc::new(Float32Array::from(v.to_vec()))
}

/// `values` as an Arrow dictionary with `key` indices: how pandas categoricals and some
/// writers store repeated values (the Parquet file then says so in its Arrow schema, and
/// readers hand back dictionary arrays).
pub fn dictionary(values: ArrayRef, key: DataType) -> ArrayRef {
    let dt = DataType::Dictionary(Box::new(key), Box::new(values.data_type().clone()));
    arrow::compute::cast(&values, &dt).unwrap()
}

/// The columns of [`tiny_batch`], to edit before [`write_parquet`].
pub fn tiny_columns() -> Vec<(&'static str, ArrayRef)> {
    vec![
        (
            "gene_id",
            strings(&[Some("g1"), Some("g1"), Some("g2"), Some("g2")]),
        ),
        (
            "splice_type",
            strings(&[Some("donor"), None, Some("acceptor"), Some("")]),
        ),
        (
            "pred_type",
            strings(&[Some("TP"), Some("TN"), Some("FN"), Some("TN")]),
        ),
        ("position", ints(&[10, 20, 30, 40])),
        (
            "donor_score",
            floats(&[Some(0.9), Some(0.1), None, Some(f64::NAN)]),
        ),
        (
            "acceptor_score",
            floats(&[Some(0.0), Some(0.1), Some(0.3), Some(0.0)]),
        ),
        ("num_exons", ints32(&[3, 3, 5, 5])),
        ("has_tx_info", bools(&[true, true, false, false])),
        ("3mer_AAA", ints(&[0, 1, 0, 2])),
    ]
}

/// Replaces (or appends) column `name` of `columns`.
pub fn set_column(columns: &mut Vec<(&'static str, ArrayRef)>, name: &'static str, array: ArrayRef) {
    match columns.iter_mut().find(|(n, _)| *n == name) {
        Some(c) => c.1 = array,
        None => columns.push((name, array)),
    }
}

/// Removes column `name` from `columns`.
pub fn drop_column(columns: &mut Vec<(&'static str, ArrayRef)>, name: &str) {
    columns.retain(|(n, _)| *n != name);
}

/// A synthetic MetaSpliceAI-layout dataset of `genes` genes × 60 rows in `dir/data`.
pub fn synth_small(dir: &Path, genes: usize) -> PathBuf {
    use spliceboost::memory::{MemoryConsumer, MemoryPool};
    let out = dir.join("data");
    let opts = spliceboost::synth::SynthOptions {
        genes,
        rows_per_gene: 60,
        kmer: 2,
        genes_per_file: 5,
        seed: 3,
        with_sequence: false,
    };
    let pool = Arc::new(MemoryPool::new(1 << 30));
    spliceboost::synth::write_dataset(&out, &opts, &mut MemoryConsumer::new("synth").register(&pool))
        .unwrap();
    out
}

/// A quick three-fold cross-validation config on `data`, results in `dir/out`; `extra`
/// goes at the end of the `[cv]` section.
pub fn cv_config(dir: &Path, data: &Path, extra: &str) -> PathBuf {
    let path = dir.join("cv.toml");
    std::fs::write(
        &path,
        format!(
            "[run]\nout_dir = {:?}\nprogress = false\n\n[dataset]\npath = {:?}\n\n[memory]\ntotal = \"1GiB\"\n\n\
             [train]\nn_estimators = 8\nmax_depth = 3\nlearning_rate = 0.3\nearly_stopping_rounds = 3\n\n\
             [cv]\nn_folds = 3\n{extra}\n",
            dir.join("out").display().to_string(),
            data.display().to_string()
        ),
    )
    .unwrap();
    path
}

/// Runs the binary (with `--quiet`) as `cmd` sets it up; returns (exit code, stdout,
/// stderr). An exit by signal is code -1.
pub fn run_cmd(mut cmd: Command, args: &[&str]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.args(args).arg("--quiet").output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// A command for the binary whose process may write no file larger than `bytes`
/// (`setrlimit(RLIMIT_FSIZE)`), as on a disk that fills up there. SIGXFSZ is left as the
/// test process has it: the binary itself must ignore it.
pub fn with_file_size_limit(bytes: u64) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(bin());
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: bytes as libc::rlim_t,
                rlim_max: bytes as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

/// Every regular, non-hidden file directly in `dir`, by name, with its bytes.
pub fn files_of(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect()
}

/// The hidden entries directly in `dir` (staging directories, temporary files).
pub fn hidden_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    v.sort();
    v
}

/// Kills the child (SIGKILL) when dropped, so a failing test leaves no process behind.
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `args` with `SPLICEBOOST_TEST_PAUSE_AT=point` and waits until the run says it
/// paused there; the error holds the exit code and stderr of a run that ended without
/// pausing.
pub fn start_paused(args: &[&str], point: &str) -> Result<Running, (i32, String)> {
    let mut child = std::process::Command::new(bin())
        .args(args)
        .arg("--quiet")
        .env("SPLICEBOOST_TEST_PAUSE_AT", point)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
        let line = line.unwrap();
        if line == format!("paused at {point}") {
            return Ok(Running(child));
        }
        seen.push_str(&line);
        seen.push('\n');
    }
    let code = child.wait().unwrap().code().unwrap_or(-1);
    Err((code, seen))
}

/// Runs `args` until it pauses at `point`, kills it there (SIGKILL) and returns its pid.
pub fn kill_at(args: &[&str], point: &str) -> u32 {
    let mut running = start_paused(args, point)
        .unwrap_or_else(|(code, err)| panic!("the run never paused at `{point}` (exit {code}): {err}"));
    let pid = running.0.id();
    running.0.kill().unwrap();
    running.0.wait().unwrap();
    pid
}

/// Kills `args`, a run writing batches into `dir` (cleared first each time), once just after
/// its first batch is listed and once with `second` (its second batch file) written under its
/// temporary name; checks that each rerun says `kept` on stdout, removes the killed run's
/// temporary file and ends with `whole`, the files of an uninterrupted run.
pub fn killed_between_and_inside_batches_resumes_to(
    args: &[&str],
    dir: &Path,
    second: &str,
    kept: &str,
    whole: &std::collections::BTreeMap<String, Vec<u8>>,
) {
    for point in ["batch".to_string(), format!("write {second}")] {
        std::fs::remove_dir_all(dir).unwrap();
        let pid = kill_at(args, &point);
        if point != "batch" {
            let tmp = format!(".spliceboost-{pid}-");
            assert!(
                hidden_in(dir).iter().any(|n| n.starts_with(&tmp)),
                "{:?}",
                hidden_in(dir)
            );
        }
        let (code, out, err) = run(args);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(kept), "killed at `{point}`: {out}");
        assert_eq!(&files_of(dir), whole, "killed at `{point}`");
        assert!(hidden_in(dir).is_empty(), "{:?}", hidden_in(dir));
    }
}
