"""One way for the benchmarks to time a command in its own process: wall time, the child's
peak RSS (ru_maxrss of a fresh Python parent, so nothing else is counted) and its stdout."""
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
