"""Feed a measured microstructure to PyBaMM: a DFN discharge with the measured ε, τ and a_s.

    electrofem transport meshes/bi_3d.xdmf -o out-transport      # writes out-transport/pybamm.json
    python examples/pybamm_dfn.py out-transport/pybamm.json [--c-rate 1]

PyBaMM is an optional extra (``pip install electrofem[pybamm]``), never a runtime dependency:
without it this script says so and exits 0. The base parameter set is PyBaMM's Chen2020
(NMC811 | graphite); the positive electrode's porosity, active fraction, thickness, tortuosity
factor and particle radius (set so that PyBaMM's 3 ε_s / R is the measured a_s) are replaced
by the measured ones. It runs the DFN twice on that geometry: with the measured τ (the
"tortuosity factor" option) and with the usual Bruggeman guess τ = ε^-0.5, and prints the
discharge capacity and mean voltage of both.
"""

import argparse
import json
import sys


def _bruggeman_equivalents(values) -> None:
    """The "tortuosity factor" option needs a τ for every domain: the domains not measured
    keep Chen2020's Bruggeman transport efficiency, ε^b = ε/τ, i.e. τ = ε^(1-b)."""
    for dom in ("Negative electrode", "Separator", "Positive electrode"):
        for comp in ("electrolyte", "electrode"):
            key = f"{dom} tortuosity factor ({comp})"
            if dom == "Separator" and comp == "electrode":
                continue
            try:
                values[key]
                continue
            except KeyError:
                pass
            eps = values[f"{dom} porosity"]
            if comp == "electrode":
                eps = 1 - eps  # PyBaMM's solid fraction for the electrode transport
            b = values[f"{dom} Bruggeman coefficient ({comp})"]
            values.update({key: eps ** (1 - b)}, check_already_exists=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("params", help="pybamm.json written by `electrofem transport`")
    ap.add_argument("--c-rate", type=float, default=1.0)
    args = ap.parse_args()
    try:
        import pybamm
    except ImportError:
        print("PyBaMM is not installed (pip install pybamm): nothing to run.")
        return 0
    data = json.load(open(args.params))
    measured = data["parameters"]
    if "warning" in data:
        print("warning:", data["warning"])

    prefix = next(k.split(" electrode")[0] for k in measured if " electrode porosity" in k)
    eps = measured[f"{prefix} electrode porosity"]
    tau = measured[f"{prefix} electrode tortuosity factor (electrolyte)"]
    geometry = {k: v for k, v in measured.items() if "tortuosity" not in k and "Bruggeman" not in k}
    print(
        f"measured: eps {eps:.3f}, tau {tau:.3f}; Bruggeman guess tau = eps^-0.5 = {eps**-0.5:.3f}"
    )
    experiment = pybamm.Experiment([f"Discharge at {args.c_rate}C until 2.5 V"], period="30 s")
    for label, use_tau in (("measured tau", True), ("Bruggeman b = 1.5", False)):
        values = pybamm.ParameterValues("Chen2020")
        values.update(geometry, check_already_exists=False)
        options = {}
        if use_tau:
            values.update(measured, check_already_exists=False)
            options = data["options"]
            _bruggeman_equivalents(values)
        else:
            values.update({f"{prefix} electrode Bruggeman coefficient (electrolyte)": 1.5})
        model = pybamm.lithium_ion.DFN(options=options)
        sim = pybamm.Simulation(model, parameter_values=values, experiment=experiment)
        sol = sim.solve()
        cap = sol["Discharge capacity [A.h]"].entries[-1]
        volt = sol["Voltage [V]"].entries
        print(f"{label}: {cap:.4f} Ah at {args.c_rate}C, mean voltage {volt.mean():.4f} V")
    return 0


if __name__ == "__main__":
    sys.exit(main())
