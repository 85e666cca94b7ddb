"""The report's figures: matplotlib (Agg backend) drawn to inline SVG text, one function per plot.

Each function takes plain arrays/lists and returns an `<svg>` element (no XML prolog, no namespace URLs), so the
HTML report embeds it directly and stays self-contained. Data loading and HTML live in `twin.report`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def to_svg(fig, salt: str) -> str:
    """Serialise a figure to an inline `<svg>` element; `salt` makes its internal ids unique within the page."""
    import matplotlib

    plt = _plt()
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    # inline SVG in HTML5 needs no namespace declarations; dropping them leaves no URL in the page
    text = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", text)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    # unique ids per figure: matplotlib's are content hashes, so prefix them with the salt
    text = re.sub(r'id="([^"]+)"', lambda m: f'id="{salt}-{m.group(1)}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{salt}-{m.group(1)})", text)
    text = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{salt}-{m.group(1)}"', text)
    return text.strip()


def _fig(w: float = 9.0, h: float = 3.6, nrows: int = 1, ncols: int = 1, **kw):
    plt = _plt()
    fig, ax = plt.subplots(nrows, ncols, figsize=(w, h), **kw)
    return fig, ax


# ---------------------------------------------------------------------------------------------------------
# Furnace schedule


@dataclass
class GanttBatch:
    furnace: str
    recipe: str
    setup_start_h: float
    setup_h: float
    start_h: float  # after setup: loading, thermal cycle, unloading
    end_h: float


def gantt(
    batches: Sequence[GanttBatch],
    downs: Sequence[tuple[str, float, float]],
    horizon_h: float,
    warmup_h: float,
    title: str,
    salt: str = "gantt",
) -> str:
    """Batches per furnace over time, coloured by recipe; setups hatched red, breakdowns grey."""
    furnaces = sorted({b.furnace for b in batches} | {d[0] for d in downs}, key=_natural)
    recipes = sorted({b.recipe for b in batches})
    colour = {r: _PALETTE[i % len(_PALETTE)] for i, r in enumerate(recipes)}
    fig, ax = _fig(10.0, 0.9 + 0.55 * max(len(furnaces), 1))
    y = {f: i for i, f in enumerate(furnaces)}
    for r in recipes:
        sel = [b for b in batches if b.recipe == r]
        for f in furnaces:
            bars = [(b.start_h, b.end_h - b.start_h) for b in sel if b.furnace == f]
            if bars:
                ax.broken_barh(
                    bars, (y[f] - 0.35, 0.7), facecolors=colour[r], edgecolor="white", linewidth=0.5
                )
        ax.bar(0, 0, color=colour[r], label=r)  # legend entry
    setups = [(b.furnace, b.setup_start_h, b.setup_h) for b in batches if b.setup_h > 0]
    for f in furnaces:
        s = [(t, d) for ff, t, d in setups if ff == f]
        if s:
            ax.broken_barh(
                s, (y[f] - 0.35, 0.7), facecolors="none", edgecolor="#d62728", hatch="////", lw=0.8
            )
        dn = [(t0, t1 - t0) for ff, t0, t1 in downs if ff == f]
        if dn:
            ax.broken_barh(dn, (y[f] - 0.45, 0.9), facecolors="#555555", alpha=0.5)
    if setups:
        ax.bar(0, 0, facecolor="none", edgecolor="#d62728", hatch="////", label=f"setup ({len(setups)})")
    if downs:
        ax.bar(0, 0, color="#555555", alpha=0.5, label="down")
    if warmup_h > 0:
        ax.axvline(warmup_h, color="k", ls=":", lw=1)
    ax.set_yticks(range(len(furnaces)), furnaces)
    ax.set_ylim(-0.6, len(furnaces) - 0.4)
    ax.set_xlim(0, horizon_h)
    ax.set_xlabel("time (h)")
    ax.set_title(title, fontsize=10, loc="left")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    return to_svg(fig, salt)


def _natural(s: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s))


# ---------------------------------------------------------------------------------------------------------
# Queue and WIP


def steps(times_h: np.ndarray, deltas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A counter as a step function: (times, level just after each time) from +1/-1 events."""
    order = np.lexsort((-deltas, times_h))  # at equal times count arrivals first
    t = np.asarray(times_h, dtype=float)[order]
    return t, np.cumsum(np.asarray(deltas, dtype=float)[order])


