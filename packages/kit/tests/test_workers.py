"""Background jobs: declared by name, run on their tick or when nudged, stopped together."""

from __future__ import annotations

import asyncio

from pasar_kit.workers import Jobs


async def test_a_nudged_job_runs_before_its_tick_and_stop_ends_every_job() -> None:
    runs = {"often": 0, "rarely": 0}
    ran = asyncio.Event()

    def counting(name: str):  # type: ignore[no-untyped-def]
        async def job() -> int:
            runs[name] += 1
            ran.set()
            return 0

        return job

    jobs = Jobs()
    jobs.add("often", counting("often"), 0.01)
    jobs.add("rarely", counting("rarely"), 3600)
    jobs.start()
    try:
        await asyncio.sleep(0.2)
        assert runs["often"] >= 3
        before = runs["rarely"]
        ran.clear()
        jobs.nudge("rarely")
        jobs.nudge("nobody")  # an unknown name is no error
        await asyncio.wait_for(ran.wait(), timeout=5)
        await asyncio.sleep(0.05)
        assert runs["rarely"] > before
    finally:
        await jobs.stop()
    settled = dict(runs)
    await asyncio.sleep(0.1)
    assert runs == settled  # nothing runs after stop


async def test_stop_lets_the_batch_in_progress_finish_but_ends_a_waiting_job_at_once() -> None:
    started = asyncio.Event()
    finished: list[str] = []

    async def slow_batch() -> int:
        started.set()
        await asyncio.sleep(0.3)  # a claim, HTTP calls, the commit that records them
        finished.append("batch")
        return 0

    async def idle() -> int:
        return 0

    jobs = Jobs()
    jobs.add("busy", slow_batch, 0.01)
    jobs.add("idle", idle, 3600)
    jobs.start()
    await asyncio.wait_for(started.wait(), timeout=5)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await jobs.stop(within=5)
    took = loop.time() - began
    assert finished == ["batch"]  # not cancelled mid-batch
    assert took < 1  # the idle job did not hold the stop for its hour


async def test_a_batch_that_outlives_the_grace_period_is_cancelled() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def stuck() -> int:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 0

    jobs = Jobs()
    jobs.add("stuck", stuck, 0.01)
    jobs.start()
    await asyncio.wait_for(started.wait(), timeout=5)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await jobs.stop(within=0.2)
    assert cancelled.is_set()
    assert loop.time() - began < 2
