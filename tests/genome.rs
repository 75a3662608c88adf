//! The genome room: annotation streamed into genes and splice sites, FASTA read by region.
//!
//! Oracles: coordinates worked out by hand (written beside each test), the genome itself
//! (GT/AG at the annotated introns of D. melanogaster chromosome 4), a naive slice of the
//! sequence the test wrote, and samtools' `.fai` layout computed by hand.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;
use spliceboost::error::InputError;
use spliceboost::genome::{
    AnnotationFormat, AnnotationReader, Compression, Fasta, Format, Gene, GeneStream, Genome, GenomeConfig,
    SiteKind, Strand,
};
use spliceboost::memory::{MemoryConsumer, MemoryPool, MemoryReservation};

fn reservation(bytes: u64) -> MemoryReservation {
    let pool = Arc::new(MemoryPool::new(bytes));
    MemoryConsumer::new("genome").register(&pool)
}

fn big() -> MemoryReservation {
    reservation(1 << 30)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn gzip_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// BGZF with a block boundary every `block` bytes (so that reads cross blocks).
fn bgzip_bytes(bytes: &[u8], block: usize) -> Vec<u8> {
    let mut w = noodles_bgzf::io::Writer::new(Vec::new());
    for chunk in bytes.chunks(block.max(1)) {
        w.write_all(chunk).unwrap();
        w.flush().unwrap();
    }
    w.finish().unwrap()
}

/// Every gene of an annotation, unselected.
fn all_genes(path: &Path) -> Vec<Gene> {
    AnnotationReader::open(path, AnnotationFormat::Auto, 16, &big())
        .unwrap()
        .collect::<anyhow::Result<Vec<_>>>()
        .unwrap()
}

fn gene<'a>(genes: &'a [Gene], id: &str) -> &'a Gene {
    genes
        .iter()
        .find(|g| g.id == id)
        .unwrap_or_else(|| panic!("no gene {id}"))
}

/// (position, "D"/"A") in the order given.
fn marks(sites: &[spliceboost::genome::Site]) -> Vec<(u64, &'static str)> {
    sites
        .iter()
        .map(|s| {
            (
                s.position,
                match s.kind {
                    SiteKind::Donor => "D",
                    SiteKind::Acceptor => "A",
                },
            )
        })
        .collect()
}

/// The text of the InputError in `err`'s chain (fails when there is none).
fn input_error(err: anyhow::Error) -> String {
    let text = format!("{err:#}");
    assert!(
        err.chain().any(|e| e.is::<InputError>()),
        "not an InputError: {text}"
    );
    err.chain()
        .find_map(|e| e.downcast_ref::<InputError>())
        .unwrap()
        .to_string()
}

fn first_error(path: &Path, max_open: usize) -> String {
    let r: anyhow::Result<Vec<Gene>> =
        AnnotationReader::open(path, AnnotationFormat::Auto, max_open, &big()).and_then(|r| r.collect());
    input_error(r.expect_err("the annotation should be refused"))
}

// ---------------------------------------------------------------------------------------
// Hand-made annotations with hand-worked sites.

/// Gene P (+): tx-P1 exons 101-150, 201-250, 301-400; tx-P2 exons 101-160, 301-400.
/// Gene M (-): tx-M1 exons 1301-1400, 1151-1250, 1001-1100 (listed in transcription order).
const GFF3: &str = "##gff-version 3
chrT\ttest\tgene\t101\t400\t.\t+\t.\tID=gene-P;Name=Pname;biotype=protein_coding
chrT\ttest\tmRNA\t101\t400\t.\t+\t.\tID=tx-P1;Parent=gene-P
chrT\ttest\texon\t101\t150\t.\t+\t.\tID=e1;Parent=tx-P1
chrT\ttest\texon\t201\t250\t.\t+\t.\tID=e2;Parent=tx-P1
chrT\ttest\texon\t301\t400\t.\t+\t.\tID=e3;Parent=tx-P1
chrT\ttest\tCDS\t120\t150\t.\t+\t0\tID=c1;Parent=tx-P1
chrT\ttest\tmRNA\t101\t400\t.\t+\t.\tID=tx-P2;Parent=gene-P
chrT\ttest\texon\t101\t160\t.\t+\t.\tParent=tx-P2
chrT\ttest\texon\t301\t400\t.\t+\t.\tParent=tx-P2
###
chrT\ttest\tgene\t1001\t1400\t.\t-\t.\tID=gene-M;Name=Mname;gene_biotype=lncRNA
chrT\ttest\tlnc_RNA\t1001\t1400\t.\t-\t.\tID=tx-M1;Parent=gene-M
chrT\ttest\texon\t1301\t1400\t.\t-\t.\tParent=tx-M1
chrT\ttest\texon\t1151\t1250\t.\t-\t.\tParent=tx-M1
chrT\ttest\texon\t1001\t1100\t.\t-\t.\tParent=tx-M1
chrT\ttest\tgene\t2001\t2100\t.\t+\t.\tID=gene-S;biotype=protein_coding
chrT\ttest\tmRNA\t2001\t2100\t.\t+\t.\tID=tx-S1;Parent=gene-S
chrT\ttest\texon\t2001\t2100\t.\t+\t.\tParent=tx-S1
";

/// The same genes as GTF, with tx-P1's exons out of order and no gene line for M.
const GTF: &str = "#gtf-version 2.2
chrT\ttest\tgene\t101\t400\t.\t+\t.\tgene_id \"P\"; transcript_id \"\"; gene_name \"Pname\"; gene_type \"protein_coding\";
chrT\ttest\ttranscript\t101\t400\t.\t+\t.\tgene_id \"P\"; transcript_id \"P1\";
chrT\ttest\texon\t301\t400\t.\t+\t.\tgene_id \"P\"; transcript_id \"P1\";
chrT\ttest\texon\t101\t150\t.\t+\t.\tgene_id \"P\"; transcript_id \"P1\";
chrT\ttest\texon\t201\t250\t.\t+\t.\tgene_id \"P\"; transcript_id \"P1\";
chrT\ttest\texon\t101\t160\t.\t+\t.\tgene_id \"P\"; transcript_id \"P2\";
chrT\ttest\texon\t301\t400\t.\t+\t.\tgene_id \"P\"; transcript_id \"P2\";
chrT\ttest\texon\t1001\t1100\t.\t-\t.\tgene_id \"M\"; transcript_id \"M1\"; gene_biotype \"lncRNA\";
chrT\ttest\texon\t1301\t1400\t.\t-\t.\tgene_id \"M\"; transcript_id \"M1\";
chrT\ttest\texon\t1151\t1250\t.\t-\t.\tgene_id \"M\"; transcript_id \"M1\";
chrT\ttest\texon\t2001\t2100\t.\t+\t.\tgene_id \"S\"; transcript_id \"S1\";
";

