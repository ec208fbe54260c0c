"""Paper 002's studies as study files (issue 15): every case of ``examples/study_paper_rate.toml``,
``study_paper_wetting.toml`` and ``study_paper_coupled.toml`` parses to the very config the
earlier modules (``electrofem.studies.rate``, ``wetting``, ``coupled``, since removed) ran, so
the tables of BENCHMARKS.md that those modules produced are what the study files reproduce.

The earlier modules' configs are pinned in ``tests/data/paper_study_configs.json`` (written from
those modules): per study a common record (a Config's dataclasses as a flat
``{dotted field: value}`` dict, without the raw TOML ``source`` it was parsed from) and, per
case, the fields that differ from it. No solving here."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from electrofem.studies.spec import load_study

ROOT = Path(__file__).resolve().parents[1]
PINNED = Path(__file__).resolve().parent / "data" / "paper_study_configs.json"
MISSING = "<missing>"


def config_record(cfg) -> dict:
    """A Config as a flat JSON-able ``{dotted field: value}`` dict (without ``source``)."""
    data = json.loads(json.dumps(dataclasses.asdict(cfg), default=str))
    data.pop("source")

    def flat(d, prefix=""):
        out = {}
        for k, v in d.items():
            name = f"{prefix}.{k}" if prefix else str(k)
            out.update(flat(v, name) if isinstance(v, dict) and v else {name: v})
        return out

    return flat(data)


def pin(records: dict) -> dict:
    """``{case: record}`` -> ``{"common": first record, "cases": {case: its differences}}``."""
    common = next(iter(records.values()))
    cases = {}
    for key, rec in records.items():
        delta = {k: v for k, v in rec.items() if common.get(k, MISSING) != v}
        delta.update({k: MISSING for k in common if k not in rec})
        cases[key] = delta
    return {"common": common, "cases": cases}


def unpin(study: dict) -> dict:
    """The inverse of :func:`pin`."""
    out = {}
    for key, delta in study["cases"].items():
        rec = {**study["common"], **delta}
        out[key] = {k: v for k, v in rec.items() if v != MISSING}
    return out


def loading(params: dict, spec) -> float:
    """The nominal loading (mg/cm²) of a paper electrode case: H ρ (1 − ε)."""
    from electrofem.studies.figures import nominal_loading

    return nominal_loading(spec.config_dict(params))


def new_records(name: str) -> dict:
    """``{case key: record}`` of the study file ``examples/study_paper_<name>.toml``, keyed as
    the pinned file (rate, coupled: ``"<arch> <loading> <rate>C"``; wetting: the case name)."""
    from electrofem.studies.figures import case_label

    spec = load_study(ROOT / f"examples/study_paper_{name}.toml")
    spec.validate()
    out = {}
    for params in spec.cases:
        cfg = spec.check_case(params)
        if name == "wetting":
            out[case_label(spec.config_dict(params))] = config_record(cfg)
            continue
        for rate in cfg.discharge.c_rates:  # coupled: one discharge job runs every rate
            one = dataclasses.replace(cfg, discharge=dataclasses.replace(
                cfg.discharge, c_rates=(rate,)))  # fmt: skip
            key = f"{params['preset']} {loading(params, spec):g} {rate:g}C"
            out[key] = config_record(one)
    return out


@pytest.mark.parametrize("name", ["rate", "wetting", "coupled"])
def test_study_file_reproduces_the_earlier_module_configs(name):
    old = unpin(json.loads(PINNED.read_text())[name])
    new = new_records(name)
    if name == "coupled":  # one case per electrode, running its three rates
        assert sorted(new) == sorted(old)
    else:  # the same cases, in the same order
        assert list(new) == list(old)
    for key, rec in old.items():
        assert new[key] == rec, key


def test_the_pin_round_trips():
    recs = {"a": {"x": 1, "y": None, "z": [1]}, "b": {"x": 2, "y": None}}
    assert unpin(pin(recs)) == recs


def earlier_module_records() -> dict:
    """The pinned records, computed from the earlier modules as they ran the BENCHMARKS.md
    tables (removed with those modules; this wrote tests/data/paper_study_configs.json)."""
    from electrofem.studies import coupled, rate, wetting

    def electrodes(**kw):
        for ld in rate.PAPER_LOADINGS_MG_CM2:
            for c in rate.PAPER_C_RATES:
                for a in rate.PAPER_ARCHITECTURES:
                    yield f"{a} {ld:g} {c:g}C", rate.paper_config(a, ld, c_rates=(c,), **kw)

    rep = dataclasses.replace
    # run_rate_study: replace(cfg.discharge, active_density_g_cm3=density_g_cm3)
    r = {k: config_record(rep(cfg, discharge=rep(cfg.discharge, active_density_g_cm3=4.75)))
         for k, cfg in electrodes()}  # fmt: skip
    # bench_wetting_study.py --size 2.0 --fill-factor 1.1 --cases all (its other defaults)
    opts = wetting.paper_step_options(
        1.0, contact_angle_deg=30.0, contact_line_slip=0.7, fill_factor=1.1,
        stop_at_breakthrough=False, output_interval_s=0.05, checkpoint_every_s=300.0,
    )  # fmt: skip
    w = {
        name: config_record(rep(wetting.wetting_config(preset, ratio, mesh_size_um=2.0,
                                                       radius_factor=0.5), infiltration=opts))
        for name, preset, ratio in wetting.PAPER_CASES
    }  # fmt: skip
    # run_coupled_study(mesh_size_um=2.0): its infiltration options and discharge options
    inf = wetting.paper_step_options(fill_factor=coupled.FILL_FACTOR, snapshots=False)
    c = {k: config_record(rep(cfg, infiltration=inf,
                              discharge=rep(cfg.discharge, checkpoint_every_s=300.0)))
         for k, cfg in electrodes(mesh_size_um=2.0)}  # fmt: skip
    return {"rate": pin(r), "wetting": pin(w), "coupled": pin(c)}


def test_the_pin_is_what_the_earlier_modules_ran():
    assert earlier_module_records() == json.loads(PINNED.read_text())
