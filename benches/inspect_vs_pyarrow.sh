#!/usr/bin/env bash
# The foundation benchmark (docs/performance.md): `spliceboost inspect` over a 10k-gene
# synthetic dataset under a 64 MiB scan budget, against pyarrow's pq.read_table on the same
# files. Creates benches/.venv with pyarrow on first use.
#
#   benches/inspect_vs_pyarrow.sh [DATASET_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-data/synth_10k}
cargo build --release --quiet
if [ ! -d "$DATA" ]; then
  ./target/release/spliceboost synth --out "$DATA" --genes 10000 --set memory.synth=256MiB
fi
if [ ! -x benches/.venv/bin/python ]; then
  python3 -m venv benches/.venv
  benches/.venv/bin/pip install --quiet pyarrow
fi
benches/.venv/bin/python benches/inspect_vs_pyarrow.py "$DATA"
