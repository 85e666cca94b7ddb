"""Warm-up (initial-transient) diagnostics: MSER-5 truncation (White 1997) and Welch's moving-average curve.

Numerics on arrays first; then `analyze_runs` (stored lots of runs -> KPI series -> suggestion) and `plot_welch`,
which `twin warmup` calls. The database itself is reached only through a `twin.store.Store` passed in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from twin.errors import TwinError


@dataclass(frozen=True)
class MserResult:
    truncation_index: int
    """Observations to delete from the start (a multiple of `batch`)."""
    batch_means: np.ndarray
    """The means of consecutive batches of `batch` observations (a trailing partial batch is dropped)."""
    statistic: np.ndarray
    """MSER statistic for deleting d = 0, 1, ... batches (only the first half of the batches is searched)."""
    batch: int = 5

    @property
    def truncation_batches(self) -> int:
        return self.truncation_index // self.batch


def mser(series: Sequence[float], batch: int = 5) -> MserResult:
    """MSER-b truncation point of one output series (b = 5: MSER-5).

    Batch the series into means Z_1..Z_m of `batch` consecutive observations, then pick the number of deleted batches
    d in [0, m/2) that minimises  sum_{j>d} (Z_j - mean(Z_{d+1..m}))^2 / (m - d)^2,  i.e. the squared standard error
    of the truncated mean. A minimum in the second half is not trusted (White 1997), so the search stops at m/2.
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    y = np.asarray(series, dtype=float)
    if y.ndim != 1:
        raise ValueError("mser expects a 1-D series")
    if not np.all(np.isfinite(y)):
        raise ValueError("mser series contains NaN or infinite values")
    m = y.size // batch
    if m < 4:
        raise TwinError(f"MSER-{batch} needs at least {4 * batch} observations, got {y.size}")
    z = y[: m * batch].reshape(m, batch).mean(axis=1)
    # suffix sums give every truncated mean and sum of squares in O(m)
    rev = z[::-1]
    s1 = np.cumsum(rev)[::-1]  # s1[d] = sum z[d:]
    s2 = np.cumsum(rev * rev)[::-1]
    cnt = m - np.arange(m)
    sse = np.maximum(s2 - s1 * s1 / cnt, 0.0)
    d_max = m // 2  # search d = 0 .. m/2 - 1
    stat = sse[:d_max] / cnt[:d_max] ** 2
    d_star = int(np.argmin(stat))
    return MserResult(truncation_index=d_star * batch, batch_means=z, statistic=stat, batch=batch)


def replication_average(series_by_replication: Sequence[Sequence[float]]) -> np.ndarray:
    """Pointwise mean over replications (Welch's first step); ragged series are cut to the shortest one."""
    arrays = [np.asarray(s, dtype=float) for s in series_by_replication]
    if not arrays or min(a.size for a in arrays) == 0:
        raise TwinError("no data for the warm-up analysis (no replication has observations)")
    n = min(a.size for a in arrays)
    stacked = np.vstack([a[:n] for a in arrays])
    return _nanmean0(stacked)


