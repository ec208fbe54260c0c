"""PNG pictures of microstructures (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import tags
from .microstructure.particles import Particles

PHASE_COLORS = {tags.ACTIVE: "#4C72B0", tags.SECOND: "#DD8452", tags.BINDER: "#55A868"}


def _save(fig, path, title: str | None = None, dpi: int = 120) -> Path:
    """Title (if any), tight layout, write ``path`` and close the figure."""
    import matplotlib.pyplot as plt

    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return Path(path)


def _images(p: Particles, cut_axes: tuple[int, ...]):
    """Particle indices and centres including periodic images across the lateral faces."""
    idx = [np.arange(len(p))]
    ctr = [p.centers]
    if p.box.periodic:
        for a in cut_axes:
            for s in (-1, 1):
                shift = np.zeros(p.dim)
                shift[a] = s * p.box.size[a]
                idx.append(np.arange(len(p)))
                ctr.append(p.centers + shift)
    return np.concatenate(idx), np.concatenate(ctr)


def _draw_section(ax, p: Particles, ii, cc, rr_out, rr_core, axes, extent, title):
    from matplotlib.patches import Circle, Rectangle

    ax.add_patch(Rectangle((0, 0), *extent, facecolor="#f4f1e8", edgecolor="k", lw=0.8))
    for i, c, ro, rc in zip(ii, cc, rr_out, rr_core, strict=True):
        xy = (c[axes[0]], c[axes[1]])
        if p.shell_thickness[i] > 0:
            ax.add_patch(Circle(xy, ro, color=PHASE_COLORS[int(p.shell_phase[i])], lw=0))
            if rc > 0:
                ax.add_patch(Circle(xy, rc, color=PHASE_COLORS[int(p.phase[i])], lw=0))
        else:
            ax.add_patch(Circle(xy, ro, color=PHASE_COLORS[int(p.phase[i])], lw=0))
    ax.set_xlim(0, extent[0])
    ax.set_ylim(0, extent[1])
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)


def plot_microstructure(p: Particles, path: str | Path, title: str = "") -> Path:
    """2D: the structure with layer boundaries. 3D: three xy sections and one xz section."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bounds = p.meta.get("layer_bounds_um") or []
    H = p.box.height
    if p.dim == 2:
        W = p.box.size[0]
        fig, ax = plt.subplots(figsize=(3 + 3 * W / H, 6))
        ii, cc = _images(p, (0,))
        core = p.radii - p.shell_thickness
        _draw_section(ax, p, ii, cc, p.radii[ii], core[ii], (0, 1), (W, H), title)
        for _, z1 in bounds[:-1]:
            ax.axhline(z1, color="k", ls="--", lw=0.8)
        ax.set_xlabel("x (µm)")
        ax.set_ylabel("y (µm) — collector at 0")
    else:
        Lx, Ly, _ = p.box.size
        fig, axs = plt.subplots(1, 4, figsize=(16, 4.5))
        ii, cc = _images(p, (0, 1))
        core = p.radii - p.shell_thickness
        for ax, frac in zip(axs[:3], (0.25, 0.5, 0.75), strict=True):
            z = frac * H
            dz = np.abs(cc[:, 2] - z)
            sel = dz < p.radii[ii]
            ro = np.sqrt(p.radii[ii][sel] ** 2 - dz[sel] ** 2)
            rc = np.sqrt(np.clip(core[ii][sel] ** 2 - dz[sel] ** 2, 0, None))
            _draw_section(ax, p, ii[sel], cc[sel], ro, rc, (0, 1), (Lx, Ly), f"z = {z:.1f} µm")
            ax.set_xlabel("x (µm)")
        y = Ly / 2
        dy = np.abs(cc[:, 1] - y)
        sel = dy < p.radii[ii]
        ro = np.sqrt(p.radii[ii][sel] ** 2 - dy[sel] ** 2)
        rc = np.sqrt(np.clip(core[ii][sel] ** 2 - dy[sel] ** 2, 0, None))
        _draw_section(axs[3], p, ii[sel], cc[sel], ro, rc, (0, 2), (Lx, H), f"y = {y:.1f} µm")
        for _, z1 in bounds[:-1]:
            axs[3].axhline(z1, color="k", ls="--", lw=0.8)
        axs[3].set_xlabel("x (µm)")
        axs[3].set_ylabel("z (µm)")
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def plot_profiles(profiles, path: str | Path, title: str = "") -> Path:
    """Through-thickness profiles (porosity, a_s, SIA, local τ) against depth, one PNG.

    ``profiles`` is an :class:`electrofem.analysis.Profiles`; depth runs upward from the
    current collector, as in the electrode.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    z = profiles.centres
    panels = [("porosity", profiles.porosity, "porosity (-)")]
    panels.append(("a_s", profiles.a_s * 1e-6, "a_s (1/µm)"))
    if profiles.sia:
        panels.append(("sia", None, "SIA (m²/g)"))
    if np.isfinite(profiles.tortuosity).any():
        panels.append(("tau", profiles.tortuosity, f"local τ ({profiles.direction})"))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 4.2), sharey=True)
    axes = np.atleast_1d(axes)
    for ax, (key, values, label) in zip(axes, panels, strict=True):
        if key == "sia":
            for name, v in profiles.sia.items():
                ax.plot(v, z, marker=".", label=name)
            ax.legend(fontsize=7)
        else:
            ax.plot(values, z, marker=".")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{profiles.axis} (µm), 0 = current collector")
    return _save(fig, path, title)


def plot_discharge_curves(rows_by_rate: dict, path: str | Path, title: str = "") -> Path:
    """Voltage vs capacity (mAh/g) and vs time of every rate's phases (discharge job rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.2))
    styles = {"discharge": "-", "rest": ":", "charge": "--", "cv": "-."}
    for k, (label, rows) in enumerate(rows_by_rate.items()):
        color = f"C{k % 10}"
        for phase, ls in styles.items():
            rr = [r for r in rows if r["phase"] == phase]
            if not rr:
                continue
            q = [r["capacity_mAh_g"] for r in rr]
            v = [r["voltage_V"] for r in rr]
            t = [r["time_s"] / 3600 for r in rr]
            lab = f"{label}C" if phase == "discharge" else None
            if phase != "rest":
                a1.plot(q, v, ls, color=color, label=lab)
            a2.plot(t, v, ls, color=color, label=lab)
    a1.set_xlabel("capacity (mAh/g)")
    a2.set_xlabel("time (h)")
    for a in (a1, a2):
        a.set_ylabel("voltage vs Li/Li+ (V)")
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    return _save(fig, path, title)