#[test]
fn gff3_plus_strand_sites_are_the_exonic_bases_of_each_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let genes = all_genes(&write(dir.path(), "a.gff3", GFF3));
    let p = gene(&genes, "P");
    assert_eq!(
        (p.strand, p.start, p.end, p.chrom.as_str()),
        (Strand::Plus, 101, 400, "chrT")
    );
    assert_eq!(p.name.as_deref(), Some("Pname"));
    assert_eq!(p.biotype.as_deref(), Some("protein_coding"));
    assert_eq!(p.transcripts.len(), 2);
    // tx-P1: introns 151-200 and 251-300. Donor = last exon base before each intron (150,
    // 250); acceptor = first exon base after it (201, 301). Transcription order = genomic.
    assert_eq!(p.transcripts[0].id, "tx-P1");
    assert_eq!(
        marks(&p.transcripts[0].sites(p.strand)),
        [(150, "D"), (201, "A"), (250, "D"), (301, "A")]
    );
    // tx-P2: intron 161-300: donor 160, acceptor 301.
    assert_eq!(marks(&p.transcripts[1].sites(p.strand)), [(160, "D"), (301, "A")]);
    // The gene's distinct sites, by position.
    assert_eq!(
        marks(&p.sites()),
        [(150, "D"), (160, "D"), (201, "A"), (250, "D"), (301, "A")]
    );
}

#[test]
fn gff3_minus_strand_sites_are_the_exonic_bases_in_transcription_order() {
    let dir = tempfile::tempdir().unwrap();
    let genes = all_genes(&write(dir.path(), "a.gff3", GFF3));
    let m = gene(&genes, "M");
    assert_eq!((m.strand, m.start, m.end), (Strand::Minus, 1001, 1400));
    assert_eq!(m.biotype.as_deref(), Some("lncRNA"));
    // Transcription runs 1400 -> 1001: exon 1 = 1301-1400, exon 2 = 1151-1250, exon 3 =
    // 1001-1100. Intron 1251-1300: donor = exon 1's last transcribed base = its lowest, 1301;
    // acceptor = exon 2's first transcribed base = its highest, 1250. Intron 1101-1150:
    // donor 1151, acceptor 1100.
    assert_eq!(
        marks(&m.transcripts[0].sites(m.strand)),
        [(1301, "D"), (1250, "A"), (1151, "D"), (1100, "A")]
    );
    // Exons are kept in genomic order whatever the strand.
    let ex: Vec<(u64, u64)> = m.transcripts[0].exons.iter().map(|e| (e.start, e.end)).collect();
    assert_eq!(ex, [(1001, 1100), (1151, 1250), (1301, 1400)]);
    // 5'->3' offsets: the minus strand counts from the gene's end.
    assert_eq!(m.offset(1400), Some(0));
    assert_eq!(m.offset(1301), Some(99));
    assert_eq!(m.offset(1000), None);
}

#[test]
fn gtf_sites_match_hand_worked_coordinates_on_both_strands() {
    let dir = tempfile::tempdir().unwrap();
    let genes = all_genes(&write(dir.path(), "a.gtf", GTF));
    let p = gene(&genes, "P");
    assert_eq!(p.name.as_deref(), Some("Pname"));
    assert_eq!(p.biotype.as_deref(), Some("protein_coding"));
    assert_eq!(p.transcripts[0].id, "P1");
    // Same hand-worked sites as the GFF3 version (see above).
    assert_eq!(
        marks(&p.transcripts[0].sites(Strand::Plus)),
        [(150, "D"), (201, "A"), (250, "D"), (301, "A")]
    );
    assert_eq!(
        marks(&p.transcripts[1].sites(Strand::Plus)),
        [(160, "D"), (301, "A")]
    );
    let m = gene(&genes, "M");
    // No gene line: the gene spans its features.
    assert_eq!((m.strand, m.start, m.end), (Strand::Minus, 1001, 1400));
    assert_eq!(m.biotype.as_deref(), Some("lncRNA"));
    assert_eq!(
        marks(&m.transcripts[0].sites(m.strand)),
        [(1301, "D"), (1250, "A"), (1151, "D"), (1100, "A")]
    );
}

#[test]
fn exons_listed_out_of_order_are_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let genes = all_genes(&write(dir.path(), "a.gtf", GTF));
    // P1's exons come as 301-400, 101-150, 201-250 in the file.
    let ex: Vec<(u64, u64)> = gene(&genes, "P").transcripts[0]
        .exons
        .iter()
        .map(|e| (e.start, e.end))
        .collect();
    assert_eq!(ex, [(101, 150), (201, 250), (301, 400)]);
}

#[test]
fn single_exon_transcripts_give_no_sites() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("a.gff3", GFF3), ("a.gtf", GTF)] {
        let genes = all_genes(&write(dir.path(), name, text));
        let s = gene(&genes, "S");
        assert_eq!(s.transcripts.len(), 1);
        assert!(s.sites().is_empty() && s.introns().is_empty() && !s.has_sites());
        // The default selection keeps genes with sites only.
        let cfg = GenomeConfig::new("unused.fa", dir.path().join(name));
        let ids: Vec<String> = GeneStream::open(&cfg, None, 1, &big())
            .unwrap()
            .map(|g| g.unwrap().id)
            .collect();
        assert_eq!(ids, ["P", "M"], "{name}");
    }
}

#[test]
fn abutting_exons_merge_into_one() {
    let dir = tempfile::tempdir().unwrap();
    let text = "chrT\tt\texon\t10\t20\t.\t+\t.\tgene_id \"G\"; transcript_id \"T\";
chrT\tt\texon\t21\t30\t.\t+\t.\tgene_id \"G\"; transcript_id \"T\";
chrT\tt\texon\t41\t50\t.\t+\t.\tgene_id \"G\"; transcript_id \"T\";
";
    let genes = all_genes(&write(dir.path(), "a.gtf", text));
    // 10-20 and 21-30 leave no base between them: one exon 10-30, one intron 31-40.
    assert_eq!(marks(&genes[0].sites()), [(30, "D"), (41, "A")]);
}

// ---------------------------------------------------------------------------------------
// Streaming: genes grouped as the file lists them.

