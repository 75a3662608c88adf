//! `spliceboost sweep`: the configured job once per memory budget, for the memory-budget
//! experiments users run (which budget a job needs, what each stage costs, how time grows as
//! the budget shrinks).
//!
//! Each budget runs as its own child process (`spliceboost run`), so that one budget's heap,
//! page cache mappings and peak RSS never colour another's, and a budget that cannot run is
//! a row with its reason, not the end of the sweep. The stage budgets the config sets are
//! scaled in proportion to `memory.total`; unset ones take their usual share. Results go to
//! `<run.out_dir>/sweep/`: one run directory per budget, `sweep.tsv`, `sweep.json`, and
//! `sweep.html` with the two charts (also written as `sweep_time.svg` and `sweep_memory.svg`,
//! and as PNG).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::config::Config;
use crate::error::InputError;
use crate::memory::{fmt_bytes, Budget, RunSummary, StageRecord, STAGES};

/// The pooled out-of-fold figures of a cross-validation, which must not change with the
/// budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Headline {
    pub accuracy: f64,
    pub macro_f1: f64,
    /// Average precision of neither, donor and acceptor.
    pub average_precision: [f64; 3],
}

/// One budget's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRow {
    pub budget: String,
    pub budget_bytes: u64,
    /// `ok`, `refused` (a stage's budget too small: exit code 2) or `failed`.
    pub status: String,
    /// The child's error line when it did not finish.
    pub reason: Option<String>,
    /// Wall time of the child process.
    pub wall_seconds: f64,
    /// The child's run_summary.json (stages, peaks), when it finished.
    pub summary: Option<RunSummary>,
    pub metrics: Option<Headline>,
}

/// `sweep.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SweepReport {
    pub config: PathBuf,
    pub rows: Vec<SweepRow>,
    /// Whether every budget that finished gave the same headline metrics.
    pub metrics_equal: bool,
}

/// Parses `--budgets 128MiB,1GiB`.
pub fn parse_budgets(text: &str) -> Result<Vec<Budget>, String> {
    text.split(',')
        .map(|t| {
            toml::Value::String(t.trim().to_string())
                .try_into::<Budget>()
                .map_err(|e| format!("`{t}`: {e}"))
        })
        .collect()
}

/// Runs the sweep: `config` (with `sets` applied) under each budget, smallest first.
pub fn sweep(
    config: &Path,
    sets: &[String],
    budgets: Option<Vec<Budget>>,
    quiet: bool,
    overwrite: bool,
) -> anyhow::Result<()> {
    let cfg = Config::load(config, sets)?;
    let mut budgets = match budgets.or_else(|| cfg.sweep.as_ref().map(|s| s.budgets.clone())) {
        Some(b) if !b.is_empty() => b,
        _ => {
            return Err(InputError::new("no budgets to sweep")
                .file(config)
                .hint("pass --budgets 256MiB,1GiB or add `[sweep] budgets = [\"256MiB\", \"1GiB\"]`")
                .into())
        }
    };
    budgets.sort_by_key(|b| b.as_u64());
    budgets.dedup();
    let dir = cfg.run.out_dir.join("sweep");
    if dir.join("sweep.json").exists() && !overwrite {
        return Err(InputError::new("a previous sweep's results are there")
            .file(dir.join("sweep.json"))
            .hint("pass --overwrite to replace them, or set run.out_dir elsewhere")
            .into());
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| crate::error::io_error(&dir, "cannot create the sweep directory", &e))?;
    let exe = std::env::current_exe().context("cannot find the spliceboost executable")?;
    let mut rows = vec![];
    for b in &budgets {
        let row = one_budget(&exe, config, sets, &cfg, *b, &dir)?;
        if !quiet {
            eprintln!("{}", progress_line(&row));
        }
        rows.push(row);
    }
    let finished: Vec<&Headline> = rows.iter().filter_map(|r| r.metrics.as_ref()).collect();
    let metrics_equal = finished.windows(2).all(|w| w[0] == w[1]);
    if !metrics_equal {
        eprintln!(
            "warning: the headline metrics differ between budgets; a model must not depend on its budget"
        );
    }
    let report = SweepReport {
        config: config.to_path_buf(),
        rows,
        metrics_equal,
    };
    write_outputs(&dir, &report)?;
    if !quiet {
        eprintln!("wrote {}", dir.join("sweep.html").display());
    }
    Ok(())
}

/// The `--set`s that put the run under `total`: the total, and each stage budget the config
/// sets scaled in proportion (at least a byte).
pub fn scaled_sets(cfg: &Config, total: u64) -> Vec<String> {
    let from = cfg.memory.total.as_u64().max(1) as f64;
    let mut sets = vec![format!("memory.total={total}")];
    for stage in STAGES {
        if let Some(b) = cfg.memory.explicit(stage) {
            let scaled = ((b.as_u64() as f64) * total as f64 / from).floor().max(1.0) as u64;
            sets.push(format!("memory.{stage}={scaled}"));
        }
    }
    sets
}

