"""The list convention of every pasar API: ``?limit=`` (1..100, default 20) and ``?offset=``,
answered with ``{"items", "total", "limit", "offset"}``. Routes declare
``limit: Limit = 20, offset: Offset = 0``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

# Far past any real list, and small enough for every database's integer types (an
# unbounded offset overflowed them: a 500, found by schemathesis).
MAX_OFFSET = 1_000_000_000

Limit = Annotated[int, Query(ge=1, le=100, description="Items per page (1-100).")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")]
