"""The discharge's time schemes (``DischargeOptions.time_scheme``) on a whole 1C discharge of a
3D electrode: steps, Newton iterations, wall time, and the error of the voltage curve and of
the capacity against a tight BDF2 reference, per (scheme, dt_max_fraction, time_tolerance).

    python benchmarks/bench_discharge_time.py [--refine 1] [--workers 2]

The electrode is ``bench_discharge_krylov.py``'s mesh of refinement ``f`` (made if missing;
f = 1: 24 × 24 × 28 µm, h = 2 µm). Each case runs the discharge job in its own one-rank
process, ``--workers`` at a time; the reference (``bdf2``, 0.01, 1e-4) runs first, alone. The
voltage error is the largest difference from the reference's curve (linearly interpolated)
over 60 s < t < the reference's end; the capacity error is relative to the reference's.
Writes ``benchmarks/results/bench_discharge_time_f<f>.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from bench_discharge_krylov import make_mesh, mesh_dir

RESULTS = Path(__file__).resolve().parent / "results"
#: (time_scheme, dt_max_fraction, time_tolerance, snes_rtol); None: the option's default
REFERENCE = ("bdf2", 0.01, 1e-4, None)
CASES = [
    ("euler", 0.01, None, None),  # the default
    ("euler", 0.0025, None, None),
    ("euler", 0.04, None, None),
    ("bdf2", 0.1, 1e-2, None),  # bdf2 with its default tolerance
    ("bdf2", 0.1, 1e-2, 1e-10),  # ... with Newton's tolerance before timestep.newton_rtol
    ("bdf2", 0.1, 3e-3, None),
    ("bdf2", 0.1, 1e-3, None),
    ("bdf2", 0.04, 1e-3, None),
]


def run_one(f: float, scheme: str, frac: float, tol: str, snes_rtol: str, out: Path) -> None:
    """One 1C discharge in this process (the job, one rank); ``snes_rtol`` "none" keeps the
    scheme's own Newton tolerance."""
    from electrofem.jobs.discharge import run_discharge
    from electrofem.physics.electrochem import DischargeOptions

    extra = {} if tol == "none" else {"time_tolerance": float(tol)}
    if snes_rtol != "none":
        extra["petsc_options"] = {"snes_rtol": float(snes_rtol)}
    opts = DischargeOptions(c_rates=(1.0,), time_scheme=scheme, dt_max_fraction=frac, **extra)
    t = time.perf_counter()
    run_discharge(mesh_dir(f) / "mesh.xdmf", out, opts, progress=False, plots=False)
    (out / "wall_s.txt").write_text(f"{time.perf_counter() - t}\n")


def launch(f: float, case, work: Path) -> Path:
    scheme, frac, tol, rtol = case
    out = work / f"{scheme}_{frac:g}_{tol}_{rtol}"
    cmd = [sys.executable, __file__, "--one", str(f), scheme, str(frac), str(tol).lower()]
    cmd += [str(rtol).lower(), str(out)]
    subprocess.run(cmd, check=True)
    return out


def curve(out: Path):
    rows = list(csv.DictReader((out / "discharge_1C.csv").open()))
    return (
        np.array([float(r["time_s"]) for r in rows]),
        np.array([float(r["voltage_V"]) for r in rows]),
    )


def balances(out: Path) -> dict:
    """The largest conservation errors of the run's steps: the interface current against the
    applied one (relative), and the Li gained against the charge passed over F (relative to
    the Li gained by the end)."""
    from electrofem.physics.materials import FARADAY

    rows = list(csv.DictReader((out / "discharge_1C.csv").open()))
    meta = json.loads((out / "discharge.json").read_text())
    area = meta["cross_section_m2"]
    li_end = float(rows[-1]["capacity_mAh_g"]) * 3.6 * meta["active_mass_g"] / FARADAY
    cur = max(
        abs(float(r["li_balance_error"])) / abs(float(r["current_density_A_m2"]) * area)
        for r in rows
    )
    li = max(abs(float(r["li_inventory_error_mol"])) for r in rows) / li_end
    return {"max_current_balance": cur, "max_li_balance": li}


def summary(case, out: Path, ref: Path | None) -> dict:
    rc = json.loads((out / "discharge.json").read_text())["rate_capability"][0]
    row = {
        "time_scheme": case[0],
        "dt_max_fraction": case[1],
        "time_tolerance": case[2],
        "snes_rtol": case[3],
        "steps": rc["steps"],
        "newton_iterations": rc["newton_iterations"],
        "capacity_mAh_g": rc["capacity_mAh_g"],
        "final_voltage_V": rc["final_voltage_V"],
        "stop_reason": rc["stop_reason"],
        "wall_s": float((out / "wall_s.txt").read_text()),
        **balances(out),
    }
    if ref is not None:
        t, v = curve(out)
        tr, vr = curve(ref)
        keep = (t > 60.0) & (t < tr[-1])
        row["max_dV_mV"] = 1e3 * float(np.max(np.abs(v[keep] - np.interp(t[keep], tr, vr))))
        cref = json.loads((ref / "discharge.json").read_text())["rate_capability"][0]
        row["capacity_error"] = rc["capacity_mAh_g"] / cref["capacity_mAh_g"] - 1
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--refine", type=float, default=1.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--one", nargs=6, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        f, scheme, frac, tol, snes_rtol, out = args.one
        run_one(float(f), scheme, float(frac), tol, snes_rtol, Path(out))
        return
    from electrofem import __version__

    if not (mesh_dir(args.refine) / "mesh.xdmf").is_file():
        make_mesh(args.refine)
    work = Path(tempfile.mkdtemp(prefix="electrofem-time-"))
    ref = launch(args.refine, REFERENCE, work)
    with ThreadPoolExecutor(args.workers) as pool:
        outs = list(pool.map(lambda c: launch(args.refine, c, work), CASES))
    rows = [summary(REFERENCE, ref, None)]
    rows += [summary(c, o, ref) for c, o in zip(CASES, outs, strict=True)]
    record = {
        "benchmark": "bench_discharge_time",
        "command": "python benchmarks/bench_discharge_time.py " + " ".join(sys.argv[1:]),
        "version": __version__,
        "mesh": str(mesh_dir(args.refine)),
        "workers": args.workers,
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"bench_discharge_time_f{args.refine:g}.json"
    path.write_text(json.dumps(record, indent=1))
    for r in rows:
        print(json.dumps(r))
    print(f"-> {path}")


if __name__ == "__main__":
    main()
