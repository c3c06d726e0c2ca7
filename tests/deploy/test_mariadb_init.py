"""deploy/mariadb-init.sh run against a real MariaDB (PASAR_TEST_DB=mariadb): one database
and one user per service, each user kept to its own database, and the migration run as
that user. Only the names are changed (a unique prefix), so tests never touch a real
pasar_users."""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from deploy_files import DATABASE_SERVICES, DEPLOY
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import create_async_engine

from pasar_kit.migrations import upgrade
from pasar_kit.testing import backend

pytestmark = pytest.mark.skipif(
    backend() != "mariadb" or shutil.which("mariadb") is None,
    reason="needs PASAR_TEST_DB=mariadb and the mariadb client",
)
HOST = "127.0.0.1"
T = TypeVar("T")


def _root(statement: str) -> None:
    subprocess.run(
        ["mariadb", f"--host={HOST}", "--user=root", "-e", statement], check=True, timeout=30
    )


@pytest.fixture
def prefix(tmp_path: Path) -> Iterator[str]:
    name = f"pasar_test_{uuid.uuid4().hex[:8]}_"
    yield name
    for service in DATABASE_SERVICES:
        _root(f"DROP DATABASE IF EXISTS {name}{service}; DROP USER IF EXISTS '{name}{service}'@'%'")


def _url(prefix: str, owner: str, database: str, password: str) -> str:
    return (
        f"mysql+asyncmy://{prefix}{owner}:{password}@{HOST}:3306/{prefix}{database}?charset=utf8mb4"
    )


def _apart(work: Callable[[], T]) -> T:
    """``work`` in a thread of its own: it runs an event loop (``asyncio.run``, alembic's
    async engine), which the thread of a test in a long session may already have."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work).result()


def _reachable(url: str) -> bool:
    return _apart(lambda: asyncio.run(_can_read(url)))


async def _can_read(url: str) -> bool:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return True
    except (OperationalError, ProgrammingError):
        return False
    finally:
        await engine.dispose()


def test_each_service_user_owns_its_database_alone(prefix: str, tmp_path: Path) -> None:
    script = (DEPLOY / "mariadb-init.sh").read_text()
    assert script.count("pasar_$service") == 4
    (tmp_path / "init.sh").write_text(script.replace("pasar_$service", f"{prefix}$service"))
    passwords = {service: uuid.uuid4().hex for service in DATABASE_SERVICES}
    env = {
        **os.environ,
        "MYSQL_HOST": HOST,  # the client's own variable; the compose container has a socket
        "MARIADB_ROOT_PASSWORD": "",
        **{f"PASAR_{s.upper()}_DB_PASSWORD": p for s, p in passwords.items()},
    }
    subprocess.run(["sh", str(tmp_path / "init.sh")], env=env, check=True, timeout=60)
    # Idempotent: the entrypoint runs it once, but a rerun by hand must not fail.
    subprocess.run(["sh", str(tmp_path / "init.sh")], env=env, check=True, timeout=60)

    for owner, password in passwords.items():
        for database in DATABASE_SERVICES:
            reachable = _reachable(_url(prefix, owner, database, password))
            assert reachable is (owner == database), (owner, database)
        assert not _reachable(_url(prefix, owner, owner, "wrong" + password))
    # The migration runs as the service's own user, as the compose migrate service does.
    for service, password in passwords.items():
        _apart(
            functools.partial(
                upgrade, _url(prefix, service, service, password), f"pasar_{service}:migrations"
            )
        )
