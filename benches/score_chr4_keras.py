#!/usr/bin/env python3
"""SpliceAI in TensorFlow/Keras on exactly the genes `spliceboost score` scored: timing and parity.

    /usr/bin/time -v /work/venv-tf/bin/python benches/score_chr4_keras.py \
        --scores out/chr4/scores --fasta fixtures/genome/dmel_chr4.fna.gz --models 1 --mode whole
    /usr/bin/time -v /work/venv-tf/bin/python benches/score_chr4_keras.py \
        --scores out/chr4/scores --fasta fixtures/genome/dmel_chr4.fna.gz --models 1 --mode blocks
    /usr/bin/time -v /work/venv-tf/bin/python benches/score_chr4_keras.py \
        --scores out/chr4/scores --fasta fixtures/genome/dmel_chr4.fna.gz --models 1,2,3,4,5 --mode whole \
        --json out/chr4/keras_whole_5.json

(`--limit 3` for a quick check.) Peak RSS is what `/usr/bin/time -v` reports as "Maximum
resident set size".

The genes are those of the score directory `--scores` (`manifest.json` and its Parquet
batches), in the manifest's order; each gene's span is the first to last of its positions.
For a gene `start..=end` (1-based) on strand s the input is bases `start-5000 ..= end+5000`
of its chromosome, `N` beyond the chromosome's ends (`--flank genomic`) or everywhere outside
`start..=end` (`--flank n`), reverse-complemented on the minus strand, one-hot encoded as
SpliceAI does (A, C, G, T; N all zero). The outputs `[neither, acceptor, donor]` are averaged
over the models, reversed back on the minus strand (row i is position start+i) and, if the
manifest's settings hold non-zero `shifts`, shifted as src/score/shifts.rs does. They are
compared with the Parquet's (neither, acceptor, donor) for the gene. `--models` and `--flank`
default to what the manifest's settings say.

Modes (as benches/spliceai_keras.py):

- `whole`: each gene's padded sequence in one `predict` call: no recomputed context;
- `blocks`: SpliceAI's own pipeline: a gene's positions padded with N to a multiple of 5,000,
  cut into blocks of 15,000 (5,000 outputs and 10,000 context), predicted in batches of 32.

Only the predictions are timed (not the model loading, the FASTA or the Parquet reading, nor
by default the warm-up: two tiny untimed predictions first, so that Keras's graph tracing for
new input shapes, several seconds, is not charged to the first genes; `--no-warmup` times it
too), on `--threads` (2) threads (intra- and inter-op, as benches/spliceai_keras.py). Needs numpy, tensorflow(-cpu), tf-keras and pyarrow, and the .h5 files
(`--dir`, default as in benches/spliceai_keras.py).
"""

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

CONTEXT = 5000
BLOCK = 5000
CHANNELS = ("neither", "acceptor", "donor")  # Keras's output order

# One-hot rows by byte: A, C, G, T (upper case; the FASTA is upper-cased); anything else zero.
ONE_HOT = np.zeros((256, 4), np.float32)
for _i, _b in enumerate(b"ACGT"):
    ONE_HOT[_b, _i] = 1.0
# Complement by byte: A<->T, C<->G, everything else N (as src/score/stage.rs).
COMPLEMENT = np.full(256, ord("N"), np.uint8)
for _a, _b in zip(b"ACGT", b"TGCA"):
    COMPLEMENT[_a] = _b


def read_fasta(path):
    """{name (first word of the header): upper-case bytes, non-ACGT as N} of a (gzip) FASTA."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        text = f.read()
    keep = np.full(256, ord("N"), np.uint8)
    for b in b"ACGT":
        keep[b] = b
        keep[ord(chr(b).lower())] = b
    out = {}
    for rec in text.split(b">")[1:]:
        header, _, body = rec.partition(b"\n")
        name = header.split()[0].decode() if header.split() else ""
        seq = np.frombuffer(b"".join(body.split()), np.uint8)
        out[name] = keep[seq]
    return out


def gene_input(chrom_seq, start, end, strand, flank):
    """The network's input for `start..=end` (1-based) with CONTEXT each side, as bytes (uint8)."""
    n = len(chrom_seq)
    lo, hi = start - CONTEXT, end + CONTEXT  # 1-based, inclusive
    seq = np.full(hi - lo + 1, ord("N"), np.uint8)
    a, b = (max(lo, 1), min(hi, n)) if flank == "genomic" else (max(start, 1), min(end, n))
    if a <= b:
        seq[a - lo : b - lo + 1] = chrom_seq[a - 1 : b]
    if strand == "-":
        seq = COMPLEMENT[seq[::-1]]
    elif strand != "+":
        raise ValueError(f"strand {strand!r}")
    return seq


