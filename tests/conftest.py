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
