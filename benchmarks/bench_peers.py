"""Voxel peers on the same structure as bench_transport.py: TauFactor and PoreSpy.

    .venv/bin/pip install -r benchmarks/requirements-peers.txt
    python benchmarks/bench_transport.py          # first: writes the particles and the FEM table
    python benchmarks/bench_peers.py [--res 100 200] [--threads 1]

The particles of ``benchmarks/results/bench_transport_particles.csv`` are voxelised on N^3
voxels by the exact sphere-inclusion test on voxel centres, with the periodic images of the
laterally periodic box. The electrolyte tortuosity through-plane (z) is then computed by

* TauFactor (``taufactor.Solver``, CPU, its default convergence criterion): Dirichlet on the
  z faces, zero flux elsewhere, tau = eps D0 / D_eff with eps the total pore fraction, dead-end
  pores included -- the same convention as ``electrofem.physics.transport``;
* PoreSpy (``porespy.simulations.tortuosity_fd``, OpenPNM + pyamg): it trims non-percolating
  pores first and uses the *trimmed* porosity in tau, with the Dirichlet values on the first and
  last voxel layers (length N - 1). Its tau is given as returned and converted to the same
  convention (tau = eps_total / D_eff).

Each voxel tau is compared with the Richardson-extrapolated FEM value tau* of
``bench_transport.json``, and the FEM time needed for the same error is interpolated
(log-log) in the FEM accuracy-against-cost table. Writes ``benchmarks/results/bench_peers.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from electrofem.microstructure import Box, Particles

RESULTS = Path(__file__).resolve().parent / "results"


def voxelise(parts: Particles, n: int) -> np.ndarray:
    """Boolean pore image (True = electrolyte), shape (n, n, n) indexed [x, y, z]."""
    size = np.asarray(parts.box.size)
    dx = size / n
    solid = np.zeros((n, n, n), dtype=bool)
    centres = [(np.arange(n) + 0.5) * dx[k] for k in range(3)]
    for c0, r in zip(parts.centers, parts.radii, strict=True):
        shifts = [(0.0,), (0.0,)]
        if parts.box.periodic:
            shifts = [
                tuple(
                    s
                    for s in (-size[k], 0.0, size[k])
                    if c0[k] + s + r > 0 and c0[k] + s - r < size[k]
                )
                for k in range(2)
            ]
        for sx in shifts[0]:
            for sy in shifts[1]:
                c = c0 + np.array([sx, sy, 0.0])
                sl, d2 = [], 0.0
                for k in range(3):
                    lo = max(int(math.floor((c[k] - r) / dx[k])), 0)
                    hi = min(int(math.ceil((c[k] + r) / dx[k])) + 1, n)
                    sl.append(slice(lo, hi))
                    shape = [1, 1, 1]
                    shape[k] = hi - lo
                    d2 = d2 + ((centres[k][lo:hi] - c[k]) ** 2).reshape(shape)
                solid[tuple(sl)] |= d2 <= r * r
    return ~solid


def run_taufactor(pore: np.ndarray) -> dict:
    import taufactor

    img = np.ascontiguousarray(np.transpose(pore, (2, 0, 1))).astype(np.uint8)  # flux along z
    t = time.perf_counter()
    s = taufactor.Solver(img, device="cpu")
    s.solve(verbose=False)
    seconds = time.perf_counter() - t
    tau = float(np.atleast_1d(s.tau)[0])
    return dict(tau=tau, seconds=seconds, iterations=int(s.iter), converged=bool(s.converged))


def run_porespy(pore: np.ndarray) -> dict:
    import porespy

    t = time.perf_counter()
    r = porespy.simulations.tortuosity_fd(pore, axis=2)
    seconds = time.perf_counter() - t
    deff = float(r.effective_porosity) / float(r.tortuosity)  # D_eff / D0
    return dict(
        tau_porespy=float(r.tortuosity),
        tau=float(r.original_porosity) / deff,
        effective_porosity=float(r.effective_porosity),
        seconds=seconds,
        converged=bool(r.converged),
    )


def fem_time_for(error: float, rows: list[dict], key: str) -> tuple[float, str]:
    """FEM seconds (column ``key``) to reach ``error``: log-log interpolation between the rows
    that bracket it; beyond the finest row, log-log extrapolation of the two finest ('>')."""
    pts = sorted((r["error"], r[key]) for r in rows if r["error"] > 0)
    if error >= pts[-1][0]:
        return pts[-1][1], "<="  # the coarsest FEM mesh is already at least this accurate
    for (e0, t0), (e1, t1) in zip(pts[:-1], pts[1:], strict=True):
        if e0 <= error <= e1:
            w = math.log(error / e0) / math.log(e1 / e0)
            return math.exp(math.log(t0) + w * math.log(t1 / t0)), "~"
    (e0, t0), (e1, t1) = pts[0], pts[1]
    slope = math.log(t1 / t0) / math.log(e1 / e0)
    return math.exp(math.log(t0) + slope * math.log(error / e0)), "extrapolated"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--res", type=int, nargs="+", default=[100, 200])
    ap.add_argument("--threads", type=int, default=1, help="torch threads (FEM runs on one core)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["taufactor", "porespy"])
    ap.add_argument(
        "--fem", nargs="+", default=["bench_transport.json"],
        help="FEM result files (results/); the first gives tau*, each gets its own columns",
    )  # fmt: skip
    args = ap.parse_args()
    fems = {name: json.loads((RESULTS / name).read_text()) for name in args.fem}
    fem = fems[args.fem[0]]
    st = fem["structure"]
    box = Box(tuple(st["box_um"]), periodic=st["periodic"])
    parts = Particles.from_csv(RESULTS / st["particles_csv"], box)
    tau_star = fem["richardson"]["tau"]
    try:
        import torch

        torch.set_num_threads(args.threads)
    except ImportError:
        pass

    out = []
    for n in args.res:
        t = time.perf_counter()
        pore = voxelise(parts, n)
        t_vox = time.perf_counter() - t
        eps = float(pore.mean())
        print(f"{n}^3: voxelised in {t_vox:.1f} s, porosity {eps:.4f}", flush=True)
        peers = {}
        if "taufactor" not in args.skip:
            peers["TauFactor (CPU)"] = run_taufactor(pore)
        if "porespy" not in args.skip:
            peers["PoreSpy tortuosity_fd"] = run_porespy(pore)
        for name, r in peers.items():
            r.update(method=name, n=n, porosity=eps, seconds_voxelise=t_vox)
            r["seconds_total"] = r["seconds"] + t_vox
            r["error"] = abs(r["tau"] - tau_star) / tau_star
            r["fem"] = {}
            for fname, f in fems.items():
                rows = [
                    {**row, "error": abs(row["tau"] - tau_star) / tau_star} for row in f["rows"]
                ]
                tot, how = fem_time_for(r["error"], rows, "seconds_total")
                sol, _ = fem_time_for(r["error"], rows, "seconds_solve")
                r["fem"][fname] = dict(
                    seconds_total=tot,
                    how=how,
                    seconds_solve=sol,
                    speed_ratio_total=r["seconds_total"] / tot,
                    speed_ratio_solve=r["seconds"] / sol,
                )
            print(f"  {name}: tau {r['tau']:.4f} in {r['seconds']:.1f} s", flush=True)
            out.append(r)

    print(
        f"\nFEM reference: tau* = {tau_star:.4f} (Richardson, p = "
        f"{fem['richardson']['order']:.2f}, from h = {fem['richardson']['h']} µm)\n"
    )
    print(
        "| method | voxels | porosity | τ | τ as returned | wall time (s) | error vs τ* | "
        "FEM run | FEM time for that error: total / solve only (s) | "
        "speed-up of FEM: total / solve only |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in out:
        returned = f"{r['tau_porespy']:.4f}" if "tau_porespy" in r else "same"
        for fname, v in r["fem"].items():
            how = {"<=": "≤ ", "~": "", "extrapolated": "(extrap.) "}[v["how"]]
            print(
                f"| {r['method']} | {r['n']}³ | {r['porosity']:.4f} | {r['tau']:.4f} | "
                f"{returned} | {r['seconds']:.1f} (+{r['seconds_voxelise']:.1f} voxelising) | "
                f"{100 * r['error']:.2f} % | {fname} | {how}{v['seconds_total']:.1f} / "
                f"{v['seconds_solve']:.2f} | {v['speed_ratio_total']:.2g}× / "
                f"{v['speed_ratio_solve']:.2g}× |"
            )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench_peers.json").write_text(
        json.dumps(dict(tau_star=tau_star, tau_star_from=args.fem[0], results=out), indent=2)
    )


if __name__ == "__main__":
    main()
