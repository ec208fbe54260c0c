"""``electrofem study`` (issue 15): study files, stable case folders, resume after a kill,
failure isolation, concurrent database writes (2 workers × 1 rank), the GP surrogate on an
analytic function, and a real (tiny) transport study through the command line."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cli_error_lines
from mpi4py import MPI
from study_jobs import calls

from electrofem.cli import main
from electrofem.studies import load_results
from electrofem.studies.cases import RESULT_FILE, flatten_metrics
from electrofem.studies.runner import run_study
from electrofem.studies.spec import StudyError, case_id, parse_study

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
COUNTED = "python:study_jobs:counted"

TINY_BASE = {
    "seed": 1,
    "preset": "L-S",
    "box": {"width": 26.0, "height": 30.0},
    "contacts": {"mode": "gap"},
    "mesh": {"size": 3.0},
    "transport": {"directions": ["y"]},
}


def _spec(tmp: Path, xs, **base):
    return parse_study(
        {"job": COUNTED, "base": {"log": str(tmp / "calls.log"), **base}, "grid": {"x": xs}},
        tmp,
    )


def test_case_id_is_stable_and_order_free(tmp_path):
    a = {"porosity": 0.4, "mesh.size": 2.0, "preset": "L-S"}
    b = {"preset": "L-S", "mesh.size": 2.0, "porosity": 0.4}
    assert case_id(a) == case_id(b) and len(case_id(a)) == 12
    assert case_id(a) != case_id({**a, "porosity": 0.41})
    # a grid and the same cases written out name the same folders, whatever the key order
    grid = parse_study({"job": "transport", "base": TINY_BASE, "grid": {"porosity": [0.4, 0.5],
                        "mesh": {"size": [2.0]}}}, tmp_path)  # fmt: skip
    cases = parse_study(
        {"job": "transport", "base": TINY_BASE, "cases": [
            {"mesh.size": 2.0, "porosity": 0.5}, {"mesh": {"size": 2.0}, "porosity": 0.4}]},
        tmp_path,
    )  # fmt: skip
    assert sorted(map(case_id, grid.cases)) == sorted(map(case_id, cases.cases))


def test_bad_keys_fail_up_front_naming_the_key(tmp_path):
    spec = parse_study(
        {"job": "transport", "base": TINY_BASE, "grid": {"mesh.sise": [1.0, 2.0]}}, tmp_path
    )
    with pytest.raises(StudyError, match=r"mesh\.sise.*\(and 1 more cases\)") as err:
        spec.validate()
    assert str(err.value).count("mesh.sise: unknown key") == 1
    with pytest.raises(StudyError, match="case 1 .*porosity: must be a number"):
        parse_study(
            {"job": "transport", "base": TINY_BASE, "grid": {"porosity": [0.4, "x"]}}, tmp_path
        ).validate()
    for data, match in [
        ({"job": "transport", "base": TINY_BASE, "grids": {}}, "grids: unknown study key"),
        ({"job": "solve", "base": TINY_BASE, "grid": {"seed": [1]}}, "job: unknown job 'solve'"),
        ({"job": "transport", "base": TINY_BASE, "grid": {"seed": 1}}, "grid.seed: must be a"),
        ({"job": ["cell", "transport"], "base": TINY_BASE, "grid": {"seed": [1]}}, "job: cell"),
        ({"job": "transport", "base": TINY_BASE}, "grid: give a"),
    ]:
        with pytest.raises(StudyError, match=match):
            parse_study(data, tmp_path)


@pytest.mark.mpi
def test_bad_study_via_the_cli_is_one_line(shared_tmp, capsys):
    study = shared_tmp / "bad.toml"
    if MPI.COMM_WORLD.rank == 0:
        study.write_text('job = "transport"\nbase = "nope.toml"\n[grid]\nseed = [1]\n')
    MPI.COMM_WORLD.barrier()
    assert main(["study", str(study), "-o", str(shared_tmp / "out"), "-q"]) == 2
    lines = cli_error_lines(capsys)
    assert len(lines) == 1 and "base: no such config file" in lines[0]


@pytest.mark.serial
def test_failure_is_recorded_and_the_study_goes_on(tmp_path):
    spec = _spec(tmp_path, [1, 2, 3], fail_x=2)
    recs = run_study(spec, tmp_path / "out")
    assert [r["status"] for r in recs] == ["done", "failed", "done"]
    bad = json.loads((tmp_path / "out/cases" / recs[1]["case_id"] / RESULT_FILE).read_text())
    assert bad["error"] == "RuntimeError: boom at x=2"
    assert any("boom" in line for line in bad["traceback"])
    rows = {r["x"]: r for r in load_results(tmp_path / "out")}
    assert rows[2]["status"] == "failed" and "boom" in rows[2]["error"] and "f" not in rows[2]
    assert rows[3]["f"] == 6.0 and rows[3]["nested.label"] == "x3" and rows[3]["nested.ok"] == 1
    assert "nested.skip" not in rows[3]
    # resume: nothing reruns; with retry_failed only the failed case does
    run_study(spec, tmp_path / "out")
    assert [x for _, x in calls(tmp_path / "calls.log")] == [1, 2, 3]
    run_study(spec, tmp_path / "out", retry_failed=True)
    assert [x for _, x in calls(tmp_path / "calls.log")] == [1, 2, 3, 2]


@pytest.mark.serial
def test_resume_after_a_kill_reruns_only_unfinished_cases(tmp_path):
    """The study process is SIGKILLed in its 3rd case; run again, cases 1-2 are not rerun."""
    flag = tmp_path / "kill-once"
    flag.touch()
    study = tmp_path / "s.toml"
    study.write_text(
        f'job = "{COUNTED}"\n[base]\nlog = "{tmp_path / "calls.log"}"\nkill_x = 3\n'
        f'kill_flag = "{flag}"\n[grid]\nx = [1, 2, 3, 4]\n'
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)])}
    cmd = [sys.executable, "-m", "electrofem.cli", "study", str(study), "-o", str(tmp_path / "o")]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == -9, first.stderr
    assert [x for _, x in calls(tmp_path / "calls.log")] == [1, 2, 3]
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "4 cases: 4 done, 0 failed" in second.stdout
    assert [x for _, x in calls(tmp_path / "calls.log")] == [1, 2, 3, 3, 4]
    assert sorted(r["x"] for r in load_results(tmp_path / "o")) == [1, 2, 3, 4]


@pytest.mark.serial
def test_two_workers_write_the_database_concurrently(tmp_path):
    spec = _spec(tmp_path, [1, 2, 3, 4, 5, 6], sleep_s=0.3)
    recs = run_study(spec, tmp_path / "out", workers=2)
    assert all(r["status"] == "done" for r in recs)
    pids = {p for p, _ in calls(tmp_path / "calls.log")}
    assert len(pids) == 2 and os.getpid() not in pids  # two worker processes
    con = sqlite3.connect(tmp_path / "out/study.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert sorted(r[0] for r in con.execute('SELECT "f" FROM cases')) == [2, 4, 6, 8, 10, 12]


@pytest.mark.serial
def test_surrogate_finds_the_analytic_optimum(tmp_path):
    """peak2d (max 1 at (0.3, -0.2)) from a 3 × 3 grid: 8 suggest -> run -> refit rounds with
    seed 0 find a case within 0.05 of the optimum (f > 0.98); the same seed gives the same
    suggestion."""
    from electrofem.studies import analytic
    from electrofem.studies.runner import load_study_dir
    from electrofem.studies.spec import load_study
    from electrofem.studies.surrogate import fit_surrogate, iterate, suggest

    out = tmp_path / "peak"
    run_study(load_study(ROOT / "examples/study_peak2d.toml"), out)
    spec, rows = load_study_dir(out), load_results(out)
    fits = [fit_surrogate(spec, rows, "f", seed=0) for _ in range(2)]
    assert suggest(fits[0], seed=9) == suggest(fits[1], seed=9)
    assert fits[0].params == ["x", "y"] and fits[0].cv_rmse > 0
    rounds = iterate(out, "f", 8, seed=0)
    best = max(load_results(out), key=lambda r: r["f"])
    opt = analytic.PEAK2D_OPTIMUM
    assert ((best["x"] - opt["x"]) ** 2 + (best["y"] - opt["y"]) ** 2) ** 0.5 < 0.05
    assert best["f"] > 0.98 and rounds[-1].best_value == best["f"]
    assert len(json.loads((out / "suggestions.json").read_text())) == 8
    assert len(load_results(out)) == 9 + 8


@pytest.mark.mpi
def test_tiny_transport_study_through_the_cli(shared_tmp, capsys):
    """Serially: 2 workers × 1 rank; under ``mpirun -n 2``: --workers 1, each case on both
    ranks (and --workers 2 is refused with the command that gives it)."""
    comm = MPI.COMM_WORLD
    study = shared_tmp / "tiny.toml"
    if comm.rank == 0:
        study.write_text(
            'name = "tiny"\njob = "transport"\n[grid]\nporosity = [0.45, 0.55]\n'
            '[report]\nmetrics = ["transport.directions.y.tortuosity"]\n'
        )
        with open(study, "a") as f:  # the base as an inline table
            f.write(
                "[base]\nseed = 1\npreset = 'L-S'\n[base.box]\nwidth = 26.0\nheight = 30.0\n"
                "[base.contacts]\nmode = 'gap'\n[base.mesh]\nsize = 3.0\n"
                "[base.transport]\ndirections = ['y']\n"
            )
    comm.barrier()
    out = shared_tmp / "out"
    if comm.size > 1:
        assert main(["study", str(study), "-o", str(out), "--workers", "2", "-q"]) == 2
        assert "mpi4py.futures" in cli_error_lines(capsys)[0]
    workers = "2" if comm.size == 1 else "1"
    assert main(["study", str(study), "-o", str(out), "--workers", workers, "-q"]) == 0
    assert main(["study", "--report", str(out)]) == 0
    text = capsys.readouterr().out
    if comm.rank == 0:
        assert "2 cases: 2 done, 0 failed" in text and "tortuosity" in text
        rows = load_results(out)
        assert [r["status"] for r in rows] == ["done", "done"]
        assert all(1.0 < r["transport.directions.y.tortuosity"] < 5.0 for r in rows)
        assert all(r["transport.mpi_ranks"] == comm.size for r in rows)
        assert (out / "results.csv").is_file() and (out / "results.png").is_file()
        header = (out / "results.csv").read_text().splitlines()[0]
        assert header.startswith("case_id,status,error,wall_time_s,version,folder,porosity")
    comm.barrier()


def test_flatten_metrics_labels_c_rates():
    m = {"rate_capability": [{"c_rate": 0.5, "capacity_mAh_g": 150.0}], "parameters": {"a": 1},
         "t": float("inf"), "none": None, "d": {"parameters": 2}}  # fmt: skip
    assert flatten_metrics(m, "discharge") == {
        "discharge.rate_capability.0.5C.capacity_mAh_g": 150.0,
        "discharge.t": "inf",
        "discharge.d.parameters": 2,
    }


@pytest.mark.serial
def test_job_chain_resumes_at_the_job_it_was_in(tmp_path):
    """transport -> discharge on one mesh; with its result.json gone (a kill after the jobs),
    the case is rerun but its finished jobs are read back, not run again."""
    base = {**TINY_BASE, "box": {"width": 30.0, "height": 30.0},
            "discharge": {"c_rates": [1.0], "max_steps_per_phase": 2,
                          "cbd_conductivity_S_m": 1.0}}  # fmt: skip
    spec = parse_study(
        {"job": ["discharge", "transport"], "base": base, "cases": [{"seed": 2}]}, tmp_path
    )
    assert spec.jobs == ("transport", "discharge")  # the chain's order is fixed
    [rec] = run_study(spec, tmp_path / "out")
    assert rec["status"] == "done", rec["error"]
    m = rec["metrics"]
    assert m["discharge.rate_capability.1C.stop_reason"] == "max_steps"
    assert m["transport.directions.y.tortuosity"] > 1 and "generate.porosity" in m
    folder = Path(rec["folder"])
    stamps = {p: p.stat().st_mtime_ns for p in folder.glob("*/*.json")}
    (folder / RESULT_FILE).unlink()
    [again] = run_study(spec, tmp_path / "out")
    assert again["metrics"] == m
    assert stamps == {p: p.stat().st_mtime_ns for p in folder.glob("*/*.json")}


@pytest.mark.serial
def test_suggest_searches_the_categories_and_skips_finished_cases(tmp_path):
    from electrofem.studies.surrogate import fit_surrogate, suggest

    spec = parse_study(
        {"job": "python:study_jobs:bowl", "grid": {"x": [0.0, 0.5, 1.0], "shape": ["a", "b"]}},
        tmp_path,
    )
    run_study(spec, tmp_path / "out")
    fit = fit_surrogate(spec, load_results(tmp_path / "out"), "f", seed=0)
    assert fit.params == ["x"] and fit.levels == {"shape": ['"a"', '"b"']}
    params, pred = suggest(fit, seed=0)
    assert params["shape"] == "b" and 0.0 <= params["x"] <= 1.0
    assert params["x"] not in (0.0, 0.5, 1.0) and pred["ei"] > 0
    assert main(["study", "--suggest", str(tmp_path / "out"), "--metric", "f"]) == 0


def test_the_paper_studies_are_study_files():
    """The wetting regime map (24 cases) and paper 002's rate study validate as study files
    (every case's config parses); they take hours, so they are not run here (the paper's rate,
    wetting and coupled studies: tests/test_paper_studies.py)."""
    from electrofem.studies.spec import load_study

    wet = load_study(ROOT / "examples/study_wetting_map.toml")
    wet.validate()
    assert len(wet.cases) == 24 and wet.jobs == ("infiltrate",)
    cfg = wet.check_case(wet.cases[11])  # the fast inlet speed first: 1e-3 m/s, 120°, S-L
    assert cfg.infiltration.contact_angle_deg == 120.0 and cfg.infiltration.inlet_speed_m_s == 1e-3
    rate = load_study(ROOT / "examples/study_paper_rate.toml")
    rate.validate()
    assert len(rate.cases) == 18 and rate.check_case(rate.cases[9]).box.size[1] == 102.924


@pytest.mark.serial
def test_deadline_stops_submitting_and_the_next_run_resumes(tmp_path, capsys, caplog):
    """No case starts after --deadline seconds; the running ones finish, the command exits 0
    saying how many are left, and the same command then runs only those."""
    spec = _spec(tmp_path, [1, 2, 3, 4], sleep_s=1.0)
    recs = run_study(spec, tmp_path / "one", deadline_s=0.5)  # in this process
    assert [r and r["status"] for r in recs] == ["done", None, None, None]
    study = tmp_path / "s.toml"
    study.write_text(
        f'job = "{COUNTED}"\n[base]\nlog = "{tmp_path / "calls2.log"}"\nsleep_s = 1.0\n'
        "[grid]\nx = [1, 2, 3, 4, 5]\n"
    )
    cmd = ["study", str(study), "-o", str(tmp_path / "two"), "--workers", "2"]
    with caplog.at_level("INFO", logger="electrofem"):
        assert main([*cmd, "--deadline", "0.5"]) == 0  # two cases in flight, then stop
    assert "5 cases: 2 done, 0 failed, 3 not started" in capsys.readouterr().out
    assert "3 case(s) not started" in caplog.text and "case 2/5 " in caplog.text
    assert len(calls(tmp_path / "calls2.log")) == 2
    assert main(cmd) == 0
    assert "5 cases: 5 done, 0 failed -> " in capsys.readouterr().out
    assert sorted(x for _, x in calls(tmp_path / "calls2.log")) == [1, 2, 3, 4, 5]
    assert main([*cmd, "--deadline", "-1"]) == 2
