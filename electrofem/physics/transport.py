"""Steady effective transport (the "cell problem"): tortuosity factor and effective conductivity.

On the cells of one phase, or a set of phases with per-phase coefficients ``k_p``, solve

    -div(k grad u) = 0,   u = 1 on the inlet face, u = 0 on the outlet face,

with zero flux on every other boundary, including every interface with the excluded phases.
The faces are the two box faces normal to the chosen direction. P1 Lagrange on a submesh of the
selected cells; CG + GAMG (PETSc).

**Flux** is computed variationally, from the residual: with ``phi_in`` the P1 function that is 1
on the inlet dofs and 0 elsewhere, ``Q_in = a(u, phi_in)`` is the exact discrete flux through the
inlet (no differentiation of u on the boundary), and likewise ``Q_out``; they must balance,
``Q_in + Q_out = 0``, up to the solver tolerance (reported as ``flux_imbalance``).

**Outputs** (per direction), with ``A`` the face area, ``L`` the length, ``D0`` the reference
coefficient (that of the first phase listed, unless given):

* ``epsilon``: volume fraction of the selected phases in the box;
* ``relative_diffusivity`` ``D_eff/D0 = Q L / (A D0 ΔU)``;
* ``tortuosity`` ``τ = ε D0 / D_eff`` -- the convention of TauFactor and PyBaMM
  (``D_eff = D0 ε / τ``; PyBaMM's "transport efficiency" is ``ε/τ``);
* ``macmullin`` ``N_M = τ / ε = D0 / D_eff``.

A phase that does not connect the two faces has ``D_eff = 0``, ``τ = inf`` (no exception, no
NaN). Clusters that touch no Dirichlet face would make the matrix singular; a mass term
``1e-10 k / L²`` removes that without biasing τ (its effect on the flux is ~1e-10 relative).
Dead-end pores count in ε, as in TauFactor.

Lengths are µm: ratios are unit-free.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from mpi4py import MPI

from .. import tags
from ..params import OptionsError, at_least, param, positive
from ..params import validate as validate_params
from ._petsc import destroy

AXES = {"x": 0, "y": 1, "z": 2}
#: Relative size of the regularising mass term.
REGULARISATION = 1e-10
#: D_eff/D0 below this is reported as non-percolating (0, τ = inf).
PERCOLATION_THRESHOLD = 1e-7

DEFAULT_PETSC_OPTIONS = {
    "ksp_type": "cg",
    "pc_type": "gamg",
    "pc_gamg_threshold": 0.02,
    "ksp_rtol": 1e-10,
    "ksp_atol": 1e-14,
    "ksp_max_it": 1000,
}


#: The ``degree`` option of the transport and conductivity tables.
DEGREE_DOC = "Lagrange degree of the potential, 1 or 2 (default: the mesh's geometry order)"


def _phase_selection(v):
    names = v.split(",") if v not in ("electrolyte", "solid") else []
    for n in names:
        if n.strip() not in tags.PHASES:
            return (
                f"unknown phase {n.strip()!r} (electrolyte, solid, or names from "
                f"{sorted(tags.PHASES)}), got {v!r}"
            )
    return None


def _directions(v):
    for d in v:
        if d not in ("all", *AXES):
            return f"{d!r} is not x, y, z or all, got {list(v)}"
    return None


def _axis_tuple(v):
    """``"x"`` or ``["x", "y"]`` -> a tuple (anything else is left to validate())."""
    if isinstance(v, str):
        return (v,)
    return tuple(v) if isinstance(v, list) else v


def _coefficients(v):
    for k, c in v.items():
        if k not in tags.PHASES:
            return f"unknown phase {k!r}, got {v}"
        if isinstance(c, bool) or not (isinstance(c, int | float) and c > 0 and math.isfinite(c)):
            return f"{k} must be positive, got {c!r}"
    return None


@dataclass
class TransportOptions:
    """What the ``transport`` job solves (the ``[transport]`` table of a config).

    Attributes:
        phase: ``"electrolyte"`` (ionic/diffusive transport in the pores), ``"solid"`` (every
            solid phase present: electronic conduction), or a comma-separated list of phase
            names (``"active,second"``).
        directions: axis names (``"x"``, ``"y"``, ``"z"``) or ``("all",)``.
        coefficients: diffusivity or conductivity per phase name, any one unit (only ratios
            matter; e.g. S/m). Phases not listed get 1.
        reference: ``D0`` (same unit); default: the coefficient of the first selected phase.
        n_slabs: slabs of the through-thickness profiles.
        electrode: ``"positive"`` or ``"negative"``: which electrode the PyBaMM export fills.
        degree: Lagrange degree of the potential, 1 or 2; default (None) the mesh's geometry
            order, so 2 on curved cells (``mesh.order = 2``).
    """

    TABLE = "transport"

    phase: str = param(
        "electrolyte",
        doc="electrolyte, solid, or phase names (active,second)",
        check=_phase_selection,
        flag="--phase",
    )
    directions: tuple[str, ...] = param(("all",), doc="axes x, y, z or all", check=_directions)
    coefficients: dict[str, float] = param(
        doc="diffusivity or conductivity per phase name (ratios matter)",
        check=_coefficients,
        factory=dict,
    )
    reference: float | None = param(
        None, doc="D0 (default: the coefficient of the first selected phase)", check=positive
    )
    n_slabs: int = param(
        20, doc="slabs of the through-thickness profiles", check=at_least(1), flag="--slabs"
    )
    electrode: str = param(
        "positive",
        doc="which electrode the PyBaMM export fills",
        choices=("positive", "negative"),
        flag="--electrode",
    )
    degree: int | None = param(None, doc=DEGREE_DOC, choices=(1, 2), flag="--degree")

    def __post_init__(self):
        self.directions = _axis_tuple(self.directions)

    def validate(self, names: dict[str, str] | None = None) -> None:
        """Raise :class:`~electrofem.params.OptionsError` naming the field."""
        validate_params(self, self.TABLE, names)

    def phase_coefficients(self, present: list[int]) -> dict[int, float]:
        """``{phase id: coefficient}`` of the selected phases that are present in the mesh."""
        if self.phase == "electrolyte":
            ids = [tags.ELECTROLYTE]
        elif self.phase == "solid":
            ids = [p for p in tags.SOLID_PHASES if p in present]
        else:
            ids = [tags.PHASES[n.strip()] for n in self.phase.split(",")]
        ids = [p for p in ids if p in present]
        if not ids:
            raise ValueError(f"transport.phase: no {self.phase!r} cells in this mesh")
        return {p: float(self.coefficients.get(tags.phase_name(p), 1.0)) for p in ids}

    def axes(self, dim: int) -> tuple[str, ...]:
        """The directions to solve on a ``dim``-dimensional mesh."""
        names = "xyz"[:dim]
        if "all" in self.directions:
            return tuple(names)
        bad = [d for d in self.directions if d not in names]
        if bad:
            raise ValueError(f"transport.directions: {bad[0]!r} is not an axis of a {dim}D mesh")
        return tuple(dict.fromkeys(self.directions))


def _conductivities(v):
    for k, c in v.items():
        if k not in tags.PHASES or k == "electrolyte":
            return f"unknown solid phase {k!r}, got {v}"
        if isinstance(c, bool) or not (isinstance(c, int | float) and c > 0 and math.isfinite(c)):
            return f"{k} must be positive, got {c!r}"
    return None


#: Electronic conductivities of the solid phases (S/m) and where they come from.
SOLID_CONDUCTIVITY_S_M = {"active": 0.18, "second": 1e-6, "binder": 10.0}
SOLID_CONDUCTIVITY_SOURCES = {
    "active": "NMC811, Chen et al. 2020 (PyBaMM Chen2020 set; materials.ActiveMaterialParams)",
    "second": "assumed: an insulating Al2O3-like coating, far below the active phase",
    "binder": "assumed: carbon-binder domain, typically 1-100 S/m",
}


@dataclass
class ConductivityOptions:
    """The effective electronic conductivity of the solid network (the ``[conductivity]``
    table, the ``electrofem conductivity`` flags): the cell problem of
    :func:`solve_transport` on the solid phases with their conductivities (S/m)."""

    TABLE = "conductivity"

    phase: str = param(
        "solid",
        doc="solid (every solid phase present) or phase names (active,binder)",
        check=_phase_selection,
        flag="--phase",
    )
    directions: tuple[str, ...] = param(("all",), doc="axes x, y, z or all", check=_directions)
    conductivities_S_m: dict[str, float] = param(
        unit="S/m",
        doc="electronic conductivity per solid phase (missing phases: the defaults)",
        source="; ".join(f"{k}: {v}" for k, v in SOLID_CONDUCTIVITY_SOURCES.items()),
        check=_conductivities,
        factory=lambda: dict(SOLID_CONDUCTIVITY_S_M),
    )

    degree: int | None = param(None, doc=DEGREE_DOC, choices=(1, 2), flag="--degree")

    def __post_init__(self):
        self.directions = _axis_tuple(self.directions)
        if isinstance(self.conductivities_S_m, dict):  # a bad type is left to validate()
            self.conductivities_S_m = {**SOLID_CONDUCTIVITY_S_M, **self.conductivities_S_m}

    def validate(self, names: dict[str, str] | None = None) -> None:
        """Raise :class:`~electrofem.params.OptionsError` naming the field."""
        validate_params(self, self.TABLE, names)
        if self.phase == "electrolyte":
            raise OptionsError(f"{self.TABLE}.phase: the electrolyte conducts no electrons")

    def transport_options(self) -> TransportOptions:
        """The same cell problem as :class:`TransportOptions` (σ as the coefficients; the
        reference D0 is 1 S/m, so D_eff/D0 is σ_eff in S/m)."""
        return TransportOptions(
            phase=self.phase,
            directions=self.directions,
            coefficients=dict(self.conductivities_S_m),
            reference=1.0,
            degree=self.degree,
        )


@dataclass
class DirectionResult:
    """Effective transport along one axis (see module docstring for definitions)."""

    direction: str
    epsilon: float
    relative_diffusivity: float
    tortuosity: float
    macmullin: float
    flux_in: float
    flux_out: float
    flux_imbalance: float
    percolating: bool
    iterations: int
    dofs: int

    def as_dict(self) -> dict:
        d = asdict(self)
        for k in ("tortuosity", "macmullin"):
            if math.isinf(d[k]):
                d[k] = "inf"
        return d


@dataclass
class TransportResult:
    """Results for every solved direction, plus the solved fields (dolfinx Functions)."""

    phases: dict[int, float]
    reference: float
    directions: dict[str, DirectionResult] = field(default_factory=dict)
    fields: dict = field(default_factory=dict)
    #: Lagrange degree of the potential; geometry order of the mesh
    degree: int = 1
    geometry_order: int = 1


def _select_cells(emesh, phases) -> np.ndarray:
    ct = emesh.cell_tags
    mask = np.isin(ct.values, list(phases))
    return np.sort(ct.indices[mask]).astype(np.int32)


def solve_transport(
    emesh,
    phases: dict[int, float] | tuple[int, ...] = (tags.ELECTROLYTE,),
    directions=("z",),
    reference: float | None = None,
    petsc_options: dict | None = None,
    callback=None,
    degree: int | None = None,
) -> TransportResult:
    """Solve the cell problem on ``emesh`` for each direction; MPI-collective.

    Args:
        emesh: an :class:`electrofem.mesh.ElectrodeMesh`.
        phases: phase ids, or ``{phase id: coefficient}`` (diffusivity or conductivity, any
            consistent unit); a tuple means coefficient 1 for each.
        directions: axis names; the through-plane axis is the last one ("y" in 2D, "z" in 3D).
        reference: ``D0``; default the coefficient of the first phase.
        petsc_options: override :data:`DEFAULT_PETSC_OPTIONS`.
        callback: called as ``callback(result, name)`` after each direction (e.g. to write
            results as they come).
        degree: Lagrange degree of the potential (1 or 2); default the mesh's geometry
            order. On curved (second-order) cells degree 2 keeps the discretisation error of
            the same order as the geometry's.
    """
    import ufl
    from dolfinx import fem, mesh
    from dolfinx.fem.petsc import LinearProblem

    if not isinstance(phases, dict):
        phases = {int(p): 1.0 for p in phases}
    for p, k in phases.items():
        tags.phase_id(p)
        if not (k > 0 and math.isfinite(k)):
            raise ValueError(f"phases[{p}]: coefficient must be positive, got {k}")
    ref = float(reference if reference is not None else next(iter(phases.values())))
    msh = emesh.mesh
    comm = msh.comm
    tdim = msh.topology.dim
    box = np.asarray(emesh.box_um(), dtype=float)
    if degree is None:
        degree = msh.geometry.cmaps[0].degree
    result = TransportResult(
        dict(phases), ref, degree=degree, geometry_order=msh.geometry.cmaps[0].degree
    )

    cells = _select_cells(emesh, phases)
    sub, emap, _, _ = mesh.create_submesh(msh, tdim, cells)
    if degree not in (1, 2):
        raise ValueError(f"degree: must be 1 or 2, got {degree!r}")
    V = fem.functionspace(sub, ("Lagrange", degree))
    Q = fem.functionspace(sub, ("DG", 0))
    kappa = fem.Function(Q)
    nsub = sub.topology.index_map(tdim).size_local + sub.topology.index_map(tdim).num_ghosts
    parent = emap.sub_topology_to_topology(np.arange(nsub, dtype=np.int32), False)
    ptag = np.zeros(
        msh.topology.index_map(tdim).size_local + msh.topology.index_map(tdim).num_ghosts, np.int32
    )
    ptag[emesh.cell_tags.indices] = emesh.cell_tags.values
    kappa.x.array[:nsub] = np.array([phases[int(t)] for t in ptag[parent]])
    kappa.x.scatter_forward()

    vol_local = fem.assemble_scalar(fem.form(fem.Constant(sub, 1.0) * ufl.dx(domain=sub)))
    epsilon = comm.allreduce(vol_local, op=MPI.SUM) / float(np.prod(box))

    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    length_scale = float(max(box))
    delta = fem.Constant(sub, REGULARISATION * ref / length_scale**2)

    def energy(w, z):
        return kappa * ufl.inner(ufl.grad(w), ufl.grad(z)) * ufl.dx + delta * w * z * ufl.dx

    a = energy(u, v)
    zero = fem.Constant(sub, 0.0)
    L_form = zero * v * ufl.dx
    opts = {**DEFAULT_PETSC_OPTIONS, **(petsc_options or {})}
    sub.topology.create_connectivity(tdim - 1, tdim)

    for name in directions:
        axis = AXES.get(name)
        if axis is None or axis >= tdim:
            raise ValueError(f"direction: {name!r} is not an axis of this {tdim}D mesh")
        length = box[axis]
        area = float(np.prod(box)) / length
        tol = 1e-8 * length
        f_in = mesh.locate_entities_boundary(
            sub, tdim - 1, lambda x, a=axis, t=tol: np.abs(x[a]) < t
        )
        f_out = mesh.locate_entities_boundary(
            sub, tdim - 1, lambda x, a=axis, t=tol, h=length: np.abs(x[a] - h) < t
        )
        d_in = fem.locate_dofs_topological(V, tdim - 1, f_in)
        d_out = fem.locate_dofs_topological(V, tdim - 1, f_out)
        n_in = comm.allreduce(len(d_in), op=MPI.SUM)
        n_out = comm.allreduce(len(d_out), op=MPI.SUM)
        uh = fem.Function(V, name=f"u_{name}")
        its = 0
        if n_in == 0 or n_out == 0:
            q_in = q_out = 0.0
        else:
            bcs = [fem.dirichletbc(1.0, d_in, V), fem.dirichletbc(0.0, d_out, V)]
            problem = LinearProblem(
                a,
                L_form,
                bcs=bcs,
                u=uh,
                petsc_options=opts,
                petsc_options_prefix=f"electrofem_transport_{name}_",
            )
            try:
                problem.solve()
                ksp = problem.solver
                its = ksp.getIterationNumber()
                if ksp.getConvergedReason() <= 0:
                    raise RuntimeError(
                        f"transport solve ({name}) did not converge: reason "
                        f"{ksp.getConvergedReason()} after {its} iterations"
                    )
                q_in = _reaction(energy, uh, V, d_in)
                q_out = _reaction(energy, uh, V, d_out)
                if not (math.isfinite(q_in) and math.isfinite(q_out)):
                    raise RuntimeError(f"transport solve ({name}): the flux is not finite (NaN)")
            finally:
                destroy(problem)  # collective: never left to the garbage collector
        deff = q_in * length / (area * ref * 1.0)
        perc = deff > PERCOLATION_THRESHOLD
        deff = deff if perc else 0.0
        tau = epsilon / deff if perc else math.inf
        res = DirectionResult(
            direction=name,
            epsilon=epsilon,
            relative_diffusivity=deff,
            tortuosity=tau,
            macmullin=tau / epsilon if perc and epsilon > 0 else math.inf,
            flux_in=q_in,
            flux_out=q_out,
            flux_imbalance=abs(q_in + q_out) / max(abs(q_in), 1e-300),
            percolating=bool(perc),
            iterations=int(its),
            dofs=int(V.dofmap.index_map.size_global),
        )
        result.directions[name] = res
        result.fields[name] = uh
        if callback is not None:
            callback(result, name)
    return result


def _reaction(energy, uh, V, dofs) -> float:
    """Discrete flux through the Dirichlet dofs ``dofs``: a(u, phi) with phi = 1 there."""
    from dolfinx import fem

    phi = fem.Function(V)
    phi.x.array[dofs] = 1.0  # local dofs, ghosts included
    form = energy(uh, phi)
    comm = V.mesh.comm
    return comm.allreduce(fem.assemble_scalar(fem.form(form)), op=MPI.SUM)
