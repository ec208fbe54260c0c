"""The bad inputs that used to hang ``mpirun -n 2`` now end within 60 s with status 2 and one
line printed once (the cases and the runner are those of benchmarks/bench_bad_input.py)."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location(
    "bench_bad_input", ROOT / "benchmarks" / "bench_bad_input.py"
)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

HANGS_BEFORE = ("truncated .msh (transport)", "truncated .h5 (transport)", "--c-rates -1")


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return dict(bench.cases(tmp_path_factory.mktemp("bad")))


@pytest.mark.parametrize("case", HANGS_BEFORE)
def test_no_hang_under_mpi(table, case):
    r = bench.run_case(table[case], mpi=2)
    assert r["status"] == 2, r
    assert r["seconds"] < bench.TIMEOUT_S
    assert len(r["lines"]) == 1 and r["lines"][0].startswith("electrofem: error:"), r


def test_mesh_without_sidecar_runs_on_two_ranks(table):
    r = bench.run_case(table["mesh.xdmf without mesh.json (transport)"], mpi=2)
    assert r["status"] == 0, r
