"""Cheap ``python:`` jobs for tests/test_study.py (importable from the tests folder, also in
spawned workers: they inherit the parent's sys.path)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def counted(config: dict, folder: Path) -> dict:
    """Log a call (pid, x) to ``config["log"]``; fail for ``x == config["fail_x"]``; kill this
    process (SIGKILL, as a crash or an out-of-memory kill would) for ``x == config["kill_x"]``
    while the file ``config["kill_flag"]`` exists (it is removed first: one kill)."""
    x = config["x"]
    with open(config["log"], "a") as f:
        f.write(f"{os.getpid()} {x}\n")
    time.sleep(config.get("sleep_s", 0.0))
    if x == config.get("fail_x"):
        raise RuntimeError(f"boom at x={x}")
    flag = Path(config.get("kill_flag", "/nonexistent"))
    if x == config.get("kill_x") and flag.exists():
        flag.unlink()
        os.kill(os.getpid(), signal.SIGKILL)
    return {"f": 2.0 * x, "nested": {"label": f"x{x}", "ok": True, "skip": [1, 2]}}


def calls(log: Path) -> list[tuple[int, float]]:
    """The (pid, x) of every logged call."""
    if not Path(log).is_file():
        return []
    return [
        (int(p), float(x))
        for p, x in (ln.split() for ln in Path(log).read_text().split("\n") if ln)
    ]


def bowl(config: dict, folder: Path) -> dict:
    """``f = 1 - (x - 0.3)²``, plus 0.5 for ``shape = "b"``: a categorical and a continuous
    input (the best: shape b, x = 0.3)."""
    return {"f": 1.0 - (config["x"] - 0.3) ** 2 + (0.5 if config["shape"] == "b" else 0.0)}
