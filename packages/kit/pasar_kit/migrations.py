"""Alembic, driven from code: one migration history per service.

A service's ``migrations/env.py`` is two lines::

    from pasar_kit.migrations import run_env
    run_env(metadata)

and ``upgrade(url, "pasar_users:migrations")`` brings a database to head. Alembic runs
synchronously here, so call ``upgrade`` outside a running event loop (or in a thread).
"""

from __future__ import annotations

import asyncio
from importlib import resources
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine


def alembic_config(url: str, script_location: str) -> Config:
    """``script_location`` is ``package:folder``, e.g. ``pasar_users:migrations``."""
    package, _, folder = script_location.partition(":")
    path = resources.files(package).joinpath(folder)
    cfg = Config()
    cfg.set_main_option("script_location", str(path))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade(url: str, script_location: str, revision: str = "head") -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url, script_location), revision)


def run_env(metadata: MetaData) -> None:
    """The body of every service's ``env.py``."""
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    def migrate(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(migrate)
        await engine.dispose()

    asyncio.run(run())
