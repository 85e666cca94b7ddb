"""Performance benchmarks of the twin, measured as ratios in one interleaved run, each target printed PASS/FAIL.

    python benchmarks/run.py            # the full suite (a few minutes on 2 cores)
    python benchmarks/run.py --quick    # smoke mode (shorter horizons, fewer repetitions)

Run by hand, not by CI. Timings on a shared machine are noisy: everything that is compared is interleaved.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from bare_simpy_line import BareLine  # noqa: E402

from plant import physics  # noqa: E402
from plant.line import Line  # noqa: E402
from plant.trace import Trace  # noqa: E402
from twin import runner, stats  # noqa: E402
from twin.scenario import load_scenario  # noqa: E402

BASELINE = ROOT / "scenarios" / "baseline.yaml"
YEAR_H = 8760.0
MONTH_H = 730.0
RESULTS: list[tuple[str, bool, str]] = []  # (target, passed, measured)


# -- helpers ---------------------------------------------------------------------------------------------------
def scenario(hours: float, path: Path = BASELINE) -> Any:
    sc = load_scenario(path)
    return sc.model_copy(update={"horizon_h": float(hours), "warmup_h": min(sc.warmup_h, hours / 10)})


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def target(name: str, passed: bool, measured: str) -> None:
    RESULTS.append((name, passed, measured))
    print(f"  {'PASS' if passed else 'FAIL'}  {name}: {measured}")


def header(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 100 - len(title)))


def twin_once(sc: Any, seed: int, rep: int) -> tuple[float, int, int, dict]:
    """The twin's run as the target defines it: model + quality + recording to Arrow (no DuckDB write)."""
    gc.collect()  # the previous run's garbage is collected here, not inside the next measurement
    t0 = time.perf_counter()
    line = Line(sc, seed, rep, keep_lots=False)  # as twin.runner runs it
    trace = line.run()
    tables = trace.tables()
    wall = time.perf_counter() - t0
    return wall, next(line.env._eid), len(trace.lots), tables


def bare_once(sc: Any, seed: int, rep: int, lean_queues: bool = False) -> tuple[float, int, int]:
    gc.collect()
    t0 = time.perf_counter()
    counts = BareLine(sc, seed, rep, lean_queues=lean_queues).run()
    return time.perf_counter() - t0, counts.events, counts.released


_PASS = SimpleNamespace(verdict="pass", reason="ok", props=(math.nan,) * len(physics.Properties._fields))
_PHYSICS_STUBS: dict[str, Callable[..., Any]] = {
    "coater": lambda *a, **k: lambda z: None,
    "waiter": lambda *a, **k: lambda state, hours: None,
    "precursor_mol": lambda *a, **k: 0.0,
    "wait_budget_h": lambda *a, **k: math.inf,
    "anneal": lambda *a, **k: None,
    "annealer": lambda params: lambda state, dose, atmosphere: None,
    "quality_model": lambda params: SimpleNamespace(assess=lambda *a: _PASS, properties=lambda state: None),
}


def _drop(row: tuple) -> None:
    return None


@contextlib.contextmanager
def patched(no_quality: bool, no_recording: bool) -> Iterator[None]:
    """Temporarily replace the per-lot quality model and/or event recording by no-ops (for the time shares)."""
    saved: list[tuple[Any, str, Any]] = []
    if no_quality:
        for name, stub in _PHYSICS_STUBS.items():
            saved.append((physics, name, getattr(physics, name)))
            setattr(physics, name, stub)
    if no_recording:
        init = Trace.__init__

        def init_without_recording(self: Trace, *a: Any, **k: Any) -> None:
            init(self, *a, **k)
            self.record = _drop  # the hot path `trace.record(pack(...))` keeps nothing

        saved.append((Trace, "__init__", init))
        Trace.__init__ = init_without_recording  # type: ignore[method-assign]
        saved.append((Trace, "_lot_row", Trace._lot_row))
        Trace._lot_row = lambda self, lot: b""  # type: ignore[method-assign]  # lot_done still lets the lot go
    try:
        yield
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)


