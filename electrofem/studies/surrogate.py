"""A Gaussian-process surrogate of a study's metric, and the next case by expected improvement.

Paper 004's design loop: resolved simulations -> a results database -> a data-driven surrogate
-> the next design. :func:`fit_surrogate` fits a scikit-learn ``GaussianProcessRegressor``
(Matern ν = 5/2 with one length scale per input, plus a WhiteKernel for noise; inputs scaled to
[0, 1] by the bounds, outputs normalised) to the finished cases of a study, over its swept
continuous parameters (numbers taking two or more values, or given bounds) and, one-hot
encoded, its other swept keys (``preset``, a list of C-rates, ...), and reports the k-fold
cross-validated RMSE and R² (in the metric's units).
:func:`suggest` proposes the candidate with the largest expected improvement among random
candidates in the bounds, for each combination of the other keys that a finished case has
(uniform, plus a quarter near that combination's best case; seeded, so a seed gives one
answer). :func:`iterate` runs rounds of suggest -> run the case -> refit.

Bounds: the study's ``[suggest] bounds``, else the range of the swept values.
"""

from __future__ import annotations

import difflib
import json
import math
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .db import load_results
from .runner import load_study_dir, run_cases
from .spec import StudyError, StudySpec

SUGGESTIONS_FILE = "suggestions.json"
#: Candidates closer than this (in every scaled input) to a finished case are not proposed.
REPEAT_TOL = 1e-3


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def continuous_params(spec: StudySpec) -> list[str]:
    """The swept keys whose values are numbers taking two or more values (or with bounds)."""
    out = []
    for key in spec.swept():
        values = [c[key] for c in spec.cases if key in c]
        if key in spec.bounds or (all(_number(v) for v in values) and len(set(values)) > 1):
            out.append(key)
    return out


def _level(v) -> str:
    """A categorical value as canonical JSON (the database holds lists as JSON text and
    bools as 0/1)."""
    if isinstance(v, str) and v[:1] in "[{":
        try:
            v = json.loads(v)
        except ValueError:
            pass
    if isinstance(v, bool):
        v = int(v)
    return json.dumps(v, sort_keys=True)


@dataclass
class SurrogateFit:
    """A fitted surrogate: its continuous inputs (``params``, bounds ``lo``..``hi``), its
    categorical inputs (``levels``: the other swept keys, one-hot encoded), the GP, the
    cross-validated error (metric units) and the best case seen so far."""

    metric: str
    params: list[str]
    lo: np.ndarray
    hi: np.ndarray
    integer: list[bool]
    gp: object  # sklearn GaussianProcessRegressor
    maximize: bool
    n_cases: int
    cv_rmse: float
    cv_r2: float
    best: dict  # the best finished case's row
    levels: dict = field(default_factory=dict)  # {key: [canonical JSON of each value]}
    seen: list = field(default_factory=list)  # the level combinations of finished cases
    rows: list = field(default_factory=list)  # the finished cases fitted

    def encode(self, cont: np.ndarray, combo: tuple) -> np.ndarray:
        """Input rows: continuous values scaled to [0, 1], then the one-hot categories."""
        u = (np.atleast_2d(np.asarray(cont, float)) - self.lo) / (self.hi - self.lo)
        hot = [float(lv == c) for k, c in zip(self.levels, combo, strict=True)
               for lv in self.levels[k]]  # fmt: skip
        return np.hstack([u, np.tile(hot, (len(u), 1))])

    def combo_of(self, row: dict) -> tuple:
        return tuple(_level(row.get(k)) for k in self.levels)

    def predict(self, params: dict) -> tuple[float, float]:
        """(mean, standard deviation) of the metric at ``params``."""
        x = self.encode([[params[k] for k in self.params]], self.combo_of(params))
        mu, sd = self.gp.predict(x, return_std=True)
        return float(mu[0]), float(sd[0])


def _gp(d: int, seed: int, restarts: int = 2):
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
        length_scale=[0.3] * d, length_scale_bounds=(1e-2, 1e2), nu=2.5
    ) + WhiteKernel(1e-5, (1e-9, 1e-1))
    return GaussianProcessRegressor(
        kernel, normalize_y=True, n_restarts_optimizer=restarts, random_state=seed
    )


