"""The daily job against XGBoost done the Python original's way (issue 12's "measure first").

spliceboost: `spliceboost run CONFIG --overwrite` (gene-wise CV of the three one-vs-rest
models, calibration, refit, report), in its own process.

XGBoost, in its own process, as MetaSpliceAI's trainer does it: pyarrow reads the dataset, the
feature columns (the ones spliceboost uses, from `spliceboost inspect --json`) go into one
float32 NumPy matrix (feature_matrix.py), and for every fold and class an
`xgboost.QuantileDMatrix` (the validation rows' one referencing it) trains a hist
model with the config's `[train]` parameters and early stopping on an inner gene-wise split of
the training genes (`cv.valid_size` of them, seeded). The folds are spliceboost's own, read from
its `oof_predictions.parquet`, so both sides score the same genes; the test fold is predicted in
place (`inplace_predict`). No calibration, no refit.

Both sides' pooled out-of-fold metrics come from the same scikit-learn code on their raw
(uncalibrated) probabilities: accuracy and macro-F1 of the arg-max, and each class's average
precision. Wall time and peak RSS (ru_maxrss of the child; for spliceboost, the larger of that and
its run_summary.json figure, see childproc.spliceboost_rss) per side.

    benches/.venv/bin/python benches/cv_vs_xgboost.py config/cv_10k.toml
    benches/.venv/bin/python benches/cv_vs_xgboost.py config/cv_10k.toml --set cv.refit=false

Arguments after the config go to `spliceboost run` (`--set cv.refit=false`: the folds alone,
as XGBoost's side does them).
"""
import json
import subprocess
import sys
import time
import tomllib

from childproc import child, spliceboost_rss

SB = "./target/release/spliceboost"
CLASSES = ["neither", "donor", "acceptor"]


def metrics(y, p):
    import numpy as np
    from sklearn.metrics import accuracy_score, average_precision_score, f1_score

    pred = p.argmax(axis=1)
    return {
        "accuracy": accuracy_score(y, pred),
        "macro_f1": f1_score(y, pred, average="macro"),
        **{f"ap_{c}": average_precision_score(y == k, p[:, k]) for k, c in enumerate(CLASSES)},
        "rows": int(len(y)),
        "mean_p_sum": float(np.mean(p.sum(axis=1))),
    }


