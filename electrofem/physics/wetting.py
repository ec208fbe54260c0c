"""The wetting state of an electrode: which pore cells hold electrolyte, and which reach the
separator.

:class:`WettingState`: α of every pore cell at one time, centroids in µm and the
:func:`mesh_fingerprint` of its mesh, in one ``.npz`` (the infiltration job writes
``OUT/wetting/state_<index>.npz`` and ``index.json``). :func:`read_wetting` reads ``DIR[:TIME]``,
:func:`wet_cells` puts a state on a mesh, :func:`electrolyte_components` splits the wet cells
into components, :func:`wetting_metrics` measures them (:func:`analyse_wetting`: all three).

Every function is MPI-collective unless it says otherwise. Per-cell arrays are indexed by the
local cells of the parent ``emesh.mesh`` (owned, then ghosts: ``size_local + num_ghosts`` of its
cell index map); ghost cells always carry their owner's value.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from mpi4py import MPI

from .. import tags

WETTING_DIR = "wetting"  #: the folder of an infiltration output that holds the states
INDEX_NAME = "index.json"  #: ``[{"file": "state_0000.npz", "time_s": 0.0}, ...]``
ELECTROLYTE_ACTIVE = tags.interface_tag(tags.ELECTROLYTE, tags.ACTIVE)


def _err(text: str) -> ValueError:
    return ValueError("--wetting: " + " ".join(str(text).split()))


@dataclass
class WettingState:
    """The electrolyte volume fraction α of every pore cell at one time.

    The same on every rank once read (:func:`read_wetting`, :meth:`full`)."""

    time_s: float
    alpha: np.ndarray  # (n,) α of pore cells (0 air .. 1 electrolyte)
    centroids_um: np.ndarray  # (n, dim) cell centroids, µm, same order as alpha
    fingerprint: str  # mesh_fingerprint() of the mesh it was computed on
    source: str = ""  # where it was read from (for messages/JSON)

    @property
    def n_cells(self) -> int:
        return len(self.alpha)

    def save(self, path) -> None:
        """Write one ``.npz`` (atomically: a temporary file, then a rename). NOT collective:
        call it on one rank (rank 0)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(
            tmp,
            time_s=np.float64(self.time_s),
            alpha=np.asarray(self.alpha, dtype=np.float64),
            centroids_um=np.asarray(self.centroids_um, dtype=np.float64),
            fingerprint=np.str_(self.fingerprint),
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path) -> WettingState:
        """Read a ``.npz`` written by :meth:`save` (not collective). ValueError (one line,
        ``--wetting: ...``) if it is missing or not a wetting state."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                alpha = np.asarray(z["alpha"], dtype=np.float64)
                xy = np.asarray(z["centroids_um"], dtype=np.float64)
                state = cls(float(z["time_s"]), alpha, xy, str(z["fingerprint"]), str(path))
        except (OSError, ValueError, KeyError) as err:
            text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise _err(f"{path}: not a readable wetting state ({text})") from None
        if alpha.ndim != 1 or xy.ndim != 2 or len(xy) != len(alpha):
            raise _err(f"{path}: not a wetting state (alpha {alpha.shape}, centroids {xy.shape})")
        return state

    @classmethod
    def full(cls, emesh) -> WettingState:
        """Every pore cell wet (α = 1), at t = 0 (collective; the same state on every rank)."""
        comm = emesh.comm
        n_own = emesh.mesh.topology.index_map(emesh.dim).size_local
        elec = np.flatnonzero(_phases(emesh)[:n_own] == tags.ELECTROLYTE)
        parts = comm.gather(_centroids(emesh.mesh, elec), root=0)
        xy = comm.bcast(np.concatenate(parts) if comm.rank == 0 else None, root=0)
        fp = mesh_fingerprint(emesh)
        return cls(0.0, np.ones(len(xy)), xy, fp, "full (every pore cell wet)")


def _phases(emesh) -> np.ndarray:
    """The cell tag of every local cell (-1 if untagged)."""
    imap = emesh.mesh.topology.index_map(emesh.dim)
    out = np.full(imap.size_local + imap.num_ghosts, -1, dtype=np.int32)
    ct = emesh.cell_tags
    out[ct.indices] = ct.values
    return out


def _centroids(mesh, cells: np.ndarray) -> np.ndarray:
    """Vertex-mean centroids of local ``cells`` (µm, ``tdim`` columns), as the VOF solver's."""
    tdim = mesh.topology.dim
    x = mesh.geometry.x[:, :tdim]
    return x[mesh.geometry.dofmaps[0][cells, : tdim + 1]].mean(axis=1)


