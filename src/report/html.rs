//! `report.html`: one page a person opens after a cross-validation run to judge the model.
//!
//! The JSON summaries serve scripts; someone deciding whether a meta-model beats the base scores
//! needs curves, confusion matrices and the memory picture side by side. The page has to open
//! anywhere the run's output is copied to (a laptop, an archive, a ticket), so it is one file:
//! inline CSS, charts as inline SVG drawn by plotters, no JavaScript and nothing fetched from the
//! network. Plotters is built without its `ttf` feature because the machines that produce reports
//! have no system font libraries; the SVG backend writes `<text>` elements and the browser lays
//! the text out with its own fonts, while plotters measures it with an embedded font
//! ([`super::png`], which also draws the sweep's PNG charts).
//!
//! Inputs are plain, pre-computed data so that the page does not depend on how the evaluation
//! computed them, and the tests can feed it made-up numbers.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use plotters::coord::combinators::WithKeyPoints;
use plotters::coord::types::RangedCoordi32;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{opt, StageRecord};
use crate::memory::fmt_bytes;

/// One line on a chart.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            points,
        }
    }
}

/// The curves of one class (one-vs-rest).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClassCurves {
    pub class: String,
    /// (false positive rate, true positive rate); the meta-model first, then the base scores if any.
    pub roc: Vec<Series>,
    /// (recall, precision), in the same order as `roc`.
    pub pr: Vec<Series>,
    /// (mean predicted probability, fraction positive) per bin; before, then after calibration.
    pub reliability: Vec<Series>,
}

/// A table row whose cells are already formatted, so the page does not decide precision.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetricRow {
    pub name: String,
    pub values: Vec<String>,
}

/// Rows are true classes, columns predicted ones, both in [`CLASS_LABELS`] order.
pub type Confusion = [[u64; 3]; 3];

/// The order of rows and columns in a [`Confusion`].
pub const CLASS_LABELS: [&str; 3] = ["neither", "donor", "acceptor"];

/// Everything the page shows. Table headers name every column, the row-name column included.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReportData {
    pub title: String,
    /// Key facts shown first: dataset, genes, rows, folds, budget, wall time and so on.
    pub summary: Vec<(String, String)>,
    /// Per-fold rows and the mean ± sd row.
    pub metrics_header: Vec<String>,
    pub metrics: Vec<MetricRow>,
    /// `None` when the dataset has no base scores; the page then says the comparison was skipped.
    pub base_vs_meta: Option<(Vec<String>, Vec<MetricRow>)>,
    pub curves: Vec<ClassCurves>,
    /// E.g. `("meta", m)`, `("base", m)`.
    pub confusion: Vec<(String, Confusion)>,
    /// Per class, features with their gain; the page sorts and keeps the top [`TOP_FEATURES`].
    pub importance: Vec<(String, Vec<(String, f64)>)>,
    pub stages: Vec<StageRecord>,
    pub config_toml: String,
}

/// More bars than this turn the importance chart into a wall nobody reads.
pub const TOP_FEATURES: usize = 20;

