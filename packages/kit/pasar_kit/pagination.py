"""The list convention of every pasar API: ``?limit=`` (1..100, default 20) and ``?offset=``,
answered with ``{"items", "total", "limit", "offset"}``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel

T = TypeVar("T")

# Far past any real list, and small enough for every database's integer types.
MAX_OFFSET = 1_000_000_000


@dataclass(frozen=True)
class PageRequest:
    limit: int
    offset: int


def _page_request(
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page (1-100).")] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")] = 0,
) -> PageRequest:
    return PageRequest(limit=limit, offset=offset)


Pagination = Annotated[PageRequest, Depends(_page_request)]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int
