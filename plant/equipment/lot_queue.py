"""A first-in first-out queue of lots in front of a stage (ALD reactors, QC stations): what `simpy.Store` does for
this line, with less machinery.

`simpy.Store` schedules an event for every put and every get and runs its trigger loops on both: a lot that a
waiting server takes costs three heap entries. Here a put hands the lot straight to the server that has waited
longest (one event: its wake-up), or queues it; a server that finds a lot queued takes it at once, without
yielding. The queue is unbounded; lots are served in arrival order, servers in the order they started waiting.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from simpy.events import Event

if TYPE_CHECKING:
    import simpy


class LotQueue:
    """`put(lot)`; a server takes with `lot = queue.take()` and, when that is None, `lot = yield queue.wait()`."""

    __slots__ = ("env", "items", "_servers")

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.items: deque[Any] = deque()  # queued lots, oldest first
        self._servers: deque[Event] = deque()  # wake-up events of the servers waiting for a lot, oldest first

    def __len__(self) -> int:
        return len(self.items)

    def put(self, lot: Any) -> None:
        """A lot joins the queue; a waiting server, if any, gets it now."""
        if self._servers:
            self._servers.popleft().succeed(lot)
        else:
            self.items.append(lot)

    def take(self) -> Any:
        """The oldest queued lot, removed; None when the queue is empty."""
        return self.items.popleft() if self.items else None

    def wait(self) -> Event:
        """An event to yield when `take()` gave None: its value is the next lot put."""
        ev = Event(self.env)
        self._servers.append(ev)
        return ev
