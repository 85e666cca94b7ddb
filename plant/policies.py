"""Furnace scheduling policies: when an idle furnace starts, and with which waiting lots.

Every policy is one class with one method, `decide`. A class that subclasses `FurnacePolicy` with a `name`
registers itself in `POLICIES`; the scenario names it and passes its options. Adding a policy is adding a class.

    decide(now, queue, furnace) -> Start | float | None
        Start(lots, reason): start this furnace now with these lots (all of one recipe, at most its capacity);
        float: nothing now, ask again at this time (a timer) unless something changes earlier;
        None: nothing now, ask again when a lot arrives or a furnace frees up.

A policy that reads the lots' residual-Li deadlines (`lot.deadline_h`) sets `uses_deadlines = True`, so the
buffer computes them (the quality model's wait budget) only when some policy needs them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol


class WaitingLot(Protocol):
    """What a policy may read of a lot waiting in the buffer."""

    lot_id: int
    recipe: str
    ready_h: float  # entered the buffer (or came back for rework)
    deadline_h: float  # latest heating start before its predicted residual Li breaks spec (inf if none)


class FurnaceView(Protocol):
    """What a policy may read of a furnace."""

    name: str
    capacity_lots: int
    recipe: str | None  # recipe it is set up for (None before its first batch)

    def setup_h(self, recipe: str) -> float: ...  # setup needed before a batch of this recipe
    def lead_h(self, recipe: str) -> float: ...  # setup + load: from decision to heating start


@dataclass(slots=True)
class Start:
    lots: list[Any]
    reason: str


POLICIES: dict[str, type[FurnacePolicy]] = {}


class FurnacePolicy:
    """Base class. Subclasses set `name`, may declare `options` (name -> default) and implement `decide`."""

    name: ClassVar[str] = ""
    options: ClassVar[dict[str, float | int | None]] = {}
    rl_margin: float = 0.0  # safety margin (fraction of the residual-Li spec) for the lots' deadlines
    uses_deadlines: ClassVar[bool] = False  # True: the buffer computes each lot's residual-Li deadline

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if cls.name:
            POLICIES[cls.name] = cls

    def __init__(self, **opts: Any) -> None:
        self.check_options(opts)
        for key, default in self.options.items():
            setattr(self, key, opts.get(key, default))

    @classmethod
    def check_options(cls, opts: dict[str, Any]) -> None:
        """Raise ValueError naming an unknown or invalid option of this policy."""
        for key, value in opts.items():
            if key not in cls.options:
                allowed = ", ".join(cls.options) or "none"
                raise ValueError(f"policy {cls.name!r} has no option {key!r} (options: {allowed})")
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
                raise ValueError(f"policy option {key} must be a number, got {value!r}")
            if value is not None and (value < 0 or not math.isfinite(value)):
                raise ValueError(f"policy option {key} must be a finite number >= 0, got {value!r}")

    def decide(self, now: float, queue: Sequence[WaitingLot], furnace: FurnaceView) -> Start | float | None:
        raise NotImplementedError

    # helpers shared by policies ---------------------------------------------------------------
    @staticmethod
    def groups(queue: Sequence[WaitingLot]) -> dict[str, list[WaitingLot]]:
        """Waiting lots by recipe, each list in arrival order; dict order = order of each group's oldest lot."""
        out: dict[str, list[WaitingLot]] = {}
        for lot in queue:
            out.setdefault(lot.recipe, []).append(lot)
        return out

    @staticmethod
    def full_start(groups: dict[str, list[WaitingLot]], cap: int) -> Start | None:
        """A full batch of the recipe group whose oldest lot came first, if any group fills the furnace."""
        for lots in groups.values():
            if len(lots) >= cap:
                return Start(lots[:cap], "full")
        return None


class FullPolicy(FurnacePolicy):
    """Start only with a full furnace (capacity lots of one recipe)."""

    name = "full"

    def decide(self, now, queue, furnace):
        return self.full_start(self.groups(queue), furnace.capacity_lots)


class TimeoutPolicy(FurnacePolicy):
    """Start when full, or when the oldest waiting lot has waited max_wait_h."""

    name = "timeout"
    options = {"max_wait_h": 6.0}

    def decide(self, now, queue, furnace):
        groups = self.groups(queue)
        full = self.full_start(groups, furnace.capacity_lots)
        if full:
            return full
        if not queue:
            return None
        oldest = queue[0]
        for lot in queue:
            if lot.ready_h < oldest.ready_h:
                oldest = lot
        due = oldest.ready_h + self.max_wait_h
        if now >= due - 1e-9:
            return Start(groups[oldest.recipe][: furnace.capacity_lots], "timeout")
        return due


class ImmediatePolicy(FurnacePolicy):
    """Start as soon as anything waits, with the oldest lot's recipe group."""

    name = "immediate"

    def decide(self, now, queue, furnace):
        if not queue:
            return None
        groups = self.groups(queue)
        lots = next(iter(groups.values()))
        return Start(
            lots[: furnace.capacity_lots], "full" if len(lots) >= furnace.capacity_lots else "immediate"
        )


class CampaignPolicy(FurnacePolicy):
    """Group lots by recipe to save setups: a furnace stays on its current recipe while lots of it wait.

    While lots of the current recipe wait: start them when a full batch is there, or once the oldest has waited
    max_wait_h. Switch recipe only when none of the current recipe wait and another recipe has a full batch, or
    when another recipe's oldest lot has waited max_wait_h plus the setup the switch costs.
    """

    name = "campaign"
    options = {"max_wait_h": 8.0}

    def decide(self, now, queue, furnace):
        if not queue:
            return None
        cap = furnace.capacity_lots
        groups = self.groups(queue)
        current = groups.get(furnace.recipe) if furnace.recipe is not None else None
        due = math.inf
        if current:
            if len(current) >= cap:
                return Start(current[:cap], "campaign")
            t = current[0].ready_h + self.max_wait_h
            if now >= t - 1e-9:
                return Start(current[:cap], "timeout")
            due = t
        else:
            full = self.full_start(groups, cap)
            if full:
                return full
        for recipe, lots in groups.items():
            if recipe == furnace.recipe:
                continue
            t = lots[0].ready_h + self.max_wait_h + furnace.setup_h(recipe)
            if now >= t - 1e-9:
                return Start(lots[:cap], "timeout")
            due = min(due, t)
        return due


class QualityAwarePolicy(FurnacePolicy):
    """Start when full, or just in time for the lot closest to breaking its residual-Li spec.

    Each lot carries the deadline by which its heating must start (from the quality model's wait budget,
    computed when it enters the buffer, aiming rl_margin below the spec so that measurement noise does not
    fail it); a batch starts when the most urgent lot's deadline minus the furnace's lead time (setup + load)
    minus margin_h is reached. max_wait_h caps waits as in `timeout`.
    """

    name = "quality_aware"
    options = {"margin_h": 0.5, "rl_margin": 0.15, "max_wait_h": 24.0}
    uses_deadlines = True

    def decide(self, now, queue, furnace):
        groups = self.groups(queue)
        full = self.full_start(groups, furnace.capacity_lots)
        if full:
            return full
        if not queue:
            return None
        due = math.inf
        urgent_recipe = None
        for recipe, lots in groups.items():
            lead = furnace.lead_h(recipe) + self.margin_h
            t = min(min(lot.deadline_h for lot in lots) - lead, lots[0].ready_h + self.max_wait_h)
            if t < due:
                due, urgent_recipe = t, recipe
        if now >= due - 1e-9:
            return Start(groups[urgent_recipe][: furnace.capacity_lots], "quality")
        return due
