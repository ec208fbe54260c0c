"""Paper 002's tables and figures from a study's results: ``[report] figure = "rate" |
"wetting" | "coupled" | "wetting-map"`` in the study file
(:data:`~electrofem.studies.spec.FIGURES`).

Each kind reads the study database (one row per case: its parameters and flat metrics) and,
for the event-interpolated capacities, the case folders' discharge CSVs; it writes
``DIR/<kind>.csv`` (the table), ``DIR/<kind>.json`` (the table and the paper's orderings) and,
for ``rate`` and ``wetting``, ``DIR/<kind>.png``, and returns the markdown table and the
orderings as text.

* ``rate`` (``examples/study_paper_rate.toml``, job ``discharge``): paper 002's Figure 2f/g,
  one row per loading × architecture, a column per C-rate (the capacity at the end-of-discharge
  event, :func:`electrofem.analysis.event_capacity`, and the job's own), the 1C order;
  ``maps/`` gets each case's ``concentration_map.png``.
* ``wetting`` (``examples/study_paper_wetting.toml``, job ``infiltrate``): breakthrough time,
  final air, steadiness per case, and the paper's three orderings (:func:`wetting_orderings`).
* ``coupled`` (``examples/study_paper_coupled.toml``, job ``["cell", "discharge"]``): per
  loading × rate × architecture, the wetted and fully wetted capacities, the wetting metrics,
  and the 1C order of both (:func:`ordering_1c`).

* ``wetting-map`` (``examples/study_wetting_map.toml``, job ``infiltrate``): per inlet speed ×
  contact angle, the order of the three architectures' breakthrough times and air fractions
  (:func:`map_points`), a table and a map (``wetting_map.png``).

A loading is the nominal one of the case's config, ``H ρ (1 − ε)`` (:func:`nominal_loading`).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from ..analysis.capacity import event_capacity_csv
from .spec import StudySpec, case_id

#: The paper's architectures in its 1C order (best first).
ORDER_1C = ("L-Dry-S", "Mix", "S-Dry-L")
#: Paper 002, Figure 2f/g, 1C (mAh/g): L-Dry-S at 29.6 mg/cm² 103.95, Mix and S-Dry-L 0
#: ("both ... exhibit zero discharge capacities at 1C"); at 22: 139.5, 100.05, 0.
PAPER_1C_MAH_G = {
    29.6: {"L-Dry-S": 103.95, "Mix": 0.0, "S-Dry-L": 0.0},
    22.0: {"L-Dry-S": 139.5, "Mix": 100.05, "S-Dry-L": 0.0},
}
#: The wetting study's two series (case names as :func:`case_label` gives them).
WETTING_ARCHITECTURES = ("L-S", "Mix", "S-L")
WETTING_RATIOS = tuple(f"L-Dry-S {a}:{10 - a}" for a in (3, 4, 5, 6, 7))
DEFAULT_DENSITY_G_CM3 = 4.75


def nominal_loading(config: dict) -> float:
    """Active-material loading (mg/cm², 0.1 resolution) of a paper electrode config dict:
    ``H ρ (1 − ε)`` with ``H`` the box height (µm), ``ρ`` the active density (g/cm³) and ``ε``
    the porosity (the 2D section's area fraction taken as the volume fraction)."""
    rho = (config.get("density") or {}).get("active", DEFAULT_DENSITY_G_CM3)
    h = config["box"]["height"]
    return round(h * rho * (1.0 - config["porosity"]) * 0.1, 1)


def case_label(config: dict) -> str:
    """The wetting study's name of a case: the preset, and the ratio for L-Dry-S."""
    preset = config.get("preset", "?")
    return f"{preset} {config.get('ratio', '5:5')}" if preset == "L-Dry-S" else preset


def ordering_1c(rows: list[dict], loading: float, key: str) -> bool | None:
    """Is the paper's 1C ordering L-Dry-S > Mix > S-Dry-L reproduced at ``loading`` by the
    values ``key`` of ``rows`` (``architecture``, ``c_rate``, ``loading_mg_cm2``)? None: not
    all three cases are there."""
    cap = {
        r["architecture"]: r.get(key)
        for r in rows
        if r["c_rate"] == 1.0 and r["loading_mg_cm2"] == loading
    }
    v = [cap.get(a) for a in ORDER_1C]
    if any(x is None for x in v):
        return None
    return v[0] > v[1] > v[2]


def wetting_orderings(rows: list[dict]) -> dict:
    """Which of the paper's wetting orderings the rows (``case``, ``breakthrough_time_s``,
    ``final_air_fraction``) reproduce (None: not decidable, e.g. a case without a
    breakthrough time)."""
    t = {r["case"]: r.get("breakthrough_time_s") for r in rows}
    air = {r["case"]: r.get("final_air_fraction") for r in rows}

    def increasing(names, values):
        v = [values.get(n) for n in names]
        if any(x is None for x in v):
            return None
        return all(a < b for a, b in zip(v, v[1:], strict=False))

    least_air = None
    if all(air.get(n) is not None for n in WETTING_ARCHITECTURES):
        least_air = min(WETTING_ARCHITECTURES, key=lambda n: air[n]) == "L-S"
    return {
        "time L-S < Mix < S-L": increasing(WETTING_ARCHITECTURES, t),
        "time falls as the L share rises (3:7 -> 7:3)": increasing(WETTING_RATIOS[::-1], t),
        "least trapped air in L-S": least_air,
    }


# --- the study's rows ----------------------------------------------------------------------


def case_params(row: dict, spec: StudySpec) -> dict:
    """The parameters of a database row (a list value is stored as its JSON text)."""
    params = {}
    for key in spec.swept():
        v = row.get(key)
        if isinstance(v, str) and v[:1] in "[{":
            v = json.loads(v)
        params[key] = v
    return params


def _rate_rows(spec: StudySpec, rows: list[dict], csv_dirs: dict[str, str]) -> list[dict]:
    """One dict per finished case × C-rate: ``architecture``, ``loading_mg_cm2``, ``c_rate``,
    ``case_id``, the case's config and, per ``{name: sub-folder}`` of ``csv_dirs``,
    ``<name>_capacity_mAh_g`` (the job's), ``<name>_capacity_event_mAh_g`` and
    ``<name>_stop_reason``."""
    out = []
    for row in rows:
        if row.get("status") != "done":
            continue
        params = case_params(row, spec)
        data = spec.config_dict(params)
        cfg = spec.check_case(params)
        opts = cfg.discharge
        for rate in opts.c_rates:
            lab = f"{float(rate):g}"
            r = {
                "architecture": data.get("preset"),
                "loading_mg_cm2": nominal_loading(data),
                "c_rate": float(rate),
                "case_id": row["case_id"],
                "row": row,
            }
            for name, sub in csv_dirs.items():
                prefix = "discharge" if name == "wetted" or name == "" else name
                base = f"{prefix}.rates.{lab}.discharge."
                tag = f"{name}_" if name else ""
                r[f"{tag}capacity_mAh_g"] = row.get(base + "capacity_mAh_g")
                r[f"{tag}stop_reason"] = row.get(base + "stop_reason")
                path = Path(row["folder"]) / sub / f"discharge_{lab}C.csv"
                q = event_capacity_csv(path, opts.v_min_V, opts.x_stop_max)
                r[f"{tag}capacity_event_mAh_g"] = q
            out.append(r)
    out.sort(key=lambda r: (-r["loading_mg_cm2"], -r["c_rate"], ORDER_1C.index(r["architecture"])
                            if r["architecture"] in ORDER_1C else 9))  # fmt: skip
    return out


def _event_or_step(r: dict, name: str):
    """The event-interpolated capacity, else the job's own (a run with no event)."""
    q = r.get(f"{name}_capacity_event_mAh_g")
    return r.get(f"{name}_capacity_mAh_g") if q is None else q


def _f(v, fmt=".1f") -> str:
    return "–" if v is None else format(v, fmt)


def _write_csv(path: Path, rows: list[dict]) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def _orders(runs: list[dict], keys: dict[str, str]) -> dict:
    loads = sorted({r["loading_mg_cm2"] for r in runs}, reverse=True)
    return {
        name: {f"{ld:g}": ordering_1c(runs, ld, key) for ld in loads} for name, key in keys.items()
    }


# --- the kinds -----------------------------------------------------------------------------


def rate_report(spec: StudySpec, rows: list[dict], study_dir: Path) -> str:
    """Paper 002's Figure 2f/g table, figure and 1C order (see the module docstring)."""
    from ..plot import plot_rate_capability

    runs = _rate_rows(spec, rows, {"": "discharge"})
    table: dict = {}
    for r in runs:
        row = r["row"]
        t = table.setdefault((r["loading_mg_cm2"], r["architecture"]), {
            "loading_mg_cm2": r["loading_mg_cm2"],
            "loading_mesh_mg_cm2": row.get("discharge.loading_mg_cm2"),
            "architecture": r["architecture"],
            "thickness_um": row.get("discharge.electrode_thickness_um"),
        })  # fmt: skip
        lab = f"{r['c_rate']:g}C"
        t[f"{lab}_mAh_g"] = r["capacity_mAh_g"]
        t[f"{lab}_event_mAh_g"] = r["capacity_event_mAh_g"]
        t[f"{lab}_stop"] = r["stop_reason"]
        t[f"{lab}_wall_s"] = row.get("wall_time_s")
    table_rows = list(table.values())
    rates = sorted({r["c_rate"] for r in runs}, reverse=True)
    lines = [
        "| mg/cm² | electrode | " + " | ".join(f"{c:g}C" for c in rates) + " | paper, 1C |",
        "|---|---|" + "---|" * len(rates) + "---|",
    ]
    for t in table_rows:
        caps = [t.get(f"{c:g}C_event_mAh_g") or t.get(f"{c:g}C_mAh_g") for c in rates]
        paper = PAPER_1C_MAH_G.get(t["loading_mg_cm2"], {}).get(t["architecture"])
        lines.append(
            f"| {t['loading_mg_cm2']:g} | {t['architecture']} | "
            + " | ".join(_f(c) for c in caps) + f" | {_f(paper)} |"
        )  # fmt: skip
    orders = _orders(runs, {"L-Dry-S > Mix > S-Dry-L (event)": "capacity_event_mAh_g"})
    clean = [{k: v for k, v in r.items() if k != "row"} for r in runs]
    _write_csv(study_dir / "rate.csv", table_rows)
    doc = {"table": table_rows, "runs": clean, "one_C_order": orders, "paper_1C": PAPER_1C_MAH_G}
    (study_dir / "rate.json").write_text(json.dumps(doc, indent=2, default=str))
    if table_rows:
        plot_rate_capability(table_rows, study_dir / "rate.png", title=spec.name)
    maps = study_dir / "maps"
    for r in runs:
        src = Path(r["row"]["folder"]) / "discharge" / "concentration_map.png"
        if src.is_file():
            maps.mkdir(exist_ok=True)
            name = f"{r['architecture']}_{r['loading_mg_cm2']:g}_{r['c_rate']:g}C.png"
            shutil.copyfile(src, maps / name)
    text = "\n".join(lines) + f"\n1C order: {json.dumps(orders)}"
    return text + f"\n-> {study_dir / 'rate.csv'}, rate.json, rate.png"


WETTING_COLUMNS = {
    "breakthrough_time_s": "infiltrate.breakthrough_time_s",
    "final_air_fraction": "infiltrate.final_air_fraction",
    "steady": "infiltrate.steady",
    "stop_reason": "infiltrate.stop_reason",
    "t_final_s": "infiltrate.t_final_s",
    "steps": "infiltrate.steps",
    "pore_cells": "infiltrate.pore_cells",
    "volume_balance_max": "infiltrate.volume_balance.relative_error_max",
    "wall_s_to_breakthrough": "infiltrate.wall_s_to_breakthrough",
    "wall_s": "wall_time_s",
}


def wetting_report(spec: StudySpec, rows: list[dict], study_dir: Path) -> str:
    """The wetting study's table, figure and the paper's orderings (module docstring)."""
    from ..plot import plot_wetting_study

    order = {case_id(c): k for k, c in enumerate(spec.cases)}
    table = []
    for row in sorted(rows, key=lambda r: order.get(r["case_id"], len(order))):
        t = {"case": case_label(spec.config_dict(case_params(row, spec))), "status": row["status"]}
        t.update({k: row.get(col) for k, col in WETTING_COLUMNS.items()})
        table.append(t)
    orders = wetting_orderings(table)
    lines = [
        "| case | time to 1 % outlet electrolyte (s) | final air / pore volume | steady | steps "
        "| wall to breakthrough (s) | wall total (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in table:
        air = t["final_air_fraction"]
        lines.append(
            f"| {t['case']} | {_f(t['breakthrough_time_s'], '.3f')} | "
            f"{'–' if air is None else f'{100 * air:.1f} %'} | "
            f"{'–' if t['steady'] is None else ('yes' if t['steady'] else 'no')} | "
            f"{_f(t['steps'], 'd')} | {_f(t['wall_s_to_breakthrough'], '.0f')} | "
            f"{_f(t['wall_s'], '.0f')} |"
        )
    _write_csv(study_dir / "wetting.csv", table)
    doc = {"rows": table, "orderings": orders}
    (study_dir / "wetting.json").write_text(json.dumps(doc, indent=2, default=str))
    if table:
        plot_wetting_study(table, study_dir / "wetting.png", f"{spec.name} (2D, model)")
    text = "\n".join(lines) + f"\norderings: {json.dumps(orders)}"
    return text + f"\n-> {study_dir / 'wetting.csv'}, wetting.json, wetting.png"


WETTING_METRICS = (
    "wetted_active_area_fraction",
    "cut_off_active_fraction",
    "n_cut_off_particles",
    "n_particles",
    "connected_pore_fraction",
)


def coupled_report(spec: StudySpec, rows: list[dict], study_dir: Path) -> str:
    """The coupled study's table and 1C orderings (module docstring)."""
    from .cases import FULL_DIR

    runs = _rate_rows(spec, rows, {"wetted": "cell/discharge", FULL_DIR: FULL_DIR})
    lines = [
        "| loading (mg/cm²) | C-rate | architecture | wetted (mAh/g) | fully wetted (mAh/g) | "
        "stop (wetted) | wetted active area | cut-off particles (active fraction) | "
        "connected pores | air after infiltration |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    table = []
    for r in runs:
        row = r.pop("row")
        w = {k: row.get(f"discharge.wetting.{k}") for k in WETTING_METRICS}
        r.update(w)
        r["breakthrough_time_s"] = row.get("infiltrate.breakthrough_time_s")
        r["final_air_fraction"] = row.get("infiltrate.final_air_fraction")
        r["infiltration_steady"] = row.get("infiltrate.steady")
        table.append(r)
        lines.append(
            f"| {r['loading_mg_cm2']:g} | {r['c_rate']:g} | {r['architecture']} | "
            f"{_f(_event_or_step(r, 'wetted'))} | {_f(_event_or_step(r, FULL_DIR))} | "
            f"{r['wetted_stop_reason']} | {_f(w['wetted_active_area_fraction'], '.3f')} | "
            f"{_f(w['n_cut_off_particles'], 'd')}/{_f(w['n_particles'], 'd')} "
            f"({_f(w['cut_off_active_fraction'], '.3f')}) | "
            f"{_f(w['connected_pore_fraction'], '.3f')} | "
            f"{_f(r['final_air_fraction'], '.3f')} |"
        )
    orders = _orders(table, {
        "wetted L-Dry-S > Mix > S-Dry-L": "wetted_capacity_event_mAh_g",
        "fully wetted L-Dry-S > Mix > S-Dry-L": "full_capacity_event_mAh_g",
    })  # fmt: skip
    _write_csv(study_dir / "coupled.csv", table)
    doc = {"rows": table, "one_C_order": orders}
    (study_dir / "coupled.json").write_text(json.dumps(doc, indent=2, default=str))
    text = "\n".join(lines) + f"\n1C order: {json.dumps(orders)}"
    return text + f"\n-> {study_dir / 'coupled.csv'}, coupled.json"


def _order(values: dict) -> str | None:
    """The architectures by increasing value, e.g. ``"S-L < Mix < L-S"`` (None: one missing;
    ``=`` between values equal to 0.1 %)."""
    if any(values.get(a) is None for a in WETTING_ARCHITECTURES):
        return None
    names = sorted(WETTING_ARCHITECTURES, key=lambda a: values[a])
    out = names[0]
    for a, b in zip(names, names[1:], strict=False):
        near = abs(values[b] - values[a]) <= 1e-3 * max(abs(values[a]), abs(values[b]))
        out += (" = " if near else " < ") + b
    return out


PAPER_TIME_ORDER = "L-S < Mix < S-L"
REVERSED_TIME_ORDER = "S-L < Mix < L-S"


def map_points(spec: StudySpec, rows: list[dict]) -> list[dict]:
    """One dict per (inlet speed, contact angle) of a wetting map: the three architectures'
    breakthrough times and air fractions when the run stopped (at breakthrough, or at its end
    time; a run stopped by its wall-time limit has no air value), their orders, and the
    capillary number ``Ca = mu U / sigma``."""
    cells: dict[tuple, dict] = {}
    for row in rows:
        cfg = spec.config_dict(case_params(row, spec))
        inf = cfg.get("infiltration", {})
        key = (inf.get("inlet_speed_m_s", 1e-4), inf.get("contact_angle_deg", 30.0))
        p = cells.setdefault(key, {"inlet_speed_m_s": key[0], "contact_angle_deg": key[1]})
        done = row.get("status") == "done"
        arch = cfg.get("preset")
        stop = row.get("infiltrate.stop_reason") if done else row.get("status")
        p[f"time {arch}"] = row.get("infiltrate.breakthrough_time_s") if done else None
        # air is compared at one event: a run stopped otherwise (max_wall) has no value
        at_event = done and stop in ("breakthrough", "t_end")
        p[f"air {arch}"] = row.get("infiltrate.final_air_fraction") if at_event else None
        p[f"stop {arch}"] = stop
        # a finished run without breakthrough: its breakthrough time is > its last time
        no_bt = done and p[f"time {arch}"] is None
        p[f"time > {arch}"] = row.get("infiltrate.t_final_s") if no_bt else None
        p["capillary_number"] = row.get("infiltrate.capillary_number")
    points = []
    for key in sorted(cells):
        p = cells[key]
        times = {a: p.get(f"time {a}") for a in WETTING_ARCHITECTURES}
        bounds = {a: p.get(f"time > {a}") for a in WETTING_ARCHITECTURES}
        late = [a for a in WETTING_ARCHITECTURES if times[a] is None and bounds[a] is not None]
        known = [t for t in times.values() if t is not None]
        if len(late) == 1 and len(known) == 2 and bounds[late[0]] > max(known):
            times[late[0]] = bounds[late[0]]  # slowest for sure: it orders as a bound
        p["time order"] = _order(times)
        ordered = sorted(t for t in times.values() if t is not None)
        p["time order min gap"] = (
            min(b / a - 1.0 for a, b in zip(ordered, ordered[1:], strict=False))
            if len(ordered) == 3
            else None
        )
        p["air order"] = _order({a: p.get(f"air {a}") for a in WETTING_ARCHITECTURES})
        p["paper time order"] = (
            None if p["time order"] is None else (p["time order"] == PAPER_TIME_ORDER)
        )
        p["least air in L-S"] = (
            None if p["air order"] is None else (p["air order"].startswith("L-S <"))
        )
        points.append(p)
    return points


def _pct(v) -> str:
    return "–" if v is None else f"{100 * v:.1f} %"


def wetting_map_report(spec: StudySpec, rows: list[dict], study_dir: Path) -> str:
    """The wetting regime map (``examples/study_wetting_map.toml``): per inlet speed × contact
    angle, the order of the three architectures' breakthrough times against the paper's
    L-S < Mix < S-L, and the order of the air left when the run stopped (at breakthrough)."""
    from ..plot import plot_wetting_map

    points = map_points(spec, rows)
    lines = [
        "| U (m/s) | θ (°) | Ca | breakthrough L-S / Mix / S-L (s) | time order | "
        "smallest gap | air at breakthrough L-S / Mix / S-L | air order |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in points:
        times = " / ".join(
            f"> {p[f'time > {a}']:.4f}"
            if p.get(f"time {a}") is None and p.get(f"time > {a}") is not None
            else _f(p.get(f"time {a}"), ".4f")
            for a in WETTING_ARCHITECTURES
        )
        air = " / ".join(
            "–" if p.get(f"air {a}") is None else f"{100 * p[f'air {a}']:.1f} %"
            for a in WETTING_ARCHITECTURES
        )
        mark = {True: " (paper)", False: "", None: ""}[p["paper time order"]]
        lines.append(
            f"| {p['inlet_speed_m_s']:g} | {p['contact_angle_deg']:g} | "
            f"{_f(p.get('capillary_number'), '.1e')} | {times} | "
            f"{p['time order'] or '–'}{mark} | {_pct(p['time order min gap'])} | {air} | "
            f"{p['air order'] or '–'} |"
        )
    _write_csv(study_dir / "wetting_map.csv", points)
    (study_dir / "wetting_map.json").write_text(json.dumps({"points": points}, indent=2))
    if points:
        plot_wetting_map(points, study_dir / "wetting_map.png", f"{spec.name} (2D, model)")
    n_paper = sum(bool(p["paper time order"]) for p in points)
    text = "\n".join(lines) + f"\npaper time order at {n_paper} of {len(points)} points"
    return text + f"\n-> {study_dir / 'wetting_map.csv'}, wetting_map.json, wetting_map.png"


KINDS = {
    "rate": rate_report,
    "wetting": wetting_report,
    "coupled": coupled_report,
    "wetting-map": wetting_map_report,
}


def figure_report(spec: StudySpec, rows: list[dict], study_dir: str | Path) -> str:
    """Write the study's ``[report] figure`` (files in ``study_dir``); its text ("" if the
    study names none)."""
    if spec.report_figure is None:
        return ""
    return KINDS[spec.report_figure](spec, rows, Path(study_dir))
