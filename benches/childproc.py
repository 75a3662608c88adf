"""One way for the benchmarks to time a command in its own process: wall time, the child's
peak RSS (ru_maxrss of a fresh Python parent, so nothing else is counted) and its stdout."""
import json
import os
import subprocess
import sys
import time


def child(cmd):
    """Runs cmd under a fresh Python parent; returns (wall seconds, peak RSS bytes, stdout)."""
    code = (
        "import resource,subprocess,sys;"
        "r=subprocess.run(sys.argv[1:],check=True,capture_output=True,text=True);"
        "sys.stdout.write(r.stdout);"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss*1024)"
    )
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{cmd[:3]} failed:\n{out.stderr}")
    lines = out.stdout.strip().splitlines()
    return time.perf_counter() - t0, int(lines[-1]), "\n".join(lines[:-1])


def spliceboost_rss(ru_maxrss, out_dir):
    """spliceboost's peak RSS: the larger of the child's ru_maxrss and the run's own figure.

    Each stage resets the kernel's high-water mark when it opens (to measure its own peak), and
    ru_maxrss reads that same mark at exit, so alone it gives the peak since the last stage
    opened; `run_summary.json` keeps the largest over every stage."""
    summary = json.load(open(os.path.join(out_dir, "run_summary.json")))
    return max(ru_maxrss, summary.get("peak_rss_bytes") or 0)
