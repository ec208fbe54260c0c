"""The study runner's speed-up with 2 workers against 1, on the same small study, in one run.

    python benchmarks/bench_study.py                  # waits for a quiet machine (<= 900 s)
    python benchmarks/bench_study.py --max-wait 0     # time it now, whatever the load

The study (written to ``WORKDIR/study.toml``): 8 ``transport`` cases (generate, then the
through-plane tortuosity) on 2D L-S sections of 140 × 140 µm at ``mesh.size = 0.5`` (~200k
triangles, ~5-10 s a case, mostly the Gmsh meshing), porosity {0.40, 0.50} × seed {1, 2, 3, 4}.
(``--box 100``: ~100k triangles, ~3.5 s a case on a quiet machine.)
It runs twice through the command line, each time into a new folder:
``electrofem study study.toml -o w1 --workers 1`` and then ``... -o w2 --workers 2``; the
wall time of each command (process start to exit, so each includes its imports and the
workers' start-up) is measured. Both databases must hold the same metrics (every numeric
metric within 1e-10 relative, timings excepted; every other value equal).

Before the timed part the script waits until the 1-minute load average is below
``--load-below`` (polled every 20 s) or ``--max-wait`` seconds have passed; the load average
at the start and the end of each run is recorded. Writes
``benchmarks/results/bench_study.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
#: The transport study on a square 2D L-S section both study benchmarks run (bench_surrogate
#: too); ``{box}`` µm wide and high, mesh ``{size}`` µm.
BASE = """job = "transport"

[base]
seed = 1
preset = "L-S"
[base.box]
width = {box}
height = {box}
[base.contacts]
mode = "gap"
[base.mesh]
size = {size}
[base.transport]
directions = ["y"]
"""
STUDY = (
    'name = "bench-study"\n'
    + BASE
    + """