def _cell_volumes(mesh, cells: np.ndarray) -> np.ndarray:
    """Volumes (areas in 2D) of affine simplex ``cells``, µm³ (µm²)."""
    tdim = mesh.topology.dim
    xc = mesh.geometry.x[mesh.geometry.dofmaps[0][cells, : tdim + 1], :tdim]
    e = xc[:, 1:] - xc[:, :1]
    return np.abs(np.linalg.det(e)) / math.factorial(tdim) if len(cells) else np.zeros(0)


def _facet_measures(mesh, facets: np.ndarray) -> np.ndarray:
    """Lengths (2D) or areas (3D) of affine simplex ``facets``, µm (µm²)."""
    from dolfinx.mesh import entities_to_geometry

    tdim = mesh.topology.dim
    if len(facets) == 0:
        return np.zeros(0)
    xf = mesh.geometry.x[entities_to_geometry(mesh, tdim - 1, facets.astype(np.int32))]
    if tdim == 2:
        return np.linalg.norm(xf[:, 1] - xf[:, 0], axis=1)
    return 0.5 * np.linalg.norm(np.cross(xf[:, 1] - xf[:, 0], xf[:, 2] - xf[:, 0]), axis=1)


def _to_ghosts(emesh, values: np.ndarray) -> np.ndarray:
    """``values`` per local cell with every ghost entry replaced by its owner's (collective)."""
    from dolfinx import la

    imap = emesh.mesh.topology.index_map(emesh.dim)
    vec = la.vector(imap, 1, dtype=np.float64)
    vec.array[:] = values
    vec.scatter_forward()
    return vec.array.copy()


def mesh_fingerprint(emesh) -> str:
    """A 16-hex-digit digest of the mesh (collective; the same on any number of ranks).

    Built from global counts (cells, vertices, cells per phase, facets per tag) and the phase
    volumes and facet-tag measures rounded to 9 significant digits, not from a file name: a
    mesh written and read back keeps it, another seed, size or layering changes it. (The
    rounding absorbs the summation-order differences between partitions; a measure within
    ~1e-15 of a rounding boundary could in principle still flip it.) Cached on ``emesh``."""
    cached = getattr(emesh, "_wetting_fingerprint", None)
    if cached is not None:
        return cached
    comm, mesh, tdim = emesh.comm, emesh.mesh, emesh.dim
    n_own = mesh.topology.index_map(tdim).size_local
    phase = _phases(emesh)[:n_own] + 1  # untagged: 0
    size = comm.allreduce(int(phase.max(initial=0)) + 1, op=MPI.MAX)
    by_phase = comm.allreduce(np.bincount(phase, minlength=size), op=MPI.SUM)
    data = {
        "dim": tdim,
        "cells": int(mesh.topology.index_map(tdim).size_global),
        "vertices": int(mesh.topology.index_map(0).size_global),
        "cells_by_tag": {str(k - 1): int(n) for k, n in enumerate(by_phase) if n},
        "facets_by_tag": {str(k): v for k, v in emesh.facet_counts().items()},
        "volumes": {str(k): f"{v:.9g}" for k, v in emesh.phase_volumes().items()},
        "measures": {str(k): f"{v:.9g}" for k, v in emesh.facet_measures().items()},
    }
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    digest = comm.bcast(digest, root=0)
    emesh._wetting_fingerprint = digest
    return digest


# --- reading ---------------------------------------------------------------------------------
def _parse_spec(spec) -> tuple[Path, float | None]:
    text = str(spec).strip()
    if not text:
        raise _err("empty; give an infiltration output folder, DIR:TIME or a .npz file")
    if Path(text).exists() or ":" not in text:
        return Path(text), None
    head, tail = text.rsplit(":", 1)
    try:
        t = float(tail)
    except ValueError:
        t = math.nan
    if not math.isfinite(t) or t < 0:
        raise _err(f"bad TIME {tail!r} in {text!r} (seconds >= 0, e.g. DIR:1.5e-3)")
    return Path(head), t