fn one_budget(
    exe: &Path,
    config: &Path,
    sets: &[String],
    cfg: &Config,
    budget: Budget,
    dir: &Path,
) -> anyhow::Result<SweepRow> {
    let total = budget.as_u64();
    let name = budget.0.to_string().replace(' ', "");
    let out = dir.join(&name);
    let mut cmd = Command::new(exe);
    cmd.arg("run").arg(config).arg("--overwrite").arg("--quiet");
    let mut all: Vec<String> = sets.to_vec();
    all.extend(scaled_sets(cfg, total));
    all.push(format!(
        "run.out_dir={}",
        toml::Value::String(out.display().to_string())
    ));
    for s in &all {
        cmd.arg("--set").arg(s);
    }
    let t0 = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot start {}", exe.display()))?;
    let wall_seconds = t0.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&child.stderr);
    let reason = stderr
        .lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .map(str::to_string);
    let (status, summary, metrics) = match child.status.code() {
        Some(0) => {
            let summary: RunSummary = read_json(&out.join("run_summary.json"))?;
            let metrics = headline(&out.join("metrics_aggregate.json"))?;
            ("ok", Some(summary), metrics)
        }
        Some(2) if reason.as_deref().is_some_and(|r| r.contains("memory.")) => ("refused", None, None),
        _ => ("failed", None, None),
    };
    Ok(SweepRow {
        budget: name,
        budget_bytes: total,
        status: status.into(),
        reason: if status == "ok" {
            None
        } else {
            reason.or_else(|| Some(format!("exited with {}", child.status)))
        },
        wall_seconds,
        summary,
        metrics,
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("cannot parse {}", path.display()))
}

/// The pooled meta-model figures of a cross-validation's metrics_aggregate.json (none for a
/// job without cross-validation).
fn headline(path: &Path) -> anyhow::Result<Option<Headline>> {
    if !path.exists() {
        return Ok(None);
    }
    let v: serde_json::Value = read_json(path)?;
    let m = &v["pooled"]["meta"]["metrics"];
    let ap = |class: &str| {
        m["classes"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["class"] == class))
            .and_then(|c| c["average_precision"].as_f64())
            .unwrap_or(f64::NAN)
    };
    Ok(Some(Headline {
        accuracy: m["accuracy"].as_f64().unwrap_or(f64::NAN),
        macro_f1: m["macro_f1"].as_f64().unwrap_or(f64::NAN),
        average_precision: [ap("neither"), ap("donor"), ap("acceptor")],
    }))
}

fn progress_line(r: &SweepRow) -> String {
    match &r.summary {
        Some(s) => format!(
            "sweep {:>9}: ok in {:.1} s, peak reserved {}, peak RSS {}",
            r.budget,
            r.wall_seconds,
            fmt_bytes(s.peak_reserved_bytes),
            s.peak_rss_bytes.map_or("-".into(), fmt_bytes)
        ),
        None => format!(
            "sweep {:>9}: {} ({})",
            r.budget,
            r.status,
            r.reason.as_deref().unwrap_or("")
        ),
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or(String::new(), |v| v.to_string())
}

/// One line per budget and stage (stage `run` for the whole process), the reason on a
/// budget that did not finish.
fn tsv(report: &SweepReport) -> String {
    let mut t = String::from(
        "budget\tbudget_bytes\tstatus\tstage\tstage_budget_bytes\tpeak_reserved_bytes\tpeak_heap_bytes\tpeak_rss_bytes\tseconds\taccuracy\tmacro_f1\tap_neither\tap_donor\tap_acceptor\treason\n",
    );
    for r in &report.rows {
        let m = r.metrics.as_ref();
        let metric = |f: &dyn Fn(&Headline) -> f64| m.map_or(String::new(), |h| f(h).to_string());
        let tail = format!(
            "{}\t{}\t{}\t{}\t{}",
            metric(&|h| h.accuracy),
            metric(&|h| h.macro_f1),
            metric(&|h| h.average_precision[0]),
            metric(&|h| h.average_precision[1]),
            metric(&|h| h.average_precision[2]),
        );
        let reason = r.reason.as_deref().unwrap_or("").replace('\t', " ");
        let head = format!("{}\t{}\t{}", r.budget, r.budget_bytes, r.status);
        let Some(s) = &r.summary else {
            let _ = writeln!(t, "{head}\t\t\t\t\t\t{:.3}\t{tail}\t{reason}", r.wall_seconds);
            continue;
        };
        let mut line = |st: &StageRecord| {
            let _ = writeln!(
                t,
                "{head}\t{}\t{}\t{}\t{}\t{}\t{:.3}\t{tail}\t",
                st.name,
                st.budget_bytes,
                st.peak_reserved_bytes,
                opt(st.peak_heap_bytes),
                opt(st.peak_rss_bytes),
                st.seconds
            );
        };
        line(&StageRecord {
            name: "run".into(),
            budget_bytes: s.total_budget_bytes,
            peak_reserved_bytes: s.peak_reserved_bytes,
            peak_heap_bytes: s.peak_heap_bytes,
            peak_rss_bytes: s.peak_rss_bytes,
            seconds: r.wall_seconds,
        });
        s.stages.iter().for_each(&mut line);
    }
    t
}

/// Each stage's (budget in MiB, figure) points over the budgets that finished, and the
/// whole run's.
fn series(
    report: &SweepReport,
    figure: impl Fn(&StageRecord) -> Option<f64>,
) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut out: Vec<(String, Vec<(f64, f64)>)> = vec![];
    for r in &report.rows {
        let Some(s) = &r.summary else { continue };
        let x = r.budget_bytes as f64 / (1 << 20) as f64;
        for st in &s.stages {
            let Some(y) = figure(st) else { continue };
            match out.iter_mut().find(|(n, _)| *n == st.name) {
                Some((_, p)) => p.push((x, y)),
                None => out.push((st.name.clone(), vec![(x, y)])),
            }
        }
    }
    out
}

