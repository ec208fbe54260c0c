"""Same results before and after a refactor: run three short jobs through the command line and
compare their JSON and CSV outputs with a reference run.

The three jobs are the demo (generate + transport), a short discharge (2C, 12 steps per phase,
a rest and a charge) and a short infiltration (15 steps of the paper's scheduled step). The
command line is the stable interface (its verbs and flags do not change), so the same script
runs on any version of the package::

    python benchmarks/bench_identity.py --out /tmp/ident-new                     # run
    python benchmarks/bench_identity.py --out /tmp/ident-new --compare REF_DIR   # run + compare
    python benchmarks/bench_identity.py --compare-only A B [--rtol 1e-8]          # compare only
    python benchmarks/bench_identity.py --mpi 2 --out /tmp/ident-n2 --compare REF2 --rtol 1e-6

Serial runs must agree bit for bit (``--rtol 0``: every number equal); two-rank runs within the
solver tolerance. Timings, paths, versions and the rank count are not compared; options
recorded in addition under ``parameters`` (new parameters) are listed, not counted as
differences.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DISCHARGE_TOML = """
seed = 1
preset = "L-Dry-S"
ratio = "5:5"
porosity = 0.40
[box]
width = 30.0
height = 40.0
periodic = true
[contacts]
mode = "gap"
[density]
active = 4.75
[mesh]
size = 2.0
[discharge]
c_rates = [2.0]
rest_s = 20.0
charge = true
max_steps_per_phase = 12
cbd_conductivity_S_m = 1.0
fields_every_steps = 5
checkpoint_every_steps = 5
"""

#: Keys whose values depend on the machine, the clock or the run, not on the numerics.
IGNORED = {
    "seconds",
    "wall_s",
    "wall_time_s",
    "wall_s_to_breakthrough",
    "performance",
    "version",
    "mpi_ranks",
    "mesh",
    "files",
    "checkpoint",
    "seconds_geometry",
    "seconds_mesh",
    "seconds_import",
    "job_wall_s",
    "mesh_s",
    "discharge_wall_s",
}

OUTPUTS = {
    "demo": ["summary.json", "transport.json", "pybamm.json", "profiles.csv", "mesh.json"],
    "discharge": ["discharge.json", "discharge_2C.csv", "rate_capability.csv"],
    "infiltration": ["infiltration.json", "infiltration.csv"],
}


def run(out: Path, mpi: int) -> None:
    exe = [sys.executable, "-m", "electrofem.cli"]
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / "discharge.toml").write_text(DISCHARGE_TOML)
    jobs = {
        "demo": ["demo", "-o", str(out / "demo"), "-q"],
        "discharge": ["discharge", str(out / "discharge.toml"), "-o", str(out / "discharge")],
        "infiltration": [
            "infiltrate",
            str(ROOT / "examples" / "infiltration_2d.toml"),
            "-o",
            str(out / "infiltration"),
            "--max-steps",
            "15",
            "-q",
        ],
    }
    pre = [str(Path(sys.executable).parent / "mpirun"), "-n", str(mpi)] if mpi > 1 else []
    for name, args in jobs.items():
        print(f"running {name} ...", flush=True)
        subprocess.run(pre + exe + args + (["-q"] if name == "discharge" else []), check=True)


def _close(a, b, rtol: float) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            fa, fb = float(a), float(b)
        except (TypeError, ValueError):
            return a == b
        if math.isnan(fa) and math.isnan(fb):
            return True
        if rtol == 0:
            return fa == fb
        return abs(fa - fb) <= rtol * max(abs(fa), abs(fb), 1e-300) or abs(fa - fb) < 1e-14
    return a == b


def _diff(a, b, path: str, rtol: float, out: list) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k in IGNORED:
                continue
            if k not in a or k not in b:
                where = "new" if k in b else "reference"
                # a parameter added to the recorded options is reported, not a difference
                added = where == "new" and ".parameters." in f"{path}."
                out.append(f"{'+ ' if added else ''}{path}.{k}: only in {where}")
                continue
            _diff(a[k], b[k], f"{path}.{k}", rtol, out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: length {len(a)} vs {len(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{path}[{i}]", rtol, out)
    elif not _close(a, b, rtol):
        out.append(f"{path}: {a!r} vs {b!r}")


def _read(path: Path):
    if path.suffix == ".json":
        return json.loads(path.read_text())
    with open(path) as fh:
        rows = list(csv.DictReader(fh))
    return [{k: _num(v) for k, v in r.items()} for r in rows]


def _num(v):
    try:
        return float(v) if any(c in v for c in ".eEn") else int(v)
    except ValueError:
        return v


def compare(ref: Path, new: Path, rtol: float) -> list[str]:
    problems = []
    for job, files in OUTPUTS.items():
        for f in files:
            a, b = ref / job / f, new / job / f
            if not a.is_file() or not b.is_file():
                problems.append(f"{job}/{f}: missing ({'reference' if not a.is_file() else 'new'})")
                continue
            _diff(_read(a), _read(b), f"{job}/{f}", rtol, problems)
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--compare", type=Path, help="reference directory to compare with")
    ap.add_argument("--compare-only", nargs=2, type=Path, metavar=("REF", "NEW"))
    ap.add_argument("--rtol", type=float, default=0.0, help="0: bit for bit")
    ap.add_argument("--mpi", type=int, default=1, help="ranks (mpirun -n) of the jobs")
    args = ap.parse_args()
    if args.compare_only:
        ref, new = args.compare_only
    else:
        run(args.out, args.mpi)
        if args.compare is None:
            return 0
        ref, new = args.compare, args.out
    found = compare(ref, new, args.rtol)
    added = [p for p in found if p.startswith("+ ")]
    problems = [p for p in found if not p.startswith("+ ")]
    n = sum(len(f) for f in OUTPUTS.values())
    if added:
        print(f"{len(added)} parameters recorded in addition (not compared):")
        print("\n".join(added))
    if problems:
        print(f"{len(problems)} differences (rtol {args.rtol:g}):")
        print("\n".join(problems[:40]))
        return 1
    print(f"identical within rtol {args.rtol:g}: {n} files of {len(OUTPUTS)} jobs ({ref} vs {new})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
