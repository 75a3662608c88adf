#!/usr/bin/env bash
# The training benchmark: spliceboost against XGBoost (hist, QuantileDMatrix, in memory) and
# LightGBM on the same Parquet files, parameters and gene-wise split. Creates benches/.venv
# (xgboost-cpu, lightgbm, pyarrow, scikit-learn) on first use.
#
#   benches/train_vs_xgboost.sh [CONFIG]
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${1:-config/train_10k.toml}
cargo build --release --quiet
if [ ! -x benches/.venv/bin/python ]; then
  python3 -m venv benches/.venv
fi
benches/.venv/bin/python -c "import xgboost, lightgbm, sklearn, pyarrow" 2>/dev/null \
  || benches/.venv/bin/pip install --quiet xgboost-cpu lightgbm scikit-learn pyarrow
benches/.venv/bin/python benches/train_vs_xgboost.py "$CONFIG"
