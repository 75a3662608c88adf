//! Turning Arrow columns into the engine's own representations: class codes, gene indices
//! and `f32` values with `NaN` for missing.

use std::collections::HashMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, *};

use crate::error::InputError;

/// Class names by code: neither = 0, donor = 1, acceptor = 2, everywhere in the engine.
pub const CLASS_NAMES: [&str; 3] = ["neither", "donor", "acceptor"];

/// Appends the class code of every row of a label column to `out`.
///
/// String labels: `donor` → 1, `acceptor` → 2, null, empty or `neither` → 0 (case-blind).
/// Integer labels: 0, 1 or 2. Anything else is an error naming the row (`first_row` is the
/// row number of the array's first element in its file).
pub fn decode_labels(array: &dyn Array, first_row: u64, out: &mut Vec<u8>) -> Result<(), InputError> {
    let bad = |i: usize, v: String| {
        InputError::new(format!("label {v} is not donor, acceptor or neither"))
            .row(first_row + i as u64)
            .hint("splice_type must be `donor`, `acceptor` or empty; an integer label must be 0, 1 or 2")
    };
    match array.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _) => {
            let strings = arrow::compute::cast(array, &DataType::Utf8)
                .map_err(|e| InputError::new(format!("cannot read labels as text: {e}")))?;
            let strings = strings.as_string::<i32>();
            out.reserve(strings.len());
            for i in 0..strings.len() {
                if strings.is_null(i) {
                    out.push(0);
                    continue;
                }
                let v = strings.value(i).trim();
                let code = if v.is_empty() || v.eq_ignore_ascii_case("neither") {
                    0
                } else if v.eq_ignore_ascii_case("donor") {
                    1
                } else if v.eq_ignore_ascii_case("acceptor") {
                    2
                } else {
                    return Err(bad(i, format!("{v:?}")));
                };
                out.push(code);
            }
        }
        dt if dt.is_integer() => {
            let ints = arrow::compute::cast(array, &DataType::Int64)
                .map_err(|e| InputError::new(format!("cannot read labels as integers: {e}")))?;
            let ints = ints.as_primitive::<Int64Type>();
            out.reserve(ints.len());
            for i in 0..ints.len() {
                if ints.is_null(i) {
                    return Err(bad(i, "null".into()));
                }
                match ints.value(i) {
                    v @ 0..=2 => out.push(v as u8),
                    v => return Err(bad(i, v.to_string())),
                }
            }
        }
        other => {
            return Err(
                InputError::new(format!("a label column of type {other} cannot hold classes"))
                    .hint("use a string `splice_type` or an integer `label` column"),
            )
        }
    }
    Ok(())
}

/// Writes a numeric or boolean column into `out` as `f32`, with `NaN` where a value is null.
/// NaN in the input stays NaN: both are missing values to the engine.
pub fn to_f32(array: &dyn Array, out: &mut Vec<f32>) {
    out.clear();
    out.reserve(array.len());
    macro_rules! prim {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            if a.null_count() == 0 {
                out.extend(a.values().iter().map(|&v| v as f32));
            } else {
                out.extend(a.iter().map(|v| v.map_or(f32::NAN, |v| v as f32)));
            }
        }};
    }
    match array.data_type() {
        DataType::Float64 => prim!(Float64Type),
        DataType::Float32 => prim!(Float32Type),
        DataType::Float16 => {
            let a = array.as_primitive::<Float16Type>();
            out.extend(a.iter().map(|v| v.map_or(f32::NAN, f32::from)));
        }
        DataType::Int64 => prim!(Int64Type),
        DataType::Int32 => prim!(Int32Type),
        DataType::Int16 => prim!(Int16Type),
        DataType::Int8 => prim!(Int8Type),
        DataType::UInt64 => prim!(UInt64Type),
        DataType::UInt32 => prim!(UInt32Type),
        DataType::UInt16 => prim!(UInt16Type),
        DataType::UInt8 => prim!(UInt8Type),
        DataType::Boolean => {
            let a = array.as_boolean();
            out.extend(a.iter().map(|v| v.map_or(f32::NAN, |b| b as u8 as f32)));
        }
        // Roles admit only the types above as features.
        other => unreachable!("feature column of type {other}"),
    }
}

