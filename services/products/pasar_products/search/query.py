"""A shopper's query as each database's full-text index understands it.

Every query word must match (AND); the last one also as a prefix, since people are still
typing it. A word matches as written, by its stem ("berlari" finds "lari"), and by
whatever the synonym rules say it also means ("hp" finds "handphone"): alternatives
(OR). Terms are letters and digits only (``analysis``), so what reaches an index's
query syntax can never be an operator; quoting is belt and braces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    bindparam,
    cast,
    column,
    func,
    literal_column,
    select,
    table,
)
from sqlalchemy.dialects.mysql import match
from sqlalchemy.dialects.postgresql import TSQUERY, TSVECTOR

from pasar_products.search.analysis import stem
from pasar_products.search.index import MARIADB_PREFIX, is_mariadb
from pasar_products.tables import product_search

# How much a name (and SKU) match outweighs one in the category or description.
NAME_WEIGHT = 10.0


@dataclass(frozen=True)
class Alternative:
    term: str
    prefix: bool = False


Group = tuple[Alternative, ...]


def plan(words: Sequence[str], synonyms: Mapping[str, Sequence[str]]) -> tuple[Group, ...]:
    """One group of alternatives per query word; a product must match every group."""
    groups: list[Group] = []
    for position, word in enumerate(words):
        last = position == len(words) - 1
        found: dict[str, bool] = {word: last}
        stemmed = stem(word)
        found.setdefault(stemmed, False)
        for key in dict.fromkeys((word, stemmed)):
            for term in synonyms.get(key, ()):
                found.setdefault(term, False)
        groups.append(tuple(Alternative(term, prefix) for term, prefix in found.items()))
    return tuple(groups)


def fts5(groups: Sequence[Group], *, names_only: bool = False) -> str:
    """An FTS5 MATCH expression: ``("kop" * OR "kop") AND (...)``."""
    column_filter = "name_terms : " if names_only else ""

    def phrase(alternative: Alternative) -> str:
        return f'{column_filter}"{alternative.term}"' + (" *" if alternative.prefix else "")

    return " AND ".join("(" + " OR ".join(map(phrase, group)) + ")" for group in groups)


def tsquery(groups: Sequence[Group], *, names_only: bool = False) -> str:
    """A PostgreSQL tsquery in its input syntax (lexemes taken as they are): names carry
    weight A, so ``:A`` keeps a lexeme to the name."""
    weight = "A" if names_only else ""

    def lexeme(alternative: Alternative) -> str:
        marks = ("*" if alternative.prefix else "") + weight
        return f"'{alternative.term}'" + (f":{marks}" if marks else "")

    return " & ".join("(" + " | ".join(map(lexeme, group)) + ")" for group in groups)


def boolean(groups: Sequence[Group]) -> str:
    """A MariaDB boolean-mode query: ``+(xxkop* xxkop) +(...)`` (see ``index.MARIADB_PREFIX``)."""

    def word(alternative: Alternative) -> str:
        return MARIADB_PREFIX + alternative.term + ("*" if alternative.prefix else "")

    return " ".join("+(" + " ".join(map(word, group)) + ")" for group in groups)


_FTS = table("product_search_fts", column("rowid"))
_DOCUMENT = column("document", TSVECTOR)
# ts_rank's weights for D, C, B (the rest) and A (name, SKU): a name match outweighs.
_TS_WEIGHTS = f"'{{0, 0, {1 / NAME_WEIGHT}, 1}}'::float4[]"


def matches(
    dialect: str, groups: Sequence[Group], *, names_only: bool = False
) -> Select[tuple[str, float]]:
    """``(product_id, rank)`` of every indexed product matching, the higher the better."""
    if dialect == "sqlite":
        expression = fts5(groups, names_only=names_only)
        rank: ColumnElement[float] = -func.bm25(
            literal_column("product_search_fts"), NAME_WEIGHT, 1.0
        )
        return (
            select(product_search.c.product_id, rank.label("rank"))
            .select_from(_FTS.join(product_search, product_search.c.doc_id == _FTS.c.rowid))
            .where(literal_column("product_search_fts").op("MATCH")(bindparam("match", expression)))
        )
    if dialect == "postgresql":
        query = cast(bindparam("match", tsquery(groups, names_only=names_only)), TSQUERY)
        rank = func.ts_rank(literal_column(_TS_WEIGHTS), _DOCUMENT, query)
        return select(product_search.c.product_id, rank.label("rank")).where(
            _DOCUMENT.op("@@")(query)
        )
    if is_mariadb(dialect):
        against: BindParameter[str] = bindparam("match", boolean(groups))
        in_name = match(product_search.c.name_terms, against=against).in_boolean_mode()
        if names_only:
            return select(product_search.c.product_id, in_name.label("rank")).where(in_name)
        anywhere = match(
            product_search.c.name_terms, product_search.c.body_terms, against=against
        ).in_boolean_mode()
        return select(
            product_search.c.product_id, (in_name * NAME_WEIGHT + anywhere).label("rank")
        ).where(anywhere)
    raise ValueError(f"no search index for {dialect}")
