"""Mirror faults against real asyncua servers on 127.0.0.1: server killed and restarted, connection cut, silent
black hole (through the loopback proxy). In every case data flows again within a few seconds, the gap is
recorded in plant_events and every received sample is in telemetry.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import duckdb
import pytest
from test_mirror_servers import TAGMAP, AcmeProcess, build_acme, free_port, tick

from adapters.opcua.client import Mirror, MirrorOptions, utcnow
from adapters.opcua.proxy import TcpProxy
from adapters.opcua.tagmap import parse_tagmap
from twin.live.telemetry import LiveRecorder

pytestmark = pytest.mark.timeout(120)

FAST = MirrorOptions(
    stale_s=2.0, backoff_initial_s=0.2, backoff_max_s=1.0, request_timeout_s=1.5, flush_s=0.2
)


def _recorder(db: Path) -> tuple:
    tm = parse_tagmap(TAGMAP)
    return tm, LiveRecorder(db, {u: x.kind for u, x in tm.units.items()}, source="acme")


async def _until(cond, timeout_s: float, what: str) -> float:
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - t0


def _check_store(db: Path, received: int) -> tuple[list, list]:
    """Every received sample is stored exactly once; counter runs have no holes; returns (gaps, counters)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        seqs = [r[0] for r in con.execute("SELECT seq FROM telemetry ORDER BY seq").fetchall()]
        assert seqs == list(range(received)), "a received sample is missing from telemetry (or duplicated)"
        gaps = con.execute(
            "SELECT t, t_end, detail FROM plant_events WHERE kind = 'gap' ORDER BY t"
        ).fetchall()
        counters = con.execute(
            "SELECT received_ts, value FROM telemetry WHERE signal = 'counter' ORDER BY seq"
        ).fetchall()
    finally:
        con.close()
    return gaps, counters


def _runs_without_holes(counters: list, gaps: list) -> int:
    """Counter values between gaps must go up by exactly 1 per sample (nothing lost on a live link)."""
    bounds = [g[1] for g in gaps]
    runs: list[list[float]] = [[]]
    b = 0
    for ts, v in counters:
        while b < len(bounds) and ts >= bounds[b]:
            runs.append([])
            b += 1
        runs[-1].append(v)
    for run in runs:
        diffs = {round(y - x) for x, y in zip(run, run[1:])}
        assert diffs <= {1}, f"counter jumped inside a connected period: {sorted(diffs)}"
    return len([r for r in runs if len(r) > 5])


def test_server_killed_and_restarted(tmp_path: Path) -> None:
    port = free_port()
    srv = AcmeProcess(port).start()
    db = tmp_path / "t.duckdb"
    tm, rec = _recorder(db)

    async def main() -> tuple:
        m = Mirror(f"opc.tcp://127.0.0.1:{port}", tm, rec, FAST, source="acme")
        task = asyncio.create_task(m.run())
        await _until(lambda: m.stats.samples > 20, 15, "first samples")
        await asyncio.sleep(1.5)
        t_kill = utcnow()
        await asyncio.to_thread(srv.kill)
        await asyncio.sleep(2.0)
        await asyncio.to_thread(srv.start)
        t_up = utcnow()
        n = m.stats.samples
        back_s = await _until(
            lambda: m.stats.gaps >= 1 and m.stats.samples > n + 10, 20, "data after restart"
        )
        await asyncio.sleep(1.5)
        m.stop()
        await task
        return m.stats, t_kill, t_up, back_s

    try:
        stats, t_kill, t_up, back_s = asyncio.run(main())
    finally:
        srv.kill()
        rec.close()
    gaps, counters = _check_store(db, stats.samples)
    assert stats.connects >= 2
    assert len(gaps) == 1
    g_start, g_end, detail = gaps[0]
    assert g_start <= t_kill and g_end >= t_up, (g_start, g_end, t_kill, t_up)
    assert back_s < 5.0, f"data came back {back_s:.1f} s after the server"
    assert _runs_without_holes(counters, gaps) == 2


