"""Trains XGBoost or LightGBM as the benchmark specifies, on the Parquet files, and saves
its predictions for every row (pred_<lib>.npy). Each gets its fastest ordinary setup: a
float32 NumPy matrix of the feature columns only (feature_matrix.py); XGBoost trains from a
QuantileDMatrix and predicts in place, without a DMatrix copy of the rows."""
import json
import os
import sys

import numpy as np

from feature_matrix import load

lib, spec_path = sys.argv[1:3]
s = json.load(open(spec_path))
X, genes, labels = load(s["data"], s["features"])
y = (labels == s["class"]).astype(np.float32)
train = ~np.isin(genes, s["valid_genes"])
del genes, labels
if lib == "xgboost":
    import xgboost as xgb
    dtrain = xgb.QuantileDMatrix(X[train], label=y[train], max_bin=s["max_bin"], nthread=s["threads"])
    params = {"objective": "binary:logistic", "tree_method": "hist", "max_depth": s["depth"], "eta": s["eta"],
              "max_bin": s["max_bin"], "nthread": s["threads"], "min_child_weight": 1, "lambda": 1}
    booster = xgb.train(params, dtrain, s["trees"])
    del dtrain
    pred = booster.inplace_predict(X)
else:
    import lightgbm as lgb
    params = {"objective": "binary", "learning_rate": s["eta"], "max_depth": s["depth"],
              "num_leaves": 2 ** s["depth"], "max_bin": s["max_bin"], "num_threads": s["threads"],
              "min_sum_hessian_in_leaf": 1.0, "min_data_in_leaf": 1, "lambda_l2": 1.0, "verbose": -1}
    booster = lgb.train(params, lgb.Dataset(X[train], label=y[train], free_raw_data=True), s["trees"])
    pred = booster.predict(X)
np.save(os.path.join(s["out"], f"pred_{lib}.npy"), np.asarray(pred, dtype=np.float32))
