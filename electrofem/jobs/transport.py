"""The ``transport`` job: mesh (or config -> generate) -> cell problems -> metrics -> files.

For each direction it solves the steady cell problem of :mod:`electrofem.physics.transport`,
then measures the interfaces (:mod:`electrofem.analysis`) and writes, into ``outdir``:

=====================  ===========================================================
``transport.json``     per direction ε, D_eff/D0, τ, N_M, flux balance, iterations; phase
                       volume fractions, interface areas, a_s (1/m), SIA per solid pair
                       (m²/g), parameters, version. Rewritten after every direction, so an
                       interrupted run keeps the directions already solved.
                       ``specific_surface_area_m-1`` is electrolyte|active area per box
                       volume; ``..._by_phase`` the same for each solid;
                       ``reactive_surface_area_m-1`` adds the active|second area (the
                       active surface under a coating), the area a DFN model reacts on.
``profiles.csv/.png``  through-thickness porosity, a_s, SIA and local τ
``fields.xdmf/.h5``    the solved potentials ``u_x``, ``u_y``[, ``u_z``] (ParaView)
``pybamm.json``        DFN parameters for PyBaMM (electrolyte transport only)
=====================  ===========================================================

MPI-collective; rank 0 writes the small files.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from mpi4py import MPI

from .. import __version__, tags
from ..microstructure.measure import DEFAULT_DENSITY_G_CM3
from ..physics.transport import DirectionResult, TransportOptions, TransportResult, solve_transport
from .output import JobRecord, jsonable, prepare_outdir, write_json
from .source import load_source
from .stop import Interrupted, StopSignal, soft

log = logging.getLogger("electrofem")


@dataclass
class TransportReport:
    """What :func:`run_transport` returns: the solver result, the metrics and the profiles."""

    result: TransportResult
    metrics: dict
    profiles: object  # electrofem.analysis.Profiles
    files: dict[str, Path] = field(default_factory=dict)

    def direction(self, name: str) -> DirectionResult:
        return self.result.directions[name]


def run_transport(
    source,
    outdir: str | Path,
    options: TransportOptions | None = None,
    densities: dict[int, float] | None = None,
    comm: MPI.Comm = MPI.COMM_WORLD,
    progress: bool = True,
    plots: bool = True,
    stop: StopSignal | None = None,
) -> TransportReport:
    """Run the transport job on ``source`` (ElectrodeMesh, ``.xdmf``/``.msh`` path, config).

    Args:
        source: the structure; a config (``Config`` or ``.toml`` path) is generated first into
            ``outdir`` and its ``[transport]`` and ``[density]`` tables are used unless
            ``options``/``densities`` are given.
        outdir: output directory (created).
        options: what to solve (:class:`TransportOptions`); default electrolyte, all axes.
        densities: g/cm³ per phase id for SIA; default
            :data:`electrofem.microstructure.measure.DEFAULT_DENSITY_G_CM3`.
        stop: a :class:`~electrofem.jobs.stop.StopSignal`: a SIGINT/SIGTERM ends the run
            after the current direction (the finished ones stay in ``transport.json``,
            ``status = "interrupted"``).

    A failure marks ``transport.json`` ``"failed"`` with the error; the directions solved
    before it are kept.
    """
    from .. import analysis

    outdir = prepare_outdir(outdir, comm)
    t0 = time.perf_counter()
    emesh, cfg, mesh_path = load_source(source, outdir, comm, progress)
    if options is None:
        options = cfg.transport if cfg is not None else TransportOptions()
    options.validate()
    if densities is None and cfg is not None and cfg.density:
        densities = cfg.density
    dim = emesh.dim
    present = emesh.tag_values(emesh.cell_tags)
    phases = options.phase_coefficients(present)
    axes = options.axes(dim)
    through = "xyz"[dim - 1]
    box = [float(v) for v in emesh.metadata.get("box_um") or ()]

    log.info("measuring phases and interfaces")
    vols = analysis.phase_volumes(emesh)
    areas = analysis.interface_areas(emesh)
    total = sum(vols.values())
    sia = analysis.sia(emesh, densities)
    box_volume = float(np.prod(box)) if box else total
    derived = _solid_complement(emesh, vols, areas, box_volume)
    if derived is not None:
        total = box_volume
    per_m = 1e6 / box_volume  # area µm² per box volume µm³ -> 1/m

    def area(a, b):
        return areas.get(tags.interface_tag(a, b), 0.0)

    solids = [p for p in tags.SOLID_PHASES if p in vols]
    a_by_phase = {tags.phase_name(p): area(tags.ELECTROLYTE, p) * per_m for p in solids}
    a_s = area(tags.ELECTROLYTE, tags.ACTIVE) * per_m
    # active surface wetted directly or through its coating (phase "second")
    a_reactive = (area(tags.ELECTROLYTE, tags.ACTIVE) + area(tags.ACTIVE, tags.SECOND)) * per_m
    active_surface = sum(
        a for t, a in areas.items() if t >= 100 and tags.ACTIVE in tags.interface_phases(t)
    )
    metrics = {
        "version": __version__,
        "parameters": {
            **asdict(options),
            "mesh": str(mesh_path) if mesh_path else None,
            "densities_g_cm3": {tags.phase_name(k): v for k, v in (densities or {}).items()},
            "densities_used_g_cm3": {
                tags.phase_name(k): (densities or {}).get(k, DEFAULT_DENSITY_G_CM3[k])
                for k in tags.SOLID_PHASES
            },
            "mesh_metadata": {
                k: emesh.metadata.get(k) for k in ("seed", "porosity", "mesh_options", "version")
            },
        },
        **_sidecar_note(emesh),
        **(
            {
                "solid_volume_note": f"electrolyte-only mesh: the {derived} volume is the box's "
                "minus the electrolyte's"
            }
            if derived is not None
            else {}
        ),
        "phase": options.phase,
        "phases": {tags.phase_name(p): k for p, k in phases.items()},
        "dim": dim,
        "box_um": box,
        "thickness_um": box[-1] if box else None,
        "through_plane": through,
        "tortuosity_convention": "tau = epsilon * D0 / D_eff (TauFactor, PyBaMM); N_M = tau/eps",
        "volume_fractions": {tags.phase_name(p): v / total for p, v in vols.items()},
        "phase_volumes_um3": {tags.phase_name(p): v for p, v in vols.items()},
        "interface_areas_um2": {tags.facet_name(t): a for t, a in areas.items()},
        "active_surface_area_um2": active_surface,
        "specific_surface_area_m-1": a_s,
        "specific_surface_area_by_phase_m-1": a_by_phase,
        "reactive_surface_area_m-1": a_reactive,
        "sia_m2_per_g": sia,
        "directions": {},
        "mpi_ranks": comm.size,
        "status": "running",
    }
    json_path = outdir / "transport.json"
    record = JobRecord(json_path, metrics, comm)
    record.write()
    t_solve = time.perf_counter()

    def on_direction(result: TransportResult, name: str):
        d = result.directions[name]
        metrics["directions"][name] = d.as_dict()
        record.write()
        log.info(
            "direction %s: eps %.4f, D_eff/D0 %.5f, tau %.4f (%d dofs, %d CG its, %.1f s)",
            name,
            d.epsilon,
            d.relative_diffusivity,
            d.tortuosity,
            d.dofs,
            d.iterations,
            time.perf_counter() - t_solve,
        )
        if stop is not None and (sig := stop.requested(comm)):
            raise Interrupted(
                f"interrupted after direction {name}; the finished directions are in "
                f"{json_path}: run again for the others",
                sig,
            )

    try:
        with soft(stop):
            result, profiles, files = _solve_and_write(
                emesh, options, phases, axes, through, on_direction, outdir, plots, metrics
            )
    except Interrupted as err:
        record.fail(err, status="interrupted")
        raise
    except Exception as err:
        record.fail(err)
        raise
    metrics["files"] = {k: v.name for k, v in files.items()}
    metrics["seconds"] = {"solve": time.perf_counter() - t_solve, "total": time.perf_counter() - t0}
    record.finish()
    return TransportReport(result, metrics, profiles, files)


def _solid_complement(emesh, vols: dict, areas: dict, box_volume: float) -> str | None:
    """An electrolyte-only mesh (``MeshOptions.electrolyte_only``, one solid phase) has no
    solid cells: add the solid's volume to ``vols`` as the box's minus the electrolyte's,
    and return the solid's name (None for any other mesh)."""
    opts = emesh.metadata.get("mesh_options") or {}
    if not opts.get("electrolyte_only") or set(vols) != {tags.ELECTROLYTE}:
        return None
    solids = {
        p
        for t in areas
        if 100 < t < 200 and tags.ELECTROLYTE in tags.interface_phases(t)
        for p in tags.interface_phases(t)
        if p != tags.ELECTROLYTE
    }
    if len(solids) != 1:
        return None
    (p,) = solids
    vols[p] = box_volume - vols[tags.ELECTROLYTE]
    return tags.phase_name(p)


