#!/usr/bin/env bash
# The base-model benchmark: `spliceboost score` over every gene of D. melanogaster chr4 (the
# fly fixture, both strands) with model 1 and with the five, each beside TensorFlow/Keras
# running the same .h5 models on the same sequences (benches/score_chr4_keras.py, which also
# checks that the outputs agree). Each side in its own process, one after another, under
# /usr/bin/time -v; then the base model's quality and fitted shifts (--fit-shifts).
# Creates /work/venv-tf-like virtualenv at benches/.venv-tf (tensorflow-cpu, tf-keras, pyarrow)
# unless VENV_TF points to one.
#
#   benches/score_chr4.sh            # writes out/bench_chr4/*.time, *.json, *.txt
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=out/bench_chr4
VENV=${VENV_TF:-benches/.venv-tf}
mkdir -p "$OUT"
cargo build --release --quiet
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet tensorflow-cpu tf-keras pyarrow numpy
fi
for m in 1 5; do
  models=$([ "$m" = 1 ] && echo "[1]" || echo "[1,2,3,4,5]")
  /usr/bin/time -v -o "$OUT/spliceboost_$m.time" target/release/spliceboost score config/chr4_score.toml \
    --quiet --overwrite --set "score.models=$models" --set "score.out=$OUT/scores$m" | tee "$OUT/spliceboost_$m.txt"
  pymodels=$([ "$m" = 1 ] && echo "1" || echo "1,2,3,4,5")
  /usr/bin/time -v -o "$OUT/keras_whole_$m.time" "$VENV/bin/python" benches/score_chr4_keras.py \
    --scores "$OUT/scores$m" --fasta fixtures/genome/dmel_chr4.fna.gz --models "$pymodels" --mode whole \
    --json "$OUT/keras_whole_$m.json"
done
/usr/bin/time -v -o "$OUT/keras_blocks_1.time" "$VENV/bin/python" benches/score_chr4_keras.py \
  --scores "$OUT/scores1" --fasta fixtures/genome/dmel_chr4.fna.gz --models 1 --mode blocks \
  --json "$OUT/keras_blocks_1.json"
target/release/spliceboost score config/chr4_score.toml --quiet --set "score.out=$OUT/scores5" --fit-shifts \
  | tee "$OUT/quality_5.txt"
grep -H "Maximum resident\|Elapsed (wall" "$OUT"/*.time