def _gather_cells(f, scale: float = 1.0):
    """Owned cells of a P1 Function's mesh: (triangle vertex coordinates, cell mean values),
    gathered to rank 0 (2D only)."""
    msh = f.function_space.mesh
    n = msh.topology.index_map(msh.topology.dim).size_local
    xg = msh.geometry.x[:, :2]
    tri = xg[msh.geometry.dofmaps[0][:n]]
    vals = f.x.array[f.function_space.dofmap.list[:n]].mean(axis=1) * scale
    tris = msh.comm.gather(tri, root=0)
    vs = msh.comm.gather(vals, root=0)
    if msh.comm.rank:
        return None, None
    return np.concatenate(tris), np.concatenate(vs)


def _dry_cells(dom):
    """Triangles of the owned pore cells without electrolyte (air), on rank 0 (2D)."""
    from . import tags

    msh = dom.mesh
    n = msh.topology.index_map(2).size_local
    dry = (dom.phase[:n] == tags.ELECTROLYTE) & ~dom.wet[:n]
    tri = msh.geometry.x[:, :2][msh.geometry.dofmaps[0][:n][dry]]
    parts = msh.comm.gather(tri, root=0)
    return np.concatenate(parts) if msh.comm.rank == 0 else None


def plot_field_map(cell, path: str | Path, title: str = "") -> Path | None:
    """Electrolyte concentration and particle stoichiometry maps of a 2D
    :class:`~electrofem.physics.electrochem.HalfCell` state; in a partly wetted electrode the
    pore cells without electrolyte are drawn grey ("air"). MPI-collective; rank 0 draws."""
    if cell.domain.tdim != 2:
        return None
    c0 = cell.params.electrolyte.c0_mol_m3
    te, ve = _gather_cells(cell.u[0], c0)
    ts, vs = _gather_cells(cell.u[2])
    dry = _dry_cells(cell.domain) if cell.domain.partial else None
    if cell.comm.rank:
        return Path(path)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    fig, axes = plt.subplots(1, 2, figsize=(9, 5), sharey=True)
    for ax, (tri, val, cmap, label) in zip(
        axes,
        ((te, ve, "viridis", "electrolyte c (mol/m³)"), (ts, vs, "magma", "particle x (-)")),
        strict=True,
    ):
        pc = PolyCollection(tri, array=val, cmap=cmap, edgecolors="none")
        ax.add_collection(pc)
        ax.autoscale_view()
        ax.set_aspect("equal")
        ax.set_xlabel("x (µm)")
        fig.colorbar(pc, ax=ax, label=label, shrink=0.8)
    axes[0].set_ylabel("y (µm), 0 = current collector")
    if dry is not None and len(dry):
        for ax in axes:
            ax.add_collection(PolyCollection(dry, facecolors="0.82", edgecolors="none"))
        axes[0].plot([], [], "s", color="0.82", label="air (not wetted)")
        axes[0].legend(loc="upper right", fontsize=8)
    return _save(fig, path, title)


