"""How much could fragmenting spatial blocks save? A bound for issue 14's geometry route.

    python benchmarks/bench_fragment_blocks.py [--case box400] [--blocks 1 2 4 8]

Builds the truncated balls of a ``bench_mesh.py`` case once (as :func:`build_geometry` does),
then, for each number of slabs ``k`` along the last axis, fragments every slab box with copies
of the pieces that reach into it, slab by slab, and times the sum. ``k = 1`` is the whole
box, as the product does it. The slabs are not merged, so a sum below ``k = 1``'s is an upper
bound on the saving: the merge of the slab faces is the part still to build.

Writes ``benchmarks/results/bench_fragment_blocks_<case>.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import gmsh
from bench_mesh import case_spec

from electrofem.mesh.pieces import _build_pieces
from electrofem.mesh.plan import _effective_shell, _plan
from electrofem.microstructure import generate

RESULTS = Path(__file__).resolve().parent / "results"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", default="box400")
    ap.add_argument("--blocks", type=int, nargs="+", default=[1, 2, 4, 8])
    args = ap.parse_args()
    spec, _ = case_spec(args.case)
    parts = generate(spec)
    size = tuple(float(s) for s in parts.box.size)
    gmsh.initialize()
    gmsh.option.setNumber("General.Terminal", 0)
    gmsh.option.setNumber("General.NumThreads", 1)
    gmsh.model.add("blocks")
    occ = gmsh.model.occ
    t = time.perf_counter()
    plan = _plan(parts, quiet=True)
    pieces = [e for e, _, _ in _build_pieces(parts.dim, plan, _effective_shell(parts), size)]
    t_cut = time.perf_counter() - t
    boxes = {e: occ.getBoundingBox(*e) for e in pieces}
    rows = []
    for k in args.blocks:
        h = size[-1] / k
        seconds, n_args = [], []
        for s in range(k):
            z0, z1 = s * h, (s + 1) * h
            inside = [e for e in pieces if boxes[e][2] < z1 and boxes[e][5] > z0]
            copies = occ.copy(inside)
            slab = occ.addBox(0, 0, z0, size[0], size[1], h)
            t = time.perf_counter()
            out, _ = occ.fragment([(3, slab)], copies)
            seconds.append(time.perf_counter() - t)
            n_args.append(len(inside))
            occ.remove(out, recursive=True)
        rows.append(dict(slabs=k, seconds=sum(seconds), per_slab=seconds, pieces=n_args))
        print(
            f"{k} slab(s): fragments {sum(seconds):.1f} s in all "
            f"(pieces per slab {min(n_args)}-{max(n_args)})",
            flush=True,
        )
    gmsh.finalize()
    RESULTS.mkdir(exist_ok=True)
    out = dict(case=args.case, pieces=len(pieces), seconds_cut=t_cut, rows=rows)
    (RESULTS / f"bench_fragment_blocks_{args.case}.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
