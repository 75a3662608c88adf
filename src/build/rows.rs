//! A gene's candidate rows turned into the dataset's columns: base scores, both tracks'
//! neighbouring scores, the engineered score features, sequence features and k-mers of the
//! window around the position, and gene structure.
//!
//! Nothing here reads the row's label or the annotated exon boundaries near the position: the
//! Python's structure columns leak the label because only its TP and FN rows find their
//! transcript, and its context scores come from whichever evaluator found the row. Here every
//! row of a gene is computed the same way from the scores, the sequence and gene-level facts.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::candidates::{Candidate, ACCEPTOR, DONOR, NEITHER};
use super::config::KmerLayout;
use crate::features::{derive, ScoreWindow, DERIVED_COLUMNS, RATIO_FLOOR};
use crate::genome::{Gene, Strand};
use crate::io::kmers::{kmer_names, sparse_field, KmerBatch};

/// Metadata columns, in order: never features (strings, or named in `METADATA_COLUMNS`).
pub const META_COLUMNS: [&str; 10] = [
    "gene_id",
    "gene_name",
    "gene_type",
    "chrom",
    "strand",
    "position",
    "splice_type",
    "pred_type",
    "pred_type_donor",
    "pred_type_acceptor",
];

/// The context scores of both tracks, in transcript orientation (m = upstream).
pub const CONTEXT_COLUMNS: [&str; 8] = [
    "donor_context_m2",
    "donor_context_m1",
    "donor_context_p1",
    "donor_context_p2",
    "acceptor_context_m2",
    "acceptor_context_m1",
    "acceptor_context_p1",
    "acceptor_context_p2",
];

/// Integer features: the window's bases inside the chromosome, then gene structure.
pub const INT_COLUMNS: [&str; 6] = [
    "sequence_length",
    "gene_length",
    "gene_transcripts",
    "gene_exons",
    "gene_distance_start",
    "gene_distance_end",
];

/// The float features, in order.
pub fn float_columns() -> Vec<&'static str> {
    let mut c = vec!["donor_score", "acceptor_score", "neither_score"];
    c.extend(CONTEXT_COLUMNS);
    // The builder's context columns replace the original's one-track `context_score_*`.
    c.extend(DERIVED_COLUMNS[4..].iter().copied());
    c.extend(["gc_content", "sequence_complexity"]);
    c
}

/// The dataset's schema for these k and layout.
pub fn schema(ks: &[usize], layout: KmerLayout) -> SchemaRef {
    let mut fields: Vec<Field> = META_COLUMNS
        .iter()
        .map(|&n| match n {
            "position" => Field::new(n, DataType::Int64, false),
            "gene_name" | "gene_type" => Field::new(n, DataType::Utf8, true),
            _ => Field::new(n, DataType::Utf8, false),
        })
        .collect();
    fields.extend(
        float_columns()
            .into_iter()
            .map(|n| Field::new(n, DataType::Float32, false)),
    );
    fields.extend(INT_COLUMNS.iter().map(|&n| match n {
        "sequence_length" | "gene_transcripts" | "gene_exons" => Field::new(n, DataType::Int32, false),
        _ => Field::new(n, DataType::Int64, false),
    }));
    for &k in ks {
        match layout {
            KmerLayout::Sparse => fields.push(sparse_field(k)),
            KmerLayout::Dense => fields.extend(
                kmer_names(k)
                    .into_iter()
                    .map(|n| Field::new(n, DataType::Float64, false)),
            ),
        }
    }
    Arc::new(Schema::new(fields))
}

/// A gene with what its rows are computed from.
pub struct GeneInput<'a> {
    pub gene: &'a Gene,
    /// Base scores of every position of the gene, genomic order, `[neither, acceptor, donor]`.
    pub scores: &'a [[f32; 3]],
    /// The gene's forward-strand bases with `window` more on each side (`N` beyond the
    /// chromosome).
    pub sequence: &'a [u8],
    pub chrom_len: u64,
}

/// Sequence-window settings.
#[derive(Debug, Clone)]
pub struct WindowSpec {
    pub window: usize,
    pub ks: Vec<usize>,
    pub layout: KmerLayout,
}