def run_seconds(sc: Any, seed: int, rep: int, no_quality: bool = False, no_recording: bool = False) -> float:
    with patched(no_quality, no_recording):
        t0 = time.perf_counter()
        Line(sc, seed, rep, keep_lots=False).run()
        return time.perf_counter() - t0


# -- 1. twin vs bare SimPy reference ---------------------------------------------------------------------------
def bench_reference(hours: float, reps: int, seed: int) -> None:
    header(f"twin vs bare SimPy reference: baseline line, {hours:g} h, seed {seed}, {reps} rounds")
    print("  ref: the reference with simpy.Store queues (SimPy's idiom; the target's baseline)")
    print("  lean: the same with the twin's LotQueue technique, for information: the twin's features alone")
    sc = scenario(hours)
    bare_once(sc, seed, 99)  # warm-up: imports, first Arrow conversions
    bare_once(sc, seed, 99, lean_queues=True)
    twin_once(sc, seed, 99)
    runs: dict[str, Callable[[int], tuple[float, int, int]]] = {
        "ref": lambda i: bare_once(sc, seed, i),
        "lean": lambda i: bare_once(sc, seed, i, lean_queues=True),
        "twin": lambda i: twin_once(sc, seed, i)[:3],
    }
    orders = [("ref", "lean", "twin"), ("twin", "lean", "ref"), ("lean", "twin", "ref"),
              ("ref", "twin", "lean"), ("twin", "ref", "lean"), ("lean", "ref", "twin")]  # fmt: skip
    rows: dict[str, list[tuple[float, int, int]]] = {k: [] for k in runs}
    ratios, lean_ratios = [], []
    print(f"  {'round':>5} {'ref s':>8} {'lean s':>8} {'twin s':>8} {'twin/ref':>9} {'twin/lean':>10} "
          f"{'events ref/lean/twin':>22} {'lots':>6}")  # fmt: skip
    for i in range(reps):  # every order of the three in turn: a drift of the machine's speed favours none
        got = {k: runs[k](i) for k in orders[i % len(orders)]}
        if len({g[2] for g in got.values()}) != 1:
            print(f"  warning: round {i} released {', '.join(f'{k} {g[2]}' for k, g in got.items())} lots")
        for k, g in got.items():
            rows[k].append(g)
        (rb, eb, _), (rl, el, _), (rt, et, lots) = got["ref"], got["lean"], got["twin"]
        ratios.append(rt / rb)
        lean_ratios.append(rt / rl)
        events = f"{eb}/{el}/{et}"
        print(f"  {i:>5} {rb:8.3f} {rl:8.3f} {rt:8.3f} {rt / rb:9.2f} {rt / rl:10.2f} {events:>22} {lots:6d}")
    for name, rs in rows.items():
        t = median([r[0] for r in rs])
        ev_s = median([r[1] / r[0] for r in rs])
        lots_s = median([r[2] / r[0] for r in rs])
        print(f"  {name:>9}: median {t:.3f} s, {ev_s:,.0f} SimPy events/s, {lots_s:,.0f} lots/s")
    r = median(ratios)
    print(f"  ratio twin/ref round by round: {', '.join(f'{x:.2f}' for x in ratios)}; median {r:.2f}")
    rl = median(lean_ratios)
    print(f"  ratio twin/lean (information): {', '.join(f'{x:.2f}' for x in lean_ratios)}; median {rl:.2f}")
    target("twin full run (model + quality + recording) <= 2.0x bare SimPy", r <= 2.0, f"{r:.2f}x")


