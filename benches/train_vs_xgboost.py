"""spliceboost vs XGBoost vs LightGBM: one binary class, same data, parameters and split.

Each trainer runs in its own child process; wall time covers reading the Parquet files and
training (spliceboost: its sketch, bin and train stages from a cold cache). Peak RSS is the
child's ru_maxrss (for spliceboost, the larger of that and its run_summary.json figure). ROC-AUC and average precision are scikit-learn's, on the validation genes
spliceboost chose (valid_genes.txt), from each model's own predictions.
"""
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib

from childproc import child, spliceboost_rss
from feature_matrix import parquet_files

import numpy as np
import pyarrow.parquet as pq
from sklearn.metrics import average_precision_score, roc_auc_score

config_path = sys.argv[1]
cfg = tomllib.load(open(config_path, "rb"))
tp, out_dir, data = cfg["train"], cfg["run"]["out_dir"], cfg["dataset"]["path"]
threads = cfg["run"].get("threads", 2)
sb = "./target/release/spliceboost"
MIB = 1 << 20


if not os.path.isdir(data):
    subprocess.run([sb, "synth", "--out", data, "--genes", str(cfg["synth"]["genes"]), "-q"], check=True)

# spliceboost, from a cold cache.
shutil.rmtree(out_dir, ignore_errors=True)
sb_wall, sb_rss, _ = child([sb, "train", config_path, "--quiet"])
sb_rss = spliceboost_rss(sb_rss, out_dir)
summary = json.load(open(os.path.join(out_dir, "run_summary.json")))
scores = os.path.join(out_dir, "scores.parquet")
subprocess.run([sb, "predict", "--model", os.path.join(out_dir, "model.json"), "--dataset", data,
                "--out", scores, "--quiet"], check=True, stdout=subprocess.DEVNULL)
features = json.load(open(os.path.join(out_dir, "model.json")))["features"]
valid_genes = set(open(os.path.join(out_dir, "valid_genes.txt")).read().split())

# The other two read the same files in a child process of their own.
runner = os.path.join(os.path.dirname(__file__), "train_other.py")
spec = json.dumps({"data": data, "features": features, "valid_genes": sorted(valid_genes), "class": tp["class"],
                   "trees": tp["n_estimators"], "eta": tp["learning_rate"], "depth": tp["max_depth"],
                   "max_bin": tp["max_bin"], "threads": threads, "out": out_dir})
spec_path = os.path.join(out_dir, "bench_spec.json")
open(spec_path, "w").write(spec)
results = {}
for lib in ["xgboost", "lightgbm"]:
    wall, rss, _ = child([sys.executable, runner, lib, spec_path])
    results[lib] = (wall, rss)

# Metrics on the validation genes, from each model's predictions.
meta = pq.read_table(parquet_files(data), columns=["gene_id", "splice_type"])
genes = meta.column("gene_id").to_numpy(zero_copy_only=False)
y = (meta.column("splice_type").to_numpy(zero_copy_only=False) == tp["class"]).astype(np.int8)
valid = np.isin(genes, list(valid_genes))
preds = {"spliceboost": pq.read_table(scores, columns=["score"]).column("score").to_numpy()}
for lib in results:
    preds[lib] = np.load(os.path.join(out_dir, f"pred_{lib}.npy"))
walls = {"spliceboost": sb_wall, **{k: v[0] for k, v in results.items()}}
rsss = {"spliceboost": sb_rss, **{k: v[1] for k, v in results.items()}}
print(f"{int(valid.sum()):,} validation rows of {len(y):,}; {len(features)} features; class {tp['class']}; "
      f"{tp['n_estimators']} trees, depth {tp['max_depth']}, eta {tp['learning_rate']}, {tp['max_bin']} bins, {threads} threads")
for st in summary["stages"]:
    print(f"  spliceboost {st['name']:<7} {st['seconds']:7.1f} s  budget {st['budget_bytes']/MIB:5.0f} MiB  "
          f"reserved {st['peak_reserved_bytes']/MIB:6.1f} MiB  heap {st['peak_heap_bytes']/MIB:6.1f} MiB")
print()
print("| trainer | wall s | peak RSS | valid ROC-AUC | valid AP |")
print("|---|---|---|---|---|")
auc, ap = {}, {}
for k in ["spliceboost", "xgboost", "lightgbm"]:
    auc[k] = roc_auc_score(y[valid], preds[k][valid])
    ap[k] = average_precision_score(y[valid], preds[k][valid])
    print(f"| {k} | {walls[k]:.1f} | {rsss[k]/MIB:.0f} MiB | {auc[k]:.5f} | {ap[k]:.5f} |")
for k in ["xgboost", "lightgbm"]:
    print(f"| spliceboost / {k} | {walls['spliceboost']/walls[k]:.2f} | {rsss['spliceboost']/rsss[k]:.3f} | "
          f"{auc['spliceboost']-auc[k]:+.5f} | {ap['spliceboost']-ap[k]:+.5f} |")
