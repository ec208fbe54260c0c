"""A design study file (TOML) -> :class:`StudySpec`: a base config, a job (chain) and its cases.

A study file::

    name = "porosity-sweep"          # optional (default: the file's stem)
    job = "transport"                # or a chain ["generate", "transport", "discharge"],
                                     # "cell" (["cell", "discharge"]: and the fully wetted
                                     # discharge of its mesh, in full/), or
                                     # "python:module:function" (analytic demos)
    base = "small_2d.toml"           # a config file (relative to this file), or a [base] table

    [grid]                           # Cartesian product of every list below
    porosity = [0.35, 0.45]
    "mesh.size" = [2.0, 3.0]         # dotted config keys (quoted, or as a [grid.mesh] table)

    [[cases]]                        # and/or an explicit list of cases
    preset = "S-L"
    porosity = 0.4

    [suggest]                        # optional: bounds of --suggest (default: the swept range)
    bounds = { porosity = [0.3, 0.5] }
    [report]                         # optional: the metrics --report shows and plots
    metrics = ["transport.directions.y.tortuosity"]
    figure = "rate"                  # and a paper table/figure (one of FIGURES)

Every config key can be swept (``preset``, ``ratio``, ``porosity``, ``seed``, ``mesh.size``,
``discharge.c_rates``, ``infiltration.contact_angle_deg``, ...): a case's value replaces the
base's. A case is named by :func:`case_id`, a stable hash of its parameters. Nothing here
imports dolfinx.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..config import ConfigError, parse
from ..params import read_toml

#: The jobs a study can run (in this order within a chain); ``cell`` runs alone.
JOBS = ("generate", "transport", "conductivity", "infiltrate", "discharge", "cell")
#: The paper tables/figures ``[report] figure`` can ask for (:mod:`electrofem.studies.figures`).
FIGURES = ("rate", "wetting", "coupled", "wetting-map")
#: Prefix of a Python function job, ``python:module:function`` -> ``function(config, folder)``.
PYTHON_JOB = "python:"
STUDY_KEYS = {"name", "job", "base", "grid", "cases", "suggest", "report"}


class StudyError(ValueError):
    """A bad study file or study folder; the message names the offending key."""


def case_id(params: dict) -> str:
    """12 hex digits of the SHA-1 of the parameters' canonical JSON (sorted keys): the same
    parameters give the same id, whatever their order."""
    text = json.dumps(params, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def flatten_keys(table: dict, prefix: str = "") -> dict:
    """``{"mesh": {"size": v}}`` -> ``{"mesh.size": v}`` (lists and scalars are leaves)."""
    out = {}
    for key, value in table.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            out.update(flatten_keys(value, name))
        else:
            out[name] = value
    return out


def set_dotted(table: dict, key: str, value) -> None:
    """Set ``table["a"]["b"] = value`` for ``key = "a.b"`` (creating the sub-tables)."""
    *parents, last = key.split(".")
    node = table
    for i, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise StudyError(f"{key}: {'.'.join(parents[: i + 1])} is not a table in the base")
        node = child
    node[last] = value


def resolve_python_job(job: str):
    """The function of a ``python:module:function`` job (StudyError if it is not there)."""
    target = job[len(PYTHON_JOB) :]
    module, _, name = target.partition(":")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise StudyError(f"job: cannot import {target!r} ({err})") from None
    if not callable(fn):
        raise StudyError(f"job: {target!r} is not callable")
    return fn


@dataclass(frozen=True)
class StudySpec:
    """A parsed study: what to run (``jobs``) on which configs (``base`` + each case)."""

    jobs: tuple[str, ...]  # a chain of JOBS, ("cell",) or ("python:module:function",)
    base: dict  # the base config as a TOML dict (lengths µm, see electrofem.config)
    base_dir: Path  # relative paths of the base config resolve against it
    cases: tuple[dict, ...]  # each {dotted config key: value}
    name: str = "study"
    bounds: dict = field(default_factory=dict)  # {key: (lo, hi)} for --suggest
    report_metrics: tuple[str, ...] = ()
    report_figure: str | None = None  # one of FIGURES

    @property
    def is_python(self) -> bool:
        return self.jobs[0].startswith(PYTHON_JOB)

    def swept(self) -> list[str]:
        """The swept keys, in the order they first appear."""
        keys: dict[str, None] = {}
        for case in self.cases:
            keys.update(dict.fromkeys(case))
        return list(keys)

    def config_dict(self, params: dict) -> dict:
        """The base config with the case's values set (a new dict)."""
        data = copy.deepcopy(self.base)
        for key, value in params.items():
            set_dotted(data, key, value)
        return data

    def fingerprint(self) -> str:
        """What a study folder must keep: the job chain and the base config."""
        return case_id({"jobs": list(self.jobs), "base": self.base})

    def check_case(self, params: dict):
        """The case's :class:`~electrofem.config.Config` (None for a Python job); a bad value
        raises ConfigError/StudyError naming the key."""
        data = self.config_dict(params)
        if self.is_python:
            return None
        return parse(data, self.base_dir)

    def validate(self) -> None:
        """Check every case up front: one StudyError listing each distinct failure once, with
        the first case that shows it."""
        if self.is_python:
            resolve_python_job(self.jobs[0])
        seen: dict[str, list[int]] = {}
        for i, params in enumerate(self.cases):
            try:
                self.check_case(params)
            except (ConfigError, StudyError) as err:
                seen.setdefault(str(err), []).append(i)
        if seen:
            lines = []
            for msg, idx in seen.items():
                more = f" (and {len(idx) - 1} more cases)" if len(idx) > 1 else ""
                lines.append(f"case {idx[0]} {json.dumps(self.cases[idx[0]])}: {msg}{more}")
            raise StudyError("study: " + "; ".join(lines))

    def to_payload(self) -> dict:
        """A JSON-able dict (``study.json`` in the study folder, and what a worker gets)."""
        return {
            "name": self.name,
            "jobs": list(self.jobs),
            "base": self.base,
            "base_dir": str(self.base_dir),
            "cases": list(self.cases),
            "bounds": {k: list(v) for k, v in self.bounds.items()},
            "report_metrics": list(self.report_metrics),
            "report_figure": self.report_figure,
        }

    @classmethod
    def from_payload(cls, d: dict) -> StudySpec:
        return cls(
            jobs=tuple(d["jobs"]),
            base=d["base"],
            base_dir=Path(d["base_dir"]),
            cases=tuple(d["cases"]),
            name=d.get("name", "study"),
            bounds={k: tuple(v) for k, v in d.get("bounds", {}).items()},
            report_metrics=tuple(d.get("report_metrics", ())),
            report_figure=d.get("report_figure"),
        )


