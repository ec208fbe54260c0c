"""Packing speed and reach: jam 1k/10k/20k spheres (3D) and 10k disks (2D) on one core.

    python benchmarks/bench_packing.py [--quick]

Prints a Markdown table for BENCHMARKS.md. "Jammed" = grown until the overlap relaxation
cannot resolve a further 0.2 % of solid fraction (bisection), no overlap > 1e-4 r.
Boxes: cubic, periodic laterally, walls at bottom/top (as an electrode).
"""

import argparse
import platform
import time

import numpy as np

from electrofem.microstructure import Box, Particles, jam
from electrofem.microstructure.packing import check_overlap_free


def case(dim, n, bidisperse, seed=0):
    rng = np.random.default_rng(seed)
    r = np.where(rng.random(n) < 0.5, 1.0, 1.4) if bidisperse else np.ones(n)
    vol = np.sum(np.pi * r**2 if dim == 2 else 4 / 3 * np.pi * r**3)
    L = (vol / 0.5) ** (1 / dim)
    box = Box((L,) * dim)
    t = time.perf_counter()
    x, rr, phi = jam(box, r, rng)
    dt = time.perf_counter() - t
    ov = check_overlap_free(Particles(box, x, rr))
    return dt, phi, ov


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    cases = [
        (3, 1000, False),
        (3, 1000, True),
        (3, 10000, False),
        (3, 10000, True),
        (3, 20000, False),
        (3, 20000, True),
        (2, 10000, True),
    ]
    if args.quick:
        cases = cases[:2]
    print(f"machine: {platform.processor() or platform.machine()}, 1 core")
    print("| dim | particles | sizes | time (s) | jammed solid fraction | max overlap / r |")
    print("|---|---|---|---|---|---|")
    for dim, n, bi in cases:
        dt, phi, ov = case(dim, n, bi)
        sizes = "bidisperse 1:1.4" if bi else "monodisperse"
        print(f"| {dim}D | {n} | {sizes} | {dt:.1f} | {phi:.3f} | {ov:.1e} |", flush=True)


if __name__ == "__main__":
    main()
