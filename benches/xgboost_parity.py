"""Checks that XGBoost loads spliceboost's export (model.xgb.json) and predicts what
`spliceboost predict` wrote, row for row.

    python benches/xgboost_parity.py OUT_DIR DATASET SCORES.parquet
"""
import json
import os
import sys

import numpy as np
import pyarrow.parquet as pq
import xgboost as xgb

out_dir, dataset, scores_path = sys.argv[1:4]
booster = xgb.Booster()
booster.load_model(os.path.join(out_dir, "model.xgb.json"))
features = json.load(open(os.path.join(out_dir, "model.json")))["features"]
root = os.path.join(dataset, "master") if os.path.isdir(os.path.join(dataset, "master")) else dataset
files = sorted(os.path.join(r, f) for r, _, fs in os.walk(root) for f in fs if f.endswith(".parquet"))
table = pq.read_table(files, columns=features)
X = np.column_stack([table.column(f).to_numpy(zero_copy_only=False).astype(np.float32) for f in features])
ours = pq.read_table(scores_path, columns=["score"]).column("score").to_numpy()
theirs = booster.predict(xgb.DMatrix(X, feature_names=features, missing=np.nan))
diff = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
print(f"rows {len(ours)}, trees {booster.num_boosted_rounds()}, max |diff| {diff.max():.3e}, mean |diff| {diff.mean():.3e}")
sys.exit(0 if diff.max() <= 1e-5 else 1)
