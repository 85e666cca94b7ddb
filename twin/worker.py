"""What a study's worker process runs: the task function, and the set-up of a local pool's workers.

Kept apart from `twin.executors` so that a worker imports only what a replication needs (the line, the scenario
model, pyarrow): the study planner, the store and the CLI stay in the process that runs the study. A local pool's
forkserver imports `PRELOAD` once; its workers are forks of it and start in a few milliseconds.
"""

from __future__ import annotations

import sys
from typing import Any

from twin.runner import ReplicationResult, simulate_replication

Task = tuple[int, Any, int, int]
"""(scenario index, scenario, seed, replication): one unit of work."""

PRELOAD = ["twin.worker", "twin.scenario", "plant.line", "numpy.random", "pyarrow.compute", "twin.oee"]
"""The modules a worker needs, imported once in the forkserver (about 0.6 s) instead of in every worker; the last
three are imported lazily by a run and would make every worker's first run 0.05 s slower."""


def simulate_task(task: Task) -> tuple[int, ReplicationResult]:
    """Simulate one (scenario, replication); returns (scenario index, result)."""
    index, scenario, seed, replication = task
    return index, simulate_replication(scenario, seed, replication)


def ready() -> bool:
    """A no-op task: its answer says a worker process is up."""
    return True


def init_worker() -> None:
    """The initializer of a local pool's worker: Ctrl-C is for the process that runs the study (a terminal sends
    it to every process of the job; a worker that took it would print a traceback), then `without_pandas`."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    without_pandas()


def without_pandas() -> None:
    """Tell pyarrow, in this process, that pandas is not installed, without importing it.

    pyarrow looks for pandas objects in what it converts, and to know them it imports pandas on its first
    conversion: 0.4 s, the biggest import of a worker that never sees a pandas object. pyarrow tries that import
    once for its checks and remembers the answer; an explicit pandas call (`to_pandas`) tries again, so nothing is
    lost if one is ever made. Run by `init_worker` in each worker (a fork of the forkserver, which did not
    import pandas)."""
    if "pandas" in sys.modules:
        return
    import pyarrow as pa

    blocker = _NoPandas()
    sys.meta_path.insert(0, blocker)
    try:
        pa.array([0])  # pyarrow's first pandas check: it records pandas as absent
    finally:
        sys.meta_path.remove(blocker)


class _NoPandas:
    """An import finder for which pandas does not exist."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pandas":
            raise ModuleNotFoundError("No module named 'pandas'", name=name)
