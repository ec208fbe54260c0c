"""The surrogate loop on a real, cheap metric: suggest -> run -> refit rounds of ``electrofem
study --suggest DIR --metric M --minimize --iterate K`` on the through-plane tortuosity.

    python benchmarks/bench_surrogate.py              # 6 grid cases + 5 rounds, ~1-3 min
    python benchmarks/bench_surrogate.py --rounds 3

The study (written to ``WORKDIR/study.toml``): ``transport`` on a coarse 2D L-S section
(60 × 60 µm, ``mesh.size = 1.5``, gap contacts, seed 1; a few seconds a case), over two
continuous keys: ``porosity`` in [0.35, 0.60] and ``std_fraction`` (the lognormal spread of
the particle radii, std / mean) in [0, 0.3]. ``ratio`` (the L:S share) is not used: the config
takes it as ``"a:b"`` or ``[a, b]``, not as one number, so the surrogate cannot sweep it.
The initial grid is porosity {0.35, 0.475, 0.60} × std_fraction {0, 0.3} (6 cases). The
metric, minimised, is ``transport.directions.y.tortuosity`` (τ = ε D0 / D_eff).

Both steps run through the command line's own function (``electrofem.cli.main``, in this
process): ``study STUDY.toml -o DIR``, then ``study --suggest DIR ... --iterate K`` (the
runner's ``surrogate.iterate``: fit the GP, propose the case of largest expected improvement,
run it, refit). Each round's record is read back from ``DIR/suggestions.json``; after the
last round the GP is refitted once more for its cross-validated error. Writes
``benchmarks/results/bench_surrogate.json`` and prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from bench_study import BASE  # the sibling script: the same section

RESULTS = Path(__file__).resolve().parent / "results"
ROOT = Path(__file__).resolve().parents[1]
METRIC = "transport.directions.y.tortuosity"
STUDY = (
    'name = "bench-surrogate"\n'
    + BASE
    + """
[grid]
porosity = [0.35, 0.475, 0.60]
std_fraction = [0.0, 0.3]

[suggest]
bounds = {{ porosity = [0.35, 0.60], std_fraction = [0.0, 0.3] }}

[report]
metrics = ["{metric}"]
"""
)


def _cli(argv: list[str]) -> float:
    """Run ``electrofem`` with ``argv`` in this process; its wall time (status 0 required)."""
    from electrofem.cli import main as cli

    t0 = time.perf_counter()
    code = cli(argv)
    if code != 0:
        raise SystemExit(f"electrofem {' '.join(argv)}: status {code}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="suggest -> run -> refit rounds")
    ap.add_argument("--seed", type=int, default=0, help="--suggest candidate sampling seed")
    ap.add_argument("--box", type=float, default=60.0, help="section width = height (µm)")
    ap.add_argument("--size", type=float, default=1.5, help="mesh.size (µm)")
    ap.add_argument("--workdir", help="the study folder's parent (default: a temporary folder)")
    ap.add_argument("--out", default=str(RESULTS / "bench_surrogate.json"))
    args = ap.parse_args()

    from electrofem.studies import load_results
    from electrofem.studies.runner import load_study_dir
    from electrofem.studies.spec import case_id
    from electrofem.studies.surrogate import SUGGESTIONS_FILE, fit_surrogate

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_surrogate_"))
    out = work / "study"
    if out.exists():
        raise SystemExit(f"{out} exists: give a new --workdir")
    work.mkdir(parents=True, exist_ok=True)
    study = work / "study.toml"
    study.write_text(STUDY.format(box=args.box, size=args.size, metric=METRIC))
    load0 = os.getloadavg()
    grid_s = _cli(["study", str(study), "-o", str(out), "-q"])
    suggest = ["study", "--suggest", str(out), "--metric", METRIC, "--minimize",
               "--iterate", str(args.rounds), "--seed", str(args.seed), "-q"]  # fmt: skip
    loop_s = _cli(suggest)
    rows = load_results(out)
    final = fit_surrogate(load_study_dir(out), rows, METRIC, maximize=False, seed=args.seed)
    by_id = {r["case_id"]: r for r in rows}
    rounds = json.loads((out / SUGGESTIONS_FILE).read_text())
    for r in rounds:
        r["wall_time_s"] = by_id[case_id(r["params"])]["wall_time_s"]
    n_grid = len(rows) - len(rounds)
    grid = [{"case_id": r["case_id"], "porosity": r["porosity"],
             "std_fraction": r["std_fraction"], METRIC: r.get(METRIC),
             "wall_time_s": r["wall_time_s"]} for r in rows[:n_grid]]  # fmt: skip
    result = {
        "benchmark": "bench_surrogate",
        "study": study.read_text(),
        "metric": METRIC,
        "objective": "minimize",
        "commands": [
            f"electrofem study {study} -o {out}",
            "electrofem " + " ".join(suggest),
        ],
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },  # fmt: skip
        "load_start": list(load0),
        "load_end": list(os.getloadavg()),
        "wall_s": {"grid": grid_s, "iterate": loop_s},
        "initial_grid": grid,
        "rounds": rounds,
        "final_fit": {
            "n_cases": final.n_cases,
            "cv_rmse": final.cv_rmse,
            "cv_r2": final.cv_r2,
            "best": {k: final.best[k] for k in ("case_id", "porosity", "std_fraction", METRIC)},
            "kernel": str(final.gp.kernel_),
        },  # fmt: skip
        "workdir": str(work),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, default=str))

    print(f"\nInitial grid ({n_grid} cases, {grid_s:.1f} s); metric {METRIC} (minimised)\n")
    print("| case | porosity | std_fraction | τ_y | wall (s) |")
    print("|---|---|---|---|---|")
    for g in grid:
        print(f"| {g['case_id']} | {g['porosity']} | {g['std_fraction']} | {g[METRIC]:.4f} | "
              f"{g['wall_time_s']:.1f} |")  # fmt: skip
    print(f"\nRounds ({loop_s:.1f} s in all)\n")
    print("| round | porosity | std_fraction | predicted τ_y | EI | τ_y obtained | GP fit on | "
          "CV RMSE | CV R² | best so far | case wall (s) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rounds:
        p = r["params"]
        print(f"| {r['round']} | {p['porosity']:.4f} | {p['std_fraction']:.4f} | "
              f"{r['predicted_mean']:.4f} ± {r['predicted_std']:.3f} | "
              f"{r['expected_improvement']:.2e} | {r['value']:.4f} | {r['n_cases']} cases | "
              f"{r['cv_rmse']:.4f} | {r['cv_r2']:.3f} | {r['best_value']:.4f} | "
              f"{r['wall_time_s']:.1f} |")  # fmt: skip
    b = final.best
    print(f"| refit | | | | | | {final.n_cases} cases | {final.cv_rmse:.4f} | "
          f"{final.cv_r2:.3f} | {b[METRIC]:.4f} | |")  # fmt: skip
    print(f"\nbest: porosity {b['porosity']}, std_fraction {b['std_fraction']} -> τ_y "
          f"{b[METRIC]:.4f} ({b['case_id']})\n-> {args.out}")  # fmt: skip


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