impl WindowSpec {
    /// Bases of the window upstream of its position.
    pub fn half(&self) -> usize {
        self.window / 2
    }
}

/// Bytes per row the gene's columns hold before they are written (the column vectors, the
/// record batch built from them, the sparse k-mers and their array), without dense k-mers;
/// `name_bytes` is the gene's strings (id, name, type, chromosome) repeated on every row.
pub fn row_bytes(spec: &WindowSpec, name_bytes: usize) -> u64 {
    // Ten string columns hold a 4-byte offset each, the four strings of the call columns and
    // the label up to 8 bytes each.
    let strings = name_bytes + 10 * 4 + 6 * 8;
    let fixed = 2 * (float_columns().len() * 4 + INT_COLUMNS.len() * 8 + 8 + strings);
    let kmers = crate::io::kmers::window_row_bytes(&spec.ks, spec.window) * 2;
    let dense: usize = match spec.layout {
        KmerLayout::Dense => spec
            .ks
            .iter()
            .map(|&k| 16 * crate::io::kmers::kmer_count(k))
            .sum(),
        KmerLayout::Sparse => 0,
    };
    fixed as u64 + kmers + dense as u64
}

/// The gene's rows as one record batch of `schema`.
pub fn gene_rows(
    input: &GeneInput,
    rows: &[Candidate],
    spec: &WindowSpec,
    schema: &SchemaRef,
) -> anyhow::Result<RecordBatch> {
    let gene = input.gene;
    let n = rows.len();
    let half = spec.half();
    let len = input.scores.len();
    debug_assert_eq!(input.sequence.len(), len + 2 * spec.window);
    // The window is read in transcript orientation: on the minus strand the buffer is
    // reverse-complemented once, so index `o + window` is oriented offset `o` on both strands.
    let oriented: std::borrow::Cow<[u8]> = match gene.strand {
        Strand::Plus => input.sequence.into(),
        Strand::Minus => {
            let mut s = input.sequence.to_vec();
            crate::score::reverse_complement(&mut s);
            s.into()
        }
    };
    let floats_names = float_columns();
    let mut floats: Vec<Vec<f32>> = vec![Vec::with_capacity(n); floats_names.len()];
    let mut ints: Vec<Vec<i64>> = vec![Vec::with_capacity(n); INT_COLUMNS.len()];
    let mut kmers: Vec<KmerBatch> = spec.ks.iter().map(|&k| KmerBatch::new(k)).collect();
    let transcripts = gene.transcripts.len() as i64;
    let exons = {
        let mut e: Vec<_> = gene
            .transcripts
            .iter()
            .flat_map(|t| t.exons.iter().copied())
            .collect();
        e.sort_unstable();
        e.dedup();
        e.len() as i64
    };
    let mut derived = [0f64; 40];
    // Neighbours in transcript orientation, zero beyond the gene as in the original.
    let step: isize = if gene.strand == Strand::Plus { 1 } else { -1 };
    for r in rows {
        let i = r.offset as usize;
        let s = input.scores[i];
        let (d, a, nn) = (f64::from(s[DONOR]), f64::from(s[ACCEPTOR]), f64::from(s[NEITHER]));
        let at = |delta: isize, t: usize| -> f64 {
            let j = i as isize + delta * step;
            if j < 0 || j as usize >= len {
                0.0
            } else {
                f64::from(input.scores[j as usize][t])
            }
        };
        let ctx = |t: usize| [at(-2, t), at(-1, t), at(1, t), at(2, t)];
        let w = ScoreWindow {
            donor: d,
            acceptor: a,
            neither: nn,
            donor_ctx: ctx(DONOR),
            acceptor_ctx: ctx(ACCEPTOR),
            own_is_donor: d >= a,
        };
        derive(&w, RATIO_FLOOR, &mut derived);
        let mut f = floats.iter_mut();
        let mut put = |v: f64| f.next().expect("column count").push(v as f32);
        put(d);
        put(a);
        put(nn);
        w.donor_ctx.iter().chain(&w.acceptor_ctx).for_each(|&v| put(v));
        derived[4..].iter().for_each(|&v| put(v));

        let o = gene
            .offset(gene.start + i as u64)
            .expect("offset inside the gene") as usize;
        let first = o + spec.window - half;
        let window = &oriented[first..first + spec.window];
        let inside = inside_chromosome(gene, o, half, spec.window, input.chrom_len);
        let bases = &window[inside.0..inside.1];
        let (gc, complexity) = composition(bases);
        put(gc);
        put(complexity);
        for kb in &mut kmers {
            kb.push_window(window);
        }
        let o = o as i64;
        let glen = gene.len() as i64;
        for (col, v) in ints
            .iter_mut()
            .zip([bases.len() as i64, glen, transcripts, exons, o, glen - 1 - o])
        {
            col.push(v);
        }
    }

    let strand = gene.strand.as_char().to_string();
    let rep = |v: &str| -> ArrayRef { Arc::new(StringArray::from_iter_values(std::iter::repeat_n(v, n))) };
    let opt = |v: &Option<String>| -> ArrayRef {
        Arc::new(StringArray::from_iter(std::iter::repeat_n(v.as_deref(), n)))
    };
    let mut columns: Vec<ArrayRef> = vec![
        rep(&gene.id),
        opt(&gene.name),
        opt(&gene.biotype),
        rep(&gene.chrom),
        rep(&strand),
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| (gene.start + u64::from(r.offset)) as i64),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| crate::io::CLASS_NAMES[r.label as usize]),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.pred_type().as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.calls[0].as_str()),
        )),
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.calls[1].as_str()),
        )),
    ];
    columns.extend(
        floats
            .into_iter()
            .map(|c| Arc::new(Float32Array::from(c)) as ArrayRef),
    );
    for (name, c) in INT_COLUMNS.iter().zip(ints) {
        columns.push(match *name {
            "sequence_length" | "gene_transcripts" | "gene_exons" => {
                Arc::new(Int32Array::from_iter_values(c.into_iter().map(|v| v as i32)))
            }
            _ => Arc::new(Int64Array::from(c)),
        });
    }
    for kb in &kmers {
        match spec.layout {
            KmerLayout::Sparse => columns.push(kb.sparse_array()),
            KmerLayout::Dense => columns.extend(kb.dense_arrays().into_iter().map(|(_, a)| a)),
        }
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// The part `[from, to)` of the window at oriented offset `o` that lies inside the chromosome.
fn inside_chromosome(gene: &Gene, o: usize, half: usize, window: usize, chrom_len: u64) -> (usize, usize) {
    // Genomic position of window index w: oriented offset o - half + w.
    let genomic = |w: usize| -> i64 {
        let oo = o as i64 - half as i64 + w as i64;
        match gene.strand {
            Strand::Plus => gene.start as i64 + oo,
            Strand::Minus => gene.end as i64 - oo,
        }
    };
    let inside = |w: usize| (1..=chrom_len as i64).contains(&genomic(w));
    let from = (0..window).find(|&w| inside(w)).unwrap_or(window);
    let to = (from..window).rev().find(|&w| inside(w)).map_or(from, |w| w + 1);
    (from, to)
}

/// GC fraction (of all bases, N included) and Shannon entropy in bits over the characters.
pub fn composition(bases: &[u8]) -> (f64, f64) {
    if bases.is_empty() {
        return (0.0, 0.0);
    }
    let mut counts = [0u32; 256];
    for &b in bases {
        counts[b.to_ascii_uppercase() as usize] += 1;
    }
    let n = bases.len() as f64;
    let gc = f64::from(counts[b'G' as usize] + counts[b'C' as usize]) / n;
    let entropy = -counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / n;
            p * p.log2()
        })
        .sum::<f64>();
    (gc, entropy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composition_by_hand() {
        // GGCA: GC 3/4; entropy of {G: 1/2, C: 1/4, A: 1/4} = 1.5 bits.
        let (gc, h) = composition(b"GGCA");
        assert_eq!(gc, 0.75);
        assert!((h - 1.5).abs() < 1e-12);
        let (gc, h) = composition(b"NNNN");
        assert_eq!((gc, h), (0.0, 0.0));
    }
}