def shift_channel(y, c, g):
    """new[i] = old[i - g] for channel c, 0 where the source is outside (src/score/shifts.rs)."""
    n = len(y)
    m = min(abs(g), n)
    if g > 0:
        y[m:, c] = y[: n - m, c].copy()
        y[:m, c] = 0.0
    elif g < 0:
        y[: n - m, c] = y[m:, c].copy()
        y[n - m :, c] = 0.0


def apply_shifts(shifts, strand, y):
    sfx = "plus" if strand == "+" else "minus"
    donor, acceptor = int(shifts.get(f"donor_{sfx}", 0)), int(shifts.get(f"acceptor_{sfx}", 0))
    if donor == 0 and acceptor == 0:
        return
    d = 1 if strand == "+" else -1
    shift_channel(y, 2, d * donor)
    shift_channel(y, 1, d * acceptor)
    y[:, 0] = np.maximum(np.float32(0), np.float32(1) - y[:, 2] - y[:, 1])


def genes_of(scores_dir, manifest, limit):
    """Yields (gene_id, chrom, strand, positions, [neither, acceptor, donor] rows) in order."""
    import pyarrow.parquet as pq

    cols = ["gene_id", "chrom", "strand", "position", "neither", "acceptor", "donor"]
    done = 0
    for batch in manifest["batches"]:
        if limit is not None and done >= limit:
            return
        t = pq.read_table(scores_dir / batch["file"], columns=cols)
        if t.num_rows != batch["rows"]:
            sys.exit(f"{batch['file']}: {t.num_rows} rows, the manifest says {batch['rows']}")
        ids = t.column("gene_id").to_numpy(zero_copy_only=False)
        chrom = t.column("chrom").to_numpy(zero_copy_only=False)
        strand = t.column("strand").to_numpy(zero_copy_only=False)
        pos = t.column("position").to_numpy()
        y = np.stack([t.column(c).to_numpy().astype(np.float32) for c in CHANNELS], axis=1)
        del t
        # Genes are contiguous: cut where the id changes.
        cuts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
        bounds = np.concatenate([[0], cuts, [len(ids)]])
        order = [ids[s] for s in bounds[:-1]]
        if order != list(batch["genes"]):
            sys.exit(f"{batch['file']}: genes {order[:5]}... are not the manifest's {batch['genes'][:5]}...")
        for s, e in zip(bounds[:-1], bounds[1:]):
            if limit is not None and done >= limit:
                return
            p = pos[s:e]
            if not (np.all(np.diff(p) == 1) and len(set(chrom[s:e])) == 1 and len(set(strand[s:e])) == 1):
                sys.exit(f"gene {ids[s]}: positions, chromosome or strand not contiguous")
            yield ids[s], chrom[s], strand[s], p, y[s:e]
            done += 1


