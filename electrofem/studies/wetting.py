"""Paper 002's wetting study (its sections 2.1 and 2.5) as a series of infiltration jobs.

Two series on the paper's 2D VOF domain (50 µm wide, 146 µm high, equal porosity):

* the architectures ``L-S``, ``Mix`` and ``S-L`` (L:S = 5:5, so equal loading and porosity);
* ``L-Dry-S`` with L:S thickness ratios 3:7, 4:6, 5:5, 6:4 and 7:3.

Each case is one :func:`electrofem.jobs.infiltrate.run_infiltration` job in
``outdir/<case>`` (its own mesh, ``infiltration.json``, fields, checkpoints). The table reports
the paper's metric (time to 1 % of the maximum outlet electrolyte fraction), the final air
fraction (trapped air once the state is steady) and whether the run reached a steady state.

The paper found the wetting time ordered L-S < Mix < S-L, falling as the L share rises to 7:3,
and the least trapped air in L-S (0.71 %). **Cost:** with the paper's own time steps
(``step_control = "scheduled"``, see ``benchmarks/bench_wetting_study.py``) a case at 1 µm
reaches breakthrough in 8–14 min on two ranks of this 2-core machine; at 2 µm, running on to
1.1 × the filling time took 1.5–2.4 × the time to breakthrough, and the air was still not
steady (BENCHMARKS.md, issue 5). Use ``max_wall_s`` /
``deadline_s`` to bound a study, ``skip_done`` to resume it, and read the ``stop_reason`` and
``steady`` of every row before comparing: a row whose run did not reach breakthrough has no
breakthrough time, and a final air fraction that is not ``steady`` is still falling.

MPI-collective.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from mpi4py import MPI

from ..jobs.infiltrate import run_infiltration
from ..physics.vof import InfiltrationOptions
from .series import run_series

#: (case name, preset, L:S ratio) of paper 002's wetting study.
ARCHITECTURE_CASES = (("L-S", "L-S", (5, 5)), ("Mix", "Mix", (5, 5)), ("S-L", "S-L", (5, 5)))
RATIO_CASES = tuple((f"L-Dry-S {a}:{10 - a}", "L-Dry-S", (a, 10 - a)) for a in (3, 4, 5, 6, 7))
PAPER_CASES = ARCHITECTURE_CASES + RATIO_CASES
#: Paper 002's time steps: ``[[t0 (s), dt (s)], ...]``, 1e-4 s, then 2e-4 s from 0.1 s.
PAPER_DT_SCHEDULE_S = ((0.0, 1e-4), (0.1, 2e-4))


def paper_step_options(dt_scale: float = 1.0, **overrides) -> InfiltrationOptions:
    """The study's infiltration options: the paper's steps (times ``dt_scale``) under
    ``step_control = "scheduled"`` (flow Courant cap 10), contact-line slip 0.7 cell diameters;
    ``overrides`` are further :class:`InfiltrationOptions` fields."""
    kw = {
        "step_control": "scheduled",
        "dt_schedule_s": [[t0, dt * dt_scale] for t0, dt in PAPER_DT_SCHEDULE_S],
        "dt_max_s": PAPER_DT_SCHEDULE_S[0][1] * dt_scale,
        "contact_line_slip": 0.7,
    }
    return InfiltrationOptions(**{**kw, **overrides})


def wetting_config(
    preset: str,
    ratio=(5, 5),
    *,
    porosity: float = 0.40,
    width_um: float = 50.0,
    height_um: float = 146.0,
    mesh_size_um: float = 2.0,
    radius_factor: float = 0.5,
    seed: int = 1,
):
    """A :class:`~electrofem.config.Config` of one case: the preset's 11.3 / 4.5 µm particles,
    gap contacts (in 2D, touching disks would close the pores into pockets) and a laterally
    periodic packing; lengths in µm."""
    from ..config import parse

    return parse(
        {
            "seed": seed,
            "preset": preset,
            "ratio": f"{ratio[0]:g}:{ratio[1]:g}",
            "porosity": porosity,
            "box": {"width": width_um, "height": height_um, "periodic": True},
            "contacts": {"mode": "gap"},
            "mesh": {"size": mesh_size_um, "radius_factor": radius_factor},
        }
    )


def run_wetting_study(
    outdir: str | Path,
    cases=PAPER_CASES,
    options: InfiltrationOptions | None = None,
    *,
    comm: MPI.Comm = MPI.COMM_WORLD,
    skip_done: bool = True,
    deadline_s: float | None = None,
    progress: bool = False,
    on_result=None,
    **config_kw,
) -> list[dict]:
    """Run every case of ``cases`` (``(name, preset, ratio)``) and return one row per case.

    ``options``: the infiltration options of every case (default: paper 002's).
    ``skip_done``: a case whose ``outdir/<case>/result.json`` exists is read, not rerun.
    ``deadline_s``: no new case starts after that many wall seconds (the rest are skipped).
    ``on_result(rows)`` runs after every case. ``config_kw`` go to :func:`wetting_config`.
    """
    outdir = Path(outdir)
    opts = options or InfiltrationOptions()

    def folder(case):
        return outdir / case[0].replace(" ", "_").replace(":", "-")

    def run_case(case, cdir):
        name, preset, ratio = case
        cfg = wetting_config(preset, ratio, **config_kw)
        t = time.perf_counter()
        m = run_infiltration(cfg, cdir, opts, comm=comm, progress=progress).metrics
        return {
            "case": name,
            "preset": preset,
            "ratio": f"{ratio[0]:g}:{ratio[1]:g}",
            "breakthrough_time_s": m.get("breakthrough_time_s"),
            "final_air_fraction": m.get("final_air_fraction"),
            "steady": m.get("steady"),
            "saturation_final": m.get("saturation_final"),
            "stop_reason": m.get("stop_reason"),
            "wall_s_to_breakthrough": m.get("wall_s_to_breakthrough"),
            "t_final_s": m.get("t_final_s"),
            "steps": m.get("steps"),
            "volume_balance_max": (m.get("volume_balance") or {}).get("relative_error_max"),
            "wall_s": time.perf_counter() - t,
            "options": asdict(opts),
            "version": m.get("version"),
        }

    return run_series(
        cases,
        folder,
        run_case,
        comm=comm,
        skip_done=skip_done,
        deadline_s=deadline_s,
        on_result=on_result,
        name="wetting study",
    )


def orderings(rows: list[dict]) -> dict:
    """Which of the paper's orderings the rows reproduce (``None``: not decidable, e.g. a case
    without a breakthrough time)."""
    t = {r["case"]: r.get("breakthrough_time_s") for r in rows}
    air = {r["case"]: r.get("final_air_fraction") for r in rows}

    def increasing(names, values):
        v = [values.get(n) for n in names]
        if any(x is None for x in v):
            return None
        return all(a < b for a, b in zip(v, v[1:], strict=False))

    ratios = [name for name, _, _ in RATIO_CASES]
    arch = [name for name, _, _ in ARCHITECTURE_CASES]
    least_air = None
    if all(air.get(n) is not None for n in arch):
        least_air = min(arch, key=lambda n: air[n]) == "L-S"
    return {
        "time L-S < Mix < S-L": increasing(arch, t),
        "time falls as the L share rises (3:7 -> 7:3)": increasing(ratios[::-1], t),
        "least trapped air in L-S": least_air,
    }
