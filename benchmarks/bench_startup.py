"""Start-up time of the command-line tools: ``unihema-data --help`` and ``unihema-train --help``.

Each command runs ``--repeats`` times in a fresh interpreter; reported are the median and minimum
wall time and the median CPU time (user + system of the child, from ``resource.getrusage``). On a
shared machine the wall time includes waiting for a core; the CPU time is the cost of the command
itself. The import profile (``python -X importtime``) of the slowest modules is printed as well.

Usage::

    python benchmarks/bench_startup.py [--repeats 10] [--markdown]
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {
    "unihema-data --help": [sys.executable, "-m", "unihema_data.cli", "--help"],
    "unihema-data --version": [sys.executable, "-m", "unihema_data.cli", "--version"],
    "unihema-train --help": [sys.executable, "-m", "unihema_model.train", "--help"],
    "python -c pass (interpreter alone)": [sys.executable, "-c", "pass"],
}


def _one(cmd: list[str]) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure_one(cmd: list[str], repeats: int) -> dict[str, float]:
    _one(cmd)  # warm the page cache and the .pyc files
    runs = [_one(cmd) for _ in range(repeats)]
    walls, cpus = [w for w, _ in runs], [c for _, c in runs]
    return {"wall_median": statistics.median(walls), "wall_min": min(walls), "cpu_median": statistics.median(cpus)}


def measure(repeats: int) -> dict[str, dict[str, float]]:
    return {name: measure_one(cmd, repeats) for name, cmd in COMMANDS.items()}


def importtime(cmd: list[str], top: int = 8) -> list[tuple[int, str]]:
    p = subprocess.run([cmd[0], "-X", "importtime", *cmd[1:]], capture_output=True, text=True, cwd=REPO,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    rows = []
    for line in p.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _self, cum, name = line[len("import time:"):].split("|")
            if cum.strip().isdigit():
                rows.append((int(cum), name.rstrip()))
    return sorted(rows, reverse=True)[:top]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=10)
    a = ap.parse_args(argv)
    res = measure(a.repeats)
    print(f"| command | wall median s | wall min s | CPU median s |\n|---|---:|---:|---:|")
    for name, r in res.items():
        print(f"| `{name}` | {r['wall_median']:.3f} | {r['wall_min']:.3f} | {r['cpu_median']:.3f} |")
    print("\nslowest imports of `unihema-data --help` (cumulative µs):")
    for cum, name in importtime(COMMANDS["unihema-data --help"]):
        print(f"    {cum:>8}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