#[test]
fn interleaved_genes_within_max_open_genes_are_grouped() {
    let dir = tempfile::tempdir().unwrap();
    let text = "chrT\tt\texon\t10\t20\t.\t+\t.\tgene_id \"A\"; transcript_id \"A1\";
chrT\tt\texon\t100\t120\t.\t-\t.\tgene_id \"B\"; transcript_id \"B1\";
chrT\tt\texon\t31\t40\t.\t+\t.\tgene_id \"A\"; transcript_id \"A1\";
chrT\tt\texon\t141\t150\t.\t-\t.\tgene_id \"B\"; transcript_id \"B1\";
";
    let path = write(dir.path(), "a.gtf", text);
    let genes: Vec<Gene> = AnnotationReader::open(&path, AnnotationFormat::Auto, 2, &big())
        .unwrap()
        .collect::<anyhow::Result<_>>()
        .unwrap();
    // A: intron 21-30 (+): donor 20, acceptor 31. B: intron 121-140 (-): donor 141,
    // acceptor 120.
    assert_eq!(marks(&gene(&genes, "A").sites()), [(20, "D"), (31, "A")]);
    assert_eq!(marks(&gene(&genes, "B").sites()), [(120, "A"), (141, "D")]);
    // With one gene open at a time, A's return at line 3 is refused, naming both lines.
    let e = first_error(&path, 1);
    assert!(e.contains("a.gtf: line 3:"), "{e}");
    assert!(
        e.contains("gene `A` appears again") && e.contains("ended at line 1"),
        "{e}"
    );
    assert!(e.contains("genome.max_open_genes"), "{e}");
}

#[test]
fn gff3_child_whose_parent_is_not_open_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = "##gff-version 3
chrT\tt\tgene\t1\t100\t.\t+\t.\tID=g1
chrT\tt\tmRNA\t1\t100\t.\t+\t.\tID=t1;Parent=g1
###
chrT\tt\texon\t1\t10\t.\t+\t.\tParent=t1
";
    let e = first_error(&write(dir.path(), "a.gff3", text), 16);
    assert!(e.contains("a.gff3: line 5:") && e.contains("Parent `t1`"), "{e}");
    // An exon without any Parent.
    let text = "##gff-version 3\nchrT\tt\texon\t1\t10\t.\t+\t.\tID=x\n";
    let e = first_error(&write(dir.path(), "b.gff3", text), 16);
    assert!(
        e.contains("b.gff3: line 2:") && e.contains("without a Parent"),
        "{e}"
    );
}

#[test]
fn gff3_exons_directly_under_a_gene_form_one_transcript_named_after_it() {
    // RefSeq writes pseudogene exons with Parent = the gene.
    let dir = tempfile::tempdir().unwrap();
    let text = "##gff-version 3
chrT\tt\tpseudogene\t100\t300\t.\t-\t.\tID=gene-Q;gene_biotype=pseudogene
chrT\tt\texon\t100\t150\t.\t-\t.\tID=q2;Parent=gene-Q
chrT\tt\texon\t201\t300\t.\t-\t.\tID=q1;Parent=gene-Q
chrT\tt\tmobile_genetic_element\t400\t500\t.\t+\t.\tID=te1
";
    let genes = all_genes(&write(dir.path(), "a.gff3", text));
    assert_eq!(genes.len(), 1, "the mobile element is no gene");
    assert_eq!(genes[0].transcripts[0].id, "Q");
    // Intron 151-200 on minus: donor 201, acceptor 150.
    assert_eq!(marks(&genes[0].sites()), [(150, "A"), (201, "D")]);
}

#[test]
fn overlapping_exons_in_a_transcript_are_an_error_naming_both_lines() {
    let dir = tempfile::tempdir().unwrap();
    let text = "chrT\tt\texon\t100\t200\t.\t+\t.\tgene_id \"G\"; transcript_id \"T\";
chrT\tt\texon\t300\t400\t.\t+\t.\tgene_id \"G\"; transcript_id \"T\";
chrT\tt\texon\t150\t250\t.\t+\t.\tgene_id \"G\"; transcript_id \"T\";
";
    let e = first_error(&write(dir.path(), "a.gtf", text), 16);
    assert!(e.contains("a.gtf: line 3:"), "{e}");
    assert!(
        e.contains("exon 150-250 of transcript `T` overlaps its exon 100-200 (line 1)"),
        "{e}"
    );
}

#[test]
fn malformed_gff3_lines_are_errors_naming_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let head = "##gff-version 3\nchrT\tt\tgene\t1\t1000\t.\t+\t.\tID=g\n";
    let cases = [
        (
            "chrT\tt\texon\t10\t20\t.\t+\tParent=g",
            "expected 9 tab-separated columns, found 8",
        ),
        ("chrT t exon 10 20 . + . Parent=g", "separated by tabs"),
        (
            "chrT\tt\texon\tten\t20\t.\t+\t.\tParent=g",
            "column 4 (start) is `ten`",
        ),
        (
            "chrT\tt\texon\t10\t2x\t.\t+\t.\tParent=g",
            "column 5 (end) is `2x`",
        ),
        (
            "chrT\tt\texon\t30\t20\t.\t+\t.\tParent=g",
            "end 20 (column 5) is before start 30",
        ),
        (
            "chrT\tt\texon\t10\t20\t.\tx\t.\tParent=g",
            "column 7 (strand) is `x`",
        ),
    ];
    for (i, (line, want)) in cases.iter().enumerate() {
        let name = format!("bad{i}.gff3");
        let e = first_error(&write(dir.path(), &name, &format!("{head}{line}\n")), 16);
        assert!(e.contains(&format!("{name}: line 3:")), "{e}");
        assert!(e.contains(want), "{e}");
    }
}

#[test]
fn malformed_gtf_lines_are_errors_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let head = "chrT\tt\texon\t1\t10\t.\t+\t.\tgene_id \"G\"; transcript_id \"T\";\n";
    let cases = [
        (
            "chrT\tt\texon\t20\t30\t.\t+\t.\ttranscript_id \"T\";",
            "no gene_id attribute",
        ),
        (
            "chrT\tt\texon\t20\t30\t.\t+\t.\tgene_id \"G; transcript_id \"T\";",
            "gene_id",
        ),
        (
            "chrT\tt\texon\t20\t30\t.\t+\t.\tgene_id \"G\";",
            "without a transcript_id",
        ),
        (
            "chrT\tt\texon\t-5\t30\t.\t+\t.\tgene_id \"G\"; transcript_id \"T\";",
            "column 4 (start)",
        ),
    ];
    for (i, (line, want)) in cases.iter().enumerate() {
        let name = format!("bad{i}.gtf");
        let e = first_error(&write(dir.path(), &name, &format!("{head}{line}\n")), 16);
        assert!(e.contains(&format!("{name}: line 2:")), "{e}");
        assert!(e.contains(want), "{e}");
    }
}

