"""The ``electrofem study`` verb: run a study file (and write its report at the end), report a
study folder, or suggest (and run) the next case. Each returns ``(exit status, text to print on
rank 0)``; ``cli.py`` only parses the flags."""

from __future__ import annotations

import json

from .db import load_results
from .report import report as report_text
from .runner import load_study_dir, run_study
from .spec import load_study


def run_verb(
    *,
    study=None,
    output=None,
    workers: int = 1,
    retry_failed: bool = False,
    deadline_s: float | None = None,
    report=None,
    suggest=None,
    metrics=None,
    minimize: bool = False,
    iterate=None,
    seed: int = 0,
) -> tuple[int, str]:
    """One mode of the verb (exactly one of ``study``, ``report``, ``suggest``). Running a
    study returns status 1 if a case failed (the others still ran); cases left by
    ``deadline_s`` are not a failure (status 0: run the same command again to resume)."""
    modes = [m for m in (study, report, suggest) if m]
    if len(modes) != 1:
        raise ValueError("study: give one of STUDY.toml (with -o DIR), --report DIR, --suggest DIR")
    if report:
        return 0, report_text(report, metrics)
    if suggest:
        return 0, suggest_verb(suggest, metrics, minimize, iterate, seed)
    if not output:
        raise ValueError("-o/--output: required to run a study (the study folder)")
    if deadline_s is not None and deadline_s < 0:
        raise ValueError(f"--deadline: must be >= 0 seconds, got {deadline_s:g}")
    records = run_study(
        load_study(study), output, workers=workers, retry_failed=retry_failed,
        deadline_s=deadline_s,
    )  # fmt: skip
    ran = [r for r in records if r is not None]
    failed = [r for r in ran if r["status"] != "done"]
    lines = [f"case {r['case_id']} {json.dumps(r['params'])} failed: {r['error']}" for r in failed]
    left = len(records) - len(ran)
    rest = f", {left} not started (deadline; run again to resume)" if left else ""
    lines.append(
        f"{len(records)} cases: {len(ran) - len(failed)} done, {len(failed)} failed{rest} "
        f"-> {output}"
    )
    if ran and _writes_files():  # the report of every finished case (as --report DIR)
        try:
            lines.insert(0, report_text(output, metrics) + "\n")
        except (ValueError, OSError) as err:
            lines.append(f"report: not written ({err}); run --report {output} later")
    return (1 if failed else 0), "\n".join(lines)


def _writes_files() -> bool:
    """True on the one process that writes the study's files (rank 0 of the study loop)."""
    from mpi4py import MPI

    from .runner import parent_comm

    return parent_comm().rank == 0 and MPI.COMM_WORLD.rank == 0


def suggest_verb(study_dir, metrics, minimize: bool, iterate, seed: int) -> str:
    """``--suggest DIR --metric NAME [--minimize] [--iterate K]``: the text to print."""
    if not metrics or len(metrics) != 1:
        raise ValueError("--metric: --suggest needs exactly one --metric NAME")
    try:
        from . import surrogate
    except ImportError as err:
        raise ValueError(
            f"--suggest: needs scikit-learn (pip install 'electrofem[study]'): {err}"
        ) from None
    metric, maximize = metrics[0], not minimize
    if iterate:
        rounds = surrogate.iterate(study_dir, metric, iterate, maximize=maximize, seed=seed)
        return "\n".join(
            f"round {r.round}: {json.dumps(r.params)} -> {metric} = {r.value:.6g} (predicted "
            f"{r.predicted_mean:.4g} ± {r.predicted_std:.2g}; CV RMSE {r.cv_rmse:.3g}, "
            f"R² {r.cv_r2:.3f} on {r.n_cases} cases) | best {r.best_value:.6g}"
            for r in rounds
        )
    spec = load_study_dir(study_dir)
    rows = load_results(study_dir)
    fit = surrogate.fit_surrogate(spec, rows, metric, maximize=maximize, seed=seed)
    params, pred = surrogate.suggest(fit, seed=seed + len(rows))
    return (
        f"{metric}: GP on {fit.n_cases} cases over {', '.join(fit.params + list(fit.levels))}; "
        f"{min(5, fit.n_cases)}-fold CV RMSE {fit.cv_rmse:.4g}, R² {fit.cv_r2:.3f}; "
        f"best so far {fit.best[metric]:.6g} ({fit.best['case_id']})\n"
        f"next case (expected improvement {pred['ei']:.3g}, predicted "
        f"{pred['mean']:.4g} ± {pred['std']:.2g}):\n{json.dumps(params)}"
    )