def queue_wip(
    buffer: tuple[np.ndarray, np.ndarray],
    wip: tuple[np.ndarray, np.ndarray],
    capacity_lots: float | None,
    horizon_h: float,
    warmup_h: float,
    title: str,
    salt: str = "queue",
) -> str:
    """Lots in the buffer (waiting for a furnace) and lots in the line (WIP) over time, as step plots."""
    fig, axes = _fig(10.0, 4.4, 2, 1, sharex=True)
    for ax, (t, v), label, colour in (
        (axes[0], buffer, "lots in buffer", "#1f77b4"),
        (axes[1], wip, "WIP (lots in the line)", "#2ca02c"),
    ):
        if len(t):
            ax.step(np.r_[0.0, t, horizon_h], np.r_[0.0, v, v[-1]], where="post", color=colour, lw=1)
            mean = _time_average(t, v, warmup_h, horizon_h)
            ax.axhline(mean, color=colour, ls="--", lw=0.8, label=f"time average after warm-up: {mean:.1f}")
            ax.legend(loc="upper right", fontsize=8, frameon=False)
        ax.set_ylabel(label, fontsize=9)
        if warmup_h > 0:
            ax.axvline(warmup_h, color="k", ls=":", lw=1)
    if capacity_lots:
        axes[0].axhline(capacity_lots, color="#d62728", lw=0.8, ls="-.")
        axes[0].text(horizon_h, capacity_lots, " capacity", va="center", fontsize=8, color="#d62728")
    axes[1].set_xlabel("time (h)")
    axes[1].set_xlim(0, horizon_h)
    axes[0].set_title(title, fontsize=10, loc="left")
    fig.tight_layout()
    return to_svg(fig, salt)


def _time_average(t: np.ndarray, v: np.ndarray, lo: float, hi: float) -> float:
    ends = np.r_[t[1:], hi]
    s = np.clip(t, lo, hi)
    e = np.clip(ends, lo, hi)
    return float(np.sum(v * np.maximum(e - s, 0.0)) / (hi - lo)) if hi > lo else float("nan")


# ---------------------------------------------------------------------------------------------------------
# Wait before anneal


def wait_histogram(waits_h: np.ndarray, title: str, salt: str = "wait") -> str:
    """Histogram of the wait between ALD end and first anneal start, with mean and 95th percentile."""
    fig, ax = _fig(9.0, 3.4)
    w = waits_h[np.isfinite(waits_h)]
    if w.size:
        ax.hist(w, bins=min(40, max(10, int(np.sqrt(w.size)))), color="#1f77b4", alpha=0.8)
        for q, ls, lab in ((np.mean(w), "--", "mean"), (np.percentile(w, 95), ":", "95th percentile")):
            ax.axvline(q, color="k", ls=ls, lw=1, label=f"{lab}: {q:.1f} h")
        ax.legend(fontsize=8, frameon=False)
    ax.set_xlabel("wait before anneal (h)")
    ax.set_ylabel("lots")
    ax.set_title(title, fontsize=10, loc="left")
    fig.tight_layout()
    return to_svg(fig, salt)


