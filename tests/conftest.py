import tempfile
from pathlib import Path

import pytest
from mpi4py import MPI


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
