"""The ``electrofem`` command.

    electrofem generate CONFIG.toml -o OUTDIR [--particles CSV] [--seed N]
    electrofem demo [-o OUTDIR]
    electrofem info MESH.xdmf|MESH.msh
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
    from .pipeline import run_generate

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
    _, summary = run_generate(cfg, args.output, progress=not args.quiet)
    _print_summary(summary, args.output)
    return 0


def _print_summary(summary: dict, outdir) -> None:
    from mpi4py import MPI

    if MPI.COMM_WORLD.rank:
        return
    lay = ", ".join(f"{p:.3f}" for p in summary["porosity_per_layer"])
    print(
        f"{summary['n_particles']} particles | porosity {summary['porosity']:.4f} "
        f"(layers: {lay}; mesh: {summary['mesh']['porosity_mesh']:.4f}) | loading "
        f"{summary['loading_mg_cm2']:.2f} mg/cm² | {summary['mesh']['n_cells']} cells, "
        f"min quality {summary['mesh']['min_quality']:.3f} -> {outdir}"
    )


def _cmd_demo(args) -> int:
    import tomllib

    from .config import parse
    from .pipeline import run_generate

    text = resources.files("electrofem.data").joinpath("demo.toml").read_text()
    cfg = parse(tomllib.loads(text))
    _, summary = run_generate(cfg, args.output, progress=not args.quiet)
    _print_summary(summary, args.output)
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


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="electrofem", description=__doc__.split("\n")[0])
    ap.add_argument("--version", action="version", version=f"electrofem {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate", help="pack, mesh and write a microstructure")
    g.add_argument("config", help="TOML configuration (see electrofem.config)")
    g.add_argument("-o", "--output", required=True, help="output directory")
    g.add_argument("--particles", help="CSV of particles (x,y[,z],r,phase): skips packing")
    g.add_argument("--seed", type=int, help="override the config's seed")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    g.set_defaults(func=_cmd_generate)
    d = sub.add_parser("demo", help="run the built-in default case (2D L-S)")
    d.add_argument("-o", "--output", default="demo-out", help="output directory")
    d.add_argument("-q", "--quiet", action="store_true")
    d.set_defaults(func=_cmd_demo)
    i = sub.add_parser("info", help="statistics of a mesh file (.xdmf or .msh)")
    i.add_argument("mesh")
    i.set_defaults(func=_cmd_info)
    c = sub.add_parser("convert", help="convert a mesh with meshio (serial)")
    c.add_argument("src")
    c.add_argument("dst")
    c.set_defaults(func=_cmd_convert)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(getattr(args, "quiet", False))
    from .config import ConfigError
    from .mesh.io import MeshFileError
    from .microstructure import MicrostructureError
    from .pipeline import PipelineError

    try:
        return args.func(args)
    except (ConfigError, MicrostructureError, MeshFileError, PipelineError, ValueError) as err:
        print(f"electrofem: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
