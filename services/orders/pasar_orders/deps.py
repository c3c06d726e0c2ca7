"""What routes receive by injection, declared once. All async: FastAPI runs a plain
``def`` dependency in a worker thread, a thread hop per request for an attribute read."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request

from pasar_kit.ids import ID_DESCRIPTION, is_id
from pasar_kit.instants import Instant
from pasar_orders.bootstrap import Runtime
from pasar_orders.problems import OrderNotFound


async def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _order_id(order_id: Annotated[str, Path(description=ID_DESCRIPTION)]) -> str:
    """An id outside the kit's id rule names no order: 404 at once, no query, no echo."""
    if not is_id(order_id):
        raise OrderNotFound("There is no such order.")
    return order_id


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
OrderId = Annotated[str, Depends(_order_id)]
CreatedFrom = Annotated[
    Instant | None,
    Query(description="Orders created at or after this instant (RFC 3339, with offset)."),
]
CreatedTo = Annotated[
    Instant | None,
    Query(description="Orders created before this instant (RFC 3339, with offset)."),
]
