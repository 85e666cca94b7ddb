"""Benchmark (by hand, not CI): data changes and lot-move events per second that `twin plant serve` delivers to one
subscribed asyncua client, and the server's CPU, against what the line model offers at that --speed.

    /work/venv/bin/python benchmarks/opcua_throughput.py [--scenario scenarios/baseline.yaml] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from asyncua import Client, ua

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from adapters.opcua.address_space import NAMESPACE_URI  # noqa: E402
from adapters.opcua.line_view import LOT_MOVES, LineView  # noqa: E402
from plant.line import Line  # noqa: E402
from twin.scenario import load_scenario  # noqa: E402


def offered_per_sim_h(scenario_path: Path, speed: float, tick_s: float = 0.05) -> tuple[float, float]:
    """(value changes, lot-move events) per simulated hour the server would publish at `speed` (offline replay
    of the whole horizon; the first simulated days, while the line fills, offer less)."""
    sc = load_scenario(scenario_path)
    line = Line(sc, sc.seed, 0)
    line.start()
    view, env, trace = LineView(line), line.env, line.trace
    tick_h, seen, values, events, t = tick_s * speed / 3600.0, 0, 0, 0, 0.0
    while t < sc.horizon_h:
        t = min(t + tick_h, sc.horizon_h)
        while env.peek() < t:
            env.step()
            if trace.n_events > seen:
                view.on_events(trace.events_since(seen))
                seen = trace.n_events
        view.tick(t)
        for item in view.take():
            values += item[0] == "v"
            events += item[0] == "e" and item[1][1] in LOT_MOVES
    return values / sc.horizon_h, events / sc.horizon_h


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Counter:
    def __init__(self) -> None:
        self.values = 0
        self.events = 0

    def datachange_notification(self, node, val, data) -> None:
        self.values += 1

    def event_notification(self, event) -> None:
        self.events += 1


async def measure(url: str, seconds: float) -> tuple[int, int, float]:
    counter = Counter()
    async with Client(url, timeout=10) as client:
        idx = await client.get_namespace_index(NAMESPACE_URI)
        plant = await client.nodes.objects.get_child(f"{idx}:Plant")
        variables = [
            v
            for obj in await plant.get_children(nodeclassmask=ua.NodeClass.Object)
            for v in await obj.get_variables()
        ]
        etype = await client.nodes.base_event_type.get_child(f"{idx}:LotMoveEventType")
        sub = await client.create_subscription(100, counter)
        await sub.subscribe_data_change(variables, queuesize=100, sampling_interval=0)
        await sub.subscribe_events(plant, etype, queuesize=10_000)
        await asyncio.sleep(1.0)
        v0, e0, t0 = counter.values, counter.events, time.perf_counter()
        await asyncio.sleep(seconds)
        return counter.values - v0, counter.events - e0, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", type=Path, default=REPO / "scenarios" / "baseline.yaml")
    ap.add_argument("--speeds", default="36000,360000,3600000,36000000")
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    print(
        f"{'speed':>9} {'offered val/s':>14} {'got val/s':>10} {'offered ev/s':>13} {'got ev/s':>9} {'server CPU':>10}"
    )
    tmp = Path(tempfile.mkdtemp())
    for speed in [float(s) for s in args.speeds.split(",")]:
        data = yaml.safe_load(args.scenario.read_text())
        data["horizon_h"] = max(float(data.get("horizon_h", 720)), speed / 3600.0 * (args.seconds + 15))
        scenario = tmp / f"bench_{speed:g}.yaml"
        scenario.write_text(yaml.safe_dump(data))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        url = f"opc.tcp://127.0.0.1:{port}"
        proc = subprocess.Popen([sys.executable, "-m", "twin", "plant", "serve", str(scenario), "--endpoint", url,
                                 "--speed", str(speed)], cwd=REPO, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            proc.stderr.readline()  # "serving ..." once it listens
            c0, w0 = cpu_s(proc.pid), time.perf_counter()
            got_v, got_e, wall = asyncio.run(measure(url, args.seconds))
            cpu = (cpu_s(proc.pid) - c0) / (time.perf_counter() - w0)
        finally:
            proc.terminate()
            proc.wait(10)
        v_h, e_h = offered_per_sim_h(scenario, speed)
        k = speed / 3600.0
        print(
            f"{speed:>9g} {v_h * k:>14.0f} {got_v / wall:>10.0f} {e_h * k:>13.0f} {got_e / wall:>9.0f} {cpu:>9.0%}"
        )


if __name__ == "__main__":
    main()
