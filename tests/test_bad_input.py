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


RANK_LOCAL = """
import sys
from mpi4py import MPI
import electrofem.cli as cli

def boom(args):
    if MPI.COMM_WORLD.rank == 1:
        raise ValueError("only rank 1 fails")
    MPI.COMM_WORLD.barrier()  # rank 0 waits in a collective: it would hang without the abort
    return 0

parser = cli.build_parser
def build():
    import argparse

    ap = parser()
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    sub.choices["info"].set_defaults(func=boom)
    return ap
cli.build_parser = build
sys.exit(cli.main(["info", "meshes/ls_2d.xdmf"]))
"""


def test_an_error_on_one_rank_aborts_instead_of_hanging(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "rank_local.py"
    script.write_text(RANK_LOCAL)
    p = subprocess.run(
        [str(bench.BIN / "mpirun"), "-n", "2", sys.executable, str(script)],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env=bench._env(),
    )  # fmt: skip
    assert p.returncode != 0
    lines = [x for x in p.stderr.splitlines() if x.startswith("electrofem")]
    assert lines == ["electrofem: error: only rank 1 fails"], p.stderr
