"""What routes receive by injection, declared once.

All async: FastAPI runs a plain `def` dependency in a worker thread, which costs more
than the work itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from pasar_kit.db import Database
from pasar_products.listing import TotalsCache
from pasar_products.settings import Settings


async def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _totals(request: Request) -> TotalsCache:
    totals: TotalsCache = request.app.state.totals
    return totals


async def _now(request: Request) -> datetime:
    # The app's clock, so tests can move time without sleeping.
    now: datetime = request.app.state.clock()
    return now


DB = Annotated[Database, Depends(_db)]
SettingsDep = Annotated[Settings, Depends(_settings)]
Now = Annotated[datetime, Depends(_now)]
Totals = Annotated[TotalsCache, Depends(_totals)]