/// Interns group names (gene ids) as dense `u32` indices in order of first appearance.
#[derive(Debug, Default)]
pub struct GeneIndex {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl GeneIndex {
    /// Heap bytes one more gene of `name_len` bytes costs, for reservations.
    pub fn bytes_per_gene(name_len: usize) -> u64 {
        // Two copies of the name, the map slot and the vector slot.
        (2 * name_len + 2 * std::mem::size_of::<String>() + 16) as u64
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Adds names not seen yet, in order; returns the heap bytes they cost.
    pub fn extend_names(&mut self, names: &[String]) -> u64 {
        let mut added = 0;
        for n in names {
            if !self.ids.contains_key(n) {
                self.ids.insert(n.clone(), self.names.len() as u32);
                self.names.push(n.clone());
                added += Self::bytes_per_gene(n.len());
            }
        }
        added
    }

    pub fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// Appends the index of every row's group to `out`; returns the heap bytes of the genes
    /// it added. A null group is an error naming the row.
    pub fn encode(
        &mut self,
        array: &dyn Array,
        first_row: u64,
        out: &mut Vec<u32>,
    ) -> Result<u64, InputError> {
        let strings = arrow::compute::cast(array, &DataType::Utf8)
            .map_err(|e| InputError::new(format!("cannot read gene ids as text: {e}")))?;
        let strings = strings.as_string::<i32>();
        let mut added = 0;
        out.reserve(strings.len());
        let mut last: Option<(&str, u32)> = None;
        for i in 0..strings.len() {
            if strings.is_null(i) {
                return Err(InputError::new("gene id is null")
                    .row(first_row + i as u64)
                    .hint("every row needs a gene id for gene-wise splits"));
            }
            let name = strings.value(i);
            // Rows of one gene come together, so the last lookup usually answers.
            if let Some((n, id)) = last {
                if n == name {
                    out.push(id);
                    continue;
                }
            }
            let id = match self.ids.get(name) {
                Some(&id) => id,
                None => {
                    let id = self.names.len() as u32;
                    self.ids.insert(name.to_string(), id);
                    self.names.push(name.to_string());
                    added += Self::bytes_per_gene(name.len());
                    id
                }
            };
            last = Some((name, id));
            out.push(id);
        }
        Ok(added)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, StringArray};

    #[test]
    fn splice_type_maps_to_codes() {
        let a = StringArray::from(vec![
            Some("donor"),
            Some("acceptor"),
            None,
            Some(""),
            Some("Neither"),
        ]);
        let mut out = vec![];
        decode_labels(&a, 0, &mut out).unwrap();
        assert_eq!(out, vec![1, 2, 0, 0, 0]);
    }

    #[test]
    fn unknown_label_names_the_row() {
        let a = StringArray::from(vec![Some("donor"), Some("exon")]);
        let err = decode_labels(&a, 100, &mut vec![]).unwrap_err();
        assert_eq!(err.row, Some(101));
        assert!(err.message.contains("\"exon\""), "{err}");
    }

    #[test]
    fn integer_labels_accepted_in_range_only() {
        let mut out = vec![];
        decode_labels(&Int64Array::from(vec![0, 2, 1]), 0, &mut out).unwrap();
        assert_eq!(out, vec![0, 2, 1]);
        assert!(decode_labels(&Int64Array::from(vec![3]), 0, &mut out).is_err());
    }

    #[test]
    fn nulls_and_nan_become_nan() {
        let a = Float64Array::from(vec![Some(1.5), None, Some(f64::NAN)]);
        let mut out = vec![];
        to_f32(&a, &mut out);
        assert_eq!(out[0], 1.5);
        assert!(out[1].is_nan() && out[2].is_nan());
    }

    #[test]
    fn gene_index_interns_in_order() {
        let mut g = GeneIndex::default();
        let mut out = vec![];
        g.encode(&StringArray::from(vec!["b", "b", "a", "b"]), 0, &mut out)
            .unwrap();
        assert_eq!(out, vec![0, 0, 1, 0]);
        assert_eq!(g.names(), &["b".to_string(), "a".to_string()]);
    }
}