def _fit(gp, X, y):
    """Fit on one BLAS thread (many threads only slow these small problems, more so on a
    machine busy with MPI jobs)."""
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", ConvergenceWarning)
        return gp.fit(X, y)


def cross_validate(X: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0):
    """k-fold (at most ``len(y)``) cross-validated (RMSE, R²) of the GP on (X, y)."""
    from sklearn.model_selection import KFold

    k = min(folds, len(y))
    pred = np.empty_like(y)
    for train, test in KFold(k, shuffle=True, random_state=seed).split(X):
        pred[test] = _fit(_gp(X.shape[1], seed, 0), X[train], y[train]).predict(X[test])
    rmse = float(np.sqrt(np.mean((pred - y) ** 2)))
    ss = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum((pred - y) ** 2)) / ss if ss > 0 else float("nan")
    return rmse, r2


def fit_surrogate(
    spec: StudySpec,
    rows: list[dict],
    metric: str,
    *,
    maximize: bool = True,
    seed: int = 0,
    folds: int = 5,
) -> SurrogateFit:
    """Fit the GP of ``metric`` to the finished rows (see the module docstring)."""
    params = continuous_params(spec)
    if not params:
        raise StudyError("--suggest: the study sweeps no continuous parameter")
    done = [r for r in rows if r.get("status") == "done"]
    known = sorted({k for r in done for k in r})
    if not any(metric in r for r in done):
        close = difflib.get_close_matches(metric, known, n=3, cutoff=0.4)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise StudyError(f"--metric: no finished case has a metric {metric!r}{hint}")
    use = [r for r in done if _number(r.get(metric)) and all(_number(r.get(k)) for k in params)]
    if len(use) < 3:
        raise StudyError(f"--suggest: {len(use)} finished cases with {metric}; need >= 3")
    X = np.array([[r[k] for k in params] for r in use], float)
    y = np.array([r[metric] for r in use], float)
    lo = np.array([spec.bounds.get(k, (X[:, i].min(), 0))[0] for i, k in enumerate(params)])
    hi = np.array([spec.bounds.get(k, (0, X[:, i].max()))[1] for i, k in enumerate(params)])
    integer = [
        all(isinstance(c.get(k), int) and not isinstance(c.get(k), bool) for c in spec.cases)
        for k in params
    ]
    levels = {}
    for k in spec.swept():
        if k not in params:
            levels[k] = list(dict.fromkeys(_level(c.get(k)) for c in spec.cases))
    best = use[int(np.argmax(y) if maximize else np.argmin(y))]
    fit = SurrogateFit(metric, params, lo, hi, integer, None, maximize, len(use), 0.0, 0.0, best,
                       levels)  # fmt: skip
    combos = [fit.combo_of(r) for r in use]
    fit.seen, fit.rows = list(dict.fromkeys(combos)), use
    Xs = np.vstack([fit.encode(x, c) for x, c in zip(X, combos, strict=True)])
    fit.cv_rmse, fit.cv_r2 = cross_validate(Xs, y, folds, seed)
    fit.gp = _fit(_gp(Xs.shape[1], seed), Xs, y)
    return fit


def expected_improvement(mu, sd, best: float, maximize: bool = True, xi: float = 0.0):
    """EI of a Gaussian prediction (mean ``mu``, std ``sd``) over ``best``."""
    from scipy.stats import norm

    mu, sd = np.asarray(mu, float), np.maximum(np.asarray(sd, float), 1e-12)
    imp = (mu - best - xi) if maximize else (best - mu - xi)
    z = imp / sd
    return imp * norm.cdf(z) + sd * norm.pdf(z)


