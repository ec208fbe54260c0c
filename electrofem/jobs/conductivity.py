"""The ``conductivity`` job: the effective electronic conductivity of the solid network.

The worked example of a new job (README, "How the code is laid out"): it adds no physics —
the steady cell problem of :mod:`electrofem.physics.transport` is solved on the solid phases
with their electronic conductivities (:class:`~electrofem.physics.transport.ConductivityOptions`)
— and writes into ``outdir``:

====================  =============================================================
``conductivity.json``  per direction the solid volume fraction ε_s, σ_eff (S/m), the
                       tortuosity factor τ = ε_s σ_ref / σ_eff and N_M = σ_ref / σ_eff
                       with σ_ref the conductivity of the first selected phase, the flux
                       balance; the conductivities, parameters and version
``fields.xdmf``        the cell-problem potentials (ParaView)
====================  =============================================================

A solid that does not connect the two faces (2D gap contacts, isolated particles) has
σ_eff = 0 and τ = inf. MPI-collective.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict
from pathlib import Path

from mpi4py import MPI

from .. import __version__, tags
from ..physics.transport import ConductivityOptions, solve_transport
from .output import JobRecord, prepare_outdir
from .source import load_source
from .transport import write_fields

log = logging.getLogger("electrofem")


def _finite_or_text(d: dict) -> dict:
    """Non-finite numbers as text (``"inf"``), as in ``transport.json``: JSON has no inf."""
    return {k: v if not isinstance(v, float) or math.isfinite(v) else str(v) for k, v in d.items()}


def run_conductivity(
    source,
    outdir: str | Path,
    options: ConductivityOptions | None = None,
    comm: MPI.Comm = MPI.COMM_WORLD,
    progress: bool = True,
) -> dict:
    """Run the job on ``source`` (ElectrodeMesh, mesh file or config); return the metrics."""
    outdir = prepare_outdir(outdir, comm)
    emesh, cfg, mesh_path = load_source(source, outdir, comm, progress)
    if options is None:
        options = getattr(cfg, "conductivity", None) or ConductivityOptions()
    options.validate()
    topt = options.transport_options()
    phases = topt.phase_coefficients(emesh.tag_values(emesh.cell_tags))
    axes = topt.axes(emesh.dim)
    sigma_ref = next(iter(phases.values()))
    metrics = {
        "version": __version__,
        "parameters": {
            **asdict(options),
            "mesh": str(mesh_path) if mesh_path else None,
        },
        "phases_S_m": {tags.phase_name(p): k for p, k in phases.items()},
        "sigma_ref_S_m": sigma_ref,
        "dim": emesh.dim,
        "directions": {},
        "mpi_ranks": comm.size,
    }
    record = JobRecord(outdir / "conductivity.json", metrics, comm)
    record.write()

    def on_direction(result, name):
        d = result.directions[name]
        metrics["directions"][name] = _finite_or_text(
            {
                "solid_fraction": d.epsilon,
                "sigma_eff_S_m": d.relative_diffusivity,  # reference 1 S/m: D_eff/D0 = σ_eff
                "tortuosity": d.epsilon * sigma_ref / d.relative_diffusivity
                if d.relative_diffusivity > 0
                else math.inf,
                "macmullin": sigma_ref / d.relative_diffusivity
                if d.relative_diffusivity > 0
                else math.inf,
                "flux_imbalance": d.flux_imbalance,
                "iterations": d.iterations,
            }
        )
        record.write()
        log.info("direction %s: sigma_eff %.4g S/m", name, d.relative_diffusivity)

    try:
        result = solve_transport(
            emesh,
            phases,
            directions=axes,
            reference=1.0,
            callback=on_direction,
            degree=options.degree,
        )
    except Exception as err:
        record.fail(err)
        raise
    write_fields(result, outdir / "fields.xdmf")
    record.finish()
    return metrics