def _index(folder: Path) -> list[dict]:
    """``[{"file", "time_s"}]`` of a wetting folder's index, by time."""
    index = folder / INDEX_NAME
    if index.is_file():
        try:
            entries = [
                {"file": str(e["file"]), "time_s": float(e["time_s"])}
                for e in json.loads(index.read_text())
            ]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise _err(f"{index}: not a readable wetting index ({err})") from None
    else:
        entries = []
    return sorted(entries, key=lambda e: e["time_s"])


def _read(spec) -> WettingState:
    path, t = _parse_spec(spec)
    if not path.exists():
        raise _err(f"{path}: no such folder or file")
    if path.is_file():
        return WettingState.load(path)  # (a TIME is ignored)
    folder = path / WETTING_DIR if (path / WETTING_DIR).is_dir() else path
    entries = _index(folder)
    if not entries:
        raise _err(
            f"{path}: no wetting states (an infiltration output folder holds "
            f"{WETTING_DIR}/{INDEX_NAME} and its state_*.npz)"
        )
    chosen = entries[-1]
    if t is not None:
        before = [e for e in entries if e["time_s"] <= t * (1 + 1e-9)]
        if not before:
            times = [f"{e['time_s']:.6g}" for e in entries]
            shown = times if len(times) <= 8 else times[:4] + ["..."] + times[-3:]
            raise _err(
                f"no wetting state at or before t = {t:g} s in {path} (available: "
                f"{', '.join(shown)} s)"
            )
        chosen = before[-1]
    state = WettingState.load(folder / chosen["file"])
    state.source = f"{folder / chosen['file']} (t = {state.time_s:.6g} s)"
    return state


def read_wetting(spec: str, comm=MPI.COMM_WORLD) -> WettingState:
    """The wetting state named by ``spec`` (collective: rank 0 reads, every rank gets it).

    ``spec`` is ``DIR`` or ``DIR:TIME``: ``DIR`` an infiltration output folder (its
    ``wetting/`` states), a wetting folder itself or one ``.npz``; without ``TIME`` the last
    state, with ``TIME`` (s) the last one at or before it. Raises the same one-line ValueError
    ``--wetting: ...`` on every rank for a missing folder, no states or a bad ``TIME``."""
    state, err = None, None
    if comm.rank == 0:
        try:
            state = _read(spec)
        except ValueError as e:
            err = str(e)
        except Exception as e:  # noqa: BLE001 - rank 0 must reach the broadcast
            err = str(_err(f"{spec}: cannot read it ({type(e).__name__}: {e})"))
    err = comm.bcast(err, root=0)
    if err:
        raise ValueError(err)
    return comm.bcast(state, root=0)


# --- the state on a mesh -------------------------------------------------------------------------
def wet_cells(emesh, state: WettingState, threshold: float = 0.5) -> np.ndarray:
    """True for the local ELECTROLYTE cells of ``emesh`` (owned, then ghosts) with α >=
    ``threshold`` (collective). The state's cells are matched to the electrolyte cells by
    centroid (KD-tree; tolerance 1e-6 × the largest box extent). ValueError ``--wetting:
    ...`` if the state is from another mesh (fingerprint, checked first) or does not match."""
    from scipy.spatial import cKDTree

    fp = mesh_fingerprint(emesh)
    if state.fingerprint != fp:
        raise _err(
            f"the wetting state is from another mesh (fingerprint {state.fingerprint}, "
            f"this mesh {fp})"
        )
    comm, mesh = emesh.comm, emesh.mesh
    imap = mesh.topology.index_map(emesh.dim)
    elec = np.flatnonzero(_phases(emesh)[: imap.size_local] == tags.ELECTROLYTE)
    n_elec = comm.allreduce(len(elec), op=MPI.SUM)
    if n_elec != state.n_cells or state.centroids_um.shape[1:] != (emesh.dim,):
        raise _err(f"the wetting state has {state.n_cells} pore cells, this mesh {n_elec}")
    lo, hi = emesh.bounding_box()
    tol = 1e-6 * float(np.max(hi - lo))
    dist, idx = cKDTree(state.centroids_um).query(_centroids(mesh, elec))
    worst = comm.allreduce(float(dist.max(initial=0.0)), op=MPI.MAX)
    if worst > tol:
        raise _err(
            f"the wetting state's cells do not match this mesh's pore cells (largest "
            f"distance {worst:.3g} µm > {tol:.3g} µm)"
        )
    values = np.zeros(imap.size_local + imap.num_ghosts)
    values[elec] = np.asarray(state.alpha)[idx] >= threshold
    return _to_ghosts(emesh, values) > 0.5


