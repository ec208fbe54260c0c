"""The bad-input table: every bad input of project issue 12 through the command line, serially
and under ``mpirun -n 2``, with the exit status, the wall time and the message.

    python benchmarks/bench_bad_input.py            # writes benchmarks/results/bad_input.json
                                                    # and prints the markdown table

Every case must end within 60 s (a hang is killed and reported as such) with exit status 2 and
one line ``electrofem: error: <field>: ...`` printed once (not once per rank) — or, for the
inputs that are not errors (a mesh without its sidecar), run and say what is missing.
``tests/test_bad_input.py`` runs the MPI-hang cases with the same functions.
"""

# ruff: noqa: E501  (the case table reads best one case a line)
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TIMEOUT_S = 60.0

SMALL = """seed = 1
preset = "L-Dry-S"
porosity = 0.40
[box]
width = 30.0
height = 40.0
[contacts]
mode = "gap"
[mesh]
size = 2.0
"""

HUGE = """[box]
width = 10000.0
depth = 10000.0
height = 10000.0
[[layers]]
porosity = 0.4
[[layers.particles]]
diameter = 1.0
"""


def _files(work: Path) -> dict[str, Path]:
    """The inputs the cases use, made once in ``work``."""
    meshes = ROOT / "meshes"
    f = {}
    msh = work / "trunc.msh"
    src = work / "gen" / "mesh.msh"
    if not src.is_file():
        subprocess.run(
            [sys.executable, "-m", "electrofem.cli", "generate", str(work / "small.toml"),
             "-o", str(work / "gen"), "-q"],
            check=True, env=_env(),
        )  # fmt: skip
    data = src.read_bytes()
    msh.write_bytes(data[: len(data) // 2])
    f["trunc.msh"] = msh
    nos = work / "nosidecar"
    nos.mkdir(exist_ok=True)
    for ext in ("xdmf", "h5"):  # not ls_2d.json
        shutil.copy(meshes / f"ls_2d.{ext}", nos / f"ls_2d.{ext}")
    f["nosidecar"] = nos / "ls_2d.xdmf"
    th = work / "trunch5"
    th.mkdir(exist_ok=True)
    shutil.copy(meshes / "ls_2d.xdmf", th / "mesh.xdmf")
    shutil.copy(meshes / "ls_2d.json", th / "mesh.json")
    h5 = (meshes / "ls_2d.h5").read_bytes()
    (th / "ls_2d.h5").write_bytes(h5[: len(h5) // 3])
    f["trunc.h5"] = th / "mesh.xdmf"
    out = work / "far.csv"
    out.write_text("x,y,r,phase\n10,10,4,active\n250,10,4,active\n")
    f["far.csv"] = out
    big = work / "big.csv"
    big.write_text("x,y,r,phase\n10,10,400,active\n")
    f["big.csv"] = big
    return f


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def cases(work: Path) -> list[tuple[str, list[str]]]:
    """``(what, argv)`` of every case; ``work`` holds the inputs and outputs."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "small.toml").write_text(SMALL)
    (work / "typo.toml").write_text(SMALL.replace("width", "widht"))
    (work / "broken.toml").write_text("seed = \n[box\n")
    (work / "nan.toml").write_text(SMALL.replace("porosity = 0.40", "porosity = nan"))
    (work / "unreach.toml").write_text(SMALL.replace("porosity = 0.40", "porosity = 0.05"))
    (work / "huge.toml").write_text(HUGE)
    (work / "cell.toml").write_text(SMALL + "[discharge]\ncbd_conductivity_S_m = 1.0\n")
    f = _files(work)
    o = str(work / "out")
    m = str(ROOT / "meshes" / "ls_2d.xdmf")
    return [
        ("truncated .msh (transport)", ["transport", str(f["trunc.msh"]), "-o", o + "1"]),
        ("mesh.xdmf without mesh.json (transport)", ["transport", str(f["nosidecar"]), "-o", o + "2", "--direction", "y"]),
        ("truncated .h5 (transport)", ["transport", str(f["trunc.h5"]), "-o", o + "3"]),
        ("CSV particle outside the box", ["generate", str(work / "small.toml"), "--particles", str(f["far.csv"]), "-o", o + "4"]),
        ("CSV particle larger than the box", ["generate", str(work / "small.toml"), "--particles", str(f["big.csv"]), "-o", o + "5"]),
        ("10 000 µm box of 1 µm particles", ["generate", str(work / "huge.toml"), "-o", o + "6"]),
        ("generate into an earlier run's folder", ["generate", str(work / "small.toml"), "-o", str(work / "gen")]),
        ("unknown key (typo)", ["generate", str(work / "typo.toml"), "-o", o + "7"]),
        ("invalid TOML", ["generate", str(work / "broken.toml"), "-o", o + "8"]),
        ("porosity = nan", ["generate", str(work / "nan.toml"), "-o", o + "9"]),
        ("unreachable porosity", ["generate", str(work / "unreach.toml"), "-o", o + "10"]),
        ("--slabs 0", ["transport", m, "-o", o + "11", "--slabs", "0"]),
        ("--direction z on a 2D mesh", ["transport", m, "-o", o + "12", "--direction", "z"]),
        ("--c-rates -1", ["discharge", m, "-o", o + "13", "--c-rates=-1"]),
        ("--restart without a checkpoint", ["discharge", m, "-o", o + "14", "--restart"]),
        ("diverging solve (1e5 C)", ["discharge", str(work / "cell.toml"), "-o", o + "15", "--c-rates", "1e5"]),
        ("convert to an unknown extension", ["convert", m, o + ".xyz"]),
        ("convert a missing file", ["convert", str(work / "none.msh"), o + ".vtu"]),
    ]  # fmt: skip


def run_case(argv: list[str], mpi: int) -> dict:
    """Exit status, wall time and the ``electrofem`` lines of stderr of one run."""
    pre = [str(BIN / "mpirun"), "-n", str(mpi)] if mpi > 1 else []
    cmd = pre + [sys.executable, "-m", "electrofem.cli", *argv, "-q"]
    if argv[0] == "convert":
        cmd = cmd[:-1]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, env=_env())
        code, err = p.returncode, p.stderr
    except subprocess.TimeoutExpired as e:
        code, err = (
            "hang (killed)",
            (e.stderr or b"").decode() if isinstance(e.stderr, bytes) else "",
        )
    lines = [x for x in err.splitlines() if x.startswith("electrofem")]
    return {"status": code, "seconds": round(time.perf_counter() - t0, 1), "lines": lines}


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="electrofem-bad-"))
    rows = []
    for what, argv in cases(work):
        row = {
            "case": what,
            "command": "electrofem " + " ".join(a.replace(str(work), "W") for a in argv),
        }
        for mpi in (1, 2):
            r = run_case(argv, mpi)
            r["lines"] = [x.replace(str(work), "W") for x in r["lines"]]
            row[f"n{mpi}"] = r
            # the folder-reuse and the restart cases leave outputs: start each run afresh
            for d in work.glob("out*"):
                shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink()
        rows.append(row)
        print(f"{what}: {row['n1']['status']} / {row['n2']['status']}", flush=True)
    out = ROOT / "benchmarks" / "results" / "bad_input.json"
    out.write_text(json.dumps(rows, indent=2, ensure_ascii=False))
    print("\n| case | serial | mpirun -n 2 | message (serial) |\n|---|---|---|---|")
    for r in rows:
        msg = " / ".join(r["n1"]["lines"]) or "(runs: exit 0)"
        n1 = f"{r['n1']['status']} in {r['n1']['seconds']} s"
        n2 = f"{r['n2']['status']} in {r['n2']['seconds']} s, {len(r['n2']['lines'])} line(s)"
        print(f"| {r['case']} | {n1} | {n2} | `{msg}` |")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
