"""Every fenced ```python and ```bash block of README.md runs as written (issue 12).

The blocks run in one fresh temporary folder that links the repository's ``examples/`` and
``meshes/``, so the README's relative paths work. The Python blocks share one interpreter
(``sys.executable``; a later block may use an earlier one's names) and run together, at the
place of the first one; each shell block runs on its own with ``bash -euo pipefail``. Both see
``PYTHONPATH`` = the repository and the interpreter's folder first on ``PATH``, so
``electrofem`` and ``mpirun`` are the environment's and run the code under test.

Blocks marked ```text (synopses) or ```console (set-up, hour-long studies) are not run; a block
without an info string fails the test, so that nothing is left out by accident. ```toml blocks
are parsed with :func:`electrofem.config.parse`. A failing block is named by its README line
and first line, with its output.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LINKED = ("examples", "meshes")
RUN = ("python", "bash")
NOT_RUN = ("text", "console", "toml")
TIMEOUT_S = 600  # per block: a hang fails the test instead of the whole suite
OUTPUT_CHARS = 12000  # tail of the output shown for a failing block

_FENCE = re.compile(r"^(`{3,}|~{3,})(.*)$")


def readme_blocks(text: str) -> list[tuple[str, int, str]]:
    """``(info, line, code)`` of every fenced block; ``line`` is the 1-based README line of
    the code's first line."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info = m.group(1), m.group(2).strip().split(" ")[0]
        j = i + 1
        while j < len(lines) and not (
            lines[j].startswith(fence[0] * len(fence)) and not lines[j].strip(fence[0]).strip()
        ):
            j += 1
        if j == len(lines):
            raise ValueError(f"README.md:{i + 1}: unclosed code fence")
        blocks.append((info, i + 2, "\n".join(lines[i + 1 : j]) + "\n"))
        i = j + 1
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


def _first_line(code: str) -> str:
    return next((ln.strip() for ln in code.splitlines() if ln.strip()), "")


def _cases() -> list:
    """One case per bash block, and one for all Python blocks (at the first one's place)."""
    cases, python_added = [], False
    for info, line, code in BLOCKS:
        if info == "bash":
            cases.append(pytest.param("bash", [(line, code)], id=f"bash-L{line}"))
        elif info == "python" and not python_added:
            py = [(ln, c) for i, ln, c in BLOCKS if i == "python"]
            cases.append(pytest.param("python", py, id=f"python-L{line}"))
            python_added = True
    return cases


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A fresh folder with links to the repository's examples/ and meshes/."""
    path = tmp_path_factory.mktemp("readme")
    for name in LINKED:
        (path / name).symlink_to(ROOT / name, target_is_directory=True)
    return path


def _env() -> dict:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "HYDRA_", "MPIR_"))
    }  # this process may itself be an MPI singleton: its launcher state is not the child's
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + old if old else "")
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["MPLBACKEND"] = "Agg"
    return env


def _run(cmd: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``cmd`` in its own process group (mpirun's ranks are killed with it on a
    timeout); return the exit status and the merged stdout and stderr."""
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return -1, f"{out}\n[timed out after {TIMEOUT_S} s]"
    return proc.returncode, out


# Runs the Python blocks in one namespace; each is compiled as "README.md" at its own line
# numbers, so a traceback points into the README. A marker line names the block started.
_DRIVER = """
import json, sys
ns = {"__name__": "__main__"}
for line, code in json.load(open(sys.argv[1], encoding="utf-8")):
    print(f"@@readme-block {line}", flush=True)
    exec(compile("\\n" * (line - 1) + code, "README.md", "exec"), ns)
"""


def _failure(line: int, code: str, status: int, out: str) -> str:
    tail = out if len(out) <= OUTPUT_CHARS else "...\n" + out[-OUTPUT_CHARS:]
    return (
        f"README.md:{line}: the block starting `{_first_line(code)}` failed "
        f"(exit status {status}). Output:\n{tail}"
    )


def test_every_block_has_an_info_string():
    """```python and ```bash are run, ```text, ```console and ```toml are not; a block
    without an info string (or another one) would silently escape this test."""
    bad = [(line - 1, info) for info, line, _ in BLOCKS if info not in RUN + NOT_RUN]
    assert not bad, f"README.md code fences (line, info) with no known info string: {bad}"
    assert any(info == "python" for info, _, _ in BLOCKS)
    assert any(info == "bash" for info, _, _ in BLOCKS)


def test_toml_blocks_parse():
    from electrofem.config import ConfigError, parse

    for info, line, code in BLOCKS:
        if info == "toml":
            try:
                parse(tomllib.loads(code), ROOT / "examples")
            except (tomllib.TOMLDecodeError, ConfigError) as err:
                pytest.fail(f"README.md:{line}: the ```toml block does not parse: {err}")


@pytest.mark.slow
@pytest.mark.parametrize("kind, blocks", _cases())
def test_readme_block_runs(workdir, kind, blocks):
    from mpi4py import MPI

    if MPI.COMM_WORLD.size > 1:
        pytest.skip("runs serially; the README's own mpirun commands start their ranks")
    if kind == "bash":
        [(line, code)] = blocks
        status, out = _run(["bash", "-euo", "pipefail", "-c", code], workdir)
        if status != 0:
            pytest.fail(_failure(line, code, status, out), pytrace=False)
        return
    script = workdir / "_readme_python_blocks.json"
    script.write_text(json.dumps(blocks), encoding="utf-8")
    status, out = _run([sys.executable, "-c", _DRIVER, str(script)], workdir)
    if status != 0:
        started = [int(m) for m in re.findall(r"^@@readme-block (\d+)$", out, re.M)]
        line = started[-1] if started else blocks[0][0]
        code = dict(blocks)[line]
        pytest.fail(_failure(line, code, status, out), pytrace=False)
