"""The ``electrofem`` command.

    electrofem generate CONFIG.toml -o OUTDIR [--particles CSV] [--seed N]
    electrofem demo [-o OUTDIR]
    electrofem transport MESH_OR_CONFIG -o OUTDIR [--phase electrolyte|solid]
                         [--direction x|y|z|all] [--density NAME=G_CM3]
    electrofem discharge MESH_OR_CONFIG -o OUTDIR [--c-rates 0.1,0.5,1] [--restart]
    electrofem infiltrate MESH_OR_CONFIG -o OUTDIR [--t-end S] [--restart]
                          [--capillary-factor X] [--contact-angle DEG]
    electrofem pybamm TRANSPORT.json -o PARAMS.json [--electrode positive|negative]
    electrofem info MESH.xdmf|MESH.msh
    electrofem study STUDY.toml -o DIR [--workers N] [--retry-failed] [--deadline SECONDS]
    electrofem study --report DIR [--metric NAME ...]
    electrofem study --suggest DIR --metric NAME [--minimize] [--iterate K] [--seed N]
    electrofem convert IN OUT            (meshio, serial)

All commands run under ``mpirun -n N``. A bad input exits with status 2 and one line
``electrofem: error: <field>: <what is wrong>``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from importlib import resources
from pathlib import Path

from . import __version__


def _setup_logging(quiet: bool) -> None:
    from mpi4py import MPI

    level = logging.WARNING if quiet or MPI.COMM_WORLD.rank != 0 else logging.INFO
    logging.basicConfig(level=level, format="[electrofem] %(message)s", stream=sys.stderr)


def _cmd_generate(args) -> int:
    from .config import load
    from .jobs.generate import run_generate

    cfg = load(args.config)
    if args.particles:
        cfg.particles_csv = Path(args.particles)
        cfg.electrode = None
    if args.seed is not None:
        if cfg.electrode is None:
            raise ValueError("--seed: has no effect with particles from a CSV")
        import dataclasses

        cfg.electrode = dataclasses.replace(cfg.electrode, seed=args.seed)
        cfg.seed = args.seed
        cfg.source = {**cfg.source, "seed": args.seed}
    _claim(args)
    _, summary = run_generate(cfg, args.output, progress=not args.quiet, force=args.force)
    _print_summary(summary, args.output)
    return 0


def _print_summary(summary: dict, outdir) -> None:
    from mpi4py import MPI

    if MPI.COMM_WORLD.rank:
        return
    lay = ", ".join(f"{p:.3f}" for p in summary["porosity_per_layer"])
    err = summary.get("porosity_error") or 0.0
    pm = f" ± {err:.4f}" if summary.get("porosity_method") == "monte_carlo" else ""
    print(
        f"{summary['n_particles']} particles | porosity {summary['porosity']:.4f}{pm} "
        f"(layers: {lay}; mesh: {summary['mesh']['porosity_mesh']:.4f}) | loading "
        f"{summary['loading_mg_cm2']:.2f} mg/cm² | {summary['mesh']['n_cells']} cells, "
        f"min quality {summary['mesh']['min_quality']:.3f} -> {outdir}"
    )


def _cmd_demo(args) -> int:
    import tomllib

    from .config import parse
    from .jobs.generate import run_generate
    from .jobs.transport import run_transport

    text = resources.files("electrofem.data").joinpath("demo.toml").read_text()
    cfg = parse(tomllib.loads(text))
    _claim(args)
    emesh, summary = run_generate(cfg, args.output, progress=not args.quiet)
    _print_summary(summary, args.output)
    report = run_transport(emesh, args.output, cfg.transport, cfg.density or None, stop=args.stop)
    _print_transport(report.metrics, args.output)
    return 0


def _parse_densities(items) -> dict[int, float] | None:
    from . import tags

    if not items:
        return None
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            pid = tags.phase_id(name.strip())
            out[pid] = float(value)
        except ValueError:
            raise ValueError(
                f"--density: expected NAME=g/cm³ (e.g. active=4.75), got {item!r}"
            ) from None
        if not out[pid] > 0:
            raise ValueError(f"--density: {name} must be positive, got {value}")
    return out


def _claim(args) -> None:
    """Refuse an output folder with an earlier run's outputs unless --overwrite/--restart."""
    from mpi4py import MPI

    from .jobs.output import claim_outdir

    claim_outdir(
        args.output,
        MPI.COMM_WORLD,
        overwrite=getattr(args, "overwrite", False),
        restart=getattr(args, "restart", False),
    )


