"""Autocomplete: the best few active products whose name words start with what is typed.

Only the name (and SKU) part of the index is searched: every typed word must be a name
word (or its stem), the last one may be the start of one. Best first: names that
begin with the text as typed, then shorter names (closer to what was typed), then by
name and id; the same order on every database (their relevance scores differ).
"""

from __future__ import annotations

from sqlalchemy import case, func, select, true

from pasar_kit.db import Database
from pasar_products.search import analysis
from pasar_products.search.query import matches, plan
from pasar_products.tables import products


def like_prefix(text: str) -> str:
    """``text`` as a LIKE pattern for what starts with it, wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%"


async def suggest(*, db: Database, text: str, limit: int) -> list[tuple[str, str]]:
    """``(id, name)`` of up to ``limit`` products for ``text`` typed so far."""
    words = analysis.words(text)
    if not words:
        return []
    matched = matches(db.dialect, plan(words, {}), names_only=True)
    # A non-correlated IN, found once by the index (see ``listing._source``).
    ids = matched.with_only_columns(matched.selected_columns.product_id)
    statement = (
        select(products.c.id, products.c.name)
        .where(products.c.active == true(), products.c.id.in_(ids))
        .order_by(
            case((products.c.name.ilike(like_prefix(text.strip()), escape="\\"), 0), else_=1),
            func.length(products.c.name),
            products.c.name,
            products.c.id,
        )
        .limit(limit)
    )
    async with db.read() as conn:
        return [(str(i), str(n)) for i, n in (await conn.execute(statement)).all()]
