"""Closed-form verification cases of the VOF core, shared by the tests and the benchmarks.

* :func:`static_drop` — a liquid disk (3D: sphere) at rest: the Laplace jump Δp = (D − 1)σ/R
  and the parasitic (spurious) currents.
* :func:`washburn_rate` — capillary imbibition into a 2D slit against Lucas–Washburn.

Both build their own box mesh on ``comm`` and free every PETSc object before returning
(collective). SI units throughout.
"""

from __future__ import annotations

import math
import time

from mpi4py import MPI

from ... import tags
from .geometry import tag_box_facets
from .options import InfiltrationOptions
from .solver import VOFSolver

#: The solver defaults these cases were validated with (before the options were unified with
#: the job's): a neutral contact angle, the classical capillary bound, a 1 ms step cap.
SOLVER_REFERENCE = {"contact_angle_deg": 90.0, "capillary_factor": 1.0, "dt_max_s": 1e-3}
#: The static drop's default options: :data:`SOLVER_REFERENCE` with ``capillary_factor`` 20.
DROP_OPTIONS = {**SOLVER_REFERENCE, "capillary_factor": 20.0}

#: A 2D channel along x: walls at y = 0 and y = w, both ends open (traction-free normally).
CHANNEL = {
    tags.BOTTOM: "wall",
    tags.TOP: "wall",
    tags.LEFT: "normal_outflow",
    tags.RIGHT: "normal_outflow",
}


def box_mesh(comm, lx: float, ly: float, nx: int, ny: int):
    """``nx × ny`` squares of ``[0, lx] × [0, ly]`` (m), each split in two triangles, with the
    box-face tags of :func:`~electrofem.physics.vof.tag_box_facets`."""
    from dolfinx import mesh

    m = mesh.create_rectangle(
        comm, [[0.0, 0.0], [lx, ly]], [nx, ny], ghost_mode=mesh.GhostMode.shared_facet
    )
    return m, tag_box_facets(m, lx, ly)