def _source_and_options(args, table: str):
    """``(source, options)`` of a job command: a mesh file with the table's defaults, or a
    config with its ``[table]``; then the command-line flags of that options class (a bad
    value names the flag)."""
    from .config import JOB_TABLES, load
    from .jobs.source import MESH_SUFFIXES
    from .params import apply_flags

    src = Path(args.source)
    if src.suffix in MESH_SUFFIXES:
        if not src.is_file():
            raise ValueError(f"source: no such mesh file {src}")
        source, options = src, JOB_TABLES[table]()
    else:
        source = load(src)
        options = getattr(source, table)
    return source, apply_flags(options, args)


def _cmd_transport(args) -> int:
    import dataclasses

    from .jobs.transport import run_transport

    source, options = _source_and_options(args, "transport")
    if args.direction:
        options = dataclasses.replace(options, directions=tuple(args.direction))
        options.validate(names={"directions": "--direction"})
    densities = _parse_densities(args.density)
    _claim(args)
    report = run_transport(
        source, args.output, options, densities, progress=not args.quiet, stop=args.stop
    )
    _print_transport(report.metrics, args.output)
    return 0


def _print_transport(m: dict, outdir) -> None:
    from mpi4py import MPI

    if MPI.COMM_WORLD.rank:
        return
    for name, d in m["directions"].items():
        tau = d["tortuosity"]
        tau = f"{tau:.4f}" if isinstance(tau, float) else tau
        print(
            f"{m['phase']} {name}: eps {d['epsilon']:.4f} | D_eff/D0 "
            f"{d['relative_diffusivity']:.5f} | tau {tau} | flux balance "
            f"{d['flux_imbalance']:.1e}"
        )
    sia = ", ".join(f"{k} {v:.4g} m²/g" for k, v in m["sia_m2_per_g"].items()) or "none"
    a_s = ", ".join(f"{k} {v:.4g}" for k, v in m["specific_surface_area_by_phase_m-1"].items())
    print(
        f"a_s (electrolyte|solid, 1/m): {a_s or 'none'} | reactive "
        f"{m['reactive_surface_area_m-1']:.4g} 1/m | SIA: {sia} -> {outdir}"
    )


def _parse_rates(text: str) -> tuple[float, ...]:
    try:
        rates = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"--c-rates: expected numbers like 0.1,0.5,1, got {text!r}") from None
    if not rates:
        raise ValueError(f"--c-rates: expected numbers like 0.1,0.5,1, got {text!r}")
    return rates


def _cmd_discharge(args) -> int:
    import dataclasses

    from .jobs.discharge import run_discharge

    source, options = _source_and_options(args, "discharge")
    if args.c_rates:
        options = dataclasses.replace(options, c_rates=_parse_rates(args.c_rates))
        options.validate(names={"c_rates": "--c-rates"})
    _claim(args)
    report = run_discharge(
        source,
        args.output,
        options,
        progress=not args.quiet,
        restart=args.restart,
        stop=args.stop,
    )
    from mpi4py import MPI

    if MPI.COMM_WORLD.rank == 0:
        m = report.metrics
        th = m["theoretical"]["discharge_capacity_mAh_g"]
        for r in m["rate_capability"]:
            print(
                f"{r['c_rate']:g}C: {r['capacity_mAh_g']:.2f} mAh/g ({r['utilisation']:.1%} of "
                f"{th:.1f}) | {r['stop_reason']} at {r['final_voltage_V']:.3f} V | "
                f"{r['steps']} steps, {r['newton_iterations']} Newton its, {r['wall_time_s']:.1f} s"
            )
        print(f"-> {args.output}")
    return 0


