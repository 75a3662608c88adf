//! Turning Arrow columns into the engine's own representations: class codes, gene indices
//! and `f32` values with `NaN` for missing.

use std::collections::HashMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::ArrowNativeType;
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
    let value_type = super::dataset::value_type(array.data_type());
    match array.data_type() {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(_, _)
            if !value_type.is_integer() =>
        {
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
        _ if value_type.is_integer() => {
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
///
/// Reads every type [`try_to_f32`] reads, which covers every feature column a
/// [`Scan`](super::Scan) hands over: roles admit only those types as features, and a scan
/// converts each file's values to the dataset's type. Any other type reads as missing values,
/// with a warning on stderr (once per type), rather than stopping the run; use
/// [`try_to_f32`] where the type is not known to be a feature's.
pub fn to_f32(array: &dyn Array, out: &mut Vec<f32>) {
    if let Err(e) = try_to_f32(array, out) {
        super::dataset::warn_once(&format!("{e}: read as missing values"));
        out.clear();
        out.resize(array.len(), f32::NAN);
    }
}

/// As [`to_f32`], for any array: numbers of every Arrow type (integers, floats, decimals),
/// booleans (0 and 1) and nulls, plain or dictionary-encoded with any key type. Any other type
/// is an error naming it (add the file and column with [`InputError::file`] and
/// [`InputError::column`]).
pub fn try_to_f32(array: &dyn Array, out: &mut Vec<f32>) -> Result<(), InputError> {
    out.clear();
    out.reserve(array.len());
    append_f32(array, out)
}

fn append_f32(array: &dyn Array, out: &mut Vec<f32>) -> Result<(), InputError> {
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
    macro_rules! decimal {
        ($t:ty, $scale:expr, $to_f64:expr) => {{
            let a = array.as_primitive::<$t>();
            let div = 10f64.powi(i32::from($scale));
            let to_f64 = $to_f64;
            out.extend(a.iter().map(|v| v.map_or(f32::NAN, |v| (to_f64(v) / div) as f32)));
        }};
    }
    macro_rules! dict {
        ($k:ty) => {{
            let d = array.as_dictionary::<$k>();
            // The dictionary's values once as f32: at most the dictionary page, however many
            // rows the batch has.
            let mut values = Vec::with_capacity(d.values().len());
            append_f32(d.values().as_ref(), &mut values).map_err(|_| not_numbers(array.data_type()))?;
            out.extend(d.keys().iter().map(|k| {
                k.and_then(|k| values.get(k.as_usize()).copied())
                    .unwrap_or(f32::NAN)
            }));
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
        DataType::Decimal32(_, s) => decimal!(Decimal32Type, *s, |v: i32| v as f64),
        DataType::Decimal64(_, s) => decimal!(Decimal64Type, *s, |v: i64| v as f64),
        DataType::Decimal128(_, s) => decimal!(Decimal128Type, *s, |v: i128| v as f64),
        DataType::Decimal256(_, s) => decimal!(Decimal256Type, *s, |v: i256| {
            v.to_i128().map_or_else(
                || {
                    let (low, high) = v.to_parts();
                    high as f64 * 2f64.powi(128) + low as f64
                },
                |v| v as f64,
            )
        }),
        DataType::Boolean => {
            let a = array.as_boolean();
            out.extend(a.iter().map(|v| v.map_or(f32::NAN, |b| b as u8 as f32)));
        }
        DataType::Null => out.extend(std::iter::repeat_n(f32::NAN, array.len())),
        DataType::Dictionary(k, _) => match k.as_ref() {
            DataType::Int8 => dict!(Int8Type),
            DataType::Int16 => dict!(Int16Type),
            DataType::Int32 => dict!(Int32Type),
            DataType::Int64 => dict!(Int64Type),
            DataType::UInt8 => dict!(UInt8Type),
            DataType::UInt16 => dict!(UInt16Type),
            DataType::UInt32 => dict!(UInt32Type),
            DataType::UInt64 => dict!(UInt64Type),
            _ => return Err(not_numbers(array.data_type())),
        },
        other => return Err(not_numbers(other)),
    }
    Ok(())
}

fn not_numbers(dt: &DataType) -> InputError {
    InputError::new(format!("a column of type {dt} does not hold numbers"))
        .hint("features must be integer, float or boolean columns, plain or dictionary-encoded")
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
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, BooleanArray, Decimal128Array, Decimal256Array, Float64Array, Int32Array, Int64Array,
        NullArray, StringArray,
    };

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

    fn dict(values: ArrayRef, key: DataType) -> ArrayRef {
        let dt = DataType::Dictionary(Box::new(key), Box::new(values.data_type().clone()));
        arrow::compute::cast(&values, &dt).unwrap()
    }

    #[test]
    fn dictionaries_of_numbers_read_as_their_values_whatever_the_key_type() {
        let values: ArrayRef = Arc::new(Float64Array::from(vec![Some(0.5), None, Some(0.5), Some(2.0)]));
        for key in [
            DataType::Int8,
            DataType::Int16,
            DataType::Int32,
            DataType::Int64,
            DataType::UInt8,
            DataType::UInt16,
            DataType::UInt32,
            DataType::UInt64,
        ] {
            let mut out = vec![];
            try_to_f32(dict(values.clone(), key.clone()).as_ref(), &mut out).unwrap();
            assert_eq!((out[0], out[2], out[3]), (0.5, 0.5, 2.0), "{key}");
            assert!(out[1].is_nan(), "{key}");
        }
        let ints: ArrayRef = Arc::new(Int32Array::from(vec![Some(7), None, Some(-1)]));
        let mut out = vec![];
        try_to_f32(dict(ints, DataType::UInt8).as_ref(), &mut out).unwrap();
        assert_eq!((out[0], out[2]), (7.0, -1.0));
        assert!(out[1].is_nan());
    }

    #[test]
    fn decimals_booleans_and_nulls_read_as_numbers() {
        let d = Decimal128Array::from(vec![Some(12345), None])
            .with_precision_and_scale(10, 2)
            .unwrap();
        let mut out = vec![];
        try_to_f32(&d, &mut out).unwrap();
        assert_eq!(out[0], 123.45);
        assert!(out[1].is_nan());
        let d = Decimal256Array::from(vec![Some(i256::from_i128(-250))])
            .with_precision_and_scale(40, 1)
            .unwrap();
        try_to_f32(&d, &mut out).unwrap();
        assert_eq!(out, [-25.0]);
        try_to_f32(&BooleanArray::from(vec![Some(true), None, Some(false)]), &mut out).unwrap();
        assert_eq!((out[0], out[2]), (1.0, 0.0));
        try_to_f32(&NullArray::new(2), &mut out).unwrap();
        assert!(out.len() == 2 && out.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn text_is_an_error_naming_its_type_not_a_panic() {
        let a = StringArray::from(vec!["0.5"]);
        let err = try_to_f32(&a, &mut vec![]).unwrap_err();
        assert!(err.message.contains("type Utf8"), "{err}");
        let err = try_to_f32(dict(Arc::new(a), DataType::Int32).as_ref(), &mut vec![]).unwrap_err();
        assert!(err.message.contains("Dictionary(Int32, Utf8)"), "{err}");
        // The infallible form reads it as missing values rather than panicking.
        let mut out = vec![1.0];
        to_f32(&StringArray::from(vec!["x", "y"]), &mut out);
        assert!(out.len() == 2 && out.iter().all(|v| v.is_nan()));
    }

    #[test]
    fn dictionary_encoded_integer_labels_are_integers() {
        let labels = dict(Arc::new(Int64Array::from(vec![2, 0, 1])), DataType::Int8);
        let mut out = vec![];
        decode_labels(labels.as_ref(), 0, &mut out).unwrap();
        assert_eq!(out, vec![2, 0, 1]);
        let labels = dict(
            Arc::new(StringArray::from(vec!["acceptor", "donor"])),
            DataType::Int8,
        );
        out.clear();
        decode_labels(labels.as_ref(), 0, &mut out).unwrap();
        assert_eq!(out, vec![2, 1]);
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
