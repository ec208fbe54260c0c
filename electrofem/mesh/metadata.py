"""The metadata of a mesh: its JSON sidecar ``<name>.json``, and what a mesh without one can
tell about itself.

``electrofem generate`` writes the sidecar next to ``mesh.xdmf``/``mesh.msh`` (keys: see
:data:`FROM_GENERATION` and :data:`DERIVABLE`). A mesh read without it (or with an unreadable
one) still works: :func:`complete` derives ``dim``, ``box_um`` (from the global bounding box,
when it starts at the origin), ``length_unit_m`` and ``phases`` from the mesh itself, and lists
in ``metadata["derived"]`` what it derived and in ``metadata["missing"]`` what only the
generator knew (``seed``, ``porosity`` of the packing, ...). Missing keys are left out, so
``metadata.get(key)`` is None for them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from .. import LENGTH_UNIT_M, tags

log = logging.getLogger("electrofem.mesh")

#: Keys a mesh can give about itself.
DERIVABLE = ("dim", "box_um", "length_unit_m", "phases")
#: Keys of a generated sidecar that only the generator knows.
FROM_GENERATION = (
    "seed",
    "porosity",
    "porosity_per_layer",
    "layer_bounds_um",
    "periodic",
    "mesh_options",
    "mesh_stats",
    "geometry",
    "version",
)
#: A bounding-box minimum within this fraction of the extent counts as 0 (box at the origin).
ORIGIN_TOL = 1e-6


def sidecar_path(path: Path) -> Path:
    return Path(path).with_suffix(".json")


def jsonable(obj):
    """``json.dumps`` default for numpy scalars and arrays and paths."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON-serialisable: {type(obj)}")


def read_sidecar(path: Path) -> tuple[dict | None, str | None]:
    """``(metadata, None)``, or ``(None, why)`` when the sidecar is missing or unreadable.
    Serial (call on one rank)."""
    side = sidecar_path(path)
    if not side.is_file():
        return None, f"no metadata sidecar {side.name}"
    try:
        meta = json.loads(side.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f"unreadable metadata {side.name} ({str(err).splitlines()[0]})"
    if not isinstance(meta, dict):
        return None, f"unreadable metadata {side.name} (not a JSON object)"
    return meta, None


def global_bounds(mesh) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` of the mesh coordinates over all ranks (collective)."""
    dim = mesh.geometry.dim
    x = mesh.geometry.x[:, :dim]
    lo = x.min(axis=0) if len(x) else np.full(dim, np.inf)
    hi = x.max(axis=0) if len(x) else np.full(dim, -np.inf)
    pairs = mesh.comm.allgather((lo, hi))  # not allreduce(op=MIN): it compares whole arrays
    return np.min([p[0] for p in pairs], axis=0), np.max([p[1] for p in pairs], axis=0)


def _phase_label(value: int) -> str:
    try:
        return tags.phase_name(value)
    except ValueError:
        return str(value)


def complete(meta: dict | None, why: str | None, source: Path, mesh, cell_tags) -> dict:
    """The metadata of a mesh read from ``source``: the sidecar ``meta`` (the same on every
    rank; None if missing, with the reason ``why``) completed from the mesh. Collective.

    Derives the :data:`DERIVABLE` keys the sidecar lacks (all of them without a sidecar;
    ``phases`` only then) and records ``derived``/``missing`` (lists of keys, only when not
    empty). ``box_um`` needs the bounding box to start at the origin; otherwise
    ``bounds_um`` (``[lo, hi]``) is given instead and ``warning`` says why.
    """
    comm = mesh.comm
    out = dict(meta or {})
    notes = [why] if why else []
    derived: list[str] = []
    want = [k for k in DERIVABLE if k not in out and (meta is None or k != "phases")]
    dim = int(mesh.topology.dim)
    if "dim" in want:
        out["dim"] = dim
        derived.append("dim")
    if "length_unit_m" in want:
        out["length_unit_m"] = LENGTH_UNIT_M
        derived.append("length_unit_m")
    if "box_um" in want:
        lo, hi = global_bounds(mesh)
        lo, hi = lo[:dim], hi[:dim]
        extent = float(np.max(hi - lo)) if np.all(np.isfinite(hi - lo)) else 0.0
        if extent > 0 and np.all(np.abs(lo) <= ORIGIN_TOL * extent):
            out["box_um"] = [round(float(v), 9) for v in hi]  # gmsh coordinate noise
            derived.append("box_um")
        else:
            out["bounds_um"] = [[float(v) for v in lo], [float(v) for v in hi]]
            derived.append("bounds_um")
            notes.append(
                f"the mesh's bounding box starts at {[round(float(v), 6) for v in lo]}, not at "
                "the origin: box_um not derived"
            )
    if "phases" in want:
        local = set(np.unique(cell_tags.values).tolist())
        present = sorted(set().union(*comm.allgather(local)))
        out["phases"] = [_phase_label(v) for v in present]
        derived.append("phases")
    missing = [k for k in (*FROM_GENERATION, "box_um") if k not in out]
    if derived:
        out["derived"] = sorted(set(out.get("derived", [])) | set(derived))
    if missing:
        out["missing"] = missing
    if notes:
        out["warning"] = "; ".join(notes)
    if comm.rank == 0 and (meta is None or derived):
        log.warning(
            "%s: %s; derived %s from the mesh; missing: %s",
            source,
            "; ".join(notes) or "incomplete metadata",
            ", ".join(derived) or "nothing",
            ", ".join(missing) or "nothing",
        )
    return out
