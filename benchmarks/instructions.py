"""Exact cost of one run, for deciding between two versions of the code on a noisy machine: instructions and
cache misses of the workload alone, counted by valgrind's callgrind (needs `valgrind` on the PATH).

    python benchmarks/instructions.py twin             # one simulated year: model + quality + recording
    python benchmarks/instructions.py bare --hours 730 # the bare SimPy reference, one month
    python benchmarks/instructions.py run logic        # several workloads, one after the other

Wall-clock timings on a shared 2-core machine vary by 10-20 % from one minute to the next, more than most single
changes are worth; instruction counts do not vary at all. The workload runs inside a callback of libc's qsort so
that callgrind counts it alone (`--toggle-collect`), not the interpreter start-up and imports. Cache misses are
simulated with a 1 MB last level (the private L2 of the machine); `est` weighs them (10 cycles a first-level miss,
40 a last-level one) into one figure to compare. Each workload takes 1-3 minutes (callgrind runs ~50x slower).

Workloads: `bare` (benchmarks/bare_simpy_line.py), `bare-lean` (the same with the twin's lean queues), `twin`
(Line.run() + Trace.tables(), as benchmarks/run.py times it), `run` (Line.run() only), `logic` (Line.run() with
the quality model and recording stubbed out).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = ("bare", "bare-lean", "twin", "run", "logic")


def _workload(what: str, hours: float) -> None:
    sys.path.insert(0, str(HERE))
    sys.path.insert(0, str(HERE.parent))
    from bare_simpy_line import BareLine
    from run import patched, scenario

    from plant.line import Line

    sc = scenario(hours)
    Line(scenario(200.0), 1, 0).run().tables()  # lazy initialisations out of the count
    BareLine(scenario(200.0), 1, 0).run()
    gc.collect()

    def work() -> None:
        if what == "bare":
            BareLine(sc, 1, 0).run()
        elif what == "bare-lean":
            BareLine(sc, 1, 0, lean_queues=True).run()
        elif what == "twin":
            Line(sc, 1, 0, keep_lots=False).run().tables()
        elif what == "run":
            Line(sc, 1, 0, keep_lots=False).run()
        else:
            with patched(no_quality=True, no_recording=True):
                Line(sc, 1, 0, keep_lots=False).run()

    # qsort calls the comparator once for two elements: the workload runs inside qsort, which callgrind toggles on
    done: list[int] = []
    failed: list[BaseException] = []

    def compare(a: int, b: int) -> int:
        if not done:
            done.append(1)
            try:
                work()
            except BaseException as exc:  # ctypes would print it and go on: the count would look valid
                failed.append(exc)
        return 0

    cmp_type = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)
    pair = (ctypes.c_int * 2)(1, 2)
    ctypes.CDLL(None).qsort(pair, 2, ctypes.sizeof(ctypes.c_int), cmp_type(compare))
    if failed:
        raise failed[0]


def _count(what: str, hours: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            "valgrind", "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=*qsort_r*",
            "--cache-sim=yes", "--LL=1048576,16,64", f"--callgrind-out-file={tmp}/out",
            sys.executable, str(Path(__file__)), "--inside", what, "--hours", str(hours),
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"callgrind failed:\n{proc.stderr[-2000:]}")

    def total(label: str) -> float:
        m = re.search(label + r"\s*:\s*([\d,]+)", proc.stderr)
        return float(m.group(1).replace(",", "")) if m else 0.0

    ir, d1 = total(r"I\s+refs"), total(r"D1\s+misses")
    ll = total(r"LLd\s+misses") + total(r"LLi\s+misses")
    return {"ir": ir, "d1": d1, "ll": ll, "est": ir + 10 * d1 + 40 * ll}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workloads", nargs="+", choices=WORKLOADS)
    ap.add_argument("--hours", type=float, default=8760.0, help="simulated horizon (default one year)")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.inside:
        _workload(a.workloads[0], a.hours)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt install valgrind)", file=sys.stderr)
        return 2
    print(
        f"{'workload':<8} {'instructions':>14} {'D1 misses':>11} {'LL misses':>11} {'est':>14}  ({a.hours:g} h)"
    )
    for what in a.workloads:
        c = _count(what, a.hours)
        print(f"{what:<8} {c['ir'] / 1e6:12.1f} M {c['d1'] / 1e6:9.2f} M {c['ll'] / 1e6:9.3f} M "
              f"{c['est'] / 1e6:12.1f} M")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
