"""Inspect a run's conductance history: list what it holds, or plot one view to PNG.

Usage::

    python scripts/inspect_run.py RUN.h5                         # what the file holds
    python scripts/inspect_run.py RUN.h5 trace W1 3 7 [-o a.png]  # g of device (3, 7) of tile W1
    python scripts/inspect_run.py RUN.h5 hist W1                  # histogram through time (heat map)
    python scripts/inspect_run.py RUN.h5 pulses W1                # cumulative pulse-count map
    python scripts/inspect_run.py RUN.h5 disturb W1               # cumulative half-select disturb map
    python scripts/inspect_run.py RUN.h5 metrics                  # training metrics curves

Plots go to ``-o`` (default ``<run>_<view>[_<tile>].png`` in the current directory).
The file may still be being written: it is read as an HDF5 SWMR reader.
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000


def describe(path) -> str:
    """A plain-text account of what a history file holds."""
    from circuits.history import History, read_checkpoint
    lines = []
    with History(path) as h:
        a = h.attrs
        lines.append(f"{path}  ({_fmt_bytes(os.path.getsize(path))}, format {a.get('format')} "
                     f"v{a.get('format_version')}, created {a.get('created')})")
        p = h.provenance
        if p:
            commit = str(p.get("git_commit", "unknown"))
            dirty = " (modified)" if p.get("git_dirty") else ""
            net = p.get("netlist")
            net = f"{len(net.splitlines())} lines" if isinstance(net, str) else "none"
            lines.append(f"provenance: memx {p.get('version', '?')}, git {commit[:12]}{dirty}, "
                         f"seed {p.get('seed')}, netlist {net}, python {p.get('python', '?')}, "
                         f"hdf5 {p.get('hdf5', '?')}")
        else:
            lines.append("provenance: none recorded")
        if h.resumes:
            lines.append(f"resumed {len(h.resumes)} time(s), last at {h.resumes[-1].get('at')}")
        lines.append(f"storage: {a.get('dtype')}, compression {a.get('compression')}, "
                     f"stride {a.get('stride')}; last event flushed: {h.last_event()}")
        lines.append("tiles:")
        for name, shape in h.tiles.items():
            n = h.n_events(name)
            ev = h.events(name)
            span = f"events {ev[0]}..{ev[-1]}" if n else "no events yet"
            k = h.n_recorded(name)
            counts, edges = h.histograms(name, slice(0, 0))
            rng = (f"[{edges[0]:.3g}, {edges[-1]:.3g}] S" if np.isfinite(edges[0]) else "range not set")
            lines.append(f"  {name}: {shape[0]} x {shape[1]} ({shape[0] * shape[1]:,} devices), "
                         f"{n:,} rows ({span}), {k:,} devices traced, "
                         f"histogram {len(edges) - 1} bins {rng}")
            if n:
                s = h.summary(name, slice(n - 1, n))
                lines.append(f"      last row: mean {s['mean'][0]:.4g} S, std {s['std'][0]:.3g} S, "
                             f"min {s['min'][0]:.4g}, max {s['max'][0]:.4g}; outside histogram "
                             f"{s['below'][0]} below / {s['above'][0]} above; "
                             f"energy {s['energy'][0]:.3g} J")
            pm, dm = h.pulse_map(name), h.disturb_map(name)
            lines.append(f"      pulses: {int(pm.sum()):,} in all (max {int(pm.max()):,} on one device); "
                         f"half-select disturbs: {int(dm.sum()):,} (max {int(dm.max()):,})")
        m = h.metrics()
        names = [k for k in m if k != "step"]
        if len(m["step"]):
            lines.append(f"metrics: {len(m['step'])} rows, steps {m['step'][0]}..{m['step'][-1]}: "
                         + ", ".join(names))
        else:
            lines.append("metrics: none")
    ck = read_checkpoint(path)
    if ck is None:
        lines.append("checkpoint: none")
    else:
        state, meta = ck
        arrs = ", ".join(f"{k} {tuple(v.shape)} {v.dtype}" for k, v in state.items())
        lines.append(f"checkpoint: {arrs or 'no arrays'}; meta {json.dumps(meta)[:200]}")
    return "\n".join(lines)


# ------------------------------------------------------------------ plots


def _figure(title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4.5), constrained_layout=True)
    ax.set_title(title)
    return plt, fig, ax


def _save(plt, fig, out):
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def plot_trace(h, tile, i, j, out):
    ev = h.events(tile)
    g = h.trace(tile, i, j)
    plt, fig, ax = _figure(f"{tile} device ({i}, {j})")
    ax.plot(ev, g * 1e6, lw=1)
    ax.set_xlabel("event")
    ax.set_ylabel("conductance (µS)")
    return _save(plt, fig, out)


def plot_hist(h, tile, out, max_columns=2000):
    n = h.n_events(tile)
    if n == 0:
        raise SystemExit(f"tile {tile!r} has no recorded events yet")
    step = max(1, -(-n // max_columns))
    rows = slice(0, n, step)
    counts, edges = h.histograms(tile, rows)
    s = h.summary(tile, rows)
    ev = s["event"]
    from matplotlib.colors import LogNorm
    plt, fig, ax = _figure(f"{tile}: conductance histogram of all devices"
                           + (f" (every {step}th row)" if step > 1 else ""))
    c = np.ma.masked_equal(counts.T.astype(float), 0)
    if c.count() == 0:
        c = np.ma.masked_array(np.zeros_like(counts.T, dtype=float), mask=False)
        norm = None
    else:
        norm = LogNorm(vmin=max(c.min(), 1), vmax=max(c.max(), 1))
    x = ev if len(ev) > 1 else np.array([ev[0], ev[0] + 1])
    if len(ev) == 1:
        c = np.ma.concatenate([c, c], axis=1)
    mesh = ax.pcolormesh(x, 0.5 * (edges[1:] + edges[:-1]) * 1e6, c, shading="nearest",
                         norm=norm, cmap="viridis")
    ax.plot(ev, s["mean"] * 1e6, color="w", lw=0.8, label="mean")
    fig.colorbar(mesh, ax=ax, label="devices")
    ax.set_xlabel("event")
    ax.set_ylabel("conductance (µS)")
    out_of = int(s["below"].max()) + int(s["above"].max())
    if out_of:
        ax.text(0.01, 0.01, f"up to {int(s['below'].max())} below / {int(s['above'].max())} above "
                f"the range", transform=ax.transAxes, color="w", fontsize=8)
    ax.legend(loc="upper right", fontsize=8)
    return _save(plt, fig, out)


def plot_map(h, tile, kind, out):
    data = h.pulse_map(tile) if kind == "pulses" else h.disturb_map(tile)
    what = "pulses" if kind == "pulses" else "half-select disturbs"
    plt, fig, ax = _figure(f"{tile}: cumulative {what} per device (total {int(data.sum()):,})")
    im = ax.imshow(data, aspect="auto", interpolation="nearest", cmap="magma")
    fig.colorbar(im, ax=ax, label=what)
    ax.set_xlabel("column j")
    ax.set_ylabel("row i")
    return _save(plt, fig, out)


def plot_metrics(h, out):
    m = h.metrics()
    names = [k for k in m if k != "step"]
    if not names:
        raise SystemExit("the history has no metrics")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 2.2 * len(names) + 0.5), sharex=True,
                             constrained_layout=True, squeeze=False)
    for ax, k in zip(axes[:, 0], names):
        ok = np.isfinite(m[k])
        ax.plot(m["step"][ok], m[k][ok], marker="." if ok.sum() < 50 else None, lw=1)
        ax.set_ylabel(k)
    axes[-1, 0].set_xlabel("step")
    axes[0, 0].set_title("training metrics")
    return _save(plt, fig, out)


# ------------------------------------------------------------------ command line


def _parser():
    p = argparse.ArgumentParser(prog="inspect.py", description=__doc__.split("\n")[0])
    p.add_argument("run", help="history file (.h5)")
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("-o", "--out", help="PNG to write (default <run>_<view>[_<tile>].png)")
    sub = p.add_subparsers(dest="view", metavar="VIEW")
    t = sub.add_parser("trace", parents=[out], help="conductance of one recorded device")
    t.add_argument("tile")
    t.add_argument("i", type=int)
    t.add_argument("j", type=int)
    for name, text in (("hist", "histogram of all devices through time (heat map)"),
                       ("pulses", "cumulative pulse-count map"),
                       ("disturb", "cumulative half-select disturb map")):
        sp = sub.add_parser(name, parents=[out], help=text)
        sp.add_argument("tile")
    sub.add_parser("metrics", parents=[out], help="training metrics curves")
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    from circuits.history import History
    from circuits.history.writer import HistoryError
    from crossbar.errors import ParameterError
    if not os.path.exists(args.run):
        print(f"inspect.py: no such file: {args.run}", file=sys.stderr)
        return 2
    try:
        if args.view is None:
            print(describe(args.run))
            return 0
        stem = Path(args.run).stem
        default = "_".join([stem, args.view] + ([args.tile] if hasattr(args, "tile") else [])
                           + ([str(args.i), str(args.j)] if args.view == "trace" else [])) + ".png"
        out = args.out or default
        with History(args.run) as h:
            if args.view == "trace":
                plot_trace(h, args.tile, args.i, args.j, out)
            elif args.view == "hist":
                plot_hist(h, args.tile, out)
            elif args.view in ("pulses", "disturb"):
                plot_map(h, args.tile, args.view, out)
            else:
                plot_metrics(h, out)
    except (ParameterError, HistoryError) as exc:
        print(f"inspect.py: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