def welch_curve(
    series_by_replication: Sequence[Sequence[float]], window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Welch's (1983) moving average of the replication-averaged series.

    Returns (x, ma) with x the 0-based observation index and ma[i] the mean of the averaged series over
    [i - w, i + w]; the first w points use the shrinking window [0, 2i]. Length: m - w for m observations.
    """
    ybar = replication_average(series_by_replication)
    m = ybar.size
    w = int(window)
    if w < 0:
        raise ValueError(f"window must be >= 0, got {window}")
    if m - w < 1 or 2 * w + 1 > m:
        raise TwinError(f"Welch window {w} is too wide for a series of {m} observations (need 2w+1 <= {m})")
    c = np.concatenate([[0.0], np.cumsum(ybar)])
    i = np.arange(m - w)
    lo = np.where(i < w, 0, i - w)
    hi = np.where(i < w, 2 * i, i + w)  # inclusive
    ma = (c[hi + 1] - c[lo]) / (hi - lo + 1)
    return i.astype(float), ma


def _as_replications(times_h: object, values: object) -> list[tuple[np.ndarray, np.ndarray]]:
    seq = list(times_h)  # type: ignore[call-overload]
    one = len(seq) == 0 or np.ndim(seq[0]) == 0
    times_list = [times_h] if one else list(times_h)  # type: ignore[arg-type]
    values_list = [values] if one else list(values)  # type: ignore[arg-type]
    if len(times_list) != len(values_list):
        raise ValueError("times_h and values must have the same number of replications")
    out = []
    for t, v in zip(times_list, values_list):
        t = np.asarray(t, dtype=float)
        v = np.asarray(v, dtype=float)
        if t.shape != v.shape:
            raise ValueError("times_h and values must have the same length in every replication")
        out.append((t, v))
    return out


def binned_series(
    times_h: Sequence[float],
    values: Sequence[float],
    horizon_h: float,
    n_bins: int,
    kind: Literal["points", "rate", "step"] = "points",
) -> np.ndarray:
    """One replication's KPI on a regular grid of `n_bins` bins over [0, horizon_h].

    `points`: mean of the observations (e.g. a lot's wait, indexed by its release time) falling in each bin, NaN for
    an empty bin. `rate`: sum of the values in each bin per hour (e.g. good kg by exit time -> kg/h). `step`: time
    average of a piecewise-constant signal that takes values[i] from times_h[i] until the next time (e.g. WIP after
    each event); before the first time it is 0.
    """
    t = np.asarray(times_h, dtype=float)
    v = np.asarray(values, dtype=float)
    edges = np.linspace(0.0, float(horizon_h), n_bins + 1)
    if kind == "points":
        ok = np.isfinite(t) & np.isfinite(v) & (t >= 0) & (t <= horizon_h)
        idx = np.clip(np.searchsorted(edges, t[ok], side="right") - 1, 0, n_bins - 1)
        sums = np.bincount(idx, weights=v[ok], minlength=n_bins)
        counts = np.bincount(idx, minlength=n_bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    if kind == "rate":
        ok = np.isfinite(t) & np.isfinite(v) & (t >= 0) & (t <= horizon_h)
        idx = np.clip(np.searchsorted(edges, t[ok], side="right") - 1, 0, n_bins - 1)
        return np.bincount(idx, weights=v[ok], minlength=n_bins) / np.diff(edges)
    if kind == "step":
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
        # integral of the step function from 0 to each edge
        starts = np.clip(t, 0.0, horizon_h)
        ends = np.clip(np.append(t[1:], horizon_h), 0.0, horizon_h)
        integral = np.zeros(edges.size)
        for j, e in enumerate(edges):  # n_bins is small (~200); vectorised over segments
            integral[j] = np.sum(v * np.clip(np.minimum(ends, e) - starts, 0.0, None))
        return np.diff(integral) / np.diff(edges)
    raise ValueError(f"kind must be 'points', 'rate' or 'step', got {kind!r}")


def _nanmean0(a: np.ndarray) -> np.ndarray:
    """Column means ignoring NaN; NaN (without a warning) for an all-NaN column."""
    ok = np.isfinite(a)
    count = ok.sum(axis=0)
    total = np.where(ok, a, 0.0).sum(axis=0)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _fill_gaps(y: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaN bins (ends take the nearest value)."""
    ok = np.isfinite(y)
    if ok.all():
        return y
    x = np.arange(y.size)
    return np.interp(x, x[ok], y[ok])


def default_bins(n_obs_per_replication: float, lo: int = 40, hi: int = 200) -> int:
    """About one observation per bin and replication, between `lo` and `hi` bins."""
    return int(np.clip(round(n_obs_per_replication), lo, hi))


@dataclass(frozen=True)
class WarmupSeries:
    """A KPI averaged over replications on a regular time grid, with its MSER result."""

    bin_h: float
    averaged: np.ndarray
    by_replication: list[np.ndarray]
    result: MserResult

    @property
    def warmup_h(self) -> float:
        return self.result.truncation_index * self.bin_h


def warmup_series(
    times_h: object,
    values: object,
    horizon_h: float,
    batch: int = 5,
    n_bins: int | None = None,
    kind: Literal["points", "rate", "step"] = "points",
    min_coverage: float = 0.5,
) -> WarmupSeries:
    """Bin each replication's series, average over replications (Welch), drop trailing bins, run MSER-`batch`.

    Trailing bins seen by fewer than `min_coverage` of the replications are dropped (e.g. lots released near the
    horizon that never reached the anneal). `times_h`/`values` are one replication's arrays or lists of them.
    """
    reps = _as_replications(times_h, values)
    if horizon_h <= 0:
        raise ValueError(f"horizon_h must be positive, got {horizon_h}")
    if n_bins is None:
        n_obs = np.mean([np.isfinite(v).sum() for _, v in reps])
        n_bins = default_bins(n_obs) if kind == "points" else 200
    binned = [binned_series(t, v, horizon_h, n_bins, kind) for t, v in reps]
    stacked = np.vstack(binned)
    cover = np.isfinite(stacked).mean(axis=0)
    keep = np.nonzero(cover >= min_coverage)[0]
    if keep.size == 0:
        raise TwinError("no data for the warm-up analysis (every bin is empty)")
    stacked = stacked[:, : keep[-1] + 1]
    avg = _fill_gaps(_nanmean0(stacked))
    res = mser(avg, batch=batch)
    return WarmupSeries(
        bin_h=float(horizon_h) / n_bins, averaged=avg, by_replication=list(stacked), result=res
    )


def suggest_warmup_h(
    times_h: object,
    values: object,
    horizon_h: float,
    batch: int = 5,
    n_bins: int | None = None,
    kind: Literal["points", "rate", "step"] = "points",
) -> float:
    """MSER-`batch` warm-up in hours for one KPI series, averaged over replications first (Welch).

    `times_h`, `values`: one replication's arrays, or a list of arrays per replication (e.g. each lot's wait before
    anneal at its release time: kind="points"; or WIP after each release/exit event: kind="step").
    """
    return warmup_series(times_h, values, horizon_h, batch=batch, n_bins=n_bins, kind=kind).warmup_h


def wip_steps(release_h: Sequence[float], done_h: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """WIP as a step function: (event times, lots in the line just after each event) from release and exit times.

    A lot with a NaN exit (still in work at the horizon) counts until the end.
    """
    r = np.asarray(release_h, dtype=float)
    d = np.asarray(done_h, dtype=float)
    r_ok = r[np.isfinite(r)]
    d_ok = d[np.isfinite(d)]
    t = np.concatenate([r_ok, d_ok])
    step = np.concatenate([np.ones(r_ok.size), -np.ones(d_ok.size)])
    order = np.lexsort((-step, t))  # at equal times count arrivals first
    t, step = t[order], step[order]
    return t, np.cumsum(step)


# -- runs in the database -> KPI series -> suggestion ---------------------------------------------------------
@dataclass(frozen=True)
class KpiSeries:
    """How one warm-up KPI series is built from a replication's `lots` rows."""

    name: str
    unit: str
    description: str
    kind: Literal["points", "rate", "step"]


SERIES: dict[str, KpiSeries] = {
    s.name: s
    for s in (
        KpiSeries("wait", "h", "wait between ALD end and anneal start, by lot release time", "points"),
        KpiSeries(
            "wip", "lots", "lots in the line (released, not yet good or scrapped), time average", "step"
        ),
        KpiSeries("lead_time", "h", "release to leaving the line, by lot release time", "points"),
        KpiSeries("output", "kg/h", "good kg leaving the line per hour, by exit time", "rate"),
    )
}
DEFAULT_SERIES = ("wait", "wip")


def lot_series(
    lots: dict[str, np.ndarray], kpi: str, horizon_h: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """(times_h, values, end_h) of one replication's KPI series from its lots columns (NaN = missing).

    Lot-based series indexed by release time end at `horizon_h` minus the 95th percentile of the time the value
    takes to become known (release -> anneal start, release -> exit), so that lots still on their way at the horizon
    (whose long waits are not known yet) do not pull the tail down.
    """
    release = lots["release_h"]
    if kpi == "wip":
        t, v = wip_steps(release, lots["done_h"])
        return t, v, horizon_h
    if kpi == "output":
        good = lots["status"] == "good"
        return lots["done_h"][good], lots["mass_kg"][good], horizon_h
    if kpi == "wait":
        value, known_at = lots["wait_h"], lots["anneal_start_h"]
    elif kpi == "lead_time":
        value, known_at = lots["done_h"] - release, lots["done_h"]
    else:
        raise TwinError(f"unknown warm-up KPI {kpi!r}; choose from {', '.join(SERIES)}")
    ok = np.isfinite(value) & np.isfinite(known_at)
    delay = known_at[ok] - release[ok]
    end = horizon_h - (float(np.percentile(delay, 95)) if delay.size else 0.0)
    keep = ok & (release <= end)
    return release[keep], value[keep], end


@dataclass(frozen=True)
class RunWarmup:
    """The warm-up analysis of one KPI of one stored run."""

    run_id: int
    scenario: str
    kpi: str
    replications: int
    horizon_h: float
    stored_warmup_h: float
    series: WarmupSeries

    @property
    def warmup_h(self) -> float:
        return self.series.warmup_h


def _lots_by_replication(store: object, run_id: int) -> dict[int, dict[str, np.ndarray]]:
    cols = ("replication", "release_h", "done_h", "wait_h", "anneal_start_h", "status", "mass_kg")
    tbl = store.query(  # type: ignore[attr-defined]
        f"SELECT {', '.join(cols)} FROM lots WHERE run_id = ? ORDER BY replication, release_h", [run_id]
    )
    data = {c: tbl.column(c).to_numpy(zero_copy_only=False) for c in cols}
    out: dict[int, dict[str, np.ndarray]] = {}
    reps = data["replication"].astype(int)
    for r in np.unique(reps):
        sel = reps == r
        out[int(r)] = {
            c: (
                np.asarray(data[c][sel], dtype=object)
                if c == "status"
                else np.asarray(data[c][sel], dtype=float)
            )
            for c in cols[1:]
        }
    return out


def resolve_runs(store: object, item: str) -> list[int]:
    """Run ids named by `item`: a run id, `study:ID`, a study name or a study YAML file (its runs, in order)."""
    item = item.strip()
    if item.isdigit():
        return [int(store.run(int(item))["run_id"])]  # type: ignore[attr-defined]
    if item.startswith("study:"):
        sid_text = item[len("study:") :]
        if not sid_text.isdigit():
            raise TwinError(f"bad study reference {item!r}: use study:ID with a whole number")
        sid: int | None = int(sid_text)
        if store.query("SELECT 1 FROM studies WHERE study_id = ?", [sid]).num_rows == 0:  # type: ignore[attr-defined]
            raise TwinError(f"no study with id {sid} in {store.path}")  # type: ignore[attr-defined]
    else:
        name = item
        if item.endswith((".yaml", ".yml")):
            from twin.study import study_name

            name = study_name(item)
        sid = (
            store.query(  # type: ignore[attr-defined]
                "SELECT max(study_id) AS sid FROM studies WHERE name = ?", [name]
            )
            .column("sid")[0]
            .as_py()
        )
        if sid is None:
            raise TwinError(
                f"{item!r} is neither a run id nor a study in {store.path} (see `twin runs list`)"  # type: ignore[attr-defined]
            )
    ids = store.query("SELECT run_id FROM runs WHERE study_id = ? ORDER BY run_id", [sid])  # type: ignore[attr-defined]
    if ids.num_rows == 0:
        raise TwinError(f"study {item} (id {sid}) in {store.path} has no completed runs yet")  # type: ignore[attr-defined]
    return [int(r) for r in ids.column("run_id").to_pylist()]


def analyze_runs(
    store: object,
    item: str,
    kpis: Sequence[str] = DEFAULT_SERIES,
    batch: int = 5,
    n_bins: int | None = None,
) -> list[RunWarmup]:
    """MSER-`batch` warm-up of every KPI series of the stored run(s) named by `item` (see `resolve_runs`)."""
    unknown = [k for k in kpis if k not in SERIES]
    if unknown:
        raise TwinError(f"unknown warm-up KPI {unknown[0]!r}; choose from {', '.join(SERIES)}")
    out = []
    for run_id in resolve_runs(store, item):
        run = store.run(run_id)  # type: ignore[attr-defined]
        horizon_h = float(run["horizon_h"])
        reps = _lots_by_replication(store, run_id)
        if not reps:
            raise TwinError(f"run {run_id} ({run['scenario_name']}) has no lots to analyse")
        for kpi in kpis:
            spec = SERIES[kpi]
            series = [lot_series(lots, kpi, horizon_h) for lots in reps.values()]
            if all(t.size == 0 for t, _, _ in series):
                raise TwinError(f"run {run_id} ({run['scenario_name']}): no {kpi} observations to analyse")
            end_h = min(e for _, _, e in series)
            if end_h <= 0:
                raise TwinError(f"run {run_id}: the {kpi} series ends before it starts (horizon too short)")
            try:
                ws = warmup_series(
                    [t for t, _, _ in series], [v for _, v, _ in series], end_h, batch=batch, n_bins=n_bins,
                    kind=spec.kind,
                )  # fmt: skip
            except TwinError as exc:
                raise TwinError(f"run {run_id} ({run['scenario_name']}), {kpi}: {exc}") from None
            out.append(
                RunWarmup(
                    run_id=run_id,
                    scenario=str(run["scenario_name"]),
                    kpi=kpi,
                    replications=len(reps),
                    horizon_h=horizon_h,
                    stored_warmup_h=float(run["warmup_h"] or 0.0),
                    series=ws,
                )
            )
    return out


def plot_welch(results: Sequence[RunWarmup], path: str, window: int | None = None) -> None:
    """Welch plot: per KPI the replication-averaged series (thin) and its moving average (bold), per run, with the
    MSER suggestion (dashed) and the stored warm-up (dotted). SVG, PNG or PDF by the file's suffix (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kpis = list(dict.fromkeys(r.kpi for r in results))
    fig, axes = plt.subplots(len(kpis), 1, figsize=(8, 2.8 * len(kpis)), squeeze=False, sharex=False)
    for ax, kpi in zip(axes[:, 0], kpis):
        rows = [r for r in results if r.kpi == kpi]
        for j, r in enumerate(rows):
            ws = r.series
            m = ws.averaged.size
            w = window if window is not None else max(1, m // 40)
            w = min(w, (m - 1) // 2)
            x, ma = welch_curve([ws.averaged], w)
            color = f"C{j % 10}"
            hours = (np.arange(m) + 0.5) * ws.bin_h
            ax.plot(hours, ws.averaged, color=color, alpha=0.25, linewidth=0.8)
            label = f"run {r.run_id} {r.scenario}: MSER-{ws.result.batch} {r.warmup_h:.0f} h"
            ax.plot((x + 0.5) * ws.bin_h, ma, color=color, linewidth=1.8, label=label)
            ax.axvline(r.warmup_h, color=color, linestyle="--", linewidth=1.2)
            ax.axvline(r.stored_warmup_h, color=color, linestyle=":", linewidth=1.0)
        spec = SERIES[kpi]
        ax.set_ylabel(f"{kpi} [{spec.unit}]")
        ax.set_title(spec.description, fontsize=9)
        ax.legend(fontsize=7, loc="best")
    axes[-1, 0].set_xlabel("simulated time [h]")
    fig.suptitle(
        "Welch plot: thin = replication average, bold = moving average, dashed = MSER suggestion, dotted = stored",
        fontsize=8,
    )
    fig.tight_layout()
    from twin.outputs import write_with

    fmt = Path(path).suffix.lstrip(".").lower() or None  # the temporary name's suffix says nothing
    try:
        write_with(path, lambda tmp: fig.savefig(tmp, format=fmt))
    except ValueError as exc:
        raise TwinError(f"cannot write plot {path}: {exc}") from None
    finally:
        plt.close(fig)
