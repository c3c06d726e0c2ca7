"""Fixtures for the end-to-end tests (helpers live in shoplib.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from shoplib import RunningShop, database_env, free_base_port, start_shop


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningShop]:
    directory = tmp_path_factory.mktemp("shop")
    with ExitStack() as stack:
        running = start_shop(directory / "var", free_base_port(), database_env(stack, directory))
        try:
            yield running
        finally:
            code = running.stop()
            assert code == 0, "".join(running.output[-50:])