def _sidecar_note(emesh) -> dict:
    """For a mesh read without its ``mesh.json``: what was derived and what is missing."""
    md = emesh.metadata
    if not md.get("missing"):
        return {}
    return {
        "mesh_metadata_derived": md.get("derived"),
        "mesh_metadata_missing": md.get("missing"),
        "note": "the mesh has no mesh.json: box, dim and phases derived from the mesh; SIA uses "
        "densities_used_g_cm3 (defaults unless --density or [density] gives them)",
    }


def _solve_and_write(emesh, options, phases, axes, through, on_direction, outdir, plots, metrics):
    """Solve every direction, then the profiles, fields and the PyBaMM export (collective)."""
    from .. import analysis
    from ..plot import plot_profiles

    comm = emesh.comm
    log.info("solving %s transport along %s", options.phase, ", ".join(axes))
    result = solve_transport(
        emesh,
        phases,
        directions=axes,
        reference=options.reference,
        callback=on_direction,
        degree=options.degree,
    )
    metrics["reference_coefficient"] = result.reference
    metrics["degree"] = result.degree
    metrics["geometry_order"] = result.geometry_order
    prof_dir = through if through in result.directions else None
    profiles = analysis.through_thickness_profiles(
        emesh, n_slabs=options.n_slabs, transport=result, direction=prof_dir
    )
    files = {"transport": outdir / "transport.json", "profiles": outdir / "profiles.csv"}
    profiles.to_csv(files["profiles"])
    if plots and comm.rank == 0:
        files["profiles_png"] = outdir / "profiles.png"
        plot_profiles(profiles, files["profiles_png"], title=f"{options.phase} transport")
    files["fields"] = write_fields(result, outdir / "fields.xdmf")
    if options.phase == "electrolyte" and through in result.directions:
        from ..export import pybamm_parameters

        try:
            pb = pybamm_parameters(jsonable(metrics), options.electrode)
        except ValueError as err:
            log.warning("no PyBaMM export: %s", err)
        else:
            files["pybamm"] = outdir / "pybamm.json"
            write_json(files["pybamm"], pb, comm)
    return result, profiles, files


def write_fields(result: TransportResult, path: Path) -> Path:
    """All directions' potentials on their (shared) submesh, one XDMF file. XDMF stores a
    field at the mesh's nodes, so a potential of another degree than the geometry's is
    interpolated to it (P1 on curved cells: to P2, exactly)."""
    from dolfinx import fem
    from dolfinx.io import XDMFFile

    fields = list(result.fields.values())
    if not fields:
        return path
    msh = fields[0].function_space.mesh
    k = msh.geometry.cmaps[0].degree
    with XDMFFile(msh.comm, str(path), "w") as f:
        f.write_mesh(msh)
        for u in fields:
            if u.function_space.ufl_element().embedded_superdegree != k:
                v = fem.Function(fem.functionspace(msh, ("Lagrange", k)), name=u.name)
                v.interpolate(u)
                u = v
            f.write_function(u)
    return path