# -- 2. where a `twin run` spends its time, and the DuckDB write ----------------------------------------------
def bench_shares(hours: float, replications: int, rounds: int, seed: int) -> None:
    from twin.store import Store

    header(
        f"a twin run: {replications} replications x {hours:g} h, then the DuckDB write (store API); "
        f"{rounds} rounds"
    )
    sc = scenario(hours)
    twin_once(scenario(24.0), seed, 0)  # imports and first conversions out of the shares (when run alone)
    results = []
    for rep in range(replications):  # the run that every round writes
        tables = Line(sc, seed, rep, keep_lots=False).run().tables()
        k = stats.replication_kpis(tables, warmup_h=sc.warmup_h, horizon_h=sc.horizon_h)
        results.append(runner.ReplicationResult(rep, seed, tables, k, 0.0))
    run = runner.collect(sc, seed, results, 0.0)
    n_events = sum(r.tables["events"].num_rows for r in results)
    n_rows = sum(t.num_rows for r in results for t in r.tables.values())
    # every round times the parts of the run and then its write, so that a slow or fast spell of the machine falls
    # on both sides of the share (the write alone used to be timed after all the simulations)
    parts: list[dict[str, float]] = []
    closes: list[float] = []  # after each write: DuckDB checkpoints what the write left in its log
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        for _ in range(rounds):
            core = rec = full = tabs = kpis = 0.0
            for rep in range(replications):  # interleaved variants of the same replication
                core += run_seconds(sc, seed, rep, no_quality=True, no_recording=True)
                rec += run_seconds(sc, seed, rep, no_quality=True)
                t0 = time.perf_counter()
                trace = Line(sc, seed, rep, keep_lots=False).run()
                t1 = time.perf_counter()
                tables = trace.tables()
                t2 = time.perf_counter()
                stats.replication_kpis(tables, warmup_h=sc.warmup_h, horizon_h=sc.horizon_h)
                t3 = time.perf_counter()
                full, tabs, kpis = full + t1 - t0, tabs + t2 - t1, kpis + t3 - t2
            store = Store(db)
            try:
                t0 = time.perf_counter()
                runner.store_run(store, run)
                t1 = time.perf_counter()
            finally:
                store.close()
            write = t1 - t0
            closes.append(time.perf_counter() - t1)
            parts.append({
                "simulation (SimPy + line logic)": core, "quality model": max(0.0, full - rec),
                "recording (events + Arrow tables)": max(0.0, rec - core) + tabs, "KPIs": kpis, "DuckDB write": write,
            })  # fmt: skip
        size = db.stat().st_size
    shares = [p["DuckDB write"] / sum(p.values()) for p in parts]
    med = {name: median([p[name] for p in parts]) for name in parts[0]}
    total = sum(med.values())
    for name, v in med.items():
        print(f"  {name:<36} {v:7.3f} s  {100 * v / total:5.1f} %  (median of {rounds} rounds)")
    print(f"  {'total':<36} {total:7.3f} s")
    w = med["DuckDB write"]
    print(f"  write: {n_events:,} event rows ({n_rows:,} rows in all tables) in {w:.3f} s (median of {rounds}): "
          f"{n_events / w:,.0f} event rows/s, {n_rows / w:,.0f} rows/s")  # fmt: skip
    print(f"  write share round by round: {', '.join(f'{100 * x:.1f} %' for x in shares)}")
    c = median(closes)
    print(
        f"  the close after the write (DuckDB checkpoints what it left in the log): {c:.3f} s (median of {rounds}); "
        f"write + close {n_events / (w + c) / 1e6:.2f} M event rows/s (information)"
    )
    mb_per_mev = size / 1e6 / (rounds * n_events / 1e6)
    print(
        f"  file: {size / 1e6:.1f} MB for {rounds} copies of the run = {mb_per_mev:.1f} MB per million events"
    )
    share = median(shares)
    target("DuckDB write <= 15 % of the run's total time", share <= 0.15, f"{100 * share:.1f} %")
    target("DuckDB write >= 1 M event rows/s", n_events / w >= 1e6, f"{n_events / w / 1e6:.2f} M/s")


# -- 3. a study: processes vs serial ---------------------------------------------------------------------------
def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _stop_forkserver() -> None:
    """Stop this process's multiprocessing forkserver, if one runs. It outlives a pool: without this, only the
    first study of the benchmark would pay for starting it (about a second: the imports the workers share)."""
    from multiprocessing import forkserver

    stop = getattr(forkserver._forkserver, "_stop", None)  # private, since Python 3.8 (for its own tests)
    if stop is not None:
        stop()


