//! Floats in spliceboost's JSON files (cache manifests, models), written so that every value
//! reads back as it was, non-finite ones included.
//!
//! JSON has no NaN or infinity, and serde_json writes them as `null`, which then fails to
//! read as a number: a model or manifest holding one could be written but never read again.
//! Here a finite value is a JSON number (serde_json's shortest round-tripping form) and the
//! others are the strings `"NaN"`, `"Infinity"` and `"-Infinity"` (the spellings of Python's
//! `json` module and of JavaScript). Readers take a number or one of those strings; `null` is
//! refused, since it cannot say which value it stood for.
//!
//! Use with `#[serde(with = "crate::binning::json_float::f32s")]` and its siblings.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

fn special(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// An `f32` written explicitly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct F32(pub f32);
/// An `f64` written explicitly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct F64(pub f64);

impl Serialize for F32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_finite() {
            s.serialize_f32(self.0)
        } else {
            s.serialize_str(special(self.0 as f64))
        }
    }
}

impl Serialize for F64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_finite() {
            s.serialize_f64(self.0)
        } else {
            s.serialize_str(special(self.0))
        }
    }
}

struct FloatVisitor;

impl Visitor<'_> for FloatVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number or one of \"NaN\", \"Infinity\", \"-Infinity\"")
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        match v {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }
}

impl<'de> Deserialize<'de> for F64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FloatVisitor).map(F64)
    }
}

impl<'de> Deserialize<'de> for F32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // As serde reads an f32 from a JSON number: the nearest f64, then the nearest f32.
        d.deserialize_any(FloatVisitor).map(|v| F32(v as f32))
    }
}

/// `f32`.
pub mod one_f32 {
    use super::*;
    pub fn serialize<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
        F32(*v).serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
        Ok(F32::deserialize(d)?.0)
    }
}

/// `Vec<f32>`.
pub mod f32s {
    use super::*;
    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|&x| F32(x)))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        Ok(Vec::<F32>::deserialize(d)?.into_iter().map(|x| x.0).collect())
    }
}

/// `f64`.
pub mod one_f64 {
    use super::*;
    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        F64(*v).serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(F64::deserialize(d)?.0)
    }
}

/// `Option<f64>`: `None` is `null`, NaN is `"NaN"`.
pub mod opt_f64 {
    use super::*;
    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        v.map(F64).serialize(s)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Ok(Option::<F64>::deserialize(d)?.map(|x| x.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Serialize, Deserialize)]
    struct T {
        #[serde(with = "super::f32s")]
        a: Vec<f32>,
        #[serde(with = "super::one_f64")]
        b: f64,
        #[serde(with = "super::opt_f64")]
        c: Option<f64>,
        #[serde(with = "super::opt_f64")]
        d: Option<f64>,
        #[serde(with = "super::one_f32")]
        e: f32,
    }

    #[test]
    fn non_finite_values_round_trip() {
        let t = T {
            a: vec![
                1.5,
                f32::INFINITY,
                f32::NEG_INFINITY,
                f32::NAN,
                f32::MAX,
                -0.0,
                0.1,
            ],
            b: f64::NEG_INFINITY,
            c: Some(f64::NAN),
            d: None,
            e: f32::MIN_POSITIVE,
        };
        let text = serde_json::to_string(&t).unwrap();
        assert_eq!(text.matches("null").count(), 1, "only None is null: {text}");
        assert!(text.contains(r#"[1.5,"Infinity","-Infinity","NaN",3.4028235e+38,-0.0,0.1]"#));
        let back: T = serde_json::from_str(&text).unwrap();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&back.a)[..3], bits(&t.a)[..3]);
        assert!(back.a[3].is_nan());
        assert_eq!(bits(&back.a)[4..], bits(&t.a)[4..]);
        assert_eq!(back.b, f64::NEG_INFINITY);
        assert!(back.c.unwrap().is_nan());
        assert_eq!(back.d, None);
        assert_eq!(back.e, f32::MIN_POSITIVE);
    }

    #[test]
    fn null_and_other_strings_are_refused() {
        let err = serde_json::from_str::<F32>("null").unwrap_err().to_string();
        assert!(err.contains("a number or one of"), "{err}");
        assert!(serde_json::from_str::<F64>("\"inf\"").is_err());
        assert_eq!(serde_json::from_str::<F64>("3").unwrap(), F64(3.0));
    }

    #[test]
    fn finite_f32s_read_back_bit_for_bit() {
        // Spread over every exponent: the shortest decimal of an f32, read as f64 and
        // rounded to f32, is the f32.
        let mut x: u32 = 0x1234_5678;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let v = f32::from_bits(x);
            if !v.is_finite() {
                continue;
            }
            let back: F32 = serde_json::from_str(&serde_json::to_string(&F32(v)).unwrap()).unwrap();
            assert_eq!(back.0.to_bits(), v.to_bits(), "{v:e}");
        }
    }
}