#[test]
fn truncated_gzip_annotation_is_an_input_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..2000 {
        text.push_str(&format!(
            "chrT\tt\texon\t{}\t{}\t.\t+\t.\tgene_id \"G{i}\"; transcript_id \"T{i}\";\n",
            i * 10 + 1,
            i * 10 + 5
        ));
    }
    let gz = gzip_bytes(text.as_bytes());
    let path = dir.path().join("cut.gtf.gz");
    std::fs::write(&path, &gz[..gz.len() * 2 / 3]).unwrap();
    let e = first_error(&path, 16);
    assert!(
        e.contains("cut.gtf.gz: line ") && e.contains("truncated or corrupt"),
        "{e}"
    );
    // The whole file reads.
    std::fs::write(&path, &gz).unwrap();
    let cfg = GenomeConfig {
        select: spliceboost::genome::GeneSelection {
            require_sites: false,
            ..Default::default()
        },
        ..GenomeConfig::new("unused.fa", &path)
    };
    assert_eq!(GeneStream::open(&cfg, None, 1, &big()).unwrap().count(), 2000);
}

#[test]
fn annotation_format_is_told_by_content_then_extension() {
    let dir = tempfile::tempdir().unwrap();
    let detect = |name: &str, text: &str| {
        spliceboost::genome::detect_format(&write(dir.path(), name, text), AnnotationFormat::Auto)
    };
    assert_eq!(detect("gff_content.txt", GFF3).unwrap(), Format::Gff3);
    assert_eq!(detect("gtf_content.txt", GTF).unwrap(), Format::Gtf);
    // A GTF named .gff3 is still GTF: content first.
    assert_eq!(
        detect("misnamed.gff3", &GTF[GTF.find('\n').unwrap() + 1..]).unwrap(),
        Format::Gtf
    );
    assert_eq!(detect("empty.gtf", "# nothing\n").unwrap(), Format::Gtf);
    assert_eq!(detect("empty.gff.gz", "").unwrap(), Format::Gff3);
    let e = detect("empty.txt", "").unwrap_err().to_string();
    assert!(e.contains("empty.txt") && e.contains("genome.format"), "{e}");
}

// ---------------------------------------------------------------------------------------
// The fly fixture: D. melanogaster chromosome 4 (RefSeq), GFF3 and GTF.

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/genome")
        .join(name)
}

/// The fixture copied to a temporary directory (indexes get written beside the FASTA).
fn fly() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["dmel_chr4.fna.gz", "dmel_chr4.gff3.gz", "dmel_chr4.gtf.gz"] {
        std::fs::copy(fixture(f), dir.path().join(f)).unwrap();
    }
    dir
}

fn fly_config(dir: &Path, annotation: &str) -> GenomeConfig {
    GenomeConfig::new(dir.join("dmel_chr4.fna.gz"), dir.join(annotation))
}

#[test]
fn fly_minus_strand_genes_match_hand_checked_sites() {
    // From dmel_chr4.gff3.gz (zcat | grep), all on NC_004353.4, strand -:
    //
    // CG31997: NM_001297780.1 exons 155765-156060, 155027-155147, 154654-154965
    //          NM_166735.3    exons 155765-156060, 155027-155147, 154717-154965
    //   introns 155148-155764 and 154966-155026 (both transcripts). On minus, the donor is
    //   the intron's high neighbour (the exon's lowest base), the acceptor its low neighbour:
    //   donors 155765, 155027; acceptors 155147, 154965.
    //
    // CG2219 (Arl4): NM_001258479.3 exons 179261-179389, 179092-179211, 178937-179034,
    //                                    178778-178880, 177348-177992
    //                NM_001272118.1 exons 179264-179389, 179092-179211, 178937-179034,
    //                                    178778-178836, 177438-177992
    //                NM_143648.3    exons 179264-179389, 179092-179211, 178937-179034,
    //                                    178778-178880, 177438-177992
    //   donors (exon starts after the first in transcription order): 179261, 179264, 179092,
    //   178937, 178778; acceptors (exon ends of all but the first): 179211, 179034, 178880,
    //   178836, 177992.
    //
    // Checked against the genome: at each donor d, bases d-2..d-1 are AC (GT reverse
    // complemented); at each acceptor a, bases a+1..a+2 are CT (AG reverse complemented).
    let dir = fly();
    for (ann, cg31997, cg2219) in [
        ("dmel_chr4.gff3.gz", "Dmel_CG31997", "Dmel_CG2219"),
        ("dmel_chr4.gtf.gz", "Dmel_CG31997", "Dmel_CG2219"),
    ] {
        let genes = all_genes(&dir.path().join(ann));
        let g = gene(&genes, cg31997);
        assert_eq!((g.strand, g.chrom.as_str()), (Strand::Minus, "NC_004353.4"));
        assert_eq!(
            marks(&g.sites()),
            [(154965, "A"), (155027, "D"), (155147, "A"), (155765, "D")],
            "{ann}"
        );
        let t = g.transcripts.iter().find(|t| t.id == "NM_001297780.1").unwrap();
        assert_eq!(
            marks(&t.sites(g.strand)),
            [(155765, "D"), (155147, "A"), (155027, "D"), (154965, "A")],
            "{ann}: transcription order"
        );
        let g = gene(&genes, cg2219);
        assert_eq!(g.transcripts.len(), 3, "{ann}");
        let donors: BTreeSet<u64> = g
            .sites()
            .iter()
            .filter(|s| s.kind == SiteKind::Donor)
            .map(|s| s.position)
            .collect();
        let acceptors: BTreeSet<u64> = g
            .sites()
            .iter()
            .filter(|s| s.kind == SiteKind::Acceptor)
            .map(|s| s.position)
            .collect();
        assert_eq!(
            donors,
            BTreeSet::from([179261, 179264, 179092, 178937, 178778]),
            "{ann}"
        );
        assert_eq!(
            acceptors,
            BTreeSet::from([179211, 179034, 178880, 178836, 177992]),
            "{ann}"
        );
    }
    // And the genome agrees.
    let cfg = fly_config(dir.path(), "dmel_chr4.gff3.gz");
    let mut genome = Genome::open(&cfg, &dir.path().join("cache"), 1, &big()).unwrap();
    for d in [155765i64, 155027, 179261, 179264, 179092, 178937, 178778] {
        assert_eq!(
            genome.fasta.fetch("NC_004353.4", d - 2, d - 1).unwrap(),
            b"AC",
            "donor {d}"
        );
    }
    for a in [155147i64, 154965, 179211, 179034, 178880, 178836, 177992] {
        assert_eq!(
            genome.fasta.fetch("NC_004353.4", a + 1, a + 2).unwrap(),
            b"CT",
            "acceptor {a}"
        );
    }
}

fn reverse_complement(s: &[u8]) -> Vec<u8> {
    s.iter()
        .rev()
        .map(|b| match b {
            b'A' => b'T',
            b'C' => b'G',
            b'G' => b'C',
            b'T' => b'A',
            _ => b'N',
        })
        .collect()
}

