//! Scoring a dataset with a saved model or bundle, under the predict budget.
//!
//! Sits above cross-validation because it applies either a single model from `train` or the
//! calibrated three-class bundle that cross-validation writes.

use std::path::{Component, Path, PathBuf};

use anyhow::Context;

use crate::boost::Model;
use crate::cv::Bundle;
use crate::error::InputError;
use crate::io::Dataset;

/// What `predict` applies: a single one-vs-rest model from `train`, or the three-class
/// bundle from cross-validation.
pub enum Predictor {
    Model(Box<Model>),
    Bundle(Box<Bundle>),
}

impl Predictor {
    /// Reads either kind, telling them apart by their `format` field.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let v = crate::boost::read_json(path)?;
        if v.get("format").and_then(|f| f.as_str()) == Some(crate::cv::bundle::FORMAT) {
            return Ok(Self::Bundle(Box::new(Bundle::from_json(v, path)?)));
        }
        Ok(Self::Model(Box::new(Model::from_json(v, path)?)))
    }

    pub fn features(&self) -> &[String] {
        match self {
            Self::Model(m) => &m.features,
            Self::Bundle(b) => &b.features,
        }
    }

    /// The score columns this predictor writes.
    fn score_columns(&self) -> &'static [&'static str] {
        match self {
            Self::Model(_) => &["score", "margin"],
            Self::Bundle(_) => &["p_neither", "p_donor", "p_acceptor"],
        }
    }

    /// One row's scores, in [`Self::score_columns`] order.
    fn score(&self, x: &[f32], out: &mut [f32]) {
        match self {
            Self::Model(m) => {
                let margin = m.predict_margin(x);
                out[0] = m.objective.transform(margin);
                out[1] = margin;
            }
            Self::Bundle(b) => out.copy_from_slice(&b.predict(x).1),
        }
    }
}

/// The canonical form of `path`, which need not exist: its nearest existing ancestor
/// resolved (symbolic links and all), the rest appended with `.` and `..` worked out.
fn canonical(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut rest = vec![];
    let mut base = abs.as_path();
    loop {
        if let Ok(c) = base.canonicalize() {
            let mut out = c;
            for part in rest.iter().rev() {
                match part {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::CurDir => {}
                    other => out.push(other.as_os_str()),
                }
            }
            return out;
        }
        match (base.parent(), base.components().next_back()) {
            (Some(parent), Some(last)) => {
                rest.push(last);
                base = parent;
            }
            _ => return abs,
        }
    }
}

/// Refuses an output path (`flag` names the option that set it) that is one of `files`
/// (the dataset's files, the model) or `dataset` itself, or that lies inside `dataset` when
/// that is a directory and `inside` says the file would matter there (a Parquet file there
/// is read as part of the dataset next time): writing there would overwrite or add to the
/// input. Paths are compared canonically, so a relative path, `..` or a symbolic link does
/// not hide the clash.
pub fn check_out_path_against(
    out: &Path,
    flag: &str,
    dataset: &Path,
    files: &[&Path],
    inside: bool,
) -> Result<(), InputError> {
    let target = canonical(out);
    for f in files.iter().chain([&dataset]) {
        if canonical(f) == target {
            return Err(InputError::new(format!(
                "{flag} names a file this command reads: writing it would destroy the input"
            ))
            .file(out)
            .hint(format!(
                "write the output to a new file outside {}",
                dataset.display()
            )));
        }
    }
    if inside && dataset.is_dir() && target.starts_with(canonical(dataset)) {
        return Err(InputError::new(format!(
            "{flag} lies inside the dataset directory {}: the next read of the dataset would take it for data",
            dataset.display()
        ))
        .file(out)
        .hint("write the output to a file outside the dataset directory"));
    }
    Ok(())
}