def electrolyte_components(emesh, wet: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Connected components of the ``wet`` cells through shared facets (collective).

    Returns ``(labels, connected)`` per local cell: a global component id (-1 where not wet),
    the same on every rank for the same component, and whether the cell's component touches
    the top face (``tags.TOP``, the separator side). Cells sharing only a vertex are not
    connected.

    How: every rank sends the (global index, global index) pairs of its owned facets between
    two wet cells, its wet cells and its wet cells on the top face to rank 0, which runs
    ``scipy.sparse.csgraph.connected_components`` and sends each rank the labels of its local
    cells. Rank 0 holds O(number of cells) integers: ~16 bytes per wet facet plus ~8 per
    cell (a 1 M-tet mesh: ~50 MB). Needs the ``shared_facet`` ghost mode of ElectrodeMesh."""
    from dolfinx.mesh import exterior_facet_indices
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    comm, mesh, tdim = emesh.comm, emesh.mesh, emesh.dim
    imap = mesh.topology.index_map(tdim)
    n_own, n_local = imap.size_local, imap.size_local + imap.num_ghosts
    wet = _to_ghosts(emesh, np.asarray(wet, dtype=np.float64)[:n_local]) > 0.5
    gidx = imap.local_to_global(np.arange(n_local, dtype=np.int32)).astype(np.int64)
    mesh.topology.create_connectivity(tdim - 1, tdim)
    f2c = mesh.topology.connectivity(tdim - 1, tdim)
    off, arr = f2c.offsets, f2c.array
    nf = mesh.topology.index_map(tdim - 1).size_local
    ncell = np.diff(off[: nf + 1])
    n_ext = np.count_nonzero(exterior_facet_indices(mesh.topology) < nf)
    if comm.allreduce(int(np.count_nonzero(ncell == 1)) - n_ext, op=MPI.SUM):
        raise ValueError("wetting: the mesh needs the shared_facet ghost mode (ElectrodeMesh)")
    inner = np.flatnonzero(ncell == 2)
    c0, c1 = arr[off[inner]], arr[off[inner] + 1]
    both = wet[c0] & wet[c1]
    edges = np.stack([gidx[c0[both]], gidx[c1[both]]])
    ft = emesh.facet_tags
    top = ft.indices[ft.values == tags.TOP]
    top_cells = arr[off[top]]
    sent = (edges, gidx[:n_own][wet[:n_own]], gidx[top_cells[wet[top_cells]]], gidx)
    parts = comm.gather(sent, root=0)
    replies = None
    if comm.rank == 0:
        n = int(imap.size_global)
        e = np.concatenate([p[0] for p in parts], axis=1)
        graph = coo_matrix((np.ones(e.shape[1], np.int8), (e[0], e[1])), shape=(n, n))
        _, comp = connected_components(graph.tocsr(), directed=False)
        wet_g = np.concatenate([p[1] for p in parts])
        # wet components numbered 0.. in the order of their smallest global cell
        lab = np.full(n, -1, dtype=np.int64)
        _, first, inv = np.unique(comp[wet_g], return_index=True, return_inverse=True)
        rank_of = np.argsort(np.argsort(wet_g[first]))
        lab[wet_g] = rank_of[inv]
        touching = np.zeros(len(first) + 1, dtype=bool)  # the last entry: -1 (not wet)
        touching[lab[np.concatenate([p[2] for p in parts])]] = True
        replies = [(lab[p[3]], touching[lab[p[3]]]) for p in parts]
    labels, connected = comm.scatter(replies, root=0)
    return labels, connected & (labels >= 0)


def wetting_metrics(emesh, wet, connected, *, labels=None, threshold=None) -> dict:
    """Volumes and areas of a wetting (collective; owned cells and facets: each counted once).

    * ``wetted_pore_fraction``: wet pore volume / pore volume;
    * ``connected_pore_fraction``: volume of wet cells connected to the top / pore volume;
    * ``isolated_electrolyte_volume_um3``: wet but not connected (µm² per unit depth in 2D:
      ``volume_unit`` says which);
    * ``wetted_active_area_fraction``: electrolyte|active interface area whose electrolyte cell
      is connected / all of it; ``dry_active_area_fraction``: the part next to air (not wet);
      ``isolated_active_area_fraction``: the part next to isolated pockets (the three add to 1);
    * ``n_pockets``: wet components that do not touch the top (``labels`` from
      :func:`electrolyte_components`; computed when not given); ``threshold``: as given;
    * ``cut_off_active_fraction``: active volume of the particles with no surface on the
      connected electrolyte / all active volume (:func:`cut_off_particles`): the capacity a
      slow discharge cannot reach; ``n_cut_off_particles`` of ``n_particles``."""
    comm, mesh, tdim = emesh.comm, emesh.mesh, emesh.dim
    imap = mesh.topology.index_map(tdim)
    n_own = imap.size_local
    wet = np.asarray(wet, dtype=bool)
    connected = np.asarray(connected, dtype=bool)
    if labels is None:
        labels, _ = electrolyte_components(emesh, wet)
    phase = _phases(emesh)
    elec = np.flatnonzero(phase[:n_own] == tags.ELECTROLYTE)
    vol = _cell_volumes(mesh, elec)

    def total(v) -> float:
        return comm.allreduce(float(np.sum(v)), op=MPI.SUM)

    pore = total(vol)
    v_wet = total(vol[wet[elec]])
    v_conn = total(vol[connected[elec]])
    v_iso = total(vol[wet[elec] & ~connected[elec]])
    # owned electrolyte|active facets and the electrolyte cell of each
    nf = mesh.topology.index_map(tdim - 1).size_local
    ft = emesh.facet_tags
    facets = ft.indices[(ft.values == ELECTROLYTE_ACTIVE) & (ft.indices < nf)]
    cell, both = _electrolyte_side(emesh, facets, phase)
    if not comm.allreduce(bool(np.all(both)), op=MPI.LAND):
        raise ValueError("wetting: the mesh needs the shared_facet ghost mode (ElectrodeMesh)")
    area = _facet_measures(mesh, facets)
    a_all = total(area)
    a_wet = total(area[connected[cell]])
    a_dry = total(area[~wet[cell]])
    pockets = np.unique(labels[:n_own][wet[:n_own] & ~connected[:n_own]])
    n_pockets = len(set().union(*comm.allgather(set(pockets.tolist()))))
    cut = cut_off_particles(emesh, facets[connected[cell]], phase)

    def frac(a, b):
        return a / b if b > 0 else float("nan")

    return {
        "wetted_pore_fraction": frac(v_wet, pore),
        "connected_pore_fraction": frac(v_conn, pore),
        "isolated_electrolyte_volume_um3": v_iso,
        "pore_volume_um3": pore,
        "volume_unit": "um2 (2D: per unit depth)" if tdim == 2 else "um3",
        "wetted_active_area_fraction": frac(a_wet, a_all),
        "dry_active_area_fraction": frac(a_dry, a_all),
        "isolated_active_area_fraction": frac(max(a_all - a_wet - a_dry, 0.0), a_all),
        "active_area_um2": a_all,
        "n_pockets": int(n_pockets),
        "cut_off_active_fraction": frac(cut[0], cut[1]),
        "n_cut_off_particles": cut[2],
        "n_particles": cut[3],
        "threshold": threshold,
    }


def cut_off_particles(
    emesh, reached_facets: np.ndarray, phase=None
) -> tuple[float, float, int, int]:
    """The particles (connected sets of active cells; overlapping particles count as one) with
    no surface facet in ``reached_facets`` (owned electrolyte|active facets that touch the
    connected electrolyte): Li can neither enter nor leave them. Returns ``(cut-off active
    volume, active volume, cut-off particles, particles)`` (collective; µm², per unit depth,
    in 2D)."""
    comm, mesh, tdim = emesh.comm, emesh.mesh, emesh.dim
    phase = _phases(emesh) if phase is None else phase
    n_own = mesh.topology.index_map(tdim).size_local
    active = phase == tags.ACTIVE
    labels, _ = electrolyte_components(emesh, active)
    f2c = mesh.topology.connectivity(tdim - 1, tdim)
    off, arr = f2c.offsets, f2c.array
    c0, c1 = arr[off[reached_facets]], arr[off[reached_facets] + 1]
    solid = np.where(active[c0], c0, c1)
    reached = set().union(*comm.allgather(set(labels[solid].tolist())))
    own = np.flatnonzero(active[:n_own])
    vol = _cell_volumes(mesh, own)
    lab = labels[own]
    cut_mask = ~np.isin(lab, np.fromiter(reached, dtype=np.int64, count=len(reached)))
    all_labels = set().union(*comm.allgather(set(np.unique(lab).tolist())))
    v_cut = comm.allreduce(float(np.sum(vol[cut_mask])), op=MPI.SUM)
    v_all = comm.allreduce(float(np.sum(vol)), op=MPI.SUM)
    return v_cut, v_all, len(all_labels - reached), len(all_labels)


def _electrolyte_side(emesh, facets: np.ndarray, phase: np.ndarray):
    """``(cell, both)``: the electrolyte cell (local index) of each local interface facet, and
    whether both of its cells are local (always for owned facets in shared_facet mode)."""
    tdim = emesh.dim
    emesh.mesh.topology.create_connectivity(tdim - 1, tdim)
    f2c = emesh.mesh.topology.connectivity(tdim - 1, tdim)
    off, arr = f2c.offsets, f2c.array
    both = np.diff(off)[facets] == 2
    c0, c1 = arr[off[facets]], arr[off[facets] + both.astype(np.int32)]
    return np.where(phase[c0] == tags.ELECTROLYTE, c0, c1), both


def interface_facets(emesh, cells: np.ndarray, tag: int = ELECTROLYTE_ACTIVE) -> np.ndarray:
    """Local facets tagged ``tag`` (an electrolyte|solid interface) with both cells on this
    rank (every owned one; the ones a ``dS`` integral uses) whose electrolyte cell is in the
    boolean per-cell mask ``cells`` (e.g. ``connected``): the particle surface that carries
    current. Not collective."""
    ft = emesh.facet_tags
    facets = ft.indices[ft.values == tag]
    cell, both = _electrolyte_side(emesh, facets, _phases(emesh))
    return facets[both & np.asarray(cells, dtype=bool)[cell]].astype(np.int32)


@dataclass
class Wetting:
    """A wetting state applied to a mesh (:func:`analyse_wetting`); per-cell arrays as
    :func:`wet_cells`."""

    state: WettingState
    threshold: float
    wet: np.ndarray
    labels: np.ndarray
    connected: np.ndarray
    metrics: dict = field(default_factory=dict)

    def electrolyte(self, pockets: bool = False) -> np.ndarray:
        """The cells that carry the electrolyte equations: the connected ones, or every wet
        one with ``pockets``."""
        return self.wet.copy() if pockets else self.connected.copy()


def analyse_wetting(emesh, state: WettingState, threshold: float = 0.5) -> Wetting:
    """:func:`wet_cells`, :func:`electrolyte_components` and :func:`wetting_metrics` in one
    call (collective); the metrics also record the state's time and source."""
    wet = wet_cells(emesh, state, threshold)
    labels, connected = electrolyte_components(emesh, wet)
    m = wetting_metrics(emesh, wet, connected, labels=labels, threshold=threshold)
    m |= {"time_s": state.time_s, "source": state.source, "fingerprint": state.fingerprint}
    return Wetting(state, threshold, wet, labels, connected, m)
