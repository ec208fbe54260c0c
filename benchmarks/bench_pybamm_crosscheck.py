"""Homogenised cross-check: a resolved 2D Mix electrode against PyBaMM's DFN (issue 4, §3).

    python benchmarks/bench_paper_discharge.py --archs Mix --loadings 29.6 --c-rates 1
    python benchmarks/bench_pybamm_crosscheck.py            # reads that run, solves the DFN

PyBaMM is an optional extra (never imported by electrofem itself): without it this script
says so and exits 0.

**Same electrode on both sides.** The resolved run is the Mix electrode of
``bench_paper_discharge.py`` (29.6 mg/cm², porosity 0.55, 138.5 µm, 50 µm wide, 1 µm mesh,
carbon-binder network σ_cb = 1 S/m in the pores, Li metal on the top face). On **the same
mesh** ``electrofem.jobs.transport.run_transport`` (electrolyte, through-plane) gives ε, τ and
the reactive surface area a_s, and ``electrofem.export.pybamm_parameters`` turns them into DFN
parameters (tortuosity-factor option; particle radius ``R = 3 ε_s / a_s``, so PyBaMM's
``3 ε_s / R`` is the measured a_s). Everything else is PyBaMM's Chen2020 set, which is the set
electrofem's materials come from (Nyman electrolyte, NMC811 OCP/kinetics/c_max/D_s/x0), with a
Li metal counter electrode (``working electrode = positive``, Xu 2019 kinetics as ours).

Choices that make the two models the same cell (stated, not tuned):

* separator: ours has none (the Li metal touches the electrode's top face); the DFN needs one:
  1 µm, porosity 1, τ = 1 (its resistance is negligible);
* electronic conduction: ours goes through the carbon-binder network in the pore space
  (σ_cb = 1 S/m, same geometry as the electrolyte: effective σ_cb ε/τ) in parallel with the
  particles (isolated disks in 2D: no long-range path); the DFN gets that effective
  conductivity (``conductivity = σ_cb ε/τ / ε_s`` with electrode tortuosity factor 1 since
  PyBaMM multiplies by ε_s/τ_s);
* current: the resolved run's 1C current density (210 mA/g × active mass / cross-section)
  times PyBaMM's electrode area;
* end of discharge: the same rules for both, applied to the DFN solution afterwards: 2.7 V,
  or the largest particle-surface stoichiometry reaching 0.995 (electrofem's ``x_stop_max``
  event on any particle node);
* one particle size in the DFN (the surface-equivalent radius) for the two sizes of Mix.

Writes ``benchmarks/results/bench_pybamm_crosscheck.json`` and
``pybamm_crosscheck_1C.png`` (voltage vs capacity, both models).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
import time
from pathlib import Path

from mpi4py import MPI

RESULTS = Path(__file__).resolve().parent / "results"
COMM = MPI.COMM_WORLD


def _resolved(run_dir: Path, label: str):
    m = json.loads((run_dir / "discharge.json").read_text())
    with open(run_dir / f"discharge_{label}C.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if r["phase"] == "discharge"]
    q = [float(r["capacity_mAh_g"]) for r in rows]
    v = [float(r["voltage_V"]) for r in rows]
    return m, q, v


def _transport(mesh_path: Path, outdir: Path):
    from electrofem.export import pybamm_parameters
    from electrofem.jobs.transport import run_transport
    from electrofem.mesh import ElectrodeMesh
    from electrofem.physics.transport import TransportOptions

    emesh = ElectrodeMesh.read(mesh_path, COMM)
    axis = "xyz"[emesh.dim - 1]
    t0 = time.perf_counter()
    rep = run_transport(
        emesh,
        outdir,
        TransportOptions(phase="electrolyte", directions=(axis,)),
        comm=COMM,
        progress=False,
        plots=False,
    )
    t = time.perf_counter() - t0
    data = json.loads((outdir / "transport.json").read_text())
    return pybamm_parameters(data), data, t, rep


def _dfn(pb, i_app_A_m2, c_rate, sigma_cb, v_min, x_stop, n_points=600):
    import numpy as np
    import pybamm

    meas = pb["parameters"]
    eps = meas["Positive electrode porosity"]
    eps_s = meas["Positive electrode active material volume fraction"]
    tau = meas["Positive electrode tortuosity factor (electrolyte)"]
    values = pybamm.ParameterValues("Chen2020")
    xu = pybamm.ParameterValues("Xu2019")
    values.update(
        {
            "Exchange-current density for lithium metal electrode [A.m-2]": xu[
                "Exchange-current density for lithium metal electrode [A.m-2]"
            ],
            "Lithium metal partial molar volume [m3.mol-1]": xu[
                "Lithium metal partial molar volume [m3.mol-1]"
            ],
        },
        check_already_exists=False,
    )
    values.update(
        {
            "Positive electrode porosity": eps,
            "Positive electrode active material volume fraction": eps_s,
            "Positive electrode thickness [m]": meas["Positive electrode thickness [m]"],
            "Positive particle radius [m]": meas["Positive particle radius [m]"],
            "Positive electrode tortuosity factor (electrolyte)": tau,
            "Positive electrode tortuosity factor (electrode)": 1.0,
            "Positive electrode conductivity [S.m-1]": sigma_cb * eps / tau / eps_s,
            "Separator thickness [m]": 1e-6,
            "Separator porosity": 1.0,
            "Separator tortuosity factor (electrolyte)": 1.0,
            "Lower voltage cut-off [V]": 2.0,
            "Upper voltage cut-off [V]": 4.6,
        },
        check_already_exists=False,
    )
    area = values["Electrode height [m]"] * values["Electrode width [m]"]
    current = i_app_A_m2 * area
    values.update({"Current function [A]": current})
    model = pybamm.lithium_ion.DFN(
        options={"working electrode": "positive", "transport efficiency": "tortuosity factor"}
    )
    t_end = 1.5 * 3600.0 / c_rate
    sim = pybamm.Simulation(model, parameter_values=values)
    t0 = time.perf_counter()
    sol = sim.solve(np.linspace(0.0, t_end, n_points))
    wall = time.perf_counter() - t0
    t = sol["Time [s]"].entries
    v = sol["Voltage [V]"].entries
    xsurf = sol["Positive particle surface stoichiometry"].entries  # (x, t)
    xmax = xsurf.max(axis=0)
    # mass of active material per electrode area (kg/m²) -> capacity in mAh/g
    stop = len(t) - 1
    reason = "solver end"
    for k in range(len(t)):
        if v[k] <= v_min:
            stop, reason = k, "v_min"
            break
        if xmax[k] >= x_stop:
            stop, reason = k, "x_max"
            break
    t_event = float(t[stop])
    if 0 < stop and reason in ("v_min", "x_max"):  # interpolate as event_capacity does
        ya, yb, lim = (
            (xmax[stop - 1], xmax[stop], x_stop)
            if reason == "x_max"
            else (-v[stop - 1], -v[stop], -v_min)
        )
        t_event = float(t[stop - 1] + (lim - ya) / (yb - ya) * (t[stop] - t[stop - 1]))
    return {
        "time_event_s": t_event,
        "time_s": t[: stop + 1],
        "voltage_V": v[: stop + 1],
        "x_surface_max": xmax[: stop + 1],
        "stop_reason": reason,
        "current_A": current,
        "area_m2": area,
        "wall_s": wall,
        "parameters": {
            "porosity": eps,
            "active_volume_fraction": eps_s,
            "thickness_m": meas["Positive electrode thickness [m]"],
            "particle_radius_m": meas["Positive particle radius [m]"],
            "tortuosity_factor_electrolyte": tau,
            "electrode_conductivity_S_m": sigma_cb * eps / tau / eps_s,
            "separator": "1 µm, porosity 1, tau 1",
        },
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    study = RESULTS / "paper_study_out" / "Mix_29.6"
    ap.add_argument("--mesh", default=str(study / "mesh" / "mesh.xdmf"))
    ap.add_argument("--resolved", default=str(study / "1C"), help="resolved discharge dir")
    ap.add_argument("--c-rate", default="1")
    ap.add_argument("--out", default=str(RESULTS / "pybamm_crosscheck_out"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    try:
        import pybamm  # noqa: F401
    except ImportError:
        print("PyBaMM is not installed (pip install pybamm): nothing to run.")
        return 0
    import numpy as np

    from electrofem.analysis.capacity import event_capacity

    label = f"{float(args.c_rate):g}"
    run_dir = Path(args.resolved)
    m, q_res, v_res = _resolved(run_dir, label)
    d = m["rates"][label]["discharge"]
    pb, tr, t_tr, _ = _transport(Path(args.mesh), Path(args.out) / "transport")
    if COMM.rank:
        return 0
    opts = m["parameters"]["options"]
    sigma_cb = m["parameters"]["cell"]["cbd_conductivity_S_m"]
    i_app = float(label) * m["one_C_current_density_A_m2"]
    dfn = _dfn(pb, i_app, float(label), sigma_cb, opts["v_min_V"], opts["x_stop_max"])
    # DFN capacity per g: charge per electrode area / (active mass per area)
    mass_per_area_g_m2 = m["active_mass_g"] / m["cross_section_m2"]
    q_dfn = dfn["current_A"] / dfn["area_m2"] * dfn["time_s"] / 3.6 / mass_per_area_g_m2
    # the same active mass per area on both sides?
    pbm = pb["parameters"]
    dfn_mass = (
        pbm["Positive electrode active material volume fraction"]
        * pbm["Positive electrode thickness [m]"]
        * opts["active_density_g_cm3"]
        * 1e6
    )
    cap_res = d["capacity_mAh_g"]
    cap_dfn_grid = float(q_dfn[-1])
    cap_dfn = float(q_dfn[-1] / dfn["time_s"][-1] * dfn["time_event_s"])
    diff = (cap_dfn - cap_res) / cap_res
    with open(run_dir / f"discharge_{label}C.csv") as fh:
        q_event = event_capacity(list(csv.DictReader(fh)), opts["v_min_V"], opts["x_stop_max"])
    res = {
        "command": "python benchmarks/bench_pybamm_crosscheck.py --c-rate " + args.c_rate,
        "c_rate": float(label),
        "current_density_A_m2": i_app,
        "resolved": {
            "run": str(run_dir),
            "capacity_mAh_g": cap_res,
            "capacity_event_mAh_g": q_event,
            "stop_reason": d["stop_reason"],
            "final_voltage_V": d["final_voltage_V"],
            "loading_mg_cm2": m["loading_mg_cm2"],
            "end_metrics": d["end_metrics"],
        },
        "transport": {
            "epsilon": pbm["Positive electrode porosity"],
            "tau": pbm["Positive electrode tortuosity factor (electrolyte)"],
            "a_s_m-1": pb["measured"]["surface_area_to_volume_ratio_m-1"],
            "wall_s": t_tr,
            "warning": pb.get("warning"),
        },
        "dfn": {
            "capacity_mAh_g": cap_dfn,
            "capacity_output_grid_mAh_g": cap_dfn_grid,
            "stop_reason": dfn["stop_reason"],
            "final_voltage_V": float(dfn["voltage_V"][-1]),
            "active_mass_per_area_g_m2": dfn_mass,
            "resolved_active_mass_per_area_g_m2": mass_per_area_g_m2,
            "wall_s": dfn["wall_s"],
            "parameters": dfn["parameters"],
            "pybamm_version": __import__("pybamm").__version__,
        },
        "capacity_difference_rel": diff,
        "capacity_difference_rel_event": (cap_dfn - q_event) / q_event if q_event else None,
        "within_10_percent": bool(abs(diff) <= 0.10),
    }
    # sensitivity (not used for the verdict): the DFN with the Bruggeman guess tau = eps^-0.5
    # instead of the measured tau, and with the large disks' surface-equivalent radius
    sens = {}
    eps = pbm["Positive electrode porosity"]
    r_large = 1.5 * 11.3e-6 / 2  # sphere with the a_s of an 11.3 µm disk: 3/2 of its radius
    for name, upd in (
        ("bruggeman_tau", {"Positive electrode tortuosity factor (electrolyte)": eps**-0.5}),
        ("large_particle_radius", {"Positive particle radius [m]": r_large}),
    ):
        pb2 = {**pb, "parameters": {**pbm, **upd}}
        d2 = _dfn(pb2, i_app, float(label), sigma_cb, opts["v_min_V"], opts["x_stop_max"])
        q2 = d2["current_A"] / d2["area_m2"] * d2["time_event_s"] / 3.6 / mass_per_area_g_m2
        sens[name] = {"change": upd, "capacity_mAh_g": float(q2), "stop_reason": d2["stop_reason"]}
    res["dfn_sensitivity"] = sens
    # mean voltage over the common capacity range
    qc = min(cap_res, cap_dfn)
    grid = np.linspace(0.02 * qc, 0.98 * qc, 50)
    vr = np.interp(grid, q_res, v_res)
    vd = np.interp(grid, q_dfn, dfn["voltage_V"])
    res["voltage_difference_V"] = {
        "mean": float(np.mean(vd - vr)),
        "max_abs": float(np.max(np.abs(vd - vr))),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench_pybamm_crosscheck.json").write_text(json.dumps(res, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    ax.plot(q_res, v_res, "-", label=f"electrofem resolved 2D ({cap_res:.1f} mAh/g)")
    ax.plot(q_dfn, dfn["voltage_V"], "--", label=f"PyBaMM DFN, measured ε, τ, a_s ({cap_dfn:.1f})")
    ax.set_xlabel("capacity (mAh/g)")
    ax.set_ylabel("voltage vs Li/Li+ (V)")
    ax.set_title(
        f"Mix, {m['loading_mg_cm2']:.1f} mg/cm², {label}C: ε {res['transport']['epsilon']:.3f}, "
        f"τ {res['transport']['tau']:.2f}",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / f"pybamm_crosscheck_{label}C.png", dpi=120)
    plt.close(fig)
    print(json.dumps({k: res[k] for k in ("resolved", "dfn", "transport")}, indent=1))
    print("sensitivity:", json.dumps(sens))
    print(
        f"\n{label}C capacity: resolved {cap_res:.2f} mAh/g, DFN {cap_dfn:.2f} mAh/g, "
        f"difference {100 * diff:+.1f} % (target within 10 %; resolved at the interpolated "
        f"event {q_event:.2f} mAh/g: {100 * res['capacity_difference_rel_event']:+.1f} %); "
        f"mean voltage difference {res['voltage_difference_V']['mean'] * 1e3:+.1f} mV"
    )
    return 0 if math.isfinite(diff) else 1


if __name__ == "__main__":
    sys.exit(main())