def plot_rate_capability(table: list[dict], path: str | Path, rates=None, title: str = ""):
    """Discharge capacity (mAh/g) against C-rate, one panel per loading, one line per
    architecture (the table of :func:`electrofem.studies.figures.rate_report`), as paper 002's
    Figure 2f/g."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    loadings = sorted({r["loading_mg_cm2"] for r in table})
    fig, axes = plt.subplots(1, len(loadings), figsize=(4.6 * len(loadings), 3.8), squeeze=False)
    for ax, load in zip(axes[0], loadings, strict=True):
        for k, r in enumerate(x for x in table if x["loading_mg_cm2"] == load):
            pts = sorted(
                (float(key[: -len("C_mAh_g")]), r.get(key[:-6] + "_event_mAh_g") or v)
                for key, v in r.items()
                if key.endswith("C_mAh_g") and v is not None
            )
            if rates is not None:
                pts = [p for p in pts if p[0] in rates]
            if not pts:
                continue
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, "o-", color=f"C{k}", label=r["architecture"])
        ax.set_xscale("log")
        ax.set_xlabel("C-rate (1C = 210 mA/g)")
        ax.set_ylabel("discharge capacity (mAh/g)")
        ax.set_title(f"{load:g} mg/cm²")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return _save(fig, path, title)


def plot_alpha_map(tris, alpha, box_um, path: str | Path, title: str = "") -> Path:
    """Electrolyte fraction α of a 2D pore mesh: ``tris`` (n, 3, 2) triangle vertices in µm,
    ``alpha`` (n,) per cell, on a grey background (the particles) of the box ``box_um``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    w, h = box_um
    fig, ax = plt.subplots(figsize=(3.2, 3.2 * h / w * 0.8 + 0.8))
    ax.set_facecolor("#9a9a9a")  # particles (no pore cells)
    pc = PolyCollection(tris, array=alpha, cmap="Blues", edgecolors="face", linewidths=0.2)
    pc.set_clim(0.0, 1.0)
    ax.add_collection(pc)
    ax.set_xlim(0, w)
    ax.set_ylim(0, h)
    ax.set_aspect("equal")
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    ax.set_title(title, fontsize=8)
    fig.colorbar(pc, ax=ax, label="α (electrolyte)", shrink=0.7)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return _save(fig, path, dpi=110)


