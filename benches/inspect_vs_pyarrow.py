"""Runs spliceboost inspect and pyarrow's read_table over one dataset, each in its own
process, and prints wall time, rows/s and peak RSS side by side (one run each)."""
import json
import os
import subprocess
import sys
import tempfile
import time

data = sys.argv[1]
files = sorted(
    os.path.join(root, f)
    for root, _, names in os.walk(os.path.join(data, "master") if os.path.isdir(os.path.join(data, "master")) else data)
    for f in names
    if f.endswith(".parquet")
)


def child_peak_rss(cmd):
    """Wall seconds and peak RSS (bytes) of `cmd`, run under a fresh Python parent so that
    RUSAGE_CHILDREN holds that one process alone."""
    code = (
        "import resource,subprocess,sys;"
        "subprocess.run(sys.argv[1:],check=True,stdout=subprocess.DEVNULL);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss*1024)"
    )
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, int(out.stdout.strip())


with tempfile.TemporaryDirectory() as tmp:
    summary = os.path.join(tmp, "summary.json")
    sb_cmd = ["./target/release/spliceboost", "inspect", data, "--json", "--quiet",
              "--set", "memory.scan=64MiB", "--summary", summary]
    sb_wall, sb_rss = child_peak_rss(sb_cmd)
    report = json.loads(subprocess.run(sb_cmd, capture_output=True, text=True, check=True).stdout)
    stage = json.load(open(summary))["stages"][0]

    py = (
        "import pyarrow.parquet as pq,sys;"
        "t=pq.read_table(sys.argv[1:]);"
        "print(t.num_rows)"
    )
    pa_wall, pa_rss = child_peak_rss([sys.executable, "-c", py, *files])

rows = report["rows"]
mib = 1 << 20
print(f"dataset: {data}: {len(files)} files, {rows:,} rows, {len(report['features'])} features, "
      f"{report['genes']:,} genes")
print(f"spliceboost scan stage: budget {stage['budget_bytes']/mib:.0f} MiB, reserved "
      f"{stage['peak_reserved_bytes']/mib:.1f} MiB, heap {stage['peak_heap_bytes']/mib:.1f} MiB")
print()
print(f"| reader | wall s | rows/s | peak RSS |")
print(f"|---|---|---|---|")
print(f"| spliceboost inspect (64 MiB scan budget) | {sb_wall:.2f} | {rows/sb_wall:,.0f} | {sb_rss/mib:.0f} MiB |")
print(f"| pyarrow pq.read_table | {pa_wall:.2f} | {rows/pa_wall:,.0f} | {pa_rss/mib:.0f} MiB |")
print(f"| ratio spliceboost / pyarrow | {sb_wall/pa_wall:.2f} | | {sb_rss/pa_rss:.3f} |")
