"""Quality control: fast-release tests on parallel stations, then pass, rework (re-anneal once) or scrap.
A test starts only with an operator on site; events are booked under the unit name "QC", states per station.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plant import physics
from plant.equipment.lot_queue import LotQueue
from plant.equipment.unit import Unit
from plant.trace import PASS, QC_END, QC_START, REWORK, SCRAP

if TYPE_CHECKING:
    from plant.line import Line
    from plant.lot import Lot


class QcStation(Unit):
    """One test station (a unit with its own states)."""

    kind = "qc"


class Qc:
    """`stations` identical test stations pulling annealed lots in arrival order."""

    kind = "qc"
    name = "QC"

    def __init__(self, line: Line) -> None:
        cfg = line.scenario.qc
        self.line = line
        self.code = line.trace.unit_code(self.name)  # QC events are booked under the unit name QC
        self.test_h = cfg.test_h
        self.rework_enabled = cfg.rework
        self.queue = LotQueue(line.env)
        self.stations = [QcStation(f"QC{i + 1}", line) for i in range(cfg.stations)]
        self.passed = 0
        self.failed = 0

    def submit(self, lot: Lot) -> None:
        self.queue.put(lot)

    def start(self) -> None:
        for st in self.stations:
            self.line.env.process(self.station(st))

    def station(self, st: QcStation):
        line = self.line
        env, record, pack, code, qp = line.env, line.trace.record, line.trace.pack, self.code, line.qp
        take, wait, test_h, can_rework = self.queue.take, self.queue.wait, self.test_h, self.rework_enabled
        assess = physics.quality_model(qp).assess
        lot_done = line.trace.lot_done
        staffed = line.calendar.never_waits
        while True:
            lot = take()
            if lot is None:
                lot = yield wait()
            if not staffed:
                yield from st.wait_ready(staff=True)
            lot_id = lot.lot_id
            record(pack(env.now, QC_START, code, lot_id, -1))
            st.to(env.now, "productive")
            st.batches += 1
            yield env.timeout(test_h)
            now = env.now
            lot.qc_end_h = now
            record(pack(now, QC_END, code, lot_id, -1))
            a = assess(lot.coating, lot.qc_noise(), can_rework and not lot.rework)
            lot.assessment = a
            verdict = lot.verdict = a.verdict
            lot.reason = a.reason
            if verdict == "pass":
                lot.status = "good"
                lot.done_h = now
                lot.first_pass = not lot.rework
                self.passed += 1
                record(pack(now, PASS, code, lot_id, -1))
                lot_done(lot)
            elif verdict == "rework":
                record(pack(now, REWORK, code, lot_id, -1))
                lot.rework = True
                lot.exposed_since_h = now
                line.buffer.add(lot)
            else:
                lot.status = "scrap"
                lot.done_h = now
                self.failed += 1
                record(pack(now, SCRAP, code, lot_id, -1))
                lot_done(lot)
            st.to(now, "standby")