def _cmd_infiltrate(args) -> int:
    from .jobs.infiltrate import run_infiltration

    source, options = _source_and_options(args, "infiltration")
    _claim(args)
    report = run_infiltration(
        source,
        args.output,
        options,
        progress=not args.quiet,
        restart=args.restart,
        stop=args.stop,
    )
    from mpi4py import MPI

    if MPI.COMM_WORLD.rank == 0:
        m = report.metrics
        tb = m.get("breakthrough_time_s")
        tb = f"{tb:.4g} s" if tb is not None else "not reached"
        print(
            f"t = {m['t_final_s']:.4g} s in {m['steps']} steps ({m['stop_reason']}) | "
            f"breakthrough ({m['breakthrough_fraction']:.0%} of max outlet fraction): {tb} | "
            f"saturation {m.get('saturation_final', float('nan')):.4f} | air "
            f"{m.get('final_air_fraction', float('nan')):.4f} | volume balance "
            f"{m['volume_balance']['relative_error_max']:.1e} -> {args.output}"
        )
    return 0


def _cmd_conductivity(args) -> int:
    import dataclasses

    from mpi4py import MPI

    from .jobs.conductivity import run_conductivity

    source, options = _source_and_options(args, "conductivity")
    if args.direction:
        options = dataclasses.replace(options, directions=tuple(args.direction))
    for item in args.sigma or ():
        name, _, value = item.partition("=")
        try:
            sigma = {**options.conductivities_S_m, name.strip(): float(value)}
        except ValueError:
            raise ValueError(
                f"--sigma: expected PHASE=S/m (e.g. binder=10), got {item!r}"
            ) from None
        options = dataclasses.replace(options, conductivities_S_m=sigma)
    options.validate(names={"directions": "--direction", "conductivities_S_m": "--sigma"})
    _claim(args)
    m = run_conductivity(source, args.output, options, progress=not args.quiet)
    if MPI.COMM_WORLD.rank == 0:
        for name, d in m["directions"].items():
            tau = d["tortuosity"]
            tau = f"{tau:.4g}" if isinstance(tau, float) else tau
            print(
                f"solid {name}: eps_s {d['solid_fraction']:.4f} | sigma_eff "
                f"{d['sigma_eff_S_m']:.4g} S/m | tau {tau} -> {args.output}"
            )
    return 0


def _cmd_cell(args) -> int:
    from mpi4py import MPI

    from .config import load
    from .jobs.cell import run_cell

    cfg = load(args.config)
    _claim(args)
    out = run_cell(cfg, args.output, progress=not args.quiet, stop=args.stop)
    if MPI.COMM_WORLD.rank == 0:
        w = out["summary"].get("wetting") or {}
        inf = out["summary"]["infiltration"]
        print(
            f"infiltration: final air {inf.get('final_air_fraction', float('nan')):.4f} | "
            f"wetted active area {w.get('wetted_active_area_fraction', float('nan')):.4f}"
        )
        for r in out["summary"]["rate_capability"] or []:
            print(f"{r['c_rate']:g}C: {r['capacity_mAh_g']:.2f} mAh/g ({r['stop_reason']})")
        print(f"-> {args.output}")
    return 0


def _cmd_study(args) -> int:
    """A design study (``electrofem.studies``): run, report or suggest."""
    from mpi4py import MPI

    from .studies.command import run_verb
    from .studies.runner import parent_comm

    code, text = run_verb(
        study=args.study, output=args.output, workers=args.workers,
        retry_failed=args.retry_failed, deadline_s=args.deadline, report=args.report,
        suggest=args.suggest, metrics=args.metric, minimize=args.minimize,
        iterate=args.iterate, seed=args.seed,
    )  # fmt: skip
    if parent_comm().rank == 0 and MPI.COMM_WORLD.rank == 0:
        print(text)
    return code


def _cmd_pybamm(args) -> int:
    from .export import write_pybamm_parameters

    out = write_pybamm_parameters(args.transport, args.output, args.electrode)
    print(json.dumps(out["parameters"], indent=2))
    return 0


def _cmd_info(args) -> int:
    from mpi4py import MPI

    from .mesh import ElectrodeMesh

    em = ElectrodeMesh.read(args.mesh)
    stats = em.statistics()
    if MPI.COMM_WORLD.rank == 0:
        print(json.dumps({"file": str(args.mesh), "dim": em.dim, **stats}, indent=2))
    return 0