def plot_infiltration_summary(
    rows: list[dict], profile: list[dict], path: str | Path, threshold: float, axis: str = "y"
) -> Path:
    """Outlet electrolyte fraction (with the breakthrough ``threshold``) and saturation over
    time, and the final through-thickness air profile, of an infiltration run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.array([r["t_s"] for r in rows])
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    axes[0].plot(t, [r["outlet_fraction"] for r in rows], label="length-weighted")
    axes[0].plot(t, [r["outlet_fraction_flux"] for r in rows], "--", label="flux-weighted")
    axes[0].axhline(threshold, color="k", lw=0.6, ls=":")
    axes[0].set_xlabel("t (s)")
    axes[0].set_ylabel("outlet electrolyte fraction")
    axes[0].legend(fontsize=7)
    axes[1].plot(t, [r["saturation"] for r in rows])
    axes[1].set_xlabel("t (s)")
    axes[1].set_ylabel("saturation")
    yc = [0.5 * (p["y_low_um"] + p["y_high_um"]) for p in profile]
    axes[2].plot([p["air_fraction"] or 0.0 for p in profile], yc, "o-", ms=3)
    axes[2].set_xlabel("air / pore volume")
    axes[2].set_ylabel(f"{axis} (µm), 0 = outlet")
    axes[2].set_title("air profile at the end", fontsize=9)
    return _save(fig, path, dpi=110)


def plot_wetting_study(rows: list[dict], path: str | Path, title: str = "") -> Path:
    """Bars of the wetting (breakthrough) time and the final air fraction of every case of a
    wetting study (rows of :func:`electrofem.studies.figures.wetting_report`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    names = [r["case"] for r in rows]
    bt = [r.get("breakthrough_time_s") or float("nan") for r in rows]
    air = [100 * (r.get("final_air_fraction") or float("nan")) for r in rows]
    colors = ["tab:blue" if "Dry" not in n else "tab:orange" for n in names]
    axes[0].bar(names, bt, color=colors)
    axes[0].set_ylabel("time to 1 % outlet electrolyte (s)")
    axes[1].bar(names, air, color=colors)
    axes[1].set_ylabel("final air / pore volume (%)")
    for ax in axes:
        ax.tick_params(axis="x", rotation=45)
    return _save(fig, path, title or "wetting study")


def plot_wetting_map(points: list[dict], path: str | Path, title: str = "") -> Path:
    """The wetting regime map: contact angle (x) × inlet speed (y), one cell per point of
    :func:`electrofem.studies.figures.map_points`. Left: the order of the breakthrough times
    (green: the paper's L-S < Mix < S-L, red: its reverse, grey: another order or missing);
    right: the order of the air left, coloured by the architecture with the least air."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    angles = sorted({p["contact_angle_deg"] for p in points})
    speeds = sorted({p["inlet_speed_m_s"] for p in points})
    fig, axes = plt.subplots(1, 2, figsize=(11, 1.6 + 1.3 * len(speeds)))
    time_colour = {"L-S < Mix < S-L": "#7fc97f", "S-L < Mix < L-S": "#f0027f"}
    air_colour = {"L-S": "#7fc97f", "Mix": "#fdc086", "S-L": "#f0027f"}
    short = {"L-S": "LS", "Mix": "Mix", "S-L": "SL"}
    for p in points:
        i, j = angles.index(p["contact_angle_deg"]), speeds.index(p["inlet_speed_m_s"])
        for ax, key in zip(axes, ("time order", "air order"), strict=True):
            order = p.get(key)
            if key == "time order":
                colour = time_colour.get(order, "0.8")
            else:
                colour = air_colour.get(order.split(" ")[0], "0.8") if order else "0.8"
            ax.add_patch(Rectangle((i, j), 1, 1, facecolor=colour, edgecolor="white", lw=2))
            label = "n/a" if order is None else order
            for a, b in short.items():
                label = label.replace(a, b)
            ax.text(i + 0.5, j + 0.5, label, ha="center", va="center", fontsize=8)
    for ax, name in zip(
        axes, ("breakthrough time order", "air-at-breakthrough order"), strict=True
    ):
        ax.set_xlim(0, len(angles))
        ax.set_ylim(0, len(speeds))
        ax.set_xticks([k + 0.5 for k in range(len(angles))], [f"{a:g}" for a in angles])
        ax.set_yticks([k + 0.5 for k in range(len(speeds))], [f"{u:g}" for u in speeds])
        ax.set_xlabel("contact angle (°)")
        ax.set_ylabel("inlet speed (m/s)")
        ax.set_title(name + " (smallest first)", fontsize=10)
    return _save(fig, path, title or "wetting regime map")


def plot_study(
    rows: list[dict], x: str, metrics: list[str], groups: list[str], path, title: str = ""
) -> Path:
    """A design study: each metric against the swept parameter ``x``, one line per
    combination of the other swept parameters ``groups`` (finished cases only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.8 * len(metrics), 3.8), squeeze=False)
    lines: dict[tuple, list] = {}
    for r in rows:
        lines.setdefault(tuple(r.get(g) for g in groups), []).append(r)
    for ax, m in zip(axes[0], metrics, strict=True):
        for key, rs in lines.items():
            pts = sorted(
                (r[x], r[m])
                for r in rs
                if isinstance(r.get(x), int | float) and isinstance(r.get(m), int | float)
            )
            if not pts:
                continue
            label = ", ".join(f"{g}={v}" for g, v in zip(groups, key, strict=True)) or None
            ax.plot(*zip(*pts, strict=True), "o-", label=label)
        ax.set_xlabel(x)
        ax.set_ylabel(m)
        if groups and len(lines) <= 12:
            ax.legend(fontsize=7)
    return _save(fig, path, title)