def _jobs(value) -> tuple[str, ...]:
    jobs = (value,) if isinstance(value, str) else value
    if not isinstance(jobs, list | tuple) or not jobs or not all(isinstance(j, str) for j in jobs):
        raise StudyError(f"job: must be a job name or a list of them, got {value!r}")
    if any(j.startswith(PYTHON_JOB) for j in jobs):
        if len(jobs) != 1:
            raise StudyError("job: a python: job runs alone")
        return tuple(jobs)
    bad = [j for j in jobs if j not in JOBS]
    if bad:
        raise StudyError(f"job: unknown job {bad[0]!r} (one of {', '.join(JOBS)})")
    if "cell" in jobs and set(jobs) - {"cell", "discharge"}:
        raise StudyError(
            "job: cell is itself a chain (generate -> infiltrate -> discharge); only "
            '["cell", "discharge"] (and the fully wetted discharge) extends it'
        )
    if len(set(jobs)) != len(jobs):
        raise StudyError(f"job: a job is named twice in {list(jobs)}")
    return tuple(j for j in JOBS if j in jobs)  # the chain's order is fixed


def _grid_cases(grid) -> list[dict]:
    if not isinstance(grid, dict):
        raise StudyError("grid: must be a table of key = [values]")
    flat = flatten_keys(grid)
    for key, values in flat.items():
        if not isinstance(values, list) or not values:
            raise StudyError(f"grid.{key}: must be a non-empty list of values, got {values!r}")
    keys = list(flat)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*flat.values())]


def _bounds(table, where: str) -> dict:
    out = {}
    for key, b in flatten_keys(table).items():
        ok = isinstance(b, list) and len(b) == 2 and all(isinstance(v, int | float) for v in b)
        if not ok or not b[0] < b[1]:
            raise StudyError(f"{where}.{key}: must be [low, high] with low < high, got {b!r}")
        out[key] = (float(b[0]), float(b[1]))
    return out


def parse_study(data: dict, base_dir: Path, name: str = "study") -> StudySpec:
    """A study file's dict -> :class:`StudySpec` (not yet validated: see ``validate``)."""
    bad = sorted(set(data) - STUDY_KEYS)
    if bad:
        raise StudyError(f"{bad[0]}: unknown study key (known: {', '.join(sorted(STUDY_KEYS))})")
    if "job" not in data:
        raise StudyError('job: required (e.g. job = "transport")')
    jobs = _jobs(data["job"])
    base = data.get("base", {})
    if isinstance(base, str):
        path = Path(base) if Path(base).is_absolute() else base_dir / base
        base = read_toml(path, "base", StudyError, missing="no such config file")
        base_dir = path.parent
    elif not isinstance(base, dict):
        raise StudyError("base: must be a config file name or a [base] table")
    if not base and not jobs[0].startswith(PYTHON_JOB):
        raise StudyError("base: required (a config file name or a [base] table)")
    cases = []
    raw = data.get("cases", [])
    if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
        raise StudyError("cases: must be an array of tables [[cases]]")
    cases += [flatten_keys(c) for c in raw]
    if "grid" in data:
        cases += _grid_cases(data["grid"])
    if not cases:
        raise StudyError("grid: give a [grid] or [[cases]] (nothing to run)")
    ids = [case_id(c) for c in cases]
    dup = next((c for c, i in zip(cases, ids, strict=True) if ids.count(i) > 1), None)
    if dup is not None:
        raise StudyError(f"cases: the case {json.dumps(dup)} is given twice")
    sug = data.get("suggest", {})
    if not isinstance(sug, dict) or set(sug) - {"bounds"}:
        raise StudyError("suggest: only bounds = { key = [low, high] } is known")
    rep = data.get("report", {})
    if not isinstance(rep, dict) or set(rep) - {"metrics", "figure"}:
        raise StudyError('report: only metrics = [...] and figure = "..." are known')
    metrics = rep.get("metrics", [])
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise StudyError("report.metrics: must be a list of metric names")
    figure = rep.get("figure")
    if figure is not None and figure not in FIGURES:
        raise StudyError(f"report.figure: unknown figure {figure!r} (one of {', '.join(FIGURES)})")
    return StudySpec(
        jobs=jobs,
        base=base,
        base_dir=base_dir,
        cases=tuple(cases),
        name=str(data.get("name", name)),
        bounds=_bounds(sug.get("bounds", {}), "suggest.bounds"),
        report_metrics=tuple(metrics),
        report_figure=figure,
    )


def load_study(path: str | Path) -> StudySpec:
    """Read a study TOML file (relative paths in it resolve against its folder)."""
    path = Path(path)
    data = read_toml(path, "study", StudyError)
    return parse_study(data, path.parent.resolve(), path.stem)
