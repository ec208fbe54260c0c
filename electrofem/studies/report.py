"""``electrofem study --report DIR``: the study's table (printed), ``DIR/results.csv`` (every
column) and ``DIR/results.png`` (each shown metric against the first swept parameter, one line
per combination of the other swept parameters); and the paper table/figure the study file asks
for with ``[report] figure`` (:mod:`electrofem.studies.figures`). ``electrofem study STUDY.toml
-o DIR`` writes the same at the end of its run."""

from __future__ import annotations

import csv
from pathlib import Path

from .db import column_kinds, load_results
from .figures import figure_report
from .runner import load_study_dir

CSV_FILE = "results.csv"
PNG_FILE = "results.png"
#: Metric names (last dotted part) shown by default, when the study names none.
HEADLINE = (
    "tortuosity",
    "relative_diffusivity",
    "sigma_eff_S_m",
    "capacity_mAh_g",
    "breakthrough_time_s",
    "final_air_fraction",
)
MAX_DEFAULT_METRICS = 3


def _numeric(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def default_metrics(rows: list[dict], kinds: dict[str, str]) -> list[str]:
    """Headline metrics present in the rows, else the first numeric metrics that vary."""
    metrics = [c for c, k in kinds.items() if k == "metric"]
    head = [m for m in metrics if m.rsplit(".", 1)[-1] in HEADLINE]
    if head:
        return head[:MAX_DEFAULT_METRICS]
    varying = [m for m in metrics if len({r.get(m) for r in rows if _numeric(r.get(m))}) > 1]
    return varying[:MAX_DEFAULT_METRICS]


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def format_table(rows: list[dict], columns: list[str]) -> str:
    """A plain-text table of ``columns``."""
    cells = [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def report(study_dir: str | Path, metrics: list[str] | None = None) -> str:
    """Write ``results.csv`` and ``results.png`` into ``study_dir``; return the table text."""
    from ..plot import plot_study

    study_dir = Path(study_dir)
    spec = load_study_dir(study_dir)
    rows = load_results(study_dir)
    kinds = column_kinds(study_dir)
    metrics = list(metrics or spec.report_metrics or default_metrics(rows, kinds))
    unknown = [m for m in metrics if m not in kinds]
    if unknown:
        raise ValueError(f"--metric: no column {unknown[0]!r} in {study_dir}'s results")
    params = [c for c, k in kinds.items() if k == "param"]
    cols = list(kinds)
    with open(study_dir / CSV_FILE, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    done = [r for r in rows if r.get("status") == "done"]
    if params and metrics and done:
        plot_study(done, params[0], metrics, params[1:], study_dir / PNG_FILE, spec.name)
    shown = ["case_id", *params, "status", "wall_time_s", *metrics]
    n_failed = sum(r.get("status") != "done" for r in rows)
    text = format_table(rows, shown)
    text += f"\n{len(rows)} cases, {n_failed} failed -> {study_dir / CSV_FILE}"
    for r in rows:
        if r.get("status") != "done":
            text += f"\nfailed {r['case_id']}: {r.get('error')}"
    if done:
        fig = figure_report(spec, rows, study_dir)
        text += f"\n\n{fig}" if fig else ""
    return text
