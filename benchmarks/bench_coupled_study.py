"""Paper 002's rate study, coupled with the infiltration (issue 13): every electrode is
infiltrated first (paper speed and steps, fill_factor x the filling time), then discharged as
the infiltration left it, next to the fully wetted discharge on the same mesh.

    python benchmarks/bench_coupled_study.py --size 2                   # the 18 cases, 2 µm
    python benchmarks/bench_coupled_study.py --size 2 --c-rates 1 --deadline 3600
    mpirun -n 2 python benchmarks/bench_coupled_study.py --size 1 --loadings 29.6 --c-rates 1

Resumes: run the same command again (finished cases are read from their ``result.json``;
a stage with a checkpoint continues). Writes ``benchmarks/results/coupled_study[_<tag>].json``
(every row) and prints the markdown table of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from mpi4py import MPI

from electrofem.studies.coupled import ordering_1c, run_coupled_study
from electrofem.studies.rate import PAPER_ARCHITECTURES, PAPER_C_RATES, PAPER_LOADINGS_MG_CM2

RESULTS = Path(__file__).resolve().parent / "results"
COMM = MPI.COMM_WORLD


def _f(v, fmt=".1f"):
    return "–" if v is None else format(v, fmt)


def event(row: dict, name: str, out: Path) -> float | None:
    """The capacity at the end-of-discharge event, interpolated within the last step (the
    job's capacity is that of the step that crossed: steps of up to 1 % of 1/C, ~2 mAh/g)."""
    import csv

    from electrofem.studies.rate import event_capacity

    lab = f"{row['c_rate']:g}"
    d = Path(out) / f"{row['architecture']}_{row['loading_target_mg_cm2']:g}"
    path = d / (f"{lab}C" + ("_full" if name == "full" else "")) / f"discharge_{lab}C.csv"
    if not path.is_file():
        return None
    with open(path) as fh:
        return event_capacity(list(csv.DictReader(fh)), 2.7, 0.995)


def cut_off(rows: list[dict], out: Path) -> None:
    """Add the wetting metrics' cut-off particles to rows written before they existed (the
    electrode's mesh and the infiltration's last state, analysed again)."""
    from electrofem.mesh import ElectrodeMesh
    from electrofem.physics.wetting import analyse_wetting, read_wetting

    done: dict = {}
    for r in rows:
        w = r.get("wetting") or {}
        if "cut_off_active_fraction" in w or not w:
            continue
        key = f"{r['architecture']}_{r['loading_target_mg_cm2']:g}"
        if key not in done:
            emesh = ElectrodeMesh.read(Path(out) / key / "generate" / "mesh.xdmf", COMM)
            state = read_wetting(str(Path(out) / key / "infiltrate"), COMM)
            done[key] = analyse_wetting(emesh, state, w.get("threshold") or 0.5).metrics
        w.update({k: done[key][k] for k in ("cut_off_active_fraction", "n_cut_off_particles",
                                            "n_particles")})  # fmt: skip


def table(rows: list[dict], out: Path) -> str:
    lines = [
        "| loading (mg/cm²) | C-rate | architecture | wetted (mAh/g) | fully wetted (mAh/g) | "
        "stop (wetted) | wetted active area | cut-off particles (active fraction) | "
        "connected pores | air after infiltration |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        w = r.get("wetting") or {}
        r["wetted_capacity_event_mAh_g"] = event(r, "wetted", out)
        r["full_capacity_event_mAh_g"] = event(r, "full", out)
        lines.append(
            f"| {r['loading_target_mg_cm2']:g} | {r['c_rate']:g} | {r['architecture']} | "
            f"{_f(r['wetted_capacity_event_mAh_g'])} | {_f(r['full_capacity_event_mAh_g'])} | "
            f"{r.get('wetted_stop_reason')} | {_f(w.get('wetted_active_area_fraction'), '.3f')} | "
            f"{w.get('n_cut_off_particles', '–')}/{w.get('n_particles', '–')} "
            f"({_f(w.get('cut_off_active_fraction'), '.3f')}) | "
            f"{_f(w.get('connected_pore_fraction'), '.3f')} | "
            f"{_f(r.get('final_air_fraction'), '.3f')} |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=float, default=2.0, help="mesh size (µm)")
    ap.add_argument("--archs", default=",".join(PAPER_ARCHITECTURES))
    ap.add_argument("--loadings", default=",".join(f"{x:g}" for x in PAPER_LOADINGS_MG_CM2))
    ap.add_argument("--c-rates", default=",".join(f"{x:g}" for x in PAPER_C_RATES))
    ap.add_argument("--deadline", type=float, help="no new case after this many seconds")
    ap.add_argument("--no-full", action="store_true", help="skip the fully wetted reference")
    ap.add_argument("--out", default=str(RESULTS / "coupled_study_out"))
    ap.add_argument("--tag", default="")
    ap.add_argument("--report", action="store_true", help="only print the table of --out")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO if COMM.rank == 0 else logging.WARNING,
                        format="[electrofem] %(message)s")  # fmt: skip
    json_path = RESULTS / f"coupled_study{args.tag}.json"

    def save(rows):
        if COMM.rank == 0:
            loads = sorted({r["loading_target_mg_cm2"] for r in rows})
            data = {
                "command": "python benchmarks/bench_coupled_study.py " + " ".join(
                    f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                    if v not in (None, False, "") and k not in ("out",)
                ),
                "ranks": COMM.size,
                "rows": rows,
                "ordering_1C_L>Mix>S": {f"{ld:g}": ordering_1c(rows, ld) for ld in loads},
                "ordering_1C_full": {
                    f"{ld:g}": ordering_1c(rows, ld, "full_capacity_mAh_g") for ld in loads
                },
            }  # fmt: skip
            json_path.write_text(json.dumps(data, indent=2, default=str))

    if args.report:  # the finished cases, from their result.json
        rows = [json.loads(p.read_text()) for p in sorted(Path(args.out).glob("*/*C/result.json"))]
        rows.sort(key=lambda r: (-r["loading_target_mg_cm2"], -r["c_rate"], r["architecture"]))
        cut_off(rows, Path(args.out))
        if COMM.rank == 0:
            print(table(rows, Path(args.out)))
            for ld in sorted({r["loading_target_mg_cm2"] for r in rows}):
                for key in ("wetted_capacity_event_mAh_g", "full_capacity_event_mAh_g"):
                    print(ld, key, ordering_1c(rows, ld, key))
        return 0
    rows = run_coupled_study(
        args.out,
        architectures=tuple(args.archs.split(",")),
        loadings_mg_cm2=tuple(float(x) for x in args.loadings.split(",")),
        c_rates=tuple(float(x) for x in args.c_rates.split(",")),
        mesh_size_um=args.size,
        full_reference=not args.no_full,
        deadline_s=args.deadline,
        on_result=save,
    )
    save(rows)
    if COMM.rank == 0:
        print(table(rows, Path(args.out)))
        print(json.dumps(json.loads(json_path.read_text())["ordering_1C_L>Mix>S"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
