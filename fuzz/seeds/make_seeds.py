#!/usr/bin/env python3
"""Writes the small text seeds of fuzz/seeds/ from the chromosome 4 fixtures (run from the
repository root: `python3 fuzz/seeds/make_seeds.py`). The Parquet, model and bundle seeds
come from `spliceboost` itself; docs/fuzzing.md says how."""
import gzip
import os
import re

G = "fixtures/genome"
OUT = "fuzz/seeds"


def put(target, name, data):
    os.makedirs(f"{OUT}/{target}", exist_ok=True)
    with open(f"{OUT}/{target}/{name}", "wb") as f:
        f.write(data)


def feature_lines(path, n, keep):
    out = []
    with gzip.open(path, "rt") as f:
        for line in f:
            if line.startswith("#"):
                continue
            cols = line.rstrip("\n").split("\t")
            cols[8] = keep(cols[8])
            out.append("\t".join(cols))
            if len(out) == n:
                break
    return out


def gff3_attrs(a):
    keep = ("ID", "Parent", "Name", "gene_biotype", "transcript_id")
    return ";".join(kv for kv in a.split(";") if kv.split("=", 1)[0] in keep)


def gtf_attrs(a):
    keep = ("gene_id", "transcript_id", "gene", "gene_biotype")
    parts = [p.strip() for p in a.split(";") if p.strip()]
    return " ".join(p + ";" for p in parts if p.split(" ", 1)[0] in keep)


# annotation: first byte = mode (bits 0-1 format: 0 GFF3, 1 GTF, 2-3 auto; bits 2-3 the
# file's extension; bits 4-5 max_open_genes 1, 2, 4, default).
gff = "##gff-version 3\n" + "\n".join(feature_lines(f"{G}/dmel_chr4.gff3.gz", 30, gff3_attrs)) + "\n"
gtf = "#gtf-version 2.2\n" + "\n".join(feature_lines(f"{G}/dmel_chr4.gtf.gz", 30, gtf_attrs)) + "\n"
put("annotation", "gff3_auto", bytes([0x32]) + gff.encode())
put("annotation", "gff3_one_open", bytes([0x00]) + gff.encode())
put("annotation", "gtf_auto", bytes([0x36]) + gtf.encode())
put("annotation", "gtf_two_open", bytes([0x11]) + gtf.encode())
put("annotation", "gff3_fasta_section", bytes([0x30]) + (gff + "##FASTA\n>NC_004353.4\nACGT\n").encode())

# fasta: FASTA text, then optionally NUL and its .fai.
with gzip.open(f"{G}/dmel_chr4.fna.gz", "rt") as f:
    head = [next(f) for _ in range(9)]
seq = "".join(head)
put("fasta", "chr4_head", seq.encode())
fai = f"NC_004353.4\t{60 * 8}\t{len(head[0])}\t60\t61\n"
put("fasta", "chr4_head_with_fai", seq.encode() + b"\0" + fai.encode())
put("fasta", "two_records_crlf", b">a desc\r\nACGTN\r\nAC\r\n>b\r\nacgtacgt\r\nac\r\n")
put("fasta", "ragged", b">x\nACGTACGT\nACG\nACGTACGT\n>y\n\n>z\nNNNN\n\0x\t20\t3\t8\t9\n")
