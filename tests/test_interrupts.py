"""Ctrl-C (SIGINT) and SIGTERM end a run with one line, an intact checkpoint, status
"interrupted" and exit status 130 / 143; ``--restart`` continues it. Serial and under
``mpirun -n 2`` (each test launches its own processes)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]

CONFIG = """
seed = 1
preset = "L-Dry-S"
ratio = "5:5"
porosity = 0.40
[box]
width = 30.0
height = 40.0
[contacts]
mode = "gap"
[mesh]
size = 2.0
[discharge]
c_rates = [2.0]
max_steps_per_phase = 2000
cbd_conductivity_S_m = 1.0
checkpoint_every_steps = 3
"""


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _start(cmd):
    return subprocess.Popen(cmd, env=_env(), stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, proc, timeout=240.0):
    t0 = time.monotonic()
    while not path.is_file():
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() - t0 < timeout, f"{path} never appeared"
        time.sleep(0.2)


@pytest.mark.parametrize(
    "sig, code, mpi", [(signal.SIGINT, 130, 1), (signal.SIGTERM, 143, 1), (signal.SIGTERM, 143, 2)]
)
def test_discharge_interrupt_and_restart(tmp_path, sig, code, mpi):
    cfg = tmp_path / "cell.toml"
    cfg.write_text(CONFIG)
    out = tmp_path / "out"
    pre = [str(BIN / "mpirun"), "-n", str(mpi)] if mpi > 1 else []
    cmd = pre + [sys.executable, "-m", "electrofem.cli", "discharge", str(cfg), "-o", str(out)]
    proc = _start(cmd + ["-q"])
    _wait_for(out / "checkpoint" / "state.json", proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    lines = [x for x in err.splitlines() if x.startswith("electrofem")]
    assert len(lines) == 1 and "interrupted at step" in lines[0], err  # once, not per rank
    assert "resume with --restart" in lines[0]
    m = json.loads((out / "discharge.json").read_text())
    assert m["status"] == "interrupted"
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["phase"] == "discharge" and state["records"]
    # a second run into the same folder is refused, --restart continues
    again = subprocess.run(cmd + ["-q"], env=_env(), capture_output=True, text=True)
    assert again.returncode == 2 and "--overwrite" in again.stderr
    res = subprocess.run(
        cmd + ["--restart", "--max-steps", str(len(state["records"]) + 2), "-q"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert res.returncode == 0, res.stderr
    m = json.loads((out / "discharge.json").read_text())
    assert m["status"] == "done" and m["restarts"] == 1
    assert m["rates"]["2"]["discharge"]["stop_reason"] == "max_steps"
