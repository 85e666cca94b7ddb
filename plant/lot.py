"""A lot of cathode powder: its identity, its path through the line (timestamps) and its coating state."""

from __future__ import annotations

import math
from collections.abc import Sequence

from plant.physics import CoatingState

_NO_NOISE = (0.0,) * 9


class Lot:
    """One ALD batch of powder as it moves through the line. Plain slots object (hot path).

    Lot-bound randomness (ALD time factor, thickness noise, measurement noise) is drawn at release so that
    common random numbers hold across scenarios whatever order the lots are processed in.
    """

    __slots__ = (
        "lot_id", "recipe", "mass_kg", "release_h", "ald_factor", "z_thickness", "noise",
        "ald_unit", "ald_start_h", "ald_end_h", "ready_h", "deadline_h", "exposed_since_h",
        "anneal_start_h", "anneal_end_h", "batch_id", "rework_batch_id", "wait_h", "anneals",
        "qc_end_h", "done_h", "status", "first_pass", "verdict", "reason", "coating", "assessment",
        "precursor_mol", "rework", "seq",
    )  # fmt: skip

    def __init__(self, lot_id: int, recipe: str, mass_kg: float, release_h: float) -> None:
        self.lot_id = lot_id
        self.recipe = recipe
        self.mass_kg = mass_kg
        self.release_h = release_h
        self.ald_factor = 1.0
        self.z_thickness = 0.0
        self.noise: Sequence[float] = _NO_NOISE  # [z_thickness, 4 deviates of the first QC, 4 of the re-test]
        self.ald_unit = ""
        self.ald_start_h = math.nan
        self.ald_end_h = math.nan
        self.ready_h = math.nan
        self.deadline_h = math.inf
        self.exposed_since_h = math.nan
        self.anneal_start_h = math.nan
        self.anneal_end_h = math.nan
        self.batch_id = -1
        self.rework_batch_id = -1
        self.wait_h = math.nan
        self.anneals = 0
        self.qc_end_h = math.nan
        self.done_h = math.nan
        self.status = "wip"
        self.first_pass = False
        self.verdict = ""
        self.reason = ""
        self.coating: CoatingState | None = None
        self.assessment = None
        self.precursor_mol = 0.0
        self.rework = False
        self.seq = -1  # position in the trace's lots (Trace.add_lot)

    def qc_noise(self) -> Sequence[float]:
        """The measurement deviates (ICP, titration, XRD, EIS) of its current QC test: first test or re-test."""
        return self.noise[1:5] if self.anneals <= 1 else self.noise[5:9]

    def __repr__(self) -> str:
        return f"Lot({self.lot_id}, {self.recipe}, {self.status})"