def predict(models, x, mode):
    """Average over `models` of the outputs for one-hot `x` (len + 2 CONTEXT rows): (len, 3)."""
    n = len(x) - 2 * CONTEXT
    if mode == "whole":
        return np.mean([m.predict(x[None], verbose=0)[0] for m in models], axis=0)
    n_blocks = -(-n // BLOCK)
    pad = n_blocks * BLOCK - n
    xp = np.concatenate([x, np.zeros((pad, 4), np.float32)])
    blocks = np.stack([xp[i * BLOCK : i * BLOCK + BLOCK + 2 * CONTEXT] for i in range(n_blocks)])
    y = np.mean([m.predict(blocks, batch_size=32, verbose=0) for m in models], axis=0)
    return y.reshape(-1, 3)[:n]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scores", type=Path, required=True, help="a spliceboost score directory")
    ap.add_argument("--fasta", type=Path, required=True, help="the genome FASTA (.gz or plain)")
    ap.add_argument("--models", default=None, help="e.g. 1 or 1,2,3,4,5 (default: the manifest's)")
    ap.add_argument("--flank", choices=["genomic", "n"], default=None, help="default: the manifest's")
    ap.add_argument("--mode", choices=["blocks", "whole"], default="whole")
    ap.add_argument("--limit", type=int, default=None, help="only the first N genes")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument(
        "--no-warmup", dest="warmup", action="store_false",
        help="time the first predictions' graph tracing too (by default traced untimed first)",
    )
    ap.add_argument("--verbose", "-v", action="store_true", help="a line per gene on stderr")
    root = os.environ.get("SPLICEBOOST_DATA")
    root = Path(root) if root else Path.home() / ".cache" / "spliceboost"
    ap.add_argument("--dir", type=Path, default=root / "spliceai" / "1.3.1")
    a = ap.parse_args()

    manifest = json.loads((a.scores / "manifest.json").read_text())
    if not manifest.get("complete", False):
        print("warning: the manifest does not say complete; comparing its finished batches", file=sys.stderr)
    settings = manifest.get("settings") or {}
    source = settings.get("source") or {}
    if "file" in source:
        print("warning: these scores were imported from a file, not computed by the network", file=sys.stderr)
    if a.models is None:
        a.models = ",".join(str(m) for m in source.get("models", [1, 2, 3, 4, 5]))
    ids = [int(m) for m in a.models.split(",")]
    if a.flank is None:
        a.flank = source.get("flank", "genomic")
    if "models" in source and sorted(source["models"]) != sorted(ids):
        print(f"warning: the scores were made with models {source['models']}, running {ids}", file=sys.stderr)
    if "flank" in source and source["flank"] != a.flank:
        print(f"warning: the scores were made with flank {source['flank']}, running {a.flank}", file=sys.stderr)
    shifts = settings.get("shifts") or {}

    genome = read_fasta(a.fasta)

    import tensorflow as tf
    import tf_keras

    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(a.threads)
    t0 = time.time()
    models = [tf_keras.models.load_model(str(a.dir / f"spliceai{m}.h5"), compile=False) for m in ids]
    load = time.time() - t0
    warmup = 0.0
    if a.warmup:
        # Keras traces its predict function anew for each input shape until (reduce_retracing)
        # it relaxes to an unknown length: two lengths here, untimed, so that no gene pays it.
        t0 = time.time()
        for n in (1, 2):
            predict(models, np.zeros((n + 2 * CONTEXT, 4), np.float32), a.mode)
        warmup = time.time() - t0

    worst = {c: {"max_abs_diff": -1.0, "gene": None, "position": None} for c in CHANNELS}
    sum_abs = np.zeros(3, np.float64)
    positions = 0
    seconds = 0.0
    n_genes = 0
    # Gene by gene, one Parquet batch in memory at a time.
    for gene_id, chrom, strand, pos, want in genes_of(a.scores, manifest, a.limit):
        n_genes += 1
        if chrom in genome:
            chrom_seq = genome[chrom]
        elif len(genome) == 1:
            chrom_seq = next(iter(genome.values()))
        else:
            sys.exit(f"gene {gene_id}: chromosome {chrom} not in {a.fasta}")
        start, end = int(pos[0]), int(pos[-1])
        x = ONE_HOT[gene_input(chrom_seq, start, end, strand, a.flank)]
        t0 = time.time()
        y = predict(models, x, a.mode)
        dt = time.time() - t0
        seconds += dt
        y = np.ascontiguousarray(y[::-1] if strand == "-" else y, dtype=np.float32)
        apply_shifts(shifts, strand, y)
        d = np.abs(y.astype(np.float64) - want.astype(np.float64))
        sum_abs += d.sum(axis=0)
        if a.verbose:
            print(
                f"{gene_id} {chrom}:{start}-{end} {strand}: {len(y)} positions, {dt:.2f} s, "
                f"max diff {d.max(axis=0).tolist()}",
                file=sys.stderr,
            )
        positions += len(y)
        for c, name in enumerate(CHANNELS):
            i = int(np.argmax(d[:, c]))
            if d[i, c] > worst[name]["max_abs_diff"]:
                worst[name] = {
                    "max_abs_diff": float(d[i, c]),
                    "gene": str(gene_id),
                    "position": int(pos[i]),
                    "keras": float(y[i, c]),
                    "spliceboost": float(want[i, c]),
                }
    if n_genes == 0:
        sys.exit("no genes")
    result = {
        "scores": str(a.scores),
        "mode": a.mode,
        "models": ids,
        "flank": a.flank,
        "threads": a.threads,
        "genes": n_genes,
        "positions": positions,
        "predict_seconds": seconds,
        "positions_per_second": positions / seconds,
        "load_seconds": load,
        "warmup_seconds": warmup,
        "max_abs_diff": worst,
        "mean_abs_diff": dict(zip(CHANNELS, (sum_abs / positions).tolist())),
    }
    top = max(CHANNELS, key=lambda c: worst[c]["max_abs_diff"])
    print(
        f"keras ({a.mode}, flank {a.flank}): {len(ids)} model(s), {n_genes} genes, {positions} positions, "
        f"{a.threads} threads: {seconds:.2f} s, {positions / seconds:.0f} positions/s "
        f"(models loaded in {load:.1f} s, warm-up {warmup:.1f} s); max |keras - spliceboost|: "
        + ", ".join(f"{c} {worst[c]['max_abs_diff']:.3g}" for c in CHANNELS)
        + f"; largest: {top} at {worst[top]['gene']}:{worst[top]['position']}"
    )
    if a.json:
        a.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