async def _through_proxy(tmp_path: Path, fault: str, outage_s: float) -> tuple:
    port = free_port()
    acme = await build_acme(port, pad=1)
    db = tmp_path / "t.duckdb"
    tm, rec = _recorder(db)
    async with acme.server:
        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                await tick(acme)
                await asyncio.sleep(0.1)

        tick_task = asyncio.create_task(ticker())
        with TcpProxy(port) as proxy:
            m = Mirror(f"opc.tcp://127.0.0.1:{proxy.port}", tm, rec, FAST, source="acme")
            task = asyncio.create_task(m.run())
            await _until(lambda: m.stats.samples > 20, 15, "first samples")
            await asyncio.sleep(1.5)
            t_fault = utcnow()
            getattr(proxy, fault)()
            await asyncio.sleep(outage_s)
            during = m.stats.state
            proxy.restore()
            t_restore = utcnow()
            n = m.stats.samples
            back_s = await _until(
                lambda: m.stats.gaps >= 1 and m.stats.samples > n + 10, 15, "data after restore"
            )
            await asyncio.sleep(1.5)
            m.stop()
            await task
        stop.set()
        await tick_task
    rec.close()
    gaps, counters = _check_store(db, m.stats.samples)
    return m.stats, gaps, counters, t_fault, t_restore, back_s, during


def test_connection_cut(tmp_path: Path) -> None:
    stats, gaps, counters, t_fault, t_restore, back_s, during = asyncio.run(
        _through_proxy(tmp_path, "cut", 3.0)
    )
    assert during in ("reconnecting", "connecting")
    assert len(gaps) == 1
    assert gaps[0][0] <= t_fault and gaps[0][1] >= t_restore
    assert back_s < 4.0, f"data came back {back_s:.1f} s after the link"
    assert _runs_without_holes(counters, gaps) == 2


def test_silent_black_hole(tmp_path: Path) -> None:
    stats, gaps, counters, t_fault, t_restore, back_s, during = asyncio.run(
        _through_proxy(tmp_path, "blackhole", 10.0)
    )
    assert during in ("reconnecting", "connecting"), "the watchdog did not notice the silent link"
    assert len(gaps) == 1
    assert gaps[0][0] <= t_fault and gaps[0][1] >= t_restore
    assert "watchdog" in gaps[0][2] or "connection lost" in gaps[0][2], gaps[0][2]
    assert back_s < 4.0, f"data came back {back_s:.1f} s after the link"
    assert _runs_without_holes(counters, gaps) == 2


def test_watchdog_rebuilds_a_client_whose_publish_loop_is_stuck(tmp_path: Path) -> None:
    """OPCUA.md §3: after a black hole asyncua may say "connected" while its publish loop is stuck. Reproduce
    the stuck loop directly (cancel it, the link stays up): only the mirror's freshness watchdog can notice."""

    async def main() -> tuple:
        port = free_port()
        acme = await build_acme(port, pad=0)
        db = tmp_path / "t.duckdb"
        tm, rec = _recorder(db)
        async with acme.server:
            stop = asyncio.Event()

            async def ticker() -> None:
                while not stop.is_set():
                    await tick(acme)
                    await asyncio.sleep(0.1)

            tick_task = asyncio.create_task(ticker())
            m = Mirror(f"opc.tcp://127.0.0.1:{port}", tm, rec, FAST, source="acme")
            task = asyncio.create_task(m.run())
            await _until(lambda: m.stats.samples > 20, 15, "first samples")
            await asyncio.sleep(1.0)
            client = m.client
            assert client is not None
            client.uaclient.session._publish_task.cancel()
            t_stuck = utcnow()
            assert client.uaclient.state.name == "CONNECTED"
            n = m.stats.samples
            back_s = await _until(
                lambda: m.stats.gaps >= 1 and m.stats.samples > n + 10, 15, "data after rebuild"
            )
            await asyncio.sleep(1.0)
            m.stop()
            await task
            stop.set()
            await tick_task
        rec.close()
        gaps, counters = _check_store(db, m.stats.samples)
        return m.stats, gaps, counters, t_stuck, back_s

    stats, gaps, counters, t_stuck, back_s = asyncio.run(main())
    assert stats.connects == 2
    assert len(gaps) == 1 and "watchdog" in gaps[0][2], gaps
    assert gaps[0][0] <= t_stuck
    # stale_s (2 s) to notice, then a fresh client: back well within 5 s
    assert 1.5 < back_s < 5.0, back_s
    assert _runs_without_holes(counters, gaps) == 2