/// Renders the whole page.
pub fn render(data: &ReportData) -> anyhow::Result<String> {
    let mut h = String::with_capacity(512 * 1024);
    let title = escape(&data.title);
    // `write!` into a String cannot fail; the results are ignored throughout.
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );

    h.push_str("<section id=\"run\">\n<h2>Run</h2>\n<table class=\"kv\">\n");
    for (k, v) in &data.summary {
        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(v));
    }
    h.push_str("</table>\n</section>\n");

    h.push_str("<section id=\"metrics\">\n<h2>Cross-validation metrics</h2>\n");
    table(&mut h, &data.metrics_header, &data.metrics);
    h.push_str("</section>\n");

    h.push_str("<section id=\"base\">\n<h2>Meta-model vs base scores</h2>\n");
    match &data.base_vs_meta {
        Some((header, rows)) => table(&mut h, header, rows),
        None => h.push_str(
            "<p class=\"note\">Base comparison skipped: the dataset has no base scores, \
             so only the meta-model is shown.</p>\n",
        ),
    }
    h.push_str("</section>\n");

    h.push_str("<section id=\"curves\">\n<h2>Curves per class (one vs rest), and splice vs neither</h2>\n");
    if data.curves.is_empty() {
        h.push_str("<p class=\"note\">No curves were recorded.</p>\n");
    }
    for c in &data.curves {
        let class = c.class.as_str();
        let _ = writeln!(h, "<h3>{}</h3>\n<div class=\"charts\">", escape(class));
        let roc = curve_chart(
            &format!("ROC: {class}"),
            ("false positive rate", "true positive rate"),
            &c.roc,
            Some("chance"),
            false,
            SeriesLabelPosition::LowerRight,
        )
        .with_context(|| format!("drawing the ROC chart of {class}"))?;
        let pr = curve_chart(
            &format!("Precision-recall: {class}"),
            ("recall", "precision"),
            &c.pr,
            None,
            false,
            SeriesLabelPosition::LowerLeft,
        )
        .with_context(|| format!("drawing the PR chart of {class}"))?;
        for svg in [roc, pr] {
            figure(&mut h, &svg);
        }
        // Curves of summed probabilities (splice vs neither) have no reliability diagram.
        if !c.reliability.is_empty() {
            let rel = curve_chart(
                &format!("Reliability: {class}"),
                ("mean predicted probability", "fraction positive"),
                &c.reliability,
                Some("perfectly calibrated"),
                true,
                SeriesLabelPosition::UpperLeft,
            )
            .with_context(|| format!("drawing the reliability chart of {class}"))?;
            figure(&mut h, &rel);
        }
        h.push_str("</div>\n");
    }
    h.push_str("</section>\n");

    h.push_str(
        "<section id=\"confusion\">\n<h2>Confusion matrices</h2>\n\
         <p class=\"note\">Rows are true classes, columns predicted ones; shading is the share of \
         the row, so the diagonal reads as per-class recall.</p>\n<div class=\"charts\">\n",
    );
    for (name, m) in &data.confusion {
        let svg =
            confusion_chart(name, m).with_context(|| format!("drawing the confusion matrix of {name}"))?;
        figure(&mut h, &svg);
    }
    h.push_str("</div>\n</section>\n");

    let _ = writeln!(
        h,
        "<section id=\"importance\">\n<h2>Feature importance (top {TOP_FEATURES} by gain)</h2>\n<div class=\"charts\">"
    );
    for (class, features) in &data.importance {
        let svg = importance_chart(class, features)
            .with_context(|| format!("drawing the importance chart of {class}"))?;
        figure(&mut h, &svg);
    }
    h.push_str("</div>\n</section>\n");

    h.push_str("<section id=\"memory\">\n<h2>Memory and time per stage</h2>\n");
    if data.stages.is_empty() {
        h.push_str("<p class=\"note\">No stages were recorded.</p>\n");
    } else {
        let svg = memory_chart(&data.stages).context("drawing the memory chart")?;
        // Inside a flex row the figure shrinks to the chart instead of spanning the page.
        h.push_str("<div class=\"charts\">\n");
        figure(&mut h, &svg);
        h.push_str("</div>\n");
        stage_table(&mut h, &data.stages);
    }
    h.push_str("</section>\n");

    let _ = write!(
        h,
        "<section id=\"config\">\n<h2>Configuration</h2>\n<pre>{}</pre>\n</section>\n\
         <footer>spliceboost {}</footer>\n</body>\n</html>\n",
        escape(&data.config_toml),
        env!("CARGO_PKG_VERSION")
    );
    Ok(h)
}