/// (GT-AG introns, introns) of a gene set's distinct introns read 5'->3' on their strand,
/// found from the sites alone: the two bases after the donor (in transcription order) and
/// the two before the acceptor. Each gene's sequence is read once, with 3 nt of flank.
fn gt_ag(genome: &mut Genome, genes: &[Gene]) -> (usize, usize) {
    let (mut total, mut canonical) = (0, 0);
    for g in genes {
        let first = g.start as i64 - 3;
        let seq = genome.fasta.fetch(&g.chrom, first, g.end as i64 + 3).unwrap();
        let at = |from: i64, to: i64| seq[(from - first) as usize..=(to - first) as usize].to_vec();
        for intron in g.introns() {
            let (d, a) = (intron.donor(g.strand) as i64, intron.acceptor(g.strand) as i64);
            let (after_donor, before_acceptor) = match g.strand {
                Strand::Plus => (at(d + 1, d + 2), at(a - 2, a - 1)),
                Strand::Minus => (
                    reverse_complement(&at(d - 2, d - 1)),
                    reverse_complement(&at(a + 1, a + 2)),
                ),
            };
            total += 1;
            canonical += (after_donor == b"GT" && before_acceptor == b"AG") as usize;
        }
    }
    (canonical, total)
}

#[test]
fn fly_introns_are_gt_ag_at_least_98_percent_in_gff3_and_gtf() {
    let dir = fly();
    for ann in ["dmel_chr4.gff3.gz", "dmel_chr4.gtf.gz"] {
        let cfg = fly_config(dir.path(), ann);
        let mut genome = Genome::open(&cfg, &dir.path().join("cache"), 1, &big()).unwrap();
        let genes: Vec<Gene> = genome
            .genes(&big())
            .unwrap()
            .collect::<anyhow::Result<_>>()
            .unwrap();
        assert!(genes.len() >= 80, "{ann}: {} genes with sites", genes.len());
        let minus = genes.iter().filter(|g| g.strand == Strand::Minus).count();
        assert!(minus >= 30, "{ann}: {minus} minus-strand genes");
        let (canonical, total) = gt_ag(&mut genome, &genes);
        let fraction = canonical as f64 / total as f64;
        eprintln!("{ann}: {canonical}/{total} distinct introns GT-AG = {fraction:.4}");
        assert!(total > 800, "{ann}: {total} introns");
        assert!(
            fraction >= 0.98,
            "{ann}: GT/AG fraction {fraction:.4} ({canonical}/{total})"
        );
        // Off by one on either side, the same introns are far from canonical: the test can fail.
        let shifted: Vec<Gene> = genes
            .iter()
            .map(|g| {
                let mut g = g.clone();
                for t in &mut g.transcripts {
                    for e in &mut t.exons {
                        e.end += 1;
                        e.start += 1;
                    }
                }
                g
            })
            .collect();
        let (c, t) = gt_ag(&mut genome, &shifted);
        assert!((c as f64 / t as f64) < 0.2, "{ann}: shifted {c}/{t}");
    }
}

#[test]
fn fly_gff3_and_gtf_give_the_same_sites() {
    // Two formats, two parsers of noodles, one convention: the GTF's genes and sites equal the
    // GFF3's; the GFF3 has more genes only where the GTF lists no exon (pseudogenes).
    let dir = fly();
    let gff: HashMap<String, Gene> = all_genes(&dir.path().join("dmel_chr4.gff3.gz"))
        .into_iter()
        .map(|g| (g.id.clone(), g))
        .collect();
    let gtf = all_genes(&dir.path().join("dmel_chr4.gtf.gz"));
    assert!(gtf.len() >= 100, "{} GTF genes", gtf.len());
    for g in &gtf {
        let other = gff
            .get(&g.id)
            .unwrap_or_else(|| panic!("{} not in the GFF3", g.id));
        assert_eq!(g.sites(), other.sites(), "{}", g.id);
        assert_eq!(
            (g.strand, g.start, g.end),
            (other.strand, other.start, other.end),
            "{}",
            g.id
        );
        assert_eq!(g.biotype, other.biotype, "{}", g.id);
    }
    let gtf_ids: BTreeSet<&str> = gtf.iter().map(|g| g.id.as_str()).collect();
    for g in gff.values().filter(|g| !gtf_ids.contains(g.id.as_str())) {
        assert_eq!(g.biotype.as_deref(), Some("pseudogene"), "{}", g.id);
    }
}

// ---------------------------------------------------------------------------------------
// Selection and aliases.

fn selected(cfg: &GenomeConfig) -> Vec<String> {
    GeneStream::open(cfg, None, 42, &big())
        .unwrap()
        .map(|g| g.unwrap().id)
        .collect()
}

#[test]
fn selection_by_id_list_biotype_and_chromosome() {
    let dir = fly();
    let mut cfg = fly_config(dir.path(), "dmel_chr4.gff3.gz");
    let all = selected(&cfg);
    // Counted by a Python script over the GFF3 (top-level features with a transcript of two
    // exons or more, by gene_biotype): 79 protein_coding, 8 antisense_RNA, 6 lncRNA and 6
    // pseudogene.
    assert_eq!(all.len(), 99);

    let ids = write(
        dir.path(),
        "ids.txt",
        "# wanted\nDmel_CG31997\n\nDmel_CG2219  # Arl4\nNOT_A_GENE\n",
    );
    cfg.select.ids = Some(ids);
    let mut stream = GeneStream::open(&cfg, None, 42, &big()).unwrap();
    let got: Vec<String> = stream.by_ref().map(|g| g.unwrap().id).collect();
    assert_eq!(got, ["Dmel_CG31997", "Dmel_CG2219"]);
    assert_eq!(stream.unmatched_ids(), ["NOT_A_GENE"]);

    cfg.select.ids = None;
    cfg.select.biotypes = Some(vec!["pseudogene".into()]);
    assert_eq!(selected(&cfg).len(), 6);
    cfg.select.biotypes = Some(vec!["protein_coding".into(), "lncRNA".into()]);
    let some = selected(&cfg);
    assert_eq!(some.len(), 79 + 6);
    assert!(some.contains(&"Dmel_CG2219".to_string()));

    cfg.select.biotypes = None;
    cfg.select.chromosomes = Some(vec!["4".into()]);
    assert!(selected(&cfg).is_empty(), "`4` is no name of the annotation yet");
    cfg.aliases.insert("4".into(), "NC_004353.4".into());
    assert_eq!(selected(&cfg), all, "through the alias");
}