/// [`check_out_path_against`] the dataset's files and the model `predict` reads; any file
/// inside the dataset directory is refused.
pub fn check_out_path(
    out: &Path,
    flag: &str,
    dataset: &Path,
    ds: &Dataset,
    model: &Path,
) -> Result<(), InputError> {
    let mut files: Vec<&Path> = ds.files.iter().map(|f| f.path.as_path()).collect();
    files.push(model);
    check_out_path_against(out, flag, dataset, &files, true)
}

/// Scores `ds` under the predict budget and writes `out` (Parquet): the row's gene id,
/// position and label where the dataset has them, then the predictor's scores (`score` and
/// `margin` for a model; class probabilities and `predicted_type` for a bundle).
pub fn predict_job(
    ds: &Dataset,
    predictor: &Predictor,
    out: &Path,
    res: &mut crate::memory::MemoryReservation,
) -> anyhow::Result<u64> {
    use arrow::array::{ArrayRef, Float32Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;
    use rayon::prelude::*;
    use std::sync::Arc;

    // The model's features by name, wherever the dataset stores them (a plain column or a
    // sparse k-mer column); a missing one is an error naming it.
    let reader = crate::io::FeatureReader::named(ds, predictor.features())?;
    let keep: Vec<String> = ["gene_id", "position", "splice_type"]
        .iter()
        .filter(|c| ds.schema.field_with_name(c).is_ok())
        .map(|c| c.to_string())
        .collect();
    let nf = predictor.features().len();
    let names = predictor.score_columns();
    let ns = names.len();
    let is_bundle = matches!(predictor, Predictor::Bundle(_));
    let scan = ds
        .scan()
        .with_columns(&keep)
        .with_features(&reader)
        .with_extra_row_bytes(8 * nf as u64 + 8 * ns as u64 + 16);
    let mut fields: Vec<Field> = keep
        .iter()
        .map(|c| {
            ds.schema
                .field_with_name(c)
                .expect("checked")
                .clone()
                .with_nullable(true)
        })
        .collect();
    fields.extend(names.iter().map(|n| Field::new(*n, DataType::Float32, false)));
    if is_bundle {
        fields.push(Field::new("predicted_type", DataType::Utf8, false));
    }
    let schema = Arc::new(Schema::new(fields));
    res.try_grow(crate::io::parquet_writer_bytes(&schema))?;
    let scan = scan.build(res)?;
    crate::io::write_atomic(out, |w| {
        let mut writer = crate::io::parquet_writer(w, schema.clone())?;
        let mut rows = 0u64;
        let mut cols: Vec<Vec<f32>> = vec![Vec::new(); nf];
        for item in scan {
            let b = item?;
            let n = b.batch.num_rows();
            let fb = reader.read(&b)?;
            cols.par_iter_mut().enumerate().for_each(|(j, c)| fb.fill(j, c));
            drop(fb);
            let mut scores = vec![0f32; n * ns];
            scores.par_chunks_mut(ns).enumerate().for_each_init(
                || vec![0f32; nf],
                |x, (r, out)| {
                    for (j, c) in cols.iter().enumerate() {
                        x[j] = c[r];
                    }
                    predictor.score(x, out);
                },
            );
            // Files may store strings in another flavour than the first file: cast to the
            // output's types (free when they already match).
            let mut arrays: Vec<ArrayRef> = schema.fields()[..keep.len()]
                .iter()
                .enumerate()
                .map(|(i, f)| arrow::compute::cast(b.batch.column(i), f.data_type()))
                .collect::<Result<_, _>>()?;
            for k in 0..ns {
                arrays.push(Arc::new(Float32Array::from_iter_values(
                    scores.iter().skip(k).step_by(ns).copied(),
                )));
            }
            if is_bundle {
                arrays.push(Arc::new(StringArray::from_iter_values(scores.chunks(ns).map(
                    |p| crate::io::CLASS_NAMES[crate::eval::argmax3([p[0], p[1], p[2]]) as usize],
                ))));
            }
            let out_batch = RecordBatch::try_new(schema.clone(), arrays).context("assembling scores")?;
            rows += n as u64;
            writer.write(&out_batch)?;
        }
        writer.close()?;
        Ok(rows)
    })
}