/// Renders and writes the page; a reader never sees a half-written file.
pub fn write(path: &Path, data: &ReportData) -> anyhow::Result<()> {
    let html = render(data)?;
    crate::io::write_bytes_atomic(path, html.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// Escapes text for element content and quoted attribute values alike.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif;
  margin: 24px auto; max-width: 1360px; padding: 0 16px; color: #222; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 1.8em; }
h3 { font-size: 1.05em; margin: 1em 0 0.4em; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 4px 10px; }
thead th { background: #f3f5f7; }
td { text-align: right; font-variant-numeric: tabular-nums; }
tbody th, table.kv th { text-align: left; font-weight: 600; background: #fafafa; }
table.kv td { text-align: left; }
tbody tr:nth-child(even) td { background: #fbfbfb; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
figure { margin: 0; border: 1px solid #e4e4e4; }
svg { display: block; max-width: 100%; height: auto; }
.note { color: #555; font-style: italic; }
pre { background: #f6f8fa; border: 1px solid #e4e4e4; padding: 10px; overflow-x: auto; font-size: 0.85em; }
footer { margin-top: 2em; color: #888; font-size: 0.8em; }
";

fn table(h: &mut String, header: &[String], rows: &[MetricRow]) {
    h.push_str("<table>\n<thead><tr>");
    for c in header {
        let _ = write!(h, "<th>{}</th>", escape(c));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for r in rows {
        let _ = write!(h, "<tr><th>{}</th>", escape(&r.name));
        for v in &r.values {
            let _ = write!(h, "<td>{}</td>", escape(v));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table>\n");
}

fn stage_table(h: &mut String, stages: &[StageRecord]) {
    h.push_str(
        "<table>\n<thead><tr><th>stage</th><th>budget</th><th>peak reserved</th><th>peak heap</th>\
         <th>peak RSS</th><th>seconds</th></tr></thead>\n<tbody>\n",
    );
    for s in stages {
        let _ = writeln!(
            h,
            "<tr><th>{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td></tr>",
            escape(&s.name),
            fmt_bytes(s.budget_bytes),
            fmt_bytes(s.peak_reserved_bytes),
            opt(s.peak_heap_bytes),
            opt(s.peak_rss_bytes),
            s.seconds
        );
    }
    h.push_str("</tbody>\n</table>\n");
}

fn figure(h: &mut String, svg: &str) {
    h.push_str("<figure>\n");
    h.push_str(svg);
    h.push_str("</figure>\n");
}

// The SVG backend only emits the family name and the browser picks the actual font; plotters
// measures text (and draws it into PNGs) with the embedded font registered under this name.
pub(crate) const FONT: &str = "sans-serif";
const CURVE_SIZE: (u32, u32) = (440, 400);
const GRID_LIGHT: RGBColor = RGBColor(238, 238, 238);
const GRID_BOLD: RGBColor = RGBColor(210, 210, 210);
const REFERENCE: RGBColor = RGBColor(140, 140, 140);

/// Colour-blind-friendly categorical colours (Okabe-Ito, then a dark grey), the meta-model
/// always first; the sweep's charts have a line per stage and one for the whole run.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(90, 90, 90),
    RGBColor(240, 228, 66),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn finish(mut svg: String) -> String {
    if !svg.ends_with('\n') {
        svg.push('\n');
    }
    svg
}

/// A chart's drawing area, writing SVG into `svg`.
fn svg_area(svg: &mut String, size: (u32, u32)) -> DrawingArea<SVGBackend<'_>, plotters::coord::Shift> {
    super::png::register_font();
    SVGBackend::with_string(svg, size).into_drawing_area()
}

/// Every chart's legend box.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(GRID_BOLD)
        .draw()?;
    Ok(())
}

/// A chart on the unit square, for ROC, PR and reliability curves.
fn curve_chart(
    title: &str,
    (x_desc, y_desc): (&str, &str),
    series: &[Series],
    diagonal: Option<&str>,
    markers: bool,
    legend: SeriesLabelPosition,
) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = svg_area(&mut svg, CURVE_SIZE);
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(52)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .max_light_lines(4)
            .light_line_style(GRID_LIGHT)
            .bold_line_style(GRID_BOLD)
            .draw()?;
        if let Some(label) = diagonal {
            chart
                .draw_series(DashedLineSeries::new(
                    [(0.0, 0.0), (1.0, 1.0)],
                    6,
                    4,
                    REFERENCE.stroke_width(1),
                ))?
                .label(label)
                .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], REFERENCE.stroke_width(1)));
        }
        for (i, s) in series.iter().enumerate() {
            let c = color(i);
            // A NaN (precision with no predicted positives) or a value a hair outside [0, 1] would
            // otherwise draw over the axes; the chart is about shape, the tables carry the numbers.
            let points: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|&(x, y)| (x.clamp(0.0, 1.0), y.clamp(0.0, 1.0)))
                .collect();
            let label = if points.is_empty() {
                format!("{} (no data)", s.label)
            } else {
                s.label.clone()
            };
            chart
                .draw_series(LineSeries::new(points, c.stroke_width(2)).point_size(if markers {
                    3
                } else {
                    0
                }))?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
        }
        draw_legend(&mut chart, legend)?;
        root.present()?;
    }
    Ok(finish(svg))
}

/// A line chart of figures against memory budgets (MiB, on a log scale), one line a series:
/// the `sweep` page's charts.
pub fn budget_chart(
    title: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> anyhow::Result<String> {
    let mut svg = String::new();
    draw_budget_chart(svg_area(&mut svg, BUDGET_CHART_SIZE), title, y_desc, series)?;
    Ok(finish(svg))
}

/// [`budget_chart`] as a PNG file.
pub fn budget_chart_png(
    title: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> anyhow::Result<Vec<u8>> {
    super::png::register_font();
    let (w, h) = BUDGET_CHART_SIZE;
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    draw_budget_chart(
        BitMapBackend::with_buffer(&mut rgb, BUDGET_CHART_SIZE).into_drawing_area(),
        title,
        y_desc,
        series,
    )?;
    Ok(super::png::encode_rgb(w, h, &rgb))
}

const BUDGET_CHART_SIZE: (u32, u32) = (640, 400);

fn draw_budget_chart<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    // Ticks and grid lines at the budgets themselves.
    let mut budgets: Vec<f64> = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(x, _)| x))
        .collect();
    budgets.sort_by(f64::total_cmp);
    budgets.dedup();
    let (lo, hi) = match (budgets.first(), budgets.last()) {
        (Some(&lo), Some(&hi)) if lo > 0.0 => (lo / 1.3, hi * 1.3),
        _ => (1.0, 2.0),
    };
    let top = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
        .fold(0f64, f64::max)
        .max(1e-9)
        * 1.1;
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 18))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d((lo..hi).log_scale().with_key_points(budgets), 0f64..top)?;
    chart
        .configure_mesh()
        .x_desc("memory.total")
        .y_desc(y_desc)
        .x_label_formatter(&|v| fmt_bytes((*v * MIB) as u64))
        .y_label_formatter(&|v| compact(*v))
        .label_style((FONT, 13))
        .axis_desc_style((FONT, 14))
        .light_line_style(GRID_LIGHT)
        .bold_line_style(GRID_BOLD)
        .draw()?;
    // Lines last to first, so that where two coincide (the cv stage and the stage inside it
    // that set its peak, say) the one listed first stays on top; the legend keeps the
    // listed order, from empty series drawn for it alone.
    for (i, (_, points)) in series.iter().enumerate().rev() {
        chart.draw_series(LineSeries::new(points.iter().copied(), color(i).stroke_width(2)).point_size(3))?;
    }
    for (i, (label, _)) in series.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series(LineSeries::new(
                std::iter::empty::<(f64, f64)>(),
                c.stroke_width(2),
            ))?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present()?;
    Ok(())
}

/// Width of one category on a category axis. Integer, because plotters only offers custom
/// tick labels (`ValueFormatter`) on key-point axes over integers; 100 leaves room for sub-slot
/// positions such as grouped bars and two lines of text in a cell.
const SLOT: i32 = 100;

/// An axis of `n` categories with ticks (and labels) at the middle of each slot.
fn slots(n: usize) -> WithKeyPoints<RangedCoordi32> {
    let n = n as i32;
    (0..n.max(1) * SLOT).with_key_points((0..n).map(|i| i * SLOT + SLOT / 2).collect())
}

fn slot_index(v: i32) -> usize {
    (v.max(0) / SLOT) as usize
}

/// The position `frac` of the way across slot `i`.
fn at(i: usize, frac: f64) -> i32 {
    i as i32 * SLOT + (frac * SLOT as f64).round() as i32
}

/// A 3×3 heat map shaded by share of the true class, with counts written in the cells.
fn confusion_chart(name: &str, m: &Confusion) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = svg_area(&mut svg, (420, 400));
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("Confusion matrix: {name}"), (FONT, 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(80)
            .build_cartesian_2d(slots(3), slots(3))?;
        // Row 0 ("neither") at the top, as a table reads.
        let x_label = |v: &i32| {
            CLASS_LABELS
                .get(slot_index(*v))
                .copied()
                .unwrap_or("")
                .to_string()
        };
        let y_label = |v: &i32| {
            2usize
                .checked_sub(slot_index(*v))
                .and_then(|r| CLASS_LABELS.get(r))
                .copied()
                .unwrap_or("")
                .to_string()
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("predicted")
            .y_desc("true")
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .draw()?;
        for (r, row) in m.iter().enumerate() {
            let total: u64 = row.iter().sum();
            for (c, &count) in row.iter().enumerate() {
                let share = if total == 0 {
                    0.0
                } else {
                    count as f64 / total as f64
                };
                let row = 2 - r;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(at(c, 0.0), at(row, 0.0)), (at(c, 1.0), at(row, 1.0))],
                    shade(share).filled(),
                )))?;
                // Dark text stops being legible once the cell is darker than mid-blue.
                let ink = if share > 0.5 { WHITE } else { BLACK };
                let centre = Pos::new(HPos::Center, VPos::Center);
                let big = TextStyle::from((FONT, 17).into_font()).color(&ink).pos(centre);
                let small = TextStyle::from((FONT, 13).into_font()).color(&ink).pos(centre);
                chart.draw_series([
                    Text::new(group_digits(count), (at(c, 0.5), at(row, 0.58)), big),
                    Text::new(
                        format!("{:.1}%", share * 100.0),
                        (at(c, 0.5), at(row, 0.36)),
                        small,
                    ),
                ])?;
            }
        }
        root.present()?;
    }
    Ok(finish(svg))
}

