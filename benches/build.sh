#!/usr/bin/env bash
# The builder's benchmark (docs/performance.md#dataset-builder): `spliceboost build` over
#   1. every gene of D. melanogaster chr4 (SpliceAI model 1's scores, as the quickstart makes
#      them), with 3-mers and with 6-mers, sparse, under a 512 MiB build budget, and with dense
#      6-mers (which need more);
#   2. a 10,000-gene synthetic genome (`synth --genome`: its noisy base model's scores, read
#      through [score.file]), with 3-mers and with 6-mers, sparse, under 512 MiB;
#   3. 6-mers sparse against dense on a 1,000-gene synthetic genome: file size, the time to
#      scan the dataset (`inspect`), and a donor-vs-rest training's memory.
# Each command runs in its own process under /usr/bin/time -v; its stage table (stderr) and
# timing go to out/bench_build/<name>.err and <name>.time.
#
#   benches/build.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=out/bench_build
B=target/release/spliceboost
mkdir -p "$OUT"
cargo build --release --quiet

timed() { # name, command...
  local name=$1
  shift
  /usr/bin/time -v -o "$OUT/$name.time" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
  printf '%-22s %8s s  %8s KiB RSS  ' "$name" \
    "$(grep 'Elapsed (wall' "$OUT/$name.time" | awk '{print $NF}')" \
    "$(grep 'Maximum resident' "$OUT/$name.time" | awk '{print $NF}')"
  tail -n 1 "$OUT/$name.out" | cut -c1-160
}

# 1. The fly chromosome: the quickstart's genome, scores and build settings.
$B score config/quickstart.toml --quiet >/dev/null
for k in 3 6; do
  timed "chr4_k${k}_sparse" $B build config/quickstart.toml --overwrite \
    --set "build.kmers=[$k]" --set "dataset.path=\"$OUT/chr4_k${k}_sparse\"" --set memory.build=512MiB --set memory.total=2GiB
done
timed chr4_k6_dense $B build config/quickstart.toml --overwrite \
  --set "build.kmers=[6]" --set 'build.kmer_layout="dense"' --set "dataset.path=\"$OUT/chr4_k6_dense\"" \
  --set memory.total=4GiB --set memory.build=2GiB

# 2. and 3. Synthetic genomes: their scores come in through [score.file].
synth_config() { # genes, out
  cat >"$2/build.toml" <<EOF
[run]
out_dir = "$2/run"
seed = 42
[genome]
fasta = "$2/genome/genome.fa"
annotation = "$2/genome/annotation.gff3"
[score]
out = "$2/scores"
genes_per_batch = 1000
[score.file]
path = "$2/genome/scores.parquet"
[build]
batch_genes = 100
[dataset]
path = "$2/data"
[memory]
total = "1GiB"
score = "256MiB"
build = "512MiB"
[train]
class = "donor"
n_estimators = 50
max_depth = 6
EOF
}
for genes in 10000 1000; do
  dir="$OUT/synth$genes"
  mkdir -p "$dir"
  [ -d "$dir/genome" ] || $B synth --genome --out "$dir/genome" --genes "$genes" --seed 42 --quiet
  synth_config "$genes" "$dir"
  timed "synth${genes}_score" $B score "$dir/build.toml"
done
for k in 3 6; do
  timed "synth10000_k${k}_sparse" $B build "$OUT/synth10000/build.toml" --overwrite \
    --set "build.kmers=[$k]" --set "dataset.path=\"$OUT/synth10000/k${k}_sparse\""
done

# 3. Sparse against dense 6-mers on the 1,000-gene genome.
S="$OUT/synth1000/build.toml"
for layout in sparse dense; do
  sets=(--set "build.kmers=[6]" --set "build.kmer_layout=\"$layout\"" --set "dataset.path=\"$OUT/synth1000/k6_$layout\""
    --set memory.total=6GiB --set memory.build=2GiB --set memory.train=1GiB --set memory.sketch=1GiB --set memory.bin=1GiB
    --set "run.out_dir=\"$OUT/synth1000/run_$layout\"")
  timed "synth1000_k6_${layout}_build" $B build "$S" --overwrite "${sets[@]}"
  timed "synth1000_k6_${layout}_scan" $B inspect "$OUT/synth1000/k6_$layout" --set memory.scan=512MiB
  timed "synth1000_k6_${layout}_train" $B train "$S" "${sets[@]}"
done
du -sb "$OUT"/chr4_k*/master "$OUT"/synth10000/k*/master "$OUT"/synth1000/k6_*/master
for f in "$OUT"/*.err; do
  echo "== $(basename "$f" .err)"
  grep -E "^(build|scan|sketch|bin|train|score) " "$f" || true
done