def study_seconds(executor: str, sc: Any, runs: int, seed: int) -> tuple[float, str]:
    tasks = [(0, sc, seed, r) for r in range(runs)]
    try:
        from twin.executors import make_executor
    except ImportError:  # the study engine is not there: a plain process pool over the same pure function
        from concurrent.futures import ProcessPoolExecutor

        t0 = time.perf_counter()
        if executor == "serial":
            for t in tasks:
                runner.simulate_replication(*t[1:])
        else:
            with ProcessPoolExecutor(cores()) as pool:
                list(pool.map(runner.simulate_replication, *zip(*[t[1:] for t in tasks])))
        return time.perf_counter() - t0, "" if executor == "serial" else "concurrent.futures pool"
    _stop_forkserver()  # every study pays its pool's start, as a `twin study` command does
    t0 = time.perf_counter()
    with make_executor(executor, cores()) as ex:
        n = sum(1 for _ in ex.run(tasks))
    assert n == runs
    wall = time.perf_counter() - t0
    up = getattr(ex, "pool_up_s", None)
    return wall, "" if up is None else f"pool up in {up:.2f} s, {ex.local_tasks} runs here meanwhile"


def bench_study(hours: float, runs: int, reps: int, seed: int) -> None:
    n = cores()
    header(
        f"a study of {runs} runs x {hours:g} h: --executor processes ({n} workers) vs serial, {reps} pairs"
    )
    sc = scenario(hours)
    speedups = []
    for i in range(reps):
        # serial first, then processes first: a drift of the machine's speed favours neither
        order = ("serial", "processes") if i % 2 == 0 else ("processes", "serial")
        timed = {executor: study_seconds(executor, sc, runs, seed) for executor in order}
        (ts, _), (tp, how) = timed["serial"], timed["processes"]
        speedups.append(ts / tp)
        print(f"  pair {i}: serial {ts:.2f} s, processes {tp:.2f} s, speed-up {ts / tp:.2f} ({how})")
    s = median(speedups)
    target(f"processes speed-up >= 0.85 x {n} cores = {0.85 * n:.2f}", s >= 0.85 * n, f"{s:.2f}")


