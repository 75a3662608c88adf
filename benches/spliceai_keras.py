#!/usr/bin/env python3
"""SpliceAI in TensorFlow/Keras on the sequence the Rust throughput test scores.

    /usr/bin/time -v python benches/spliceai_keras.py --models 1 --mode blocks
    /usr/bin/time -v python benches/spliceai_keras.py --models 1,2,3,4,5 --mode whole

Beside (each in its own process):

    SPLICEAI_BENCH_MODELS=1 /usr/bin/time -v cargo test --release --test spliceai throughput -- --ignored --nocapture

The sequence: `--len` (100,000) positions plus 5,000 of context each side, random ACGT from
the same linear congruential generator as tests/spliceai.rs, so both print the same
checksum (the mean donor score). Modes:

- `blocks`: as SpliceAI is run gene by gene by the Python pipeline: the positions padded to a
  multiple of 5,000, cut into blocks of 15,000 (5,000 outputs and 10,000 context), predicted
  in batches of 32 (Keras's default);
- `whole`: the whole padded sequence in one call (what spliceai's own VCF annotator does for
  its short windows): no recomputed context, TensorFlow's best case.

Only the predictions are timed (not the model loading), on 2 threads. Needs numpy,
tensorflow(-cpu) and tf-keras, and the five .h5 files (`--dir`, default as in
fixtures/spliceai/make_expected.py).
"""

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

CONTEXT = 5000
BLOCK = 5000


def sequence(n):
    """The LCG of tests/spliceai.rs::bench_sequence."""
    x = 12345
    out = bytearray(n)
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out[i] = b"ACGT"[(x >> 16) & 3]
    return bytes(out)


def one_hot(seq):
    codes = np.frombuffer(seq, np.uint8)
    x = np.zeros((len(seq), 4), np.float32)
    for i, b in enumerate(b"ACGT"):
        x[codes == b, i] = 1.0
    return x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="1")
    ap.add_argument("--len", type=int, default=100_000)
    ap.add_argument("--mode", choices=["blocks", "whole"], default="blocks")
    ap.add_argument("--threads", type=int, default=2)
    root = os.environ.get("SPLICEBOOST_DATA")
    root = Path(root) if root else Path.home() / ".cache" / "spliceboost"
    ap.add_argument("--dir", type=Path, default=root / "spliceai" / "1.3.1")
    a = ap.parse_args()

    import tensorflow as tf
    import tf_keras

    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(a.threads)
    ids = [int(m) for m in a.models.split(",")]
    t0 = time.time()
    models = [tf_keras.models.load_model(str(a.dir / f"spliceai{m}.h5"), compile=False) for m in ids]
    load = time.time() - t0

    x = one_hot(sequence(a.len + 2 * CONTEXT))
    t0 = time.time()
    if a.mode == "whole":
        y = np.mean([m.predict(x[None], verbose=0)[0] for m in models], axis=0)
    else:
        # SpliceAI's blocks: pad the positions with N to a multiple of 5,000.
        n_blocks = -(-a.len // BLOCK)
        pad = n_blocks * BLOCK - a.len
        xp = np.concatenate([x, np.zeros((pad, 4), np.float32)])
        blocks = np.stack([xp[i * BLOCK : i * BLOCK + BLOCK + 2 * CONTEXT] for i in range(n_blocks)])
        y = np.mean([m.predict(blocks, verbose=0) for m in models], axis=0)
        y = y.reshape(-1, 3)[: a.len]
    s = time.time() - t0
    print(
        f"keras ({a.mode}): {len(ids)} model(s), {a.len} positions, {a.threads} threads: {s:.2f} s, "
        f"{a.len / s:.0f} positions/s (models loaded in {load:.1f} s; checksum: mean donor "
        f"{y[:, 2].mean():.6f}, first row {y[0].tolist()})"
    )


if __name__ == "__main__":
    main()
