import gc
import os
import tempfile
from pathlib import Path

import pytest
from mpi4py import MPI


def pytest_configure(config):
    """Under MPI, one pytest temporary root per rank: ranks sharing one race in pytest's
    clean-up of old numbered directories (seen as a warning)."""
    comm = MPI.COMM_WORLD
    if comm.size > 1 and not config.option.basetemp:
        tag = f"{os.getppid()}-rank{comm.rank}"
        config.option.basetemp = str(Path(tempfile.gettempdir()) / f"pytest-mpi-{tag}")
        config._electrofem_basetemp = config.option.basetemp


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.serial`` tests run on one rank only: under ``mpirun`` they are skipped
    (they start their own worker processes, or compare a serial run)."""
    if MPI.COMM_WORLD.size == 1:
        return
    skip = pytest.mark.skip(reason="serial test: skipped under mpirun")
    for item in items:
        if item.get_closest_marker("serial"):
            item.add_marker(skip)


def pytest_unconfigure(config):
    base = getattr(config, "_electrofem_basetemp", None)
    if base:
        MPI.COMM_WORLD.barrier()
        import shutil

        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def shared_tmp():
    """A temporary directory shared by all MPI ranks (made on rank 0)."""
    comm = MPI.COMM_WORLD
    path = tempfile.mkdtemp(prefix="electrofem-") if comm.rank == 0 else None
    path = Path(comm.bcast(path, root=0))
    yield path
    comm.barrier()
    if comm.rank == 0:
        import shutil

        shutil.rmtree(path, ignore_errors=True)


def _phase_pack(means: tuple, side: float, porosity: float, seed: int):
    """A laterally periodic cube of three solid phases (lognormal radii of these means, σ 0.3),
    as benchmarks/bench_discrete_phases.py draws them."""
    from electrofem import tags
    from electrofem.microstructure import Box, Electrode, Layer, LogNormal, Population, generate

    phases = (tags.ACTIVE, tags.SECOND, tags.BINDER)
    pops = tuple(
        Population(LogNormal(m, 0.3), phase=p, volume_fraction=1 / 3)
        for p, m in zip(phases, means, strict=True)
    )
    box = Box((side,) * 3, periodic=True)
    return generate(Electrode(box, (Layer(1.0, porosity, pops),), seed=seed))


@pytest.fixture(scope="session")
def poor_neck_pack():
    """benchmarks/bench_discrete_phases.py's seed 11 (three solid phases, 39 particles, a
    14.2 µm cube) and its mesh size: on the discrete route its first mesh has a cell of quality
    0.0975, below ``MeshOptions.quality_warn``, so the route mends it
    (``MeshOptions.mend_rounds``). Returns ``(particles, size)``."""
    means = (1.6928553041537995, 2.2489167936601726, 2.402247536435036)
    return _phase_pack(means, 14.172134050231668, 0.48923039099506926, 11), 1.1569266137762217


@pytest.fixture(scope="session")
def poor_occ_pack():
    """bench_discrete_phases.py's seed 1 (three phases, 100 particles, a 19.7 µm cube) and its
    mesh size: on the OCC route its first mesh has a cell of quality 0.094."""
    means = (2.267732437050385, 2.925695544488903, 1.7162394190794505)
    return _phase_pack(means, 19.69189668282346, 0.5105380887613631, 1), 0.8539958693835454


@pytest.fixture
def session():
    """An initialised gmsh (terminal output off) for one test; finalized after it."""
    import gmsh

    gmsh.initialize()
    gmsh.option.setNumber("General.Terminal", 0)
    yield
    gmsh.finalize()


@pytest.fixture(autouse=True, scope="session")
def _no_automatic_gc_under_mpi():
    """Under MPI, free garbage only at collective points.

    Destroying a parallel PETSc object is collective; the cyclic garbage collector runs at
    allocation-dependent moments that differ between ranks, so a test that leaves a solver to
    it can deadlock a later test. The solvers free their own objects (``close()``); this makes
    the suite robust to tests that do not.
    """
    if MPI.COMM_WORLD.size == 1:
        yield
        return
    gc.disable()
    yield
    gc.enable()


@pytest.fixture(autouse=True)
def _collect_garbage_together():
    yield
    if MPI.COMM_WORLD.size > 1:
        MPI.COMM_WORLD.barrier()
        gc.collect()
        MPI.COMM_WORLD.barrier()


def cli_error_lines(capsys) -> list[str]:
    """The ``electrofem`` lines a command printed to stderr: under MPI only rank 0 prints
    (checked here), and its lines are returned on every rank."""
    comm = MPI.COMM_WORLD
    err = [x for x in capsys.readouterr().err.strip().splitlines() if x.startswith("electrofem")]
    if comm.rank != 0:
        assert err == [], f"rank {comm.rank} printed {err}"
    return comm.bcast(err, root=0)
