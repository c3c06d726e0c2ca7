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