/// White to a deep blue, linear in the share.
fn shade(share: f64) -> RGBColor {
    let t = share.clamp(0.0, 1.0);
    let mix = |lo: u8, hi: u8| (lo as f64 + (hi as f64 - lo as f64) * t).round() as u8;
    RGBColor(mix(247, 8), mix(251, 48), mix(255, 107))
}

fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Long k-mer or annotation names would otherwise squeeze the bars to nothing.
const MAX_NAME_CHARS: usize = 36;

fn shorten(name: &str) -> String {
    if name.chars().count() <= MAX_NAME_CHARS {
        name.to_string()
    } else {
        let mut s: String = name.chars().take(MAX_NAME_CHARS - 1).collect();
        s.push('…');
        s
    }
}

/// Compact tick labels, since total gains run into the millions and long labels collide.
fn compact(v: f64) -> String {
    let a = v.abs();
    let (scaled, suffix) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e3 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let digits = if scaled.abs() >= 10.0 || scaled == 0.0 {
        format!("{scaled:.0}")
    } else {
        format!("{scaled:.2}")
    };
    let digits = if digits.contains('.') {
        digits.trim_end_matches('0').trim_end_matches('.')
    } else {
        &digits
    };
    format!("{digits}{suffix}")
}

/// Horizontal bars, largest gain at the top.
fn importance_chart(class: &str, features: &[(String, f64)]) -> anyhow::Result<String> {
    let mut top: Vec<(String, f64)> = features
        .iter()
        .filter(|(_, g)| g.is_finite())
        .map(|(n, g)| (shorten(n), g.max(0.0)))
        .collect();
    top.sort_by(|a, b| b.1.total_cmp(&a.1));
    top.truncate(TOP_FEATURES);
    let n = top.len();
    // The SVG backend cannot measure text, so the label column is sized from the character count.
    let widest = top
        .iter()
        .map(|(name, _)| name.chars().count())
        .max()
        .unwrap_or(0)
        .max(6);
    let label_area = (widest as u32) * 7 + 20;
    let height = 110 + 24 * n.max(3) as u32;
    let max = top.iter().map(|t| t.1).fold(0.0, f64::max);
    let x_max = if max > 0.0 { max * 1.08 } else { 1.0 };
    let title = if n == 0 {
        format!("Importance: {class} (no features)")
    } else {
        format!("Importance: {class}")
    };

    let mut svg = String::new();
    {
        let root = svg_area(&mut svg, (380 + label_area, height));
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(label_area)
            .build_cartesian_2d(0f64..x_max, slots(n))?;
        let y_label = |v: &i32| {
            n.checked_sub(1 + slot_index(*v))
                .and_then(|i| top.get(i))
                .map(|t| t.0.clone())
                .unwrap_or_default()
        };
        let x_label = |v: &f64| compact(*v);
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc("gain (mean over the fold models)")
            .x_labels(6)
            .max_light_lines(4)
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .label_style((FONT, 12))
            .axis_desc_style((FONT, 14))
            .light_line_style(GRID_LIGHT)
            .bold_line_style(GRID_BOLD)
            .draw()?;
        chart.draw_series(top.iter().enumerate().map(|(i, (_, gain))| {
            let row = n - 1 - i;
            Rectangle::new([(0.0, at(row, 0.15)), (*gain, at(row, 0.85))], color(0).filled())
        }))?;
        root.present()?;
    }
    Ok(finish(svg))
}

