"""A starting state for the line (for forecasts from a mirrored plant): lots already in the reactors, the buffer
and the furnaces at simulated time 0, with how long they have been there. Plain data, no SimPy.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class LotAt:
    """A lot already in the line: identity, and hours it has spent in its current place (or since ALD)."""

    lot_id: int
    recipe: str
    mass_kg: float = 120.0
    elapsed_h: float = 0.0  # in a reactor: since ALD start; in the buffer: since ALD end (its wait so far)
    wait_h: float = 0.0  # in a furnace: hours it waited between ALD and heating (its wet exposure)
    anneals: int = 0  # anneals already done (1 for a rework lot back in the buffer, or a lot in QC)


@dataclass(slots=True)
class ReactorAt:
    unit: str  # ALD1, ALD2, ...
    lot: LotAt


@dataclass(slots=True)
class BatchAt:
    unit: str  # F1, F2, ...
    recipe: str
    lots: list[LotAt]
    elapsed_h: float  # since heating started
    batch_id: int = -1


@dataclass(slots=True)
class InitialState:
    """What is in the line at time 0. Lots queued before ALD go in `ald_queue`; annealed lots waiting for or in
    their QC test go in `qc` (their `elapsed_h` counts from the end of ALD)."""

    ald_queue: list[LotAt] = field(default_factory=list)
    reactors: list[ReactorAt] = field(default_factory=list)
    buffer: list[LotAt] = field(default_factory=list)
    furnaces: list[BatchAt] = field(default_factory=list)
    qc: list[LotAt] = field(default_factory=list)

    def lot_ids(self) -> list[int]:
        ids = [lot.lot_id for lot in (*self.ald_queue, *self.buffer, *self.qc)]
        ids += [r.lot.lot_id for r in self.reactors]
        ids += [lot.lot_id for b in self.furnaces for lot in b.lots]
        return ids