def _cmd_convert(args) -> int:
    from .mesh import convert

    convert(args.src, args.dst)
    print(f"wrote {args.dst}")
    return 0


OVERWRITE_HELP = "replace the outputs of an earlier run in OUTDIR (default: refuse)"


def _job_parser(sub, name, help, func, *, table=None, restart=False, source="source"):
    """A verb that writes an output folder: its source, ``-o``, the flags of its options
    class (``table``), ``--restart`` (if it resumes), ``--overwrite`` and ``-q``."""
    from .config import JOB_TABLES
    from .params import add_flags

    p = sub.add_parser(name, help=help)
    if source == "source":
        p.add_argument("source", help="mesh (.xdmf, .msh) or config (.toml: generated first)")
    else:
        p.add_argument("config", help="TOML configuration (see electrofem.config)")
    p.add_argument("-o", "--output", required=True, help="output directory")
    if restart:
        p.add_argument("--restart", action="store_true", help="continue from OUTDIR/checkpoint")
    if table is not None:
        add_flags(p, JOB_TABLES[table])
    p.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=func)
    return p


def _direction_flag(p) -> None:
    p.add_argument(
        "--direction",
        action="extend",
        nargs="+",
        choices=["x", "y", "z", "all"],
        help="one or more axes (x y, or repeat the flag)",
    )


def _study_parser(sub) -> None:
    s = sub.add_parser(
        "study", help="a design study: a grid of cases, in parallel, into a results database"
    )
    s.add_argument("study", nargs="?", help="study TOML (see electrofem.studies.spec)")
    s.add_argument("-o", "--output", help="study folder (cases/, study.sqlite; resumes)")
    s.add_argument(
        "--workers", type=int, default=1,
        help="concurrent cases, 1 rank each (local process pool, or the mpi4py.futures pool)",
    )  # fmt: skip
    s.add_argument("--retry-failed", action="store_true", help="run failed cases again")
    s.add_argument(
        "--deadline", type=float, metavar="SECONDS",
        help="start no case after SECONDS of wall time (running ones finish; rerun to resume)",
    )  # fmt: skip
    s.add_argument("--report", metavar="DIR", help="print the table, write results.csv/.png")
    s.add_argument("--suggest", metavar="DIR", help="fit a GP surrogate, propose the next case")
    s.add_argument("--metric", action="append", help="metric column (repeatable for --report)")
    s.add_argument("--minimize", action="store_true", help="--suggest: minimise the metric")
    s.add_argument("--iterate", type=int, metavar="K", help="--suggest: K suggest-run rounds")
    s.add_argument("--seed", type=int, default=0, help="--suggest: candidate sampling seed")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    s.set_defaults(func=_cmd_study)


