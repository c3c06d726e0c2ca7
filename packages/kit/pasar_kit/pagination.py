"""The list convention of every pasar API: ``?limit=`` (1..100, default 20) and ``?offset=``,
answered with ``{"items", "total", "limit", "offset"}``. Routes declare
``limit: Limit = 20, offset: Offset = 0`` and answer a ``Page`` of their item: a named
subclass (``class ProductPage(Page[ProductPublic])``) keeps a readable schema name."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

# Far past any real list, and small enough for every database's integer types (an
# unbounded offset overflowed them: a 500, found by schemathesis).
MAX_OFFSET = 1_000_000_000

Limit = Annotated[int, Query(ge=1, le=100, description="Items per page (1-100).")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")]

Item = TypeVar("Item")


class Page(BaseModel, Generic[Item]):
    """One page of a list; ``total`` counts every match, not just this page."""

    items: list[Item]
    total: int
    limit: int
    offset: int