fn write_outputs(dir: &Path, report: &SweepReport) -> anyhow::Result<()> {
    use crate::io::write_bytes_atomic;
    use crate::report::html::{budget_chart, budget_chart_png, escape};
    write_bytes_atomic(&dir.join("sweep.tsv"), tsv(report).as_bytes())?;
    write_bytes_atomic(
        &dir.join("sweep.json"),
        serde_json::to_string_pretty(report)?.as_bytes(),
    )?;
    let mib = (1u64 << 20) as f64;
    let mut time = series(report, |s| Some(s.seconds));
    let wall: Vec<(f64, f64)> = report
        .rows
        .iter()
        .filter(|r| r.summary.is_some())
        .map(|r| (r.budget_bytes as f64 / mib, r.wall_seconds))
        .collect();
    time.insert(0, ("whole run (wall)".into(), wall));
    let memory = series(report, |s| s.peak_rss_bytes.map(|b| b as f64 / mib));
    let time_svg = budget_chart("Wall time per stage", "seconds", &time)?;
    let memory_svg = budget_chart("Peak RSS per stage", "MiB", &memory)?;
    write_bytes_atomic(&dir.join("sweep_time.svg"), time_svg.as_bytes())?;
    write_bytes_atomic(&dir.join("sweep_memory.svg"), memory_svg.as_bytes())?;
    write_bytes_atomic(
        &dir.join("sweep_time.png"),
        &budget_chart_png("Wall time per stage", "seconds", &time)?,
    )?;
    write_bytes_atomic(
        &dir.join("sweep_memory.png"),
        &budget_chart_png("Peak RSS per stage", "MiB", &memory)?,
    )?;
    let mut h = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>spliceboost sweep</title>\
         <style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head><body>\n",
    );
    let _ = writeln!(
        h,
        "<h1>Memory sweep of {}</h1>",
        escape(&report.config.display().to_string())
    );
    h.push_str("<table><tr><th>budget</th><th>status</th><th>wall s</th><th>peak reserved</th><th>peak RSS</th><th>accuracy</th><th>macro-F1</th><th>reason</th></tr>\n");
    for r in &report.rows {
        let s = r.summary.as_ref();
        let m = r.metrics.as_ref();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
            escape(&r.budget),
            r.status,
            r.wall_seconds,
            s.map_or("".into(), |s| fmt_bytes(s.peak_reserved_bytes)),
            s.and_then(|s| s.peak_rss_bytes).map_or("".into(), fmt_bytes),
            m.map_or("".into(), |m| format!("{:.5}", m.accuracy)),
            m.map_or("".into(), |m| format!("{:.5}", m.macro_f1)),
            escape(r.reason.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</table>\n");
    if !report.metrics_equal {
        h.push_str("<p><strong>The headline metrics differ between budgets.</strong></p>\n");
    }
    let _ = write!(
        h,
        "<figure>{time_svg}</figure>\n<figure>{memory_svg}</figure>\n</body></html>\n"
    );
    write_bytes_atomic(&dir.join("sweep.html"), h.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_stage_budgets_scale_with_the_total() {
        let cfg: Config =
            toml::from_str("[memory]\ntotal = \"512MiB\"\ntrain = \"128MiB\"\nscan = \"64MiB\"\n").unwrap();
        let sets = scaled_sets(&cfg, 128 << 20);
        assert_eq!(
            sets,
            [
                format!("memory.total={}", 128u64 << 20),
                format!("memory.scan={}", 16u64 << 20),
                format!("memory.train={}", 32u64 << 20),
            ]
        );
    }

    #[test]
    fn budgets_parse_with_units() {
        let b = parse_budgets("128MiB, 1GiB").unwrap();
        assert_eq!(
            b.iter().map(|b| b.as_u64()).collect::<Vec<_>>(),
            [128 << 20, 1 << 30]
        );
        assert!(parse_budgets("12 parsecs").is_err());
    }
}