def build_parser() -> argparse.ArgumentParser:
    """The command line; each job's flags come from its options class (``params.add_flags``)."""
    ap = argparse.ArgumentParser(prog="electrofem", description=__doc__.split("\n")[0])
    ap.add_argument("--version", action="version", version=f"electrofem {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    g = _job_parser(
        sub, "generate", "pack, mesh and write a microstructure", _cmd_generate, source="config"
    )
    g.add_argument("--particles", help="CSV of particles (x,y[,z],r,phase): skips packing")
    g.add_argument("--seed", type=int, help="override the config's seed")
    g.add_argument(
        "--force", action="store_true", help="run a request estimated not to fit in memory"
    )
    d = sub.add_parser("demo", help="run the built-in default case (2D L-S)")
    d.add_argument("-o", "--output", default="demo-out", help="output directory")
    d.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    d.add_argument("-q", "--quiet", action="store_true")
    d.set_defaults(func=_cmd_demo)
    t = _job_parser(
        sub, "transport", "tortuosity, effective conductivity, a_s, SIA, profiles",
        _cmd_transport, table="transport",
    )  # fmt: skip
    _direction_flag(t)
    t.add_argument("--density", action="append", help="NAME=g/cm³ for SIA, repeatable")
    dc = _job_parser(
        sub, "discharge", "galvanostatic discharge at C-rates (half cell)", _cmd_discharge,
        table="discharge", restart=True,
    )  # fmt: skip
    dc.add_argument("--c-rates", help="comma-separated C-rates, e.g. 0.1,0.5,1")
    _job_parser(
        sub, "infiltrate", "electrolyte infiltration (two-phase VOF, 2D; 3D demo)",
        _cmd_infiltrate, table="infiltration", restart=True,
    )  # fmt: skip
    ec = _job_parser(
        sub, "conductivity", "effective electronic conductivity of the solid",
        _cmd_conductivity, table="conductivity",
    )  # fmt: skip
    _direction_flag(ec)
    ec.add_argument("--sigma", action="append", help="PHASE=S/m, repeatable (e.g. binder=10)")
    _job_parser(
        sub, "cell", "generate -> infiltrate -> discharge on one mesh (coupled)", _cmd_cell,
        restart=True, source="config",
    )  # fmt: skip
    _study_parser(sub)
    pb = sub.add_parser("pybamm", help="PyBaMM DFN parameters from a transport.json")
    pb.add_argument("transport", help="transport.json of an electrolyte transport run")
    pb.add_argument("-o", "--output", required=True, help="parameter JSON to write")
    pb.add_argument("--electrode", choices=["positive", "negative"], default="positive")
    pb.set_defaults(func=_cmd_pybamm, serial=True)
    i = sub.add_parser("info", help="statistics of a mesh file (.xdmf or .msh)")
    i.add_argument("mesh")
    i.set_defaults(func=_cmd_info)
    c = sub.add_parser("convert", help="convert a mesh with meshio (serial)")
    c.add_argument("src")
    c.add_argument("dst")
    c.set_defaults(func=_cmd_convert, serial=True)
    return ap


def main(argv: list[str] | None = None) -> int:
    """Run one command; bad input -> status 2 and one line, printed once under MPI; an
    interrupt (SIGINT/SIGTERM) -> one line and status 130/143."""
    from mpi4py import MPI

    from .jobs.stop import Interrupted, StopSignal

    args = build_parser().parse_args(argv)
    _setup_logging(getattr(args, "quiet", False))
    from .config import ConfigError
    from .jobs.generate import PipelineError
    from .mesh.io import MeshFileError
    from .microstructure import MicrostructureError

    # for agreeing on an error without disturbing the job's messages (the serial commands,
    # which may run on one rank of many, only print)
    serial = getattr(args, "serial", False) or (args.command == "study" and _futures_launched())
    errors = MPI.COMM_SELF if serial else MPI.COMM_WORLD.Dup()
    args.stop = StopSignal().install()
    try:
        return args.func(args)
    except Interrupted as err:
        _report(errors, f"electrofem: {err}", err.exit_code, 3.0, only_rank0=True)
        return err.exit_code
    except (
        ConfigError,
        MicrostructureError,
        MeshFileError,
        PipelineError,
        ValueError,
        RuntimeError,
        OSError,
    ) as err:
        _report(errors, f"electrofem: error: {err}", 2)
        return 2
    finally:
        args.stop.uninstall()
        if errors != MPI.COMM_SELF:
            errors.Free()


def _futures_launched() -> bool:
    """Under ``python -m mpi4py.futures`` only this process runs the command (the other ranks
    serve its pool): nothing may be collective on COMM_WORLD."""
    from .studies.runner import futures_launched

    return futures_launched()


def _report(
    comm, message: str, code: int, collective_within: float = 10.0, only_rank0: bool = False
) -> None:
    """Print ``message`` once. Every rank that failed the same way reaches this point; if the
    other ranks do not arrive within ``collective_within`` seconds the failure was this rank's
    alone: print it here (``only_rank0``: only if this is rank 0, for messages every rank has)
    and abort the whole run with ``code`` (no hang)."""
    import time

    if comm.size > 1:
        req = comm.Ibarrier()
        t0 = time.monotonic()
        while not req.Test():
            if time.monotonic() - t0 > collective_within:
                if comm.rank == 0 or not only_rank0:
                    print(message, file=sys.stderr, flush=True)
                comm.Abort(code)
            time.sleep(0.005)
    if comm.rank == 0:
        print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