const MIB: f64 = 1024.0 * 1024.0;

/// Budget beside what each stage actually used, so a stage that outgrew its budget stands out.
fn memory_chart(stages: &[StageRecord]) -> anyhow::Result<String> {
    type Get = fn(&StageRecord) -> Option<u64>;
    let measures: [(&str, Get); 4] = [
        ("budget", |s| Some(s.budget_bytes)),
        ("peak reserved", |s| Some(s.peak_reserved_bytes)),
        ("peak heap", |s| s.peak_heap_bytes),
        ("peak RSS", |s| s.peak_rss_bytes),
    ];
    let n = stages.len();
    let max = stages
        .iter()
        .flat_map(|s| measures.iter().filter_map(move |(_, get)| get(s)))
        .map(|b| b as f64 / MIB)
        .fold(0.0, f64::max);
    // Headroom for the legend, which sits above the bars.
    let y_max = if max > 0.0 { max * 1.3 } else { 1.0 };
    let width = (140 + 130 * n as u32).clamp(640, 1320);

    let mut svg = String::new();
    {
        let root = svg_area(&mut svg, (width, 420));
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Memory per stage", (FONT, 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(slots(n), 0f64..y_max)?;
        let x_label = |v: &i32| {
            stages
                .get(slot_index(*v))
                .map(|s| s.name.clone())
                .unwrap_or_default()
        };
        let y_label = |v: &f64| format!("{v:.0}");
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("stage")
            .y_desc("MiB")
            .max_light_lines(4)
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .light_line_style(GRID_LIGHT)
            .bold_line_style(GRID_BOLD)
            .draw()?;
        let bar = 0.8 / measures.len() as f64;
        for (k, (label, get)) in measures.iter().enumerate() {
            let c = color(k);
            chart
                .draw_series(stages.iter().enumerate().filter_map(|(i, s)| {
                    let left = 0.1 + bar * k as f64;
                    let span = [(at(i, left), 0.0), (at(i, left + bar * 0.9), 0.0)];
                    get(s).map(|b| Rectangle::new([span[0], (span[1].0, b as f64 / MIB)], c.filled()))
                }))?
                .label(*label)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present()?;
    }
    Ok(finish(svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(label: &str) -> Series {
        Series::new(
            label,
            (0..=10)
                .map(|i| (i as f64 / 10.0, (i as f64 / 10.0).sqrt()))
                .collect(),
        )
    }

    fn stage(name: &str) -> StageRecord {
        StageRecord {
            name: name.into(),
            budget_bytes: 256 << 20,
            peak_reserved_bytes: 120 << 20,
            peak_heap_bytes: Some(90 << 20),
            peak_rss_bytes: None,
            seconds: 1.5,
        }
    }

    fn sample(with_base: bool) -> ReportData {
        let series = |meta: &str, base: &str| {
            let mut v = vec![curve(meta)];
            if with_base {
                v.push(curve(base));
            }
            v
        };
        let curves = CLASS_LABELS
            .iter()
            .map(|c| ClassCurves {
                class: c.to_string(),
                roc: series("meta", "base"),
                pr: series("meta", "base"),
                reliability: vec![curve("before"), curve("after")],
            })
            .collect();
        let m = [[90, 5, 5], [3, 40, 1], [2, 1, 30]];
        let mut confusion = vec![("meta".to_string(), m)];
        if with_base {
            confusion.push(("base".to_string(), m));
        }
        ReportData {
            title: "test run".into(),
            summary: vec![("folds".into(), "3".into())],
            metrics_header: vec!["fold".into(), "AUC".into()],
            metrics: vec![MetricRow {
                name: "1".into(),
                values: vec!["0.95".into()],
            }],
            base_vs_meta: with_base.then(|| {
                (
                    vec!["model".into(), "AUC".into()],
                    vec![MetricRow {
                        name: "base".into(),
                        values: vec!["0.90".into()],
                    }],
                )
            }),
            curves,
            confusion,
            importance: CLASS_LABELS
                .iter()
                .map(|c| {
                    (
                        c.to_string(),
                        vec![("gc_content".into(), 10.0), ("pos_3".into(), 4.0)],
                    )
                })
                .collect(),
            stages: vec![stage("scan"), stage("train")],
            config_toml: "[train]\nrounds = 100\n".into(),
        }
    }

    fn charts_expected(d: &ReportData) -> usize {
        3 * d.curves.len() + d.confusion.len() + d.importance.len() + usize::from(!d.stages.is_empty())
    }

    #[test]
    fn one_svg_per_chart_and_no_script() {
        let d = sample(true);
        let html = render(&d).unwrap();
        assert_eq!(html.matches("<svg").count(), charts_expected(&d));
        assert_eq!(charts_expected(&d), 9 + 2 + 3 + 1);
        assert!(!html.contains("<script"));
        assert!(html.starts_with("<!DOCTYPE html>"));
        // Self-contained: nothing for the browser to fetch.
        assert!(!html.contains("<link") && !html.contains("<img") && !html.contains("url("));
    }

    #[test]
    fn charts_have_text_without_ttf() {
        let html = render(&sample(true)).unwrap();
        for text in [
            "ROC: donor",
            "false positive rate",
            "perfectly calibrated",
            "gain (mean over the fold models)",
            "peak RSS",
        ] {
            assert!(
                html.contains(&format!(">\n{text}\n</text>")),
                "missing <text> {text}"
            );
        }
    }

    #[test]
    fn text_is_escaped() {
        let mut d = sample(true);
        d.title = "run <b>".into();
        d.importance[0].1.push(("<script>x</script>".into(), 50.0));
        d.summary.push(("dataset".into(), "a&b \"quoted\"".into()));
        d.config_toml = "name = \"<img src=x>\"\n".into();
        let html = render(&d).unwrap();
        assert!(!html.contains("<script"));
        assert!(!html.contains("<img"));
        assert!(!html.contains("<b>"));
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(html.contains("a&amp;b &quot;quoted&quot;"));
        assert!(html.contains("&lt;img src=x&gt;"));
    }

    #[test]
    fn without_base_scores_skips_the_comparison() {
        let d = sample(false);
        let html = render(&d).unwrap();
        assert!(html.contains("Base comparison skipped"));
        assert!(!html.contains(">\nbase\n</text>"), "a base series was drawn");
        assert_eq!(html.matches("<svg").count(), charts_expected(&d));
    }

    #[test]
    fn empty_series_do_not_panic() {
        let mut d = sample(true);
        d.curves[0].roc = vec![
            Series::new("meta", vec![]),
            Series::new("base", vec![(f64::NAN, 0.5)]),
        ];
        d.curves[0].pr.clear();
        d.curves[1].reliability = vec![Series::new("before", vec![(0.5, 0.5)])];
        d.importance[0].1.clear();
        d.confusion.push(("empty".into(), [[0; 3]; 3]));
        d.stages[0] = StageRecord {
            budget_bytes: 0,
            peak_reserved_bytes: 0,
            ..stage("zero")
        };
        let html = render(&d).unwrap();
        assert!(html.contains("meta (no data)"));
        assert_eq!(html.matches("<svg").count(), charts_expected(&d));
    }

    #[test]
    fn no_stages_render_a_note_instead_of_a_chart() {
        let mut d = sample(true);
        d.stages.clear();
        let html = render(&d).unwrap();
        assert!(html.contains("No stages were recorded"));
        assert_eq!(html.matches("<svg").count(), charts_expected(&d));
    }

    #[test]
    fn importance_keeps_the_top_features_largest_first() {
        let features: Vec<(String, f64)> = (0..30).map(|i| (format!("feat_{i:02}"), i as f64)).collect();
        let svg = importance_chart("donor", &features).unwrap();
        assert!(svg.contains("feat_29") && svg.contains("feat_10"));
        assert!(!svg.contains("feat_09"));
    }

    #[test]
    fn write_puts_the_page_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.html");
        write(&path, &sample(false)).unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().contains("</html>"));
    }

    #[test]
    fn gain_ticks_are_compact() {
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(0.25), "0.25");
        assert_eq!(compact(200_000.0), "200k");
        assert_eq!(compact(1_500_000.0), "1.5M");
    }

    #[test]
    fn digits_are_grouped() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(1234), "1,234");
        assert_eq!(group_digits(1234567), "1,234,567");
    }
}