# -- 4. memory and growth with the horizon ---------------------------------------------------------------------
def peak_rss_kb() -> float:
    """This process's peak resident set size in KB. On Linux from /proc (VmHWM): getrusage's ru_maxrss survives
    exec, so a child started by a big parent would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return float(line.split()[1])
    except OSError:
        pass
    import resource

    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def child_memory(hours: float, seed: int) -> None:
    """In a fresh process: peak memory of one twin run (run + Arrow tables) and the process peak RSS."""
    import tracemalloc

    import pyarrow as pa

    sc = scenario(hours)
    twin_once(scenario(24.0), seed, 0)  # imports and lazy initialisations out of the measurement
    base_rss = peak_rss_kb()
    arrow0 = pa.total_allocated_bytes()
    tracemalloc.start()
    line = Line(sc, seed, 0, keep_lots=False)
    trace = line.run()
    tables = trace.tables()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    arrow = pa.total_allocated_bytes() - arrow0
    print(json.dumps({
        "hours": hours, "lots": len(trace.lots), "events": tables["events"].num_rows,
        "py_peak_b": peak, "arrow_b": arrow, "rss_kb": peak_rss_kb(),
        "base_rss_kb": base_rss,
    }))  # fmt: skip


def memory(hours: float, seed: int) -> dict[str, float]:
    cmd = [sys.executable, str(Path(__file__)), "--child-memory", str(hours), "--seed", str(seed)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def bench_growth(horizons: list[tuple[str, float]], reps: int, seed: int) -> None:
    # a shorter horizon is run more often in each round (the longest once), so that every horizon gets about
    # the same measuring time: a one-month run lasts a few hundredths of a second, at the mercy of the noise.
    # Within a round the runs are dealt out in turns (4 years, then a year, a share of the months, a year, ...),
    # so that a slow or fast spell of the machine falls on every horizon, not on one block of them.
    longest = max(h for _, h in horizons)
    runs = {name: max(1, round(longest / h)) for name, h in horizons}
    header(
        f"growth with the horizon: {', '.join(f'{n} x{runs[n]}' for n, _ in horizons)} per round; runs "
        f"dealt out in turns over {reps} rounds, median per horizon"
    )
    sc = {name: scenario(h) for name, h in horizons}
    twin_once(scenario(24.0), seed, 0)
    times: dict[str, list[float]] = {name: [] for name, _ in horizons}
    lots: dict[str, int] = {}
    turns = max(runs.values())
    order = [name for k in range(turns) for name, _h in reversed(horizons)
             if (k * runs[name]) // turns != ((k + 1) * runs[name]) // turns]  # fmt: skip
    for _ in range(reps):
        for name in order:
            wall, _ev, n, _t = twin_once(sc[name], seed, 0)
            times[name].append(wall)
            lots[name] = n
    per_lot_t, per_lot_m = {}, {}
    print(
        f"  {'horizon':<9} {'lots':>7} {'time s':>8} {'us/lot':>8} {'peak MB':>8} {'KB/lot':>7} {'RSS MB':>7}"
    )
    for name, h in horizons:
        m = memory(h, seed)
        t = median(times[name])
        per_lot_t[name] = t / lots[name] * 1e6
        peak = m["py_peak_b"] + m["arrow_b"]
        per_lot_m[name] = peak / m["lots"] / 1e3
        print(f"  {name:<9} {lots[name]:>7} {t:8.3f} {per_lot_t[name]:8.1f} {peak / 1e6:8.1f} "
              f"{per_lot_m[name]:7.2f} {m['rss_kb'] / 1e3:7.0f}")  # fmt: skip
        if name == "1 year":
            print(f"  peak memory of a one-year run: {peak / 1e6:.1f} MB traced (Python objects + Arrow buffers); "
                  f"process peak RSS {m['rss_kb'] / 1e3:.0f} MB of which {m['base_rss_kb'] / 1e3:.0f} MB before "
                  "the run (interpreter, numpy, pyarrow, duckdb)")  # fmt: skip
    for label, per in (("time", per_lot_t), ("memory", per_lot_m)):
        spread = max(per.values()) / min(per.values())
        target(f"{label} per lot within 20 % from {horizons[0][0]} to {horizons[-1][0]}", spread <= 1.2,
               f"max/min = {spread:.2f}")  # fmt: skip


# -- main ------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke mode: shorter horizons, fewer repetitions")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--reps", type=int, help="rounds of reference, lean reference and twin (default 12, quick 3)"
    )
    ap.add_argument("--only", help="comma list of sections: reference,shares,study,growth")
    ap.add_argument("--child-memory", type=float, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child_memory is not None:
        child_memory(a.child_memory, a.seed)
        return 0
    only = set(a.only.split(",")) if a.only else {"reference", "shares", "study", "growth"}
    q = a.quick
    print(f"python {sys.version.split()[0]}, {cores()} cores, {'quick' if q else 'full'} mode")
    if "reference" in only:
        bench_reference(2190.0 if q else YEAR_H, a.reps or (3 if q else 12), a.seed)
    if "shares" in only:
        bench_shares(2190.0 if q else YEAR_H, 2 if q else 5, 2 if q else 5, a.seed)
    if "study" in only:
        bench_study(
            MONTH_H if q else YEAR_H, 8 if q else 40, 1 if q else 5, a.seed
        )  # runs of a simulated year
    if "growth" in only:
        horizons = [("1 month", MONTH_H), ("3 months", 3 * MONTH_H), ("6 months", 6 * MONTH_H)] if q else [
            ("1 month", MONTH_H), ("1 year", YEAR_H), ("4 years", 4 * YEAR_H)]  # fmt: skip
        bench_growth(horizons, 2 if q else 5, a.seed)
    header("targets")
    for name, ok, measured in RESULTS:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {measured}")
    return 0 if all(ok for _, ok, _ in RESULTS) else 1


if __name__ == "__main__":
    sys.exit(main())