#[test]
fn random_selection_is_seeded_reproducible_and_a_subset() {
    let dir = fly();
    let mut cfg = fly_config(dir.path(), "dmel_chr4.gtf.gz");
    let all = selected(&cfg);
    cfg.select.random = Some(10);
    cfg.select.seed = Some(7);
    let a = selected(&cfg);
    assert_eq!(a.len(), 10);
    assert_eq!(a.iter().collect::<BTreeSet<_>>().len(), 10, "distinct");
    assert!(a.iter().all(|g| all.contains(g)));
    // In annotation order.
    let pos: Vec<usize> = a
        .iter()
        .map(|g| all.iter().position(|x| x == g).unwrap())
        .collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(selected(&cfg), a, "same seed, same genes");
    cfg.select.seed = Some(8);
    assert_ne!(selected(&cfg), a, "another seed, other genes");
    // The run's seed serves when select.seed is not set.
    cfg.select.seed = None;
    let with_run_seed: Vec<String> = GeneStream::open(&cfg, None, 7, &big())
        .unwrap()
        .map(|g| g.unwrap().id)
        .collect();
    assert_eq!(with_run_seed, a);
    // More than there are: all of them.
    cfg.select.random = Some(100_000);
    assert_eq!(selected(&cfg), all);
}

#[test]
fn chromosome_missing_from_the_fasta_names_both_files_and_suggests_an_alias() {
    let dir = fly();
    // CG31997's lines with the chromosome called `4`, as Ensembl would.
    let text = "4\tt\texon\t155765\t156060\t.\t-\t.\tgene_id \"CG31997\"; transcript_id \"T\";
4\tt\texon\t155027\t155147\t.\t-\t.\tgene_id \"CG31997\"; transcript_id \"T\";
";
    let ann = write(dir.path(), "ensembl.gtf", text);
    let mut cfg = GenomeConfig::new(dir.path().join("dmel_chr4.fna.gz"), &ann);
    let genome = Genome::open(&cfg, &dir.path().join("cache"), 1, &big()).unwrap();
    let e = genome
        .genes(&big())
        .unwrap()
        .find_map(|g| g.err())
        .expect("an error");
    let e = input_error(e);
    assert!(e.contains("ensembl.gtf: line 1:"), "{e}");
    assert!(
        e.contains("chromosome `4`") && e.contains("dmel_chr4.fna.gz"),
        "{e}"
    );
    assert!(e.contains("NC_004353.4"), "{e}");
    assert!(e.contains("[genome.aliases] \"4\" = \"NC_004353.4\""), "{e}");
    // With the alias, the gene reads, named as in the FASTA.
    cfg.aliases.insert("4".into(), "NC_004353.4".into());
    let genome = Genome::open(&cfg, &dir.path().join("cache"), 1, &big()).unwrap();
    let genes: Vec<Gene> = genome
        .genes(&big())
        .unwrap()
        .collect::<anyhow::Result<_>>()
        .unwrap();
    assert_eq!(genes[0].chrom, "NC_004353.4");
    assert_eq!(marks(&genes[0].sites()), [(155147, "A"), (155765, "D")]);

    // `chr2` against a FASTA of `2` and `3`: suggested by name; `chrZ`: no suggestion.
    let fa = write(dir.path(), "two.fa", ">2\nACGTACGTAC\n>3\nACGT\n");
    for (chrom, hint) in [("chr2", Some("\"chr2\" = \"2\"")), ("chrZ", None)] {
        let text = format!(
            "{chrom}\tt\texon\t1\t2\t.\t+\t.\tgene_id \"G\"; transcript_id \"T\";\n{chrom}\tt\texon\t5\t6\t.\t+\t.\tgene_id \"G\"; transcript_id \"T\";\n"
        );
        let cfg = GenomeConfig::new(&fa, write(dir.path(), "ucsc.gtf", &text));
        let genome = Genome::open(&cfg, &dir.path().join("cache"), 1, &big()).unwrap();
        let e = input_error(genome.genes(&big()).unwrap().find_map(|g| g.err()).unwrap());
        assert!(
            e.contains(&format!("chromosome `{chrom}`")) && e.contains("two.fa"),
            "{e}"
        );
        match hint {
            Some(h) => assert!(e.contains(h), "{e}"),
            None => assert!(e.contains("[genome.aliases]") && !e.contains("= \"2\""), "{e}"),
        }
    }
}