def static_drop(
    comm,
    n: int,
    steps: int,
    options: InfiltrationOptions | None = None,
    n_sub: int = 32,
    dim: int = 2,
) -> dict:
    """A liquid disk (3D: sphere) of R = 25 µm at rest in the middle of a closed 100 µm box of
    ``n`` squares (cubes) a side, each split in 2 triangles (6 tetrahedra); ``steps`` steps of
    ``stable_dt()`` (default options: :data:`DROP_OPTIONS`; the fluids are those of
    ``options``). The initial α is the disk's area (volume) fraction, sampled ``n_sub²``
    (``n_sub³``) times a cell.

    Returns the pressure jump Δp (mean p for r < R/2 minus mean p for r > 3R/2) and its error
    against the Laplace jump (D − 1)σ/R, the largest speed over the run, over its second half
    (after the start-up from the exact circle to the discrete equilibrium) and at its end
    (also as capillary numbers Ca = μ_l |u| / σ), the relative volume change and the wall
    time."""
    import ufl
    from dolfinx import fem
    from dolfinx import mesh as dmesh

    L = 1e-4
    R = 0.25 * L
    o = options or InfiltrationOptions(**DROP_OPTIONS)
    sigma, mu_l = o.surface_tension_N_m, o.mu_electrolyte_Pa_s
    if dim == 2:
        m, ft = box_mesh(comm, L, L, n, n)
    else:
        m = dmesh.create_box(
            comm, [[0.0] * 3, [L] * 3], [n] * 3, ghost_mode=dmesh.GhostMode.shared_facet
        )
        ft = tag_box_facets(m, L, L, L)
    t0 = time.perf_counter()
    with VOFSolver(m, ft, {}, o) as s:
        s.set_alpha_fraction(
            lambda x: sum((x[i] - L / 2) ** 2 for i in range(dim)) < R**2, n_sub=n_sub
        )
        v0 = s.volume()
        recs = [s.step(s.stable_dt()) for _ in range(steps)]
        X = ufl.SpatialCoordinate(m)
        r = ufl.sqrt(sum((X[i] - L / 2) ** 2 for i in range(dim)))
        dx = ufl.dx(metadata={"quadrature_degree": 4})

        def mean_p(cond):
            ind = ufl.conditional(cond, 1.0, 0.0)
            num = comm.allreduce(fem.assemble_scalar(fem.form(s.p * ind * dx)), op=MPI.SUM)
            return num / comm.allreduce(fem.assemble_scalar(fem.form(ind * dx)), op=MPI.SUM)

        dp = mean_p(ufl.lt(r, 0.5 * R)) - mean_p(ufl.gt(r, 1.5 * R))
        dv = abs(s.volume() - v0) / v0
    umax = max(rec.u_max for rec in recs)
    laplace = (dim - 1) * sigma / R
    return {
        "dim": dim,
        "cells_per_side": n,
        "h_um": L / n * 1e6,
        "cells_per_radius": R / (L / n),
        "steps": steps,
        "t_end_s": recs[-1].t,
        "dt_s": recs[-1].t / steps,
        "dp_Pa": dp,
        "laplace_Pa": laplace,
        "dp_rel_error": dp / laplace - 1,
        "u_max_run_m_s": umax,
        "u_max_end_m_s": recs[-1].u_max,
        "Ca_max": umax * mu_l / sigma,
        "Ca_max_late": max(rec.u_max for rec in recs[steps // 2 :]) * mu_l / sigma,
        "Ca_end": recs[-1].u_max * mu_l / sigma,
        "volume_change_rel": dv,
        "wall_s": time.perf_counter() - t0,
    }


def washburn_rate(
    comm,
    slip: float,
    cells_across: int = 8,
    width: float = 10e-6,
    length: float = 600e-6,
    filled: float = 200e-6,
    theta_deg: float = 45.0,
    dt: float = 1e-5,
    t1: float = 1e-4,
    t2: float = 3e-4,
) -> dict:
    """Capillary imbibition into a 2D slit of ``width`` (``cells_across`` squares across) and
    ``length``, pre-filled with liquid to ``filled`` from its open liquid end (x = 0); the
    other end is open to air. Scheduled steps of ``dt`` (semi-implicit tension), contact-line
    slip ``slip`` cell diameters.

    Lucas–Washburn with both viscosities (Poiseuille in each phase, meniscus pressure
    2σ cos θ / w): d/dt [μ_l L²/2 + μ_g (L_c L - L²/2)] = σ w cos θ / 6. Returns the ratio of
    the measured rate of that quantity between ``t1`` and ``t2`` (past the inertial start,
    ρw²/μ ≈ 4e-5 s for the defaults) to the Lucas–Washburn rate, the capillary number of the
    meniscus and the wall time."""
    w, lc, l0 = width, length, filled
    m, ft = box_mesh(comm, lc, w, round(lc / w * cells_across), cells_across)
    opts = InfiltrationOptions(
        **{
            **SOLVER_REFERENCE,
            "contact_angle_deg": theta_deg,
            "step_control": "scheduled",
            "dt_max_s": dt,
            "flow_courant_max": 1e9,
            "contact_line_slip": slip,
        }
    )
    sigma, mu_l, mu_g = opts.surface_tension_N_m, opts.mu_electrolyte_Pa_s, opts.mu_air_Pa_s
    k = sigma * w * math.cos(math.radians(theta_deg)) / 6

    def f(x):
        return mu_l * x**2 / 2 + mu_g * (lc * x - x**2 / 2)

    t0 = time.perf_counter()
    with VOFSolver(m, ft, CHANNEL, opts) as s:
        s.set_alpha_fraction(lambda x: x[0] < l0)
        s.run(t1)
        ta, la = s.t, s.volume() / w
        s.run(t2)
        tb, lb = s.t, s.volume() / w
    speed = (lb - la) / (tb - ta)
    return {
        "slip_cells": slip,
        "cells_across": cells_across,
        "width_m": w,
        "theta_deg": theta_deg,
        "dt_s": dt,
        "interval_s": [ta, tb],
        "penetration_m": [la, lb],
        "rate_ratio": (f(lb) - f(la)) / (k * (tb - ta)),
        "capillary_number": mu_l * speed / sigma,
        "wall_s": time.perf_counter() - t0,
    }
