"""The paper benchmarks as thin wrappers over ``electrofem study`` (issue 15).

Each ``bench_*.py`` names a study file of ``examples/`` and the ``benchmarks/results/`` names
its report files are kept under. This runs (resuming) the study into ``--out``, writes the
report (``electrofem study --report``: results.csv/png and the study's ``[report] figure``)
and copies the figure's files to ``benchmarks/results/``. Options:

* ``--only KEY=V1,V2``: only the cases whose parameter ``KEY`` is one of the values (e.g.
  ``--only preset=L-Dry-S``; repeatable);
* ``--set KEY=VALUE``: a base config value (TOML syntax, e.g. ``--set mesh.size=1.0``;
  repeatable; a changed base needs a new ``--out``);
* ``--workers N``, ``--deadline S``: as ``electrofem study``; ``--report``: only the report.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import tomllib
from pathlib import Path

from mpi4py import MPI

from electrofem.studies.report import report
from electrofem.studies.runner import parent_comm, run_study
from electrofem.studies.spec import load_study

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _value(text: str):
    return tomllib.loads(f"v = {text}")["v"]


def main(study: str, default_out: str, copies: dict[str, str], argv=None, doc: str = "") -> int:
    """Run ``examples/<study>`` and copy its report files ``{name in the study folder: name in
    benchmarks/results with {tag}}``."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0] if doc else None)
    ap.add_argument("--out", default=str(RESULTS / default_out), help="the study folder")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--deadline", type=float, default=None, help="no new case after (s)")
    ap.add_argument("--only", action="append", default=[], metavar="KEY=V1,V2")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--tag", default="", help="suffix of the result files")
    ap.add_argument("--report", action="store_true", help="only the report of --out")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if MPI.COMM_WORLD.rank == 0 else logging.WARNING,
                        format="[study] %(message)s")  # fmt: skip
    spec = load_study(ROOT / "examples" / study)
    if args.set:
        sets = dict(s.split("=", 1) for s in args.set)
        spec = dataclasses.replace(
            spec, base=spec.config_dict({k: _value(v) for k, v in sets.items()})
        )
    for only in args.only:
        key, values = only.split("=", 1)
        keep = [_value(v) if v[:1] in "[0123456789" else v for v in values.split(",")]
        spec = dataclasses.replace(spec, cases=tuple(c for c in spec.cases if c.get(key) in keep))
    if not args.report:
        run_study(spec, args.out, workers=args.workers, deadline_s=args.deadline)
    if parent_comm().rank == 0 and MPI.COMM_WORLD.rank == 0:
        print(report(args.out))
        for src, dst in copies.items():
            path = Path(args.out) / src
            if path.is_file():
                shutil.copyfile(path, RESULTS / dst.format(tag=args.tag))
            elif path.is_dir():
                shutil.copytree(path, RESULTS / dst.format(tag=args.tag), dirs_exist_ok=True)
    return 0