#[test]
fn gene_past_the_chromosome_end_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let fa = write(dir.path(), "g.fa", ">c\nACGTACGTAC\n");
    let text = "c\tt\texon\t1\t3\t.\t+\t.\tgene_id \"G\"; transcript_id \"T\";\nc\tt\texon\t8\t12\t.\t+\t.\tgene_id \"G\"; transcript_id \"T\";\n";
    let cfg = GenomeConfig::new(&fa, write(dir.path(), "a.gtf", text));
    let genome = Genome::open(&cfg, &dir.path().join("cache"), 1, &big()).unwrap();
    let e = input_error(genome.genes(&big()).unwrap().find_map(|g| g.err()).unwrap());
    assert!(
        e.contains("a.gtf: line 1:") && e.contains("ends at 12") && e.contains("has 10 bases"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------
// Config.

#[test]
fn genome_config_rejects_unknown_keys_and_validation_names_the_key() {
    let ok: GenomeConfig = toml::from_str(
        r#"
        fasta = "g.fa.gz"
        annotation = "a.gtf.gz"
        format = "gtf"
        max_open_genes = 4
        cache_dir = "cache"
        [aliases]
        "4" = "NC_004353.4"
        [select]
        ids = "ids.txt"
        biotypes = ["protein_coding"]
        chromosomes = ["4"]
        random = 5
        seed = 3
        require_sites = false
        "#,
    )
    .unwrap();
    assert_eq!(ok.format, AnnotationFormat::Gtf);
    assert_eq!(ok.canonical("4"), "NC_004353.4");
    assert_eq!(ok.canonical("X"), "X");
    ok.validate().unwrap();

    let e = toml::from_str::<GenomeConfig>("fasta = \"g\"\nannotaton = \"a\"\n").unwrap_err();
    assert!(e.to_string().contains("unknown field `annotaton`"), "{e}");
    let e = toml::from_str::<GenomeConfig>("fasta = \"g\"\nannotation = \"a\"\n[select]\nrandon = 3\n")
        .unwrap_err();
    assert!(e.to_string().contains("unknown field `randon`"), "{e}");

    let bad = |edit: &dyn Fn(&mut GenomeConfig)| {
        let mut c = GenomeConfig::new("g.fa", "a.gtf");
        edit(&mut c);
        c.validate().unwrap_err()
    };
    assert_eq!(bad(&|c| c.select.random = Some(0)).0, "genome.select.random");
    assert_eq!(
        bad(&|c| c.select.biotypes = Some(vec![])).0,
        "genome.select.biotypes"
    );
    assert_eq!(bad(&|c| c.max_open_genes = 0).0, "genome.max_open_genes");
    assert_eq!(bad(&|c| c.fasta = PathBuf::new()).0, "genome.fasta");
    assert_eq!(bad(&|c| c.select.seed = Some(1)).0, "genome.select.seed");
    let (key, msg) = bad(&|c| {
        c.aliases.insert("chr4".into(), "4".into());
        c.aliases.insert("4".into(), "NC_004353.4".into());
    });
    assert_eq!(key, "genome.aliases.chr4");
    assert!(msg.contains("\"chr4\" = \"NC_004353.4\""), "{msg}");
}

// ---------------------------------------------------------------------------------------
// FASTA by region.

#[test]
fn soft_masked_bases_read_upper_case_and_iupac_codes_as_n() {
    let dir = tempfile::tempdir().unwrap();
    let fa = write(dir.path(), "m.fa", ">s\nacgtRYKMnN\nACGTswbdhv\n");
    let mut f = Fasta::open(&fa, None, &big()).unwrap();
    assert_eq!(f.fetch("s", 1, 20).unwrap(), b"ACGTNNNNNNACGTNNNNNN");
}

#[test]
fn regions_past_the_chromosome_ends_are_padded_with_n() {
    let dir = tempfile::tempdir().unwrap();
    let fa = write(dir.path(), "p.fa", ">s\nACGTA\nCCGG\n");
    let mut f = Fasta::open(&fa, None, &big()).unwrap();
    assert_eq!(f.fetch("s", -2, 3).unwrap(), b"NNNACG");
    assert_eq!(f.fetch("s", 8, 12).unwrap(), b"GGNNN");
    assert_eq!(f.fetch("s", 20, 22).unwrap(), b"NNN");
    assert_eq!(f.fetch("s", -5, -3).unwrap(), b"NNN");
    assert_eq!(f.fetch("s", 4, 3).unwrap(), b"");
    let e = f.fetch("t", 1, 2).unwrap_err().to_string();
    assert!(e.contains("no sequence named `t`") && e.contains("p.fa"), "{e}");
}

#[test]
fn fai_is_built_beside_the_fasta_in_samtools_layout_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    // ">one desc\n" is 10 bytes: `one` starts at byte 10, 8 bases in lines of 5 (6 bytes).
    // ">two\n" starts at 10 + 6 + 4 = 20, so `two` starts at 25: 10 bases in lines of 4 (5 bytes).
    let fa = write(
        dir.path(),
        "s.fa",
        ">one desc\nACGTA\nCGT\n>two\nAAAA\nAAAA\nAA\n",
    );
    let f = Fasta::open(&fa, None, &big()).unwrap();
    assert_eq!(f.fai_path(), dir.path().join("s.fa.fai"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("s.fa.fai")).unwrap(),
        "one\t8\t10\t5\t6\ntwo\t10\t25\t4\t5\n"
    );
    assert_eq!(f.notes().len(), 1, "{:?}", f.notes());
    let f = Fasta::open(&fa, None, &big()).unwrap();
    assert!(f.notes().is_empty(), "reused: {:?}", f.notes());
    assert_eq!(f.compression(), Compression::Plain);
    // A FASTA newer than its index gets a new one.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&fa)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let f = Fasta::open(&fa, None, &big()).unwrap();
    assert!(f.notes()[0].contains("older than the FASTA"), "{:?}", f.notes());
}

#[test]
fn index_goes_to_the_cache_dir_when_it_cannot_be_written_beside_the_fasta() {
    let dir = tempfile::tempdir().unwrap();
    let fa = write(dir.path(), "r.fa", ">s\nACGTACGT\n");
    // A directory where the index would go: writing it there fails (as in a read-only
    // directory, which root cannot simulate with permissions).
    std::fs::create_dir(dir.path().join("r.fa.fai")).unwrap();
    let cache = dir.path().join("cache");
    let mut f = Fasta::open(&fa, Some(&cache), &big()).unwrap();
    assert!(f.fai_path().starts_with(&cache), "{}", f.fai_path().display());
    assert_eq!(f.fetch("s", 3, 6).unwrap(), b"GTAC");
    let f = Fasta::open(&fa, Some(&cache), &big()).unwrap();
    assert!(
        f.notes().is_empty(),
        "the cached index is reused: {:?}",
        f.notes()
    );
    // Without a cache directory: an error saying where it tried.
    let e = format!("{:#}", Fasta::open(&fa, None, &big()).unwrap_err());
    assert!(e.contains("r.fa.fai") && e.contains("genome.cache_dir"), "{e}");
}

#[test]
fn plain_gzip_fasta_is_decompressed_once_to_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let fa = dir.path().join("z.fa.gz");
    std::fs::write(&fa, gzip_bytes(b">s\nACGTAC\nGG\n")).unwrap();
    let cache = dir.path().join("cache");
    let mut f = Fasta::open(&fa, Some(&cache), &big()).unwrap();
    assert_eq!(f.compression(), Compression::Gzip);
    assert!(f.data_path().starts_with(&cache));
    assert!(
        f.notes().iter().any(|n| n.contains("decompressing it once")),
        "{:?}",
        f.notes()
    );
    assert_eq!(f.fetch("s", 5, 9).unwrap(), b"ACGGN");
    let f = Fasta::open(&fa, Some(&cache), &big()).unwrap();
    assert!(f.notes().is_empty(), "the copy is reused: {:?}", f.notes());
    // No cache directory: refused, with the bgzip hint.
    let e = input_error(Fasta::open(&fa, None, &big()).unwrap_err());
    assert!(e.contains("z.fa.gz") && e.contains("bgzip"), "{e}");
}

#[test]
fn bgzip_fasta_gets_a_gzi_beside_it_and_reads_across_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let seq: Vec<u8> = (0..5000).map(|i| b"ACGT"[(i * 7 + i / 13) % 4]).collect();
    let mut text = b">s\n".to_vec();
    for line in seq.chunks(60) {
        text.extend_from_slice(line);
        text.push(b'\n');
    }
    let fa = dir.path().join("b.fa.gz");
    std::fs::write(&fa, bgzip_bytes(&text, 1000)).unwrap();
    let mut f = Fasta::open(&fa, None, &big()).unwrap();
    assert_eq!(f.compression(), Compression::Bgzf);
    assert_eq!(f.gzi_path(), Some(dir.path().join("b.fa.gz.gzi").as_path()));
    assert_eq!(f.fetch("s", 990, 3010).unwrap(), seq[989..3010].to_vec());
}