def xgboost_side(config_path, features_path, oof_path):
    """The child: the Python original's way. Prints one JSON line."""
    import numpy as np
    import pyarrow.parquet as pq
    import xgboost as xgb

    from feature_matrix import load

    cfg = tomllib.load(open(config_path, "rb"))
    tp, cv, run = cfg.get("train", {}), cfg.get("cv", {}), cfg.get("run", {})
    features = json.load(open(features_path))
    t0 = time.perf_counter()
    X, genes, labels = load(cfg["dataset"]["path"], features)
    y = np.select([labels == "donor", labels == "acceptor"], [1, 2], 0).astype(np.uint8)
    del labels
    oof = pq.read_table(oof_path, columns=["gene_id", "fold"])
    fold_of = dict(zip(oof.column("gene_id").to_pylist(), oof.column("fold").to_pylist()))
    fold = np.array([fold_of.get(g, 255) for g in genes.tolist()], dtype=np.uint8)
    read_s = time.perf_counter() - t0

    params = {
        "tree_method": "hist",
        "max_depth": tp.get("max_depth", 6),
        "eta": tp.get("learning_rate", 0.1),
        "subsample": tp.get("subsample", 1.0),
        "colsample_bytree": tp.get("colsample_bytree", 1.0),
        "max_bin": tp.get("max_bin", 256),
        "objective": "binary:logistic",
        "eval_metric": "logloss",
        "nthread": run.get("threads", 2) or 2,
        "seed": run.get("seed", 42),
    }
    rounds, stop = tp.get("n_estimators", 100), tp.get("early_stopping_rounds")
    valid_size = cv.get("valid_size", 0.1)
    rng = np.random.default_rng(run.get("seed", 42))
    p = np.zeros((len(y), 3), dtype=np.float64)
    trees = []
    for k in sorted(set(fold.tolist()) - {255}):
        test = fold == k
        train_genes = np.unique(genes[~test & (fold != 255)])
        n_valid = max(1, int(round(valid_size * len(train_genes))))
        valid_genes = set(rng.choice(train_genes, size=n_valid, replace=False).tolist())
        is_valid = np.isin(genes, list(valid_genes)) & ~test
        train = ~test & ~is_valid & (fold != 255)
        for c in range(3):
            dtrain = xgb.QuantileDMatrix(X[train], (y[train] == c).astype(np.float32), max_bin=params["max_bin"])
            dvalid = xgb.QuantileDMatrix(X[is_valid], (y[is_valid] == c).astype(np.float32), ref=dtrain)
            b = xgb.train(params, dtrain, rounds, evals=[(dvalid, "valid")],
                          early_stopping_rounds=stop, verbose_eval=False)
            best = getattr(b, "best_iteration", rounds - 1)
            p[test, c] = b.inplace_predict(X[test], iteration_range=(0, best + 1))
            trees.append(best + 1)
            del dtrain, dvalid, b
    p /= p.sum(axis=1, keepdims=True)
    scored = fold != 255
    print(json.dumps({"read_s": read_s, "trees": trees, **metrics(y[scored], p[scored])}))


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--xgboost":
        return xgboost_side(*sys.argv[2:])
    config_path = sys.argv[1]
    cfg = tomllib.load(open(config_path, "rb"))
    out_dir = cfg["run"]["out_dir"]
    import numpy as np
    import pyarrow.parquet as pq

    extra = sys.argv[2:]
    sb_s, sb_rss, _ = child([SB, "run", config_path, "--overwrite", "--quiet", *extra])
    sb_rss = spliceboost_rss(sb_rss, out_dir)
    oof_path = f"{out_dir}/oof_predictions.parquet"
    oof = pq.read_table(oof_path, columns=["label", "p_neither", "p_donor", "p_acceptor"])
    p = np.stack([oof.column(f"p_{c}").to_numpy() for c in CLASSES], axis=1).astype(np.float64)
    p /= p.sum(axis=1, keepdims=True)
    sb = metrics(oof.column("label").to_numpy(), p)

    inspect = json.loads(subprocess.run([SB, "inspect", cfg["dataset"]["path"], "--json", "--quiet"],
                                        check=True, capture_output=True, text=True).stdout)
    features = [f["name"] for f in inspect["features"]]
    features_path = f"{out_dir}/bench_features.json"
    json.dump(features, open(features_path, "w"))
    xg_s, xg_rss, out = child([sys.executable, __file__, "--xgboost", config_path, features_path, oof_path])
    xg = json.loads(out.strip().splitlines()[-1])

    mib = 1 << 20
    print(f"| side | wall s | peak RSS | accuracy | macro-F1 | AP donor | AP acceptor | AP neither |")
    print("|---|---|---|---|---|---|---|---|")
    refit = "no refit" if "cv.refit=false" in extra else "refit"
    for name, s, rss, m in [(f"spliceboost run (CV, calibration, {refit}, report)", sb_s, sb_rss, sb),
                            ("XGBoost hist, QuantileDMatrix (CV only)", xg_s, xg_rss, xg)]:
        print(f"| {name} | {s:.1f} | {rss / mib:.0f} MiB | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | "
              f"{m['ap_donor']:.4f} | {m['ap_acceptor']:.4f} | {m['ap_neither']:.4f} |")
    print(f"ratio spliceboost / XGBoost wall time: {sb_s / xg_s:.2f}; XGBoost read {xg['read_s']:.1f} s; "
          f"{len(features)} features, {sb['rows']} rows")


if __name__ == "__main__":
    main()
