"""Trains XGBoost or LightGBM as the benchmark specifies, on the Parquet files, and saves
its predictions for every row (pred_<lib>.npy)."""
import json
import os
import sys

import numpy as np
import pyarrow.parquet as pq

lib, spec_path = sys.argv[1:3]
s = json.load(open(spec_path))
root = os.path.join(s["data"], "master") if os.path.isdir(os.path.join(s["data"], "master")) else s["data"]
files = sorted(os.path.join(r, f) for r, _, fs in os.walk(root) for f in fs if f.endswith(".parquet"))
t = pq.read_table(files, columns=s["features"] + ["gene_id", "splice_type"])
X = np.column_stack([t.column(f).to_numpy(zero_copy_only=False).astype(np.float32) for f in s["features"]])
y = (t.column("splice_type").to_numpy(zero_copy_only=False) == s["class"]).astype(np.float32)
valid = np.isin(t.column("gene_id").to_numpy(zero_copy_only=False), s["valid_genes"])
del t
train = ~valid
if lib == "xgboost":
    import xgboost as xgb
    dtrain = xgb.QuantileDMatrix(X[train], label=y[train], max_bin=s["max_bin"], nthread=s["threads"])
    params = {"objective": "binary:logistic", "tree_method": "hist", "max_depth": s["depth"], "eta": s["eta"],
              "max_bin": s["max_bin"], "nthread": s["threads"], "min_child_weight": 1, "lambda": 1}
    booster = xgb.train(params, dtrain, s["trees"])
    pred = booster.predict(xgb.DMatrix(X, nthread=s["threads"]))
else:
    import lightgbm as lgb
    params = {"objective": "binary", "learning_rate": s["eta"], "max_depth": s["depth"],
              "num_leaves": 2 ** s["depth"], "max_bin": s["max_bin"], "num_threads": s["threads"],
              "min_sum_hessian_in_leaf": 1.0, "min_data_in_leaf": 1, "lambda_l2": 1.0, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(X[train], label=y[train]), s["trees"])
    pred = booster.predict(X)
np.save(os.path.join(s["out"], f"pred_{lib}.npy"), pred.astype(np.float32))