#[test]
fn truncated_compressed_fastas_are_input_errors() {
    let dir = tempfile::tempdir().unwrap();
    let seq: String = (0..20000)
        .map(|i| ['A', 'C', 'G', 'T'][(i * 31 + i / 7) % 4])
        .collect();
    let text = format!(">s\n{seq}\n");
    let cache = dir.path().join("cache");
    let gz = gzip_bytes(text.as_bytes());
    let cut = dir.path().join("cut.fa.gz");
    std::fs::write(&cut, &gz[..gz.len() / 2]).unwrap();
    let e = input_error(Fasta::open(&cut, Some(&cache), &big()).unwrap_err());
    assert!(
        e.contains("cut.fa.gz") && e.contains("truncated or corrupt"),
        "{e}"
    );
    assert!(
        std::fs::read_dir(&cache).map_or(true, |d| d.count() == 0),
        "no half-written copy"
    );

    let bgz = bgzip_bytes(text.as_bytes(), 4096);
    let cut = dir.path().join("cut.fa.bgz");
    std::fs::write(&cut, &bgz[..bgz.len() - 40]).unwrap();
    let e = input_error(Fasta::open(&cut, Some(&cache), &big()).unwrap_err());
    assert!(
        e.contains("cut.fa.bgz") && e.contains("truncated or corrupt"),
        "{e}"
    );
    // Cut exactly at a block boundary: only the missing end-of-file block tells.
    std::fs::write(&cut, &bgz[..bgz.len() - 28]).unwrap();
    let e = input_error(Fasta::open(&cut, Some(&cache), &big()).unwrap_err());
    assert!(e.contains("no end-of-file block"), "{e}");
}

#[test]
fn malformed_fastas_are_errors_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "long.fa",
            ">s\nACGT\nACGTA\n",
            "line 3:",
            "5 bases, more than the 4",
        ),
        (
            "short.fa",
            ">s\nACGT\nAC\nACGT\n",
            "line 4:",
            "goes on after a shorter line (line 3)",
        ),
        (
            "char.fa",
            ">s\nACGT\nAC1T\n",
            "line 3:",
            "column 3: `1` is not a nucleotide code",
        ),
        (
            "dup.fa",
            ">s\nACGT\n>s\nAC\n",
            "line 3:",
            "a second sequence named `s` (the first is at line 1)",
        ),
        ("nohead.fa", "ACGT\n>s\nAC\n", "line 1:", "before the first `>`"),
        ("empty.fa", "", "", "no sequences"),
        ("noname.fa", ">\nACGT\n", "line 1:", "without a name"),
    ];
    for (name, text, line, want) in cases {
        let e = input_error(Fasta::open(&write(dir.path(), name, text), None, &big()).unwrap_err());
        assert!(e.contains(&format!("{name}: {line}")) && e.contains(want), "{e}");
    }
    // CRLF files index (and read) like LF ones.
    let mut f = Fasta::open(
        &write(dir.path(), "crlf.fa", ">s\r\nACG\r\nTTA\r\nC\r\n"),
        None,
        &big(),
    )
    .unwrap();
    assert_eq!(f.fetch("s", 2, 7).unwrap(), b"CGTTAC");
}

#[test]
fn genome_stages_reserve_before_they_hold_memory() {
    let dir = fly();
    // Too small a budget: refused before reading, naming the budget's key.
    let e = AnnotationReader::open(
        &dir.path().join("dmel_chr4.gff3.gz"),
        AnnotationFormat::Auto,
        16,
        &reservation(64 << 10),
    )
    .err()
    .expect("refused");
    assert!(e.to_string().contains("memory.genome"), "{e}");
    // The whole GFF3 (1.6 MB of text) streams within a few hundred KiB of reservations.
    let parent = big();
    let mut r = AnnotationReader::open(
        &dir.path().join("dmel_chr4.gff3.gz"),
        AnnotationFormat::Auto,
        16,
        &parent,
    )
    .unwrap();
    let mut peak = 0;
    while r.next_gene().unwrap().is_some() {
        peak = peak.max(r.reserved());
    }
    assert!(peak > 0 && peak <= 1 << 20, "peak reservation {peak}");
    assert!(r.stats().peak_open_genes <= 16);
    let f = Fasta::open(&dir.path().join("dmel_chr4.fna.gz"), None, &parent).unwrap();
    assert!(
        parent.peak() >= 3 * (64 << 10),
        "the BGZF reader's buffers are reserved"
    );
    drop(f);
}

// ---------------------------------------------------------------------------------------
// Region reads against a naive slice, for plain, gzip and BGZF files.

fn naive(seq: &[u8], start: i64, end: i64) -> Vec<u8> {
    (start..=end)
        .map(|p| {
            if p >= 1 && p <= seq.len() as i64 {
                match seq[p as usize - 1].to_ascii_uppercase() {
                    b @ (b'A' | b'C' | b'G' | b'T') => b,
                    _ => b'N',
                }
            } else {
                b'N'
            }
        })
        .collect()
}

fn fasta_text(seqs: &[(String, Vec<u8>, usize)], crlf: bool) -> Vec<u8> {
    let nl: &[u8] = if crlf { b"\r\n" } else { b"\n" };
    let mut out = Vec::new();
    for (name, seq, width) in seqs {
        out.extend_from_slice(format!(">{name} some description").as_bytes());
        out.extend_from_slice(nl);
        for line in seq.chunks(*width) {
            out.extend_from_slice(line);
            out.extend_from_slice(nl);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn region_reads_equal_a_naive_slice_for_plain_gzip_and_bgzip(
        seqs in proptest::collection::vec(
            (proptest::collection::vec(proptest::sample::select(b"ACGTacgtNnRYKMswbdhv-".to_vec()), 0..1500), 1usize..90),
            1..4,
        ),
        crlf in any::<bool>(),
        block in 50usize..3000,
        regions in proptest::collection::vec((0usize..4, -60i64..1600, 0i64..400), 1..25),
    ) {
        let seqs: Vec<(String, Vec<u8>, usize)> =
            seqs.into_iter().enumerate().map(|(i, (s, w))| (format!("chr{i}"), s, w)).collect();
        let text = fasta_text(&seqs, crlf);
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let plain = dir.path().join("g.fa");
        std::fs::write(&plain, &text).unwrap();
        let gz = dir.path().join("g.fa.gz");
        std::fs::write(&gz, gzip_bytes(&text)).unwrap();
        let bgz = dir.path().join("g.fa.bgz");
        std::fs::write(&bgz, bgzip_bytes(&text, block)).unwrap();
        let mut files = [
            Fasta::open(&plain, Some(&cache), &big()).unwrap(),
            Fasta::open(&gz, Some(&cache), &big()).unwrap(),
            Fasta::open(&bgz, Some(&cache), &big()).unwrap(),
        ];
        prop_assert_eq!(files[2].compression(), Compression::Bgzf);
        for f in &files {
            let lengths: Vec<u64> = f.index().records().iter().map(|r| r.length).collect();
            prop_assert_eq!(lengths, seqs.iter().map(|s| s.1.len() as u64).collect::<Vec<_>>());
        }
        for (k, start, len) in regions {
            let (name, seq, _) = &seqs[k % seqs.len()];
            let end = start + len - 1;
            let want = naive(seq, start, end);
            for f in &mut files {
                let got = f.fetch(name, start, end).unwrap();
                prop_assert_eq!(&got, &want, "{} {}:{}-{}", f.data_path().display(), name, start, end);
            }
        }
    }
}
