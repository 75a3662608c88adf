"""How both peer benchmarks load the data: the fastest ordinary way to give XGBoost or LightGBM
a table, as their users would. pyarrow reads only the feature columns and the two it needs
(gene id, label), and each feature is cast into its column of one preallocated float32 NumPy
matrix (nulls become NaN, which both libraries take as missing). No float64 copy of the whole
table is made, and the Arrow table is dropped before training."""
import glob
import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads


def parquet_files(data):
    root = os.path.join(data, "master") if os.path.isdir(os.path.join(data, "master")) else data
    return sorted(glob.glob(f"{root}/**/*.parquet", recursive=True))


def load(data, features):
    """(X float32 rows x features, gene ids as a NumPy string array, splice_type as strings)."""
    table = pads.dataset(parquet_files(data), format="parquet").to_table(
        columns=["gene_id", "splice_type", *features])
    X = np.empty((table.num_rows, len(features)), dtype=np.float32)
    for j, f in enumerate(features):
        col = pc.cast(table.column(f), pa.float32(), safe=False)
        X[:, j] = col.to_numpy(zero_copy_only=False)
    genes = table.column("gene_id").to_numpy(zero_copy_only=False).astype(str)
    labels = table.column("splice_type").to_numpy(zero_copy_only=False).astype(str)
    del table
    return X, genes, labels