[grid]
porosity = {porosities}
seed = {seeds}
"""
)
METRIC = "transport.directions.y.tortuosity"
RTOL = 1e-10


def wait_for_quiet(threshold: float, max_wait: float, poll: float = 20.0) -> dict:
    """Poll the 1-minute load average until it is below ``threshold`` or ``max_wait`` s pass."""
    t0 = time.monotonic()
    first = os.getloadavg()[0]
    while True:
        load = os.getloadavg()[0]
        waited = time.monotonic() - t0
        if load < threshold or waited >= max_wait:
            break
        print(f"load {load:.2f} >= {threshold}: waiting ({waited:.0f}/{max_wait:.0f} s)",
              flush=True)  # fmt: skip
        time.sleep(min(poll, max(max_wait - waited, 0.0)))
    return {"load_before_wait": first, "load_after_wait": load, "waited_s": waited,
            "quiet": load < threshold}  # fmt: skip


def run_study(study: Path, out: Path, workers: int) -> dict:
    """One ``electrofem study`` command; its wall time and the load around it."""
    cmd = [sys.executable, "-m", "electrofem.cli", "study", str(study), "-o", str(out),
           "--workers", str(workers)]  # fmt: skip
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": path}
    )
    wall = time.perf_counter() - t0
    load1 = os.getloadavg()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    print(proc.stdout.strip().splitlines()[-1], flush=True)
    return {"workers": workers, "command": " ".join(cmd), "wall_s": wall,
            "load_start": list(load0), "load_end": list(load1)}  # fmt: skip


def _numeric(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def compare(rows1: list[dict], rows2: list[dict]) -> dict:
    """Every metric of each case in both databases (timings, folders and wall times
    excepted): the largest relative difference and the names that differ."""
    by2 = {r["case_id"]: r for r in rows2}
    skip = {"folder", "wall_time_s"}
    n, worst, differ = 0, 0.0, []
    for r1 in rows1:
        r2 = by2.get(r1["case_id"], {})
        for k in sorted(set(r1) | set(r2)):
            if k in skip or ".seconds" in k or k.split(".")[-1].startswith("seconds"):
                continue
            a, b = r1.get(k), r2.get(k)
            n += 1
            if _numeric(a) and _numeric(b):
                rel = abs(a - b) / max(abs(a), abs(b), 1e-300) if a != b else 0.0
                worst = max(worst, rel)
                if rel > RTOL:
                    differ.append(f"{r1['case_id']}:{k}")
            elif a != b:
                differ.append(f"{r1['case_id']}:{k}")
    return {"values_compared": n, "max_rel_diff": worst, "rtol": RTOL, "differ": differ,
            "same": not differ and len(rows1) == len(rows2)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-wait", type=float, default=900.0, help="s to wait for a quiet machine")
    ap.add_argument("--load-below", type=float, default=1.2, help="1-min load average to wait for")
    ap.add_argument("--box", type=float, default=140.0, help="section width = height (µm)")
    ap.add_argument("--size", type=float, default=0.5, help="mesh.size (µm)")
    ap.add_argument("--porosity", type=float, nargs="+", default=[0.40, 0.50])
    ap.add_argument("--seed", type=int, nargs="+", default=[1, 2, 3, 4])
    ap.add_argument("--workdir", help="study folders (default: a new temporary folder)")
    ap.add_argument("--out", default=str(RESULTS / "bench_study.json"))
    args = ap.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_study_"))
    work.mkdir(parents=True, exist_ok=True)
    for sub in ("w1", "w2"):
        if (work / sub).exists():
            raise SystemExit(f"{work / sub} exists: give a new --workdir")
    study = work / "study.toml"
    study.write_text(STUDY.format(box=args.box, size=args.size, porosities=args.porosity,
                                  seeds=args.seed))  # fmt: skip
    n_cases = len(args.porosity) * len(args.seed)
    print(f"{n_cases} cases -> {work}", flush=True)
    wait = wait_for_quiet(args.load_below, args.max_wait)
    print(f"timing at load {wait['load_after_wait']:.2f} (waited {wait['waited_s']:.0f} s)",
          flush=True)  # fmt: skip
    runs = [run_study(study, work / "w1", 1), run_study(study, work / "w2", 2)]

    from electrofem.studies import load_results

    rows = [load_results(work / "w1"), load_results(work / "w2")]
    check = compare(*rows)
    by2 = {r["case_id"]: r for r in rows[1]}
    cases = [
        {"case_id": r["case_id"], "porosity": r["porosity"], "seed": r["seed"],
         "status_1": r["status"], "status_2": by2[r["case_id"]]["status"],
         "wall_1_s": r["wall_time_s"], "wall_2_s": by2[r["case_id"]]["wall_time_s"],
         "n_cells": r.get("generate.mesh.n_cells"), METRIC: r.get(METRIC)}
        for r in rows[0]
    ]  # fmt: skip
    sum1, sum2 = (sum(c[f"wall_{w}_s"] for c in cases) for w in (1, 2))
    speedup = runs[0]["wall_s"] / runs[1]["wall_s"]
    result = {
        "benchmark": "bench_study",
        "study": study.read_text(),
        "n_cases": n_cases,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },  # fmt: skip
        "wait": wait,
        "load_start": runs[0]["load_start"],
        "load_end": runs[1]["load_end"],
        "runs": runs,
        "speedup_2_vs_1": speedup,
        "parallel_efficiency": speedup / 2,
        "sum_case_wall_s": {"workers_1": sum1, "workers_2": sum2},
        "case_slowdown_2_vs_1": sum2 / sum1,
        "overhead_s": {
            "workers_1": runs[0]["wall_s"] - sum1,
            "workers_2": runs[1]["wall_s"] - sum2 / 2,
        },  # fmt: skip
        "metrics_check": check,
        "cases": cases,
        "workdir": str(work),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))

    print("\n| workers | wall (s) | sum of case walls (s) | load 1-min start → end |")
    print("|---|---|---|---|")
    for run, s in zip(runs, (sum1, sum2), strict=True):
        print(f"| {run['workers']} | {run['wall_s']:.1f} | {s:.1f} | "
              f"{run['load_start'][0]:.2f} → {run['load_end'][0]:.2f} |")  # fmt: skip
    print(f"\nspeed-up 2 vs 1 workers: {speedup:.2f} (efficiency {speedup / 2:.2f}); a case "
          f"takes {sum2 / sum1:.2f}× as long with 2 workers")  # fmt: skip
    print("\n| case | porosity | seed | cells | τ_y | wall 1 worker (s) | wall 2 workers (s) |")
    print("|---|---|---|---|---|---|---|")
    for c in cases:
        tau = c[METRIC]
        tau = f"{tau:.6f}" if _numeric(tau) and math.isfinite(tau) else str(tau)
        print(f"| {c['case_id']} | {c['porosity']} | {c['seed']} | {c['n_cells']} | {tau} | "
              f"{c['wall_1_s']:.2f} | {c['wall_2_s']:.2f} |")  # fmt: skip
    verdict = "same" if check["same"] else f"DIFFER: {check['differ'][:5]}"
    print(f"\nmetrics: {check['values_compared']} values compared, max relative difference "
          f"{check['max_rel_diff']:.3g} -> {verdict}\n-> {args.out}")  # fmt: skip


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
