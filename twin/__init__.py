"""The application around the line model: scenarios, runs, statistics, the DuckDB run history, the CLI.

Public API (imported lazily so that `import twin.errors` stays light): load_scenario, run_scenario, open_store,
query, with_overrides, sample_parameters, strategy_robustness, RunResult, Store, TwinError.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "RunResult",
    "Store",
    "TwinError",
    "load_scenario",
    "open_store",
    "query",
    "run_scenario",
    "sample_parameters",
    "strategy_robustness",
    "with_overrides",
]


def __getattr__(name: str) -> Any:
    if name == "TwinError":
        from twin.errors import TwinError

        return TwinError
    if name in __all__:
        from twin import api

        return getattr(api, name)
    raise AttributeError(f"module 'twin' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
