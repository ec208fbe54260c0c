"""Feed a measured microstructure to PyBaMM: a DFN discharge with the measured ε, τ and a_s.

    electrofem transport meshes/bi_3d.xdmf -o out-transport      # writes out-transport/pybamm.json
    python examples/pybamm_dfn.py out-transport/pybamm.json [--c-rate 1]

PyBaMM is an optional extra (``pip install electrofem[pybamm]``), never a runtime dependency:
without it this script says so and exits 0. The base parameter set is PyBaMM's Chen2020
(NMC811 | graphite); the positive electrode's porosity, active fraction, thickness, tortuosity
factor, surface area and particle radius are replaced by the measured ones. It runs the
DFN twice: with the measured τ ("tortuosity factor" option) and with Chen2020's Bruggeman
guess, and prints the discharge capacity of both.
"""

import argparse
import json
import sys


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

    results = {}
    for label, use_measured in (("measured tau", True), ("Chen2020 Bruggeman", False)):
        values = pybamm.ParameterValues("Chen2020")
        options = {}
        if use_measured:
            values.update(measured, check_already_exists=False)
            options = data["options"]
        model = pybamm.lithium_ion.DFN(options=options)
        experiment = pybamm.Experiment(
            [f"Discharge at {args.c_rate}C until 2.5 V"], period="30 seconds"
        )
        sim = pybamm.Simulation(model, parameter_values=values, experiment=experiment)
        sol = sim.solve()
        cap = sol["Discharge capacity [A.h]"].entries[-1]
        results[label] = cap
        print(f"{label}: {cap:.4f} Ah at {args.c_rate}C")
    return 0


if __name__ == "__main__":
    sys.exit(main())