def suggest(fit: SurrogateFit, n_candidates: int = 4000, seed: int = 0) -> tuple[dict, dict]:
    """The next case: the candidate of largest expected improvement, and ``{"ei", "mean",
    "std"}`` of the prediction there. Candidates: for each category combination of the
    finished cases, uniform random points in the bounds plus a quarter near that
    combination's best case."""
    rng = np.random.default_rng(seed)
    d = len(fit.params)
    per = max(n_candidates // len(fit.seen), 200)
    sign = 1.0 if fit.maximize else -1.0
    best = (None, -np.inf, 0.0, 0.0, None)
    for combo in fit.seen:
        top = max(_rows_of(fit, combo), key=lambda r: sign * r[fit.metric])
        ub = (np.array([top[k] for k in fit.params], float) - fit.lo) / (fit.hi - fit.lo)
        n_near = per // 4
        u = np.vstack([
            rng.random((per - n_near, d)),
            np.clip(ub + 0.05 * rng.standard_normal((n_near, d)), 0.0, 1.0),
        ])  # fmt: skip
        x = fit.lo + u * (fit.hi - fit.lo)
        mu, sd = fit.gp.predict(fit.encode(x, combo), return_std=True)
        ei = expected_improvement(mu, sd, float(fit.best[fit.metric]), fit.maximize)
        done = np.array([[r[k] for k in fit.params] for r in _rows_of(fit, combo)], float)
        gap = np.abs(u[:, None, :] - ((done - fit.lo) / (fit.hi - fit.lo))[None]).max(axis=2)
        ei[gap.min(axis=1) < REPEAT_TOL] = -np.inf  # not a case run already
        i = int(np.argmax(ei))
        if ei[i] > best[1]:
            best = (x[i], float(ei[i]), float(mu[i]), float(sd[i]), combo)
    x, ei, mu, sd, combo = best
    out = {k: json.loads(c) for k, c in zip(fit.levels, combo, strict=True)}
    for k, v, is_int in zip(fit.params, x, fit.integer, strict=True):
        out[k] = int(round(v)) if is_int else float(f"{v:.6g}")
    return out, {"ei": ei, "mean": mu, "std": sd}


def _rows_of(fit: SurrogateFit, combo: tuple) -> list[dict]:
    return [r for r in fit.rows if fit.combo_of(r) == combo]


@dataclass
class Round:
    """One suggest -> run -> refit round of :func:`iterate`."""

    round: int
    params: dict
    predicted_mean: float
    predicted_std: float
    expected_improvement: float
    cv_rmse: float  # of the fit that made the suggestion (metric units)
    cv_r2: float
    n_cases: int  # finished cases in that fit
    value: float | None  # the metric of the case run (None: it failed)
    status: str
    best_value: float  # best metric after the round


def iterate(
    outdir: str | Path,
    metric: str,
    rounds: int,
    *,
    maximize: bool = True,
    seed: int = 0,
    spec: StudySpec | None = None,
) -> list[Round]:
    """Run ``rounds`` rounds of suggest -> run the case (in this process) -> refit on the study
    in ``outdir``; each round is appended to ``outdir/suggestions.json``."""
    spec = spec or load_study_dir(outdir)
    path = Path(outdir) / SUGGESTIONS_FILE
    history = []
    for r in range(rounds):
        rows = load_results(outdir)
        fit = fit_surrogate(spec, rows, metric, maximize=maximize, seed=seed)
        params, pred = suggest(fit, seed=seed + len(rows))
        spec.check_case(params)
        spec = replace(spec, cases=spec.cases + (params,))
        rec = run_cases(spec, outdir, [params])[0]
        value = rec["metrics"].get(metric) if rec["status"] == "done" else None
        vals = [v for v in [fit.best[metric], value] if v is not None]
        rnd = Round(
            r + 1, params, pred["mean"], pred["std"], pred["ei"], fit.cv_rmse, fit.cv_r2,
            fit.n_cases, value, rec["status"], max(vals) if maximize else min(vals),
        )  # fmt: skip
        history.append(rnd)
        old = json.loads(path.read_text()) if path.is_file() else []
        path.write_text(json.dumps(old + [{"metric": metric, **rnd.__dict__}], indent=2))
        if rec["status"] != "done":
            raise StudyError(f"--iterate: the suggested case {params} failed: {rec['error']}")
    return history