def wait_boxplots(waits_by_scenario: Mapping[str, np.ndarray], title: str, salt: str = "wait") -> str:
    """One horizontal box plot of the wait before anneal per scenario (whiskers 5-95 %, mean as a dot)."""
    names = list(waits_by_scenario)
    data = [np.asarray(waits_by_scenario[n])[np.isfinite(waits_by_scenario[n])] for n in names]
    data = [d if d.size else np.array([np.nan]) for d in data]
    fig, ax = _fig(9.0, 1.0 + 0.32 * len(names))
    ax.boxplot(data, orientation="horizontal", whis=(5, 95), showfliers=False, showmeans=True,
               meanprops={"marker": "o", "markerfacecolor": "k", "markeredgecolor": "k", "markersize": 3})  # fmt: skip
    ax.set_yticks(range(1, len(names) + 1), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("wait before anneal (h); box: quartiles, whiskers: 5-95 %, dot: mean")
    ax.set_title(title, fontsize=10, loc="left")
    fig.tight_layout()
    return to_svg(fig, salt)


# ---------------------------------------------------------------------------------------------------------
# Recipe effects across scenarios


@dataclass
class Point:
    """One scenario's KPI mean with its 95 % interval (NaN when unknown)."""

    name: str
    mean: float
    lo: float
    hi: float


def recipe_effects(
    setpoint_c: Sequence[float],
    soak_h: Sequence[float],
    yield_: Sequence[Point],
    resistance: Sequence[Point],
    title: str,
    atmosphere: Sequence[str] | None = None,
    salt: str = "recipe",
) -> str:
    """Final yield and interfacial resistance of good lots against anneal setpoint (one line per soak time and
    atmosphere) and against soak time (one line per setpoint and atmosphere), with 95 % intervals. A group with
    two points at the same x (scenarios differing in another factor) gets markers without a line."""
    sp = np.asarray(setpoint_c, dtype=float)
    sk = np.asarray(soak_h, dtype=float)
    atm = np.asarray(list(atmosphere) if atmosphere is not None else [""] * sp.size, dtype=object)
    several_atm = len(set(atm.tolist())) > 1
    fig, axes = _fig(10.0, 6.0, 2, 2)
    for col, (x, group, xlabel, glabel) in enumerate(
        ((sp, sk, "anneal setpoint (°C)", "soak {:g} h"), (sk, sp, "soak time (h)", "{:g} °C"))
    ):
        for row, (pts, ylabel) in enumerate(
            ((yield_, "final yield"), (resistance, "R_int of good lots (Ω·cm²)"))
        ):
            ax = axes[row][col]
            m = np.array([p.mean for p in pts])
            lo = np.array([p.lo for p in pts])
            hi = np.array([p.hi for p in pts])
            keys = sorted({(float(g), str(a)) for g, a in zip(group, atm, strict=True) if np.isfinite(g)})
            for i, (g, a) in enumerate(keys):
                sel = np.nonzero((group == g) & (atm == a))[0]
                sel = sel[np.argsort(x[sel], kind="stable")]
                err = np.vstack([np.nan_to_num(m[sel] - lo[sel]), np.nan_to_num(hi[sel] - m[sel])])
                label = glabel.format(g) + (f", {a}" if several_atm else "")
                lw = 1 if np.unique(x[sel]).size == sel.size else 0
                ax.errorbar(x[sel], m[sel], yerr=np.abs(err), marker="os^Dv"[i // len(_PALETTE) % 5], ms=4,
                            capsize=3, lw=lw, color=_PALETTE[i % len(_PALETTE)], label=label)  # fmt: skip
            ax.set_xlabel(xlabel, fontsize=9)
            ax.set_ylabel(ylabel, fontsize=9)
            ax.grid(alpha=0.3)
            if row == 0:
                ax.legend(fontsize=7, frameon=False)
    axes[0][0].set_title(title, fontsize=10, loc="left")
    fig.tight_layout()
    return to_svg(fig, salt)


# ---------------------------------------------------------------------------------------------------------
# Throughput against yield


def pareto_front(x: Sequence[float], y: Sequence[float]) -> np.ndarray:
    """Mask of the points not dominated when both x and y are to be maximised (NaN points are never on it).

    A point is dominated if another is at least as good in both and strictly better in one."""
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    ok = np.isfinite(xs) & np.isfinite(ys)
    front = np.zeros(xs.size, dtype=bool)
    for i in np.nonzero(ok)[0]:
        better_eq = ok & (xs >= xs[i]) & (ys >= ys[i])
        strictly = (xs > xs[i]) | (ys > ys[i])
        front[i] = not np.any(better_eq & strictly)
    return front


def pareto(throughput: Sequence[Point], yield_: Sequence[Point], title: str, salt: str = "pareto") -> str:
    """Throughput against yield for every scenario with 95 % intervals; the Pareto front marked and labelled."""
    tx = np.array([p.mean for p in throughput])
    yy = np.array([p.mean for p in yield_])
    front = pareto_front(tx, yy)
    fig, ax = _fig(9.0, 5.0)
    xerr = np.abs(np.vstack([[p.mean - p.lo for p in yield_], [p.hi - p.mean for p in yield_]]))
    yerr = np.abs(np.vstack([[p.mean - p.lo for p in throughput], [p.hi - p.mean for p in throughput]]))
    ax.errorbar(yy, tx, xerr=np.nan_to_num(xerr), yerr=np.nan_to_num(yerr), fmt="none", ecolor="#999999",
                lw=0.8, capsize=2)  # fmt: skip
    ax.scatter(yy[~front], tx[~front], color="#1f77b4", s=22, label="dominated", zorder=3)
    ax.scatter(yy[front], tx[front], color="#d62728", s=40, marker="D", label="Pareto front", zorder=4)
    idx = np.nonzero(front)[0]
    idx = idx[np.argsort(yy[idx])]
    if idx.size > 1:
        ax.plot(yy[idx], tx[idx], color="#d62728", lw=1, ls="--", zorder=2)
    rank = {int(j): k for k, j in enumerate(idx)}  # stagger the front's labels: its points are often close
    for i, p in enumerate(throughput):
        if np.isfinite(yy[i]) and np.isfinite(tx[i]):
            dy = 3 - 9 * rank[i] if front[i] else 3
            ax.annotate(p.name, (yy[i], tx[i]), xytext=(-4 if front[i] else 4, dy), textcoords="offset points",
                        fontsize=7, ha="right" if front[i] else "left",
                        color="#d62728" if front[i] else "#333333")  # fmt: skip
    ax.set_xlabel("final yield (good / finished lots)")
    ax.set_ylabel("throughput (good kg/h)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="best")
    ax.set_title(title, fontsize=10, loc="left")
    fig.tight_layout()
    return to_svg(fig, salt)


# ---------------------------------------------------------------------------------------------------------
# Warm-up


def welch(
    t_h: np.ndarray,
    averaged: np.ndarray,
    moving: np.ndarray,
    suggested_h: float,
    configured_h: float,
    ylabel: str,
    title: str,
    salt: str = "welch",
) -> str:
    """Welch's plot: the replication-averaged series, its moving average, the MSER-5 and the configured warm-up."""
    fig, ax = _fig(10.0, 3.6)
    ax.plot(t_h, averaged, color="#bbbbbb", lw=0.8, label="mean over replications")
    ax.plot(t_h[: moving.size], moving, color="#1f77b4", lw=1.5, label="Welch moving average")
    ax.axvline(
        suggested_h,
        color="#d62728",
        ls="--",
        lw=1.2,
        label=f"suggested warm-up (MSER-5): {suggested_h:.0f} h",
    )
    ax.axvline(configured_h, color="k", ls=":", lw=1, label=f"scenario warm-up: {configured_h:.0f} h")
    ax.set_xlabel("time (h)")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, frameon=False)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=10, loc="left")
    fig.tight_layout()
    return to_svg(fig, salt)


def equipment(units: Sequence[str], oee: Sequence[float], share: Sequence[float], title: str,
              salt: str = "equipment") -> str:  # fmt: skip
    """OEE and bottleneck share per unit, side by side bars."""
    fig, ax = _fig(9.0, 3.2)
    x = np.arange(len(units))
    ax.bar(x - 0.2, oee, width=0.4, label="OEE", color="#4c78a8")
    ax.bar(x + 0.2, share, width=0.4, label="bottleneck share", color="#e45756")
    ax.set_xticks(x, list(units))
    ax.set_ylim(0, 1)
    ax.set_ylabel("fraction")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    return to_svg(fig, salt)
